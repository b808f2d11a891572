// Command netbench measures TCP throughput over virtio-net through QEMU's
// user network, for the same Debian kernel and initramfs booted directly by
// QEMU (the reference) and inside the hypervisor, where the guest's
// virtio-net is on the switch bridged to the host NIC (devices/hostnet).
// It writes a Markdown section for docs/bench.md.
//
// The guest's /test (tools/mkinitramfs/test-default.sh, hv.dhcp and
// hv.netbench=<sink>,<source>,<MiB>) takes a DHCP lease, then sends MiB
// MiB to the sink port on the host's loopback (slirp reaches it at the
// gateway's address, 10.0.2.2) and reads the source port to its end.
// netbench listens on both: transmit throughput is the bytes the sink got
// over the time from its accept to the end of the stream; receive
// throughput is the bytes the source sent over the time from its accept to
// the guest's line saying how many bytes it read.
//
// Usage:
//
//	netbench [-image out/hv] [-linux out/linux] [-n 3] [-mib 8] -o FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"hv/tools/emu"
	"hv/tools/emurun"
	"hv/tools/marker"
)

// guestAppend is the guest's command line without the benchmark's ports.
const guestAppend = "console=ttyS0 panic=-1 nokaslr hv.dhcp"

var (
	rxLine   = regexp.MustCompile(`netbench: rx (\d+) bytes`)
	nicStats = regexp.MustCompile(`^hv: host nic .*: rx \d+ frames`)
	broken   = marker.Patterns(`(Kernel panic|BUG: |Oops|general protection)`, `^hv: error: `, `stopped`,
		`^panic: `, `^fatal error: `, `test: .*FAILED`, `dhcp (leasefail|nak)`)
)

func main() {
	image := flag.String("image", "out/hv", "the hypervisor's bootable image")
	linux := flag.String("linux", "out/linux", "`directory` with vmlinuz and initramfs.cpio.gz (make linux-files)")
	out := flag.String("o", "", "write the Markdown section to this `file`")
	logs := flag.String("logs", "out/bench-logs", "`directory` for the runs' logs")
	n := flag.Int("n", 3, "successful runs wanted of each variant")
	retries := flag.Int("retries", 6, "failed runs allowed per variant beyond -n")
	mib := flag.Int("mib", 8, "MiB to send each way")
	qemuLog := flag.Bool("qemu-log", false, "have QEMU log CPU resets and guest errors to <logs>/<run>.qemu.log (diagnosis)")
	flag.Parse()
	if *out == "" || *mib < 1 {
		fmt.Fprintln(os.Stderr, "usage: netbench [-image IMAGE] [-linux DIR] [-n N] [-mib MiB] -o FILE")
		os.Exit(2)
	}
	kernel, initrd := filepath.Join(*linux, "vmlinuz"), filepath.Join(*linux, "initramfs.cpio.gz")
	for _, f := range []string{*image, kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "netbench: %v (make image linux-files)\n", err)
			os.Exit(1)
		}
	}
	work, err := os.MkdirTemp("", "netbench")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(work)
	b := bench{image: *image, kernel: kernel, initrd: initrd, work: work, logs: *logs, mib: *mib, qemuLog: *qemuLog}
	res := map[variant][]sample{}
	cmds := map[variant]string{}
	for round := 0; ; round++ {
		ran := false
		for _, v := range []variant{direct, nested} {
			ok := 0
			for _, s := range res[v] {
				if s.err == nil {
					ok++
				}
			}
			if ok >= *n || len(res[v]) >= *n+*retries {
				continue
			}
			ran = true
			s, cmd := b.run(fmt.Sprintf("net-%s-%d", v, round), v)
			cmds[v] = cmd
			if s.err != nil {
				fmt.Fprintf(os.Stderr, "netbench: %s round %d: FAILED: %v\n", v, round, s.err)
			} else {
				fmt.Fprintf(os.Stderr, "netbench: %s round %d: tx %.2f MiB/s, rx %.2f MiB/s\n", v, round, s.tx, s.rx)
			}
			res[v] = append(res[v], s)
		}
		if !ran {
			break
		}
	}
	if err := os.WriteFile(*out, []byte(section(res, cmds, *mib)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "netbench:", err)
		os.Exit(1)
	}
}

