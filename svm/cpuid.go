package svm

import (
	"errors"
	"fmt"
	"strings"
)

// CPUID leaves and bits that announce SVM.
const (
	// CPUIDExtFeatures is Fn8000_0001; ECX bit 2 (SVM) says SVM exists
	// (APM vol. 3 appendix E.4.2, APM vol. 2 15.4).
	CPUIDExtFeatures = 0x8000_0001
	CPUIDExtECXSVM   = 1 << 2
	// CPUIDSVMFeatures is Fn8000_000A, "SVM Revision and Feature
	// Identification" (APM vol. 3 appendix E.4.9).
	CPUIDSVMFeatures = 0x8000_000a
)

// Feature is one bit of CPUID Fn8000_000A EDX (APM vol. 3 E.4.9, names as
// the manual spells them).
type Feature uint32

const (
	FeatureNP                    Feature = 1 << 0  // nested paging
	FeatureLbrVirt               Feature = 1 << 1  // LBR virtualization
	FeatureSVML                  Feature = 1 << 2  // SVM lock (VM_CR.LOCK, SVM_KEY)
	FeatureNRIPS                 Feature = 1 << 3  // nRIP save on #VMEXIT
	FeatureTscRateMsr            Feature = 1 << 4  // MSR TSC ratio control
	FeatureVmcbClean             Feature = 1 << 5  // VMCB clean bits
	FeatureFlushByAsid           Feature = 1 << 6  // TLB_CONTROL 3 and 7
	FeatureDecodeAssists         Feature = 1 << 7  // EXITINFO decode assists, instruction bytes
	FeaturePmcVirt               Feature = 1 << 8  // PMC virtualization
	FeaturePauseFilter           Feature = 1 << 10 // PAUSE intercept filter count
	FeaturePauseFilterThreshold  Feature = 1 << 12 // PAUSE filter cycle threshold
	FeatureAVIC                  Feature = 1 << 13 // advanced virtual interrupt controller
	FeatureVMSAVEvirt            Feature = 1 << 15 // virtualized VMSAVE/VMLOAD
	FeatureVGIF                  Feature = 1 << 16 // virtualized GIF
	FeatureGMET                  Feature = 1 << 17 // guest mode execute trap
	FeatureX2AVIC                Feature = 1 << 18 // AVIC for x2APIC mode
	FeatureSSSCheck              Feature = 1 << 19 // supervisor shadow stack restrictions in NPT
	FeatureSpecCtrl              Feature = 1 << 20 // SPEC_CTRL virtualization
	FeatureROGPT                 Feature = 1 << 21 // read-only guest page table
	FeatureHostMCEOverride       Feature = 1 << 23 // host #MC intercept with CR4.MCE clear in guest
	FeatureTlbiCtl               Feature = 1 << 24 // INVLPGB/TLBSYNC enable in VMCB
	FeatureVNMI                  Feature = 1 << 25 // NMI virtualization
	FeatureIbsVirt               Feature = 1 << 26 // IBS virtualization
	FeatureExtLvtAvicAccessChg   Feature = 1 << 27 // extended LVT AVIC access changes
	FeatureNestedVirtVmcbAddrChk Feature = 1 << 28 // guest VMCB address check
	FeatureBusLockThreshold      Feature = 1 << 29 // bus lock threshold
	FeatureIdleHltIntercept      Feature = 1 << 30 // idle HLT intercept
)

var featureNames = [...]struct {
	f    Feature
	name string
}{
	{FeatureNP, "NP"},
	{FeatureLbrVirt, "LbrVirt"},
	{FeatureSVML, "SVML"},
	{FeatureNRIPS, "NRIPS"},
	{FeatureTscRateMsr, "TscRateMsr"},
	{FeatureVmcbClean, "VmcbClean"},
	{FeatureFlushByAsid, "FlushByAsid"},
	{FeatureDecodeAssists, "DecodeAssists"},
	{FeaturePmcVirt, "PmcVirt"},
	{FeaturePauseFilter, "PauseFilter"},
	{FeaturePauseFilterThreshold, "PauseFilterThreshold"},
	{FeatureAVIC, "AVIC"},
	{FeatureVMSAVEvirt, "VMSAVEvirt"},
	{FeatureVGIF, "VGIF"},
	{FeatureGMET, "GMET"},
	{FeatureX2AVIC, "x2AVIC"},
	{FeatureSSSCheck, "SSSCheck"},
	{FeatureSpecCtrl, "SpecCtrl"},
	{FeatureROGPT, "ROGPT"},
	{FeatureHostMCEOverride, "HOST_MCE_OVERRIDE"},
	{FeatureTlbiCtl, "TlbiCtl"},
	{FeatureVNMI, "VNMI"},
	{FeatureIbsVirt, "IbsVirt"},
	{FeatureExtLvtAvicAccessChg, "ExtLvtAvicAccessChg"},
	{FeatureNestedVirtVmcbAddrChk, "NestedVirtVmcbAddrChk"},
	{FeatureBusLockThreshold, "BusLockThreshold"},
	{FeatureIdleHltIntercept, "IdleHltIntercept"},
}

