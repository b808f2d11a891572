package vmx

import (
	"errors"
	"strings"
	"testing"
)

func flat(sel uint16, ar uint32) Segment {
	return Segment{Selector: sel, Limit: 0xFFFF_FFFF, AccessRights: ar | ARG}
}

// longModeState is a valid 64-bit guest and host under Bochs skylake_x caps.
func longModeState(t *testing.T, c *Caps) *EntryState {
	t.Helper()
	ctl, err := ComputeControls(c, ControlRequest{
		Pin:   Want{Required: PinExternalInterruptExiting | PinNMIExiting | PinVirtualNMIs},
		Proc:  Want{Required: ProcHLTExiting | ProcUseIOBitmaps | ProcUseMSRBitmaps},
		Proc2: Want{Required: Proc2EnableEPT | Proc2EnableVPID | Proc2UnrestrictedGuest},
		Exit:  Want{Required: ExitHostAddressSpaceSize | ExitAckInterruptOnExit | ExitLoadEFER | ExitSaveEFER},
		Entry: Want{Required: EntryIA32eModeGuest | EntryLoadEFER},
	})
	if err != nil {
		t.Fatal(err)
	}
	eptp, err := MakeEPTP(0x20_0000, 4, MemWB, false, c.EPTVPID)
	if err != nil {
		t.Fatal(err)
	}
	code := ARS | ARPresent | ARCode | ARReadable | ARAccessed | ARL // type 11, L
	data := ARS | ARPresent | ARReadable | ARAccessed                // type 3
	return &EntryState{
		Controls: ctl, IOBitmapA: 0x1000, IOBitmapB: 0x2000, MSRBitmap: 0x3000, EPTP: eptp, VPID: 1,
		Guest: GuestState{
			CR0: 0x8005_0033, CR3: 0x10_0000, CR4: 0x2020, DR7: 0x400,
			RIP: 0xFFFF_FFFF_8000_0000, RFLAGS: 0x202, EFER: EFERLME | EFERLMA | EFERSCE,
			CS: flat(0x8, code), SS: flat(0x10, data), DS: flat(0x10, data), ES: flat(0x10, data),
			FS: flat(0, ARUnusable), GS: Segment{AccessRights: ARUnusable, Base: 0xFFFF_8800_0000_0000},
			LDTR:      Segment{AccessRights: ARUnusable},
			TR:        Segment{Selector: 0x18, Base: 0x5000, Limit: 0x67, AccessRights: 11 | ARPresent},
			GDTRLimit: 0x27, IDTRLimit: 0xFFF, LinkPointer: ^uint64(0),
		},
		Host: HostState{
			CR0: 0x8005_0033, CR3: 0x1000, CR4: 0x2020, CS: 0x8, SS: 0x10, DS: 0x10, ES: 0x10, TR: 0x18,
			RIP: 0x20_1000, EFER: EFERLME | EFERLMA | EFERNXE | EFERSCE, TRBase: 0x4000,
		},
		PhysAddrBits: 46,
	}
}

// realModeState is a valid unrestricted-guest real-mode state (the reset
// state of an AP or of a BIOS guest).
func realModeState(t *testing.T, c *Caps) *EntryState {
	s := longModeState(t, c)
	s.Controls.Entry &^= EntryIA32eModeGuest
	rm := func(sel uint16, typ uint32) Segment {
		return Segment{Selector: sel, Base: uint64(sel) << 4, Limit: 0xFFFF, AccessRights: typ | ARS | ARPresent}
	}
	s.Guest = GuestState{
		CR0: 0x30, CR4: 0x2000, DR7: 0x400, RIP: 0xFFF0, RFLAGS: 0x2,
		CS: rm(0xF000, 11), SS: rm(0, 3), DS: rm(0, 3), ES: rm(0, 3), FS: rm(0, 3), GS: rm(0, 3),
		LDTR:      Segment{Limit: 0xFFFF, AccessRights: 2 | ARPresent},
		TR:        Segment{Limit: 0xFFFF, AccessRights: 3 | ARPresent},
		GDTRLimit: 0xFFFF, IDTRLimit: 0xFFFF, LinkPointer: ^uint64(0),
	}
	return s
}

