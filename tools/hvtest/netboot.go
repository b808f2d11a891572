package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// netboot is how a bootNetboot run reaches the network: network
// namespaces of its own, a TAP device for QEMU, tools/pxeserver, and QEMU
// started inside the namespace with the TAP. No packet leaves them.
//
// By default one namespace holds the TAP with the server's address and the
// server hands out addresses itself (-range). With proxy, the lab's usual
// set-up is built: in QEMU's namespace a bridge holds the TAP and busybox
// udhcpd hands out addresses (and no boot options), and the PXE server
// runs in a second namespace, on a veth pair into that bridge, as
// proxyDHCP.
type netboot struct {
	// uefi boots OVMF; otherwise SeaBIOS.
	uefi bool
	// firmwarePXE takes the NIC's iPXE ROM away, so that the firmware's
	// own PXE client boots and must chain into iPXE (ipxe.efi from TFTP,
	// as a lab server's UEFI does); otherwise the ROM is iPXE already.
	firmwarePXE bool
	// proxy runs the PXE server as proxyDHCP beside a plain DHCP server.
	proxy bool
}

// The network: the DHCP server's address and the addresses it hands out;
// with proxy the PXE server has its own address.
const (
	netbootTAP    = "tap0"
	netbootAddr   = "10.33.0.1/24"
	netbootRange  = "10.33.0.100-10.33.0.199"
	proxyAddr     = "10.33.0.2/24"
	netnsPrefix   = "hvtest-"
	serverStartup = 20 * time.Second
)

var netnsSeq atomic.Int64

// netns is the network of one run, with its servers running.
type netns struct {
	name    string   // QEMU's namespace
	names   []string // every namespace made, QEMU's first
	daemons []*daemon
	log     *os.File
	work    string // udhcpd's files
}

// daemon is a server running in a namespace.
type daemon struct {
	cmd  *exec.Cmd
	done chan error // its exit
}

// ip runs one ip(8) command.
func ip(ctx context.Context, args ...string) error {
	b, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// netbootTools are the programs a netboot run starts.
type netbootTools struct {
	pxeserver string // tools/pxeserver
	busybox   string // a busybox with udhcpd, for proxy
}

// startNetboot makes the run's network and starts its servers, the PXE
// server serving dir; their output goes to logPath. On any error nothing
// is left behind.
func startNetboot(ctx context.Context, nb netboot, tools netbootTools, dir, logPath string) (n *netns, err error) {
	if _, err := os.Stat(tools.pxeserver); err != nil {
		return nil, fmt.Errorf("pxe server: %w (make out/bin/pxeserver)", err)
	}
	if nb.proxy {
		if _, err := os.Stat(tools.busybox); err != nil {
			return nil, fmt.Errorf("busybox for udhcpd: %w (make linux-files)", err)
		}
	}
	removeStaleNetns(ctx)
	n = &netns{name: fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.log, err = os.Create(logPath); err != nil {
		return n, err
	}
	add := func(name string) error {
		if err := ip(ctx, "netns", "add", name); err != nil {
			return err
		}
		n.names = append(n.names, name)
		return ip(ctx, "-n", name, "link", "set", "lo", "up")
	}
	in := func(ns string, cmds ...[]string) error {
		for _, c := range cmds {
			if err := ip(ctx, append([]string{"-n", ns}, c...)...); err != nil {
				return err
			}
		}
		return nil
	}
	if err := add(n.name); err != nil {
		return n, err
	}
	if err := in(n.name, []string{"tuntap", "add", "dev", netbootTAP, "mode", "tap"}); err != nil {
		return n, err
	}
	if !nb.proxy {
		if err := in(n.name, []string{"addr", "add", netbootAddr, "dev", netbootTAP}, []string{"link", "set", netbootTAP, "up"}); err != nil {
			return n, err
		}
		return n, n.start(ctx, n.name, "pxeserver", "ready: ", tools.pxeserver,
			"-iface", netbootTAP, "-dir", dir, "-range", netbootRange)
	}

	pxeNS := n.name + "-pxe"
	if err := add(pxeNS); err != nil {
		return n, err
	}
	if err := in(n.name,
		[]string{"link", "add", "br0", "type", "bridge"},
		[]string{"addr", "add", netbootAddr, "dev", "br0"},
		[]string{"link", "set", "br0", "up"},
		[]string{"link", "set", netbootTAP, "master", "br0", "up"},
		[]string{"link", "add", "vlab", "type", "veth", "peer", "name", "vpxe", "netns", pxeNS},
		[]string{"link", "set", "vlab", "master", "br0", "up"}); err != nil {
		return n, err
	}
	if err := in(pxeNS, []string{"addr", "add", proxyAddr, "dev", "vpxe"}, []string{"link", "set", "vpxe", "up"}); err != nil {
		return n, err
	}
	if n.work, err = os.MkdirTemp("", "hvtest-udhcpd-"); err != nil {
		return n, err
	}
	first, last, _ := strings.Cut(netbootRange, "-")
	conf := filepath.Join(n.work, "udhcpd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("start %s\nend %s\ninterface br0\nmax_leases 100\n"+
		"lease_file %s\npidfile %s\noption subnet 255.255.255.0\noption lease 3600\n",
		first, last, filepath.Join(n.work, "leases"), filepath.Join(n.work, "pid"))), 0o644); err != nil {
		return n, err
	}
	// udhcpd says "started" before it binds its socket; a DHCP client
	// that comes too early retransmits, and QEMU starts after the PXE
	// server anyway.
	if err := n.start(ctx, n.name, "udhcpd", "udhcpd: started", tools.busybox, "udhcpd", "-f", conf); err != nil {
		return n, err
	}
	return n, n.start(ctx, pxeNS, "pxeserver", "ready: ", tools.pxeserver,
		"-iface", "vpxe", "-dir", dir, "-proxy")
}

