package marker

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func re(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func selftestSpec() Spec {
	return Spec{
		Expect: []*regexp.Regexp{re(`^hv: `), re(`^selftest: PASS `)},
		Forbid: []*regexp.Regexp{re(`^selftest: FAIL `), re(`^panic: `)},
		Done:   re(`^selftest: done (\d+)/(\d+)`),
		CheckDone: func(m []string) error {
			if m[1] != m[2] {
				return fmt.Errorf("%s of %s checks passed", m[1], m[2])
			}
			return nil
		},
		Exit: WantSuccess,
	}
}

func crashSpec() Spec {
	return Spec{
		Expect: []*regexp.Regexp{re(`^panic: selftest: deliberate crash`), re(`^goroutine \d+ `)},
		Forbid: []*regexp.Regexp{re(`^selftest: done`)},
		Exit:   WantFailure,
	}
}

func TestWatcher(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		lines []string
		// decidedAt is the index of the line after which the verdict must be
		// decided, or -1 if only the exit decides.
		decidedAt int
		exit      *Exit // nil: no exit reported
		timeout   bool
		want      Verdict
	}{
		{
			name:      "selftest passes after the exit",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting", "selftest: PASS goroutines", "selftest: done 5/5"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitSuccess, Status: 0, Detail: "qemu exit code 1"},
			want:      Verdict{Decided: true, Pass: true},
		},
		{
			name:      "selftest on Bochs: unknown status is enough",
			spec:      selftestSpec(),
			lines:     []string{"\x1b[H\x1b[J  Booting `hv'", "\rhv: booting\r", "selftest: PASS a", "selftest: done 1/1 tsc=99"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitUnknownStatus, Status: -1, Detail: "bochs shutdown port"},
			want:      Verdict{Decided: true, Pass: true},
		},
		{
			name:      "FAIL line decides at once",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting", "selftest: FAIL gc: heap grew", "selftest: done 4/5"},
			decidedAt: 1,
			want:      Verdict{Decided: true, Reason: `forbidden line "selftest: FAIL gc: heap grew" (matches "^selftest: FAIL ")`},
		},
		{
			name:      "done with failures",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting", "selftest: PASS x", "selftest: done 4/5"},
			decidedAt: 2,
			want:      Verdict{Decided: true, Reason: `final marker "selftest: done 4/5": 4 of 5 checks passed`},
		},
		{
			name:      "done before the banner",
			spec:      selftestSpec(),
			lines:     []string{"selftest: done 0/0", "hv: late"},
			decidedAt: 0,
			want:      Verdict{Decided: true, Reason: `final marker "selftest: done 0/0" before expected "^hv: "`},
		},
		{
			name:      "expected lines out of order",
			spec:      selftestSpec(),
			lines:     []string{"selftest: PASS x", "hv: booting"},
			decidedAt: -1,
			timeout:   true,
			want:      Verdict{Decided: true, Reason: `timeout after 1m0s; still waiting for "^selftest: PASS "`},
		},
		{
			name:      "success status wanted",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting", "selftest: PASS x", "selftest: done 1/1"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitFailure, Status: 1, Detail: "qemu exit code 3 (kernel status 1)"},
			want:      Verdict{Decided: true, Reason: "want a successful exit, got qemu exit code 3 (kernel status 1)"},
		},
		{
			name:      "exit before the final marker",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting", "selftest: PASS x"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitSuccess, Detail: "qemu exit code 1"},
			want:      Verdict{Decided: true, Reason: `kernel exited (qemu exit code 1) before the final marker "^selftest: done (\\d+)/(\\d+)"`},
		},
		{
			name:      "triple fault",
			spec:      selftestSpec(),
			lines:     []string{"hv: booting"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitAbnormal, Detail: "qemu exited 0"},
			want:      Verdict{Decided: true, Reason: `emulator ended without the kernel's exit: qemu exited 0; still waiting for "^selftest: PASS "`},
		},
		{
			name:      "silent timeout",
			spec:      selftestSpec(),
			decidedAt: -1,
			timeout:   true,
			want:      Verdict{Decided: true, Reason: "timeout after 1m0s with no console output"},
		},
		{
			name:      "crash passes on a failure exit",
			spec:      crashSpec(),
			lines:     []string{"hv: booting", "panic: selftest: deliberate crash", "", "goroutine 1 [running]:", "main.main()"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitFailure, Status: 2, Detail: "qemu exit code 5 (kernel status 2)"},
			want:      Verdict{Decided: true, Pass: true},
		},
		{
			name:      "crash must not exit with success",
			spec:      crashSpec(),
			lines:     []string{"panic: selftest: deliberate crash", "goroutine 1 [running]:"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitSuccess, Detail: "qemu exit code 1 (kernel status 0)"},
			want:      Verdict{Decided: true, Reason: "want a failure exit, got qemu exit code 1 (kernel status 0)"},
		},
		{
			name:      "crash without the trace",
			spec:      crashSpec(),
			lines:     []string{"panic: selftest: deliberate crash"},
			decidedAt: -1,
			exit:      &Exit{Kind: ExitFailure, Detail: "qemu exit code 5"},
			want:      Verdict{Decided: true, Reason: `kernel exited (qemu exit code 5); still waiting for "^goroutine \\d+ "`},
		},
		{
			name:      "crash that completes the self-test",
			spec:      crashSpec(),
			lines:     []string{"selftest: done 3/3"},
			decidedAt: 0,
			want:      Verdict{Decided: true, Reason: `forbidden line "selftest: done 3/3" (matches "^selftest: done")`},
		},
		{
			name:      "WantAny decides at the final marker",
			spec:      Spec{Expect: []*regexp.Regexp{re(`^a$`)}, Done: re(`^b$`)},
			lines:     []string{"a", "b", "c"},
			decidedAt: 1,
			want:      Verdict{Decided: true, Pass: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatcher(tt.spec)
			for i, l := range tt.lines {
				v := w.Line(l)
				if v.Decided != (tt.decidedAt >= 0 && i >= tt.decidedAt) {
					t.Fatalf("after line %d %q: decided = %v, want decided from line %d", i, l, v.Decided, tt.decidedAt)
				}
			}
			got := w.Verdict()
			if tt.exit != nil {
				got = w.Exit(*tt.exit)
			}
			if tt.timeout {
				got = w.Timeout("1m0s")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQEMUExit(t *testing.T) {
	tests := []struct {
		code int
		want ExitKind
		st   int
	}{
		{0, ExitAbnormal, -1},
		{1, ExitSuccess, 0},
		{2, ExitAbnormal, -1},
		{3, ExitFailure, 1},
		{5, ExitFailure, 2},
		{255, ExitFailure, 127},
	}
	for _, tt := range tests {
		got := QEMUExit(tt.code)
		if got.Kind != tt.want || got.Status != tt.st {
			t.Errorf("QEMUExit(%d) = %v status %d, want %v status %d", tt.code, got.Kind, got.Status, tt.want, tt.st)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hv: x\r\n", "hv: x"},
		{"\rhv: x", "hv: x"},
		{"\x1b[0m\x1b[37m\x1b[40m\x1b[H\x1b[J\x1b[1;1H  Booting `hv'", "  Booting `hv'"},
		{"GRUB junk\rselftest: PASS a", "selftest: PASS a"},
		{"a\x00b\x07c\td", "abc\td"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzWatcher feeds arbitrary console output: the kernel under test is not
// trusted to print well-formed lines, and the runner must not panic on them.
func FuzzWatcher(f *testing.F) {
	f.Add("hv: x\nselftest: PASS a\nselftest: done 1/1\n", 1)
	f.Add("\x1b[Hpanic: selftest: deliberate crash\r\ngoroutine 1 [running]:\n", 5)
	f.Fuzz(func(t *testing.T, out string, code int) {
		for _, spec := range []Spec{selftestSpec(), crashSpec()} {
			w := NewWatcher(spec)
			for _, l := range strings.Split(out, "\n") {
				w.Line(l)
			}
			v := w.Exit(QEMUExit(code))
			if !v.Decided || v.Pass == (v.Reason != "") {
				t.Fatalf("inconsistent verdict %+v", v)
			}
		}
	})
}

func TestExpectAllAnyOrder(t *testing.T) {
	spec := Spec{
		ExpectAll: []*regexp.Regexp{regexp.MustCompile(`^guest a: PASS$`), regexp.MustCompile(`^guest b: PASS$`)},
		Forbid:    []*regexp.Regexp{regexp.MustCompile(`: FAIL`)},
		Exit:      WantSuccess,
	}
	w := NewWatcher(spec)
	w.Line("guest b: PASS")
	w.Line("guest a: PASS")
	if v := w.Exit(Exit{Kind: ExitSuccess, Detail: "status 0"}); !v.Pass {
		t.Errorf("both seen out of order: %+v", v)
	}
	w = NewWatcher(spec)
	w.Line("guest b: PASS")
	if v := w.Exit(Exit{Kind: ExitSuccess, Detail: "status 0"}); v.Pass || !strings.Contains(v.Reason, "guest a") {
		t.Errorf("one missing: %+v", v)
	}
}
