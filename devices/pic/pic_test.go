package pic

import (
	"bytes"
	"fmt"
	"testing"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

// step is one action of a scripted test and, for actions that produce a
// value, what the datasheet says it must be.
type step struct {
	op   string // out, in, irq, ack, has
	a    int    // port or IRQ number
	v    int    // value written / level / expected result
	want int
}

func out(port, v int) step       { return step{op: "out", a: port, v: v} }
func in(port, want int) step     { return step{op: "in", a: port, want: want} }
func irq(n int, level bool) step { return step{op: "irq", a: n, v: b2i(level)} }
func ack(want int) step          { return step{op: "ack", want: want} }
func has(want bool) step         { return step{op: "has", want: b2i(want)} }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pcInit is what a PC BIOS or Linux writes: edge, cascade, ICW4, 8086 mode,
// master vectors 0x20, slave 0x28, slave on IR2.
var pcInit = []step{
	out(0x20, 0x11), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x01),
	out(0xA0, 0x11), out(0xA1, 0x28), out(0xA1, 0x02), out(0xA1, 0x01),
}

func run(t *testing.T, p *Pair, b *bus.Bus, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case "out":
			if err := b.WritePort(uint16(s.a), []byte{byte(s.v)}); err != nil {
				t.Fatal(err)
			}
		case "in":
			var d [1]byte
			if err := b.ReadPort(uint16(s.a), d[:]); err != nil {
				t.Fatal(err)
			}
			if int(d[0]) != s.want {
				t.Fatalf("step %d: in %#x = %#x, want %#x", i, s.a, d[0], s.want)
			}
		case "irq":
			p.SetIRQ(uint8(s.a), s.v != 0)
		case "ack":
			if got := p.Acknowledge(); int(got) != s.want {
				t.Fatalf("step %d: Acknowledge = %#x, want %#x", i, got, s.want)
			}
		case "has":
			if got := p.HasInterrupt(); b2i(got) != s.want {
				t.Fatalf("step %d: HasInterrupt = %v, want %v", i, got, s.want != 0)
			}
		}
	}
}

func newPC(t *testing.T) (*Pair, *bus.Bus, *devtest.Line) {
	t.Helper()
	var intr devtest.Line
	p := New(&intr)
	b := bus.New()
	if err := p.Install(b); err != nil {
		t.Fatal(err)
	}
	return p, b, &intr
}

func TestScripts(t *testing.T) {
	const (
		readIRR = 0x0A // OCW3 RR=1 RIS=0
		readISR = 0x0B // OCW3 RR=1 RIS=1
		eoi     = 0x20 // OCW2 non-specific EOI
	)
	tests := []struct {
		name  string
		steps []step
	}{
		{"deliver and EOI", []step{
			has(false), irq(0, true), has(true), in(0x20, 0x01),
			ack(0x20), has(false), out(0x20, readISR), in(0x20, 0x01),
			out(0x20, readIRR), in(0x20, 0x00),
			out(0x20, eoi), out(0x20, readISR), in(0x20, 0x00),
		}},
		{"fully nested priority", []step{
			irq(3, true), irq(5, true), ack(0x23),
			has(false), // IR5 has lower priority than IR3 in service
			irq(1, true), has(true), ack(0x21),
			out(0x20, readISR), in(0x20, 0x0A),
			// EOI ends IR1; IR3 is still in service, so IR5 still waits and
			// an INTA now gets the spurious IR7 vector.
			out(0x20, eoi), has(false), ack(0x27),
			out(0x20, eoi), has(true), ack(0x25),
		}},
		{"mask", []step{
			out(0x21, 0x01), irq(0, true), has(false), in(0x20, 0x01), in(0x21, 0x01),
			out(0x21, 0x00), has(true), ack(0x20),
		}},
		{"cascade", []step{
			irq(12, true), has(true), ack(0x2C),
			out(0x20, readISR), in(0x20, 0x04), out(0xA0, readISR), in(0xA0, 0x10),
			out(0xA0, eoi), out(0x20, eoi), in(0xA0, 0x00), in(0x20, 0x00), has(false),
		}},
		{"slave requests queue behind cascade", []step{
			irq(9, true), irq(10, true), ack(0x29), has(false),
			out(0xA0, eoi), out(0x20, eoi), has(true), ack(0x2A),
		}},
		{"master spurious", []step{
			ack(0x27), out(0x20, readISR), in(0x20, 0x00),
		}},
		{"edge request survives line drop", []step{
			irq(4, true), irq(4, false), has(true), ack(0x24), out(0x20, eoi),
			irq(4, false), has(false), irq(4, true), irq(4, true), ack(0x24), out(0x20, eoi), has(false),
		}},
		{"level via ELCR", []step{
			out(0x4D1, 0xFF), in(0x4D1, 0xDE), out(0x4D0, 0xFF), in(0x4D0, 0xF8),
			irq(10, true), has(true), irq(10, false), out(0xA0, readIRR), in(0xA0, 0x00),
			// The master latched the slave's INT edge on IR2; the vanished
			// level request becomes the slave's spurious IR7.
			has(true), ack(0x2F), out(0x20, eoi), has(false),
			irq(10, true), ack(0x2A), out(0xA0, readIRR), in(0xA0, 0x04),
		}},
		{"specific EOI", []step{
			irq(1, true), irq(0, false), ack(0x21), out(0x20, 0x60|1), out(0x20, readISR), in(0x20, 0),
		}},
		{"EOI of another level leaves ISR", []step{
			irq(1, true), ack(0x21), out(0x20, 0x60|3), out(0x20, readISR), in(0x20, 0x02),
		}},
		{"rotate on non-specific EOI", []step{
			irq(3, true), ack(0x23), out(0x20, 0xA0), // IR3 becomes lowest: IR4 is highest
			irq(2+0, false), irq(1, true), irq(5, true), ack(0x25),
		}},
		{"set priority", []step{
			out(0x20, 0xC0|5), // IR5 lowest, IR6 highest
			irq(7, true), irq(0, true), ack(0x27),
		}},
		{"rotate on specific EOI", []step{
			irq(0, true), ack(0x20), out(0x20, 0xE0 /* rotate on specific EOI, level 0 */), irq(0, false), irq(0, true), irq(6, true), ack(0x26),
		}},
		{"poll", []step{
			irq(6, true), has(true),
			out(0x20, 0x0C), in(0x20, 0x86), has(false), out(0x20, readISR), in(0x20, 0x40),
			out(0x20, 0x0C), in(0x20, 0x00),
		}},
		{"special mask mode", []step{
			irq(3, true), ack(0x23), irq(5, true), has(false),
			out(0x21, 0x08), out(0x20, 0x68), has(true), ack(0x25), // ESMM|SMM
			out(0x20, 0x48), has(false), // leave special mask mode
		}},
		{"IRR and ISR read select persists", []step{
			irq(7, true), out(0x20, readISR), in(0x20, 0x00), in(0x20, 0x00),
			out(0x20, 0x08), in(0x20, 0x00), // OCW3 without RR keeps ISR selected
			out(0x20, readIRR), in(0x20, 0x80),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, b, _ := newPC(t)
			run(t, p, b, pcInit)
			run(t, p, b, tc.steps)
		})
	}
}

