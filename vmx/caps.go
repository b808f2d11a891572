package vmx

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Architectural MSRs that describe VMX, SDM Vol. 4 Table 2-2 and Vol. 3D
// Appendix A.
const (
	MSRFeatureControl      uint32 = 0x03A // IA32_FEATURE_CONTROL
	MSRVMXBasic            uint32 = 0x480 // IA32_VMX_BASIC, A.1
	MSRVMXPinBasedCtls     uint32 = 0x481 // A.3.1
	MSRVMXProcBasedCtls    uint32 = 0x482 // A.3.2
	MSRVMXExitCtls         uint32 = 0x483 // A.4.1
	MSRVMXEntryCtls        uint32 = 0x484 // A.5
	MSRVMXMisc             uint32 = 0x485 // A.6
	MSRVMXCR0Fixed0        uint32 = 0x486 // A.7
	MSRVMXCR0Fixed1        uint32 = 0x487
	MSRVMXCR4Fixed0        uint32 = 0x488 // A.8
	MSRVMXCR4Fixed1        uint32 = 0x489
	MSRVMXVMCSEnum         uint32 = 0x48A // A.9
	MSRVMXProcBasedCtls2   uint32 = 0x48B // A.3.3
	MSRVMXEPTVPIDCap       uint32 = 0x48C // A.10
	MSRVMXTruePinBasedCtls uint32 = 0x48D // A.3.1
	MSRVMXTrueProcBasedCtl uint32 = 0x48E // A.3.2
	MSRVMXTrueExitCtls     uint32 = 0x48F // A.4.1
	MSRVMXTrueEntryCtls    uint32 = 0x490 // A.5
	MSRVMXVMFunc           uint32 = 0x491 // A.11
	MSRVMXProcBasedCtls3   uint32 = 0x492 // A.3.4
	MSRVMXExitCtls2        uint32 = 0x493 // A.4.2
)

// IA32_FEATURE_CONTROL bits, SDM Vol. 4 Table 2-2 and Vol. 3C 24.7.
const (
	FeatureControlLock          uint64 = 1 << 0
	FeatureControlVMXInsideSMX  uint64 = 1 << 1
	FeatureControlVMXOutsideSMX uint64 = 1 << 2
)

// ErrVMXDisabled means firmware locked IA32_FEATURE_CONTROL with VMX outside
// SMX disabled; only a firmware setting (and a reset) can change that.
var ErrVMXDisabled = errors.New("vmx: disabled by firmware (IA32_FEATURE_CONTROL locked without VMX outside SMX)")

// FeatureControlEnable returns the value to write to IA32_FEATURE_CONTROL so
// that VMXON outside SMX is allowed, and whether a write is needed at all.
// VMXON raises #GP unless the lock bit and the enable bit are both 1 (SDM
// 24.7); an unlocked MSR can be set once, a locked one cannot change.
func FeatureControlEnable(cur uint64) (next uint64, write bool, err error) {
	if cur&FeatureControlLock != 0 {
		if cur&FeatureControlVMXOutsideSMX == 0 {
			return cur, false, ErrVMXDisabled
		}
		return cur, false, nil
	}
	return cur | FeatureControlLock | FeatureControlVMXOutsideSMX, true, nil
}

// MSRReader reads an MSR. On hardware it is RDMSR behind a #GP guard; in
// tests it is an MSRMap.
type MSRReader interface {
	ReadMSR(msr uint32) (uint64, error)
}

// ErrNoMSR is returned by MSRMap for an MSR it does not hold, standing for
// the #GP a CPU raises for an MSR it does not implement.
var ErrNoMSR = errors.New("vmx: MSR not implemented")

// MSRMap is an MSRReader over recorded values, e.g. a dump from a real CPU.
type MSRMap map[uint32]uint64

// ReadMSR implements MSRReader.
func (m MSRMap) ReadMSR(msr uint32) (uint64, error) {
	v, ok := m[msr]
	if !ok {
		return 0, fmt.Errorf("read MSR %#x: %w", msr, ErrNoMSR)
	}
	return v, nil
}

