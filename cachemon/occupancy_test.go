package cachemon

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func misses(m ...uint64) []Interval {
	iv := make([]Interval, len(m))
	for i, x := range m {
		iv[i] = Interval{Misses: x, Refs: x}
	}
	return iv
}

func TestEstimatorClosedForm(t *testing.T) {
	const c = 1000
	tests := []struct {
		name  string
		model Model
		steps [][]Interval
		want  []float64
	}{
		{
			name:  "lone owner fills, never exceeds the cache",
			model: ModelBasic,
			steps: [][]Interval{misses(400), misses(400), misses(400)},
			want:  []float64{c},
		},
		{
			name:  "cold cache shares fill in proportion to misses",
			model: ModelBasic,
			steps: [][]Interval{misses(300, 100)},
			want:  []float64{300, 100},
		},
		{
			name:  "fill then replacement at the equilibrium",
			model: ModelBasic,
			// The first 1000 of 1200 misses fill 750/250 lines; the
			// other 200 replace with p = (3/4, 1/4), whose equilibrium
			// that already is.
			steps: [][]Interval{misses(900, 300)},
			want:  []float64{750, 250},
		},
		{
			name:  "descheduled owner decays geometrically",
			model: ModelBasic,
			steps: [][]Interval{misses(c, 0), misses(0, 500)},
			// E_0 = 1000·(1 - 1/1000)^500.
			want: []float64{c * math.Pow(1-1.0/c, 500), c - c*math.Pow(1-1.0/c, 500)},
		},
		{
			name:  "LRU model without hits is the basic model",
			model: ModelLRU,
			steps: [][]Interval{misses(c, 0), misses(0, 500)},
			want:  []float64{c * math.Pow(1-1.0/c, 500), c - c*math.Pow(1-1.0/c, 500)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEstimator(c, len(tt.want), tt.model)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.steps {
				if err := e.Update(s); err != nil {
					t.Fatal(err)
				}
			}
			got := e.Occupancies(nil)
			// The stepwise integration of the LRU model is accurate to
			// a fraction of a line over a few hundred misses.
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 0.5)); diff != "" {
				t.Errorf("occupancy (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEstimatorMatchesPerMissRecurrence checks the batched closed form
// against the model's definition applied one miss at a time.
func TestEstimatorMatchesPerMissRecurrence(t *testing.T) {
	const c = 64
	e, _ := NewEstimator(c, 3, ModelBasic)
	e.Update(misses(c, 0, 0))
	occ := []float64{c, 0, 0}
	p := []float64{0.5, 0.3, 0.2}
	for range 700 {
		for i := range occ {
			occ[i] += p[i] - occ[i]/c
		}
	}
	e.Update(misses(350, 210, 140))
	if diff := cmp.Diff(occ, e.Occupancies(nil), cmpopts.EquateApprox(1e-9, 1e-9)); diff != "" {
		t.Errorf("batched vs per-miss (-recurrence +batched):\n%s", diff)
	}
}

func TestEstimatorIdenticalOwnersConverge(t *testing.T) {
	for _, model := range []Model{ModelBasic, ModelLRU} {
		t.Run(model.String(), func(t *testing.T) {
			const c = 4096
			e, _ := NewEstimator(c, 2, model)
			e.Update(misses(c, 0)) // owner 0 starts with everything
			for range 100 {
				e.Update([]Interval{{Misses: 200, Refs: 600}, {Misses: 200, Refs: 600}})
			}
			want := []float64{c / 2, c / 2}
			if diff := cmp.Diff(want, e.Occupancies(nil), cmpopts.EquateApprox(1e-3, 0)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEstimatorLRUEquilibrium checks the LRU extension's fixed point:
// E_i ∝ m_i·ρ_i/ln(1+ρ_i), ρ_i hits per miss.
func TestEstimatorLRUEquilibrium(t *testing.T) {
	const c = 8192
	e, _ := NewEstimator(c, 2, ModelLRU)
	// Equal misses; owner 0 hits 4 times per miss, owner 1 never.
	for range 400 {
		e.Update([]Interval{{Misses: 100, Refs: 500}, {Misses: 100, Refs: 100}})
	}
	w0, w1 := 4/math.Log(5), 1.0
	want := []float64{c * w0 / (w0 + w1), c * w1 / (w0 + w1)}
	if diff := cmp.Diff(want, e.Occupancies(nil), cmpopts.EquateApprox(1e-3, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEstimatorErrors(t *testing.T) {
	if _, err := NewEstimator(0, 1, ModelBasic); err == nil {
		t.Error("zero lines accepted")
	}
	if _, err := NewEstimator(8, 0, ModelBasic); err == nil {
		t.Error("zero owners accepted")
	}
	if _, err := NewEstimator(8, 1, Model(9)); err == nil {
		t.Error("unknown model accepted")
	}
	e, _ := NewEstimator(8, 2, ModelBasic)
	if err := e.Update(misses(1)); err == nil {
		t.Error("interval count mismatch accepted")
	}
	if err := e.Set(2, 1); err == nil {
		t.Error("out-of-range owner accepted")
	}
	if err := e.Set(0, 9); err == nil {
		t.Error("occupancy above the cache accepted")
	}
}

// FuzzEstimator checks the invariants for arbitrary counts: occupancies
// stay finite, non-negative, and never sum to more than the cache.
func FuzzEstimator(f *testing.F) {
	f.Add(uint16(100), uint32(5), uint32(50), uint32(0), uint32(0), true)
	f.Add(uint16(1), uint32(1<<31), uint32(1), uint32(7), uint32(1<<30), false)
	f.Fuzz(func(t *testing.T, lines uint16, m0, r0, m1, r1 uint32, lru bool) {
		if lines == 0 {
			return
		}
		model := ModelBasic
		if lru {
			model = ModelLRU
		}
		e, err := NewEstimator(int(lines), 2, model)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := e.Update([]Interval{{Misses: uint64(m0), Refs: uint64(r0)}, {Misses: uint64(m1), Refs: uint64(r1)}}); err != nil {
				t.Fatal(err)
			}
			var sum float64
			for _, o := range e.Occupancies(nil) {
				if math.IsNaN(o) || o < 0 {
					t.Fatalf("occupancy %v", o)
				}
				sum += o
			}
			if sum > float64(lines)*(1+1e-9) {
				t.Fatalf("occupancies sum to %v > %d", sum, lines)
			}
		}
	})
}
