package pit

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

type rig struct {
	p     *PIT
	b     *bus.Bus
	clock devtest.Clock
	line  devtest.Line
}

func newRig(t *testing.T) *rig {
	r := &rig{b: bus.New()}
	r.p = New(&r.line, &r.clock)
	if err := r.p.Install(r.b); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) at(tick uint64) { r.clock.Set(NanosAt(tick)) }
func (r *rig) out(port uint16, v ...byte) {
	for _, x := range v {
		_ = r.b.WritePort(port, []byte{x})
	}
}
func (r *rig) in(port uint16) byte {
	var d [1]byte
	_ = r.b.ReadPort(port, d[:])
	return d[0]
}
func (r *rig) status(ch int) byte {
	r.out(0x43, 0xE0|2<<ch) // read-back, status only
	return r.in(uint16(0x40 + ch))
}

func TestTickConversion(t *testing.T) {
	for _, k := range []uint64{0, 1, 2, 1193181, 1193182, 1 << 40, 1<<54 + 7} {
		ns := NanosAt(k)
		if got := TicksAt(ns); got != k {
			t.Errorf("TicksAt(NanosAt(%d)) = %d", k, got)
		}
		if k > 0 && TicksAt(ns-1) != k-1 {
			t.Errorf("NanosAt(%d) = %d is not the first such time", k, ns)
		}
	}
	if got := TicksAt(1_000_000_000); got != Frequency {
		t.Errorf("one second = %d ticks", got)
	}
}

func TestMode2RateGenerator(t *testing.T) {
	r := newRig(t)
	r.at(100)
	r.out(0x43, 0x34)       // channel 0, LSB then MSB, mode 2, binary
	r.out(0x40, 0xE8, 0x03) // 1000; loaded at tick 101
	if ev, ok := r.p.NextEvent(); !ok || ev != NanosAt(1101) {
		t.Fatalf("NextEvent = %d, %v; want tick 1101", ev, ok)
	}
	r.line.ResetCount()
	for _, tc := range []struct {
		tick  uint64
		edges int
		count uint16
	}{
		// Four more periods pass before the next Update: edges that
		// happen between two Updates are delivered as one pulse, as a
		// PIC would latch them into one IRR bit anyway.
		{600, 0, 501}, {1099, 0, 2}, {1100, 0, 1}, {1101, 1, 1000}, {5101, 2, 1000}, {5350, 2, 751},
	} {
		r.at(tc.tick)
		r.p.Update()
		if got := r.line.Rising(); got != tc.edges {
			t.Errorf("tick %d: %d IRQ0 edges, want %d", tc.tick, got, tc.edges)
		}
		r.out(0x43, 0x00) // latch channel 0
		if got := uint16(r.in(0x40)) | uint16(r.in(0x40))<<8; got != tc.count {
			t.Errorf("tick %d: count %d, want %d", tc.tick, got, tc.count)
		}
	}
	// OUT is low only while CE is 1.
	r.at(6100)
	if s := r.status(0); s&statusOut != 0 {
		t.Errorf("status %#x at count 1: OUT high", s)
	}
	// A new count takes effect at the end of the current period.
	r.out(0x40, 100, 0)
	r.at(6101)
	r.p.Update()
	if ev, _ := r.p.NextEvent(); ev != NanosAt(6201) {
		t.Errorf("after reload NextEvent = tick %d, want 6201", TicksAt(ev))
	}
}

func TestMode0(t *testing.T) {
	r := newRig(t)
	r.at(10)
	r.out(0x43, 0x30) // channel 0, LSB/MSB, mode 0
	if s := r.status(0); s != statusNullCount|0x30 {
		t.Fatalf("status after control word %#x", s)
	}
	r.out(0x40, 5)
	if s := r.status(0); s != statusNullCount|0x30 {
		t.Fatalf("status after LSB %#x", s)
	}
	r.out(0x40, 0) // N=5 loaded at tick 11; OUT rises N+1 CLKs after the write
	r.line.ResetCount()
	for _, tc := range []struct {
		tick   uint64
		status byte
		count  byte
	}{
		{10, statusNullCount | 0x30, 0}, {11, 0x30, 5}, {15, 0x30, 1}, {16, statusOut | 0x30, 0}, {17, statusOut | 0x30, 0xFF},
	} {
		r.at(tc.tick)
		r.p.Update()
		if s := r.status(0); s != tc.status {
			t.Errorf("tick %d: status %#x, want %#x", tc.tick, s, tc.status)
		}
		if c := r.in(0x40); c != tc.count {
			t.Errorf("tick %d: count LSB %#x, want %#x", tc.tick, c, tc.count)
		}
		r.in(0x40)
	}
	if r.line.Rising() != 1 || !r.line.Level() {
		t.Errorf("IRQ0: %d edges, level %v; want one edge, high", r.line.Rising(), r.line.Level())
	}
	if _, ok := r.p.NextEvent(); ok {
		t.Error("mode 0 after terminal count still has an event")
	}
}

