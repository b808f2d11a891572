// Package pit models the Intel 8254 programmable interval timer of a PC
// (ports 0x40-0x43) and the timer-2 bits of system control port B (0x61),
// per the Intel 8254 datasheet (order no. 231164).
//
// The counters do not tick by themselves. Every value is computed from the
// injected clock: a count loaded at CLK tick B reads, at tick T, what the
// datasheet's counting rules give after T-B input pulses. Channel 0's OUT
// drives IRQ0; because a rate generator's low pulse lasts one 838 ns CLK,
// the model reports edges, not samples: Update delivers every rising edge
// that happened since the last call as a pulse on the line, and NextEvent
// says when the next one is due so the VMM can arm a host timer. Nothing
// here reads wall time, so a run driven by a deterministic clock replays
// exactly.
package pit

import (
	"fmt"
	"math/bits"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// Ports.
const (
	Base      = 0x40 // counters 0-2 at 0x40-0x42, control word at 0x43
	Ports     = 4
	PortB     = 0x61 // system control port B (IBM PC/AT technical reference)
	IRQ       = 0    // channel 0 OUT is wired to IRQ0
	Frequency = 1193182
)

// Control word fields (8254 datasheet, Figure 7 "Control Word Format").
const (
	cwSCShift   = 6
	cwReadBack  = 3 // SC1 SC0 = 11
	cwRWShift   = 4
	cwRWLatch   = 0 // RW1 RW0 = 00: counter latch command
	cwRWLSB     = 1
	cwRWMSB     = 2
	cwRWLSBMSB  = 3
	cwModeShift = 1
	cwModeMask  = 0x07
	cwBCD       = 0x01

	// Read-back command (Figure 9): bit 5 COUNT and bit 4 STATUS are
	// active low; bits 3-1 select counters 2-0.
	rbNotCount  = 0x20
	rbNotStatus = 0x10

	// Status byte (Figure 10).
	statusOut       = 0x80
	statusNullCount = 0x40
)

// Port B bits (IBM PC/AT Technical Reference, "System Control Port B").
const (
	portBGate2    = 0x01
	portBSpeaker  = 0x02
	portBRWMask   = 0x0F // gate, speaker data, parity and channel-check enables
	portBRefresh  = 0x10 // toggles with every DRAM refresh request
	portBOut2     = 0x20
	refreshPeriod = 15085 // ns between refresh requests (channel 1 at count 18)
)

// channel is one counter. Counting state is a closed form anchored at
// tick base; see count and out.
type channel struct {
	modeBits uint8 // M2-M0 as written (6 and 7 read back as written)
	rw       uint8
	bcd      bool
	cr       uint16 // count register, raw (BCD-coded when bcd)
	crLow    uint8  // LSB of a two-byte write in progress
	writeMSB bool   // next write is the MSB of a two-byte count
	readMSB  bool   // next read is the MSB of a two-byte count
	latchN   uint8  // bytes of a latched count still to read (0, 1, 2)
	latch    uint16
	statusOK bool // a latched status byte is waiting
	status   uint8
	gate     bool
	nullCnt  bool

	armed     bool   // a count has been loaded since the control word
	running   bool   // CE is counting (armed, gate allows, trigger seen)
	base      uint64 // tick at which CE was loaded or resumed
	dist      uint32 // modes 0,1,4,5: ticks from base to terminal count, 1..M
	tcPassed  bool   // modes 0,1,4,5: terminal count already reached
	period    uint32 // modes 2,3: effective count N, 1..M
	startHigh bool   // mode 3: OUT level of the half-cycle that starts at base
	frozen    uint16 // CE value while not counting
	pending   bool   // modes 2,3: a new count waits for the next reload
	pendingAt uint64
	pendingN  uint32
}

func (c *channel) mode() uint8 {
	if c.modeBits >= 6 {
		return c.modeBits - 4 // X10 and X11 are modes 2 and 3
	}
	return c.modeBits
}

// modulus is the counter's wrap: 2^16 binary or 10^4 BCD.
func (c *channel) modulus() uint32 {
	if c.bcd {
		return 10000
	}
	return 1 << 16
}

// initialCount is N as the counter uses it: 0 means the maximum count.
// Invalid BCD digits are taken at face value and reduced modulo 10^4.
func (c *channel) initialCount() uint32 {
	v := uint32(c.cr)
	if c.bcd {
		v = (v>>12&0xF)*1000 + (v>>8&0xF)*100 + (v>>4&0xF)*10 + v&0xF
		v %= 10000
	}
	if v == 0 {
		return c.modulus()
	}
	return v
}

func (c *channel) encode(v uint32) uint16 {
	if !c.bcd {
		return uint16(v)
	}
	v %= 10000
	return uint16(v/1000<<12 | v/100%10<<8 | v/10%10<<4 | v%10)
}

// settle applies what has happened by tick t: a reload of a pending count
// (modes 2, 3) and terminal counts (modes 0, 1, 4, 5).
func (c *channel) settle(t uint64) {
	if !c.running {
		return
	}
	switch c.mode() {
	case 2, 3:
		if c.pending && t >= c.pendingAt {
			if c.mode() == 3 {
				c.startHigh = !c.halfHighAt(c.pendingAt - 1)
			} else {
				c.startHigh = true
			}
			c.base, c.period, c.pending = c.pendingAt, c.pendingN, false
			c.nullCnt = false
		}
	case 4, 5:
		// The strobe is the CLK at terminal count; it has passed after it.
		if !c.tcPassed && t > c.base+uint64(c.dist) {
			c.tcPassed = true
		}
	default:
		if !c.tcPassed && t >= c.base+uint64(c.dist) {
			c.tcPassed = true
		}
	}
	if t >= c.base && !c.pending {
		c.nullCnt = false
	}
}

// halfHighAt reports mode 3's OUT at tick t >= base.
func (c *channel) halfHighAt(t uint64) bool {
	p := uint64(c.period)
	hi, lo := (p+1)/2, p/2
	q := (t - c.base) % p
	if c.startHigh {
		return q < hi
	}
	return q >= lo
}

// out is the OUT pin at tick t (after settle(t)).
func (c *channel) out(t uint64) bool {
	switch c.mode() {
	case 0:
		return c.armed && (c.tcPassed || (c.running && t >= c.base+uint64(c.dist)))
	case 1:
		return !(c.running && !c.tcPassed && t >= c.base && t < c.base+uint64(c.dist))
	case 2:
		if !c.running || t < c.base {
			return true
		}
		return (t-c.base)%uint64(c.period) != uint64(c.period)-1
	case 3:
		if !c.running || t < c.base {
			return true
		}
		return c.halfHighAt(t)
	default: // 4, 5: one-CLK low strobe at terminal count
		return !(c.running && !c.tcPassed && t == c.base+uint64(c.dist))
	}
}

// nextRise returns the first tick r > t at which OUT goes from low to
// high, if OUT will rise without further programming.
func (c *channel) nextRise(t uint64) (uint64, bool) {
	if !c.running {
		return 0, false
	}
	switch c.mode() {
	case 0, 1:
		r := c.base + uint64(c.dist)
		return r, !c.tcPassed && r > t
	case 4, 5:
		r := c.base + uint64(c.dist) + 1
		return r, !c.tcPassed && r > t
	case 2:
		if c.pending {
			return c.pendingAt, true
		}
		p := uint64(c.period)
		if p < 2 {
			return 0, false // OUT is stuck low on the illegal count 1
		}
		if t < c.base {
			return c.base + p, true
		}
		return c.base + ((t-c.base)/p+1)*p, true
	case 3:
		p := uint64(c.period)
		if p < 2 {
			return 0, false // count 1: OUT never goes low
		}
		if c.pending {
			// settle guarantees t < pendingAt, and no half-cycle starts
			// between them: OUT next rises at the reload if the ending
			// half is low, else after the new count's low half.
			if !c.halfHighAt(c.pendingAt - 1) {
				return c.pendingAt, true
			}
			if c.pendingN < 2 {
				return 0, false
			}
			return c.pendingAt + uint64(c.pendingN/2), true
		}
		first := c.base + p // startHigh: rises at the end of each cycle
		if !c.startHigh {
			first = c.base + p/2
		}
		if t < first {
			return first, true
		}
		return first + ((t-first)/p+1)*p, true
	}
	return 0, false
}

// count is CE at tick t (after settle(t)), as a plain number.
func (c *channel) count(t uint64) uint32 {
	if !c.running || t < c.base {
		return uint32(c.frozen)
	}
	m := uint64(c.modulus())
	d := t - c.base
	switch c.mode() {
	case 2:
		p := uint64(c.period)
		return uint32((p - d%p) % m)
	case 3:
		p := uint64(c.period)
		hi, lo := (p+1)/2, p/2
		q := d % p
		first := hi
		if !c.startHigh {
			first = lo
		}
		j := q
		if q >= first {
			j = q - first
		}
		start := p &^ 1 // an odd count runs from N-1, by twos
		v := start - 2*j
		if start < 2*j {
			v = 0
		}
		return uint32(v % m)
	default:
		return uint32((uint64(c.dist) + m - d%m) % m)
	}
}

// freeze stops CE at tick t, keeping its value.
func (c *channel) freeze(t uint64) {
	c.settle(t)
	c.frozen = uint16(c.count(t)) // a plain number; BCD coding happens on read
	c.running = false
}

// load starts counting from n at the next CLK after tick t.
func (c *channel) load(t uint64, n uint32) {
	c.base = t + 1
	c.armed, c.running, c.tcPassed, c.pending = true, true, false, false
	c.dist, c.period, c.startHigh = n, n, true
}

func (c *channel) readValue(t uint64) uint16 {
	c.settle(t)
	return c.encode(c.count(t))
}

// PIT is the 8254 with port B's timer-2 bits. It is safe for concurrent
// use.
type PIT struct {
	mu       sync.Mutex
	clock    devices.Clock
	irq      devices.IRQLine
	ch       [3]channel
	portB    uint8 // the read/write bits of port B
	lastTick uint64
	irqLevel bool
}

// New returns a PIT in its reset state. Channel 0's OUT drives irq; time
// comes from clock.
func New(irq devices.IRQLine, clock devices.Clock) *PIT {
	if irq == nil {
		irq = devices.NopLine{}
	}
	p := &PIT{irq: irq, clock: clock}
	p.Reset()
	return p
}

// Reset puts every counter in mode 0-like idle state (the datasheet says
// power-up state is undefined) with gates 0 and 1 high and gate 2 low.
func (p *PIT) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ch = [3]channel{}
	for i := range p.ch {
		p.ch[i].rw = cwRWLSBMSB
		p.ch[i].gate = i != 2
	}
	p.portB = 0
	p.lastTick = p.tick()
	p.driveIRQ(false, p.lastTick)
}

