package vmx

import (
	"errors"
	"fmt"
)

// Segment is a guest segment register as the VMCS holds it (SDM 25.4.1).
type Segment struct {
	Selector     uint16
	Base         uint64
	Limit        uint32
	AccessRights uint32 // Table 25-2: type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16
}

// Access-rights bits, SDM 25.4.1 Table 25-2.
const (
	ARTypeMask     uint32 = 0xF
	ARAccessed     uint32 = 1 << 0
	ARReadable     uint32 = 1 << 1 // code segments
	ARConforming   uint32 = 1 << 2 // code segments
	ARCode         uint32 = 1 << 3
	ARS            uint32 = 1 << 4 // code or data (not system)
	ARDPLShift            = 5
	ARPresent      uint32 = 1 << 7
	ARL            uint32 = 1 << 13
	ARDB           uint32 = 1 << 14
	ARG            uint32 = 1 << 15
	ARUnusable     uint32 = 1 << 16
	arReservedLow  uint32 = 0xF00
	arReservedHigh uint32 = 0xFFFE_0000
)

func (s Segment) usable() bool      { return s.AccessRights&ARUnusable == 0 }
func (s Segment) typ() uint32       { return s.AccessRights & ARTypeMask }
func (s Segment) dpl() uint16       { return uint16(s.AccessRights >> ARDPLShift & 3) }
func (s Segment) rpl() uint16       { return s.Selector & 3 }
func (s Segment) ti() bool          { return s.Selector&4 != 0 }
func (s Segment) has(b uint32) bool { return s.AccessRights&b != 0 }

// GuestState is the guest-state area as far as the entry checks read it.
type GuestState struct {
	CR0, CR3, CR4, DR7       uint64
	RSP, RIP, RFLAGS         uint64
	DebugCtl, EFER, PAT      uint64
	SysenterESP, SysenterEIP uint64
	ES, CS, SS, DS, FS, GS   Segment
	LDTR, TR                 Segment
	GDTRBase, IDTRBase       uint64
	GDTRLimit, IDTRLimit     uint32
	Interruptibility         uint32
	ActivityState            uint32
	PendingDebug             uint64
	LinkPointer              uint64
}

// HostState is the host-state area (SDM 25.5).
type HostState struct {
	CR0, CR3, CR4                                   uint64
	ES, CS, SS, DS, FS, GS, TR                      uint16
	FSBase, GSBase, TRBase, GDTRBase, IDTRBase, RIP uint64
	SysenterESP, SysenterEIP                        uint64
	EFER, PAT                                       uint64
}

// EntryState is everything VM entry checks that software can see.
type EntryState struct {
	Controls          Controls
	ExceptionBitmap   uint32
	CR3TargetCount    uint32
	IOBitmapA         uint64
	IOBitmapB         uint64
	MSRBitmap         uint64
	VirtualAPICAddr   uint64
	TPRThreshold      uint32
	EPTP              uint64
	VPID              uint16
	EntryInterruption InterruptionInfo
	EntryErrorCode    uint32
	EntryInstrLength  uint32
	Guest             GuestState
	Host              HostState
	// PhysAddrBits is the host MAXPHYADDR; 0 means 52.
	PhysAddrBits uint
}

// Guest activity states, SDM 25.4.2.
const (
	ActivityActive   uint32 = 0
	ActivityHLT      uint32 = 1
	ActivityShutdown uint32 = 2
	ActivityWaitSIPI uint32 = 3
)

// Guest interruptibility-state bits, SDM 25.4.2 Table 25-3.
const (
	BlockingBySTI    uint32 = 1 << 0
	BlockingByMovSS  uint32 = 1 << 1
	BlockingBySMI    uint32 = 1 << 2
	BlockingByNMI    uint32 = 1 << 3
	EnclaveInterrupt uint32 = 1 << 4
)

// RFLAGS and EFER bits the checks use, SDM Vol. 3A 2.3 and 2.2.1.
const (
	RFLAGSTF  uint64 = 1 << 8
	RFLAGSIF  uint64 = 1 << 9
	RFLAGSVM  uint64 = 1 << 17
	EFERSCE   uint64 = 1 << 0
	EFERLME   uint64 = 1 << 8
	EFERLMA   uint64 = 1 << 10
	EFERNXE   uint64 = 1 << 11
	rflagsRsv uint64 = ^uint64(0x3F_FFFF) | 1<<15 | 1<<5 | 1<<3
	eferValid uint64 = EFERSCE | EFERLME | EFERLMA | EFERNXE
)

// EntryCheckKind is the class of a failed check, which decides how the CPU
// reports it: VMfail with VM-instruction error 7 (controls) or 8 (host
// state), or a VM exit with reason 33 and bit 31 set (guest state).
type EntryCheckKind uint8

// Kinds of entry checks.
const (
	CheckControls EntryCheckKind = iota
	CheckHostState
	CheckGuestState
)

// ErrEntryCheck is wrapped by every EntryCheckError.
var ErrEntryCheck = errors.New("vmx: VM-entry check failed")

// EntryCheckError names the first VM-entry check that fails, after the
// manual: the section and the check's text, then the offending values.
type EntryCheckError struct {
	Kind    EntryCheckKind
	Section string // "27.3.1.2"
	Check   string // the manual's rule, shortened
	Detail  string // values that break it
}

func (e *EntryCheckError) Error() string {
	return fmt.Sprintf("vmx: VM-entry check SDM %s failed: %s (%s)", e.Section, e.Check, e.Detail)
}

// Unwrap lets errors.Is(err, ErrEntryCheck) match.
func (e *EntryCheckError) Unwrap() error { return ErrEntryCheck }

