package harness

import (
	"math"
	"testing"

	"hv/cachemon"
	"hv/tools/cachesim/sim"
	"hv/tools/cachesim/trace"
)

// loop references n distinct lines round and round, one per instruction.
func loop(name string, n, refs uint64) *trace.Trace {
	t := &trace.Trace{Name: name, Instrs: refs}
	for i := range refs {
		t.Refs = append(t.Refs, trace.Ref{Instr: i, Line: i % n})
	}
	return t
}

// TestLoneProgramIsExact: on a fully associative cache a lone program's
// true occupancy is min(misses so far, C), which is exactly what the
// estimator computes from the miss counts.
func TestLoneProgramIsExact(t *testing.T) {
	r, err := sim.CoRun([]*trace.Trace{loop("big", 300, 5000)}, sim.Hierarchy{LLC: sim.Config{Sets: 1, Ways: 64}}, sim.Options{Interval: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Models {
		est, err := Estimate(r, 64, m)
		if err != nil {
			t.Fatal(err)
		}
		if e := OccupancyError(r, est, 64); e != 0 {
			t.Errorf("%v: occupancy error %v, want 0", m, e)
		}
	}
}

// TestIdenticalProgramsShareEvenly: two copies of one streaming loop end
// with half the cache each, in truth and in both estimates.
func TestIdenticalProgramsShareEvenly(t *testing.T) {
	r, err := sim.CoRun([]*trace.Trace{loop("a", 1000, 40000), loop("b", 1000, 40000)}, sim.Hierarchy{LLC: sim.Config{Sets: 16, Ways: 8}}, sim.Options{Interval: 1000})
	if err != nil {
		t.Fatal(err)
	}
	last := r.Samples[len(r.Samples)-1]
	for _, m := range Models {
		est, _ := Estimate(r, 128, m)
		for c := range 2 {
			if got := est[len(est)-1][c]; math.Abs(got-64) > 1 {
				t.Errorf("%v: core %d estimated %v lines, want 64", m, c, got)
			}
			if got := last.Cores[c].Occupancy; got < 56 || got > 72 {
				t.Errorf("core %d holds %d lines in truth, want about 64", c, got)
			}
		}
	}
}

func TestMRCSamplesSkipTheFill(t *testing.T) {
	r, _ := sim.CoRun([]*trace.Trace{loop("a", 30, 3000)}, sim.Hierarchy{LLC: sim.Config{Sets: 1, Ways: 64}}, sim.Options{Interval: 100})
	b, _ := cachemon.NewMRCBuilder(64, 4)
	AddMRCSamples(b, r, TrueOccupancy(r), 0, 64)
	// 30 lines never fill a 64-line cache: nothing is recorded.
	if n := b.Curve().Measured(); n != 0 {
		t.Errorf("%d points from a cache that never filled", n)
	}
	e, n := MRCError(b.Curve(), func(float64) float64 { return 0 })
	if n != 0 || !math.IsNaN(e) {
		t.Errorf("error %v over %d points", e, n)
	}
}
