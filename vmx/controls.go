package vmx

import (
	"errors"
	"fmt"
	"math/bits"
)

// Pin-based VM-execution controls, SDM 25.6.1 Table 25-5.
const (
	PinExternalInterruptExiting uint32 = 1 << 0
	PinNMIExiting               uint32 = 1 << 3
	PinVirtualNMIs              uint32 = 1 << 5
	PinPreemptionTimer          uint32 = 1 << 6
	PinPostedInterrupts         uint32 = 1 << 7
)

// Primary processor-based VM-execution controls, SDM 25.6.2 Table 25-6.
const (
	ProcInterruptWindowExiting uint32 = 1 << 2
	ProcUseTSCOffsetting       uint32 = 1 << 3
	ProcHLTExiting             uint32 = 1 << 7
	ProcINVLPGExiting          uint32 = 1 << 9
	ProcMWAITExiting           uint32 = 1 << 10
	ProcRDPMCExiting           uint32 = 1 << 11
	ProcRDTSCExiting           uint32 = 1 << 12
	ProcCR3LoadExiting         uint32 = 1 << 15
	ProcCR3StoreExiting        uint32 = 1 << 16
	ProcActivateTertiary       uint32 = 1 << 17
	ProcCR8LoadExiting         uint32 = 1 << 19
	ProcCR8StoreExiting        uint32 = 1 << 20
	ProcUseTPRShadow           uint32 = 1 << 21
	ProcNMIWindowExiting       uint32 = 1 << 22
	ProcMOVDRExiting           uint32 = 1 << 23
	ProcUnconditionalIOExiting uint32 = 1 << 24
	ProcUseIOBitmaps           uint32 = 1 << 25
	ProcMonitorTrapFlag        uint32 = 1 << 27
	ProcUseMSRBitmaps          uint32 = 1 << 28
	ProcMONITORExiting         uint32 = 1 << 29
	ProcPAUSEExiting           uint32 = 1 << 30
	ProcActivateSecondary      uint32 = 1 << 31
)

// Secondary processor-based VM-execution controls, SDM 25.6.2 Table 25-7.
const (
	Proc2VirtualizeAPICAccesses uint32 = 1 << 0
	Proc2EnableEPT              uint32 = 1 << 1
	Proc2DescriptorTableExiting uint32 = 1 << 2
	Proc2EnableRDTSCP           uint32 = 1 << 3
	Proc2VirtualizeX2APIC       uint32 = 1 << 4
	Proc2EnableVPID             uint32 = 1 << 5
	Proc2WBINVDExiting          uint32 = 1 << 6
	Proc2UnrestrictedGuest      uint32 = 1 << 7
	Proc2APICRegisterVirt       uint32 = 1 << 8
	Proc2VirtualInterruptDeliv  uint32 = 1 << 9
	Proc2PAUSELoopExiting       uint32 = 1 << 10
	Proc2RDRANDExiting          uint32 = 1 << 11
	Proc2EnableINVPCID          uint32 = 1 << 12
	Proc2EnableVMFunctions      uint32 = 1 << 13
	Proc2VMCSShadowing          uint32 = 1 << 14
	Proc2ENCLSExiting           uint32 = 1 << 15
	Proc2RDSEEDExiting          uint32 = 1 << 16
	Proc2EnablePML              uint32 = 1 << 17
	Proc2EPTViolationVE         uint32 = 1 << 18
	Proc2ConcealVMXFromPT       uint32 = 1 << 19
	Proc2EnableXSAVES           uint32 = 1 << 20
	Proc2PASIDTranslation       uint32 = 1 << 21
	Proc2ModeBasedExecute       uint32 = 1 << 22
	Proc2SubPageWrite           uint32 = 1 << 23
	Proc2PTUsesGuestPhysical    uint32 = 1 << 24
	Proc2UseTSCScaling          uint32 = 1 << 25
	Proc2EnableUserWaitPause    uint32 = 1 << 26
	Proc2EnablePCONFIG          uint32 = 1 << 27
	Proc2EnableENCLVExiting     uint32 = 1 << 28
	Proc2BusLockDetection       uint32 = 1 << 30
	Proc2InstructionTimeout     uint32 = 1 << 31
)

