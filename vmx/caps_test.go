package vmx

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Capability MSR sets of real and emulated CPUs.

// penrynMSRs: Intel Xeon X5482 (Core 2, Penryn, family 6 model 23), as
// recorded in VirtualBox's CPU database (Intel_Xeon_X5482_3_20GHz.h). No
// TRUE controls, secondary controls limited to "virtualize APIC accesses"
// and "WBINVD exiting": no EPT, VPID, unrestricted guest or preemption
// timer. No IA32_VMX_EPT_VPID_CAP (reading it would #GP).
func penrynMSRs() MSRMap {
	return MSRMap{
		MSRFeatureControl:    0x5,
		MSRVMXBasic:          0x005a08000000000d,
		MSRVMXPinBasedCtls:   0x0000003f00000016,
		MSRVMXProcBasedCtls:  0xf7f9fffe0401e172,
		MSRVMXExitCtls:       0x0003ffff00036dff,
		MSRVMXEntryCtls:      0x00003fff000011ff,
		MSRVMXMisc:           0x403c0,
		MSRVMXCR0Fixed0:      0x80000021,
		MSRVMXCR0Fixed1:      0xffffffff,
		MSRVMXCR4Fixed0:      0x2000,
		MSRVMXCR4Fixed1:      0x27ff,
		MSRVMXVMCSEnum:       0x2c,
		MSRVMXProcBasedCtls2: 0x0000004100000000,
	}
}

// sandyBridgeMSRs: Intel Core i7-2635QM (Sandy Bridge, family 6 model 42),
// from VirtualBox's CPU database (Intel_Core_i7_2635QM.h); IA32_FEATURE_CONTROL
// is not recorded there and is set to locked+enabled. TRUE controls, EPT,
// VPID, unrestricted guest, no VM functions, no tertiary controls.
func sandyBridgeMSRs() MSRMap {
	return MSRMap{
		MSRFeatureControl:      0x5,
		MSRVMXBasic:            0x00da040000000010,
		MSRVMXPinBasedCtls:     0x0000007f00000016,
		MSRVMXProcBasedCtls:    0xfff9fffe0401e172,
		MSRVMXExitCtls:         0x007fffff00036dff,
		MSRVMXEntryCtls:        0x0000ffff000011ff,
		MSRVMXMisc:             0x100401e5,
		MSRVMXCR0Fixed0:        0x80000021,
		MSRVMXCR0Fixed1:        0xffffffff,
		MSRVMXCR4Fixed0:        0x2000,
		MSRVMXCR4Fixed1:        0x627ff,
		MSRVMXVMCSEnum:         0x2a,
		MSRVMXProcBasedCtls2:   0x000000ff00000000,
		MSRVMXEPTVPIDCap:       0x00000f0106114141,
		MSRVMXTruePinBasedCtls: 0x0000007f00000016,
		MSRVMXTrueProcBasedCtl: 0xfff9fffe04006172,
		MSRVMXTrueExitCtls:     0x007fffff00036dfb,
		MSRVMXTrueEntryCtls:    0x0000ffff000011fb,
	}
}

// bochsSkylakeXMSRs: Bochs 2.7 corei7_skylake_x, every capability MSR as
// Caps.Dump printed it on the first VMX boot under Bochs.
func bochsSkylakeXMSRs() MSRMap {
	return MSRMap{
		MSRFeatureControl:      0x5,
		MSRVMXBasic:            0x00d810000000002b,
		MSRVMXPinBasedCtls:     0x0000007f00000016,
		MSRVMXProcBasedCtls:    0xf7f9fffe0401e172,
		MSRVMXExitCtls:         0x007fffff00036dff,
		MSRVMXEntryCtls:        0x0000ffff000011ff,
		MSRVMXMisc:             0x00000000600401e0,
		MSRVMXCR0Fixed0:        0x80000021,
		MSRVMXCR0Fixed1:        0xffffffff,
		MSRVMXCR4Fixed0:        0x2000,
		MSRVMXCR4Fixed1:        0x3727ff,
		MSRVMXVMCSEnum:         0x34,
		MSRVMXProcBasedCtls2:   0x02177fff00000000,
		MSRVMXEPTVPIDCap:       0x00000f0106334141,
		MSRVMXTruePinBasedCtls: 0x0000007f00000016,
		MSRVMXTrueProcBasedCtl: 0xf7f9fffe04006172,
		MSRVMXTrueExitCtls:     0x007fffff00036dfb,
		MSRVMXTrueEntryCtls:    0x0000ffff000011fb,
		MSRVMXVMFunc:           0x1,
	}
}

