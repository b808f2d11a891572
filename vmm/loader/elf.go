package loader

import (
	"bytes"
	"errors"
	"fmt"
)

// ELF identification and header values (System V ABI, "ELF Header";
// x86-64 psABI section 4.1 for EM_X86_64).
const (
	elfClass32    = 1
	elfClass64    = 2
	elfData2LSB   = 1
	elfVersion    = 1
	elfTypeExec   = 2 // ET_EXEC
	elfTypeDyn    = 3 // ET_DYN
	elfMachine386 = 3
	elfMachineX64 = 62
	elfPTLoad     = 1 // PT_LOAD

	elf32HeaderSize = 52
	elf64HeaderSize = 64
	elf32PhdrSize   = 32
	elf64PhdrSize   = 56
)

var elfMagic = []byte{0x7F, 'E', 'L', 'F'}

// IsELF reports whether image starts with the ELF magic.
func IsELF(image []byte) bool { return bytes.HasPrefix(image, elfMagic) }

// ELFSegment is one PT_LOAD program header.
type ELFSegment struct {
	Offset, Vaddr, Paddr, Filesz, Memsz uint64
}

// ELFFile is what a loader needs from an ELF executable.
type ELFFile struct {
	Class    int // 32 or 64
	Machine  uint16
	Entry    uint64 // e_entry, a virtual address
	Segments []ELFSegment
}

// ErrNotELF wraps every reason ParseELF rejects an image.
var ErrNotELF = errors.New("not a loadable ELF executable")

// ParseELF reads and checks an ELF32 (i386) or ELF64 (x86-64) executable's
// header and loadable segments; every segment's file range is inside the
// image and its memory range does not wrap.
func ParseELF(image []byte) (*ELFFile, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrNotELF, fmt.Sprintf(format, a...))
	}
	if !IsELF(image) {
		return nil, bad("no ELF magic")
	}
	if len(image) < elf32HeaderSize {
		return nil, bad("%d bytes, too short for an ELF header", len(image))
	}
	f := &ELFFile{}
	switch image[4] {
	case elfClass32:
		f.Class = 32
	case elfClass64:
		f.Class = 64
		if len(image) < elf64HeaderSize {
			return nil, bad("%d bytes, too short for an ELF64 header", len(image))
		}
	default:
		return nil, bad("ELF class %d", image[4])
	}
	if image[5] != elfData2LSB {
		return nil, bad("not little-endian (EI_DATA %d)", image[5])
	}
	if image[6] != elfVersion {
		return nil, bad("ELF version %d", image[6])
	}
	typ := le.Uint16(image[16:])
	f.Machine = le.Uint16(image[18:])
	switch typ {
	case elfTypeExec:
	case elfTypeDyn:
		return nil, bad("position-independent (ET_DYN); this loader places segments at their physical addresses and does not relocate")
	default:
		return nil, bad("ELF type %d, want an executable", typ)
	}
	var phoff, phentsize, phnum, minEnt uint64
	if f.Class == 32 {
		if f.Machine != elfMachine386 {
			return nil, bad("ELF32 machine %d, want i386 (%d)", f.Machine, elfMachine386)
		}
		f.Entry = uint64(le.Uint32(image[24:]))
		phoff = uint64(le.Uint32(image[28:]))
		phentsize = uint64(le.Uint16(image[42:]))
		phnum = uint64(le.Uint16(image[44:]))
		minEnt = elf32PhdrSize
	} else {
		if f.Machine != elfMachineX64 {
			return nil, bad("ELF64 machine %d, want x86-64 (%d)", f.Machine, elfMachineX64)
		}
		f.Entry = le.Uint64(image[24:])
		phoff = le.Uint64(image[32:])
		phentsize = uint64(le.Uint16(image[54:]))
		phnum = uint64(le.Uint16(image[56:]))
		minEnt = elf64PhdrSize
	}
	if phnum == 0 {
		return nil, bad("no program headers")
	}
	if phentsize < minEnt {
		return nil, bad("program header size %d, want at least %d", phentsize, minEnt)
	}
	// phnum and phentsize are 16-bit, so the product cannot overflow.
	if phoff > uint64(len(image)) || phnum*phentsize > uint64(len(image))-phoff {
		return nil, bad("program headers at %#x (%d of %d bytes) run past the %d-byte file", phoff, phnum, phentsize, len(image))
	}
	for i := range phnum {
		ph := image[phoff+i*phentsize:]
		var seg ELFSegment
		var ptype uint32
		if f.Class == 32 {
			ptype = le.Uint32(ph[0:])
			seg = ELFSegment{
				Offset: uint64(le.Uint32(ph[4:])),
				Vaddr:  uint64(le.Uint32(ph[8:])),
				Paddr:  uint64(le.Uint32(ph[12:])),
				Filesz: uint64(le.Uint32(ph[16:])),
				Memsz:  uint64(le.Uint32(ph[20:])),
			}
		} else {
			ptype = le.Uint32(ph[0:])
			seg = ELFSegment{
				Offset: le.Uint64(ph[8:]),
				Vaddr:  le.Uint64(ph[16:]),
				Paddr:  le.Uint64(ph[24:]),
				Filesz: le.Uint64(ph[32:]),
				Memsz:  le.Uint64(ph[40:]),
			}
		}
		if ptype != elfPTLoad || seg.Memsz == 0 {
			continue
		}
		if seg.Filesz > seg.Memsz {
			return nil, bad("segment %d: file size %#x exceeds memory size %#x", i, seg.Filesz, seg.Memsz)
		}
		if seg.Offset > uint64(len(image)) || seg.Filesz > uint64(len(image))-seg.Offset {
			return nil, bad("segment %d: file range %#x+%#x runs past the %d-byte file", i, seg.Offset, seg.Filesz, len(image))
		}
		if seg.Paddr+seg.Memsz < seg.Paddr || seg.Vaddr+seg.Memsz < seg.Vaddr {
			return nil, bad("segment %d: memory range wraps the address space", i)
		}
		f.Segments = append(f.Segments, seg)
	}
	if len(f.Segments) == 0 {
		return nil, bad("no loadable segments")
	}
	return f, nil
}