// Tertiary processor-based VM-execution controls (64 bits), SDM 25.6.2
// Table 25-8.
const (
	Proc3LOADIWKEYExiting   uint64 = 1 << 0
	Proc3EnableHLAT         uint64 = 1 << 1
	Proc3EPTPagingWrite     uint64 = 1 << 2
	Proc3GuestPagingVerify  uint64 = 1 << 3
	Proc3IPIVirtualization  uint64 = 1 << 4
	Proc3VirtualizeSpecCtrl uint64 = 1 << 7
)

// Primary VM-exit controls, SDM 25.7.1 Table 25-13.
const (
	ExitSaveDebugControls    uint32 = 1 << 2
	ExitHostAddressSpaceSize uint32 = 1 << 9
	ExitLoadPerfGlobalCtrl   uint32 = 1 << 12
	ExitAckInterruptOnExit   uint32 = 1 << 15
	ExitSavePAT              uint32 = 1 << 18
	ExitLoadPAT              uint32 = 1 << 19
	ExitSaveEFER             uint32 = 1 << 20
	ExitLoadEFER             uint32 = 1 << 21
	ExitSavePreemptionTimer  uint32 = 1 << 22
	ExitClearBNDCFGS         uint32 = 1 << 23
	ExitConcealVMXFromPT     uint32 = 1 << 24
	ExitClearRTITCtl         uint32 = 1 << 25
	ExitClearLBRCtl          uint32 = 1 << 26
	ExitClearUINV            uint32 = 1 << 27
	ExitLoadCETState         uint32 = 1 << 28
	ExitLoadPKRS             uint32 = 1 << 29
	ExitSavePerfGlobalCtrl   uint32 = 1 << 30
	ExitActivateSecondary    uint32 = 1 << 31
)

// VM-entry controls, SDM 25.8.1 Table 25-15.
const (
	EntryLoadDebugControls  uint32 = 1 << 2
	EntryIA32eModeGuest     uint32 = 1 << 9
	EntryToSMM              uint32 = 1 << 10
	EntryDeactivateDualMon  uint32 = 1 << 11
	EntryLoadPerfGlobalCtrl uint32 = 1 << 13
	EntryLoadPAT            uint32 = 1 << 14
	EntryLoadEFER           uint32 = 1 << 15
	EntryLoadBNDCFGS        uint32 = 1 << 16
	EntryConcealVMXFromPT   uint32 = 1 << 17
	EntryLoadRTITCtl        uint32 = 1 << 18
	EntryLoadUINV           uint32 = 1 << 19
	EntryLoadCETState       uint32 = 1 << 20
	EntryLoadLBRCtl         uint32 = 1 << 21
	EntryLoadPKRS           uint32 = 1 << 22
)

// The default1 classes: controls that were once reserved with a default of
// 1 and that the non-TRUE capability MSRs always report as must-be-1, SDM
// A.2 and A.3.1, A.3.2, A.4.1, A.5.
const (
	PinDefault1   uint32 = 1<<1 | 1<<2 | 1<<4
	ProcDefault1  uint32 = 1<<1 | 0x7<<4 | 1<<8 | 0xF<<13 | 1<<26
	ExitDefault1  uint32 = 0x1FF | 1<<10 | 1<<11 | 1<<13 | 1<<14 | 1<<16 | 1<<17
	EntryDefault1 uint32 = 0x1FF | 1<<12
)

// ControlSet names one of the VM-execution, VM-exit or VM-entry control
// vectors.
type ControlSet uint8

// Control vectors.
const (
	SetPin ControlSet = iota
	SetProc
	SetProc2
	SetProc3
	SetExit
	SetExit2
	SetEntry
)

func (s ControlSet) String() string {
	switch s {
	case SetPin:
		return "pin-based"
	case SetProc:
		return "primary processor-based"
	case SetProc2:
		return "secondary"
	case SetProc3:
		return "tertiary"
	case SetExit:
		return "VM-exit"
	case SetExit2:
		return "secondary VM-exit"
	case SetEntry:
		return "VM-entry"
	}
	return fmt.Sprintf("control set %d", uint8(s))
}

