package vmm

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"hv/devices/bus"
	"hv/vmm/emulate"
	"hv/vmm/pagewalk"
)

// Inputs sees every nondeterministic input a guest receives, at the point
// where it is delivered, and may replace it: fault tolerance records them on
// the primary and supplies the logged values on the backup. Each method gets
// the value the VMM computed and returns the value the guest gets.
type Inputs interface {
	PortRead(port uint16, size int, v uint32) uint32
	MMIORead(gpa uint64, size int, v uint64) uint64
	TSC(v uint64) uint64
	Interrupt(vcpu int, ev Event) Event
}

// PassThrough is the Inputs of a VM without recording: values go through
// unchanged.
type PassThrough struct{}

func (PassThrough) PortRead(_ uint16, _ int, v uint32) uint32 { return v }
func (PassThrough) MMIORead(_ uint64, _ int, v uint64) uint64 { return v }
func (PassThrough) TSC(v uint64) uint64                       { return v }
func (PassThrough) Interrupt(_ int, ev Event) Event           { return ev }

// InterruptController is what a vCPU loop asks for external interrupts
// (the 8259 pair, or a local APIC in front of it). One that also
// implements ProcessorSignals carries INIT, start-up IPIs and NMIs.
type InterruptController interface {
	HasInterrupt() bool
	Acknowledge() uint8
}

// Timer is a device that acts at a time on the VM clock (PIT, RTC, UART).
type Timer interface {
	NextEvent() (ns uint64, ok bool) // VM-clock time of the next event
	Update()
}

// SwitchObserver is told when a vCPU enters and leaves guest mode on a host
// CPU, on that CPU: cache monitoring reads the PMU there so that each vCPU's
// counts are its own.
type SwitchObserver interface {
	SwitchIn(vcpu, hostCPU int, now uint64)
	SwitchOut(vcpu, hostCPU int, now uint64)
}

// Config describes a VM.
type Config struct {
	Name     string
	Watchdog time.Duration // stop the VM if it runs longer; 0: never
	// TSCOffset is added to the host TSC for guest reads.
	TSCOffset int64
	// Tick bounds how long a guest runs without an exit (a host timer
	// interrupt forces one) so that watchdogs and the Go runtime's
	// stop-the-world get their turn. Default 10 ms.
	Tick time.Duration
	// CPUs is the number of vCPUs, 1 to MaxCPUs (0 means 1). vCPU 0 is
	// the bootstrap processor; the others start in the wait-for-SIPI
	// state (smp.go).
	CPUs int
}

// MaxCPUs bounds Config.CPUs: the xAPIC's flat logical destination model
// addresses 8 processors (Intel SDM vol. 3A 11.6.2.2), which keeps every
// destination mode a guest may pick usable, and the hosts this runs on
// have a handful of CPUs to spread vCPUs over.
const MaxCPUs = 8

// Platform is how a VM reaches the machine: pinning, the forced-exit tick,
// CPUID and the TSC.
type Platform interface {
	Host
	Pin(cpu int) error // lock the calling goroutine's thread to cpu
	Unpin()
	SetTick(ns int64) error
	CPUID(leaf, sub uint32) (a, b, c, d uint32)
	TSC() uint64
	TSCHz() uint64
}

// StopError says why the VMM stopped a VM.
type StopError struct {
	VM     string
	Reason string
	RIP    uint64
	Err    error
	// Recent are the last exits before the stop, oldest first: what the
	// guest was doing, for the console.
	Recent []string
	// VCPU is the vCPU that stopped; SMP says the VM has more than one
	// (the message then names the vCPU).
	VCPU int
	SMP  bool
}

func (e *StopError) Error() string {
	if e.SMP {
		return fmt.Sprintf("vm %s: stopped: vcpu %d: %s at rip=%#x", e.VM, e.VCPU, e.Reason, e.RIP)
	}
	return fmt.Sprintf("vm %s: stopped: %s at rip=%#x", e.VM, e.Reason, e.RIP)
}

func (e *StopError) Unwrap() error { return e.Err }

// ErrExited is returned by Run when the guest ended itself (exit device,
// power-off); VM.ExitStatus has the status.
var ErrExited = errors.New("guest exited")

// VM is one virtual machine.
type VM struct {
	Config
	Mem *Memory
	Bus *bus.Bus
	IC  InterruptController // vCPU 0's when ICs is nil; nil: no external interrupts
	// ICs are the interrupt controllers of each vCPU (its local APIC);
	// nil: IC for vCPU 0 and none for the others.
	ICs      []InterruptController
	Inputs   Inputs
	Timers   []Timer
	Observer SwitchObserver // nil: none
	Local    Local          // per-processor devices; nil: none

	backend  Backend
	platform Platform
	started  bool
	tsc0     uint64 // host TSC at VM clock zero
	tscHz    uint64
	signals  []vcpuSignal // per vCPU: wake-ups and where it runs (smp.go)

	mu         sync.Mutex
	exited     bool
	exitStatus uint32
	failure    error // the first vCPU's stop, which ends every vCPU
	// snapshot asks every vCPU to stop at its next exit and save its
	// state (vCPU 0 reached RunOptions.StopAfter).
	snapshot atomic.Bool

	// Stats counts exits by reason.
	Stats [numReasons]atomic.Uint64
}