// PhysEntry is the entry point as a physical address: the loader enters
// with paging off or identity-mapped, so e_entry is translated through the
// segment that contains it, as GRUB does for Multiboot ELF kernels.
func (f *ELFFile) PhysEntry() (uint64, error) {
	for _, s := range f.Segments {
		if f.Entry >= s.Vaddr && f.Entry-s.Vaddr < s.Memsz {
			return s.Paddr + (f.Entry - s.Vaddr), nil
		}
	}
	return 0, fmt.Errorf("entry point %#x is in no loadable segment", f.Entry)
}

// loadSegments copies every segment to its physical address and clears
// the rest of its memory size. It returns the lowest start and highest end.
func (s *space) loadSegments(image []byte, f *ELFFile, limit uint64) (Range, error) {
	span := Range{Start: ^uint64(0)}
	for i, seg := range f.Segments {
		if seg.Paddr+seg.Memsz > limit {
			return Range{}, fmt.Errorf("segment %d at [%#x, %#x) is above %#x", i, seg.Paddr, seg.Paddr+seg.Memsz, limit)
		}
		r, err := s.claim(seg.Paddr, seg.Memsz, fmt.Sprintf("segment %d", i))
		if err != nil {
			return Range{}, err
		}
		if err := s.write(r.Start, image[seg.Offset:seg.Offset+seg.Filesz], "segment"); err != nil {
			return Range{}, err
		}
		if err := s.zero(Range{r.Start + seg.Filesz, r.End}, "segment bss"); err != nil {
			return Range{}, err
		}
		span.Start, span.End = min(span.Start, r.Start), max(span.End, r.End)
	}
	return span, nil
}

// LoadELF loads a plain ELF executable (no Multiboot header) at its
// segments' physical addresses. An ELF32 kernel starts as a Multiboot
// kernel would but with EAX and EBX zero (no information structure); an
// ELF64 kernel starts in 64-bit mode with the first 4 GiB identity-mapped,
// like the Linux 64-bit entry, with RSI zero. Neither can receive a
// command line, initrd or modules, so giving one is an error.
func LoadELF(mem Memory, image []byte, cfg Config) (*Result, error) {
	f, err := ParseELF(image)
	if err != nil {
		return nil, err
	}
	if cfg.Cmdline != "" || len(cfg.Initrd) > 0 || len(cfg.Modules) > 0 {
		return nil, errors.New("ELF: a plain ELF kernel has no way to receive a command line, initrd or modules (add a Multiboot header)")
	}
	entry, err := f.PhysEntry()
	if err != nil {
		return nil, fmt.Errorf("ELF: %w", err)
	}
	if entry >= identityMapSize {
		return nil, fmt.Errorf("ELF: entry point %#x is above the %#x bytes the loader maps", entry, uint64(identityMapSize))
	}
	s, err := newSpace(mem, cfg.Map)
	if err != nil {
		return nil, fmt.Errorf("ELF: %w", err)
	}
	limit := uint64(1 << 32) // paging off: 32-bit physical addresses
	if f.Class == 64 {
		limit = ^uint64(0)
	}
	kernel, err := s.loadSegments(image, f, limit)
	if err != nil {
		return nil, fmt.Errorf("ELF: %w", err)
	}
	var st EntryState
	if f.Class == 64 {
		st, err = s.longModeSetup()
	} else {
		st, err = s.protectedModeSetup()
	}
	if err != nil {
		return nil, fmt.Errorf("ELF: %w", err)
	}
	sp, err := s.stack()
	if err != nil {
		return nil, fmt.Errorf("ELF: %w", err)
	}
	st.Regs.RIP = entry
	st.Regs.RSP = sp
	return &Result{Kind: KindELF, Entry: st, Kernel: kernel}, nil
}
