package emurun

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hv/tools/emu"
	"hv/tools/marker"
)

func selftestSpec() marker.Spec {
	return marker.Spec{
		Expect: []*regexp.Regexp{regexp.MustCompile(`^hv: `)},
		Forbid: []*regexp.Regexp{regexp.MustCompile(`^selftest: FAIL`)},
		Done:   regexp.MustCompile(`^selftest: done`),
		Exit:   marker.WantSuccess,
	}
}

// script writes an executable shell script standing in for an emulator.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "emu.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeBochs finds the COM1 file and the log in the bochsrc given with -f and
// writes the given console text and log line to them.
func fakeBochs(console, logLine, tail string) string {
	return `cfg=$3
ser=$(sed -n 's/^com1:.*dev=//p' "$cfg")
log=$(sed -n 's/^log: //p' "$cfg")
printf '` + console + `' >> "$ser"
echo '` + logLine + `' >> "$log"
echo "Bochs is exiting"
` + tail
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		qemu     string // script body standing in for QEMU
		bochs    string // script body standing in for Bochs
		timeout  time.Duration
		want     marker.Verdict
		wantExit marker.ExitKind
		maxTime  time.Duration // the run must be stopped well before this
		wantLog  string
	}{
		{
			name:     "qemu pass",
			qemu:     `printf 'hv: booting\nselftest: done 1/1\n'; exit 1`,
			want:     marker.Verdict{Decided: true, Pass: true},
			wantExit: marker.ExitSuccess,
			wantLog:  "hv: booting\nselftest: done 1/1\n",
		},
		{
			name:     "qemu failure status",
			qemu:     `printf 'hv: booting\nselftest: done 1/1\n'; exit 3`,
			want:     marker.Verdict{Decided: true, Reason: "want a successful exit, got qemu exit code 3 (kernel status 1)"},
			wantExit: marker.ExitFailure,
		},
		{
			name:     "forbidden line stops a hanging emulator",
			qemu:     `printf 'hv: booting\nselftest: FAIL x: y\n'; exec sleep 60`,
			timeout:  time.Minute,
			maxTime:  20 * time.Second,
			want:     marker.Verdict{Decided: true, Reason: `forbidden line "selftest: FAIL x: y" (matches "^selftest: FAIL")`},
			wantExit: marker.ExitNone,
		},
		{
			name:     "timeout",
			qemu:     `printf 'hv: booting\n'; exec sleep 60`,
			timeout:  300 * time.Millisecond,
			maxTime:  20 * time.Second,
			want:     marker.Verdict{Decided: true, Reason: `timeout after 300ms; still waiting for "^selftest: done"`},
			wantExit: marker.ExitNone,
		},
		{
			name:     "unterminated last line counts",
			qemu:     `printf 'hv: booting\nselftest: done 1/1'; exit 1`,
			want:     marker.Verdict{Decided: true, Pass: true},
			wantExit: marker.ExitSuccess,
		},
		{
			name:     "missing emulator",
			qemu:     "",
			want:     marker.Verdict{Decided: true, Reason: "emurun: t: fork/exec /nonexistent/qemu: no such file or directory"},
			wantExit: marker.ExitNone,
		},
		{
			name:     "bochs shutdown",
			bochs:    fakeBochs(`\rhv: booting\nselftest: done 1/1\n`, "00088657283p[UNMAP ] >>PANIC<< Shutdown port: shutdown requested", "exit 1"),
			want:     marker.Verdict{Decided: true, Pass: true},
			wantExit: marker.ExitUnknownStatus,
		},
		{
			name:     "bochs triple fault",
			bochs:    fakeBochs(`hv: booting\n`, "00012p[CPU0  ] >>PANIC<< exception(): 3rd (13) exception with no resolution", "exit 1"),
			want:     marker.Verdict{Decided: true, Reason: `emulator ended without the kernel's exit: bochs ended: 00012p[CPU0  ] >>PANIC<< exception(): 3rd (13) exception with no resolution; still waiting for "^selftest: done"`},
			wantExit: marker.ExitAbnormal,
		},
		{
			name:     "bochs output seen while it runs",
			bochs:    fakeBochs(`hv: booting\nselftest: FAIL a: b\n`, "", "exec sleep 60"),
			timeout:  time.Minute,
			maxTime:  20 * time.Second,
			want:     marker.Verdict{Decided: true, Reason: `forbidden line "selftest: FAIL a: b" (matches "^selftest: FAIL")`},
			wantExit: marker.ExitNone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := Job{Name: "t", Spec: selftestSpec(), Timeout: tt.timeout, LogDir: t.TempDir()}
			if j.Timeout == 0 {
				j.Timeout = time.Minute
			}
			switch {
			case tt.bochs != "":
				j.Bochs = &emu.Bochs{Binary: script(t, tt.bochs), Model: "ryzen", ISO: "/dev/null"}
			case tt.qemu != "":
				j.QEMU = &emu.QEMU{Binary: script(t, tt.qemu), Kernel: "k"}
			default:
				j.QEMU = &emu.QEMU{Binary: "/nonexistent/qemu", Kernel: "k"}
			}
			var seen []string
			j.OnLine = func(l string) { seen = append(seen, l) }
			r := Run(context.Background(), j)
			if diff := cmp.Diff(tt.want, r.Verdict); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
			if r.Exit.Kind != tt.wantExit {
				t.Errorf("exit %v, want %v", r.Exit.Kind, tt.wantExit)
			}
			if tt.maxTime > 0 && r.Elapsed > tt.maxTime {
				t.Errorf("run took %v; the emulator was not stopped", r.Elapsed)
			}
			if j.Bochs != nil {
				b, _ := os.ReadFile(r.EmuLog)
				if !strings.Contains(string(b), "--- bochs log\n") || !strings.Contains(string(b), "com1: enabled=1, mode=file") {
					t.Errorf("emulator log lacks the bochsrc or Bochs' log:\n%s", b)
				}
			}
			if tt.wantLog != "" {
				b, err := os.ReadFile(r.SerialLog)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tt.wantLog {
					t.Errorf("serial log %q, want %q", b, tt.wantLog)
				}
				if got := strings.Join(seen, "\n") + "\n"; got != tt.wantLog {
					t.Errorf("OnLine saw %q, want %q", got, tt.wantLog)
				}
			}
		})
	}
}