// Basic is IA32_VMX_BASIC decoded, SDM A.1.
type Basic struct {
	Revision     uint32 // bits 30:0, the VMCS revision identifier
	VMCSSize     uint32 // bits 44:32, bytes to allocate for VMXON region and VMCS (at most 4096)
	PhysAddr32   bool   // bit 48: VMXON/VMCS/bitmap addresses limited to 32 bits
	DualMonitor  bool   // bit 49: dual-monitor treatment of SMIs and SMM
	MemType      uint8  // bits 53:50: memory type for VMCS accesses (0 UC, 6 WB)
	InsOutsInfo  bool   // bit 54: VM-exit instruction information is reported for INS/OUTS
	TrueControls bool   // bit 55: the IA32_VMX_TRUE_*_CTLS MSRs exist
	NoErrCodeReq bool   // bit 56: hardware exceptions may be injected with or without error code
	Raw          uint64
}

// DecodeBasic decodes IA32_VMX_BASIC.
func DecodeBasic(v uint64) Basic {
	return Basic{
		Revision:     uint32(v & 0x7FFF_FFFF),
		VMCSSize:     uint32(v >> 32 & 0x1FFF),
		PhysAddr32:   v>>48&1 != 0,
		DualMonitor:  v>>49&1 != 0,
		MemType:      uint8(v >> 50 & 0xF),
		InsOutsInfo:  v>>54&1 != 0,
		TrueControls: v>>55&1 != 0,
		NoErrCodeReq: v>>56&1 != 0,
		Raw:          v,
	}
}

// Allowed is a 32-bit control capability MSR: bits that must be 1 (the
// allowed 0-settings, low half) and bits that may be 1 (the allowed
// 1-settings, high half), SDM A.3-A.5.
type Allowed struct {
	Must1 uint32
	May1  uint32
}

// DecodeAllowed splits a control capability MSR.
func DecodeAllowed(v uint64) Allowed { return Allowed{Must1: uint32(v), May1: uint32(v >> 32)} }

// Misc is IA32_VMX_MISC decoded, SDM A.6.
type Misc struct {
	PreemptionTimerRate uint8  // bits 4:0: the timer ticks when TSC bit Rate changes
	StoresLMA           bool   // bit 5: VM exits store EFER.LMA in "IA-32e mode guest"
	ActivityHLT         bool   // bit 6
	ActivityShutdown    bool   // bit 7
	ActivityWaitSIPI    bool   // bit 8
	PTInVMX             bool   // bit 14: Intel PT usable in VMX operation
	SMBASEReadInSMM     bool   // bit 15
	CR3Targets          uint32 // bits 24:16: number of CR3-target values
	MaxMSRListLen       uint32 // 512*(N+1), N = bits 27:25: recommended maximum per MSR list
	SMMVMXOFFUnblock    bool   // bit 28
	VMWriteAnyField     bool   // bit 29: VMWRITE may write VM-exit information fields
	InjectZeroLength    bool   // bit 30: software interrupts/exceptions may be injected with length 0
	MSEGRevision        uint32 // bits 63:32
	Raw                 uint64
}

// DecodeMisc decodes IA32_VMX_MISC.
func DecodeMisc(v uint64) Misc {
	return Misc{
		PreemptionTimerRate: uint8(v & 0x1F),
		StoresLMA:           v>>5&1 != 0,
		ActivityHLT:         v>>6&1 != 0,
		ActivityShutdown:    v>>7&1 != 0,
		ActivityWaitSIPI:    v>>8&1 != 0,
		PTInVMX:             v>>14&1 != 0,
		SMBASEReadInSMM:     v>>15&1 != 0,
		CR3Targets:          uint32(v >> 16 & 0x1FF),
		MaxMSRListLen:       512 * (uint32(v>>25&7) + 1),
		SMMVMXOFFUnblock:    v>>28&1 != 0,
		VMWriteAnyField:     v>>29&1 != 0,
		InjectZeroLength:    v>>30&1 != 0,
		MSEGRevision:        uint32(v >> 32),
		Raw:                 v,
	}
}

