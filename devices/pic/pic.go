// Package pic models the PC's cascaded pair of Intel 8259A programmable
// interrupt controllers, with the PIIX edge/level control registers (ELCR).
//
// The pair collects the 16 ISA interrupt request lines, applies masking,
// priority (fully nested, rotating, special mask and special fully nested
// modes) and the end-of-interrupt protocol of the Intel 8259A datasheet
// (order no. 231468), and presents one interrupt output to the CPU. The vCPU
// side asks HasInterrupt and then Acknowledge, which performs the INTA
// cycle and returns the vector. The package models only the PIC: how the
// vector is injected into a guest is the vmm's business.
package pic

import (
	"fmt"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// Standard PC/AT port assignments.
const (
	MasterBase = 0x20  // master command (A0=0) and data (A0=1) ports
	SlaveBase  = 0xA0  // slave command and data ports
	ELCRBase   = 0x4D0 // ELCR1 (IRQ0-7) and ELCR2 (IRQ8-15), PIIX datasheet 4.1.13

	// CascadeIRQ is the master input the slave's INT output drives on a
	// PC/AT.
	CascadeIRQ = 2
)

// 8259A command words (datasheet, "Programming the 8259A").
const (
	icw1Select = 0x10 // A0=0, D4=1: ICW1
	icw1IC4    = 0x01 // ICW4 needed
	icw1SNGL   = 0x02 // single mode: no ICW3
	icw1LTIM   = 0x08 // level-triggered mode

	icw2VectorMask = 0xF8 // T7-T3; T2-T0 come from the IR number

	icw4UPM  = 0x01 // 8086/8088 mode
	icw4AEOI = 0x02 // automatic end of interrupt
	icw4MS   = 0x04 // buffered-mode master/slave
	icw4BUF  = 0x08 // buffered mode
	icw4SFNM = 0x10 // special fully nested mode

	ocw3Select = 0x08 // A0=0, D4=0, D3=1: OCW3 (D3=0: OCW2)
	ocw3RIS    = 0x01 // read ISR (with RR)
	ocw3RR     = 0x02 // read register command
	ocw3P      = 0x04 // poll command
	ocw3SMM    = 0x20 // special mask mode (with ESMM)
	ocw3ESMM   = 0x40 // enable special mask mode change

	ocw2LevelMask = 0x07
	// OCW2 R, SL, EOI field (D7-D5) commands.
	ocw2RotateAEOIClear  = 0x00
	ocw2NonSpecificEOI   = 0x20
	ocw2NoOp             = 0x40
	ocw2SpecificEOI      = 0x60
	ocw2RotateAEOISet    = 0x80
	ocw2RotateNonSpecEOI = 0xA0
	ocw2SetPriority      = 0xC0
	ocw2RotateSpecEOI    = 0xE0

	pollInterrupt = 0x80 // poll word bit 7: an interrupt was pending
)

// ELCR bits that must stay 0 because those IRQs are edge-only on a PC:
// IRQ0 (timer), IRQ1 (keyboard), IRQ2 (cascade), IRQ8 (RTC), IRQ13 (FPU).
// Intel 82371AB PIIX4 datasheet, 4.1.13 ELCR1/ELCR2.
const (
	elcrMaskMaster = 0xF8
	elcrMaskSlave  = 0xDE
)

// chip is one 8259A. Field names follow the datasheet.
type chip struct {
	irr, isr, imr uint8
	lines         uint8 // current level of each IR input pin
	elcr          uint8
	elcrMask      uint8
	vectorBase    uint8 // ICW2 & 0xF8
	lowest        uint8 // IR with the lowest priority; lowest+1 has the highest
	initStep      uint8 // 0: operational; 2, 3, 4: next byte on A0=1 is that ICW
	needICW4      bool
	single        bool
	ltim          bool
	icw3          uint8
	icw4          uint8
	rotateOnAEOI  bool
	readISR       bool
	poll          bool
	specialMask   bool
}

func (c *chip) reset() {
	mask := c.elcrMask
	*c = chip{elcrMask: mask, lowest: 7}
}

func (c *chip) levelTriggered(irq uint8) bool {
	return c.ltim || c.elcr&(1<<irq) != 0
}

func (c *chip) setLine(irq uint8, level bool) {
	bit := uint8(1) << irq
	if c.levelTriggered(irq) {
		if level {
			c.irr |= bit
		} else {
			c.irr &^= bit
		}
	} else if level && c.lines&bit == 0 {
		// Edge mode latches the rising edge; the request stays in IRR
		// when the line falls again, as QEMU and Bochs do (the datasheet's
		// "default IR7" for a vanished request is not modelled).
		c.irr |= bit
	}
	if level {
		c.lines |= bit
	} else {
		c.lines &^= bit
	}
}

// highest returns the highest-priority IR among the bits of m.
func (c *chip) highest(m uint8) (uint8, bool) {
	if m == 0 {
		return 0, false
	}
	for p := uint8(1); p <= 8; p++ {
		irq := (c.lowest + p) & 7
		if m&(1<<irq) != 0 {
			return irq, true
		}
	}
	return 0, false
}

// rank is an IR's priority position: 0 is the highest.
func (c *chip) rank(irq uint8) uint8 { return (irq - c.lowest - 1) & 7 }

// pending returns the IR the chip would signal on INT now.
func (c *chip) pending(master bool) (uint8, bool) {
	req, ok := c.highest(c.irr &^ c.imr)
	if !ok {
		return 0, false
	}
	inService := c.isr
	if c.specialMask {
		// Special mask mode: a masked level in service does not hold off
		// lower-priority requests (datasheet, "Special Mask Mode").
		inService &^= c.imr
	}
	if master && c.icw4&icw4SFNM != 0 {
		// Special fully nested mode: a slave already in service does not
		// block higher-priority requests from the same slave.
		inService &^= c.icw3
	}
	if cur, ok := c.highest(inService); ok && c.rank(cur) <= c.rank(req) {
		return 0, false
	}
	return req, true
}

// ack performs the chip's half of an INTA cycle for irq.
func (c *chip) ack(irq uint8) {
	bit := uint8(1) << irq
	if !c.levelTriggered(irq) {
		c.irr &^= bit
	}
	if c.icw4&icw4AEOI != 0 {
		if c.rotateOnAEOI {
			c.lowest = irq
		}
		return
	}
	c.isr |= bit
}

func (c *chip) writeCommand(v uint8) {
	switch {
	case v&icw1Select != 0:
		mask, lines, elcr := c.elcrMask, c.lines, c.elcr
		*c = chip{elcrMask: mask, lines: lines, elcr: elcr, lowest: 7}
		c.ltim = v&icw1LTIM != 0
		c.single = v&icw1SNGL != 0
		c.needICW4 = v&icw1IC4 != 0
		c.initStep = 2
		// The edge sense circuit is reset: only level-triggered inputs
		// that are asserted right now are requests.
		for irq := uint8(0); irq < 8; irq++ {
			if c.levelTriggered(irq) && lines&(1<<irq) != 0 {
				c.irr |= 1 << irq
			}
		}
	case v&ocw3Select != 0:
		if v&ocw3RR != 0 {
			c.readISR = v&ocw3RIS != 0
		}
		if v&ocw3ESMM != 0 {
			c.specialMask = v&ocw3SMM != 0
		}
		c.poll = v&ocw3P != 0
	default: // OCW2
		level := v & ocw2LevelMask
		switch v &^ ocw2LevelMask {
		case ocw2RotateAEOIClear:
			c.rotateOnAEOI = false
		case ocw2RotateAEOISet:
			c.rotateOnAEOI = true
		case ocw2NonSpecificEOI, ocw2RotateNonSpecEOI:
			if irq, ok := c.highest(c.isr); ok {
				c.isr &^= 1 << irq
				if v&^ocw2LevelMask == ocw2RotateNonSpecEOI {
					c.lowest = irq
				}
			}
		case ocw2SpecificEOI:
			c.isr &^= 1 << level
		case ocw2RotateSpecEOI:
			c.isr &^= 1 << level
			c.lowest = level
		case ocw2SetPriority:
			c.lowest = level
		case ocw2NoOp:
		}
	}
}

func (c *chip) writeData(v uint8) {
	switch c.initStep {
	case 2:
		c.vectorBase = v & icw2VectorMask
		c.initStep = c.nextAfter(2)
	case 3:
		c.icw3 = v
		c.initStep = c.nextAfter(3)
	case 4:
		c.icw4 = v
		c.initStep = 0
	default:
		c.imr = v
	}
}

func (c *chip) nextAfter(step uint8) uint8 {
	if step == 2 && !c.single {
		return 3
	}
	if c.needICW4 {
		return 4
	}
	return 0
}

// Pair is the master/slave 8259A pair of a PC. It is safe for concurrent
// use: one mutex guards both chips.
type Pair struct {
	mu     sync.Mutex
	master chip
	slave  chip
	intr   devices.IRQLine
	out    bool // level last driven on intr
}

// New returns a pair in its power-on state whose INT output drives intr
// (the CPU's INTR pin, or LINT0 of a local APIC later). intr is called with
// the pair's lock held.
func New(intr devices.IRQLine) *Pair {
	if intr == nil {
		intr = devices.NopLine{}
	}
	p := &Pair{intr: intr}
	p.master.elcrMask = elcrMaskMaster
	p.slave.elcrMask = elcrMaskSlave
	p.Reset()
	return p
}

// Reset puts both chips into their power-on state: uninitialized, no
// requests, nothing masked, all inputs edge-triggered, vector base 0.
func (p *Pair) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.master.reset()
	p.slave.reset()
	p.updateLocked()
}