// controlNames gives each defined control bit the manual's name.
var controlNames = [...]map[uint]string{
	SetPin: {0: "external-interrupt exiting", 3: "NMI exiting", 5: "virtual NMIs",
		6: "activate VMX-preemption timer", 7: "process posted interrupts"},
	SetProc: {2: "interrupt-window exiting", 3: "use TSC offsetting", 7: "HLT exiting", 9: "INVLPG exiting",
		10: "MWAIT exiting", 11: "RDPMC exiting", 12: "RDTSC exiting", 15: "CR3-load exiting",
		16: "CR3-store exiting", 17: "activate tertiary controls", 19: "CR8-load exiting",
		20: "CR8-store exiting", 21: "use TPR shadow", 22: "NMI-window exiting", 23: "MOV-DR exiting",
		24: "unconditional I/O exiting", 25: "use I/O bitmaps", 27: "monitor trap flag",
		28: "use MSR bitmaps", 29: "MONITOR exiting", 30: "PAUSE exiting", 31: "activate secondary controls"},
	SetProc2: {0: "virtualize APIC accesses", 1: "enable EPT", 2: "descriptor-table exiting",
		3: "enable RDTSCP", 4: "virtualize x2APIC mode", 5: "enable VPID", 6: "WBINVD exiting",
		7: "unrestricted guest", 8: "APIC-register virtualization", 9: "virtual-interrupt delivery",
		10: "PAUSE-loop exiting", 11: "RDRAND exiting", 12: "enable INVPCID", 13: "enable VM functions",
		14: "VMCS shadowing", 15: "enable ENCLS exiting", 16: "RDSEED exiting", 17: "enable PML",
		18: "EPT-violation #VE", 19: "conceal VMX from PT", 20: "enable XSAVES/XRSTORS",
		21: "PASID translation", 22: "mode-based execute control for EPT", 23: "sub-page write permissions for EPT",
		24: "Intel PT uses guest physical addresses", 25: "use TSC scaling", 26: "enable user wait and pause",
		27: "enable PCONFIG", 28: "enable ENCLV exiting", 30: "VMM bus-lock detection", 31: "instruction timeout"},
	SetProc3: {0: "LOADIWKEY exiting", 1: "enable HLAT", 2: "EPT paging-write control",
		3: "guest-paging verification", 4: "IPI virtualization", 7: "virtualize IA32_SPEC_CTRL"},
	SetExit: {2: "save debug controls", 9: "host address-space size", 12: "load IA32_PERF_GLOBAL_CTRL",
		15: "acknowledge interrupt on exit", 18: "save IA32_PAT", 19: "load IA32_PAT", 20: "save IA32_EFER",
		21: "load IA32_EFER", 22: "save VMX-preemption timer value", 23: "clear IA32_BNDCFGS",
		24: "conceal VMX from PT", 25: "clear IA32_RTIT_CTL", 26: "clear IA32_LBR_CTL", 27: "clear UINV",
		28: "load CET state", 29: "load PKRS", 30: "save IA32_PERF_GLOBAL_CTL", 31: "activate secondary controls"},
	SetExit2: {},
	SetEntry: {2: "load debug controls", 9: "IA-32e mode guest", 10: "entry to SMM",
		11: "deactivate dual-monitor treatment", 13: "load IA32_PERF_GLOBAL_CTRL", 14: "load IA32_PAT",
		15: "load IA32_EFER", 16: "load IA32_BNDCFGS", 17: "conceal VMX from PT", 18: "load IA32_RTIT_CTL",
		19: "load UINV", 20: "load CET state", 21: "load guest IA32_LBR_CTL", 22: "load PKRS"},
}

// ControlName returns the manual's name of bit bit of set s, or "bit N" for a
// reserved bit.
func ControlName(s ControlSet, bit uint) string {
	if int(s) < len(controlNames) {
		if n, ok := controlNames[s][bit]; ok {
			return n
		}
	}
	return fmt.Sprintf("bit %d", bit)
}

// knownControls returns the mask of bits of s this package names.
func knownControls(s ControlSet) uint64 {
	var m uint64
	for b := range controlNames[s] {
		m |= 1 << b
	}
	return m
}

// ErrMissingControl is wrapped by every MissingControlError.
var ErrMissingControl = errors.New("vmx: required control unsupported")

// MissingControlError names one control we require that the CPU's
// capability MSRs do not allow to be 1.
type MissingControlError struct {
	Set ControlSet
	Bit uint
}

func (e *MissingControlError) Error() string {
	return fmt.Sprintf("vmx: CPU lacks required %s control %q", e.Set, ControlName(e.Set, e.Bit))
}

// Unwrap lets errors.Is(err, ErrMissingControl) match.
func (e *MissingControlError) Unwrap() error { return ErrMissingControl }

// Want is what we ask of one 32-bit control vector: bits that must be 1 for
// us to run at all, and bits we use when the CPU has them.
type Want struct {
	Required, Optional uint32
}

// Want64 is Want for the 64-bit vectors (tertiary, secondary exit).
type Want64 struct {
	Required, Optional uint64
}