// NewVM creates a VM with guest RAM of memSize bytes at GPA 0.
func NewVM(cfg Config, b Backend, p Platform, memSize uint64) (*VM, error) {
	mem, err := NewMemory(p, memSize)
	if err != nil {
		return nil, fmt.Errorf("vmm: vm %s: %w", cfg.Name, err)
	}
	if cfg.Tick == 0 {
		cfg.Tick = 10 * time.Millisecond
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.CPUs < 1 || cfg.CPUs > MaxCPUs {
		mem.Free()
		return nil, fmt.Errorf("vmm: vm %s: %d vCPUs, want 1 to %d", cfg.Name, cfg.CPUs, MaxCPUs)
	}
	vm := &VM{
		Config:   cfg,
		Mem:      mem,
		Bus:      bus.New(),
		Inputs:   PassThrough{},
		backend:  b,
		platform: p,
	}
	vm.signals = newSignals(cfg.CPUs)
	return vm, nil
}

// Close frees the VM's memory.
func (vm *VM) Close() { vm.Mem.Free() }

// Now is the VM clock in nanoseconds since the VM started (for devices).
// It runs on the host TSC: reading it costs no system call, which matters
// because the vCPU loop reads it on every exit.
func (vm *VM) Now() uint64 {
	if !vm.started || vm.tscHz == 0 {
		return 0
	}
	d := vm.platform.TSC() - vm.tsc0
	hi, lo := bits.Mul64(d, 1e9)
	if hi >= vm.tscHz {
		return ^uint64(0)
	}
	ns, _ := bits.Div64(hi, lo, vm.tscHz)
	return ns
}

func (vm *VM) startClock(at uint64) {
	vm.tscHz = vm.platform.TSCHz()
	vm.tsc0 = vm.platform.TSC()
	if vm.tscHz != 0 {
		hi, lo := bits.Mul64(at, vm.tscHz)
		if hi < 1e9 {
			ticks, _ := bits.Div64(hi, lo, 1e9)
			vm.tsc0 -= ticks
		}
	}
	vm.started = true
}

// GuestTSCAt is the TSC value a guest reads at VM-clock time ns (the host
// TSC plus Config.TSCOffset), for devices timed by the guest TSC such as
// the LAPIC's TSC-deadline mode. A guest that writes IA32_TSC moves its own
// vCPU's offset, which this does not follow.
func (vm *VM) GuestTSCAt(ns uint64) uint64 {
	hi, lo := bits.Mul64(ns, vm.tscHz)
	var ticks uint64
	if hi < 1e9 {
		ticks, _ = bits.Div64(hi, lo, 1e9)
	} else {
		ticks = ^uint64(0)
	}
	return vm.tsc0 + ticks + uint64(vm.TSCOffset)
}

// NanosAtGuestTSC is the earliest VM-clock time at which the guest TSC
// reaches tsc: 0 if it already had at VM clock zero, ^0 if never.
func (vm *VM) NanosAtGuestTSC(tsc uint64) uint64 {
	start := vm.tsc0 + uint64(vm.TSCOffset)
	if tsc <= start || vm.tscHz == 0 {
		if tsc <= start {
			return 0
		}
		return ^uint64(0)
	}
	hi, lo := bits.Mul64(tsc-start, 1e9)
	lo, c := bits.Add64(lo, vm.tscHz-1, 0)
	hi += c
	if hi >= vm.tscHz {
		return ^uint64(0)
	}
	ns, _ := bits.Div64(hi, lo, vm.tscHz)
	return ns
}

func (vm *VM) elapsed() time.Duration { return time.Duration(vm.Now()) }

// SetClock starts the VM clock at now nanoseconds (a VM restored from a
// snapshot continues the clock its devices were saved on).
func (vm *VM) SetClock(now uint64) { vm.startClock(now) }

// Kick makes every vCPU look at its interrupt controller again (an
// interrupt line changed): a halted one wakes, one in guest mode on
// another host CPU is made to exit. KickVCPU does it for one vCPU.
func (vm *VM) Kick() {
	for i := range vm.signals {
		vm.KickVCPU(i)
	}
}

// Exit ends the VM from a device (exit port, power-off) with a status.
// Every vCPU ends at its next exit.
func (vm *VM) Exit(status uint32) {
	vm.mu.Lock()
	if !vm.exited {
		vm.exited, vm.exitStatus = true, status
	}
	vm.mu.Unlock()
	vm.Kick()
}

// fail records a vCPU's stop as the VM's outcome, unless the VM has
// already ended, and makes every other vCPU end.
func (vm *VM) fail(err error) {
	vm.mu.Lock()
	if vm.failure == nil && !vm.exited {
		vm.failure = err
	}
	vm.mu.Unlock()
	vm.Kick()
}

// ended reports whether the VM's run is over for every vCPU: the guest
// exited or a vCPU stopped.
func (vm *VM) ended() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.exited || vm.failure != nil
}

// ExitStatus returns the status given to Exit and whether the guest exited.
func (vm *VM) ExitStatus() (uint32, bool) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.exitStatus, vm.exited
}

// RunOptions adjust a run.
type RunOptions struct {
	// Setup is called with vCPU 0 (the bootstrap processor) before its
	// first entry (initial registers). The other vCPUs start in the INIT
	// state, waiting for a start-up IPI.
	Setup func(VCPU) error
	// Restore, if non-nil, holds every vCPU's state (a Result.Snapshot),
	// loaded instead of Setup and the INIT state.
	Restore []State
	// StopAfter stops the run once vCPU 0 has had that many exits: every
	// vCPU stops at its next exit and the states are returned in
	// Snapshot (for save/restore); 0: run to the end.
	StopAfter uint64
	// HostCPUs places the vCPUs: vCPU i runs on host CPU HostCPUs[i].
	// Missing entries default to the cpu argument of Run. Several vCPUs
	// may share a host CPU; its scheduler's time slices and the VM's tick
	// take turns between them.
	HostCPUs []int
}

