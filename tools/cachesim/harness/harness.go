// Package harness validates cachemon against ground truth: it co-runs real
// program traces on the simulated shared LLC of package sim, feeds
// cachemon's estimator only the per-core LLC reference and miss counts a
// PMU would give, and measures occupancy error over time, online MRC error
// against Mattson's exact curves, and the placement advisor's choices
// against the best and a random pairing. It computes; cmd cachesim writes
// the report and plots.
package harness

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"hv/cachemon"
	"hv/tools/cachesim/mattson"
	"hv/tools/cachesim/sim"
	"hv/tools/cachesim/trace"
)

// Config is the simulated machine and the sampling.
type Config struct {
	L2, LLC  sim.Config
	Interval uint64 // instructions per sampling interval
	MRCBins  int
}

// Default scales a 2019-era server core down to the traced programs, whose
// working sets are a few hundred KiB: a 64 KiB 8-way private L2 and a
// 512 KiB 16-way shared LLC (8192 lines), sampled every 500k instructions.
var Default = Config{
	L2:       sim.Config{Sets: 128, Ways: 8},
	LLC:      sim.Config{Sets: 512, Ways: 16},
	Interval: 500_000,
	MRCBins:  16,
}

// Mix is a set of programs co-run on one shared LLC.
type Mix []string

func (m Mix) String() string { return strings.Join(m, "+") }

// ParseMix parses "a+b+...".
func ParseMix(s string) Mix { return Mix(strings.Split(s, "+")) }

// Mixes are the validated co-runs: eight pairs that cross small, medium
// and streaming working sets, and four quadruples (each also used for the
// placement study, which splits it into two pairs).
var Mixes = []Mix{
	{"gzip", "bzip2"}, {"awk", "zstd"}, {"xz", "sort"}, {"cc1", "sqlite3"},
	{"gzip", "xz"}, {"bzip2", "zstd"}, {"awk", "cc1"}, {"sort", "sqlite3"},
	{"gzip", "bzip2", "xz", "zstd"}, {"awk", "sort", "cc1", "sqlite3"},
	{"gzip", "awk", "xz", "sqlite3"}, {"bzip2", "zstd", "sort", "cc1"},
}

// Program is one trace and its exact, solo properties.
type Program struct {
	Trace *trace.Trace
	// Stream is what the program alone sends to the LLC.
	Stream []uint64
	Exact  *mattson.Histogram
	// SetAssoc holds exact miss ratios of 16-way LLCs of SetAssocLines sizes.
	SetAssoc []float64
}

// RefsPerInstr is the program's LLC reference intensity.
func (p *Program) RefsPerInstr() float64 {
	return float64(len(p.Stream)) / float64(p.Trace.Instrs)
}

// ExactMRC is the fully associative miss ratio at a size in lines.
func (p *Program) ExactMRC(lines float64) float64 {
	return p.Exact.MissRatio(int(math.Round(lines)))
}

// Suite holds the programs and caches co-run results.
type Suite struct {
	Cfg      Config
	Programs map[string]*Program
	mu       sync.Mutex
	runs     map[string]*sim.Result
}

// Load reads every NAME.llct in dir and computes the exact curves.
func Load(dir string, cfg Config) (*Suite, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.llct"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("harness: no traces in %s (run cachesim gen): %v", dir, err)
	}
	s := &Suite{Cfg: cfg, Programs: map[string]*Program{}, runs: map[string]*sim.Result{}}
	for _, f := range files {
		t, err := trace.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p, err := newProgram(t, cfg)
		if err != nil {
			return nil, err
		}
		s.Programs[t.Name] = p
	}
	return s, nil
}

// SetAssocSets are the set counts of the 16-way caches whose exact miss
// ratios are compared with the fully associative curve.
var SetAssocSets = []int{32, 64, 128, 256, 512}

func newProgram(t *trace.Trace, cfg Config) (*Program, error) {
	stream, err := sim.LLCStream(t, cfg.L2)
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", t.Name, err)
	}
	h, err := mattson.Distances(stream, 2*cfg.LLC.Lines())
	if err != nil {
		return nil, fmt.Errorf("harness: %s: %w", t.Name, err)
	}
	p := &Program{Trace: t, Stream: stream, Exact: h}
	for _, sets := range SetAssocSets {
		mr, err := sim.MissRatio(stream, sim.Config{Sets: sets, Ways: cfg.LLC.Ways})
		if err != nil {
			return nil, err
		}
		p.SetAssoc = append(p.SetAssoc, mr)
	}
	return p, nil
}

