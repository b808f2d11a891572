package vmm

// MSR policy. A guest may use exactly these MSRs; the backend keeps their
// values in its guest state (VMCB/VMCS or its own shadow). Every other MSR
// access injects #GP(0), as a CPU does for an MSR it does not implement;
// that rule is deliberate: an unknown MSR would otherwise need a decision per
// model, and silently returning zero hides guest bugs.
const (
	MSRTSC          = 0x10
	MSRAPICBase     = 0x1B
	MSRSysenterCS   = 0x174
	MSRSysenterESP  = 0x175
	MSRSysenterEIP  = 0x176
	MSRPAT          = 0x277
	MSREFER         = 0xC0000080
	MSRSTAR         = 0xC0000081
	MSRLSTAR        = 0xC0000082
	MSRCSTAR        = 0xC0000083
	MSRSFMASK       = 0xC0000084
	MSRFSBase       = 0xC0000100
	MSRGSBase       = 0xC0000101
	MSRKernelGSBase = 0xC0000102
	MSRTSCAux       = 0xC0000103
)

// APICBaseDefault is what a guest reads from IA32_APIC_BASE: the default
// xAPIC address, enabled, bootstrap processor (Intel SDM vol. 3A 11.4.4).
const APICBaseDefault = 0xFEE00000 | 1<<11 | 1<<8

// EFER bits a guest may set (SCE, LME, LMA, NXE).
const eferGuestBits = 1<<0 | 1<<8 | 1<<10 | 1<<11

// readMSR answers a guest RDMSR. ok false means inject #GP. The VM's
// per-processor devices (the local APIC) come first.
func (v *vcpuRun) readMSR(msr uint32) (uint64, bool) {
	if l := v.vm.Local; l != nil {
		if val, handled, err := l.ReadMSR(v.index, msr); handled {
			return val, err == nil
		}
	}
	if val, ok := v.platformMSRs.read(msr); ok {
		return val, true
	}
	switch msr {
	case MSRTSC:
		return v.hostTSC() + uint64(v.cpu.TSCOffset()), true
	case MSRTSCAdjust:
		return v.platformMSRs.tscAdjust, v.platformMSRs.tscAdjustOK
	case MSRAPICBase:
		if v.index == 0 {
			return APICBaseDefault, true
		}
		return APICBaseDefault &^ (1 << 8), true
	case MSREFER:
		e, _ := v.cpu.MSR(MSREFER)
		return e & (eferGuestBits), true
	}
	if val, ok := v.cpu.MSR(msr); ok {
		return val, true
	}
	return 0, false
}

// writeMSR performs a guest WRMSR. ok false means inject #GP.
func (v *vcpuRun) writeMSR(msr uint32, val uint64) bool {
	if l := v.vm.Local; l != nil {
		if handled, err := l.WriteMSR(v.index, msr, val); handled {
			return err == nil
		}
	}
	if handled, ok := v.platformMSRs.write(msr, val); handled {
		return ok
	}
	switch msr {
	case MSRTSC:
		// IA32_TSC_ADJUST follows a write to the TSC (SDM 18.17.3).
		old := v.hostTSC() + uint64(v.cpu.TSCOffset())
		v.platformMSRs.tscAdjust += val - old
		v.cpu.SetTSCOffset(int64(val - v.hostTSC()))
		return true
	case MSRTSCAdjust:
		if !v.platformMSRs.tscAdjustOK {
			return false
		}
		v.cpu.SetTSCOffset(v.cpu.TSCOffset() + int64(val-v.platformMSRs.tscAdjust))
		v.platformMSRs.tscAdjust = val
		return true
	case MSRAPICBase:
		return val == APICBaseDefault || val == APICBaseDefault&^(1<<8)
	case MSREFER:
		if val&^uint64(eferGuestBits) != 0 {
			return false
		}
		return v.cpu.SetMSR(MSREFER, val)
	case MSRPAT:
		// Each byte must be a valid memory type (0, 1, 4, 5, 6, 7).
		for i := 0; i < 8; i++ {
			switch (val >> (8 * i)) & 0xFF {
			case 0, 1, 4, 5, 6, 7:
			default:
				return false
			}
		}
	case MSRFSBase, MSRGSBase, MSRKernelGSBase, MSRLSTAR, MSRCSTAR, MSRSysenterESP, MSRSysenterEIP:
		if !canonical(val) {
			return false
		}
	}
	return v.cpu.SetMSR(msr, val)
}

func canonical(a uint64) bool { return a < 1<<47 || a >= 0xFFFF800000000000 }

