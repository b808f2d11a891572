// Package emurun runs one emulator (QEMU or Bochs) headless with a timeout,
// streams the guest's serial console to a log file and a marker.Watcher, and
// stops the emulator as soon as the watcher has a verdict.
//
// It owns the emulator process and its files; what a run expects is the
// caller's (a marker.Spec), and how the machine looks is package
// hv/tools/emu's.
package emurun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"hv/tools/emu"
	"hv/tools/marker"
)

// Job is one emulator run.
type Job struct {
	Name string
	// Exactly one of QEMU and Bochs. QEMU's Serial is replaced by stdio;
	// Bochs' SerialFile and LogFile are placed in a private directory.
	QEMU  *emu.QEMU
	Bochs *emu.Bochs
	Spec  marker.Spec
	// Timeout bounds the whole run, emulator start-up included.
	Timeout time.Duration
	// LogDir receives <Name>.log (the serial console, raw) and
	// <Name>.emu.log (the emulator's own messages).
	LogDir string
	// OnLine, if set, sees every console line, cleaned (marker.Clean).
	OnLine func(line string)
	// Input is typed on the console, in order (QEMU only: Bochs' serial
	// port is a file).
	Input []Input
	// Wrap, if set, is a command QEMU runs under, which must exec it (its
	// process is QEMU's), e.g. "ip netns exec NS" (QEMU only).
	Wrap []string
}

// Input is console input that waits for the machine: Bytes are written to
// the serial port once a console line (cleaned, as OnLine sees it) matches
// After, the first line after the previous Input was sent. A line without
// its newline (a shell prompt) cannot be waited for.
type Input struct {
	After *regexp.Regexp
	Bytes []byte
}

// Result is a finished run.
type Result struct {
	Name      string
	Verdict   marker.Verdict
	Exit      marker.Exit // Kind ExitNone if the runner stopped the emulator
	Elapsed   time.Duration
	SerialLog string
	EmuLog    string
}

// Run runs j to a verdict. Errors in setting the run up (a bad machine
// description, a missing emulator binary) are failed verdicts, not Go
// errors, so that a table of runs reports every one of them.
func Run(ctx context.Context, j Job) Result {
	start := time.Now()
	res := Result{
		Name:      j.Name,
		SerialLog: filepath.Join(j.LogDir, j.Name+".log"),
		EmuLog:    filepath.Join(j.LogDir, j.Name+".emu.log"),
	}
	v, exit, err := run(ctx, j, res.SerialLog, res.EmuLog)
	if err != nil {
		v = marker.Verdict{Decided: true, Reason: err.Error()}
	}
	res.Verdict, res.Exit, res.Elapsed = v, exit, time.Since(start)
	return res
}

// session is the part shared by both emulators: a process whose console
// lines arrive on a channel.
type session struct {
	cmd   *exec.Cmd
	lines <-chan string // closed when the console has no more output
	// stopTail, if set, tells a file tailer that the process is gone and
	// it should finish after one last read.
	stopTail func()
	// after, if set, runs once the process is gone, however it ended.
	after func()
	// stdin, if set, is the console's input.
	stdin io.WriteCloser
}

