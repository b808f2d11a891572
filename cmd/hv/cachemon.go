package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"hv/boot"
	"hv/cachemon"
	"hv/cachemon/pmu"
	"hv/vmm"
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

// cacheMon is the hypervisor's cache monitoring (boot option cachemon):
// one Sampler over the verified LLC counters of every host CPU, which
// every VM's vCPUs report their world switches to. Off, it says why.
type cacheMon struct {
	s     *cachemon.Sampler
	off   string // why monitoring is off; "" when on
	start time.Time
}

// newCacheMon sets cache monitoring up with an interval of intervalMs (0:
// off, as not asked for). Every CPU's counters must count: a Sampler
// attributes counts per CPU, and a CPU without them would lose its vCPUs'
// share.
func newCacheMon(intervalMs int) *cacheMon {
	if intervalMs == 0 {
		return &cacheMon{off: "not enabled (boot option cachemon)"}
	}
	c, err := startCacheMon(intervalMs)
	if err != nil {
		fmt.Printf("hv: cachemon: off: %v\n", err)
		return &cacheMon{off: err.Error()}
	}
	fmt.Printf("hv: cachemon: on: %d CPUs, interval %d ms\n", boot.CPUCount(), intervalMs)
	return c
}

func startCacheMon(intervalMs int) (*cacheMon, error) {
	p := platform{}
	ncpu := boot.CPUCount()
	sources := make([]cachemon.CounterSource, ncpu)
	domains := make([]int, ncpu)
	ids := map[uint32]int{} // LLC instance -> dense domain number
	var llc pmu.LLC
	for cpu := range ncpu {
		err := func() error {
			if err := p.Pin(cpu); err != nil {
				return err
			}
			defer p.Unpin()
			cpuid := pmu.CPUIDFunc(boot.CPUID)
			if cpu == 0 {
				var err error
				if llc, err = pmu.ProbeLLC(cpuid); err != nil {
					return err
				}
			}
			src, err := pmu.Open(msrs{}, cpuid, cacheWorkload)
			if err != nil {
				return fmt.Errorf("no usable PMU: %w", err)
			}
			sources[cpu] = src
			// Initial APIC ID: CPUID leaf 1 EBX[31:24].
			_, b, _, _ := boot.CPUID(1, 0)
			inst := llc.Domain(b >> 24)
			if _, ok := ids[inst]; !ok {
				ids[inst] = len(ids)
			}
			domains[cpu] = ids[inst]
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("cpu %d: %w", cpu, err)
		}
	}
	s, err := cachemon.NewSampler(cachemon.SamplerConfig{
		LineBytes: llc.LineBytes, CacheBytes: llc.Bytes, Domain: domains,
		Interval: uint64(intervalMs) * 1e6, Model: cachemon.ModelLRU,
	}, sources, nil)
	if err != nil {
		return nil, err
	}
	return &cacheMon{s: s, start: time.Now()}, nil
}

// attach makes vm's vCPUs report their world switches to the Sampler.
func (c *cacheMon) attach(vm *vmm.VM, vcpus int) error {
	if c == nil || c.s == nil {
		return nil
	}
	o, err := cachemon.NewObserver(c.s, vm.Name, vcpus, func() uint64 { return uint64(time.Since(c.start)) })
	if err != nil {
		return fmt.Errorf("cachemon: %w", err)
	}
	vm.Observer = o
	return nil
}

// writeText writes the monitoring state, each line prefixed.
func (c *cacheMon) writeText(w io.Writer, prefix string) {
	if c == nil {
		c = &cacheMon{off: "not enabled (boot option cachemon)"}
	}
	if c.s == nil {
		fmt.Fprintf(w, "%scache monitoring off: %s\n", prefix, c.off)
		return
	}
	var b strings.Builder
	if err := c.s.WriteText(&b); err != nil {
		fmt.Fprintf(w, "%scache monitoring: %v\n", prefix, err)
		return
	}
	for l := range strings.Lines(b.String()) {
		fmt.Fprintf(w, "%s%s", prefix, l)
	}
}