func TestLatchAndAccessModes(t *testing.T) {
	r := newRig(t)
	r.at(0)
	r.out(0x43, 0x70) // channel 1, LSB/MSB, mode 0
	r.out(0x41, 0x34, 0x12)
	r.at(1 + 0x10)
	r.out(0x43, 0x40) // latch channel 1
	r.out(0x43, 0x40) // ignored: the first latch is unread
	r.at(500)
	if lo, hi := r.in(0x41), r.in(0x41); lo != 0x24 || hi != 0x12 {
		t.Fatalf("latched %#x %#x, want 0x24 0x12", lo, hi)
	}
	// Unlatched reads follow the counter.
	if lo := r.in(0x41); lo != byte((0x1234-499)&0xFF) {
		t.Fatalf("live LSB %#x", lo)
	}
	r.in(0x41)

	r.out(0x43, 0x50) // LSB only, mode 0
	r.out(0x41, 0x80)
	r.at(510)
	if v := r.in(0x41); v != 0x80-9 {
		t.Fatalf("LSB-only read %#x", v)
	}
	r.out(0x43, 0x60) // MSB only, mode 0
	r.out(0x41, 0x02) // 0x200
	r.at(510 + 1 + 0x100)
	if v := r.in(0x41); v != 0x01 {
		t.Fatalf("MSB-only read %#x", v)
	}
}

func TestReadBack(t *testing.T) {
	r := newRig(t)
	r.out(0x43, 0xB7) // channel 2, LSB/MSB, mode 3, BCD
	r.out(0x42, 0x00, 0x10)
	r.out(0x61, 0x01) // gate 2 high: loads at the next CLK
	r.at(1)
	// Latch count and status of channel 2: status comes first.
	r.out(0x43, 0xC8)
	if s := r.in(0x42); s != statusOut|0x37 {
		t.Fatalf("status %#x, want %#x", s, statusOut|0x37)
	}
	if lo, hi := r.in(0x42), r.in(0x42); lo != 0x00 || hi != 0x10 {
		t.Fatalf("BCD count %#x%02x, want 1000", hi, lo)
	}
	r.at(2)
	if lo := r.in(0x42); lo != 0x98 { // 1000 - 2, in BCD
		t.Fatalf("BCD count LSB %#x, want 0x98", lo)
	}
}

func TestMode3ThroughPortB(t *testing.T) {
	tests := []struct {
		count uint8
		want  string // OUT2 from tick 1 on: H or L
	}{
		{4, "HHLLHHLLHH"},
		{5, "HHHLLHHHLL"},
	}
	for _, tc := range tests {
		r := newRig(t)
		r.out(0x43, 0xB6) // channel 2, LSB/MSB, mode 3
		r.out(0x42, tc.count, 0)
		r.out(0x61, 0x03) // gate and speaker on; load at tick 1
		var got []byte
		for k := uint64(1); k <= 10; k++ {
			r.at(k)
			if r.in(0x61)&portBOut2 != 0 {
				got = append(got, 'H')
			} else {
				got = append(got, 'L')
			}
		}
		if diff := cmp.Diff(tc.want, string(got)); diff != "" {
			t.Errorf("count %d (-want +got):\n%s", tc.count, diff)
		}
		r.out(0x61, 0x00) // gate low forces OUT high
		if r.in(0x61)&portBOut2 == 0 || r.p.Speaker() {
			t.Errorf("count %d: gate low: OUT low or speaker on", tc.count)
		}
	}
}

