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

// GuestMSR answers a guest RDMSR. ok false means inject #GP.
func (v *vcpuRun) readMSR(msr uint32) (uint64, bool) {
	switch msr {
	case MSRTSC:
		return v.hostTSC() + uint64(v.cpu.TSCOffset()), true
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
	switch msr {
	case MSRTSC:
		v.cpu.SetTSCOffset(int64(val - v.hostTSC()))
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
