package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"hv/tools/bootmedia"
	"hv/tools/emu"
	"hv/tools/emurun"
	"hv/tools/marker"
)

// exitRun is one machine on which the kernel's exit benchmarks ran.
type exitRun struct {
	Label   string // "SVM, QEMU TCG -icount shift=0 (no NRIP)"
	Cmd     string
	Results map[string]float64 // "cpuid_exit" -> value, without the backend prefix
	Err     string
}

var exitBenchRE = regexp.MustCompile(`^bench: (svm|vmx)_(cpuid_exit|pio_exit|guest_only_loop|exits_per_second) (\S+) `)

// measureExits runs the boot option "bench" where the guest TSC counts
// instructions: QEMU with -icount shift=0 (SVM without NRIP), and Bochs,
// whose TSC ticks once per instruction (SVM with NRIP on ryzen, VMX on
// Skylake-X). The kernel's figures are host instructions per exit round trip
// beyond a guest-only loop measured in the same boot.
func measureExits(ctx context.Context, image, logs string) []exitRun {
	shift0 := 0
	var runs []exitRun
	spec := marker.Spec{Forbid: marker.Patterns(`^panic: `, `^fatal error: `, `^hv: error: `), Done: regexp.MustCompile(`^bench: done$`)}
	collect := func(label, cmd string, j emurun.Job) {
		er := exitRun{Label: label, Cmd: cmd, Results: map[string]float64{}}
		j.Spec, j.LogDir, j.Timeout = spec, logs, 15*time.Minute
		j.OnLine = func(l string) {
			if m := exitBenchRE.FindStringSubmatch(l); m != nil {
				if v, err := strconv.ParseFloat(m[3], 64); err == nil {
					er.Results[m[2]] = v
				}
			}
		}
		r := emurun.Run(ctx, j)
		if !r.Verdict.Pass {
			er.Err = fmt.Sprintf("%s (log %s)", r.Verdict.Reason, r.SerialLog)
		}
		runs = append(runs, er)
	}
	q := emu.QEMU{CPU: "EPYC", MemMiB: 512, SMP: 1, Kernel: image, Append: "bench", ICountShift: &shift0}
	collect("SVM without NRIP, QEMU TCG `-icount shift=0`", q.Command(), emurun.Job{Name: "bench-exits-qemu", QEMU: &q})

	iso, err := filepath.Abs(filepath.Join(logs, "bench.iso"))
	if err != nil {
		return append(runs, exitRun{Label: "Bochs", Err: err.Error()})
	}
	// Bochs runs in a directory of its own: the ISO path must be absolute.
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return append(runs, exitRun{Label: "Bochs", Err: err.Error()})
	}
	if err := bootmedia.MakeISO(ctx, image, "bench", iso); err != nil {
		return append(runs, exitRun{Label: "Bochs", Err: "ISO: " + err.Error()})
	}
	for _, c := range []struct{ label, model string }{
		{"SVM with NRIP, Bochs ryzen", "ryzen"},
		{"VMX, Bochs corei7_skylake_x", "corei7_skylake_x"},
	} {
		b := emu.Bochs{Model: c.model, Count: 1, ISO: iso}
		collect(c.label, fmt.Sprintf("make iso ARGS=bench && bochs (cpu: model=%s, count=1; see tools/emu)", c.model),
			emurun.Job{Name: "bench-exits-" + c.model, Bochs: &b})
	}
	return runs
}

// exitSection renders the exit-cost table.
func exitSection(runs []exitRun) string {
	var b strings.Builder
	b.WriteString("## Exit round trips (issues 3 and 5)\n\n")
	b.WriteString("Each figure is host instructions per exit round trip: a real-mode guest runs 10,000 iterations of a loop with CPUID (or OUT to port 0x80), and the same loop without the exiting instruction is the guest-only baseline measured in the same boot; the difference per iteration is the hypervisor's path (world switch, exit decoding, dispatch, device, re-entry). The TSC counts instructions in both emulators, so these do not depend on the host.\n\n")
	b.WriteString("| Machine | CPUID exit | port I/O exit | guest-only loop iteration | exits per second of wall time | Reproduce |\n|---|---|---|---|---|---|\n")
	f := func(r exitRun, k string) string {
		v, ok := r.Results[k]
		if !ok {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	for _, r := range runs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | `%s` |\n", r.Label, f(r, "cpuid_exit"), f(r, "pio_exit"), f(r, "guest_only_loop"), f(r, "exits_per_second"), r.Cmd)
	}
	for _, r := range runs {
		if r.Err != "" {
			fmt.Fprintf(&b, "\n- %s: %s\n", r.Label, strings.ReplaceAll(r.Err, "|", `\|`))
		}
	}
	b.WriteString("\nExits per second are wall-clock figures from the emulators (QEMU's is under icount, so it measures emulated time).\n\n")
	return b.String()
}
