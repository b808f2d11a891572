// Package emu describes emulator machines for booting the hypervisor
// headless: QEMU command lines and Bochs configuration files.
//
// It only builds arguments and text, so that what the test runner, the
// benchmarks and "make run" ask of an emulator is unit-tested. It does not
// start processes (package hv/tools/emurun does) and does not build images.
package emu

import (
	"fmt"
	"strconv"
	"strings"
)

// Debug-exit device: a write of S to the port ends QEMU with status
// (S<<1)|1 (QEMU hw/misc/debugexit.c). The kernel writes its status there.
const (
	DebugExitPort = 0xf4
	DebugExitSize = 4
)

// QEMU is one qemu-system-x86_64 machine.
type QEMU struct {
	Binary string // default "qemu-system-x86_64"
	// Accel is "tcg" or "kvm"; default "tcg".
	Accel string
	// SingleThreadTCG runs every CPU of a TCG machine on one host thread
	// (-accel tcg,thread=single) instead of one thread per CPU. QEMU 7.2's
	// multi-threaded TCG loses a guest's nested-paging translations now
	// and then (docs/testing.md, "QEMU's multi-threaded TCG"),
	// which Linux guests hit; round-robin TCG does not. Ignored under KVM.
	SingleThreadTCG bool
	// CPU is the -cpu model, e.g. "EPYC" or "qemu64,-svm"; default "EPYC"
	// (it has SVM and NPT under TCG).
	CPU    string
	MemMiB int // default 512
	SMP    int // default 1
	// Boot source: exactly one of Kernel (multiboot 1 via -kernel, with
	// Append as the command line), CDROM (an ISO) or Netboot.
	Kernel  string
	Append  string
	CDROM   string
	Netboot *Netboot
	// Firmware is the UEFI firmware for -bios (e.g. OVMF.fd); empty means
	// QEMU's SeaBIOS.
	Firmware string
	// Serial is the -serial backend; default "stdio".
	Serial string
	// ICountShift, if not nil, runs with -icount shift=N: guest time (and
	// the TSC) advances 2^N ns per instruction, so it counts instructions.
	ICountShift *int
	// UserNIC adds a modern-only virtio-net-pci NIC on QEMU's user network
	// (10.0.2.0/24: DHCP, gateway 10.0.2.2, DNS 10.0.2.3), the host NIC
	// the hypervisor bridges into the switch "uplink" (Kernel and CDROM
	// boots; a Netboot machine has its NIC already).
	UserNIC bool
	Extra   []string
}

// userNIC is the UserNIC device: disable-legacy leaves only the virtio 1.x
// transport, the one the hypervisor's driver speaks.
var userNIC = []string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"}

// Netboot boots from the network (-boot n). With TFTPDir, QEMU's user-mode
// network's built-in DHCP and TFTP server hand out BootFile from TFTPDir to
// the NIC's iPXE ROM. With TAP, the NIC is on that existing TAP device
// (QEMU must run in its network namespace) and a real server answers.
type Netboot struct {
	TFTPDir  string
	BootFile string
	TAP      string
	// NoROM leaves the NIC without its iPXE option ROM, so that the
	// firmware's own network stack boots (OVMF's PXE).
	NoROM bool
}

// Args returns the command line after the binary name.
func (q QEMU) Args() ([]string, error) {
	accel := def(q.Accel, "tcg")
	if accel != "tcg" && accel != "kvm" {
		return nil, fmt.Errorf("emu: accel %q: want tcg or kvm", accel)
	}
	sources := 0
	for _, set := range []bool{q.Kernel != "", q.CDROM != "", q.Netboot != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("emu: want exactly one of Kernel, CDROM, Netboot; have %d", sources)
	}
	if q.Append != "" && q.Kernel == "" {
		return nil, fmt.Errorf("emu: Append %q needs Kernel", q.Append)
	}
	mem, smp := q.MemMiB, q.SMP
	if mem == 0 {
		mem = 512
	}
	if smp == 0 {
		smp = 1
	}
	if mem < 0 || smp < 0 {
		return nil, fmt.Errorf("emu: bad memory %d MiB or %d CPUs", mem, smp)
	}
	if accel == "tcg" && q.SingleThreadTCG {
		accel = "tcg,thread=single"
	}
	a := []string{
		"-accel", accel,
		"-cpu", def(q.CPU, "EPYC"),
		"-m", strconv.Itoa(mem),
		"-smp", strconv.Itoa(smp),
		"-display", "none",
		"-monitor", "none",
		"-serial", def(q.Serial, "stdio"),
		// A reset or triple fault ends QEMU (exit 0) instead of rebooting
		// into the same failure forever.
		"-no-reboot",
		"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=%d", DebugExitPort, DebugExitSize),
	}
	if q.ICountShift != nil {
		a = append(a, "-icount", fmt.Sprintf("shift=%d", *q.ICountShift))
	}
	if q.Firmware != "" {
		a = append(a, "-bios", q.Firmware)
	}
	if q.UserNIC && q.Netboot != nil {
		return nil, fmt.Errorf("emu: UserNIC with Netboot: a netboot machine has its NIC already")
	}
	if q.UserNIC {
		a = append(a, userNIC...)
	}
	switch {
	case q.Kernel != "":
		a = append(a, "-net", "none", "-kernel", q.Kernel)
		if q.Append != "" {
			a = append(a, "-append", q.Append)
		}
	case q.CDROM != "":
		a = append(a, "-net", "none", "-cdrom", q.CDROM, "-boot", "d")
	default:
		n := q.Netboot
		if strings.ContainsAny(n.TFTPDir+n.BootFile+n.TAP, ",") {
			return nil, fmt.Errorf("emu: netboot paths must not contain commas: %q", n.TFTPDir+n.TAP)
		}
		if (n.TAP == "") == (n.TFTPDir == "") {
			return nil, fmt.Errorf("emu: netboot wants exactly one of TAP and TFTPDir")
		}
		netdev := fmt.Sprintf("user,id=n0,tftp=%s,bootfile=%s", n.TFTPDir, n.BootFile)
		if n.TAP != "" {
			netdev = fmt.Sprintf("tap,id=n0,ifname=%s,script=no,downscript=no", n.TAP)
		}
		// QEMU's default ROM for the NIC is Debian's ipxe-qemu
		// efi-virtio.rom (legacy and UEFI iPXE).
		nic := "virtio-net-pci,netdev=n0"
		if n.NoROM {
			nic += ",romfile="
		}
		a = append(a, "-netdev", netdev, "-device", nic, "-boot", "n")
	}
	return append(a, q.Extra...), nil
}

