// Package selftest is the platform self-test: it exercises, from ordinary Go
// code, everything the boot platform promises the Go runtime (threads on
// every CPU, affinity, futexes, channels, maps, the garbage collector,
// timers against an independent reference clock, entropy, and faults turned
// into recoverable panics) and prints one verdict line per check.
//
// Boundary: it only uses the runtime, the standard library and the boot
// package's API; it has no knowledge of how the platform implements them.
package selftest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"hv/boot"
)

// Check is one named self-test.
type Check struct {
	Name string
	Run  func(w io.Writer) error
}

// Checks returns the self-tests in the order they run.
func Checks() []Check {
	return []Check{
		{"cpus", checkCPUs},
		{"affinity", checkAffinity},
		{"caches", checkCaches},
		{"channels", checkChannels},
		{"maps", checkMaps},
		{"gc", checkGC},
		{"timers", checkTimers},
		{"getrandom", checkRandom},
		{"enosys", checkENOSYS},
		{"nilpanic", checkNilPanic},
		{"nilpanic-thread", checkNilPanicPinned},
	}
}

// Run runs every check, printing `selftest: PASS <check>` or `selftest: FAIL
// <check>: <reason>` for each and `selftest: done <passed>/<total>` last. It
// returns the number of failures.
func Run(w io.Writer) int {
	fmt.Fprintf(w, "selftest: start tsc=%d cpus=%d\n", boot.TSC(), boot.CPUCount())
	passed := 0
	checks := Checks()
	for _, c := range checks {
		if err := c.Run(w); err != nil {
			fmt.Fprintf(w, "selftest: FAIL %s: %v\n", c.Name, err)
			continue
		}
		passed++
		fmt.Fprintf(w, "selftest: PASS %s\n", c.Name)
	}
	fmt.Fprintf(w, "selftest: end tsc=%d\n", boot.TSC())
	fmt.Fprintf(w, "selftest: done %d/%d\n", passed, len(checks))
	return len(checks) - passed
}

// Crash panics without recovery: the runtime must print the message and the
// goroutine trace and end the run with a failure status.
func Crash() {
	panic("selftest: deliberate crash")
}

