package i8042

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "i8042"
	stateVersion = 1
)

// SaveState returns the controller's RAM, output port and buffer state.
func (c *Controller) SaveState() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.Bytes(c.ram[:])
	e.U8(c.out)
	e.Bool(c.obf)
	e.U8(c.obData)
	e.Bool(c.timeout)
	e.Bool(c.lastCmd)
	e.U8(c.pending)
	return e.Finish(), nil
}

// RestoreState restores a blob from SaveState; on error nothing changes.
// IRQ1 is re-driven to the restored level.
func (c *Controller) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("i8042: restore: %w", err)
	}
	ram := d.Bytes(32)
	out, obf, obData, timeout, lastCmd, pending := d.U8(), d.Bool(), d.U8(), d.Bool(), d.Bool(), d.U8()
	d.Check(len(ram) == 32, "RAM of %d bytes", len(ram))
	d.Check(out&OutReset != 0, "reset line held low")
	d.Check(pending == 0 || pending == cmdWriteOutput || pending == cmdWriteKbdOB ||
		pending >= cmdWriteRAM && pending < cmdWriteRAM+32, "pending command %#x", pending)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("i8042: restore: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(c.ram[:], ram)
	c.out, c.obf, c.obData, c.timeout, c.lastCmd, c.pending = out, obf, obData, timeout, lastCmd, pending
	c.irqLevel = !(c.obf && c.ram[0]&CtrKbdInt != 0)
	c.drive()
	return nil
}
