package cachemon

import (
	"fmt"
	"math"
)

// Interval is what a PMU reports for one owner (a vCPU, or the host itself)
// over one sampling interval.
type Interval struct {
	Instrs uint64 // instructions retired
	Refs   uint64 // LLC references (lookups that reached the LLC)
	Misses uint64 // LLC misses, each of which filled one line
}

// Model selects how victims are attributed to owners.
type Model int

const (
	// ModelBasic is the report's basic model: the victim of a miss belongs
	// to an owner with probability equal to that owner's share of the
	// cache. Its equilibrium share equals the owner's share of misses.
	ModelBasic Model = iota
	// ModelLRU weights each owner's chance of losing the victim by the
	// inverse of its lines' expected residency under LRU, which grows with
	// the hits its lines collect before eviction (see residency and
	// docs/cachemon.md, "LRU extension"). It needs Refs as well as Misses.
	ModelLRU
)

func (m Model) String() string {
	switch m {
	case ModelBasic:
		return "basic"
	case ModelLRU:
		return "lru"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// Estimator tracks the expected LLC occupancy, in lines, of a fixed set of
// owners sharing one cache. It is not safe for concurrent use.
type Estimator struct {
	lines float64
	model Model
	occ   []float64
	// weight is scratch space for the per-owner victim weights.
	weight []float64
}

// NewEstimator returns an estimator for a cache of the given number of
// lines shared by owners, with every owner's occupancy zero (a cold cache).
func NewEstimator(lines, owners int, model Model) (*Estimator, error) {
	if lines <= 0 {
		return nil, fmt.Errorf("cachemon: estimator for %d lines", lines)
	}
	if owners <= 0 {
		return nil, fmt.Errorf("cachemon: estimator for %d owners", owners)
	}
	if model != ModelBasic && model != ModelLRU {
		return nil, fmt.Errorf("cachemon: unknown model %d", model)
	}
	return &Estimator{
		lines:  float64(lines),
		model:  model,
		occ:    make([]float64, owners),
		weight: make([]float64, owners),
	}, nil
}

// Lines returns the modelled cache size in lines.
func (e *Estimator) Lines() float64 { return e.lines }

// Owners returns the number of owners tracked.
func (e *Estimator) Owners() int { return len(e.occ) }

// Occupancy returns owner i's estimated occupancy in lines.
func (e *Estimator) Occupancy(i int) float64 { return e.occ[i] }

// Occupancies appends all owners' occupancies to dst.
func (e *Estimator) Occupancies(dst []float64) []float64 { return append(dst, e.occ...) }

// Set overrides owner i's occupancy, for example with a hardware CMT reading.
func (e *Estimator) Set(i int, lines float64) error {
	if i < 0 || i >= len(e.occ) {
		return fmt.Errorf("cachemon: set occupancy of owner %d of %d", i, len(e.occ))
	}
	if math.IsNaN(lines) || lines < 0 || lines > e.lines {
		return fmt.Errorf("cachemon: occupancy %v outside [0, %v]", lines, e.lines)
	}
	e.occ[i] = lines
	return nil
}

// Update advances the model over one interval in which owner i made iv[i]
// misses. Within an interval every owner's misses are taken as evenly
// spread, which is exact when intervals are short against the time the
// cache takes to turn over.
func (e *Estimator) Update(iv []Interval) error {
	if len(iv) != len(e.occ) {
		return fmt.Errorf("cachemon: update with %d intervals for %d owners", len(iv), len(e.occ))
	}
	var total float64
	for _, x := range iv {
		total += float64(x.Misses)
	}
	if total == 0 {
		return nil
	}
	// Fill phase: while the cache has invalid lines a miss evicts nothing.
	// The sum of occupancies only grows, so free space is used first.
	var used float64
	for _, o := range e.occ {
		used += o
	}
	if free := e.lines - used; free > 0 {
		fill := math.Min(free, total)
		for i, x := range iv {
			e.occ[i] += fill * float64(x.Misses) / total
		}
		total -= fill
	}
	if total <= 0 {
		return nil
	}
	if e.model == ModelBasic {
		e.replaceBasic(iv, total)
	} else {
		e.replaceWeighted(iv, total)
	}
	e.normalize()
	return nil
}

// replaceBasic applies n misses to a full cache under the basic model.
// With p_i the owner's fraction of the misses, one miss changes the expected
// occupancy by p_i - E_i/C, so after n misses
//
//	E_i(n) = C·p_i + (E_i(0) - C·p_i)·(1 - 1/C)^n,
//
// which is exact for the model's expectation, not an approximation.
func (e *Estimator) replaceBasic(iv []Interval, n float64) {
	var total float64
	for _, x := range iv {
		total += float64(x.Misses)
	}
	decay := math.Exp(n * math.Log1p(-1/e.lines))
	if e.lines == 1 {
		decay = 0
	}
	for i, x := range iv {
		target := e.lines * float64(x.Misses) / total
		e.occ[i] = target + (e.occ[i]-target)*decay
	}
}

// replaceWeighted applies n misses under the LRU extension, where owner j's
// lines are evicted at a rate proportional to a_j·E_j with a_j the inverse
// of the residency of its lines. The equation
//
//	dE_i/dn = p_i - a_i·E_i / Σ_k a_k·E_k
//
// is nonlinear only through the denominator D, so it is integrated in steps
// of C/16 misses (longer for intervals over 16 turnovers of the cache) with
// D frozen per step, during which each E_i relaxes exponentially towards
// p_i·D/a_i.
func (e *Estimator) replaceWeighted(iv []Interval, n float64) {
	var total float64
	for _, x := range iv {
		total += float64(x.Misses)
	}
	for i, x := range iv {
		e.weight[i] = 1 / residency(x)
	}
	// Steps of C/16 keep the frozen-denominator error small; very long
	// intervals use at most maxSteps longer steps, which still converge
	// to the right fixed point (E_i = p_i·D/a_i is also the fixed point of
	// each frozen step) and bound the work whatever the counts say.
	const maxSteps = 256
	step := math.Max(e.lines/16, n/maxSteps)
	for n > 0 {
		h := math.Min(step, n)
		n -= h
		var d float64
		for i, o := range e.occ {
			d += e.weight[i] * o
		}
		if d <= 0 {
			// Every owner is empty or weightless: fall back to filling.
			for i, x := range iv {
				e.occ[i] += h * float64(x.Misses) / total
			}
			continue
		}
		for i, x := range iv {
			p := float64(x.Misses) / total
			a := e.weight[i]
			target := p * d / a
			e.occ[i] = target + (e.occ[i]-target)*math.Exp(-a*h/d)
		}
	}
}

// normalize removes the drift of rounding and of the stepwise integration:
// it is called only once the cache is full, when occupancies must be
// non-negative and sum to C.
func (e *Estimator) normalize() {
	var sum float64
	for i, o := range e.occ {
		if o < 0 || math.IsNaN(o) {
			e.occ[i] = 0
		}
		sum += e.occ[i]
	}
	if sum <= 0 {
		return
	}
	for i := range e.occ {
		e.occ[i] *= e.lines / sum
	}
}

// AddOwner starts tracking one more owner, with no lines, and returns its index.
func (e *Estimator) AddOwner() int {
	e.occ = append(e.occ, 0)
	e.weight = append(e.weight, 0)
	return len(e.occ) - 1
}

// residency is the expected lifetime of an owner's line under LRU in units
// of τ, the time an untouched line takes to sink from most- to
// least-recently used, given ρ = hits per miss over the interval. If each
// line is referenced as a Poisson process of rate λ, a residency holds
// ρ = e^{λτ} - 1 hits and lasts (e^{λτ} - 1)/λ, that is ρ/ln(1+ρ) in units
// of τ (docs/cachemon.md, "LRU extension"). An owner that did nothing in
// the interval (descheduled) gets 1: its lines only age.
func residency(x Interval) float64 {
	var rho float64
	switch {
	case x.Misses > 0 && x.Refs > x.Misses:
		rho = float64(x.Refs-x.Misses) / float64(x.Misses)
	case x.Misses == 0 && x.Refs > 0:
		// Hits without a miss: at least as well protected as with one miss.
		rho = float64(x.Refs)
	default:
		return 1
	}
	return rhoResidency(rho)
}

// rhoResidency is ρ/ln(1+ρ), continued to 1 at ρ = 0.
func rhoResidency(rho float64) float64 {
	if rho < 1e-9 {
		return 1
	}
	return rho / math.Log1p(rho)
}
