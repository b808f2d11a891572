package cachemon

import (
	"math"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnumeratePlacements(t *testing.T) {
	tests := []struct {
		n, caches, per, want int
	}{
		{4, 2, 2, 3},   // pairings of four
		{6, 3, 2, 15},  // 5·3·1
		{8, 4, 2, 105}, // 7·5·3·1
		{4, 2, 3, 7},   // 3+1 (four ways) and 2+2 (three)
		{3, 3, 1, 1},
		{5, 2, 2, 0}, // does not fit
	}
	for _, tt := range tests {
		seen := map[string]bool{}
		EnumeratePlacements(tt.n, tt.caches, tt.per, func(groups [][]int) {
			var all []int
			var keys []string
			for _, g := range groups {
				if len(g) == 0 || len(g) > tt.per {
					t.Errorf("n=%d: group %v of size outside 1..%d", tt.n, g, tt.per)
				}
				all = append(all, g...)
				s := append([]int(nil), g...)
				sort.Ints(s)
				keys = append(keys, fmtInts(s))
			}
			sort.Ints(all)
			for i, x := range all {
				if x != i {
					t.Fatalf("n=%d: %v is not a partition", tt.n, groups)
				}
			}
			sort.Strings(keys)
			k := fmtInts(nil) + "|" + joinStrings(keys)
			if seen[k] {
				t.Errorf("n=%d: partition %v twice", tt.n, groups)
			}
			seen[k] = true
		})
		if len(seen) != tt.want {
			t.Errorf("EnumeratePlacements(%d, %d, %d) gave %d partitions, want %d", tt.n, tt.caches, tt.per, len(seen), tt.want)
		}
	}
}

func fmtInts(s []int) string {
	b := []byte{}
	for _, x := range s {
		b = append(b, byte('a'+x))
	}
	return string(b)
}

func joinStrings(s []string) string {
	out := ""
	for _, x := range s {
		out += x + ","
	}
	return out
}

const testLines = 1000

// streaming misses on every reference whatever it gets.
func streaming(name string) Workload {
	return Workload{Name: name, RefRate: 100, MRC: func(float64) float64 { return 1 }}
}

// friendly's working set is half the cache: its miss ratio falls linearly to
// zero at 500 lines.
func friendly(name string) Workload {
	return Workload{Name: name, RefRate: 100, MRC: func(e float64) float64 { return math.Max(0, 1-e/(testLines/2)) }}
}

func TestShare(t *testing.T) {
	// Two identical workloads split the cache evenly.
	occ, m, err := Share([]Workload{friendly("a"), friendly("b")}, testLines, ModelBasic)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(occ[0]-500) > 1 || math.Abs(occ[1]-500) > 1 || m > 1 {
		t.Errorf("identical pair: occupancy %v misses %v, want 500/500 and ~0", occ, m)
	}
	// A streamer against a friendly workload: with x the friendly share,
	// x = (1-2x)/(2-2x), so 2x² - 4x + 1 = 0 and x = 1 - 1/√2.
	occ, m, _ = Share([]Workload{streaming("s"), friendly("f")}, testLines, ModelBasic)
	x := 1 - 1/math.Sqrt2
	if math.Abs(occ[1]/testLines-x) > 1e-3 {
		t.Errorf("friendly share %v, want %v", occ[1]/testLines, x)
	}
	if want := 100 + 100*(1-2*x); math.Abs(m-want) > 0.1 {
		t.Errorf("misses %v, want %v", m, want)
	}
	if _, _, err := Share(nil, 0, ModelBasic); err == nil {
		t.Error("zero-line cache accepted")
	}
}

func TestPlaceSeparatesStreamers(t *testing.T) {
	ws := []Workload{streaming("s1"), friendly("f1"), streaming("s2"), friendly("f2")}
	for _, model := range []Model{ModelBasic, ModelLRU} {
		p, err := Place(ws, 2, 2, testLines, model)
		if err != nil {
			t.Fatal(err)
		}
		got := normalize(p.Groups)
		if diff := cmp.Diff([][]int{{0, 2}, {1, 3}}, got); diff != "" {
			t.Errorf("%v: placement (-want +got):\n%s", model, diff)
		}
	}
	if _, err := Place(ws, 1, 2, testLines, ModelBasic); err == nil {
		t.Error("four workloads on one pair accepted")
	}
}

func TestPlaceLocalSearch(t *testing.T) {
	// Beyond maxExhaustive the local search must still separate the two kinds.
	var ws []Workload
	for i := range 16 {
		if i%2 == 0 {
			ws = append(ws, streaming("s"))
		} else {
			ws = append(ws, friendly("f"))
		}
	}
	p, err := Place(ws, 8, 2, testLines, ModelBasic)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, g := range p.Groups {
		if len(g) != 2 {
			t.Fatalf("group %v is not a pair", g)
		}
		for _, x := range g {
			if seen[x] {
				t.Fatalf("workload %d placed twice", x)
			}
			seen[x] = true
		}
		if g[0]%2 != g[1]%2 {
			t.Errorf("pair %v mixes a streamer with a friendly workload", g)
		}
	}
	if want := 4 * 200.0; math.Abs(p.Misses-want) > 1 {
		t.Errorf("predicted misses %v, want about %v", p.Misses, want)
	}
}

func normalize(groups [][]int) [][]int {
	out := cloneGroups(groups)
	for _, g := range out {
		sort.Ints(g)
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}
