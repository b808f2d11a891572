package vmx

import "fmt"

// ExitReason is the basic exit reason, bits 15:0 of the exit-reason field
// (SDM 25.9.1, Appendix C Table C-1).
type ExitReason uint16

// Basic exit reasons, SDM Appendix C Table C-1.
const (
	ExitExceptionOrNMI      ExitReason = 0
	ExitExternalInterrupt   ExitReason = 1
	ExitTripleFault         ExitReason = 2
	ExitINIT                ExitReason = 3
	ExitSIPI                ExitReason = 4
	ExitIOSMI               ExitReason = 5
	ExitOtherSMI            ExitReason = 6
	ExitInterruptWindow     ExitReason = 7
	ExitNMIWindow           ExitReason = 8
	ExitTaskSwitch          ExitReason = 9
	ExitCPUID               ExitReason = 10
	ExitGETSEC              ExitReason = 11
	ExitHLT                 ExitReason = 12
	ExitINVD                ExitReason = 13
	ExitINVLPG              ExitReason = 14
	ExitRDPMC               ExitReason = 15
	ExitRDTSC               ExitReason = 16
	ExitRSM                 ExitReason = 17
	ExitVMCALL              ExitReason = 18
	ExitVMCLEAR             ExitReason = 19
	ExitVMLAUNCH            ExitReason = 20
	ExitVMPTRLD             ExitReason = 21
	ExitVMPTRST             ExitReason = 22
	ExitVMREAD              ExitReason = 23
	ExitVMRESUME            ExitReason = 24
	ExitVMWRITE             ExitReason = 25
	ExitVMXOFF              ExitReason = 26
	ExitVMXON               ExitReason = 27
	ExitCRAccess            ExitReason = 28
	ExitMOVDR               ExitReason = 29
	ExitIOInstruction       ExitReason = 30
	ExitRDMSR               ExitReason = 31
	ExitWRMSR               ExitReason = 32
	ExitInvalidGuestState   ExitReason = 33
	ExitMSRLoading          ExitReason = 34
	ExitMWAIT               ExitReason = 36
	ExitMonitorTrapFlag     ExitReason = 37
	ExitMONITOR             ExitReason = 39
	ExitPAUSE               ExitReason = 40
	ExitMachineCheck        ExitReason = 41
	ExitTPRBelowThreshold   ExitReason = 43
	ExitAPICAccess          ExitReason = 44
	ExitVirtualizedEOI      ExitReason = 45
	ExitGDTRIDTRAccess      ExitReason = 46
	ExitLDTRTRAccess        ExitReason = 47
	ExitEPTViolation        ExitReason = 48
	ExitEPTMisconfig        ExitReason = 49
	ExitINVEPT              ExitReason = 50
	ExitRDTSCP              ExitReason = 51
	ExitPreemptionTimer     ExitReason = 52
	ExitINVVPID             ExitReason = 53
	ExitWBINVD              ExitReason = 54
	ExitXSETBV              ExitReason = 55
	ExitAPICWrite           ExitReason = 56
	ExitRDRAND              ExitReason = 57
	ExitINVPCID             ExitReason = 58
	ExitVMFUNC              ExitReason = 59
	ExitENCLS               ExitReason = 60
	ExitRDSEED              ExitReason = 61
	ExitPMLFull             ExitReason = 62
	ExitXSAVES              ExitReason = 63
	ExitXRSTORS             ExitReason = 64
	ExitPCONFIG             ExitReason = 65
	ExitSPPEvent            ExitReason = 66
	ExitUMWAIT              ExitReason = 67
	ExitTPAUSE              ExitReason = 68
	ExitLOADIWKEY           ExitReason = 69
	ExitENCLV               ExitReason = 70
	ExitENQCMDPASIDFailure  ExitReason = 72
	ExitENQCMDSPASIDFailure ExitReason = 73
	ExitBusLock             ExitReason = 74
	ExitInstructionTimeout  ExitReason = 75
	ExitSEAMCALL            ExitReason = 76
	ExitTDCALL              ExitReason = 77
	ExitRDMSRLIST           ExitReason = 78
	ExitWRMSRLIST           ExitReason = 79
)

