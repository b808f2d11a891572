// Command hvtest boots the hypervisor image under QEMU and Bochs in every
// configuration of its table, judges each run by its serial console markers,
// and prints one line per run and a closing "N passed, N failed" line.
//
// It builds the per-command-line ISOs and PXE directories it needs from the
// image (make builds the image). See docs/testing.md.
//
// Usage:
//
//	hvtest [-image out/hv] [-logs out/test-logs] [-j 2] [-run REGEXP] [-list] [-keep] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"hv/tools/bootmedia"
	"hv/tools/emu"
	"hv/tools/emurun"
	"hv/tools/marker"
)

type options struct {
	image, logs, ovmf, work, pxeserver, busybox string
	jobs                                        int
	keep, verbose, kvm                          bool
	filter                                      *regexp.Regexp
}

func main() {
	var o options
	var filter string
	var list bool
	flag.StringVar(&o.image, "image", "out/hv", "the bootable image (make image)")
	flag.StringVar(&o.logs, "logs", "out/test-logs", "`directory` for the logs of failed runs")
	flag.StringVar(&o.ovmf, "ovmf", "/usr/share/ovmf/OVMF.fd", "UEFI firmware for the UEFI runs")
	flag.StringVar(&o.pxeserver, "pxeserver", "out/bin/pxeserver", "the PXE server of the netboot runs (make out/bin/pxeserver)")
	flag.StringVar(&o.busybox, "busybox", "out/linux/busybox", "a busybox with udhcpd, the lab DHCP server of the proxyDHCP run (make linux-files)")
	flag.IntVar(&o.jobs, "j", 2, "emulators to run at once")
	flag.StringVar(&filter, "run", "", "only runs whose name matches this `regexp`")
	flag.BoolVar(&list, "list", false, "list the runs and exit")
	flag.BoolVar(&o.keep, "keep", false, "keep the logs of passing runs too")
	flag.BoolVar(&o.verbose, "v", false, "print every console line, prefixed with the run's name")
	flag.BoolVar(&o.kvm, "kvm", false, "run the QEMU machines with -accel kvm -cpu host (nested SVM/VMX must be on)")
	flag.Parse()
	re, err := regexp.Compile(filter)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hvtest: -run:", err)
		os.Exit(2)
	}
	o.filter = re
	var runs []run
	for _, r := range table() {
		// Opt-in runs only run when -run names them.
		if o.filter.MatchString(r.name) && (!r.optIn || filter != "") {
			runs = append(runs, r)
		}
	}
	if list {
		for _, r := range runs {
			fmt.Printf("%-28s %-28s %q\n", r.name, machine(r), r.cmdline)
		}
		return
	}
	if len(runs) == 0 {
		fmt.Fprintf(os.Stderr, "hvtest: no run matches %q\n", filter)
		os.Exit(2)
	}
	// Interrupted or terminated, the runner still stops its emulators and
	// removes the network namespaces it made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := runAll(ctx, o, runs, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hvtest:", err)
		os.Exit(2)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func machine(r run) string {
	switch r.boot {
	case bootBochs:
		return fmt.Sprintf("bochs %s x%d", r.bochs.Model, max(r.bochs.Count, 1))
	case bootISOBIOS:
		return "qemu iso bios"
	case bootISOUEFI:
		return "qemu iso uefi"
	case bootPXE:
		return "qemu ipxe"
	case bootNetboot:
		fw := "bios ipxe-rom"
		if r.net.uefi {
			fw = "uefi"
		}
		if r.net.firmwarePXE {
			fw += " firmware-pxe"
		}
		if r.net.proxy {
			fw += " proxydhcp"
		}
		return "qemu netns " + fw
	}
	return "qemu -kernel"
}

// runAll prepares boot media, runs everything at most o.jobs at a time,
// reports each result as it comes and returns the number of failures.
func runAll(ctx context.Context, o options, runs []run, out io.Writer) (int, error) {
	if _, err := os.Stat(o.image); err != nil {
		return 0, fmt.Errorf("image: %w (run make image)", err)
	}
	work, err := os.MkdirTemp("", "hvtest-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	o.work = work
	media, err := prepareMedia(ctx, o, runs)
	if err != nil {
		return 0, err
	}

	// Longest first, so the slow Bochs runs do not end up alone at the end.
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].timeout > runs[j].timeout })

	var (
		mu             sync.Mutex
		passed, failed int
		wg             sync.WaitGroup
	)
	slots := make(chan struct{}, max(o.jobs, 1))
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			j := job(o, r, media)
			var server *netns
			if r.boot == bootNetboot {
				var err error
				serverLog := filepath.Join(o.logs, r.name+".pxe.log")
				os.MkdirAll(o.logs, 0o755)
				server, err = startNetboot(ctx, *r.net, netbootTools{pxeserver: absPath(o.pxeserver), busybox: absPath(o.busybox)}, media[keyOf(r)], serverLog)
				if err == nil {
					j.Wrap = server.wrap()
				} else {
					if server != nil {
						server.close()
					}
					mu.Lock()
					report(out, emurun.Result{Name: r.name, Verdict: marker.Verdict{Decided: true, Reason: "network: " + err.Error()},
						SerialLog: serverLog}, o.keep)
					failed++
					mu.Unlock()
					return
				}
			}
			if o.verbose {
				j.OnLine = func(l string) {
					mu.Lock()
					fmt.Fprintf(out, "%s| %s\n", r.name, l)
					mu.Unlock()
				}
			}
			res := emurun.Run(ctx, j)
			if server != nil {
				if err := server.close(); err != nil {
					mu.Lock()
					fmt.Fprintf(out, "WARN %s: cleaning up its network: %v\n", r.name, err)
					mu.Unlock()
				}
				appendFile(res.EmuLog, server.log.Name(), "network servers' log")
				os.Remove(server.log.Name())
			}
			mu.Lock()
			defer mu.Unlock()
			if report(out, res, o.keep) {
				passed++
			} else {
				failed++
			}
		}()
	}
	wg.Wait()
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
	return failed, nil
}

