package pmu_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/cachemon"
	"hv/cachemon/pmu"
	"hv/cachemon/pmu/fakemsr"
)

var work = fakemsr.Work{Instrs: 100000, Refs: 5000, Misses: 1200}

// recorder logs every MSR write on its way to the underlying bus.
type recorder struct {
	pmu.MSRs
	writes map[uint32]uint64
}

func (r *recorder) Write(msr uint32, v uint64) error {
	if r.writes == nil {
		r.writes = map[uint32]uint64{}
	}
	r.writes[msr] = v
	return r.MSRs.Write(msr, v)
}

func TestIntelSkylake(t *testing.T) {
	hw := fakemsr.NewSkylake()
	rec := &recorder{MSRs: hw}
	p, err := pmu.OpenIntel(rec, fakemsr.SkylakeCPUID(), func() { hw.Run(work) })
	if err != nil {
		t.Fatal(err)
	}
	// The programming the SDM prescribes: PERFEVTSEL0/1 = EN|OS|USR with
	// the architectural LLC events, fixed counter 0 at all levels, and
	// the global enables for PMC0, PMC1 and FIXED_CTR0.
	want := map[uint32]uint64{
		0x186: 0x43_4F2E,
		0x187: 0x43_412E,
		0x38D: 0x3,
		0x38F: 1<<32 | 0b11,
	}
	got := map[uint32]uint64{}
	for msr := range want {
		got[msr] = rec.writes[msr]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final MSR values (-want +got):\n%s", diff)
	}
	before, _ := p.ReadCounts()
	hw.Run(fakemsr.Work{Instrs: 7, Refs: 5, Misses: 3})
	after, err := p.ReadCounts()
	if err != nil {
		t.Fatal(err)
	}
	d := cachemon.Counts{Instrs: after.Instrs - before.Instrs, Refs: after.Refs - before.Refs, Misses: after.Misses - before.Misses}
	if diff := cmp.Diff(cachemon.Counts{Instrs: 7, Refs: 5, Misses: 3}, d); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if p.CounterMask() != 1<<48-1 {
		t.Errorf("counter mask %#x, want 48 bits", p.CounterMask())
	}
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	hw.Run(work)
	if again, _ := p.ReadCounts(); again != after {
		t.Errorf("disabled counters moved from %+v to %+v", after, again)
	}
}

func TestIntelVersion1UsesThirdCounterForInstructions(t *testing.T) {
	hw := &fakemsr.IntelPMU{Version: 1, GPCounters: 4, GPWidth: 40}
	cpuid := fakemsr.IntelCPUID(fakemsr.IntelCPUIDConfig{Version: 1, GPCounters: 4, GPWidth: 40})
	p, err := pmu.OpenIntel(hw, cpuid, func() { hw.Run(work) })
	if err != nil {
		t.Fatal(err)
	}
	if sel, _ := hw.Read(0x188); sel != 0x43_00C0 {
		t.Errorf("PERFEVTSEL2 = %#x, want instructions retired", sel)
	}
	c, _ := p.ReadCounts()
	if c.Instrs != work.Instrs || p.CounterMask() != 1<<40-1 {
		t.Errorf("counts %+v mask %#x", c, p.CounterMask())
	}
}

func TestIntelAbsent(t *testing.T) {
	skylakeClaims := fakemsr.SkylakeCPUID()
	tests := []struct {
		name   string
		msrs   pmu.MSRs
		cpuid  pmu.CPUID
		want   error
		alsoGP bool
	}{
		{"QEMU TCG without pmu: leaf 0AH zero", fakemsr.QEMU{}, fakemsr.IntelCPUID(fakemsr.IntelCPUIDConfig{}), pmu.ErrNoPMU, false},
		{"QEMU TCG claiming a PMU: MSRs read 0", fakemsr.QEMU{}, skylakeClaims, pmu.ErrNotCounting, false},
		{"Bochs skylake_x: version 4 claimed, #GP", &fakemsr.Bochs{}, skylakeClaims, pmu.ErrNoPMU, true},
		{"LLC events marked unavailable", fakemsr.NewSkylake(), fakemsr.IntelCPUID(fakemsr.IntelCPUIDConfig{Version: 4, GPCounters: 4, GPWidth: 48, FixedCounters: 3, FixedWidth: 48, EventsAbsent: 1 << 4}), pmu.ErrNoPMU, false},
		{"one general counter", fakemsr.NewSkylake(), fakemsr.IntelCPUID(fakemsr.IntelCPUIDConfig{Version: 4, GPCounters: 1, GPWidth: 48}), pmu.ErrNoPMU, false},
		{"AMD CPU", fakemsr.NewSkylake(), fakemsr.AMDCPUID(0x17, true, true), pmu.ErrNoPMU, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pmu.OpenIntel(tt.msrs, tt.cpuid, func() {})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.alsoGP && !errors.Is(err, fakemsr.ErrGP) {
				t.Errorf("error %v does not carry the #GP", err)
			}
		})
	}
}

