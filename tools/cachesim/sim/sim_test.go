package sim

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/tools/cachesim/trace"
)

func TestCacheLRUByHand(t *testing.T) {
	c, err := NewCache(Config{Sets: 1, Ways: 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		key    uint64
		core   int
		hit    bool
		victim int
		occ    []int
	}
	steps := []step{
		{1, 0, false, -1, []int{1, 0}},
		{2, 1, false, -1, []int{1, 1}},
		{1, 1, true, -1, []int{1, 1}}, // a hit keeps the filler as owner
		{3, 1, false, 1, []int{1, 1}}, // LRU is 2 (core 1)
		{4, 0, false, 0, []int{1, 1}}, // LRU is now 1 (core 0)
		{3, 0, true, -1, []int{1, 1}},
		{5, 1, false, 0, []int{0, 2}}, // LRU is 4 (core 0)
	}
	for i, s := range steps {
		hit, victim := c.Access(s.key, 0, s.core)
		if hit != s.hit || victim != s.victim {
			t.Errorf("step %d (key %d): hit %v victim %d, want %v %d", i, s.key, hit, victim, s.hit, s.victim)
		}
		if diff := cmp.Diff(s.occ, c.Occupancy); diff != "" {
			t.Errorf("step %d occupancy (-want +got):\n%s", i, diff)
		}
	}
}

func TestCacheSetsAreIndependent(t *testing.T) {
	c, _ := NewCache(Config{Sets: 2, Ways: 1}, 1)
	c.Access(10, 0, 0)
	c.Access(11, 1, 0)
	if hit, _ := c.Access(10, 0, 0); !hit {
		t.Error("line in set 0 evicted by a fill of set 1")
	}
	if hit, _ := c.Access(12, 2, 0); hit { // set 2&1 = 0
		t.Error("new line hit")
	}
	if hit, _ := c.Access(10, 0, 0); hit {
		t.Error("one-way set kept two lines")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{{0, 1}, {3, 4}, {4, 0}, {4, 65}} {
		if _, err := NewCache(cfg, 1); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := NewCache(Config{1, 1}, 128); err == nil {
		t.Error("128 cores accepted")
	}
}

func TestPhysLine(t *testing.T) {
	a, b := PhysLine(0, 0x12345), PhysLine(1, 0x12345)
	if a == b {
		t.Error("two cores' identical virtual lines collide")
	}
	if a%pageLines != 0x12345%pageLines || b%pageLines != 0x12345%pageLines {
		t.Error("line within page not kept")
	}
	if PhysLine(0, 0x12345) != a {
		t.Error("mapping not deterministic")
	}
	if PhysLine(0, 0x12346)-a != 1 {
		t.Error("lines of one page not contiguous")
	}
}

// TestCoRunByHand interleaves two tiny traces on a 1-set, 2-way LLC
// without L2, where every step can be followed by hand.
func TestCoRunByHand(t *testing.T) {
	a := &trace.Trace{Name: "a", Instrs: 4, Refs: []trace.Ref{{Instr: 1, Line: 1}, {Instr: 2, Line: 2}, {Instr: 3, Line: 1}}}
	b := &trace.Trace{Name: "b", Instrs: 4, Refs: []trace.Ref{{Instr: 2, Line: 7}, {Instr: 4, Line: 7}}}
	r, err := CoRun([]*trace.Trace{a, b}, Hierarchy{LLC: Config{Sets: 1, Ways: 2}}, Options{Interval: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Order by instruction count, ties to the lower core:
	// t1 a1 miss [a1]; t2 a2 miss [a2 a1]; t2 b7 miss, evicts a1 [b7 a2];
	// t3 a1 miss, evicts a2 [a1 b7]. The run ends at instruction 4, the
	// longer trace's length, before b's second reference. Samples at t=2
	// and t=4 are taken before references at those times.
	want := &Result{
		Samples: []Sample{
			{Instr: 2, Cores: []CoreSample{{Delta: Counts{Instrs: 2, Refs: 1, Misses: 1}, Occupancy: 1}, {Delta: Counts{Instrs: 2}, Occupancy: 0}}},
			{Instr: 4, Cores: []CoreSample{{Delta: Counts{Instrs: 2, Refs: 2, Misses: 2}, Occupancy: 1}, {Delta: Counts{Instrs: 2, Refs: 1, Misses: 1}, Occupancy: 1}}},
		},
		Total: []Counts{{Instrs: 4, Refs: 3, Misses: 3}, {Instrs: 4, Refs: 1, Misses: 1}},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("co-run (-want +got):\n%s", diff)
	}
}

func TestCoRunWrapsShorterTrace(t *testing.T) {
	short := &trace.Trace{Name: "s", Instrs: 10, Refs: []trace.Ref{{Instr: 5, Line: 1}}}
	long := &trace.Trace{Name: "l", Instrs: 100, Refs: []trace.Ref{{Instr: 50, Line: 2}}}
	r, err := CoRun([]*trace.Trace{short, long}, Hierarchy{LLC: Config{Sets: 4, Ways: 4}}, Options{Interval: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The short trace runs ten times (references at 5, 15, ..., 95).
	if r.Total[0].Refs != 10 || r.Total[0].Misses != 1 || r.Total[1].Refs != 1 {
		t.Errorf("totals %+v", r.Total)
	}
}

func TestLLCStreamAndMissRatio(t *testing.T) {
	var refs []trace.Ref
	for i := range uint64(1000) {
		refs = append(refs, trace.Ref{Instr: i, Line: i % 40})
	}
	tr := &trace.Trace{Name: "loop", Instrs: 1000, Refs: refs}
	s, err := LLCStream(tr, Config{Sets: 4, Ways: 16}) // 64-line L2 holds the loop
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 40 {
		t.Errorf("L2 passes %d references, want the 40 cold ones", len(s))
	}
	all, _ := LLCStream(tr, Config{})
	mr, err := MissRatio(all, Config{Sets: 1, Ways: 32}) // 32 lines < 40: LRU thrashes
	if err != nil || mr != 1 {
		t.Errorf("miss ratio %v, %v; want 1", mr, err)
	}
	mr, _ = MissRatio(all, Config{Sets: 1, Ways: 64})
	if mr != 40.0/1000 {
		t.Errorf("miss ratio %v, want 0.04", mr)
	}
}

func BenchmarkCacheAccess(b *testing.B) {
	c, _ := NewCache(Config{Sets: 512, Ways: 16}, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]uint64, 1<<16)
	for i := range keys {
		keys[i] = rng.Uint64N(20000)
	}
	b.ResetTimer()
	for i := range b.N {
		k := keys[i&(len(keys)-1)]
		c.Access(k, k, i&3)
	}
}
