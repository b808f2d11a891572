package cachemon

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Counts are free-running hardware counter values of one physical CPU.
type Counts struct {
	Instrs, Refs, Misses uint64
}

// CounterSource reads the calling CPU's LLC counters. Package cachemon/pmu
// implements it for Intel and AMD; tests use fakes.
type CounterSource interface {
	ReadCounts() (Counts, error)
	// CounterMask is 2^width - 1 for the counters' width, so that deltas
	// survive a wrap.
	CounterMask() uint64
}

// OccupancyMonitor is hardware LLC occupancy monitoring (Intel RDT CMT,
// AMD PQoS) seen from the calling CPU.
type OccupancyMonitor interface {
	// Assign tags everything the calling CPU does from now on with rmid.
	Assign(rmid uint32) error
	// OccupancyBytes returns the LLC bytes tagged rmid in the calling
	// CPU's cache domain.
	OccupancyBytes(rmid uint32) (uint64, error)
}

// VCPU identifies a vCPU registered with a Sampler.
type VCPU int

// noVCPU marks a CPU that runs the hypervisor itself.
const noVCPU VCPU = -1

// hostOwner is the estimator owner that stands for the hypervisor's own
// execution between vCPU runs, which fills the cache too; vCPU v is owner v+1.
const hostOwner = 0

// SamplerConfig describes the machine to a Sampler.
type SamplerConfig struct {
	// LineBytes and CacheBytes give the LLC geometry; every domain has the same.
	LineBytes, CacheBytes int
	// Domain maps each physical CPU to the LLC it shares.
	Domain []int
	// Interval is the sampling interval in the caller's time unit
	// (nanoseconds, TSC ticks: the Sampler never reads a clock itself).
	Interval uint64
	Model    Model
	// MRCBins is the resolution of each vCPU's miss-ratio curve.
	MRCBins int
}

// Sampler attributes each physical CPU's LLC counts to the vCPU it runs,
// by reading the counters at every world switch, and once per interval
// feeds every vCPU's counts to the occupancy model of its LLC and the
// resulting (occupancy, miss ratio) pairs to its MRC. The vmm run loop
// calls SwitchIn before entering a vCPU and SwitchOut after it exits, on
// the CPU where that happens; Tick on any CPU closes intervals. Counters
// are free-running: subtracting readings at switches gives each vCPU
// exactly its own counts without writing a counter, which would cost a
// second MSR access per switch and full-width counter writes besides.
type Sampler struct {
	mu       sync.Mutex
	cfg      SamplerConfig
	lines    int
	cpus     []cpuState
	vcpus    []vcpuState
	domains  []*domainState
	last     uint64
	started  bool
	err      error // first counter failure, kept for the monitor
	nclosed  uint64
	monitors []OccupancyMonitor
}

type cpuState struct {
	src     CounterSource
	running VCPU
	last    Counts
	valid   bool // last holds a reading
}

type vcpuState struct {
	name    string
	on      int // CPU it runs on, or -1
	total   Counts
	lastIv  Interval
	mrc     *MRCBuilder
	hwBytes uint64
	hwValid bool
}

type domainState struct {
	est     *Estimator
	pending []Interval // per owner, this interval
}

// NewSampler returns a sampler for the CPUs whose counters sources reads;
// sources[i] must read CPU i's counters when called on CPU i. monitors is
// optional (nil, or one per CPU with nil where absent).
func NewSampler(cfg SamplerConfig, sources []CounterSource, monitors []OccupancyMonitor) (*Sampler, error) {
	if cfg.LineBytes <= 0 || cfg.CacheBytes < cfg.LineBytes {
		return nil, fmt.Errorf("cachemon: sampler for a %d-byte cache of %d-byte lines", cfg.CacheBytes, cfg.LineBytes)
	}
	if len(cfg.Domain) != len(sources) || len(sources) == 0 {
		return nil, fmt.Errorf("cachemon: sampler with %d CPUs in the domain map and %d counter sources", len(cfg.Domain), len(sources))
	}
	if monitors != nil && len(monitors) != len(sources) {
		return nil, fmt.Errorf("cachemon: %d occupancy monitors for %d CPUs", len(monitors), len(sources))
	}
	if cfg.Interval == 0 {
		return nil, errors.New("cachemon: sampler with a zero interval")
	}
	if cfg.MRCBins <= 0 {
		cfg.MRCBins = 16
	}
	s := &Sampler{cfg: cfg, lines: cfg.CacheBytes / cfg.LineBytes, monitors: monitors}
	if cfg.MRCBins > s.lines {
		return nil, fmt.Errorf("cachemon: %d MRC bins for %d lines", cfg.MRCBins, s.lines)
	}
	ndom := 0
	for cpu, d := range cfg.Domain {
		if d < 0 || d >= len(sources) {
			return nil, fmt.Errorf("cachemon: CPU %d in LLC domain %d", cpu, d)
		}
		ndom = max(ndom, d+1)
		if sources[cpu] == nil {
			return nil, fmt.Errorf("cachemon: CPU %d has no counter source", cpu)
		}
		s.cpus = append(s.cpus, cpuState{src: sources[cpu], running: noVCPU})
	}
	for range ndom {
		est, err := NewEstimator(s.lines, 1, cfg.Model)
		if err != nil {
			return nil, err
		}
		s.domains = append(s.domains, &domainState{est: est, pending: make([]Interval, 1)})
	}
	return s, nil
}

