package svm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFeatureBits(t *testing.T) {
	// CPUID Fn8000_000A_EDX, APM vol. 3 E.4.9.
	tests := []struct {
		f   Feature
		bit uint
	}{
		{FeatureNP, 0}, {FeatureLbrVirt, 1}, {FeatureSVML, 2}, {FeatureNRIPS, 3},
		{FeatureTscRateMsr, 4}, {FeatureVmcbClean, 5}, {FeatureFlushByAsid, 6},
		{FeatureDecodeAssists, 7}, {FeaturePmcVirt, 8}, {FeaturePauseFilter, 10},
		{FeaturePauseFilterThreshold, 12}, {FeatureAVIC, 13}, {FeatureVMSAVEvirt, 15},
		{FeatureVGIF, 16}, {FeatureGMET, 17}, {FeatureX2AVIC, 18}, {FeatureSSSCheck, 19},
		{FeatureSpecCtrl, 20}, {FeatureROGPT, 21}, {FeatureHostMCEOverride, 23},
		{FeatureTlbiCtl, 24}, {FeatureVNMI, 25}, {FeatureIbsVirt, 26},
		{FeatureExtLvtAvicAccessChg, 27}, {FeatureNestedVirtVmcbAddrChk, 28},
		{FeatureBusLockThreshold, 29}, {FeatureIdleHltIntercept, 30},
	}
	for _, tt := range tests {
		if tt.f != 1<<tt.bit {
			t.Errorf("%v = %#x, want bit %d", tt.f, uint32(tt.f), tt.bit)
		}
	}
}

func TestDecodeSVMInfo(t *testing.T) {
	tests := []struct {
		name               string
		eax, ebx, ecx, edx uint32
		want               SVMInfo
		str                string
		nrips, decode      bool
		maxASID            uint32
	}{
		{
			// QEMU 7.2 TCG -cpu EPYC: nested paging only (emulators.md).
			name: "QEMU TCG EPYC", eax: 1, ebx: 0x10, edx: 0x1,
			want:    SVMInfo{Revision: 1, NASID: 16, Features: FeatureNP},
			str:     "NP",
			maxASID: 15,
		},
		{
			// Bochs 2.7 ryzen: NP, LbrVirt, NRIPS, FlushByAsid, PauseFilter.
			name: "Bochs ryzen", eax: 1, ebx: 0x8000, edx: 0x44b,
			want:  SVMInfo{Revision: 1, NASID: 0x8000, Features: FeatureNP | FeatureLbrVirt | FeatureNRIPS | FeatureFlushByAsid | FeaturePauseFilter},
			str:   "NP|LbrVirt|NRIPS|FlushByAsid|PauseFilter",
			nrips: true, maxASID: 0x7fff,
		},
		{
			name: "unnamed bits", eax: 0xff01, ebx: 1, ecx: 0xdead, edx: 0x8000_4280,
			want:   SVMInfo{Revision: 1, NASID: 1, Features: 0x8000_4280},
			str:    "DecodeAssists|bit9|bit14|bit31",
			decode: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecodeSVMInfo(tt.eax, tt.ebx, tt.ecx, tt.edx)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if s := got.Features.String(); s != tt.str {
				t.Errorf("Features.String() = %q, want %q", s, tt.str)
			}
			if got.Has(FeatureNRIPS) != tt.nrips || got.Has(FeatureDecodeAssists) != tt.decode {
				t.Errorf("Has(NRIPS) = %v, Has(DecodeAssists) = %v", got.Has(FeatureNRIPS), got.Has(FeatureDecodeAssists))
			}
			if m := got.MaxASID(); m != tt.maxASID {
				t.Errorf("MaxASID() = %d, want %d", m, tt.maxASID)
			}
		})
	}
	if s := Feature(0).String(); s != "0" {
		t.Errorf("Feature(0).String() = %q", s)
	}
	if (SVMInfo{Features: FeatureNP}).Has(FeatureNP | FeatureNRIPS) {
		t.Error("Has with two features is true when only one is present")
	}
}

func TestMSRNumbersAndBits(t *testing.T) {
	tests := []struct {
		name      string
		got, want uint64
	}{
		// APM vol. 2 15.30 and appendix A.
		{"EFER", MSREFER, 0xc000_0080},
		{"TSC_RATIO", MSRTSCRatio, 0xc000_0104},
		{"VM_CR", MSRVMCR, 0xc001_0114},
		{"IGNNE", MSRIGNNE, 0xc001_0115},
		{"SMM_CTL", MSRSMMCtl, 0xc001_0116},
		{"VM_HSAVE_PA", MSRVMHsavePA, 0xc001_0117},
		{"EFER.SVME", EFERSVME, 1 << 12},
		{"EFER.LME", EFERLME, 1 << 8},
		{"EFER.LMA", EFERLMA, 1 << 10},
		{"EFER.NXE", EFERNXE, 1 << 11},
		{"VM_CR.DPD", VMCRDPD, 1 << 0},
		{"VM_CR.R_INIT", VMCRRInit, 1 << 1},
		{"VM_CR.DIS_A20M", VMCRDisA20M, 1 << 2},
		{"VM_CR.LOCK", VMCRLock, 1 << 3},
		{"VM_CR.SVMDIS", VMCRSVMDis, 1 << 4},
		{"TSC_RATIO reset", TSCRatioDefault, 0x1_0000_0000},
		{"TSC_RATIO reserved", TSCRatioReserved, 0xffff_ff00_0000_0000},
		{"Fn8000_0001 ECX.SVM", CPUIDExtECXSVM, 1 << 2},
		{"leaf", CPUIDSVMFeatures, 0x8000_000a},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestCheckVMCR(t *testing.T) {
	tests := []struct {
		vmcr uint64
		want error
	}{
		{0, nil},
		{VMCRLock, nil}, // locked with SVM enabled: fine
		{VMCRDPD | VMCRRInit, nil},
		{VMCRSVMDis, ErrSVMDisabled},
		{VMCRSVMDis | VMCRLock, ErrSVMDisabledLocked},
	}
	for _, tt := range tests {
		if err := CheckVMCR(tt.vmcr); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckVMCR(%#x) = %v, want %v", tt.vmcr, err, tt.want)
		}
	}
}
