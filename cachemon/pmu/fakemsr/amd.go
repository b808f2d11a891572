package fakemsr

import "fmt"

// AMD MSR numbers and events (AMD APM Vol. 2 §13.2; PPR Family 17h
// §2.1.15-16), repeated for the same reason as the Intel ones.
const (
	k7EvtSel0, k7Ctr0      = 0xC0010000, 0xC0010004
	perfCtl0, perfCtr0     = 0xC0010200, 0xC0010201
	l3Cfg0, l3Ctr0         = 0xC0010230, 0xC0010231
	amdEN                  = 1 << 22
	amdMask                = 1<<48 - 1
	amdInstr, amdL2Miss    = 0x00C0, 0x0964
	amdFills               = 0x4843
	amdL3Access, amdL3Miss = 0xFF04, 0x0104
)

// AMDPMU models an AMD Zen CPU's core counters (legacy or extended) and
// L3 counters.
type AMDPMU struct {
	ExtCore, ExtLLC bool
	ctl, ctr        [6]uint64
	l3cfg, l3ctr    [6]uint64
}

func (p *AMDPMU) counters() int {
	if p.ExtCore {
		return 6
	}
	return 4
}

// decode maps an MSR to (core or L3, control or counter, index).
func (p *AMDPMU) decode(msr uint32) (l3, ctl bool, i int, ok bool) {
	switch {
	case msr >= k7EvtSel0 && msr < k7EvtSel0+4:
		return false, true, int(msr - k7EvtSel0), true
	case msr >= k7Ctr0 && msr < k7Ctr0+4:
		return false, false, int(msr - k7Ctr0), true
	case p.ExtCore && msr >= perfCtl0 && msr < perfCtl0+12:
		return false, (msr-perfCtl0)%2 == 0, int(msr-perfCtl0) / 2, true
	case p.ExtLLC && msr >= l3Cfg0 && msr < l3Cfg0+12:
		return true, (msr-l3Cfg0)%2 == 0, int(msr-l3Cfg0) / 2, true
	}
	return false, false, 0, false
}

// Read implements pmu.MSRs.
func (p *AMDPMU) Read(msr uint32) (uint64, error) {
	l3, ctl, i, ok := p.decode(msr)
	switch {
	case !ok:
		return 0, fmt.Errorf("rdmsr %#x: %w", msr, ErrGP)
	case l3 && ctl:
		return p.l3cfg[i], nil
	case l3:
		return p.l3ctr[i], nil
	case ctl:
		return p.ctl[i], nil
	}
	return p.ctr[i], nil
}

// Write implements pmu.MSRs.
func (p *AMDPMU) Write(msr uint32, v uint64) error {
	l3, ctl, i, ok := p.decode(msr)
	switch {
	case !ok:
		return fmt.Errorf("wrmsr %#x: %w", msr, ErrGP)
	case l3 && ctl:
		p.l3cfg[i] = v
	case l3:
		p.l3ctr[i] = v & amdMask
	case ctl:
		// Bits 39:36 and 63:44 are reserved in PerfEvtSel (APM Vol. 2
		// figure 13-7); the host/guest-only bits 41:40 are allowed.
		if v&(0xF<<36|0xFFFFF<<44) != 0 {
			return fmt.Errorf("wrmsr %#x reserved bits %#x: %w", msr, v, ErrGP)
		}
		p.ctl[i] = v
	default:
		p.ctr[i] = v & amdMask
	}
	return nil
}

// event decodes the 12-bit event select and unit mask of a control value
// in the driver's event-constant layout (umask<<8 | event).
func event(v uint64) uint64 { return v&0xFF | v>>8&0xFF<<8 | v>>32&0xF<<16 }

// Run counts a workload on the enabled core and L3 counters.
func (p *AMDPMU) Run(w Work) {
	for i := range p.counters() {
		if p.ctl[i]&amdEN == 0 {
			continue
		}
		var n uint64
		switch event(p.ctl[i]) {
		case amdInstr:
			n = w.Instrs
		case amdL2Miss:
			n = w.Refs
		case amdFills:
			n = w.Misses
		}
		p.ctr[i] = (p.ctr[i] + n) & amdMask
	}
	if !p.ExtLLC {
		return
	}
	for i := range 6 {
		if p.l3cfg[i]&amdEN == 0 {
			continue
		}
		var n uint64
		switch event(p.l3cfg[i]) {
		case amdL3Access:
			n = w.Refs
		case amdL3Miss:
			n = w.Misses
		}
		p.l3ctr[i] = (p.l3ctr[i] + n) & amdMask
	}
}
