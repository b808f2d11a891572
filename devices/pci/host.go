package pci

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"hv/devices/bus"
)

// Configuration mechanism #1 (PCI 3.0, section 3.2.2.3.2): a dword address
// register at 0xCF8 and a dword data window at 0xCFC-0xCFF.
const (
	ConfigAddressPort = 0xCF8
	ConfigDataPort    = 0xCFC

	configAddrEnable = 1 << 31
	// configAddrMask keeps enable, bus, device, function and dword register
	// number; bits 30:24 are reserved (read 0) and bits 1:0 read 0 on the
	// PIIX/i440FX host bridge.
	configAddrMask = 0x80FFFFFC

	// NumSlots is the number of device numbers on a bus (5-bit field).
	NumSlots = 32
	// NumFunctions is the number of functions per device (3-bit field).
	NumFunctions = 8
)

// Identity of the host bridge at 00:00.0: the Intel 82441FX PMC (i440FX),
// class 06/00 "host bridge" (PCI Code and ID Assignment Spec, class 06h).
// Linux's conf1 sanity check looks for a host bridge on bus 0 before it
// trusts mechanism #1.
const (
	VendorIntel         = 0x8086
	DeviceI440FX        = 0x1237
	ClassHostBridge     = 0x060000
	hostBridgeRevision  = 0x02
	hostBridgeSlotIndex = 0
)

// Host is the host bridge: it owns bus 0, decodes configuration mechanism
// #1 and places functions' BARs on the guest address space.
type Host struct {
	space AddressSpace

	mu     sync.Mutex
	addr   uint32
	funcs  [NumSlots][NumFunctions]*Function
	bridge *Function
}

// NewHost returns a host bridge whose functions' BARs are registered on
// space (normally the VM's *bus.Bus). Slot 0 holds the bridge itself.
func NewHost(space AddressSpace) *Host {
	h := &Host{space: space}
	br, err := NewFunction("pci-host", Header{
		VendorID: VendorIntel, DeviceID: DeviceI440FX, RevisionID: hostBridgeRevision,
		ClassCode: ClassHostBridge,
	}, [NumBARs]BAR{})
	if err != nil {
		panic(err) // the bridge's description is a constant
	}
	h.bridge = br
	h.funcs[hostBridgeSlotIndex][0] = br
	br.attach(space)
	return h
}

// Install registers the address and data ports on b.
func (h *Host) Install(b *bus.Bus) error {
	if err := b.RegisterPorts(ConfigAddressPort, 4, "pci-config-address", addrPort{h}); err != nil {
		return fmt.Errorf("pci: install: %w", err)
	}
	if err := b.RegisterPorts(ConfigDataPort, 4, "pci-config-data", dataPort{h}); err != nil {
		return fmt.Errorf("pci: install: %w", err)
	}
	return nil
}

// Register places f at bus 0, slot, function fn and starts decoding its
// BARs as the guest programs them.
func (h *Host) Register(slot, fn int, f *Function) error {
	if slot < 0 || slot >= NumSlots || fn < 0 || fn >= NumFunctions || f == nil {
		return fmt.Errorf("pci: register at %02x.%d: %w", slot, fn, ErrBadLocation)
	}
	h.mu.Lock()
	if h.funcs[slot][fn] != nil {
		h.mu.Unlock()
		return fmt.Errorf("pci: register %s at %02x.%d: %w", f.Name(), slot, fn, ErrSlotInUse)
	}
	h.funcs[slot][fn] = f
	h.mu.Unlock()
	f.attach(h.space)
	return nil
}

