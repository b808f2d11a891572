// Package mattson computes exact miss-ratio curves of fully associative
// LRU caches of every size in one pass over a reference stream, from
// Mattson's stack distances (Mattson, Gecsei, Slutz, Traiger, "Evaluation
// techniques for storage hierarchies", IBM Systems Journal 9(2), 1970): a
// reference hits in an LRU cache of c lines exactly when fewer than c
// distinct lines were referenced since the previous reference to its line.
// Distances are counted with a Fenwick tree over reference times (the
// Bennett–Kruskal method), O(n log n). It knows nothing of traces' origin.
package mattson

import "fmt"

// Histogram holds the stack distances of a stream.
type Histogram struct {
	// Dist[d] counts references with stack distance d (d distinct other
	// lines between it and the previous reference to its line), for d
	// below len(Dist).
	Dist []uint64
	// Far counts references with distances of len(Dist) or more.
	Far uint64
	// Cold counts first references, which miss in any cache.
	Cold uint64
	// Refs is the stream's length.
	Refs uint64
}

// Distances computes the histogram of stream, keeping exact counts for
// distances below maxDist.
func Distances(stream []uint64, maxDist int) (*Histogram, error) {
	if maxDist <= 0 {
		return nil, fmt.Errorf("mattson: maximum distance %d", maxDist)
	}
	h := &Histogram{Dist: make([]uint64, maxDist), Refs: uint64(len(stream))}
	// tree marks, at each line's most recent reference time, a one; the
	// distance of a reuse is the number of marks after its previous time.
	tree := make([]int32, len(stream)+1)
	add := func(i int, v int32) {
		for i++; i < len(tree); i += i & -i {
			tree[i] += v
		}
	}
	prefix := func(i int) int { // marks at times 0..i-1
		s := 0
		for ; i > 0; i -= i & -i {
			s += int(tree[i])
		}
		return s
	}
	last := make(map[uint64]int, 1<<16)
	live := 0
	for t, line := range stream {
		prev, seen := last[line]
		if !seen {
			h.Cold++
			live++
		} else {
			d := live - prefix(prev+1)
			if d < maxDist {
				h.Dist[d]++
			} else {
				h.Far++
			}
			add(prev, -1)
		}
		add(t, 1)
		last[line] = t
	}
	return h, nil
}

// MissRatio is the miss ratio of a fully associative LRU cache of size
// lines: references whose distance is at least lines, plus cold ones. It is
// exact for lines up to len(Dist).
func (h *Histogram) MissRatio(lines int) float64 {
	if h.Refs == 0 {
		return 0
	}
	misses := h.Cold + h.Far
	for d := len(h.Dist) - 1; d >= lines && d >= 0; d-- {
		misses += h.Dist[d]
	}
	// Beyond the exact range, far references are of unknown distance and
	// count as misses, which makes the figure an upper bound there.
	return float64(misses) / float64(h.Refs)
}

// Curve returns the miss ratio at each size 0, step, 2·step, … up to and
// including max lines.
func (h *Histogram) Curve(step, max int) []float64 {
	var out []float64
	for c := 0; c <= max; c += step {
		out = append(out, h.MissRatio(c))
	}
	return out
}