// IA32_VMX_EPT_VPID_CAP bits, SDM A.10.
const (
	EPTCapExecuteOnly       uint64 = 1 << 0
	EPTCapWalk4             uint64 = 1 << 6
	EPTCapWalk5             uint64 = 1 << 7
	EPTCapUC                uint64 = 1 << 8
	EPTCapWB                uint64 = 1 << 14
	EPTCap2MB               uint64 = 1 << 16
	EPTCap1GB               uint64 = 1 << 17
	EPTCapINVEPT            uint64 = 1 << 20
	EPTCapAccessedDirty     uint64 = 1 << 21
	EPTCapAdvancedExitInfo  uint64 = 1 << 22
	EPTCapSupervisorShadow  uint64 = 1 << 23
	EPTCapINVEPTSingle      uint64 = 1 << 25
	EPTCapINVEPTAll         uint64 = 1 << 26
	VPIDCapINVVPID          uint64 = 1 << 32
	VPIDCapIndividualAddr   uint64 = 1 << 40
	VPIDCapSingleContext    uint64 = 1 << 41
	VPIDCapAllContext       uint64 = 1 << 42
	VPIDCapSingleKeepGlobal uint64 = 1 << 43
)

// EPTVPIDCap is IA32_VMX_EPT_VPID_CAP; test bits with Has.
type EPTVPIDCap uint64

// Has reports whether every bit of mask is set.
func (c EPTVPIDCap) Has(mask uint64) bool { return uint64(c)&mask == mask }

// Caps is everything the VMX capability MSRs say about this processor, in
// the form the rest of the package needs. Pin, Proc, Exit and Entry are the
// effective allowed settings: from the TRUE MSRs when Basic.TrueControls,
// else from the original ones. The *Default fields keep the original MSRs,
// whose Must1 bits include the default1 class.
type Caps struct {
	FeatureControl uint64
	Basic          Basic

	Pin, Proc, Exit, Entry                             Allowed
	PinDefault, ProcDefault, ExitDefault, EntryDefault Allowed

	Proc2 Allowed // zero unless primary bit 31 may be 1
	Proc3 uint64  // allowed 1-settings of the tertiary controls; 0 unless primary bit 17 may be 1
	Exit2 uint64  // allowed 1-settings of the secondary exit controls; 0 unless exit bit 31 may be 1

	Misc                 Misc
	CR0Fixed0, CR0Fixed1 uint64
	CR4Fixed0, CR4Fixed1 uint64
	VMCSMaxIndex         uint32 // IA32_VMX_VMCS_ENUM bits 9:1, A.9
	EPTVPID              EPTVPIDCap
	VMFunc               uint64 // allowed 1-settings of the VM-function controls, A.11

	// Raw holds every MSR value read, for logging (see Dump).
	Raw map[uint32]uint64
}