// Command renders the machine as a shell command line, for documents: an
// argument with a blank, quote or dollar sign is single-quoted.
func (q QEMU) Command() string {
	args, err := q.Args()
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var b strings.Builder
	b.WriteString("qemu-system-x86_64")
	for _, a := range args {
		b.WriteString(" ")
		if strings.ContainsAny(a, " \"'$") || a == "" {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		b.WriteString(a)
	}
	return b.String()
}

// Bochs is one Bochs 2.7 machine booting an ISO from its CD-ROM drive.
type Bochs struct {
	Binary string // default "bochs"
	// Model is the cpu model, e.g. "corei7_skylake_x" (VMX) or "ryzen"
	// (SVM with NRIPS).
	Model string
	Count int // CPUs; default 1
	// IPS is instructions per emulated second. Guest time (TSC, PIT, LAPIC
	// timer) follows it, not the wall clock; a low value makes the BIOS CD
	// boot faster. Default 4000000.
	IPS    int
	MemMiB int // default 256
	ISO    string
	// SerialFile receives COM1 output.
	SerialFile string
	// LogFile receives Bochs' own log, where the shutdown-port message
	// appears.
	LogFile string
	BIOS    string // default /usr/share/bochs/BIOS-bochs-latest
	VGABIOS string // default /usr/share/seabios/vgabios-stdvga.bin
}

// Config returns the bochsrc text. Values are checked because a bad line
// makes Bochs stop at its configuration prompt, not exit.
func (b Bochs) Config() (string, error) {
	count, ips, mem := b.Count, b.IPS, b.MemMiB
	if count == 0 {
		count = 1
	}
	if ips == 0 {
		ips = 4000000
	}
	if mem == 0 {
		mem = 256
	}
	if b.Model == "" || b.ISO == "" || b.SerialFile == "" || b.LogFile == "" {
		return "", fmt.Errorf("emu: bochs needs Model, ISO, SerialFile and LogFile")
	}
	if count < 1 || ips < 1 || mem < 1 {
		return "", fmt.Errorf("emu: bochs count %d, ips %d, megs %d: must be positive", count, ips, mem)
	}
	for _, p := range []string{b.ISO, b.SerialFile, b.LogFile, b.BIOS, b.VGABIOS} {
		// bochsrc has no quoting for these values.
		if strings.ContainsAny(p, ", \"\n") {
			return "", fmt.Errorf("emu: bochs path %q contains a comma, space, quote or newline", p)
		}
	}
	lines := []string{
		fmt.Sprintf("megs: %d", mem),
		"romimage: file=" + def(b.BIOS, "/usr/share/bochs/BIOS-bochs-latest"),
		"vgaromimage: file=" + def(b.VGABIOS, "/usr/share/seabios/vgabios-stdvga.bin"),
		// ignore_bad_msrs=0: an unknown MSR raises #GP as on hardware, so
		// the kernel's MSR probes are tested for real.
		fmt.Sprintf("cpu: model=%s, count=%d, ips=%d, reset_on_triple_fault=0, ignore_bad_msrs=0", b.Model, count, ips),
		"ata0-master: type=cdrom, path=" + b.ISO + ", status=inserted",
		"boot: cdrom",
		"com1: enabled=1, mode=file, dev=" + b.SerialFile,
		"port_e9_hack: enabled=1",
		// Debian's Bochs has no "nogui"; rfb with timeout=0 listens for a
		// VNC client without waiting for one.
		`display_library: rfb, options="timeout=0"`,
		// A Bochs panic (triple fault, shutdown port) ends the process
		// instead of asking on the terminal.
		"panic: action=fatal",
		"clock: sync=none, time0=local",
		"speaker: enabled=0",
		"sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
		"log: " + b.LogFile,
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// BochsArgs returns the bochs command line for a configuration file and a
// debugger script: Debian's Bochs has its debugger compiled in and stops at
// a prompt unless the script says "c" (continue).
func BochsArgs(configFile, debuggerScript string) []string {
	return []string{"-q", "-f", configFile, "-rc", debuggerScript}
}

// BochsShutdownMessage is what Bochs logs when the kernel writes "Shutdown"
// to port 0x8900 (Bochs iodev/unmapped.cc); it tells a deliberate exit from
// a crash, since Bochs exits with status 1 either way.
const BochsShutdownMessage = "Shutdown port: shutdown requested"

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
