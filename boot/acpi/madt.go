package acpi

// MADT layout (§5.2.12, table 5.19): header, Local Interrupt Controller Address (u32), Flags
// (u32), then interrupt controller structures, each starting with Type (u8) and Length (u8).
const (
	madtLocalAPICAddr = 36
	madtFlags         = 40
	madtEntries       = 44

	// MADTPCATCompat (Flags bit 0): the system also has dual 8259 PICs, which must be masked
	// before the I/O APIC is used (§5.2.12 table 5.20).
	MADTPCATCompat = 1 << 0
)

// Interrupt controller structure types (§5.2.12 table 5.21) and their minimum lengths from
// their own tables. Entries may be longer in later revisions; the extra bytes are skipped.
const (
	madtTypeLocalAPIC         = 0  // §5.2.12.2, table 5.22
	madtTypeIOAPIC            = 1  // §5.2.12.3, table 5.24
	madtTypeOverride          = 2  // §5.2.12.5, table 5.25
	madtTypeNMISource         = 3  // §5.2.12.6, table 5.27
	madtTypeLocalAPICNMI      = 4  // §5.2.12.7, table 5.28
	madtTypeLocalAPICOverride = 5  // §5.2.12.8, table 5.29
	madtTypeLocalX2APIC       = 9  // §5.2.12.12, table 5.37
	madtTypeLocalX2APICNMI    = 10 // §5.2.12.13, table 5.38

	madtLenLocalAPIC         = 8
	madtLenIOAPIC            = 12
	madtLenOverride          = 10
	madtLenNMISource         = 8
	madtLenLocalAPICNMI      = 6
	madtLenLocalAPICOverride = 12
	madtLenLocalX2APIC       = 16
	madtLenLocalX2APICNMI    = 12
)

// Local APIC flags (§5.2.12.2 table 5.23), shared by x2APIC entries.
const (
	// CPUEnabled: the processor is ready for use.
	CPUEnabled = 1 << 0
	// CPUOnlineCapable: the processor is disabled now but may be enabled at run time (ACPI 6.3+).
	// Ignored when CPUEnabled is set.
	CPUOnlineCapable = 1 << 1
)

// MPS INTI flags of overrides and NMI structures (§5.2.12.5 table 5.26).
const (
	INTIPolarityMask   = 0x3
	INTIPolarityBus    = 0x0
	INTIPolarityHigh   = 0x1
	INTIPolarityLow    = 0x3
	INTITriggerMask    = 0xC
	INTITriggerBus     = 0x0
	INTITriggerEdge    = 0x4
	INTITriggerLevel   = 0xC
	AllProcessorsUID8  = 0xFF       // Local APIC NMI: applies to every processor
	AllProcessorsUID32 = 0xFFFFFFFF // Local x2APIC NMI: applies to every processor
	invalidXAPICID     = 0xFF       // the xAPIC broadcast ID; Linux ignores such entries too
	invalidX2APICID    = 0xFFFFFFFF
)

// Capacities of MADT.
const (
	MaxCPUs      = 1024
	MaxIOAPICs   = 32
	MaxOverrides = 48
	MaxNMIs      = 64
)

// CPU is one processor local APIC or x2APIC structure.
type CPU struct {
	APICID       uint32
	ProcessorUID uint32
	Flags        uint32
	// X2APIC says the entry was a Processor Local x2APIC structure.
	X2APIC bool
}

// Enabled reports whether the processor may be started now.
func (c CPU) Enabled() bool { return c.Flags&CPUEnabled != 0 }

// IOAPIC is one I/O APIC structure.
type IOAPIC struct {
	ID      uint8
	Addr    uint64
	GSIBase uint32
}

// Override is an interrupt source override: ISA IRQ Source is wired to GSI.
type Override struct {
	Bus, Source uint8
	GSI         uint32
	Flags       uint16
}

// NMIKind says which structure an NMI came from.
type NMIKind uint8

// NMI structure kinds.
const (
	NMISource      NMIKind = madtTypeNMISource
	LocalAPICNMI   NMIKind = madtTypeLocalAPICNMI
	LocalX2APICNMI NMIKind = madtTypeLocalX2APICNMI
)

// NMI is an NMI source (a GSI that is an NMI) or a local APIC NMI (a LINT pin of one or all
// processors).
type NMI struct {
	Kind  NMIKind
	Flags uint16
	// GSI is set for NMISource.
	GSI uint32
	// ProcessorUID and LINT are set for local NMIs; ProcessorUID is AllProcessorsUID8 or
	// AllProcessorsUID32 for all processors.
	ProcessorUID uint32
	LINT         uint8
}

// MADT is what the platform needs from the Multiple APIC Description Table.
type MADT struct {
	// LocalAPICAddr is the physical address of every CPU's local APIC, after any 64-bit
	// override (type 5).
	LocalAPICAddr uint64
	Flags         uint32

	// CPUs lists enabled and online-capable processors, each APIC ID once, in table order
	// (which by convention puts the boot processor first).
	CPUs [MaxCPUs]CPU
	NCPU int
	// CPUsDropped counts usable processors beyond MaxCPUs.
	CPUsDropped int

	IOAPICs   [MaxIOAPICs]IOAPIC
	NIOAPIC   int
	Overrides [MaxOverrides]Override
	NOverride int
	NMIs      [MaxNMIs]NMI
	NNMI      int
}

