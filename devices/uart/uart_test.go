package uart

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

type rig struct {
	u     *UART
	sink  bytes.Buffer
	line  devtest.Line
	clock devtest.Clock
}

func newRig() *rig {
	r := &rig{}
	r.u = New(&r.sink, &r.line, &r.clock)
	return r
}

func (r *rig) out(off uint64, v uint8) { r.u.Write(off, []byte{v}) }
func (r *rig) in(off uint64) uint8 {
	var d [1]byte
	r.u.Read(off, d[:])
	return d[0]
}

// step: write ("w"), read and compare ("r"), host receive ("rx"), clock
// advance ("t", ns), IRQ line level check ("irq").
type step struct {
	op   string
	off  uint64
	v    uint8
	s    string
	want uint8
}

func w(off uint64, v uint8) step    { return step{op: "w", off: off, v: v} }
func r(off uint64, want uint8) step { return step{op: "r", off: off, want: want} }
func rx(s string) step              { return step{op: "rx", s: s} }
func adv(ns uint8) step             { return step{op: "t", v: ns} }
func irq(level bool) step {
	if level {
		return step{op: "irq", want: 1}
	}
	return step{op: "irq"}
}

func (rg *rig) run(t *testing.T, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case "w":
			rg.out(s.off, s.v)
		case "r":
			if got := rg.in(s.off); got != s.want {
				t.Fatalf("step %d: read reg %d = %#x, want %#x", i, s.off, got, s.want)
			}
		case "rx":
			rg.u.Receive([]byte(s.s))
		case "t":
			// advance by v character times at 115200 8N1 (86806 ns each)
			rg.clock.Advance(uint64(s.v) * 86806)
			rg.u.Update()
		case "irq":
			if got := rg.line.Level(); got != (s.want == 1) {
				t.Fatalf("step %d: IRQ line %v, want %v", i, got, s.want == 1)
			}
		}
	}
}

// 115200 8N1, FIFO off, OUT2 on (as a PC driver sets it).
var setup = []step{w(regLCR, 0x80), w(regDLL, 1), w(regDLM, 0), w(regLCR, 0x03), w(regMCR, mcrOUT2|mcrDTR|mcrRTS)}