// exitReasonNames holds the names of Table C-1, indexed by reason.
var exitReasonNames = [...]string{
	0: "exception or NMI", 1: "external interrupt", 2: "triple fault", 3: "INIT signal",
	4: "start-up IPI", 5: "I/O SMI", 6: "other SMI", 7: "interrupt window", 8: "NMI window",
	9: "task switch", 10: "CPUID", 11: "GETSEC", 12: "HLT", 13: "INVD", 14: "INVLPG", 15: "RDPMC",
	16: "RDTSC", 17: "RSM", 18: "VMCALL", 19: "VMCLEAR", 20: "VMLAUNCH", 21: "VMPTRLD",
	22: "VMPTRST", 23: "VMREAD", 24: "VMRESUME", 25: "VMWRITE", 26: "VMXOFF", 27: "VMXON",
	28: "control-register accesses", 29: "MOV DR", 30: "I/O instruction", 31: "RDMSR", 32: "WRMSR",
	33: "VM-entry failure due to invalid guest state", 34: "VM-entry failure due to MSR loading",
	36: "MWAIT", 37: "monitor trap flag", 39: "MONITOR", 40: "PAUSE",
	41: "VM-entry failure due to machine-check event", 43: "TPR below threshold", 44: "APIC access",
	45: "virtualized EOI", 46: "access to GDTR or IDTR", 47: "access to LDTR or TR",
	48: "EPT violation", 49: "EPT misconfiguration", 50: "INVEPT", 51: "RDTSCP",
	52: "VMX-preemption timer expired", 53: "INVVPID", 54: "WBINVD or WBNOINVD", 55: "XSETBV",
	56: "APIC write", 57: "RDRAND", 58: "INVPCID", 59: "VMFUNC", 60: "ENCLS", 61: "RDSEED",
	62: "page-modification log full", 63: "XSAVES", 64: "XRSTORS", 65: "PCONFIG",
	66: "SPP-related event", 67: "UMWAIT", 68: "TPAUSE", 69: "LOADIWKEY", 70: "ENCLV",
	72: "ENQCMD PASID translation failure", 73: "ENQCMDS PASID translation failure",
	74: "bus lock", 75: "instruction timeout", 76: "SEAMCALL", 77: "TDCALL", 78: "RDMSRLIST",
	79: "WRMSRLIST",
}

func (r ExitReason) String() string {
	if int(r) < len(exitReasonNames) && exitReasonNames[r] != "" {
		return exitReasonNames[r]
	}
	return fmt.Sprintf("exit reason %d", uint16(r))
}

// ExitReasonField is the 32-bit exit-reason VMCS field, SDM 25.9.1 Table 25-18.
type ExitReasonField uint32

// Basic returns bits 15:0.
func (e ExitReasonField) Basic() ExitReason { return ExitReason(e) }

// Enclave reports bit 27: the exit was incident to enclave mode.
func (e ExitReasonField) Enclave() bool { return e>>27&1 != 0 }

// PendingMTF reports bit 28: a monitor-trap-flag exit is pending.
func (e ExitReasonField) PendingMTF() bool { return e>>28&1 != 0 }

// FromRoot reports bit 29: the exit came from VMX root operation (SMM).
func (e ExitReasonField) FromRoot() bool { return e>>29&1 != 0 }

// EntryFailure reports bit 31: VM entry failed (reasons 33, 34, 41) and
// the guest never ran; only the exit reason and qualification are valid.
func (e ExitReasonField) EntryFailure() bool { return e>>31&1 != 0 }

func (e ExitReasonField) String() string {
	if e.EntryFailure() {
		return "VM-entry failure: " + e.Basic().String()
	}
	return e.Basic().String()
}