// line is one of the 16 ISA IRQ inputs.
type line struct {
	p   *Pair
	irq uint8
}

func (l line) Set(level bool) { l.p.SetIRQ(l.irq, level) }

// Line returns the IRQLine for ISA interrupt n (0-15). IRQ2 is the cascade
// input on a PC/AT; as on the ISA bus, a device wired to IRQ2 is routed to
// IRQ9.
func (p *Pair) Line(n uint8) (devices.IRQLine, error) {
	if n > 15 {
		return nil, fmt.Errorf("pic: line %d: no such ISA IRQ", n)
	}
	if n == CascadeIRQ {
		n = 9
	}
	return line{p: p, irq: n}, nil
}

// SetIRQ drives ISA interrupt input n (0-15) to level. Out-of-range inputs
// and direct drives of the cascade input are ignored.
func (p *Pair) SetIRQ(n uint8, level bool) {
	if n > 15 || n == CascadeIRQ {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 8 {
		p.master.setLine(n, level)
	} else {
		p.slave.setLine(n-8, level)
	}
	p.updateLocked()
}

func (p *Pair) cascaded() bool {
	return !p.master.single && p.master.icw3&(1<<CascadeIRQ) != 0
}

// updateLocked propagates the slave's INT output to master IR2 and the
// master's INT output to the CPU.
func (p *Pair) updateLocked() {
	_, slaveInt := p.slave.pending(false)
	p.master.setLine(CascadeIRQ, slaveInt)
	_, masterInt := p.master.pending(true)
	if masterInt != p.out {
		p.out = masterInt
		p.intr.Set(masterInt)
	}
}

// HasInterrupt reports whether the master asserts INT: an unmasked request
// of higher priority than everything in service.
func (p *Pair) HasInterrupt() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.master.pending(true)
	return ok
}