func TestCheckEntryValid(t *testing.T) {
	c := mustCaps(t, bochsSkylakeXMSRs())
	for name, s := range map[string]*EntryState{"long mode": longModeState(t, c), "real mode UG": realModeState(t, c)} {
		if err := CheckEntry(c, s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckEntryFailures(t *testing.T) {
	c := mustCaps(t, bochsSkylakeXMSRs())
	tests := []struct {
		name    string
		real    bool
		mutate  func(s *EntryState)
		kind    EntryCheckKind
		section string
		text    string
	}{
		{"pin reserved bit cleared", false, func(s *EntryState) { s.Controls.Pin &^= 1 << 1 }, CheckControls, "27.2.1.1", "pin-based VM-execution controls"},
		{"unsupported secondary bit", false, func(s *EntryState) { s.Controls.Proc2 |= Proc2ModeBasedExecute }, CheckControls, "27.2.1.1", "secondary processor-based"},
		{"too many CR3 targets", false, func(s *EntryState) { s.CR3TargetCount = 5 }, CheckControls, "27.2.1.1", "CR3-target count"},
		{"unaligned I/O bitmap", false, func(s *EntryState) { s.IOBitmapB = 0x2010 }, CheckControls, "27.2.1.1", "I/O-bitmap address"},
		{"virtual NMIs without NMI exiting", false, func(s *EntryState) { s.Controls.Pin &^= PinNMIExiting }, CheckControls, "27.2.1.1", `"virtual NMIs" must be 0`},
		{"VPID 0", false, func(s *EntryState) { s.VPID = 0 }, CheckControls, "27.2.1.1", "VPID must not be 0000H"},
		{"EPTP 5-level", false, func(s *EntryState) { s.EPTP = 0x20_0000 | 6 | 4<<3 }, CheckControls, "27.2.1.1", "EPT pointer"},
		{"EPTP WT", false, func(s *EntryState) { s.EPTP = 0x20_0000 | 4 | 3<<3 }, CheckControls, "27.2.1.1", "EPT pointer"},
		{"UG without EPT", false, func(s *EntryState) { s.Controls.Proc2 &^= Proc2EnableEPT }, CheckControls, "27.2.1.1", `"unrestricted guest"`},
		{"save timer without timer", false, func(s *EntryState) { s.Controls.Exit |= ExitSavePreemptionTimer }, CheckControls, "27.2.1.2", "save VMX-preemption timer"},
		{"entry to SMM", false, func(s *EntryState) { s.Controls.Entry |= EntryToSMM }, CheckControls, "27.2.1.3", "entry to SMM"},
		{"#GP injected without error code", false, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventHardwareException, 13, false)
		}, CheckControls, "27.2.1.3", "deliver-error-code"},
		{"#UD injected with error code", false, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventHardwareException, 6, true)
		}, CheckControls, "27.2.1.3", "deliver-error-code"},
		{"#GP in real mode with error code", true, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventHardwareException, 13, true)
		}, CheckControls, "27.2.1.3", "deliver-error-code"},
		{"NMI with wrong vector", false, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventNMI, 3, false)
		}, CheckControls, "27.2.1.3", "vector 2"},
		{"INT n with length 16", false, func(s *EntryState) {
			// Bochs sets IA32_VMX_MISC bit 30, so length 0 is allowed there;
			// 16 is out of range everywhere.
			s.EntryInterruption = MakeEntryInterruption(EventSoftwareInterrupt, 0x80, false)
			s.EntryInstrLength = 16
		}, CheckControls, "27.2.1.3", "instruction length"},
		{"host CR4 without VMXE", false, func(s *EntryState) { s.Host.CR4 = 0x20 }, CheckHostState, "27.2.2", "CR4 field"},
		{"host EFER.LMA clear", false, func(s *EntryState) { s.Host.EFER &^= EFERLMA }, CheckHostState, "27.2.2", "EFER.LMA"},
		{"host TR selector 0", false, func(s *EntryState) { s.Host.TR = 0 }, CheckHostState, "27.2.3", "TR must not be 0000H"},
		{"host CS RPL", false, func(s *EntryState) { s.Host.CS = 0xB }, CheckHostState, "27.2.3", "RPL"},
		{"host GS base noncanonical", false, func(s *EntryState) { s.Host.GSBase = 0x0000_8000_0000_0000 }, CheckHostState, "27.2.3", "canonical"},
		{"32-bit host", false, func(s *EntryState) {
			s.Controls.Exit &^= ExitHostAddressSpaceSize
			s.Host.EFER &^= EFERLMA | EFERLME
		}, CheckHostState, "27.2.4", "host address-space size"},
		{"guest real mode without UG", true, func(s *EntryState) { s.Controls.Proc2 &^= Proc2UnrestrictedGuest }, CheckGuestState, "27.3.1.1", "CR0 field"},
		{"guest PG without PE", true, func(s *EntryState) { s.Guest.CR0 |= CR0PG }, CheckGuestState, "27.3.1.1", "PG"},
		{"IA-32e guest without PAE", false, func(s *EntryState) { s.Guest.CR4 &^= CR4PAE }, CheckGuestState, "27.3.1.1", "CR4.PAE"},
		{"EFER.LMA vs IA-32e mode guest", false, func(s *EntryState) { s.Guest.EFER &^= EFERLMA }, CheckGuestState, "27.3.1.1", "EFER.LMA"},
		{"guest CR3 beyond MAXPHYADDR", false, func(s *EntryState) { s.Guest.CR3 = 1 << 46 }, CheckGuestState, "27.3.1.1", "CR3"},
		{"TR TI set", false, func(s *EntryState) { s.Guest.TR.Selector |= 4 }, CheckGuestState, "27.3.1.2", "TR: the TI flag"},
		{"SS RPL differs from CS RPL", false, func(s *EntryState) {
			s.Controls.Proc2 &^= Proc2UnrestrictedGuest
			s.Guest.SS.Selector |= 3
		}, CheckGuestState, "27.3.1.2", "RPL must equal the RPL of CS"},
		{"CS data segment without UG", false, func(s *EntryState) {
			s.Controls.Proc2 &^= Proc2UnrestrictedGuest
			s.Guest.CS.AccessRights = s.Guest.CS.AccessRights&^ARTypeMask | 3
		}, CheckGuestState, "27.3.1.2", "CS: the type"},
		{"CS L and D", false, func(s *EntryState) { s.Guest.CS.AccessRights |= ARDB }, CheckGuestState, "27.3.1.2", "D/B must be 0"},
		{"SS not present", false, func(s *EntryState) { s.Guest.SS.AccessRights &^= ARPresent }, CheckGuestState, "27.3.1.2", "(P)"},
		{"G bit vs limit", false, func(s *EntryState) { s.Guest.DS.Limit = 0xFFFF_F000 }, CheckGuestState, "27.3.1.2", "G bit"},
		{"TR 32-bit TSS in IA-32e mode", false, func(s *EntryState) { s.Guest.TR.AccessRights = 3 | ARPresent }, CheckGuestState, "27.3.1.2", "TR: in IA-32e mode"},
		{"v8086 bad base", true, func(s *EntryState) {
			s.Guest.CR0 |= CR0PE
			s.Guest.RFLAGS |= RFLAGSVM
			for _, seg := range []*Segment{&s.Guest.CS, &s.Guest.SS, &s.Guest.DS, &s.Guest.ES, &s.Guest.FS, &s.Guest.GS} {
				seg.AccessRights = 0xF3
			}
			s.Guest.DS.Base = 0x1234
		}, CheckGuestState, "27.3.1.2", "virtual-8086 mode, the base"},
		{"GDTR limit high bits", false, func(s *EntryState) { s.Guest.GDTRLimit = 0x1_0000 }, CheckGuestState, "27.3.1.3", "GDTR and IDTR limit"},
		{"RFLAGS bit 1 clear", false, func(s *EntryState) { s.Guest.RFLAGS = 0x200 }, CheckGuestState, "27.3.1.4", "RFLAGS"},
		{"VM in real mode", true, func(s *EntryState) {
			s.Guest.RFLAGS |= RFLAGSVM
			for _, seg := range []*Segment{&s.Guest.CS, &s.Guest.SS, &s.Guest.DS, &s.Guest.ES, &s.Guest.FS, &s.Guest.GS} {
				seg.AccessRights = 0xF3
			}
		}, CheckGuestState, "27.3.1.4", "RFLAGS.VM"},
		{"RIP high bits in real mode", true, func(s *EntryState) { s.Guest.RIP = 1 << 32 }, CheckGuestState, "27.3.1.4", "RIP"},
		{"external interrupt with IF clear", false, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventExternalInterrupt, 0x20, false)
			s.Guest.RFLAGS = 0x2
		}, CheckGuestState, "27.3.1.4", "RFLAGS.IF"},
		{"activity state 4", false, func(s *EntryState) { s.Guest.ActivityState = 4 }, CheckGuestState, "27.3.1.5", "0-3"},
		{"real-mode SS.DPL 3", true, func(s *EntryState) {
			s.Guest.SS.AccessRights |= 3 << ARDPLShift
			s.Guest.CS.AccessRights |= 3 << ARDPLShift
		},
			CheckGuestState, "27.3.1.2", "SS: if the CS type is 3 or CR0.PE is 0"},
		{"HLT at CPL 3", false, func(s *EntryState) {
			s.Guest.ActivityState = ActivityHLT
			s.Guest.CS.Selector, s.Guest.CS.AccessRights = 0x2B, s.Guest.CS.AccessRights|3<<ARDPLShift
			s.Guest.SS.Selector, s.Guest.SS.AccessRights = 0x33, s.Guest.SS.AccessRights|3<<ARDPLShift
		}, CheckGuestState, "27.3.1.5", "must not be HLT"},
		{"STI and MOV SS blocking", false, func(s *EntryState) { s.Guest.Interruptibility = 3 }, CheckGuestState, "27.3.1.5", "must not both be 1"},
		{"STI blocking with IF clear", false, func(s *EntryState) {
			s.Guest.RFLAGS = 0x2
			s.Guest.Interruptibility = BlockingBySTI
		}, CheckGuestState, "27.3.1.5", "RFLAGS.IF is 0"},
		{"NMI injected while NMI blocked", false, func(s *EntryState) {
			s.EntryInterruption = MakeEntryInterruption(EventNMI, 2, false)
			s.Guest.Interruptibility = BlockingByNMI
		}, CheckGuestState, "27.3.1.5", "blocking by NMI"},
		{"pending debug reserved", false, func(s *EntryState) { s.Guest.PendingDebug = 1 << 4 }, CheckGuestState, "27.3.1.5", "pending debug"},
		{"TF single-step in STI shadow without BS", false, func(s *EntryState) {
			s.Guest.RFLAGS |= RFLAGSTF
			s.Guest.Interruptibility = BlockingBySTI
		}, CheckGuestState, "27.3.1.5", "BS (bit 14)"},
		{"VMCS link pointer zero", false, func(s *EntryState) { s.Guest.LinkPointer = 0 }, CheckGuestState, "27.3.1.5", "VMCS link pointer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := longModeState(t, c)
			if tt.real {
				s = realModeState(t, c)
			}
			tt.mutate(s)
			err := CheckEntry(c, s)
			var ce *EntryCheckError
			if !errors.As(err, &ce) || !errors.Is(err, ErrEntryCheck) {
				t.Fatalf("CheckEntry = %v, want an EntryCheckError", err)
			}
			if ce.Kind != tt.kind || ce.Section != tt.section || !strings.Contains(ce.Error(), tt.text) {
				t.Errorf("got kind %d %v\nwant kind %d section %s containing %q", ce.Kind, err, tt.kind, tt.section, tt.text)
			}
		})
	}
}

