package boot

import (
	"sync/atomic"
)

// The kernel is an event handler: every entry (system call, interrupt,
// fault) saves the running thread's whole state into its frame, runs
// kernelEntry on the CPU's kernel stack with interrupts off under one big
// kernel lock, and resumes whichever thread the scheduler picks. A blocked
// system call simply leaves its thread out of the run queues; whoever wakes it
// writes the result into its saved RAX. So there are no kernel stacks per
// thread and no kernel preemption.

const timeSlice = 10e6 // ns

var bigLock atomic.Uint32

func lockKernel() {
	for !bigLock.CompareAndSwap(0, 1) {
		pause()
	}
}

func unlockKernel() { bigLock.Store(0) }

func thisCPU() *percpu { return (*percpu)(physPtr(percpuSelf())) }

func percpuSelf() uint64
func startFirstThread(addr uint64)
func addrOfSyscallEntry() uint64
func addrOfIdleLoop() uint64
func addrOfRt0() uint64
func addrOfVectorTable() uint64
func reloadSegments()

// ncpu is the number of CPUs online; threads are placed on them.
var ncpu atomic.Int32

// kernelEntry is called by kernelEnter with the current thread's state saved.
// It returns the address of the thread to resume.
//
//lint:ignore U1000 called from trap_amd64.s
func kernelEntry() uint64 {
	c := thisCPU()
	t := threadAt(c.cur)
	c.kernelEntries++
	lockKernel()
	v := t.f.vector
	switch {
	case v == vecSyscall:
		doSyscall(c, t)
	case v < 32:
		threadException(c, t)
	case v == vecTimer:
		lapicEOIWrite()
		c.ticks++
		c.timerArmedAt = 0 // one-shot: it has fired
		wakeExpired(c)
	case v == vecWake:
		lapicEOIWrite()
	case v == vecSpurious:
		// No EOI for spurious interrupts (SDM vol. 3A 11.9).
	default:
		lapicEOIWrite()
		var l line
		l.s("hv: unexpected interrupt vector ").dec(v).s(" on cpu ").dec(uint64(c.id)).print()
	}
	next := pickNext(c, t)
	armTimer(c, next)
	unlockKernel()
	return addrOf(next)
}

// enqueue appends t to CPU c's run queue.
func enqueue(c *percpu, t *thread) {
	t.state = threadRunnable
	t.cpu = c.id
	t.nextRun = -1
	i := int32(t.index())
	if c.runTail < 0 {
		c.runHead = i
	} else {
		threads[c.runTail].nextRun = i
	}
	c.runTail = i
	c.nrun++
}

func dequeue(c *percpu) *thread {
	if c.runHead < 0 {
		return nil
	}
	t := &threads[c.runHead]
	c.runHead = t.nextRun
	if c.runHead < 0 {
		c.runTail = -1
	}
	c.nrun--
	t.nextRun = -1
	return t
}

// pickNext decides what runs on c after an entry from cur.
func pickNext(c *percpu, cur *thread) *thread {
	now := nanotime()
	resched := c.needResched
	c.needResched = false
	if cur.state == threadRunning && !cur.idle {
		if c.nrun == 0 || now < cur.sliceEnd && !resched {
			return cur
		}
		enqueue(c, cur) // slice used up and others wait
	}
	if cur.state == threadRunning && cur.idle {
		cur.state = threadRunnable
	}
	next := dequeue(c)
	if next == nil {
		next = steal(c)
	}
	if next == nil {
		next = &threads[c.idleTid]
	}
	next.state = threadRunning
	next.cpu = c.id
	next.sliceEnd = now + timeSlice
	next.switches++
	return next
}

// block takes the running thread t off the CPU until wake or its deadline
// (0: none). kind says what a timeout returns.
func block(t *thread, kind int32, addr uint64, deadline int64) {
	t.state = threadBlocked
	t.waitKind = kind
	t.waitAddr = addr
	t.deadline = deadline
}

const (
	waitNone = iota
	waitFutex
	waitSleep
	waitEpoll
)

// wake makes a blocked thread runnable with the given system-call result and
// kicks its CPU if that is not this one.
func wake(t *thread, result int64) {
	if t.state != threadBlocked {
		return
	}
	t.f.rax = uint64(result)
	t.waitKind = waitNone
	t.deadline = 0
	target := pickCPU(t)
	enqueue(&cpus[target], t)
	// The woken thread runs at once: a thread blocked on a futex is
	// usually the other half of a hand-over, and making it wait for the
	// current slice to end would add a whole slice of latency.
	cpus[target].needResched = true
	if c := thisCPU(); int(c.id) != target {
		lapicSendIPI(cpus[target].apicID, vecWake)
	}
}

