package bootmedia

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/cmd/hv/bootopt"
)

func TestGrubConfig(t *testing.T) {
	tests := []struct {
		cmdline  string
		wantArgs string // what follows the image path on the multiboot lines
		wantErr  bool
	}{
		{cmdline: "", wantArgs: ""},
		{cmdline: "selftest", wantArgs: " 'selftest'"},
		{cmdline: "  selftest   bench ", wantArgs: " 'selftest' 'bench'"},
		// GRUB must pass these through, not interpret them.
		{cmdline: `a=$x;b '"c'`, wantArgs: ` 'a=$x;b' '"c'`},
		{cmdline: `it\'s`, wantArgs: ` 'it'\''s'`},
		// A quoted word is one GRUB argument.
		{cmdline: `vm=linux append="console=ttyS0 panic=-1"`, wantArgs: ` 'vm=linux' 'append=console=ttyS0 panic=-1'`},
		{cmdline: "a\nmenuentry", wantErr: true},
		{cmdline: `append="open`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := GrubConfig(tt.cmdline)
		if tt.wantErr {
			if err == nil {
				t.Errorf("GrubConfig(%q) accepted a line break", tt.cmdline)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"\tmultiboot2 /boot/hv" + tt.wantArgs + "\n",
			"\tmultiboot /boot/hv" + tt.wantArgs + "\n",
			"serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1\n",
			"terminal_output serial",
			"set timeout=0\nset default=0\n",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("GrubConfig(%q) lacks %q:\n%s", tt.cmdline, want, got)
			}
		}
		if i, j := strings.Index(got, "multiboot2 "), strings.Index(got, "multiboot /"); i > j {
			t.Errorf("the default (first) entry must use multiboot2:\n%s", got)
		}
	}
}

// grubLoaderCmdline is what GRUB 2.06's multiboot commands make of their
// arguments (grub-core/lib/cmdline.c, grub_create_loader_cmdline): each
// argument with backslash, single and double quote escaped by a
// backslash, in double quotes if it has a blank, joined by blanks.
func grubLoaderCmdline(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		space := strings.Contains(a, " ")
		if space {
			b.WriteByte('"')
		}
		for j := 0; j < len(a); j++ {
			if strings.IndexByte(`\'"`, a[j]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(a[j])
		}
		if space {
			b.WriteByte('"')
		}
	}
	return b.String()
}

// The hypervisor sees the words it was given after GRUB has joined and
// escaped them.
func TestGrubRoundTrip(t *testing.T) {
	for _, cmdline := range []string{
		"selftest",
		`vm=linux kernel=vmlinuz initrd=initramfs.cpio.gz append="console=ttyS0 panic=-1 nokaslr"`,
		`append='say "hi" \ bye' guest=all`,
		`append="it's"`,
	} {
		want, err := bootopt.Split(cmdline)
		if err != nil {
			t.Fatal(err)
		}
		got, err := bootopt.Split(grubLoaderCmdline(want))
		if err != nil {
			t.Fatalf("%q: %v", cmdline, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q through GRUB (-want +got):\n%s", cmdline, diff)
		}
	}
}

// ipxeHead and ipxeTail frame every script: the UEFI branch chains GRUB.
const (
	ipxeHead = "#!ipxe\n# Written by hv/tools/bootmedia.\niseq ${platform} efi && goto uefi ||\n"
	ipxeTail = "boot\n# iPXE for UEFI has no Multiboot: GRUB loads the same files with multiboot2.\n:uefi\nchain grubx64.efi\n"
)

func TestIPXEScript(t *testing.T) {
	tests := []struct {
		cmdline string
		modules []string
		want    string // between ipxeHead and ipxeTail
	}{
		{cmdline: "", want: "kernel hv\n"},
		{cmdline: " selftest  bench", want: "kernel hv selftest bench\n"},
		{cmdline: `config=vms.conf`, modules: []string{"out/linux/vmlinuz", "/tmp/vms.conf"},
			want: "kernel hv config=vms.conf\nmodule modules/vmlinuz vmlinuz\nmodule modules/vms.conf vms.conf\n"},
		// iPXE has no quoting: the quotes reach the kernel as they are,
		// and its words are rejoined with single blanks.
		{cmdline: `vm=linux append="console=ttyS0 panic=-1"`, want: "kernel hv vm=linux append=\"console=ttyS0 panic=-1\"\n"},
	}
	for _, tt := range tests {
		got, err := IPXEScript(tt.cmdline, tt.modules...)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ipxeHead+tt.want+ipxeTail, got); diff != "" {
			t.Errorf("IPXEScript(%q, %q) (-want +got):\n%s", tt.cmdline, tt.modules, diff)
		}
	}
	for _, bad := range []string{
		"a\rb",                 // a second line
		"selftest ${net0/mac}", // iPXE expands settings
		"selftest #x",          // a comment to iPXE
		"selftest || shell",    // a separator
		"selftest ; shell",     // a separator
		"selftest && shell",    // a separator
		"-n selftest",          // an option of iPXE's kernel command
		`append="a  b"`,        // iPXE would make that "a b"
		`append="open`,         // malformed
	} {
		if _, err := IPXEScript(bad); err == nil {
			t.Errorf("IPXEScript(%q) accepted a command line iPXE would change", bad)
		}
	}
	if _, err := IPXEScript("", "a/vmlinuz", "b/vmlinuz"); err == nil {
		t.Errorf("IPXEScript accepted two modules with one name")
	}
	if _, err := IPXEScript("", "#vmlinuz"); err == nil {
		t.Errorf("IPXEScript accepted a module name iPXE takes for a comment")
	}
}

// The words the hypervisor gets from iPXE's rejoined words are the words
// of the command line.
func TestIPXERoundTrip(t *testing.T) {
	for _, cmdline := range []string{
		"selftest",
		`vm=linux kernel=vmlinuz initrd=initramfs.cpio.gz append="console=ttyS0 panic=-1 nokaslr"`,
		`append='say "hi" \ bye' guest=all`,
	} {
		script, err := IPXEScript(cmdline)
		if err != nil {
			t.Fatal(err)
		}
		var kernel string
		for _, l := range strings.Split(script, "\n") {
			if strings.HasPrefix(l, "kernel ") {
				kernel = l
			}
		}
		// iPXE's kernel command line: the image's URL, then its
		// arguments joined by single blanks (iPXE concat_args).
		words := strings.Fields(kernel)[2:]
		loader := "http://10.0.0.1/hv " + strings.Join(words, " ")
		got, err := bootopt.Split(loader)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := bootopt.Split(cmdline)
		if diff := cmp.Diff(want, got[1:]); diff != "" {
			t.Errorf("%q through iPXE (-want +got):\n%s", cmdline, diff)
		}
	}
}

func TestGrubNetConfig(t *testing.T) {
	got, err := GrubNetConfig("config=vms.conf", "out/linux/vmlinuz", "vms.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\tmultiboot2 /hv 'config=vms.conf'\n\tmodule2 /modules/vmlinuz vmlinuz\n\tmodule2 /modules/vms.conf vms.conf\n\tboot\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("GrubNetConfig lacks %q:\n%s", want, got)
		}
	}
	// The bootstrap configuration finds the server and loads this file
	// from it over HTTP.
	for _, want := range []string{"set root=(http,$net_default_server)\n", "configfile /grub.cfg\n"} {
		if !strings.Contains(GrubNetBootstrap, want) {
			t.Errorf("GrubNetBootstrap lacks %q", want)
		}
	}
}

