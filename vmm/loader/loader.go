// Package loader puts a guest kernel into guest memory the way a boot
// loader would and returns the CPU state to start it in. It knows three
// formats: the Linux x86 boot protocol (a bzImage, entered at its 64-bit
// entry point with a boot_params zero page), Multiboot 1 (a.out kludge or
// ELF, entered in 32-bit protected mode with a multiboot information
// structure) and plain ELF32/ELF64 executables.
//
// The package writes guest memory only through the Memory interface and
// touches nothing else: it does not create vCPUs, apply registers or own
// the guest's memory map. The image is treated as untrusted input: every
// size, offset and address in it is checked, and a bad one is an error,
// never a panic or a write outside guest RAM.
//
// The package does not import hv/vmm (vmm may import it). EntryState's
// Regs has vmm.Regs's layout and Segment and DTable have vmm.Segment's and
// vmm.DTable's, so the VMM converts them with plain type conversions.
package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Memory is guest-physical memory as the loader needs it. *vmm.Memory
// satisfies it.
type Memory interface {
	// WritePhys copies p to guest-physical gpa, failing without writing
	// anything if any byte is outside RAM.
	WritePhys(gpa uint64, p []byte) error
	// Size is the amount of guest RAM in bytes.
	Size() uint64
}

// E820Type is the type of a memory map entry, as the BIOS INT 15h E820
// function and the boot_params e820_table report it (ACPI 6.5 table 15.4,
// "Address Range Types"). Multiboot 1 uses the same numbers.
type E820Type uint32

// Address range types (ACPI 6.5 section 15.3 and table 15.4).
const (
	E820RAM      E820Type = 1 // AddressRangeMemory: usable by the OS
	E820Reserved E820Type = 2 // AddressRangeReserved
	E820ACPI     E820Type = 3 // AddressRangeACPI: reclaimable after reading the tables
	E820NVS      E820Type = 4 // AddressRangeNVS: must be preserved across sleep
	E820Unusable E820Type = 5 // AddressRangeUnusable
)

// E820Entry is one range of the guest's physical memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       E820Type
}

// PC memory map boundaries below 1 MiB: conventional memory ends where the
// EBDA would start, and 0xF0000-0xFFFFF is the system BIOS area (IBM PC
// AT Technical Reference, memory map; Linux's e820 treats 0xA0000-0xFFFFF
// as the legacy ISA hole).
const (
	pcConventionalEnd = 0x9FC00
	pcBIOSStart       = 0xF0000
	pcHighMemStart    = 0x100000
)

// DefaultMap is a PC memory map for size bytes of RAM at guest-physical 0:
// conventional memory, a reserved BIOS area, and RAM from 1 MiB to size. A
// VM with MMIO holes or firmware tables passes its own map instead.
func DefaultMap(size uint64) []E820Entry {
	m := []E820Entry{{0, min(size, pcConventionalEnd), E820RAM}}
	if size > pcBIOSStart {
		m = append(m, E820Entry{pcConventionalEnd, pcBIOSStart - pcConventionalEnd, E820Reserved})
		m = append(m, E820Entry{pcBIOSStart, pcHighMemStart - pcBIOSStart, E820Reserved})
	}
	if size > pcHighMemStart {
		m = append(m, E820Entry{pcHighMemStart, size - pcHighMemStart, E820RAM})
	}
	return m
}

// Module is a Multiboot module: a file the loader puts in memory and names
// in the information structure.
type Module struct {
	Data    []byte
	Cmdline string
}

// Config is what a boot loader is told besides the image.
type Config struct {
	// Cmdline is the kernel command line, passed verbatim. (GRUB and QEMU
	// put the image's path first for Multiboot kernels; a caller that wants
	// that adds it.)
	Cmdline string
	// Initrd is the Linux initial ramdisk; Linux only.
	Initrd []byte
	// Modules are Multiboot modules; Multiboot only.
	Modules []Module
	// Map is the guest's physical memory map. Everything the loader writes
	// goes into E820RAM ranges of it; nil means DefaultMap(mem.Size()).
	Map []E820Entry
	// RSDP is the guest-physical address of the ACPI RSDP, given to Linux
	// in boot_params.acpi_rsdp_addr (boot protocol 2.14 and later); 0 lets
	// the kernel scan the BIOS area for it.
	RSDP uint64
}

