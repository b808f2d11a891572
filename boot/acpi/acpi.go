// Package acpi finds and validates the ACPI tables that the platform needs to start: the RSDP,
// the RSDT or XSDT, the MADT (CPUs, I/O APICs, interrupt overrides, NMIs), the FADT (PM1 blocks,
// PM timer, reset register, DSDT address) and the \_S5_ sleep type values in the DSDT.
//
// Boundary: it reads firmware tables through Memory and returns plain values; it never writes
// memory or touches hardware, and it is not an AML interpreter: the DSDT is only scanned for
// the one static \_S5_ package that power-off needs.
//
// Firmware tables are untrusted input. Every length and offset is checked against the table
// before use; a malformed table yields an error, never a panic. Like the rest of early boot/,
// it runs before the Go runtime is initialised: it never allocates and keeps no package state.
//
// Section numbers refer to the ACPI Specification, version 6.5.
package acpi

// Memory is a read view of physical memory. Bytes returns the n bytes at physical address addr,
// or false when any of them lies outside the view.
type Memory interface {
	Bytes(addr, n uint64) ([]byte, bool)
}

// Error is a constant error; converting a constant to error does not allocate.
type Error string

func (e Error) Error() string { return string(e) }

// Errors. Callers branch on them with ==.
const (
	ErrNoRSDP         = Error("acpi: no RSDP found")
	ErrBadRSDP        = Error("acpi: malformed RSDP")
	ErrBadChecksum    = Error("acpi: bad checksum")
	ErrUnreadable     = Error("acpi: table lies outside physical memory")
	ErrBadLength      = Error("acpi: table length out of range")
	ErrBadSignature   = Error("acpi: unexpected table signature")
	ErrNoRoot         = Error("acpi: RSDP names neither an RSDT nor an XSDT")
	ErrBadEntry       = Error("acpi: malformed MADT entry")
	ErrTooManyEntries = Error("acpi: more MADT entries of one kind than the result holds")
	ErrNoS5           = Error("acpi: no static \\_S5_ package in the table")
	ErrBadS5          = Error("acpi: \\_S5_ sleep type out of range")
)

// Table header layout (§5.2.6, table 5.4): Signature, Length, Revision, Checksum, OEMID,
// OEM Table ID, OEM Revision, Creator ID, Creator Revision.
const (
	HeaderSize     = 36
	headerLength   = 4
	headerRevision = 8

	// MaxTableLength bounds the Length a table may claim. DSDTs of large servers reach a few
	// hundred KiB; anything near this bound is corrupt, and the bound keeps a hostile Length
	// from making us checksum gigabytes.
	MaxTableLength = 16 << 20
)

// Table signatures (§5.2.8 table 5.5 and §5.2.6 table 5.6).
const (
	SigRSDT = "RSDT"
	SigXSDT = "XSDT"
	SigMADT = "APIC"
	SigFADT = "FACP"
	SigDSDT = "DSDT"
	SigSSDT = "SSDT"
	SigHPET = "HPET"
	SigMCFG = "MCFG"
)

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 { return uint32(le16(b)) | uint32(le16(b[2:]))<<16 }
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// sum is the 8-bit sum ACPI checksums are defined over: a valid structure sums to zero.
func sum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}

func sigIs(b []byte, sig string) bool {
	if len(b) < len(sig) {
		return false
	}
	for i := 0; i < len(sig); i++ {
		if b[i] != sig[i] {
			return false
		}
	}
	return true
}

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

// Load returns the bytes of the table at addr after checking its length, its checksum and,
// when sig is not empty, its signature. The slice is a view of physical memory.
func Load(mem Memory, addr uint64, sig string) ([]byte, error) {
	hdr, err := read(mem, addr, HeaderSize)
	if err != nil {
		return nil, err
	}
	if sig != "" && !sigIs(hdr, sig) {
		return nil, ErrBadSignature
	}
	n := uint64(le32(hdr[headerLength:]))
	if n < HeaderSize || n > MaxTableLength {
		return nil, ErrBadLength
	}
	b, err := read(mem, addr, n)
	if err != nil {
		return nil, err
	}
	if sum(b) != 0 {
		return nil, ErrBadChecksum
	}
	return b, nil
}

// checkHeader validates a table already in hand, as the parsers receive it: signature, and a
// Length field that fits the slice. It returns the table cut to Length.
func checkHeader(b []byte, sig string) ([]byte, error) {
	if len(b) < HeaderSize {
		return nil, ErrBadLength
	}
	if !sigIs(b, sig) {
		return nil, ErrBadSignature
	}
	n := uint64(le32(b[headerLength:]))
	if n < HeaderSize || n > uint64(len(b)) {
		return nil, ErrBadLength
	}
	return b[:n], nil
}