// Result of a run.
type Result struct {
	// Snapshot holds every vCPU's state, in vCPU order, when StopAfter
	// was reached.
	Snapshot []State
	Exits    uint64 // all vCPUs' exits
}

// Run runs every vCPU of the VM until the guest exits, the VMM stops a
// vCPU (which ends the others), or StopAfter is reached. Each vCPU runs on
// its own goroutine, locked to a thread pinned to its host CPU (vCPU 0 on
// the caller's goroutine, on host CPU cpu unless HostCPUs says otherwise).
// Run returns when every vCPU has ended: ErrExited when the guest ended
// the VM, else the first vCPU's stop (a *StopError).
func (vm *VM) Run(cpu int, opt RunOptions) (Result, error) {
	var res Result
	n := vm.numCPUs()
	if opt.Restore != nil && len(opt.Restore) != n {
		return res, fmt.Errorf("vmm: vm %s: restore: %d vCPU states for %d vCPUs", vm.Name, len(opt.Restore), n)
	}
	vm.snapshot.Store(false)
	if !vm.started {
		vm.startClock(0) // before any vCPU reads the clock
	}
	runs := make([]*vcpuRun, n)
	errs := make([]error, n)
	hosts := make([]int, n)
	for i := range hosts {
		hosts[i] = cpu
		if i < len(opt.HostCPUs) {
			hosts[i] = opt.HostCPUs[i]
		}
	}
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- {
		runs[i] = &vcpuRun{vm: vm, index: i, hostCPU: hosts[i], sig: &vm.signals[i], shared: sharesHostCPU(hosts, i)}
		if i == 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runs[i].run(opt)
		}()
	}
	errs[0] = runs[0].run(opt)
	wg.Wait()

	for _, r := range runs {
		res.Exits += r.exits
	}
	vm.mu.Lock()
	failure := vm.failure
	vm.mu.Unlock()
	if failure != nil {
		return res, failure
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, errSnapshot) && !errors.Is(err, ErrExited) {
			return res, err
		}
	}
	if _, done := vm.ExitStatus(); done {
		return res, ErrExited
	}
	if vm.snapshot.Load() {
		for _, r := range runs {
			if r.saved == nil {
				return res, fmt.Errorf("vmm: vm %s: save: vcpu %d has no state", vm.Name, r.index)
			}
			res.Snapshot = append(res.Snapshot, *r.saved)
		}
		return res, nil
	}
	return res, fmt.Errorf("vmm: vm %s: run ended without an outcome", vm.Name)
}

func (vm *VM) numCPUs() int { return max(vm.CPUs, 1) }

// run is one vCPU's whole life: pin, create, set up or restore, loop, and
// on a snapshot save. A failure other than the guest's own exit ends the
// whole VM.
func (v *vcpuRun) run(opt RunOptions) (err error) {
	vm := v.vm
	defer func() {
		if err != nil && !errors.Is(err, errSnapshot) && !errors.Is(err, ErrExited) {
			vm.fail(err)
		}
	}()
	fail := func(what string, err error) error {
		if vm.numCPUs() > 1 {
			return fmt.Errorf("vmm: vm %s: vcpu %d: %s%w", vm.Name, v.index, what, err)
		}
		return fmt.Errorf("vmm: vm %s: %s%w", vm.Name, what, err)
	}
	v.sig.hostCPU.Store(int32(v.hostCPU))
	if err := vm.platform.Pin(v.hostCPU); err != nil {
		return fail("", err)
	}
	defer vm.platform.Unpin()
	if err := vm.backend.EnableCPU(v.hostCPU); err != nil {
		return fail("", err)
	}
	_ = vm.platform.SetTick(int64(vm.Tick))
	defer vm.platform.SetTick(0)
	vc, err := vm.backend.NewVCPU(vm.Mem, v.hostCPU)
	if err != nil {
		return fail("", err)
	}
	defer vc.Close()
	v.cpu = vc
	vc.SetTSCOffset(vm.TSCOffset)
	if pi, ok := vc.(PauseInterceptor); ok && v.shared {
		pi.InterceptPause(true)
	}
	guestCPUID := func(leaf, sub uint32) (a, b, c, d uint32) { return vm.guestCPUID(v.index, leaf, sub) }
	v.platformMSRs = newPlatformMSRs(guestCPUID)
	switch {
	case opt.Restore != nil:
		st := opt.Restore[v.index]
		if err := vc.RestoreState(st); err != nil {
			return fail("restore: ", err)
		}
		v.platformMSRs.restore(st.VMMMSRs)
		v.waitSIPI, v.halted = st.WaitForSIPI, st.Halted
	case v.index != 0:
		v.initState()
		v.waitSIPI = true
	case opt.Setup != nil:
		if err := opt.Setup(vc); err != nil {
			return fail("setup: ", err)
		}
	}
	if ic := vm.ic(v.index); ic != nil {
		v.ps, _ = ic.(ProcessorSignals)
	}
	v.emu = emulate.New(v, v, emulate.Config{PhysAddrBits: 48, Vendor: pagewalk.VendorAMD})
	v.sig.setState(VCPURunning)
	defer v.sig.setState(VCPUEnded)
	stopAfter := opt.StopAfter
	if v.index != 0 {
		stopAfter = 0
	}
	err = v.loop(stopAfter)
	if errors.Is(err, errSnapshot) {
		st, serr := vc.SaveState()
		if serr != nil {
			return fail("save: ", serr)
		}
		v.platformMSRs.save(&st)
		st.WaitForSIPI, st.Halted = v.waitSIPI, v.halted
		v.saved = &st
	}
	return err
}