// Kind is the format of a loaded image.
type Kind int

// Image formats.
const (
	KindLinux     Kind = iota + 1 // Linux bzImage, 64-bit boot protocol
	KindMultiboot                 // Multiboot 1
	KindELF                       // plain ELF32 or ELF64 executable
)

func (k Kind) String() string {
	switch k {
	case KindLinux:
		return "Linux bzImage"
	case KindMultiboot:
		return "Multiboot"
	case KindELF:
		return "ELF"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Range is a half-open guest-physical range [Start, End).
type Range struct{ Start, End uint64 }

func (r Range) overlaps(o Range) bool { return r.Start < o.End && o.Start < r.End }

// Result is a loaded guest: its format, where things went, and the state
// to start its first vCPU in.
type Result struct {
	Kind  Kind
	Entry EntryState
	// Kernel is the memory the kernel occupies or may use from its load
	// address (for Linux, init_size bytes: the kernel decompresses there).
	Kernel Range
	// Initrd is where the Linux initrd went (empty without one).
	Initrd Range
	// Modules are where the Multiboot modules went, in order.
	Modules []Range
	// Info is the boot information: the Linux zero page or the Multiboot
	// information structure with everything it points to.
	Info Range
}

// Errors callers may branch on.
var (
	// ErrFormat means the image is none of the formats this package loads.
	ErrFormat = errors.New("unknown image format")
	// ErrNoRoom means the guest's RAM has no place for something.
	ErrNoRoom = errors.New("no room in guest RAM")
)

// Load detects the image's format and loads it. name is used in errors
// only. Detection order is that of the formats' own magic numbers: a
// bzImage setup header, then a Multiboot header in the first 8 KiB, then
// an ELF header.
func Load(mem Memory, name string, image []byte, cfg Config) (*Result, error) {
	var (
		r   *Result
		err error
	)
	switch {
	case IsBzImage(image):
		r, err = LoadLinux(mem, image, cfg)
	case hasMultibootMagic(image):
		r, err = LoadMultiboot(mem, image, cfg)
	case IsELF(image):
		r, err = LoadELF(mem, image, cfg)
	default:
		return nil, fmt.Errorf("loader: %s: not a bzImage (%s), not Multiboot (no header magic %#x in the first %d bytes) and not ELF (starts % x): %w",
			name, describeBzMagic(image), MultibootHeaderMagic, MultibootSearch, head(image, 4), ErrFormat)
	}
	if err != nil {
		return nil, fmt.Errorf("loader: %s: %w", name, err)
	}
	return r, nil
}

func head(b []byte, n int) []byte { return b[:min(len(b), n)] }

// le is the byte order of every structure this package reads or writes.
var le = binary.LittleEndian

// space tracks guest RAM for placement: the RAM ranges of the memory map
// and the ranges already taken.
type space struct {
	mem  Memory
	ram  []Range // sorted, disjoint
	used []Range
}

func newSpace(mem Memory, m []E820Entry) (*space, error) {
	if m == nil {
		m = DefaultMap(mem.Size())
	}
	var ram, holes []Range
	for _, e := range m {
		if e.Size == 0 {
			continue
		}
		end := e.Addr + e.Size
		if end < e.Addr {
			return nil, fmt.Errorf("memory map entry %#x+%#x wraps", e.Addr, e.Size)
		}
		if e.Type == E820RAM {
			ram = append(ram, Range{e.Addr, end})
		} else {
			holes = append(holes, Range{e.Addr, end})
		}
	}
	// Anything the map calls both RAM and something else is not ours to
	// use.
	for _, h := range holes {
		ram = subtract(ram, h)
	}
	sort.Slice(ram, func(i, j int) bool { return ram[i].Start < ram[j].Start })
	var merged []Range
	for _, r := range ram {
		if n := len(merged); n > 0 && r.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) == 0 {
		return nil, fmt.Errorf("memory map has no RAM: %w", ErrNoRoom)
	}
	return &space{mem: mem, ram: merged}, nil
}

func subtract(rs []Range, h Range) []Range {
	var out []Range
	for _, r := range rs {
		if !r.overlaps(h) {
			out = append(out, r)
			continue
		}
		if r.Start < h.Start {
			out = append(out, Range{r.Start, h.Start})
		}
		if h.End < r.End {
			out = append(out, Range{h.End, r.End})
		}
	}
	return out
}

// isRAM reports whether all of r is RAM in the map.
func (s *space) isRAM(r Range) bool {
	for _, m := range s.ram {
		if m.Start <= r.Start && r.End <= m.End {
			return true
		}
	}
	return false
}

func (s *space) isFree(r Range) bool {
	for _, u := range s.used {
		if u.overlaps(r) {
			return false
		}
	}
	return true
}

// claim marks [start, start+size) as used after checking it is free RAM.
func (s *space) claim(start, size uint64, what string) (Range, error) {
	r := Range{start, start + size}
	if r.End < r.Start {
		return Range{}, fmt.Errorf("%s at %#x+%#x wraps the address space", what, start, size)
	}
	if size == 0 {
		return r, nil
	}
	if !s.isRAM(r) {
		return Range{}, fmt.Errorf("%s at [%#x, %#x) is not in guest RAM: %w", what, r.Start, r.End, ErrNoRoom)
	}
	for _, u := range s.used {
		if u.overlaps(r) {
			return Range{}, fmt.Errorf("%s at [%#x, %#x) overlaps [%#x, %#x), already loaded", what, r.Start, r.End, u.Start, u.End)
		}
	}
	s.used = append(s.used, r)
	return r, nil
}

// low claims the lowest free RAM range of size bytes, align-aligned,
// starting at or above from and ending at or below limit.
func (s *space) low(size, align, from, limit uint64, what string) (Range, error) {
	for _, m := range s.ram {
		a, ok := alignUp(max(m.Start, from), align)
		for ok && a+size > a && a+size <= min(m.End, limit) {
			r := Range{a, a + size}
			if s.isFree(r) {
				s.used = append(s.used, r)
				return r, nil
			}
			// Skip past whatever is in the way; every used range that
			// overlaps r ends above a, so a strictly grows.
			next := a
			for _, u := range s.used {
				if u.overlaps(r) && u.End > next {
					next = u.End
				}
			}
			a, ok = alignUp(next, align)
		}
	}
	return Range{}, fmt.Errorf("%s: %#x bytes between %#x and %#x: %w", what, size, from, limit, ErrNoRoom)
}

// high claims the highest free RAM range of size bytes, align-aligned,
// ending at or below limit.
func (s *space) high(size, align, limit uint64, what string) (Range, error) {
	for i := len(s.ram) - 1; i >= 0; i-- {
		m := s.ram[i]
		end := min(m.End, limit)
		if size == 0 || end < size || end-size < m.Start {
			continue
		}
		for a := alignDown(end-size, align); a >= m.Start; {
			r := Range{a, a + size}
			if s.isFree(r) {
				s.used = append(s.used, r)
				return r, nil
			}
			// Move below whatever is in the way; every used range that
			// overlaps r starts below a+size, so a strictly shrinks.
			next := a + size
			for _, u := range s.used {
				if u.overlaps(r) && u.Start < next {
					next = u.Start
				}
			}
			if next < size {
				break
			}
			a = alignDown(next-size, align)
		}
	}
	return Range{}, fmt.Errorf("%s: %#x bytes below %#x: %w", what, size, limit, ErrNoRoom)
}

// alignUp rounds a up to a multiple of align (a power of two); ok is false
// if that overflows.
func alignUp(a, align uint64) (uint64, bool) {
	if align <= 1 {
		return a, true
	}
	if a > math.MaxUint64-(align-1) {
		return 0, false
	}
	return (a + align - 1) &^ (align - 1), true
}

func alignDown(a, align uint64) uint64 {
	if align <= 1 {
		return a
	}
	return a &^ (align - 1)
}

// write copies p into guest memory at a range claimed for it.
func (s *space) write(gpa uint64, p []byte, what string) error {
	if err := s.mem.WritePhys(gpa, p); err != nil {
		return fmt.Errorf("write %s at %#x: %w", what, gpa, err)
	}
	return nil
}

// zero clears [r.Start, r.End): guest memory may hold a previous boot's
// contents, and a bss must read as zero.
func (s *space) zero(r Range, what string) error {
	var buf [64 << 10]byte
	for a := r.Start; a < r.End; {
		n := min(uint64(len(buf)), r.End-a)
		if err := s.write(a, buf[:n], what); err != nil {
			return err
		}
		a += n
	}
	return nil
}
