package fakemsr

import "fmt"

// Intel MSR numbers and event codes, repeated here rather than imported so
// that a wrong constant in package pmu cannot agree with itself (Intel SDM
// Vol. 4 table 2-2; Vol. 3B table 20-1).
const (
	pmc0, evtsel0                       = 0xC1, 0x186
	fixedCtr0, fixedCtrl                = 0x309, 0x38D
	globalStatus, globalCtrl            = 0x38E, 0x38F
	qmEvtsel, qmCtr, pqrAssoc           = 0xC8D, 0xC8E, 0xC8F
	evInstr, evLLCRef, evLLCMiss        = 0x00C0, 0x4F2E, 0x412E
	selUSR, selOS, selEN                = 1 << 16, 1 << 17, 1 << 22
	evtselReserved               uint64 = 0xFFFFFFFF_00000000
)

// IntelPMU models one Intel CPU's architectural perfmon and RDT monitoring
// registers. Counters advance only through Run and only when enabled the
// way the SDM requires; reserved bits and absent counters raise #GP.
type IntelPMU struct {
	Version, GPCounters, GPWidth, FixedCounters, FixedWidth uint32
	MaxRMID                                                 uint32 // 0: no RDT
	// BytesPerCtr scales occupancy; every miss fills a 64-byte line.
	BytesPerCtr uint64

	evtsel, pmc [8]uint64
	fixed       [4]uint64
	fixedCtrlV  uint64
	globalCtrlV uint64
	pqr, qmSel  uint64
	occLines    map[uint32]uint64
	// Unavailable and Error force IA32_QM_CTR's flag bits.
	Unavailable, Error bool
}

// NewSkylake returns the PMU that SkylakeCPUID describes.
func NewSkylake() *IntelPMU {
	return &IntelPMU{Version: 4, GPCounters: 4, GPWidth: 48, FixedCounters: 3, FixedWidth: 48, MaxRMID: 191, BytesPerCtr: 64}
}

func (p *IntelPMU) gpMask() uint64    { return 1<<p.GPWidth - 1 }
func (p *IntelPMU) fixedMask() uint64 { return 1<<p.FixedWidth - 1 }

// Read implements pmu.MSRs.
func (p *IntelPMU) Read(msr uint32) (uint64, error) {
	switch {
	case msr >= pmc0 && msr < pmc0+p.GPCounters:
		return p.pmc[msr-pmc0], nil
	case msr >= evtsel0 && msr < evtsel0+p.GPCounters:
		return p.evtsel[msr-evtsel0], nil
	case p.Version >= 2 && msr >= fixedCtr0 && msr < fixedCtr0+p.FixedCounters:
		return p.fixed[msr-fixedCtr0], nil
	case p.Version >= 2 && msr == fixedCtrl:
		return p.fixedCtrlV, nil
	case p.Version >= 2 && msr == globalCtrl:
		return p.globalCtrlV, nil
	case p.Version >= 2 && msr == globalStatus:
		return 0, nil
	case p.MaxRMID > 0 && msr == pqrAssoc:
		return p.pqr, nil
	case p.MaxRMID > 0 && msr == qmEvtsel:
		return p.qmSel, nil
	case p.MaxRMID > 0 && msr == qmCtr:
		var v uint64
		rmid := uint32(p.qmSel >> 32 & 0x3FF)
		if p.qmSel&0xFF == 1 && rmid <= p.MaxRMID {
			v = p.occLines[rmid] * 64 / p.BytesPerCtr
		} else {
			v = 1 << 63
		}
		if p.Unavailable {
			v |= 1 << 62
		}
		if p.Error {
			v |= 1 << 63
		}
		return v, nil
	}
	return 0, fmt.Errorf("rdmsr %#x: %w", msr, ErrGP)
}

// Write implements pmu.MSRs.
func (p *IntelPMU) Write(msr uint32, v uint64) error {
	switch {
	case msr >= pmc0 && msr < pmc0+p.GPCounters:
		// A legacy write sign-extends bit 31 (SDM Vol. 3B §20.2.5);
		// the driver only writes 0, which the model keeps exact.
		p.pmc[msr-pmc0] = v & p.gpMask()
	case msr >= evtsel0 && msr < evtsel0+p.GPCounters:
		if v&evtselReserved != 0 {
			return fmt.Errorf("wrmsr %#x reserved bits %#x: %w", msr, v, ErrGP)
		}
		p.evtsel[msr-evtsel0] = v
	case p.Version >= 2 && msr >= fixedCtr0 && msr < fixedCtr0+p.FixedCounters:
		p.fixed[msr-fixedCtr0] = v & p.fixedMask()
	case p.Version >= 2 && msr == fixedCtrl:
		if v>>(4*p.FixedCounters) != 0 {
			return fmt.Errorf("wrmsr %#x reserved bits %#x: %w", msr, v, ErrGP)
		}
		p.fixedCtrlV = v
	case p.Version >= 2 && msr == globalCtrl:
		valid := uint64(1)<<p.GPCounters - 1 | (uint64(1)<<p.FixedCounters-1)<<32
		if v&^valid != 0 {
			return fmt.Errorf("wrmsr %#x reserved bits %#x: %w", msr, v, ErrGP)
		}
		p.globalCtrlV = v
	case p.MaxRMID > 0 && msr == pqrAssoc:
		if uint32(v&0x3FF) > p.MaxRMID || v>>10&(1<<22-1) != 0 {
			return fmt.Errorf("wrmsr %#x RMID %d: %w", msr, v&0xFFFFFFFF, ErrGP)
		}
		p.pqr = v
	case p.MaxRMID > 0 && msr == qmEvtsel:
		p.qmSel = v
	default:
		return fmt.Errorf("wrmsr %#x: %w", msr, ErrGP)
	}
	return nil
}

// SetCLOS sets IA32_PQR_ASSOC's class of service, as cache allocation would.
func (p *IntelPMU) SetCLOS(clos uint32) { p.pqr = p.pqr&0xFFFFFFFF | uint64(clos)<<32 }

// RMID returns the RMID currently in IA32_PQR_ASSOC.
func (p *IntelPMU) RMID() uint32 { return uint32(p.pqr & 0x3FF) }

// Run counts a workload: enabled counters advance by the events they
// select, and the current RMID gains one line per miss.
func (p *IntelPMU) Run(w Work) {
	for i := range p.GPCounters {
		sel := p.evtsel[i]
		if sel&selEN == 0 || sel&(selUSR|selOS) == 0 {
			continue
		}
		if p.Version >= 2 && p.globalCtrlV>>i&1 == 0 {
			continue
		}
		var n uint64
		switch sel & 0xFFFF {
		case evInstr:
			n = w.Instrs
		case evLLCRef:
			n = w.Refs
		case evLLCMiss:
			n = w.Misses
		}
		p.pmc[i] = (p.pmc[i] + n) & p.gpMask()
	}
	if p.Version >= 2 && p.FixedCounters > 0 && p.fixedCtrlV&0x3 != 0 && p.globalCtrlV>>32&1 == 1 {
		p.fixed[0] = (p.fixed[0] + w.Instrs) & p.fixedMask()
	}
	if p.MaxRMID > 0 {
		if p.occLines == nil {
			p.occLines = map[uint32]uint64{}
		}
		p.occLines[p.RMID()] += w.Misses
	}
}
