package pc

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// maxLine bounds a console line: a guest that never sends a newline must
// not make the host buffer grow.
const maxLine = 512

// LineWriter turns a guest's console bytes into lines on the hypervisor's
// console, each prefixed with the VM's name. Control characters other than
// tab are shown escaped so a guest cannot drive the host's terminal.
type LineWriter struct {
	mu   sync.Mutex
	name string
	out  io.Writer
	buf  bytes.Buffer
	// tail keeps the last lines for callers that judge a run.
	tail []string
}

// tailLines is how many lines Lines keeps.
const tailLines = 64

// NewLineWriter returns a writer prefixing lines with name; a nil out
// discards them (Lines still keeps the tail).
func NewLineWriter(name string, out io.Writer) *LineWriter {
	if out == nil {
		out = io.Discard
	}
	return &LineWriter{name: name, out: out}
}

// Write implements io.Writer.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		switch {
		case c == '\n':
			w.flushLocked()
		case c == '\r':
		case c == '\t' || c >= 0x20 && c < 0x7F:
			w.buf.WriteByte(c)
		default:
			fmt.Fprintf(&w.buf, "\\x%02x", c)
		}
		if w.buf.Len() >= maxLine {
			w.flushLocked()
		}
	}
	return len(p), nil
}

func (w *LineWriter) flushLocked() {
	line := w.buf.String()
	fmt.Fprintf(w.out, "%s: %s\n", w.name, line)
	w.tail = append(w.tail, line)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
	w.buf.Reset()
}

// Flush writes out a partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.flushLocked()
	}
}

// Lines returns the last lines written.
func (w *LineWriter) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}
