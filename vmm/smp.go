package vmm

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// More than one vCPU per VM.
//
// Each vCPU is a goroutine locked to its own OS thread, pinned to its host
// CPU (RunOptions.HostCPUs); vCPUs sharing a host CPU take turns through
// the platform scheduler's time slices, and the VM's tick (a host timer
// interrupt, which exits the guest) lets the scheduler switch even while
// a guest never exits by itself.
//
// Multiprocessor start-up follows the MP initialization protocol (Intel
// SDM vol. 3A 9.4, "Multiple-Processor (MP) Initialization"): vCPU 0 is
// the bootstrap processor and runs from the loader's entry state; every
// other vCPU starts as an application processor in the wait-for-SIPI
// state, in the INIT state of SDM vol. 3A 10.1.1 (table 10-1). The guest
// starts one with its local APIC's ICR (SDM vol. 3A 11.6.1): INIT puts the
// target back into the INIT state and the wait-for-SIPI state; a start-up
// IPI (SIPI) with vector V, received in that state, starts it in real mode
// at CS:IP = V<<8:0 (CS base V<<12, SDM vol. 3A 9.4.4.1). A SIPI received
// in any other state is ignored, as the processor ignores it; that is why
// the guest may send the customary second SIPI. An INIT sent to the
// bootstrap processor would restart it at the reset vector, in firmware
// this PC does not have: the VM stops with that reason instead.
//
// Interrupts between vCPUs go through the guest's local APICs and their
// APIC bus (devices/lapic.Router), which call the target's Kick: Kick
// wakes a vCPU halted in HLT or waiting for a SIPI (a channel send), and
// when the target is in guest mode it asks the platform (CPUInterrupter)
// to interrupt the host CPU the target runs on, whose external-interrupt
// intercept makes the guest exit so that the loop looks at its interrupt
// controller again. A vCPU marks itself in guest mode before its last
// look at the wake channel, so a kick either is seen by that look or
// finds the vCPU in guest mode and interrupts it. (A kick whose interrupt
// lands between that look and the entry itself is taken by the host
// before the entry; the guest then sees the event at its next exit, at
// the latest after the VM's tick.)
//
// The VM's outcome ends every vCPU: the guest's exit (power-off, reset,
// exit port, a host Stop) through VM.Exit, and a vCPU the VMM stops (a
// StopError naming the vCPU) through VM.fail; both kick every vCPU.

// ProcessorSignals is implemented by an interrupt controller that is a
// local APIC: it holds the processor-level signals of the APIC bus besides
// interrupt vectors.
type ProcessorSignals interface {
	// TakeNMI, TakeINIT and TakeSIPI report and clear a pending NMI,
	// INIT and start-up IPI (with its vector).
	TakeNMI() bool
	TakeINIT() bool
	TakeSIPI() (vector uint8, ok bool)
	// INITReset applies an INIT to the controller itself.
	INITReset()
}

// CPUInterrupter is implemented by a Platform that can interrupt another
// host CPU (an inter-processor interrupt): a vCPU in guest mode there then
// exits. Without it, a kicked vCPU in guest mode notices at its next exit.
type CPUInterrupter interface {
	InterruptCPU(cpu int)
}

// PauseInterceptor is implemented by a VCPU that can make PAUSE exit.
// The VMM asks for it when vCPUs of one VM share a host CPU: a guest
// spinning with PAUSE (a spinlock, a wait for another vCPU's answer to an
// IPI) most likely waits for a vCPU that cannot run until this one gives
// the CPU up, so the exit yields (as KVM's pause-loop exiting does).
type PauseInterceptor interface {
	InterceptPause(on bool)
}

// vcpuSignal is what other threads need to reach one vCPU.
type vcpuSignal struct {
	wake    chan struct{} // one token: something changed, look again
	inGuest atomic.Bool   // between the last look and the exit
	hostCPU atomic.Int32  // where the vCPU runs
	state   atomic.Int32  // a VCPUState
	stats   [numReasons]atomic.Uint64
}

// VCPUState is what a vCPU is doing, for the monitor.
type VCPUState int32

