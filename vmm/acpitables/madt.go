package acpitables

// MADT (§5.2.12 table 5.19): Local Interrupt Controller Address, Flags,
// then interrupt controller structures.
const (
	madtPCATCompat = 1 << 0 // dual 8259s present (table 5.20)

	madtLocalAPIC    = 0  // §5.2.12.2 table 5.22, 8 bytes
	madtIOAPIC       = 1  // §5.2.12.3 table 5.24, 12 bytes
	madtOverride     = 2  // §5.2.12.5 table 5.25, 10 bytes
	madtLocalAPICNMI = 4  // §5.2.12.7 table 5.28, 6 bytes
	madtLocalX2APIC  = 9  // §5.2.12.12 table 5.37, 16 bytes
	madtX2APICNMI    = 10 // §5.2.12.13 table 5.38, 12 bytes

	lapicEnabled = 1 << 0 // table 5.23

	// MPS INTI flags (table 5.26).
	intiConforms    = 0x0
	intiActiveHigh  = 0x1
	intiActiveLow   = 0x3
	intiEdge        = 0x4
	intiLevel       = 0xC
	allProcessors   = 0xFF
	allProcessors32 = 0xFFFFFFFF
	lint1           = 1
)

func buildMADT(cfg Config) []byte {
	b := append(le32(LocalAPICAddr), le32(madtPCATCompat)...)
	needX2 := false
	for uid, id := range cfg.APICIDs {
		if id < 0xFF {
			b = append(b, madtLocalAPIC, 8, byte(uid), byte(id))
			b = append(b, le32(lapicEnabled)...)
			continue
		}
		// IDs from 255 up exist only as x2APIC IDs (§5.2.12.12).
		needX2 = true
		b = append(b, madtLocalX2APIC, 16, 0, 0)
		b = append(b, le32(id)...)
		b = append(b, le32(lapicEnabled)...)
		b = append(b, le32(uint32(uid))...)
	}
	b = append(b, madtIOAPIC, 12, cfg.IOAPICID, 0)
	b = append(b, le32(IOAPICAddr)...)
	b = append(b, le32(0)...) // GSI base
	// The PIT's IRQ0 is wired to I/O APIC pin 2 on PC chipsets; the SCI
	// is level-triggered, active low (§5.2.12.5, the PC convention that
	// Linux expects).
	b = append(b, override(0, 2, intiConforms)...)
	b = append(b, override(SCIIRQ, SCIIRQ, intiActiveLow|intiLevel)...)
	// LINT1 of every processor is the NMI input, as the MP spec's virtual
	// wire wiring has it.
	b = append(b, madtLocalAPICNMI, 6, allProcessors, 0, 0, lint1)
	if needX2 {
		b = append(b, madtX2APICNMI, 12, 0, 0)
		b = append(b, le32(allProcessors32)...)
		b = append(b, lint1, 0, 0, 0)
	}
	return b
}

func override(irq uint8, gsi uint32, flags uint16) []byte {
	b := []byte{madtOverride, 10, 0, irq}
	b = append(b, le32(gsi)...)
	return append(b, le16(flags)...)
}

// MCFG (PCI Firmware Specification 3.2 §4.1.2): 8 reserved bytes, then
// one allocation per segment: base, segment, start and end bus, reserved.
func buildMCFG(p *PCI) []byte {
	b := make([]byte, 8)
	b = append(b, le64(p.ECAMBase)...)
	b = append(b, le16(0)...)
	b = append(b, p.BusFirst, p.BusLast)
	return append(b, le32(0)...)
}
