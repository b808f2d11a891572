package lackey

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/tools/cachesim/trace"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		in         string
		kind       byte
		addr, size uint64
		ok         bool
	}{
		{"I  04019b80,4", 'I', 0x04019b80, 4, true},
		{" L 1fff000828,8", 'L', 0x1fff000828, 8, true},
		{" S 0ffe,2", 'S', 0xffe, 2, true},
		{" M 7ff0001a0,16", 'M', 0x7ff0001a0, 16, true},
		{" X 10,4", 0, 0, 0, false},
		{"I  zz,4", 0, 0, 0, false},
		{"I  10,0", 0, 0, 0, false},
		{"I  10,99999", 0, 0, 0, false},
		{"I  10", 0, 0, 0, false},
		{" L ffffffffffffffff,8", 0, 0, 0, false}, // wraps
		{"I", 0, 0, 0, false},
	}
	for _, tt := range tests {
		kind, addr, size, err := parseRecord([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%q: error %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("%q: error %v is not ErrSyntax", tt.in, err)
			}
			continue
		}
		if kind != tt.kind || addr != tt.addr || size != tt.size {
			t.Errorf("%q: got %c %#x %d", tt.in, kind, addr, size)
		}
	}
}

func TestReducer(t *testing.T) {
	input := strings.Join([]string{
		"==123== Lackey, an example Valgrind tool",
		"I  00001000,4",  // instr 1: fetch line 0x40 (miss)
		" L 00002038,16", // spans lines 0x80 and 0x81 (two misses)
		"I  00001004,4",  // instr 2: line 0x40 again (hit)
		" S 00002040,8",  // line 0x81 again (hit)
		" M 00002000,4",  // line 0x80 (hit)
		"I  00001040,4",  // instr 3: line 0x41 (miss)
		"",
	}, "\n")
	var got []trace.Ref
	red, err := NewReducer(func(r trace.Ref) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(input, "\n") {
		if err := red.Line([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	want := []trace.Ref{{Instr: 1, Line: 0x40}, {Instr: 1, Line: 0x80}, {Instr: 1, Line: 0x81}, {Instr: 3, Line: 0x41}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("L1 misses (-want +got):\n%s", diff)
	}
	if red.Instrs != 3 || red.Accesses != 7 || red.Misses != 4 {
		t.Errorf("counts: %d instructions, %d accesses, %d misses", red.Instrs, red.Accesses, red.Misses)
	}
	if err := red.Line([]byte("garbage")); !errors.Is(err, ErrSyntax) {
		t.Errorf("garbage line: %v", err)
	}
}

// TestReducerL1Capacity checks the L1 filter's geometry: 8 lines mapping to
// one set fit, a ninth evicts the least recently used.
func TestReducerL1Capacity(t *testing.T) {
	var misses []uint64
	red, _ := NewReducer(func(r trace.Ref) error { misses = append(misses, r.Line); return nil })
	load := func(line uint64) {
		if err := red.Line([]byte(fmt.Sprintf(" L %x,8", line<<LineShift))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(9) {
		load(i * 64) // every 64th line maps to set 0
	}
	load(8 * 64) // hit
	load(0)      // evicted by the ninth: miss again
	want := []uint64{0, 64, 128, 192, 256, 320, 384, 448, 512, 0}
	if diff := cmp.Diff(want, misses); diff != "" {
		t.Errorf("misses (-want +got):\n%s", diff)
	}
}

func FuzzLine(f *testing.F) {
	f.Add([]byte("I  04019b80,4"))
	f.Add([]byte(" M 7ff0001a0,16"))
	f.Add([]byte("==1== x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		red, _ := NewReducer(func(trace.Ref) error { return nil })
		err := red.Line(b)
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("error %v is not ErrSyntax", err)
		}
		if red.Misses > red.Accesses || red.Accesses > maxAccessSize {
			t.Fatalf("%d misses of %d accesses", red.Misses, red.Accesses)
		}
	})
}
