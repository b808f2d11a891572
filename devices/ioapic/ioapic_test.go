package ioapic

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/snapshot"
	"hv/devices/lapic"
)

type rig struct {
	x    *IOAPIC
	b    *bus.Bus
	sent []lapic.Message
}

func newRig(t *testing.T) *rig {
	r := &rig{b: bus.New()}
	r.x = New(2, func(m lapic.Message) { r.sent = append(r.sent, m) })
	if err := r.x.Install(r.b, DefaultBase); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) write(reg uint8, v uint32) {
	_ = r.b.WriteMMIO(DefaultBase, []byte{reg, 0, 0, 0})
	_ = r.b.WriteMMIO(DefaultBase+0x10, binary.LittleEndian.AppendUint32(nil, v))
}

func (r *rig) read(reg uint8) uint32 {
	_ = r.b.WriteMMIO(DefaultBase, []byte{reg, 0, 0, 0})
	var d [4]byte
	_ = r.b.ReadMMIO(DefaultBase+0x10, d[:])
	return binary.LittleEndian.Uint32(d[:])
}

func (r *rig) program(pin int, entry uint64) {
	r.write(uint8(RegRedTbl+2*pin+1), uint32(entry>>32))
	r.write(uint8(RegRedTbl+2*pin), uint32(entry))
}

func (r *rig) take() []lapic.Message {
	s := r.sent
	r.sent = nil
	return s
}

func TestIdentificationRegisters(t *testing.T) {
	r := newRig(t)
	got := []uint32{r.read(RegID), r.read(RegVersion), r.read(RegArb), r.read(RegRedTbl), r.read(RegRedTbl + 47), r.read(0x50)}
	want := []uint32{2 << 24, 0x00170020, 2 << 24, ReMasked, 0, 0}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("registers (-want +got):\n%s", d)
	}
	r.write(RegID, 0xFFFFFFFF)
	if v := r.read(RegID); v != 0x0F000000 {
		t.Errorf("ID after all-ones write %#x", v)
	}
	r.write(RegVersion, 0)
	if v := r.read(RegVersion); v != 0x00170020 {
		t.Errorf("version is writable: %#x", v)
	}
	// Read-only bits of an entry ignore writes.
	r.program(3, 0xFFFFFFFF_FFFFFFFF)
	if e := r.x.Entry(3); e != reWritable {
		t.Errorf("entry after all-ones write %#x, want %#x", e, uint64(reWritable))
	}
}

func TestEdgeDelivery(t *testing.T) {
	r := newRig(t)
	r.program(4, 0x03<<56|reLogical|uint64(lapic.LowestPriority)<<8|0x34)
	r.x.SetIRQ(4, true)
	r.x.SetIRQ(4, true) // no new edge
	r.x.SetIRQ(4, false)
	want := []lapic.Message{{Vector: 0x34, Mode: lapic.LowestPriority, Logical: true, Dest: 3, Assert: true}}
	if d := cmp.Diff(want, r.take()); d != "" {
		t.Errorf("edge (-want +got):\n%s", d)
	}
	// Masked edges are lost, not held.
	r.program(4, ReMasked|0x34)
	r.x.SetIRQ(4, true)
	r.x.SetIRQ(4, false)
	r.program(4, 0x34)
	if got := r.take(); len(got) != 0 {
		t.Errorf("masked edge delivered: %v", got)
	}
}

