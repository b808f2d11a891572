package acpitables

import (
	"fmt"

	"hv/devices/acpipm"
	"hv/vmm/acpitables/aml"
)

// PCI root bridge constants.
const (
	// PCI configuration mechanism #1 ports (PCI Local Bus 3.0 §3.2.2.3.2).
	pciConfigPort = 0xCF8
	pciConfigLen  = 8
	// FirstPCIGSI is where the four PCI INTx lines start on the I/O APIC;
	// PCIGSIs lines 16-23 carry them.
	FirstPCIGSI = 16
	PCIGSIs     = 8
	// Legacy VGA memory, forwarded by a PC root bridge.
	vgaMemFirst = 0xA0000
	vgaMemLast  = 0xBFFFF
)

// PCIGSI is the I/O APIC input that INTx pin (0 = INTA .. 3 = INTD) of
// slot (device number) is routed to: the swizzle spreads the slots' INTA
// over all eight lines, as the PCI-to-PCI bridge specification's
// (device + pin) mod 4 rule does over four.
func PCIGSI(slot, pin int) uint32 {
	return uint32(FirstPCIGSI + (slot+pin)%PCIGSIs)
}

// COM1 resources (the PC's first serial port).
const (
	com1Port = 0x3F8
	com1Len  = 8
	com1IRQ  = 4
)

// staOK is _STA for present, enabled, shown in the UI, functioning
// (§6.3.7).
const staOK = 0x0F

func buildDSDT(cfg Config) ([]byte, error) {
	var b aml.Builder
	var sb [][]byte
	if cfg.PCI != nil {
		sb = append(sb, pci0(&b, cfg.PCI))
	}
	if cfg.COM1 {
		sb = append(sb, b.Device("COM1",
			b.Name("_HID", b.EISAID("PNP0501")),
			b.Name("_UID", b.Integer(1)),
			b.Name("_STA", b.Integer(staOK)),
			b.Name("_CRS", b.ResourceTemplate(
				b.IO(com1Port, com1Port, 1, com1Len),
				b.IRQNoFlags(com1IRQ),
			)),
		))
	}
	var out []byte
	// \_S5_: SLP_TYPa, SLP_TYPb and two reserved values (§7.4.2).
	out = append(out, b.Name(`\_S5_`, b.Package(
		b.Integer(acpipm.SleepTypeS5), b.Integer(acpipm.SleepTypeS5), b.Integer(0), b.Integer(0)))...)
	out = append(out, b.Scope(`\_SB_`, sb...)...)
	if err := b.Err(); err != nil {
		return nil, fmt.Errorf("acpitables: encode DSDT: %w", err)
	}
	return out, nil
}

func pci0(b *aml.Builder, p *PCI) []byte {
	crs := [][]byte{
		b.WordBusNumber(uint16(p.BusFirst), uint16(p.BusLast)),
		b.IO(pciConfigPort, pciConfigPort, 1, pciConfigLen),
		// The I/O space minus the configuration ports goes to PCI.
		b.WordIO(0x0000, pciConfigPort-1),
		b.WordIO(pciConfigPort+pciConfigLen, 0xFFFF),
		b.DWordMemory(vgaMemFirst, vgaMemLast, true),
		b.DWordMemory(p.MMIO32Base, p.MMIO32Base+p.MMIO32Size-1, false),
	}
	if p.MMIO64Size != 0 {
		crs = append(crs, b.QWordMemory(p.MMIO64Base, p.MMIO64Base+p.MMIO64Size-1, false))
	}
	var prt [][]byte
	for slot := 1; slot < 32; slot++ {
		for pin := range 4 {
			// {Address (device in 31:16, any function), Pin, Source
			// (0: a global interrupt), Source Index (the GSI)}, §6.2.13.
			prt = append(prt, b.Package(
				b.Integer(uint64(slot)<<16|0xFFFF), b.Integer(uint64(pin)),
				b.Integer(0), b.Integer(uint64(PCIGSI(slot, pin)))))
		}
	}
	// A PCI Express root bridge (one with ECAM) is PNP0A08 compatible with
	// PNP0A03 (PCI Firmware Specification 3.2 §4.1.5); a conventional one
	// is PNP0A03.
	terms := [][]byte{b.Name("_HID", b.EISAID("PNP0A03"))}
	if p.ECAMBase != 0 {
		terms = [][]byte{b.Name("_HID", b.EISAID("PNP0A08")), b.Name("_CID", b.EISAID("PNP0A03"))}
	}
	terms = append(terms,
		b.Name("_ADR", b.Integer(0)),
		b.Name("_UID", b.Integer(0)),
		b.Name("_SEG", b.Integer(0)),
		b.Name("_BBN", b.Integer(uint64(p.BusFirst))),
		b.Name("_CRS", b.ResourceTemplate(crs...)),
		b.Name("_PRT", b.Package(prt...)),
	)
	return b.Device("PCI0", terms...)
}
