package rtc

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "rtc146818"
	stateVersion = 1
)

// SaveState returns the RTC's state, CMOS RAM included, as a versioned
// blob. Times are on the injected clock's timeline.
func (r *RTC) SaveState() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.Bytes(r.ram[:])
	for _, v := range []uint8{r.index, r.a, r.b, r.c, r.alarm[0], r.alarm[1], r.alarm[2]} {
		e.U8(v)
	}
	e.Bool(r.nmiDisabled)
	e.Bool(r.running)
	e.Bool(r.irqLevel)
	for _, v := range []int64{r.secs, r.origin, r.divBase, r.doneSecs} {
		e.U64(uint64(v))
	}
	e.U64(r.doneTick)
	return e.Finish(), nil
}

// RestoreState replaces the RTC's state with blob after validating it; on
// error the RTC is unchanged. IRQ8 is re-driven to the restored level.
func (r *RTC) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("rtc: restore: %w", err)
	}
	var n RTC
	ram := d.Bytes(ramSize)
	copy(n.ram[:], ram)
	for _, p := range []*uint8{&n.index, &n.a, &n.b, &n.c, &n.alarm[0], &n.alarm[1], &n.alarm[2]} {
		*p = d.U8()
	}
	n.nmiDisabled, n.running, n.irqLevel = d.Bool(), d.Bool(), d.Bool()
	for _, p := range []*int64{&n.secs, &n.origin, &n.divBase, &n.doneSecs} {
		*p = int64(d.U64())
	}
	n.doneTick = d.U64()
	d.Check(len(ram) == ramSize, "CMOS RAM of %d bytes", len(ram))
	d.Check(n.index <= indexMask, "index %#x", n.index)
	d.Check(n.a&aUIP == 0, "register A %#x", n.a)
	d.Check(n.c&^(cIRQF|cPF|cAF|cUF) == 0, "register C %#x", n.c)
	d.Check(n.origin >= 0 && n.divBase >= 0 && n.doneSecs >= 0, "negative clock times")
	// The calendar must stay inside what the time package can encode.
	const maxSecs = 1 << 40
	d.Check(n.secs > -maxSecs && n.secs < maxSecs, "calendar %d out of range", n.secs)
	if err := d.Finish(); err != nil {
		return fmt.Errorf("rtc: restore: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram, r.index, r.a, r.b, r.c, r.alarm = n.ram, n.index, n.a, n.b, n.c, n.alarm
	r.nmiDisabled, r.running, r.irqLevel = n.nmiDisabled, n.running, n.irqLevel
	r.secs, r.origin, r.divBase, r.doneSecs, r.doneTick = n.secs, n.origin, n.divBase, n.doneSecs, n.doneTick
	r.irq.Set(r.irqLevel)
	return nil
}
