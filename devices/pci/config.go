// Package pci models conventional PCI for a guest: the configuration space
// of a type 0 function (identification, command/status, BARs with the
// sizing protocol, capabilities list, interrupt line and pin) and a host
// bridge that answers configuration mechanism #1 on ports 0xCF8/0xCFC for
// bus 0.
//
// Boundary: pci knows nothing about what a function does. A device model
// (virtio, ...) creates a Function with its header, BARs and capabilities,
// gives it the bus.Device that serves each BAR, and registers it at a slot
// of a Host. When the guest moves a BAR or toggles I/O or memory decode, the
// Host re-registers the BAR's handler on the guest's address space, so the
// VMM never tracks BARs itself. Interrupts are INTx, level-triggered, on an
// injected devices.IRQLine.
package pci

// Configuration-space register offsets of a type 0 header, PCI Local Bus
// Specification 3.0, section 6.1 (figure 6-1).
const (
	RegVendorID      = 0x00
	RegDeviceID      = 0x02
	RegCommand       = 0x04
	RegStatus        = 0x06
	RegRevisionID    = 0x08
	RegClassCode     = 0x09 // 3 bytes: programming interface, sub-class, base class
	RegCacheLineSize = 0x0C
	RegLatencyTimer  = 0x0D
	RegHeaderType    = 0x0E
	RegBIST          = 0x0F
	RegBAR0          = 0x10
	RegCardbusCIS    = 0x28
	RegSubsystemVID  = 0x2C
	RegSubsystemID   = 0x2E
	RegExpansionROM  = 0x30
	RegCapPointer    = 0x34
	RegInterruptLine = 0x3C
	RegInterruptPin  = 0x3D
	RegMinGnt        = 0x3E
	RegMaxLat        = 0x3F

	// ConfigSize is the size of a conventional function's configuration
	// space; mechanism #1 addresses 64 dwords of it (section 3.2.2.3.2).
	ConfigSize = 256
	// CapabilitiesStart is the first offset after the predefined header,
	// where capability structures live (section 6.7).
	CapabilitiesStart = 0x40
	// NumBARs is the number of base address registers in a type 0 header.
	NumBARs = 6
)

// Command register bits, PCI 3.0 section 6.2.2.
const (
	CommandIO           = 1 << 0
	CommandMemory       = 1 << 1
	CommandBusMaster    = 1 << 2
	CommandParityErr    = 1 << 6
	CommandSERR         = 1 << 8
	CommandIntxDisable  = 1 << 10
	commandWritableMask = CommandIO | CommandMemory | CommandBusMaster | CommandParityErr | CommandSERR | CommandIntxDisable
)

// Status register bits, PCI 3.0 section 6.2.3.
const (
	StatusInterrupt    = 1 << 3
	StatusCapList      = 1 << 4
	StatusMasterParity = 1 << 8
	StatusSigTargetAb  = 1 << 11
	StatusRcvTargetAb  = 1 << 12
	StatusRcvMasterAb  = 1 << 13
	StatusSigSystemErr = 1 << 14
	StatusDetParityErr = 1 << 15
	// statusW1C are the error bits software clears by writing 1.
	statusW1C = StatusMasterParity | StatusSigTargetAb | StatusRcvTargetAb | StatusRcvMasterAb | StatusSigSystemErr | StatusDetParityErr
)

// BAR low bits, PCI 3.0 section 6.2.5.1.
const (
	barIOSpace      = 1 << 0 // bit 0: 1 for an I/O BAR
	barMemType64    = 2 << 1 // bits 2:1 = 10b: 64-bit memory BAR
	barPrefetchable = 1 << 3
	barIOFlagBits   = 0x3
	barMemFlagBits  = 0xF
)

// Capability IDs, PCI 3.0 appendix H.
const (
	CapIDVendorSpecific = 0x09
)

// HeaderTypeMultiFunction is bit 7 of the header type register.
const HeaderTypeMultiFunction = 0x80

// InterruptPin values, PCI 3.0 section 6.2.4.
const (
	PinNone = 0
	PinA    = 1
	PinB    = 2
	PinC    = 3
	PinD    = 4
)
