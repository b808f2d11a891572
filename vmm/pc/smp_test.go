package pc

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/boot/acpi"
	"hv/devices/lapic"
	"hv/vmm"
)

// The multiprocessor tests run the PC's real devices (local APICs, their
// router, the I/O APIC) and the VMM's real vCPU loops over a scripted
// backend: each fake vCPU "executes" a program chosen by where it runs,
// one step per exit, as a guest would reach the VMM.

// step is one scripted guest instruction: it returns the exit it causes.
// Steps sit 2 bytes apart from the program's start; an exit's NextRIP
// moves to the next step. A step may look at the vCPU and return
// stay=true to repeat itself (a HLT loop).
type step func(c *scriptCPU) (ex vmm.Exit, stay bool)

// Program starts: the bootstrap processor's (the loader's ELF entry)
// and the application processors' (the SIPI vector's page).
const (
	bspEntry   = 0x100000
	sipiVector = 0x10
	apStart    = sipiVector << 12
)

type scriptBackend struct {
	programs map[uint64][]step // by CS base + program start
	mu       sync.Mutex
	cpus     []*scriptCPU
}

func (b *scriptBackend) Name() string            { return "script" }
func (b *scriptBackend) EnableCPU(cpu int) error { return nil }
func (b *scriptBackend) NewVCPU(mem *vmm.Memory, cpu int) (vmm.VCPU, error) {
	c := &scriptCPU{b: b}
	c.sregs.CR0 = vmm.ResetCR0 // as the backends start a vCPU
	b.mu.Lock()
	b.cpus = append(b.cpus, c)
	b.mu.Unlock()
	return c, nil
}

type scriptCPU struct {
	b          *scriptBackend
	regs       vmm.Regs
	sregs      vmm.SRegs
	off        int64
	injected   []vmm.Event // taken by the "guest", in order
	pending    *vmm.Event  // injected, not taken yet
	notes      []string
	loops      int    // repeat's counter
	eoiDue     int    // interrupts taken and not EOIed by hltUntil yet
	apicID     uint32 // what CPUID told the program
	pauseExits bool   // InterceptPause(true): a sibling vCPU shares the host CPU
}

func (c *scriptCPU) program() ([]step, uint64, bool) {
	for start, p := range c.b.programs {
		base := c.sregs.CS.Base
		if base+c.regs.RIP >= start && base+c.regs.RIP < start+2*uint64(len(p)) {
			return p, start, true
		}
	}
	return nil, 0, false
}

func (c *scriptCPU) Run() (vmm.Exit, error) {
	if c.pending != nil {
		c.injected = append(c.injected, *c.pending)
		c.pending = nil
		c.eoiDue++
	}
	for {
		p, start, ok := c.program()
		if !ok {
			return vmm.Exit{Reason: vmm.ExitShutdown}, nil // off the script: a triple fault
		}
		rip := c.regs.RIP
		i := (c.sregs.CS.Base + rip - start) / 2
		ex, stay := p[i](c)
		if ex.Reason == vmm.ExitNone && !stay {
			c.regs.RIP += 2 // a step without an exit
			continue
		}
		ex.NextRIP = rip + 2
		if stay {
			ex.NextRIP = rip
		}
		return ex, nil
	}
}

func (c *scriptCPU) took(vec uint8) bool {
	for _, e := range c.injected {
		if e.Vector == vec {
			return true
		}
	}
	return false
}

func (c *scriptCPU) Regs() vmm.Regs            { return c.regs }
func (c *scriptCPU) SetRegs(r vmm.Regs)        { c.regs = r }
func (c *scriptCPU) SRegs() vmm.SRegs          { return c.sregs }
func (c *scriptCPU) SetSRegs(s vmm.SRegs)      { c.sregs = s }
func (c *scriptCPU) MSR(uint32) (uint64, bool) { return 0, false }
func (c *scriptCPU) SetMSR(uint32, uint64) bool {
	return false
}
func (c *scriptCPU) Inject(ev vmm.Event)    { e := ev; c.pending = &e }
func (c *scriptCPU) InterruptWindow(bool)   {}
func (c *scriptCPU) CanInterrupt() bool     { return c.pending == nil }
func (c *scriptCPU) SetTSCOffset(off int64) { c.off = off }
func (c *scriptCPU) TSCOffset() int64       { return c.off }
func (c *scriptCPU) InterceptRDTSC(bool)    {}
func (c *scriptCPU) InterceptPause(on bool) { c.pauseExits = on }
func (c *scriptCPU) Close() error           { return nil }
func (c *scriptCPU) SaveState() (vmm.State, error) {
	return vmm.State{Regs: c.regs, SRegs: c.sregs, TSCOffset: c.off}, nil
}
func (c *scriptCPU) RestoreState(s vmm.State) error {
	c.regs, c.sregs, c.off = s.Regs, s.SRegs, s.TSCOffset
	return nil
}