// Names lists the programs in order.
func (s *Suite) Names() []string {
	var n []string
	for k := range s.Programs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Run co-runs the mix for instrs instructions per core (0: the longest
// member's length), caching the result.
func (s *Suite) Run(m Mix, instrs uint64) (*sim.Result, error) {
	key := fmt.Sprintf("%s@%d", m, instrs)
	s.mu.Lock()
	r, ok := s.runs[key]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	var ts []*trace.Trace
	for _, name := range m {
		p, ok := s.Programs[name]
		if !ok {
			return nil, fmt.Errorf("harness: no trace for %q", name)
		}
		ts = append(ts, p.Trace)
	}
	r, err := sim.CoRun(ts, sim.Hierarchy{L2: s.Cfg.L2, LLC: s.Cfg.LLC}, sim.Options{Interval: s.Cfg.Interval, Instrs: instrs})
	if err != nil {
		return nil, fmt.Errorf("harness: co-run %s: %w", m, err)
	}
	s.mu.Lock()
	s.runs[key] = r
	s.mu.Unlock()
	return r, nil
}

// Estimate replays a co-run's counts through cachemon's estimator and
// returns the estimated occupancy of each core after each sample.
func Estimate(r *sim.Result, lines int, model cachemon.Model) ([][]float64, error) {
	if len(r.Samples) == 0 {
		return nil, nil
	}
	cores := len(r.Samples[0].Cores)
	est, err := cachemon.NewEstimator(lines, cores, model)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(r.Samples))
	iv := make([]cachemon.Interval, cores)
	for i, s := range r.Samples {
		for c, cs := range s.Cores {
			iv[c] = cachemon.Interval{Instrs: cs.Delta.Instrs, Refs: cs.Delta.Refs, Misses: cs.Delta.Misses}
		}
		if err := est.Update(iv); err != nil {
			return nil, err
		}
		out[i] = est.Occupancies(nil)
	}
	return out, nil
}

// OccupancyError is the mean absolute difference between estimated and
// true occupancy over all samples and cores, as a fraction of the cache.
func OccupancyError(r *sim.Result, est [][]float64, lines int) float64 {
	var sum float64
	n := 0
	for i, s := range r.Samples {
		for c, cs := range s.Cores {
			sum += math.Abs(est[i][c] - float64(cs.Occupancy))
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n) / float64(lines)
}

// AddMRCSamples feeds core's (occupancy, miss ratio) pairs from a co-run
// into b. occ gives the occupancy after each sample (estimated or true);
// the occupancy an interval ran with is the mean of its start and end.
// Intervals until the occupancies first sum to the whole cache are
// skipped: their misses are compulsory fills of an empty cache, not
// capacity misses, and would overstate the miss ratio at small sizes. The
// estimator knows when that happens as well as the simulator does.
func AddMRCSamples(b *cachemon.MRCBuilder, r *sim.Result, occ [][]float64, core int, lines int) {
	prev := 0.0
	full := false
	for i, s := range r.Samples {
		cur := occ[i][core]
		if !full {
			var sum float64
			for _, o := range occ[i] {
				sum += o
			}
			full = sum >= float64(lines)-0.5
			prev = cur
			continue
		}
		cs := s.Cores[core]
		b.Add((prev+cur)/2, cs.Delta.Refs, cs.Delta.Misses)
		prev = cur
	}
}

// TrueOccupancy returns the simulator's occupancies in Estimate's shape.
func TrueOccupancy(r *sim.Result) [][]float64 {
	out := make([][]float64, len(r.Samples))
	for i, s := range r.Samples {
		for _, cs := range s.Cores {
			out[i] = append(out[i], float64(cs.Occupancy))
		}
	}
	return out
}

// MRCError is the mean absolute difference between an online curve and
// the exact one over the online curve's measured points, with the number
// of such points.
func MRCError(online cachemon.MRC, exact func(float64) float64) (float64, int) {
	var sum float64
	n := 0
	for _, p := range online {
		if p.Samples == 0 {
			continue
		}
		sum += math.Abs(p.MissRatio - exact(p.Lines))
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return sum / float64(n), n
}
