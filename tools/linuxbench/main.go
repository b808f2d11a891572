// Command linuxbench measures the Linux guest's boot to /init inside the
// hypervisor against the same kernel and initramfs booted directly by QEMU
// (the reference), alternating the two in one invocation, in wall time
// under TCG and in guest instructions under -icount, and writes a Markdown
// section for docs/bench.md.
//
// Usage:
//
//	linuxbench [-image out/hv] [-linux out/linux] [-n 3] -o FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"hv/tools/emu"
	"hv/tools/emurun"
	"hv/tools/marker"
)

// guestAppend is the guest's kernel command line in both variants, as in
// tools/hvtest's qemu-linux-svm run.
// hv.bench=N makes the guest's /test measure virtio-blk throughput over N
// MiB after the boot (which it does not change).
const guestAppend = "console=ttyS0 panic=-1 nokaslr earlyprintk=serial,ttyS0 hv.bench=" + benchMiBText

// benchMiB is the size of the guest's throughput measurement.
const (
	benchMiB     = 32
	benchMiBText = "32"
)

func main() {
	image := flag.String("image", "out/hv", "the hypervisor's bootable image")
	linux := flag.String("linux", "out/linux", "`directory` with vmlinuz and initramfs.cpio.gz (make linux-files)")
	out := flag.String("o", "", "write the Markdown section to this `file`")
	logs := flag.String("logs", "out/bench-logs", "`directory` for the runs' logs")
	n := flag.Int("n", 3, "successful runs wanted of each variant and measure")
	retries := flag.Int("retries", 3, "failed runs allowed per variant and measure beyond -n")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: linuxbench [-image IMAGE] [-linux DIR] [-n N] -o FILE")
		os.Exit(2)
	}
	kernel, initrd := filepath.Join(*linux, "vmlinuz"), filepath.Join(*linux, "initramfs.cpio.gz")
	for _, f := range []string{*image, kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "linuxbench: %v (make image linux-files)\n", err)
			os.Exit(1)
		}
	}
	disk := filepath.Join(*linux, "disk.img")
	if err := ensureDisk(disk); err != nil {
		fmt.Fprintln(os.Stderr, "linuxbench:", err)
		os.Exit(1)
	}
	r := measure(context.Background(), machines(*image, kernel, initrd, disk), max(*n, 1), max(*retries, 0), *logs)
	if err := os.WriteFile(*out, []byte(r.section()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "linuxbench:", err)
		os.Exit(1)
	}
}

// ensureDisk creates the direct run's 64 MiB virtio disk if it is missing
// (make linux-direct uses the same file).
func ensureDisk(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return f.Truncate(64 << 20)
	}
	return nil
}

// directCPU is the reference machine's CPU: EPYC without what the VMM's
// CPUID policy hides from its guests (vmm/cpuid.go: SVM, XSAVE, MONITOR,
// OSVW, the PMU) so that the kernel takes the same paths in both variants.
const directCPU = "EPYC,-svm,-xsave,-monitor,-osvw,pmu=off"

// machines returns the QEMU machine of each variant and mode. The direct
// one is make linux-direct's (virtio disk, NIC and console on PCI) with the
// VM's 256 MiB, one CPU, no HPET (the VM has none) and directCPU; the
// nested one is tools/hvtest's linuxQEMU.
func machines(image, kernel, initrd, disk string) map[key]emu.QEMU {
	icountArgs := []string{"-icount", "shift=0,sleep=off"}
	d := emu.QEMU{CPU: directCPU, MemMiB: 256, SMP: 1, Kernel: kernel, Append: guestAppend, Extra: []string{
		"-machine", "pc,hpet=off",
		"-initrd", initrd,
		// cache=unsafe: the VM's disk is host RAM, so the reference's
		// flushes must not wait for the host's disk either.
		"-drive", "file=" + disk + ",format=raw,if=none,id=d0,cache=unsafe", "-device", "virtio-blk-pci,drive=d0",
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0", "-device", "virtio-serial-pci",
	}}
	// Single-threaded TCG, as the test runs (docs/testing.md); -icount
	// implies it anyway.
	hv := emu.QEMU{CPU: "EPYC", MemMiB: 1024, SMP: 2, SingleThreadTCG: true, Kernel: image,
		Append: `vm=linux kernel=vmlinuz initrd=initramfs.cpio.gz append="` + guestAppend + `"`,
		Extra:  []string{"-initrd", kernel + "," + initrd}}
	di, hi := d, hv
	di.Extra = append(append([]string{}, d.Extra...), icountArgs...)
	hi.Extra = append(append([]string{}, hv.Extra...), icountArgs...)
	return map[key]emu.QEMU{{direct, wall}: d, {nested, wall}: hv, {direct, icount}: di, {nested, icount}: hi}
}

var broken = marker.Patterns(`(Kernel panic|BUG: |Oops|general protection)`, `^hv: error: `, `^hv: vm linux: .*stopped`,
	`^panic: `, `^fatal error: `)

// measure alternates direct and nested runs, wall then icount, until each
// has n successes or n+retries attempts.
func measure(ctx context.Context, qs map[key]emu.QEMU, n, retries int, logs string) *results {
	r := &results{want: n, runs: map[key][]sample{}, cmds: map[key]string{}, append_: guestAppend, logs: logs}
	order := []key{{direct, wall}, {nested, wall}, {direct, icount}, {nested, icount}}
	for _, k := range order {
		r.cmds[k] = qs[k].Command()
	}
	for round := 0; ; round++ {
		ran := false
		for _, k := range order {
			all := r.runs[k]
			if len(all)-len(r.failures(k.v, k.m)) >= n || len(all) >= n+retries {
				continue
			}
			ran = true
			name := fmt.Sprintf("linux-%s-%s-%d", k.v, k.m, round)
			s := runOne(ctx, name, qs[k], logs)
			status := "ok"
			if !s.ok {
				status = "FAILED: " + s.reason
			}
			fmt.Fprintf(os.Stderr, "linuxbench: %s: init %.2fs done %.2fs stamp %d calib %d %s\n", name,
				s.wallInit.Seconds(), s.wallDone.Seconds(), s.stampInit, s.stampCalib, status)
			r.runs[k] = append(r.runs[k], s)
		}
		if !ran {
			return r
		}
	}
}

func runOne(ctx context.Context, name string, q emu.QEMU, logs string) sample {
	var s sample
	spec := marker.Spec{Expect: []*regexp.Regexp{regexp.MustCompile(`Run /init as init process`)}, Forbid: broken, Done: doneRE}
	start := time.Now()
	res := emurun.Run(ctx, emurun.Job{Name: name, QEMU: &q, Spec: spec, Timeout: 5 * time.Minute, LogDir: logs,
		OnLine: func(l string) {
			at := time.Since(start)
			if doneRE.MatchString(l) && s.wallDone == 0 {
				s.wallDone = at
			}
			if op, mbps, ok := parseBench(l); ok {
				if op == "write" {
					s.blkWrite = mbps
				} else {
					s.blkRead = mbps
				}
			}
			ns, msg, ok := parseStamp(l)
			switch {
			case !ok:
			case strings.HasPrefix(msg, initMsg) && s.wallInit == 0:
				s.wallInit, s.stampInit = at, ns
			case strings.HasPrefix(msg, calibMsg) && s.stampCalib == 0:
				s.stampCalib = ns
			}
		}})
	if !res.Verdict.Pass {
		s.reason = fmt.Sprintf("%s: %s (log %s)", name, res.Verdict.Reason, res.SerialLog)
		return s
	}
	s.ok = true
	return s
}
