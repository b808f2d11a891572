package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hv/tools/emu"
)

// needNetns skips a test that makes network namespaces where it cannot.
func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making network namespaces needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8) (Debian package iproute2)")
	}
}

func netnsExists(name string) bool {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// fakeServer writes a stand-in for tools/pxeserver.
func fakeServer(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pxeserver")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The namespace has the TAP device with the server's address, the server
// runs inside it with the run's flags, and close removes all of it.
func TestNetbootNamespace(t *testing.T) {
	needNetns(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "seen")
	server := fakeServer(t, `ip -4 addr show dev tap0 > `+marker+`; echo "args: $*" >&2
echo "pxeserver: 01:02:03.000000 ready: fake" >&2; exec sleep 600`)
	logPath := filepath.Join(dir, "pxe.log")
	n, err := startNetboot(context.Background(), netboot{}, netbootTools{pxeserver: server}, "/srv/pxe", logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !netnsExists(n.name) {
		t.Errorf("namespace %s missing", n.name)
	}
	seen, _ := os.ReadFile(marker)
	if !strings.Contains(string(seen), "inet "+netbootAddr) {
		t.Errorf("the server did not see tap0 with %s in its namespace:\n%s", netbootAddr, seen)
	}
	if got := strings.Join(n.wrap(), " "); got != "ip netns exec "+n.name {
		t.Errorf("wrap = %q", got)
	}
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	if netnsExists(n.name) {
		t.Errorf("namespace %s left behind", n.name)
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "args: -iface tap0 -dir /srv/pxe -range "+netbootRange) {
		t.Errorf("server log:\n%s", log)
	}
}

// A server that cannot start is an error, and nothing is left behind.
func TestNetbootServerFails(t *testing.T) {
	needNetns(t)
	server := fakeServer(t, `echo "pxeserver: interface tap0: no such network interface" >&2; exit 1`)
	logPath := filepath.Join(t.TempDir(), "pxe.log")
	n, err := startNetboot(context.Background(), netboot{}, netbootTools{pxeserver: server}, "/srv/pxe", logPath)
	if err == nil || !strings.Contains(err.Error(), "pxeserver ended before it was ready") {
		t.Fatalf("startNetboot = %v", err)
	}
	if netnsExists(n.name) {
		n.close()
		t.Errorf("namespace %s left behind", n.name)
	}
	if _, err := startNetboot(context.Background(), netboot{}, netbootTools{pxeserver: "/nonexistent/pxeserver"}, "/srv/pxe", logPath); err == nil || !strings.Contains(err.Error(), "make out/bin/pxeserver") {
		t.Errorf("missing server: %v", err)
	}
	// Other engineers' tests may make namespaces meanwhile: look at ours.
	out, _ := exec.Command("ip", "netns", "list").Output()
	if mine := netnsPrefix + strconv.Itoa(os.Getpid()) + "-"; strings.Contains(string(out), mine) {
		t.Errorf("namespaces of this process left behind:\n%s", out)
	}
}

// Namespaces of a runner that was killed are removed, with what runs in
// them; those of a live runner stay.
func TestRemoveStaleNetns(t *testing.T) {
	needNetns(t)
	// A process id that is surely gone: a child that has exited.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	stale := netnsPrefix + strconv.Itoa(c.Process.Pid) + "-1"
	live := netnsPrefix + strconv.Itoa(os.Getppid()) + "-1"
	for _, ns := range []string{stale, live} {
		if err := ip(context.Background(), "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	defer ip(context.Background(), "netns", "del", live)
	sleeper := exec.Command("ip", "netns", "exec", stale, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	removeStaleNetns(context.Background())
	if netnsExists(stale) {
		ip(context.Background(), "netns", "del", stale)
		t.Errorf("stale namespace %s not removed", stale)
	}
	if !netnsExists(live) {
		t.Errorf("namespace %s of a live process removed", live)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		sleeper.Process.Kill()
		t.Errorf("process in the stale namespace not killed")
	}
}

// A netboot run that fails still stops its servers and removes its
// namespaces, and keeps the servers' log with the emulator's.
func TestNetbootRunFailsCleanly(t *testing.T) {
	needNetns(t)
	if _, err := exec.LookPath("grub-mkimage"); err != nil {
		t.Skip("grub-mkimage not installed (make deps)")
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "hv")
	if err := os.WriteFile(image, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	server := fakeServer(t, `echo "pxeserver: 01:02:03.000000 ready: fake" >&2; echo "pxeserver: a request" >&2; exec sleep 600`)
	// QEMU that dies at once, as after a failed network boot.
	qemu := fakeServer(t, `echo "iPXE: no more network devices"; exit 0`)
	o := options{image: image, logs: filepath.Join(dir, "logs"), jobs: 1, pxeserver: server, ovmf: "/fw/OVMF.fd",
		filter: regexp.MustCompile("")}
	r := run{name: "netboot-fails", boot: bootNetboot, cmdline: "selftest", net: &netboot{},
		qemu: emu.QEMU{Binary: qemu}, spec: selftestSpec(), timeout: time.Minute}
	var out bytes.Buffer
	failed, err := runAll(context.Background(), o, []run{r}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || !strings.Contains(out.String(), "FAIL netboot-fails: ") {
		t.Errorf("runner output:\n%s", out.String())
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	if mine := netnsPrefix + strconv.Itoa(os.Getpid()) + "-"; strings.Contains(string(ns), mine) {
		t.Errorf("namespaces left behind:\n%s", ns)
	}
	emuLog, _ := os.ReadFile(filepath.Join(o.logs, "netboot-fails.emu.log"))
	for _, want := range []string{"$ ip netns exec " + netnsPrefix, "--- network servers' log", "pxeserver: a request"} {
		if !strings.Contains(string(emuLog), want) {
			t.Errorf("emulator log lacks %q:\n%s", want, emuLog)
		}
	}
	if _, err := os.Stat(filepath.Join(o.logs, "netboot-fails.pxe.log")); !os.IsNotExist(err) {
		t.Errorf("server log left beside the emulator's: %v", err)
	}
}
