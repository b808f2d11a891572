package trace

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func encode(t *testing.T, tr *Trace) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tr.Refs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(tr.Instrs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	tests := []*Trace{
		{Name: "empty", Instrs: 0, Refs: nil},
		{Name: "gzip", Instrs: 1000, Refs: []Ref{{1, 0x400}, {1, 0x3ff}, {7, 0x1fff000}, {7, 0x1fff000}, {900, 0}}},
		{Name: "wide", Instrs: 1 << 40, Refs: []Ref{{0, 1<<58 - 1}, {1 << 40, 0}}},
	}
	for _, want := range tests {
		got, err := Read(bytes.NewReader(encode(t, want)))
		if err != nil {
			t.Fatalf("%s: %v", want.Name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", want.Name, diff)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	w, _ := NewWriter(&bytes.Buffer{}, "x")
	w.Add(Ref{Instr: 5})
	if err := w.Add(Ref{Instr: 4}); err == nil {
		t.Error("decreasing instruction count accepted")
	}
	w2, _ := NewWriter(&bytes.Buffer{}, "x")
	w2.Add(Ref{Instr: 5})
	if err := w2.Close(4); err == nil {
		t.Error("total below the last reference accepted")
	}
}

func TestReadRejectsCorruption(t *testing.T) {
	good := encode(t, &Trace{Name: "p", Instrs: 10, Refs: []Ref{{1, 2}, {3, 4}}})
	if _, err := Read(bytes.NewReader(good[:len(good)/2])); err == nil {
		t.Error("truncated trace accepted")
	}
	if _, err := Read(bytes.NewReader([]byte("not deflate at all"))); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage gives %v, want ErrFormat", err)
	}
}

// FuzzRead checks that no input makes the reader panic or return a trace
// whose instruction counts run backwards.
func FuzzRead(f *testing.F) {
	f.Add([]byte{})
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, "seed")
	w.Add(Ref{Instr: 3, Line: 9})
	w.Close(10)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		var last uint64
		for _, r := range tr.Refs {
			if r.Instr < last {
				t.Fatalf("instruction count goes back: %d after %d", r.Instr, last)
			}
			last = r.Instr
		}
		if tr.Instrs < last {
			t.Fatalf("total %d below last reference %d", tr.Instrs, last)
		}
	})
}
