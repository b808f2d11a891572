package boot

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
)

// This file is the platform's API for ordinary Go code (the hypervisor
// proper), usable once the runtime runs. Everything it reads was settled at
// boot or is a single word.

// CurrentCPU returns the index (0 .. CPUCount()-1) of the CPU executing the
// caller. A goroutine may move right after; lock the OS thread and set its
// affinity to stay.
func CurrentCPU() int

// CPUCount returns the number of CPUs started.
func CPUCount() int { return int(ncpu.Load()) }

// Cmdline returns the kernel command line as the boot loader passed it.
func Cmdline() string { return string(bootInfo.CmdlineBytes()) }

// LoaderName returns the boot loader's name, if it gave one.
func LoaderName() string { return string(bootInfo.LoaderNameBytes()) }

// Exit ends the run with status: QEMU's isa-debug-exit, Bochs' shutdown
// port, then ACPI power-off.
func Exit(status int) { os.Exit(status) }

// Memory describes physical memory as the frame allocator sees it.
type Memory struct {
	Usable uint64 // bytes of RAM available after the platform took its share at boot
	Free   uint64 // bytes free now
	Top    uint64 // highest RAM address + 1
}

// MemoryInfo returns the current memory figures.
func MemoryInfo() Memory {
	return Memory{Usable: usableBytes, Free: framesFree * pageSize, Top: physTop}
}

// CPU describes the boot CPU.
type CPU struct {
	Vendor string
	Brand  string
	SVM    bool // AMD-V (CPUID 8000_0001h ECX bit 2)
	VMX    bool // Intel VT-x (CPUID 1 ECX bit 5)
	TSCHz  uint64
}

// CPUInfo returns what CPUID said at boot and the calibrated TSC rate.
func CPUInfo() CPU {
	return CPU{
		Vendor: string(cpuVendor[:]),
		Brand:  strings.TrimSpace(strings.TrimRight(string(cpuBrand[:]), "\x00")),
		SVM:    hasSVM,
		VMX:    hasVMX,
		TSCHz:  clock.tscHz,
	}
}

// Virtualization names the hardware virtualization extension present: "svm",
// "vmx" or "none".
func Virtualization() string {
	switch {
	case hasSVM:
		return "svm"
	case hasVMX:
		return "vmx"
	}
	return "none"
}

// TSC reads the time-stamp counter. Under QEMU with -icount shift=0 it counts
// guest instructions.
func TSC() uint64 { return rdtsc() }

// Module is a multiboot module.
type Module struct {
	Start, End uint64
	Cmdline    string
}

// Modules lists the boot modules.
func Modules() []Module {
	var ms []Module
	for _, m := range bootInfo.ModuleList() {
		ms = append(ms, Module{Start: m.Start, End: m.End, Cmdline: string(m.CmdlineBytes())})
	}
	return ms
}

// PMTimerHz is the ACPI power-management timer's rate (ACPI 6.5 4.8.3.3).
const PMTimerHz = 3579545

// PMTimer reads the ACPI PM timer, the platform's reference clock
// independent of the TSC. bits is 24 or 32; ok is false without one.
func PMTimer() (ticks uint32, bits int, ok bool) {
	if fadt.PMTimer.Address == 0 || fadt.PMTimer.SpaceID != 1 || fadt.PMTimer.Address > 0xFFFF {
		return 0, 0, false
	}
	bits = fadt.PMTimerBits()
	v := inl(uint16(fadt.PMTimer.Address))
	if bits == 24 {
		v &= 0xFFFFFF
	}
	return v, bits, true
}

// KernelStats reports counters of the platform kernel for one CPU.
type KernelStats struct {
	Entries    uint64 // kernel entries (system calls, interrupts, faults)
	TimerTicks uint64
}

// CPUStats returns CPU i's kernel counters.
func CPUStats(i int) KernelStats {
	if i < 0 || i >= CPUCount() {
		return KernelStats{}
	}
	return KernelStats{Entries: cpus[i].kernelEntries, TimerTicks: cpus[i].ticks}
}