// InstructionError is the VM-instruction error field, SDM 31.4 Table 31-1.
type InstructionError uint32

var instructionErrorNames = [...]string{
	1:  "VMCALL executed in VMX root operation",
	2:  "VMCLEAR with invalid physical address",
	3:  "VMCLEAR with VMXON pointer",
	4:  "VMLAUNCH with non-clear VMCS",
	5:  "VMRESUME with non-launched VMCS",
	6:  "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)",
	7:  "VM entry with invalid control field(s)",
	8:  "VM entry with invalid host-state field(s)",
	9:  "VMPTRLD with invalid physical address",
	10: "VMPTRLD with VMXON pointer",
	11: "VMPTRLD with incorrect VMCS revision identifier",
	12: "VMREAD/VMWRITE from/to unsupported VMCS component",
	13: "VMWRITE to read-only VMCS component",
	15: "VMXON executed in VMX root operation",
	16: "VM entry with invalid executive-VMCS pointer",
	17: "VM entry with non-launched executive VMCS",
	18: "VM entry with executive-VMCS pointer not VMXON pointer",
	19: "VMCALL with non-clear VMCS",
	20: "VMCALL with invalid VM-exit control fields",
	22: "VMCALL with incorrect MSEG revision identifier",
	23: "VMXOFF under dual-monitor treatment of SMIs and SMM",
	24: "VMCALL with invalid SMM-monitor features",
	25: "VM entry with invalid VM-execution control fields in executive VMCS",
	26: "VM entry with events blocked by MOV SS",
	28: "invalid operand to INVEPT/INVVPID",
}

// VM-instruction error numbers the backend branches on.
const (
	InstrErrLaunchNonClear      InstructionError = 4
	InstrErrResumeNonLaunched   InstructionError = 5
	InstrErrEntryInvalidControl InstructionError = 7
	InstrErrEntryInvalidHost    InstructionError = 8
	InstrErrUnsupportedField    InstructionError = 12
	InstrErrEntryMovSS          InstructionError = 26
	InstrErrInvalidINVOperand   InstructionError = 28
)

func (e InstructionError) String() string {
	if int(e) < len(instructionErrorNames) && instructionErrorNames[e] != "" {
		return instructionErrorNames[e]
	}
	return fmt.Sprintf("VM-instruction error %d", uint32(e))
}

// Error makes InstructionError an error: "vmx: VM-instruction error 7: VM
// entry with invalid control field(s)".
func (e InstructionError) Error() string {
	return fmt.Sprintf("vmx: VM-instruction error %d: %s", uint32(e), e.String())
}

// EventType is bits 10:8 of the interruption-information fields, SDM
// 25.8.3 Table 25-17 and 25.9.2 Table 25-19.
type EventType uint8

// Event types.
const (
	EventExternalInterrupt  EventType = 0
	EventNMI                EventType = 2
	EventHardwareException  EventType = 3
	EventSoftwareInterrupt  EventType = 4
	EventPrivilegedSoftware EventType = 5 // INT1 (ICEBP)
	EventSoftwareException  EventType = 6 // INT3, INTO
	EventOther              EventType = 7 // MTF on entry
)

func (t EventType) String() string {
	switch t {
	case EventExternalInterrupt:
		return "external interrupt"
	case EventNMI:
		return "NMI"
	case EventHardwareException:
		return "hardware exception"
	case EventSoftwareInterrupt:
		return "software interrupt"
	case EventPrivilegedSoftware:
		return "privileged software exception"
	case EventSoftwareException:
		return "software exception"
	case EventOther:
		return "other event"
	}
	return fmt.Sprintf("reserved event type %d", uint8(t))
}

// HasInstructionLength reports whether injecting an event of this type uses
// the VM-entry instruction length (SDM 27.6.1.1): the CPU pushes RIP plus
// that length, as if the INT/INT3/INTO/INT1 had completed.
func (t EventType) HasInstructionLength() bool {
	return t == EventSoftwareInterrupt || t == EventPrivilegedSoftware || t == EventSoftwareException
}

