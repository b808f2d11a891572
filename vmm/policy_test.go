package vmm

import (
	"errors"
	"testing"

	"hv/devices/bus"
)

func fakeHostCPUID(leaf, sub uint32) (a, b, c, d uint32) {
	switch leaf {
	case 1:
		return 0x00800F12, 0x05000800, 0xFFFFFFFF &^ (1 << 31), 0xFFFFFFFF
	case 6, 7:
		return 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
	case 0x80000001:
		return 0, 0, 0xFFFFFFFF, 0xFFFFFFFF
	case 0x8000000A:
		return 1, 0x8000, 0, 0xFFFF
	case 0x8000001F:
		return 0x7, 0x16F, 0xF, 0x1
	case 0x80000008:
		return 0x3030, 0xFFFFFFFF, 0, 0
	}
	return leaf, sub, 0x1234, 0x5678
}

func TestGuestCPUID(t *testing.T) {
	a, b, c, d := GuestCPUID(fakeHostCPUID, 0, 1, LeafHypervisor, 0)
	sig := string([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24), byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24), byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)})
	if a != LeafHypervisorMax || sig != HypervisorSignature {
		t.Errorf("leaf 0x40000000 = %#x %q, want %#x %q", a, sig, LeafHypervisorMax, HypervisorSignature)
	}
	_, b, c, _ = GuestCPUID(fakeHostCPUID, 3, 1, 1, 0)
	if c&(1<<5) != 0 {
		t.Error("VMX visible to guests")
	}
	if c&(1<<31) == 0 {
		t.Error("hypervisor bit clear")
	}
	if c&(1<<26|1<<27|1<<28) != 0 {
		t.Error("XSAVE/AVX visible although the VMM does not switch extended state")
	}
	if b>>24 != 3 {
		t.Errorf("initial APIC ID %d, want the vCPU index 3", b>>24)
	}
	if _, _, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 1, 0); c&(1<<7|1<<8) != 0 || d&(1<<22|1<<29|1<<31) != 0 {
		t.Errorf("thermal/power features visible: leaf 1 ECX %#x EDX %#x", c, d)
	}
	if _, _, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 1, 0); c&(1<<15|1<<2|1<<4) != 0 || d&(1<<21) != 0 {
		t.Errorf("PMU/debug-store features visible: leaf 1 ECX %#x EDX %#x", c, d)
	}
	if _, _, c, _ = GuestCPUID(fakeHostCPUID, 0, 1, 1, 0); c&(1<<3) != 0 {
		t.Error("MONITOR visible although the VMM refuses it")
	}
	if a, b, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 5, 0); a|b|c|d != 0 {
		t.Error("MONITOR/MWAIT leaf not empty")
	}
	if a, b, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 0xA, 0); a|b|c|d != 0 {
		t.Error("architectural perfmon leaf not empty")
	}
	if a, b, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 6, 0); a != 1<<2 || b|c|d != 0 {
		t.Errorf("leaf 6 = %#x %#x %#x %#x, want ARAT only", a, b, c, d)
	}
	if _, _, c, _ = GuestCPUID(fakeHostCPUID, 0, 1, 0x80000001, 0); c&(1<<2) != 0 {
		t.Error("SVM visible to guests")
	}
	if _, _, c, _ = GuestCPUID(fakeHostCPUID, 0, 1, 0x80000001, 0); c&(1<<9) != 0 {
		t.Error("OSVW visible although its MSRs are not modelled")
	}
	if _, _, c, _ = GuestCPUID(fakeHostCPUID, 0, 1, 0x80000001, 0); c&(1<<29) != 0 {
		t.Error("MONITORX visible although the VMM refuses it")
	}
	if a, b, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 0x8000000A, 0); a|b|c|d != 0 {
		t.Error("SVM feature leaf not empty")
	}
	if _, b, _, _ = GuestCPUID(fakeHostCPUID, 0, 1, 0x80000008, 0); b&(1<<1) != 0 {
		t.Error("IRPERF visible")
	}
	if a, b, c, d = GuestCPUID(fakeHostCPUID, 0, 1, 0x8000001F, 0); a|b|c|d != 0 {
		t.Error("SME/SEV leaf not empty")
	}
	if a, _, _, _ = GuestCPUID(fakeHostCPUID, 0, 1, 0x40000001, 0); a != 0 {
		t.Error("reserved hypervisor leaf not zero")
	}
	if a, b, _, _ = GuestCPUID(fakeHostCPUID, 0, 1, 2, 5); a != 2 || b != 5 {
		t.Error("other leaves must pass through")
	}
}

