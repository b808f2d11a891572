// Package mbimage turns the hypervisor's stock-Go ELF into an image that
// Multiboot 1 loaders (QEMU -kernel, iPXE, GRUB "multiboot") and Multiboot 2
// loaders (GRUB "multiboot2", needed under UEFI for the ACPI tags) can boot.
//
// It checks that the ELF has the one shape those loaders can handle, and
// writes both headers into unused, zero bytes of the ELF header page; it
// never moves or rewrites anything the Go linker produced. It also parses
// headers back, for tests and for the tool's report. It knows nothing about
// what the kernel does after entry.
package mbimage

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// minLoadAddr keeps the image out of the first MiB, which holds the real-mode
// IVT, BIOS data, option ROMs and the VGA window; GRUB and QEMU refuse to load
// multiboot images there.
const minLoadAddr = 1 << 20

// preferredOffset is the spot in the ELF header page tried first: past the
// ELF and program headers of any Go binary and well before the notes that
// the Go linker puts at the end of the page.
const preferredOffset = 0x800

// Layout is the memory shape of the kernel as the Multiboot address fields
// describe it: one contiguous range loaded from the file, then zeroed bss.
type Layout struct {
	// Delta is virtual address minus file offset, the same for every
	// PT_LOAD (the a.out kludge loads one contiguous file range).
	Delta uint64
	// LoadAddr is where file offset 0 lands.
	LoadAddr uint32
	// LoadEndAddr is the end of the file-backed data.
	LoadEndAddr uint32
	// BSSEndAddr is the end of the zero-filled memory after it.
	BSSEndAddr uint32
	// Entry is the 32-bit entry point (e_entry).
	Entry uint32
}

// Placement records where the headers were written.
type Placement struct {
	Layout
	MB1Offset int // file offset of the Multiboot 1 header
	MB2Offset int // file offset of the Multiboot 2 header
}

// ErrShape reports an ELF that the Multiboot address fields cannot describe.
var ErrShape = errors.New("ELF shape not bootable by multiboot")

func shapeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrShape, fmt.Sprintf(format, args...))
}

