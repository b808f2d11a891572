package ioapic

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "ioapic"
	stateVersion = 1
)

// SaveState returns the I/O APIC's registers and pin levels.
func (x *IOAPIC) SaveState() ([]byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.U32(x.id)
	e.U8(x.regSel)
	for i := range x.redir {
		e.U64(x.redir[i])
		e.Bool(x.level[i])
	}
	return e.Finish(), nil
}

// RestoreState restores a blob from SaveState; on error nothing changes.
// Nothing is delivered on restore: an active level-triggered pin with
// Remote IRR clear and unmasked cannot be in a saved state (it would have
// been sent), and the LAPICs' IRRs are restored with their own state.
func (x *IOAPIC) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("ioapic: restore: %w", err)
	}
	id, sel := d.U32(), d.U8()
	var redir [Pins]uint64
	var level [Pins]bool
	for i := range redir {
		redir[i], level[i] = d.U64(), d.Bool()
		e := redir[i]
		d.Check(e&^(reWritable|reRemoteIRR) == 0, "entry %d = %#x", i, e)
		d.Check(e&reRemoteIRR == 0 || e&reLevel != 0, "entry %d: Remote IRR on an edge entry", i)
	}
	d.Check(id&^idMask == 0, "ID %#x", id)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("ioapic: restore: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.id, x.regSel, x.redir, x.level = id, sel, redir, level
	return nil
}
