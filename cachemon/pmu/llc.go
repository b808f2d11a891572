package pmu

import (
	"errors"
	"fmt"
)

// LLC is the geometry of the calling CPU's last-level cache, as CPUID
// describes it.
type LLC struct {
	Level     int
	LineBytes int
	Bytes     int
	// Sharing is the most logical processors that share this cache; CPUs
	// whose initial APIC IDs agree above its power-of-two size share one
	// instance (Intel SDM vol. 2A, CPUID leaf 04H; AMD APM vol. 3,
	// CPUID Fn8000_001D).
	Sharing int
}

// ErrNoCacheInfo reports a CPU whose CPUID describes no cache.
var ErrNoCacheInfo = errors.New("pmu: CPUID describes no cache")

// Deterministic cache parameters: Intel leaf 04H, and AMD's copy of its
// layout at Fn8000_001D when CPUID Fn8000_0001 ECX.TopologyExtensions
// (bit 22) is set. EAX[4:0] is the cache type (0: no more caches),
// EAX[7:5] the level, EAX[25:14] the sharing count minus one; EBX[11:0] the
// line size, EBX[21:12] the physical line partitions and EBX[31:22] the
// ways, each minus one; ECX the number of sets minus one.
const (
	leafCacheIntel   = 0x4
	leafCacheAMD     = 0x8000001D
	leafExtFeatures  = 0x80000001
	leafAMDL2L3      = 0x80000006
	amdTopologyExt   = 1 << 22 // Fn8000_0001 ECX
	maxCacheSubleafs = 16
)

// ProbeLLC returns the geometry of the last-level cache: the highest-level
// data or unified cache of the deterministic cache leaf (04H on Intel,
// Fn8000_001D on AMD with topology extensions), or on older AMD CPUs the L3
// (else L2) of Fn8000_0006, which gives no sharing count (Sharing is 0
// then: unknown).
func ProbeLLC(c CPUID) (LLC, error) {
	vendor, maxStd := Vendor(c)
	maxExt, _, _, _ := c.CPUID(0x80000000, 0)
	leaf := uint32(0)
	switch {
	case vendor == VendorIntel && maxStd >= leafCacheIntel:
		leaf = leafCacheIntel
	case vendor == VendorAMD && maxExt >= leafCacheAMD:
		if _, _, ecx, _ := c.CPUID(leafExtFeatures, 0); ecx&amdTopologyExt != 0 {
			leaf = leafCacheAMD
		}
	}
	if leaf != 0 {
		if llc, ok := deterministicLLC(c, leaf); ok {
			return llc, nil
		}
	}
	if vendor == VendorAMD && maxExt >= leafAMDL2L3 {
		if llc, ok := amdLegacyLLC(c); ok {
			return llc, nil
		}
	}
	return LLC{}, fmt.Errorf("pmu: %s CPU: %w", vendor, ErrNoCacheInfo)
}

func deterministicLLC(c CPUID, leaf uint32) (LLC, bool) {
	var best LLC
	for sub := uint32(0); sub < maxCacheSubleafs; sub++ {
		a, b, cx, _ := c.CPUID(leaf, sub)
		typ := a & 0x1F
		if typ == 0 {
			break
		}
		if typ == 2 { // instruction cache
			continue
		}
		l := LLC{
			Level:     int(a >> 5 & 7),
			LineBytes: int(b&0xFFF) + 1,
			Sharing:   int(a>>14&0xFFF) + 1,
		}
		ways, parts, sets := int(b>>22)+1, int(b>>12&0x3FF)+1, int(cx)+1
		l.Bytes = ways * parts * l.LineBytes * sets
		if l.Level > best.Level || (l.Level == best.Level && l.Bytes > best.Bytes) {
			best = l
		}
	}
	return best, best.Level > 0
}

// amdLegacyLLC reads Fn8000_0006: ECX[31:16] the L2 size in KiB and
// ECX[7:0] its line size; EDX[31:18] the L3 size in 512 KiB units and
// EDX[7:0] its line size (AMD APM vol. 3, appendix E.4.4).
func amdLegacyLLC(c CPUID) (LLC, bool) {
	_, _, ecx, edx := c.CPUID(leafAMDL2L3, 0)
	if l3 := int(edx>>18) * 512 << 10; l3 > 0 && edx&0xFF != 0 {
		return LLC{Level: 3, LineBytes: int(edx & 0xFF), Bytes: l3}, true
	}
	if l2 := int(ecx>>16) << 10; l2 > 0 && ecx&0xFF != 0 {
		return LLC{Level: 2, LineBytes: int(ecx & 0xFF), Bytes: l2}, true
	}
	return LLC{}, false
}

// Domain returns the LLC instance that the CPU with initial APIC ID apicID
// uses: the APIC ID with the bits that number the sharing CPUs cleared,
// shifted down. With Sharing unknown (0) every CPU is taken to share one
// cache.
func (l LLC) Domain(apicID uint32) uint32 {
	if l.Sharing <= 0 {
		return 0
	}
	shift := 0
	for 1<<shift < l.Sharing {
		shift++
	}
	return apicID >> shift
}
