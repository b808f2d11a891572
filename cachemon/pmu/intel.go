package pmu

import (
	"fmt"

	"hv/cachemon"
)

// Intel architectural performance monitoring, Intel SDM Vol. 3B chapter 20
// ("Performance Monitoring"), §20.2 (architectural PMU versions 1-5).
const (
	// CPUIDLeafPerfmon is the architectural perfmon leaf (SDM Vol. 2A,
	// CPUID leaf 0AH).
	CPUIDLeafPerfmon = 0x0A

	MSRPMC0           = 0x0C1 // IA32_PMC0 (SDM Vol. 4, table 2-2)
	MSRPerfEvtSel0    = 0x186 // IA32_PERFEVTSEL0
	MSRFixedCtr0      = 0x309 // IA32_FIXED_CTR0: instructions retired
	MSRFixedCtrCtrl   = 0x38D // IA32_FIXED_CTR_CTRL
	MSRPerfGlobalStat = 0x38E // IA32_PERF_GLOBAL_STATUS
	MSRPerfGlobalCtrl = 0x38F // IA32_PERF_GLOBAL_CTRL

	// IA32_PERFEVTSELx fields (SDM Vol. 3B §20.2.1.1, figure 20-1).
	EvtSelUSR = 1 << 16 // count at CPL > 0
	EvtSelOS  = 1 << 17 // count at CPL 0
	EvtSelEN  = 1 << 22 // enable

	// Architectural events (SDM Vol. 3B table 20-1): event select in
	// bits 7:0, unit mask in bits 15:8.
	EventInstrRetired = 0x00C0 // Instruction Retired: umask 00H, event C0H
	EventLLCReference = 0x4F2E // LLC Reference: umask 4FH, event 2EH
	EventLLCMisses    = 0x412E // LLC Misses: umask 41H, event 2EH

	// CPUID.0AH:EBX bit positions that, when set, mark an architectural
	// event as NOT available (SDM Vol. 2A, leaf 0AH).
	ebxNoInstrRetired = 1
	ebxNoLLCReference = 3
	ebxNoLLCMisses    = 4

	// IA32_FIXED_CTR_CTRL: 4 bits per fixed counter; bit 0 enables
	// counting at CPL 0, bit 1 at CPL > 0 (SDM Vol. 3B §20.2.2, figure 20-2).
	fixedCtrlOSUSR = 0x3

	// IA32_PERF_GLOBAL_CTRL: bit n enables IA32_PMCn, bit 32+n
	// IA32_FIXED_CTRn (SDM Vol. 3B §20.2.2, figure 20-3).
	globalFixedShift = 32
)

// IntelInfo is what CPUID leaf 0AH says about the PMU.
type IntelInfo struct {
	Version      uint32 // architectural perfmon version, EAX[7:0]
	GPCounters   uint32 // general-purpose counters per logical CPU, EAX[15:8]
	GPWidth      uint32 // their width in bits, EAX[23:16]
	FixedCount   uint32 // fixed-function counters, EDX[4:0] (version ≥ 2)
	FixedWidth   uint32 // their width, EDX[12:5]
	EventsKnown  uint32 // length of the EBX event vector, EAX[31:24]
	EventsAbsent uint32 // EBX: bit set = event not available
}

func (i IntelInfo) hasEvent(bit uint32) bool {
	return bit < i.EventsKnown && i.EventsAbsent&(1<<bit) == 0
}