// Interruption-information bits shared by the three fields.
const (
	IntInfoVectorMask     uint32 = 0xFF
	IntInfoTypeShift             = 8
	IntInfoErrorCodeValid uint32 = 1 << 11
	IntInfoNMIUnblocking  uint32 = 1 << 12 // exit interruption information only
	IntInfoValid          uint32 = 1 << 31
)

// InterruptionInfo is the VM-exit interruption information, the
// IDT-vectoring information or the VM-entry interruption information.
type InterruptionInfo uint32

// Valid reports bit 31.
func (i InterruptionInfo) Valid() bool { return uint32(i)&IntInfoValid != 0 }

// Vector returns bits 7:0.
func (i InterruptionInfo) Vector() uint8 { return uint8(i) }

// Type returns bits 10:8.
func (i InterruptionInfo) Type() EventType { return EventType(i >> IntInfoTypeShift & 7) }

// ErrorCodeValid reports bit 11.
func (i InterruptionInfo) ErrorCodeValid() bool { return uint32(i)&IntInfoErrorCodeValid != 0 }

// NMIUnblocking reports bit 12 of the exit interruption information: the
// exit happened in an IRET that had already unblocked NMIs.
func (i InterruptionInfo) NMIUnblocking() bool { return uint32(i)&IntInfoNMIUnblocking != 0 }

func (i InterruptionInfo) String() string {
	if !i.Valid() {
		return "none"
	}
	s := fmt.Sprintf("%s vector %d", i.Type(), i.Vector())
	if i.ErrorCodeValid() {
		s += " with error code"
	}
	return s
}

// MakeEntryInterruption builds a VM-entry interruption-information value.
// deliverError must be true exactly for the exceptions that push an error
// code (#DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP in protected mode; SDM
// 27.2.1.3).
func MakeEntryInterruption(t EventType, vector uint8, deliverError bool) InterruptionInfo {
	v := IntInfoValid | uint32(t&7)<<IntInfoTypeShift | uint32(vector)
	if deliverError {
		v |= IntInfoErrorCodeValid
	}
	return InterruptionInfo(v)
}

// Reinjection is what to write before the next VM entry so that an event
// whose delivery a VM exit interrupted is delivered again.
type Reinjection struct {
	Info              InterruptionInfo // VM-entry interruption-information field
	ErrorCode         uint32           // VM-entry exception error code, if Info.ErrorCodeValid()
	InstructionLength uint32           // VM-entry instruction length, for software events
	// ClearNMIBlocking: re-injecting an NMI, so "blocking by NMI" in the
	// guest interruptibility state must be 0 or VM entry fails (27.3.1.5).
	ClearNMIBlocking bool
}

// Reinject converts the IDT-vectoring information of an exit into VM-entry
// event injection (SDM 28.2.4, 27.6.1): vector, type and error-code bit are
// copied; the error code comes from the IDT-vectoring error code; software
// interrupts and exceptions also need the exit's instruction length so the
// guest's return address is right. ok is false if no event was being
// delivered (or the information is malformed: reserved type 1).
func Reinject(idtVectoring InterruptionInfo, idtErrorCode, exitInstrLen uint32) (r Reinjection, ok bool) {
	if !idtVectoring.Valid() || idtVectoring.Type() == 1 {
		return Reinjection{}, false
	}
	r.Info = MakeEntryInterruption(idtVectoring.Type(), idtVectoring.Vector(), idtVectoring.ErrorCodeValid())
	if idtVectoring.ErrorCodeValid() {
		r.ErrorCode = idtErrorCode
	}
	if idtVectoring.Type().HasInstructionLength() {
		r.InstructionLength = exitInstrLen
	}
	r.ClearNMIBlocking = idtVectoring.Type() == EventNMI
	return r, true
}

