package cachemon

import (
	"fmt"
	"math"
)

// MRCPoint is one point of an online miss-ratio curve.
type MRCPoint struct {
	// Lines is the cache size the point stands for: the centre of its
	// occupancy bin.
	Lines float64
	// MissRatio is LLC misses per LLC reference at that size, after
	// the curve was made non-increasing.
	MissRatio float64
	// Samples is the number of intervals whose occupancy fell in this bin;
	// zero means the point was interpolated or extrapolated, not measured.
	Samples int
	// StdErr is the standard error of the bin's (pooled) mean miss ratio;
	// +Inf for points with fewer than two samples behind them.
	StdErr float64
}

// CI95 is the half-width of the point's approximate 95% confidence interval.
func (p MRCPoint) CI95() float64 { return 1.96 * p.StdErr }

// MRC is a miss-ratio curve over cache sizes from 0 to the whole cache.
type MRC []MRCPoint

// At returns the miss ratio at the given size by linear interpolation
// between points, flat beyond either end.
func (m MRC) At(lines float64) float64 {
	if len(m) == 0 {
		return math.NaN()
	}
	if lines <= m[0].Lines {
		return m[0].MissRatio
	}
	for i := 1; i < len(m); i++ {
		if lines <= m[i].Lines {
			a, b := m[i-1], m[i]
			t := (lines - a.Lines) / (b.Lines - a.Lines)
			return a.MissRatio + t*(b.MissRatio-a.MissRatio)
		}
	}
	return m[len(m)-1].MissRatio
}

// Measured reports how many points rest on samples.
func (m MRC) Measured() int {
	n := 0
	for _, p := range m {
		if p.Samples > 0 {
			n++
		}
	}
	return n
}

// MinRefsPerSample is the fewest LLC references an interval must have for
// its miss ratio to be recorded; below it the ratio is mostly noise (with
// 64 references one miss moves it by 1.6%).
const MinRefsPerSample = 64

// MRCBuilder accumulates (occupancy, miss ratio) samples of one owner in
// equal-width occupancy bins and turns them into a monotone curve. Each
// sample is weighted by its reference count, so a bin's value is the bin's
// total misses over its total references.
type MRCBuilder struct {
	lines float64
	bins  []mrcBin
}

type mrcBin struct {
	n            int
	refs, misses float64
	sumR, sumRR  float64 // unweighted sums of per-sample ratios, for the spread
}

// NewMRCBuilder returns a builder for a cache of the given number of lines
// with the given number of bins (the curve's resolution).
func NewMRCBuilder(lines int, bins int) (*MRCBuilder, error) {
	if lines <= 0 || bins <= 0 || bins > lines {
		return nil, fmt.Errorf("cachemon: MRC builder with %d bins over %d lines", bins, lines)
	}
	return &MRCBuilder{lines: float64(lines), bins: make([]mrcBin, bins)}, nil
}

// Add records one interval in which the owner held occupancy lines and made
// refs references of which misses missed. It reports whether the sample was
// used; intervals with too few references are dropped.
func (b *MRCBuilder) Add(occupancy float64, refs, misses uint64) bool {
	if refs < MinRefsPerSample || misses > refs || math.IsNaN(occupancy) {
		return false
	}
	occupancy = math.Max(0, math.Min(occupancy, b.lines))
	i := int(occupancy / b.lines * float64(len(b.bins)))
	if i == len(b.bins) {
		i--
	}
	r := float64(misses) / float64(refs)
	bin := &b.bins[i]
	bin.n++
	bin.refs += float64(refs)
	bin.misses += float64(misses)
	bin.sumR += r
	bin.sumRR += r * r
	return true
}

// Curve returns the current MRC. Measured bins are pooled by weighted
// isotonic regression (pool adjacent violators, weights = references) so
// that the curve never rises with size, as a miss-ratio curve of an LRU
// cache cannot (the inclusion property); a rise in raw samples is noise or
// a phase change, and pooling the offending neighbours is the least-squares
// fix. Bins without samples are interpolated between measured neighbours
// and extended flat beyond them, with Samples zero and StdErr +Inf.
func (b *MRCBuilder) Curve() MRC {
	type block struct {
		first, last  int
		n            int
		refs, misses float64
		sumR, sumRR  float64
	}
	var blocks []block
	for i, bin := range b.bins {
		if bin.n == 0 {
			continue
		}
		blocks = append(blocks, block{i, i, bin.n, bin.refs, bin.misses, bin.sumR, bin.sumRR})
		// Merge while the newest block's ratio exceeds its predecessor's:
		// a larger cache must not miss more.
		for len(blocks) > 1 {
			x, y := blocks[len(blocks)-2], blocks[len(blocks)-1]
			if y.misses/y.refs <= x.misses/x.refs {
				break
			}
			blocks = blocks[:len(blocks)-2]
			blocks = append(blocks, block{x.first, y.last, x.n + y.n, x.refs + y.refs, x.misses + y.misses, x.sumR + y.sumR, x.sumRR + y.sumRR})
		}
	}
	width := b.lines / float64(len(b.bins))
	out := make(MRC, len(b.bins))
	for i := range out {
		out[i] = MRCPoint{Lines: (float64(i) + 0.5) * width, MissRatio: math.NaN(), StdErr: math.Inf(1)}
	}
	if len(blocks) == 0 {
		return out
	}
	for _, bl := range blocks {
		ratio := bl.misses / bl.refs
		se := math.Inf(1)
		if bl.n > 1 {
			mean := bl.sumR / float64(bl.n)
			v := (bl.sumRR - float64(bl.n)*mean*mean) / float64(bl.n-1)
			se = math.Sqrt(math.Max(v, 0) / float64(bl.n))
		}
		for i := bl.first; i <= bl.last; i++ {
			out[i].MissRatio = ratio
			if b.bins[i].n > 0 {
				out[i].Samples = b.bins[i].n
				out[i].StdErr = se
			}
		}
	}
	// Fill the gaps: between two measured points linearly (which keeps
	// the curve monotone), beyond the ends flat.
	prev := -1
	for i := range out {
		if out[i].Samples == 0 {
			continue
		}
		if prev >= 0 {
			for j := prev + 1; j < i; j++ {
				t := float64(j-prev) / float64(i-prev)
				out[j].MissRatio = out[prev].MissRatio + t*(out[i].MissRatio-out[prev].MissRatio)
			}
		} else {
			for j := 0; j < i; j++ {
				out[j].MissRatio = out[i].MissRatio
			}
		}
		prev = i
	}
	for j := prev + 1; j < len(out); j++ {
		out[j].MissRatio = out[prev].MissRatio
	}
	return out
}