// vCPU states.
const (
	VCPUNotStarted VCPUState = iota // its run has not begun
	VCPURunning                     // in or around guest mode
	VCPUHalted                      // in HLT
	VCPUWaitSIPI                    // an application processor waiting for a start-up IPI
	VCPUEnded                       // its run is over
)

func (s VCPUState) String() string {
	switch s {
	case VCPUNotStarted:
		return "not started"
	case VCPURunning:
		return "running"
	case VCPUHalted:
		return "halted"
	case VCPUWaitSIPI:
		return "waiting for SIPI"
	case VCPUEnded:
		return "ended"
	}
	return fmt.Sprintf("VCPUState(%d)", int32(s))
}

// VCPUState returns what vCPU i is doing now.
func (vm *VM) VCPUState(i int) VCPUState {
	if i < 0 || i >= len(vm.signals) {
		return VCPUNotStarted
	}
	return VCPUState(vm.signals[i].state.Load())
}

func (s *vcpuSignal) setState(st VCPUState) { s.state.Store(int32(st)) }

func newSignals(n int) []vcpuSignal {
	s := make([]vcpuSignal, n)
	for i := range s {
		s[i].wake = make(chan struct{}, 1)
	}
	return s
}

// enter marks the vCPU as in guest mode; false means it was kicked since
// it last looked and must look again instead of entering.
func (s *vcpuSignal) enter() bool {
	s.inGuest.Store(true)
	select {
	case <-s.wake:
		s.inGuest.Store(false)
		return false
	default:
		return true
	}
}

func (s *vcpuSignal) leave() { s.inGuest.Store(false) }

// KickVCPU makes vCPU i look at its interrupt controller and signals
// again: it wakes from HLT or the wait for a SIPI, or exits guest mode.
// Indices out of range are ignored. Safe from any goroutine, with device
// locks held (it only sends to a channel and interrupts a CPU).
func (vm *VM) KickVCPU(i int) {
	if i < 0 || i >= len(vm.signals) {
		return
	}
	s := &vm.signals[i]
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if s.inGuest.Load() {
		if ci, ok := vm.platform.(CPUInterrupter); ok {
			ci.InterruptCPU(int(s.hostCPU.Load()))
		}
	}
}

// sharesHostCPU reports whether another vCPU of the run is placed on
// vCPU i's host CPU.
func sharesHostCPU(hosts []int, i int) bool {
	for j, h := range hosts {
		if j != i && h == hosts[i] {
			return true
		}
	}
	return false
}

// handlePause finishes a PAUSE and, while a sibling vCPU shares the host
// CPU, gives it the CPU: runtime.Gosched hands this goroutine's P (and with
// it the host CPU) to a runnable vCPU goroutine, and the thread is
// rescheduled by the platform like any other.
func (v *vcpuRun) handlePause(ex Exit) error {
	if err := v.skip(ex); err != nil {
		return err
	}
	if v.shared {
		runtime.Gosched()
	}
	return nil
}

// VCPUExits returns vCPU i's exit counts by reason since the VM was made.
func (vm *VM) VCPUExits(i int) (byReason [numReasons]uint64, total uint64) {
	if i < 0 || i >= len(vm.signals) {
		return byReason, 0
	}
	for r := range byReason {
		byReason[r] = vm.signals[i].stats[r].Load()
		total += byReason[r]
	}
	return byReason, total
}

// ic is vCPU i's interrupt controller.
func (vm *VM) ic(i int) InterruptController {
	if vm.ICs != nil {
		if i >= 0 && i < len(vm.ICs) {
			return vm.ICs[i]
		}
		return nil
	}
	if i == 0 {
		return vm.IC
	}
	return nil
}

