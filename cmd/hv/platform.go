package main

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"hv/boot"
)

// platform implements vmm.Platform on the boot package.
type platform struct{}

func (platform) AllocFrames(n, align uint64) (uint64, error) { return boot.AllocFrames(n, align) }
func (platform) FreeFrames(pa, n uint64) error               { return boot.FreeFrames(pa, n) }
func (platform) Bytes(pa, n uint64) []byte                   { return boot.Phys(pa, n) }
func (platform) SetTick(ns int64) error                      { return boot.SetTick(ns) }
func (platform) CPUID(leaf, sub uint32) (a, b, c, d uint32)  { return boot.CPUID(leaf, sub) }
func (platform) TSC() uint64                                 { return boot.TSC() }
func (platform) TSCHz() uint64                               { return boot.CPUInfo().TSCHz }

func setAffinity(mask []byte) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, uintptr(len(mask)), uintptr(unsafe.Pointer(&mask[0])))
	if e != 0 {
		return e
	}
	return nil
}

// Pin locks the calling goroutine to its thread and the thread to cpu.
func (platform) Pin(cpu int) error {
	if cpu < 0 || cpu >= boot.CPUCount() {
		return fmt.Errorf("pin: no cpu %d", cpu)
	}
	runtime.LockOSThread()
	mask := make([]byte, 8)
	mask[cpu/8] = 1 << (cpu % 8)
	if err := setAffinity(mask); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	if got := boot.CurrentCPU(); got != cpu {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to cpu %d: still on cpu %d", cpu, got)
	}
	return nil
}

// Unpin lets the thread run anywhere again and unlocks it.
func (platform) Unpin() {
	mask := make([]byte, 8)
	for i := 0; i < boot.CPUCount() && i < 64; i++ {
		mask[i/8] |= 1 << (i % 8)
	}
	_ = setAffinity(mask)
	runtime.UnlockOSThread()
}

// InterruptCPU makes a vCPU in guest mode on cpu exit (vmm.CPUInterrupter).
func (platform) InterruptCPU(cpu int) { _ = boot.InterruptCPU(cpu) }
