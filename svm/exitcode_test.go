package svm

import "testing"

// appendixC is APM vol. 2 appendix C, table C-1 "SVM Intercept Codes":
// code and mnemonic, row by row (ranges sampled at both ends and inside).
var appendixC = []struct {
	code uint64
	name string
}{
	{0x00, "VMEXIT_CR0_READ"},
	{0x03, "VMEXIT_CR3_READ"},
	{0x0f, "VMEXIT_CR15_READ"},
	{0x10, "VMEXIT_CR0_WRITE"},
	{0x18, "VMEXIT_CR8_WRITE"},
	{0x1f, "VMEXIT_CR15_WRITE"},
	{0x20, "VMEXIT_DR0_READ"},
	{0x2f, "VMEXIT_DR15_READ"},
	{0x30, "VMEXIT_DR0_WRITE"},
	{0x37, "VMEXIT_DR7_WRITE"},
	{0x3f, "VMEXIT_DR15_WRITE"},
	{0x40, "VMEXIT_EXCP0"},
	{0x4e, "VMEXIT_EXCP14"},
	{0x5f, "VMEXIT_EXCP31"},
	{0x60, "VMEXIT_INTR"},
	{0x61, "VMEXIT_NMI"},
	{0x62, "VMEXIT_SMI"},
	{0x63, "VMEXIT_INIT"},
	{0x64, "VMEXIT_VINTR"},
	{0x65, "VMEXIT_CR0_SEL_WRITE"},
	{0x66, "VMEXIT_IDTR_READ"},
	{0x67, "VMEXIT_GDTR_READ"},
	{0x68, "VMEXIT_LDTR_READ"},
	{0x69, "VMEXIT_TR_READ"},
	{0x6a, "VMEXIT_IDTR_WRITE"},
	{0x6b, "VMEXIT_GDTR_WRITE"},
	{0x6c, "VMEXIT_LDTR_WRITE"},
	{0x6d, "VMEXIT_TR_WRITE"},
	{0x6e, "VMEXIT_RDTSC"},
	{0x6f, "VMEXIT_RDPMC"},
	{0x70, "VMEXIT_PUSHF"},
	{0x71, "VMEXIT_POPF"},
	{0x72, "VMEXIT_CPUID"},
	{0x73, "VMEXIT_RSM"},
	{0x74, "VMEXIT_IRET"},
	{0x75, "VMEXIT_SWINT"},
	{0x76, "VMEXIT_INVD"},
	{0x77, "VMEXIT_PAUSE"},
	{0x78, "VMEXIT_HLT"},
	{0x79, "VMEXIT_INVLPG"},
	{0x7a, "VMEXIT_INVLPGA"},
	{0x7b, "VMEXIT_IOIO"},
	{0x7c, "VMEXIT_MSR"},
	{0x7d, "VMEXIT_TASK_SWITCH"},
	{0x7e, "VMEXIT_FERR_FREEZE"},
	{0x7f, "VMEXIT_SHUTDOWN"},
	{0x80, "VMEXIT_VMRUN"},
	{0x81, "VMEXIT_VMMCALL"},
	{0x82, "VMEXIT_VMLOAD"},
	{0x83, "VMEXIT_VMSAVE"},
	{0x84, "VMEXIT_STGI"},
	{0x85, "VMEXIT_CLGI"},
	{0x86, "VMEXIT_SKINIT"},
	{0x87, "VMEXIT_RDTSCP"},
	{0x88, "VMEXIT_ICEBP"},
	{0x89, "VMEXIT_WBINVD"},
	{0x8a, "VMEXIT_MONITOR"},
	{0x8b, "VMEXIT_MWAIT"},
	{0x8c, "VMEXIT_MWAIT_CONDITIONAL"},
	{0x8d, "VMEXIT_XSETBV"},
	{0x8e, "VMEXIT_RDPRU"},
	{0x8f, "VMEXIT_EFER_WRITE_TRAP"},
	{0x90, "VMEXIT_CR0_WRITE_TRAP"},
	{0x94, "VMEXIT_CR4_WRITE_TRAP"},
	{0x98, "VMEXIT_CR8_WRITE_TRAP"},
	{0x9f, "VMEXIT_CR15_WRITE_TRAP"},
	{0xa0, "VMEXIT_INVLPGB"},
	{0xa1, "VMEXIT_INVLPGB_ILLEGAL"},
	{0xa2, "VMEXIT_INVPCID"},
	{0xa3, "VMEXIT_MCOMMIT"},
	{0xa4, "VMEXIT_TLBSYNC"},
	{0xa5, "VMEXIT_BUSLOCK"},
	{0xa6, "VMEXIT_IDLE_HLT"},
	{0x400, "VMEXIT_NPF"},
	{0x401, "VMEXIT_AVIC_INCOMPLETE_IPI"},
	{0x402, "VMEXIT_AVIC_NOACCEL"},
	{0x403, "VMEXIT_VMGEXIT"},
	{0xffff_ffff_ffff_ffff, "VMEXIT_INVALID"},
	{0xffff_ffff_ffff_fffe, "VMEXIT_BUSY"},
	{0xffff_ffff_ffff_fffd, "VMEXIT_IDLE_REQUIRED"},
	{0xffff_ffff_ffff_fffc, "VMEXIT_INVALID_PMC"},
}