// takeSignals applies what the local APIC holds for the processor itself:
// INIT, a start-up IPI, an NMI.
func (v *vcpuRun) takeSignals() error {
	if v.ps == nil {
		return nil
	}
	if v.ps.TakeINIT() {
		if v.index == 0 {
			return v.stop("INIT to the bootstrap processor (no firmware to restart it at the reset vector)", nil)
		}
		v.ps.INITReset()
		v.initState()
		v.waitSIPI, v.halted, v.nmi, v.pending = true, false, false, nil
	}
	if vec, ok := v.ps.TakeSIPI(); ok && v.waitSIPI {
		v.startup(vec)
		v.waitSIPI, v.halted = false, false
	}
	// In the wait-for-SIPI state an NMI stays latched in the LAPIC.
	if !v.waitSIPI && v.ps.TakeNMI() {
		v.nmi = true
	}
	return nil
}

// waitForSIPI blocks an application processor until a start-up IPI starts
// it, or the VM ends or is saved. It needs no watchdog of its own: the
// bootstrap processor's ends the VM, and that ends this wait.
func (v *vcpuRun) waitForSIPI() error {
	v.sig.setState(VCPUWaitSIPI)
	defer v.sig.setState(VCPURunning)
	for v.waitSIPI {
		if v.vm.ended() || v.vm.snapshot.Load() {
			return nil
		}
		if err := v.takeSignals(); err != nil {
			return err
		}
		if v.waitSIPI {
			v.sleep(time.Second) // a SIPI kicks
		}
	}
	return nil
}

// INIT state (Intel SDM vol. 3A 10.1.1, table 10-1, "following INIT";
// AMD APM vol. 2 14.1.3): real mode at the reset vector F000:FFF0 with
// CS base FFFF0000, 64 KiB segments, paging and protection off, CR0.CD and
// NW kept, ET set, EFER zero, EDX the processor signature (CPUID leaf 1
// EAX), the other general registers zero. MSRs other than EFER, the x87
// and SSE state and the debug registers keep their values.
const (
	initCS       = 0xF000
	initCSBase   = 0xFFFF0000
	initRIP      = 0xFFF0
	initCR0Keep  = 1<<30 | 1<<29 // CD, NW
	initCR0      = 1 << 4        // ET
	realLimit    = 0xFFFF
	realCodeAttr = 0x9B // present, S, execute/read, accessed
	realDataAttr = 0x93 // present, S, read/write, accessed
	initLDTRAttr = 0x82 // present LDT
	initTRAttr   = 0x8B // present busy TSS (VMX requires a busy type)
)

// initState puts the vCPU in the INIT state.
func (v *vcpuRun) initState() {
	s := v.cpu.SRegs()
	seg := func(attr uint16) Segment { return Segment{Limit: realLimit, Attrib: attr} }
	s.CS = Segment{Selector: initCS, Base: initCSBase, Limit: realLimit, Attrib: realCodeAttr}
	s.DS, s.ES, s.FS, s.GS, s.SS = seg(realDataAttr), seg(realDataAttr), seg(realDataAttr), seg(realDataAttr), seg(realDataAttr)
	s.LDTR, s.TR = seg(initLDTRAttr), seg(initTRAttr)
	s.GDT, s.IDT = DTable{Limit: realLimit}, DTable{Limit: realLimit}
	s.CR0 = s.CR0&initCR0Keep | initCR0
	s.CR2, s.CR3, s.CR4, s.EFER, s.CPL = 0, 0, 0, 0, 0
	v.cpu.SetSRegs(s)
	sig, _, _, _ := v.vm.guestCPUID(v.index, 1, 0)
	v.cpu.SetRegs(Regs{RIP: initRIP, RFLAGS: 2, RDX: uint64(sig)})
}

// startup applies a start-up IPI with vector vec to a vCPU in the INIT
// state: real mode at vec<<8:0 (SDM vol. 3A 9.4.4.1). Every vector is
// taken as hardware takes it; one whose page is not guest RAM makes the
// vCPU's first fetch stop the VM as outside guest memory.
func (v *vcpuRun) startup(vec uint8) {
	s := v.cpu.SRegs()
	s.CS = Segment{Selector: uint16(vec) << 8, Base: uint64(vec) << 12, Limit: realLimit, Attrib: realCodeAttr}
	v.cpu.SetSRegs(s)
	r := v.cpu.Regs()
	r.RIP = 0
	v.cpu.SetRegs(r)
}