// fakeVCPU keeps MSRs like a backend would.
type fakeVCPU struct {
	VCPU
	msrs map[uint32]uint64
	off  int64
}

func (f *fakeVCPU) MSR(m uint32) (uint64, bool) {
	v, ok := f.msrs[m]
	return v, ok
}

func (f *fakeVCPU) SetMSR(m uint32, v uint64) bool {
	if _, ok := f.msrs[m]; !ok {
		return false
	}
	f.msrs[m] = v
	return true
}
func (f *fakeVCPU) TSCOffset() int64       { return f.off }
func (f *fakeVCPU) SetTSCOffset(off int64) { f.off = off }

type fakePlatform struct{ Platform }

func (fakePlatform) TSC() uint64 { return 1000 }

func TestMSRPolicy(t *testing.T) {
	cpu := &fakeVCPU{msrs: map[uint32]uint64{MSREFER: 0, MSRPAT: 0x0007040600070406, MSRLSTAR: 0}}
	v := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: cpu}
	if _, ok := v.readMSR(0x12345678); ok {
		t.Error("unknown MSR readable")
	}
	if v.writeMSR(0xC0011234, 1) {
		t.Error("unknown MSR writable")
	}
	if !v.writeMSR(MSRPAT, 0x0606060606060606) {
		t.Error("valid PAT refused")
	}
	if v.writeMSR(MSRPAT, 0x0202020202020202) {
		t.Error("PAT with reserved memory type 2 accepted")
	}
	if v.writeMSR(MSREFER, 1<<12) {
		t.Error("guest set EFER.SVME")
	}
	if !v.writeMSR(MSREFER, 1<<8|1) {
		t.Error("EFER.LME|SCE refused")
	}
	if v.writeMSR(MSRLSTAR, 0x0000800000000000) {
		t.Error("non-canonical LSTAR accepted")
	}
	if !v.writeMSR(MSRTSC, 5000) || cpu.off != 4000 {
		t.Errorf("TSC write gave offset %d, want 4000", cpu.off)
	}
	if got, _ := v.readMSR(MSRTSC); got != 5000 {
		t.Errorf("TSC reads %d after writing 5000", got)
	}
	if got, ok := v.readMSR(MSRAPICBase); !ok || got != APICBaseDefault {
		t.Errorf("APIC base %#x", got)
	}
	if v.writeMSR(MSRAPICBase, 0xFEC00000|1<<11) {
		t.Error("APIC relocation accepted")
	}
}

// fakeHost hands out frames from a Go slice.
type fakeHost struct {
	mem  []byte
	next uint64
	fail bool
}

func (h *fakeHost) AllocFrames(n, align uint64) (uint64, error) {
	if h.fail {
		return 0, errors.New("no memory")
	}
	a := align * 4096
	pa := (h.next + a - 1) / a * a
	if pa+n*4096 > uint64(len(h.mem)) {
		return 0, errors.New("out of fake memory")
	}
	h.next = pa + n*4096
	return pa, nil
}
func (h *fakeHost) FreeFrames(pa, n uint64) error { return nil }
func (h *fakeHost) Bytes(pa, n uint64) []byte     { return h.mem[pa : pa+n] }