func TestDecodeBasic(t *testing.T) {
	tests := []struct {
		name string
		raw  uint64
		want Basic
	}{
		{"bochs skylake_x", 0x00d810000000002b, Basic{Revision: 0x2b, VMCSSize: 4096, MemType: 6,
			InsOutsInfo: true, TrueControls: true, Raw: 0x00d810000000002b}},
		{"sandy bridge", 0x00da040000000010, Basic{Revision: 0x10, VMCSSize: 1024, DualMonitor: true, MemType: 6,
			InsOutsInfo: true, TrueControls: true, Raw: 0x00da040000000010}},
		{"penryn", 0x005a08000000000d, Basic{Revision: 0xd, VMCSSize: 2048, DualMonitor: true, MemType: 6,
			InsOutsInfo: true, Raw: 0x005a08000000000d}},
		{"32-bit addresses, UC, no-error-code", 1<<48 | 1<<56 | 0x1000<<32 | 1, Basic{Revision: 1, VMCSSize: 4096,
			PhysAddr32: true, NoErrCodeReq: true, Raw: 1<<48 | 1<<56 | 0x1000<<32 | 1}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, DecodeBasic(tt.raw)); diff != "" {
			t.Errorf("%s: DecodeBasic(%#x) mismatch (-want +got):\n%s", tt.name, tt.raw, diff)
		}
	}
}

func TestDecodeMisc(t *testing.T) {
	tests := []struct {
		name string
		raw  uint64
		want Misc
	}{
		// Sandy Bridge: rate 5, LMA stored, HLT/shutdown/wait-for-SIPI, 4 CR3 targets, 512 MSRs, SMM VMXOFF.
		{"sandy bridge", 0x100401e5, Misc{PreemptionTimerRate: 5, StoresLMA: true, ActivityHLT: true,
			ActivityShutdown: true, ActivityWaitSIPI: true, CR3Targets: 4, MaxMSRListLen: 512,
			SMMVMXOFFUnblock: true, Raw: 0x100401e5}},
		// Skylake-class value from a VirtualBox log: adds PT, SMBASE read, VMWRITE-any, zero-length injection.
		{"skylake", 0x7004c1e7, Misc{PreemptionTimerRate: 7, StoresLMA: true, ActivityHLT: true,
			ActivityShutdown: true, ActivityWaitSIPI: true, PTInVMX: true, SMBASEReadInSMM: true, CR3Targets: 4,
			MaxMSRListLen: 512, SMMVMXOFFUnblock: true, VMWriteAnyField: true, InjectZeroLength: true, Raw: 0x7004c1e7}},
		{"penryn", 0x403c0, Misc{ActivityHLT: true, ActivityShutdown: true, ActivityWaitSIPI: true,
			CR3Targets: 4, MaxMSRListLen: 512, Raw: 0x403c0}},
		{"256 targets, 4096 MSRs, MSEG", 0x12345678_0f000000 | 1<<24, Misc{CR3Targets: 256, MaxMSRListLen: 4096,
			MSEGRevision: 0x12345678, Raw: 0x12345678_0f000000 | 1<<24}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, DecodeMisc(tt.raw)); diff != "" {
			t.Errorf("%s: DecodeMisc(%#x) mismatch (-want +got):\n%s", tt.name, tt.raw, diff)
		}
	}
}

func TestReadCaps(t *testing.T) {
	tests := []struct {
		name                              string
		msrs                              MSRMap
		ept, ug, vpid, timer, trueCtls    bool
		vmcsSize, maxIndex                uint32
		pinMust1, procMust1, procDefMust1 uint32
	}{
		{"penryn", penrynMSRs(), false, false, false, false, false, 2048, 0x16, 0x16, 0x0401e172, 0x0401e172},
		{"sandy bridge", sandyBridgeMSRs(), true, true, true, true, true, 1024, 0x15, 0x16, 0x04006172, 0x0401e172},
		{"bochs skylake_x", bochsSkylakeXMSRs(), true, true, true, true, true, 4096, 0x1a, 0x16, 0x04006172, 0x0401e172},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ReadCaps(tt.msrs)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{c.HasEPT(), c.HasUnrestrictedGuest(), c.HasVPID(), c.HasPreemptionTimer(),
				c.Basic.TrueControls, c.Basic.VMCSSize, c.VMCSMaxIndex, c.Pin.Must1, c.Proc.Must1, c.ProcDefault.Must1}
			want := []any{tt.ept, tt.ug, tt.vpid, tt.timer, tt.trueCtls, tt.vmcsSize, tt.maxIndex,
				tt.pinMust1, tt.procMust1, tt.procDefMust1}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("caps mismatch (-want +got):\n%s", diff)
			}
			if !c.VMXAllowed() {
				t.Error("VMX not allowed with IA32_FEATURE_CONTROL = 5")
			}
			// Every MSR read must be one the map holds, and the dump lists them all.
			if n := strings.Count(c.Dump(), "\n"); n != len(c.Raw) {
				t.Errorf("Dump has %d lines for %d MSRs", n, len(c.Raw))
			}
		})
	}
}