func spinWork(n int) uint64 {
	x := uint64(n)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

var sink atomic.Uint64

// checkCPUs keeps 4 goroutines per CPU busy until every CPU has run some
// of them, or 30 seconds pass: the platform's scheduler must spread the
// runtime's threads over all CPUs, however quickly or slowly the runtime
// starts them.
func checkCPUs(w io.Writer) error {
	n := boot.CPUCount()
	counts := make([]atomic.Int64, n)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < 4*n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				counts[boot.CurrentCPU()].Add(1)
				sink.Add(spinWork(2000))
				if i%50 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	start := time.Now()
	var idle []int
	for {
		time.Sleep(20 * time.Millisecond)
		idle = idle[:0]
		for i := range counts {
			if counts[i].Load() == 0 {
				idle = append(idle, i)
			}
		}
		if len(idle) == 0 && time.Since(start) > 100*time.Millisecond || time.Since(start) > 30*time.Second {
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	var b strings.Builder
	for i := range counts {
		fmt.Fprintf(&b, " cpu%d=%d", i, counts[i].Load())
	}
	fmt.Fprintf(w, "selftest: cpus: work per CPU after %v:%s\n", time.Since(start).Round(time.Millisecond), b.String())
	if len(idle) > 0 {
		return fmt.Errorf("CPUs %v ran no goroutine work in %v", idle, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// pin locks the calling goroutine to its thread and the thread to cpu, and
// returns unpin, which gives the thread back the CPU mask it had and unlocks
// it. The mask must go back: UnlockOSThread returns the thread to the
// runtime's pool, where it runs any goroutine, GC workers included, and a
// thread left pinned there stays on that one CPU. (Two threads left pinned to
// CPU 0 by earlier checks held both Ps of a 2-CPU Bochs machine, and gc
// crawled for minutes while CPU 1 idled: docs/platform.md.) Should the mask
// not go back, unpin leaves the thread locked, so that the runtime retires it
// when the goroutine exits.
func pin(cpu int) (unpin func(), err error) {
	var mask, old cpuSet
	if cpu < 0 || cpu >= len(mask)*8 {
		return nil, fmt.Errorf("cpu %d beyond the mask", cpu)
	}
	runtime.LockOSThread()
	if err := old.get(); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	mask[cpu/8] = 1 << (cpu % 8)
	if err := mask.set(); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("cpu %d: %w", cpu, err)
	}
	return func() {
		if old.set() == nil {
			runtime.UnlockOSThread()
		}
	}, nil
}

// cpuSet is a CPU mask as sched_getaffinity and sched_setaffinity take it.
type cpuSet [128]byte

// get reads the calling thread's mask.
func (m *cpuSet) get() error {
	*m = cpuSet{}
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, uintptr(len(m)), uintptr(unsafe.Pointer(&m[0])))
	if errno != 0 {
		return fmt.Errorf("sched_getaffinity: %w", errno)
	}
	return nil
}

// set makes m the calling thread's mask.
func (m *cpuSet) set() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, uintptr(len(m)), uintptr(unsafe.Pointer(&m[0])))
	if errno != 0 {
		return fmt.Errorf("sched_setaffinity: %w", errno)
	}
	return nil
}

// onEveryCPU runs f(cpu) on a goroutine pinned to each CPU at once and
// joins their errors.
func onEveryCPU(f func(cpu int) error) error {
	n := boot.CPUCount()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for cpu := 0; cpu < n; cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unpin, err := pin(cpu)
			if err != nil {
				errs[cpu] = err
				return
			}
			defer unpin()
			errs[cpu] = f(cpu)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func checkAffinity(w io.Writer) error {
	return onEveryCPU(func(cpu int) error {
		for i := 0; i < 200; i++ {
			if got := boot.CurrentCPU(); got != cpu {
				return fmt.Errorf("goroutine pinned to cpu %d ran on cpu %d (iteration %d)", cpu, got, i)
			}
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			} else {
				runtime.Gosched()
			}
		}
		return nil
	})
}

// checkCaches: every CPU runs with caching on. A CPU leaves INIT with
// CR0.CD and CR0.NW set, and some firmware (Bochs' BIOS) boots the BSP that
// way too; on hardware that is a machine an order of magnitude slower, and
// VM entry keeps the host's CD and NW for the guest (Intel SDM 27.3.2.1).
func checkCaches(w io.Writer) error {
	const cd, nw = 1 << 30, 1 << 29
	return onEveryCPU(func(cpu int) error {
		if cr0 := boot.CR0(); cr0&(cd|nw) != 0 {
			return fmt.Errorf("cpu %d runs with caching disabled: CR0 %#x has CD or NW set", cpu, cr0)
		}
		return nil
	})
}

func checkChannels(w io.Writer) error {
	const n = 5000
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			return fmt.Errorf("ping-pong: sent %d, got back %d", i, v)
		}
	}
	close(ping)
	if _, ok := <-pong; ok {
		return errors.New("pong not closed")
	}
	// Fan-in over a buffered channel from many producers.
	results := make(chan int, 64)
	var wg sync.WaitGroup
	const producers, each = 16, 1000
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				results <- 1
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	sum := 0
	for v := range results {
		sum += v
	}
	if sum != producers*each {
		return fmt.Errorf("fan-in received %d values, want %d", sum, producers*each)
	}
	// select with a timeout.
	select {
	case <-make(chan int):
		return errors.New("receive from a channel nobody sends on")
	case <-time.After(5 * time.Millisecond):
	}
	return nil
}