func TestMemory(t *testing.T) {
	h := &fakeHost{mem: make([]byte, 16<<20)}
	if _, err := NewMemory(h, 3<<20); err == nil {
		t.Error("RAM size that is not a multiple of 2 MiB accepted")
	}
	m, err := NewMemory(h, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size() != 4<<20 || !m.IsRAM(0) || !m.IsRAM(4<<20-1) || m.IsRAM(4<<20) {
		t.Errorf("RAM regions %+v", m.Regions())
	}
	if err := m.WritePhys(4<<20-2, []byte{1, 2}); err != nil {
		t.Error(err)
	}
	if err := m.WritePhys(4<<20-1, []byte{1, 2}); !errors.Is(err, ErrOutsideMemory) {
		t.Errorf("write across the end: %v", err)
	}
	var b [2]byte
	if err := m.ReadPhys(4<<20-2, b[:]); err != nil || b != [2]byte{1, 2} {
		t.Errorf("read back %v, %v", b, err)
	}
	if _, err := m.Slice(1<<40, 1); !errors.Is(err, ErrOutsideMemory) {
		t.Errorf("slice far outside: %v", err)
	}
	if _, err := m.Slice(^uint64(0), 2); !errors.Is(err, ErrOutsideMemory) {
		t.Errorf("wrapping slice: %v", err)
	}
}

func TestPlatformMSRs(t *testing.T) {
	tests := []struct {
		name   string
		msr    uint32
		write  uint64
		wantOK bool
		read   uint64 // what a read gives afterwards
	}{
		{"MTRRCAP is read-only", MSRMTRRCap, 0, false, MTRRCapValue},
		{"MTRR_DEF_TYPE UC, disabled", MSRMTRRDefType, 0, true, 0},
		{"MTRR_DEF_TYPE E|WB", MSRMTRRDefType, 1<<11 | 6, true, 1<<11 | 6},
		{"MTRR_DEF_TYPE reserved type 2", MSRMTRRDefType, 1<<11 | 2, false, MTRRDefTypeFirmware},
		{"MTRR_DEF_TYPE type 7", MSRMTRRDefType, 7, false, MTRRDefTypeFirmware},
		{"MTRR_DEF_TYPE reserved bit 12", MSRMTRRDefType, 1<<12 | 6, false, MTRRDefTypeFirmware},
		{"MTRR_DEF_TYPE FE without fixed ranges", MSRMTRRDefType, 1<<10 | 1<<11 | 6, false, MTRRDefTypeFirmware},
		{"NB_CFG EnableCf8ExtCfg", MSRAMDNBCfg, NBCfgEnableCF8ExtCfg, true, NBCfgEnableCF8ExtCfg},
		{"NB_CFG other bit", MSRAMDNBCfg, 1, false, 0},
	}
	for _, tt := range tests {
		v := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("AuthenticAMD", 0))}
		if ok := v.writeMSR(tt.msr, tt.write); ok != tt.wantOK {
			t.Errorf("%s: WRMSR %#x <- %#x ok = %v, want %v", tt.name, tt.msr, tt.write, ok, tt.wantOK)
		}
		if got, ok := v.readMSR(tt.msr); !ok || got != tt.read {
			t.Errorf("%s: RDMSR %#x = %#x, %v; want %#x", tt.name, tt.msr, got, ok, tt.read)
		}
		var st State
		v.platformMSRs.save(&st)
		w := &vcpuRun{vm: v.vm, cpu: v.cpu, platformMSRs: newPlatformMSRs(cpuidOf("AuthenticAMD", 0))}
		w.platformMSRs.restore(st.VMMMSRs)
		if w.platformMSRs != v.platformMSRs {
			t.Errorf("%s: save/restore gave %+v, want %+v", tt.name, w.platformMSRs, v.platformMSRs)
		}
	}
}

