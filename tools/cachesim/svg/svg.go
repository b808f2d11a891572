// Package svg draws the few line charts cachemon's validation needs
// (occupancy over time, miss-ratio curves) as standalone SVG files, with
// axes, ticks, a legend and optional error bars. It has no notion of
// caches; it is deliberately small rather than general.
package svg

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line on a chart.
type Series struct {
	Name string
	X, Y []float64
	// Err, if set, draws a vertical bar of ±Err[i] at each point; NaN or
	// Inf entries draw none.
	Err []float64
	// Dashed draws the line dashed; Points draws markers instead of a line.
	Dashed, Points bool
	// Color picks a palette entry, so that related series can share one;
	// zero means the series' own position.
	Color int
}

// Chart is a line chart.
type Chart struct {
	Title, XLabel, YLabel string
	// YMin and YMax fix the y range when YMax > YMin; otherwise it fits the data.
	YMin, YMax float64
	Series     []Series
}

// palette is colour-blind safe (Okabe–Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

const (
	width, height          = 640, 400
	left, right, top, bott = 64, 160, 36, 48
)

// Write renders the chart.
func (c *Chart) Write(w io.Writer) error {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		if len(s.X) != len(s.Y) || (s.Err != nil && len(s.Err) != len(s.Y)) {
			return fmt.Errorf("svg: series %q has %d x, %d y and %d error values", s.Name, len(s.X), len(s.Y), len(s.Err))
		}
		for i := range s.X {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
		}
	}
	if xmin > xmax {
		return fmt.Errorf("svg: chart %q has no finite points", c.Title)
	}
	if c.YMax > c.YMin {
		ymin, ymax = c.YMin, c.YMax
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	pw, ph := float64(width-left-right), float64(height-top-bott)
	px := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 {
		y = math.Max(ymin, math.Min(ymax, y))
		return top + ph - (y-ymin)/(ymax-ymin)*ph
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(c.Title))
	for _, t := range ticks(xmin, xmax) {
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x, top, x, height-bott, x, height-bott+14, label(t))
	}
	for _, t := range ticks(ymin, ymax) {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, width-right, y, left-4, y+4, label(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", left+pw/2, height-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(c.YLabel))
	for i, s := range c.Series {
		col := palette[i%len(palette)]
		if s.Color > 0 {
			col = palette[(s.Color-1)%len(palette)]
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 3"`
		}
		if s.Points {
			for j := range s.X {
				if finite(s.X[j]) && finite(s.Y[j]) {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(s.X[j]), py(s.Y[j]), col)
				}
			}
		} else {
			var pts []string
			for j := range s.X {
				if finite(s.X[j]) && finite(s.Y[j]) {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
				}
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", col, dash, strings.Join(pts, " "))
		}
		for j := range s.Err {
			if !finite(s.Err[j]) || !finite(s.X[j]) || !finite(s.Y[j]) {
				continue
			}
			x := px(s.X[j])
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, py(s.Y[j]-s.Err[j]), x, py(s.Y[j]+s.Err[j]), col)
		}
		ly := top + 14*i + 8
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`+"\n",
			width-right+8, ly, width-right+28, ly, col, dash, width-right+32, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("svg: write %q: %w", c.Title, err)
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// ticks returns round values spanning [lo, hi], about five of them.
func ticks(lo, hi float64) []float64 {
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func label(t float64) string {
	if t != 0 && (math.Abs(t) >= 1e5 || math.Abs(t) < 1e-3) {
		return fmt.Sprintf("%.3g", t)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", t), "0"), ".")
}
