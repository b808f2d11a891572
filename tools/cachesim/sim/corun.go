package sim

import (
	"errors"
	"fmt"

	"hv/tools/cachesim/trace"
)

// Hierarchy is the cache geometry of a co-run: a private L2 per core (Sets
// zero for none) in front of one shared LLC. The L2 is non-inclusive, as in
// Intel Skylake-SP and AMD Zen: LLC evictions do not reach it.
type Hierarchy struct {
	L2  Config
	LLC Config
}

// Counts are one core's LLC counts: what a PMU's LLC-reference and
// LLC-miss events would give.
type Counts struct {
	Instrs, Refs, Misses uint64
}

// CoreSample is one core's state at the end of a sampling interval.
type CoreSample struct {
	Delta Counts // counts during the interval
	// Occupancy is the number of LLC lines the core filled that are
	// still valid: the ground truth the estimator is judged against.
	Occupancy int
}

// Sample is the whole cache's state at one interval boundary.
type Sample struct {
	Instr uint64 // instructions each core has executed
	Cores []CoreSample
}

// Result is the outcome of a co-run.
type Result struct {
	Samples []Sample
	Total   []Counts
}

// Options control a co-run.
type Options struct {
	// Interval is the sampling interval in instructions per core.
	Interval uint64
	// Instrs stops the run once every core executed this many
	// instructions; zero means the length of the longest trace, so that
	// every program runs at least once in full. Shorter traces restart,
	// as SPEC co-run methodology does.
	Instrs uint64
}

type core struct {
	t      *trace.Trace
	l2     *Cache
	pos    int
	offset uint64 // instructions of completed passes
	count  Counts
	id     int
}

func (c *core) next() uint64 { return c.offset + c.t.Refs[c.pos].Instr }

// CoRun interleaves the traces on a shared LLC, one per core, as cores of
// equal speed in instructions would (the reference with the smallest
// instruction count goes next), and samples counts and true occupancy
// every Interval instructions.
func CoRun(traces []*trace.Trace, h Hierarchy, opt Options) (*Result, error) {
	if len(traces) == 0 {
		return nil, errors.New("sim: co-run of no traces")
	}
	if opt.Interval == 0 {
		return nil, errors.New("sim: co-run with a zero sampling interval")
	}
	llc, err := NewCache(h.LLC, len(traces))
	if err != nil {
		return nil, fmt.Errorf("sim: LLC: %w", err)
	}
	cores := make([]*core, len(traces))
	end := opt.Instrs
	for i, t := range traces {
		if len(t.Refs) == 0 || t.Instrs == 0 {
			return nil, fmt.Errorf("sim: trace %q is empty", t.Name)
		}
		c := &core{t: t, id: i}
		if h.L2.Sets > 0 {
			if c.l2, err = NewCache(h.L2, 1); err != nil {
				return nil, fmt.Errorf("sim: L2: %w", err)
			}
		}
		cores[i] = c
		if opt.Instrs == 0 {
			end = max(end, t.Instrs)
		}
	}
	res := &Result{Total: make([]Counts, len(cores))}
	last := make([]Counts, len(cores))
	nextSample := opt.Interval
	for {
		// Pick the core whose next reference comes first; with a
		// handful of cores a scan beats a heap.
		c := cores[0]
		for _, o := range cores[1:] {
			if o.next() < c.next() {
				c = o
			}
		}
		now := c.next()
		for now >= nextSample && nextSample <= end {
			res.Samples = append(res.Samples, sample(nextSample, cores, llc, last))
			nextSample += opt.Interval
		}
		if now >= end {
			break
		}
		line := PhysLine(c.id, c.t.Refs[c.pos].Line)
		if c.l2 == nil || !hitL2(c.l2, line) {
			c.count.Refs++
			if hit, _ := llc.Access(line, line, c.id); !hit {
				c.count.Misses++
			}
		}
		c.pos++
		if c.pos == len(c.t.Refs) {
			c.pos = 0
			c.offset += c.t.Instrs
		}
	}
	for i, c := range cores {
		c.count.Instrs = end
		res.Total[i] = c.count
	}
	return res, nil
}

func hitL2(l2 *Cache, line uint64) bool {
	hit, _ := l2.Access(line, line, 0)
	return hit
}

func sample(at uint64, cores []*core, llc *Cache, last []Counts) Sample {
	s := Sample{Instr: at, Cores: make([]CoreSample, len(cores))}
	for i, c := range cores {
		c.count.Instrs = at
		s.Cores[i] = CoreSample{
			Delta: Counts{
				Instrs: c.count.Instrs - last[i].Instrs,
				Refs:   c.count.Refs - last[i].Refs,
				Misses: c.count.Misses - last[i].Misses,
			},
			Occupancy: llc.Occupancy[i],
		}
		last[i] = c.count
	}
	return s
}

// LLCStream returns the physical lines a trace run alone on core 0 sends
// to the LLC: its references that miss the private L2.
func LLCStream(t *trace.Trace, l2 Config) ([]uint64, error) {
	var c *Cache
	if l2.Sets > 0 {
		var err error
		if c, err = NewCache(l2, 1); err != nil {
			return nil, fmt.Errorf("sim: L2: %w", err)
		}
	}
	out := make([]uint64, 0, len(t.Refs)/2)
	for _, r := range t.Refs {
		line := PhysLine(0, r.Line)
		if c == nil || !hitL2(c, line) {
			out = append(out, line)
		}
	}
	return out, nil
}

// MissRatio runs a line stream alone through a cache and returns misses
// per reference: the exact set-associative figure that Mattson's fully
// associative curve approximates.
func MissRatio(stream []uint64, cfg Config) (float64, error) {
	c, err := NewCache(cfg, 1)
	if err != nil {
		return 0, err
	}
	if len(stream) == 0 {
		return 0, nil
	}
	misses := 0
	for _, l := range stream {
		if hit, _ := c.Access(l, l, 0); !hit {
			misses++
		}
	}
	return float64(misses) / float64(len(stream)), nil
}
