// Package trace defines the compact binary form of a last-level-cache
// reference stream derived from a real program's memory trace: for every
// cache-line reference, the number of instructions the program had retired
// and the line address. It knows nothing about how the stream was produced
// (see package lackey) or consumed (see package sim).
package trace

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Ref is one cache-line reference.
type Ref struct {
	// Instr is the number of instructions the program had retired when it
	// made the reference; it orders references of different programs in a
	// co-run the way equal-speed cores would.
	Instr uint64
	// Line is the byte address shifted right by the line size (6 for 64-byte lines).
	Line uint64
}

// Trace is a whole reference stream held in memory.
type Trace struct {
	Name string
	// Instrs is the number of instructions the program retired in total,
	// which may exceed the last Ref's Instr.
	Instrs uint64
	Refs   []Ref
}

// magic starts every trace file; the digit is the format version.
const magic = "HVLLCT1\n"

// maxName bounds the program name so that a corrupt file cannot make the
// reader allocate without limit.
const maxName = 4096

// ErrFormat reports a file that is not a trace of this format.
var ErrFormat = errors.New("trace: bad format")

// Writer streams references to an io.Writer. Deltas of the instruction
// count and the line address are varint-coded and the whole is deflated,
// which makes typical traces a few bytes per reference.
type Writer struct {
	fw        *flate.Writer
	bw        *bufio.Writer
	lastInstr uint64
	lastLine  uint64
	count     uint64
	buf       [2 * binary.MaxVarintLen64]byte
	err       error
}

// NewWriter writes the header for the named program and returns a Writer.
func NewWriter(w io.Writer, name string) (*Writer, error) {
	if len(name) > maxName {
		return nil, fmt.Errorf("trace: name of %d bytes exceeds %d", len(name), maxName)
	}
	fw, err := flate.NewWriter(w, flate.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("trace: new deflate writer: %w", err)
	}
	tw := &Writer{fw: fw, bw: bufio.NewWriterSize(fw, 1<<16)}
	tw.bw.WriteString(magic)
	n := binary.PutUvarint(tw.buf[:], uint64(len(name)))
	tw.bw.Write(tw.buf[:n])
	tw.bw.WriteString(name)
	return tw, nil
}

// Add appends one reference; instruction counts must not decrease.
func (w *Writer) Add(r Ref) error {
	if w.err != nil {
		return w.err
	}
	if r.Instr < w.lastInstr {
		w.err = fmt.Errorf("trace: instruction count went back from %d to %d", w.lastInstr, r.Instr)
		return w.err
	}
	n := binary.PutUvarint(w.buf[:], r.Instr-w.lastInstr)
	n += binary.PutVarint(w.buf[n:], int64(r.Line-w.lastLine))
	if _, err := w.bw.Write(w.buf[:n]); err != nil {
		w.err = fmt.Errorf("trace: write: %w", err)
		return w.err
	}
	w.lastInstr, w.lastLine = r.Instr, r.Line
	w.count++
	return nil
}

// Close writes the trailer (the total instruction count, which must not be
// below the last reference's) and flushes; it does not close the underlying writer.
func (w *Writer) Close(totalInstrs uint64) error {
	if w.err != nil {
		return w.err
	}
	if totalInstrs < w.lastInstr {
		return fmt.Errorf("trace: total of %d instructions below last reference at %d", totalInstrs, w.lastInstr)
	}
	// A zero instruction delta with a zero line delta cannot be told from a
	// repeated reference, so the trailer is marked by a delta of 0 followed
	// by the escape line delta math.MinInt64 and then the total.
	n := binary.PutUvarint(w.buf[:], 0)
	n += binary.PutVarint(w.buf[n:], trailerEscape)
	w.bw.Write(w.buf[:n])
	n = binary.PutUvarint(w.buf[:], totalInstrs)
	w.bw.Write(w.buf[:n])
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("trace: flush: %w", err)
	}
	if err := w.fw.Close(); err != nil {
		return fmt.Errorf("trace: close deflate: %w", err)
	}
	return nil
}

// trailerEscape is a line delta no real pair of 58-bit line addresses produces.
const trailerEscape = -1 << 63

// Read decodes a whole trace. It validates everything it reads, so that a
// truncated or corrupt file yields an error rather than a bogus trace.
func Read(r io.Reader) (*Trace, error) {
	br := bufio.NewReaderSize(flate.NewReader(r), 1<<16)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("trace: read header: %w", errors.Join(ErrFormat, err))
	}
	if string(head) != magic {
		return nil, fmt.Errorf("trace: magic %q: %w", head, ErrFormat)
	}
	nameLen, err := binary.ReadUvarint(br)
	if err != nil || nameLen > maxName {
		return nil, fmt.Errorf("trace: name length: %w", ErrFormat)
	}
	name := make([]byte, nameLen)
	if _, err := io.ReadFull(br, name); err != nil {
		return nil, fmt.Errorf("trace: name: %w", errors.Join(ErrFormat, err))
	}
	t := &Trace{Name: string(name)}
	var instr, line uint64
	for {
		di, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("trace: %s: reference %d: %w", t.Name, len(t.Refs), errors.Join(ErrFormat, err))
		}
		dl, err := binary.ReadVarint(br)
		if err != nil {
			return nil, fmt.Errorf("trace: %s: reference %d: %w", t.Name, len(t.Refs), errors.Join(ErrFormat, err))
		}
		if di == 0 && dl == trailerEscape {
			total, err := binary.ReadUvarint(br)
			if err != nil {
				return nil, fmt.Errorf("trace: %s: trailer: %w", t.Name, errors.Join(ErrFormat, err))
			}
			if total < instr {
				return nil, fmt.Errorf("trace: %s: total %d below last reference %d: %w", t.Name, total, instr, ErrFormat)
			}
			t.Instrs = total
			return t, nil
		}
		if instr+di < instr {
			return nil, fmt.Errorf("trace: %s: instruction count overflows: %w", t.Name, ErrFormat)
		}
		instr += di
		line += uint64(dl)
		t.Refs = append(t.Refs, Ref{Instr: instr, Line: line})
	}
}

// ReadFile reads the trace stored in the named file.
func ReadFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: open: %w", err)
	}
	defer f.Close()
	t, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("trace: %s: %w", path, err)
	}
	return t, nil
}

// WriteFile stores t in the named file.
func WriteFile(path string, t *Trace) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("trace: create: %w", err)
	}
	w, err := NewWriter(f, t.Name)
	if err != nil {
		f.Close()
		return err
	}
	for _, r := range t.Refs {
		if err := w.Add(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Close(t.Instrs); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trace: close %s: %w", path, err)
	}
	return nil
}