// Acknowledge performs the INTA cycle and returns the vector. When no
// request survives (it went away since HasInterrupt) the chip answers with
// its IR7 vector without setting ISR, the 8259A's spurious interrupt.
func (p *Pair) Acknowledge() uint8 {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.updateLocked()
	irq, ok := p.master.pending(true)
	if !ok {
		return p.master.vectorBase | 7
	}
	p.master.ack(irq)
	if irq == CascadeIRQ && p.cascaded() {
		// The slave's INT stays high when it has another request, and the
		// master's IR2 is edge-triggered: re-arm the edge so that the next
		// slave request is seen once this one is acknowledged.
		p.master.lines &^= 1 << CascadeIRQ
		sirq, ok := p.slave.pending(false)
		if !ok {
			return p.slave.vectorBase | 7
		}
		p.slave.ack(sirq)
		return p.slave.vectorBase | sirq
	}
	return p.master.vectorBase | irq
}

func (p *Pair) readChip(c *chip, master bool, off uint64) uint8 {
	if c.poll {
		// A poll command turns the next read into an INTA of this chip.
		c.poll = false
		irq, ok := c.pending(master)
		if !ok {
			return 0
		}
		c.ack(irq)
		p.updateLocked()
		return pollInterrupt | irq
	}
	if off&1 == 1 {
		return c.imr
	}
	if c.readISR {
		return c.isr
	}
	return c.irr
}