// start runs a server inside namespace ns and waits for the line that says
// it is ready; its output goes to the log, prefixed with name.
func (n *netns) start(ctx context.Context, ns, name, readyLine, bin string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	// The server dies with the runner, even when the runner is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = n.log
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	fmt.Fprintf(n.log, "$ %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1)}
	n.daemons = append(n.daemons, d)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(n.log, sc.Text())
			if !seen && strings.Contains(sc.Text(), readyLine) {
				seen = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		d.done <- cmd.Wait()
	}()
	select {
	case <-ready:
		return nil
	case err := <-d.done:
		d.done <- err
		return fmt.Errorf("%s ended before it was ready (%v); its log: %s", name, err, n.log.Name())
	case <-time.After(serverStartup):
		return fmt.Errorf("%s not ready after %v; its log: %s", name, serverStartup, n.log.Name())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wrap is the command that runs QEMU inside its namespace.
func (n *netns) wrap() []string { return []string{"ip", "netns", "exec", n.name} }

// close stops the servers and removes the namespaces (with their devices);
// it is safe on a partly made netns.
func (n *netns) close() error {
	for _, d := range n.daemons {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	if n.log != nil {
		n.log.Close()
	}
	if n.work != "" {
		os.RemoveAll(n.work)
	}
	var first error
	for _, name := range n.names {
		killNetnsPids(name)
		// Without a context: the namespaces go even when the run was
		// interrupted.
		if err := ip(context.Background(), "netns", "del", name); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// killNetnsPids kills what still runs in a namespace of ours.
func killNetnsPids(name string) {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeStaleNetns removes the namespaces (and kills the processes in them)
// that a runner which is gone (killed before it could clean up) left: they
// are named after its process id.
func removeStaleNetns(ctx context.Context) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], netnsPrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], netnsPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			killNetnsPids(f[0])
			ip(ctx, "netns", "del", f[0])
		}
	}
}

// appendFile appends a titled copy of src to dst (the server's log to the
// emulator's).
func appendFile(dst, src, title string) {
	b, err := os.ReadFile(src)
	if err != nil {
		return
	}
	f, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- %s\n%s", title, b)
}

// absPath makes a path absolute, for a command that runs elsewhere.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
