// Command hvbench measures the platform under QEMU and writes a Markdown
// section for docs/bench.md: image size, boot time to the self-test's first
// line and to its end in guest instructions (-icount shift=0) and in wall
// seconds (TCG), and the kernel's own "bench:" results.
//
// Usage:
//
//	hvbench -title                       print the title section of docs/bench.md
//	hvbench [-image out/hv] -o FILE      measure and write the platform section
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"hv/tools/emu"
	"hv/tools/emurun"
	"hv/tools/marker"
)

func main() {
	image := flag.String("image", "out/hv", "the bootable image")
	out := flag.String("o", "", "write the Markdown section to this `file`")
	logs := flag.String("logs", "out/bench-logs", "`directory` for the runs' logs")
	title := flag.Bool("title", false, "print the title section and exit")
	runs := flag.Int("n", 3, "repeat the boot-time runs this many times")
	flag.Parse()
	if *title {
		fmt.Print(titleSection(time.Now(), hostCPU(), qemuVersion()))
		return
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: hvbench [-image IMAGE] -o FILE | -title")
		os.Exit(2)
	}
	m, err := measure(context.Background(), *image, *logs, max(*runs, 1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hvbench:", err)
		os.Exit(1)
	}
	for _, w := range m.warnings {
		fmt.Fprintln(os.Stderr, "hvbench: warning:", w)
	}
	exits := measureExits(context.Background(), *image, *logs)
	if err := os.WriteFile(*out, []byte(m.section(*image)+exitSection(exits)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "hvbench:", err)
		os.Exit(1)
	}
}

// measurements holds what the runs found: one sample per run that got that
// far, and the reasons for what is missing in warnings.
type measurements struct {
	imageSize           int64
	runs                int
	firstTSC, doneTSC   []uint64
	firstWall, doneWall []time.Duration
	bench               []benchResult
	icountCmd, wallCmd  string
	benchCmd            string
	warnings            []string
}

var (
	// firstRE matches every self-test line; the first one seen is the
	// self-test's first line, whatever its wording.
	firstRE = regexp.MustCompile(`^selftest: `)
	doneRE  = regexp.MustCompile(`^selftest: done `)
	broken  = []*regexp.Regexp{regexp.MustCompile(`^panic: `), regexp.MustCompile(`^fatal error: `), regexp.MustCompile(`^SIG[A-Z]+: `), regexp.MustCompile(`^hv: error: `)}
)

func measure(ctx context.Context, image, logs string, runs int) (*measurements, error) {
	st, err := os.Stat(image)
	if err != nil {
		return nil, fmt.Errorf("image: %w (run make image)", err)
	}
	m := &measurements{imageSize: st.Size(), runs: runs}
	shift0 := 0
	selftest := marker.Spec{Expect: []*regexp.Regexp{firstRE}, Forbid: broken, Done: doneRE}

	// Guest instructions: one CPU, TSC = instructions since reset.
	icount := emu.QEMU{CPU: "EPYC", MemMiB: 512, SMP: 1, Kernel: image, Append: "selftest", ICountShift: &shift0}
	m.icountCmd = icount.Command()
	// Wall seconds under plain TCG, from QEMU's start.
	wall := emu.QEMU{CPU: "EPYC", MemMiB: 512, SMP: 1, Kernel: image, Append: "selftest"}
	m.wallCmd = wall.Command()
	for i := range runs {
		var first, last uint64
		var have bool
		r := runWith(ctx, fmt.Sprintf("bench-icount-%d", i), icount, selftest, logs, func(l string, _ time.Duration) {
			// The end is the last tsc= on a self-test line up to
			// "done": the kernel may print it on "done" itself or
			// on a line before.
			v, ok := parseTSC(l)
			if !ok || !firstRE.MatchString(l) {
				return
			}
			if !have {
				first, have = v, true
			}
			last = v
		})
		switch {
		case !r.Verdict.Pass:
			m.warnings = append(m.warnings, fmt.Sprintf("icount run %d: %s (log %s)", i, r.Verdict.Reason, r.SerialLog))
		case !have || last <= first:
			m.warnings = append(m.warnings, fmt.Sprintf("icount run %d: want tsc= on the self-test's first line and on a later one up to \"selftest: done\"", i))
		default:
			m.firstTSC, m.doneTSC = append(m.firstTSC, first), append(m.doneTSC, last)
		}

		var firstAt, doneAt time.Duration
		r = runWith(ctx, fmt.Sprintf("bench-wall-%d", i), wall, selftest, logs, func(l string, at time.Duration) {
			switch {
			case firstRE.MatchString(l) && firstAt == 0:
				firstAt = at
			case doneRE.MatchString(l):
				doneAt = at
			}
		})
		if !r.Verdict.Pass {
			m.warnings = append(m.warnings, fmt.Sprintf("wall-clock run %d: %s (log %s)", i, r.Verdict.Reason, r.SerialLog))
		} else {
			m.firstWall, m.doneWall = append(m.firstWall, firstAt), append(m.doneWall, doneAt)
		}
	}

	// The kernel's own benchmarks need two CPUs for the cross-CPU figures;
	// they repeat their operations and report their own averages.
	kb := emu.QEMU{CPU: "EPYC", MemMiB: 512, SMP: 2, Kernel: image, Append: "bench"}
	m.benchCmd = kb.Command()
	benchSpec := marker.Spec{Forbid: broken, Done: regexp.MustCompile(`^bench: done$`)}
	r := runWith(ctx, "bench-kernel", kb, benchSpec, logs, func(l string, _ time.Duration) {
		b, ok, err := parseBench(l)
		if err != nil {
			m.warnings = append(m.warnings, err.Error())
		} else if ok {
			m.bench = append(m.bench, b)
		}
	})
	if !r.Verdict.Pass {
		m.warnings = append(m.warnings, fmt.Sprintf("bench run: %s (log %s)", r.Verdict.Reason, r.SerialLog))
	}
	return m, nil
}

// spread summarizes samples as "median (min-max over n runs)".
func spread[T uint64 | time.Duration](xs []T, format func(T) string) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	med := format(s[len(s)/2])
	if len(s) == 1 {
		return med + " (1 run)"
	}
	return fmt.Sprintf("%s (median; %s to %s over %d runs)", med, format(s[0]), format(s[len(s)-1]), len(s))
}

