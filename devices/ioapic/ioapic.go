// Package ioapic models the I/O APIC of a PC chipset (Intel 82093AA
// datasheet 290566, and the ICH I/O APIC with its EOI register): the
// index/data window at 0xFEC00000, the ID, version and arbitration
// registers, and 24 redirection entries with edge and level triggering,
// polarity, masking and Remote IRR.
//
// Boundary: it turns pin levels into APIC-bus messages and hands them to
// an injected function (normally lapic.Router.Deliver); it learns of EOIs
// through EOI, which the VMM wires to the LAPICs' EOI broadcast. Sharing of
// a pin by several PCI functions (wired-OR) and splitting an ISA IRQ to the
// 8259 as well are the VMM's wiring, not this package's.
package ioapic

import (
	"fmt"
	"sync"

	"hv/devices"
	"hv/devices/bus"
	"hv/devices/lapic"
)

// Placement and size (82093AA section 3.0; the ICH decodes a 4 KiB page).
const (
	DefaultBase = 0xFEC00000
	PageSize    = 0x1000
	// Pins is the number of redirection entries: ISA IRQs 0-15 and PCI
	// INTx 16-23 on a PIIX/ICH platform.
	Pins = 24
)

// Memory-mapped registers (82093AA section 3.1 table 1; EOI from the ICH
// datasheet's APIC register map).
const (
	offRegSel = 0x00 // IOREGSEL: index of the register IOWIN shows
	offWin    = 0x10 // IOWIN
	offEOI    = 0x40 // EOI: clears Remote IRR of entries with this vector
)

// Indirect registers (82093AA section 3.2).
const (
	RegID      = 0x00
	RegVersion = 0x01
	RegArb     = 0x02
	RegRedTbl  = 0x10 // entry n: low dword 0x10+2n, high dword 0x11+2n
)

// Version register: version 0x20 is the ICH-style I/O APIC with the EOI
// register (the 82093AA is 0x11); Maximum Redirection Entry is Pins-1.
const (
	version    = 0x20
	versionReg = version | (Pins-1)<<16
	idMask     = 0x0F000000 // APIC ID bits 27:24
)

// Redirection entry fields (82093AA section 3.2.4).
const (
	reVector       = 0xFF
	reDeliveryMask = 0x700
	reDeliveryShft = 8
	reLogical      = 1 << 11
	rePending      = 1 << 12 // delivery status, read-only
	reActiveLow    = 1 << 13
	reRemoteIRR    = 1 << 14 // read-only
	reLevel        = 1 << 15
	ReMasked       = 1 << 16
	reDestShift    = 56
	reWritable     = reVector | reDeliveryMask | reLogical | reActiveLow | reLevel | ReMasked | 0xFF<<reDestShift
)

// IOAPIC is the I/O APIC. It is safe for concurrent use; it calls deliver
// with its own lock held, so deliver must not call back into the IOAPIC
// (a LAPIC only reaches it through EOI, after dropping its own lock).
type IOAPIC struct {
	mu      sync.Mutex
	deliver func(lapic.Message)
	id      uint32
	regSel  uint8
	redir   [Pins]uint64
	level   [Pins]bool // electrical level of each pin
}

// New returns an I/O APIC with APIC ID id in its reset state, delivering
// messages to deliver.
func New(id uint8, deliver func(lapic.Message)) *IOAPIC {
	if deliver == nil {
		deliver = func(lapic.Message) {}
	}
	x := &IOAPIC{deliver: deliver}
	x.Reset()
	x.id = uint32(id&0xF) << 24
	return x
}

// Reset masks every entry and zeroes the rest (82093AA section 3.2.4:
// the mask bit is set after reset). The ID survives, as the chip's ID is
// strapped; the pin levels are the wires' and also survive.
func (x *IOAPIC) Reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.regSel = 0
	for i := range x.redir {
		x.redir[i] = ReMasked
	}
}

// asserted reports whether pin is requesting. Lines carry the logical
// request (devices.IRQLine: true is asserted), not the board's voltage; the
// polarity bit describes the board's wiring, which this VM's MADT and _PRT
// define to match, so it is kept for the guest but not applied (QEMU and
// KVM do the same). Applying it would turn every idle active-low PCI line
// into an interrupt storm.
func (x *IOAPIC) asserted(pin int) bool { return x.level[pin] }

func (x *IOAPIC) message(pin int) lapic.Message {
	e := x.redir[pin]
	return lapic.Message{
		Vector:  uint8(e & reVector),
		Mode:    lapic.DeliveryMode(e & reDeliveryMask >> reDeliveryShft),
		Logical: e&reLogical != 0,
		Dest:    uint32(e >> reDestShift),
		Level:   e&reLevel != 0,
		Assert:  true,
	}
}