type variant string

const (
	direct variant = "direct"
	nested variant = "hv"
)

// sample is one run: MiB/s each way.
type sample struct {
	tx, rx float64
	err    error
}

type bench struct {
	image, kernel, initrd, work, logs string
	mib                               int
	qemuLog                           bool
}

// machine returns the QEMU machine of a variant for the given guest
// command line: the direct one boots the kernel with a modern virtio-net
// NIC on the user network, 256 MiB and one CPU as the VM has; the nested
// one is tools/hvtest's uplink machine with a generated config file. Both
// run single-threaded TCG, as the test runs do (QEMU 7.2's multi-threaded
// TCG loses the nested guest's translations, docs/testing.md).
func (b bench) machine(v variant, appendLine string) (emu.QEMU, error) {
	if v == direct {
		return emu.QEMU{CPU: "EPYC", MemMiB: 256, SMP: 1, Kernel: b.kernel, Append: appendLine, UserNIC: true, SingleThreadTCG: true,
			Extra: []string{"-initrd", b.initrd}}, nil
	}
	conf := filepath.Join(b.work, "netbench.conf")
	text := fmt.Sprintf("vm linux\n\tmemory 256\n\tkernel vmlinuz\n\tinitrd initramfs.cpio.gz\n\tcmdline %q\n\tnic uplink\n", appendLine)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return emu.QEMU{}, err
	}
	return emu.QEMU{CPU: "EPYC", MemMiB: 1024, SMP: 2, Kernel: b.image, Append: "config=netbench.conf", UserNIC: true, SingleThreadTCG: true,
		Extra: []string{"-initrd", b.kernel + "," + b.initrd + "," + conf}}, nil
}

// run boots one machine and measures both directions.
func (b bench) run(name string, v variant) (sample, string) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{err: err}, ""
	}
	defer sink.Close()
	source, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return sample{err: err}, ""
	}
	defer source.Close()
	port := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
	line := fmt.Sprintf("%s hv.netbench=%d,%d,%d", guestAppend, port(sink), port(source), b.mib)
	q, err := b.machine(v, line)
	if err != nil {
		return sample{err: err}, ""
	}
	if b.qemuLog {
		q.Extra = append(q.Extra, "-d", "cpu_reset,guest_errors", "-D", filepath.Join(b.logs, name+".qemu.log"))
	}
	cmd := strings.ReplaceAll(q.Command(), strconv.Itoa(port(sink))+","+strconv.Itoa(port(source)), "SINK,SOURCE")
	cmd = strings.ReplaceAll(cmd, b.work+string(filepath.Separator), "")
	total := int64(b.mib) << 20

	var mu sync.Mutex
	var txBytes int64
	var txTime time.Duration
	var rxStart, rxEnd time.Time
	var rxGot string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the guest's transmit: count to the end of the stream
		defer wg.Done()
		c, err := sink.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		t0 := time.Now()
		n, _ := io.Copy(io.Discard, c)
		mu.Lock()
		txBytes, txTime = n, time.Since(t0)
		mu.Unlock()
	}()
	go func() { // the guest's receive: send total bytes and close
		defer wg.Done()
		c, err := source.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		mu.Lock()
		rxStart = time.Now()
		mu.Unlock()
		buf := make([]byte, 64<<10)
		for left := total; left > 0; left -= int64(len(buf)) {
			if _, err := c.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				return
			}
		}
	}()
	spec := marker.Spec{Expect: marker.Patterns(`test: dhcp bound eth0`, `netbench: tx done`), Forbid: broken, Done: rxLine}
	if v == nested {
		// Wait for the host NIC's counters, printed after the power-off.
		spec.Expect, spec.Done = append(spec.Expect, rxLine), nicStats
	}
	res := emurun.Run(context.Background(), emurun.Job{Name: name, QEMU: &q, Spec: spec, Timeout: 6 * time.Minute, LogDir: b.logs,
		OnLine: func(l string) {
			if nicStats.MatchString(l) {
				fmt.Fprintf(os.Stderr, "netbench: %s: %s\n", name, strings.TrimPrefix(l, "hv: "))
			}
			if m := rxLine.FindStringSubmatch(l); m != nil {
				mu.Lock()
				if rxEnd.IsZero() {
					rxEnd, rxGot = time.Now(), m[1]
				}
				mu.Unlock()
			}
		}})
	sink.Close()
	source.Close()
	wg.Wait()
	if !res.Verdict.Pass {
		return sample{err: fmt.Errorf("%s (log %s)", res.Verdict.Reason, res.SerialLog)}, cmd
	}
	if rxGot != strconv.FormatInt(total, 10) || txBytes != total || rxStart.IsZero() {
		return sample{err: fmt.Errorf("guest read %q bytes, host sink got %d, want %d each way", rxGot, txBytes, total)}, cmd
	}
	mibs := func(d time.Duration) float64 { return float64(b.mib) / d.Seconds() }
	return sample{tx: mibs(txTime), rx: mibs(rxEnd.Sub(rxStart))}, cmd
}