func TestMakePXE(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "image")
	if err := os.WriteFile(image, []byte("kernel bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "vms.conf")
	if err := os.WriteFile(module, []byte("vm a"), 0o644); err != nil {
		t.Fatal(err)
	}
	ipxe := filepath.Join(dir, "ipxe")
	os.Mkdir(ipxe, 0o755)
	if err := os.WriteFile(filepath.Join(ipxe, "undionly.kpxe"), []byte("undi"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pxe")
	missing, err := MakePXE(context.Background(), out, image, "config=vms.conf", PXE{IPXEDir: ipxe}, module)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ipxe.efi", "grubx64.efi"}, missing); diff != "" {
		t.Errorf("missing loaders (-want +got):\n%s", diff)
	}
	script, _ := IPXEScript("config=vms.conf", module)
	grubCfg, _ := GrubNetConfig("config=vms.conf", module)
	for name, want := range map[string]string{
		"hv":               "kernel bytes",
		"modules/vms.conf": "vm a",
		"undionly.kpxe":    "undi",
		"boot.ipxe":        script,
		"grub.cfg":         grubCfg,
	} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "README")); !strings.Contains(string(b), "pxeserver -iface") {
		t.Errorf("README lacks the pxeserver command:\n%s", b)
	}
	// Made again without modules, the directory keeps none of the old ones.
	if _, err := MakePXE(context.Background(), out, image, "selftest", PXE{IPXEDir: ipxe}); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(out, "modules")); err != nil || len(ents) != 0 {
		t.Errorf("modules/ after a run without modules: %v, %v", ents, err)
	}
}

