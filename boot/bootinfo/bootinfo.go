// Package bootinfo reads the Multiboot-1 or Multiboot-2 boot information that a boot loader
// leaves in physical memory and condenses it into one fixed-size Info: a normalised memory map,
// the kernel command line, the modules with their command lines, the loader's name and a copy of
// the ACPI RSDP when the loader passed one.
//
// Boundary: it only reads memory through Memory and never writes it; it does not interpret the
// command line, load modules, allocate frames or parse ACPI tables (see boot/acpi, boot/pmem).
//
// It runs before the Go runtime is initialised: it never allocates, keeps no package state and
// reports malformed input as an error value, never as a panic.
package bootinfo

// Memory is a read view of physical memory. Bytes returns the n bytes at physical address addr,
// or false when any of them lies outside the view.
type Memory interface {
	Bytes(addr, n uint64) ([]byte, bool)
}

// Error is a constant error; converting a constant to error does not allocate.
type Error string

func (e Error) Error() string { return string(e) }

// Errors returned by Parse. Callers branch on them with ==.
const (
	ErrUnknownMagic      = Error("bootinfo: unknown boot loader magic")
	ErrUnreadable        = Error("bootinfo: boot information lies outside physical memory")
	ErrMalformed         = Error("bootinfo: malformed boot information")
	ErrTooManyRanges     = Error("bootinfo: memory map has more ranges than Info holds")
	ErrTooManyModules    = Error("bootinfo: more modules than Info holds")
	ErrCmdlineTooLong    = Error("bootinfo: command line longer than Info holds")
	ErrNoMemoryMap       = Error("bootinfo: boot loader passed neither a memory map nor memory sizes")
	ErrBadModule         = Error("bootinfo: module ends before it starts")
	ErrMisalignedInfo    = Error("bootinfo: Multiboot-2 information is not 8-byte aligned")
	ErrBadMemoryMapEntry = Error("bootinfo: memory map entry size too small")
)

// Boot loader magic values found in EAX at entry.
const (
	// MagicMultiboot1 is the Multiboot 0.6.96 loader magic (Multiboot spec §3.2, "Machine state").
	MagicMultiboot1 = 0x2BADB002
	// MagicMultiboot2 is the Multiboot2 loader magic (Multiboot2 spec §3.3, "I386 machine state").
	MagicMultiboot2 = 0x36D76289
)

// Capacities of Info. They are generous for real firmware; exceeding them is an error rather than
// silent truncation, except for the loader name, which is informational and truncated.
const (
	MaxMemRanges     = 128  // normalised memory map entries
	MaxRawRanges     = 128  // memory map entries as the loader passed them
	MaxCmdline       = 4096 // kernel command line bytes, without the terminating NUL
	MaxModules       = 32
	MaxModuleCmdline = 256
	MaxLoaderName    = 64
	MaxRSDP          = 36 // an ACPI 2.0+ RSDP; ACPI 6.5 §5.2.5.3 table 5.3
	MaxOccupied      = 2*MaxModules + 8
)

// MemType is the type of a memory map range. The values are those of both Multiboot
// specifications (Multiboot §3.3 "mmap_*"; Multiboot2 §3.6.8), which match the ACPI address
// range types 1-5 (ACPI 6.5 §15.3, table 15.1).
type MemType uint32

// Memory range types.
const (
	MemAvailable       MemType = 1
	MemReserved        MemType = 2
	MemACPIReclaimable MemType = 3
	MemACPINVS         MemType = 4
	MemBad             MemType = 5
)

// String names the type for console output.
func (t MemType) String() string {
	switch t {
	case MemAvailable:
		return "available"
	case MemReserved:
		return "reserved"
	case MemACPIReclaimable:
		return "ACPI reclaimable"
	case MemACPINVS:
		return "ACPI NVS"
	case MemBad:
		return "bad"
	}
	return "unknown"
}

// restrictiveness orders types for resolving overlaps: where ranges overlap, the type that
// forbids more uses wins, so memory is never handed out when any entry says it must not be.
func (t MemType) restrictiveness() int {
	switch t {
	case MemAvailable:
		return 0
	case MemACPIReclaimable:
		return 1
	case MemACPINVS:
		return 2
	case MemReserved:
		return 3
	case MemBad:
		return 4
	}
	return 3
}