func (p *Pair) writeChip(c *chip, off uint64, v uint8) {
	if off&1 == 0 {
		c.writeCommand(v)
	} else {
		c.writeData(v)
	}
	p.updateLocked()
}

// chipPorts is the two-port register file of one chip on the bus. A wider
// access is a run of byte cycles at consecutive ports, as on the ISA bus.
type chipPorts struct {
	p      *Pair
	master bool
}

func (cp chipPorts) chip() *chip {
	if cp.master {
		return &cp.p.master
	}
	return &cp.p.slave
}

func (cp chipPorts) Read(off uint64, data []byte) {
	cp.p.mu.Lock()
	defer cp.p.mu.Unlock()
	for i := range data {
		data[i] = cp.p.readChip(cp.chip(), cp.master, off+uint64(i))
	}
}

func (cp chipPorts) Write(off uint64, data []byte) {
	cp.p.mu.Lock()
	defer cp.p.mu.Unlock()
	for i, v := range data {
		cp.p.writeChip(cp.chip(), off+uint64(i), v)
	}
}

// Master returns the bus device for the master's two ports (0x20-0x21).
func (p *Pair) Master() bus.Device { return chipPorts{p: p, master: true} }

// Slave returns the bus device for the slave's two ports (0xA0-0xA1).
func (p *Pair) Slave() bus.Device { return chipPorts{p: p} }

type elcrPorts struct{ p *Pair }

func (e elcrPorts) Read(off uint64, data []byte) {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	for i := range data {
		switch off + uint64(i) {
		case 0:
			data[i] = e.p.master.elcr
		case 1:
			data[i] = e.p.slave.elcr
		default:
			data[i] = 0xFF
		}
	}
}

func (e elcrPorts) Write(off uint64, data []byte) {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	for i, v := range data {
		var c *chip
		switch off + uint64(i) {
		case 0:
			c = &e.p.master
		case 1:
			c = &e.p.slave
		default:
			continue
		}
		c.elcr = v & c.elcrMask
		// An input switched to level mode requests exactly while asserted.
		for irq := uint8(0); irq < 8; irq++ {
			if c.levelTriggered(irq) {
				c.setLine(irq, c.lines&(1<<irq) != 0)
			}
		}
	}
	e.p.updateLocked()
}

// ELCR returns the bus device for the two ELCR ports (0x4D0-0x4D1).
func (p *Pair) ELCR() bus.Device { return elcrPorts{p: p} }

// Install registers the pair at the standard PC/AT ports.
func (p *Pair) Install(b *bus.Bus) error {
	for _, r := range []struct {
		base uint16
		name string
		dev  bus.Device
	}{
		{MasterBase, "pic-master", p.Master()},
		{SlaveBase, "pic-slave", p.Slave()},
		{ELCRBase, "pic-elcr", p.ELCR()},
	} {
		if err := b.RegisterPorts(r.base, 2, r.name, r.dev); err != nil {
			return fmt.Errorf("pic: install: %w", err)
		}
	}
	return nil
}
