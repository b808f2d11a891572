package vmm

import "fmt"

// Reason is a vendor-neutral exit reason. Backends translate their exit
// codes into one of these; the VM dispatches on it through a table.
type Reason uint8

// Exit reasons.
const (
	ExitNone              Reason = iota
	ExitIO                       // port I/O (IN, OUT, INS, OUTS)
	ExitMMIO                     // nested page fault / EPT violation
	ExitCPUID                    // CPUID
	ExitMSRRead                  // RDMSR
	ExitMSRWrite                 // WRMSR
	ExitHLT                      // HLT
	ExitInterruptWindow          // the guest can take an interrupt now
	ExitExternalInterrupt        // a host interrupt arrived while the guest ran
	ExitException                // an intercepted guest exception
	ExitCRAccess                 // MOV to/from a control register
	ExitXSETBV                   // XSETBV
	ExitHypercall                // VMMCALL / VMCALL
	ExitVirtInstr                // a virtualization instruction (VMRUN, VMXON, ...)
	ExitShutdown                 // shutdown: a triple fault
	ExitInvalidState             // VM entry refused the state (VMEXIT_INVALID, entry failure)
	ExitRDTSC                    // RDTSC
	ExitRDTSCP                   // RDTSCP
	ExitPause                    // PAUSE
	ExitNMI                      // a host NMI
	ExitInvalidOpcode            // an instruction the VMM must emulate or refuse (INVD, WBINVD, MONITOR, ...)
	ExitUnknown                  // anything else: stops the VM
	numReasons
)

var reasonNames = [numReasons]string{
	ExitNone: "none", ExitIO: "io", ExitMMIO: "mmio", ExitCPUID: "cpuid",
	ExitMSRRead: "rdmsr", ExitMSRWrite: "wrmsr", ExitHLT: "hlt",
	ExitInterruptWindow: "interrupt window", ExitExternalInterrupt: "external interrupt",
	ExitException: "exception", ExitCRAccess: "cr access", ExitXSETBV: "xsetbv",
	ExitHypercall: "hypercall", ExitVirtInstr: "virtualization instruction",
	ExitShutdown: "shutdown", ExitInvalidState: "invalid state", ExitRDTSC: "rdtsc",
	ExitRDTSCP: "rdtscp", ExitPause: "pause", ExitNMI: "nmi",
	ExitInvalidOpcode: "emulated instruction", ExitUnknown: "unknown",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// IOAccess describes a port I/O exit.
type IOAccess struct {
	Port   uint16
	Size   int // 1, 2 or 4
	In     bool
	String bool // INS/OUTS: the instruction emulator performs it
	Rep    bool
}

// Exit is one exit from guest mode, decoded.
type Exit struct {
	Reason Reason
	Raw    uint64 // the vendor's exit code
	Qual   uint64 // EXITINFO1 / exit qualification
	Info2  uint64 // EXITINFO2 / second qualification
	// NextRIP is the address of the next instruction when the hardware
	// told us (NRIP, VM-exit instruction length, IOIO EXITINFO2); 0 when
	// the VMM must decode the instruction to find it.
	NextRIP uint64

	IO       IOAccess
	GPA      uint64 // MMIO
	Write    bool   // MMIO, MSR
	MSR      uint32
	Vector   uint8 // exception
	ErrCode  uint32
	HasError bool
	Detail   string // backend's description for invalid-state exits
}

func (e Exit) String() string {
	switch e.Reason {
	case ExitIO:
		return fmt.Sprintf("io port %#x size %d in=%v", e.IO.Port, e.IO.Size, e.IO.In)
	case ExitMMIO:
		return fmt.Sprintf("mmio gpa %#x write=%v", e.GPA, e.Write)
	case ExitException:
		return fmt.Sprintf("exception %d err %#x", e.Vector, e.ErrCode)
	case ExitMSRRead, ExitMSRWrite:
		return fmt.Sprintf("%v %#x", e.Reason, e.MSR)
	}
	return fmt.Sprintf("%v (raw %#x)", e.Reason, e.Raw)
}
