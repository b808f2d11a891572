package svm

import "fmt"

// ExitCode is the VMCB EXITCODE field: the reason for a #VMEXIT, as listed
// in APM vol. 2 appendix C "SVM Intercept Exit Codes".
type ExitCode uint64

// #VMEXIT codes, APM vol. 2 appendix C, table C-1. Ranges (CRn, DRn,
// exceptions, CR write traps) have a base constant and a helper.
const (
	ExitCRRead  ExitCode = 0x00 // 0h-Fh: VMEXIT_CR0_READ-VMEXIT_CR15_READ
	ExitCRWrite ExitCode = 0x10 // 10h-1Fh: VMEXIT_CR0_WRITE-VMEXIT_CR15_WRITE
	ExitDRRead  ExitCode = 0x20 // 20h-2Fh: VMEXIT_DR0_READ-VMEXIT_DR15_READ
	ExitDRWrite ExitCode = 0x30 // 30h-3Fh: VMEXIT_DR0_WRITE-VMEXIT_DR15_WRITE
	ExitExcp    ExitCode = 0x40 // 40h-5Fh: VMEXIT_EXCP0-VMEXIT_EXCP31

	ExitINTR              ExitCode = 0x60
	ExitNMI               ExitCode = 0x61
	ExitSMI               ExitCode = 0x62
	ExitINIT              ExitCode = 0x63
	ExitVINTR             ExitCode = 0x64
	ExitCR0SelWrite       ExitCode = 0x65
	ExitIDTRRead          ExitCode = 0x66
	ExitGDTRRead          ExitCode = 0x67
	ExitLDTRRead          ExitCode = 0x68
	ExitTRRead            ExitCode = 0x69
	ExitIDTRWrite         ExitCode = 0x6a
	ExitGDTRWrite         ExitCode = 0x6b
	ExitLDTRWrite         ExitCode = 0x6c
	ExitTRWrite           ExitCode = 0x6d
	ExitRDTSC             ExitCode = 0x6e
	ExitRDPMC             ExitCode = 0x6f
	ExitPUSHF             ExitCode = 0x70
	ExitPOPF              ExitCode = 0x71
	ExitCPUID             ExitCode = 0x72
	ExitRSM               ExitCode = 0x73
	ExitIRET              ExitCode = 0x74
	ExitSWINT             ExitCode = 0x75 // INTn
	ExitINVD              ExitCode = 0x76
	ExitPAUSE             ExitCode = 0x77
	ExitHLT               ExitCode = 0x78
	ExitINVLPG            ExitCode = 0x79
	ExitINVLPGA           ExitCode = 0x7a
	ExitIOIO              ExitCode = 0x7b
	ExitMSR               ExitCode = 0x7c
	ExitTaskSwitch        ExitCode = 0x7d
	ExitFERRFreeze        ExitCode = 0x7e
	ExitShutdown          ExitCode = 0x7f
	ExitVMRUN             ExitCode = 0x80
	ExitVMMCALL           ExitCode = 0x81
	ExitVMLOAD            ExitCode = 0x82
	ExitVMSAVE            ExitCode = 0x83
	ExitSTGI              ExitCode = 0x84
	ExitCLGI              ExitCode = 0x85
	ExitSKINIT            ExitCode = 0x86
	ExitRDTSCP            ExitCode = 0x87
	ExitICEBP             ExitCode = 0x88
	ExitWBINVD            ExitCode = 0x89
	ExitMONITOR           ExitCode = 0x8a
	ExitMWAIT             ExitCode = 0x8b
	ExitMWAITConditional  ExitCode = 0x8c
	ExitXSETBV            ExitCode = 0x8d
	ExitRDPRU             ExitCode = 0x8e
	ExitEFERWriteTrap     ExitCode = 0x8f
	ExitCRWriteTrap       ExitCode = 0x90 // 90h-9Fh: VMEXIT_CR0_WRITE_TRAP-VMEXIT_CR15_WRITE_TRAP
	ExitINVLPGB           ExitCode = 0xa0
	ExitINVLPGBIllegal    ExitCode = 0xa1
	ExitINVPCID           ExitCode = 0xa2
	ExitMCOMMIT           ExitCode = 0xa3
	ExitTLBSYNC           ExitCode = 0xa4
	ExitBusLock           ExitCode = 0xa5
	ExitIdleHLT           ExitCode = 0xa6
	ExitNPF               ExitCode = 0x400
	ExitAVICIncompleteIPI ExitCode = 0x401
	ExitAVICNoAccel       ExitCode = 0x402
	ExitVMGEXIT           ExitCode = 0x403

	// Negative codes are errors reported by VMRUN itself, as a sign-extended
	// 64-bit value. See NormalizeExitCode for emulators that write only the
	// low 32 bits.
	ExitInvalid      ExitCode = 1<<64 - 1 // -1: VMEXIT_INVALID, invalid guest state
	ExitBusy         ExitCode = 1<<64 - 2 // -2: VMEXIT_BUSY (SEV-SNP VMSA in use)
	ExitIdleRequired ExitCode = 1<<64 - 3 // -3: VMEXIT_IDLE_REQUIRED
	ExitInvalidPMC   ExitCode = 1<<64 - 4 // -4: VMEXIT_INVALID_PMC
)

