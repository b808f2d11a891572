package snapshot

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	e := NewEncoder("dev", 2)
	e.U8(7)
	e.Bool(true)
	e.U16(0xBEEF)
	e.U32(0xDEADBEEF)
	e.U64(1 << 60)
	e.Bytes([]byte("abc"))
	blob := e.Finish()

	d, err := NewDecoder(blob, "dev", 2)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != 2 {
		t.Errorf("version %d", d.Version)
	}
	if v := d.U8(); v != 7 {
		t.Errorf("U8 %d", v)
	}
	if !d.Bool() {
		t.Error("Bool false")
	}
	if v := d.U16(); v != 0xBEEF {
		t.Errorf("U16 %#x", v)
	}
	if v := d.U32(); v != 0xDEADBEEF {
		t.Errorf("U32 %#x", v)
	}
	if v := d.U64(); v != 1<<60 {
		t.Errorf("U64 %#x", v)
	}
	if v := d.Bytes(3); string(v) != "abc" {
		t.Errorf("Bytes %q", v)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestCorrupt(t *testing.T) {
	e := NewEncoder("dev", 1)
	e.U32(5)
	good := e.Finish()

	flip := append([]byte(nil), good...)
	flip[len(flip)-6] ^= 1

	tests := []struct {
		name string
		blob []byte
		tag  string
		max  uint16
	}{
		{"empty", nil, "dev", 1},
		{"short", good[:5], "dev", 1},
		{"bit flip", flip, "dev", 1},
		{"other device", good, "uart", 1},
		{"future version", good, "dev", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder(tc.blob, tc.tag, tc.max)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}

	d, err := NewDecoder(good, "dev", 1)
	if err != nil {
		t.Fatal(err)
	}
	d.U64() // reads past the end
	if err := d.Finish(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("overread: err = %v", err)
	}
	d, _ = NewDecoder(good, "dev", 1)
	if err := d.Finish(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing bytes: err = %v", err)
	}
}

func FuzzDecoder(f *testing.F) {
	e := NewEncoder("dev", 1)
	e.Bytes([]byte("xyz"))
	e.Bool(false)
	f.Add(e.Finish())
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, Reseal(blob)} {
			d, err := NewDecoder(b, "dev", 1)
			if err != nil {
				continue
			}
			d.Bytes(16)
			d.Bool()
			_ = d.Finish()
		}
	})
}