// Sections of the checks, SDM 27.2 and 27.3.
const (
	secExecControls = "27.2.1.1"
	secExitControls = "27.2.1.2"
	secEntryControl = "27.2.1.3"
	secHostCRMSR    = "27.2.2"
	secHostSegs     = "27.2.3"
	secGuestCRMSR   = "27.3.1.1"
	secGuestSegs    = "27.3.1.2"
	secGuestDesc    = "27.3.1.3"
	secGuestRIP     = "27.3.1.4"
	secGuestNonReg  = "27.3.1.5"
)

type entryChecker struct {
	c    *Caps
	s    *EntryState
	phys uint64
}

func fail(kind EntryCheckKind, sec, check, format string, args ...any) error {
	return &EntryCheckError{Kind: kind, Section: sec, Check: check, Detail: fmt.Sprintf(format, args...)}
}

// canonical reports whether a is a canonical 48-bit address (57-bit if la57).
func canonical(a uint64, la57 bool) bool {
	bits := uint(48)
	if la57 {
		bits = 57
	}
	top := int64(a) >> (bits - 1)
	return top == 0 || top == -1
}

// validPAT reports whether every byte of a PAT value is a valid memory type
// (0, 1, 4, 5, 6, 7).
func validPAT(pat uint64) bool {
	for i := 0; i < 8; i++ {
		switch pat >> (8 * i) & 0xFF {
		case 0, 1, 4, 5, 6, 7:
		default:
			return false
		}
	}
	return true
}