func TestIntelNotCountingWithoutWorkload(t *testing.T) {
	hw := fakemsr.NewSkylake()
	_, err := pmu.OpenIntel(hw, fakemsr.SkylakeCPUID(), func() { hw.Run(fakemsr.Work{Instrs: 10, Refs: 10}) })
	if !errors.Is(err, pmu.ErrNotCounting) {
		t.Errorf("a workload without misses verified: %v", err)
	}
}

func TestAMD(t *testing.T) {
	for _, ext := range []bool{true, false} {
		hw := &fakemsr.AMDPMU{ExtCore: ext}
		rec := &recorder{MSRs: hw}
		p, err := pmu.OpenAMD(rec, fakemsr.AMDCPUID(0x17, ext, false), func() { hw.Run(work) })
		if err != nil {
			t.Fatalf("ext=%v: %v", ext, err)
		}
		ctl, stride := uint32(0xC0010000), uint32(1)
		if ext {
			ctl, stride = 0xC0010200, 2
		}
		want := map[uint32]uint64{ctl: 0x43_0964, ctl + stride: 0x43_4843, ctl + 2*stride: 0x43_00C0}
		got := map[uint32]uint64{}
		for msr := range want {
			got[msr] = rec.writes[msr]
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ext=%v: PerfEvtSel values (-want +got):\n%s", ext, diff)
		}
		c, _ := p.ReadCounts()
		if diff := cmp.Diff(cachemon.Counts{Instrs: work.Instrs, Refs: work.Refs, Misses: work.Misses}, c); diff != "" {
			t.Errorf("ext=%v: counts (-want +got):\n%s", ext, diff)
		}
	}
}