// TestReadCapsReadsOnlyExistingMSRs checks that ReadCaps never touches an
// MSR the CPU does not implement: the Penryn map lacks the TRUE, EPT_VPID,
// VMFUNC and tertiary MSRs, so reading any of them would fail.
func TestReadCapsReadsOnlyExistingMSRs(t *testing.T) {
	c, err := ReadCaps(penrynMSRs())
	if err != nil {
		t.Fatalf("ReadCaps(penryn) = %v", err)
	}
	for _, msr := range []uint32{MSRVMXTruePinBasedCtls, MSRVMXEPTVPIDCap, MSRVMXVMFunc, MSRVMXProcBasedCtls3, MSRVMXExitCtls2} {
		if _, ok := c.Raw[msr]; ok {
			t.Errorf("MSR %#x was read", msr)
		}
	}
	// Removing an MSR that must exist is an error naming it.
	m := sandyBridgeMSRs()
	delete(m, MSRVMXTrueExitCtls)
	if _, err := ReadCaps(m); err == nil || !errors.Is(err, ErrNoMSR) || !strings.Contains(err.Error(), "0x48f") {
		t.Errorf("ReadCaps without TRUE_EXIT_CTLS: err = %v", err)
	}
	m = sandyBridgeMSRs()
	m[MSRVMXBasic] = 0x00da000000000010 // VMCS size 0
	if _, err := ReadCaps(m); err == nil {
		t.Error("ReadCaps accepted a VMCS size of 0")
	}
}

func TestEPTVPIDCapBochs(t *testing.T) {
	c := EPTVPIDCap(0x00000f0106334141)
	for _, tt := range []struct {
		name string
		bit  uint64
		want bool
	}{
		{"execute-only", EPTCapExecuteOnly, true},
		{"walk 4", EPTCapWalk4, true},
		{"walk 5", EPTCapWalk5, false},
		{"UC", EPTCapUC, true},
		{"WB", EPTCapWB, true},
		{"2MB", EPTCap2MB, true},
		{"1GB", EPTCap1GB, true},
		{"INVEPT", EPTCapINVEPT, true},
		{"A/D", EPTCapAccessedDirty, true},
		{"advanced exit info", EPTCapAdvancedExitInfo, false},
		{"INVEPT single", EPTCapINVEPTSingle, true},
		{"INVEPT all", EPTCapINVEPTAll, true},
		{"INVVPID", VPIDCapINVVPID, true},
		{"INVVPID individual", VPIDCapIndividualAddr, true},
		{"INVVPID single", VPIDCapSingleContext, true},
		{"INVVPID all", VPIDCapAllContext, true},
		{"INVVPID single keep globals", VPIDCapSingleKeepGlobal, true},
	} {
		if got := c.Has(tt.bit); got != tt.want {
			t.Errorf("%s: Has = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFeatureControlEnable(t *testing.T) {
	tests := []struct {
		cur, next uint64
		write     bool
		err       error
	}{
		{0x5, 0x5, false, nil},
		{0x7, 0x7, false, nil},
		{0x0, 0x5, true, nil},
		{0x2, 0x7, true, nil},
		{0x1, 0x1, false, ErrVMXDisabled},
		{0x3, 0x3, false, ErrVMXDisabled}, // VMX only inside SMX
	}
	for _, tt := range tests {
		next, write, err := FeatureControlEnable(tt.cur)
		if next != tt.next || write != tt.write || !errors.Is(err, tt.err) {
			t.Errorf("FeatureControlEnable(%#x) = %#x, %v, %v; want %#x, %v, %v", tt.cur, next, write, err, tt.next, tt.write, tt.err)
		}
	}
}