// RestoreNMIBlocking reports whether the VMM must set "blocking by NMI"
// before resuming the guest (SDM 28.2.3, "Information About NMI Unblocking
// Due to IRET"): the exit (an exception, or an EPT violation with qualification
// bit 12) happened in an IRET that had already unblocked NMIs, the IRET
// will be re-executed, and virtual NMIs are in use. Not for #DF, and not when
// the exit also interrupted event delivery (then the IRET did not run).
func RestoreNMIBlocking(nmiUnblocking bool, exitVector uint8, idtVectoring InterruptionInfo, virtualNMIs bool) bool {
	return virtualNMIs && nmiUnblocking && exitVector != 8 && !idtVectoring.Valid()
}

// IOQualification is the exit qualification of an I/O-instruction exit,
// SDM 28.2.1 Table 28-5.
type IOQualification uint64

// Size returns the access size in bytes (1, 2 or 4), or 0 for the reserved
// encoding 2.
func (q IOQualification) Size() int {
	switch q & 7 {
	case 0:
		return 1
	case 1:
		return 2
	case 3:
		return 4
	}
	return 0
}

// In reports bit 3: IN/INS (true) or OUT/OUTS (false).
func (q IOQualification) In() bool { return q>>3&1 != 0 }

// StringOp reports bit 4: INS/OUTS.
func (q IOQualification) StringOp() bool { return q>>4&1 != 0 }

// Rep reports bit 5: REP prefix.
func (q IOQualification) Rep() bool { return q>>5&1 != 0 }

// Immediate reports bit 6: the port came from an immediate operand (else DX).
func (q IOQualification) Immediate() bool { return q>>6&1 != 0 }

// Port returns bits 31:16.
func (q IOQualification) Port() uint16 { return uint16(q >> 16) }

// CRAccessType is bits 5:4 of a control-register-access qualification.
type CRAccessType uint8

// CR access types, SDM 28.2.1 Table 28-3.
const (
	CRMovTo   CRAccessType = 0
	CRMovFrom CRAccessType = 1
	CRCLTS    CRAccessType = 2
	CRLMSW    CRAccessType = 3
)

// CRQualification is the exit qualification of a control-register access,
// SDM 28.2.1 Table 28-3.
type CRQualification uint64

// CR returns bits 3:0, the control register (0, 3, 4 or 8; 0 for CLTS and LMSW).
func (q CRQualification) CR() int { return int(q & 0xF) }

// Access returns bits 5:4.
func (q CRQualification) Access() CRAccessType { return CRAccessType(q >> 4 & 3) }

// LMSWMemory reports bit 6: the LMSW operand was in memory.
func (q CRQualification) LMSWMemory() bool { return q>>6&1 != 0 }

// GPR returns bits 11:8, the general register of MOV CR (0 RAX ... 15 R15,
// in the instruction-encoding order: RAX RCX RDX RBX RSP RBP RSI RDI R8...).
func (q CRQualification) GPR() int { return int(q >> 8 & 0xF) }

// LMSWSource returns bits 31:16, the LMSW source data.
func (q CRQualification) LMSWSource() uint16 { return uint16(q >> 16) }

// DRQualification is the exit qualification of MOV DR, SDM Table 28-4.
type DRQualification uint64

// DR returns bits 2:0.
func (q DRQualification) DR() int { return int(q & 7) }

// FromDR reports bit 4: MOV from DR (true) or to DR.
func (q DRQualification) FromDR() bool { return q>>4&1 != 0 }

// GPR returns bits 11:8.
func (q DRQualification) GPR() int { return int(q >> 8 & 0xF) }

