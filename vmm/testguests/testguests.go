// Package testguests holds the in-tree test guests: small flat binaries, one
// per exit type or isolation case, each run in real, 32-bit protected or
// 64-bit long mode, together with the outcome the VMM must produce for it.
//
// The guests are written in GNU assembler (src/*.S) against the guest
// machine contract in docs/testguests.md and carried here as generated Go
// (zz_generated.go, `go generate`), so building the hypervisor needs no
// binutils. This package only describes guests; loading and running them,
// and judging a run with Outcome.Check, is the VMM harness's job.
package testguests

//go:generate go run gen.go

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The guest machine contract (docs/testguests.md). The guests are built
// against these numbers; src/defs.inc holds the same values and a test
// keeps the two in step.
const (
	// LoadAddr is the guest physical address of the image, and the entry
	// point: real mode, CS=0 (base 0), IP=LoadAddr.
	LoadAddr = 0x8000
	// EntrySP is SP at entry (SS=0). DS=ES=FS=GS=0.
	EntrySP = 0x7000
	// EntryRFLAGS is RFLAGS at entry: reserved bit 1 only, IF=0.
	EntryRFLAGS = 0x2
	// EntryCR0 is CR0 at entry: ET; PE=0, PG=0.
	EntryCR0 = 0x10
	// DefaultMemSize is the RAM every guest here gets, at GPA 0.
	DefaultMemSize = 4 << 20

	// PortConsole is the debug console: each byte written is text, and the
	// VMM prints each completed line as "guest <name>: <text>".
	PortConsole = 0xE9
	// PortExit is the test exit port: a 32-bit OUT of v ends the VM with
	// result v (QEMU isa-debug-exit semantics, status (v<<1)|1).
	PortExit = 0xF4
	// PortPOST is the POST code port; reads return the last byte written.
	PortPOST = 0x80
	// COM1Base is the port-I/O 16550.
	COM1Base = 0x3F8
	// UARTMMIOBase is the MMIO 16550: 8 byte-wide registers, register i at
	// UARTMMIOBase+i. Its transmitter writes to the same console as
	// PortConsole.
	UARTMMIOBase = 0xFED00000
	// UARTMMIOSize is the size of the MMIO 16550's register window.
	UARTMMIOSize = 8
	// OutsideGPA is the guest physical address outside-ram reads: neither
	// RAM nor a device.
	OutsideGPA = 0x80000000

	// HypervisorLeaf is the CPUID leaf with the hypervisor signature.
	HypervisorLeaf = 0x40000000
	// HypervisorSignature is CPUID.40000000h EBX, ECX, EDX as little-endian
	// bytes.
	HypervisorSignature = "HVGoHVGoHVGo"
	// MinTSC is the least value RDTSC may return in a test guest: the VMM
	// sets a TSC offset that puts it there.
	MinTSC = 1 << 40
)

// POST codes every guest's prologue writes to PortPOST, in this order, so
// that a guest that dies before its first console line (in a mode switch,
// say) still shows how far it got.
const (
	PostReset  = 0x01 // first instruction, real mode
	PostProt32 = 0x02 // in 32-bit protected mode (prot32 and long64 guests)
	PostLong64 = 0x03 // in 64-bit long mode (long64 guests)
	PostMain   = 0x04 // interrupt handlers installed, checks begin
)

// Processor modes a guest runs its checks in. Every guest starts in real
// mode and enters its mode itself.
const (
	ModeReal   = "real"
	ModeProt32 = "prot32"
	ModeLong64 = "long64"
)

// OutcomeKind says how a guest's run is meant to end.
type OutcomeKind int

const (
	// ExitCode: the guest writes its result to PortExit.
	ExitCode OutcomeKind = iota + 1
	// Stopped: the VMM stops the VM, for Outcome.StopReason.
	Stopped
)