// cpuidOf is a CPUID with the vendor string and leaf 1 ECX.
func cpuidOf(vendor string, leaf1ECX uint32) CPUIDFunc {
	le := func(i int) uint32 {
		return uint32(vendor[i]) | uint32(vendor[i+1])<<8 | uint32(vendor[i+2])<<16 | uint32(vendor[i+3])<<24
	}
	return func(leaf, _ uint32) (a, b, c, d uint32) {
		switch leaf {
		case 0:
			return 0xD, le(0), le(8), le(4)
		case 1:
			return 0, 0, leaf1ECX, 0
		}
		return 0, 0, 0, 0
	}
}

// IA32_MISC_ENABLE: Intel only; Linux's verify_cpu reads it before it has
// an IDT and writes back what it read with XD Bit Disable cleared.
func TestMiscEnable(t *testing.T) {
	const power = MiscEnableFastStrings | MiscEnableBTSUnavail | MiscEnablePEBSUnavail
	amd := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("AuthenticAMD", 0))}
	if _, ok := amd.readMSR(MSRMiscEnable); ok {
		t.Error("AMD guest reads IA32_MISC_ENABLE")
	}
	if amd.writeMSR(MSRMiscEnable, power) {
		t.Error("AMD guest writes IA32_MISC_ENABLE")
	}
	monitor := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("GenuineIntel", 1<<3))}
	if got, ok := monitor.readMSR(MSRMiscEnable); !ok || got != power|MiscEnableMonitorFSM {
		t.Errorf("with MONITOR in CPUID: RDMSR = %#x, %v; want %#x", got, ok, power|MiscEnableMonitorFSM)
	}
	tests := []struct {
		name   string
		write  uint64
		wantOK bool
		read   uint64
	}{
		{"write back as read", power, true, power},
		{"fast strings off", power &^ MiscEnableFastStrings, true, power &^ MiscEnableFastStrings},
		{"thermal control and xTPR disable", power | MiscEnableThermal | MiscEnableXTPRDisable, true, power | MiscEnableThermal | MiscEnableXTPRDisable},
		{"read-only bits ignore the write", MiscEnableFastStrings | MiscEnablePerfMon, true, power},
		{"XD bit disable", power | MiscEnableXDDisable, false, power},
		{"limit CPUID maxval", power | MiscEnableLimitCPUID, false, power},
		{"MONITOR FSM without MONITOR", power | MiscEnableMonitorFSM, false, power},
		{"reserved bit 1", power | 1<<1, false, power},
		{"reserved bit 63", power | 1<<63, false, power},
	}
	for _, tt := range tests {
		v := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("GenuineIntel", 0))}
		if got, ok := v.readMSR(MSRMiscEnable); !ok || got != power {
			t.Fatalf("power-on RDMSR = %#x, %v; want %#x", got, ok, power)
		}
		if ok := v.writeMSR(MSRMiscEnable, tt.write); ok != tt.wantOK {
			t.Errorf("%s: WRMSR %#x ok = %v, want %v", tt.name, tt.write, ok, tt.wantOK)
		}
		if got, _ := v.readMSR(MSRMiscEnable); got != tt.read {
			t.Errorf("%s: RDMSR = %#x, want %#x", tt.name, got, tt.read)
		}
		var st State
		v.platformMSRs.save(&st)
		w := &vcpuRun{platformMSRs: newPlatformMSRs(cpuidOf("GenuineIntel", 0))}
		w.platformMSRs.restore(st.VMMMSRs)
		if w.platformMSRs != v.platformMSRs {
			t.Errorf("%s: save/restore gave %+v, want %+v", tt.name, w.platformMSRs, v.platformMSRs)
		}
	}
}

// IA32_BIOS_SIGN_ID: Intel only; the write Linux makes before CPUID is
// accepted and the revision is in the high half.
func TestBiosSignID(t *testing.T) {
	intel := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("GenuineIntel", 0))}
	if !intel.writeMSR(MSRBiosSignID, 0) {
		t.Error("WRMSR IA32_BIOS_SIGN_ID <- 0 refused")
	}
	if got, ok := intel.readMSR(MSRBiosSignID); !ok || got != MicrocodeRevision<<32 {
		t.Errorf("RDMSR IA32_BIOS_SIGN_ID = %#x, %v", got, ok)
	}
	amd := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("AuthenticAMD", 0))}
	if amd.writeMSR(MSRBiosSignID, 0) {
		t.Error("AMD guest writes MSR 0x8B")
	}
}

