package loader

import (
	"errors"
	"fmt"
)

// Multiboot 1 numbers (Multiboot Specification 0.6.96, section 3.1 "OS
// image format" and 3.3 "Boot information format").
const (
	MultibootHeaderMagic     = 0x1BADB002 // in the OS image's header
	MultibootBootloaderMagic = 0x2BADB002 // in EAX at entry
	MultibootSearch          = 8192       // the header lies within the first 8 KiB, 4-byte aligned

	// Header flags. Bits 0-15 are requirements: a loader that does not
	// understand one must fail (section 3.1.2).
	MultibootPageAlign  = 1 << 0  // modules page aligned
	MultibootMemInfo    = 1 << 1  // mem_* and mmap_* must be given
	MultibootVideoMode  = 1 << 2  // video mode table wanted
	MultibootAoutKludge = 1 << 16 // the address fields at offsets 12-28 are valid

	// Information structure flags (section 3.3).
	MultibootInfoMemory         = 1 << 0
	MultibootInfoCmdline        = 1 << 2
	MultibootInfoMods           = 1 << 3
	MultibootInfoMemMap         = 1 << 6
	MultibootInfoBootLoaderName = 1 << 9
)

// Offsets in the information structure (section 3.3).
const (
	mbiFlags          = 0
	mbiMemLower       = 4
	mbiMemUpper       = 8
	mbiCmdline        = 16
	mbiModsCount      = 20
	mbiModsAddr       = 24
	mbiMmapLength     = 44
	mbiMmapAddr       = 48
	mbiBootLoaderName = 64
	mbiSize           = 120 // through the framebuffer fields, which stay zero
	mbModuleSize      = 16  // mod_start, mod_end, string, reserved
	mbMmapEntrySize   = 24  // size (=20, not counting itself), base_addr, length, type
	mbMmapEntryBody   = 20
)

// multibootSupported are the requirement bits this loader honours: it
// always page-aligns modules and always gives the memory information. It
// has no framebuffer, so it leaves out video information, as QEMU's
// Multiboot loader does, rather than refuse kernels that merely ask.
const multibootSupported = MultibootPageAlign | MultibootMemInfo | MultibootVideoMode

// bootLoaderName is what the guest sees in boot_loader_name.
const bootLoaderName = "hv"

// MultibootHeader is a Multiboot 1 header found in an image.
type MultibootHeader struct {
	Offset int // file offset of the magic
	Flags  uint32
	// The a.out kludge fields, valid when Flags has MultibootAoutKludge.
	HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr, EntryAddr uint32
}

// ErrNoMultiboot means no valid Multiboot header was found.
var ErrNoMultiboot = errors.New("no Multiboot header")

// FindMultibootHeader finds the first 4-byte aligned Multiboot header in
// the image's first 8 KiB whose checksum is right (magic + flags +
// checksum == 0 mod 2^32).
func FindMultibootHeader(image []byte) (*MultibootHeader, error) {
	end := min(len(image), MultibootSearch)
	for off := 0; off+12 <= end; off += 4 {
		if le.Uint32(image[off:]) != MultibootHeaderMagic {
			continue
		}
		flags := le.Uint32(image[off+4:])
		if MultibootHeaderMagic+flags+le.Uint32(image[off+8:]) != 0 {
			continue
		}
		h := &MultibootHeader{Offset: off, Flags: flags}
		if flags&MultibootAoutKludge != 0 {
			if off+32 > len(image) {
				return nil, fmt.Errorf("multiboot header at %#x: a.out kludge fields run past the %d-byte file", off, len(image))
			}
			h.HeaderAddr = le.Uint32(image[off+12:])
			h.LoadAddr = le.Uint32(image[off+16:])
			h.LoadEndAddr = le.Uint32(image[off+20:])
			h.BSSEndAddr = le.Uint32(image[off+24:])
			h.EntryAddr = le.Uint32(image[off+28:])
		}
		return h, nil
	}
	return nil, fmt.Errorf("%w (magic %#x with a valid checksum) in the first %d bytes", ErrNoMultiboot, MultibootHeaderMagic, MultibootSearch)
}

func hasMultibootMagic(image []byte) bool {
	_, err := FindMultibootHeader(image)
	return !errors.Is(err, ErrNoMultiboot)
}