func TestCheckEntryOlderCPU(t *testing.T) {
	// On Penryn (no TRUE controls) the controls ComputeControls returns pass
	// the control checks, and clearing a default1 bit fails them.
	c := mustCaps(t, penrynMSRs())
	ctl, err := ComputeControls(c, ControlRequest{
		Pin:   Want{Required: PinExternalInterruptExiting},
		Exit:  Want{Required: ExitHostAddressSpaceSize},
		Entry: Want{Required: EntryIA32eModeGuest},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := longModeState(t, mustCaps(t, bochsSkylakeXMSRs()))
	s.Controls = ctl
	s.Guest.EFER, s.Host.EFER = 0, 0
	if err := CheckEntry(c, s); err != nil {
		t.Fatalf("Penryn state: %v", err)
	}
	s.Controls.Proc &^= ProcCR3LoadExiting
	var ce *EntryCheckError
	if err := CheckEntry(c, s); !errors.As(err, &ce) || ce.Section != "27.2.1.1" || !strings.Contains(ce.Detail, "must be 1") {
		t.Errorf("clearing CR3-load exiting without TRUE controls: %v", err)
	}
}

// FuzzCheckEntry perturbs a valid guest state with arbitrary values (as a
// nested guest hypervisor could) and checks the checker never panics and
// either accepts or names a check with a section.
func FuzzCheckEntry(f *testing.F) {
	f.Add(uint64(0x8005_0033), uint64(0x202), uint32(0xA09B), uint32(0), uint64(0), uint32(0x8000_0B0E))
	f.Fuzz(func(t *testing.T, cr0, rflags uint64, csAR, activity uint32, pending uint64, inject uint32) {
		c := mustCaps(t, bochsSkylakeXMSRs())
		s := longModeState(t, c)
		s.Guest.CR0, s.Guest.RFLAGS, s.Guest.CS.AccessRights = cr0, rflags, csAR
		s.Guest.ActivityState, s.Guest.PendingDebug = activity, pending
		s.EntryInterruption = InterruptionInfo(inject)
		s.EntryInstrLength = activity & 0x1F
		err := CheckEntry(c, s)
		if err == nil {
			return
		}
		var ce *EntryCheckError
		if !errors.As(err, &ce) || ce.Section == "" || ce.Check == "" {
			t.Fatalf("unnamed failure %v", err)
		}
	})
}