// ExitCRReadN and friends return the exit code for register or vector n.
func ExitCRReadN(n int) ExitCode      { return ExitCRRead + ExitCode(n&15) }
func ExitCRWriteN(n int) ExitCode     { return ExitCRWrite + ExitCode(n&15) }
func ExitDRReadN(n int) ExitCode      { return ExitDRRead + ExitCode(n&15) }
func ExitDRWriteN(n int) ExitCode     { return ExitDRWrite + ExitCode(n&15) }
func ExitExcpN(vector uint8) ExitCode { return ExitExcp + ExitCode(vector&31) }
func ExitCRWriteTrapN(n int) ExitCode { return ExitCRWriteTrap + ExitCode(n&15) }

// NormalizeExitCode turns a raw EXITCODE into an ExitCode. The manual
// defines the error codes as 64-bit negative values; QEMU TCG stores
// VMEXIT_INVALID as 0x00000000FFFFFFFF (Bochs stores -1), so a value whose
// high half is zero and whose low half is -1..-4 as an int32 is sign-extended.
// No architectural positive code comes near 0xFFFFFFFC.
func NormalizeExitCode(raw uint64) ExitCode {
	if raw>>32 == 0 {
		if low := int32(uint32(raw)); low < 0 && low >= -4 {
			return ExitCode(uint64(int64(low)))
		}
	}
	return ExitCode(raw)
}

// IsError reports whether c is one of the VMRUN failure codes (negative).
func (c ExitCode) IsError() bool {
	return c == ExitInvalid || c == ExitBusy || c == ExitIdleRequired || c == ExitInvalidPMC
}

// Register returns n for the register-indexed ranges (CR/DR read/write, CR
// write trap) and ok=false for other codes.
func (c ExitCode) Register() (n int, ok bool) {
	switch {
	case c <= 0x3f:
		return int(c & 15), true
	case c >= ExitCRWriteTrap && c <= ExitCRWriteTrap+15:
		return int(c - ExitCRWriteTrap), true
	}
	return 0, false
}

// ExceptionVector returns the vector of a VMEXIT_EXCPn code.
func (c ExitCode) ExceptionVector() (vector uint8, ok bool) {
	if c >= ExitExcp && c <= ExitExcp+31 {
		return uint8(c - ExitExcp), true
	}
	return 0, false
}