// aoutSegment is the kludge's single segment: file bytes from the header's
// offset minus (header_addr - load_addr), to load_end_addr (or the end of
// the file when it is 0), then zeros to bss_end_addr (section 3.1.3).
func (h *MultibootHeader) aoutSegment(image []byte) (ELFSegment, uint64, error) {
	if h.LoadAddr > h.HeaderAddr {
		return ELFSegment{}, 0, fmt.Errorf("load_addr %#x is above header_addr %#x", h.LoadAddr, h.HeaderAddr)
	}
	delta := uint64(h.HeaderAddr - h.LoadAddr)
	if delta > uint64(h.Offset) {
		return ELFSegment{}, 0, fmt.Errorf("header_addr - load_addr = %#x, but the header is at file offset %#x", delta, h.Offset)
	}
	off := uint64(h.Offset) - delta
	size := uint64(len(image)) - off
	if h.LoadEndAddr != 0 {
		if h.LoadEndAddr < h.LoadAddr {
			return ELFSegment{}, 0, fmt.Errorf("load_end_addr %#x is below load_addr %#x", h.LoadEndAddr, h.LoadAddr)
		}
		if n := uint64(h.LoadEndAddr - h.LoadAddr); n <= size {
			size = n
		} else {
			return ELFSegment{}, 0, fmt.Errorf("load range [%#x, %#x) needs %#x bytes from file offset %#x, the file has %#x", h.LoadAddr, h.LoadEndAddr, n, off, size)
		}
	}
	mem := size
	if h.BSSEndAddr != 0 {
		end := uint64(h.LoadAddr) + size
		if uint64(h.BSSEndAddr) < end {
			return ELFSegment{}, 0, fmt.Errorf("bss_end_addr %#x is below the end of the loaded data %#x", h.BSSEndAddr, end)
		}
		mem = uint64(h.BSSEndAddr) - uint64(h.LoadAddr)
	}
	if mem == 0 {
		return ELFSegment{}, 0, errors.New("a.out kludge loads nothing")
	}
	if h.EntryAddr < h.LoadAddr || uint64(h.EntryAddr-h.LoadAddr) >= mem {
		return ELFSegment{}, 0, fmt.Errorf("entry_addr %#x is outside the image [%#x, %#x)", h.EntryAddr, h.LoadAddr, uint64(h.LoadAddr)+mem)
	}
	seg := ELFSegment{Offset: off, Vaddr: uint64(h.LoadAddr), Paddr: uint64(h.LoadAddr), Filesz: size, Memsz: mem}
	return seg, uint64(h.EntryAddr), nil
}

// LoadMultiboot loads a Multiboot 1 kernel (a.out kludge or ELF), its
// modules (page aligned, after the kernel) and the information structure
// with the command line, memory map and module list, and returns the
// 32-bit protected-mode entry state of section 3.2: EAX = 0x2BADB002, EBX
// = the information structure, paging off, flat segments, interrupts off.
func LoadMultiboot(mem Memory, image []byte, cfg Config) (*Result, error) {
	h, err := FindMultibootHeader(image)
	if err != nil {
		return nil, err
	}
	if req := h.Flags & 0xFFFF &^ multibootSupported; req != 0 {
		return nil, fmt.Errorf("multiboot: header flags %#x require features this loader lacks (bits %#x)", h.Flags, req)
	}
	if len(cfg.Initrd) > 0 {
		return nil, errors.New("multiboot: an initrd was given; pass it as a module")
	}
	var (
		f     *ELFFile
		entry uint64
	)
	if h.Flags&MultibootAoutKludge != 0 {
		seg, e, err := h.aoutSegment(image)
		if err != nil {
			return nil, fmt.Errorf("multiboot a.out kludge: %w", err)
		}
		f, entry = &ELFFile{Class: 32, Entry: e, Segments: []ELFSegment{seg}}, e
	} else {
		if f, err = ParseELF(image); err != nil {
			return nil, fmt.Errorf("multiboot header without the a.out kludge needs an ELF kernel: %w", err)
		}
		if entry, err = f.PhysEntry(); err != nil {
			return nil, fmt.Errorf("multiboot ELF: %w", err)
		}
		if entry >= 1<<32 {
			return nil, fmt.Errorf("multiboot ELF: entry point %#x is above 4 GiB", entry)
		}
	}
	s, err := newSpace(mem, cfg.Map)
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	kernel, err := s.loadSegments(image, f, 1<<32)
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	st, err := s.protectedModeSetup()
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	sp, err := s.stack()
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	mods := make([]Range, len(cfg.Modules))
	from := kernel.End
	for i, m := range cfg.Modules {
		// A zero-length module still gets its own page, so every module
		// has a distinct address.
		r, err := s.low(max(uint64(len(m.Data)), 1), pageSize, from, 1<<32, fmt.Sprintf("module %d", i))
		if err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
		if err := s.write(r.Start, m.Data, "module"); err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
		mods[i] = Range{r.Start, r.Start + uint64(len(m.Data))}
		from = r.End
	}
	info, err := s.multibootInfo(cfg, mods)
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	st.Regs.RIP = entry
	st.Regs.RSP = sp
	st.Regs.RAX = MultibootBootloaderMagic
	st.Regs.RBX = info.Start
	return &Result{Kind: KindMultiboot, Entry: st, Kernel: kernel, Modules: mods, Info: info}, nil
}

