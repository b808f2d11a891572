package pmu

import (
	"fmt"

	"hv/cachemon"
)

// Open finds the calling CPU's LLC counters, whatever the vendor, and
// verifies them with the workload; the error says why none could be used
// and matches ErrNoPMU or ErrNotCounting.
func Open(m MSRs, c CPUID, w Workload) (cachemon.CounterSource, error) {
	vendor, _ := Vendor(c)
	switch vendor {
	case VendorIntel:
		p, err := OpenIntel(m, c, w)
		if err != nil {
			return nil, err
		}
		return p, nil
	case VendorAMD:
		p, err := OpenAMD(m, c, w)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("pmu: unknown CPU vendor %q: %w", vendor, ErrNoPMU)
}