// Steps.

func wrmsr(msr uint32, v uint64) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		c.regs.RCX, c.regs.RAX, c.regs.RDX = uint64(msr), v&0xFFFFFFFF, v>>32
		return vmm.Exit{Reason: vmm.ExitMSRWrite, MSR: msr, Write: true}, false
	}
}

// check runs f on the vCPU without an exit (what the guest computes).
func check(f func(c *scriptCPU)) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		f(c)
		return vmm.Exit{}, false
	}
}

func cpuid(leaf uint32) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		c.regs.RAX, c.regs.RCX = uint64(leaf), 0
		return vmm.Exit{Reason: vmm.ExitCPUID}, false
	}
}

func rdmsr(msr uint32) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		c.regs.RCX = uint64(msr)
		return vmm.Exit{Reason: vmm.ExitMSRRead, MSR: msr}, false
	}
}

// hltUntil halts until the vCPU has taken vector vec. Each interrupt
// taken meanwhile is EOIed, as its handler would (a vector left in service
// would hold back the others of its priority class).
func hltUntil(vec uint8) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		if c.eoiDue > 0 {
			c.eoiDue--
			ex, _ := wrmsr(msrEOI, 0)(c)
			return ex, true
		}
		if c.took(vec) {
			return vmm.Exit{}, false
		}
		return vmm.Exit{Reason: vmm.ExitHLT}, true
	}
}

func hltForever(c *scriptCPU) (vmm.Exit, bool) { return vmm.Exit{Reason: vmm.ExitHLT}, true }

// exitPort writes v to the isa-debug-exit port.
func exitPort(v uint32) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		c.regs.RAX = uint64(v)
		return vmm.Exit{Reason: vmm.ExitIO, IO: vmm.IOAccess{Port: 0xF4, Size: 4}}, false
	}
}