// TicksAt converts clock nanoseconds to elapsed CLK input pulses.
func TicksAt(ns uint64) uint64 {
	hi, lo := bits.Mul64(ns, Frequency)
	q, _ := bits.Div64(hi, lo, 1_000_000_000) // hi < 1e9 since Frequency < 1e9
	return q
}

// NanosAt returns the first clock time at which TicksAt reaches tick.
func NanosAt(tick uint64) uint64 {
	hi, lo := bits.Mul64(tick, 1_000_000_000)
	if hi >= Frequency {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, Frequency)
	if r != 0 {
		q++
	}
	return q
}

func (p *PIT) tick() uint64 {
	if p.clock == nil {
		return 0
	}
	return TicksAt(p.clock.Now())
}

// driveIRQ sets the IRQ0 line to channel 0's OUT at tick t, first pulsing
// it when OUT rose since lastTick (an edge the line would otherwise miss).
func (p *PIT) driveIRQ(rose bool, t uint64) {
	c := &p.ch[0]
	c.settle(t)
	level := c.out(t)
	if rose {
		if p.irqLevel {
			p.irq.Set(false)
		}
		p.irq.Set(true)
		p.irqLevel = true
	}
	if level != p.irqLevel {
		p.irqLevel = level
		p.irq.Set(level)
	}
}