func TestMode4And1And5(t *testing.T) {
	tests := []struct {
		name    string
		control byte
		trigger bool // gate 2 rising edge at tick 0
		want    string
	}{
		// N=2 written at tick 0: loaded by CLK 1, zero at CLK 3.
		{"mode 4 software strobe", 0xB8, false, "HHLHHHH"},
		{"mode 5 hardware strobe", 0xBA, true, "HHLHHHH"},
		{"mode 1 one-shot", 0xB2, true, "LLHHHHH"},
		{"mode 1 without trigger", 0xB2, false, "HHHHHHH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			if tc.control&0x0E == 0x08 {
				r.out(0x61, 0x01) // mode 4 counts while gate is high
			}
			r.out(0x43, tc.control)
			r.out(0x42, 2, 0) // N=2
			if tc.trigger {
				r.out(0x61, 0x01)
			}
			var got []byte
			for k := uint64(1); k <= 7; k++ {
				r.at(k)
				if r.in(0x61)&portBOut2 != 0 {
					got = append(got, 'H')
				} else {
					got = append(got, 'L')
				}
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("OUT2 ticks 1-7 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMode0GatePauses(t *testing.T) {
	r := newRig(t)
	r.out(0x61, 0x01)
	r.out(0x43, 0xB0)
	r.out(0x42, 10, 0) // loaded at tick 1
	r.at(4)
	r.out(0x61, 0x00) // CE = 7 frozen
	r.at(100)
	if v := r.in(0x42); v != 7 {
		t.Fatalf("paused count %d, want 7", v)
	}
	r.in(0x42)
	r.out(0x61, 0x01) // resumes at tick 101
	r.at(107)
	if r.in(0x61)&portBOut2 != 0 {
		t.Fatal("OUT high before the paused count ran out")
	}
	r.at(108)
	if r.in(0x61)&portBOut2 == 0 {
		t.Fatal("OUT low after terminal count")
	}
}

func TestSaveRestoreMidCount(t *testing.T) {
	r := newRig(t)
	r.out(0x43, 0x34)
	r.out(0x40, 0x00, 0x01) // mode 2, 256
	r.out(0x61, 0x01)
	r.out(0x43, 0xB6)
	r.out(0x42, 7, 0)
	r.at(1000)
	r.p.Update()
	r.out(0x43, 0xC2) // latch count+status of channel 0, read half of it
	r.in(0x40)
	blob, err := r.p.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	q := newRig(t)
	q.at(1000)
	if err := q.p.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if again, _ := q.p.SaveState(); !bytes.Equal(again, blob) {
		t.Fatal("save after restore differs")
	}
	r.line.ResetCount()
	for _, x := range []*rig{r, q} {
		x.at(3000)
		x.p.Update()
	}
	for i := range 4 {
		if a, b := r.in(0x40), q.in(0x40); a != b {
			t.Fatalf("read %d of channel 0: %#x vs %#x", i, a, b)
		}
		if a, b := r.in(0x61), q.in(0x61); a != b {
			t.Fatalf("port B %#x vs %#x", a, b)
		}
	}
	if r.line.Rising() != q.line.Rising()-1 { // q's line also saw the restore drive it high
		t.Fatalf("edges %d vs %d", r.line.Rising(), q.line.Rising())
	}
}

func TestRestoreRejectsCorrupt(t *testing.T) {
	r := newRig(t)
	good, _ := r.p.SaveState()
	hdr := 4 + 1 + len(stateTag) + 2
	bad := append([]byte(nil), good...)
	bad[hdr] = 9 // mode 9
	rw := append([]byte(nil), good...)
	rw[hdr+1] = 0
	for name, blob := range map[string][]byte{
		"mode": snapshot.Reseal(bad), "rw": snapshot.Reseal(rw), "crc": bad, "short": good[:10],
	} {
		if err := r.p.RestoreState(blob); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if now, _ := r.p.SaveState(); !bytes.Equal(now, good) {
			t.Errorf("%s: state changed", name)
		}
	}
}

// FuzzRegisters programs all channels and port B at random and moves time.
// Invariants: no panic; IRQ0 follows channel 0's OUT after Update; the
// next event is never in the past; save/restore is lossless.
func FuzzRegisters(f *testing.F) {
	f.Add([]byte{3, 0x34, 0, 0xE8, 0, 0x03, 5, 0x40, 4, 0x01, 2, 0x10})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch op % 8 {
			case 0, 1, 2, 3:
				r.out(uint16(0x40+op%4), v)
			case 4:
				r.out(0x61, v)
			case 5:
				r.clock.Advance(uint64(v) * uint64(op) * 97)
				r.p.Update()
				if ev, ok := r.p.NextEvent(); ok && ev <= r.clock.Now() && TicksAt(ev) <= TicksAt(r.clock.Now()) {
					t.Fatalf("next event %d not after now %d", ev, r.clock.Now())
				}
				r.p.mu.Lock()
				c := &r.p.ch[0]
				c.settle(r.p.lastTick)
				want := c.out(r.p.lastTick)
				r.p.mu.Unlock()
				if r.line.Level() != want {
					t.Fatalf("IRQ0 %v, OUT0 %v", r.line.Level(), want)
				}
			case 6:
				r.in(uint16(0x40 + v%4))
				r.in(0x61)
			case 7:
				blob, _ := r.p.SaveState()
				if err := r.p.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again, _ := r.p.SaveState(); !bytes.Equal(again, blob) {
					t.Fatal("save/restore changed state")
				}
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	seed, _ := New(nil, nil).SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			var clock devtest.Clock
			p := New(nil, &clock)
			if p.RestoreState(b) != nil {
				continue
			}
			for i := range 3 {
				clock.Advance(1 << (20 * i))
				p.Update()
				p.NextEvent()
				var d [1]byte
				for off := range uint64(3) {
					p.Read(off, d[:])
				}
				p.Write(3, []byte{0xCE})
			}
		}
	})
}