// Inspect checks that img is a static x86-64 executable linked the way the
// Makefile links the kernel (-T 0x201000: ELF header page loaded at
// 0x200000, every PT_LOAD at the same vaddr-offset distance, bss only at the
// end) and returns its Multiboot layout.
func Inspect(img []byte) (Layout, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return Layout{}, fmt.Errorf("mbimage: parse ELF: %w", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return Layout{}, shapeErr("want a 64-bit x86-64 ELF, have %v %v", f.Class, f.Machine)
	}
	if f.Type != elf.ET_EXEC {
		return Layout{}, shapeErr("want a static executable (ET_EXEC), have %v; build with CGO_ENABLED=0 and no -buildmode=pie", f.Type)
	}
	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	if len(loads) == 0 {
		return Layout{}, shapeErr("no PT_LOAD program headers")
	}
	sort.Slice(loads, func(i, j int) bool { return loads[i].Vaddr < loads[j].Vaddr })
	first, last := loads[0], loads[len(loads)-1]
	if first.Off != 0 {
		return Layout{}, shapeErr("first PT_LOAD starts at file offset %#x, want 0 (the ELF header page must be loaded; link with -T 0x201000)", first.Off)
	}
	delta := first.Vaddr - first.Off
	for i, p := range loads {
		if p.Vaddr-p.Off != delta || p.Vaddr < p.Off {
			return Layout{}, shapeErr("PT_LOAD %d at vaddr %#x, offset %#x: vaddr-offset differs from %#x; the loaded range is not one contiguous file range", i, p.Vaddr, p.Off, delta)
		}
		if p.Memsz < p.Filesz {
			return Layout{}, shapeErr("PT_LOAD %d: memsz %#x < filesz %#x", i, p.Memsz, p.Filesz)
		}
		if p != last && p.Memsz != p.Filesz {
			return Layout{}, shapeErr("PT_LOAD %d at %#x has bss (memsz %#x > filesz %#x) but is not the last; the a.out kludge zeroes only after the last", i, p.Vaddr, p.Memsz, p.Filesz)
		}
		if i > 0 {
			prev := loads[i-1]
			if prev.Vaddr+prev.Memsz > p.Vaddr {
				return Layout{}, shapeErr("PT_LOAD %d at %#x overlaps the previous one ending at %#x", i, p.Vaddr, prev.Vaddr+prev.Memsz)
			}
		}
		if p.Off+p.Filesz > uint64(len(img)) {
			return Layout{}, shapeErr("PT_LOAD %d file range %#x+%#x runs past the end of the file (%#x bytes)", i, p.Off, p.Filesz, len(img))
		}
	}
	if first.Vaddr < minLoadAddr {
		return Layout{}, shapeErr("load address %#x is below 1 MiB", first.Vaddr)
	}
	bssEnd := last.Vaddr + last.Memsz
	if bssEnd > 1<<32 || bssEnd < last.Vaddr {
		return Layout{}, shapeErr("image ends at %#x, above 4 GiB; multiboot addresses are 32-bit", bssEnd)
	}
	entryOK := false
	for _, p := range loads {
		if p.Flags&elf.PF_X != 0 && f.Entry >= p.Vaddr && f.Entry < p.Vaddr+p.Filesz {
			entryOK = true
		}
	}
	if !entryOK {
		return Layout{}, shapeErr("entry %#x is not inside an executable PT_LOAD (link with -E <32-bit entry symbol>)", f.Entry)
	}
	return Layout{
		Delta:       delta,
		LoadAddr:    uint32(first.Vaddr),
		LoadEndAddr: uint32(last.Vaddr + last.Filesz),
		BSSEndAddr:  uint32(bssEnd),
		Entry:       uint32(f.Entry),
	}, nil
}

// MB1Header returns the Multiboot 1 header for l, to be placed at file offset
// off (§3.1.1).
func MB1Header(l Layout, off int) []byte {
	h := make([]byte, MB1Size)
	le := binary.LittleEndian
	le.PutUint32(h[0:], MB1Magic)
	le.PutUint32(h[4:], MB1Flags)
	// §3.1.2: magic + flags + checksum must be zero as a 32-bit sum.
	var sum uint32 = MB1Magic + MB1Flags
	le.PutUint32(h[8:], -sum)
	le.PutUint32(h[12:], uint32(uint64(off)+l.Delta)) // header_addr
	le.PutUint32(h[16:], l.LoadAddr)
	le.PutUint32(h[20:], l.LoadEndAddr)
	le.PutUint32(h[24:], l.BSSEndAddr)
	le.PutUint32(h[28:], l.Entry)
	return h
}

