package pic

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "pic8259"
	stateVersion = 1
)

func (c *chip) save(e *snapshot.Encoder) {
	for _, v := range []uint8{c.irr, c.isr, c.imr, c.lines, c.elcr, c.vectorBase, c.lowest, c.initStep, c.icw3, c.icw4} {
		e.U8(v)
	}
	for _, b := range []bool{c.needICW4, c.single, c.ltim, c.rotateOnAEOI, c.readISR, c.poll, c.specialMask} {
		e.Bool(b)
	}
}

func (c *chip) load(d *snapshot.Decoder, name string) {
	for _, p := range []*uint8{&c.irr, &c.isr, &c.imr, &c.lines, &c.elcr, &c.vectorBase, &c.lowest, &c.initStep, &c.icw3, &c.icw4} {
		*p = d.U8()
	}
	for _, p := range []*bool{&c.needICW4, &c.single, &c.ltim, &c.rotateOnAEOI, &c.readISR, &c.poll, &c.specialMask} {
		*p = d.Bool()
	}
	d.Check(c.lowest < 8, "%s lowest priority %d", name, c.lowest)
	d.Check(c.initStep == 0 || (c.initStep >= 2 && c.initStep <= 4), "%s init step %d", name, c.initStep)
	d.Check(c.elcr&^c.elcrMask == 0, "%s ELCR %#x has edge-only bits", name, c.elcr)
	d.Check(c.vectorBase&^icw2VectorMask == 0, "%s vector base %#x", name, c.vectorBase)
	for irq := uint8(0); irq < 8; irq++ {
		bit := uint8(1) << irq
		d.Check(!c.levelTriggered(irq) || irq == CascadeIRQ || c.irr&bit == c.lines&bit,
			"%s level-triggered IR%d request does not match its line", name, irq)
	}
}

// SaveState returns the pair's state as a versioned blob.
func (p *Pair) SaveState() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	p.master.save(e)
	p.slave.save(e)
	return e.Finish(), nil
}

// RestoreState replaces the pair's state with blob after validating it; on
// error the pair is unchanged. The INT output is re-driven to the restored
// level.
func (p *Pair) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("pic: restore: %w", err)
	}
	m := chip{elcrMask: elcrMaskMaster}
	s := chip{elcrMask: elcrMaskSlave}
	m.load(d, "master")
	s.load(d, "slave")
	if err := d.Finish(); err != nil {
		return fmt.Errorf("pic: restore: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.master, p.slave = m, s
	_, slaveInt := p.slave.pending(false)
	p.master.setLine(CascadeIRQ, slaveInt)
	_, p.out = p.master.pending(true)
	p.intr.Set(p.out)
	return nil
}
