package pit

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "pit8254"
	stateVersion = 1
)

func (c *channel) save(e *snapshot.Encoder) {
	e.U8(c.modeBits)
	e.U8(c.rw)
	e.U16(c.cr)
	e.U8(c.crLow)
	e.U8(c.latchN)
	e.U16(c.latch)
	e.U8(c.status)
	e.U16(c.frozen)
	for _, b := range []bool{c.bcd, c.writeMSB, c.readMSB, c.statusOK, c.gate, c.nullCnt, c.armed, c.running, c.tcPassed, c.startHigh, c.pending} {
		e.Bool(b)
	}
	e.U64(c.base)
	e.U32(c.dist)
	e.U32(c.period)
	e.U64(c.pendingAt)
	e.U32(c.pendingN)
}

func (c *channel) restore(d *snapshot.Decoder, i int) {
	c.modeBits = d.U8()
	c.rw = d.U8()
	c.cr = d.U16()
	c.crLow = d.U8()
	c.latchN = d.U8()
	c.latch = d.U16()
	c.status = d.U8()
	c.frozen = d.U16()
	for _, p := range []*bool{&c.bcd, &c.writeMSB, &c.readMSB, &c.statusOK, &c.gate, &c.nullCnt, &c.armed, &c.running, &c.tcPassed, &c.startHigh, &c.pending} {
		*p = d.Bool()
	}
	c.base = d.U64()
	c.dist = d.U32()
	c.period = d.U32()
	c.pendingAt = d.U64()
	c.pendingN = d.U32()
	m := c.modulus()
	d.Check(c.modeBits <= cwModeMask, "channel %d mode %d", i, c.modeBits)
	d.Check(c.rw >= cwRWLSB && c.rw <= cwRWLSBMSB, "channel %d access mode %d", i, c.rw)
	d.Check(c.latchN <= 2, "channel %d latched bytes %d", i, c.latchN)
	d.Check(uint32(c.frozen) < m, "channel %d count %d", i, c.frozen)
	if c.running {
		switch c.mode() {
		case 2, 3:
			d.Check(c.period >= 1 && c.period <= m, "channel %d period %d", i, c.period)
		default:
			d.Check(c.dist >= 1 && c.dist <= m, "channel %d distance %d", i, c.dist)
		}
	}
	if c.pending {
		d.Check(c.pendingN >= 1 && c.pendingN <= m && c.pendingAt > c.base, "channel %d pending reload", i)
	}
}

// SaveState returns the PIT's state as a versioned blob. Times are CLK
// ticks of the injected clock, so a restore must use the same timeline
// (the VMM restores its clock before its devices).
func (p *PIT) SaveState() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	for i := range p.ch {
		p.ch[i].save(e)
	}
	e.U8(p.portB)
	e.U64(p.lastTick)
	e.Bool(p.irqLevel)
	return e.Finish(), nil
}

// RestoreState replaces the PIT's state with blob after validating it; on
// error the PIT is unchanged. IRQ0 is re-driven to the restored level.
func (p *PIT) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("pit: restore: %w", err)
	}
	var ch [3]channel
	for i := range ch {
		ch[i].restore(d, i)
	}
	pb := d.U8()
	last := d.U64()
	level := d.Bool()
	d.Check(pb&^portBRWMask == 0, "port B %#x", pb)
	d.Check(ch[0].gate && ch[1].gate, "gates 0 and 1 are wired high")
	d.Check(ch[2].gate == (pb&portBGate2 != 0), "gate 2 disagrees with port B")
	if err := d.Finish(); err != nil {
		return fmt.Errorf("pit: restore: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ch, p.portB, p.lastTick, p.irqLevel = ch, pb, last, level
	p.irq.Set(level)
	return nil
}
