package pmu

import (
	"fmt"

	"hv/cachemon"
)

// AMD performance counters, AMD64 APM Vol. 2 §13.2 ("Performance
// Monitoring Counters") and the Processor Programming Reference (PPR) for
// Family 17h/19h, §2.1.15-2.1.16 (core and L3 PMC events).
const (
	// CPUIDLeafExtFeatures is Fn8000_0001 (APM Vol. 3, appendix E).
	CPUIDLeafExtFeatures = 0x8000_0001
	// ECX bits of Fn8000_0001.
	ecxPerfCtrExtCore = 23 // six core counters at MSRC001_020x
	ecxPerfCtrExtLLC  = 28 // L3 counters at MSRC001_023x

	// Legacy core counters: PerfEvtSel0-3 at C001_0000-3 and PerfCtr0-3
	// at C001_0004-7 (APM Vol. 2 §13.2.1).
	MSRK7PerfEvtSel0 = 0xC001_0000
	MSRK7PerfCtr0    = 0xC001_0004
	// Extended core counters: PerfCtl n at C001_0200+2n, PerfCtr n at
	// C001_0201+2n (APM Vol. 2 §13.2.1, "PerfCtrExtCore").
	MSRPerfCtl0 = 0xC001_0200
	MSRPerfCtr0 = 0xC001_0201
	// L3 counters: ChL3PmcCfg n at C001_0230+2n, ChL3Pmc n at C001_0231+2n
	// (PPR Family 17h §2.1.16, "L3 Cache PMC").
	MSRL3PmcCfg0 = 0xC001_0230
	MSRL3Pmc0    = 0xC001_0231

	// The width of AMD core and L3 counters (APM Vol. 2 §13.2.1).
	amdCounterBits = 48

	// PerfEvtSel/PerfCtl fields (APM Vol. 2 §13.2.1.1, figure 13-7):
	// EventSelect[7:0] in 7:0, UnitMask in 15:8, USR 16, OS 17, EN 22,
	// EventSelect[11:8] in 35:32.
	amdUSR = 1 << 16
	amdOS  = 1 << 17
	amdEN  = 1 << 22

	// Core events (PPR Family 17h §2.1.15.4). Retired Instructions is
	// PMCx0C0 on every family since K8. L2 cache misses from demand
	// requests, PMCx064 unit mask 0x09 (IcFillMiss | LsRdBlkC), are the
	// core's requests to the L3: its LLC references. Demand data cache
	// fills from DRAM or I/O, local or remote, PMCx043 unit mask 0x48,
	// are the LLC misses of data loads (instruction fetch misses and
	// prefetches are not counted, which the model tolerates because it
	// uses misses only in proportion).
	AMDEventRetiredInstr = 0x00C0
	AMDEventL2Miss       = 0x0964
	AMDEventFillsFromMem = 0x4843

	// L3 events (PPR Family 17h §2.1.16.1): L3 Cache Accesses, L3PMCx04
	// with all unit-mask bits; L3 Miss, L3PMCx04 unit mask 0x01
	// (RequestMiss).
	AMDL3EventAccess = 0xFF04
	AMDL3EventMiss   = 0x0104
	// ChL3PmcCfg selection of which slices and threads count. Family 17h:
	// SliceMask bits 51:48, ThreadMask bits 63:56 (PPR 17h §2.1.16).
	// Family 19h: EnAllSlices bit 46, EnAllCores bit 47, ThreadMask bits
	// 57:56 (PPR 19h §2.1.17).
	amdL3AllSlices17h  = 0xF << 48
	amdL3AllThreads17h = 0xFF << 56
	amdL3AllSlices19h  = 1 << 46
	amdL3AllCores19h   = 1 << 47
	amdL3AllThreads19h = 0x3 << 56
)

// AMDInfo is what CPUID says about the AMD counters.
type AMDInfo struct {
	Family  uint32
	ExtCore bool // PerfCtrExtCore: six counters at C001_020x
	ExtLLC  bool // PerfCtrExtLLC: L3 counters
}

// ProbeAMD reads CPUID for the AMD counters.
func ProbeAMD(c CPUID) (AMDInfo, error) {
	vendor, _ := Vendor(c)
	if vendor != VendorAMD {
		return AMDInfo{}, fmt.Errorf("pmu: vendor %q is not AMD: %w", vendor, ErrNoPMU)
	}
	maxExt, _, _, _ := c.CPUID(0x8000_0000, 0)
	info := AMDInfo{Family: family(c)}
	if maxExt >= CPUIDLeafExtFeatures {
		_, _, ecx, _ := c.CPUID(CPUIDLeafExtFeatures, 0)
		info.ExtCore = ecx>>ecxPerfCtrExtCore&1 == 1
		info.ExtLLC = ecx>>ecxPerfCtrExtLLC&1 == 1
	}
	// The L2-miss and fill events used are those of family 17h (Zen) and
	// later; older families number their events differently.
	if info.Family < 0x17 {
		return info, fmt.Errorf("pmu: AMD family %#x predates the Zen events used: %w", info.Family, ErrNoPMU)
	}
	return info, nil
}

// AMD drives three core counters of one CPU: LLC references (L2 demand
// misses), LLC misses (demand fills from memory) and retired instructions.
type AMD struct {
	msr      MSRs
	info     AMDInfo
	ctl, ctr uint32 // first control and counter MSR
	stride   uint32
}

