package vmx

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExitReasonNames(t *testing.T) {
	// Spot checks against SDM Appendix C Table C-1.
	for _, tt := range []struct {
		r    ExitReason
		n    uint16
		name string
	}{
		{ExitExceptionOrNMI, 0, "exception or NMI"},
		{ExitCPUID, 10, "CPUID"},
		{ExitHLT, 12, "HLT"},
		{ExitVMCALL, 18, "VMCALL"},
		{ExitVMXON, 27, "VMXON"},
		{ExitCRAccess, 28, "control-register accesses"},
		{ExitIOInstruction, 30, "I/O instruction"},
		{ExitInvalidGuestState, 33, "VM-entry failure due to invalid guest state"},
		{ExitMSRLoading, 34, "VM-entry failure due to MSR loading"},
		{ExitMachineCheck, 41, "VM-entry failure due to machine-check event"},
		{ExitEPTViolation, 48, "EPT violation"},
		{ExitEPTMisconfig, 49, "EPT misconfiguration"},
		{ExitPreemptionTimer, 52, "VMX-preemption timer expired"},
		{ExitXSETBV, 55, "XSETBV"},
		{ExitWRMSRLIST, 79, "WRMSRLIST"},
	} {
		if uint16(tt.r) != tt.n || tt.r.String() != tt.name {
			t.Errorf("reason %d: value %d name %q, want %d %q", tt.r, uint16(tt.r), tt.r.String(), tt.n, tt.name)
		}
	}
	for _, r := range []ExitReason{35, 38, 42, 71, 80, 0xFFFF} {
		if got, want := r.String(), "exit reason "+itoa(int(r)); got != want {
			t.Errorf("undefined reason %d: %q", r, got)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestExitReasonField(t *testing.T) {
	f := ExitReasonField(0x8000_0021) // what VM entry writes for invalid guest state
	if !f.EntryFailure() || f.Basic() != ExitInvalidGuestState || f.String() != "VM-entry failure: VM-entry failure due to invalid guest state" {
		t.Errorf("%#x decoded as %v %v %q", uint32(f), f.EntryFailure(), f.Basic(), f)
	}
	f = ExitReasonField(1<<28 | 1<<27 | 1<<29 | 30)
	if f.EntryFailure() || !f.PendingMTF() || !f.Enclave() || !f.FromRoot() || f.Basic() != ExitIOInstruction {
		t.Errorf("%#x decoded wrongly", uint32(f))
	}
}

func TestInstructionError(t *testing.T) {
	for _, tt := range []struct {
		e    InstructionError
		want string
	}{
		{7, "vmx: VM-instruction error 7: VM entry with invalid control field(s)"},
		{8, "vmx: VM-instruction error 8: VM entry with invalid host-state field(s)"},
		{12, "vmx: VM-instruction error 12: VMREAD/VMWRITE from/to unsupported VMCS component"},
		{26, "vmx: VM-instruction error 26: VM entry with events blocked by MOV SS"},
		{28, "vmx: VM-instruction error 28: invalid operand to INVEPT/INVVPID"},
		{14, "vmx: VM-instruction error 14: VM-instruction error 14"},
		{99, "vmx: VM-instruction error 99: VM-instruction error 99"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("error %d: %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestIOQualification(t *testing.T) {
	type io struct {
		Size              int
		In, Str, Rep, Imm bool
		Port              uint16
	}
	dec := func(q IOQualification) io {
		return io{q.Size(), q.In(), q.StringOp(), q.Rep(), q.Immediate(), q.Port()}
	}
	for _, tt := range []struct {
		name string
		q    IOQualification
		want io
	}{
		{"out dx, al to COM1", 0x03F8_0000, io{1, false, false, false, false, 0x3F8}},
		{"in eax, 0x71", 0x0071_004B, io{4, true, false, false, true, 0x71}},
		{"rep outsw dx", 0x01F0_0031, io{2, false, true, true, false, 0x1F0}},
		{"rep insb", 0x0060_0038, io{1, true, true, true, false, 0x60}},
		{"reserved size", 0x0080_0002, io{0, false, false, false, false, 0x80}},
	} {
		if diff := cmp.Diff(tt.want, dec(tt.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestCRQualification(t *testing.T) {
	type cr struct {
		CR     int
		Access CRAccessType
		Mem    bool
		GPR    int
		Src    uint16
	}
	dec := func(q CRQualification) cr { return cr{q.CR(), q.Access(), q.LMSWMemory(), q.GPR(), q.LMSWSource()} }
	for _, tt := range []struct {
		name string
		q    CRQualification
		want cr
	}{
		{"mov cr3, rax", 0x003, cr{3, CRMovTo, false, 0, 0}},
		{"mov r9, cr4", 0x914, cr{4, CRMovFrom, false, 9, 0}},
		{"mov cr8, rsp", 0x408, cr{8, CRMovTo, false, 4, 0}},
		{"clts", 0x020, cr{0, CRCLTS, false, 0, 0}},
		{"lmsw ax", 0x0001_0030, cr{0, CRLMSW, false, 0, 1}},
		{"lmsw [mem]", 0x000F_0070, cr{0, CRLMSW, true, 0, 0xF}},
	} {
		if diff := cmp.Diff(tt.want, dec(tt.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	d := DRQualification(0x517) // mov rbp, dr7
	if d.DR() != 7 || !d.FromDR() || d.GPR() != 5 {
		t.Errorf("DR qualification %#x: dr%d from=%v gpr=%d", uint64(d), d.DR(), d.FromDR(), d.GPR())
	}
}

func TestEPTViolation(t *testing.T) {
	type ev struct {
		R, W, X             bool
		Perm                Perm
		Linear, Walk, Final bool
		NMI                 bool
	}
	dec := func(q EPTViolation) ev {
		return ev{q.Read(), q.Write(), q.Fetch(), q.Permissions(), q.LinearValid(), q.DuringWalk(), q.Translation(), q.NMIUnblocking()}
	}
	for _, tt := range []struct {
		name string
		q    EPTViolation
		want ev
	}{
		// Write to an unmapped MMIO page from a MOV: linear valid, final translation.
		{"mmio write", 0x182, ev{false, true, false, 0, true, false, true, false}},
		// Read of a read/execute page during the guest's own page walk (A/D update writes).
		{"page walk A/D write", 0x0AA, ev{false, true, false, PermRead | PermExecute, true, true, false, false}},
		{"fetch from non-exec", 0x18C, ev{false, false, true, PermRead, true, false, true, false}},
		{"no linear address", 0x001, ev{true, false, false, 0, false, false, false, false}},
		{"NMI unblocking", 0x1181, ev{true, false, false, 0, true, false, true, true}},
	} {
		if diff := cmp.Diff(tt.want, dec(tt.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestDebugAndTaskSwitch(t *testing.T) {
	d := DebugQualification(1<<14 | 1<<13 | 0x5)
	if d.Breakpoints() != 5 || !d.BS() || !d.BD() || d.RTM() {
		t.Errorf("debug %#x", uint64(d))
	}
	for _, tt := range []struct {
		q   TaskSwitchQualification
		sel uint16
		src TaskSwitchSource
	}{
		{0x0000_0028, 0x28, TaskSwitchCALL},
		{0x4000_0030, 0x30, TaskSwitchIRET},
		{0x8000_0038, 0x38, TaskSwitchJMP},
		{0xC000_0040, 0x40, TaskSwitchGate},
	} {
		if tt.q.Selector() != tt.sel || tt.q.Source() != tt.src {
			t.Errorf("task switch %#x: %#x %d", uint64(tt.q), tt.q.Selector(), tt.q.Source())
		}
	}
}

func TestInterruptionInfo(t *testing.T) {
	// #PF with error code, as VM-exit interruption information: valid,
	// type 3, error code valid, vector 14.
	pf := InterruptionInfo(0x8000_0B0E)
	if !pf.Valid() || pf.Vector() != 14 || pf.Type() != EventHardwareException || !pf.ErrorCodeValid() || pf.NMIUnblocking() {
		t.Errorf("%#x decoded as %v", uint32(pf), pf)
	}
	if got := MakeEntryInterruption(EventHardwareException, 14, true); got != pf {
		t.Errorf("MakeEntryInterruption(#PF) = %#x", uint32(got))
	}
	if s := pf.String(); s != "hardware exception vector 14 with error code" {
		t.Errorf("String = %q", s)
	}
	if InterruptionInfo(0x0B0E).Valid() || InterruptionInfo(0).String() != "none" {
		t.Error("invalid info reported valid")
	}
	if got := MakeEntryInterruption(EventExternalInterrupt, 0x20, false); got != 0x8000_0020 {
		t.Errorf("external interrupt 0x20 = %#x", uint32(got))
	}
	if got := MakeEntryInterruption(EventNMI, 2, false); got != 0x8000_0202 {
		t.Errorf("NMI = %#x", uint32(got))
	}
}

func TestReinject(t *testing.T) {
	tests := []struct {
		name     string
		idt      InterruptionInfo
		errCode  uint32
		instrLen uint32
		want     Reinjection
		ok       bool
	}{
		{"nothing being delivered", 0, 0, 3, Reinjection{}, false},
		{"reserved type 1", 0x8000_0120, 0, 3, Reinjection{}, false},
		{"#PF during delivery", 0x8000_0B0E, 0x2, 3,
			Reinjection{Info: 0x8000_0B0E, ErrorCode: 0x2}, true},
		// The IDT-vectoring field may carry a stale bit 12; entry info must not.
		{"external interrupt", 0x8000_1030, 0xDEAD, 3,
			Reinjection{Info: 0x8000_0030}, true},
		{"INT 0x80 (software interrupt) keeps the length", 0x8000_0480, 0, 2,
			Reinjection{Info: 0x8000_0480, InstructionLength: 2}, true},
		{"INT3 (software exception)", 0x8000_0603, 0, 1,
			Reinjection{Info: 0x8000_0603, InstructionLength: 1}, true},
		{"INT1 (privileged software exception)", 0x8000_0501, 0, 1,
			Reinjection{Info: 0x8000_0501, InstructionLength: 1}, true},
		{"NMI clears NMI blocking", 0x8000_0202, 0, 3,
			Reinjection{Info: 0x8000_0202, ClearNMIBlocking: true}, true},
	}
	for _, tt := range tests {
		got, ok := Reinject(tt.idt, tt.errCode, tt.instrLen)
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.name, ok)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestRestoreNMIBlocking(t *testing.T) {
	for _, tt := range []struct {
		unblock bool
		vector  uint8
		idt     InterruptionInfo
		vnmi    bool
		want    bool
	}{
		{true, 14, 0, true, true},
		{true, 8, 0, true, false},            // #DF
		{true, 14, 0x8000_0B0E, true, false}, // exit during delivery
		{true, 14, 0, false, false},          // no virtual NMIs
		{false, 14, 0, true, false},
	} {
		if got := RestoreNMIBlocking(tt.unblock, tt.vector, tt.idt, tt.vnmi); got != tt.want {
			t.Errorf("RestoreNMIBlocking(%v, %d, %#x, %v) = %v", tt.unblock, tt.vector, uint32(tt.idt), tt.vnmi, got)
		}
	}
}

func TestInstructionInfo(t *testing.T) {
	regs := []uint64{0: 0x1000, 3: 0x20, 5: 0xFFFF_FFFF_FFFF_FFF0, 12: 0x7}
	gpr := func(r int) uint64 {
		if r < len(regs) {
			return regs[r]
		}
		return 0
	}
	tests := []struct {
		name       string
		info       InstructionInfo
		disp       uint64
		wantOffset uint64
		addrSize   int
		seg        int
	}{
		// VMPTRLD [rax+rbx*4+0x10], 64-bit addressing, DS.
		{"base+index*4", InstructionInfo(2 | 2<<7 | 3<<15 | 3<<18 | 0<<23), 0x10, 0x1000 + 0x80 + 0x10, 64, 3},
		// [rbp-0x20] with 32-bit addressing wraps to 32 bits; SS, no index.
		{"32-bit wrap", InstructionInfo(1<<7 | 2<<15 | 1<<22 | 5<<23), 0xFFFF_FFFF_FFFF_FFE0, 0xFFFF_FFD0, 32, 2},
		// [disp16] 16-bit, no base, no index.
		{"absolute 16-bit", InstructionInfo(0<<7 | 3<<15 | 1<<22 | 1<<27), 0x1_2345, 0x2345, 16, 3},
		// [r12*8] no base.
		{"index only", InstructionInfo(3 | 2<<7 | 12<<18 | 1<<27), 0, 0x38, 64, 0},
	}
	for _, tt := range tests {
		off, ok := tt.info.Offset(gpr, tt.disp)
		if !ok || off != tt.wantOffset || tt.info.AddressSize() != tt.addrSize || tt.info.Segment() != tt.seg {
			t.Errorf("%s: offset %#x ok=%v size %d seg %d; want %#x %d %d", tt.name, off, ok, tt.info.AddressSize(),
				tt.info.Segment(), tt.wantOffset, tt.addrSize, tt.seg)
		}
	}
	if _, ok := InstructionInfo(3<<7).Offset(gpr, 0); ok {
		t.Error("reserved address size accepted")
	}
	// VMREAD rax, rbx (register form): reg1 = destination (0), reg2 = field encoding (3).
	vmread := InstructionInfo(0<<3 | 2<<7 | 1<<10 | 3<<28)
	if !vmread.RegisterOperand() || vmread.Reg1() != 0 || vmread.Reg2() != 3 {
		t.Errorf("VMREAD info %#x", uint32(vmread))
	}
	// LIDT: identity 3, 32-bit operand size.
	lidt := InstructionInfo(1<<11 | 3<<28 | 2<<7)
	if lidt.Identity() != 3 || !lidt.OperandSize32() {
		t.Errorf("LIDT info %#x", uint32(lidt))
	}
	// OUTS with 32-bit addressing from FS: the address-size and segment fields.
	outs := InstructionInfo(1<<7 | 4<<15)
	if outs.AddressSize() != 32 || outs.Segment() != 4 {
		t.Errorf("OUTS info %#x", uint32(outs))
	}
}

// FuzzExitDecode feeds arbitrary exit information (guest-influenced) to every
// decoder and checks they never panic and stay within their ranges.
func FuzzExitDecode(f *testing.F) {
	f.Add(uint32(0x8000_0021), uint64(0x03F8_0000), uint32(0x8000_0B0E), uint32(0), uint32(3), uint32(0x2<<7))
	f.Fuzz(func(t *testing.T, reason uint32, qual uint64, intInfo, errCode, length, instrInfo uint32) {
		_ = ExitReasonField(reason).String()
		_ = InstructionError(reason).Error()
		io := IOQualification(qual)
		if s := io.Size(); s != 0 && s != 1 && s != 2 && s != 4 {
			t.Fatalf("I/O size %d", s)
		}
		cr := CRQualification(qual)
		if cr.GPR() > 15 || cr.CR() > 15 || cr.Access() > 3 {
			t.Fatal("CR qualification out of range")
		}
		ev := EPTViolation(qual)
		if ev.Permissions()&^PermRWX != 0 || (ev.DuringWalk() && ev.Translation()) {
			t.Fatal("EPT violation decode inconsistent")
		}
		r, ok := Reinject(InterruptionInfo(intInfo), errCode, length)
		if ok {
			if !r.Info.Valid() || r.Info.Vector() != InterruptionInfo(intInfo).Vector() || uint32(r.Info)&^0x8000_0FFF != 0 {
				t.Fatalf("reinjection %#x from %#x", uint32(r.Info), intInfo)
			}
			if !r.Info.Type().HasInstructionLength() && r.InstructionLength != 0 {
				t.Fatal("instruction length for a hardware event")
			}
		}
		ii := InstructionInfo(instrInfo)
		_, _ = ii.Offset(func(reg int) uint64 {
			if reg < 0 || reg > 15 {
				t.Fatalf("register %d", reg)
			}
			return qual
		}, qual)
	})
}