func TestAutoEOI(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, []step{
		out(0x20, 0x11), out(0x21, 0x08), out(0x21, 0x04), out(0x21, 0x03), // ICW4 AEOI|uPM
		irq(2+1, true), ack(0x0B), out(0x20, 0x0B), in(0x20, 0x00),
		out(0x20, 0x80),                           // rotate in AEOI mode: set
		irq(3, false), irq(3, true), irq(4, true), // IR3 is lowest after its ack
		ack(0x0B), irq(3, false), irq(3, true), ack(0x0C),
	})
}

func TestSingleModeSkipsICW3(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, []step{
		out(0x20, 0x13), out(0x21, 0x40), out(0x21, 0x01), // ICW4 follows ICW2 directly
		out(0x21, 0xFE), in(0x21, 0xFE), // now OCW1
		irq(0, true), ack(0x40),
	})
}

func TestICW1ResetsMaskAndEdges(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, pcInit)
	run(t, p, b, []step{
		out(0x21, 0xFF), irq(1, true),
		out(0x20, 0x11), in(0x21, 0x00), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x01),
		has(false), // the edge before ICW1 is forgotten; the line must go low and high again
		irq(1, false), irq(1, true), ack(0x21),
	})
}

func TestSpecialFullyNested(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, []step{
		out(0x20, 0x11), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x11), // SFNM
		out(0xA0, 0x11), out(0xA1, 0x28), out(0xA1, 0x02), out(0xA1, 0x01),
		irq(11, true), ack(0x2B),
		irq(9, true), has(true), ack(0x29), // higher priority on the same slave gets through
	})
	p2, b2, _ := newPC(t)
	run(t, p2, b2, pcInit)
	run(t, p2, b2, []step{irq(11, true), ack(0x2B), irq(9, true), has(false)})
}

func TestIntrOutput(t *testing.T) {
	p, b, intr := newPC(t)
	run(t, p, b, pcInit)
	p.SetIRQ(8, true)
	if !intr.Level() {
		t.Fatal("INTR low with IRQ8 pending")
	}
	p.Acknowledge()
	if intr.Level() {
		t.Fatal("INTR high after acknowledge")
	}
	if intr.Rising() != 1 {
		t.Fatalf("INTR rose %d times, want 1", intr.Rising())
	}
}