// normalType maps types the OS does not know to Reserved, as ACPI 6.5 §15.3 requires for
// undefined and OEM-defined address range types.
func normalType(t uint32) MemType {
	if t >= uint32(MemAvailable) && t <= uint32(MemBad) {
		return MemType(t)
	}
	return MemReserved
}

// MemRange is the physical range [Start, End) of one type.
type MemRange struct {
	Start, End uint64
	Type       MemType
}

// PhysRange is the physical range [Start, End).
type PhysRange struct {
	Start, End uint64
}

// Module is one boot module: its bytes occupy [Start, End).
type Module struct {
	Start, End uint64
	Cmdline    [MaxModuleCmdline]byte
	CmdlineLen int
}

// CmdlineBytes returns the module's command line, without the terminating NUL.
func (m *Module) CmdlineBytes() []byte { return m.Cmdline[:m.CmdlineLen] }

// Info is everything the boot loader said, in caller-provided fixed-size storage. It holds no
// pointers, so it may live in a global.
type Info struct {
	// Protocol is 1 for Multiboot-1, 2 for Multiboot-2.
	Protocol int

	// MemLowerKiB and MemUpperKiB are the loader's basic memory sizes, valid when HasMemSizes:
	// KiB of conventional memory from 0, and KiB of upper memory from 1 MiB.
	MemLowerKiB, MemUpperKiB uint64
	HasMemSizes              bool

	// MemMap[:NMemMap] is sorted by Start, has no overlaps, and adjacent ranges of one type are
	// merged. Gaps are memory the loader did not describe: treat them as reserved.
	MemMap  [MaxMemRanges]MemRange
	NMemMap int

	Cmdline    [MaxCmdline]byte
	CmdlineLen int

	Modules  [MaxModules]Module
	NModules int

	LoaderName    [MaxLoaderName]byte
	LoaderNameLen int

	// RSDP[:RSDPLen] is the loader's copy of the ACPI RSDP (20 bytes for ACPI 1.0, 36 for 2.0+).
	RSDP    [MaxRSDP]byte
	RSDPLen int

	occupied  [MaxOccupied]PhysRange
	nOccupied int

	raw  [MaxRawRanges]MemRange
	nRaw int
}

// MemoryMap returns the normalised memory map.
func (in *Info) MemoryMap() []MemRange { return in.MemMap[:in.NMemMap] }

// CmdlineBytes returns the kernel command line without its terminating NUL.
func (in *Info) CmdlineBytes() []byte { return in.Cmdline[:in.CmdlineLen] }

// ModuleList returns the modules in the order the loader listed them.
func (in *Info) ModuleList() []Module { return in.Modules[:in.NModules] }

// LoaderNameBytes returns the boot loader's name, possibly truncated to MaxLoaderName bytes.
func (in *Info) LoaderNameBytes() []byte { return in.LoaderName[:in.LoaderNameLen] }

// RSDPBytes returns the loader's copy of the RSDP, or nil when it passed none.
func (in *Info) RSDPBytes() []byte {
	if in.RSDPLen == 0 {
		return nil
	}
	return in.RSDP[:in.RSDPLen]
}

// Occupied returns the physical ranges that the boot information structure, the strings it
// points to and the modules occupy. They are unordered and not page-aligned; a frame allocator
// must keep them out of use for as long as anything still reads them (the modules, typically,
// until the guests that use them are loaded).
func (in *Info) Occupied() []PhysRange { return in.occupied[:in.nOccupied] }

// Parse reads the boot information at infoAddr according to magic and fills out. On error, out
// holds whatever had been parsed and must not be used.
func Parse(mem Memory, magic uint32, infoAddr uint64, out *Info) error {
	*out = Info{}
	var err error
	switch magic {
	case MagicMultiboot1:
		out.Protocol = 1
		err = parseMultiboot1(mem, infoAddr, out)
	case MagicMultiboot2:
		out.Protocol = 2
		err = parseMultiboot2(mem, infoAddr, out)
	default:
		return ErrUnknownMagic
	}
	if err != nil {
		return err
	}
	if out.nRaw == 0 {
		if !out.HasMemSizes {
			return ErrNoMemoryMap
		}
		// Without a map the basic sizes describe two available ranges (Multiboot §3.3,
		// mem_lower/mem_upper): conventional memory and contiguous memory above 1 MiB.
		if err := out.addRaw(0, out.MemLowerKiB*1024, uint32(MemAvailable)); err != nil {
			return err
		}
		if err := out.addRaw(1<<20, out.MemUpperKiB*1024, uint32(MemAvailable)); err != nil {
			return err
		}
	}
	return out.normalise()
}