// runWith runs one QEMU machine; onLine sees each line and the time since
// the start.
func runWith(ctx context.Context, name string, q emu.QEMU, spec marker.Spec, logs string, onLine func(string, time.Duration)) emurun.Result {
	start := time.Now()
	return emurun.Run(ctx, emurun.Job{
		Name: name, QEMU: &q, Spec: spec, Timeout: 5 * time.Minute, LogDir: logs,
		OnLine: func(l string) { onLine(l, time.Since(start)) },
	})
}

func titleSection(now time.Time, cpu, qemu string) string {
	return fmt.Sprintf(`# Benchmarks

Generated by `+"`make bench`"+` on %s; do not edit by hand.

Host: %s, %d CPUs; %s.
Wall-clock figures come from a shared machine and are noisy; instruction
counts under `+"`-icount shift=0`"+` do not depend on the host.

`, now.UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), qemu)
}

func (m *measurements) section(image string) string {
	var b strings.Builder
	na := "not measured (see `make bench` output)"
	instr := func(v uint64) string { return fmt.Sprintf("%d", v) }
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	fmt.Fprintf(&b, "## Platform\n\n| Figure | Value | Reproduce |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Image size | %d bytes (%.2f MiB) | `make image && stat -c %%s %s` |\n", m.imageSize, float64(m.imageSize)/(1<<20), image)
	if len(m.firstTSC) == 0 {
		fmt.Fprintf(&b, "| Guest instructions from reset to the self-test's first line | %s | `%s` |\n", na, m.icountCmd)
	} else {
		fmt.Fprintf(&b, "| Guest instructions from reset to the self-test's first line | %s | `%s` |\n", spread(m.firstTSC, instr), m.icountCmd)
		fmt.Fprintf(&b, "| Guest instructions from reset to the self-test's end (last `tsc=` up to `selftest: done`) | %s | same |\n", spread(m.doneTSC, instr))
	}
	if len(m.firstWall) == 0 {
		fmt.Fprintf(&b, "| Wall time from QEMU's start to the self-test's first line | %s | `%s` |\n", na, m.wallCmd)
	} else {
		fmt.Fprintf(&b, "| Wall time from QEMU's start to the self-test's first line | %s | `%s` |\n", spread(m.firstWall, secs), m.wallCmd)
		fmt.Fprintf(&b, "| Wall time from QEMU's start to `selftest: done` | %s | same |\n", spread(m.doneWall, secs))
	}
	b.WriteString("\nInstruction counts are the guest TSC under `-icount shift=0`, which starts at 0 at reset and advances once per guest instruction, so they include the firmware and the multiboot loader. They do not depend on the host's speed or load; the small spread between runs comes from inputs that icount leaves nondeterministic, such as RDRAND, which seeds the Go runtime.\n\n")
	fmt.Fprintf(&b, "### Kernel benchmarks (boot option `bench`)\n\nReproduce: `%s`\n\n", m.benchCmd)
	if len(m.bench) == 0 {
		fmt.Fprintf(&b, "%s\n", na)
	} else {
		b.WriteString("| Benchmark | Value | Unit |\n|---|---|---|\n")
		for _, r := range m.bench {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Name, strconv.FormatFloat(r.Value, 'f', -1, 64), r.Unit)
		}
	}
	if len(m.warnings) > 0 {
		b.WriteString("\nProblems in this run:\n\n")
		for _, w := range m.warnings {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(w, "|", `\|`))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func hostCPU() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "QEMU version unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}