func checkMaps(w io.Writer) error {
	const n = 100000
	m := make(map[int]string)
	for i := 0; i < n; i++ {
		m[i] = fmt.Sprint(i * 7)
	}
	for i := 0; i < n; i += 2 {
		delete(m, i)
	}
	if len(m) != n/2 {
		return fmt.Errorf("map has %d entries, want %d", len(m), n/2)
	}
	for i := 1; i < n; i += 2 {
		if m[i] != fmt.Sprint(i*7) {
			return fmt.Errorf("m[%d] = %q", i, m[i])
		}
	}
	var sm sync.Map
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				sm.Store(g*10000+i, i)
			}
		}()
	}
	wg.Wait()
	count := 0
	sm.Range(func(k, v any) bool { count++; return true })
	if count != 16000 {
		return fmt.Errorf("sync.Map has %d entries, want 16000", count)
	}
	return nil
}

func checkGC(w io.Writer) error {
	const liveBytes = 8 << 20
	live := make([][]byte, 0, liveBytes/4096)
	for i := 0; i < liveBytes/4096; i++ {
		b := make([]byte, 4096)
		b[0], b[4095] = byte(i), byte(i>>8)
		live = append(live, b)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// Allocate eight times the live heap, four times over, in mixed sizes.
	var garbage atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var keep []byte
			for total := 0; total < 16*liveBytes; {
				size := 64 << (total / 4096 % 10)
				keep = make([]byte, size)
				keep[size-1] = 1
				total += size
			}
			garbage.Add(uint64(len(keep)))
		}()
	}
	wg.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for i, b := range live {
		if b[0] != byte(i) || b[4095] != byte(i>>8) {
			return fmt.Errorf("live object %d corrupted by the collector", i)
		}
	}
	cycles := after.NumGC - before.NumGC
	fmt.Fprintf(w, "selftest: gc: %d cycles, heap %d MiB in use of %d MiB obtained, allocated %d MiB in all\n",
		cycles, after.HeapInuse>>20, after.Sys>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
	if cycles < 3 {
		return fmt.Errorf("only %d GC cycles while allocating 64x the live heap", cycles)
	}
	if after.HeapInuse > 8*liveBytes {
		return fmt.Errorf("heap in use %d MiB after GC with %d MiB live", after.HeapInuse>>20, liveBytes>>20)
	}
	runtime.KeepAlive(live)
	return nil
}

// pmElapsed returns the reference-clock time between two PM timer readings
// (at most one wrap apart).
func pmElapsed(a, b uint32, bits int) time.Duration {
	mask := uint64(1)<<bits - 1
	d := (uint64(b) - uint64(a)) & mask
	return time.Duration(d * uint64(time.Second) / boot.PMTimerHz)
}

// pmStamp is a time.Now reading bracketed by two PM-timer reads.
type pmStamp struct {
	pm uint32 // the PM timer halfway between the two reads
	t  time.Time
}

// stampPM pairs time.Now with the PM timer. The goroutine can be preempted
// between any two reads, and on a one-CPU emulator the GC's background work
// then runs for tens of milliseconds (a CI run once saw 90 ms), so it keeps
// the tightest of several brackets of two PM reads around time.Now. Under
// Bochs an unpreempted bracket takes 1.1-1.7 ms (time.Now is two system
// calls there), so the bound is maxGap; the stamp's error is at most half
// the gap, 2.5% of the 200 ms the check sleeps.
func stampPM(bits int) (pmStamp, time.Duration, bool) {
	const tries, maxGap = 20, 10 * time.Millisecond
	var best pmStamp
	bestGap := time.Duration(-1)
	for try := 0; try < tries; try++ {
		a, _, _ := boot.PMTimer()
		t := time.Now()
		b, _, _ := boot.PMTimer()
		if gap := pmElapsed(a, b, bits); bestGap < 0 || gap < bestGap {
			mask := uint64(1)<<bits - 1
			best, bestGap = pmStamp{pm: uint32((uint64(a) + (uint64(b)-uint64(a))&mask/2) & mask), t: t}, gap
		}
	}
	return best, bestGap, bestGap <= maxGap
}

