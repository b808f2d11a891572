package harness

import (
	"testing"
)

// TestRealTraces runs the committed traces through the whole validation
// for one pair and one quadruple and holds the results to loose bounds, so
// that a broken estimator, simulator or advisor fails here rather than
// only in the report.
func TestRealTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("loads all traces")
	}
	s, err := Load("../testdata/traces", Default)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := s.EvalMix(Mix{"xz", "sort"})
	if err != nil {
		t.Fatal(err)
	}
	if pair.OccErr[1] > 0.10 || pair.OccErr[1] > pair.OccErr[0] {
		t.Errorf("xz+sort occupancy error: LRU %.3f, basic %.3f", pair.OccErr[1], pair.OccErr[0])
	}
	if pair.MRCErr > 0.15 || pair.MRCPoints == 0 {
		t.Errorf("xz+sort MRC error %.3f over %d points", pair.MRCErr, pair.MRCPoints)
	}
	quad, err := s.EvalMix(Mix{"gzip", "awk", "xz", "sqlite3"})
	if err != nil {
		t.Fatal(err)
	}
	if p := quad.Placement; p.TrueMPKI[p.Online] > p.Random {
		t.Errorf("advisor's pairing (%.3f MPKI) worse than random (%.3f)", p.TrueMPKI[p.Online], p.Random)
	}
}