// ControlRequest is what the hypervisor asks of every control vector.
// Activating the secondary, tertiary and secondary-exit vectors is implied
// by asking for any bit in them.
type ControlRequest struct {
	Pin, Proc, Proc2, Exit, Entry Want
	Proc3, Exit2                  Want64
}

// Controls are the final values to write to the VMCS control fields.
type Controls struct {
	Pin, Proc, Proc2, Exit, Entry uint32
	Proc3, Exit2                  uint64
}

// Has reports whether every bit of mask is set in vector s.
func (c Controls) Has(s ControlSet, mask uint64) bool {
	var v uint64
	switch s {
	case SetPin:
		v = uint64(c.Pin)
	case SetProc:
		v = uint64(c.Proc)
	case SetProc2:
		v = uint64(c.Proc2)
	case SetProc3:
		v = c.Proc3
	case SetExit:
		v = uint64(c.Exit)
	case SetExit2:
		v = c.Exit2
	case SetEntry:
		v = uint64(c.Entry)
	}
	return v&mask == mask
}

// adjust computes one vector. must1/may1 are the effective allowed settings;
// default1 is the vector's default1 class. Reserved default1 bits (those the
// manual defines no function for) are kept at 1, which is their default and
// what SDM 31.5.1 recommends; a default1 bit that is a known control is 1
// only when asked for or when the CPU forces it (always without TRUE MSRs).
func adjust(s ControlSet, must1, may1, default1 uint64, w Want64) (uint64, []error) {
	reservedDefault1 := default1 &^ knownControls(s)
	v := must1 | (w.Required|w.Optional|reservedDefault1)&may1
	var errs []error
	for missing := w.Required &^ may1; missing != 0; missing &= missing - 1 {
		errs = append(errs, &MissingControlError{Set: s, Bit: uint(bits.TrailingZeros64(missing))})
	}
	return v, errs
}

// ComputeControls returns the control values for req on a CPU with caps c:
// every required and every available optional control set, every control
// the CPU forces set, nothing the CPU forbids. The secondary, tertiary and
// secondary-exit vectors are activated when anything in them is requested
// and left zero otherwise. If any required control is unavailable the error
// joins one MissingControlError per control.
func ComputeControls(c *Caps, req ControlRequest) (Controls, error) {
	var errs []error
	if req.Proc2.Required != 0 {
		req.Proc.Required |= ProcActivateSecondary
	} else if req.Proc2.Optional != 0 {
		req.Proc.Optional |= ProcActivateSecondary
	}
	if req.Proc3.Required != 0 {
		req.Proc.Required |= ProcActivateTertiary
	} else if req.Proc3.Optional != 0 {
		req.Proc.Optional |= ProcActivateTertiary
	}
	if req.Exit2.Required != 0 {
		req.Exit.Required |= ExitActivateSecondary
	} else if req.Exit2.Optional != 0 {
		req.Exit.Optional |= ExitActivateSecondary
	}
	w := func(x Want) Want64 { return Want64{uint64(x.Required), uint64(x.Optional)} }
	run := func(s ControlSet, a Allowed, default1 uint32, want Want64) uint32 {
		v, e := adjust(s, uint64(a.Must1), uint64(a.May1), uint64(default1), want)
		errs = append(errs, e...)
		return uint32(v)
	}
	var out Controls
	out.Pin = run(SetPin, c.Pin, PinDefault1, w(req.Pin))
	out.Proc = run(SetProc, c.Proc, ProcDefault1, w(req.Proc))
	out.Exit = run(SetExit, c.Exit, ExitDefault1, w(req.Exit))
	out.Entry = run(SetEntry, c.Entry, EntryDefault1, w(req.Entry))
	// A vector that is not activated is ignored by the CPU; report its
	// required bits as missing rather than silently dropping them.
	if out.Proc&ProcActivateSecondary != 0 {
		out.Proc2 = run(SetProc2, c.Proc2, 0, w(req.Proc2))
	} else {
		_, e := adjust(SetProc2, 0, 0, 0, w(req.Proc2))
		errs = append(errs, e...)
	}
	if out.Proc&ProcActivateTertiary != 0 {
		v, e := adjust(SetProc3, 0, c.Proc3, 0, req.Proc3)
		out.Proc3, errs = v, append(errs, e...)
	} else {
		_, e := adjust(SetProc3, 0, 0, 0, req.Proc3)
		errs = append(errs, e...)
	}
	if out.Exit&ExitActivateSecondary != 0 {
		v, e := adjust(SetExit2, 0, c.Exit2, 0, req.Exit2)
		out.Exit2, errs = v, append(errs, e...)
	} else {
		_, e := adjust(SetExit2, 0, 0, 0, req.Exit2)
		errs = append(errs, e...)
	}
	if err := errors.Join(errs...); err != nil {
		return Controls{}, err
	}
	// An activated vector that ended up empty only costs a VMCS field; turn
	// it off unless asked for or forced.
	if out.Proc2 == 0 && req.Proc.Required&ProcActivateSecondary == 0 && c.Proc.Must1&ProcActivateSecondary == 0 {
		out.Proc &^= ProcActivateSecondary
	}
	if out.Proc3 == 0 && req.Proc.Required&ProcActivateTertiary == 0 && c.Proc.Must1&ProcActivateTertiary == 0 {
		out.Proc &^= ProcActivateTertiary
	}
	if out.Exit2 == 0 && req.Exit.Required&ExitActivateSecondary == 0 && c.Exit.Must1&ExitActivateSecondary == 0 {
		out.Exit &^= ExitActivateSecondary
	}
	return out, nil
}