// update delivers channel 0's edges up to now.
func (p *PIT) update() {
	t := p.tick()
	if t < p.lastTick {
		t = p.lastTick // a clock that went backwards is treated as stopped
	}
	c := &p.ch[0]
	c.settle(p.lastTick)
	r, ok := c.nextRise(p.lastTick)
	p.lastTick = t
	p.driveIRQ(ok && r <= t, t)
}

// Update brings IRQ0 up to the clock's current time. The VMM calls it when
// NextEvent has passed (and may call it at any other time).
func (p *PIT) Update() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.update()
}

// NextEvent returns the clock time of channel 0's next rising OUT edge,
// the next time IRQ0 can be raised.
func (p *PIT) NextEvent() (ns uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &p.ch[0]
	c.settle(p.lastTick)
	r, ok := c.nextRise(p.lastTick)
	if !ok {
		return 0, false
	}
	return NanosAt(r), true
}

func (p *PIT) writeControl(t uint64, v uint8) {
	sc := v >> cwSCShift
	if sc == cwReadBack {
		for i := range p.ch {
			if v&(2<<i) == 0 {
				continue
			}
			c := &p.ch[i]
			c.settle(t)
			if v&rbNotCount == 0 {
				p.latchCount(c, t)
			}
			if v&rbNotStatus == 0 && !c.statusOK {
				c.status = c.rw<<cwRWShift | c.modeBits<<cwModeShift
				if c.bcd {
					c.status |= cwBCD
				}
				if c.out(t) {
					c.status |= statusOut
				}
				if c.nullCnt {
					c.status |= statusNullCount
				}
				c.statusOK = true
			}
		}
		return
	}
	c := &p.ch[sc]
	rw := v >> cwRWShift & 3
	if rw == cwRWLatch {
		c.settle(t)
		p.latchCount(c, t)
		return
	}
	// A control word resets the counter's logic: counting stops until a
	// count is written, and OUT takes the mode's initial level.
	c.freeze(t)
	c.modeBits = v >> cwModeShift & cwModeMask
	c.rw = rw
	c.bcd = v&cwBCD != 0
	c.frozen = uint16(uint32(c.frozen) % c.modulus()) // CE as the new format can hold it
	c.writeMSB, c.readMSB, c.latchN, c.statusOK = false, false, 0, false
	c.armed, c.pending, c.tcPassed = false, false, false
	c.nullCnt = true
}

