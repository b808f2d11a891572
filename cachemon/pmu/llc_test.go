package pmu_test

import (
	"errors"
	"testing"

	"hv/cachemon/pmu"
	"hv/cachemon/pmu/fakemsr"
)

// skylakeCaches is leaf 04H of a Skylake-SP core: 32 KiB L1d and L1i, a
// 1 MiB L2, and a 27.5 MiB 11-way L3 shared by up to 16 logical CPUs.
func skylakeCaches() fakemsr.CPUID {
	c := fakemsr.SkylakeCPUID()
	c[[2]uint32{4, 0}] = [4]uint32{0x1C004121, 0x01C0003F, 0x3F, 0}
	c[[2]uint32{4, 1}] = [4]uint32{0x1C004122, 0x01C0003F, 0x3F, 0}
	c[[2]uint32{4, 2}] = [4]uint32{0x1C004143, 0x03C0003F, 0x3FF, 0}
	c[[2]uint32{4, 3}] = [4]uint32{0x1C03C163, 0x0280003F, 0x9FFF, 0}
	return c
}

func TestProbeLLC(t *testing.T) {
	zen2 := fakemsr.AMDCPUID(0x17, true, true)
	zen2[[2]uint32{0x80000001, 0}] = [4]uint32{0, 0, 1<<22 | 1<<23 | 1<<28, 0}
	zen2[[2]uint32{0x8000001D, 0}] = [4]uint32{0x00004121, 0x01C0003F, 0x3F, 0}
	zen2[[2]uint32{0x8000001D, 1}] = [4]uint32{0x00004122, 0x01C0003F, 0x3F, 0}
	zen2[[2]uint32{0x8000001D, 2}] = [4]uint32{0x00004143, 0x01C0003F, 0x3FF, 0}
	zen2[[2]uint32{0x8000001D, 3}] = [4]uint32{0x0001C163, 0x03C0003F, 0x3FFF, 0}

	// Without topology extensions (QEMU TCG's EPYC): Fn8000_0006 only.
	legacy := fakemsr.AMDCPUID(0x17, false, false)
	legacy[[2]uint32{0x80000006, 0}] = [4]uint32{0, 0, 512<<16 | 0x40, 64<<18 | 0x40}
	legacyL2 := fakemsr.AMDCPUID(0x10, false, false)
	legacyL2[[2]uint32{0x80000006, 0}] = [4]uint32{0, 0, 512<<16 | 0x40, 0}

	tests := []struct {
		name    string
		cpuid   pmu.CPUID
		want    pmu.LLC
		wantErr error
	}{
		{"Skylake-SP leaf 04H", skylakeCaches(), pmu.LLC{Level: 3, LineBytes: 64, Bytes: 11 * 64 * 40960, Sharing: 16}, nil},
		{"Zen 2 Fn8000_001D", zen2, pmu.LLC{Level: 3, LineBytes: 64, Bytes: 16 << 20, Sharing: 8}, nil},
		{"AMD without topology extensions: L3 of Fn8000_0006", legacy, pmu.LLC{Level: 3, LineBytes: 64, Bytes: 32 << 20}, nil},
		{"AMD without L3: L2 of Fn8000_0006", legacyL2, pmu.LLC{Level: 2, LineBytes: 64, Bytes: 512 << 10}, nil},
		{"Intel without leaf 04H data", fakemsr.SkylakeCPUID(), pmu.LLC{}, pmu.ErrNoCacheInfo},
		{"AMD with nothing", fakemsr.AMDCPUID(0x17, false, false), pmu.LLC{}, pmu.ErrNoCacheInfo},
	}
	for _, tt := range tests {
		got, err := pmu.ProbeLLC(tt.cpuid)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: ProbeLLC = %+v, %v; want %+v, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLLCDomain(t *testing.T) {
	tests := []struct {
		sharing int
		apic    uint32
		want    uint32
	}{
		{16, 0, 0}, {16, 15, 0}, {16, 16, 1}, {16, 47, 2},
		{12, 15, 0}, {12, 16, 1}, // rounded up to 16
		{1, 5, 5},
		{0, 99, 0}, // unknown: one cache for all
	}
	for _, tt := range tests {
		if got := (pmu.LLC{Sharing: tt.sharing}).Domain(tt.apic); got != tt.want {
			t.Errorf("LLC{Sharing: %d}.Domain(%d) = %d, want %d", tt.sharing, tt.apic, got, tt.want)
		}
	}
}
