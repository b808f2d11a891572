package cachemon

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMRCBuilderCurve(t *testing.T) {
	type sample struct {
		occ          float64
		refs, misses uint64
	}
	tests := []struct {
		name    string
		samples []sample
		want    []float64 // miss ratio per bin
		samp    []int
	}{
		{
			name:    "monotone data kept, gaps interpolated, ends flat",
			samples: []sample{{150, 1000, 800}, {550, 1000, 400}},
			// bins of 100 lines, centres 50..950
			want: []float64{0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4},
			samp: []int{0, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		},
		{
			name: "a rise is pooled by reference weight",
			// 0.2 at 250, then 0.5 at 350 with 3x the weight: pooled
			// to (200+1500)/(1000+3000) = 0.425 over both bins.
			samples: []sample{{250, 1000, 200}, {350, 3000, 1500}},
			want:    []float64{0.425, 0.425, 0.425, 0.425, 0.425, 0.425, 0.425, 0.425, 0.425, 0.425},
			samp:    []int{0, 0, 1, 1, 0, 0, 0, 0, 0, 0},
		},
		{
			name:    "pooling cascades backwards",
			samples: []sample{{50, 100, 50}, {150, 100, 40}, {250, 100, 90}},
			// 0.4 < 0.9 pools to 0.65, which exceeds 0.5: all pool to 0.6.
			want: []float64{0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6},
			samp: []int{1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
		},
		{
			name:    "samples with too few references are dropped",
			samples: []sample{{50, MinRefsPerSample - 1, 0}, {950, 100, 10}},
			want:    []float64{0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1},
			samp:    []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
		},
		{
			name:    "occupancy at and beyond the cache lands in the last bin",
			samples: []sample{{1000, 100, 10}, {5000, 100, 30}},
			want:    []float64{0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2},
			samp:    []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewMRCBuilder(1000, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.samples {
				b.Add(s.occ, s.refs, s.misses)
			}
			c := b.Curve()
			var got []float64
			var samp []int
			for i, p := range c {
				if p.Lines != float64(i)*100+50 {
					t.Errorf("point %d at %v lines, want %d", i, p.Lines, i*100+50)
				}
				got = append(got, p.MissRatio)
				samp = append(samp, p.Samples)
				if p.Samples == 0 && !math.IsInf(p.StdErr, 1) {
					t.Errorf("unmeasured point %d has standard error %v", i, p.StdErr)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("miss ratios (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.samp, samp); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
			for i := 1; i < len(c); i++ {
				if c[i].MissRatio > c[i-1].MissRatio {
					t.Errorf("curve rises at point %d", i)
				}
			}
		})
	}
}

func TestMRCStdErr(t *testing.T) {
	b, _ := NewMRCBuilder(100, 1)
	// Ratios 0.1, 0.2, 0.3: sample sd 0.1, standard error 0.1/sqrt(3).
	for _, m := range []uint64{10, 20, 30} {
		b.Add(50, 100, m)
	}
	p := b.Curve()[0]
	if want := 0.1 / math.Sqrt(3); math.Abs(p.StdErr-want) > 1e-12 {
		t.Errorf("standard error %v, want %v", p.StdErr, want)
	}
	if math.Abs(p.CI95()-1.96*p.StdErr) > 1e-15 {
		t.Errorf("CI95 %v", p.CI95())
	}
	b1, _ := NewMRCBuilder(100, 1)
	b1.Add(50, 100, 10)
	if se := b1.Curve()[0].StdErr; !math.IsInf(se, 1) {
		t.Errorf("one sample gives standard error %v, want +Inf", se)
	}
}

func TestMRCAt(t *testing.T) {
	m := MRC{{Lines: 10, MissRatio: 1}, {Lines: 20, MissRatio: 0.5}, {Lines: 40, MissRatio: 0.1}}
	for _, tt := range []struct{ x, want float64 }{{0, 1}, {10, 1}, {15, 0.75}, {30, 0.3}, {40, 0.1}, {99, 0.1}} {
		if got := m.At(tt.x); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("At(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
	if !math.IsNaN(MRC(nil).At(1)) {
		t.Error("empty curve gives a number")
	}
}

func TestMRCBuilderEmptyAndErrors(t *testing.T) {
	if _, err := NewMRCBuilder(10, 11); err == nil {
		t.Error("more bins than lines accepted")
	}
	b, _ := NewMRCBuilder(10, 2)
	if b.Add(5, 100, 101) {
		t.Error("more misses than references accepted")
	}
	if b.Add(math.NaN(), 100, 1) {
		t.Error("NaN occupancy accepted")
	}
	c := b.Curve()
	if c.Measured() != 0 || !math.IsNaN(c[0].MissRatio) {
		t.Errorf("empty builder gives %+v", c)
	}
}
