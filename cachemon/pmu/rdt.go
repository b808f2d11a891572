package pmu

import (
	"fmt"
)

// Intel Resource Director Technology cache monitoring (CMT), Intel SDM
// Vol. 3B §19.18 ("Intel Resource Director Technology Monitoring
// Features"); AMD implements the same interface as Platform QoS
// (AMD64 Technology Platform Quality of Service Extensions, §2).
const (
	// CPUID.(EAX=07H,ECX=0):EBX bit 12 is PQM, RDT monitoring.
	cpuidLeafExtFeatures = 0x07
	ebxPQM               = 12
	// CPUID.(EAX=0FH,ECX=0): EDX bit 1 = L3 monitoring. CPUID.(EAX=0FH,
	// ECX=1): EBX = bytes per IA32_QM_CTR unit, ECX = highest RMID,
	// EDX bit 0 = L3 occupancy monitoring (SDM Vol. 3B §19.18.3).
	cpuidLeafRDTMonitoring = 0x0F
	edxL3Monitoring        = 1
	edxL3Occupancy         = 0

	MSRQMEvtSel  = 0xC8D // IA32_QM_EVTSEL: EventID 7:0, RMID 41:32
	MSRQMCtr     = 0xC8E // IA32_QM_CTR: data 61:0, Unavailable 62, Error 63
	MSRPQRAssoc  = 0xC8F // IA32_PQR_ASSOC: RMID 9:0 (up to 31:0), CLOS 63:32
	qmEventL3Occ = 1     // EventID of L3 occupancy (SDM Vol. 3B table 19-20)

	qmCtrError       = 1 << 63
	qmCtrUnavailable = 1 << 62
	qmCtrData        = 1<<62 - 1
	pqrRMIDMask      = 1<<32 - 1
)

// CMTInfo is what CPUID says about L3 occupancy monitoring.
type CMTInfo struct {
	MaxRMID     uint32
	BytesPerCtr uint64
}

// ProbeCMT reads CPUID for L3 occupancy monitoring.
func ProbeCMT(c CPUID) (CMTInfo, error) {
	_, maxLeaf := Vendor(c)
	if maxLeaf < cpuidLeafRDTMonitoring {
		return CMTInfo{}, fmt.Errorf("pmu: highest CPUID leaf %#x lacks leaf 0FH: %w", maxLeaf, ErrNoCMT)
	}
	if _, b, _, _ := c.CPUID(cpuidLeafExtFeatures, 0); b>>ebxPQM&1 == 0 {
		return CMTInfo{}, fmt.Errorf("pmu: CPUID.07H:EBX[PQM] clear: %w", ErrNoCMT)
	}
	if _, _, _, d := c.CPUID(cpuidLeafRDTMonitoring, 0); d>>edxL3Monitoring&1 == 0 {
		return CMTInfo{}, fmt.Errorf("pmu: CPUID.0FH.0:EDX[L3] clear: %w", ErrNoCMT)
	}
	_, b, cx, d := c.CPUID(cpuidLeafRDTMonitoring, 1)
	if d>>edxL3Occupancy&1 == 0 {
		return CMTInfo{}, fmt.Errorf("pmu: CPUID.0FH.1:EDX[L3 occupancy] clear: %w", ErrNoCMT)
	}
	if b == 0 || cx == 0 {
		return CMTInfo{}, fmt.Errorf("pmu: CMT with %d bytes per unit and highest RMID %d: %w", b, cx, ErrNoCMT)
	}
	return CMTInfo{MaxRMID: cx, BytesPerCtr: uint64(b)}, nil
}

// CMT reads hardware LLC occupancy per RMID and tags the calling CPU's
// execution with an RMID. It implements cachemon.OccupancyMonitor.
type CMT struct {
	msr  MSRs
	info CMTInfo
}

// OpenCMT probes CMT and verifies it: with RMID rmid assigned, the
// workload must leave a non-zero occupancy behind. The calling CPU is
// left tagged with RMID 0.
func OpenCMT(m MSRs, c CPUID, rmid uint32, w Workload) (*CMT, error) {
	info, err := ProbeCMT(c)
	if err != nil {
		return nil, err
	}
	p := &CMT{msr: m, info: info}
	if rmid == 0 || rmid > info.MaxRMID {
		return nil, fmt.Errorf("pmu: verify CMT with RMID %d outside 1..%d: %w", rmid, info.MaxRMID, ErrNoCMT)
	}
	if err := p.Assign(rmid); err != nil {
		return nil, fmt.Errorf("pmu: CMT: %w: %w", err, ErrNoCMT)
	}
	w()
	occ, err := p.OccupancyBytes(rmid)
	if aerr := p.Assign(0); err == nil && aerr != nil {
		err = aerr
	}
	if err != nil {
		return nil, fmt.Errorf("pmu: CMT: %w: %w", err, ErrNoCMT)
	}
	if occ == 0 {
		return nil, fmt.Errorf("pmu: CMT reads no occupancy for RMID %d after the workload: %w", rmid, ErrNotCounting)
	}
	return p, nil
}

// Info returns what CPUID said.
func (p *CMT) Info() CMTInfo { return p.info }

// Assign tags what the calling CPU does from now on with rmid, keeping
// the class of service (CLOS) that cache allocation may have set.
func (p *CMT) Assign(rmid uint32) error {
	if rmid > p.info.MaxRMID {
		return fmt.Errorf("pmu: RMID %d above the highest, %d", rmid, p.info.MaxRMID)
	}
	v, err := p.msr.Read(MSRPQRAssoc)
	if err != nil {
		return wrapMSR("read", MSRPQRAssoc, err)
	}
	if err := p.msr.Write(MSRPQRAssoc, v&^pqrRMIDMask|uint64(rmid)); err != nil {
		return wrapMSR("write", MSRPQRAssoc, err)
	}
	return nil
}

// OccupancyBytes returns the LLC bytes tagged rmid in the calling CPU's
// cache domain.
func (p *CMT) OccupancyBytes(rmid uint32) (uint64, error) {
	if rmid > p.info.MaxRMID {
		return 0, fmt.Errorf("pmu: RMID %d above the highest, %d", rmid, p.info.MaxRMID)
	}
	if err := p.msr.Write(MSRQMEvtSel, uint64(rmid)<<32|qmEventL3Occ); err != nil {
		return 0, wrapMSR("write", MSRQMEvtSel, err)
	}
	v, err := p.msr.Read(MSRQMCtr)
	if err != nil {
		return 0, wrapMSR("read", MSRQMCtr, err)
	}
	switch {
	case v&qmCtrError != 0:
		return 0, fmt.Errorf("pmu: IA32_QM_CTR reports an error for RMID %d", rmid)
	case v&qmCtrUnavailable != 0:
		return 0, fmt.Errorf("pmu: RMID %d: %w", rmid, ErrOccupancyUnavailable)
	}
	return (v & qmCtrData) * p.info.BytesPerCtr, nil
}