var errSnapshot = errors.New("snapshot point reached")

// guestCPUID is the policy's CPUID (GuestCPUID) less what the backend
// cannot let the guest use.
func (vm *VM) guestCPUID(vcpu int, leaf, sub uint32) (a, b, c, d uint32) {
	a, b, c, d = GuestCPUID(vm.platform.CPUID, vcpu, vm.numCPUs(), leaf, sub)
	if h, ok := vm.backend.(CPUIDHider); ok {
		ha, hb, hc, hd := h.HiddenCPUID(leaf, sub)
		a, b, c, d = a&^ha, b&^hb, c&^hc, d&^hd
	}
	return a, b, c, d
}

// vcpuRun is the state of one vCPU's loop. It also adapts the vCPU and the
// VM's memory and bus to the instruction emulator.
type vcpuRun struct {
	vm      *VM
	cpu     VCPU
	index   int
	emu     *emulate.Emulator
	regs    Regs // valid during emulation
	sregs   SRegs
	exits   uint64
	pending *Event
	hostCPU int
	// platformMSRs are the MSRs the VMM models itself (MTRRs, ...).
	platformMSRs platformMSRs
	recent       exitRing

	sig      *vcpuSignal      // VM.signals[index]
	ps       ProcessorSignals // INIT, SIPI, NMI from the local APIC; nil: none
	waitSIPI bool             // in the wait-for-SIPI state (smp.go)
	halted   bool             // in HLT (or stopped there for a snapshot)
	nmi      bool             // an NMI waits for injection
	shared   bool             // another vCPU of the VM runs on the same host CPU
	saved    *State           // the state saved at a snapshot
}

// exitRing keeps the last exits and injected events of a vCPU for a stop
// message. Recording copies a small struct; the strings are made only
// when a VM stops.
type exitRing struct {
	e [recentExits]ringEntry
	n uint64 // entries recorded
}

type ringEntry struct {
	rip    uint64
	exit   Exit
	ev     Event
	inject bool   // an injection (ev), not an exit (exit, seq)
	seq    uint64 // the exit's number in the run
}

const recentExits = 16

func (r *exitRing) add(ex Exit, rip, seq uint64) {
	r.e[r.n%recentExits] = ringEntry{rip: rip, exit: ex, seq: seq}
	r.n++
}

func (r *exitRing) addInject(ev Event, rip uint64) {
	r.e[r.n%recentExits] = ringEntry{rip: rip, ev: ev, inject: true}
	r.n++
}

// lines gives the recorded entries, oldest first.
func (r *exitRing) lines() []string {
	var out []string
	for i := r.n - min(r.n, recentExits); i < r.n; i++ {
		e := &r.e[i%recentExits]
		if e.inject {
			out = append(out, fmt.Sprintf("inject at rip=%#x: %v", e.rip, e.ev))
			continue
		}
		out = append(out, fmt.Sprintf("exit %d at rip=%#x: %v", e.seq, e.rip, e.exit))
	}
	return out
}

func (v *vcpuRun) hostTSC() uint64 { return v.vm.platform.TSC() }

func (v *vcpuRun) stop(reason string, err error) error {
	return &StopError{VM: v.vm.Name, Reason: reason, RIP: v.cpu.Regs().RIP, Err: err, Recent: v.recent.lines(),
		VCPU: v.index, SMP: v.vm.numCPUs() > 1}
}

func (v *vcpuRun) loop(stopAfter uint64) error {
	for {
		if v.vm.ended() {
			return ErrExited
		}
		if v.vm.Watchdog > 0 && v.vm.elapsed() > v.vm.Watchdog {
			return v.stop(fmt.Sprintf("watchdog: still running after %v", v.vm.Watchdog), nil)
		}
		if stopAfter != 0 && v.exits >= stopAfter && !v.vm.snapshot.Load() {
			v.vm.snapshot.Store(true)
			v.vm.Kick()
		}
		if v.vm.snapshot.Load() {
			return errSnapshot
		}
		if err := v.takeSignals(); err != nil {
			return err
		}
		if v.waitSIPI {
			if err := v.waitForSIPI(); err != nil {
				return err
			}
			continue
		}
		if v.halted {
			if err := v.halt(); err != nil {
				return err
			}
			continue
		}
		v.updateTimers()
		v.deliverEvents()
		if !v.sig.enter() {
			continue // kicked since the events were looked at: look again
		}
		if o := v.vm.Observer; o != nil {
			o.SwitchIn(v.index, v.hostCPU, v.vm.Now())
		}
		ex, err := v.cpu.Run()
		v.sig.leave()
		if o := v.vm.Observer; o != nil {
			o.SwitchOut(v.index, v.hostCPU, v.vm.Now())
		}
		if err != nil {
			return v.stop("entry failed: "+err.Error(), err)
		}
		v.exits++
		v.recent.add(ex, v.cpu.Regs().RIP, v.exits)
		if ex.Reason < numReasons {
			v.vm.Stats[ex.Reason].Add(1)
			v.sig.stats[ex.Reason].Add(1)
		}
		if err := v.dispatch(ex); err != nil {
			return err
		}
	}
}

