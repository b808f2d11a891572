// Package acpitables builds the ACPI tables of a VM's PC platform and
// writes them into guest memory: RSDP (ACPI 2.0+), XSDT and RSDT, FADT
// (revision 6), FACS, MADT, an optional MCFG, and a DSDT whose AML is
// encoded by package aml (no iasl at build time). The tables describe the
// devices the VMM wires: local APICs, the I/O APIC, the ACPI PM block of
// devices/acpipm, the PCI root bridge with its windows and interrupt
// routing, and COM1.
//
// Boundary: it only builds bytes from a Config and writes them through a
// PhysWriter; it does not decide where devices live (the Config says) and
// touches no device. Section numbers refer to the ACPI Specification 6.5.
package acpitables

import (
	"errors"
	"fmt"

	"hv/devices/acpipm"
)

// PhysWriter is the part of guest memory the builder needs (vmm.Memory
// has it).
type PhysWriter interface {
	WritePhys(addr uint64, data []byte) error
}

// Defaults for a PC layout.
const (
	// RSDPAddr is in the BIOS read-only area scanned by OSPM (§5.2.5.1:
	// 0xE0000-0xFFFFF on a 16-byte boundary).
	RSDPAddr = 0xE0000
	// TablesAddr is right after the RSDP in the same area, which an e820
	// map reports reserved on a PC.
	TablesAddr = 0xE0040

	LocalAPICAddr = 0xFEE00000
	IOAPICAddr    = 0xFEC00000
	// SCIIRQ is the ISA IRQ of the SCI, as on PIIX4/ICH.
	SCIIRQ = 9
	// CenturyIndex is the CMOS index of the century byte (devices/rtc).
	CenturyIndex = 0x32
)

// PCI describes the root bridge PCI0.
type PCI struct {
	// BusFirst and BusLast bound the bus numbers below the bridge.
	BusFirst, BusLast uint8
	// MMIO32 is the 32-bit memory window [Base, Base+Size).
	MMIO32Base, MMIO32Size uint32
	// MMIO64 is an optional 64-bit window (Size 0: none).
	MMIO64Base, MMIO64Size uint64
	// ECAMBase is the PCIe enhanced configuration space; 0 means legacy
	// 0xCF8/0xCFC only and no MCFG. When set, PCI0 also gets _CID PNP0A08.
	ECAMBase uint64
}

// Config says what the tables describe.
type Config struct {
	// APICIDs lists the local APIC ID of every vCPU; the first is the
	// bootstrap processor. ACPI processor UIDs are the indices.
	APICIDs []uint32
	// IOAPICID is the I/O APIC's ID (it must differ from no APIC ID;
	// the I/O APIC ID space is separate on xAPIC systems, §5.2.12.3).
	IOAPICID uint8
	// PMBase is the port of the devices/acpipm block.
	PMBase uint16
	// PCI is the root bridge; nil for no PCI (no PCI0 device).
	PCI *PCI
	// COM1 adds the PNP0501 device at 0x3F8, IRQ 4.
	COM1 bool
	// NoMSI sets the IA-PC boot flag "MSI not supported".
	NoMSI bool
	// OEMID is the six-character OEM ID of every table ("HVGO  " when
	// empty).
	OEMID string
}

// Table signatures (§5.2.6 tables 5.5, 5.6).
const (
	sigXSDT = "XSDT"
	sigRSDT = "RSDT"
	sigFADT = "FACP"
	sigFACS = "FACS"
	sigMADT = "APIC"
	sigDSDT = "DSDT"
	sigMCFG = "MCFG"
)

// Revisions of the tables built (ACPI 6.5).
const (
	revXSDT      = 1 // §5.2.8
	revRSDT      = 1 // §5.2.7
	revFADT      = 6 // §5.2.9 table 5.9
	fadtMinor    = 5 // FADT Minor Version: ACPI 6.5
	revMADT      = 5 // §5.2.12 table 5.19
	revDSDT      = 2 // §5.2.11.1: revision 2+ means 64-bit AML integers
	revMCFG      = 1 // PCI Firmware Specification 3.x, MCFG
	rsdpRevision = 2 // §5.2.5.3: ACPI 2.0+ RSDP with XSDT
	facsVersion  = 2 // §5.2.10 table 5.14
)