// ProbeIntel reads CPUID and reports whether an Intel architectural PMU
// with the LLC events is advertised. Advertised is not the same as
// working: use OpenIntel, which verifies.
func ProbeIntel(c CPUID) (IntelInfo, error) {
	vendor, maxLeaf := Vendor(c)
	if vendor != VendorIntel {
		return IntelInfo{}, fmt.Errorf("pmu: vendor %q is not Intel: %w", vendor, ErrNoPMU)
	}
	if maxLeaf < CPUIDLeafPerfmon {
		return IntelInfo{}, fmt.Errorf("pmu: highest CPUID leaf %#x lacks leaf 0AH: %w", maxLeaf, ErrNoPMU)
	}
	a, b, _, d := c.CPUID(CPUIDLeafPerfmon, 0)
	info := IntelInfo{
		Version:      a & 0xFF,
		GPCounters:   a >> 8 & 0xFF,
		GPWidth:      a >> 16 & 0xFF,
		EventsKnown:  a >> 24 & 0xFF,
		EventsAbsent: b,
	}
	if info.Version >= 2 {
		info.FixedCount = d & 0x1F
		info.FixedWidth = d >> 5 & 0xFF
	}
	switch {
	case info.Version == 0:
		return info, fmt.Errorf("pmu: CPUID leaf 0AH reports perfmon version 0: %w", ErrNoPMU)
	case info.GPCounters < 2:
		return info, fmt.Errorf("pmu: %d general-purpose counters, need 2: %w", info.GPCounters, ErrNoPMU)
	case info.GPWidth < 32 || info.GPWidth > 64:
		return info, fmt.Errorf("pmu: counter width %d outside 32..64: %w", info.GPWidth, ErrNoPMU)
	case !info.hasEvent(ebxNoLLCReference) || !info.hasEvent(ebxNoLLCMisses):
		return info, fmt.Errorf("pmu: LLC reference/miss events not available (EBX %#x, %d known): %w", b, info.EventsKnown, ErrNoPMU)
	}
	if info.FixedCount == 0 && (info.GPCounters < 3 || !info.hasEvent(ebxNoInstrRetired)) {
		return info, fmt.Errorf("pmu: no counter left for instructions retired: %w", ErrNoPMU)
	}
	if info.FixedCount > 0 && (info.FixedWidth < 32 || info.FixedWidth > 64) {
		return info, fmt.Errorf("pmu: fixed counter width %d outside 32..64: %w", info.FixedWidth, ErrNoPMU)
	}
	return info, nil
}

// Intel drives the architectural PMU of one CPU: IA32_PMC0 counts LLC
// references, IA32_PMC1 LLC misses, and IA32_FIXED_CTR0 (or, on version 1,
// IA32_PMC2) instructions retired, at every privilege level, so that guest
// and hypervisor alike are counted and the Sampler splits them by time.
type Intel struct {
	msr  MSRs
	info IntelInfo
	mask uint64
}

// OpenIntel probes, programs and verifies the PMU of the calling CPU.
func OpenIntel(m MSRs, c CPUID, w Workload) (*Intel, error) {
	info, err := ProbeIntel(c)
	if err != nil {
		return nil, err
	}
	p := &Intel{msr: m, info: info, mask: counterMask(info.GPWidth)}
	if info.FixedCount > 0 {
		p.mask &= counterMask(info.FixedWidth)
	}
	if err := p.enable(); err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: program Intel perfmon v%d: %w: %w", info.Version, err, ErrNoPMU)
	}
	if err := Verify(p, w); err != nil {
		p.Disable()
		return nil, fmt.Errorf("pmu: Intel perfmon v%d: %w", info.Version, err)
	}
	return p, nil
}

// Info returns what CPUID said.
func (p *Intel) Info() IntelInfo { return p.info }