// media maps a boot kind and command line to a prepared ISO or PXE dir.
type mediaKey struct {
	pxe     bool
	cmdline string
	modules string // the run's modules, joined by newlines
}

func keyOf(r run) mediaKey {
	return mediaKey{pxe: r.boot == bootPXE || r.boot == bootNetboot, cmdline: r.cmdline, modules: strings.Join(r.modules, "\n")}
}

func prepareMedia(ctx context.Context, o options, runs []run) (map[mediaKey]string, error) {
	media := map[mediaKey]string{}
	for _, r := range runs {
		if r.boot == bootKernel {
			continue
		}
		k := keyOf(r)
		if _, ok := media[k]; ok {
			continue
		}
		p := filepath.Join(o.work, fmt.Sprintf("media%d", len(media)))
		if k.pxe {
			if _, err := bootmedia.MakePXE(ctx, p, o.image, r.cmdline, bootmedia.DefaultPXE, r.modules...); err != nil {
				return nil, err
			}
		} else {
			p += ".iso"
			if err := bootmedia.MakeISO(ctx, o.image, r.cmdline, p, r.modules...); err != nil {
				return nil, err
			}
		}
		media[k] = p
	}
	return media, nil
}

// job turns a table row into an emurun.Job with its boot source.
func job(o options, r run, media map[mediaKey]string) emurun.Job {
	j := emurun.Job{Name: r.name, Spec: r.spec, Timeout: r.timeout, LogDir: o.logs, Input: r.input}
	if r.boot == bootBochs {
		b := r.bochs
		b.ISO = media[keyOf(r)]
		j.Bochs = &b
		return j
	}
	q := r.qemu
	if o.kvm && r.boot != bootISOUEFI && (r.net == nil || !r.net.uefi) {
		q.Accel, q.CPU = "kvm", kvmCPU(q.CPU)
	}
	switch r.boot {
	case bootKernel:
		q.Kernel, q.Append = o.image, r.cmdline
	case bootISOBIOS:
		q.CDROM = media[keyOf(r)]
	case bootISOUEFI:
		q.CDROM, q.Firmware = media[keyOf(r)], o.ovmf
	case bootPXE:
		q.Netboot = &emu.Netboot{TFTPDir: media[keyOf(r)], BootFile: "boot.ipxe"}
	case bootNetboot:
		q.Netboot = &emu.Netboot{TAP: netbootTAP, NoROM: r.net.firmwarePXE}
		if r.net.uefi {
			q.Firmware = o.ovmf
		}
	}
	j.QEMU = &q
	return j
}

// kvmCPU keeps a run's CPU feature removals under KVM: "qemu64,-svm" becomes
// "host,-svm".
func kvmCPU(cpu string) string {
	if i := strings.IndexByte(cpu, ','); i >= 0 {
		return "host" + cpu[i:]
	}
	return "host"
}

// tailLines is how much of a failed run's console is printed.
const tailLines = 40

// report prints a run's line (and on failure the end of its console) and
// removes the logs of a passing run unless asked to keep them.
func report(out io.Writer, res emurun.Result, keep bool) bool {
	secs := res.Elapsed.Round(100 * time.Millisecond).Seconds()
	if res.Verdict.Pass {
		fmt.Fprintf(out, "PASS %s (%.1fs)\n", res.Name, secs)
		if !keep {
			os.Remove(res.SerialLog)
			os.Remove(res.EmuLog)
		}
		return true
	}
	fmt.Fprintf(out, "FAIL %s: %s (%.1fs) (log: %s)\n", res.Name, res.Verdict.Reason, secs, res.SerialLog)
	tail, from := lastLines(res.SerialLog, tailLines), res.SerialLog
	if len(tail) == 0 {
		tail, from = lastLines(res.EmuLog, tailLines), res.EmuLog
	}
	if len(tail) > 0 {
		fmt.Fprintf(out, "    --- last %d lines of %s\n", len(tail), from)
		for _, l := range tail {
			fmt.Fprintf(out, "    | %s\n", l)
		}
	}
	return false
}

// lastLines returns the last n cleaned lines of a file.
func lastLines(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = marker.Clean(l)
	}
	return lines
}
