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

// netboot is how a bootNetboot run reaches the network: its own network
// namespace, a TAP device in it with the server's address, tools/pxeserver
// on that TAP handing out addresses and the PXE directory, and QEMU on the
// TAP, started inside the namespace. No packet leaves the namespace.
type netboot struct {
	// uefi boots OVMF; otherwise SeaBIOS.
	uefi bool
	// firmwarePXE takes the NIC's iPXE ROM away, so that the firmware's
	// own PXE client boots and must chain into iPXE (ipxe.efi from TFTP,
	// as a lab server's UEFI does); otherwise the ROM is iPXE already.
	firmwarePXE bool
}

// The namespace's network: the server's address on the TAP and the
// addresses it hands out.
const (
	netbootTAP    = "tap0"
	netbootAddr   = "10.33.0.1/24"
	netbootRange  = "10.33.0.100-10.33.0.199"
	netnsPrefix   = "hvtest-"
	serverStartup = 20 * time.Second
)

var netnsSeq atomic.Int64

// netns is a namespace made for one run, with its PXE server running.
type netns struct {
	name   string
	server *exec.Cmd
	done   chan error // the server's exit
	log    *os.File
}

// ip runs one ip(8) command.
func ip(ctx context.Context, args ...string) error {
	b, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// startNetboot makes the namespace and its TAP device and starts the PXE
// server on it, serving dir; the server's output goes to logPath. On any
// error nothing is left behind.
func startNetboot(ctx context.Context, pxeserver, dir, logPath string) (n *netns, err error) {
	if _, err := os.Stat(pxeserver); err != nil {
		return nil, fmt.Errorf("pxe server: %w (make out/bin/pxeserver)", err)
	}
	removeStaleNetns(ctx)
	n = &netns{name: fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))}
	if err := ip(ctx, "netns", "add", n.name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"tuntap", "add", "dev", netbootTAP, "mode", "tap"},
		{"addr", "add", netbootAddr, "dev", netbootTAP},
		{"link", "set", netbootTAP, "up"},
	} {
		if err := ip(ctx, append([]string{"-n", n.name}, args...)...); err != nil {
			return n, err
		}
	}
	if n.log, err = os.Create(logPath); err != nil {
		return n, err
	}
	n.server = exec.Command("ip", "netns", "exec", n.name, pxeserver,
		"-iface", netbootTAP, "-dir", dir, "-range", netbootRange)
	// The server dies with the runner, even when the runner is killed.
	n.server.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := n.server.StderrPipe()
	if err != nil {
		return n, err
	}
	fmt.Fprintf(n.log, "$ %s\n", strings.Join(n.server.Args, " "))
	if err := n.server.Start(); err != nil {
		return n, fmt.Errorf("pxe server: %w", err)
	}
	ready := make(chan struct{})
	n.done = make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(n.log, sc.Text())
			if !seen && strings.Contains(sc.Text(), "pxeserver: ") && strings.Contains(sc.Text(), " ready: ") {
				seen = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		n.done <- n.server.Wait()
	}()
	select {
	case <-ready:
		return n, nil
	case err := <-n.done:
		n.done <- err
		return n, fmt.Errorf("pxe server ended before it was ready (%v); its log: %s", err, logPath)
	case <-time.After(serverStartup):
		return n, fmt.Errorf("pxe server not ready after %v; its log: %s", serverStartup, logPath)
	case <-ctx.Done():
		return n, ctx.Err()
	}
}

// wrap is the command that runs QEMU inside the namespace.
func (n *netns) wrap() []string { return []string{"ip", "netns", "exec", n.name} }

// close stops the server and removes the namespace (with its TAP device);
// it is safe on a partly made netns.
func (n *netns) close() error {
	if n.server != nil && n.server.Process != nil {
		n.server.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			n.server.Process.Kill()
			<-n.done
		}
	}
	if n.log != nil {
		n.log.Close()
	}
	killNetnsPids(n.name)
	// Without a context: the namespace goes even when the run was
	// interrupted.
	return ip(context.Background(), "netns", "del", n.name)
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
