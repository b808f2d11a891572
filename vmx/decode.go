package vmx

import (
	"fmt"

	"hv/vmm"
)

// This file is the pure part of the vCPU: exit decoding into vmm.Exit,
// segment conversion and the VMCS view the entry checks read. It runs on
// the host in tests.

// vmm.Segment.Attrib packs the descriptor attributes as the VMCB does
// (APM vol. 2 15.5.1): type, S, DPL, P in bits 7:0 and AVL, L, D/B, G in
// bits 11:8. VMX access rights (SDM 25.4.1 Table 25-2) keep bits 7:0 and
// move the upper four to bits 15:12, and add "unusable" in bit 16, which a
// segment register has after being loaded with a null selector.
const attribPresent = 1 << 7

// accessRights converts VMCB-style attributes to VMX access rights. A
// segment that is not present becomes unusable: that is what VM exits
// report for a null selector, and entry checks skip unusable segments.
func accessRights(attrib uint16) uint32 {
	ar := uint32(attrib&0xFF) | uint32(attrib&0xF00)<<4
	if attrib&attribPresent == 0 {
		ar |= ARUnusable
	}
	return ar
}

// attributes converts VMX access rights back. An unusable segment reads as
// not present, keeping its type, S and DPL (SS.DPL is the CPL even when SS
// is unusable, SDM 28.3.1).
func attributes(ar uint32) uint16 {
	a := uint16(ar&0xFF) | uint16(ar>>4&0xF00)
	if ar&ARUnusable != 0 {
		a &^= attribPresent
	}
	return a
}

// execMode is the width of the code the guest ran at the exit: 64 in
// 64-bit mode, else 32 or 16 from CS.D.
func execMode(ia32e bool, csAR uint32) int {
	switch {
	case ia32e && csAR&ARL != 0:
		return 64
	case csAR&ARDB != 0:
		return 32
	}
	return 16
}

// nextRIP is the address after an instruction of length n at rip, wrapped
// as the instruction pointer wraps in the given mode.
func nextRIP(rip uint64, n uint32, mode int) uint64 {
	next := rip + uint64(n)
	switch mode {
	case 16:
		return next & 0xFFFF
	case 32:
		return next & 0xFFFF_FFFF
	}
	return next
}

// exitFields are the VMCS exit-information fields and guest state that
// exit decoding reads (SDM 25.9).
type exitFields struct {
	Reason    ExitReasonField
	Qual      uint64
	InstrLen  uint32
	IntInfo   InterruptionInfo // VM-exit interruption information
	IntError  uint32
	GPA       uint64 // guest-physical address (EPT violations and misconfigurations)
	RIP       uint64
	Mode      int    // execMode at the exit
	RCX       uint64 // the MSR index of RDMSR/WRMSR
	EntryFail string // for entry failures: what the software check found, if anything
}

// errorCodeExceptions are the vectors that push an error code (SDM Vol. 3A
// 6.3.1 Table 6-1): #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP.
func errorCodeException(v uint8) bool {
	switch v {
	case 8, 10, 11, 12, 13, 14, 17, 21:
		return true
	}
	return false
}

