package main

import (
	"fmt"

	"hv/boot"
	"hv/cachemon/pmu"
)

// msrs gives cachemon's PMU drivers the platform's #GP-safe MSR access.
type msrs struct{}

func (msrs) Read(msr uint32) (uint64, error)  { return boot.ReadMSR(msr) }
func (msrs) Write(msr uint32, v uint64) error { return boot.WriteMSR(msr, v) }

// cacheWorkload touches more memory than any last-level cache, so a working
// LLC-miss counter must count.
func cacheWorkload() {
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 64 {
		buf[i]++
	}
}

// cachemonReport probes the PMU on CPU 0 and says what cache monitoring
// can use.
func cachemonReport() {
	p := platform{}
	if err := p.Pin(0); err != nil {
		fmt.Printf("hv: cachemon: %v\n", err)
		return
	}
	defer p.Unpin()
	src, err := pmu.Open(msrs{}, pmu.CPUIDFunc(boot.CPUID), cacheWorkload)
	if err != nil {
		fmt.Printf("hv: cachemon: no usable PMU: %v\n", err)
		return
	}
	fmt.Printf("hv: cachemon: PMU counters verified (%T)\n", src)
}