func (v *vcpuRun) updateTimers() {
	now := v.vm.Now()
	for _, t := range v.vm.Timers {
		if e, ok := t.NextEvent(); ok && e <= now {
			t.Update()
		}
	}
}

func (v *vcpuRun) deliverEvents() {
	if v.pending != nil {
		v.recent.addInject(*v.pending, v.cpu.Regs().RIP)
		v.cpu.Inject(*v.pending)
		v.pending = nil
		return
	}
	if v.nmi {
		// NMI blocking (an NMI handler still running) is not tracked:
		// the LAPIC delivers NMIs rarely (IPIs, LINT1) and latches one.
		v.nmi = false
		ev := v.vm.Inputs.Interrupt(v.index, Event{Type: EventNMI, Vector: 2})
		v.recent.addInject(ev, v.cpu.Regs().RIP)
		v.cpu.Inject(ev)
		return
	}
	ic := v.vm.ic(v.index)
	if ic == nil || !ic.HasInterrupt() {
		v.cpu.InterruptWindow(false)
		return
	}
	if !v.cpu.CanInterrupt() {
		v.cpu.InterruptWindow(true)
		return
	}
	v.cpu.InterruptWindow(false)
	ev := v.vm.Inputs.Interrupt(v.index, Event{Type: EventExternal, Vector: ic.Acknowledge()})
	v.recent.addInject(ev, v.cpu.Regs().RIP)
	v.cpu.Inject(ev)
}

func (v *vcpuRun) inject(ev Event) { v.pending = &ev }

func (v *vcpuRun) injectGP() { v.inject(Event{Type: EventException, Vector: 13, HasError: true}) }

// exitHandler handles one kind of exit.
type exitHandler func(v *vcpuRun, ex Exit) error

// exitHandlers is the dispatch table, indexed by neutral reason. A reason
// without a handler stops the VM with the exit named.
var exitHandlers = [numReasons]exitHandler{
	ExitIO:                (*vcpuRun).handleIO,
	ExitMMIO:              (*vcpuRun).handleMMIO,
	ExitCPUID:             (*vcpuRun).handleCPUID,
	ExitMSRRead:           (*vcpuRun).handleRDMSR,
	ExitMSRWrite:          (*vcpuRun).handleWRMSR,
	ExitRDTSC:             (*vcpuRun).handleRDTSC,
	ExitRDTSCP:            (*vcpuRun).handleRDTSC,
	ExitHLT:               (*vcpuRun).handleHLT,
	ExitHypercall:         (*vcpuRun).handleHypercall,
	ExitPause:             (*vcpuRun).handlePause,
	ExitXSETBV:            (*vcpuRun).handleXSETBV,
	ExitVirtInstr:         (*vcpuRun).handleRefused,
	ExitInvalidOpcode:     (*vcpuRun).handleRefused,
	ExitInterruptWindow:   handleNothing, // the loop delivers the interrupt
	ExitExternalInterrupt: handleNothing, // the host took it after the exit
	ExitNMI:               handleNothing,
	ExitNone:              handleNothing, // the backend finished the work itself
	ExitShutdown: func(v *vcpuRun, _ Exit) error {
		s := v.cpu.SRegs()
		return v.stop(fmt.Sprintf("triple fault (cr0=%#x cr3=%#x cr4=%#x efer=%#x cs=%#x/%#x idt=%#x+%#x; %s)",
			s.CR0, s.CR3, s.CR4, s.EFER, s.CS.Selector, s.CS.Attrib, s.IDT.Base, s.IDT.Limit, v.fetchWalk()), nil)
	},
	// Backends emulate the control-register accesses they intercept (VMX:
	// CR0/CR4 bits the VMM owns); one that reaches the VMM is a backend gap.
	ExitCRAccess: func(v *vcpuRun, ex Exit) error {
		return v.stop("control-register access the backend did not emulate: "+ex.String(), nil)
	},
	ExitInvalidState: func(v *vcpuRun, ex Exit) error { return v.stop("invalid state: "+ex.Detail, nil) },
	ExitException: func(v *vcpuRun, ex Exit) error {
		return v.stop(fmt.Sprintf("unexpected intercepted exception %d", ex.Vector), nil)
	},
}

func handleNothing(*vcpuRun, Exit) error { return nil }

func (v *vcpuRun) dispatch(ex Exit) error {
	if ex.Reason < numReasons {
		if h := exitHandlers[ex.Reason]; h != nil {
			return h(v, ex)
		}
	}
	return v.stop("unhandled exit "+ex.String(), nil)
}

func (v *vcpuRun) handleCPUID(ex Exit) error {
	r := v.cpu.Regs()
	a, b, c, d := v.vm.guestCPUID(v.index, uint32(r.RAX), uint32(r.RCX))
	r.RAX, r.RBX, r.RCX, r.RDX = uint64(a), uint64(b), uint64(c), uint64(d)
	v.cpu.SetRegs(r)
	return v.skip(ex)
}

func (v *vcpuRun) handleRDMSR(ex Exit) error {
	r := v.cpu.Regs()
	val, ok := v.readMSR(uint32(r.RCX))
	if !ok {
		v.injectGP()
		return nil
	}
	r.RAX, r.RDX = val&0xFFFFFFFF, val>>32
	v.cpu.SetRegs(r)
	return v.skip(ex)
}

