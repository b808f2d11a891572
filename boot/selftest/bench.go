package selftest

import (
	"fmt"
	"io"
	"syscall"
	"time"
	"unsafe"

	"hv/boot"
)

// Bench measures the platform's basic costs and prints `bench: <name>
// <value> <unit>` lines; the caller prints `bench: done` after its own. TSC deltas count guest
// instructions when QEMU runs with -icount shift=0.
func Bench(w io.Writer) {
	// FUTEX_WAKE with no waiter: the bare system-call round trip.
	var word uint32
	const nWake = 20000
	t0, c0 := time.Now(), boot.TSC()
	for i := 0; i < nWake; i++ {
		syscall.RawSyscall(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&word)), 1|128, 1)
	}
	c1, el := boot.TSC(), time.Since(t0)
	fmt.Fprintf(w, "bench: futex_wake %.0f ns\n", float64(el.Nanoseconds())/nWake)
	fmt.Fprintf(w, "bench: futex_wake_tsc %d ticks\n", (c1-c0)/nWake)

	if boot.CPUCount() < 2 {
		fmt.Fprintf(w, "bench: cross_cpu_switch skipped (1 CPU)\n")
	} else {
		// Two goroutines on threads pinned to CPUs 0 and 1 bounce a token:
		// each hand-over is a futex wake of a thread on the other CPU.
		const rounds = 2000
		a, b := make(chan int), make(chan int)
		ready := make(chan struct{})
		go func() {
			if unpin, err := pin(1); err != nil {
				fmt.Fprintf(w, "bench: cross_cpu_switch error %v\n", err)
			} else {
				defer unpin()
			}
			close(ready)
			for v := range a {
				b <- v
			}
		}()
		<-ready
		func() {
			if unpin, err := pin(0); err != nil {
				fmt.Fprintf(w, "bench: cross_cpu_switch error %v\n", err)
			} else {
				defer unpin()
			}
			t0, c0 := time.Now(), boot.TSC()
			for i := 0; i < rounds; i++ {
				a <- i
				<-b
			}
			c1, el := boot.TSC(), time.Since(t0)
			close(a)
			fmt.Fprintf(w, "bench: cross_cpu_switch %.0f ns\n", float64(el.Nanoseconds())/(2*rounds))
			fmt.Fprintf(w, "bench: cross_cpu_switch_tsc %d ticks\n", (c1-c0)/(2*rounds))
		}()
	}
}