func run(ctx context.Context, j Job, serialLog, emuLog string) (marker.Verdict, marker.Exit, error) {
	none := marker.Exit{Kind: marker.ExitNone, Status: -1}
	if (j.QEMU == nil) == (j.Bochs == nil) {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %s: want exactly one of QEMU and Bochs", j.Name)
	}
	if (len(j.Input) > 0 || len(j.Wrap) > 0) && j.QEMU == nil {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %s: console input or Wrap needs QEMU", j.Name)
	}
	for _, in := range j.Input {
		if in.After == nil {
			return marker.Verdict{}, none, fmt.Errorf("emurun: %s: console input %q waits for no line", j.Name, in.Bytes)
		}
	}
	if j.Timeout <= 0 {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %s: no timeout", j.Name)
	}
	if err := os.MkdirAll(j.LogDir, 0o755); err != nil {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %w", err)
	}
	serial, err := os.Create(serialLog)
	if err != nil {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %w", err)
	}
	defer serial.Close()
	emuOut, err := os.Create(emuLog)
	if err != nil {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %w", err)
	}
	defer emuOut.Close()

	ctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()

	var s *session
	var classify func(waitErr error) marker.Exit
	if j.QEMU != nil {
		s, classify, err = startQEMU(ctx, *j.QEMU, j.Wrap, len(j.Input) > 0, serial, emuOut)
	} else {
		var work string
		work, err = os.MkdirTemp("", "hv-bochs-")
		if err != nil {
			return marker.Verdict{}, none, fmt.Errorf("emurun: %w", err)
		}
		defer os.RemoveAll(work)
		s, classify, err = startBochs(ctx, *j.Bochs, work, serial, emuOut)
	}
	if err != nil {
		return marker.Verdict{}, none, fmt.Errorf("emurun: %s: %w", j.Name, err)
	}

	w := marker.NewWatcher(j.Spec)
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	input := j.Input
	feed := func(line string) {
		clean := marker.Clean(line)
		if j.OnLine != nil {
			j.OnLine(clean)
		}
		w.Line(line)
		if len(input) > 0 && input[0].After.MatchString(clean) {
			// A machine that is gone cannot take input; its verdict
			// comes from the console and the exit.
			_, _ = s.stdin.Write(input[0].Bytes)
			input = input[1:]
		}
	}
	// drain feeds what the console still holds once the process is gone.
	drain := func() {
		if s.stopTail != nil {
			s.stopTail()
		}
		for l := range s.lines {
			feed(l)
		}
		if s.after != nil {
			s.after()
		}
	}
	kill := func() {
		s.cmd.Process.Kill()
		<-exited
		drain()
	}
	lines := s.lines
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil // console closed; wait for the process
				continue
			}
			feed(l)
			if v := w.Verdict(); v.Decided {
				kill()
				return v, none, nil
			}
		case werr := <-exited:
			drain()
			if ctx.Err() == context.DeadlineExceeded {
				return w.Timeout(j.Timeout.String()), none, nil
			}
			if ctx.Err() != nil {
				return marker.Verdict{Decided: true, Reason: "interrupted"}, none, nil
			}
			e := classify(werr)
			return w.Exit(e), e, nil
		}
	}
}

// startQEMU starts QEMU with the serial console on its stdout, read through
// a pipe so that lines arrive as the guest writes them, and, with input,
// the console's input on a pipe to its stdin.
func startQEMU(ctx context.Context, q emu.QEMU, wrap []string, input bool, serialLog, emuLog io.Writer) (*session, func(error) marker.Exit, error) {
	q.Serial = "stdio"
	args, err := q.Args()
	if err != nil {
		return nil, nil, err
	}
	bin := q.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if len(wrap) > 0 {
		args = append(append(wrap[1:len(wrap):len(wrap)], bin), args...)
		bin = wrap[0]
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	fmt.Fprintf(emuLog, "$ %s %s\n", bin, strings.Join(args, " "))
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	var stdin io.WriteCloser
	if input {
		if stdin, err = cmd.StdinPipe(); err != nil {
			pr.Close()
			pw.Close()
			return nil, nil, err
		}
	}
	cmd.Stdout = pw
	cmd.Stderr = emuLog
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, nil, err
	}
	pw.Close() // the child holds the write end; EOF comes when it exits
	lines := make(chan string, 64)
	go func() {
		defer pr.Close()
		splitLines(io.TeeReader(pr, serialLog), lines)
	}()
	classify := func(waitErr error) marker.Exit {
		var ee *exec.ExitError
		switch {
		case waitErr == nil:
			return marker.QEMUExit(0)
		case errors.As(waitErr, &ee) && ee.Exited():
			return marker.QEMUExit(ee.ExitCode())
		default:
			return marker.Exit{Kind: marker.ExitAbnormal, Status: -1, Detail: fmt.Sprintf("qemu: %v", waitErr)}
		}
	}
	return &session{cmd: cmd, lines: lines, stdin: stdin}, classify, nil
}

// startBochs writes the configuration into work and starts Bochs. Bochs can
// only send COM1 to a file, which is tailed.
func startBochs(ctx context.Context, b emu.Bochs, work string, serialLog, emuLog io.Writer) (*session, func(error) marker.Exit, error) {
	b.SerialFile = filepath.Join(work, "com1.txt")
	b.LogFile = filepath.Join(work, "bochs.log")
	cfg, err := b.Config()
	if err != nil {
		return nil, nil, err
	}
	cfgPath, rcPath := filepath.Join(work, "bochsrc"), filepath.Join(work, "cont.rc")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(rcPath, []byte("c\n"), 0o644); err != nil {
		return nil, nil, err
	}
	// Create the serial file first, so the tailer never races Bochs.
	if err := os.WriteFile(b.SerialFile, nil, 0o644); err != nil {
		return nil, nil, err
	}
	args := emu.BochsArgs(cfgPath, rcPath)
	bin := b.Binary
	if bin == "" {
		bin = "bochs"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = work
	fmt.Fprintf(emuLog, "$ %s %s\n--- bochsrc\n%s---\n", bin, strings.Join(args, " "), cfg)
	var out bytes.Buffer // Bochs' stdout also has port 0xE9 output and its exit message
	cmd.Stdout = io.MultiWriter(&out, emuLog)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(b.SerialFile)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, err
	}
	stop := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		defer f.Close()
		splitLines(io.TeeReader(&tailReader{f: f, stop: stop}, serialLog), lines)
	}()
	// Bochs' own log lives in work, which goes away with the run: keep a
	// copy with the emulator output.
	after := func() {
		log, _ := os.ReadFile(b.LogFile)
		fmt.Fprintf(emuLog, "--- bochs log\n%s", log)
	}
	classify := func(error) marker.Exit {
		log, _ := os.ReadFile(b.LogFile)
		all := out.String() + string(log)
		if strings.Contains(all, emu.BochsShutdownMessage) {
			return marker.Exit{Kind: marker.ExitUnknownStatus, Status: -1, Detail: "bochs shutdown port (status not visible)"}
		}
		return marker.Exit{Kind: marker.ExitAbnormal, Status: -1, Detail: "bochs ended: " + lastPanic(all)}
	}
	var stopped bool
	stopTail := func() {
		if !stopped {
			stopped = true
			close(stop)
		}
	}
	return &session{cmd: cmd, lines: lines, stopTail: stopTail, after: after}, classify, nil
}

// lastPanic picks the line that best says why Bochs stopped.
func lastPanic(out string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "PANIC") || strings.Contains(lines[i], "FATAL") {
			return strings.TrimSpace(lines[i])
		}
	}
	return "no panic message in its log"
}

// tailReader reads a file that another process is still writing: at EOF it
// polls until stop is closed, then returns what is left and io.EOF.
type tailReader struct {
	f    *os.File
	stop <-chan struct{}
	done bool
}

// pollInterval is how often a growing file is checked: Bochs offers no
// notification, and a console line a few tens of milliseconds late does not
// change a verdict.
const pollInterval = 50 * time.Millisecond

func (t *tailReader) Read(p []byte) (int, error) {
	for {
		n, err := t.f.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if t.done {
			return 0, io.EOF
		}
		select {
		case <-t.stop:
			t.done = true // one more read picks up the final bytes
		case <-time.After(pollInterval):
		}
	}
}

// maxLine bounds a console line: a kernel that prints without newlines must
// not make the runner buffer without limit.
const maxLine = 64 << 10

// splitLines sends every line of r (without the newline) to lines, cutting
// lines longer than maxLine, then the unterminated rest, if any, and closes
// lines.
func splitLines(r io.Reader, lines chan<- string) {
	defer close(lines)
	br := bufio.NewReaderSize(r, maxLine)
	for {
		l, err := br.ReadSlice('\n')
		if len(l) > 0 {
			lines <- strings.TrimSuffix(string(l), "\n")
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