// AllocFrames allocates n physically contiguous, zeroed 4 KiB frames aligned
// to align frames (a power of two). Their physical address is also their
// address in the host's identity map, so the hypervisor can use them for
// VMCBs, page tables and guest RAM.
func AllocFrames(n, align uint64) (uint64, error) {
	r, _, e := syscall.RawSyscall(sysHVAllocFrames, uintptr(n), uintptr(align), 0)
	if e != 0 {
		return 0, fmt.Errorf("boot: allocate %d frames aligned to %d: %w", n, align, e)
	}
	return uint64(r), nil
}

// FreeFrames returns frames obtained from AllocFrames.
func FreeFrames(pa, n uint64) error {
	if _, _, e := syscall.RawSyscall(sysHVFreeFrames, uintptr(pa), uintptr(n), 0); e != 0 {
		return fmt.Errorf("boot: free %d frames at %#x: %w", n, pa, e)
	}
	return nil
}

// SetTick asks that the CPU running the calling thread be interrupted at
// least every ns nanoseconds while that thread runs (0: no such tick). A
// vCPU thread sets it so that a guest that never exits still returns to the
// host regularly. The caller should have locked its OS thread.
func SetTick(ns int64) error {
	if _, _, e := syscall.RawSyscall(sysHVSetTick, uintptr(ns), 0, 0); e != 0 {
		return fmt.Errorf("boot: set tick %dns: %w", ns, e)
	}
	return nil
}

// InterruptCPU sends CPU cpu an interrupt that does nothing but make it
// enter the kernel: a vCPU in guest mode there exits (its
// external-interrupt intercept), and its thread looks at what changed. It
// is a no-op for the calling CPU, which is not in guest mode.
func InterruptCPU(cpu int) error {
	if _, _, e := syscall.RawSyscall(sysHVInterrupt, uintptr(cpu), 0, 0); e != 0 {
		return fmt.Errorf("boot: interrupt cpu %d: %w", cpu, e)
	}
	return nil
}

// PageSize is the size of a frame.
const PageSize = pageSize

// Phys returns the host view of n bytes of physical memory at pa, which
// must come from AllocFrames (or be other RAM or firmware memory the
// identity map covers).
func Phys(pa, n uint64) []byte { return physBytes(pa, n) }

// CPUID executes CPUID on the calling CPU.
func CPUID(leaf, sub uint32) (a, b, c, d uint32) { return cpuid(leaf, sub) }

// ReadMSR reads a model-specific register on the calling CPU. An MSR the
// CPU does not implement raises #GP, which the platform turns into a Go
// panic in the caller; ReadMSR recovers it and returns an error instead.
func ReadMSR(msr uint32) (v uint64, err error) {
	// A #GP arrives as SIGSEGV with SI_KERNEL, which the runtime treats as
	// fatal unless the goroutine asked to panic on faults.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			v, err = 0, fmt.Errorf("boot: rdmsr %#x: #GP (%v)", msr, r)
		}
	}()
	return rdmsr(msr), nil
}

// WriteMSR writes a model-specific register on the calling CPU, returning an
// error where the CPU raises #GP.
func WriteMSR(msr uint32, v uint64) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("boot: wrmsr %#x: #GP (%v)", msr, r)
		}
	}()
	wrmsr(msr, v)
	return nil
}

// CR0, CR3 and CR4 read the calling CPU's control registers; SetCR0 and
// SetCR4 write them. They are for the virtualization backends, which must
// apply the fixed bits VMX requires and record the host state a VM exit
// restores.
func CR0() uint64     { return readCR0() }
func SetCR0(v uint64) { writeCR0(v) }
func CR3() uint64     { return readCR3() }
func CR4() uint64     { return readCR4() }
func SetCR4(v uint64) { writeCR4(v) }