// AddVCPU registers a vCPU and returns its identifier.
func (s *Sampler) AddVCPU(name string) (VCPU, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mrc, err := NewMRCBuilder(s.lines, s.cfg.MRCBins)
	if err != nil {
		return noVCPU, err
	}
	s.vcpus = append(s.vcpus, vcpuState{name: name, mrc: mrc, on: -1})
	for _, d := range s.domains {
		d.est.AddOwner()
		d.pending = append(d.pending, Interval{})
	}
	return VCPU(len(s.vcpus) - 1), nil
}

// SwitchIn is called on cpu just before it enters vCPU v: counts since the
// last reading belong to the hypervisor.
func (s *Sampler) SwitchIn(cpu int, v VCPU, now uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCPU(cpu); err != nil {
		return err
	}
	if v < 0 || int(v) >= len(s.vcpus) {
		return fmt.Errorf("cachemon: switch in unknown vCPU %d", v)
	}
	c := &s.cpus[cpu]
	if c.running != noVCPU {
		return fmt.Errorf("cachemon: switch in vCPU %d on CPU %d still running vCPU %d", v, cpu, c.running)
	}
	if on := s.vcpus[v].on; on >= 0 {
		return fmt.Errorf("cachemon: switch in vCPU %d on CPU %d while it runs on CPU %d", v, cpu, on)
	}
	err := s.account(cpu)
	c.running = v
	s.vcpus[v].on = cpu
	if s.monitors != nil && s.monitors[cpu] != nil {
		if merr := s.monitors[cpu].Assign(uint32(v) + 1); merr != nil && err == nil {
			err = fmt.Errorf("cachemon: assign RMID on CPU %d: %w", cpu, merr)
		}
	}
	return err
}

// SwitchOut is called on cpu right after its vCPU exited: counts since the
// last reading belong to that vCPU.
func (s *Sampler) SwitchOut(cpu int, now uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCPU(cpu); err != nil {
		return err
	}
	c := &s.cpus[cpu]
	if c.running == noVCPU {
		return fmt.Errorf("cachemon: switch out on CPU %d with no vCPU running", cpu)
	}
	err := s.account(cpu)
	s.vcpus[c.running].on = -1
	c.running = noVCPU
	if s.monitors != nil && s.monitors[cpu] != nil {
		if merr := s.monitors[cpu].Assign(hostOwner); merr != nil && err == nil {
			err = fmt.Errorf("cachemon: assign host RMID on CPU %d: %w", cpu, merr)
		}
	}
	return err
}

// Checkpoint is called on cpu to credit counts so far to whoever runs
// there, without a switch; the vmm calls it on long-running vCPUs (at timer
// exits) so that an interval closed elsewhere sees their recent counts.
func (s *Sampler) Checkpoint(cpu int, now uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCPU(cpu); err != nil {
		return err
	}
	return s.account(cpu)
}

func (s *Sampler) checkCPU(cpu int) error {
	if cpu < 0 || cpu >= len(s.cpus) {
		return fmt.Errorf("cachemon: CPU %d outside 0..%d", cpu, len(s.cpus)-1)
	}
	return nil
}

// account reads cpu's counters and credits the difference from the last
// reading to the owner that ran in between.
func (s *Sampler) account(cpu int) error {
	c := &s.cpus[cpu]
	now, err := c.src.ReadCounts()
	if err != nil {
		// The span is lost; the next reading starts a new one.
		c.valid = false
		err = fmt.Errorf("cachemon: read counters on CPU %d: %w", cpu, err)
		if s.err == nil {
			s.err = err
		}
		return err
	}
	if c.valid {
		mask := c.src.CounterMask()
		d := Interval{
			Instrs: (now.Instrs - c.last.Instrs) & mask,
			Refs:   (now.Refs - c.last.Refs) & mask,
			Misses: (now.Misses - c.last.Misses) & mask,
		}
		owner := hostOwner
		if c.running != noVCPU {
			owner = int(c.running) + 1
			v := &s.vcpus[c.running]
			v.total.Instrs += d.Instrs
			v.total.Refs += d.Refs
			v.total.Misses += d.Misses
		}
		p := &s.domains[s.cfg.Domain[cpu]].pending[owner]
		p.Instrs += d.Instrs
		p.Refs += d.Refs
		p.Misses += d.Misses
	}
	c.last, c.valid = now, true
	return nil
}