// section renders the results: the median and range of each figure and the
// ratio of the hypervisor's to the direct boot's.
func section(res map[variant][]sample, cmds map[variant]string, mib int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## virtio-net throughput (issue 4)\n\n")
	fmt.Fprintf(&b, "TCP over QEMU's user network (slirp) to the host's loopback, %d MiB each way, QEMU TCG. "+
		"Direct: QEMU boots the Debian kernel itself, its virtio-net-pci NIC on the user network. "+
		"hv: the same kernel in a VM whose virtio-net is on the switch bridged to the host NIC, which the hypervisor drives by polling "+
		"(guest virtio-net → switch → host virtio-net-pci → slirp); its netbench.conf is one `vm linux` block with 256 MiB, the kernel, the initramfs, "+
		"the same guest command line and `nic uplink`. tx is the guest sending (bytes over the time from the host's accept to the end of the stream), "+
		"rx the guest receiving (from the host's accept to the guest's line saying it read them all). Wall-clock figures on a shared 2-core machine: noisy.\n\n", mib)
	fmt.Fprintf(&b, "| Variant | tx MiB/s | rx MiB/s | Runs | Reproduce |\n|---|---|---|---|---|\n")
	med := map[variant][2]float64{}
	for _, v := range []variant{direct, nested} {
		var tx, rx []float64
		failed := 0
		for _, s := range res[v] {
			if s.err != nil {
				failed++
				continue
			}
			tx, rx = append(tx, s.tx), append(rx, s.rx)
		}
		mt, mr := median(tx), median(rx)
		med[v] = [2]float64{mt, mr}
		runs := fmt.Sprintf("%d", len(tx))
		if failed > 0 {
			runs += fmt.Sprintf(" (%d failed)", failed)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", v, spread(tx, mt), spread(rx, mr), runs, cmds[v])
	}
	if d, h := med[direct], med[nested]; d[0] > 0 && d[1] > 0 && h[0] > 0 {
		fmt.Fprintf(&b, "\nRatio hv / direct (medians): tx %.2f, rx %.2f. Reproduce all: `make bench-net`.\n\n", h[0]/d[0], h[1]/d[1])
	} else {
		fmt.Fprintf(&b, "\nNo ratio: a variant has no successful run. Reproduce: `make bench-net`.\n\n")
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func spread(v []float64, m float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (%.2f to %.2f)", m, slices.Min(v), slices.Max(v))
}