var exitNames = map[ExitCode]string{
	ExitINTR:              "VMEXIT_INTR",
	ExitNMI:               "VMEXIT_NMI",
	ExitSMI:               "VMEXIT_SMI",
	ExitINIT:              "VMEXIT_INIT",
	ExitVINTR:             "VMEXIT_VINTR",
	ExitCR0SelWrite:       "VMEXIT_CR0_SEL_WRITE",
	ExitIDTRRead:          "VMEXIT_IDTR_READ",
	ExitGDTRRead:          "VMEXIT_GDTR_READ",
	ExitLDTRRead:          "VMEXIT_LDTR_READ",
	ExitTRRead:            "VMEXIT_TR_READ",
	ExitIDTRWrite:         "VMEXIT_IDTR_WRITE",
	ExitGDTRWrite:         "VMEXIT_GDTR_WRITE",
	ExitLDTRWrite:         "VMEXIT_LDTR_WRITE",
	ExitTRWrite:           "VMEXIT_TR_WRITE",
	ExitRDTSC:             "VMEXIT_RDTSC",
	ExitRDPMC:             "VMEXIT_RDPMC",
	ExitPUSHF:             "VMEXIT_PUSHF",
	ExitPOPF:              "VMEXIT_POPF",
	ExitCPUID:             "VMEXIT_CPUID",
	ExitRSM:               "VMEXIT_RSM",
	ExitIRET:              "VMEXIT_IRET",
	ExitSWINT:             "VMEXIT_SWINT",
	ExitINVD:              "VMEXIT_INVD",
	ExitPAUSE:             "VMEXIT_PAUSE",
	ExitHLT:               "VMEXIT_HLT",
	ExitINVLPG:            "VMEXIT_INVLPG",
	ExitINVLPGA:           "VMEXIT_INVLPGA",
	ExitIOIO:              "VMEXIT_IOIO",
	ExitMSR:               "VMEXIT_MSR",
	ExitTaskSwitch:        "VMEXIT_TASK_SWITCH",
	ExitFERRFreeze:        "VMEXIT_FERR_FREEZE",
	ExitShutdown:          "VMEXIT_SHUTDOWN",
	ExitVMRUN:             "VMEXIT_VMRUN",
	ExitVMMCALL:           "VMEXIT_VMMCALL",
	ExitVMLOAD:            "VMEXIT_VMLOAD",
	ExitVMSAVE:            "VMEXIT_VMSAVE",
	ExitSTGI:              "VMEXIT_STGI",
	ExitCLGI:              "VMEXIT_CLGI",
	ExitSKINIT:            "VMEXIT_SKINIT",
	ExitRDTSCP:            "VMEXIT_RDTSCP",
	ExitICEBP:             "VMEXIT_ICEBP",
	ExitWBINVD:            "VMEXIT_WBINVD",
	ExitMONITOR:           "VMEXIT_MONITOR",
	ExitMWAIT:             "VMEXIT_MWAIT",
	ExitMWAITConditional:  "VMEXIT_MWAIT_CONDITIONAL",
	ExitXSETBV:            "VMEXIT_XSETBV",
	ExitRDPRU:             "VMEXIT_RDPRU",
	ExitEFERWriteTrap:     "VMEXIT_EFER_WRITE_TRAP",
	ExitINVLPGB:           "VMEXIT_INVLPGB",
	ExitINVLPGBIllegal:    "VMEXIT_INVLPGB_ILLEGAL",
	ExitINVPCID:           "VMEXIT_INVPCID",
	ExitMCOMMIT:           "VMEXIT_MCOMMIT",
	ExitTLBSYNC:           "VMEXIT_TLBSYNC",
	ExitBusLock:           "VMEXIT_BUSLOCK",
	ExitIdleHLT:           "VMEXIT_IDLE_HLT",
	ExitNPF:               "VMEXIT_NPF",
	ExitAVICIncompleteIPI: "VMEXIT_AVIC_INCOMPLETE_IPI",
	ExitAVICNoAccel:       "VMEXIT_AVIC_NOACCEL",
	ExitVMGEXIT:           "VMEXIT_VMGEXIT",
	ExitInvalid:           "VMEXIT_INVALID",
	ExitBusy:              "VMEXIT_BUSY",
	ExitIdleRequired:      "VMEXIT_IDLE_REQUIRED",
	ExitInvalidPMC:        "VMEXIT_INVALID_PMC",
}

// String returns the manual's name for c, for example "VMEXIT_CPUID" or
// "VMEXIT_CR3_WRITE"; an undefined code prints as "VMEXIT_UNKNOWN(0x...)".
func (c ExitCode) String() string {
	switch {
	case c <= 0x0f:
		return fmt.Sprintf("VMEXIT_CR%d_READ", c)
	case c <= 0x1f:
		return fmt.Sprintf("VMEXIT_CR%d_WRITE", c-ExitCRWrite)
	case c <= 0x2f:
		return fmt.Sprintf("VMEXIT_DR%d_READ", c-ExitDRRead)
	case c <= 0x3f:
		return fmt.Sprintf("VMEXIT_DR%d_WRITE", c-ExitDRWrite)
	case c <= 0x5f:
		return fmt.Sprintf("VMEXIT_EXCP%d", c-ExitExcp)
	case c >= ExitCRWriteTrap && c <= ExitCRWriteTrap+15:
		return fmt.Sprintf("VMEXIT_CR%d_WRITE_TRAP", c-ExitCRWriteTrap)
	}
	if s, ok := exitNames[c]; ok {
		return s
	}
	return fmt.Sprintf("VMEXIT_UNKNOWN(%#x)", uint64(c))
}