// decodeExit translates a VM exit into a vmm.Exit. Exits the backend
// handles itself (control-register accesses) never reach it.
func decodeExit(f exitFields) vmm.Exit {
	basic := f.Reason.Basic()
	ex := vmm.Exit{Raw: uint64(f.Reason), Qual: f.Qual}
	next := func() uint64 { return nextRIP(f.RIP, f.InstrLen, f.Mode) }
	if f.Reason.EntryFailure() {
		ex.Reason = vmm.ExitInvalidState
		switch basic {
		case ExitInvalidGuestState:
			ex.Detail = fmt.Sprintf("VM entry failed: invalid guest state (exit qualification %d)", f.Qual)
		case ExitMSRLoading:
			ex.Detail = fmt.Sprintf("VM entry failed: loading entry %d of the VM-entry MSR-load list", f.Qual)
		default:
			ex.Detail = "VM entry failed: " + basic.String()
		}
		if f.EntryFail != "" {
			ex.Detail += ": " + f.EntryFail
		}
		return ex
	}
	switch basic {
	case ExitIOInstruction:
		q := IOQualification(f.Qual)
		if q.Size() == 0 {
			ex.Reason, ex.Detail = vmm.ExitUnknown, fmt.Sprintf("I/O exit with reserved size encoding (qualification %#x)", f.Qual)
			return ex
		}
		ex.Reason = vmm.ExitIO
		ex.IO = vmm.IOAccess{Port: q.Port(), Size: q.Size(), In: q.In(), String: q.StringOp(), Rep: q.Rep()}
		ex.NextRIP = next()
	case ExitEPTViolation:
		q := EPTViolation(f.Qual)
		ex.Reason, ex.GPA, ex.Write, ex.Info2 = vmm.ExitMMIO, f.GPA, q.Write(), f.GPA
	case ExitEPTMisconfig:
		// Our own EPT is broken: nothing the guest can fix, so the VM stops.
		ex.Reason = vmm.ExitInvalidState
		ex.Detail = fmt.Sprintf("EPT misconfiguration at gpa=%#x", f.GPA)
		ex.GPA, ex.Info2 = f.GPA, f.GPA
	case ExitCPUID:
		ex.Reason, ex.NextRIP = vmm.ExitCPUID, next()
	case ExitHLT:
		ex.Reason, ex.NextRIP = vmm.ExitHLT, next()
	case ExitRDMSR, ExitWRMSR:
		ex.Reason, ex.MSR, ex.NextRIP = vmm.ExitMSRRead, uint32(f.RCX), next()
		if basic == ExitWRMSR {
			ex.Reason, ex.Write = vmm.ExitMSRWrite, true
		}
	case ExitRDTSC:
		ex.Reason, ex.NextRIP = vmm.ExitRDTSC, next()
	case ExitRDTSCP:
		ex.Reason, ex.NextRIP = vmm.ExitRDTSCP, next()
	case ExitVMCALL:
		ex.Reason, ex.NextRIP = vmm.ExitHypercall, next()
	case ExitPAUSE:
		ex.Reason, ex.NextRIP = vmm.ExitPause, next()
	case ExitXSETBV:
		ex.Reason, ex.NextRIP = vmm.ExitXSETBV, next()
	case ExitExternalInterrupt:
		ex.Reason = vmm.ExitExternalInterrupt
	case ExitInterruptWindow:
		ex.Reason = vmm.ExitInterruptWindow
	case ExitPreemptionTimer:
		// Our own bound on the time between exits: nothing to handle.
		ex.Reason = vmm.ExitNone
	case ExitTripleFault:
		ex.Reason = vmm.ExitShutdown
	case ExitVMCLEAR, ExitVMLAUNCH, ExitVMPTRLD, ExitVMPTRST, ExitVMREAD, ExitVMRESUME,
		ExitVMWRITE, ExitVMXOFF, ExitVMXON, ExitINVEPT, ExitINVVPID, ExitVMFUNC:
		ex.Reason = vmm.ExitVirtInstr
	case ExitMWAIT, ExitMONITOR, ExitINVD, ExitGETSEC, ExitWBINVD:
		ex.Reason = vmm.ExitInvalidOpcode
	case ExitExceptionOrNMI:
		if f.IntInfo.Type() == EventNMI {
			ex.Reason = vmm.ExitNMI
			return ex
		}
		ex.Reason, ex.Vector = vmm.ExitException, f.IntInfo.Vector()
		ex.HasError = f.IntInfo.ErrorCodeValid()
		if ex.HasError {
			ex.ErrCode = f.IntError
		}
	default:
		ex.Reason, ex.Detail = vmm.ExitUnknown, basic.String()
	}
	return ex
}

// eventInfo is the VM-entry interruption information for a vmm.Event. The
// error code is delivered only in protected mode: with "unrestricted
// guest" and CR0.PE = 0 a deliver-error-code bit fails VM entry (SDM
// 27.2.1.3), as a real-mode CPU pushes none.
func eventInfo(ev vmm.Event, protected bool) InterruptionInfo {
	var t EventType
	switch ev.Type {
	case vmm.EventExternal:
		t = EventExternalInterrupt
	case vmm.EventNMI:
		t = EventNMI
	case vmm.EventException:
		t = EventHardwareException
	default:
		t = EventSoftwareInterrupt
	}
	vec := ev.Vector
	if ev.Type == vmm.EventNMI {
		vec = 2
	}
	deliver := ev.Type == vmm.EventException && protected && ev.HasError && errorCodeException(vec)
	return MakeEntryInterruption(t, vec, deliver)
}

