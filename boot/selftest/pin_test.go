package selftest

import (
	"errors"
	"runtime"
	"testing"
)

var errSkip = errors.New("skip")

// TestPinRestoresMask runs on the host's Linux, whose affinity system calls
// the platform mirrors: a thread that pin moved to one CPU must get its mask
// back from unpin, or the runtime reuses it, still pinned, for any goroutine.
func TestPinRestoresMask(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		// Stay on one thread for the checks; the outer lock keeps it
		// locked after unpin's UnlockOSThread, so the runtime retires it
		// rather than reuse a thread this test changed.
		runtime.LockOSThread()
		var before cpuSet
		if err := before.get(); err != nil {
			done <- err
			return
		}
		cpu, allowed := -1, 0
		for i := len(before)*8 - 1; i >= 0; i-- {
			if before[i/8]&(1<<(i%8)) != 0 {
				cpu = i
				allowed++
			}
		}
		if allowed < 2 {
			done <- errSkip
			return
		}
		unpin, err := pin(cpu)
		if err != nil {
			done <- err
			return
		}
		var pinned, after cpuSet
		if err := pinned.get(); err != nil {
			done <- err
			return
		}
		unpin()
		if err := after.get(); err != nil {
			done <- err
			return
		}
		var want cpuSet
		want[cpu/8] = 1 << (cpu % 8)
		if pinned != want {
			t.Errorf("pinned to cpu %d: mask %x, want %x", cpu, pinned[:8], want[:8])
		}
		if after != before {
			t.Errorf("after unpin: mask %x, want the mask from before, %x", after[:8], before[:8])
		}
		done <- nil
	}()
	switch err := <-done; err {
	case nil:
	case errSkip:
		t.Skip("this thread may run on one CPU only: pinning changes nothing")
	default:
		t.Fatal(err)
	}
}
