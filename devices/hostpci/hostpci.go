// Package hostpci reads the host machine's PCI configuration space for the
// hypervisor's own drivers: configuration mechanism #1, enumeration of every
// bus, BAR decoding and sizing, and the capability list.
//
// Boundary: it knows PCI configuration space (PCI Local Bus Specification
// 3.0), not any device behind it, and reaches the hardware only through
// the PortIO or ConfigSpace interface it is given, so it is tested on a
// fake. Guest-facing PCI (the configuration space VMs see) is devices/pci.
package hostpci

import (
	"fmt"
	"sync"
)

// Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): a dword address register
// and a dword data window in I/O space.
const (
	ConfigAddressPort = 0xCF8
	ConfigDataPort    = 0xCFC
	configEnable      = 1 << 31
)

// Type 0 header offsets and fields (PCI 3.0 §6.1, §6.2).
const (
	RegVendorID    = 0x00 // vendor ID (low 16), device ID (high 16)
	RegCommand     = 0x04 // command (low 16), status (high 16)
	RegClass       = 0x08 // revision (7:0), class code (31:8)
	RegHeaderType  = 0x0C // header type is byte 2 (bits 23:16)
	RegBAR0        = 0x10
	RegCapPointer  = 0x34
	NumBARs        = 6
	headerMultiFn  = 0x80 // header type bit 7: a multi-function device
	headerTypeMask = 0x7F
	statusCapList  = 1 << 4 // status bit 4: the capability list exists (§6.2.3)

	CommandIO          = 1 << 0
	CommandMemory      = 1 << 1
	CommandBusMaster   = 1 << 2
	CommandIntxDisable = 1 << 10

	barIO        = 1 << 0 // BAR bit 0: I/O space (§6.2.5.1)
	barType64    = 2 << 1 // memory BAR bits 2:1 = 10b: 64-bit
	barTypeMask  = 3 << 1
	barPrefetch  = 1 << 3
	barMemMask   = ^uint64(0xF)
	barIOMask    = ^uint64(0x3)
	capMinOffset = 0x40 // capabilities live after the header
	maxCaps      = 48   // (256-64)/4: a longer list loops
)

// Address names a function: bus, device (0-31), function (0-7).
type Address struct {
	Bus, Device, Function uint8
}

func (a Address) String() string { return fmt.Sprintf("%02x:%02x.%d", a.Bus, a.Device, a.Function) }

// ConfigSpace reads and writes dwords of a function's configuration space
// (off is dword aligned and below 256).
type ConfigSpace interface {
	Read32(a Address, off uint8) uint32
	Write32(a Address, off uint8, v uint32)
}

// PortIO is 32-bit port I/O on the host.
type PortIO interface {
	InL(port uint16) uint32
	OutL(port uint16, v uint32)
}

// Mech1 is configuration mechanism #1 over port I/O. The address and data
// accesses are a pair, so a mutex keeps concurrent users apart.
type Mech1 struct {
	mu sync.Mutex
	io PortIO
}

// NewMech1 returns configuration access through io.
func NewMech1(io PortIO) *Mech1 { return &Mech1{io: io} }

func mech1Address(a Address, off uint8) uint32 {
	return configEnable | uint32(a.Bus)<<16 | uint32(a.Device&31)<<11 | uint32(a.Function&7)<<8 | uint32(off&0xFC)
}

// Read32 implements ConfigSpace.
func (m *Mech1) Read32(a Address, off uint8) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.io.OutL(ConfigAddressPort, mech1Address(a, off))
	return m.io.InL(ConfigDataPort)
}

// Write32 implements ConfigSpace.
func (m *Mech1) Write32(a Address, off uint8, v uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.io.OutL(ConfigAddressPort, mech1Address(a, off))
	m.io.OutL(ConfigDataPort, v)
}

// Function is one function found by Scan.
type Function struct {
	Addr             Address
	Vendor, Device   uint16
	Class            uint32 // base class, subclass, programming interface (24 bits)
	Revision         uint8
	HeaderType       uint8 // without the multi-function bit
	CapabilitiesList bool  // status says there is a capability list
}

// Scan lists every function on buses 0-255, in address order. An absent
// function reads vendor 0xFFFF; functions 1-7 are looked at only when
// function 0 says the device is multi-function.
func Scan(cs ConfigSpace) []Function {
	var fns []Function
	for bus := 0; bus < 256; bus++ {
		for dev := uint8(0); dev < 32; dev++ {
			for fn := uint8(0); fn < 8; fn++ {
				a := Address{uint8(bus), dev, fn}
				id := cs.Read32(a, RegVendorID)
				if uint16(id) == 0xFFFF || uint16(id) == 0 {
					if fn == 0 {
						break
					}
					continue
				}
				cls := cs.Read32(a, RegClass)
				ht := uint8(cs.Read32(a, RegHeaderType) >> 16)
				st := uint16(cs.Read32(a, RegCommand) >> 16)
				fns = append(fns, Function{Addr: a, Vendor: uint16(id), Device: uint16(id >> 16),
					Class: cls >> 8, Revision: uint8(cls), HeaderType: ht & headerTypeMask,
					CapabilitiesList: st&statusCapList != 0})
				if fn == 0 && ht&headerMultiFn == 0 {
					break
				}
			}
		}
	}
	return fns
}