func TestLine(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, pcInit)
	if _, err := p.Line(16); err == nil {
		t.Fatal("Line(16) succeeded")
	}
	l, err := p.Line(2)
	if err != nil {
		t.Fatal(err)
	}
	l.Set(true)
	if v := p.Acknowledge(); v != 0x29 {
		t.Fatalf("IRQ2 device acknowledged as %#x, want IRQ9 0x29", v)
	}
}

func TestWideAccessIsByteCycles(t *testing.T) {
	p, b, _ := newPC(t)
	// outw 0x20 writes ICW1 to 0x20 and ICW2 to 0x21.
	if err := b.WritePort(0x20, []byte{0x13, 0x50}); err != nil {
		t.Fatal(err)
	}
	if err := b.WritePort(0x21, []byte{0x01}); err != nil {
		t.Fatal(err)
	}
	p.SetIRQ(0, true)
	if v := p.Acknowledge(); v != 0x50 {
		t.Fatalf("vector %#x, want 0x50", v)
	}
}

func TestSaveRestoreMidOperation(t *testing.T) {
	p, b, _ := newPC(t)
	run(t, p, b, pcInit)
	run(t, p, b, []step{out(0x4D1, 0x04), irq(3, true), ack(0x23), irq(10, true), irq(12, true), out(0x20, 0x0B)})
	blob, err := p.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	var intr2 devtest.Line
	q := New(&intr2)
	qb := bus.New()
	if err := q.Install(qb); err != nil {
		t.Fatal(err)
	}
	if err := q.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	again, _ := q.SaveState()
	if !bytes.Equal(blob, again) {
		t.Fatal("save after restore differs")
	}
	// Both must now behave identically.
	rest := []step{in(0x20, 0x08), has(true), ack(0x2A), irq(10, false), out(0xA0, 0x20), out(0x20, 0x20), in(0x20, 0x08), ack(0x2C)}
	run(t, p, b, rest)
	run(t, q, qb, rest)
}

func TestRestoreRejectsCorrupt(t *testing.T) {
	p, _, _ := newPC(t)
	good, _ := p.SaveState()
	before, _ := p.SaveState()
	bad := append([]byte(nil), good...)
	bad[len(bad)-5] ^= 0xFF
	tests := map[string][]byte{
		"empty":    nil,
		"checksum": bad,
		"resealed": snapshot.Reseal(bad), // a boolean byte that is now 0xFE/0xFF
		"short":    snapshot.Reseal(good[:len(good)-6]),
	}
	// lowest priority field out of range, with a valid checksum.
	lowest := append([]byte(nil), good...)
	lowest[4+1+len(stateTag)+2+6] = 9
	tests["lowest"] = snapshot.Reseal(lowest)
	for name, blob := range tests {
		t.Run(name, func(t *testing.T) {
			if err := p.RestoreState(blob); err == nil {
				t.Fatal("corrupt blob accepted")
			}
			after, _ := p.SaveState()
			if !bytes.Equal(before, after) {
				t.Fatal("failed restore changed state")
			}
		})
	}
}

// FuzzRegisters drives the register file, the IRQ inputs and the INTA cycle
// with random operations. Invariants: no panic; the INTR line equals
// HasInterrupt; save/restore is lossless at every point.
func FuzzRegisters(f *testing.F) {
	f.Add([]byte{0, 0x11, 1, 0x20, 1, 0x04, 1, 0x01, 4, 0x81, 5, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		var intr devtest.Line
		p := New(&intr)
		b := bus.New()
		if err := p.Install(b); err != nil {
			t.Fatal(err)
		}
		ports := []uint16{0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1}
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch op % 8 {
			case 0, 1, 2, 3:
				port := ports[(int(op)/8)%len(ports)]
				_ = b.WritePort(port, []byte{v})
			case 4:
				p.SetIRQ(v&0x0F, v&0x80 != 0)
			case 5:
				p.Acknowledge()
			case 6:
				var d [2]byte
				_ = b.ReadPort(ports[int(v)%len(ports)], d[:1+int(op>>7)])
			case 7:
				blob, err := p.SaveState()
				if err != nil {
					t.Fatal(err)
				}
				if err := p.RestoreState(blob); err != nil {
					t.Fatalf("restore of own state: %v", err)
				}
				again, _ := p.SaveState()
				if !bytes.Equal(blob, again) {
					t.Fatal("state changed by save/restore")
				}
			}
			if intr.Level() != p.HasInterrupt() {
				t.Fatalf("INTR %v but HasInterrupt %v", intr.Level(), p.HasInterrupt())
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	p := New(nil)
	blob, _ := p.SaveState()
	f.Add(blob)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			p := New(nil)
			if err := p.RestoreState(b); err != nil {
				continue
			}
			for i := range 16 {
				p.SetIRQ(uint8(i), true)
				p.Acknowledge()
			}
			_ = fmt.Sprint(p.HasInterrupt())
		}
	})
}