// ReadCaps reads and decodes the capability MSRs. It reads an optional MSR
// only where the manual says it exists (Appendix A), so that on a CPU the
// read would #GP on it is never attempted: TRUE MSRs only if BASIC bit 55,
// PROCBASED_CTLS2 only if primary bit 63 (control 31) may be 1, EPT_VPID_CAP
// only if "enable EPT" or "enable VPID" may be 1, VMFUNC only if "enable VM
// functions" may be 1, PROCBASED_CTLS3 only if primary control 17 may be 1,
// EXIT_CTLS2 only if exit control 31 may be 1.
func ReadCaps(r MSRReader) (*Caps, error) {
	c := &Caps{Raw: map[uint32]uint64{}}
	read := func(msr uint32) (uint64, error) {
		v, err := r.ReadMSR(msr)
		if err != nil {
			return 0, fmt.Errorf("vmx: read capability MSR %#x: %w", msr, err)
		}
		c.Raw[msr] = v
		return v, nil
	}
	var err error
	if c.FeatureControl, err = read(MSRFeatureControl); err != nil {
		return nil, err
	}
	basic, err := read(MSRVMXBasic)
	if err != nil {
		return nil, err
	}
	c.Basic = DecodeBasic(basic)
	if c.Basic.VMCSSize == 0 || c.Basic.VMCSSize > 4096 {
		return nil, fmt.Errorf("vmx: IA32_VMX_BASIC %#x: VMCS size %d outside 1..4096", basic, c.Basic.VMCSSize)
	}
	for _, p := range []struct {
		msr uint32
		dst *Allowed
	}{
		{MSRVMXPinBasedCtls, &c.PinDefault},
		{MSRVMXProcBasedCtls, &c.ProcDefault},
		{MSRVMXExitCtls, &c.ExitDefault},
		{MSRVMXEntryCtls, &c.EntryDefault},
	} {
		v, err := read(p.msr)
		if err != nil {
			return nil, err
		}
		*p.dst = DecodeAllowed(v)
	}
	c.Pin, c.Proc, c.Exit, c.Entry = c.PinDefault, c.ProcDefault, c.ExitDefault, c.EntryDefault
	if c.Basic.TrueControls {
		for _, p := range []struct {
			msr uint32
			dst *Allowed
		}{
			{MSRVMXTruePinBasedCtls, &c.Pin},
			{MSRVMXTrueProcBasedCtl, &c.Proc},
			{MSRVMXTrueExitCtls, &c.Exit},
			{MSRVMXTrueEntryCtls, &c.Entry},
		} {
			v, err := read(p.msr)
			if err != nil {
				return nil, err
			}
			*p.dst = DecodeAllowed(v)
		}
	}
	misc, err := read(MSRVMXMisc)
	if err != nil {
		return nil, err
	}
	c.Misc = DecodeMisc(misc)
	for _, p := range []struct {
		msr uint32
		dst *uint64
	}{
		{MSRVMXCR0Fixed0, &c.CR0Fixed0}, {MSRVMXCR0Fixed1, &c.CR0Fixed1},
		{MSRVMXCR4Fixed0, &c.CR4Fixed0}, {MSRVMXCR4Fixed1, &c.CR4Fixed1},
	} {
		if *p.dst, err = read(p.msr); err != nil {
			return nil, err
		}
	}
	enum, err := read(MSRVMXVMCSEnum)
	if err != nil {
		return nil, err
	}
	c.VMCSMaxIndex = uint32(enum >> 1 & 0x1FF)

	if c.Proc.May1&ProcActivateSecondary != 0 {
		v, err := read(MSRVMXProcBasedCtls2)
		if err != nil {
			return nil, err
		}
		c.Proc2 = DecodeAllowed(v)
	}
	if c.Proc2.May1&(Proc2EnableEPT|Proc2EnableVPID) != 0 {
		v, err := read(MSRVMXEPTVPIDCap)
		if err != nil {
			return nil, err
		}
		c.EPTVPID = EPTVPIDCap(v)
	}
	if c.Proc2.May1&Proc2EnableVMFunctions != 0 {
		if c.VMFunc, err = read(MSRVMXVMFunc); err != nil {
			return nil, err
		}
	}
	if c.Proc.May1&ProcActivateTertiary != 0 {
		if c.Proc3, err = read(MSRVMXProcBasedCtls3); err != nil {
			return nil, err
		}
	}
	if c.Exit.May1&ExitActivateSecondary != 0 {
		if c.Exit2, err = read(MSRVMXExitCtls2); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// VMXAllowed reports whether IA32_FEATURE_CONTROL permits VMXON outside SMX
// now or after FeatureControlEnable's write.
func (c *Caps) VMXAllowed() bool {
	_, _, err := FeatureControlEnable(c.FeatureControl)
	return err == nil
}

// HasEPT reports whether "enable EPT" may be 1 and a 4-level walk with a
// write-back or uncacheable paging structure memory type is supported.
func (c *Caps) HasEPT() bool {
	return c.Proc2.May1&Proc2EnableEPT != 0 && c.EPTVPID.Has(EPTCapWalk4) &&
		(c.EPTVPID.Has(EPTCapWB) || c.EPTVPID.Has(EPTCapUC))
}

// HasUnrestrictedGuest reports whether "unrestricted guest" may be 1 (it
// also requires EPT, SDM 27.2.1.1).
func (c *Caps) HasUnrestrictedGuest() bool {
	return c.Proc2.May1&Proc2UnrestrictedGuest != 0 && c.HasEPT()
}

// HasVPID reports whether "enable VPID" may be 1.
func (c *Caps) HasVPID() bool { return c.Proc2.May1&Proc2EnableVPID != 0 }

// HasPreemptionTimer reports whether "activate VMX-preemption timer" may be 1.
func (c *Caps) HasPreemptionTimer() bool { return c.Pin.May1&PinPreemptionTimer != 0 }

// Dump lists every MSR read, one "name=value" per line in MSR order, so a
// boot log records the values a test can replay with MSRMap.
func (c *Caps) Dump() string {
	msrs := make([]uint32, 0, len(c.Raw))
	for m := range c.Raw {
		msrs = append(msrs, m)
	}
	sort.Slice(msrs, func(i, j int) bool { return msrs[i] < msrs[j] })
	var b strings.Builder
	for _, m := range msrs {
		fmt.Fprintf(&b, "msr %#x = %#016x\n", m, c.Raw[m])
	}
	return b.String()
}