func (v *vcpuRun) handleWRMSR(ex Exit) error {
	r := v.cpu.Regs()
	if !v.writeMSR(uint32(r.RCX), r.RDX<<32|r.RAX&0xFFFFFFFF) {
		v.injectGP()
		return nil
	}
	return v.skip(ex)
}

func (v *vcpuRun) handleRDTSC(ex Exit) error {
	r := v.cpu.Regs()
	t := v.vm.Inputs.TSC(v.hostTSC() + uint64(v.cpu.TSCOffset()))
	r.RAX, r.RDX = t&0xFFFFFFFF, t>>32
	if ex.Reason == ExitRDTSCP {
		aux, _ := v.cpu.MSR(MSRTSCAux)
		r.RCX = aux & 0xFFFFFFFF
	}
	v.cpu.SetRegs(r)
	return v.skip(ex)
}

func (v *vcpuRun) handleHLT(ex Exit) error {
	if err := v.skip(ex); err != nil {
		return err
	}
	v.halted = true
	return v.halt()
}

// handleHypercall serves VMMCALL/VMCALL: RAX=0 is the no-op call that
// returns 0; any other number returns -1 (unknown hypercall).
func (v *vcpuRun) handleHypercall(ex Exit) error {
	r := v.cpu.Regs()
	if r.RAX != 0 {
		r.RAX = ^uint64(0)
	}
	v.cpu.SetRegs(r)
	return v.skip(ex)
}

// handleXSETBV accepts only XCR0 = x87 or x87|SSE: the VMM does not switch
// extended state, and CPUID hides XSAVE from guests.
func (v *vcpuRun) handleXSETBV(ex Exit) error {
	r := v.cpu.Regs()
	if !xcrWriteAllowed(uint32(r.RCX), r.RDX<<32|r.RAX&0xFFFFFFFF) {
		v.injectGP()
		return nil
	}
	return v.skip(ex)
}

// xcrWriteAllowed says whether XSETBV may load value (EDX:EAX) into the
// XCR that index (ECX) names. Every other case is #GP, as on hardware
// for an unknown XCR or reserved XCR0 bits (SDM vol. 2D XSETBV).
func xcrWriteAllowed(index uint32, value uint64) bool {
	return index == 0 && (value == 1 || value == 3)
}

// handleRefused injects #UD for instructions not offered to guests
// (virtualization instructions while nesting is off, MONITOR/MWAIT).
func (v *vcpuRun) handleRefused(Exit) error {
	v.inject(Event{Type: EventException, Vector: 6})
	return nil
}

// halt waits until an interrupt can be delivered, an NMI or INIT
// arrives, a device timer is due, or the VM ends (or is to be saved: the
// vCPU then stays halted in its state).
func (v *vcpuRun) halt() error {
	v.sig.setState(VCPUHalted)
	defer v.sig.setState(VCPURunning)
	for {
		if v.vm.ended() || v.vm.snapshot.Load() {
			return nil
		}
		v.updateTimers()
		if err := v.takeSignals(); err != nil {
			return err
		}
		if v.nmi || !v.halted { // an NMI, or an INIT (and SIPI) took it out of HLT
			v.halted = false
			return nil
		}
		if ic := v.vm.ic(v.index); ic != nil && ic.HasInterrupt() {
			v.halted = false
			return nil
		}
		if v.vm.Watchdog > 0 && v.vm.elapsed() > v.vm.Watchdog {
			return v.stop(fmt.Sprintf("watchdog: halted for good after %v", v.vm.Watchdog), nil)
		}
		v.sleep(v.nextTimer(50 * time.Millisecond))
	}
}

// nextTimer is how long until the earliest device timer is due, at most
// limit.
func (v *vcpuRun) nextTimer(limit time.Duration) time.Duration {
	wait := limit
	now := v.vm.Now()
	for _, t := range v.vm.Timers {
		if e, ok := t.NextEvent(); ok {
			if e <= now {
				return 0
			} else if d := time.Duration(e - now); d < wait {
				wait = d
			}
		}
	}
	return wait
}

// sleep blocks the vCPU's thread for at most d, or until it is kicked.
func (v *vcpuRun) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	select {
	case <-v.sig.wake:
	case <-timer.C:
	}
	timer.Stop()
}

// skip moves RIP past the instruction that exited.
func (v *vcpuRun) skip(ex Exit) error {
	r := v.cpu.Regs()
	if ex.NextRIP != 0 {
		r.RIP = ex.NextRIP
		v.cpu.SetRegs(r)
		return nil
	}
	n, err := v.instructionLength(r, ex.Reason)
	if err != nil {
		return v.stop("cannot decode the exiting instruction: "+err.Error(), err)
	}
	r.RIP = v.ripAdd(r.RIP, uint64(n))
	v.cpu.SetRegs(r)
	return nil
}

func (v *vcpuRun) ripAdd(rip, n uint64) uint64 {
	s := v.cpu.SRegs()
	switch decodeMode(s) {
	case 16:
		return (rip + n) & 0xFFFF
	case 32:
		return (rip + n) & 0xFFFFFFFF
	}
	return rip + n
}

func decodeMode(s SRegs) int {
	const lma, pe = 1 << 10, 1
	switch {
	case s.EFER&lma != 0 && s.CS.Attrib&(1<<9) != 0:
		return 64
	case s.CR0&pe != 0 && s.CS.Attrib&(1<<10) != 0:
		return 32
	}
	return 16
}