// BAR is a decoded base address register of a type 0 function.
type BAR struct {
	Index      int
	Base, Size uint64 // Size 0: the BAR is not implemented
	IO         bool
	Is64       bool // a 64-bit memory BAR (it also uses the next register)
	Prefetch   bool
}

// ReadBARs decodes and sizes the six BARs of a type 0 function (PCI 3.0
// §6.2.5.1): for each, write all ones, read the size mask back and restore
// the value, with I/O and memory decode off meanwhile so that the probe
// value never decodes. The command register is restored at the end.
func ReadBARs(cs ConfigSpace, a Address) ([NumBARs]BAR, error) {
	var bars [NumBARs]BAR
	if ht := uint8(cs.Read32(a, RegHeaderType)>>16) & headerTypeMask; ht != 0 {
		return bars, fmt.Errorf("hostpci: %s: header type %d has no type 0 BARs", a, ht)
	}
	cmd := cs.Read32(a, RegCommand)
	// Write the command word only: the status half is write-one-to-clear.
	cs.Write32(a, RegCommand, cmd&0xFFFF&^(CommandIO|CommandMemory))
	defer cs.Write32(a, RegCommand, cmd&0xFFFF)
	for i := 0; i < NumBARs; i++ {
		off := uint8(RegBAR0 + 4*i)
		lo := cs.Read32(a, off)
		cs.Write32(a, off, 0xFFFFFFFF)
		mlo := cs.Read32(a, off)
		cs.Write32(a, off, lo)
		b := BAR{Index: i}
		switch {
		case lo&barIO != 0:
			b.IO = true
			b.Base = uint64(lo) & barIOMask & 0xFFFFFFFF
			mask := uint64(mlo) & barIOMask & 0xFFFF
			if mask != 0 {
				b.Size = (^mask + 1) & 0xFFFF
			}
		case lo&barTypeMask == barType64:
			if i == NumBARs-1 {
				return bars, fmt.Errorf("hostpci: %s: BAR %d says 64-bit but is the last BAR", a, i)
			}
			hi := cs.Read32(a, off+4)
			cs.Write32(a, off+4, 0xFFFFFFFF)
			mhi := cs.Read32(a, off+4)
			cs.Write32(a, off+4, hi)
			b.Is64, b.Prefetch = true, lo&barPrefetch != 0
			b.Base = (uint64(hi)<<32 | uint64(lo)) & barMemMask
			mask := (uint64(mhi)<<32 | uint64(mlo)) & barMemMask
			if mask != 0 {
				b.Size = ^mask + 1
			}
			bars[i] = b
			i++
			bars[i] = BAR{Index: i} // the upper half
			continue
		default:
			b.Prefetch = lo&barPrefetch != 0
			b.Base = uint64(lo) & barMemMask & 0xFFFFFFFF
			mask := uint64(mlo) & barMemMask & 0xFFFFFFFF
			if mask != 0 {
				b.Size = (^mask + 1) & 0xFFFFFFFF
			}
		}
		if b.Size&(b.Size-1) != 0 || b.Base&(b.Size-1) != 0 {
			return bars, fmt.Errorf("hostpci: %s: BAR %d base %#x size %#x: not a naturally aligned power of two", a, i, b.Base, b.Size)
		}
		bars[i] = b
	}
	return bars, nil
}

// Capability is one entry of the capability list.
type Capability struct {
	ID     uint8
	Offset uint8 // of the capability's first byte in configuration space
}

// Capabilities walks the function's capability list (PCI 3.0 §6.7). The
// list is the device's word: an offset into the header, a misaligned one
// or a list longer than the space can hold (a loop) is an error.
func Capabilities(cs ConfigSpace, a Address) ([]Capability, error) {
	if uint16(cs.Read32(a, RegCommand)>>16)&statusCapList == 0 {
		return nil, nil
	}
	var caps []Capability
	off := uint8(cs.Read32(a, RegCapPointer)) &^ 3
	for off != 0 {
		if off < capMinOffset {
			return nil, fmt.Errorf("hostpci: %s: capability at %#x inside the header", a, off)
		}
		if len(caps) == maxCaps {
			return nil, fmt.Errorf("hostpci: %s: capability list longer than %d entries (a loop?)", a, maxCaps)
		}
		v := cs.Read32(a, off)
		caps = append(caps, Capability{ID: uint8(v), Offset: off})
		off = uint8(v>>8) &^ 3
	}
	return caps, nil
}

// ReadBytes reads n bytes of configuration space from off (both within the
// 256-byte space), dword by dword.
func ReadBytes(cs ConfigSpace, a Address, off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > 256 {
		return nil, fmt.Errorf("hostpci: %s: read %d bytes at %#x: outside configuration space", a, n, off)
	}
	out := make([]byte, 0, n+4)
	for d := off &^ 3; d < off+n; d += 4 {
		v := cs.Read32(a, uint8(d))
		out = append(out, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	s := off & 3
	return out[s : s+n], nil
}

// SetCommand sets bits in the function's command register (leaving the
// status half untouched: its error bits are write-one-to-clear).
func SetCommand(cs ConfigSpace, a Address, bits uint16) {
	cmd := cs.Read32(a, RegCommand) & 0xFFFF
	cs.Write32(a, RegCommand, cmd|uint32(bits))
}