func (p *Intel) enable() error {
	sel := uint64(EvtSelUSR | EvtSelOS | EvtSelEN)
	if p.info.Version >= 2 {
		// Stop everything while programming, so no counter runs
		// half-configured.
		if err := p.msr.Write(MSRPerfGlobalCtrl, 0); err != nil {
			return wrapMSR("write", MSRPerfGlobalCtrl, err)
		}
	}
	writes := []msrWrite{
		{MSRPerfEvtSel0, sel | EventLLCReference},
		{MSRPerfEvtSel0 + 1, sel | EventLLCMisses},
		{MSRPMC0, 0},
		{MSRPMC0 + 1, 0},
	}
	if p.info.FixedCount > 0 {
		writes = append(writes, msrWrite{MSRFixedCtr0, 0})
		// Read-modify-write keeps whatever the other fixed counters do.
		ctrl, err := p.msr.Read(MSRFixedCtrCtrl)
		if err != nil {
			return wrapMSR("read", MSRFixedCtrCtrl, err)
		}
		writes = append(writes, msrWrite{MSRFixedCtrCtrl, ctrl&^0xF | fixedCtrlOSUSR})
	} else {
		writes = append(writes, msrWrite{MSRPerfEvtSel0 + 2, sel | EventInstrRetired}, msrWrite{MSRPMC0 + 2, 0})
	}
	if err := writeAll(p.msr, writes); err != nil {
		return err
	}
	if p.info.Version >= 2 {
		global := uint64(0b11)
		if p.info.FixedCount > 0 {
			global |= 1 << globalFixedShift
		} else {
			global |= 0b100
		}
		if err := p.msr.Write(MSRPerfGlobalCtrl, global); err != nil {
			return wrapMSR("write", MSRPerfGlobalCtrl, err)
		}
	}
	return nil
}

// ReadCounts implements cachemon.CounterSource.
func (p *Intel) ReadCounts() (cachemon.Counts, error) {
	var c cachemon.Counts
	var err error
	if c.Refs, err = p.msr.Read(MSRPMC0); err != nil {
		return c, wrapMSR("read", MSRPMC0, err)
	}
	if c.Misses, err = p.msr.Read(MSRPMC0 + 1); err != nil {
		return c, wrapMSR("read", MSRPMC0+1, err)
	}
	instr := uint32(MSRFixedCtr0)
	if p.info.FixedCount == 0 {
		instr = MSRPMC0 + 2
	}
	if c.Instrs, err = p.msr.Read(instr); err != nil {
		return c, wrapMSR("read", instr, err)
	}
	return c, nil
}

// CounterMask implements cachemon.CounterSource.
func (p *Intel) CounterMask() uint64 { return p.mask }

// Disable stops the counters this driver programmed.
func (p *Intel) Disable() error {
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	if p.info.Version >= 2 {
		if err := p.msr.Write(MSRPerfGlobalCtrl, 0); err != nil {
			note(wrapMSR("write", MSRPerfGlobalCtrl, err))
		}
	}
	for i := range uint32(3) {
		if i == 2 && p.info.FixedCount > 0 {
			break
		}
		if err := p.msr.Write(MSRPerfEvtSel0+i, 0); err != nil {
			note(wrapMSR("write", MSRPerfEvtSel0+i, err))
		}
	}
	return first
}

// Verify reads src, runs the workload, reads again, and requires every
// counter to have advanced: a PMU that reads as zero, or stands still, is
// not one.
func Verify(src cachemon.CounterSource, w Workload) error {
	if w == nil {
		return fmt.Errorf("pmu: verify without a workload: %w", ErrNotCounting)
	}
	before, err := src.ReadCounts()
	if err != nil {
		return fmt.Errorf("pmu: verify: %w: %w", err, ErrNoPMU)
	}
	w()
	after, err := src.ReadCounts()
	if err != nil {
		return fmt.Errorf("pmu: verify: %w: %w", err, ErrNoPMU)
	}
	mask := src.CounterMask()
	d := cachemon.Counts{
		Instrs: (after.Instrs - before.Instrs) & mask,
		Refs:   (after.Refs - before.Refs) & mask,
		Misses: (after.Misses - before.Misses) & mask,
	}
	if d.Instrs == 0 || d.Refs == 0 || d.Misses == 0 {
		return fmt.Errorf("pmu: workload counted %d instructions, %d LLC references, %d LLC misses: %w", d.Instrs, d.Refs, d.Misses, ErrNotCounting)
	}
	if d.Misses > d.Refs {
		return fmt.Errorf("pmu: workload counted more LLC misses (%d) than references (%d): %w", d.Misses, d.Refs, ErrNotCounting)
	}
	return nil
}