func (k OutcomeKind) String() string {
	switch k {
	case ExitCode:
		return "exit code"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("OutcomeKind(%d)", int(k))
}

// Reasons for which the VMM stops a VM, as its "vm <name>: stopped:
// <reason> at rip=<hex>" line names them.
const (
	StopTripleFault   = "triple fault"
	StopOutsideMemory = "outside guest memory"
	StopWatchdog      = "watchdog"
	StopInvalidState  = "invalid state"
)

// Outcome is how a run of a guest ends.
type Outcome struct {
	Kind OutcomeKind
	// ExitCode is the value written to PortExit when Kind is ExitCode: 0
	// when every check held, else the code of the failed check (the guest
	// also prints "error 0x<code>: <what>"). Codes 0x100+v mean an
	// unexpected interrupt or exception with vector v.
	ExitCode uint32
	// StopReason is one of the Stop constants when Kind is Stopped.
	StopReason string
	// Console lists lines (the text after "guest <name>: ") that must
	// appear, in this order, among the guest's console output. They check
	// output paths the guest cannot see itself, such as the MMIO UART's
	// transmitter. When an Outcome describes a finished run, Console holds
	// every line the guest printed.
	Console []string
}

func (o Outcome) String() string {
	switch o.Kind {
	case ExitCode:
		return fmt.Sprintf("exit code %#x", o.ExitCode)
	case Stopped:
		return "stopped: " + o.StopReason
	}
	return o.Kind.String()
}

// Check compares a finished run, got, with the expected outcome o. got.Kind
// and got.ExitCode or got.StopReason must equal o's, and o.Console must be
// a subsequence of got.Console. The error names the first difference.
func (o Outcome) Check(got Outcome) error {
	if got.Kind != o.Kind {
		return fmt.Errorf("testguests: got %v, want %v", got, o)
	}
	switch o.Kind {
	case ExitCode:
		if got.ExitCode != o.ExitCode {
			return fmt.Errorf("testguests: got %v, want %v", got, o)
		}
	case Stopped:
		if got.StopReason != o.StopReason {
			return fmt.Errorf("testguests: got %v, want %v", got, o)
		}
	default:
		return fmt.Errorf("testguests: invalid expected outcome kind %v", o.Kind)
	}
	rest := got.Console
	for _, want := range o.Console {
		i := slices.Index(rest, want)
		if i < 0 {
			return fmt.Errorf("testguests: console line %q missing (or out of order)", want)
		}
		rest = rest[i+1:]
	}
	return nil
}

// Guest is one test guest.
type Guest struct {
	// Name is short and stable: the boot option guest=<name> uses it.
	Name        string
	Description string
	// Mode is the mode the checks run in: ModeReal, ModeProt32 or
	// ModeLong64.
	Mode string
	// Image is loaded at LoadAddr; it fits in MemSize-LoadAddr.
	Image []byte
	// MemSize is the guest RAM size in bytes, at GPA 0.
	MemSize uint64
	Expect  Outcome
	// Timeout is a generous bound on the run, for emulators several
	// levels down. Past it, the VMM's watchdog stops the VM (StopWatchdog);
	// for loop-forever that is the expected outcome.
	Timeout time.Duration
	// CPUs is the number of vCPUs (1 for every guest but smp-ipi): vCPU 0
	// starts at LoadAddr, the others wait for INIT and a start-up IPI, and
	// each has a local APIC (x2APIC ID = vCPU index).
	CPUs int
}

// Timeouts. Normal guests finish in well under a second of guest time; the
// bound allows for Bochs at a few million instructions per second.
const (
	DefaultTimeout = 60 * time.Second
	// LoopForeverTimeout is short because loop-forever always runs into it.
	LoopForeverTimeout = 5 * time.Second
)

// spec describes a guest; its image comes from src/<name>.S.
type spec struct {
	name, desc, mode string
	expect           Outcome
	timeout          time.Duration
	cpus             int // vCPUs; 0: 1
}

// families are the checks that run once per mode, as <family>-<mode>.
func families() []spec {
	pass := Outcome{Kind: ExitCode}
	return []spec{
		{name: "cpuid", desc: "CPUID: hypervisor leaf 40000000h and its signature, hypervisor bit set, VMX and SVM hidden", expect: pass},
		{name: "io", desc: "port I/O: IN/OUT of bytes, words and dwords, INS/OUTS with and without REP and with DF=1, on the UART, port 80h and the console", expect: Outcome{
			Kind: ExitCode,
			Console: []string{
				"io: this line went out by one REP OUTSB",
				"io: this line went out by single OUTSBs",
			},
		}},
		{name: "mmio-uart", desc: "MMIO 16550 at FED00000h through the instruction emulator: MOV, MOVZX, MOVSX, CMP, TEST, OR, AND, XCHG, REP MOVSB, REP STOSB", expect: Outcome{
			Kind: ExitCode,
			Console: []string{
				"mmio-uart: this line went out by MOV to THR",
				"mmio-uart: this line went out by REP MOVSB and REP STOSB",
				"mmio-uart: one REP MOVSB over registers 0-4 sent #",
			},
		}},
		{name: "hlt-pit", desc: "HLT woken by PIT IRQ0 (modes 2 and 3, 500 Hz) through the 8259 at vector 20h", expect: pass},
		{name: "rdtsc", desc: "RDTSC and IA32_TSC with the TSC offset: at least 1<<40, never backwards", expect: pass},
		{name: "msr", desc: "RDMSR/WRMSR: allowed MSRs round-trip; unknown, host-only and reserved-bit accesses raise #GP(0)", expect: pass},
		{name: "exception", desc: "#UD, #DE, #BP, #GP (and #PF with CR2 in long mode) handled by the guest's own IVT/IDT", expect: pass},
		{name: "hypercall", desc: "the no-op hypercall (RAX=0) by VMMCALL or VMCALL, per CPUID vendor", expect: pass},
		{name: "exit-port", desc: "the result reaches the VMM through the exit port: a nonzero code of the guest's own"},
	}
}

// exitPortCodes are the results the exit-port guests write (src/defs.inc
// EXIT_CODE_*). They are below 1<<31 because isa-debug-exit reports
// (v<<1)|1 in 32 bits.
func exitPortCodes() map[string]uint32 {
	return map[string]uint32{
		ModeReal:   0x7E570010,
		ModeProt32: 0x7E570020,
		ModeLong64: 0x7E570040,
	}
}

func specs() []spec {
	var out []spec
	codes := exitPortCodes()
	for _, f := range families() {
		for _, mode := range []string{ModeReal, ModeProt32, ModeLong64} {
			s := f
			s.name = f.name + "-" + mode
			s.mode = mode
			if f.name == "exit-port" {
				s.expect = Outcome{Kind: ExitCode, ExitCode: codes[mode]}
			}
			out = append(out, s)
		}
	}
	return append(out,
		spec{name: "triple-fault", mode: ModeLong64,
			desc:   "isolation: IDT limit 0 and UD2 shut the processor down; the VMM stops the VM",
			expect: Outcome{Kind: Stopped, StopReason: StopTripleFault}},
		spec{name: "outside-ram", mode: ModeProt32,
			desc:   "isolation: a read of guest physical 80000000h, neither RAM nor a device; the VMM stops the VM",
			expect: Outcome{Kind: Stopped, StopReason: StopOutsideMemory}},
		spec{name: "smp-ipi", mode: ModeReal, cpus: 2,
			desc:   "two vCPUs: the BSP starts the AP with INIT and SIPI through its x2APIC; the AP reports APIC ID 1 without the BSP flag and sends the BSP a fixed IPI",
			expect: Outcome{Kind: ExitCode}},
		spec{name: "loop-forever", mode: ModeReal,
			desc:    "isolation: CLI and a jump to itself; the VMM's watchdog stops the VM",
			expect:  Outcome{Kind: Stopped, StopReason: StopWatchdog},
			timeout: LoopForeverTimeout},
	)
}

func (s spec) guest() Guest {
	img, _ := sourceImage(s.name)
	t := s.timeout
	if t == 0 {
		t = DefaultTimeout
	}
	exp := s.expect
	exp.Console = slices.Clone(exp.Console)
	return Guest{
		Name:        s.name,
		Description: s.desc,
		Mode:        s.mode,
		Image:       []byte(img),
		MemSize:     DefaultMemSize,
		Expect:      exp,
		Timeout:     t,
		CPUs:        max(s.cpus, 1),
	}
}

// All returns every test guest, in a fixed order: the per-mode checks by
// family and mode, then the isolation cases. Each call returns fresh
// copies, so a caller may modify what it gets.
func All() []Guest {
	ss := specs()
	gs := make([]Guest, len(ss))
	for i, s := range ss {
		gs[i] = s.guest()
	}
	return gs
}

// ByName returns the guest called name.
func ByName(name string) (Guest, bool) {
	for _, s := range specs() {
		if s.name == name {
			return s.guest(), true
		}
	}
	return Guest{}, false
}

// Names returns the guest names in All's order, for guest=list.
func Names() []string {
	ss := specs()
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.name
	}
	return names
}

// Lookup resolves a guest=<name>[,<name>...] list. It fails on an unknown
// or empty name, naming it.
func Lookup(list string) ([]Guest, error) {
	var gs []Guest
	for _, n := range strings.Split(list, ",") {
		g, ok := ByName(n)
		if !ok {
			return nil, fmt.Errorf("testguests: unknown guest %q", n)
		}
		gs = append(gs, g)
	}
	return gs, nil
}