func TestLevelRemoteIRRAndEOI(t *testing.T) {
	r := newRig(t)
	line, err := r.x.Line(19)
	if err != nil {
		t.Fatal(err)
	}
	// PCI style: level, active low (polarity describes the board, the line
	// carries the logical request).
	r.program(19, reLevel|reActiveLow|0x51)
	if got := r.take(); len(got) != 0 {
		t.Fatalf("idle line delivered %v", got)
	}
	line.Set(true)
	line.Set(true)
	if got := r.take(); len(got) != 1 || got[0].Vector != 0x51 || !got[0].Level {
		t.Fatalf("level delivery %v", got)
	}
	if r.x.Entry(19)&reRemoteIRR == 0 {
		t.Fatal("Remote IRR clear after delivery")
	}
	r.x.EOI(0x50) // other vector
	if got := r.take(); len(got) != 0 {
		t.Fatalf("EOI of another vector redelivered: %v", got)
	}
	r.x.EOI(0x51) // still asserted: again
	if got := r.take(); len(got) != 1 {
		t.Fatalf("EOI with line active delivered %d", len(got))
	}
	line.Set(false) // device deasserts
	_ = r.b.WriteMMIO(DefaultBase+0x40, []byte{0x51, 0, 0, 0})
	if r.x.Entry(19)&reRemoteIRR != 0 {
		t.Error("EOI register left Remote IRR set")
	}
	if got := r.take(); len(got) != 0 {
		t.Errorf("deasserted line delivered %v", got)
	}
	// Masked while active, then unmasked: delivered at unmask.
	r.program(19, ReMasked|reLevel|reActiveLow|0x51)
	line.Set(true)
	if got := r.take(); len(got) != 0 {
		t.Fatal("masked level delivered")
	}
	r.program(19, reLevel|reActiveLow|0x51)
	if got := r.take(); len(got) != 1 {
		t.Errorf("unmask delivered %d", len(got))
	}
	if _, err := r.x.Line(24); err == nil {
		t.Error("pin 24 accepted")
	}
}

func TestWithLAPICs(t *testing.T) {
	router := lapic.NewRouter()
	var x *IOAPIC
	a := lapic.New(lapic.Config{ID: 0, BSP: true, SendIPI: router.SendIPI, EOI: func(v uint8) { x.EOI(v) }})
	router.Add(a)
	x = New(0, router.Deliver)
	a.Write(lapic.RegSVR, []byte{0xFF, 1, 0, 0})
	x.Write(0, []byte{RegRedTbl + 2*10})
	x.Write(0x10, binary.LittleEndian.AppendUint32(nil, reLevel|0x70))
	x.SetIRQ(10, true)
	if v, ok := a.PendingVector(); !ok || v != 0x70 || !a.Acknowledge(v) {
		t.Fatalf("vector %#x %v", v, ok)
	}
	x.SetIRQ(10, false)
	a.Write(lapic.RegEOI, []byte{0, 0, 0, 0})
	if x.Entry(10)&reRemoteIRR != 0 {
		t.Error("LAPIC EOI did not reach the I/O APIC")
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.program(9, reLevel|0x61)
	r.x.SetIRQ(9, true)
	blob, _ := r.x.SaveState()
	y := New(0, nil)
	if err := y.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	again, _ := y.SaveState()
	if !bytes.Equal(blob, again) {
		t.Error("restore not lossless")
	}
	bad := append([]byte(nil), blob...)
	off := 4 + 1 + len(stateTag) + 2 + 4 + 1 + 9*9 // entry 9
	bad[off+2] |= 0x80                             // bit 23: reserved
	if err := y.RestoreState(snapshot.Reseal(bad)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("reserved bits: %v", err)
	}
	if err := y.RestoreState(blob[:10]); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
}

func FuzzRegisters(f *testing.F) {
	f.Add([]byte{0, 0x20, 1, 0x34, 2, 0x80, 3, 4, 4, 0x34})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch op % 6 {
			case 0:
				_ = r.b.WriteMMIO(DefaultBase+uint64(op>>3)%0x50, []byte{v})
			case 1:
				_ = r.b.WriteMMIO(DefaultBase+0x10, []byte{v, op, v, v})
			case 2:
				var d [4]byte
				_ = r.b.ReadMMIO(DefaultBase+uint64(v)%0x50, d[:1+op>>6])
			case 3:
				r.x.SetIRQ(int(v)%30-3, op&8 != 0)
			case 4:
				r.x.EOI(v)
			case 5:
				blob, _ := r.x.SaveState()
				if err := r.x.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
			}
			for pin := range Pins {
				e := r.x.Entry(pin)
				if e&reRemoteIRR != 0 && e&reLevel == 0 {
					t.Fatalf("pin %d: Remote IRR on an edge entry", pin)
				}
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	seed, _ := New(0, nil).SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			x := New(0, nil)
			if x.RestoreState(b) != nil {
				continue
			}
			for pin := range Pins {
				x.SetIRQ(pin, true)
				x.EOI(uint8(pin))
			}
		}
	})
}