func TestAMDAbsent(t *testing.T) {
	tests := []struct {
		name  string
		msrs  pmu.MSRs
		cpuid pmu.CPUID
		want  error
	}{
		{"Bochs ryzen: PerfCtrExtCore claimed, #GP", &fakemsr.Bochs{}, fakemsr.AMDCPUID(0x17, true, false), pmu.ErrNoPMU},
		{"QEMU: reads 0", fakemsr.QEMU{}, fakemsr.AMDCPUID(0x17, true, false), pmu.ErrNotCounting},
		{"pre-Zen family", &fakemsr.AMDPMU{}, fakemsr.AMDCPUID(0x10, false, false), pmu.ErrNoPMU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := pmu.OpenAMD(tt.msrs, tt.cpuid, func() {}); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAMDL3(t *testing.T) {
	for _, fam := range []uint32{0x17, 0x19} {
		hw := &fakemsr.AMDPMU{ExtCore: true, ExtLLC: true}
		rec := &recorder{MSRs: hw}
		p, err := pmu.OpenAMDL3(rec, fakemsr.AMDCPUID(fam, true, true), func() { hw.Run(work) })
		if err != nil {
			t.Fatalf("family %#x: %v", fam, err)
		}
		sources := uint64(0xF<<48 | 0xFF<<56)
		if fam == 0x19 {
			sources = 1<<46 | 1<<47 | 0x3<<56
		}
		if got, want := rec.writes[0xC0010230], sources|1<<22|0xFF04; got != want {
			t.Errorf("family %#x: ChL3PmcCfg0 = %#x, want %#x", fam, got, want)
		}
		if got, want := rec.writes[0xC0010232], sources|1<<22|0x0104; got != want {
			t.Errorf("family %#x: ChL3PmcCfg1 = %#x, want %#x", fam, got, want)
		}
		v, err := p.Read()
		if err != nil || v != [2]uint64{work.Refs, work.Misses} {
			t.Errorf("family %#x: L3 counts %v, %v", fam, v, err)
		}
	}
	if _, err := pmu.OpenAMDL3(&fakemsr.AMDPMU{ExtCore: true}, fakemsr.AMDCPUID(0x17, true, false), func() {}); !errors.Is(err, pmu.ErrNoPMU) {
		t.Errorf("L3 counters without PerfCtrExtLLC: %v", err)
	}
}

func TestCMT(t *testing.T) {
	hw := fakemsr.NewSkylake()
	hw.SetCLOS(3)
	c, err := pmu.OpenCMT(hw, fakemsr.SkylakeCPUID(), 5, func() { hw.Run(fakemsr.Work{Misses: 10}) })
	if err != nil {
		t.Fatal(err)
	}
	if hw.RMID() != 0 {
		t.Errorf("RMID %d left assigned after verification", hw.RMID())
	}
	if err := c.Assign(7); err != nil {
		t.Fatal(err)
	}
	if pqr, _ := hw.Read(0xC8F); pqr != 3<<32|7 {
		t.Errorf("IA32_PQR_ASSOC = %#x, want CLOS 3 kept and RMID 7", pqr)
	}
	hw.Run(fakemsr.Work{Misses: 100})
	if b, err := c.OccupancyBytes(7); err != nil || b != 6400 {
		t.Errorf("occupancy %d, %v; want 6400 bytes", b, err)
	}
	if err := c.Assign(192); err == nil {
		t.Error("RMID above the maximum accepted")
	}
	hw.Unavailable = true
	if _, err := c.OccupancyBytes(7); !errors.Is(err, pmu.ErrOccupancyUnavailable) {
		t.Errorf("unavailable data: %v", err)
	}
	hw.Unavailable, hw.Error = false, true
	if _, err := c.OccupancyBytes(7); err == nil {
		t.Error("error bit ignored")
	}
}

func TestCMTAbsent(t *testing.T) {
	noCMT := fakemsr.IntelCPUID(fakemsr.IntelCPUIDConfig{Version: 4, GPCounters: 4, GPWidth: 48})
	if _, err := pmu.OpenCMT(fakemsr.NewSkylake(), noCMT, 1, func() {}); !errors.Is(err, pmu.ErrNoCMT) {
		t.Errorf("no PQM: %v", err)
	}
	if _, err := pmu.OpenCMT(&fakemsr.Bochs{}, fakemsr.SkylakeCPUID(), 1, func() {}); !errors.Is(err, pmu.ErrNoCMT) || !errors.Is(err, fakemsr.ErrGP) {
		t.Errorf("Bochs: %v", err)
	}
	if _, err := pmu.OpenCMT(fakemsr.QEMU{}, fakemsr.SkylakeCPUID(), 1, func() {}); !errors.Is(err, pmu.ErrNotCounting) {
		t.Errorf("QEMU: %v", err)
	}
}

func TestOpenDispatch(t *testing.T) {
	intel := fakemsr.NewSkylake()
	if src, err := pmu.Open(intel, fakemsr.SkylakeCPUID(), func() { intel.Run(work) }); err != nil || src == nil {
		t.Errorf("Intel: %v", err)
	}
	amd := &fakemsr.AMDPMU{ExtCore: true}
	if src, err := pmu.Open(amd, fakemsr.AMDCPUID(0x19, true, false), func() { amd.Run(work) }); err != nil || src == nil {
		t.Errorf("AMD: %v", err)
	}
	src, err := pmu.Open(fakemsr.QEMU{}, fakemsr.CPUID{}, func() {})
	if !errors.Is(err, pmu.ErrNoPMU) || src != nil {
		t.Errorf("unknown vendor: %v, %v", src, err)
	}
}

// TestSamplerOnIntel runs the Sampler on the Intel driver over the fake
// bus: two vCPUs take turns on one CPU and each is credited its own work.
func TestSamplerOnIntel(t *testing.T) {
	hw := fakemsr.NewSkylake()
	p, err := pmu.OpenIntel(hw, fakemsr.SkylakeCPUID(), func() { hw.Run(work) })
	if err != nil {
		t.Fatal(err)
	}
	// Verify CMT with an RMID no vCPU uses.
	cmt, err := pmu.OpenCMT(hw, fakemsr.SkylakeCPUID(), 191, func() { hw.Run(work) })
	if err != nil {
		t.Fatal(err)
	}
	s, err := cachemon.NewSampler(cachemon.SamplerConfig{LineBytes: 64, CacheBytes: 64 << 10, Domain: []int{0}, Interval: 10},
		[]cachemon.CounterSource{p}, []cachemon.OccupancyMonitor{cmt})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AddVCPU("a")
	b, _ := s.AddVCPU("b")
	for i := range uint64(4) {
		s.SwitchIn(0, a, i*10)
		hw.Run(fakemsr.Work{Instrs: 1000, Refs: 100, Misses: 10})
		s.SwitchOut(0, i*10+4)
		hw.Run(fakemsr.Work{Instrs: 50}) // the hypervisor's own
		s.SwitchIn(0, b, i*10+5)
		hw.Run(fakemsr.Work{Instrs: 2000, Refs: 300, Misses: 150})
		s.SwitchOut(0, i*10+9)
		if _, err := s.Tick(0, i*10+9); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if diff := cmp.Diff(cachemon.Counts{Instrs: 4000, Refs: 400, Misses: 40}, st[a].Total); diff != "" {
		t.Errorf("vCPU a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(cachemon.Counts{Instrs: 8000, Refs: 1200, Misses: 600}, st[b].Total); diff != "" {
		t.Errorf("vCPU b (-want +got):\n%s", diff)
	}
	// CMT tagged each vCPU's misses with its RMID (vCPU v is RMID v+1).
	if !st[a].HWValid || st[a].HWOccupancyBytes != 40*64 || st[b].HWOccupancyBytes != 600*64 {
		t.Errorf("hardware occupancy a=%d (%v) b=%d", st[a].HWOccupancyBytes, st[a].HWValid, st[b].HWOccupancyBytes)
	}
}
