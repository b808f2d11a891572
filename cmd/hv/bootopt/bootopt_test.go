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
	for _, s := range []string{"selftest", "guest=a,b", `"x`, "=", "selftest=crash bench"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Parse(s)
		if err == nil && o.SelfTest != "" && o.SelfTest != "run" && o.SelfTest != "crash" {
			t.Fatalf("Parse(%q) gave SelfTest %q", s, o.SelfTest)
		}
	})
}