func TestSplitLinesBoundsLength(t *testing.T) {
	lines := make(chan string, 8)
	go splitLines(strings.NewReader(strings.Repeat("x", maxLine+10)+"\nend"), lines)
	var got []int
	for l := range lines {
		got = append(got, len(l))
	}
	if diff := cmp.Diff([]int{maxLine, 10, 3}, got); diff != "" {
		t.Errorf("line lengths (-want +got):\n%s", diff)
	}
}

// Console input waits for its line: the fake QEMU echoes what it reads,
// and only the answer to the second input ends the run.
func TestInput(t *testing.T) {
	qemu := `echo "hv: ready"; read a; echo "hv: got $a"; read b; echo "selftest: done $b"; exit 1`
	j := Job{Name: "t", Spec: selftestSpec(), Timeout: time.Minute, LogDir: t.TempDir(),
		QEMU: &emu.QEMU{Binary: script(t, qemu), Kernel: "k"},
		Input: []Input{
			{After: regexp.MustCompile(`^hv: ready$`), Bytes: []byte("one\n")},
			{After: regexp.MustCompile(`^hv: got one$`), Bytes: []byte("2/2\n")},
		}}
	r := Run(context.Background(), j)
	if !r.Verdict.Pass {
		b, _ := os.ReadFile(r.SerialLog)
		t.Fatalf("verdict %+v; console:\n%s", r.Verdict, b)
	}
	j.QEMU, j.Bochs = nil, &emu.Bochs{Binary: "bochs", Model: "ryzen", ISO: "/dev/null"}
	if r := Run(context.Background(), j); r.Verdict.Pass || !strings.Contains(r.Verdict.Reason, "needs QEMU") {
		t.Errorf("Bochs with input: %+v", r.Verdict)
	}
}

// A wrapped QEMU runs under the wrapper's command, which execs it.
func TestWrap(t *testing.T) {
	qemu := `echo "hv: up"; echo "selftest: done 1/1"; exit 1`
	wrapper := script(t, `echo "wrapped: $1 $2" >&2; shift; exec "$@"`)
	j := Job{Name: "t", Spec: selftestSpec(), Timeout: time.Minute, LogDir: t.TempDir(),
		QEMU: &emu.QEMU{Binary: script(t, qemu), Kernel: "k"},
		Wrap: []string{wrapper, "ns0"}}
	r := Run(context.Background(), j)
	if !r.Verdict.Pass {
		t.Fatalf("verdict %+v", r.Verdict)
	}
	b, _ := os.ReadFile(r.EmuLog)
	if !strings.Contains(string(b), "wrapped: ns0 ") || !strings.Contains(string(b), "$ "+wrapper+" ns0 ") {
		t.Errorf("emulator log does not show the wrapper:\n%s", b)
	}
	j.QEMU, j.Bochs = nil, &emu.Bochs{Binary: "bochs", Model: "ryzen", ISO: "/dev/null"}
	if r := Run(context.Background(), j); r.Verdict.Pass || !strings.Contains(r.Verdict.Reason, "needs QEMU") {
		t.Errorf("Bochs with Wrap: %+v", r.Verdict)
	}
}
