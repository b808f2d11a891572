package uart

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "uart16550"
	stateVersion = 1
)

// SaveState returns the UART's state as a versioned blob. The sink, line
// and clock are wiring, not state, and are not saved.
func (u *UART) SaveState() ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	for _, v := range []uint8{u.ier, u.lcr, u.mcr, u.scr, u.dll, u.dlm, u.fcr, u.lsrSticky, u.msr, u.modemIn} {
		e.U8(v)
	}
	e.Bool(u.thrIntPending)
	e.U64(u.lastRxActivity)
	e.U8(uint8(len(u.rx)))
	for _, c := range u.rx {
		e.U8(c.data)
		e.U8(c.flags)
	}
	return e.Finish(), nil
}

// RestoreState replaces the UART's state with blob after validating it; on
// error the UART is unchanged. The interrupt line is re-driven.
func (u *UART) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("uart: restore: %w", err)
	}
	var n UART
	for _, p := range []*uint8{&n.ier, &n.lcr, &n.mcr, &n.scr, &n.dll, &n.dlm, &n.fcr, &n.lsrSticky, &n.msr, &n.modemIn} {
		*p = d.U8()
	}
	n.thrIntPending = d.Bool()
	n.lastRxActivity = d.U64()
	count := int(d.U8())
	d.Check(n.ier&^ierMask == 0, "IER %#x", n.ier)
	d.Check(n.mcr&^mcrMask == 0, "MCR %#x", n.mcr)
	d.Check(n.fcr&^fcrStoredMsk == 0, "FCR %#x", n.fcr)
	d.Check(n.lsrSticky&^lsrErrors == 0, "LSR error bits %#x", n.lsrSticky)
	d.Check(n.modemIn&msrDeltas == 0, "modem inputs %#x", n.modemIn)
	d.Check(count <= n.rxCapacity(), "%d characters in a receiver of %d", count, n.rxCapacity())
	for i := 0; i < count && i <= fifoSize; i++ {
		c := rxChar{data: d.U8(), flags: d.U8()}
		d.Check(c.flags&^(lsrPE|lsrFE|lsrBI) == 0, "receive flags %#x", c.flags)
		n.rx = append(n.rx, c)
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("uart: restore: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ier, u.lcr, u.mcr, u.scr, u.dll, u.dlm = n.ier, n.lcr, n.mcr, n.scr, n.dll, n.dlm
	u.fcr, u.lsrSticky, u.msr, u.modemIn = n.fcr, n.lsrSticky, n.msr, n.modemIn
	u.thrIntPending, u.lastRxActivity = n.thrIntPending, n.lastRxActivity
	u.rx = append(u.rx[:0], n.rx...)
	u.irqLevel = u.interrupt() != iirNoInterrupt && u.mcr&mcrOUT2 != 0 && !u.loop()
	u.irq.Set(u.irqLevel)
	return nil
}
