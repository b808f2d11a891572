package acpi

// RSDP layout (§5.2.5.3, table 5.3).
const (
	rsdpSignature   = "RSD PTR "
	rsdpV1Len       = 20 // the ACPI 1.0 structure, covered by Checksum
	rsdpV2Len       = 36 // the ACPI 2.0+ structure, covered by Extended Checksum
	rsdpRevision    = 15
	rsdpRSDTAddr    = 16
	rsdpLength      = 20
	rsdpXSDTAddr    = 24
	rsdpAlign       = 16 // the RSDP is on a 16-byte boundary when found by scanning (§5.2.5.1)
	biosEBDASegment = 0x40E
	ebdaScanLen     = 1024
	biosAreaStart   = 0xE0000
	biosAreaEnd     = 0x100000
	// The EBDA lies in conventional memory below the 640 KiB video hole; a segment pointing
	// elsewhere is garbage and is ignored, as ACPICA does for pointers at or below 0x400.
	ebdaMin = 0x400
	ebdaMax = 0xA0000
)

// RSDP is the validated Root System Description Pointer.
type RSDP struct {
	// Revision is 0 for ACPI 1.0 (no XSDT) and 2 or more for later versions.
	Revision uint8
	RSDTAddr uint64
	// XSDTAddr is zero when Revision < 2.
	XSDTAddr uint64
	// Addr is where the RSDP was found in memory, or zero when it came from a loader's copy.
	Addr uint64
}

// ParseRSDP validates an RSDP: signature, the checksum over the first 20 bytes and, for
// revision 2 or later, the length field and the extended checksum over 36 bytes (§5.2.5.3).
func ParseRSDP(b []byte) (RSDP, error) {
	if len(b) < rsdpV1Len || !sigIs(b, rsdpSignature) {
		return RSDP{}, ErrBadRSDP
	}
	if sum(b[:rsdpV1Len]) != 0 {
		return RSDP{}, ErrBadChecksum
	}
	r := RSDP{Revision: b[rsdpRevision], RSDTAddr: uint64(le32(b[rsdpRSDTAddr:]))}
	if r.Revision >= 2 {
		if len(b) < rsdpV2Len || le32(b[rsdpLength:]) < rsdpV2Len {
			return RSDP{}, ErrBadRSDP
		}
		if sum(b[:rsdpV2Len]) != 0 {
			return RSDP{}, ErrBadChecksum
		}
		r.XSDTAddr = le64(b[rsdpXSDTAddr:])
	}
	return r, nil
}

// FindRSDP returns the RSDP: from loaderCopy when the boot loader passed one (Multiboot-2 ACPI
// tags; the only way under UEFI, where the legacy areas hold none), else by scanning the first
// KiB of the EBDA and then the BIOS area 0xE0000-0xFFFFF on 16-byte boundaries (§5.2.5.1).
// A candidate with a bad checksum is skipped, as stray "RSD PTR " strings are not rare. A
// corrupt loader copy also falls back to scanning; its error is returned if the scan finds none.
func FindRSDP(mem Memory, loaderCopy []byte) (RSDP, error) {
	var copyErr error = ErrNoRSDP
	if len(loaderCopy) > 0 {
		r, err := ParseRSDP(loaderCopy)
		if err == nil {
			return r, nil
		}
		copyErr = err
	}
	if seg, err := read(mem, biosEBDASegment, 2); err == nil {
		ebda := uint64(le16(seg)) << 4
		if ebda > ebdaMin && ebda+ebdaScanLen <= ebdaMax {
			if r, ok := scanRSDP(mem, ebda, ebdaScanLen); ok {
				return r, nil
			}
		}
	}
	if r, ok := scanRSDP(mem, biosAreaStart, biosAreaEnd-biosAreaStart); ok {
		return r, nil
	}
	return RSDP{}, copyErr
}

func scanRSDP(mem Memory, start, n uint64) (RSDP, bool) {
	area, err := read(mem, start, n)
	if err != nil {
		return RSDP{}, false
	}
	for off := uint64(0); off+rsdpV1Len <= n; off += rsdpAlign {
		if !sigIs(area[off:], rsdpSignature) {
			continue
		}
		r, err := ParseRSDP(area[off:])
		if err == nil {
			r.Addr = start + off
			return r, true
		}
	}
	return RSDP{}, false
}