// CR0 and CR4 bits the fixed-bit rules and entry checks name, SDM Vol. 3A
// 2.5.
const (
	CR0PE uint64 = 1 << 0
	CR0MP uint64 = 1 << 1
	CR0ET uint64 = 1 << 4
	CR0NE uint64 = 1 << 5
	CR0WP uint64 = 1 << 16
	CR0NW uint64 = 1 << 29
	CR0CD uint64 = 1 << 30
	CR0PG uint64 = 1 << 31

	CR4VME   uint64 = 1 << 0
	CR4PAE   uint64 = 1 << 5
	CR4PCIDE uint64 = 1 << 17
	CR4VMXE  uint64 = 1 << 13
	CR4CET   uint64 = 1 << 23
	CR4LA57  uint64 = 1 << 12
)

// GuestCR0Fixed0 returns the CR0 bits that must be 1 in the guest: the
// IA32_VMX_CR0_FIXED0 bits, except PE and PG when the "unrestricted guest"
// control is 1 (SDM 27.3.1.1).
func (c *Caps) GuestCR0Fixed0(unrestricted bool) uint64 {
	f := c.CR0Fixed0
	if unrestricted {
		f &^= CR0PE | CR0PG
	}
	return f
}

// FixCR0 forces the fixed bits into a CR0 value: the host's CR0 in VMX
// operation (unrestricted=false) or a guest CR0 under the given setting of
// "unrestricted guest". Bits 63:32 are reserved and cleared.
func (c *Caps) FixCR0(cr0 uint64, unrestricted bool) uint64 {
	return (cr0 | c.GuestCR0Fixed0(unrestricted)) & c.CR0Fixed1 & 0xFFFF_FFFF
}

// FixCR4 forces the fixed bits (CR4.VMXE among them) into a CR4 value.
func (c *Caps) FixCR4(cr4 uint64) uint64 {
	return (cr4 | c.CR4Fixed0) & c.CR4Fixed1
}

// CheckCR0 reports the first bit of cr0 that violates the fixed bits.
func (c *Caps) CheckCR0(cr0 uint64, unrestricted bool) error {
	if bad := c.GuestCR0Fixed0(unrestricted) &^ cr0; bad != 0 {
		return fmt.Errorf("vmx: CR0 %#x: bit %d must be 1 in VMX operation", cr0, bits.TrailingZeros64(bad))
	}
	if bad := cr0 &^ (c.CR0Fixed1 & 0xFFFF_FFFF); bad != 0 {
		return fmt.Errorf("vmx: CR0 %#x: bit %d must be 0 in VMX operation", cr0, bits.TrailingZeros64(bad))
	}
	return nil
}

// CheckCR4 reports the first bit of cr4 that violates the fixed bits.
func (c *Caps) CheckCR4(cr4 uint64) error {
	if bad := c.CR4Fixed0 &^ cr4; bad != 0 {
		return fmt.Errorf("vmx: CR4 %#x: bit %d must be 1 in VMX operation", cr4, bits.TrailingZeros64(bad))
	}
	if bad := cr4 &^ c.CR4Fixed1; bad != 0 {
		return fmt.Errorf("vmx: CR4 %#x: bit %d must be 0 in VMX operation", cr4, bits.TrailingZeros64(bad))
	}
	return nil
}
