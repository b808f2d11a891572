package lapic

import (
	"fmt"

	"hv/devices/internal/snapshot"
)

const (
	stateTag     = "lapic"
	stateVersion = 1
)

var lvtWritable = [numLVT]uint32{lvtTimerWritable, lvtOtherWritable, lvtOtherWritable,
	lvtLINTWritable | lvtRemoteIRR, lvtLINTWritable | lvtRemoteIRR, lvtErrWritable}

// SaveState returns the LAPIC's registers, timer and pending events as a
// versioned blob. Timer times are bus ticks on the injected clock.
func (a *LAPIC) SaveState() ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.U64(a.base)
	for _, v := range []uint32{a.id, a.tpr, a.ldr, a.dfr, a.svr, a.esr, a.errPending, a.icrLow, a.icrHigh, a.timerDiv} {
		e.U32(v)
	}
	for _, r := range []*[8]uint32{&a.irr, &a.isr, &a.tmr} {
		for _, v := range r {
			e.U32(v)
		}
	}
	for _, v := range a.lvt {
		e.U32(v)
	}
	e.U32(a.timer.initial)
	e.Bool(a.timer.armed)
	e.U64(a.timer.expire)
	e.U64(a.timer.deadline)
	for _, b := range []bool{a.lintLevel[0], a.lintLevel[1], a.nmi, a.init, a.sipi, a.extINT} {
		e.Bool(b)
	}
	e.U8(a.sipiVec)
	return e.Finish(), nil
}

// RestoreState restores a blob from SaveState after validating every
// field; on error the LAPIC is unchanged.
func (a *LAPIC) RestoreState(blob []byte) error {
	d, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return fmt.Errorf("lapic: restore: %w", err)
	}
	var n LAPIC
	n.base = d.U64()
	for _, p := range []*uint32{&n.id, &n.tpr, &n.ldr, &n.dfr, &n.svr, &n.esr, &n.errPending, &n.icrLow, &n.icrHigh, &n.timerDiv} {
		*p = d.U32()
	}
	for _, r := range []*[8]uint32{&n.irr, &n.isr, &n.tmr} {
		for i := range r {
			r[i] = d.U32()
		}
	}
	for i := range n.lvt {
		n.lvt[i] = d.U32()
	}
	n.timer.initial = d.U32()
	n.timer.armed = d.Bool()
	n.timer.expire = d.U64()
	n.timer.deadline = d.U64()
	for _, p := range []*bool{&n.lintLevel[0], &n.lintLevel[1], &n.nmi, &n.init, &n.sipi, &n.extINT} {
		*p = d.Bool()
	}
	n.sipiVec = d.U8()

	x2 := n.base&BaseX2APIC != 0
	d.Check(n.base&^baseMask == 0, "APIC base %#x", n.base)
	d.Check(!x2 || n.base&BaseEnable != 0, "x2APIC without EN")
	d.Check((n.base&BaseBSP != 0) == a.cfg.BSP, "BSP bit differs from the wiring")
	d.Check(x2 || n.id <= 0xFF, "xAPIC ID %#x", n.id)
	d.Check(!x2 || n.ldr == x2LDR(n.id), "x2APIC LDR %#x for ID %#x", n.ldr, n.id)
	d.Check(x2 || n.ldr&^ldrXAPICMask == 0, "LDR %#x", n.ldr)
	d.Check(n.dfr|dfrWritable == dfrFlat, "DFR %#x", n.dfr)
	d.Check(n.tpr <= tprMask, "TPR %#x", n.tpr)
	d.Check(n.svr&^svrWritable == 0, "SVR %#x", n.svr)
	d.Check(n.icrLow&^icrLowWritable == 0, "ICR low %#x", n.icrLow)
	d.Check(x2 || n.icrHigh&^0xFF000000 == 0, "ICR high %#x", n.icrHigh)
	d.Check(n.timerDiv&^timerDivMask == 0, "divide configuration %#x", n.timerDiv)
	allErr := uint32(ESRSendIllegalVector | ESRReceiveIllegalVector | ESRIllegalRegister)
	d.Check(n.esr&^allErr == 0 && n.errPending&^allErr == 0, "ESR %#x/%#x", n.esr, n.errPending)
	for i, v := range n.lvt {
		d.Check(v&^lvtWritable[i] == 0, "LVT %d = %#x", i, v)
	}
	mode := n.lvt[lvtTimer] & lvtTimerMode >> lvtTimerShift
	d.Check(mode != 3, "reserved timer mode")
	if mode == TimerTSCDeadline {
		d.Check(n.timer.armed == (n.timer.deadline != 0) && n.timer.initial == 0, "TSC-deadline timer state")
	} else {
		d.Check(n.timer.deadline == 0, "deadline %d outside TSC-deadline mode", n.timer.deadline)
		d.Check(!n.timer.armed || n.timer.initial != 0, "armed timer with zero count")
	}
	// Vectors 0-15 can never be accepted (11.8.3).
	d.Check(n.irr[0]&0xFFFF == 0 && n.isr[0]&0xFFFF == 0 && n.tmr[0]&0xFFFF == 0, "illegal vectors pending")
	d.Check(n.sipi || n.sipiVec == 0, "SIPI vector without SIPI")
	if err := d.Finish(); err != nil {
		return fmt.Errorf("lapic: restore: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.base, a.id, a.tpr, a.ldr, a.dfr, a.svr = n.base, n.id, n.tpr, n.ldr, n.dfr, n.svr
	a.esr, a.errPending, a.icrLow, a.icrHigh, a.timerDiv = n.esr, n.errPending, n.icrLow, n.icrHigh, n.timerDiv
	a.irr, a.isr, a.tmr, a.lvt, a.timer = n.irr, n.isr, n.tmr, n.lvt, n.timer
	a.lintLevel, a.nmi, a.init, a.sipi, a.sipiVec, a.extINT = n.lintLevel, n.nmi, n.init, n.sipi, n.sipiVec, n.extINT
	return nil
}