// pendingEvent converts VM-entry interruption information back into a
// vmm.Event (for SaveState).
func pendingEvent(info InterruptionInfo, errCode uint32) *vmm.Event {
	if !info.Valid() {
		return nil
	}
	ev := &vmm.Event{Vector: info.Vector(), HasError: info.ErrorCodeValid()}
	if ev.HasError {
		ev.ErrCode = errCode
	}
	switch info.Type() {
	case EventExternalInterrupt:
		ev.Type = vmm.EventExternal
	case EventNMI:
		ev.Type = vmm.EventNMI
	case EventHardwareException:
		ev.Type = vmm.EventException
	default:
		ev.Type = vmm.EventSoftware
	}
	return ev
}

// readEntryState collects from a VMCS what CheckEntry examines.
func readEntryState(a Accessor, physBits uint) (*EntryState, error) {
	var firstErr error
	rd := func(f Field) uint64 {
		v, err := a.ReadField(f)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("vmx: read %v: %w", f, err)
		}
		return v
	}
	seg := func(i int) Segment {
		s := guestSegs[i]
		return Segment{Selector: uint16(rd(s.sel.Field())), Base: rd(s.base.Field()),
			Limit: uint32(rd(s.limit.Field())), AccessRights: uint32(rd(s.ar.Field()))}
	}
	s := &EntryState{PhysAddrBits: physBits}
	c := &s.Controls
	c.Pin = uint32(rd(VMCSPinBasedControls.Field()))
	c.Proc = uint32(rd(VMCSProcBasedControls.Field()))
	if c.Proc&ProcActivateSecondary != 0 {
		c.Proc2 = uint32(rd(VMCSProcBasedControls2.Field()))
	}
	c.Exit = uint32(rd(VMCSExitControls.Field()))
	c.Entry = uint32(rd(VMCSEntryControls.Field()))
	s.ExceptionBitmap = uint32(rd(VMCSExceptionBitmap.Field()))
	s.CR3TargetCount = uint32(rd(VMCSCR3TargetCount.Field()))
	s.IOBitmapA, s.IOBitmapB = rd(VMCSIOBitmapA.Field()), rd(VMCSIOBitmapB.Field())
	s.MSRBitmap = rd(VMCSMSRBitmap.Field())
	s.TPRThreshold = uint32(rd(VMCSTPRThreshold.Field()))
	if c.Proc2&Proc2EnableEPT != 0 {
		s.EPTP = rd(VMCSEPTPointer.Field())
	}
	if c.Proc2&Proc2EnableVPID != 0 {
		s.VPID = uint16(rd(VMCSVPID.Field()))
	}
	s.EntryInterruption = InterruptionInfo(rd(VMCSEntryInterruptionInfo.Field()))
	s.EntryErrorCode = uint32(rd(VMCSEntryExceptionError.Field()))
	s.EntryInstrLength = uint32(rd(VMCSEntryInstructionLength.Field()))

	g := &s.Guest
	g.CR0, g.CR3, g.CR4, g.DR7 = rd(VMCSGuestCR0.Field()), rd(VMCSGuestCR3.Field()), rd(VMCSGuestCR4.Field()), rd(VMCSGuestDR7.Field())
	g.RSP, g.RIP, g.RFLAGS = rd(VMCSGuestRSP.Field()), rd(VMCSGuestRIP.Field()), rd(VMCSGuestRFLAGS.Field())
	g.DebugCtl, g.EFER, g.PAT = rd(VMCSGuestDebugCtl.Field()), rd(VMCSGuestEFER.Field()), rd(VMCSGuestPAT.Field())
	g.SysenterESP, g.SysenterEIP = rd(VMCSGuestSysenterESP.Field()), rd(VMCSGuestSysenterEIP.Field())
	g.ES, g.CS, g.SS, g.DS, g.FS, g.GS, g.LDTR, g.TR = seg(0), seg(1), seg(2), seg(3), seg(4), seg(5), seg(6), seg(7)
	g.GDTRBase, g.IDTRBase = rd(VMCSGuestGDTRBase.Field()), rd(VMCSGuestIDTRBase.Field())
	g.GDTRLimit, g.IDTRLimit = uint32(rd(VMCSGuestGDTRLimit.Field())), uint32(rd(VMCSGuestIDTRLimit.Field()))
	g.Interruptibility = uint32(rd(VMCSGuestInterruptibility.Field()))
	g.ActivityState = uint32(rd(VMCSGuestActivityState.Field()))
	g.PendingDebug = rd(VMCSGuestPendingDebug.Field())
	g.LinkPointer = rd(VMCSLinkPointer.Field())

	h := &s.Host
	h.CR0, h.CR3, h.CR4 = rd(VMCSHostCR0.Field()), rd(VMCSHostCR3.Field()), rd(VMCSHostCR4.Field())
	h.ES, h.CS, h.SS = uint16(rd(VMCSHostESSelector.Field())), uint16(rd(VMCSHostCSSelector.Field())), uint16(rd(VMCSHostSSSelector.Field()))
	h.DS, h.FS, h.GS = uint16(rd(VMCSHostDSSelector.Field())), uint16(rd(VMCSHostFSSelector.Field())), uint16(rd(VMCSHostGSSelector.Field()))
	h.TR = uint16(rd(VMCSHostTRSelector.Field()))
	h.FSBase, h.GSBase, h.TRBase = rd(VMCSHostFSBase.Field()), rd(VMCSHostGSBase.Field()), rd(VMCSHostTRBase.Field())
	h.GDTRBase, h.IDTRBase, h.RIP = rd(VMCSHostGDTRBase.Field()), rd(VMCSHostIDTRBase.Field()), rd(VMCSHostRIP.Field())
	h.SysenterESP, h.SysenterEIP = rd(VMCSHostSysenterESP.Field()), rd(VMCSHostSysenterEIP.Field())
	h.EFER, h.PAT = rd(VMCSHostEFER.Field()), rd(VMCSHostPAT.Field())
	return s, firstErr
}