// OpenAMD probes, programs and verifies the core counters of the calling CPU.
func OpenAMD(m MSRs, c CPUID, w Workload) (*AMD, error) {
	info, err := ProbeAMD(c)
	if err != nil {
		return nil, err
	}
	p := &AMD{msr: m, info: info, ctl: MSRK7PerfEvtSel0, ctr: MSRK7PerfCtr0, stride: 1}
	if info.ExtCore {
		p.ctl, p.ctr, p.stride = MSRPerfCtl0, MSRPerfCtr0, 2
	}
	if err := p.enable(); err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: program AMD core counters: %w: %w", err, ErrNoPMU)
	}
	if err := Verify(p, w); err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: AMD core counters: %w", err)
	}
	return p, nil
}

// Info returns what CPUID said.
func (p *AMD) Info() AMDInfo { return p.info }

// amdEventSel encodes a 12-bit event and unit mask as PerfEvtSel bits.
func amdEventSel(ev uint64) uint64 {
	event := ev & 0xFF
	umask := ev >> 8 & 0xFF
	high := ev >> 16 & 0xF // EventSelect[11:8]
	return event | umask<<8 | high<<32
}

func (p *AMD) enable() error {
	sel := uint64(amdUSR | amdOS | amdEN)
	var ws []msrWrite
	for i, ev := range []uint64{AMDEventL2Miss, AMDEventFillsFromMem, AMDEventRetiredInstr} {
		n := uint32(i)
		ws = append(ws,
			msrWrite{p.ctl + n*p.stride, 0}, // stop before clearing
			msrWrite{p.ctr + n*p.stride, 0},
			msrWrite{p.ctl + n*p.stride, sel | amdEventSel(ev)})
	}
	return writeAll(p.msr, ws)
}

// ReadCounts implements cachemon.CounterSource.
func (p *AMD) ReadCounts() (cachemon.Counts, error) {
	var v [3]uint64
	for i := range v {
		msr := p.ctr + uint32(i)*p.stride
		x, err := p.msr.Read(msr)
		if err != nil {
			return cachemon.Counts{}, wrapMSR("read", msr, err)
		}
		v[i] = x
	}
	return cachemon.Counts{Refs: v[0], Misses: v[1], Instrs: v[2]}, nil
}

// CounterMask implements cachemon.CounterSource.
func (p *AMD) CounterMask() uint64 { return counterMask(amdCounterBits) }

// Disable stops the counters.
func (p *AMD) Disable() error {
	var first error
	for i := range uint32(3) {
		if err := p.msr.Write(p.ctl+i*p.stride, 0); err != nil && first == nil {
			first = wrapMSR("write", p.ctl+i*p.stride, err)
		}
	}
	return first
}

// AMDL3 drives two L3 counters of the calling CPU's core complex: every
// L3 access and every L3 miss from all its cores and slices. They cannot
// tell vCPUs apart, so the Sampler does not use them; they check that the
// per-core counts add up to what the shared cache saw.
type AMDL3 struct {
	msr  MSRs
	info AMDInfo
}

// OpenAMDL3 probes, programs and verifies the L3 counters.
func OpenAMDL3(m MSRs, c CPUID, w Workload) (*AMDL3, error) {
	info, err := ProbeAMD(c)
	if err != nil {
		return nil, err
	}
	if !info.ExtLLC {
		return nil, fmt.Errorf("pmu: CPUID Fn8000_0001 ECX[PerfCtrExtLLC] clear: %w", ErrNoPMU)
	}
	p := &AMDL3{msr: m, info: info}
	sel := uint64(amdEN) | p.allSources()
	ws := []msrWrite{
		{MSRL3PmcCfg0, 0}, {MSRL3Pmc0, 0},
		{MSRL3PmcCfg0 + 2, 0}, {MSRL3Pmc0 + 2, 0},
		{MSRL3PmcCfg0, sel | amdEventSel(AMDL3EventAccess)},
		{MSRL3PmcCfg0 + 2, sel | amdEventSel(AMDL3EventMiss)},
	}
	if err := writeAll(m, ws); err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: program AMD L3 counters: %w: %w", err, ErrNoPMU)
	}
	before, err := p.Read()
	if err == nil {
		w()
		var after [2]uint64
		if after, err = p.Read(); err == nil && ((after[0]-before[0])&p.mask() == 0 || (after[1]-before[1])&p.mask() == 0) {
			err = fmt.Errorf("pmu: L3 counted %d accesses and %d misses: %w", (after[0]-before[0])&p.mask(), (after[1]-before[1])&p.mask(), ErrNotCounting)
		}
	}
	if err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: AMD L3 counters: %w", err)
	}
	return p, nil
}

func (p *AMDL3) allSources() uint64 {
	if p.info.Family >= 0x19 {
		return amdL3AllSlices19h | amdL3AllCores19h | amdL3AllThreads19h
	}
	return amdL3AllSlices17h | amdL3AllThreads17h
}

func (p *AMDL3) mask() uint64 { return counterMask(amdCounterBits) }

// Read returns the L3 access and miss counts.
func (p *AMDL3) Read() ([2]uint64, error) {
	var v [2]uint64
	for i := range v {
		msr := MSRL3Pmc0 + 2*uint32(i)
		x, err := p.msr.Read(msr)
		if err != nil {
			return v, wrapMSR("read", msr, err)
		}
		v[i] = x & p.mask()
	}
	return v, nil
}

// Disable stops the L3 counters.
func (p *AMDL3) Disable() error {
	var first error
	for _, msr := range []uint32{MSRL3PmcCfg0, MSRL3PmcCfg0 + 2} {
		if err := p.msr.Write(msr, 0); err != nil && first == nil {
			first = wrapMSR("write", msr, err)
		}
	}
	return first
}
