package vmm

import "fmt"

// Regs are a vCPU's general registers, instruction pointer and flags.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// GPR returns general register i in encoding order (0 RAX ... 15 R15).
func (r *Regs) GPR(i int) uint64 { return *r.gprPtr(i) }

// SetGPR sets general register i in encoding order.
func (r *Regs) SetGPR(i int, v uint64) { *r.gprPtr(i) = v }

func (r *Regs) gprPtr(i int) *uint64 {
	switch i & 15 {
	case 0:
		return &r.RAX
	case 1:
		return &r.RCX
	case 2:
		return &r.RDX
	case 3:
		return &r.RBX
	case 4:
		return &r.RSP
	case 5:
		return &r.RBP
	case 6:
		return &r.RSI
	case 7:
		return &r.RDI
	case 8:
		return &r.R8
	case 9:
		return &r.R9
	case 10:
		return &r.R10
	case 11:
		return &r.R11
	case 12:
		return &r.R12
	case 13:
		return &r.R13
	case 14:
		return &r.R14
	}
	return &r.R15
}

// Segment is a segment register with its hidden part. Attrib uses the
// VMCB's 12-bit packing (type, S, DPL, P, AVL, L, D/B, G), which the VMX
// backend converts to and from access rights.
type Segment struct {
	Selector uint16
	Attrib   uint16
	Limit    uint32
	Base     uint64
}

// DTable is a descriptor-table register.
type DTable struct {
	Base  uint64
	Limit uint16
}

// SRegs are the segment, descriptor-table and control registers.
type SRegs struct {
	CS, DS, ES, FS, GS, SS, TR, LDTR Segment
	GDT, IDT                         DTable
	CR0, CR2, CR3, CR4, EFER         uint64
	CPL                              uint8
}

// EventType says how an injected event is delivered.
type EventType uint8

// Event types (the same four in VMX and SVM).
const (
	EventExternal  EventType = iota // external interrupt
	EventNMI                        // non-maskable interrupt
	EventException                  // hardware exception
	EventSoftware                   // software interrupt (INTn)
)

// Event is an interrupt or exception to deliver to the guest.
type Event struct {
	Type     EventType
	Vector   uint8
	ErrCode  uint32
	HasError bool
}

func (e Event) String() string {
	kind := [...]string{"external interrupt", "nmi", "exception", "software interrupt"}
	k := fmt.Sprintf("event type %d", e.Type)
	if int(e.Type) < len(kind) {
		k = kind[e.Type]
	}
	if e.HasError {
		return fmt.Sprintf("%s vector %#x error %#x", k, e.Vector, e.ErrCode)
	}
	return fmt.Sprintf("%s vector %#x", k, e.Vector)
}

// State is a vCPU's whole architectural state as the VMM saves and restores
// it (fault tolerance, nesting, snapshots).
type State struct {
	Regs  Regs
	SRegs SRegs
	MSRs  map[uint32]uint64 // backend-held MSRs (PAT, STAR, LSTAR, ...)
	// VMMMSRs are the MSRs the VMM models itself (msr.go: MTRRs, ...);
	// backends neither fill nor read them.
	VMMMSRs   map[uint32]uint64
	FPU       [512]byte // FXSAVE image
	TSCOffset int64
	Pending   *Event // an event waiting for injection
	Shadow    bool   // interrupt shadow (STI / MOV SS)
	DR6, DR7  uint64
	// WaitForSIPI and Halted are the VMM's multiprocessor state of the
	// vCPU (an application processor not started yet, a vCPU in HLT);
	// backends neither fill nor read them.
	WaitForSIPI bool
	Halted      bool
}

// VCPU is one virtual CPU of a backend. A VCPU belongs to one goroutine,
// locked to its OS thread and pinned to one CPU: the hardware structure
// behind it (VMCS, VMCB) is current there.
type VCPU interface {
	// Run enters the guest and returns at the next exit.
	Run() (Exit, error)
	Regs() Regs
	SetRegs(Regs)
	SRegs() SRegs
	SetSRegs(SRegs)
	// MSR reads or writes an MSR that the backend keeps in its guest state
	// (EFER, PAT, STAR, LSTAR, CSTAR, SFMASK, FS/GS/KernelGS base,
	// SYSENTER_*); ok is false for others.
	MSR(msr uint32) (v uint64, ok bool)
	SetMSR(msr uint32, v uint64) bool
	// Inject delivers ev at the next entry.
	Inject(ev Event)
	// InterruptWindow asks for (or cancels) an exit as soon as the guest
	// can take an external interrupt.
	InterruptWindow(want bool)
	// CanInterrupt reports whether an external interrupt could be
	// delivered now (RFLAGS.IF set, no interrupt shadow, nothing pending).
	CanInterrupt() bool
	// SetTSCOffset sets the value added to the host TSC for guest reads.
	SetTSCOffset(off int64)
	TSCOffset() int64
	// InterceptRDTSC makes RDTSC/RDTSCP exit (for deterministic replay).
	InterceptRDTSC(on bool)
	// SaveState and RestoreState move the whole vCPU state.
	SaveState() (State, error)
	RestoreState(State) error
	// Close releases the hardware structures.
	Close() error
}

// Host is what the VMM needs from the platform.
type Host interface {
	// AllocFrames returns n contiguous zeroed frames aligned to align frames,
	// addressable at their physical address (identity map).
	AllocFrames(n, align uint64) (uint64, error)
	FreeFrames(pa, n uint64) error
	// Bytes is the host view of physical memory from AllocFrames.
	Bytes(pa, n uint64) []byte
}

// Backend is a hardware virtualization implementation.
type Backend interface {
	Name() string
	// EnableCPU turns virtualization on for the CPU the caller is pinned to.
	EnableCPU(cpu int) error
	// NewVCPU creates a vCPU for the guest memory mem, on CPU cpu.
	NewVCPU(mem *Memory, cpu int) (VCPU, error)
}

// CPUIDHider is implemented by a backend that cannot let the guest use
// some instructions the host CPU has (under VMX, INVPCID and RDTSCP fault
// with #UD unless a control the CPU may lack is set). HiddenCPUID returns
// the bits of CPUID(leaf, sub) to clear from the guest's view, so that a
// guest never sees a feature that would fault.
type CPUIDHider interface {
	HiddenCPUID(leaf, sub uint32) (a, b, c, d uint32)
}