func checkTimers(w io.Writer) error {
	const sleep = 200 * time.Millisecond
	_, bits, havePM := boot.PMTimer()
	var s0 pmStamp
	if havePM {
		var gap time.Duration
		var ok bool
		if s0, gap, ok = stampPM(bits); !ok {
			return fmt.Errorf("no time.Now reading came closer than %v to the ACPI PM timer", gap)
		}
	}
	t0 := time.Now()
	time.Sleep(sleep)
	el := time.Since(t0)
	if el < sleep {
		return fmt.Errorf("time.Sleep(%v) returned after %v by time.Now", sleep, el)
	}
	if el > 20*sleep {
		return fmt.Errorf("time.Sleep(%v) took %v by time.Now", sleep, el)
	}
	if havePM {
		s1, gap, ok := stampPM(bits)
		if !ok {
			return fmt.Errorf("no time.Now reading came closer than %v to the ACPI PM timer", gap)
		}
		byNow := s1.t.Sub(s0.t)
		ref := pmElapsed(s0.pm, s1.pm, bits)
		fmt.Fprintf(w, "selftest: timers: slept %v by time.Now, %v by the ACPI PM timer\n", byNow.Round(time.Microsecond), ref.Round(time.Microsecond))
		ratio := float64(byNow) / float64(ref)
		if ratio < 0.9 || ratio > 1.1 {
			return fmt.Errorf("time.Now measured %v where the ACPI PM timer measured %v", byNow, ref)
		}
	} else {
		fmt.Fprintf(w, "selftest: timers: no ACPI PM timer; slept %v by time.Now\n", el)
	}
	// Timers and tickers fire, in order, from many goroutines.
	var fired atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		time.AfterFunc(time.Duration(i)*time.Millisecond, func() { fired.Add(1); wg.Done() })
	}
	wg.Wait()
	if fired.Load() != 20 {
		return fmt.Errorf("%d of 20 AfterFunc timers fired", fired.Load())
	}
	tk := time.NewTicker(5 * time.Millisecond)
	start := time.Now()
	for i := 0; i < 10; i++ {
		<-tk.C
	}
	tk.Stop()
	if d := time.Since(start); d < 45*time.Millisecond {
		return fmt.Errorf("10 ticks of 5ms took only %v", d)
	}
	if wall := time.Now().Year(); wall < 2020 {
		return fmt.Errorf("wall clock says year %d", wall)
	}
	return nil
}

func checkRandom(w io.Writer) error {
	a, b := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(a); err != nil {
		return err
	}
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
		return fmt.Errorf("crypto/rand returned repeated or zero bytes")
	}
	var buf [16]byte
	n, _, errno := syscall.RawSyscall(318, uintptr(unsafe.Pointer(&buf[0])), 16, 0) // getrandom
	if errno != 0 || n != 16 {
		return fmt.Errorf("getrandom returned %d, %v", n, errno)
	}
	return nil
}

func checkENOSYS(w io.Writer) error {
	_, _, errno := syscall.RawSyscall(499, 0, 0, 0)
	if errno != syscall.ENOSYS {
		return fmt.Errorf("unknown system call 499 returned %v, want ENOSYS", errno)
	}
	return nil
}

//go:noinline
func nilPointer() *int { return nil }

func recoverNil() (err error) {
	defer func() {
		r := recover()
		re, ok := r.(runtime.Error)
		switch {
		case r == nil:
			err = errors.New("nil dereference did not panic")
		case !ok:
			err = fmt.Errorf("panic value %v is not a runtime.Error", r)
		case !strings.Contains(re.Error(), "nil pointer dereference"):
			err = fmt.Errorf("panic %q is not a nil pointer dereference", re.Error())
		}
	}()
	p := nilPointer()
	*p = 42
	return nil
}

func checkNilPanic(w io.Writer) error {
	if err := recoverNil(); err != nil {
		return err
	}
	// And again: the fault path must be reusable.
	return recoverNil()
}

// checkNilPanicPinned faults on the last CPU from a locked thread.
func checkNilPanicPinned(w io.Writer) error {
	done := make(chan error)
	go func() {
		unpin, err := pin(boot.CPUCount() - 1)
		if err != nil {
			done <- err
			return
		}
		defer unpin()
		done <- recoverNil()
	}()
	return <-done
}
