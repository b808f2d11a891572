package bootopt

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"  selftest  ", []string{"selftest"}, ""},
		{"a b\tc", []string{"a", "b", "c"}, ""},
		{`guest="a b" x`, []string{"guest=a b", "x"}, ""},
		{`'x y'`, []string{"x y"}, ""},
		{`""`, []string{""}, ""},
		{`"open`, nil, "unterminated"},
		// GRUB's escaping (grub_create_loader_cmdline).
		{`"append=console=ttyS0 panic=-1" x`, []string{"append=console=ttyS0 panic=-1", "x"}, ""},
		{`a=\"b\" "c \"d\" \\e"`, []string{`a="b"`, `c "d" \e`}, ""},
		{`it\'s`, []string{"it's"}, ""},
		{`'\'`, []string{`\`}, ""},
		{`C:\dir \x41 end\`, []string{`C:\dir`, `\x41`, `end\`}, ""},
		{"a\x01b", nil, "control character"},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Split(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Split(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Split(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Options
		err  string
	}{
		{"", Options{}, ""},
		{"selftest", Options{SelfTest: "run"}, ""},
		{"/boot/hv selftest", Options{SelfTest: "run"}, ""},
		{"hv bench", Options{Bench: true}, ""},
		{"/tmp/hv", Options{}, ""},
		{"selftest=crash", Options{SelfTest: "crash"}, ""},
		{"bench selftest", Options{SelfTest: "run", Bench: true}, ""},
		{"guest=cpuid,io", Options{Guests: []string{"cpuid", "io"}}, ""},
		{"guest=list", Options{Guests: []string{"list"}}, ""},
		{"selftest=maybe", Options{}, "bad value"},
		{"nosuch", Options{}, "unknown boot option"},
		{"=x", Options{}, "no name"},
		{"guest=", Options{}, "needs a value"},
		{"guest=a,,b", Options{}, "empty guest name"},
		{"bench=1", Options{}, "takes no value"},
		{"selftest selftest", Options{}, "given twice"},
		{`selftest "x`, Options{}, "malformed command line"},
		{"vm=linux kernel=vmlinuz", Options{VM: &VM{Name: "linux", Kernel: "vmlinuz"}}, ""},
		{`/tmp/hv vm=l1 kernel=k initrd=i disk=d mem=512 append="console=ttyS0 quiet"`,
			Options{VM: &VM{Name: "l1", Kernel: "k", Initrd: "i", Disk: "d", MemMiB: 512, Append: "console=ttyS0 quiet"}}, ""},
		{`append= vm=x kernel=k`, Options{VM: &VM{Name: "x", Kernel: "k"}}, ""},
		{"vm=linux", Options{}, "needs kernel"},
		{"vm=linux kernel=k cpus=1", Options{VM: &VM{Name: "linux", Kernel: "k", CPUs: 1}}, ""},
		{"vm=linux kernel=k cpus=2", Options{}, "only 1 vCPU per VM is supported today"},
		{"vm=linux kernel=k cpus=0", Options{}, "bad value"},
		{"cpus=1", Options{}, "needs vm="},
		{"config=vms.conf", Options{Config: "vms.conf"}, ""},
		{"cachemon config=vms.conf", Options{Config: "vms.conf", CacheMonMs: DefaultCacheMonMs}, ""},
		{"cachemon=250", Options{CacheMonMs: 250}, ""},
		{"cachemon=0", Options{}, "bad value"},
		{"cachemon=60001", Options{}, "bad value"},
		{"cachemon=fast", Options{}, "bad value"},
		{"config=", Options{}, "needs a value"},
		{"config=vms.conf vm=a kernel=k", Options{}, "exclude each other"},
		{"kernel=vmlinuz", Options{}, "needs vm="},
		{`append="a b"`, Options{}, "needs vm="},
		{"vm=linux kernel=k mem=0", Options{}, "bad value"},
		{"vm=linux kernel=k mem=99999", Options{}, "bad value"},
		{"vm=linux kernel=k mem=1x", Options{}, "bad value"},
		{"bench vm=a.b kernel=k", Options{}, "bad VM name"},
		{"vm=linux kernel=", Options{}, "needs a value"},
		{"vm=linux kernel=a kernel=b", Options{}, "given twice"},
		{"append", Options{}, "needs a value"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"selftest", "guest=a,b", `"x`, "=", "selftest=crash bench", `vm=a kernel=k append="x y" mem=256`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err == nil && o.SelfTest != "" && o.SelfTest != "run" && o.SelfTest != "crash" {
			t.Fatalf("Parse(%q) gave SelfTest %q", s, o.SelfTest)
		}
		if err == nil && o.VM != nil && (o.VM.Kernel == "" || !validName(o.VM.Name) || o.VM.MemMiB > MaxMemMiB) {
			t.Fatalf("Parse(%q) gave an invalid VM %+v", s, *o.VM)
		}
	})
}