// HWCR: AMD only, TscFreqSel reads 1 and ignores writes, no other bit.
func TestHWCR(t *testing.T) {
	amd := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("AuthenticAMD", 0))}
	if got, ok := amd.readMSR(MSRAMDHWCR); !ok || got != HWCRTscFreqSel {
		t.Errorf("RDMSR HWCR = %#x, %v", got, ok)
	}
	if !amd.writeMSR(MSRAMDHWCR, HWCRTscFreqSel) || !amd.writeMSR(MSRAMDHWCR, 0) {
		t.Error("HWCR write of its own value (or of TscFreqSel) refused")
	}
	if amd.writeMSR(MSRAMDHWCR, HWCRTscFreqSel|1<<30) {
		t.Error("HWCR accepted IRPERF_EN, which is not modelled")
	}
	if got, _ := amd.readMSR(MSRAMDHWCR); got != HWCRTscFreqSel {
		t.Errorf("HWCR after writes = %#x", got)
	}
	intel := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(cpuidOf("GenuineIntel", 0))}
	if _, ok := intel.readMSR(MSRAMDHWCR); ok {
		t.Error("Intel guest reads HWCR")
	}
}

// IA32_TSC_ADJUST and the TSC move together (SDM 18.17.3); without the
// CPUID bit the MSR does not exist.
func TestTSCAdjust(t *testing.T) {
	leaf7 := func(b7 uint32) CPUIDFunc {
		base := cpuidOf("GenuineIntel", 0)
		return func(leaf, sub uint32) (a, b, c, d uint32) {
			if leaf == 7 {
				return 0, b7, 0, 0
			}
			return base(leaf, sub)
		}
	}
	none := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: &fakeVCPU{}, platformMSRs: newPlatformMSRs(leaf7(0))}
	if _, ok := none.readMSR(MSRTSCAdjust); ok {
		t.Error("IA32_TSC_ADJUST readable without CPUID.7:EBX[1]")
	}
	cpu := &fakeVCPU{}
	v := &vcpuRun{vm: &VM{platform: fakePlatform{}}, cpu: cpu, platformMSRs: newPlatformMSRs(leaf7(1 << 1))}
	tsc := func() uint64 { x, _ := v.readMSR(MSRTSC); return x }
	adj := func() uint64 { x, _ := v.readMSR(MSRTSCAdjust); return x }
	if adj() != 0 || tsc() != 1000 {
		t.Fatalf("power-on: TSC %d, adjust %d", tsc(), adj())
	}
	if !v.writeMSR(MSRTSCAdjust, 500) || tsc() != 1500 || adj() != 500 {
		t.Errorf("after TSC_ADJUST <- 500: TSC %d, adjust %d; want 1500, 500", tsc(), adj())
	}
	if !v.writeMSR(MSRTSC, 1200) || tsc() != 1200 || adj() != 200 {
		t.Errorf("after TSC <- 1200: TSC %d, adjust %d; want 1200, 200", tsc(), adj())
	}
	if !v.writeMSR(MSRTSCAdjust, 0) || tsc() != 1000 || adj() != 0 {
		t.Errorf("after TSC_ADJUST <- 0: TSC %d, adjust %d; want 1000, 0", tsc(), adj())
	}
}

// fakeLocal claims MSR 0x800 and the page at 0xFEE00000 for vCPU 0 only.
type fakeLocal struct {
	val uint64
	dev fakeDevice
}

type fakeDevice struct{ last []byte }

func (d *fakeDevice) Read(off uint64, p []byte) {
	for i := range p {
		p[i] = byte(off) + byte(i)
	}
}
func (d *fakeDevice) Write(_ uint64, p []byte) { d.last = append([]byte(nil), p...) }

