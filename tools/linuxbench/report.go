package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A variant is one way of booting the guest: directly under QEMU (the
// reference) or as a VM inside the hypervisor.
type variant int

const (
	direct variant = iota
	nested
)

func (v variant) String() string {
	if v == direct {
		return "direct"
	}
	return "nested"
}

// A mode is how time is measured: wall time under plain TCG, or the guest
// kernel's clock under -icount (one instruction per virtual nanosecond).
type mode int

const (
	wall mode = iota
	icount
)

func (m mode) String() string {
	if m == wall {
		return "wall"
	}
	return "icount"
}

// sample is one run: ok with its figures, or a failure with its reason.
type sample struct {
	ok bool
	// wall mode: time from QEMU's start to "Run /init as init process"
	// and to "test: done" (0 if not seen).
	wallInit, wallDone time.Duration
	// icount mode: the kernel's printk timestamps, in virtual
	// nanoseconds, on the /init line and on the "Calibrating delay loop"
	// line (the first line both variants print with the clock on the TSC).
	stampInit, stampCalib uint64
	// blkWrite and blkRead are the guest's virtio-blk throughput in
	// MB/s on its own clock (the "test: bench blk" lines; 0 if missing).
	blkWrite, blkRead float64
	reason            string
}

// benchRE matches the guest's throughput lines (tools/mkinitramfs
// test-default.sh, hv.bench=).
var benchRE = regexp.MustCompile(`^(?:linux: )?test: bench blk (write|read) (\d+) bytes (\d+) ns$`)

// parseBench returns the operation and throughput in MB/s (10^6 bytes per
// second) of a "test: bench blk" line.
func parseBench(line string) (op string, mbps float64, ok bool) {
	m := benchRE.FindStringSubmatch(line)
	if m == nil {
		return "", 0, false
	}
	bytes, err1 := strconv.ParseUint(m[2], 10, 64)
	ns, err2 := strconv.ParseUint(m[3], 10, 64)
	if err1 != nil || err2 != nil || bytes == 0 || ns == 0 {
		return "", 0, false
	}
	return m[1], float64(bytes) / float64(ns) * 1e3, true
}

// stampRE matches a kernel line, as printed directly or through the
// hypervisor's console ("linux: " prefix), with its printk timestamp
// "[seconds.micros]".
var stampRE = regexp.MustCompile(`^(?:linux: )?\[ *(\d{1,9})\.(\d{6})\] (.*)$`)

// doneRE is the guest's /test script's last line.
var doneRE = regexp.MustCompile(`^(?:linux: )?test: done`)

// Messages whose timestamps are measured.
const (
	initMsg  = "Run /init as init process"
	calibMsg = "Calibrating delay loop"
)

// parseStamp returns the printk timestamp of a kernel line in nanoseconds
// and the message after it.
func parseStamp(line string) (ns uint64, msg string, ok bool) {
	m := stampRE.FindStringSubmatch(line)
	if m == nil {
		return 0, "", false
	}
	s, err1 := strconv.ParseUint(m[1], 10, 64)
	us, err2 := strconv.ParseUint(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, "", false
	}
	return s*1e9 + us*1e3, m[3], true
}

// median returns the median of xs (the mean of the middle two for an even
// count) and its minimum and maximum; ok is false for no samples.
func median(xs []float64) (med, lo, hi float64, ok bool) {
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1], true
}

// ratio returns nested/direct of two medians; ok is false if either is
// missing or the reference is not positive.
func ratio(nested, direct []float64) (float64, bool) {
	n, _, _, ok1 := median(nested)
	d, _, _, ok2 := median(direct)
	if !ok1 || !ok2 || d <= 0 {
		return 0, false
	}
	return n / d, true
}

// results holds every run of one bench, in the order they ran.
type results struct {
	want    int              // successes wanted per variant and mode
	runs    map[key][]sample // all samples, failures included
	cmds    map[key]string   // the QEMU command line of each
	append_ string           // the guest's kernel command line
	logs    string           // where the runs' logs are
}