// MSRs the VMM models itself: architectural registers a guest operating
// system reads without a #GP fixup, so that it must see sane values, and
// that no backend keeps in its guest state. Each value is that of a
// processor whose firmware has finished platform setup.
const (
	// MSRMTRRCap is IA32_MTRRCAP (Intel SDM vol. 3A 12.11.1, AMD APM vol.
	// 2 7.7.1), read-only. The guest sees no variable or fixed ranges
	// (VCNT = 0, FIX = 0), write-combining supported (WC, bit 10) and no
	// SMRR: all of guest RAM takes the default type, because guest memory
	// types are not the VMM's to split (nested paging ignores them).
	MSRMTRRCap = 0xFE
	// MSRMTRRDefType is IA32_MTRR_DEF_TYPE (SDM 12.11.2.1): type in bits
	// 7:0, FE bit 10, E bit 11, the rest reserved (#GP on write).
	MSRMTRRDefType = 0x2FF
	// MSRAMDNBCfg is AMD's NB_CFG (BKDG for family 10h, MSRC001_001F).
	// Linux sets EnableCf8ExtCfg (bit 46) on every AMD family 10h and
	// later processor without a #GP fixup. Only that bit is modelled: it
	// reads back as written; the host bridge has no extended configuration
	// space for it to open (devices/pci), as for conventional PCI. Any
	// other bit is reserved here (#GP on write).
	MSRAMDNBCfg = 0xC001001F
	// MSRMiscEnable is IA32_MISC_ENABLE (Intel SDM vol. 4, table 2-2),
	// present on Intel processors only: Linux's verify_cpu reads it with
	// no #GP fixup on every Intel CPU to clear XD Bit Disable, so a #GP
	// there is a triple fault before the kernel has an IDT. AMD guests get
	// #GP, as from their hardware.
	MSRMiscEnable = 0x1A0
	// MSRBiosSignID is IA32_BIOS_SIGN_ID (SDM vol. 3A 10.11.7.1), Intel
	// only: software writes 0, executes CPUID leaf 1, and reads the
	// microcode revision from bits 63:32. Linux's early_init_intel does
	// that without a #GP fixup. The write is accepted and has no other
	// effect; the revision is MicrocodeRevision.
	MSRBiosSignID = 0x8B
	// MSRTSCAdjust is IA32_TSC_ADJUST (SDM vol. 3B 18.17.3), present
	// when CPUID.(EAX=7,ECX=0):EBX[1] is set, which the guest sees from
	// the host. Linux reads it without a #GP fixup when CPUID says so. A
	// write to it moves the TSC by the change; a write to the TSC moves it
	// by the TSC's change.
	MSRTSCAdjust = 0x3B
	// MSRAMDHWCR is AMD's HWCR (APM vol. 2 and the family 17h PPR,
	// MSRC001_0015), AMD only. Linux's bsp_init_amd reads it without a #GP
	// fixup when the TSC is invariant, to check TscFreqSel (bit 24, R/O 1:
	// the TSC counts at the P0 frequency), which is what the guest reads.
	// The VMM models no other bit: a write must leave the value as it is
	// (TscFreqSel ignores writes), else #GP.
	MSRAMDHWCR = 0xC0010015
)

// HWCRTscFreqSel is HWCR bit 24, TscFreqSel.
const HWCRTscFreqSel = 1 << 24

// MicrocodeRevision is the microcode revision an Intel guest reads: the
// VMM loads no microcode for it, and 0 reads as "never updated", which
// some guests take for a firmware without any update.
const MicrocodeRevision = 1

// IA32_MISC_ENABLE bits (SDM vol. 4, table 2-2).
const (
	MiscEnableFastStrings  = 1 << 0  // R/W
	MiscEnableThermal      = 1 << 3  // R/W, automatic thermal control circuit
	MiscEnablePerfMon      = 1 << 7  // R/O, performance monitoring available
	MiscEnableBTSUnavail   = 1 << 11 // R/O
	MiscEnablePEBSUnavail  = 1 << 12 // R/O
	MiscEnableEIST         = 1 << 16 // R/W, Enhanced Intel SpeedStep
	MiscEnableMonitorFSM   = 1 << 18 // R/W, MONITOR/MWAIT enabled
	MiscEnableLimitCPUID   = 1 << 22 // R/W, CPUID leaf 0 reports at most 2
	MiscEnableXTPRDisable  = 1 << 23 // R/W
	MiscEnableXDDisable    = 1 << 34 // R/W, hides and disables NX
	miscEnableReadOnly     = MiscEnablePerfMon | MiscEnableBTSUnavail | MiscEnablePEBSUnavail
	miscEnableStored       = MiscEnableFastStrings | MiscEnableThermal | MiscEnableXTPRDisable
	miscEnableFixed        = MiscEnableEIST | MiscEnableMonitorFSM | MiscEnableLimitCPUID | MiscEnableXDDisable
	miscEnableArchitecture = miscEnableReadOnly | miscEnableStored | miscEnableFixed
)

// NBCfgEnableCF8ExtCfg is NB_CFG bit 46, EnableCf8ExtCfg.
const NBCfgEnableCF8ExtCfg = 1 << 46

// MTRRCapValue is IA32_MTRRCAP: WC supported, no ranges.
const MTRRCapValue = 1 << 10

// MTRRDefTypeFirmware is IA32_MTRR_DEF_TYPE as firmware leaves it: MTRRs
// enabled (E), default type write-back (6), fixed ranges off.
const MTRRDefTypeFirmware = 1<<11 | mtrrTypeWB

