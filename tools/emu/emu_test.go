package emu

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQEMUArgs(t *testing.T) {
	zero := 0
	common := []string{"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"}
	join := func(parts ...[]string) []string {
		var a []string
		for _, p := range parts {
			a = append(a, p...)
		}
		return a
	}
	tests := []struct {
		name    string
		q       QEMU
		want    []string
		wantErr string
	}{
		{
			name: "defaults with -kernel",
			q:    QEMU{Kernel: "out/hv", Append: "selftest"},
			want: join([]string{"-accel", "tcg", "-cpu", "EPYC", "-m", "512", "-smp", "1"}, common,
				[]string{"-net", "none", "-kernel", "out/hv", "-append", "selftest"}),
		},
		{
			name: "smp 4, no SVM, small memory",
			q:    QEMU{Kernel: "k", CPU: "qemu64,-svm", MemMiB: 64, SMP: 4},
			want: join([]string{"-accel", "tcg", "-cpu", "qemu64,-svm", "-m", "64", "-smp", "4"}, common,
				[]string{"-net", "none", "-kernel", "k"}),
		},
		{
			name: "UEFI ISO",
			q:    QEMU{CDROM: "x.iso", Firmware: "/usr/share/ovmf/OVMF.fd"},
			want: join([]string{"-accel", "tcg", "-cpu", "EPYC", "-m", "512", "-smp", "1"}, common,
				[]string{"-bios", "/usr/share/ovmf/OVMF.fd", "-net", "none", "-cdrom", "x.iso", "-boot", "d"}),
		},
		{
			name: "icount and netboot",
			q:    QEMU{Netboot: &Netboot{TFTPDir: "out/pxe", BootFile: "boot.ipxe"}, ICountShift: &zero, Serial: "file:s.log"},
			want: []string{"-accel", "tcg", "-cpu", "EPYC", "-m", "512", "-smp", "1",
				"-display", "none", "-monitor", "none", "-serial", "file:s.log", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
				"-icount", "shift=0",
				"-netdev", "user,id=n0,tftp=out/pxe,bootfile=boot.ipxe", "-device", "virtio-net-pci,netdev=n0", "-boot", "n"},
		},
		{
			name: "netboot on a TAP, UEFI firmware's own PXE",
			q:    QEMU{Netboot: &Netboot{TAP: "tap0", NoROM: true}, Firmware: "OVMF.fd"},
			want: join([]string{"-accel", "tcg", "-cpu", "EPYC", "-m", "512", "-smp", "1"}, common,
				[]string{"-bios", "OVMF.fd", "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,romfile=", "-boot", "n"}),
		},
		{
			name: "kvm host",
			q:    QEMU{Accel: "kvm", CPU: "host", Kernel: "k", Extra: []string{"-s"}},
			want: join([]string{"-accel", "kvm", "-cpu", "host", "-m", "512", "-smp", "1"}, common,
				[]string{"-net", "none", "-kernel", "k", "-s"}),
		},
		{
			name: "user NIC",
			q:    QEMU{Kernel: "k", UserNIC: true},
			want: join([]string{"-accel", "tcg", "-cpu", "EPYC", "-m", "512", "-smp", "1"}, common,
				[]string{"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on", "-net", "none", "-kernel", "k"}),
		},
		{name: "user NIC with netboot", q: QEMU{Netboot: &Netboot{TFTPDir: "d", BootFile: "f"}, UserNIC: true}, wantErr: "UserNIC"},
		{
			name: "single-threaded TCG",
			q:    QEMU{Kernel: "k", SMP: 2, SingleThreadTCG: true},
			want: join([]string{"-accel", "tcg,thread=single", "-cpu", "EPYC", "-m", "512", "-smp", "2"}, common,
				[]string{"-net", "none", "-kernel", "k"}),
		},
		{
			name: "single-threaded TCG means nothing to KVM",
			q:    QEMU{Accel: "kvm", CPU: "host", Kernel: "k", SingleThreadTCG: true},
			want: join([]string{"-accel", "kvm", "-cpu", "host", "-m", "512", "-smp", "1"}, common,
				[]string{"-net", "none", "-kernel", "k"}),
		},
		{name: "no boot source", q: QEMU{}, wantErr: "exactly one"},
		{name: "two boot sources", q: QEMU{Kernel: "k", CDROM: "c"}, wantErr: "exactly one"},
		{name: "append without kernel", q: QEMU{CDROM: "c", Append: "selftest"}, wantErr: "needs Kernel"},
		{name: "unknown accel", q: QEMU{Kernel: "k", Accel: "hvf"}, wantErr: "accel"},
		{name: "negative memory", q: QEMU{Kernel: "k", MemMiB: -1}, wantErr: "bad memory"},
		{name: "comma in tftp dir", q: QEMU{Netboot: &Netboot{TFTPDir: "a,b", BootFile: "f"}}, wantErr: "commas"},
		{name: "TAP and TFTP", q: QEMU{Netboot: &Netboot{TFTPDir: "a", TAP: "tap0"}}, wantErr: "exactly one of TAP"},
		{name: "netboot without a network", q: QEMU{Netboot: &Netboot{}}, wantErr: "exactly one of TAP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Args()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Args() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Args() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBochsConfig(t *testing.T) {
	b := Bochs{Model: "corei7_skylake_x", Count: 2, ISO: "/t/hv.iso", SerialFile: "/t/com1.txt", LogFile: "/t/bochs.log"}
	got, err := b.Config()
	if err != nil {
		t.Fatal(err)
	}
	want := `megs: 256
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/seabios/vgabios-stdvga.bin
cpu: model=corei7_skylake_x, count=2, ips=4000000, reset_on_triple_fault=0, ignore_bad_msrs=0
ata0-master: type=cdrom, path=/t/hv.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=/t/com1.txt
port_e9_hack: enabled=1
display_library: rfb, options="timeout=0"
panic: action=fatal
clock: sync=none, time0=local
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: /t/bochs.log
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config() (-want +got):\n%s", diff)
	}

	bad := []struct {
		name string
		b    Bochs
		want string
	}{
		{"no model", Bochs{ISO: "i", SerialFile: "s", LogFile: "l"}, "needs Model"},
		{"negative count", Bochs{Model: "ryzen", Count: -1, ISO: "i", SerialFile: "s", LogFile: "l"}, "must be positive"},
		{"comma in path", Bochs{Model: "ryzen", ISO: "a,b.iso", SerialFile: "s", LogFile: "l"}, "comma"},
		{"space in path", Bochs{Model: "ryzen", ISO: "i", SerialFile: "my serial", LogFile: "l"}, "space"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.b.Config(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Config() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBochsArgs(t *testing.T) {
	want := []string{"-q", "-f", "rc", "-rc", "cont"}
	if diff := cmp.Diff(want, BochsArgs("rc", "cont")); diff != "" {
		t.Errorf("BochsArgs (-want +got):\n%s", diff)
	}
}

func TestQEMUCommand(t *testing.T) {
	q := QEMU{CPU: "EPYC", MemMiB: 512, SMP: 1, Kernel: "out/hv", Append: `vm=linux append="a b"`}
	got := q.Command()
	for _, want := range []string{"qemu-system-x86_64 ", " -kernel out/hv", ` -append 'vm=linux append="a b"'`} {
		if !strings.Contains(got, want) {
			t.Errorf("Command() = %s; lacks %q", got, want)
		}
	}
	if got := (QEMU{}).Command(); !strings.HasPrefix(got, "(") {
		t.Errorf("a machine Args refuses gives %q, want the error in parentheses", got)
	}
}