// EPT-violation qualification bits, SDM 28.2.1 Table 28-7.
const (
	EPTViolRead              uint64 = 1 << 0
	EPTViolWrite             uint64 = 1 << 1
	EPTViolFetch             uint64 = 1 << 2
	EPTViolReadable          uint64 = 1 << 3
	EPTViolWritable          uint64 = 1 << 4
	EPTViolExecutable        uint64 = 1 << 5 // supervisor-mode executable under MBEC
	EPTViolUserExecutable    uint64 = 1 << 6
	EPTViolLinearValid       uint64 = 1 << 7
	EPTViolTranslation       uint64 = 1 << 8 // valid if LinearValid: access to the final GPA, not a paging-structure entry
	EPTViolUserLinear        uint64 = 1 << 9
	EPTViolReadWritePage     uint64 = 1 << 10
	EPTViolExecuteDisable    uint64 = 1 << 11
	EPTViolNMIUnblocking     uint64 = 1 << 12
	EPTViolShadowStack       uint64 = 1 << 13
	EPTViolGuestPagingVerify uint64 = 1 << 16
	EPTViolAsynchronous      uint64 = 1 << 17
)

// EPTViolation is the exit qualification of an EPT violation.
type EPTViolation uint64

// Read, Write and Fetch report the access that caused the violation.
func (q EPTViolation) Read() bool  { return uint64(q)&EPTViolRead != 0 }
func (q EPTViolation) Write() bool { return uint64(q)&EPTViolWrite != 0 }
func (q EPTViolation) Fetch() bool { return uint64(q)&EPTViolFetch != 0 }

// Permissions returns the R/W/X permissions the EPT granted the address
// (bits 5:3, the AND over the walk), as an EPT Perm.
func (q EPTViolation) Permissions() Perm { return Perm(q >> 3 & 7) }

// LinearValid reports bit 7: the guest-linear-address field is valid.
func (q EPTViolation) LinearValid() bool { return uint64(q)&EPTViolLinearValid != 0 }

// DuringWalk reports an access to a guest paging-structure entry (bit 7 set,
// bit 8 clear); such accesses are also made by the CPU's own page walk.
func (q EPTViolation) DuringWalk() bool {
	return q.LinearValid() && uint64(q)&EPTViolTranslation == 0
}

// Translation reports an access to the translated address of a linear
// address (bits 7 and 8 set).
func (q EPTViolation) Translation() bool {
	return q.LinearValid() && uint64(q)&EPTViolTranslation != 0
}

// NMIUnblocking reports bit 12 (see RestoreNMIBlocking).
func (q EPTViolation) NMIUnblocking() bool { return uint64(q)&EPTViolNMIUnblocking != 0 }

// DebugQualification is the exit qualification of a debug exception (#DB
// exit), SDM Table 28-1.
type DebugQualification uint64

// Breakpoints returns bits 3:0, B0-B3: which DR0-DR3 conditions were met.
func (q DebugQualification) Breakpoints() uint8 { return uint8(q & 0xF) }

// BD reports bit 13: debug-register access detected.
func (q DebugQualification) BD() bool { return q>>13&1 != 0 }

// BS reports bit 14: single step (RFLAGS.TF) or branch.
func (q DebugQualification) BS() bool { return q>>14&1 != 0 }

// RTM reports bit 16: #DB or breakpoint inside an RTM region.
func (q DebugQualification) RTM() bool { return q>>16&1 != 0 }

// TaskSwitchSource is bits 31:30 of a task-switch qualification.
type TaskSwitchSource uint8

// Task-switch sources, SDM Table 28-2.
const (
	TaskSwitchCALL TaskSwitchSource = 0
	TaskSwitchIRET TaskSwitchSource = 1
	TaskSwitchJMP  TaskSwitchSource = 2
	TaskSwitchGate TaskSwitchSource = 3 // task gate in the IDT
)

// TaskSwitchQualification is the exit qualification of a task switch.
type TaskSwitchQualification uint64

// Selector returns bits 15:0, the new TSS selector.
func (q TaskSwitchQualification) Selector() uint16 { return uint16(q) }