// Memory types valid in an MTRR (SDM table 12-8: 2, 3 and 7+ are reserved).
const (
	mtrrTypeUC = 0
	mtrrTypeWC = 1
	mtrrTypeWT = 4
	mtrrTypeWP = 5
	mtrrTypeWB = 6

	mtrrDefTypeWritable = 0xFF | 1<<10 | 1<<11
)

// platformMSRs hold one vCPU's VMM-modelled MSRs.
type platformMSRs struct {
	intel       bool // the guest sees an Intel CPU: IA32_MISC_ENABLE exists
	amd         bool // the guest sees an AMD CPU: HWCR exists
	tscAdjustOK bool // CPUID shows IA32_TSC_ADJUST
	tscAdjust   uint64
	mtrrDefType uint64
	nbCfg       uint64
	// miscEnable is IA32_MISC_ENABLE. The guest has no PEBS or BTS (no
	// debug store) and no performance monitoring of ours; MONITOR FSM
	// follows the CPUID it sees. The bits whose effect the VMM does not
	// model (EIST, MONITOR FSM, Limit CPUID Maxval, XD Bit Disable) keep
	// their power-on values: a write that changes one is #GP, like a
	// reserved bit, rather than a change the guest's CPUID would then
	// contradict.
	miscEnable uint64
}

// newPlatformMSRs gives the power-on values for a vCPU whose CPUID is
// guest (GuestCPUID's view).
func newPlatformMSRs(guest CPUIDFunc) platformMSRs {
	p := platformMSRs{mtrrDefType: MTRRDefTypeFirmware}
	_, b, c, d := guest(0, 0)
	p.intel = b == 0x756E6547 && d == 0x49656E69 && c == 0x6C65746E // "GenuineIntel"
	p.amd = b == 0x68747541 && d == 0x69746E65 && c == 0x444D4163   // "AuthenticAMD"
	p.miscEnable = MiscEnableFastStrings | MiscEnableBTSUnavail | MiscEnablePEBSUnavail
	if _, _, c1, _ := guest(1, 0); c1&(1<<3) != 0 {
		p.miscEnable |= MiscEnableMonitorFSM
	}
	if max, _, _, _ := guest(0, 0); max >= 7 {
		_, b7, _, _ := guest(7, 0)
		p.tscAdjustOK = b7&(1<<1) != 0
	}
	return p
}

func (p *platformMSRs) read(msr uint32) (uint64, bool) {
	switch msr {
	case MSRMTRRCap:
		return MTRRCapValue, true
	case MSRMTRRDefType:
		return p.mtrrDefType, true
	case MSRAMDNBCfg:
		return p.nbCfg, true
	case MSRMiscEnable:
		return p.miscEnable, p.intel
	case MSRBiosSignID:
		return MicrocodeRevision << 32, p.intel
	case MSRAMDHWCR:
		return HWCRTscFreqSel, p.amd
	}
	return 0, false
}

// write reports whether the MSR is one of these (handled) and whether the
// write is allowed (ok; false injects #GP).
func (p *platformMSRs) write(msr uint32, val uint64) (handled, ok bool) {
	switch msr {
	case MSRMTRRCap:
		return true, false
	case MSRMTRRDefType:
		if val&^uint64(mtrrDefTypeWritable) != 0 {
			return true, false
		}
		switch val & 0xFF {
		case mtrrTypeUC, mtrrTypeWC, mtrrTypeWT, mtrrTypeWP, mtrrTypeWB:
		default:
			return true, false
		}
		// FE without fixed-range support (MTRRCAP.FIX = 0) is reserved.
		if val&(1<<10) != 0 {
			return true, false
		}
		p.mtrrDefType = val
		return true, true
	case MSRAMDNBCfg:
		if val&^uint64(NBCfgEnableCF8ExtCfg) != 0 {
			return true, false
		}
		p.nbCfg = val
		return true, true
	case MSRMiscEnable:
		if !p.intel || val&^uint64(miscEnableArchitecture) != 0 || (val^p.miscEnable)&miscEnableFixed != 0 {
			return true, false
		}
		// Read-only bits ignore the write.
		p.miscEnable = p.miscEnable&^miscEnableStored | val&miscEnableStored
		return true, true
	case MSRBiosSignID:
		return true, p.intel
	case MSRAMDHWCR:
		return true, p.amd && val&^uint64(HWCRTscFreqSel) == 0
	}
	return false, false
}

// save puts the VMM-modelled MSRs into a vCPU state.
func (p *platformMSRs) save(st *State) {
	st.VMMMSRs = map[uint32]uint64{MSRMTRRDefType: p.mtrrDefType, MSRAMDNBCfg: p.nbCfg, MSRMiscEnable: p.miscEnable, MSRTSCAdjust: p.tscAdjust}
}

// restore takes them back; missing entries keep their power-on values.
func (p *platformMSRs) restore(m map[uint32]uint64) {
	if v, ok := m[MSRMTRRDefType]; ok {
		p.mtrrDefType = v
	}
	if v, ok := m[MSRAMDNBCfg]; ok {
		p.nbCfg = v
	}
	if v, ok := m[MSRMiscEnable]; ok {
		p.miscEnable = v
	}
	if v, ok := m[MSRTSCAdjust]; ok {
		p.tscAdjust = v
	}
}
