package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hv/tools/emu"
	"hv/tools/marker"
	"hv/tools/mbimage"
)

// buildFakeImage builds testdata/fakekernel the way the Makefile builds the
// hypervisor and turns it into an image.
func buildFakeImage(t *testing.T, dir string) string {
	t.Helper()
	elfPath := filepath.Join(dir, "fake.elf")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-T 0x201000 -E main.entry32", "-o", elfPath, "./testdata/fakekernel")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOEXPERIMENT=norandomizedheapbase64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build fakekernel: %v\n%s", err, b)
	}
	elfBytes, err := os.ReadFile(elfPath)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := mbimage.Build(elfBytes)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "hv")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunnerBootsFakeKernel drives the whole runner (boot media, emulators,
// markers, report) with a stand-in kernel that prints the command line its
// loader passed and fixed self-test markers. It proves the plumbing, and the
// command line each loader hands the kernel, without the real hypervisor.
func TestRunnerBootsFakeKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("boots emulators")
	}
	for _, tool := range []string{"qemu-system-x86_64", "bochs", "grub-mkrescue", "xorriso", "mformat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps)", tool)
		}
	}
	dir := t.TempDir()
	image := buildFakeImage(t, dir)
	spec := func(cmdline string) marker.Spec {
		return marker.Spec{
			Expect: marker.Patterns(`^hv: fake kernel$`, `^hv: cmdline `+cmdline+`$`, `^selftest: PASS fake$`),
			Forbid: brokenLines,
			Done:   doneLine,
			Exit:   marker.WantSuccess,
		}
	}
	epyc := emu.QEMU{CPU: "EPYC", MemMiB: 128, SMP: 2}
	runs := []run{
		// QEMU and iPXE put the image's name before the options; GRUB
		// passes only the options.
		{name: "fake-kernel", boot: bootKernel, cmdline: "selftest", qemu: epyc, spec: spec(regexp.QuoteMeta(image) + ` selftest`), timeout: time.Minute},
		{name: "fake-iso-bios", boot: bootISOBIOS, cmdline: "selftest", qemu: epyc, spec: spec(`selftest`), timeout: time.Minute},
		{name: "fake-pxe", boot: bootPXE, cmdline: "selftest", qemu: epyc, spec: spec(`tftp://\S+/hv selftest`), timeout: 2 * time.Minute},
		{name: "fake-bochs", boot: bootBochs, cmdline: "selftest", bochs: emu.Bochs{Model: "ryzen"}, spec: spec(`selftest`), timeout: 2 * time.Minute},
		// A run whose expectation the kernel does not meet must fail,
		// keep its log and show its end.
		{name: "fake-wrong", boot: bootKernel, cmdline: "selftest=crash", qemu: epyc, spec: crashSpec(), timeout: time.Minute},
	}
	o := options{image: image, logs: filepath.Join(dir, "logs"), jobs: 2, filter: regexp.MustCompile("")}
	var out bytes.Buffer
	failed, err := runAll(context.Background(), o, runs, &out)
	if err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Logf("runner output:\n%s", report)
	if failed != 1 {
		t.Errorf("%d runs failed, want 1 (fake-wrong)", failed)
	}
	for _, want := range []string{
		`(?m)^PASS fake-kernel \(\d+\.\ds\)$`,
		`(?m)^PASS fake-iso-bios \(\d+\.\ds\)$`,
		`(?m)^PASS fake-pxe \(\d+\.\ds\)$`,
		`(?m)^PASS fake-bochs \(\d+\.\ds\)$`,
		`(?m)^FAIL fake-wrong: forbidden line "selftest: done 1/1" \(matches "\^selftest: done"\) \(\d+\.\ds\) \(log: .*/logs/fake-wrong\.log\)$`,
		`(?m)^    \| selftest: done 1/1$`,
		`4 passed, 1 failed\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("runner output lacks %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(o.logs, "fake-wrong.log")); err != nil {
		t.Errorf("failed run's log not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.logs, "fake-kernel.log")); !os.IsNotExist(err) {
		t.Errorf("passing run's log kept without -keep")
	}
	if strings.Count(report, "\n") < 6 {
		t.Errorf("short report")
	}
}