// TestMakeGrubNetImage builds the GRUB EFI program with Debian's modules.
func TestMakeGrubNetImage(t *testing.T) {
	if _, err := os.Stat(filepath.Join(GrubEFIDir, "multiboot2.mod")); err != nil {
		t.Skip("grub-efi-amd64-bin not installed (make deps)")
	}
	if _, err := exec.LookPath("grub-mkimage"); err != nil {
		t.Skip("grub-mkimage not installed (make deps)")
	}
	out := filepath.Join(t.TempDir(), PXEGrubImage)
	if err := MakeGrubNetImage(context.Background(), out, GrubEFIDir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// A PE file with the bootstrap configuration inside.
	if len(b) < 2 || string(b[:2]) != "MZ" || !strings.Contains(string(b), "set root=(http,$net_default_server)") {
		t.Errorf("%s: not an EFI program with the bootstrap configuration (%d bytes)", out, len(b))
	}
	if err := MakeGrubNetImage(context.Background(), out, t.TempDir()); err == nil {
		t.Errorf("MakeGrubNetImage without modules succeeded")
	}
}

func TestGrubConfigModules(t *testing.T) {
	got, err := GrubConfig("vm=linux", "out/linux/vmlinuz", "/tmp/initrd.gz")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\tmodule2 /boot/modules/vmlinuz vmlinuz\n\tmodule2 /boot/modules/initrd.gz initrd.gz\n\tboot\n",
		"\tmodule /boot/modules/vmlinuz vmlinuz\n\tmodule /boot/modules/initrd.gz initrd.gz\n\tboot\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("GrubConfig lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range [][]string{
		{"a/vmlinuz", "b/vmlinuz"},
		{"my kernel"},
		{"it's"},
		{"/"},
		{"#x"},
	} {
		if _, err := GrubConfig("", bad...); err == nil {
			t.Errorf("GrubConfig accepted modules %q", bad)
		}
	}
}

// TestMakeISO builds a real ISO and reads grub.cfg and the image back out of
// it with xorriso.
func TestMakeISO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grub-mkrescue")
	}
	for _, tool := range []string{"grub-mkrescue", "xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps)", tool)
		}
	}
	dir := t.TempDir()
	image := filepath.Join(dir, "image")
	if err := os.WriteFile(image, []byte("kernel bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(module, []byte("module bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "hv.iso")
	if err := MakeISO(context.Background(), image, "selftest", iso, module); err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(dir, "x")
	cmd := exec.Command("xorriso", "-osirrox", "on", "-indev", iso,
		"-extract", "/boot/grub/grub.cfg", filepath.Join(ext, "grub.cfg"),
		"-extract", ImagePath, filepath.Join(ext, "hv"),
		"-extract", moduleDir+"initrd.img", filepath.Join(ext, "initrd.img"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	cfg, _ := os.ReadFile(filepath.Join(ext, "grub.cfg"))
	want, _ := GrubConfig("selftest", module)
	if diff := cmp.Diff(want, string(cfg)); diff != "" {
		t.Errorf("grub.cfg in the ISO (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "hv")); string(b) != "kernel bytes" {
		t.Errorf("image in the ISO = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "initrd.img")); string(b) != "module bytes" {
		t.Errorf("module in the ISO = %q", b)
	}
	if _, err := os.Stat(iso + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary ISO left behind")
	}
}
