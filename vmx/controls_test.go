package vmx

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustCaps(t *testing.T, m MSRMap) *Caps {
	t.Helper()
	c, err := ReadCaps(m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// baseRequest is what the hypervisor asks for a 64-bit guest with EPT.
var baseRequest = ControlRequest{
	Pin:   Want{Required: PinExternalInterruptExiting | PinNMIExiting},
	Proc:  Want{Required: ProcHLTExiting | ProcUseIOBitmaps | ProcUseMSRBitmaps},
	Proc2: Want{Required: Proc2EnableEPT | Proc2EnableVPID | Proc2UnrestrictedGuest},
	Exit:  Want{Required: ExitHostAddressSpaceSize | ExitAckInterruptOnExit},
	Entry: Want{Required: EntryIA32eModeGuest},
}

func TestComputeControlsSandyBridge(t *testing.T) {
	c := mustCaps(t, sandyBridgeMSRs())
	got, err := ComputeControls(c, baseRequest)
	if err != nil {
		t.Fatal(err)
	}
	// Worked by hand from the MSR values. With TRUE controls the default1
	// bits that are real controls (CR3-load/store exiting, save/load debug
	// controls) are 0 because we did not ask for them; the reserved
	// default1 bits stay 1.
	want := Controls{
		Pin:   0x16 | 0x1 | 0x8,               // default1 1,2,4 + ext-int + NMI
		Proc:  0x04006172 | 0x80 | 0x92000000, // TRUE must1 + HLT + I/O, MSR bitmaps + secondary
		Proc2: 0x2 | 0x20 | 0x80,              // EPT, VPID, UG
		Exit:  0x36dfb | 0x200 | 0x8000,       // TRUE must1 + host 64-bit + ack
		Entry: 0x11fb | 0x200,                 // TRUE must1 + IA-32e guest
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("controls mismatch (-want +got):\n%s", diff)
	}
	if got.Proc&(ProcCR3LoadExiting|ProcCR3StoreExiting) != 0 {
		t.Error("CR3 exiting kept although TRUE controls allow clearing it")
	}
}

func TestComputeControlsOlderCPUForcesDefault1(t *testing.T) {
	c := mustCaps(t, penrynMSRs())
	req := baseRequest
	req.Proc2 = Want{Optional: Proc2EnableEPT | Proc2EnableVPID | Proc2UnrestrictedGuest}
	got, err := ComputeControls(c, req)
	if err != nil {
		t.Fatal(err)
	}
	// Without TRUE MSRs every default1 bit is forced: CR3-load/store exiting
	// and save/load debug controls are 1; nothing of the secondary wish list
	// exists, so the secondary vector is not activated.
	want := Controls{
		Pin:   0x16 | 0x9,
		Proc:  0x0401e172 | 0x80 | 0x12000000,
		Proc2: 0,
		Exit:  0x36dff | 0x8200,
		Entry: 0x11ff | 0x200,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("controls mismatch (-want +got):\n%s", diff)
	}
}

func TestComputeControlsMissing(t *testing.T) {
	tests := []struct {
		name string
		msrs MSRMap
		req  ControlRequest
		want []string
	}{
		{"penryn lacks EPT, VPID, UG", penrynMSRs(), baseRequest, []string{
			`vmx: CPU lacks required secondary control "enable EPT"`,
			`vmx: CPU lacks required secondary control "enable VPID"`,
			`vmx: CPU lacks required secondary control "unrestricted guest"`,
		}},
		{"penryn lacks preemption timer and MTF", penrynMSRs(), ControlRequest{
			Pin:  Want{Required: PinPreemptionTimer},
			Proc: Want{Required: ProcMonitorTrapFlag},
		}, []string{
			`vmx: CPU lacks required pin-based control "activate VMX-preemption timer"`,
			`vmx: CPU lacks required primary processor-based control "monitor trap flag"`,
		}},
		{"sandy bridge lacks tertiary controls", sandyBridgeMSRs(), ControlRequest{
			Proc3: Want64{Required: Proc3IPIVirtualization},
		}, []string{
			`vmx: CPU lacks required primary processor-based control "activate tertiary controls"`,
			`vmx: CPU lacks required tertiary control "IPI virtualization"`,
		}},
		{"sandy bridge lacks VMCS shadowing and PML", sandyBridgeMSRs(), ControlRequest{
			Proc2: Want{Required: Proc2EnableEPT | Proc2VMCSShadowing | Proc2EnablePML},
		}, []string{
			`vmx: CPU lacks required secondary control "VMCS shadowing"`,
			`vmx: CPU lacks required secondary control "enable PML"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ComputeControls(mustCaps(t, tt.msrs), tt.req)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMissingControl) {
				t.Errorf("error %v does not wrap ErrMissingControl", err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeControlsBochsOptional(t *testing.T) {
	c := mustCaps(t, bochsSkylakeXMSRs())
	req := baseRequest
	req.Pin.Optional = PinPreemptionTimer | PinPostedInterrupts // posted interrupts: not in the pin MSR
	req.Proc2.Optional = Proc2EnableRDTSCP | Proc2EnableINVPCID | Proc2EnableXSAVES | Proc2ModeBasedExecute
	got, err := ComputeControls(c, req)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Has(SetPin, uint64(PinPreemptionTimer)) || got.Has(SetPin, uint64(PinPostedInterrupts)) {
		t.Errorf("pin = %#x: want preemption timer, no posted interrupts", got.Pin)
	}
	wantProc2 := Proc2EnableEPT | Proc2EnableVPID | Proc2UnrestrictedGuest | Proc2EnableRDTSCP |
		Proc2EnableINVPCID | Proc2EnableXSAVES
	if got.Proc2 != wantProc2 {
		t.Errorf("proc2 = %#x, want %#x (no MBEC in Bochs' CTLS2)", got.Proc2, wantProc2)
	}
}

func TestControlName(t *testing.T) {
	for _, tt := range []struct {
		set  ControlSet
		bit  uint
		want string
	}{
		{SetProc2, 1, "enable EPT"},
		{SetProc, 31, "activate secondary controls"},
		{SetEntry, 9, "IA-32e mode guest"},
		{SetExit, 15, "acknowledge interrupt on exit"},
		{SetPin, 1, "bit 1"},
		{ControlSet(99), 0, "bit 0"},
	} {
		if got := ControlName(tt.set, tt.bit); got != tt.want {
			t.Errorf("ControlName(%v, %d) = %q, want %q", tt.set, tt.bit, got, tt.want)
		}
	}
	// The named constants and the name table must agree bit for bit.
	for _, tt := range []struct {
		set  ControlSet
		mask uint32
	}{
		{SetPin, PinExternalInterruptExiting | PinNMIExiting | PinVirtualNMIs | PinPreemptionTimer | PinPostedInterrupts},
		{SetExit, ExitSaveDebugControls | ExitHostAddressSpaceSize | ExitLoadPerfGlobalCtrl | ExitAckInterruptOnExit |
			ExitSavePAT | ExitLoadPAT | ExitSaveEFER | ExitLoadEFER | ExitSavePreemptionTimer | ExitClearBNDCFGS |
			ExitConcealVMXFromPT | ExitClearRTITCtl | ExitClearLBRCtl | ExitClearUINV | ExitLoadCETState |
			ExitLoadPKRS | ExitSavePerfGlobalCtrl | ExitActivateSecondary},
		{SetEntry, EntryLoadDebugControls | EntryIA32eModeGuest | EntryToSMM | EntryDeactivateDualMon |
			EntryLoadPerfGlobalCtrl | EntryLoadPAT | EntryLoadEFER | EntryLoadBNDCFGS | EntryConcealVMXFromPT |
			EntryLoadRTITCtl | EntryLoadUINV | EntryLoadCETState | EntryLoadLBRCtl | EntryLoadPKRS},
	} {
		if got := knownControls(tt.set); got != uint64(tt.mask) {
			t.Errorf("%v: named bits %#x, constants %#x", tt.set, got, tt.mask)
		}
	}
}

// TestDefault1Classes checks the default1 masks against the bit lists of SDM
// A.3.1 (pin: 1, 2, 4), A.3.2 (primary: 1, 4-6, 8, 13-16, 26), A.4.1 (exit:
// 0-8, 10, 11, 13, 14, 16, 17) and A.5 (entry: 0-8, 12), and against the
// Penryn MSRs, whose must-be-1 halves are exactly these classes.
func TestDefault1Classes(t *testing.T) {
	bitsOf := func(list ...uint) uint32 {
		var m uint32
		for _, b := range list {
			m |= 1 << b
		}
		return m
	}
	for _, tt := range []struct {
		name      string
		got, want uint32
		msr       uint32
	}{
		{"pin", PinDefault1, bitsOf(1, 2, 4), MSRVMXPinBasedCtls},
		{"proc", ProcDefault1, bitsOf(1, 4, 5, 6, 8, 13, 14, 15, 16, 26), MSRVMXProcBasedCtls},
		{"exit", ExitDefault1, bitsOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17), MSRVMXExitCtls},
		{"entry", EntryDefault1, bitsOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 12), MSRVMXEntryCtls},
	} {
		if tt.got != tt.want {
			t.Errorf("%s default1 = %#x, manual %#x", tt.name, tt.got, tt.want)
		}
		if must1 := uint32(penrynMSRs()[tt.msr]); must1 != tt.want {
			t.Errorf("%s: Penryn must-be-1 bits %#x differ from default1 %#x", tt.name, must1, tt.want)
		}
	}
}

func TestFixedCRBits(t *testing.T) {
	c := mustCaps(t, bochsSkylakeXMSRs())
	tests := []struct {
		name         string
		cr0          uint64
		unrestricted bool
		wantFixed    uint64
		wantErr      bool
	}{
		{"real mode restricted", 0x10, false, 0x80000031, true},
		{"real mode unrestricted", 0x30, true, 0x30, false},
		{"real mode unrestricted without NE", 0x10, true, 0x30, true},
		{"protected no paging unrestricted", 0x31, true, 0x31, false},
		{"long mode", 0x80050033, false, 0x80050033, false},
		{"NE clear", 0x80000011, true, 0x80000031, true},
		{"high bits", 1<<32 | 0x80000031, false, 0x80000031, true},
	}
	for _, tt := range tests {
		if got := c.FixCR0(tt.cr0, tt.unrestricted); got != tt.wantFixed {
			t.Errorf("%s: FixCR0(%#x) = %#x, want %#x", tt.name, tt.cr0, got, tt.wantFixed)
		}
		if err := c.CheckCR0(tt.cr0, tt.unrestricted); (err != nil) != tt.wantErr {
			t.Errorf("%s: CheckCR0(%#x) = %v, want error %v", tt.name, tt.cr0, err, tt.wantErr)
		}
		if err := c.CheckCR0(c.FixCR0(tt.cr0, tt.unrestricted), tt.unrestricted); err != nil {
			t.Errorf("%s: fixed CR0 fails the check: %v", tt.name, err)
		}
	}
	// CR4: VMXE is forced on; bit 22 (PKS) is not in Bochs' fixed1 0x3727ff.
	if got := c.FixCR4(0x20); got != 0x2020 {
		t.Errorf("FixCR4(PAE) = %#x, want 0x2020", got)
	}
	if err := c.CheckCR4(0x20); err == nil {
		t.Error("CR4 without VMXE accepted")
	}
	if err := c.CheckCR4(0x2020 | 1<<22); err == nil {
		t.Error("CR4 with a fixed-0 bit accepted")
	}
	if got := c.FixCR4(0x2020 | 1<<22); got != 0x2020 {
		t.Errorf("FixCR4 kept a fixed-0 bit: %#x", got)
	}
}