// segFields are the four VMCS fields of one guest segment register.
type segFields struct {
	sel   Field16
	base  FieldNat
	limit Field32
	ar    Field32
}

// guestSegs in the order ES, CS, SS, DS, FS, GS, LDTR, TR.
var guestSegs = [8]segFields{
	{VMCSGuestESSelector, VMCSGuestESBase, VMCSGuestESLimit, VMCSGuestESAccessRights},
	{VMCSGuestCSSelector, VMCSGuestCSBase, VMCSGuestCSLimit, VMCSGuestCSAccessRights},
	{VMCSGuestSSSelector, VMCSGuestSSBase, VMCSGuestSSLimit, VMCSGuestSSAccessRights},
	{VMCSGuestDSSelector, VMCSGuestDSBase, VMCSGuestDSLimit, VMCSGuestDSAccessRights},
	{VMCSGuestFSSelector, VMCSGuestFSBase, VMCSGuestFSLimit, VMCSGuestFSAccessRights},
	{VMCSGuestGSSelector, VMCSGuestGSBase, VMCSGuestGSLimit, VMCSGuestGSAccessRights},
	{VMCSGuestLDTRSelector, VMCSGuestLDTRBase, VMCSGuestLDTRLimit, VMCSGuestLDTRAccessRights},
	{VMCSGuestTRSelector, VMCSGuestTRBase, VMCSGuestTRLimit, VMCSGuestTRAccessRights},
}

// cr0Inconsistent names what is wrong with a CR0 value the VMM asked for
// that VM entry would not refuse but would not load either: CR0.NW without
// CR0.CD (MOV to CR0 raises #GP for it; VM entry keeps the host's CD and NW,
// SDM 27.3.2.1) and bits 63:32 (reserved; the CR0 field would be
// truncated). "" if nothing.
func cr0Inconsistent(cr0 uint64) string {
	switch {
	case cr0>>32 != 0:
		return fmt.Sprintf("CR0 %#x: bits 63:32 are reserved", cr0)
	case cr0&CR0NW != 0 && cr0&CR0CD == 0:
		return fmt.Sprintf("CR0 %#x: NW is set and CD is clear (MOV to CR0 refuses it; VM entry would keep the host's CD and NW, SDM 27.3.2.1)", cr0)
	}
	return ""
}