// walker returns a walker over the guest's memory and the paging state of
// registers r and s, for fetching the guest's instructions.
func (v *vcpuRun) walker(r Regs, s SRegs) (pagewalk.Walker, *pagewalk.State) {
	return pagewalk.Walker{Mem: v.vm.Mem, PhysAddrBits: 48, Vendor: pagewalk.VendorAMD},
		&pagewalk.State{CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER, RFLAGS: r.RFLAGS, CPL: s.CPL}
}

// fetchWalk describes the VMM's own walk of the guest page tables for an
// instruction fetch at CS:RIP, for a triple-fault report: it tells a guest
// whose tables really lack the mapping from one whose processor saw
// something other than what guest memory holds.
func (v *vcpuRun) fetchWalk() string {
	r, s := v.cpu.Regs(), v.cpu.SRegs()
	w, st := v.walker(r, s)
	tr, err := w.Translate(st, s.CS.Base+r.RIP, pagewalk.AccessFetch)
	if err != nil {
		return "VMM walk of rip: " + err.Error()
	}
	return fmt.Sprintf("VMM walk of rip: gpa %#x", tr.GPA)
}

// instructionLength decodes the instruction at CS:RIP (for exits without a
// hardware-provided next RIP: SVM without NRIP save, as under QEMU TCG).
// The instructions that cause these exits have fixed opcodes, so those are
// matched directly after any legacy prefixes; anything else goes through
// the full decoder.
func (v *vcpuRun) instructionLength(r Regs, reason Reason) (int, error) {
	s := v.cpu.SRegs()
	var buf [15]byte
	la := s.CS.Base + r.RIP
	w, st := v.walker(r, s)
	n := 0
	for n < len(buf) {
		tr, err := w.Translate(st, la+uint64(n), pagewalk.AccessFetch)
		if err != nil {
			if n > 0 {
				break
			}
			return 0, err
		}
		chunk := min(len(buf)-n, int(4096-(tr.GPA&4095)))
		if err := v.vm.Mem.ReadPhys(tr.GPA, buf[n:n+chunk]); err != nil {
			if n > 0 {
				break
			}
			return 0, err
		}
		n += chunk
	}
	if l, ok := fixedLength(buf[:n], reason, decodeMode(s)); ok {
		return l, nil
	}
	inst, err := x86asm.Decode(buf[:n], decodeMode(s))
	if err != nil {
		return 0, err
	}
	return inst.Len, nil
}

// exitOpcodes are the opcode bytes of the instructions behind each
// instruction-intercept exit (Intel SDM vol. 2 opcode map, AMD APM vol. 3).
var exitOpcodes = map[Reason][][]byte{
	ExitCPUID:     {{0x0F, 0xA2}},
	ExitHLT:       {{0xF4}},
	ExitMSRRead:   {{0x0F, 0x32}},
	ExitMSRWrite:  {{0x0F, 0x30}},
	ExitRDTSC:     {{0x0F, 0x31}},
	ExitRDTSCP:    {{0x0F, 0x01, 0xF9}},
	ExitHypercall: {{0x0F, 0x01, 0xD9}, {0x0F, 0x01, 0xC1}}, // VMMCALL, VMCALL
	ExitPause:     {{0xF3, 0x90}},
	ExitXSETBV:    {{0x0F, 0x01, 0xD1}},
}

// fixedLength returns the length of b's instruction when, after legacy
// prefixes (and a REX prefix in 64-bit mode), it is the expected opcode for
// reason.
func fixedLength(b []byte, reason Reason, mode int) (int, bool) {
	i := 0
	if reason != ExitPause { // PAUSE's F3 is part of its opcode
		for i < len(b) && i < 14 {
			switch b[i] {
			case 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3:
				i++
				continue
			}
			break
		}
		if mode == 64 && i < len(b) && b[i]&0xF0 == 0x40 {
			i++
		}
	}
	for _, op := range exitOpcodes[reason] {
		if len(b)-i >= len(op) && string(b[i:i+len(op)]) == string(op) {
			return i + len(op), true
		}
	}
	return 0, false
}

func (v *vcpuRun) handleIO(ex Exit) error {
	io := ex.IO
	if io.String {
		return v.emulate(func() (emulate.Result, error) { return v.emu.PortIO() })
	}
	r := v.cpu.Regs()
	if io.In {
		val, _ := v.In(io.Port, io.Size)
		switch io.Size {
		case 1:
			r.RAX = r.RAX&^0xFF | uint64(val&0xFF)
		case 2:
			r.RAX = r.RAX&^0xFFFF | uint64(val&0xFFFF)
		default:
			r.RAX = uint64(val) // a 32-bit register write zero-extends
		}
		v.cpu.SetRegs(r)
	} else if err := v.Out(io.Port, io.Size, uint32(r.RAX)); err != nil {
		return v.stop("port write failed: "+err.Error(), err)
	}
	return v.skip(ex)
}

func (v *vcpuRun) handleMMIO(ex Exit) error {
	if v.vm.Mem.IsRAM(ex.GPA) {
		return v.stop(fmt.Sprintf("nested page fault on guest RAM at gpa=%#x", ex.GPA), nil)
	}
	if !v.isMMIO(ex.GPA) {
		return v.stop(fmt.Sprintf("outside guest memory: gpa=%#x", ex.GPA), ErrOutsideMemory)
	}
	return v.emulate(func() (emulate.Result, error) { return v.emu.MMIO(ex.GPA) })
}