// cpuIdle reports whether CPU i runs its idle thread with nothing queued.
func cpuIdle(i int) bool {
	c := &cpus[i]
	cur := threadAt(c.cur)
	return c.nrun == 0 && (cur == nil || cur.idle)
}

// pickCPU chooses where a thread that becomes runnable goes: its own CPU if
// allowed and idle (cache warmth), else an idle allowed CPU, else its own
// CPU if allowed, else the first allowed one.
func pickCPU(t *thread) int {
	n := int(ncpu.Load())
	home := int(t.cpu)
	homeOK := home < n && t.affinity.has(home)
	if homeOK && cpuIdle(home) {
		return home
	}
	for i := 0; i < n; i++ {
		if t.affinity.has(i) && cpuIdle(i) {
			return i
		}
	}
	if homeOK {
		return home
	}
	for i := 0; i < n; i++ {
		if t.affinity.has(i) {
			return i
		}
	}
	return 0
}

// steal takes a queued thread that may run on c from the busiest other CPU.
func steal(c *percpu) *thread {
	n := int(ncpu.Load())
	victim := -1
	for i := 0; i < n; i++ {
		if i != int(c.id) && cpus[i].nrun > 0 && (victim < 0 || cpus[i].nrun > cpus[victim].nrun) {
			victim = i
		}
	}
	if victim < 0 {
		return nil
	}
	v := &cpus[victim]
	prev := int32(-1)
	for i := v.runHead; i >= 0; i = threads[i].nextRun {
		t := &threads[i]
		if t.affinity.has(int(c.id)) {
			if prev < 0 {
				v.runHead = t.nextRun
			} else {
				threads[prev].nextRun = t.nextRun
			}
			if v.runTail == i {
				v.runTail = prev
			}
			v.nrun--
			t.nextRun = -1
			return t
		}
		prev = i
	}
	return nil
}

// leastLoadedCPU picks the CPU for a new thread among those allowed.
func leastLoadedCPU(m *cpuMask) int {
	n := int(ncpu.Load())
	best, bestLoad := -1, int32(1<<30)
	for i := 0; i < n; i++ {
		if !m.has(i) {
			continue
		}
		load := cpus[i].nrun
		if cur := threadAt(cpus[i].cur); cur != nil && !cur.idle && cur.state == threadRunning {
			load++
		}
		if load < bestLoad {
			best, bestLoad = i, load
		}
	}
	if best < 0 {
		return 0
	}
	return best
}

// wakeExpired wakes every blocked thread homed on c whose deadline passed.
func wakeExpired(c *percpu) {
	now := nanotime()
	for i := range threads[:threadHigh] {
		t := &threads[i]
		if t.state == threadBlocked && t.deadline != 0 && t.deadline <= now && t.cpu == c.id {
			switch t.waitKind {
			case waitFutex:
				wake(t, -_ETIMEDOUT)
			default:
				wake(t, 0)
			}
		}
	}
}

// armTimer programs c's one-shot LAPIC timer for the next event that
// concerns it: the end of next's slice when others wait, or the earliest
// deadline of a thread blocked on c.
func armTimer(c *percpu, next *thread) {
	if clock.lapicHz == 0 {
		return
	}
	var when int64
	if c.nrun > 0 && !next.idle {
		when = next.sliceEnd
	}
	if next.tickNs > 0 {
		// A vCPU thread in guest mode returns to the host only on an
		// exit; the tick guarantees one (an interrupt exit), so the Go
		// runtime can stop the world and watchdogs can run.
		if tick := nanotime() + next.tickNs; when == 0 || tick < when {
			when = tick
		}
	}
	for i := range threads[:threadHigh] {
		t := &threads[i]
		if t.state == threadBlocked && t.deadline != 0 && t.cpu == c.id {
			if when == 0 || t.deadline < when {
				when = t.deadline
			}
		}
	}
	if when == c.timerArmedAt {
		return // already programmed: LAPIC writes are costly under emulation
	}
	c.timerArmedAt = when
	if when == 0 {
		lapicStopTimer()
		return
	}
	lapicOneShot(when - nanotime())
}

// threadHigh bounds scans of the thread table: one past the highest slot
// ever used.
var threadHigh int

// newThread takes a free slot. The caller fills the frame.
func newThread() *thread {
	for i := range threads {
		t := &threads[i]
		if t.state == threadFree || t.state == threadDead {
			*t = thread{}
			t.tid = int32(i + 1)
			t.nextRun = -1
			if i+1 > threadHigh {
				threadHigh = i + 1
			}
			return t
		}
	}
	return nil
}