func TestExitCodeNames(t *testing.T) {
	for _, row := range appendixC {
		if got := ExitCode(row.code).String(); got != row.name {
			t.Errorf("ExitCode(%#x).String() = %q, want %q", row.code, got, row.name)
		}
	}
	for _, c := range []uint64{0xa7, 0x3ff, 0x404, 0xf000_0000} {
		if got, want := ExitCode(c).String(), "VMEXIT_UNKNOWN"; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("ExitCode(%#x).String() = %q, want an UNKNOWN name", c, got)
		}
	}
}

func TestExitCodeConstants(t *testing.T) {
	tests := []struct {
		got  ExitCode
		want uint64
	}{
		{ExitCPUID, 0x72}, {ExitIOIO, 0x7b}, {ExitMSR, 0x7c}, {ExitHLT, 0x78},
		{ExitRDTSC, 0x6e}, {ExitVMMCALL, 0x81}, {ExitVMRUN, 0x80}, {ExitShutdown, 0x7f},
		{ExitINTR, 0x60}, {ExitNPF, 0x400}, {ExitXSETBV, 0x8d},
		{ExitCRReadN(3), 0x03}, {ExitCRWriteN(8), 0x18}, {ExitDRReadN(7), 0x27},
		{ExitDRWriteN(6), 0x36}, {ExitExcpN(14), 0x4e}, {ExitCRWriteTrapN(4), 0x94},
		{ExitInvalid, 0xffff_ffff_ffff_ffff},
	}
	for _, tt := range tests {
		if uint64(tt.got) != tt.want {
			t.Errorf("%v = %#x, want %#x", tt.got, uint64(tt.got), tt.want)
		}
	}
}

func TestNormalizeExitCode(t *testing.T) {
	tests := []struct {
		raw  uint64
		want ExitCode
	}{
		{0x0000_0000_ffff_ffff, ExitInvalid}, // QEMU TCG
		{0xffff_ffff_ffff_ffff, ExitInvalid}, // hardware, Bochs
		{0x0000_0000_ffff_fffe, ExitBusy},
		{0x0000_0000_ffff_fffc, ExitInvalidPMC},
		{0x0000_0000_ffff_fffb, 0xffff_fffb}, // not an error code: left alone
		{0x7b, ExitIOIO},
		{0x400, ExitNPF},
		{0xf000_0000, 0xf000_0000},
		{0x1_0000_0072, 0x1_0000_0072}, // high half set: left alone
	}
	for _, tt := range tests {
		got := NormalizeExitCode(tt.raw)
		if got != tt.want {
			t.Errorf("NormalizeExitCode(%#x) = %#x, want %#x", tt.raw, uint64(got), uint64(tt.want))
		}
		if want := tt.want == ExitInvalid || tt.want == ExitBusy || tt.want == ExitInvalidPMC; got.IsError() != want {
			t.Errorf("NormalizeExitCode(%#x).IsError() = %v, want %v", tt.raw, got.IsError(), want)
		}
	}
}

func TestExitCodeRegisterAndVector(t *testing.T) {
	tests := []struct {
		code   ExitCode
		reg    int
		regOK  bool
		vector uint8
		vecOK  bool
	}{
		{ExitCRReadN(0), 0, true, 0, false},
		{ExitCRWriteN(4), 4, true, 0, false},
		{ExitDRReadN(7), 7, true, 0, false},
		{ExitDRWriteN(15), 15, true, 0, false},
		{ExitCRWriteTrapN(8), 8, true, 0, false},
		{ExitExcpN(0), 0, false, 0, true},
		{ExitExcpN(31), 0, false, 31, true},
		{ExitCPUID, 0, false, 0, false},
		{ExitInvalid, 0, false, 0, false},
	}
	for _, tt := range tests {
		reg, ok := tt.code.Register()
		if reg != tt.reg || ok != tt.regOK {
			t.Errorf("%v.Register() = %d, %v; want %d, %v", tt.code, reg, ok, tt.reg, tt.regOK)
		}
		vec, ok := tt.code.ExceptionVector()
		if vec != tt.vector || ok != tt.vecOK {
			t.Errorf("%v.ExceptionVector() = %d, %v; want %d, %v", tt.code, vec, ok, tt.vector, tt.vecOK)
		}
	}
}