// MB2Header returns the Multiboot 2 header for l, to be placed at file offset
// off (§3.1).
func MB2Header(l Layout, off int) []byte {
	var tags []byte
	addTag := func(typ, flags uint16, payload []byte) {
		size := 8 + len(payload)
		t := make([]byte, alignUp(size, MB2Align))
		binary.LittleEndian.PutUint16(t[0:], typ)
		binary.LittleEndian.PutUint16(t[2:], flags)
		// §3.1.3: size counts the tag itself but not the padding after it.
		binary.LittleEndian.PutUint32(t[4:], uint32(size))
		copy(t[8:], payload)
		tags = append(tags, t...)
	}
	u32s := func(vs ...uint32) []byte {
		b := make([]byte, 4*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	addTag(MB2TagInfoRequest, 0, u32s(mb2Requested[:]...))
	addTag(MB2TagAddress, 0, u32s(uint32(uint64(off)+l.Delta), l.LoadAddr, l.LoadEndAddr, l.BSSEndAddr))
	addTag(MB2TagEntryAddress, 0, u32s(l.Entry))
	addTag(MB2TagModuleAlign, 0, nil)
	addTag(MB2TagEnd, 0, nil)

	h := make([]byte, MB2FixedSize, MB2FixedSize+len(tags))
	le := binary.LittleEndian
	length := uint32(MB2FixedSize + len(tags))
	le.PutUint32(h[0:], MB2Magic)
	le.PutUint32(h[4:], MB2ArchI386)
	le.PutUint32(h[8:], length)
	// §3.1.2: magic + architecture + header_length + checksum == 0 (mod 2^32).
	le.PutUint32(h[12:], -(MB2Magic + MB2ArchI386 + length))
	return append(h, tags...)
}

// Build returns a copy of the ELF img with a Multiboot 1 header and, 8-byte
// aligned right after it, a Multiboot 2 header, written into bytes that are
// zero and belong to nothing in the ELF (no header, program header table,
// section data or section header table). File offset 0x800 is tried first,
// then every other 8-byte aligned offset in the first 8 KiB, upward from
// 0x800 and wrapping around.
func Build(img []byte) ([]byte, Placement, error) {
	l, err := Inspect(img)
	if err != nil {
		return nil, Placement{}, err
	}
	used, err := usedRanges(img)
	if err != nil {
		return nil, Placement{}, err
	}
	mb2Len := len(MB2Header(l, 0))
	need := alignUp(MB1Size, MB2Align) + mb2Len
	loadedEnd := int(uint64(l.LoadEndAddr) - l.Delta) // file offset of the end of loaded data

	fits := func(off int) bool {
		end := off + need
		if off+MB1Size > MB1Search || end > loadedEnd || end > len(img) {
			return false
		}
		for _, r := range used {
			if off < r.end && r.start < end {
				return false
			}
		}
		for _, b := range img[off:end] {
			if b != 0 {
				return false
			}
		}
		return true
	}
	// Search upward from the preferred offset first, then below it: the
	// space right after the program headers is where a linker would grow
	// them.
	off := -1
	for i := 0; i < MB1Search/MB2Align; i++ {
		o := (preferredOffset + i*MB2Align) % MB1Search
		if fits(o) {
			off = o
			break
		}
	}
	if off < 0 {
		return nil, Placement{}, fmt.Errorf("mbimage: no %d free zero bytes in the first %d bytes of the ELF for the multiboot headers", need, MB1Search)
	}
	out := append([]byte(nil), img...)
	mb2Off := alignUp(off+MB1Size, MB2Align)
	copy(out[off:], MB1Header(l, off))
	copy(out[mb2Off:], MB2Header(l, mb2Off))
	return out, Placement{Layout: l, MB1Offset: off, MB2Offset: mb2Off}, nil
}

type fileRange struct{ start, end int }

// usedRanges lists the file ranges that the ELF itself uses within its
// loaded part: headers, tables, section contents and non-LOAD segments
// (notes). PT_LOAD segments are left out: they cover everything loaded,
// including the slack the headers go into.
func usedRanges(img []byte) ([]fileRange, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("mbimage: parse ELF: %w", err)
	}
	defer f.Close()
	var hdr elf.Header64
	if err := binary.Read(bytes.NewReader(img), binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("mbimage: read ELF header: %w", err)
	}
	add := func(rs []fileRange, off, size uint64) []fileRange {
		if size == 0 || off >= uint64(len(img)) {
			return rs
		}
		end := off + size
		if end > uint64(len(img)) || end < off {
			end = uint64(len(img))
		}
		return append(rs, fileRange{int(off), int(end)})
	}
	rs := add(nil, 0, uint64(hdr.Ehsize))
	rs = add(rs, hdr.Phoff, uint64(hdr.Phnum)*uint64(hdr.Phentsize))
	rs = add(rs, hdr.Shoff, uint64(hdr.Shnum)*uint64(hdr.Shentsize))
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Type != elf.SHT_NULL {
			rs = add(rs, s.Offset, s.FileSize)
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			rs = add(rs, p.Off, p.Filesz)
		}
	}
	return rs, nil
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }
