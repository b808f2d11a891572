// Package marker decides the verdict of one emulator run from the kernel's
// serial output markers and from how the emulator ended.
//
// It is pure logic: it is fed cleaned-up console lines and the exit, and
// says pass or fail with a reason. It starts no processes and reads no files;
// package hv/tools/emurun does that.
package marker

import (
	"fmt"
	"regexp"
	"strings"
)

// ExitKind classifies how an emulator ended, as far as the emulator lets the
// runner know.
type ExitKind int

const (
	// ExitNone: the emulator has not ended (or was stopped by the runner).
	ExitNone ExitKind = iota
	// ExitSuccess: the kernel reported status 0 (QEMU isa-debug-exit code 1).
	ExitSuccess
	// ExitFailure: the kernel reported a non-zero status (QEMU code (S<<1)|1, S>0).
	ExitFailure
	// ExitUnknownStatus: the kernel ended the run on purpose but the emulator
	// hides the status (Bochs' shutdown port; Bochs always exits 1).
	ExitUnknownStatus
	// ExitAbnormal: the emulator ended without the kernel asking for it
	// (reset or triple fault with -no-reboot, a Bochs panic, a crash).
	ExitAbnormal
)

func (k ExitKind) String() string {
	switch k {
	case ExitNone:
		return "none"
	case ExitSuccess:
		return "success"
	case ExitFailure:
		return "failure"
	case ExitUnknownStatus:
		return "kernel exit (status unknown)"
	case ExitAbnormal:
		return "abnormal"
	}
	return fmt.Sprintf("ExitKind(%d)", int(k))
}

// Exit is how the emulator ended.
type Exit struct {
	Kind ExitKind
	// Status is the kernel's exit status where known (QEMU), else -1.
	Status int
	// Detail says what was seen, e.g. "qemu exit code 5" or a Bochs panic.
	Detail string
}

// QEMUExit classifies a QEMU process exit code. With isa-debug-exit, a
// kernel status S ends QEMU with (S<<1)|1, so every odd code is the kernel's
// own exit; 0 is QEMU ending on its own (a reset with -no-reboot, a triple
// fault, the monitor's quit), and other codes are QEMU errors.
func QEMUExit(code int) Exit {
	switch {
	case code == 1:
		return Exit{Kind: ExitSuccess, Status: 0, Detail: "qemu exit code 1 (kernel status 0)"}
	case code > 1 && code%2 == 1:
		return Exit{Kind: ExitFailure, Status: code >> 1, Detail: fmt.Sprintf("qemu exit code %d (kernel status %d)", code, code>>1)}
	case code == 0:
		return Exit{Kind: ExitAbnormal, Status: -1, Detail: "qemu exited 0 without the kernel's exit (reset or triple fault?)"}
	default:
		return Exit{Kind: ExitAbnormal, Status: -1, Detail: fmt.Sprintf("qemu exit code %d (an emulator error, not the kernel's exit)", code)}
	}
}

// WantExit is the exit a run expects.
type WantExit int

const (
	// WantAny accepts any exit and does not wait for one after Done.
	WantAny WantExit = iota
	// WantSuccess wants the kernel's own exit with status 0 (or an unknown
	// status where the emulator hides it).
	WantSuccess
	// WantFailure wants the kernel's own exit with a non-zero status (or an
	// unknown status where the emulator hides it).
	WantFailure
)

// Patterns compiles the regular expressions of a Spec's lists; the
// expressions are the caller's constants, so a bad one panics.
func Patterns(exprs ...string) []*regexp.Regexp {
	rs := make([]*regexp.Regexp, 0, len(exprs))
	for _, e := range exprs {
		rs = append(rs, regexp.MustCompile(e))
	}
	return rs
}

// Spec says what a run's console must and must not show.
type Spec struct {
	// Expect must each match a line, in this order.
	Expect []*regexp.Regexp
	// ExpectAll must each match some line, in any order (verdicts of work
	// that runs in parallel).
	ExpectAll []*regexp.Regexp
	// Forbid fails the run at the first line any of them matches.
	Forbid []*regexp.Regexp
	// Done, if set, is the run's last marker; the verdict is decided when it
	// is seen (after the exit, if Exit is not WantAny).
	Done *regexp.Regexp
	// CheckDone, if set, validates Done's submatches.
	CheckDone func(submatches []string) error
	// Exit is the exit the run must end with.
	Exit WantExit
}

// Verdict is a run's outcome.
type Verdict struct {
	Decided bool
	Pass    bool
	Reason  string // why it failed; empty on pass
}

// Watcher applies a Spec to a stream of console lines.
type Watcher struct {
	spec     Spec
	seenAll  []bool // ExpectAll matched so far
	next     int    // index of the next Expect
	doneSeen bool   // Done matched and CheckDone was happy
	lines    int
	verdict  Verdict
}

// NewWatcher returns a Watcher for spec.
func NewWatcher(spec Spec) *Watcher {
	return &Watcher{spec: spec, seenAll: make([]bool, len(spec.ExpectAll))}
}

// missingAll returns the first ExpectAll not matched yet, or nil.
func (w *Watcher) missingAll() *regexp.Regexp {
	for i, seen := range w.seenAll {
		if !seen {
			return w.spec.ExpectAll[i]
		}
	}
	return nil
}

// Verdict returns the verdict so far.
func (w *Watcher) Verdict() Verdict { return w.verdict }

func (w *Watcher) fail(format string, args ...any) Verdict {
	w.verdict = Verdict{Decided: true, Reason: fmt.Sprintf(format, args...)}
	return w.verdict
}

func (w *Watcher) pass() Verdict {
	w.verdict = Verdict{Decided: true, Pass: true}
	return w.verdict
}

// Line feeds one raw console line (see Clean) and returns the verdict, which
// is Decided once the run's outcome is known and the emulator can be stopped.
func (w *Watcher) Line(raw string) Verdict {
	if w.verdict.Decided {
		return w.verdict
	}
	w.lines++
	line := Clean(raw)
	for _, re := range w.spec.Forbid {
		if re.MatchString(line) {
			return w.fail("forbidden line %q (matches %q)", line, re)
		}
	}
	for i, re := range w.spec.ExpectAll {
		if !w.seenAll[i] && re.MatchString(line) {
			w.seenAll[i] = true
		}
	}
	if w.next < len(w.spec.Expect) && w.spec.Expect[w.next].MatchString(line) {
		w.next++
		return w.verdict
	}
	if w.spec.Done != nil && !w.doneSeen {
		if m := w.spec.Done.FindStringSubmatch(line); m != nil {
			if w.next < len(w.spec.Expect) {
				return w.fail("final marker %q before expected %q", line, w.spec.Expect[w.next])
			}
			if re := w.missingAll(); re != nil {
				return w.fail("final marker %q before expected %q", line, re)
			}
			if w.spec.CheckDone != nil {
				if err := w.spec.CheckDone(m); err != nil {
					return w.fail("final marker %q: %v", line, err)
				}
			}
			w.doneSeen = true
			if w.spec.Exit == WantAny {
				return w.pass()
			}
		}
	}
	return w.verdict
}

// Exit reports how the emulator ended and returns the final verdict.
func (w *Watcher) Exit(e Exit) Verdict {
	if w.verdict.Decided {
		return w.verdict
	}
	if e.Kind == ExitAbnormal || e.Kind == ExitNone {
		return w.fail("emulator ended without the kernel's exit: %s; %s", e.Detail, w.waitingFor())
	}
	if w.next < len(w.spec.Expect) || w.missingAll() != nil {
		return w.fail("kernel exited (%s); %s", e.Detail, w.waitingFor())
	}
	if w.spec.Done != nil && !w.doneSeen {
		return w.fail("kernel exited (%s) before the final marker %q", e.Detail, w.spec.Done)
	}
	switch w.spec.Exit {
	case WantSuccess:
		if e.Kind == ExitFailure {
			return w.fail("want a successful exit, got %s", e.Detail)
		}
	case WantFailure:
		if e.Kind == ExitSuccess {
			return w.fail("want a failure exit, got %s", e.Detail)
		}
	}
	return w.pass()
}

// Timeout reports that the run's time ran out and returns the verdict.
func (w *Watcher) Timeout(after string) Verdict {
	if w.verdict.Decided {
		return w.verdict
	}
	if w.lines == 0 {
		return w.fail("timeout after %s with no console output", after)
	}
	return w.fail("timeout after %s; %s", after, w.waitingFor())
}

func (w *Watcher) waitingFor() string {
	switch {
	case w.next < len(w.spec.Expect):
		return fmt.Sprintf("still waiting for %q", w.spec.Expect[w.next])
	case w.missingAll() != nil:
		return fmt.Sprintf("still waiting for %q", w.missingAll())
	case w.spec.Done != nil && !w.doneSeen:
		return fmt.Sprintf("still waiting for %q", w.spec.Done)
	default:
		return "all markers seen, waiting for the exit"
	}
}

// ansiCSI matches the terminal control sequences GRUB and firmware write
// to the serial console (ECMA-48 CSI: ESC [ parameters, intermediates,
// final byte).
var ansiCSI = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]")

// Clean turns a raw serial line into what a person would see: without the
// line ending, without terminal escape sequences, and with only the text
// after the last carriage return (firmware and GRUB end lines with CR LF or
// start them with CR, so a kernel line may follow a bare CR).
func Clean(raw string) string {
	s := strings.TrimRight(raw, "\r\n")
	s = ansiCSI.ReplaceAllString(s, "")
	if i := strings.LastIndexByte(s, '\r'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
