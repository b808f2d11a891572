package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hv/tools/marker"
)

func TestTableShape(t *testing.T) {
	names := map[string]bool{}
	media := map[mediaKey]string{}
	for _, r := range table() {
		if _, ok := media[keyOf(r)]; !ok {
			media[keyOf(r)] = "/m/" + r.name + ".iso"
		}
	}
	o := options{image: "out/hv", logs: "out/test-logs", ovmf: "/usr/share/ovmf/OVMF.fd"}
	for _, r := range table() {
		if names[r.name] {
			t.Errorf("duplicate run name %q", r.name)
		}
		names[r.name] = true
		if r.timeout <= 0 {
			t.Errorf("%s: no timeout", r.name)
		}
		if r.spec.Done == nil && r.spec.Exit == marker.WantAny {
			t.Errorf("%s: neither a final marker nor an exit decides the run", r.name)
		}
		j := job(o, r, media)
		switch {
		case j.Bochs != nil:
			b := *j.Bochs
			b.SerialFile, b.LogFile = "/w/com1.txt", "/w/bochs.log"
			if _, err := b.Config(); err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
			if b.ISO == "" {
				t.Errorf("%s: Bochs run without an ISO", r.name)
			}
			if plain := (mediaKey{cmdline: r.cmdline}); len(r.modules) > 0 && media[plain] != "" && b.ISO == media[plain] {
				t.Errorf("%s: a run with modules shares ISO %s with one without", r.name, b.ISO)
			}
		case j.QEMU != nil:
			if _, err := j.QEMU.Args(); err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
		default:
			t.Errorf("%s: no machine", r.name)
		}
	}
	// Issue 2 item 7: the self-test and the crash in every configuration.
	for _, c := range []string{"qemu-kernel-smp1", "qemu-kernel-smp2", "qemu-kernel-smp4", "qemu-iso-bios", "qemu-iso-uefi", "bochs-skylake-x1", "bochs-skylake-x2", "bochs-ryzen"} {
		for _, kind := range []string{"-selftest", "-crash"} {
			if !names[c+kind] {
				t.Errorf("table lacks %s%s", c, kind)
			}
		}
	}
	// Item 9: bad input.
	for _, n := range []string{"bad-option-unknown", "bad-cmdline-quote", "bad-cmdline-noname", "bad-memory-64m", "report-novirt"} {
		if !names[n] {
			t.Errorf("table lacks %s", n)
		}
	}
}

func TestJobMachines(t *testing.T) {
	o := options{image: "out/hv", ovmf: "/fw/OVMF.fd"}
	media := map[mediaKey]string{{cmdline: "selftest"}: "/m/st.iso", {pxe: true, cmdline: "selftest"}: "/m/pxe"}
	tests := []struct {
		r    run
		want string // substring of the joined QEMU arguments
	}{
		{run{boot: bootKernel, cmdline: "selftest", qemu: table()[0].qemu}, "-kernel out/hv -append selftest"},
		{run{boot: bootISOBIOS, cmdline: "selftest"}, "-cdrom /m/st.iso -boot d"},
		{run{boot: bootISOUEFI, cmdline: "selftest"}, "-bios /fw/OVMF.fd -net none -cdrom /m/st.iso"},
		{run{boot: bootPXE, cmdline: "selftest"}, "tftp=/m/pxe,bootfile=boot.ipxe"},
		{run{boot: bootNetboot, cmdline: "selftest", net: &netboot{}}, "-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0 -boot n"},
		{run{boot: bootNetboot, cmdline: "selftest", net: &netboot{uefi: true, firmwarePXE: true}},
			"-bios /fw/OVMF.fd -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,romfile= -boot n"},
	}
	for _, tt := range tests {
		j := job(o, tt.r, media)
		args, err := j.QEMU.Args()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(args, " "); !strings.Contains(got, tt.want) {
			t.Errorf("boot %d: args %q lack %q", tt.r.boot, got, tt.want)
		}
	}
	o.kvm = true
	j := job(o, run{boot: bootKernel, qemu: table()[0].qemu}, media)
	if j.QEMU.Accel != "kvm" || j.QEMU.CPU != "host" {
		t.Errorf("-kvm: accel %q cpu %q", j.QEMU.Accel, j.QEMU.CPU)
	}
	if got := kvmCPU("qemu64,-svm,-vmx"); got != "host,-svm,-vmx" {
		t.Errorf("kvmCPU keeps removals: %q", got)
	}
}

// Transcripts in the shape the kernel's console interface promises (README
// "Boot options"); each spec must accept its own and reject the others.
var (
	selftestOut = []string{"hv: booting", "selftest: first tsc=123", "selftest: PASS cpus: 2 CPUs ran work", "selftest: PASS gc", "selftest: done 2/2 tsc=456"}
	crashOut    = []string{"hv: booting", "panic: selftest: deliberate crash", "", "goroutine 1 [running]:", "main.main()", "\t/src/main.go:10 +0x1d"}
	failOut     = []string{"hv: booting", "selftest: PASS a", "selftest: FAIL timers: slept 3ms, want 10ms", "selftest: done 1/2"}
	badOptOut   = []string{"hv: booting", "hv: error: unknown boot option \"frobnicate\""}
	lowMemOut   = []string{"hv: booting", "hv: error: too little memory: 60 MiB usable, need 128 MiB"}
	reportOut   = []string{"hv: booting", "hv: cpu AuthenticAMD family 23", "hv: memory 510 MiB usable", "hv: cpus started 2", "hv: virtualization none"}
	nilPanicOut = []string{"hv: booting", "selftest: PASS a", "panic: runtime error: invalid memory address or nil pointer dereference"}
	sigOut      = []string{"hv: booting", "selftest: PASS a", "SIGFPE: floating-point exception", "PC=0x227117 m=5 sigcode=1", "goroutine 0 gp=0xc00008a1e0 m=5 [idle]:"}
)