// ErrConfig is wrapped by every error about an impossible Config.
var ErrConfig = errors.New("invalid ACPI table configuration")

// Image is the built tables: the RSDP and, separately, every table laid
// out back to back from Base.
type Image struct {
	RSDPAddr uint64
	RSDP     []byte
	Base     uint64
	Tables   []byte
	// Addr maps each signature to the table's address (for tests and
	// logs).
	Addr map[string]uint64
}

// Build lays the tables out with the RSDP at rsdpAddr and the tables from
// base (which must not overlap the RSDP's 36 bytes).
func Build(cfg Config, rsdpAddr, base uint64) (*Image, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if rsdpAddr%16 != 0 {
		return nil, fmt.Errorf("acpitables: RSDP address %#x not 16-byte aligned: %w", rsdpAddr, ErrConfig)
	}
	oem := cfg.OEMID
	if oem == "" {
		oem = "HVGO"
	}
	img := &Image{RSDPAddr: rsdpAddr, Base: base, Addr: map[string]uint64{}}
	// place appends a table, aligned, and records its address.
	place := func(sig string, t []byte, align uint64) uint64 {
		for (base+uint64(len(img.Tables)))%align != 0 {
			img.Tables = append(img.Tables, 0)
		}
		addr := base + uint64(len(img.Tables))
		img.Tables = append(img.Tables, t...)
		img.Addr[sig] = addr
		return addr
	}
	// FACS must be 64-byte aligned (§5.2.10).
	facs := place(sigFACS, buildFACS(), 64)
	dsdtAML, err := buildDSDT(cfg)
	if err != nil {
		return nil, err
	}
	dsdt := place(sigDSDT, finish(sigDSDT, revDSDT, oem, dsdtAML), 8)
	fadt := place(sigFADT, finish(sigFADT, revFADT, oem, buildFADT(cfg, facs, dsdt)), 8)
	madt := place(sigMADT, finish(sigMADT, revMADT, oem, buildMADT(cfg)), 8)
	entries := []uint64{fadt, madt}
	if cfg.PCI != nil && cfg.PCI.ECAMBase != 0 {
		entries = append(entries, place(sigMCFG, finish(sigMCFG, revMCFG, oem, buildMCFG(cfg.PCI)), 8))
	}
	var xsdtBody, rsdtBody []byte
	for _, a := range entries {
		xsdtBody = append(xsdtBody, le64(a)...)
		rsdtBody = append(rsdtBody, le32(uint32(a))...)
	}
	xsdt := place(sigXSDT, finish(sigXSDT, revXSDT, oem, xsdtBody), 8)
	rsdt := place(sigRSDT, finish(sigRSDT, revRSDT, oem, rsdtBody), 8)
	if end := base + uint64(len(img.Tables)); end > 1<<32 {
		return nil, fmt.Errorf("acpitables: tables end at %#x, beyond the 32-bit pointers of FADT and RSDT: %w", end, ErrConfig)
	}
	if rsdpAddr < base+uint64(len(img.Tables)) && base < rsdpAddr+rsdpLen {
		return nil, fmt.Errorf("acpitables: RSDP at %#x overlaps the tables at %#x: %w", rsdpAddr, base, ErrConfig)
	}
	img.RSDP = buildRSDP(oem, rsdt, xsdt)
	return img, nil
}

// Write puts the RSDP and the tables into guest memory.
func (img *Image) Write(mem PhysWriter) error {
	if err := mem.WritePhys(img.RSDPAddr, img.RSDP); err != nil {
		return fmt.Errorf("acpitables: write RSDP at %#x: %w", img.RSDPAddr, err)
	}
	if err := mem.WritePhys(img.Base, img.Tables); err != nil {
		return fmt.Errorf("acpitables: write %d bytes of tables at %#x: %w", len(img.Tables), img.Base, err)
	}
	return nil
}

