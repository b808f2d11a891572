package acpipm

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "acpipm"
	stateVersion = 1
)

// SaveState returns the block's registers as a versioned blob. The timer
// itself is the VM clock and is not saved.
func (p *PM) SaveState() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.U16(p.pm1Sts)
	e.U16(p.pm1En)
	e.U16(p.pm1Cnt)
	e.U32(p.gpeSts)
	e.U32(p.gpeEn)
	e.U64(p.tmrSeen)
	e.U64(p.sleepRequests)
	return e.Finish(), nil
}

// RestoreState restores a blob from SaveState; on error nothing changes.
// The SCI is re-driven to the restored condition.
func (p *PM) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("acpipm: restore: %w", err)
	}
	sts, en, cnt := d.U16(), d.U16(), d.U16()
	gsts, gen := d.U32(), d.U32()
	seen, sleeps := d.U64(), d.U64()
	d.Check(sts&^pm1StsImplemented == 0, "PM1 status %#x", sts)
	d.Check(en&^pm1EnImplemented == 0, "PM1 enable %#x", en)
	d.Check(cnt&^pm1CntStored == 0, "PM1 control %#x", cnt)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("acpipm: restore: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pm1Sts, p.pm1En, p.pm1Cnt, p.gpeSts, p.gpeEn = sts, en, cnt, gsts, gen
	p.tmrSeen, p.sleepRequests = seen, sleeps
	p.sciLevel = !p.sciCondition()
	p.driveSCI()
	return nil
}