// Source returns bits 31:30.
func (q TaskSwitchQualification) Source() TaskSwitchSource { return TaskSwitchSource(q >> 30 & 3) }

// InstructionInfo is the VM-exit instruction-information field, SDM 28.2.5
// Tables 28-8 to 28-14. Its layout depends on the exit reason; the
// accessors below name the fields common to the memory-operand formats
// (INVEPT/INVPCID/INVVPID, LIDT/LGDT/SIDT/SGDT, LLDT/LTR/SLDT/STR,
// VMCLEAR/VMPTRLD/VMPTRST/VMREAD/VMWRITE/VMXON, RDRAND/RDSEED, XSAVES/XRSTORS)
// and of INS/OUTS.
type InstructionInfo uint32

// Scaling returns bits 1:0: the index is multiplied by 1<<Scaling.
func (i InstructionInfo) Scaling() uint { return uint(i & 3) }

// Reg1 returns bits 6:3: the register operand of VMREAD/VMWRITE (when
// RegisterOperand), LLDT/LTR/SLDT/STR, and the destination of RDRAND/RDSEED.
func (i InstructionInfo) Reg1() int { return int(i >> 3 & 0xF) }

// AddressSize returns bits 9:7 as a size in bits (16, 32, 64), or 0 if
// reserved.
func (i InstructionInfo) AddressSize() int {
	switch i >> 7 & 7 {
	case 0:
		return 16
	case 1:
		return 32
	case 2:
		return 64
	}
	return 0
}

// RegisterOperand reports bit 10: the operand is a register, not memory
// (VMREAD, VMWRITE, LLDT/LTR/SLDT/STR).
func (i InstructionInfo) RegisterOperand() bool { return i>>10&1 != 0 }

// OperandSize32 reports bit 11 for LGDT/LIDT/SGDT/SIDT: 32-bit operand
// size (else 16-bit; ignored in 64-bit mode).
func (i InstructionInfo) OperandSize32() bool { return i>>11&1 != 0 }

// Segment returns bits 17:15 (0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS), the
// segment of the memory operand (for OUTS, of the source).
func (i InstructionInfo) Segment() int { return int(i >> 15 & 7) }

// Index returns bits 21:18 and whether the index register is used (bit 22 clear).
func (i InstructionInfo) Index() (reg int, ok bool) { return int(i >> 18 & 0xF), i>>22&1 == 0 }

// Base returns bits 26:23 and whether the base register is used (bit 27 clear).
func (i InstructionInfo) Base() (reg int, ok bool) { return int(i >> 23 & 0xF), i>>27&1 == 0 }

// Reg2 returns bits 31:28: the register holding the INVEPT/INVPCID/INVVPID
// type or the other VMREAD/VMWRITE operand.
func (i InstructionInfo) Reg2() int { return int(i >> 28 & 0xF) }

// Identity returns bits 29:28 for descriptor-table exits: for reason 46
// 0 SGDT, 1 SIDT, 2 LGDT, 3 LIDT; for reason 47 0 SLDT, 1 STR, 2 LLDT, 3 LTR.
func (i InstructionInfo) Identity() int { return int(i >> 28 & 3) }

// Offset computes the memory operand's offset within its segment: base +
// index<<scaling + displacement, truncated to the address size. gpr
// returns a guest register by its encoding number (0 RAX ... 15 R15); the
// displacement is the exit qualification (SDM 28.2.1). The segment base
// and limit checks are the caller's. ok is false for a reserved address size.
func (i InstructionInfo) Offset(gpr func(reg int) uint64, displacement uint64) (uint64, bool) {
	size := i.AddressSize()
	if size == 0 {
		return 0, false
	}
	a := displacement
	if r, ok := i.Base(); ok {
		a += gpr(r)
	}
	if r, ok := i.Index(); ok {
		a += gpr(r) << i.Scaling()
	}
	if size < 64 {
		a &= 1<<size - 1
	}
	return a, true
}