// CPUList returns the usable processors.
func (m *MADT) CPUList() []CPU { return m.CPUs[:m.NCPU] }

// IOAPICList returns the I/O APICs.
func (m *MADT) IOAPICList() []IOAPIC { return m.IOAPICs[:m.NIOAPIC] }

// OverrideList returns the interrupt source overrides.
func (m *MADT) OverrideList() []Override { return m.Overrides[:m.NOverride] }

// NMIList returns the NMI structures.
func (m *MADT) NMIList() []NMI { return m.NMIs[:m.NNMI] }

// ParseMADT parses a MADT (as returned by Load) into out. Unknown structure types are skipped by
// their Length; a structure shorter than its type requires, or running past the table, is
// ErrBadEntry.
func ParseMADT(table []byte, out *MADT) error {
	*out = MADT{}
	t, err := checkHeader(table, SigMADT)
	if err != nil {
		return err
	}
	if len(t) < madtEntries {
		return ErrBadLength
	}
	out.LocalAPICAddr = uint64(le32(t[madtLocalAPICAddr:]))
	out.Flags = le32(t[madtFlags:])
	for off := madtEntries; off < len(t); {
		if len(t)-off < 2 {
			return ErrBadEntry
		}
		typ, n := t[off], int(t[off+1])
		if n < 2 || n > len(t)-off {
			return ErrBadEntry
		}
		if err := out.entry(typ, t[off:off+n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func (m *MADT) entry(typ uint8, e []byte) error {
	need := 0
	switch typ {
	case madtTypeLocalAPIC:
		need = madtLenLocalAPIC
	case madtTypeIOAPIC:
		need = madtLenIOAPIC
	case madtTypeOverride:
		need = madtLenOverride
	case madtTypeNMISource:
		need = madtLenNMISource
	case madtTypeLocalAPICNMI:
		need = madtLenLocalAPICNMI
	case madtTypeLocalAPICOverride:
		need = madtLenLocalAPICOverride
	case madtTypeLocalX2APIC:
		need = madtLenLocalX2APIC
	case madtTypeLocalX2APICNMI:
		need = madtLenLocalX2APICNMI
	default:
		return nil
	}
	if len(e) < need {
		return ErrBadEntry
	}
	switch typ {
	case madtTypeLocalAPIC:
		if e[3] != invalidXAPICID {
			m.addCPU(CPU{APICID: uint32(e[3]), ProcessorUID: uint32(e[2]), Flags: le32(e[4:])})
		}
	case madtTypeLocalX2APIC:
		if id := le32(e[4:]); id != invalidX2APICID {
			m.addCPU(CPU{APICID: id, ProcessorUID: le32(e[12:]), Flags: le32(e[8:]), X2APIC: true})
		}
	case madtTypeIOAPIC:
		if m.NIOAPIC == len(m.IOAPICs) {
			return ErrTooManyEntries
		}
		m.IOAPICs[m.NIOAPIC] = IOAPIC{ID: e[2], Addr: uint64(le32(e[4:])), GSIBase: le32(e[8:])}
		m.NIOAPIC++
	case madtTypeOverride:
		if m.NOverride == len(m.Overrides) {
			return ErrTooManyEntries
		}
		m.Overrides[m.NOverride] = Override{Bus: e[2], Source: e[3], GSI: le32(e[4:]), Flags: le16(e[8:])}
		m.NOverride++
	case madtTypeNMISource:
		return m.addNMI(NMI{Kind: NMISource, Flags: le16(e[2:]), GSI: le32(e[4:])})
	case madtTypeLocalAPICNMI:
		return m.addNMI(NMI{Kind: LocalAPICNMI, ProcessorUID: uint32(e[2]), Flags: le16(e[3:]), LINT: e[5]})
	case madtTypeLocalX2APICNMI:
		return m.addNMI(NMI{Kind: LocalX2APICNMI, Flags: le16(e[2:]), ProcessorUID: le32(e[4:]), LINT: e[8]})
	case madtTypeLocalAPICOverride:
		// §5.2.12.8: when present, this replaces the 32-bit address in the header.
		m.LocalAPICAddr = le64(e[4:])
	}
	return nil
}

// addCPU keeps processors that can run (enabled, or online-capable) and each APIC ID once: a
// firmware listing a CPU twice (once as xAPIC, once as x2APIC) must not get it started twice.
func (m *MADT) addCPU(c CPU) {
	if c.Flags&(CPUEnabled|CPUOnlineCapable) == 0 {
		return
	}
	for _, o := range m.CPUs[:m.NCPU] {
		if o.APICID == c.APICID {
			return
		}
	}
	if m.NCPU == len(m.CPUs) {
		m.CPUsDropped++
		return
	}
	m.CPUs[m.NCPU] = c
	m.NCPU++
}

func (m *MADT) addNMI(n NMI) error {
	if m.NNMI == len(m.NMIs) {
		return ErrTooManyEntries
	}
	m.NMIs[m.NNMI] = n
	m.NNMI++
	return nil
}
