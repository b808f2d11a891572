package main

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"hv/cachemon"
	"hv/tools/cachesim/harness"
	"hv/tools/cachesim/svg"
)

// Markers delimit the generated part of the report; everything outside
// them is hand-written and kept.
const (
	beginMarker = "<!-- cachesim bench: results begin -->"
	endMarker   = "<!-- cachesim bench: results end -->"
)

// cmdBench runs the validation and writes the results into the report.
func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	traces := fs.String("traces", "tools/cachesim/testdata/traces", "directory of NAME.llct traces")
	doc := fs.String("doc", "docs/cachemon.md", "report to update between its result markers")
	svgDir := fs.String("svg", "docs/cachemon", "directory for the SVG plots")
	mix := fs.String("mix", "", "evaluate only this mix (a+b[+c+d]) and print its row")
	summary := fs.String("summary", "", "also write a short Markdown section for docs/bench.md here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	suite, err := harness.Load(*traces, harness.Default)
	if err != nil {
		return err
	}
	if *mix != "" {
		r, err := suite.EvalMix(harness.ParseMix(*mix))
		if err != nil {
			return err
		}
		fmt.Print(mixHeader + mixRow(r))
		if r.Placement != nil {
			fmt.Print(placeHeader + placeRow(r))
		}
		return nil
	}
	results := make([]*harness.MixResult, len(harness.Mixes))
	errs := make([]error, len(harness.Mixes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, m := range harness.Mixes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = suite.EvalMix(m)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if err := os.MkdirAll(*svgDir, 0o755); err != nil {
		return fmt.Errorf("cachesim: bench: %w", err)
	}
	var out strings.Builder
	if err := report(&out, suite, results, *svgDir, filepath.Dir(*doc)); err != nil {
		return err
	}
	if err := replaceResults(*doc, out.String()); err != nil {
		return err
	}
	if *summary != "" {
		if err := os.WriteFile(*summary, []byte(summarize(results)), 0o644); err != nil {
			return fmt.Errorf("cachesim: bench: %w", err)
		}
	}
	return nil
}

// summarize is the section for docs/bench.md: each figure with its
// reference measured in the same run (the basic model for the LRU model,
// true occupancy for estimated, a random pairing for the advisor).
func summarize(rs []*harness.MixResult) string {
	var occB, occL, mrcE, mrcT, best, random, chosen float64
	quads := 0
	for _, r := range rs {
		occB += r.OccErr[0] / float64(len(rs))
		occL += r.OccErr[1] / float64(len(rs))
		mrcE += r.MRCErr / float64(len(rs))
		mrcT += r.MRCErrTrue / float64(len(rs))
		if p := r.Placement; p != nil {
			quads++
			best += p.TrueMPKI[p.Best]
			random += p.Random
			chosen += p.TrueMPKI[p.Online]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Cache model (cachemon)\n\nOver %d real-trace co-run mixes on a simulated shared LLC; details, derivation and plots in [cachemon.md](cachemon.md).\n\n", len(rs))
	b.WriteString("| figure | value | reference | command |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| occupancy MAE (share of LLC), LRU model | %.2f%% | basic model %.2f%% | `go run ./tools/cachesim bench` |\n", 100*occL, 100*occB)
	fmt.Fprintf(&b, "| online MRC MAE (miss ratio), estimated occupancy | %.3f | true occupancy %.3f | `go run ./tools/cachesim bench` |\n", mrcE, mrcT)
	if quads > 0 {
		fmt.Fprintf(&b, "| placement: total MPKI of advisor's pairing, sum over %d quadruples | %.3f | best %.3f, random %.3f | `go run ./tools/cachesim bench` |\n", quads, chosen, best, random)
	}
	b.WriteString("\n")
	return b.String()
}

const mixHeader = "| mix | samples | occupancy MAE, basic | occupancy MAE, LRU | MRC MAE (estimated occupancy) | MRC MAE (true occupancy) | MRC points | reproduce |\n|---|---|---|---|---|---|---|---|\n"

func mixRow(r *harness.MixResult) string {
	return fmt.Sprintf("| %s | %d | %.2f%% | %.2f%% | %.3f | %.3f | %d | `go run ./tools/cachesim bench -mix %s` |\n",
		r.Mix, len(r.Result.Samples), 100*r.OccErr[0], 100*r.OccErr[1], r.MRCErr, r.MRCErrTrue, r.MRCPoints, r.Mix)
}

const placeHeader = "| quadruple | pairings (true MPKI) | best | random | advisor, online MRCs | advisor, exact MRCs | gain of online choice | reproduce |\n|---|---|---|---|---|---|---|---|\n"

func placeRow(r *harness.MixResult) string {
	p := r.Placement
	var parts []string
	for i, pair := range p.Pairings {
		parts = append(parts, fmt.Sprintf("%s / %s: %.3f", pair[0], pair[1], p.TrueMPKI[i]))
	}
	return fmt.Sprintf("| %s | %s | %.3f | %.3f | %.3f | %.3f | %s | `go run ./tools/cachesim bench -mix %s` |\n",
		r.Mix, strings.Join(parts, "<br>"), p.TrueMPKI[p.Best], p.Random, p.TrueMPKI[p.Online], p.TrueMPKI[p.Exact], pct(p.Gain(p.Online)), r.Mix)
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

// report writes the generated section: setup, per-program exact curves,
// per-mix errors, placement, per-program online MRCs, and the plots.
func report(b *strings.Builder, s *harness.Suite, rs []*harness.MixResult, svgDir, docDir string) error {
	cfg := s.Cfg
	lines := cfg.LLC.Lines()
	fmt.Fprintf(b, "Generated by `make bench-cachemon` (`go run ./tools/cachesim bench`). Simulated machine: private L1I/L1D 32 KiB 8-way (applied when the trace was reduced), private L2 %d KiB %d-way, shared LLC %d KiB %d-way (%d lines), 64-byte lines, true LRU everywhere; sampling every %d instructions per core; MRCs with %d bins.\n\n",
		cfg.L2.Lines()*64>>10, cfg.L2.Ways, lines*64>>10, cfg.LLC.Ways, lines, cfg.Interval, cfg.MRCBins)
	b.WriteString("### Traces and their exact miss-ratio curves\n\n")
	b.WriteString("Miss ratio (LLC misses per LLC reference) of each program alone: fully associative LRU from Mattson stack distances (FA), and the simulated 16-way set-associative LLC of the same size (SA).\n\n")
	b.WriteString("| program | instructions | LLC refs | refs/kinstr |")
	for _, sets := range harness.SetAssocSets {
		fmt.Fprintf(b, " %d KiB FA / SA |", sets*cfg.LLC.Ways*64>>10)
	}
	b.WriteString(" max abs(FA-SA) |\n|---|---|---|---|" + strings.Repeat("---|", len(harness.SetAssocSets)) + "---|\n")
	for _, n := range s.Names() {
		p := s.Programs[n]
		fmt.Fprintf(b, "| %s | %d | %d | %.2f |", n, p.Trace.Instrs, len(p.Stream), 1000*p.RefsPerInstr())
		worst := 0.0
		for i, sets := range harness.SetAssocSets {
			fa := p.Exact.MissRatio(sets * cfg.LLC.Ways)
			fmt.Fprintf(b, " %.3f / %.3f |", fa, p.SetAssoc[i])
			worst = math.Max(worst, math.Abs(fa-p.SetAssoc[i]))
		}
		fmt.Fprintf(b, " %.3f |\n", worst)
	}
	b.WriteString("\n### Occupancy and per-mix MRC error\n\n")
	b.WriteString("Occupancy MAE: mean over samples and cores of |estimated − true| occupancy, as a fraction of the LLC. MRC MAE: mean absolute miss-ratio difference between each member's online MRC built from this mix alone and its exact (FA) curve, over the measured points, averaged over members.\n\n")
	b.WriteString(mixHeader)
	var occB, occL, mrcE, mrcT float64
	for _, r := range rs {
		b.WriteString(mixRow(r))
		occB += r.OccErr[0] / float64(len(rs))
		occL += r.OccErr[1] / float64(len(rs))
		mrcE += r.MRCErr / float64(len(rs))
		mrcT += r.MRCErrTrue / float64(len(rs))
	}
	fmt.Fprintf(b, "| **mean of %d mixes** | | **%.2f%%** | **%.2f%%** | **%.3f** | **%.3f** | | `make bench-cachemon` |\n\n", len(rs), 100*occB, 100*occL, mrcE, mrcT)
	b.WriteString("### Placement\n\n")
	b.WriteString("Each quadruple is split into two pairs, each pair sharing its own LLC; true MPKI is the total LLC misses of all four per thousand instructions of one core, measured by co-running each pair for the longest member's length. The advisor (`cachemon.Place`, LRU model) chooses from the online MRCs (built from all runs) or from the exact curves. Gain: share of the best pairing's improvement over a random pairing that the online choice achieves.\n\n")
	b.WriteString(placeHeader)
	var best, random, online, exact float64
	for _, r := range rs {
		if p := r.Placement; p != nil {
			b.WriteString(placeRow(r))
			best += p.TrueMPKI[p.Best]
			random += p.Random
			online += p.TrueMPKI[p.Online]
			exact += p.TrueMPKI[p.Exact]
		}
	}
	fmt.Fprintf(b, "| **sum** | | **%.3f** | **%.3f** | **%.3f** | **%.3f** | | |\n", best, random, online, exact)
	b.WriteString("\n### Online MRCs over all runs\n\n")
	b.WriteString("Each program's MRC built from its solo run and every mix it is in, with estimated (LRU model) and with true occupancy, against the exact curve.\n\n| program | MAE, estimated occupancy | measured points | MAE, true occupancy | measured points | plot |\n|---|---|---|---|---|---|\n")
	for _, n := range s.Names() {
		est, err := s.OnlineMRC(n, harness.Mixes, false)
		if err != nil {
			return err
		}
		tru, err := s.OnlineMRC(n, harness.Mixes, true)
		if err != nil {
			return err
		}
		p := s.Programs[n]
		e1, p1 := harness.MRCError(est, p.ExactMRC)
		e2, p2 := harness.MRCError(tru, p.ExactMRC)
		file := filepath.Join(svgDir, "mrc-"+n+".svg")
		if err := plotMRC(file, n, p, est, tru, lines); err != nil {
			return err
		}
		rel, _ := filepath.Rel(docDir, file)
		fmt.Fprintf(b, "| %s | %.3f | %d | %.3f | %d | [svg](%s) |\n", n, e1, p1, e2, p2, rel)
	}
	b.WriteString("\n### Plots\n\n")
	for _, r := range rs {
		file := filepath.Join(svgDir, "occ-"+strings.ReplaceAll(r.Mix.String(), "+", "-")+".svg")
		if err := plotOccupancy(file, r, lines); err != nil {
			return err
		}
		rel, _ := filepath.Rel(docDir, file)
		fmt.Fprintf(b, "![occupancy %s](%s)\n", r.Mix, rel)
	}
	b.WriteString("\n")
	for _, n := range s.Names() {
		fmt.Fprintf(b, "![MRC %s](cachemon/mrc-%s.svg)\n", n, n)
	}
	return nil
}

func plotOccupancy(file string, r *harness.MixResult, lines int) error {
	c := svg.Chart{Title: "LLC occupancy: " + r.Mix.String(), XLabel: "instructions per core (millions)", YLabel: "share of LLC", YMin: 0, YMax: 1}
	for core, name := range r.Mix {
		var x, truth, est []float64
		for i, s := range r.Result.Samples {
			x = append(x, float64(s.Instr)/1e6)
			truth = append(truth, float64(s.Cores[core].Occupancy)/float64(lines))
			est = append(est, r.Est[len(r.Est)-1][i][core]/float64(lines))
		}
		c.Series = append(c.Series,
			svg.Series{Name: name + " true", X: x, Y: truth, Color: core + 1},
			svg.Series{Name: name + " est. (LRU)", X: x, Y: est, Dashed: true, Color: core + 1})
	}
	return writeChart(file, &c)
}

func plotMRC(file, name string, p *harness.Program, est, tru cachemon.MRC, lines int) error {
	c := svg.Chart{Title: "miss-ratio curve: " + name, XLabel: "cache size (KiB)", YLabel: "LLC misses per reference", YMin: 0, YMax: 1}
	var x, y []float64
	for l := 0; l <= lines; l += lines / 64 {
		x = append(x, float64(l)*64/1024)
		y = append(y, p.ExactMRC(float64(l)))
	}
	c.Series = append(c.Series, svg.Series{Name: "exact (FA LRU)", X: x, Y: y})
	var sx, sy []float64
	for i, sets := range harness.SetAssocSets {
		sx = append(sx, float64(sets*16*64)/1024)
		sy = append(sy, p.SetAssoc[i])
	}
	c.Series = append(c.Series, svg.Series{Name: "exact 16-way", X: sx, Y: sy, Points: true})
	for _, v := range []struct {
		n string
		m cachemon.MRC
	}{{"online, est. occ.", est}, {"online, true occ.", tru}} {
		var ox, oy, oe []float64
		for _, pt := range v.m {
			if pt.Samples == 0 {
				continue
			}
			ox = append(ox, pt.Lines*64/1024)
			oy = append(oy, pt.MissRatio)
			oe = append(oe, pt.CI95())
		}
		c.Series = append(c.Series, svg.Series{Name: v.n, X: ox, Y: oy, Err: oe, Dashed: true})
	}
	return writeChart(file, &c)
}

func writeChart(file string, c *svg.Chart) error {
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cachesim: write %s: %w", file, err)
	}
	return nil
}

// replaceResults swaps the text between the markers of doc for body.
func replaceResults(doc, body string) error {
	old, err := os.ReadFile(doc)
	if err != nil {
		return fmt.Errorf("cachesim: read report: %w", err)
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("cachesim: %s lacks the result markers %q and %q", doc, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + body + s[j:]
	if err := os.WriteFile(doc, []byte(s), 0o644); err != nil {
		return fmt.Errorf("cachesim: write report: %w", err)
	}
	return nil
}