func (v *vcpuRun) isMMIO(gpa uint64) bool {
	if _, _, ok := v.localMMIO(gpa); ok {
		return true
	}
	for _, r := range v.vm.Bus.MMIORanges() {
		if gpa >= r.Base && gpa-r.Base < r.Size {
			return true
		}
	}
	return false
}

// emulate runs the instruction emulator with the vCPU's registers loaded.
func (v *vcpuRun) emulate(f func() (emulate.Result, error)) error {
	v.regs, v.sregs = v.cpu.Regs(), v.cpu.SRegs()
	res, err := f()
	if err != nil {
		if errors.Is(err, ErrOutsideMemory) {
			return v.stop("outside guest memory: "+err.Error(), err)
		}
		return v.stop("instruction emulation: "+err.Error(), err)
	}
	v.cpu.SetRegs(v.regs)
	if res.Raised {
		e := res.Exception
		ev := Event{Type: EventException, Vector: e.Vector, ErrCode: e.ErrorCode, HasError: e.HasErrorCode}
		if e.Vector == 14 {
			s := v.cpu.SRegs()
			s.CR2 = e.CR2
			v.cpu.SetSRegs(s)
		}
		v.inject(ev)
	}
	return nil
}

// emulate.CPU, over the registers loaded for one emulation.

func (v *vcpuRun) GPR(i int) uint64       { return v.regs.GPR(i) }
func (v *vcpuRun) SetGPR(i int, x uint64) { v.regs.SetGPR(i, x) }
func (v *vcpuRun) RIP() uint64            { return v.regs.RIP }
func (v *vcpuRun) SetRIP(x uint64)        { v.regs.RIP = x }
func (v *vcpuRun) RFLAGS() uint64         { return v.regs.RFLAGS }
func (v *vcpuRun) SetRFLAGS(x uint64)     { v.regs.RFLAGS = x }
func (v *vcpuRun) CR0() uint64            { return v.sregs.CR0 }
func (v *vcpuRun) CR3() uint64            { return v.sregs.CR3 }
func (v *vcpuRun) CR4() uint64            { return v.sregs.CR4 }
func (v *vcpuRun) EFER() uint64           { return v.sregs.EFER }

func (v *vcpuRun) Segment(s emulate.SegReg) emulate.Segment {
	var seg Segment
	switch s {
	case emulate.ES:
		seg = v.sregs.ES
	case emulate.CS:
		seg = v.sregs.CS
	case emulate.SS:
		seg = v.sregs.SS
	case emulate.DS:
		seg = v.sregs.DS
	case emulate.FS:
		seg = v.sregs.FS
	case emulate.GS:
		seg = v.sregs.GS
	}
	return emulate.Segment{Selector: seg.Selector, Base: seg.Base, Limit: seg.Limit, Attr: seg.Attrib}
}

// emulate.Bus, over guest memory and the device bus, with every read
// passing through the Inputs hook.

func (v *vcpuRun) ReadPhys(gpa uint64, p []byte) error  { return v.vm.Mem.ReadPhys(gpa, p) }
func (v *vcpuRun) WritePhys(gpa uint64, p []byte) error { return v.vm.Mem.WritePhys(gpa, p) }

func (v *vcpuRun) ReadMMIO(gpa uint64, size int) (uint64, error) {
	var b [8]byte
	if size < 1 || size > 8 {
		return 0, fmt.Errorf("vmm: mmio read size %d", size)
	}
	if d, off, ok := v.localMMIO(gpa); ok {
		d.Read(off, b[:size])
	} else if err := v.vm.Bus.ReadMMIO(gpa, b[:size]); err != nil {
		return 0, err
	}
	var val uint64
	for i := size - 1; i >= 0; i-- {
		val = val<<8 | uint64(b[i])
	}
	return v.vm.Inputs.MMIORead(gpa, size, val), nil
}

func (v *vcpuRun) WriteMMIO(gpa uint64, size int, val uint64) error {
	var b [8]byte
	if size < 1 || size > 8 {
		return fmt.Errorf("vmm: mmio write size %d", size)
	}
	for i := 0; i < size; i++ {
		b[i] = byte(val >> (8 * i))
	}
	if d, off, ok := v.localMMIO(gpa); ok {
		d.Write(off, b[:size])
		return nil
	}
	return v.vm.Bus.WriteMMIO(gpa, b[:size])
}

// localMMIO finds the exiting vCPU's own device at gpa, if any.
func (v *vcpuRun) localMMIO(gpa uint64) (bus.Device, uint64, bool) {
	if v.vm.Local == nil {
		return nil, 0, false
	}
	return v.vm.Local.MMIO(v.index, gpa)
}

func (v *vcpuRun) In(port uint16, size int) (uint32, error) {
	var b [4]byte
	if size != 1 && size != 2 && size != 4 {
		return 0, fmt.Errorf("vmm: port read size %d", size)
	}
	if err := v.vm.Bus.ReadPort(port, b[:size]); err != nil {
		return 0, err
	}
	val := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	return v.vm.Inputs.PortRead(port, size, val), nil
}

func (v *vcpuRun) Out(port uint16, size int, val uint32) error {
	var b [4]byte
	if size != 1 && size != 2 && size != 4 {
		return fmt.Errorf("vmm: port write size %d", size)
	}
	for i := 0; i < size; i++ {
		b[i] = byte(val >> (8 * i))
	}
	return v.vm.Bus.WritePort(port, b[:size])
}