// Tick closes the current interval if at least Interval has passed since
// the last one closed, and reports whether it did. It is called on cpu,
// whose LLC domain's hardware occupancy (if any) it reads.
func (s *Sampler) Tick(cpu int, now uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkCPU(cpu); err != nil {
		return false, err
	}
	if !s.started {
		s.started, s.last = true, now
		return false, nil
	}
	if now-s.last < s.cfg.Interval {
		return false, nil
	}
	s.last = now
	s.nclosed++
	var errs []error
	for di, d := range s.domains {
		before := d.est.Occupancies(nil)
		var filled float64
		for _, o := range before {
			filled += o
		}
		// Until the cache has filled once, misses are compulsory fills
		// of invalid lines, not a function of occupancy.
		full := filled >= d.est.Lines()-0.5
		if err := d.est.Update(d.pending); err != nil {
			errs = append(errs, err)
			continue
		}
		for v := range s.vcpus {
			iv := d.pending[v+1]
			if iv.Refs == 0 && iv.Misses == 0 && iv.Instrs == 0 {
				continue
			}
			s.vcpus[v].lastIv = iv
			// The interval's miss ratio belongs to the occupancy it ran
			// with, which moved from before to after.
			occ := (before[v+1] + d.est.Occupancy(v+1)) / 2
			if full {
				s.vcpus[v].mrc.Add(occ, iv.Refs, iv.Misses)
			}
		}
		for i := range d.pending {
			d.pending[i] = Interval{}
		}
		if s.monitors != nil && s.monitors[cpu] != nil && s.cfg.Domain[cpu] == di {
			for v := range s.vcpus {
				b, err := s.monitors[cpu].OccupancyBytes(uint32(v) + 1)
				if err != nil {
					errs = append(errs, fmt.Errorf("cachemon: hardware occupancy of vCPU %d: %w", v, err))
					s.vcpus[v].hwValid = false
					continue
				}
				s.vcpus[v].hwBytes, s.vcpus[v].hwValid = b, true
			}
		}
	}
	return true, errors.Join(errs...)
}

// VCPUStats is a snapshot of one vCPU's cache state.
type VCPUStats struct {
	VCPU      VCPU
	Name      string
	Total     Counts
	Last      Interval // the last closed interval in which it ran
	Occupancy float64  // estimated lines, summed over LLC domains
	// HWOccupancyBytes is the hardware monitor's reading, if HWValid.
	HWOccupancyBytes uint64
	HWValid          bool
	MRC              MRC
}

// Stats returns every vCPU's state.
func (s *Sampler) Stats() []VCPUStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VCPUStats, len(s.vcpus))
	for v, st := range s.vcpus {
		var occ float64
		for _, d := range s.domains {
			occ += d.est.Occupancy(v + 1)
		}
		out[v] = VCPUStats{
			VCPU: VCPU(v), Name: st.name, Total: st.total, Last: st.lastIv,
			Occupancy: occ, HWOccupancyBytes: st.hwBytes, HWValid: st.hwValid,
			MRC: st.mrc.Curve(),
		}
	}
	return out
}

// WriteText writes one line per vCPU, for the serial monitor and for
// export: identity, totals, last-interval rates, estimated (and hardware)
// occupancy, and the MRC as miss ratios in percent at each bin, with '?'
// marking points not yet measured.
func (s *Sampler) WriteText(w io.Writer) error {
	stats := s.Stats()
	s.mu.Lock()
	header := fmt.Sprintf("cachemon: llc %d KiB (%d lines), model %s, %d intervals", s.cfg.CacheBytes>>10, s.lines, s.cfg.Model, s.nclosed)
	if s.err != nil {
		header += fmt.Sprintf(", first counter error: %v", s.err)
	}
	lineBytes := s.cfg.LineBytes
	s.mu.Unlock()
	if _, err := fmt.Fprintln(w, header); err != nil {
		return fmt.Errorf("cachemon: write stats: %w", err)
	}
	for _, st := range stats {
		mpki, ratio := 0.0, 0.0
		if st.Last.Instrs > 0 {
			mpki = 1000 * float64(st.Last.Misses) / float64(st.Last.Instrs)
		}
		if st.Last.Refs > 0 {
			ratio = float64(st.Last.Misses) / float64(st.Last.Refs)
		}
		line := fmt.Sprintf("vcpu %d %q instr %d refs %d misses %d mpki %.2f missratio %.3f occ %.0f lines %.1f%%",
			st.VCPU, st.Name, st.Total.Instrs, st.Total.Refs, st.Total.Misses, mpki, ratio,
			st.Occupancy, 100*st.Occupancy/float64(s.lines))
		if st.HWValid {
			line += fmt.Sprintf(" hw %d lines", st.HWOccupancyBytes/uint64(lineBytes))
		}
		line += " mrc"
		for _, p := range st.MRC {
			if p.Samples == 0 {
				line += " ?"
				continue
			}
			line += fmt.Sprintf(" %.1f", 100*p.MissRatio)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("cachemon: write stats: %w", err)
		}
	}
	return nil
}