// latchCount is the counter latch command; a second latch before the
// first is read is ignored.
func (p *PIT) latchCount(c *channel, t uint64) {
	if c.latchN != 0 {
		return
	}
	c.latch = c.readValue(t)
	if c.rw == cwRWLSBMSB {
		c.latchN = 2
	} else {
		c.latchN = 1
	}
}

func (p *PIT) writeCount(i int, t uint64, v uint8) {
	c := &p.ch[i]
	c.settle(t)
	switch c.rw {
	case cwRWLSB:
		c.cr = uint16(v)
	case cwRWMSB:
		c.cr = uint16(v) << 8
	default:
		if !c.writeMSB {
			c.crLow, c.writeMSB = v, true
			if c.mode() == 0 {
				// Writing the first byte of a mode-0 count stops counting
				// and drives OUT low at once.
				c.freeze(t)
				c.armed = true
				c.tcPassed = false
			}
			return
		}
		c.cr, c.writeMSB = uint16(v)<<8|uint16(c.crLow), false
	}
	c.nullCnt = true
	n := c.initialCount()
	switch c.mode() {
	case 0, 4:
		if c.gate {
			c.load(t, n)
		} else {
			c.freeze(t)
			c.armed, c.dist, c.tcPassed = true, n, false
			c.frozen = uint16(n % c.modulus())
		}
	case 1, 5:
		// The count waits for a gate trigger.
		c.armed = true
	case 2, 3:
		switch {
		case !c.gate:
			c.armed = true
		case !c.armed || !c.running || t < c.base:
			c.load(t, n)
		default:
			// The current period (mode 2) or half-cycle (mode 3) ends
			// first; the new count is loaded at that reload.
			c.pending, c.pendingN = true, n
			c.pendingAt = p.reloadAfter(c, t)
		}
	}
}