func (l *fakeLocal) ReadMSR(vcpu int, msr uint32) (uint64, bool, error) {
	if vcpu != 0 || msr != 0x800 {
		return 0, false, nil
	}
	return l.val, true, nil
}

func (l *fakeLocal) WriteMSR(vcpu int, msr uint32, v uint64) (bool, error) {
	if vcpu != 0 || msr != 0x800 {
		return false, nil
	}
	if v > 0xFF {
		return true, errors.New("#GP")
	}
	l.val = v
	return true, nil
}

func (l *fakeLocal) MMIO(vcpu int, gpa uint64) (bus.Device, uint64, bool) {
	if vcpu != 0 || gpa < 0xFEE00000 || gpa >= 0xFEE01000 {
		return nil, 0, false
	}
	return &l.dev, gpa - 0xFEE00000, true
}

func TestLocalDevices(t *testing.T) {
	l := &fakeLocal{}
	vm := &VM{platform: fakePlatform{}, Local: l, Bus: bus.New(), Inputs: PassThrough{}}
	v := &vcpuRun{vm: vm, cpu: &fakeVCPU{msrs: map[uint32]uint64{}}}
	if !v.writeMSR(0x800, 0x42) || l.val != 0x42 {
		t.Errorf("local MSR write: val %#x", l.val)
	}
	if got, ok := v.readMSR(0x800); !ok || got != 0x42 {
		t.Errorf("local MSR read %#x, %v", got, ok)
	}
	if v.writeMSR(0x800, 0x100) {
		t.Error("local device's #GP not passed on")
	}
	if _, ok := v.readMSR(0x801); ok {
		t.Error("MSR the local devices do not claim went past the VMM's policy")
	}
	if !v.isMMIO(0xFEE00020) || v.isMMIO(0xFEE01000) {
		t.Error("local MMIO range wrong")
	}
	if got, err := v.ReadMMIO(0xFEE00020, 4); err != nil || got != 0x23222120 {
		t.Errorf("local MMIO read %#x, %v", got, err)
	}
	if err := v.WriteMMIO(0xFEE000B0, 4, 0); err != nil || len(l.dev.last) != 4 {
		t.Errorf("local MMIO write: %v, %v", err, l.dev.last)
	}
	w := &vcpuRun{vm: vm, index: 1, cpu: &fakeVCPU{msrs: map[uint32]uint64{}}}
	if w.isMMIO(0xFEE00020) {
		t.Error("vCPU 1 sees vCPU 0's local page")
	}
}

type cpuidPlatform struct {
	fakePlatform
	cpuid CPUIDFunc
}

func (p cpuidPlatform) CPUID(leaf, sub uint32) (a, b, c, d uint32) { return p.cpuid(leaf, sub) }

type hidingBackend struct{ Backend }

func (hidingBackend) HiddenCPUID(leaf, _ uint32) (a, b, c, d uint32) {
	if leaf == 7 {
		return 0, 1 << 10, 0, 0
	}
	return 0, 0, 0, 0
}

// The guest's CPUID is the policy's less what the backend hides.
func TestGuestCPUIDHidden(t *testing.T) {
	host := func(leaf, _ uint32) (a, b, c, d uint32) {
		if leaf == 7 {
			return 0, 1<<10 | 1<<3, 0, 0
		}
		return 0, 0, 0, 0
	}
	vm := &VM{platform: cpuidPlatform{cpuid: host}, backend: hidingBackend{}}
	if _, b, _, _ := vm.guestCPUID(0, 7, 0); b != 1<<3 {
		t.Errorf("leaf 7 EBX = %#x, want %#x", b, 1<<3)
	}
	vm.backend = nil
	if _, b, _, _ := vm.guestCPUID(0, 7, 0); b != 1<<10|1<<3 {
		t.Errorf("without a hider: leaf 7 EBX = %#x", b)
	}
}
