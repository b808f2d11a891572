package vmx

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/vmm"
)

func TestAccessRightsConversion(t *testing.T) {
	tests := []struct {
		name   string
		attrib uint16 // VMCB packing
		ar     uint32 // VMX access rights, SDM Table 25-2
	}{
		{"real-mode code", 0x9B, 0x9B},
		{"real-mode data", 0x93, 0x93},
		{"64-bit code: L, G", 0xA9B, 0xA09B},
		{"32-bit flat data: D/B, G", 0xC93, 0xC093},
		{"busy 32-bit TSS", 0x8B, 0x8B},
		{"LDT", 0x82, 0x82},
		{"null selector, DPL 3 kept", 0x60, ARUnusable | 0x60},
		{"not present", 0, ARUnusable},
	}
	for _, tt := range tests {
		if got := accessRights(tt.attrib); got != tt.ar {
			t.Errorf("%s: accessRights(%#x) = %#x, want %#x", tt.name, tt.attrib, got, tt.ar)
		}
		if got := attributes(tt.ar); got != tt.attrib {
			t.Errorf("%s: attributes(%#x) = %#x, want %#x", tt.name, tt.ar, got, tt.attrib)
		}
	}
	// An unusable segment whose other bits the CPU left set still reads
	// as not present.
	if got := attributes(ARUnusable | 0x93); got&attribPresent != 0 {
		t.Errorf("attributes(unusable|0x93) = %#x: present", got)
	}
}

func TestExecModeAndNextRIP(t *testing.T) {
	tests := []struct {
		ia32e bool
		ar    uint32
		rip   uint64
		n     uint32
		mode  int
		want  uint64
	}{
		{false, 0x9B, 0x8000, 2, 16, 0x8002},
		{false, 0x9B, 0xFFFF, 1, 16, 0},                   // IP wraps at 64 KiB
		{false, 0xC09B, 0xFFFF_FFFE, 3, 32, 1},            // EIP wraps at 4 GiB
		{true, 0xA09B, 0xFFFF_FFFF, 1, 64, 0x1_0000_0000}, // 64-bit
		{true, 0xC09B, 0xFFFF_FFFF, 1, 32, 0},             // compatibility mode
		{true, 0x2000 | 0x9B, 0x1_0000_0000, 2, 64, 0x1_0000_0002},
	}
	for _, tt := range tests {
		mode := execMode(tt.ia32e, tt.ar)
		if mode != tt.mode {
			t.Errorf("execMode(%v, %#x) = %d, want %d", tt.ia32e, tt.ar, mode, tt.mode)
		}
		if got := nextRIP(tt.rip, tt.n, mode); got != tt.want {
			t.Errorf("nextRIP(%#x, %d, %d) = %#x, want %#x", tt.rip, tt.n, mode, got, tt.want)
		}
	}
}