// read returns exactly n bytes at addr.
func read(mem Memory, addr, n uint64) ([]byte, error) {
	if addr+n < addr {
		return nil, ErrUnreadable
	}
	b, ok := mem.Bytes(addr, n)
	if !ok || uint64(len(b)) < n {
		return nil, ErrUnreadable
	}
	return b[:n], nil
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 { return uint32(le16(b)) | uint32(le16(b[2:]))<<16 }
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// addRaw records a loader memory map entry of length n at base, clamping one that wraps.
func (in *Info) addRaw(base, n uint64, typ uint32) error {
	if n == 0 {
		return nil
	}
	if in.nRaw == len(in.raw) {
		return ErrTooManyRanges
	}
	end := base + n
	if end < base {
		end = ^uint64(0)
	}
	in.raw[in.nRaw] = MemRange{Start: base, End: end, Type: normalType(typ)}
	in.nRaw++
	return nil
}

// occupy records a range the boot information uses. Capacity is sized for the worst case that
// Parse accepts, so running out is a bug, reported as malformed input rather than a panic.
func (in *Info) occupy(start, n uint64) error {
	if n == 0 {
		return nil
	}
	if in.nOccupied == len(in.occupied) {
		return ErrMalformed
	}
	end := start + n
	if end < start {
		end = ^uint64(0)
	}
	in.occupied[in.nOccupied] = PhysRange{Start: start, End: end}
	in.nOccupied++
	return nil
}

// copyString copies the NUL-terminated string in src (or all of src when it has no NUL) into
// dst. It returns the number of bytes copied and whether the whole string fit.
func copyString(dst, src []byte) (n int, fit bool) {
	for n < len(src) && src[n] != 0 {
		if n == len(dst) {
			return n, false
		}
		dst[n] = src[n]
		n++
	}
	return n, true
}

// readCString copies the NUL-terminated string at addr into dst, reading byte by byte so that a
// string near the end of memory is not over-read. It returns the bytes copied and the bytes the
// string occupies in memory including its NUL. With truncate false, a string longer than dst is
// ErrCmdlineTooLong; with truncate true, it is cut.
func readCString(mem Memory, addr uint64, dst []byte, truncate bool) (n int, span uint64, err error) {
	for {
		b, err := read(mem, addr+uint64(n), 1)
		if err != nil {
			return n, uint64(n), err
		}
		if b[0] == 0 {
			return n, uint64(n) + 1, nil
		}
		if n == len(dst) {
			if truncate {
				return n, uint64(n), nil
			}
			return n, uint64(n), ErrCmdlineTooLong
		}
		dst[n] = b[0]
		n++
	}
}

// normalise turns the raw loader map into MemMap: it sweeps the elementary intervals between
// all range boundaries, gives each the most restrictive type covering it, and merges neighbours
// of one type. It is quadratic in the entry count, which is bounded by MaxRawRanges, and needs
// no scratch memory beyond Info.
func (in *Info) normalise() error {
	raw := in.raw[:in.nRaw]
	if len(raw) == 0 {
		return nil
	}
	x := raw[0].Start
	for _, r := range raw[1:] {
		x = min(x, r.Start)
	}
	for {
		// y is the next boundary above x.
		y, found := uint64(0), false
		for _, r := range raw {
			for _, b := range [2]uint64{r.Start, r.End} {
				if b > x && (!found || b < y) {
					y, found = b, true
				}
			}
		}
		if !found {
			return nil
		}
		covered, typ := false, MemAvailable
		for _, r := range raw {
			if r.Start <= x && r.End > x {
				if !covered || r.Type.restrictiveness() > typ.restrictiveness() {
					typ = r.Type
				}
				covered = true
			}
		}
		if covered {
			if err := in.appendRange(MemRange{Start: x, End: y, Type: typ}); err != nil {
				return err
			}
		}
		x = y
	}
}

func (in *Info) appendRange(r MemRange) error {
	if n := in.NMemMap; n > 0 {
		last := &in.MemMap[n-1]
		if last.End == r.Start && last.Type == r.Type {
			last.End = r.End
			return nil
		}
	}
	if in.NMemMap == len(in.MemMap) {
		return ErrTooManyRanges
	}
	in.MemMap[in.NMemMap] = r
	in.NMemMap++
	return nil
}