// String lists the set bits by name, separated by "|"; unnamed bits print
// as "bitN".
func (f Feature) String() string {
	var parts []string
	rest := f
	for _, n := range featureNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	for b := 0; b < 32; b++ {
		if rest&(1<<b) != 0 {
			parts = append(parts, fmt.Sprintf("bit%d", b))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// SVMInfo is the decoded CPUID Fn8000_000A.
type SVMInfo struct {
	Revision uint8   // EAX 7:0, SVM revision number
	NASID    uint32  // EBX, number of address space identifiers (ASID 0 is the host's)
	Features Feature // EDX
}

// DecodeSVMInfo decodes the registers returned by CPUID Fn8000_000A.
// ECX is reserved and ignored.
func DecodeSVMInfo(eax, ebx, ecx, edx uint32) SVMInfo {
	return SVMInfo{Revision: uint8(eax), NASID: ebx, Features: Feature(edx)}
}

// Has reports whether all of the features in f are present.
func (s SVMInfo) Has(f Feature) bool { return s.Features&f == f }

// MaxASID is the largest ASID a guest may use: ASIDs run from 1 to
// NASID-1, ASID 0 being the host (APM 15.16). It is 0 if the CPU reports
// no guest ASIDs at all.
func (s SVMInfo) MaxASID() uint32 {
	if s.NASID < 2 {
		return 0
	}
	return s.NASID - 1
}

// SVM-related MSRs (APM vol. 2 15.30 "SVM-Related MSRs" and appendix A).
const (
	MSREFER      = 0xc000_0080
	MSRTSCRatio  = 0xc000_0104 // TSC_RATIO, with FeatureTscRateMsr
	MSRVMCR      = 0xc001_0114 // VM_CR
	MSRIGNNE     = 0xc001_0115
	MSRSMMCtl    = 0xc001_0116 // SMM_CTL
	MSRVMHsavePA = 0xc001_0117 // VM_HSAVE_PA: physical address of the host save area
)

// EFER bits that SVM cares about (APM vol. 2 3.1.7).
const (
	EFERSCE   = 1 << 0
	EFERLME   = 1 << 8
	EFERLMA   = 1 << 10
	EFERNXE   = 1 << 11
	EFERSVME  = 1 << 12 // SVM enable: VMRUN, VMLOAD, VMSAVE, CLGI, ... are #UD without it
	EFERLMSLE = 1 << 13
	EFERFFXSR = 1 << 14
	EFERTCE   = 1 << 15
)

// VM_CR bits (APM vol. 2 15.30.1).
const (
	VMCRDPD     = 1 << 0 // debug port disable
	VMCRRInit   = 1 << 1 // INIT is redirected (R_INIT)
	VMCRDisA20M = 1 << 2
	VMCRLock    = 1 << 3 // SVMDIS and LOCK are read-only until SVM_KEY unlocks
	VMCRSVMDis  = 1 << 4 // setting EFER.SVME #GPs
)

// TSC_RATIO is an 8.32 fixed-point multiplier, bits 39:32 integer and 31:0
// fraction, reset to 1.0 (APM vol. 2 15.30.5); bits 63:40 are reserved.
const (
	TSCRatioDefault  = 1 << 32
	TSCRatioReserved = ^uint64(1<<40 - 1)
)

// Sentinel errors of CheckVMCR.
var (
	// ErrSVMDisabledLocked: firmware disabled SVM and locked VM_CR; only a
	// firmware setting (or the SVM_KEY the firmware chose) can change it.
	ErrSVMDisabledLocked = errors.New("svm: disabled by firmware (VM_CR.SVMDIS and LOCK set)")
	// ErrSVMDisabled: VM_CR.SVMDIS is set but not locked; software may
	// clear it before setting EFER.SVME.
	ErrSVMDisabled = errors.New("svm: disabled (VM_CR.SVMDIS set, not locked)")
)

// CheckVMCR interprets a VM_CR value the way APM 15.4 "Enabling SVM"
// prescribes: SVM may be enabled when SVMDIS is clear. Reading VM_CR can
// itself #GP under some emulators (Bochs), so the probe that reads it must
// survive that and treat it as "no information", not as "disabled".
func CheckVMCR(vmcr uint64) error {
	if vmcr&VMCRSVMDis == 0 {
		return nil
	}
	if vmcr&VMCRLock != 0 {
		return ErrSVMDisabledLocked
	}
	return ErrSVMDisabled
}
