package harness

import (
	"fmt"
	"math"

	"hv/cachemon"
	"hv/tools/cachesim/sim"
)

// Models are the estimator variants evaluated, basic first.
var Models = []cachemon.Model{cachemon.ModelBasic, cachemon.ModelLRU}

// MixResult is the validation of one co-run.
type MixResult struct {
	Mix    Mix
	Result *sim.Result
	// Est[m] is the estimated occupancy per sample and core under Models[m].
	Est [][][]float64
	// OccErr[m] is the mean absolute occupancy error, fraction of the cache.
	OccErr []float64
	// MRCErr is the mean over members of the online MRC's mean absolute
	// error (LRU-model occupancies, this mix's samples only); MRCErrTrue
	// is the same with the simulator's true occupancies, which isolates
	// what co-running itself costs; MRCPoints counts measured points.
	MRCErr, MRCErrTrue float64
	MRCPoints          int
	Placement          *PlacementResult
}

// EvalMix co-runs a mix and evaluates the estimators and online MRCs on it;
// quadruples also get the placement study.
func (s *Suite) EvalMix(m Mix) (*MixResult, error) {
	r, err := s.Run(m, 0)
	if err != nil {
		return nil, err
	}
	lines := s.Cfg.LLC.Lines()
	res := &MixResult{Mix: m, Result: r}
	for _, model := range Models {
		est, err := Estimate(r, lines, model)
		if err != nil {
			return nil, fmt.Errorf("harness: %s: %w", m, err)
		}
		res.Est = append(res.Est, est)
		res.OccErr = append(res.OccErr, OccupancyError(r, est, lines))
	}
	if res.MRCErr, res.MRCPoints, err = s.mixMRCError(m, r, res.Est[len(res.Est)-1]); err != nil {
		return nil, err
	}
	if res.MRCErrTrue, _, err = s.mixMRCError(m, r, TrueOccupancy(r)); err != nil {
		return nil, err
	}
	if len(m) == 4 {
		if res.Placement, err = s.Place(m); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// mixMRCError builds each member's MRC from this co-run alone, with the
// given occupancies, and returns the members' mean MRC error and the total
// number of measured points.
func (s *Suite) mixMRCError(m Mix, r *sim.Result, occ [][]float64) (float64, int, error) {
	lines := s.Cfg.LLC.Lines()
	var sum float64
	var members, points int
	for c, name := range m {
		b, err := cachemon.NewMRCBuilder(lines, s.Cfg.MRCBins)
		if err != nil {
			return 0, 0, err
		}
		AddMRCSamples(b, r, occ, c, lines)
		e, n := MRCError(b.Curve(), s.Programs[name].ExactMRC)
		if n > 0 {
			sum += e
			members++
			points += n
		}
	}
	if members == 0 {
		return math.NaN(), 0, nil
	}
	return sum / float64(members), points, nil
}

// OnlineMRC builds a program's MRC the way cachemon would over its life:
// from every interval of its solo run and of every mix it ran in, with
// occupancies from the LRU-model estimator (or, if useTrue, the simulator).
func (s *Suite) OnlineMRC(name string, mixes []Mix, useTrue bool) (cachemon.MRC, error) {
	lines := s.Cfg.LLC.Lines()
	b, err := cachemon.NewMRCBuilder(lines, s.Cfg.MRCBins)
	if err != nil {
		return nil, err
	}
	runs := append([]Mix{{name}}, mixes...)
	for _, m := range runs {
		core := -1
		for i, n := range m {
			if n == name {
				core = i
			}
		}
		if core < 0 {
			continue
		}
		r, err := s.Run(m, 0)
		if err != nil {
			return nil, err
		}
		occ := TrueOccupancy(r)
		if !useTrue {
			if occ, err = Estimate(r, lines, cachemon.ModelLRU); err != nil {
				return nil, err
			}
		}
		AddMRCSamples(b, r, occ, core, lines)
	}
	return b.Curve(), nil
}

// PlacementResult compares the advisor with the alternatives for splitting
// four programs into two pairs, each pair sharing one LLC.
type PlacementResult struct {
	// Pairings lists the three ways to pair the four, with true misses
	// per thousand instructions (summed over all four programs) measured
	// by co-running each pair on its own simulated LLC.
	Pairings [][2]Mix
	TrueMPKI []float64
	// Online and Exact are the indices of the pairings the advisor chose
	// from the online MRCs and from the exact curves.
	Online, Exact int
	Best, Worst   int
	Random        float64 // expected MPKI of a uniformly random pairing
}

// Place runs the placement study for a quadruple.
func (s *Suite) Place(q Mix) (*PlacementResult, error) {
	var instrs uint64
	for _, n := range q {
		instrs = max(instrs, s.Programs[n].Trace.Instrs)
	}
	pr := &PlacementResult{Best: -1, Worst: -1}
	var online, exact []cachemon.Workload
	for _, n := range q {
		p := s.Programs[n]
		mrc, err := s.OnlineMRC(n, Mixes, false)
		if err != nil {
			return nil, err
		}
		online = append(online, cachemon.Workload{Name: n, RefRate: p.RefsPerInstr(), MRC: mrc.At})
		exact = append(exact, cachemon.Workload{Name: n, RefRate: p.RefsPerInstr(), MRC: p.ExactMRC})
	}
	lines := float64(s.Cfg.LLC.Lines())
	var err error
	cachemon.EnumeratePlacements(4, 2, 2, func(groups [][]int) {
		if err != nil || len(groups) != 2 || len(groups[0]) != 2 {
			return
		}
		var pair [2]Mix
		var misses float64
		for g := range groups {
			pair[g] = Mix{q[groups[g][0]], q[groups[g][1]]}
			r, rerr := s.Run(pair[g], instrs)
			if rerr != nil {
				err = rerr
				return
			}
			for _, t := range r.Total {
				misses += float64(t.Misses)
			}
		}
		pr.Pairings = append(pr.Pairings, pair)
		pr.TrueMPKI = append(pr.TrueMPKI, 1000*misses/float64(instrs))
	})
	if err != nil {
		return nil, err
	}
	if len(pr.Pairings) != 3 {
		return nil, fmt.Errorf("harness: %s: %d pairings, want 3", q, len(pr.Pairings))
	}
	for i, m := range pr.TrueMPKI {
		pr.Random += m / 3
		if pr.Best < 0 || m < pr.TrueMPKI[pr.Best] {
			pr.Best = i
		}
		if pr.Worst < 0 || m > pr.TrueMPKI[pr.Worst] {
			pr.Worst = i
		}
	}
	choose := func(ws []cachemon.Workload) (int, error) {
		pl, err := cachemon.Place(ws, 2, 2, lines, cachemon.ModelLRU)
		if err != nil {
			return -1, err
		}
		for i, pair := range pr.Pairings {
			for _, g := range pl.Groups {
				a, b := q[g[0]], q[g[1]]
				if (pair[0][0] == a && pair[0][1] == b) || (pair[0][0] == b && pair[0][1] == a) {
					return i, nil
				}
			}
		}
		return -1, fmt.Errorf("harness: advisor's placement %v is no pairing of %s", pl.Groups, q)
	}
	if pr.Online, err = choose(online); err != nil {
		return nil, err
	}
	if pr.Exact, err = choose(exact); err != nil {
		return nil, err
	}
	return pr, nil
}

// Gain is the share of the possible improvement over a random pairing that
// a choice achieves: 1 for the best pairing, 0 for random's expectation,
// negative when worse than random; NaN when all pairings are equal.
func (p *PlacementResult) Gain(choice int) float64 {
	span := p.Random - p.TrueMPKI[p.Best]
	if span <= 0 {
		return math.NaN()
	}
	return (p.Random - p.TrueMPKI[choice]) / span
}
