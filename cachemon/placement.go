package cachemon

import (
	"fmt"
	"math"
	"sort"
)

// Workload describes one vCPU for placement: how fast it references the
// LLC and how its miss ratio depends on the cache it gets.
type Workload struct {
	Name string
	// RefRate is LLC references per unit of time (per interval, say). The
	// LLC does not change it: references are misses of the private levels.
	RefRate float64
	// MRC gives misses per reference at a given occupancy in lines.
	MRC func(lines float64) float64
}

// Share predicts how workloads sharing a cache of the given size divide it,
// and their total miss rate. It solves the occupancy model's equilibrium
// (the fixed point of dE_i = 0): E_i/C = w_i / Σ w_k with w_i = m_i(E_i)
// for ModelBasic and w_i = m_i(E_i)·residency(ρ_i) for ModelLRU, where
// m_i = RefRate_i·MRC_i(E_i) and ρ_i = (RefRate_i - m_i)/m_i hits per
// miss. The iteration is damped because a steep MRC makes the plain
// fixed-point map oscillate.
func Share(ws []Workload, lines float64, model Model) (occ []float64, misses float64, err error) {
	if lines <= 0 {
		return nil, 0, fmt.Errorf("cachemon: share a cache of %v lines", lines)
	}
	occ = make([]float64, len(ws))
	if len(ws) == 0 {
		return occ, 0, nil
	}
	for i := range occ {
		occ[i] = lines / float64(len(ws))
	}
	w := make([]float64, len(ws))
	const iterations, damping = 400, 0.3
	for it := 0; it < iterations; it++ {
		var sum float64
		for i, x := range ws {
			mr := clamp01(x.MRC(occ[i]))
			m := x.RefRate * mr
			w[i] = m
			if model == ModelLRU && mr > 0 {
				w[i] = m * rhoResidency((x.RefRate-m)/m)
			}
			if mr == 0 {
				// A workload that never misses keeps what it touched and
				// needs no more; a tiny weight avoids a zero sum.
				w[i] = 1e-12
			}
			sum += w[i]
		}
		var moved float64
		for i := range occ {
			next := lines * w[i] / sum
			d := damping * (next - occ[i])
			occ[i] += d
			moved = math.Max(moved, math.Abs(d))
		}
		if moved < 1e-6*lines {
			break
		}
	}
	for i, x := range ws {
		misses += x.RefRate * clamp01(x.MRC(occ[i]))
	}
	return occ, misses, nil
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	return math.Min(x, 1)
}

// Placement assigns workloads (by index) to caches.
type Placement struct {
	Groups [][]int
	// Misses is the predicted total miss rate.
	Misses float64
}

// maxExhaustive bounds the workloads for which every partition is tried:
// 12 workloads in 6 pairs are 10395 partitions, each a few equilibria.
const maxExhaustive = 12

// Place assigns workloads to caches caches of lines lines each, at most
// perCache workloads to a cache, minimising the predicted total misses.
// Up to a dozen workloads every partition is evaluated; beyond that a
// greedy start is improved by pairwise swaps until no swap helps.
func Place(ws []Workload, caches, perCache int, lines float64, model Model) (Placement, error) {
	if caches <= 0 || perCache <= 0 || caches*perCache < len(ws) {
		return Placement{}, fmt.Errorf("cachemon: place %d workloads on %d caches of %d", len(ws), caches, perCache)
	}
	cost := func(group []int) float64 {
		sub := make([]Workload, len(group))
		for i, g := range group {
			sub[i] = ws[g]
		}
		_, m, _ := Share(sub, lines, model)
		return m
	}
	if len(ws) <= maxExhaustive {
		best := Placement{Misses: math.Inf(1)}
		EnumeratePlacements(len(ws), caches, perCache, func(groups [][]int) {
			var total float64
			for _, g := range groups {
				total += cost(g)
			}
			if total < best.Misses {
				best = Placement{Groups: cloneGroups(groups), Misses: total}
			}
		})
		return best, nil
	}
	return placeLocal(ws, caches, perCache, cost), nil
}

// placeLocal deals workloads, hungriest first, to the cache where they add
// the fewest misses, then swaps pairs across caches while that helps.
func placeLocal(ws []Workload, caches, perCache int, cost func([]int) float64) Placement {
	order := make([]int, len(ws))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return ws[order[a]].RefRate*ws[order[a]].MRC(0) > ws[order[b]].RefRate*ws[order[b]].MRC(0)
	})
	groups := make([][]int, caches)
	for _, w := range order {
		bestG, bestD := -1, math.Inf(1)
		for g := range groups {
			if len(groups[g]) >= perCache {
				continue
			}
			d := cost(append(append([]int(nil), groups[g]...), w)) - cost(groups[g])
			if d < bestD {
				bestG, bestD = g, d
			}
		}
		groups[bestG] = append(groups[bestG], w)
	}
	total := func() float64 {
		var t float64
		for _, g := range groups {
			t += cost(g)
		}
		return t
	}
	cur := total()
	for improved := true; improved; {
		improved = false
		for a := range groups {
			for b := a + 1; b < len(groups); b++ {
				for i := range groups[a] {
					for j := range groups[b] {
						groups[a][i], groups[b][j] = groups[b][j], groups[a][i]
						if t := total(); t < cur-1e-12 {
							cur, improved = t, true
						} else {
							groups[a][i], groups[b][j] = groups[b][j], groups[a][i]
						}
					}
				}
			}
		}
	}
	return Placement{Groups: groups, Misses: cur}
}

// EnumeratePlacements calls f with every partition of n items into at most
// caches groups of at most perCache items, each once: groups are unordered
// (caches are alike), so group k's first member is always the smallest
// item not in groups 0..k-1. f must not keep the slices.
func EnumeratePlacements(n, caches, perCache int, f func([][]int)) {
	groups := make([][]int, 0, caches)
	used := make([]bool, n)
	var rec func(placed int)
	var fill func(g, from, placed int)
	rec = func(placed int) {
		if placed == n {
			f(groups)
			return
		}
		if len(groups) == caches {
			return
		}
		first := 0
		for used[first] {
			first++
		}
		used[first] = true
		groups = append(groups, []int{first})
		fill(len(groups)-1, first+1, placed+1)
		groups = groups[:len(groups)-1]
		used[first] = false
	}
	fill = func(g, from, placed int) {
		// Close the group here...
		rec(placed)
		if len(groups[g]) == perCache {
			return
		}
		// ...or add a larger unused item to it.
		for i := from; i < n; i++ {
			if used[i] {
				continue
			}
			used[i] = true
			groups[g] = append(groups[g], i)
			fill(g, i+1, placed+1)
			groups[g] = groups[g][:len(groups[g])-1]
			used[i] = false
		}
	}
	rec(0)
}

func cloneGroups(g [][]int) [][]int {
	out := make([][]int, len(g))
	for i := range g {
		out[i] = append([]int(nil), g[i]...)
	}
	return out
}
