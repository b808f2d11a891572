// Package fakemsr provides MSR buses and CPUID tables that behave like the
// machines cachemon/pmu must cope with: an Intel core with architectural
// perfmon and RDT cache monitoring, an AMD Zen core with core and L3
// counters, and the two emulators we run on, QEMU TCG (every MSR reads 0,
// writes vanish) and Bochs (#GP on PMU MSRs despite CPUID's claims). The
// PMU models count only what a test's workload reports through Run; they
// exist for tests and carry no hardware access.
package fakemsr

import (
	"errors"
	"fmt"
)

// ErrGP is the #GP a refused RDMSR or WRMSR raises.
var ErrGP = errors.New("fakemsr: #GP")

// Work is what a workload did, as the counters would see it.
type Work struct {
	Instrs, Refs, Misses uint64
}

// CPUID is a table of CPUID results keyed by leaf and subleaf; missing
// entries read as zeros, as leaves above the maximum do on real CPUs.
type CPUID map[[2]uint32][4]uint32

// CPUID implements pmu.CPUID.
func (c CPUID) CPUID(leaf, sub uint32) (a, b, cx, d uint32) {
	r := c[[2]uint32{leaf, sub}]
	return r[0], r[1], r[2], r[3]
}

func vendorRegs(v string) (b, c, d uint32) {
	w := func(s string) uint32 { return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24 }
	return w(v[0:4]), w(v[8:12]), w(v[4:8])
}

// IntelCPUIDConfig describes an Intel CPU's perfmon and RDT leaves.
type IntelCPUIDConfig struct {
	Version, GPCounters, GPWidth uint32
	FixedCounters, FixedWidth    uint32
	// EventsAbsent is leaf 0AH EBX (bit set = event not available).
	EventsAbsent uint32
	CMT          bool
	MaxRMID      uint32
	BytesPerCtr  uint32
}

// IntelCPUID builds the CPUID table of an Intel CPU (family 6).
func IntelCPUID(cfg IntelCPUIDConfig) CPUID {
	b, c, d := vendorRegs("GenuineIntel")
	t := CPUID{
		{0, 0}: {0x16, b, c, d},
		{1, 0}: {0x00050654, 0, 0, 0}, // family 6 model 55h (Skylake-SP)
		{0xA, 0}: {cfg.Version | cfg.GPCounters<<8 | cfg.GPWidth<<16 | 7<<24, cfg.EventsAbsent, 0,
			cfg.FixedCounters | cfg.FixedWidth<<5},
	}
	if cfg.CMT {
		t[[2]uint32{7, 0}] = [4]uint32{0, 1 << 12, 0, 0}
		t[[2]uint32{0xF, 0}] = [4]uint32{0, cfg.MaxRMID, 0, 1 << 1}
		t[[2]uint32{0xF, 1}] = [4]uint32{0, cfg.BytesPerCtr, cfg.MaxRMID, 1}
	}
	return t
}

// SkylakeCPUID is a Skylake-SP server core: perfmon v4, 4 general counters
// and 3 fixed counters of 48 bits, all seven architectural events, and CMT
// with RMIDs 0..191 counted in 64-byte units.
func SkylakeCPUID() CPUID {
	return IntelCPUID(IntelCPUIDConfig{Version: 4, GPCounters: 4, GPWidth: 48, FixedCounters: 3, FixedWidth: 48,
		CMT: true, MaxRMID: 191, BytesPerCtr: 64})
}

// AMDCPUID builds the CPUID table of an AMD CPU of the given family.
func AMDCPUID(family uint32, extCore, extLLC bool) CPUID {
	b, c, d := vendorRegs("AuthenticAMD")
	eax1 := uint32(0xF << 8)
	if family >= 0xF {
		eax1 |= (family - 0xF) << 20
	} else {
		eax1 = family << 8
	}
	var ecx uint32
	if extCore {
		ecx |= 1 << 23
	}
	if extLLC {
		ecx |= 1 << 28
	}
	return CPUID{
		{0, 0}:          {0x10, b, c, d},
		{1, 0}:          {eax1, 0, 0, 0},
		{0x80000000, 0}: {0x80000020, 0, 0, 0},
		{0x80000001, 0}: {0, 0, ecx, 0},
	}
}

// QEMU is QEMU TCG's MSR behaviour: every MSR, even a nonexistent one,
// reads as 0 and every write is silently ignored.
type QEMU struct{}

// Read returns 0.
func (QEMU) Read(uint32) (uint64, error) { return 0, nil }

// Write does nothing.
func (QEMU) Write(uint32, uint64) error { return nil }

// Bochs is Bochs 2.7's behaviour: the PMU MSRs (Intel perfmon, AMD core
// and L3 counters, RDT) raise #GP; other MSRs are plain storage.
type Bochs struct {
	regs map[uint32]uint64
}

func bochsRefuses(msr uint32) bool {
	switch {
	case msr >= 0xC1 && msr <= 0xC8, msr >= 0x186 && msr <= 0x18D,
		msr >= 0x309 && msr <= 0x390, msr >= 0x4C1 && msr <= 0x4C8,
		msr >= 0xC8D && msr <= 0xC90,
		msr >= 0xC0010000 && msr <= 0xC0010007, msr >= 0xC0010200 && msr <= 0xC001023F,
		msr == 0xC0010114: // VM_CR, also refused (shared/emulators.md)
		return true
	}
	return false
}

// Read returns the stored value or raises #GP.
func (b *Bochs) Read(msr uint32) (uint64, error) {
	if bochsRefuses(msr) {
		return 0, fmt.Errorf("rdmsr %#x: %w", msr, ErrGP)
	}
	return b.regs[msr], nil
}

// Write stores the value or raises #GP.
func (b *Bochs) Write(msr uint32, v uint64) error {
	if bochsRefuses(msr) {
		return fmt.Errorf("wrmsr %#x: %w", msr, ErrGP)
	}
	if b.regs == nil {
		b.regs = map[uint32]uint64{}
	}
	b.regs[msr] = v
	return nil
}