// CheckEntry evaluates, in the manual's order, the VM-entry checks of SDM
// 27.2 (controls and host state) and 27.3.1 (guest state) that need only
// VMCS values and capability MSRs, and returns the first that fails as an
// *EntryCheckError, or nil. Checks that need memory (the VMCS link pointer's
// target, MSR-load lists, PDPTEs read from guest memory) or SMM state are
// not made, so nil does not guarantee a successful entry.
func CheckEntry(c *Caps, s *EntryState) error {
	k := entryChecker{c: c, s: s, phys: 1 << 52}
	if s.PhysAddrBits != 0 && s.PhysAddrBits < 64 {
		k.phys = 1 << s.PhysAddrBits
	}
	for _, f := range []func() error{k.execControls, k.exitControls, k.entryControls, k.hostState, k.guestCRMSR,
		k.guestSegments, k.guestDescTables, k.guestRIPFlags, k.guestNonRegister} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (k *entryChecker) physOK(a uint64) bool { return a < k.phys }

func reservedCheck(sec, name string, v uint32, a Allowed) error {
	if bad := a.Must1 &^ v; bad != 0 {
		return fail(CheckControls, sec, "reserved bits in the "+name+" must be set properly",
			"value %#x, bits %#x must be 1", v, bad)
	}
	if bad := v &^ a.May1; bad != 0 {
		return fail(CheckControls, sec, "reserved bits in the "+name+" must be set properly",
			"value %#x, bits %#x must be 0", v, bad)
	}
	return nil
}

func (k *entryChecker) execControls() error {
	c, s, ctl := k.c, k.s, k.s.Controls
	if err := reservedCheck(secExecControls, "pin-based VM-execution controls", ctl.Pin, c.Pin); err != nil {
		return err
	}
	if err := reservedCheck(secExecControls, "primary processor-based VM-execution controls", ctl.Proc, c.Proc); err != nil {
		return err
	}
	proc2 := uint32(0)
	if ctl.Proc&ProcActivateSecondary != 0 {
		proc2 = ctl.Proc2
		if err := reservedCheck(secExecControls, "secondary processor-based VM-execution controls", proc2, c.Proc2); err != nil {
			return err
		}
	}
	if ctl.Proc&ProcActivateTertiary != 0 {
		if bad := ctl.Proc3 &^ c.Proc3; bad != 0 {
			return fail(CheckControls, secExecControls, "reserved bits in the tertiary processor-based VM-execution controls must be 0",
				"value %#x, bits %#x", ctl.Proc3, bad)
		}
	}
	if s.CR3TargetCount > c.Misc.CR3Targets {
		return fail(CheckControls, secExecControls, "the CR3-target count must not exceed the value reported in IA32_VMX_MISC",
			"count %d, supported %d", s.CR3TargetCount, c.Misc.CR3Targets)
	}
	if ctl.Proc&ProcUseIOBitmaps != 0 {
		for _, a := range []uint64{s.IOBitmapA, s.IOBitmapB} {
			if a&0xFFF != 0 || !k.physOK(a) {
				return fail(CheckControls, secExecControls, "each I/O-bitmap address must be 4-KByte aligned and within the physical-address width",
					"address %#x", a)
			}
		}
	}
	if ctl.Proc&ProcUseMSRBitmaps != 0 && (s.MSRBitmap&0xFFF != 0 || !k.physOK(s.MSRBitmap)) {
		return fail(CheckControls, secExecControls, "the MSR-bitmap address must be 4-KByte aligned and within the physical-address width",
			"address %#x", s.MSRBitmap)
	}
	if ctl.Proc&ProcUseTPRShadow != 0 {
		if s.VirtualAPICAddr&0xFFF != 0 || !k.physOK(s.VirtualAPICAddr) {
			return fail(CheckControls, secExecControls, "the virtual-APIC address must be 4-KByte aligned and within the physical-address width",
				"address %#x", s.VirtualAPICAddr)
		}
		if proc2&Proc2VirtualInterruptDeliv == 0 && s.TPRThreshold&^0xF != 0 {
			return fail(CheckControls, secExecControls, "bits 31:4 of the TPR threshold must be 0",
				"TPR threshold %#x", s.TPRThreshold)
		}
	} else if proc2&(Proc2VirtualizeX2APIC|Proc2APICRegisterVirt|Proc2VirtualInterruptDeliv) != 0 {
		return fail(CheckControls, secExecControls, `if "use TPR shadow" is 0, "virtualize x2APIC mode", "APIC-register virtualization" and "virtual-interrupt delivery" must be 0`,
			"secondary controls %#x", proc2)
	}
	if ctl.Pin&PinNMIExiting == 0 && ctl.Pin&PinVirtualNMIs != 0 {
		return fail(CheckControls, secExecControls, `if "NMI exiting" is 0, "virtual NMIs" must be 0`, "pin-based %#x", ctl.Pin)
	}
	if ctl.Pin&PinVirtualNMIs == 0 && ctl.Proc&ProcNMIWindowExiting != 0 {
		return fail(CheckControls, secExecControls, `if "virtual NMIs" is 0, "NMI-window exiting" must be 0`, "primary %#x", ctl.Proc)
	}
	if proc2&Proc2VirtualizeX2APIC != 0 && proc2&Proc2VirtualizeAPICAccesses != 0 {
		return fail(CheckControls, secExecControls, `if "virtualize x2APIC mode" is 1, "virtualize APIC accesses" must be 0`, "secondary %#x", proc2)
	}
	if proc2&Proc2VirtualInterruptDeliv != 0 && ctl.Pin&PinExternalInterruptExiting == 0 {
		return fail(CheckControls, secExecControls, `if "virtual-interrupt delivery" is 1, "external-interrupt exiting" must be 1`, "pin-based %#x", ctl.Pin)
	}
	if ctl.Pin&PinPostedInterrupts != 0 && (proc2&Proc2VirtualInterruptDeliv == 0 || ctl.Exit&ExitAckInterruptOnExit == 0) {
		return fail(CheckControls, secExecControls, `if "process posted interrupts" is 1, "virtual-interrupt delivery" and "acknowledge interrupt on exit" must be 1`,
			"secondary %#x, exit %#x", proc2, ctl.Exit)
	}
	if proc2&Proc2EnableVPID != 0 && s.VPID == 0 {
		return fail(CheckControls, secExecControls, `if "enable VPID" is 1, the VPID must not be 0000H`, "VPID 0")
	}
	if proc2&Proc2EnableEPT != 0 {
		if err := k.checkEPTP(); err != nil {
			return err
		}
	}
	for _, dep := range []struct {
		bit  uint32
		name string
	}{
		{Proc2UnrestrictedGuest, "unrestricted guest"},
		{Proc2EnablePML, "enable PML"},
		{Proc2ModeBasedExecute, "mode-based execute control for EPT"},
		{Proc2SubPageWrite, "sub-page write permissions for EPT"},
	} {
		if proc2&dep.bit != 0 && proc2&Proc2EnableEPT == 0 {
			return fail(CheckControls, secExecControls, fmt.Sprintf(`if %q is 1, "enable EPT" must be 1`, dep.name), "secondary %#x", proc2)
		}
	}
	return nil
}

func (k *entryChecker) checkEPTP() error {
	p, caps := k.s.EPTP, k.c.EPTVPID
	const check = "the EPT pointer must be valid"
	switch mt := MemType(p & EPTPMemTypeMask); {
	case mt == MemUC && caps.Has(EPTCapUC), mt == MemWB && caps.Has(EPTCapWB):
	default:
		return fail(CheckControls, secExecControls, check, "EPTP %#x: memory type %d not supported", p, mt)
	}
	switch walk := p >> EPTPWalkShift & 7; {
	case walk == 3 && caps.Has(EPTCapWalk4), walk == 4 && caps.Has(EPTCapWalk5):
	default:
		return fail(CheckControls, secExecControls, check, "EPTP %#x: page-walk length %d not supported", p, walk+1)
	}
	if p&EPTPAccessedDirty != 0 && !caps.Has(EPTCapAccessedDirty) {
		return fail(CheckControls, secExecControls, check, "EPTP %#x: accessed/dirty flags not supported", p)
	}
	if p&EPTPSupShadow != 0 && !caps.Has(EPTCapSupervisorShadow) {
		return fail(CheckControls, secExecControls, check, "EPTP %#x: supervisor shadow-stack control not supported", p)
	}
	if p&0xF00 != 0 || !k.physOK(p&^0xFFF) {
		return fail(CheckControls, secExecControls, check, "EPTP %#x: reserved bits 11:8 or bits beyond the physical-address width set", p)
	}
	return nil
}

func (k *entryChecker) exitControls() error {
	ctl := k.s.Controls
	if err := reservedCheck(secExitControls, "VM-exit controls", ctl.Exit, k.c.Exit); err != nil {
		return err
	}
	if ctl.Pin&PinPreemptionTimer == 0 && ctl.Exit&ExitSavePreemptionTimer != 0 {
		return fail(CheckControls, secExitControls, `if "activate VMX-preemption timer" is 0, "save VMX-preemption timer value" must be 0`,
			"exit %#x", ctl.Exit)
	}
	return nil
}

// errorCodeVectors are the exceptions that deliver an error code: #DF, #TS,
// #NP, #SS, #GP, #PF, #AC, #CP (SDM 27.2.1.3).
func errorCodeVector(v uint8) bool {
	switch v {
	case 8, 10, 11, 12, 13, 14, 17, 21:
		return true
	}
	return false
}

func (k *entryChecker) entryControls() error {
	s, ctl := k.s, k.s.Controls
	if err := reservedCheck(secEntryControl, "VM-entry controls", ctl.Entry, k.c.Entry); err != nil {
		return err
	}
	if ctl.Entry&(EntryToSMM|EntryDeactivateDualMon) != 0 {
		return fail(CheckControls, secEntryControl, `"entry to SMM" and "deactivate dual-monitor treatment" must be 0 outside SMM`,
			"entry %#x", ctl.Entry)
	}
	info := s.EntryInterruption
	if !info.Valid() {
		return nil
	}
	const sec = secEntryControl
	t, v := info.Type(), info.Vector()
	switch {
	case t == 1:
		return fail(CheckControls, sec, "the interruption type must not be 1 (reserved)", "info %#x", uint32(info))
	case t == EventOther && ctl.Proc&ProcMonitorTrapFlag == 0 && k.c.Proc.May1&ProcMonitorTrapFlag == 0:
		return fail(CheckControls, sec, "interruption type 7 (other event) requires support for the monitor trap flag", "info %#x", uint32(info))
	case t == EventNMI && v != 2:
		return fail(CheckControls, sec, "an NMI must have vector 2", "vector %d", v)
	case t == EventHardwareException && v > 31:
		return fail(CheckControls, sec, "a hardware exception must have a vector at most 31", "vector %d", v)
	case t == EventOther && v != 0:
		return fail(CheckControls, sec, "an other event (pending MTF) must have vector 0", "vector %d", v)
	}
	protected := s.Guest.CR0&CR0PE != 0 || ctl.Proc&ProcActivateSecondary == 0 || ctl.Proc2&Proc2UnrestrictedGuest == 0
	wantErr := t == EventHardwareException && errorCodeVector(v) && protected
	// With IA32_VMX_BASIC[56] a protected-mode hardware exception may be
	// injected with or without an error code.
	free := t == EventHardwareException && protected && k.c.Basic.NoErrCodeReq
	if !free && info.ErrorCodeValid() != wantErr {
		return fail(CheckControls, sec, "the deliver-error-code bit must be 1 exactly for a hardware exception that pushes an error code in protected mode",
			"type %v vector %d deliver=%v", t, v, info.ErrorCodeValid())
	}
	if uint32(info)&0x7FFF_F000 != 0 {
		return fail(CheckControls, sec, "reserved bits 30:12 of the VM-entry interruption-information field must be 0", "info %#x", uint32(info))
	}
	if info.ErrorCodeValid() && s.EntryErrorCode&0xFFFF_0000 != 0 {
		return fail(CheckControls, sec, "bits 31:16 of the VM-entry exception error code must be 0", "error code %#x", s.EntryErrorCode)
	}
	if t.HasInstructionLength() {
		min := uint32(1)
		if k.c.Misc.InjectZeroLength {
			min = 0
		}
		if s.EntryInstrLength < min || s.EntryInstrLength > 15 {
			return fail(CheckControls, sec, "the VM-entry instruction length must be in the range 0-15 for software interrupts and exceptions (0 only if IA32_VMX_MISC bit 30 is 1)",
				"length %d", s.EntryInstrLength)
		}
	}
	return nil
}

func (k *entryChecker) hostState() error {
	h, ctl, c := &k.s.Host, k.s.Controls, k.c
	if err := c.CheckCR0(h.CR0, false); err != nil {
		return fail(CheckHostState, secHostCRMSR, "the CR0 field must not set any bit to a value not supported in VMX operation", "%v", err)
	}
	if err := c.CheckCR4(h.CR4); err != nil {
		return fail(CheckHostState, secHostCRMSR, "the CR4 field must not set any bit to a value not supported in VMX operation", "%v", err)
	}
	if !k.physOK(h.CR3) {
		return fail(CheckHostState, secHostCRMSR, "the CR3 field must be such that bits beyond the physical-address width are 0", "CR3 %#x", h.CR3)
	}
	for _, a := range []struct {
		name string
		v    uint64
	}{{"IA32_SYSENTER_ESP", h.SysenterESP}, {"IA32_SYSENTER_EIP", h.SysenterEIP}} {
		if !canonical(a.v, h.CR4&CR4LA57 != 0) {
			return fail(CheckHostState, secHostCRMSR, "the host IA32_SYSENTER_ESP and IA32_SYSENTER_EIP fields must contain canonical addresses",
				"%s %#x", a.name, a.v)
		}
	}
	if ctl.Exit&ExitLoadPAT != 0 && !validPAT(h.PAT) {
		return fail(CheckHostState, secHostCRMSR, `if "load IA32_PAT" is 1, each byte of the host IA32_PAT field must be a valid memory type`, "PAT %#x", h.PAT)
	}
	hostLong := ctl.Exit&ExitHostAddressSpaceSize != 0
	if ctl.Exit&ExitLoadEFER != 0 {
		if h.EFER&^eferValid != 0 {
			return fail(CheckHostState, secHostCRMSR, `if "load IA32_EFER" is 1, reserved bits of the host IA32_EFER field must be 0`, "EFER %#x", h.EFER)
		}
		if (h.EFER&EFERLMA != 0) != hostLong || (h.EFER&EFERLME != 0) != hostLong {
			return fail(CheckHostState, secHostCRMSR, `if "load IA32_EFER" is 1, host EFER.LMA and EFER.LME must equal "host address-space size"`,
				"EFER %#x, host address-space size %v", h.EFER, hostLong)
		}
	}
	for _, sel := range []struct {
		name string
		v    uint16
	}{{"ES", h.ES}, {"CS", h.CS}, {"SS", h.SS}, {"DS", h.DS}, {"FS", h.FS}, {"GS", h.GS}, {"TR", h.TR}} {
		if sel.v&7 != 0 {
			return fail(CheckHostState, secHostSegs, "in the selector field for each host segment register, the RPL (bits 1:0) and the TI flag (bit 2) must be 0",
				"%s selector %#x", sel.name, sel.v)
		}
	}
	if h.CS == 0 {
		return fail(CheckHostState, secHostSegs, "the selector field for CS must not be 0000H", "CS 0")
	}
	if h.TR == 0 {
		return fail(CheckHostState, secHostSegs, "the selector field for TR must not be 0000H", "TR 0")
	}
	if h.SS == 0 && !hostLong {
		return fail(CheckHostState, secHostSegs, `the selector field for SS must not be 0000H if "host address-space size" is 0`, "SS 0")
	}
	for _, b := range []struct {
		name string
		v    uint64
	}{{"FS", h.FSBase}, {"GS", h.GSBase}, {"GDTR", h.GDTRBase}, {"IDTR", h.IDTRBase}, {"TR", h.TRBase}} {
		if !canonical(b.v, h.CR4&CR4LA57 != 0) {
			return fail(CheckHostState, secHostSegs, "the base-address fields for FS, GS, GDTR, IDTR and TR must contain canonical addresses",
				"%s base %#x", b.name, b.v)
		}
	}
	// We always run in IA-32e mode, so the host must return to 64-bit code.
	if !hostLong {
		return fail(CheckHostState, "27.2.4", `if the logical processor is in IA-32e mode, "host address-space size" must be 1`, "exit %#x", ctl.Exit)
	}
	if h.CR4&CR4PAE == 0 {
		return fail(CheckHostState, "27.2.4", `if "host address-space size" is 1, CR4.PAE must be 1`, "CR4 %#x", h.CR4)
	}
	if !canonical(h.RIP, h.CR4&CR4LA57 != 0) {
		return fail(CheckHostState, "27.2.4", `if "host address-space size" is 1, the RIP field must contain a canonical address`, "RIP %#x", h.RIP)
	}
	return nil
}

func (k *entryChecker) unrestricted() bool {
	ctl := k.s.Controls
	return ctl.Proc&ProcActivateSecondary != 0 && ctl.Proc2&Proc2UnrestrictedGuest != 0
}

func (k *entryChecker) ia32e() bool { return k.s.Controls.Entry&EntryIA32eModeGuest != 0 }

func (k *entryChecker) guestCRMSR() error {
	g, ctl, c := &k.s.Guest, k.s.Controls, k.c
	ug := k.unrestricted()
	if err := c.CheckCR0(g.CR0, ug); err != nil {
		return fail(CheckGuestState, secGuestCRMSR, `the CR0 field must not set any bit to a value not supported in VMX operation (PE and PG may be 0 with "unrestricted guest")`,
			"%v", err)
	}
	if g.CR0&CR0PG != 0 && g.CR0&CR0PE == 0 {
		return fail(CheckGuestState, secGuestCRMSR, "if bit 31 in the CR0 field (PG) is 1, bit 0 (PE) must be 1", "CR0 %#x", g.CR0)
	}
	if err := c.CheckCR4(g.CR4); err != nil {
		return fail(CheckGuestState, secGuestCRMSR, "the CR4 field must not set any bit to a value not supported in VMX operation", "%v", err)
	}
	if ctl.Entry&EntryLoadDebugControls != 0 && g.DR7>>32 != 0 {
		return fail(CheckGuestState, secGuestCRMSR, `if "load debug controls" is 1, bits 63:32 in the DR7 field must be 0`, "DR7 %#x", g.DR7)
	}
	if k.ia32e() {
		if g.CR0&CR0PG == 0 || g.CR4&CR4PAE == 0 {
			return fail(CheckGuestState, secGuestCRMSR, `if "IA-32e mode guest" is 1, CR0.PG and CR4.PAE must be 1`, "CR0 %#x CR4 %#x", g.CR0, g.CR4)
		}
	} else if g.CR4&CR4PCIDE != 0 {
		return fail(CheckGuestState, secGuestCRMSR, `if "IA-32e mode guest" is 0, CR4.PCIDE must be 0`, "CR4 %#x", g.CR4)
	}
	if !k.physOK(g.CR3) {
		return fail(CheckGuestState, secGuestCRMSR, "the CR3 field must be such that bits beyond the physical-address width are 0", "CR3 %#x", g.CR3)
	}
	for _, a := range []struct {
		name string
		v    uint64
	}{{"IA32_SYSENTER_ESP", g.SysenterESP}, {"IA32_SYSENTER_EIP", g.SysenterEIP}} {
		if !canonical(a.v, g.CR4&CR4LA57 != 0) {
			return fail(CheckGuestState, secGuestCRMSR, "the IA32_SYSENTER_ESP and IA32_SYSENTER_EIP fields must contain canonical addresses",
				"%s %#x", a.name, a.v)
		}
	}
	if ctl.Entry&EntryLoadPAT != 0 && !validPAT(g.PAT) {
		return fail(CheckGuestState, secGuestCRMSR, `if "load IA32_PAT" is 1, each byte of the guest IA32_PAT field must be a valid memory type`, "PAT %#x", g.PAT)
	}
	if ctl.Entry&EntryLoadEFER != 0 {
		if g.EFER&^eferValid != 0 {
			return fail(CheckGuestState, secGuestCRMSR, `if "load IA32_EFER" is 1, reserved bits of the guest IA32_EFER field must be 0`, "EFER %#x", g.EFER)
		}
		if (g.EFER&EFERLMA != 0) != k.ia32e() {
			return fail(CheckGuestState, secGuestCRMSR, `if "load IA32_EFER" is 1, EFER.LMA must equal "IA-32e mode guest"`,
				"EFER %#x, IA-32e mode guest %v", g.EFER, k.ia32e())
		}
		if g.CR0&CR0PG != 0 && (g.EFER&EFERLME != 0) != k.ia32e() {
			return fail(CheckGuestState, secGuestCRMSR, `if "load IA32_EFER" is 1 and CR0.PG is 1, EFER.LME must equal "IA-32e mode guest"`,
				"EFER %#x, IA-32e mode guest %v", g.EFER, k.ia32e())
		}
	}
	return nil
}

// limitGranularity checks the G-bit rule shared by all usable segments.
func limitGranularity(s Segment) bool {
	if s.Limit&0xFFF != 0xFFF && s.has(ARG) {
		return false
	}
	if s.Limit>>20 != 0 && !s.has(ARG) {
		return false
	}
	return true
}

func (k *entryChecker) guestSegments() error {
	g := &k.s.Guest
	ug := k.unrestricted()
	v86 := g.RFLAGS&RFLAGSVM != 0
	la57 := g.CR4&CR4LA57 != 0
	const sec = secGuestSegs
	segFail := func(check, name string, s Segment) error {
		return fail(CheckGuestState, sec, check, "%s selector %#x base %#x limit %#x access rights %#x", name, s.Selector, s.Base, s.Limit, s.AccessRights)
	}
	if g.TR.ti() {
		return segFail("TR: the TI flag (bit 2) of the selector must be 0", "TR", g.TR)
	}
	if g.LDTR.usable() && g.LDTR.ti() {
		return segFail("LDTR: if usable, the TI flag (bit 2) of the selector must be 0", "LDTR", g.LDTR)
	}
	if !v86 && !ug && g.SS.rpl() != g.CS.rpl() {
		return fail(CheckGuestState, sec, "SS: if the guest is not in virtual-8086 mode and \"unrestricted guest\" is 0, the RPL must equal the RPL of CS",
			"SS selector %#x, CS selector %#x", g.SS.Selector, g.CS.Selector)
	}
	data := []struct {
		name string
		s    Segment
	}{{"CS", g.CS}, {"SS", g.SS}, {"DS", g.DS}, {"ES", g.ES}, {"FS", g.FS}, {"GS", g.GS}}
	if v86 {
		for _, d := range data {
			if d.s.Base != uint64(d.s.Selector)<<4 {
				return segFail("in virtual-8086 mode, the base address must be the selector shifted left 4 bits", d.name, d.s)
			}
			if d.s.Limit != 0xFFFF {
				return segFail("in virtual-8086 mode, the limit must be 0000FFFFH", d.name, d.s)
			}
			if d.s.AccessRights != 0xF3 {
				return segFail("in virtual-8086 mode, the access-rights field must be 000000F3H", d.name, d.s)
			}
		}
	}
	for _, b := range []struct {
		name string
		s    Segment
		need bool
	}{{"TR", g.TR, true}, {"FS", g.FS, true}, {"GS", g.GS, true}, {"LDTR", g.LDTR, g.LDTR.usable()}} {
		if b.need && !canonical(b.s.Base, la57) {
			return segFail("the base addresses of TR, FS, GS (and LDTR if usable) must be canonical", b.name, b.s)
		}
	}
	if g.CS.Base>>32 != 0 {
		return segFail("CS: bits 63:32 of the base address must be 0", "CS", g.CS)
	}
	for _, d := range []struct {
		name string
		s    Segment
	}{{"SS", g.SS}, {"DS", g.DS}, {"ES", g.ES}} {
		if d.s.usable() && d.s.Base>>32 != 0 {
			return segFail("SS, DS, ES: if usable, bits 63:32 of the base address must be 0", d.name, d.s)
		}
	}
	if !v86 {
		if err := k.guestAccessRights(segFail); err != nil {
			return err
		}
	}
	// TR and LDTR.
	tr := g.TR
	switch {
	case k.ia32e() && tr.typ() != 11:
		return segFail("TR: in IA-32e mode the type must be 11 (busy 64-bit TSS)", "TR", tr)
	case !k.ia32e() && tr.typ() != 3 && tr.typ() != 11:
		return segFail("TR: the type must be 3 (busy 16-bit TSS) or 11 (busy 32-bit TSS)", "TR", tr)
	case tr.has(ARS):
		return segFail("TR: bit 4 (S) of the access rights must be 0", "TR", tr)
	case !tr.has(ARPresent):
		return segFail("TR: bit 7 (P) of the access rights must be 1", "TR", tr)
	case tr.AccessRights&(arReservedLow|arReservedHigh) != 0 || !tr.usable():
		return segFail("TR: reserved bits 11:8 and 31:17 of the access rights must be 0, and TR must be usable", "TR", tr)
	case !limitGranularity(tr):
		return segFail("TR: the G bit must agree with the limit (bits 11:0 all 1 if G is 1, bits 31:20 all 0 if G is 0)", "TR", tr)
	}
	if l := g.LDTR; l.usable() {
		switch {
		case l.typ() != 2:
			return segFail("LDTR: if usable, the type must be 2 (LDT)", "LDTR", l)
		case l.has(ARS):
			return segFail("LDTR: if usable, bit 4 (S) must be 0", "LDTR", l)
		case !l.has(ARPresent):
			return segFail("LDTR: if usable, bit 7 (P) must be 1", "LDTR", l)
		case l.AccessRights&(arReservedLow|arReservedHigh) != 0:
			return segFail("LDTR: if usable, reserved bits 11:8 and 31:17 must be 0", "LDTR", l)
		case !limitGranularity(l):
			return segFail("LDTR: if usable, the G bit must agree with the limit", "LDTR", l)
		}
	}
	return nil
}

func (k *entryChecker) guestAccessRights(segFail func(check, name string, s Segment) error) error {
	g := &k.s.Guest
	ug := k.unrestricted()
	cs, ss := g.CS, g.SS
	switch t := cs.typ(); {
	case t == 9 || t == 11 || t == 13 || t == 15:
	case t == 3 && ug:
	default:
		return segFail(`CS: the type must be 9, 11, 13 or 15 (accessed code), or 3 (accessed read/write data) with "unrestricted guest"`, "CS", cs)
	}
	if ss.usable() && ss.typ() != 3 && ss.typ() != 7 {
		return segFail("SS: if usable, the type must be 3 or 7 (read/write accessed data)", "SS", ss)
	}
	others := []struct {
		name string
		s    Segment
	}{{"DS", g.DS}, {"ES", g.ES}, {"FS", g.FS}, {"GS", g.GS}}
	for _, o := range others {
		if !o.s.usable() {
			continue
		}
		if !o.s.has(ARAccessed) || (o.s.has(ARCode) && !o.s.has(ARReadable)) {
			return segFail("DS, ES, FS, GS: if usable, the type must be accessed (bit 0) and, for code, readable (bit 1)", o.name, o.s)
		}
	}
	all := append([]struct {
		name string
		s    Segment
	}{{"CS", cs}, {"SS", ss}}, others...)
	for _, a := range all {
		if a.name != "CS" && !a.s.usable() {
			continue
		}
		if !a.s.has(ARS) {
			return segFail("CS and usable SS, DS, ES, FS, GS: bit 4 (S) of the access rights must be 1", a.name, a.s)
		}
	}
	switch t := cs.typ(); {
	case t == 3:
		if cs.dpl() != 0 {
			return segFail("CS: if the type is 3, the DPL must be 0", "CS", cs)
		}
	case t == 9 || t == 11:
		if cs.dpl() != ss.dpl() {
			return segFail("CS: for a non-conforming code segment (type 9 or 11) the DPL must equal the DPL of SS", "CS", cs)
		}
	default:
		if cs.dpl() > ss.dpl() {
			return segFail("CS: for a conforming code segment (type 13 or 15) the DPL must not be greater than the DPL of SS", "CS", cs)
		}
	}
	if !ug && ss.dpl() != ss.rpl() {
		return segFail(`SS: if "unrestricted guest" is 0, the DPL must equal the RPL of the selector`, "SS", ss)
	}
	if (cs.typ() == 3 || g.CR0&CR0PE == 0) && ss.dpl() != 0 {
		return segFail("SS: if the CS type is 3 or CR0.PE is 0, the DPL must be 0", "SS", ss)
	}
	if !ug {
		for _, o := range others {
			if o.s.usable() && o.s.typ() <= 11 && o.s.dpl() < o.s.rpl() {
				return segFail(`DS, ES, FS, GS: if usable, not conforming code and "unrestricted guest" is 0, the DPL must not be less than the RPL`, o.name, o.s)
			}
		}
	}
	for _, a := range all {
		if a.name != "CS" && !a.s.usable() {
			continue
		}
		if !a.s.has(ARPresent) {
			return segFail("CS and usable SS, DS, ES, FS, GS: bit 7 (P) of the access rights must be 1", a.name, a.s)
		}
		if a.s.AccessRights&(arReservedLow|arReservedHigh) != 0 {
			return segFail("CS and usable SS, DS, ES, FS, GS: reserved bits 11:8 and 31:17 of the access rights must be 0", a.name, a.s)
		}
		if !limitGranularity(a.s) {
			return segFail("the G bit must agree with the limit (bits 11:0 all 1 if G is 1, bits 31:20 all 0 if G is 0)", a.name, a.s)
		}
	}
	if k.ia32e() && cs.has(ARL) && cs.has(ARDB) {
		return segFail(`CS: if "IA-32e mode guest" is 1 and L is 1, D/B must be 0`, "CS", cs)
	}
	return nil
}

func (k *entryChecker) guestDescTables() error {
	g := &k.s.Guest
	la57 := g.CR4&CR4LA57 != 0
	if !canonical(g.GDTRBase, la57) || !canonical(g.IDTRBase, la57) {
		return fail(CheckGuestState, secGuestDesc, "the base-address fields for GDTR and IDTR must contain canonical addresses",
			"GDTR base %#x IDTR base %#x", g.GDTRBase, g.IDTRBase)
	}
	if g.GDTRLimit>>16 != 0 || g.IDTRLimit>>16 != 0 {
		return fail(CheckGuestState, secGuestDesc, "bits 31:16 of the GDTR and IDTR limit fields must be 0",
			"GDTR limit %#x IDTR limit %#x", g.GDTRLimit, g.IDTRLimit)
	}
	return nil
}

func (k *entryChecker) guestRIPFlags() error {
	g := &k.s.Guest
	long := k.ia32e() && g.CS.has(ARL)
	if !long && g.RIP>>32 != 0 {
		return fail(CheckGuestState, secGuestRIP, `bits 63:32 of the RIP field must be 0 if "IA-32e mode guest" is 0 or CS.L is 0`, "RIP %#x", g.RIP)
	}
	if long && !canonical(g.RIP, g.CR4&CR4LA57 != 0) {
		return fail(CheckGuestState, secGuestRIP, "in 64-bit mode the RIP field must be canonical", "RIP %#x", g.RIP)
	}
	if g.RFLAGS&rflagsRsv != 0 || g.RFLAGS&2 == 0 {
		return fail(CheckGuestState, secGuestRIP, "RFLAGS: reserved bits 63:22, 15, 5 and 3 must be 0 and bit 1 must be 1", "RFLAGS %#x", g.RFLAGS)
	}
	if (k.ia32e() || g.CR0&CR0PE == 0) && g.RFLAGS&RFLAGSVM != 0 {
		return fail(CheckGuestState, secGuestRIP, `RFLAGS.VM must be 0 if "IA-32e mode guest" is 1 or CR0.PE is 0`, "RFLAGS %#x", g.RFLAGS)
	}
	info := k.s.EntryInterruption
	if info.Valid() && info.Type() == EventExternalInterrupt && g.RFLAGS&RFLAGSIF == 0 {
		return fail(CheckGuestState, secGuestRIP, "RFLAGS.IF must be 1 when injecting an external interrupt", "RFLAGS %#x", g.RFLAGS)
	}
	return nil
}

func (k *entryChecker) guestNonRegister() error {
	g, c, ctl := &k.s.Guest, k.c, k.s.Controls
	const sec = secGuestNonReg
	switch g.ActivityState {
	case ActivityActive:
	case ActivityHLT:
		if !c.Misc.ActivityHLT {
			return fail(CheckGuestState, sec, "the activity-state field must hold a value supported by IA32_VMX_MISC", "HLT not supported")
		}
		if g.SS.dpl() != 0 {
			return fail(CheckGuestState, sec, "the activity state must not be HLT if the DPL in the SS access rights is not 0", "SS access rights %#x", g.SS.AccessRights)
		}
	case ActivityShutdown:
		if !c.Misc.ActivityShutdown {
			return fail(CheckGuestState, sec, "the activity-state field must hold a value supported by IA32_VMX_MISC", "shutdown not supported")
		}
	case ActivityWaitSIPI:
		if !c.Misc.ActivityWaitSIPI {
			return fail(CheckGuestState, sec, "the activity-state field must hold a value supported by IA32_VMX_MISC", "wait-for-SIPI not supported")
		}
	default:
		return fail(CheckGuestState, sec, "the activity-state field must hold a value in the range 0-3", "activity state %d", g.ActivityState)
	}
	is := g.Interruptibility
	if g.ActivityState != ActivityActive && is&(BlockingBySTI|BlockingByMovSS) != 0 {
		return fail(CheckGuestState, sec, "the activity state must be active if the interruptibility state shows blocking by STI or MOV SS", "interruptibility %#x", is)
	}
	if is&^0x1F != 0 {
		return fail(CheckGuestState, sec, "reserved bits 31:5 of the interruptibility-state field must be 0", "interruptibility %#x", is)
	}
	if is&BlockingBySTI != 0 && is&BlockingByMovSS != 0 {
		return fail(CheckGuestState, sec, "bits 0 (blocking by STI) and 1 (blocking by MOV SS) of the interruptibility state must not both be 1", "interruptibility %#x", is)
	}
	if g.RFLAGS&RFLAGSIF == 0 && is&BlockingBySTI != 0 {
		return fail(CheckGuestState, sec, "blocking by STI must be 0 if RFLAGS.IF is 0", "interruptibility %#x", is)
	}
	info := k.s.EntryInterruption
	if info.Valid() && (info.Type() == EventExternalInterrupt || info.Type() == EventNMI) && is&(BlockingBySTI|BlockingByMovSS) != 0 {
		return fail(CheckGuestState, sec, "blocking by STI and by MOV SS must be 0 when injecting an external interrupt or NMI", "interruptibility %#x", is)
	}
	if is&BlockingBySMI != 0 {
		return fail(CheckGuestState, sec, "blocking by SMI (bit 2) must be 0 outside SMM", "interruptibility %#x", is)
	}
	if info.Valid() && info.Type() == EventNMI && ctl.Pin&PinVirtualNMIs != 0 && is&BlockingByNMI != 0 {
		return fail(CheckGuestState, sec, `blocking by NMI must be 0 when injecting an NMI with "virtual NMIs" 1`, "interruptibility %#x", is)
	}
	pd := g.PendingDebug
	if pd&^(0xF|1<<12|1<<14|1<<16) != 0 {
		return fail(CheckGuestState, sec, "reserved bits 11:4, 13, 15 and 63:17 of the pending debug exceptions field must be 0", "pending debug %#x", pd)
	}
	if is&(BlockingBySTI|BlockingByMovSS) != 0 || g.ActivityState == ActivityHLT {
		tf := g.RFLAGS&RFLAGSTF != 0
		btf := g.DebugCtl&2 != 0
		bs := pd&(1<<14) != 0
		if tf && !btf && !bs {
			return fail(CheckGuestState, sec, "BS (bit 14) of the pending debug exceptions must be 1 if RFLAGS.TF is 1 and IA32_DEBUGCTL.BTF is 0 while blocked or in HLT", "pending debug %#x", pd)
		}
		if (!tf || btf) && bs {
			return fail(CheckGuestState, sec, "BS (bit 14) of the pending debug exceptions must be 0 if RFLAGS.TF is 0 or IA32_DEBUGCTL.BTF is 1 while blocked or in HLT", "pending debug %#x", pd)
		}
	}
	shadowing := ctl.Proc&ProcActivateSecondary != 0 && ctl.Proc2&Proc2VMCSShadowing != 0
	if g.LinkPointer != ^uint64(0) && !shadowing {
		return fail(CheckGuestState, sec, "the VMCS link pointer must be FFFFFFFF_FFFFFFFFH unless it refers to a valid shadow VMCS", "link pointer %#x", g.LinkPointer)
	}
	if g.LinkPointer != ^uint64(0) && (g.LinkPointer&0xFFF != 0 || !k.physOK(g.LinkPointer)) {
		return fail(CheckGuestState, sec, "the VMCS link pointer must be 4-KByte aligned and within the physical-address width", "link pointer %#x", g.LinkPointer)
	}
	return nil
}