// Function returns the function at slot.fn on bus 0, or nil.
func (h *Host) Function(slot, fn int) *Function {
	if slot < 0 || slot >= NumSlots || fn < 0 || fn >= NumFunctions {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.funcs[slot][fn]
}

// Bridge returns the host bridge's own function at 00:00.0.
func (h *Host) Bridge() *Function { return h.bridge }

// target decodes the address register: the function addressed and the
// dword register offset, or nil when the access goes nowhere (enable bit
// clear, a bus other than 0, an empty slot). A function other than 0 of a
// device that is not multi-function is absent (PCI 3.0, 6.2.1).
func (h *Host) target() (*Function, int) {
	a := h.addr
	if a&configAddrEnable == 0 || (a>>16)&0xFF != 0 {
		return nil, 0
	}
	slot, fn, reg := int(a>>11)&0x1F, int(a>>8)&7, int(a&0xFC)
	f := h.funcs[slot][fn]
	if f != nil && fn != 0 {
		if f0 := h.funcs[slot][0]; f0 == nil || f0.initial[RegHeaderType]&HeaderTypeMultiFunction == 0 {
			return nil, 0
		}
	}
	return f, reg
}

type addrPort struct{ h *Host }

// Only a full dword access at 0xCF8 reaches the address register; narrower
// accesses belong to other chipset registers (0xCF9 reset control on PIIX),
// which this model does not implement, so they float.
func (p addrPort) Read(off uint64, data []byte) {
	if off != 0 || len(data) != 4 {
		fill(data, 0xFF)
		return
	}
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	binary.LittleEndian.PutUint32(data, p.h.addr)
}

func (p addrPort) Write(off uint64, data []byte) {
	if off != 0 || len(data) != 4 {
		return
	}
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.h.addr = binary.LittleEndian.Uint32(data) & configAddrMask
}

type dataPort struct{ h *Host }

// A configuration read from an absent function returns all ones (a master
// abort), which is how software finds empty slots.
func (p dataPort) Read(off uint64, data []byte) {
	p.h.mu.Lock()
	f, reg := p.h.target()
	p.h.mu.Unlock()
	if f == nil || off+uint64(len(data)) > 4 {
		fill(data, 0xFF)
		return
	}
	f.ReadConfig(reg+int(off), data)
}

func (p dataPort) Write(off uint64, data []byte) {
	p.h.mu.Lock()
	f, reg := p.h.target()
	p.h.mu.Unlock()
	if f == nil || off+uint64(len(data)) > 4 {
		return
	}
	f.WriteConfig(reg+int(off), data)
}

func fill(p []byte, v byte) {
	for i := range p {
		p[i] = v
	}
}

// Window is a range of guest-physical addresses (or ports) that firmware
// may hand out to BARs: [Base, Limit).
type Window struct {
	Base, Limit uint64
}

// AssignResources does what PC firmware does before an OS boots: it places
// every BAR of every function in the given windows (largest first, each
// naturally aligned), writes the BARs and enables I/O and memory decode.
// Operating systems that reassign resources may move them afterwards.
func (h *Host) AssignResources(mmio, io Window) error {
	type req struct {
		f    *Function
		bar  int
		size uint64
		io   bool
	}
	var reqs []req
	h.mu.Lock()
	for s := range h.funcs {
		for fn := range h.funcs[s] {
			f := h.funcs[s][fn]
			if f == nil {
				continue
			}
			for i, b := range f.bars {
				switch b.Kind {
				case BARIO:
					reqs = append(reqs, req{f, i, b.Size, true})
				case BARMem32, BARMem64:
					reqs = append(reqs, req{f, i, b.Size, false})
				}
			}
		}
	}
	h.mu.Unlock()
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].size > reqs[j].size })
	next := map[bool]uint64{false: mmio.Base, true: io.Base}
	limit := map[bool]uint64{false: mmio.Limit, true: io.Limit}
	for _, r := range reqs {
		base := (next[r.io] + r.size - 1) &^ (r.size - 1)
		if base == 0 {
			base = r.size // address 0 means "unassigned"; never hand it out
		}
		if base < next[r.io] || base+r.size > limit[r.io] || base+r.size < base {
			return fmt.Errorf("pci: assign %s BAR%d of %#x bytes: window [%#x,%#x) exhausted",
				r.f.Name(), r.bar, r.size, next[r.io], limit[r.io])
		}
		next[r.io] = base + r.size
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], uint32(base))
		r.f.WriteConfig(RegBAR0+4*r.bar, v[:])
		if r.f.bars[r.bar].Kind == BARMem64 {
			binary.LittleEndian.PutUint32(v[:], uint32(base>>32))
			r.f.WriteConfig(RegBAR0+4*(r.bar+1), v[:])
		}
	}
	for _, r := range reqs {
		var c [2]byte
		r.f.ReadConfig(RegCommand, c[:])
		cmd := binary.LittleEndian.Uint16(c[:])
		if r.io {
			cmd |= CommandIO
		} else {
			cmd |= CommandMemory
		}
		binary.LittleEndian.PutUint16(c[:], cmd)
		r.f.WriteConfig(RegCommand, c[:])
	}
	return nil
}
