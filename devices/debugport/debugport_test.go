package debugport

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/snapshot"
)

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		port uint16
		data []byte
		want []uint32
	}{
		{"outb 0", 0xF4, []byte{0}, []uint32{1}},
		{"outb 1", 0xF4, []byte{1}, []uint32{3}},
		{"outb 0x10", 0xF4, []byte{0x10}, []uint32{0x21}},
		{"outw", 0xF4, []byte{0x34, 0x12}, []uint32{0x2469}},
		{"outl", 0xF4, []byte{1, 0, 0, 0x80}, []uint32{3}}, // v<<1 drops bit 31, as QEMU's int arithmetic does
		{"outb at 0xF5", 0xF5, []byte{2}, []uint32{5}},
		{"outl straddling the end", 0xF6, []byte{7, 0, 0, 0}, []uint32{15}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint32
			b := bus.New()
			if err := Install(b, NewPOST(), NewExit(func(s uint32) { got = append(got, s) })); err != nil {
				t.Fatal(err)
			}
			if err := b.WritePort(tc.port, tc.data); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPOST(t *testing.T) {
	p := NewPOST()
	b := bus.New()
	if err := Install(b, p, NewExit(nil)); err != nil {
		t.Fatal(err)
	}
	var d [1]byte
	_ = b.ReadPort(0x80, d[:])
	if d[0] != 0 {
		t.Fatalf("power-on POST code %#x", d[0])
	}
	_ = b.WritePort(0x80, []byte{0x55})
	_ = b.WritePort(0x80, []byte{0xAA, 0x11}) // only the byte at 0x80 is the code
	_ = b.ReadPort(0x80, d[:])
	if code, n := p.Last(); d[0] != 0xAA || code != 0xAA || n != 2 {
		t.Fatalf("read %#x, Last = %#x, %d; want 0xAA, 2", d[0], code, n)
	}
	blob, _ := p.SaveState()
	q := NewPOST()
	if err := q.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if code, n := q.Last(); code != 0xAA || n != 2 {
		t.Fatalf("restored Last = %#x, %d", code, n)
	}
	p.Reset()
	if code, n := p.Last(); code != 0 || n != 0 {
		t.Fatalf("after reset Last = %#x, %d", code, n)
	}
	if err := q.RestoreState(blob[:len(blob)-1]); err == nil {
		t.Fatal("truncated blob accepted")
	}
	x := NewExit(nil)
	xb, _ := x.SaveState()
	if err := x.RestoreState(xb); err != nil {
		t.Fatal(err)
	}
	if err := x.RestoreState(blob); err == nil {
		t.Fatal("POST blob accepted by exit port")
	}
}

func FuzzRegisters(f *testing.F) {
	f.Add(uint16(0x80), []byte{1, 2})
	f.Fuzz(func(t *testing.T, port uint16, data []byte) {
		var calls int
		p := NewPOST()
		b := bus.New()
		if err := Install(b, p, NewExit(func(s uint32) {
			if s&1 == 0 {
				t.Fatalf("even exit status %#x", s)
			}
			calls++
		})); err != nil {
			t.Fatal(err)
		}
		if len(data) > 4 {
			data = data[:4]
		}
		_ = b.WritePort(port, data)
		_ = b.ReadPort(port, make([]byte, 4))
		if calls > 1 {
			t.Fatalf("%d exits for one write", calls)
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	seed, _ := NewPOST().SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			p := NewPOST()
			if p.RestoreState(b) == nil {
				again, _ := p.SaveState()
				if !bytes.Equal(again, b) {
					t.Fatal("accepted blob does not round-trip")
				}
			}
			_ = NewExit(nil).RestoreState(b)
		}
	})
}
