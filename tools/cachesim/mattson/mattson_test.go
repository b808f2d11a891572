package mattson

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/tools/cachesim/sim"
)

func TestDistancesByHand(t *testing.T) {
	// a b c a b d a: the second a sees {b,c}, b sees {c,a}, the last a
	// sees {b,d}: three reuses at distance 2 and four cold references.
	stream := []uint64{1, 2, 3, 1, 2, 4, 1}
	h, err := Distances(stream, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := &Histogram{Dist: []uint64{0, 0, 3, 0, 0, 0, 0, 0}, Cold: 4, Refs: 7}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		lines int
		want  float64
	}{{0, 1}, {2, 1}, {3, 4.0 / 7}, {100, 4.0 / 7}} {
		if got := h.MissRatio(tt.lines); got != tt.want {
			t.Errorf("MissRatio(%d) = %v, want %v", tt.lines, got, tt.want)
		}
	}
	small, _ := Distances(stream, 2)
	if small.Far != 3 || small.MissRatio(2) != 1 {
		t.Errorf("distances beyond the range: far %d", small.Far)
	}
}

// TestMatchesFullyAssociativeSimulation checks the one-pass curve against
// simulating a fully associative LRU cache of each size.
func TestMatchesFullyAssociativeSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	stream := make([]uint64, 20000)
	for i := range stream {
		// A mix of a hot set and a wide tail gives every distance.
		if rng.IntN(3) == 0 {
			stream[i] = rng.Uint64N(2000)
		} else {
			stream[i] = rng.Uint64N(40)
		}
	}
	h, _ := Distances(stream, 64)
	for _, ways := range []int{1, 2, 8, 16, 33, 64} {
		want, err := sim.MissRatio(stream, sim.Config{Sets: 1, Ways: ways})
		if err != nil {
			t.Fatal(err)
		}
		if got := h.MissRatio(ways); got != want {
			t.Errorf("%d lines: Mattson %v, simulation %v", ways, got, want)
		}
	}
	c := h.Curve(16, 64)
	if len(c) != 5 || c[0] != 1 || c[4] != h.MissRatio(64) {
		t.Errorf("curve %v", c)
	}
}