func (cfg *Config) check() error {
	if len(cfg.APICIDs) == 0 {
		return fmt.Errorf("acpitables: no processors: %w", ErrConfig)
	}
	if len(cfg.APICIDs) > 255 {
		// Processor UIDs of xAPIC MADT entries are one byte.
		return fmt.Errorf("acpitables: %d processors exceed 255: %w", len(cfg.APICIDs), ErrConfig)
	}
	seen := map[uint32]bool{}
	for _, id := range cfg.APICIDs {
		if seen[id] || id == 0xFF {
			return fmt.Errorf("acpitables: APIC ID %#x duplicated or the broadcast ID: %w", id, ErrConfig)
		}
		seen[id] = true
	}
	if cfg.IOAPICID > 0xF {
		return fmt.Errorf("acpitables: I/O APIC ID %d exceeds 4 bits: %w", cfg.IOAPICID, ErrConfig)
	}
	if cfg.PMBase == 0 || uint32(cfg.PMBase)+acpipm.BlockSize > 0x10000 {
		return fmt.Errorf("acpitables: PM block at port %#x: %w", cfg.PMBase, ErrConfig)
	}
	if p := cfg.PCI; p != nil {
		if p.BusLast < p.BusFirst || p.MMIO32Size == 0 || uint64(p.MMIO32Base)+uint64(p.MMIO32Size) > 1<<32 ||
			(p.MMIO64Size != 0 && p.MMIO64Base+p.MMIO64Size < p.MMIO64Base) {
			return fmt.Errorf("acpitables: PCI windows %+v: %w", *p, ErrConfig)
		}
	}
	if len(cfg.OEMID) > 6 {
		return fmt.Errorf("acpitables: OEM ID %q longer than 6: %w", cfg.OEMID, ErrConfig)
	}
	return nil
}

func le16(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
func le32(v uint32) []byte { return append(le16(uint16(v)), le16(uint16(v>>16))...) }
func le64(v uint64) []byte { return append(le32(uint32(v)), le32(uint32(v>>32))...) }

func checksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

func pad(s string, n int) []byte {
	out := []byte(s)
	for len(out) < n {
		out = append(out, ' ')
	}
	return out[:n]
}

// Header layout (§5.2.6 table 5.4).
const (
	headerSize     = 36
	headerChecksum = 9
	creatorID      = "HVGO"
	creatorRev     = 1
	oemRevision    = 1
)

// finish prepends the standard header to body and sets the checksum.
func finish(sig string, rev uint8, oem string, body []byte) []byte {
	t := make([]byte, 0, headerSize+len(body))
	t = append(t, sig...)
	t = append(t, le32(uint32(headerSize+len(body)))...)
	t = append(t, rev, 0)
	t = append(t, pad(oem, 6)...)
	t = append(t, pad("HV"+sig, 8)...) // OEM Table ID
	t = append(t, le32(oemRevision)...)
	t = append(t, creatorID...)
	t = append(t, le32(creatorRev)...)
	t = append(t, body...)
	t[headerChecksum] = checksum(t)
	return t
}

// RSDP layout (§5.2.5.3 table 5.3).
const (
	rsdpLen         = 36
	rsdpV1Len       = 20
	rsdpChecksum    = 8
	rsdpExtChecksum = 32
)

func buildRSDP(oem string, rsdt, xsdt uint64) []byte {
	r := make([]byte, 0, rsdpLen)
	r = append(r, "RSD PTR "...)
	r = append(r, 0)
	r = append(r, pad(oem, 6)...)
	r = append(r, rsdpRevision)
	r = append(r, le32(uint32(rsdt))...)
	r = append(r, le32(rsdpLen)...)
	r = append(r, le64(xsdt)...)
	r = append(r, 0, 0, 0, 0) // extended checksum, reserved
	r[rsdpChecksum] = checksum(r[:rsdpV1Len])
	r[rsdpExtChecksum] = checksum(r)
	return r
}

// FACS (§5.2.10 table 5.14): 64 bytes, no firmware waking vector (the
// platform offers no sleep state that would use it), no global lock user.
func buildFACS() []byte {
	f := make([]byte, 64)
	copy(f, sigFACS)
	copy(f[4:], le32(64))
	f[32] = facsVersion
	return f
}