func TestSpecsAgainstTranscripts(t *testing.T) {
	ok, fail3, fail5 := marker.QEMUExit(1), marker.QEMUExit(3), marker.QEMUExit(5)
	bochs := marker.Exit{Kind: marker.ExitUnknownStatus, Status: -1, Detail: "bochs"}
	tests := []struct {
		name string
		spec marker.Spec
		out  []string
		exit marker.Exit
		pass bool
	}{
		{"selftest passes", selftestSpec(), selftestOut, ok, true},
		{"selftest passes on Bochs", selftestSpec(), selftestOut, bochs, true},
		{"selftest with a FAIL", selftestSpec(), failOut, fail3, false},
		{"selftest that panics", selftestSpec(), nilPanicOut, fail5, false},
		{"selftest with a failure status", selftestSpec(), selftestOut, fail3, false},
		{"selftest with a fatal signal", selftestSpec(), sigOut, fail5, false},
		{"bad input that faults", badInputSpec(``), append([]string{"hv: error: x"}, sigOut[2:]...), fail5, false},
		{"crash passes", crashSpec(), crashOut, fail5, true},
		{"crash passes on Bochs", crashSpec(), crashOut, bochs, true},
		{"crash that exits 0", crashSpec(), crashOut, ok, false},
		{"crash run that completes the self-test", crashSpec(), selftestOut, ok, false},
		{"crash with another panic", crashSpec(), nilPanicOut, fail5, false},
		{"unknown option", badInputSpec(`.*frobnicate`), badOptOut, fail3, true},
		{"unknown option not named", badInputSpec(`.*frobnicate`), []string{"hv: error: bad option"}, fail3, false},
		{"unknown option ignored", badInputSpec(`.*frobnicate`), selftestOut, ok, false},
		{"unknown option exits 0", badInputSpec(`.*frobnicate`), badOptOut, ok, false},
		{"low memory", badInputSpec(`(?i).*memory`), lowMemOut, fail3, true},
		{"low memory panics", badInputSpec(`(?i).*memory`), append(lowMemOut, "panic: out of memory"), fail5, false},
		{"report", reportSpec(2, "none"), reportOut, ok, true},
		{"report with the wrong CPU count", reportSpec(4, "none"), reportOut, ok, false},
		{"report claims SVM", reportSpec(2, "svm"), reportOut, ok, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := marker.NewWatcher(tt.spec)
			for _, l := range tt.out {
				w.Line(l)
			}
			v := w.Exit(tt.exit)
			if v.Pass != tt.pass {
				t.Errorf("pass = %v (%s), want %v", v.Pass, v.Reason, tt.pass)
			}
		})
	}
}

// TestDiskPatternMD5 pins the host's MD5 of the guest's disk pattern to
// what `yes "hv disk pattern 10.0.0.1" | head -c 1048576 | md5sum` prints.
func TestDiskPatternMD5(t *testing.T) {
	if got, want := diskPatternMD5("10.0.0.1"), "a76a69569a7f718c0e60c0c14bd6f09c"; got != want {
		t.Errorf("diskPatternMD5 = %s, want %s", got, want)
	}
}

// Runs that differ only in their boot modules need different ISOs.
func TestMediaKeyModules(t *testing.T) {
	a := run{boot: bootBochs, cmdline: "vm=linux"}
	b := a
	b.modules = []string{"out/linux/vmlinuz"}
	if keyOf(a) == keyOf(b) {
		t.Error("a run with modules has the media key of one without")
	}
	c := b
	c.modules = []string{"out/linux/vmlinuz"}
	if keyOf(b) != keyOf(c) {
		t.Error("equal runs have different media keys")
	}
}

// The netboot runs must see the module that travelled with the image, named
// as iPXE (URL and name) or GRUB (name) passes it, and of its real size.
func TestNetbootSpec(t *testing.T) {
	module := filepath.Join(t.TempDir(), "vms.conf")
	if err := os.WriteFile(module, []byte("vm a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := marker.QEMUExit(1)
	with := func(line string) []string {
		return append([]string{selftestOut[0], line}, selftestOut[1:]...)
	}
	for _, tt := range []struct {
		name string
		out  []string
		pass bool
	}{
		{"iPXE", with(`hv: module "http://10.33.0.1/modules/vms.conf vms.conf", 5 bytes`), true},
		{"GRUB", with(`hv: module "vms.conf", 5 bytes`), true},
		{"truncated", with(`hv: module "vms.conf", 4 bytes`), false},
		{"another module", with(`hv: module "other.conf", 5 bytes`), false},
		{"no module", selftestOut, false},
		{"module but a failed self-test", with(`hv: module "vms.conf", 5 bytes`)[:4], false},
	} {
		w := marker.NewWatcher(netbootSpec(module))
		for _, l := range tt.out {
			w.Line(l)
		}
		if v := w.Exit(ok); v.Pass != tt.pass {
			t.Errorf("%s: pass = %v (%s), want %v", tt.name, v.Pass, v.Reason, tt.pass)
		}
	}
	// Both firmware paths of issue 7 are in the table.
	names := map[string]bool{}
	for _, r := range table() {
		if r.boot == bootNetboot && !r.optIn {
			names[fmt.Sprintf("uefi=%v firmwarePXE=%v", r.net.uefi, r.net.firmwarePXE)] = true
		}
	}
	for _, want := range []string{"uefi=false firmwarePXE=false", "uefi=true firmwarePXE=true"} {
		if !names[want] {
			t.Errorf("no netboot run with %s", want)
		}
	}
}
