package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const twoVMs = `# Two Linux VMs on one switch.
vm a
	memory 256
	cpus 1
	kernel vmlinuz
	initrd initramfs.cpio.gz
	cmdline "console=ttyS0 hv.ip=10.0.0.1 quote=\"x\" back=\\"   # comment
	disk ram:8
	nic lan0

vm b-2_x
	kernel vmlinuz
	cpus 8
	disk disk.img
	nic lan0
`

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *File
	}{
		{"two VMs", twoVMs, &File{VMs: []VM{
			{Name: "a", Line: 2, MemoryMiB: 256, CPUs: 1, Kernel: "vmlinuz", Initrd: "initramfs.cpio.gz",
				Cmdline: `console=ttyS0 hv.ip=10.0.0.1 quote="x" back=\`, Disk: Disk{RAMMiB: 8}, NIC: "lan0", NICLine: 9},
			{Name: "b-2_x", Line: 11, CPUs: 8, Kernel: "vmlinuz", Disk: Disk{Module: "disk.img"}, NIC: "lan0", NICLine: 15},
		}}},
		{"minimal, CRLF, unquoted cmdline", "vm x\r\nkernel k\r\ncmdline quiet\r\n", &File{VMs: []VM{
			{Name: "x", Line: 1, CPUs: 1, Kernel: "k", Cmdline: "quiet"},
		}}},
		{"empty quoted cmdline and limits", "vm x\nkernel k\ncmdline \"\"\nmemory 3584\ndisk ram:1024\n", &File{VMs: []VM{
			{Name: "x", Line: 1, CPUs: 1, Kernel: "k", MemoryMiB: MaxMemoryMiB, Disk: Disk{RAMMiB: MaxDiskMiB}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("vms.conf", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"unknown key", "vm a\nkernel k\n\n\n\n\nmemroy 64\n", `vms.conf:7: unknown key "memroy"`},
		{"empty file", "# nothing\n", "vms.conf:2: no vm in the file"},
		{"key before vm", "kernel k\nvm a\n", "vms.conf:1: kernel before the first `vm <name>`"},
		{"no kernel", "vm a\nmemory 128\nvm b\nkernel k\n", "vms.conf:1: vm a has no kernel"},
		{"no kernel at end", "vm a\nkernel k\nvm b\n", "vms.conf:3: vm b has no kernel"},
		{"nine cpus", "vm a\nkernel k\ncpus 9\n", `vms.conf:3: cpus "9": want a vCPU count from 1 to 8`},
		{"zero cpus", "vm a\nkernel k\ncpus 0\n", `vms.conf:3: cpus "0": want a vCPU count from 1 to 8`},
		{"word cpus", "vm a\nkernel k\n\ncpus two\n", `vms.conf:4: cpus "two": want a vCPU count from 1 to 8`},
		{"memory zero", "vm a\nmemory 0\n", `vms.conf:2: memory "0": want MiB from 1 to 3584`},
		{"memory huge", "vm a\nmemory 3585\n", `vms.conf:2: memory "3585"`},
		{"memory not a number", "vm a\nmemory 1G\n", `vms.conf:2: memory "1G"`},
		{"memory negative", "vm a\nmemory -1\n", `vms.conf:2: memory "-1"`},
		{"duplicate key", "vm a\nkernel k\nkernel j\n", "vms.conf:3: kernel given twice for vm a (first at line 2)"},
		{"duplicate vm", "vm a\nkernel k\nvm a\nkernel k\n", "vms.conf:3: vm a defined twice"},
		{"bad vm name", "vm a.b\nkernel k\n", `vms.conf:1: vm "a.b": a VM name`},
		{"long vm name", "vm " + strings.Repeat("x", 33) + "\n", "vms.conf:1: vm"},
		{"bad nic", "vm a\nkernel k\nnic a/b\n", `vms.conf:3: nic "a/b"`},
		{"ram disk zero", "vm a\nkernel k\ndisk ram:0\n", `vms.conf:3: disk "ram:0": want ram:<MiB>`},
		{"ram disk huge", "vm a\nkernel k\ndisk ram:1025\n", `vms.conf:3: disk "ram:1025"`},
		{"no value", "vm a\nkernel\n", "vms.conf:2: kernel takes one value: kernel <module>"},
		{"two values", "vm a\nkernel k j\n", "vms.conf:2: kernel takes one value"},
		{"cmdline unquoted words", "vm a\nkernel k\ncmdline a b\n", `vms.conf:3: cmdline takes one value: cmdline "<text>"`},
		{"unterminated quote", "vm a\nkernel k\ncmdline \"abc\n", "vms.conf:3: unterminated quote"},
		{"control character", "vm a\nkernel k\x01\n", "vms.conf:2: control character 0x1"},
		{"control in quotes", "vm a\nkernel k\ncmdline \"a\x1bb\"\n", "vms.conf:3: control character 0x1b in a quoted value"},
		{"module with blank", "vm a\nkernel \"a b\"\n", `vms.conf:2: kernel "a b": module name has byte 0x20`},
		{"empty module", "vm a\nkernel \"\"\n", `vms.conf:2: kernel "": empty module name`},
		{"long cmdline", "vm a\nkernel k\ncmdline " + strings.Repeat("x", MaxCmdlineLen+1) + "\n", "vms.conf:3: cmdline of 4097 bytes"},
		{"long line", "vm a\n" + strings.Repeat(" ", maxLineLen+1) + "\n", "vms.conf:2: line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("vms.conf", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse error:\n got %q\nwant prefix %q", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "vms.conf" || ce.Line < 1 {
				t.Errorf("error %v is not a *Error with file and line", err)
			}
		})
	}
}

func TestTooManyVMs(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxVMs; i++ {
		b.WriteString("vm v" + itoa(i) + "\nkernel k\n")
	}
	_, err := Parse("vms.conf", []byte(b.String()))
	want := "vms.conf:129: more than 64 VMs"
	if err == nil || err.Error() != want {
		t.Errorf("Parse: got %v, want %q", err, want)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(twoVMs))
	f.Add([]byte("vm a\nkernel k\ncmdline \"\\\\\\\"\"\n"))
	f.Add([]byte("vm a\nkernel k\ndisk ram:16\nnic x # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.Line < 1 || ce.Line > strings.Count(string(data), "\n")+1 {
				t.Fatalf("error %v: not a *Error with a line of the input", err)
			}
			return
		}
		names := map[string]bool{}
		for _, vm := range cfg.VMs {
			if !validName(vm.Name) || names[vm.Name] {
				t.Fatalf("bad or duplicate VM name %q", vm.Name)
			}
			names[vm.Name] = true
			if vm.Kernel == "" || checkModule(vm.Kernel) != nil {
				t.Fatalf("vm %s: bad kernel %q", vm.Name, vm.Kernel)
			}
			if vm.CPUs < 1 || vm.CPUs > MaxCPUs || vm.MemoryMiB > MaxMemoryMiB || vm.Disk.RAMMiB > MaxDiskMiB || len(vm.Cmdline) > MaxCmdlineLen {
				t.Fatalf("vm %s: value out of range: %+v", vm.Name, vm)
			}
			if vm.Disk.Module != "" && vm.Disk.RAMMiB != 0 {
				t.Fatalf("vm %s: both disk module and RAM size", vm.Name)
			}
			if vm.NIC != "" && !validName(vm.NIC) {
				t.Fatalf("vm %s: bad nic %q", vm.Name, vm.NIC)
			}
		}
		if len(cfg.VMs) == 0 || len(cfg.VMs) > MaxVMs {
			t.Fatalf("%d VMs", len(cfg.VMs))
		}
	})
}