type key struct {
	v variant
	m mode
}

// values extracts one figure from the successful samples of v in m.
func (r *results) values(v variant, m mode, f func(sample) (float64, bool)) []float64 {
	var xs []float64
	for _, s := range r.runs[key{v, m}] {
		if !s.ok {
			continue
		}
		if x, ok := f(s); ok {
			xs = append(xs, x)
		}
	}
	return xs
}

func (r *results) failures(v variant, m mode) []sample {
	var fs []sample
	for _, s := range r.runs[key{v, m}] {
		if !s.ok {
			fs = append(fs, s)
		}
	}
	return fs
}

func wallInit(s sample) (float64, bool) { return s.wallInit.Seconds(), s.wallInit > 0 }
func wallDone(s sample) (float64, bool) { return s.wallDone.Seconds(), s.wallDone > 0 }
func stampInit(s sample) (float64, bool) {
	return float64(s.stampInit) / 1e9, s.stampInit > 0
}

func blkWrite(s sample) (float64, bool) { return s.blkWrite, s.blkWrite > 0 }
func blkRead(s sample) (float64, bool)  { return s.blkRead, s.blkRead > 0 }

// initSpan is the kernel clock from "Calibrating delay loop" to "Run
// /init": the same stretch of the boot in both variants.
func initSpan(s sample) (float64, bool) {
	if s.stampCalib == 0 || s.stampInit <= s.stampCalib {
		return 0, false
	}
	return float64(s.stampInit-s.stampCalib) / 1e9, true
}