func TestScripts(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		sink  string
	}{
		{"reset values", []step{
			r(regIER, 0), r(regIIR, 0x01), r(regLCR, 0), r(regMCR, 0), r(regLSR, 0x60), r(regMSR, 0xB0), r(regSCR, 0),
		}, ""},
		{"divisor latch", []step{
			w(regLCR, 0x83), w(regDLL, 0x34), w(regDLM, 0x12), r(regDLL, 0x34), r(regDLM, 0x12),
			w(regLCR, 0x03), w(regIER, 0xFF), r(regIER, 0x0F), w(regLCR, 0x83), r(regDLM, 0x12),
		}, ""},
		{"transmit and word length", []step{
			w(regTHR, 'h'), w(regTHR, 'i'), w(regLCR, 0x00), w(regTHR, 'A'), r(regLSR, 0x60),
		}, "hi\x01"},
		{"THRE interrupt", []step{
			irq(false), w(regIER, ierETBEI), irq(true), r(regIIR, iirTHRE),
			irq(false), r(regIIR, iirNoInterrupt), // reading IIR cleared it
			w(regTHR, 'x'), irq(true), r(regIIR, iirTHRE), w(regIER, 0), irq(false),
		}, "x"},
		{"receive without FIFO", []step{
			w(regIER, ierERBFI), rx("ab"), r(regLSR, 0x61), irq(true), r(regIIR, iirRxData),
			r(regRBR, 'a'), r(regLSR, 0x60), r(regIIR, iirNoInterrupt), irq(false), r(regRBR, 0),
		}, ""},
		{"FIFO trigger and timeout", []step{
			w(regFCR, 0x81 /* trigger 8 */), r(regIIR, 0xC1), w(regIER, ierERBFI),
			rx("1234567"), r(regIIR, 0xC1), irq(false),
			rx("8"), r(regIIR, 0xC4), irq(true),
			r(regRBR, '1'), r(regIIR, 0xC1), irq(false),
			adv(3), r(regIIR, 0xC1), adv(1), r(regIIR, 0xCC), irq(true),
			r(regRBR, '2'), r(regIIR, 0xC1), irq(false), // reading restarts the timer
			adv(4), irq(true), r(regRBR, '3'), r(regRBR, '4'), r(regRBR, '5'), r(regRBR, '6'), r(regRBR, '7'), r(regRBR, '8'),
			adv(10), r(regIIR, 0xC1), r(regLSR, 0x60),
		}, ""},
		{"FIFO holds sixteen", []step{
			w(regFCR, 0x01), rx("0123456789abcdefXYZ"), r(regLSR, 0x61), r(regRBR, '0'),
			w(regFCR, 0x03), r(regLSR, 0x60), // RCVR FIFO reset
			rx("q"), w(regFCR, 0x00), r(regLSR, 0x60), r(regIIR, 0x01), // FIFO disable clears too
		}, ""},
		{"loopback", []step{
			w(regFCR, 0x01), w(regMCR, mcrLOOP|mcrOUT2|mcrOUT1|mcrRTS|mcrDTR),
			r(regMSR, 0xF0), // RI rising is not a trailing edge
			w(regIER, ierERBFI), w(regTHR, 'L'), r(regLSR, 0x61),
			r(regIIR, 0xC4), irq(false), // INTRPT is not gated onto the bus in loopback
			r(regRBR, 'L'), w(regMCR, mcrLOOP), r(regMSR, msrDCTS|msrDDSR|msrTERI|msrDDCD),
		}, ""},
		{"overrun and line status priority", []step{
			w(regFCR, 0x01), w(regMCR, mcrLOOP), w(regIER, ierELSI|ierERBFI|ierETBEI),
			w(regTHR, 0), w(regTHR, 1), w(regTHR, 2), w(regTHR, 3), w(regTHR, 4), w(regTHR, 5), w(regTHR, 6), w(regTHR, 7),
			w(regTHR, 8), w(regTHR, 9), w(regTHR, 10), w(regTHR, 11), w(regTHR, 12), w(regTHR, 13), w(regTHR, 14), w(regTHR, 15),
			r(regIIR, 0xC4), w(regTHR, 16), r(regIIR, 0xC6), r(regLSR, 0x63), r(regLSR, 0x61), r(regIIR, 0xC4),
			r(regRBR, 0), r(regRBR, 1),
		}, ""},
		{"overrun without FIFO replaces", []step{
			w(regMCR, mcrLOOP), w(regTHR, 'a'), w(regTHR, 'b'), r(regLSR, 0x63), r(regRBR, 'b'), r(regLSR, 0x60),
		}, ""},
		{"break in loopback", []step{
			w(regFCR, 0x01), w(regMCR, mcrLOOP), w(regLCR, 0x43),
			r(regLSR, 0xF9), r(regLSR, 0xE1), r(regRBR, 0), r(regLSR, 0x60),
		}, ""},
		{"scratch", []step{w(regSCR, 0x5A), r(regSCR, 0x5A)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig()
			if tc.name != "reset values" {
				rg.run(t, setup)
			}
			rg.run(t, tc.steps)
			if diff := cmp.Diff(tc.sink, rg.sink.String()); diff != "" {
				t.Errorf("sink (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModemStatusInterrupt(t *testing.T) {
	rg := newRig()
	rg.run(t, setup)
	rg.run(t, []step{w(regIER, ierEDSSI), r(regIIR, 0x01)})
	rg.u.SetModemInputs(true, true, true, true)
	rg.run(t, []step{irq(false), r(regMSR, 0xF0), irq(false)}) // rising RI is not TERI
	rg.u.SetModemInputs(false, true, false, true)
	rg.run(t, []step{irq(true), r(regIIR, iirModemStatus), r(regMSR, msrDCTS|msrTERI|msrDSR|msrDCD), irq(false)})
}

func TestInterruptPriority(t *testing.T) {
	rg := newRig()
	rg.run(t, setup)
	rg.run(t, []step{w(regFCR, 0x01), w(regIER, 0x0F), w(regMCR, mcrLOOP|mcrOUT2)})
	// All five sources pending: modem status (loopback DCD edge), THRE,
	// data, line status (break). Each clear reveals the next.
	rg.run(t, []step{w(regLCR, 0x43), w(regLCR, 0x03),
		r(regIIR, 0xC6), r(regLSR, 0xF9), r(regIIR, 0xC4), r(regRBR, 0),
		r(regIIR, 0xC2), r(regIIR, 0xC0), r(regMSR, msrDCD|msrDCTS|msrDDSR), r(regIIR, 0xC1)})
}

func TestNextEvent(t *testing.T) {
	rg := newRig()
	rg.run(t, setup)
	rg.run(t, []step{w(regFCR, 0xC1), w(regIER, ierERBFI)})
	if _, ok := rg.u.NextEvent(); ok {
		t.Fatal("event with empty FIFO")
	}
	rg.clock.Set(1000)
	rg.u.Receive([]byte("z"))
	// 8N1 is 10 bits; 4 characters at 115200 baud.
	want := uint64(1000 + 4*(10*1_000_000_000/115200))
	if got, ok := rg.u.NextEvent(); !ok || got != want {
		t.Fatalf("NextEvent = %d, %v; want %d", got, ok, want)
	}
}

func TestCharTime(t *testing.T) {
	const ns = 1_000_000_000
	tests := []struct {
		lcr  uint8
		div  uint16
		want uint64
	}{
		{0x03, 1, 10 * ns / 115200},
		{0x0F, 12, 12 * 12 * ns / 115200}, // 8 data, parity, 2 stop
		{0x04, 1, 15 * ns / (2 * 115200)}, // 5 data, 1.5 stop: 7.5 bits
		{0x03, 0, 10 * 65536 * ns / 115200},
	}
	for _, tc := range tests {
		u := New(nil, nil, nil)
		u.lcr, u.dll, u.dlm = tc.lcr, uint8(tc.div), uint8(tc.div>>8)
		if got := u.charTimeNS(); got != tc.want {
			t.Errorf("LCR %#x div %d: %d ns, want %d", tc.lcr, tc.div, got, tc.want)
		}
	}
}

func TestSaveRestoreMidOperation(t *testing.T) {
	rg := newRig()
	rg.run(t, setup)
	rg.run(t, []step{w(regFCR, 0x41), w(regIER, 0x07), w(regMCR, mcrLOOP|mcrOUT2), w(regTHR, 'A'), w(regLCR, 0x43), w(regLCR, 0x03), w(regTHR, 'B'), w(regSCR, 9)})
	blob, err := rg.u.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	rg2 := newRig()
	if err := rg2.u.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	again, _ := rg2.u.SaveState()
	if !bytes.Equal(blob, again) {
		t.Fatal("save after restore differs")
	}
	rest := []step{r(regIIR, 0xC2), r(regLSR, 0xE1), r(regRBR, 'A'), r(regLSR, 0xF9), r(regRBR, 0), r(regRBR, 'B'), r(regSCR, 9), r(regLSR, 0x60)}
	rg.run(t, rest)
	rg2.run(t, rest)
}

func TestRestoreRejectsCorrupt(t *testing.T) {
	rg := newRig()
	rg.run(t, setup)
	good, _ := rg.u.SaveState()
	bad := append([]byte(nil), good...)
	hdr := 4 + 1 + len(stateTag) + 2
	bad[hdr] = 0xF0 // IER with reserved bits
	count := append([]byte(nil), good...)
	count[hdr+10+1+8] = 2 // two characters without FIFO, and missing bytes
	for name, blob := range map[string][]byte{
		"ier":      snapshot.Reseal(bad),
		"count":    snapshot.Reseal(count),
		"checksum": bad,
		"tag":      mustSave(t, New(nil, nil, nil))[:3],
	} {
		if err := rg.u.RestoreState(blob); err == nil {
			t.Errorf("%s: corrupt blob accepted", name)
		}
		if now, _ := rg.u.SaveState(); !bytes.Equal(now, good) {
			t.Errorf("%s: failed restore changed state", name)
		}
	}
}

func mustSave(t *testing.T, u *UART) []byte {
	t.Helper()
	b, err := u.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRegisters: random register traffic, host input and time. Invariants:
// no panic; the receiver never holds more than its capacity; the IRQ line
// equals "an interrupt is identified and OUT2 gates it"; save/restore is
// lossless.
func FuzzRegisters(f *testing.F) {
	f.Add([]byte{0x03, 0x80, 0x00, 0x01, 0x03, 0x03, 0x04, 0x08, 0x02, 0xC1, 0x01, 0x0F, 0x40, 'a', 0x00, 'b'})
	f.Fuzz(func(t *testing.T, prog []byte) {
		rg := newRig()
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch {
			case op < 0x08:
				rg.out(uint64(op), v)
			case op < 0x10:
				rg.in(uint64(op - 8))
			case op < 0x20:
				rg.u.Receive(bytes.Repeat([]byte{v}, int(op&0xF)))
			case op < 0x30:
				rg.clock.Advance(uint64(v) * 10000)
				rg.u.Update()
			case op < 0x38:
				rg.u.SetModemInputs(v&1 != 0, v&2 != 0, v&4 != 0, v&8 != 0)
			case op < 0x40:
				blob := mustSave(t, rg.u)
				if err := rg.u.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again := mustSave(t, rg.u); !bytes.Equal(blob, again) {
					t.Fatal("state changed by save/restore")
				}
			default:
				rg.u.Read(uint64(op&7), make([]byte, 1+int(v&3)))
			}
			rg.u.mu.Lock()
			n, capacity := len(rg.u.rx), rg.u.rxCapacity()
			want := rg.u.interrupt() != iirNoInterrupt && rg.u.mcr&mcrOUT2 != 0 && !rg.u.loop()
			rg.u.mu.Unlock()
			if n > capacity {
				t.Fatalf("%d characters in a receiver of %d", n, capacity)
			}
			if rg.line.Level() != want {
				t.Fatalf("IRQ line %v, want %v", rg.line.Level(), want)
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	u := New(nil, nil, nil)
	u.Write(regFCR, []byte{0x01})
	u.Write(regMCR, []byte{mcrLOOP})
	u.Write(regTHR, []byte{'x'})
	seed, _ := u.SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			u := New(nil, nil, nil)
			if u.RestoreState(b) != nil {
				continue
			}
			for off := range uint64(Ports) {
				u.Read(off, make([]byte, 1))
				u.Write(off, []byte{0xFF})
			}
		}
	})
}