// service delivers pin's interrupt when the pin is asserted, unmasked and,
// for level-triggered entries, not already waiting for an EOI.
func (x *IOAPIC) service(pin int) {
	e := x.redir[pin]
	if e&ReMasked != 0 || !x.asserted(pin) {
		return
	}
	m := x.message(pin)
	if m.Mode == 3 {
		return // reserved delivery mode: nothing is sent
	}
	if e&reLevel != 0 {
		if e&reRemoteIRR != 0 {
			return
		}
		// Remote IRR is meaningful for fixed and lowest-priority only,
		// which are the only ones a LAPIC EOIs.
		if m.Mode == lapic.Fixed || m.Mode == lapic.LowestPriority {
			x.redir[pin] |= reRemoteIRR
		}
	}
	x.deliver(m)
}

// SetIRQ drives pin to level. Edge-triggered entries send on the
// inactive-to-active transition; an edge on a masked pin is lost (82093AA
// 3.2.4: "not delivered or held pending"). Level-triggered entries send
// while active.
func (x *IOAPIC) SetIRQ(pin int, level bool) {
	if pin < 0 || pin >= Pins {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	was := x.asserted(pin)
	x.level[pin] = level
	if x.redir[pin]&reLevel != 0 || !was {
		x.service(pin)
	}
}

// Line returns pin as an IRQ line for a device.
func (x *IOAPIC) Line(pin int) (devices.IRQLine, error) {
	if pin < 0 || pin >= Pins {
		return nil, fmt.Errorf("ioapic: pin %d out of range [0,%d)", pin, Pins)
	}
	return line{x, pin}, nil
}

type line struct {
	x   *IOAPIC
	pin int
}

func (l line) Set(level bool) { l.x.SetIRQ(l.pin, level) }

// EOI is the end-of-interrupt for vector, broadcast by a LAPIC or written
// to the EOI register: every level-triggered entry with that vector clears
// Remote IRR and, if its pin is still active, interrupts again.
func (x *IOAPIC) EOI(vector uint8) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.eoi(vector)
}

func (x *IOAPIC) eoi(vector uint8) {
	for pin := range x.redir {
		e := x.redir[pin]
		if e&reRemoteIRR == 0 || uint8(e&reVector) != vector {
			continue
		}
		x.redir[pin] &^= reRemoteIRR
		x.service(pin)
	}
}

func (x *IOAPIC) readIndirect() uint32 {
	switch r := x.regSel; {
	case r == RegID:
		return x.id
	case r == RegVersion:
		return versionReg
	case r == RegArb:
		return x.id // arbitration ID is loaded from the ID (3.2.3)
	case r >= RegRedTbl && r < RegRedTbl+2*Pins:
		e := x.redir[(r-RegRedTbl)/2]
		if r&1 == 0 {
			return uint32(e)
		}
		return uint32(e >> 32)
	}
	return 0 // unimplemented registers read 0
}

func (x *IOAPIC) writeIndirect(v uint32) {
	switch r := x.regSel; {
	case r == RegID:
		x.id = v & idMask
	case r >= RegRedTbl && r < RegRedTbl+2*Pins:
		pin := int(r-RegRedTbl) / 2
		old := x.redir[pin]
		var n uint64
		if r&1 == 0 {
			n = old&^0xFFFFFFFF | uint64(v)
		} else {
			n = old&0xFFFFFFFF | uint64(v)<<32
		}
		n = n&reWritable | old&reRemoteIRR
		if n&reLevel == 0 {
			n &^= reRemoteIRR // Remote IRR is undefined for edge entries; clear it
		}
		x.redir[pin] = n
		// Unmasking (or re-programming) a level-triggered entry whose
		// line is active delivers now; edges that came while masked are
		// gone.
		if n&reLevel != 0 {
			x.service(pin)
		}
	}
}

// Read implements bus.Device.
func (x *IOAPIC) Read(off uint64, data []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range data {
		o := off + uint64(i)
		var v uint32
		switch o &^ 3 {
		case offRegSel:
			v = uint32(x.regSel)
		case offWin:
			v = x.readIndirect()
		}
		data[i] = byte(v >> (8 * (o & 3)))
	}
}

// Write implements bus.Device. IOREGSEL takes its low byte; IOWIN merges
// the written bytes into the selected register; EOI takes the vector byte.
func (x *IOAPIC) Write(off uint64, data []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if off&^3 == offWin && off+uint64(len(data)) <= offWin+4 {
		v := x.readIndirect()
		for i, b := range data {
			sh := 8 * ((off + uint64(i)) & 3)
			v = v&^(0xFF<<sh) | uint32(b)<<sh
		}
		x.writeIndirect(v)
		return
	}
	for i, b := range data {
		switch off + uint64(i) {
		case offRegSel:
			x.regSel = b
		case offEOI:
			x.eoi(b)
		}
	}
}

// Install registers the I/O APIC's page at base.
func (x *IOAPIC) Install(b *bus.Bus, base uint64) error {
	if err := b.RegisterMMIO(base, PageSize, "ioapic", x); err != nil {
		return fmt.Errorf("ioapic: install at %#x: %w", base, err)
	}
	return nil
}

// Entry returns redirection entry pin (for tests and debugging).
func (x *IOAPIC) Entry(pin int) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if pin < 0 || pin >= Pins {
		return 0
	}
	return x.redir[pin]
}
