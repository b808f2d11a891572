// Package pmu programs and reads the hardware performance counters that
// cachemon needs, behind an MSR interface so that the logic runs (and is
// tested) on the host: Intel architectural performance monitoring (fixed
// and general-purpose counters, the architectural LLC reference and miss
// events), AMD core counters and L3 counters, and Intel RDT cache
// monitoring (CMT) for hardware LLC occupancy. Every driver verifies that
// its counters actually count before it is used, because emulators claim
// PMUs they do not implement: QEMU TCG reads every MSR as 0 and ignores
// writes, Bochs raises #GP on PMU MSRs although its CPUID advertises
// perfmon version 4. Absence is reported as ErrNoPMU or ErrNoCMT with the
// reason. The ring-0 MSR and CPUID accessors live elsewhere (boot/); this
// package only sees the interfaces.
package pmu

import (
	"errors"
	"fmt"
)

// MSRs reads and writes model-specific registers of the calling CPU. An
// access the CPU refuses (#GP) returns an error, which drivers treat as
// "not present", never as a reason to crash.
type MSRs interface {
	Read(msr uint32) (uint64, error)
	Write(msr uint32, v uint64) error
}

// CPUID executes CPUID with the given leaf (EAX) and subleaf (ECX).
type CPUID interface {
	CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
}

// CPUIDFunc adapts a function to CPUID.
type CPUIDFunc func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// CPUID calls f.
func (f CPUIDFunc) CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32) { return f(leaf, subleaf) }

var (
	// ErrNoPMU reports that no usable LLC counters exist.
	ErrNoPMU = errors.New("pmu: no usable performance counters")
	// ErrNotCounting reports counters that were programmed but did not
	// count a known workload (QEMU's read-as-zero MSRs).
	ErrNotCounting = errors.New("pmu: counters do not count")
	// ErrNoCMT reports that no usable LLC occupancy monitoring exists.
	ErrNoCMT = errors.New("pmu: no LLC occupancy monitoring")
	// ErrOccupancyUnavailable is IA32_QM_CTR's Unavailable bit: no data
	// for this RMID yet (or any more).
	ErrOccupancyUnavailable = errors.New("pmu: occupancy data unavailable")
)

// Vendor strings from CPUID leaf 0 (EBX, EDX, ECX).
const (
	VendorIntel = "GenuineIntel"
	VendorAMD   = "AuthenticAMD"
)

// Vendor returns the CPUID vendor string and the highest standard leaf.
func Vendor(c CPUID) (string, uint32) {
	max, b, cx, d := c.CPUID(0, 0)
	var s [12]byte
	for i := range 4 {
		s[i] = byte(b >> (8 * i))
		s[4+i] = byte(d >> (8 * i))
		s[8+i] = byte(cx >> (8 * i))
	}
	return string(s[:]), max
}

// family returns the display family (Intel SDM Vol. 2A, CPUID leaf 1
// EAX; AMD APM Vol. 3 CPUID Fn0000_0001_EAX): base family bits 11:8 plus
// the extended family bits 27:20 when the base is 0xF.
func family(c CPUID) uint32 {
	a, _, _, _ := c.CPUID(1, 0)
	f := a >> 8 & 0xF
	if f == 0xF {
		f += a >> 20 & 0xFF
	}
	return f
}

// Workload is code run between two counter readings to prove that the
// counters count. It must retire instructions and make LLC references and
// misses, for example by touching every line of a buffer twice the size
// of the LLC.
type Workload func()

// counterMask returns 2^bits - 1.
func counterMask(bits uint32) uint64 {
	if bits >= 64 {
		return ^uint64(0)
	}
	return 1<<bits - 1
}

// wrap adds context to an MSR access failure.
func wrapMSR(op string, msr uint32, err error) error {
	return fmt.Errorf("pmu: %s MSR %#x: %w", op, msr, err)
}

// msrWrite is one step of a programming sequence.
type msrWrite struct {
	msr uint32
	v   uint64
}

// writeAll performs the writes in order, stopping at the first refusal.
func writeAll(m MSRs, ws []msrWrite) error {
	for _, w := range ws {
		if err := m.Write(w.msr, w.v); err != nil {
			return wrapMSR("write", w.msr, err)
		}
	}
	return nil
}
