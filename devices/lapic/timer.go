package lapic

import "math/bits"

// timerState is the APIC timer (SDM 11.5.4). In one-shot and periodic mode
// the current count is a closed-form function of the bus tick at which it
// reaches zero (expire), so nothing ticks between accesses; in TSC-deadline
// mode the deadline is a guest TSC value.
type timerState struct {
	initial  uint32 // initial-count register as written
	armed    bool   // counting down (count/periodic) or deadline set
	expire   uint64 // bus tick at which the count reaches zero
	deadline uint64 // IA32_TSC_DEADLINE, 0 = disarmed
}

func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return ^uint64(0)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

func mulDivCeil(a, b, c uint64) uint64 {
	if c == 0 {
		return ^uint64(0)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, c)
	if r != 0 {
		q++
	}
	return q
}

// busTick is the timer input clock at VM time ns.
func (a *LAPIC) busTick(ns uint64) uint64 { return mulDiv(ns, a.busHz, 1_000_000_000) }

// busNanos is the first VM time at which the input clock reaches tick.
func (a *LAPIC) busNanos(tick uint64) uint64 { return mulDivCeil(tick, 1_000_000_000, a.busHz) }

// divisor decodes the divide configuration register: bits 3,1:0 select
// 2^(n+1), with 111b meaning 1 (SDM 11.5.4 figure 11-10).
func divisor(reg uint32) uint64 {
	n := reg&3 | reg>>1&4
	if n == 7 {
		return 1
	}
	return 2 << n
}

func (a *LAPIC) timerMode() uint32 { return a.lvt[lvtTimer] & lvtTimerMode >> lvtTimerShift }

// currentCount is the current-count register (SDM 11.5.4): the count left
// until expire, in divided ticks, rounded up; 0 when stopped or in
// TSC-deadline mode.
func (a *LAPIC) currentCount() uint32 {
	t := &a.timer
	if !t.armed || a.timerMode() == TimerTSCDeadline {
		return 0
	}
	now := a.busTick(a.now())
	if now >= t.expire {
		return 0
	}
	div := divisor(a.timerDiv)
	left := (t.expire - now + div - 1) / div
	return uint32(min(left, uint64(t.initial)))
}

func (a *LAPIC) writeInitialCount(v uint32) {
	if a.timerMode() == TimerTSCDeadline {
		return // ignored in TSC-deadline mode (11.5.4.1)
	}
	t := &a.timer
	t.initial = v
	t.armed = v != 0
	if t.armed {
		t.expire = a.busTick(a.now()) + uint64(v)*divisor(a.timerDiv)
	}
}

// writeDivide changes the divider; a running count continues from its
// current value at the new rate.
func (a *LAPIC) writeDivide(v uint32) {
	cur := a.currentCount()
	a.timerDiv = v
	t := &a.timer
	if t.armed && a.timerMode() != TimerTSCDeadline && cur != 0 {
		t.expire = a.busTick(a.now()) + uint64(cur)*divisor(v)
	}
}

func (a *LAPIC) writeLVTTimer(v uint32) {
	old := a.timerMode()
	a.writeLVT(lvtTimer, v, lvtTimerWritable)
	mode := a.timerMode()
	if mode == 3 {
		// Reserved mode: keep the old one rather than invent behaviour.
		a.lvt[lvtTimer] = a.lvt[lvtTimer]&^lvtTimerMode | old<<lvtTimerShift
		mode = old
	}
	if (old == TimerTSCDeadline) != (mode == TimerTSCDeadline) {
		// Switching into or out of TSC-deadline mode disarms the timer
		// (11.5.4.1).
		a.timer = timerState{}
	}
}

func (a *LAPIC) writeDeadline(v uint64) {
	if a.timerMode() != TimerTSCDeadline {
		return // writes are ignored outside TSC-deadline mode (11.5.4.1)
	}
	a.timer.deadline = v
	a.timer.armed = v != 0
	a.advance() // a deadline in the past fires at once
}

// advance fires the timer for everything up to now. It runs at the start
// of every access and in Update, so the IRR changes only inside those.
func (a *LAPIC) advance() {
	t := &a.timer
	if !t.armed {
		return
	}
	now := a.now()
	if a.timerMode() == TimerTSCDeadline {
		if a.tsc.TicksAt(now) >= t.deadline {
			t.deadline, t.armed = 0, false
			a.lvtInterrupt(lvtTimer)
		}
		return
	}
	tick := a.busTick(now)
	if tick < t.expire {
		return
	}
	if a.timerMode() == TimerPeriodic && t.initial != 0 {
		// Every period that ended since the last look is one interrupt;
		// they coalesce in the one IRR bit, as on the chip when the
		// processor is slower than the timer.
		period := uint64(t.initial) * divisor(a.timerDiv)
		t.expire += ((tick-t.expire)/period + 1) * period
	} else {
		t.armed = false
	}
	a.lvtInterrupt(lvtTimer)
}

// Update fires the timer if its time has come. The VMM calls it when
// NextEvent has passed (and may at any other time).
func (a *LAPIC) Update() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance()
}

// NextEvent returns the VM time of the next timer expiry; a time already
// past means Update is due.
func (a *LAPIC) NextEvent() (ns uint64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &a.timer
	if !t.armed {
		return 0, false
	}
	if a.timerMode() == TimerTSCDeadline {
		return a.tsc.NanosAt(t.deadline), true
	}
	return a.busNanos(t.expire), true
}