func note(c *scriptCPU, format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// x2APIC ICR values (SDM vol. 3A 11.12.9: destination in 63:32).
const (
	x2Base     = 0x800
	msrSVR     = x2Base + lapic.RegSVR>>4
	msrEOI     = x2Base + lapic.RegEOI>>4
	msrICR     = x2Base + lapic.RegICRLow>>4
	icrAssert  = 1 << 14
	icrINIT    = uint64(lapic.INIT) << 8
	icrStartUp = uint64(lapic.StartUp) << 8
	ipiVector  = 0x40
)

func x2apicOn(bsp bool) step {
	v := uint64(lapic.DefaultBase | lapic.BaseEnable | lapic.BaseX2APIC)
	if bsp {
		v |= lapic.BaseBSP
	}
	return wrmsr(lapic.MSRAPICBase, v)
}

// smpPrograms: the BSP switches to x2APIC, starts vCPU 1 with INIT and
// two SIPIs and halts until vCPU 1's fixed IPI arrives, then ends the VM
// through the exit port with 0x2A. vCPU 1 records what CPUID and
// IA32_APIC_BASE tell it, sends the IPI and halts for good.
func smpPrograms(apExtra ...step) map[uint64][]step {
	bsp := []step{
		x2apicOn(true),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		wrmsr(msrICR, 1<<32|icrINIT|icrAssert),
		wrmsr(msrICR, 1<<32|icrStartUp|sipiVector),
		wrmsr(msrICR, 1<<32|icrStartUp|sipiVector), // the customary second SIPI: ignored
		hltUntil(ipiVector),
		wrmsr(msrEOI, 0),
		exitPort(0x2A),
	}
	ap := []step{
		check(func(c *scriptCPU) {
			note(c, "start cs=%#x rip=%#x cr0=%#x", c.sregs.CS.Selector, c.regs.RIP, c.sregs.CR0)
		}),
		cpuid(1),
		check(func(c *scriptCPU) { note(c, "apic id %d", c.regs.RBX>>24) }),
		rdmsr(lapic.MSRAPICBase),
		check(func(c *scriptCPU) { note(c, "apic base %#x", c.regs.RAX) }),
		x2apicOn(false),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
	}
	ap = append(ap, apExtra...)
	ap = append(ap,
		wrmsr(msrICR, 0<<32|ipiVector), // fixed, physical, to APIC 0
		hltForever)
	return map[uint64][]step{bspEntry: bsp, apStart: ap}
}

type countingPlatform struct {
	fakePlatform
	tsc        atomic.Uint64
	interrupts atomic.Int64
}

func (p *countingPlatform) Pin(int) error       { return nil }
func (p *countingPlatform) Unpin()              {}
func (p *countingPlatform) SetTick(int64) error { return nil }
func (p *countingPlatform) TSC() uint64         { return p.tsc.Add(1000) }
func (p *countingPlatform) TSCHz() uint64       { return 1_000_000_000 }
func (p *countingPlatform) InterruptCPU(int)    { p.interrupts.Add(1) }
func (p *countingPlatform) CPUID(leaf, sub uint32) (a, b, c, d uint32) {
	if leaf == 1 {
		return 0x00800F12, 0x02100800, 0, 0 // a host's signature, its own APIC ID 2
	}
	return 0, 0, 0, 0
}

func newSMPMachine(t *testing.T, cpus int, b vmm.Backend) *Machine {
	t.Helper()
	p := &countingPlatform{fakePlatform: fakePlatform{fakeHost: &fakeHost{mem: make([]byte, MinMemory+(16<<20))}}}
	m, err := New(Config{Name: "smp", CPUs: cpus, MemSize: MinMemory, Kernel: elf64([]byte{0xF4})}, b, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func (b *scriptBackend) cpuAt(start uint64) *scriptCPU {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.cpus {
		if c.sregs.CS.Base == start {
			return c
		}
	}
	return nil
}

// The MP start-up protocol end to end: INIT, SIPI, the AP's identity, an
// IPI back, the VM's outcome ending both vCPUs.
func TestSMPStartup(t *testing.T) {
	b := &scriptBackend{programs: smpPrograms()}
	m := newSMPMachine(t, 2, b)
	out, exits, err := m.Run(0, 1)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if out.Kind != ExitPort || out.Value != 0x2A {
		t.Fatalf("outcome %v %#x, want the exit port's 0x2a", out.Kind, out.Value)
	}
	if exits == 0 {
		t.Error("no exits counted")
	}
	ap := b.cpuAt(apStart)
	if ap == nil {
		t.Fatal("no vCPU ran the AP's program")
	}
	want := []string{
		fmt.Sprintf("start cs=%#x rip=0x0 cr0=%#x", sipiVector<<8, 0x60000010),
		"apic id 1",
		fmt.Sprintf("apic base %#x", lapic.DefaultBase|lapic.BaseEnable), // no BSP bit
	}
	if got := strings.Join(ap.notes, "; "); got != strings.Join(want, "; ") {
		t.Errorf("AP saw %q\nwant %q", got, strings.Join(want, "; "))
	}
	if ap.regs.RDX != 0 && ap.sregs.CS.Base != apStart {
		t.Errorf("AP state %+v", ap.sregs.CS)
	}
	if _, n := m.VM.VCPUExits(1); n == 0 {
		t.Error("no exits counted for vCPU 1")
	}
	for i, c := range b.cpus {
		if c.pauseExits {
			t.Errorf("vCPU %d has a host CPU of its own but PAUSE exits", i)
		}
	}
}

// An AP that is never started keeps waiting for its SIPI and does not
// keep the VM from ending; neither does one halted for good.
func TestSMPUnstartedAP(t *testing.T) {
	b := &scriptBackend{}
	m := newSMPMachine(t, 4, b)
	var seen []vmm.VCPUState
	b.programs = map[uint64][]step{bspEntry: {
		cpuid(0), // one exit, so that the APs have had time to begin waiting
		check(func(*scriptCPU) {
			for i := range 4 {
				seen = append(seen, m.VM.VCPUState(i))
			}
		}),
		exitPort(7),
	}}
	// The APs may not have reached their wait yet at the check: wait for
	// them before the BSP runs.
	b.programs[bspEntry][0] = func(c *scriptCPU) (vmm.Exit, bool) {
		for i := 1; i < 4; i++ {
			for m.VM.VCPUState(i) != vmm.VCPUWaitSIPI {
				runtime.Gosched()
			}
		}
		return cpuid(0)(c)
	}
	out, _, err := m.Run(0, 1, 0, 1)
	if err != nil || out.Kind != ExitPort || out.Value != 7 {
		t.Fatalf("outcome %v %v, %v", out.Kind, out.Value, err)
	}
	for i := 1; i < 4; i++ {
		if _, n := m.VM.VCPUExits(i); n != 0 {
			t.Errorf("vCPU %d never started but had %d exits", i, n)
		}
	}
	want := []vmm.VCPUState{vmm.VCPURunning, vmm.VCPUWaitSIPI, vmm.VCPUWaitSIPI, vmm.VCPUWaitSIPI}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("states during the run %v, want %v", seen, want)
	}
	for i := range 4 {
		if st := m.VM.VCPUState(i); st != vmm.VCPUEnded {
			t.Errorf("vCPU %d %v after the run", i, st)
		}
	}
}

// A vCPU the VMM stops ends the whole VM with its reason; the message
// names the vCPU.
func TestSMPStopEndsAll(t *testing.T) {
	progs := smpPrograms(func(c *scriptCPU) (vmm.Exit, bool) { return vmm.Exit{Reason: vmm.ExitShutdown}, false })
	progs[bspEntry] = []step{ // start the AP, then halt for good
		x2apicOn(true),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		wrmsr(msrICR, 1<<32|icrINIT|icrAssert),
		wrmsr(msrICR, 1<<32|icrStartUp|sipiVector),
		hltForever,
	}
	m := newSMPMachine(t, 2, &scriptBackend{programs: progs})
	_, _, err := m.Run(0, 1)
	var se *vmm.StopError
	if !errors.As(err, &se) {
		t.Fatalf("run ended with %v, want a StopError", err)
	}
	if se.VCPU != 1 || !strings.Contains(se.Error(), "vm smp: stopped: vcpu 1: triple fault") {
		t.Errorf("stop %q (vcpu %d)", se.Error(), se.VCPU)
	}
}

// INIT sent to the bootstrap processor (all including self) stops the
// VM: there is no firmware at the reset vector to restart it.
func TestSMPINITToBSP(t *testing.T) {
	progs := map[uint64][]step{bspEntry: {
		x2apicOn(true),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		wrmsr(msrICR, uint64(lapic.AllIncludingSelf)<<18|icrINIT|icrAssert),
		hltForever,
	}}
	m := newSMPMachine(t, 2, &scriptBackend{programs: progs})
	_, _, err := m.Run(0, 1)
	if err == nil || !strings.Contains(err.Error(), "vcpu 0: INIT to the bootstrap processor") {
		t.Errorf("run ended with %v", err)
	}
}

// A SIPI without a preceding INIT still starts an AP that waits for it
// (the state after power-on is wait-for-SIPI), but a SIPI to a running
// AP is ignored, and an INIT puts it back into wait-for-SIPI: the second
// start runs the program from its beginning again.
func TestSMPReINIT(t *testing.T) {
	const again = 0x20
	progs := smpPrograms()
	progs[bspEntry] = []step{
		x2apicOn(true),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		wrmsr(msrICR, 1<<32|icrStartUp|sipiVector), // no INIT first
		hltUntil(ipiVector),
		wrmsr(msrEOI, 0),
		wrmsr(msrICR, 1<<32|icrStartUp|again), // running: ignored
		check(func(c *scriptCPU) { c.injected = nil }),
		wrmsr(msrICR, 1<<32|icrINIT|icrAssert),
		wrmsr(msrICR, 1<<32|icrStartUp|sipiVector),
		hltUntil(ipiVector),
		exitPort(1),
	}
	progs[again<<12] = []step{exitPort(99)} // must never run
	b := &scriptBackend{programs: progs}
	m := newSMPMachine(t, 2, b)
	out, _, err := m.Run(0, 1)
	if err != nil || out.Kind != ExitPort || out.Value != 1 {
		t.Fatalf("outcome %v %v, %v", out.Kind, out.Value, err)
	}
	ap := b.cpuAt(apStart)
	starts := 0
	for _, n := range ap.notes {
		if strings.HasPrefix(n, "start ") {
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("AP started %d times, want 2: %q", starts, ap.notes)
	}
}

// Save/restore with two vCPUs: StopAfter on vCPU 0 stops both and
// returns both states (the AP's wait-for-SIPI or halt included); the
// states continue in a fresh machine to the same outcome.
func TestSMPSnapshot(t *testing.T) {
	for _, stopAfter := range []uint64{1, 3, 5} {
		t.Run(fmt.Sprint(stopAfter), func(t *testing.T) {
			b := &scriptBackend{programs: smpPrograms()}
			m := newSMPMachine(t, 2, b)
			res, err := m.VM.Run(0, vmm.RunOptions{Setup: m.Setup, StopAfter: stopAfter, HostCPUs: []int{0, 1}})
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			if len(res.Snapshot) != 2 {
				t.Fatalf("%d states saved, want 2", len(res.Snapshot))
			}
			if stopAfter == 1 && !res.Snapshot[1].WaitForSIPI {
				t.Error("AP not started yet, but its state is not wait-for-SIPI")
			}
			m2 := newSMPMachine(t, 2, &scriptBackend{programs: smpPrograms()})
			for i, a := range m.LAPICs {
				blob, err := a.SaveState()
				if err == nil {
					err = m2.LAPICs[i].RestoreState(blob)
				}
				if err != nil {
					t.Fatalf("LAPIC %d: %v", i, err)
				}
			}
			m2.VM.SetClock(m.VM.Now())
			_, err = m2.VM.Run(0, vmm.RunOptions{Restore: res.Snapshot, HostCPUs: []int{0, 1}})
			if !errors.Is(err, vmm.ErrExited) {
				t.Fatalf("restored run: %v", err)
			}
			if o := m2.outcome; o.Kind != ExitPort || o.Value != 0x2A {
				t.Errorf("restored run's outcome %v %#x", o.Kind, o.Value)
			}
		})
	}
	m := newSMPMachine(t, 2, &scriptBackend{programs: smpPrograms()})
	if _, err := m.VM.Run(0, vmm.RunOptions{Restore: make([]vmm.State, 1)}); err == nil {
		t.Error("one state restored into two vCPUs")
	}
}

// guestMem reads the VM's memory for boot/acpi's parser.
type guestMem struct{ m *vmm.Memory }

func (g guestMem) Bytes(addr, n uint64) ([]byte, bool) {
	b := make([]byte, n)
	if g.m.ReadPhys(addr, b) != nil {
		return nil, false
	}
	return b, true
}

// The firmware tables of an N-vCPU PC list N enabled local APICs with IDs
// 0 to N-1 and the I/O APIC after them; the LAPICs carry those IDs and only
// vCPU 0's has the BSP flag.
func TestSMPFirmware(t *testing.T) {
	for _, n := range []int{1, 2, 5, vmm.MaxCPUs} {
		m := newSMPMachine(t, n, &scriptBackend{})
		mem := guestMem{m.VM.Mem}
		rsdp, err := acpi.FindRSDP(mem, nil)
		if err != nil {
			t.Fatal(err)
		}
		var root acpi.Tables
		if err := acpi.ReadRoot(mem, rsdp, &root); err != nil {
			t.Fatal(err)
		}
		addr, _ := root.Find(acpi.SigMADT, 0)
		b, err := acpi.Load(mem, addr, acpi.SigMADT)
		if err != nil {
			t.Fatal(err)
		}
		var madt acpi.MADT
		if err := acpi.ParseMADT(b, &madt); err != nil {
			t.Fatal(err)
		}
		var want []acpi.CPU
		for i := range n {
			want = append(want, acpi.CPU{APICID: uint32(i), ProcessorUID: uint32(i), Flags: acpi.CPUEnabled})
		}
		if d := cmp.Diff(want, madt.CPUList()); d != "" {
			t.Errorf("%d vCPUs: MADT CPUs (-want +got):\n%s", n, d)
		}
		if io := madt.IOAPICList(); len(io) != 1 || io[0].ID != uint8(n) {
			t.Errorf("%d vCPUs: I/O APICs %+v, want ID %d", n, io, n)
		}
		if len(m.LAPICs) != n || len(m.VM.ICs) != n {
			t.Fatalf("%d vCPUs: %d LAPICs, %d interrupt controllers", n, len(m.LAPICs), len(m.VM.ICs))
		}
		for i, a := range m.LAPICs {
			if a.ID() != uint32(i) || (a.Base()&lapic.BaseBSP != 0) != (i == 0) {
				t.Errorf("%d vCPUs: LAPIC %d has ID %d, base %#x", n, i, a.ID(), a.Base())
			}
		}
	}
	if _, err := New(Config{Name: "many", CPUs: vmm.MaxCPUs + 1, MemSize: MinMemory, Kernel: elf64([]byte{0xF4})}, nil,
		fakePlatform{fakeHost: &fakeHost{mem: make([]byte, MinMemory)}}); err == nil {
		t.Errorf("%d vCPUs accepted", vmm.MaxCPUs+1)
	}
}

// in and out are port accesses.
func in(port uint16, size int) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		return vmm.Exit{Reason: vmm.ExitIO, IO: vmm.IOAccess{Port: port, Size: size, In: true}}, false
	}
}

func out(port uint16, size int, v uint32) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		c.regs.RAX = uint64(v)
		return vmm.Exit{Reason: vmm.ExitIO, IO: vmm.IOAccess{Port: port, Size: size}}, false
	}
}

