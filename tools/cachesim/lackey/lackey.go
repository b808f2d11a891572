// Package lackey reduces the memory trace that `valgrind --tool=lackey
// --trace-mem=yes` prints into the line-reference stream that reaches a
// core's second-level cache: every instruction fetch and data access is
// passed through private L1 instruction and data caches, and only their
// misses are kept, tagged with the instruction count. That turns hundreds of
// megabytes of text into a small trace.Trace; the package knows nothing of
// shared caches.
package lackey

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"hv/tools/cachesim/sim"
	"hv/tools/cachesim/trace"
)

// LineShift is log2 of the 64-byte cache line of every x86 processor in
// use (Intel SDM Vol. 3A §12.1, "Internal caches"; AMD APM Vol. 2 §7.1).
const LineShift = 6

// L1 is the private first-level geometry applied to instruction and data
// streams alike: 32 KiB, 8-way, 64 sets, as in Intel cores from Nehalem to
// Skylake and AMD Zen (Intel Optimization Manual, table "Cache parameters").
var L1 = sim.Config{Sets: 64, Ways: 8}

// Access kinds as lackey prints them in the first two columns.
const (
	kindInstr  = 'I'
	kindLoad   = 'L'
	kindStore  = 'S'
	kindModify = 'M'
)

// maxAccessSize bounds one access; lackey prints sizes up to the widest
// vector register (64 bytes for AVX-512) and anything larger is corrupt input.
const maxAccessSize = 1 << 12

// ErrSyntax reports a trace line that is neither a record nor valgrind's
// own commentary.
var ErrSyntax = errors.New("lackey: syntax")

// Reducer filters a lackey trace through private L1 caches.
type Reducer struct {
	l1i, l1d *sim.Cache
	out      func(trace.Ref) error
	// Instrs counts instruction records seen so far.
	Instrs uint64
	// Accesses counts line accesses made to the L1 caches.
	Accesses uint64
	// Misses counts L1 misses, that is references emitted.
	Misses uint64
}

// NewReducer returns a reducer that passes each L1 miss to out.
func NewReducer(out func(trace.Ref) error) (*Reducer, error) {
	l1i, err := sim.NewCache(L1, 1)
	if err != nil {
		return nil, fmt.Errorf("lackey: L1I: %w", err)
	}
	l1d, err := sim.NewCache(L1, 1)
	if err != nil {
		return nil, fmt.Errorf("lackey: L1D: %w", err)
	}
	return &Reducer{l1i: l1i, l1d: l1d, out: out}, nil
}

// Line consumes one line of lackey output (without its newline). Lines that
// valgrind prints about itself ("==pid== ...") and blank lines are skipped.
func (r *Reducer) Line(b []byte) error {
	if len(b) == 0 || b[0] == '=' || b[0] == '-' {
		return nil
	}
	kind, addr, size, err := parseRecord(b)
	if err != nil {
		return err
	}
	cache := r.l1d
	if kind == kindInstr {
		r.Instrs++
		cache = r.l1i
	}
	first, last := addr>>LineShift, (addr+size-1)>>LineShift
	for line := first; line <= last; line++ {
		r.Accesses++
		// L1 caches are virtually indexed with the set taken from the
		// line-in-page bits, so the virtual line is the right index here.
		if hit, _ := cache.Access(line, line, 0); hit {
			continue
		}
		r.Misses++
		if err := r.out(trace.Ref{Instr: r.Instrs, Line: line}); err != nil {
			return err
		}
	}
	return nil
}

// parseRecord decodes "I  04019b80,4", " L 1fff000828,8", " S ..." or " M ...".
func parseRecord(b []byte) (kind byte, addr, size uint64, err error) {
	if len(b) < 4 {
		return 0, 0, 0, fmt.Errorf("lackey: short record %q: %w", b, ErrSyntax)
	}
	switch {
	case b[0] == kindInstr && b[1] == ' ':
		kind = kindInstr
	case b[0] == ' ' && (b[1] == kindLoad || b[1] == kindStore || b[1] == kindModify) && b[2] == ' ':
		kind = b[1]
	default:
		return 0, 0, 0, fmt.Errorf("lackey: record %q: %w", b, ErrSyntax)
	}
	rest := bytes.TrimLeft(b[2:], " ")
	comma := bytes.IndexByte(rest, ',')
	if comma <= 0 {
		return 0, 0, 0, fmt.Errorf("lackey: record %q lacks address,size: %w", b, ErrSyntax)
	}
	addr, ok := parseUint(rest[:comma], 16)
	if !ok {
		return 0, 0, 0, fmt.Errorf("lackey: address in %q: %w", b, ErrSyntax)
	}
	size, ok = parseUint(bytes.TrimRight(rest[comma+1:], " \r"), 10)
	if !ok || size == 0 || size > maxAccessSize {
		return 0, 0, 0, fmt.Errorf("lackey: size in %q: %w", b, ErrSyntax)
	}
	if addr+size-1 < addr {
		return 0, 0, 0, fmt.Errorf("lackey: access %q wraps the address space: %w", b, ErrSyntax)
	}
	return kind, addr, size, nil
}

// parseUint is strconv.ParseUint without the allocation of a string for
// each of the tens of millions of records.
func parseUint(b []byte, base uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		v = v*base + d
	}
	if base == 10 && len(b) > 10 {
		return 0, false
	}
	return v, true
}

// Reduce reads a whole lackey trace from r and writes the L1-miss stream to w.
func Reduce(r io.Reader, w *trace.Writer) (*Reducer, error) {
	red, err := NewReducer(w.Add)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if err := red.Line(sc.Bytes()); err != nil {
			return red, fmt.Errorf("lackey: line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return red, fmt.Errorf("lackey: read line %d: %w", n, err)
	}
	return red, w.Close(red.Instrs)
}