// cell formats "median (min–max, n)" or "—".
func cell(xs []float64, unit string, prec int) string {
	med, lo, hi, ok := median(xs)
	if !ok {
		return "—"
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	return fmt.Sprintf("%s %s (%s–%s, n=%d)", f(med), unit, f(lo), f(hi), len(xs))
}

func ratioCell(nested, direct []float64) string {
	q, ok := ratio(nested, direct)
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f×", q)
}

// section renders the Markdown section for docs/bench.md.
func (r *results) section() string {
	var b strings.Builder
	b.WriteString("## Linux boot: inside the hypervisor vs. directly under QEMU\n\n")
	fmt.Fprintf(&b, "The same kernel and initramfs (`out/linux`, guest command line `%s`), booted directly by QEMU (the reference) and as the VM `linux` inside the hypervisor, alternating, %d successful runs of each wanted per measure.\n\n", r.append_, r.want)
	b.WriteString("| Measure | Direct (reference) | Inside the hypervisor | Nested / direct |\n|---|---|---|---|\n")
	rows := []struct {
		name string
		m    mode
		f    func(sample) (float64, bool)
		unit string
		prec int
	}{
		{"Wall time, QEMU start to `Run /init as init process`", wall, wallInit, "s", 2},
		{"Wall time, QEMU start to `test: done`", wall, wallDone, "s", 2},
		{"Guest instructions (icount) from `Calibrating delay loop` to `Run /init`", icount, initSpan, "", 3},
		{"Guest kernel clock at `Run /init` under icount (different starts, see below)", icount, stampInit, "", 3},
		{fmt.Sprintf("virtio-blk write, %d MiB of 1 MiB direct writes, guest clock (wall mode)", benchMiB), wall, blkWrite, "MB/s", 1},
		{fmt.Sprintf("virtio-blk read, %d MiB of 1 MiB direct reads, guest clock (wall mode)", benchMiB), wall, blkRead, "MB/s", 1},
	}
	for _, row := range rows {
		d, n := r.values(direct, row.m, row.f), r.values(nested, row.m, row.f)
		unit := row.unit
		if unit == "" {
			unit = "×10⁹"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.name, cell(d, unit, row.prec), cell(n, unit, row.prec), ratioCell(n, d))
	}
	b.WriteString("\nCells are median (min–max, successful runs). ")
	b.WriteString("Wall time runs from QEMU's start, so it includes QEMU's start-up, the firmware and, inside the hypervisor, the hypervisor's own boot and building the VM; it is host time on a shared machine and noisy. ")
	b.WriteString("The icount figures come from the guest kernel's printk timestamps under `-icount shift=0,sleep=off`: the kernel's clock is its TSC, which there advances once per instruction executed on the virtual machine (the TSC counts QEMU's virtual nanoseconds, and the kernel calibrates it at 1000 MHz in both variants). ")
	b.WriteString("Inside the hypervisor that includes every instruction the hypervisor executes for the guest's exits (the host TSC runs on while the VMM handles them) and any its other CPU executes. ")
	b.WriteString("`sleep=off` makes the virtual clock jump to the next timer when every CPU is idle instead of following the host's clock, so idle waits (the same timer waits in both, about 0.75 s before `Run /init`) count as their virtual length and the figure does not depend on the host. ")
	b.WriteString("The kernel's clock does not start at the same point in both: directly it starts on the TSC in `setup_arch` (fast PIT calibration), inside the hypervisor only at `tsc_init` late in `start_kernel` (the early calibration fails and the clock runs on jiffies, then restarts at 0). ")
	b.WriteString("The first icount row therefore measures the same stretch in both, from the `Calibrating delay loop` line (printed right after `tsc_init`) to `Run /init`; the raw timestamp is shown for reference. ")
	b.WriteString("Neither includes the firmware, the kernel's decompression or the hypervisor's own boot. ")
	b.WriteString("The reference machine is made like the VM where QEMU allows: one CPU, no HPET, and the CPU features the VMM's CPUID policy hides (SVM, XSAVE, MONITOR, OSVW, the PMU) turned off. ")
	b.WriteString("Even so the boot's icount ratio is close to 1 and has come out slightly below it: stretches of pure computation (patching alternatives, unpacking the initramfs, which runs in a worker beside the main thread) take fewer virtual nanoseconds inside the hypervisor (fewer or cheaper timer interrupts would do it; not verified), so the differences between the two virtual platforms outweigh the cost of the boot's exits, and this ratio is not the VMM's overhead. ")
	b.WriteString("The virtio-blk rows are what the VMM's device path costs: `/test` writes and then reads the disk in 1 MiB direct requests (`dd oflag=direct`/`iflag=direct`, past the page cache) and times each pass on the kernel's monotonic clock; both disks are in host RAM (the VM's is, and the reference's image is opened with `cache=unsafe`), so the ratio is QEMU's virtio-blk against the hypervisor's. They are not given under icount: QEMU completes the reference's disk requests on host threads in host time while the idle guest's virtual clock jumps ahead (`sleep=off`), so a virtual-time rate there measures the host's I/O latency, not the device path (the runs gave anything from 2 to 500 MB/s).\n\n")
	b.WriteString("Commands (logs in `" + r.logs + "`):\n\n")
	for _, k := range []key{{direct, wall}, {nested, wall}, {direct, icount}, {nested, icount}} {
		fmt.Fprintf(&b, "- %s, %s: `%s`\n", k.v, k.m, r.cmds[k])
	}
	var fails []string
	for _, k := range []key{{direct, wall}, {nested, wall}, {direct, icount}, {nested, icount}} {
		all := r.runs[k]
		fs := r.failures(k.v, k.m)
		if len(fs) > 0 {
			fails = append(fails, fmt.Sprintf("- %s, %s: %d of %d runs failed", k.v, k.m, len(fs), len(all)))
			for _, s := range fs {
				fails = append(fails, "  - "+strings.ReplaceAll(s.reason, "|", `\|`))
			}
		}
	}
	if len(fails) == 0 {
		b.WriteString("\nNo run failed.\n")
	} else {
		b.WriteString("\nFailed runs (counted, not used in the figures):\n\n")
		b.WriteString(strings.Join(fails, "\n") + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
