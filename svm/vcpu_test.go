package svm

import (
	"testing"

	"hv/vmm"
)

func TestDecodeExitToNeutral(t *testing.T) {
	tests := []struct {
		name  string
		code  uint64
		info1 uint64
		info2 uint64
		nrips bool
		want  vmm.Exit
	}{
		{"cpuid without NRIP", uint64(ExitCPUID), 0, 0, false, vmm.Exit{Reason: vmm.ExitCPUID}},
		{"cpuid with NRIP", uint64(ExitCPUID), 0, 0, true, vmm.Exit{Reason: vmm.ExitCPUID, NextRIP: 0x8002}},
		{"out dx, al", uint64(ExitIOIO), 0xE9<<16 | 1<<4, 0x8005, false,
			vmm.Exit{Reason: vmm.ExitIO, IO: vmm.IOAccess{Port: 0xE9, Size: 1}, NextRIP: 0x8005}},
		{"in eax, dx", uint64(ExitIOIO), 0x3F8<<16 | 1<<6 | 1, 0x8002, false,
			vmm.Exit{Reason: vmm.ExitIO, IO: vmm.IOAccess{Port: 0x3F8, Size: 4, In: true}, NextRIP: 0x8002}},
		{"npf write", uint64(ExitNPF), 0x7, 0xFED00000, false, vmm.Exit{Reason: vmm.ExitMMIO, GPA: 0xFED00000, Write: true}},
		{"shutdown", uint64(ExitShutdown), 0, 0, false, vmm.Exit{Reason: vmm.ExitShutdown}},
		{"wrmsr", uint64(ExitMSR), 1, 0, true, vmm.Exit{Reason: vmm.ExitMSRWrite, Write: true, MSR: 0x277, NextRIP: 0x8002}},
		{"rdmsr", uint64(ExitMSR), 0, 0, true, vmm.Exit{Reason: vmm.ExitMSRRead, MSR: 0x277, NextRIP: 0x8002}},
		{"intr", uint64(ExitINTR), 0, 0, false, vmm.Exit{Reason: vmm.ExitExternalInterrupt}},
		{"vmrun", uint64(ExitVMRUN), 0, 0, false, vmm.Exit{Reason: vmm.ExitVirtInstr}},
		{"vmmcall", uint64(ExitVMMCALL), 0, 0, true, vmm.Exit{Reason: vmm.ExitHypercall, NextRIP: 0x8002}},
		{"#GP intercept", uint64(ExitExcpN(13)), 0x10, 0, false, vmm.Exit{Reason: vmm.ExitException, Vector: 13, ErrCode: 0x10, HasError: true}},
		{"QEMU's VMEXIT_INVALID", 0x00000000FFFFFFFF, 0, 0, false, vmm.Exit{Reason: vmm.ExitInvalidState}},
	}
	for _, tt := range tests {
		v := &VCPU{b: &Backend{nrips: tt.nrips}, vmcb: &VMCB{}}
		v.gprs.rcx = 0x277
		c := &v.vmcb.Control
		c.ExitCode, c.ExitInfo1, c.ExitInfo2, c.NRIP = tt.code, tt.info1, tt.info2, 0x8002
		got, err := v.decodeExit()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		tt.want.Raw = uint64(NormalizeExitCode(tt.code))
		tt.want.Qual, tt.want.Info2 = tt.info1, tt.info2
		got.Detail = ""
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestInvalidReason(t *testing.T) {
	v := &VCPU{b: &Backend{}, vmcb: &VMCB{}}
	v.reset()
	v.vmcb.Control.InterceptMisc2 = InterceptVMRUN
	v.vmcb.Control.GuestASID = 1
	if r := v.invalidReason(); r != "a check that software cannot see (event injection or segment state)" {
		t.Errorf("reset state reported invalid: %s", r)
	}
	v.vmcb.Save.CR0 = v.vmcb.Save.CR0&^(1<<30) | 1<<29
	if r := v.invalidReason(); r != "CR0.CD is zero and CR0.NW is set" {
		t.Errorf("CD=0 NW=1: %s", r)
	}
	v.reset()
	v.vmcb.Save.EFER = 0
	if r := v.invalidReason(); r != "EFER.SVME is zero" {
		t.Errorf("SVME clear: %s", r)
	}
}

func TestSegmentRoundTrip(t *testing.T) {
	v := &VCPU{b: &Backend{}, vmcb: &VMCB{}}
	v.reset()
	s := v.SRegs()
	s.CS = vmm.Segment{Selector: 8, Attrib: 0xA9B, Limit: 0xFFFFFFFF}
	s.EFER = 1<<8 | 1<<10
	v.SetSRegs(s)
	if v.vmcb.Save.EFER&EFERSVME == 0 {
		t.Error("SetSRegs cleared EFER.SVME in the VMCB")
	}
	got := v.SRegs()
	if got.EFER&EFERSVME != 0 {
		t.Error("the guest sees EFER.SVME")
	}
	if got.CS != s.CS {
		t.Errorf("CS %+v, want %+v", got.CS, s.CS)
	}
}