// reloadAfter returns the tick of the next reload after t for a running
// mode 2 or 3 counter.
func (p *PIT) reloadAfter(c *channel, t uint64) uint64 {
	if t < c.base {
		return c.base
	}
	per := uint64(c.period)
	d := t - c.base
	cycle := c.base + d/per*per
	if c.mode() == 2 {
		return cycle + per
	}
	first := (per + 1) / 2
	if !c.startHigh {
		first = per / 2
	}
	if cycle+first > t {
		return cycle + first
	}
	return cycle + per
}

func (p *PIT) readCount(i int, t uint64) uint8 {
	c := &p.ch[i]
	if c.statusOK {
		c.statusOK = false
		return c.status
	}
	var v uint16
	if c.latchN > 0 {
		v = c.latch
	} else {
		v = c.readValue(t)
	}
	var b uint8
	switch c.rw {
	case cwRWLSB:
		b = uint8(v)
	case cwRWMSB:
		b = uint8(v >> 8)
	default:
		if c.readMSB {
			b = uint8(v >> 8)
		} else {
			b = uint8(v)
		}
		c.readMSB = !c.readMSB
	}
	if c.latchN > 0 {
		c.latchN--
	}
	return b
}

// setGate2 drives channel 2's GATE input.
func (p *PIT) setGate2(t uint64, level bool) {
	c := &p.ch[2]
	if c.gate == level {
		return
	}
	c.settle(t)
	c.gate = level
	switch c.mode() {
	case 0, 4:
		if !level {
			c.freeze(t)
		} else if c.armed {
			rem := uint32(c.frozen)
			if rem == 0 {
				rem = c.modulus()
			}
			tc := c.tcPassed
			c.load(t, rem)
			c.tcPassed = tc
		}
	case 1, 5:
		if level && c.armed {
			// A rising edge triggers: CR is loaded at the next CLK.
			c.load(t, c.initialCount())
		}
	case 2, 3:
		if !level {
			c.freeze(t)
		} else if c.armed {
			c.load(t, c.initialCount())
		}
	}
}

// Read implements bus.Device for ports 0x40-0x43. The control port reads
// as all ones (it is write-only on the 8254).
func (p *PIT) Read(off uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tick()
	for i := range data {
		switch o := off + uint64(i); o {
		case 0, 1, 2:
			data[i] = p.readCount(int(o), t)
		default:
			data[i] = 0xFF
		}
	}
}

// Write implements bus.Device for ports 0x40-0x43.
func (p *PIT) Write(off uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.update()
	t := p.lastTick
	for i, v := range data {
		switch o := off + uint64(i); o {
		case 0, 1, 2:
			p.writeCount(int(o), t, v)
		case 3:
			p.writeControl(t, v)
		}
	}
	p.driveIRQ(false, t)
}

type portB struct{ p *PIT }

func (b portB) Read(off uint64, data []byte) {
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range data {
		data[i] = 0xFF
		if off+uint64(i) != 0 {
			continue
		}
		t := p.tick()
		v := p.portB
		c := &p.ch[2]
		c.settle(t)
		if c.out(t) {
			v |= portBOut2
		}
		if p.clock != nil && (p.clock.Now()/refreshPeriod)&1 != 0 {
			v |= portBRefresh
		}
		data[i] = v
	}
}

func (b portB) Write(off uint64, data []byte) {
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, v := range data {
		if off+uint64(i) != 0 {
			continue
		}
		p.portB = v & portBRWMask
		p.setGate2(p.tick(), v&portBGate2 != 0)
	}
}

// PortBDevice returns the bus device for port 0x61.
func (p *PIT) PortBDevice() bus.Device { return portB{p: p} }

// Speaker reports whether the PC speaker is sounding: timer 2's output
// enabled onto it by port B bit 1.
func (p *PIT) Speaker() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tick()
	c := &p.ch[2]
	c.settle(t)
	return p.portB&portBSpeaker != 0 && c.out(t)
}

// Install registers the PIT at 0x40-0x43 and port B at 0x61.
func (p *PIT) Install(b *bus.Bus) error {
	if err := b.RegisterPorts(Base, Ports, "pit8254", p); err != nil {
		return fmt.Errorf("pit: install: %w", err)
	}
	if err := b.RegisterPorts(PortB, 1, "port61", p.PortBDevice()); err != nil {
		return fmt.Errorf("pit: install: %w", err)
	}
	return nil
}