// repeat runs body n times (a loop in the guest): its steps are taken in
// turn, each its own exit.
func repeat(n int, body ...step) step {
	return func(c *scriptCPU) (vmm.Exit, bool) {
		k := c.loops
		c.loops++
		ex, _ := body[k%len(body)](c)
		return ex, c.loops < n*len(body)
	}
}

// Every vCPU at once on the shared devices (the PIT, CMOS, port 0x80, the
// UART, the PCI configuration ports): with go test -race this checks the
// devices' locking under the VMM's real concurrent vCPU loops. The BSP
// starts every AP with the all-excluding-self shorthand; each AP reports
// with its own vector (0x41 + APIC ID).
func TestSMPSharedDevices(t *testing.T) {
	const n = 4
	bsp := []step{
		x2apicOn(true),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		wrmsr(msrICR, uint64(lapic.AllExcludingSelf)<<18|icrINIT|icrAssert),
		wrmsr(msrICR, uint64(lapic.AllExcludingSelf)<<18|icrStartUp|sipiVector),
	}
	for id := 1; id < n; id++ {
		bsp = append(bsp, hltUntil(0x41+uint8(id)), wrmsr(msrEOI, 0))
	}
	bsp = append(bsp, exitPort(3))
	ap := []step{
		cpuid(1),
		check(func(c *scriptCPU) { c.apicID = uint32(c.regs.RBX >> 24) }),
		x2apicOn(false),
		wrmsr(msrSVR, lapic.SVREnable|0xFF),
		repeat(100, in(0x40, 1), out(0x80, 1, 0x55), out(0x70, 1, 0x0A), in(0x71, 1),
			out(0xCF8, 4, 0x80000000), in(0xCFC, 4), out(0x3F9, 1, 0), in(0x3FD, 1)),
		func(c *scriptCPU) (vmm.Exit, bool) { return wrmsr(msrICR, uint64(0x41+c.apicID))(c) },
		hltForever,
	}
	b := &scriptBackend{programs: map[uint64][]step{bspEntry: bsp, apStart: ap}}
	m := newSMPMachine(t, n, b)
	o, exits, err := m.Run(0, 1, 0, 1) // two vCPUs on each of two host CPUs
	if err != nil || o.Kind != ExitPort || o.Value != 3 {
		t.Fatalf("outcome %v %v, %v", o.Kind, o.Value, err)
	}
	if exits < (n-1)*800 {
		t.Errorf("%d exits, want at least %d", exits, (n-1)*800)
	}
	for i, c := range b.cpus {
		if !c.pauseExits {
			t.Errorf("vCPU %d shares its host CPU but PAUSE does not exit", i)
		}
	}
}