// multibootInfo lays out the information structure, memory map, module
// list and strings in one block in low memory and writes it.
func (s *space) multibootInfo(cfg Config, mods []Range) (Range, error) {
	m := s.mapForGuest(cfg.Map)
	mmapOff := uint64(mbiSize)
	modsOff := mmapOff + uint64(len(m))*mbMmapEntrySize
	strOff := modsOff + uint64(len(mods))*mbModuleSize
	size := strOff + uint64(len(cfg.Cmdline)) + 1 + uint64(len(bootLoaderName)) + 1
	for _, mod := range cfg.Modules {
		size += uint64(len(mod.Cmdline)) + 1
	}
	r, err := s.low(size, pageSize, lowBase, 1<<32, "Multiboot information")
	if err != nil {
		return Range{}, err
	}
	b := make([]byte, size)
	base := r.Start
	str := strOff
	addString := func(v string) uint32 {
		at := base + str
		copy(b[str:], v)
		str += uint64(len(v)) + 1
		return uint32(at)
	}

	lower, upper := s.memLowerUpper()
	le.PutUint32(b[mbiFlags:], MultibootInfoMemory|MultibootInfoCmdline|MultibootInfoMods|MultibootInfoMemMap|MultibootInfoBootLoaderName)
	le.PutUint32(b[mbiMemLower:], lower)
	le.PutUint32(b[mbiMemUpper:], upper)
	le.PutUint32(b[mbiCmdline:], addString(cfg.Cmdline))
	le.PutUint32(b[mbiBootLoaderName:], addString(bootLoaderName))
	le.PutUint32(b[mbiModsCount:], uint32(len(mods)))
	le.PutUint32(b[mbiModsAddr:], uint32(base+modsOff))
	for i, mod := range mods {
		o := modsOff + uint64(i)*mbModuleSize
		le.PutUint32(b[o:], uint32(mod.Start))
		le.PutUint32(b[o+4:], uint32(mod.End))
		le.PutUint32(b[o+8:], addString(cfg.Modules[i].Cmdline))
	}
	le.PutUint32(b[mbiMmapLength:], uint32(len(m)*mbMmapEntrySize))
	le.PutUint32(b[mbiMmapAddr:], uint32(base+mmapOff))
	for i, e := range m {
		o := mmapOff + uint64(i)*mbMmapEntrySize
		le.PutUint32(b[o:], mbMmapEntryBody)
		le.PutUint64(b[o+4:], e.Addr)
		le.PutUint64(b[o+12:], e.Size)
		le.PutUint32(b[o+20:], uint32(e.Type))
	}
	if err := s.write(r.Start, b, "Multiboot information"); err != nil {
		return Range{}, err
	}
	return r, nil
}

// memLowerUpper are mem_lower (KiB of RAM from 0, at most 640) and
// mem_upper (KiB of RAM from 1 MiB up to the first hole), section 3.3.
func (s *space) memLowerUpper() (lower, upper uint32) {
	for _, r := range s.ram {
		if r.Start == 0 {
			lower = uint32(min(r.End, 640<<10) >> 10)
		}
		if r.Start <= pcHighMemStart && pcHighMemStart < r.End {
			upper = uint32(min((r.End-pcHighMemStart)>>10, 1<<32-1))
		}
	}
	return lower, upper
}