func TestDecodeExit(t *testing.T) {
	// I/O qualification (SDM Table 28-5): OUT DX, AL to 0xE9 is size 0, out,
	// DX; IN EAX, 0x71 is size 3, in, immediate; REP OUTSW to 0x3F8 is size 1,
	// string, REP.
	tests := []struct {
		name string
		f    exitFields
		want vmm.Exit
	}{
		{"out dx, al", exitFields{Reason: 30, Qual: 0xE9 << 16, InstrLen: 1, RIP: 0x8005, Mode: 16},
			vmm.Exit{Reason: vmm.ExitIO, Raw: 30, Qual: 0xE9 << 16, NextRIP: 0x8006, IO: vmm.IOAccess{Port: 0xE9, Size: 1}}},
		{"in eax, 0x71", exitFields{Reason: 30, Qual: 0x71<<16 | 1<<6 | 1<<3 | 3, InstrLen: 2, RIP: 0x1000, Mode: 32},
			vmm.Exit{Reason: vmm.ExitIO, Raw: 30, Qual: 0x71<<16 | 1<<6 | 1<<3 | 3, NextRIP: 0x1002, IO: vmm.IOAccess{Port: 0x71, Size: 4, In: true}}},
		{"rep outsw", exitFields{Reason: 30, Qual: 0x3F8<<16 | 1<<5 | 1<<4 | 1, InstrLen: 3, RIP: 0x10, Mode: 64},
			vmm.Exit{Reason: vmm.ExitIO, Raw: 30, Qual: 0x3F8<<16 | 1<<5 | 1<<4 | 1, NextRIP: 0x13, IO: vmm.IOAccess{Port: 0x3F8, Size: 2, String: true, Rep: true}}},
		{"io reserved size", exitFields{Reason: 30, Qual: 2}, vmm.Exit{Reason: vmm.ExitUnknown, Raw: 30, Qual: 2,
			Detail: "I/O exit with reserved size encoding (qualification 0x2)"}},
		{"cpuid", exitFields{Reason: 10, InstrLen: 2, RIP: 0xFFFE, Mode: 16}, vmm.Exit{Reason: vmm.ExitCPUID, Raw: 10, NextRIP: 0}},
		{"hlt", exitFields{Reason: 12, InstrLen: 1, RIP: 0x8010, Mode: 16}, vmm.Exit{Reason: vmm.ExitHLT, Raw: 12, NextRIP: 0x8011}},
		{"rdmsr", exitFields{Reason: 31, InstrLen: 2, RIP: 0x100, Mode: 64, RCX: 0xFFFF_FFFF_C000_0080},
			vmm.Exit{Reason: vmm.ExitMSRRead, Raw: 31, MSR: 0xC0000080, NextRIP: 0x102}},
		{"wrmsr", exitFields{Reason: 32, InstrLen: 2, RIP: 0x100, Mode: 64, RCX: 0x277},
			vmm.Exit{Reason: vmm.ExitMSRWrite, Raw: 32, MSR: 0x277, Write: true, NextRIP: 0x102}},
		{"rdtsc", exitFields{Reason: 16, InstrLen: 2, RIP: 0x10, Mode: 32}, vmm.Exit{Reason: vmm.ExitRDTSC, Raw: 16, NextRIP: 0x12}},
		{"rdtscp", exitFields{Reason: 51, InstrLen: 3, RIP: 0x10, Mode: 32}, vmm.Exit{Reason: vmm.ExitRDTSCP, Raw: 51, NextRIP: 0x13}},
		{"vmcall", exitFields{Reason: 18, InstrLen: 3, RIP: 0x10, Mode: 64}, vmm.Exit{Reason: vmm.ExitHypercall, Raw: 18, NextRIP: 0x13}},
		{"xsetbv", exitFields{Reason: 55, InstrLen: 3, RIP: 0x10, Mode: 64}, vmm.Exit{Reason: vmm.ExitXSETBV, Raw: 55, NextRIP: 0x13}},
		{"ept violation write", exitFields{Reason: 48, Qual: EPTViolWrite | EPTViolLinearValid | EPTViolTranslation, GPA: 0xFED00000},
			vmm.Exit{Reason: vmm.ExitMMIO, Raw: 48, Qual: 0x182, GPA: 0xFED00000, Info2: 0xFED00000, Write: true}},
		{"ept violation read", exitFields{Reason: 48, Qual: EPTViolRead, GPA: 0x80000000},
			vmm.Exit{Reason: vmm.ExitMMIO, Raw: 48, Qual: 1, GPA: 0x80000000, Info2: 0x80000000}},
		{"ept misconfiguration", exitFields{Reason: 49, GPA: 0x1000},
			vmm.Exit{Reason: vmm.ExitInvalidState, Raw: 49, GPA: 0x1000, Info2: 0x1000, Detail: "EPT misconfiguration at gpa=0x1000"}},
		{"triple fault", exitFields{Reason: 2}, vmm.Exit{Reason: vmm.ExitShutdown, Raw: 2}},
		{"external interrupt", exitFields{Reason: 1}, vmm.Exit{Reason: vmm.ExitExternalInterrupt, Raw: 1}},
		{"interrupt window", exitFields{Reason: 7}, vmm.Exit{Reason: vmm.ExitInterruptWindow, Raw: 7}},
		{"preemption timer", exitFields{Reason: 52}, vmm.Exit{Reason: vmm.ExitNone, Raw: 52}},
		{"guest vmxon", exitFields{Reason: 27}, vmm.Exit{Reason: vmm.ExitVirtInstr, Raw: 27}},
		{"guest invept", exitFields{Reason: 50}, vmm.Exit{Reason: vmm.ExitVirtInstr, Raw: 50}},
		{"mwait", exitFields{Reason: 36}, vmm.Exit{Reason: vmm.ExitInvalidOpcode, Raw: 36}},
		{"invd", exitFields{Reason: 13}, vmm.Exit{Reason: vmm.ExitInvalidOpcode, Raw: 13}},
		{"#GP intercepted", exitFields{Reason: 0, IntInfo: InterruptionInfo(IntInfoValid | 3<<8 | IntInfoErrorCodeValid | 13), IntError: 0x18},
			vmm.Exit{Reason: vmm.ExitException, Raw: 0, Vector: 13, ErrCode: 0x18, HasError: true}},
		{"#UD intercepted", exitFields{Reason: 0, IntInfo: InterruptionInfo(IntInfoValid | 3<<8 | 6)},
			vmm.Exit{Reason: vmm.ExitException, Raw: 0, Vector: 6}},
		{"host NMI", exitFields{Reason: 0, IntInfo: InterruptionInfo(IntInfoValid | 2<<8 | 2)}, vmm.Exit{Reason: vmm.ExitNMI, Raw: 0}},
		{"task switch", exitFields{Reason: 9}, vmm.Exit{Reason: vmm.ExitUnknown, Raw: 9, Detail: "task switch"}},
		{"entry failure: guest state", exitFields{Reason: 1<<31 | 33, Qual: 0, EntryFail: "vmx: VM-entry check SDM 27.3.1.2 failed: x (y)"},
			vmm.Exit{Reason: vmm.ExitInvalidState, Raw: 1<<31 | 33,
				Detail: "VM entry failed: invalid guest state (exit qualification 0): vmx: VM-entry check SDM 27.3.1.2 failed: x (y)"}},
		{"entry failure: MSR load", exitFields{Reason: 1<<31 | 34, Qual: 2},
			vmm.Exit{Reason: vmm.ExitInvalidState, Raw: 1<<31 | 34, Qual: 2, Detail: "VM entry failed: loading entry 2 of the VM-entry MSR-load list"}},
		{"entry failure: machine check", exitFields{Reason: 1<<31 | 41},
			vmm.Exit{Reason: vmm.ExitInvalidState, Raw: 1<<31 | 41, Detail: "VM entry failed: VM-entry failure due to machine-check event"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeExit(tt.f)); diff != "" {
			t.Errorf("%s: decodeExit mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestEventInfo(t *testing.T) {
	tests := []struct {
		name      string
		ev        vmm.Event
		protected bool
		want      InterruptionInfo
	}{
		{"IRQ0 at 0x20", vmm.Event{Type: vmm.EventExternal, Vector: 0x20}, true, 0x8000_0020},
		{"#GP(0) in protected mode", vmm.Event{Type: vmm.EventException, Vector: 13, HasError: true}, true, 0x8000_0B0D},
		{"#GP in real mode: no error code", vmm.Event{Type: vmm.EventException, Vector: 13, HasError: true}, false, 0x8000_030D},
		{"#UD never has one", vmm.Event{Type: vmm.EventException, Vector: 6, HasError: true}, true, 0x8000_0306},
		{"NMI", vmm.Event{Type: vmm.EventNMI, Vector: 0}, true, 0x8000_0202},
		{"INT 0x80", vmm.Event{Type: vmm.EventSoftware, Vector: 0x80}, true, 0x8000_0480},
	}
	for _, tt := range tests {
		got := eventInfo(tt.ev, tt.protected)
		if got != tt.want {
			t.Errorf("%s: eventInfo = %#x, want %#x", tt.name, uint32(got), uint32(tt.want))
		}
		back := pendingEvent(got, tt.ev.ErrCode)
		want := tt.ev
		want.HasError = got.ErrorCodeValid()
		if tt.ev.Type == vmm.EventNMI {
			want.Vector = 2
		}
		if diff := cmp.Diff(&want, back); diff != "" {
			t.Errorf("%s: pendingEvent round trip (-want +got):\n%s", tt.name, diff)
		}
	}
	if pendingEvent(0x20, 0) != nil {
		t.Error("pendingEvent of an invalid field is not nil")
	}
}

func TestCR0Inconsistent(t *testing.T) {
	for _, tt := range []struct {
		cr0  uint64
		want string // substring, "" for consistent
	}{
		{0x10, ""},
		{0x60000010, ""}, // CD and NW: the power-on value
		{0x40000010, ""}, // CD alone
		{0x20000010, "NW is set and CD is clear"},
		{1<<32 | 0x11, "bits 63:32"},
	} {
		got := cr0Inconsistent(tt.cr0)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("cr0Inconsistent(%#x) = %q, want %q", tt.cr0, got, tt.want)
		}
	}
}

// realModeVMCS fills a VMCS image the way the vCPU sets up a test guest:
// the controls from the capability MSRs, the host state of the platform, and
// the real-mode start state (CS=0, IP=0x8000) through accessRights.
func realModeVMCS(t *testing.T, caps *Caps, ctl Controls) mapVMCS {
	t.Helper()
	m := mapVMCS{}
	w := func(f Field, v uint64) {
		if err := m.WriteField(f, v); err != nil {
			t.Fatal(err)
		}
	}
	w(VMCSPinBasedControls.Field(), uint64(ctl.Pin))
	w(VMCSProcBasedControls.Field(), uint64(ctl.Proc))
	w(VMCSProcBasedControls2.Field(), uint64(ctl.Proc2))
	w(VMCSExitControls.Field(), uint64(ctl.Exit))
	w(VMCSEntryControls.Field(), uint64(ctl.Entry))
	w(VMCSIOBitmapA.Field(), 0x10000)
	w(VMCSIOBitmapB.Field(), 0x11000)
	w(VMCSMSRBitmap.Field(), 0x12000)
	eptp, err := MakeEPTP(0x13000, 4, MemWB, false, caps.EPTVPID)
	if err != nil {
		t.Fatal(err)
	}
	w(VMCSEPTPointer.Field(), eptp)
	w(VMCSVPID.Field(), 1)
	w(VMCSLinkPointer.Field(), ^uint64(0))
	w(VMCSHostCR0.Field(), 0x80050033)
	w(VMCSHostCR3.Field(), 0x100000)
	w(VMCSHostCR4.Field(), caps.FixCR4(0x406A0))
	w(VMCSHostCSSelector.Field(), hostCS)
	for _, f := range []Field16{VMCSHostSSSelector, VMCSHostDSSelector, VMCSHostESSelector} {
		w(f.Field(), hostDS)
	}
	w(VMCSHostTRSelector.Field(), hostTR)
	w(VMCSHostRIP.Field(), 0x2ab000)
	w(VMCSHostEFER.Field(), EFERLME|EFERLMA|EFERSCE|EFERNXE)
	w(VMCSHostPAT.Field(), 0x0007040600070406)
	seg := func(i int, sel uint16, attrib uint16) {
		s := guestSegs[i]
		w(s.sel.Field(), uint64(sel))
		w(s.base.Field(), uint64(sel)<<4)
		w(s.limit.Field(), 0xFFFF)
		w(s.ar.Field(), uint64(accessRights(attrib)))
	}
	for i := range 6 {
		seg(i, 0, 0x93)
	}
	seg(1, 0, 0x9B) // CS
	seg(6, 0, 0x82) // LDTR
	seg(7, 0, 0x8B) // TR
	w(VMCSGuestGDTRLimit.Field(), 0xFFFF)
	w(VMCSGuestIDTRLimit.Field(), 0x3FF)
	w(VMCSGuestCR0.Field(), caps.FixCR0(0x10, true))
	w(VMCSGuestCR4.Field(), caps.FixCR4(0))
	w(VMCSGuestDR7.Field(), 0x400)
	w(VMCSGuestRIP.Field(), 0x8000)
	w(VMCSGuestRSP.Field(), 0x7000)
	w(VMCSGuestRFLAGS.Field(), 2)
	w(VMCSGuestPAT.Field(), 0x0007040600070406)
	return m
}

func TestRealModeStartPassesEntryChecks(t *testing.T) {
	for _, tt := range []struct {
		name string
		msrs MSRMap
	}{{"bochs skylake_x", bochsSkylakeXMSRs()}, {"sandy bridge", sandyBridgeMSRs()}} {
		caps, err := ReadCaps(tt.msrs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newBackend(nil, caps, fakeCPUID)
		if err != nil {
			t.Fatal(err)
		}
		m := realModeVMCS(t, caps, b.Controls())
		s, err := readEntryState(m, 39)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckEntry(caps, s); err != nil {
			t.Errorf("%s: real-mode start state: %v", tt.name, err)
		}
		// The same state with TR marked not present must fail the TR
		// check, and with an injected #GP carrying an error code in real
		// mode the event-injection check.
		m[VMCSGuestTRAccessRights.Field()] = uint64(accessRights(0x0B))
		s, _ = readEntryState(m, 39)
		if err := CheckEntry(caps, s); err == nil || !strings.Contains(err.Error(), "TR") {
			t.Errorf("%s: unusable TR: %v, want a TR check", tt.name, err)
		}
		m[VMCSGuestTRAccessRights.Field()] = uint64(accessRights(0x8B))
		m[VMCSEntryInterruptionInfo.Field()] = uint64(MakeEntryInterruption(EventHardwareException, 13, true))
		s, _ = readEntryState(m, 39)
		if err := CheckEntry(caps, s); err == nil || !strings.Contains(err.Error(), "27.2.1.3") {
			t.Errorf("%s: real-mode #GP with error code: %v, want SDM 27.2.1.3", tt.name, err)
		}
	}
}
