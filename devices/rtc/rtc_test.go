package rtc

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

var start = time.Date(2024, time.February, 29, 23, 59, 58, 0, time.UTC) // a Thursday

type rig struct {
	r     *RTC
	b     *bus.Bus
	clock devtest.Clock
	line  devtest.Line
}

func newRig(t *testing.T) *rig {
	g := &rig{b: bus.New()}
	g.r = New(&g.line, &g.clock, start)
	if err := g.r.Install(g.b); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *rig) get(i uint8) uint8 {
	_ = g.b.WritePort(0x70, []byte{i})
	var d [1]byte
	_ = g.b.ReadPort(0x71, d[:])
	return d[0]
}

func (g *rig) set(i, v uint8) {
	_ = g.b.WritePort(0x70, []byte{i})
	_ = g.b.WritePort(0x71, []byte{v})
}

func (g *rig) clockRegs() []uint8 {
	var out []uint8
	for _, i := range []uint8{regSeconds, regMinutes, regHours, regDayOfWeek, regDayOfMonth, regMonth, regYear, IndexCentury} {
		out = append(out, g.get(i))
	}
	return out
}

func TestTimeFormats(t *testing.T) {
	tests := []struct {
		name string
		b    uint8
		at   time.Duration
		want []uint8 // sec, min, hour, dow, day, month, year, century
	}{
		{"BCD 24h", b24, 0, []uint8{0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20}},
		{"binary 24h", b24 | bDM, 0, []uint8{58, 59, 23, 5, 29, 2, 24, 0x20}},
		{"BCD 12h PM", 0, 0, []uint8{0x58, 0x59, 0x91, 0x05, 0x29, 0x02, 0x24, 0x20}},
		{"binary 12h after midnight", bDM, 3 * time.Second, []uint8{1, 0, 12, 6, 1, 3, 24, 0x20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t)
			g.set(regB, tc.b)
			g.clock.Advance(uint64(tc.at))
			if diff := cmp.Diff(tc.want, g.clockRegs()); diff != "" {
				t.Errorf("registers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetTime(t *testing.T) {
	g := newRig(t)
	g.set(regB, bSET|b24)
	g.clock.Advance(5 * uint64(time.Second)) // halted: time must not move
	g.set(regHours, 0x07)
	g.set(regMinutes, 0x30)
	g.set(regSeconds, 0x00)
	g.set(regDayOfMonth, 0x15)
	g.set(regMonth, 0x06)
	g.set(regYear, 0x99)
	g.set(IndexCentury, 0x19)
	g.set(regB, b24)
	g.clock.Advance(uint64(time.Second))
	want := time.Date(1999, time.June, 15, 7, 30, 1, 0, time.UTC)
	if got := g.r.Time(); !got.Equal(want) {
		t.Fatalf("time %v, want %v", got, want)
	}
	if dow := g.get(regDayOfWeek); dow != 3 { // a Tuesday
		t.Fatalf("day of week %d", dow)
	}
}

func TestRegistersAD(t *testing.T) {
	g := newRig(t)
	if a, b, d := g.get(regA), g.get(regB), g.get(regD); a != 0x26 || b != 0x02 || d != 0x80 {
		t.Fatalf("A=%#x B=%#x D=%#x, want 0x26 0x02 0x80", a, b, d)
	}
	g.clock.Set(uint64(time.Second) - uipWindow + 1)
	if g.get(regA)&aUIP == 0 {
		t.Fatal("UIP clear just before an update")
	}
	g.clock.Set(uint64(time.Second))
	if g.get(regA)&aUIP != 0 {
		t.Fatal("UIP set right after an update")
	}
	g.set(regB, bSET|bUIE|b24)
	if b := g.get(regB); b != bSET|b24 {
		t.Fatalf("B=%#x: SET must clear UIE", b)
	}
	g.set(regC, 0xFF)
	g.set(regD, 0x00)
	if c, d := g.get(regC), g.get(regD); c&0x0F != 0 || d != 0x80 {
		t.Fatalf("C=%#x D=%#x after writes", c, d)
	}
}

func TestPeriodicInterrupt(t *testing.T) {
	g := newRig(t)
	g.set(regA, aDVNormal|0x0F) // 2 Hz
	g.set(regB, b24|bPIE)
	ev, ok := g.r.NextEvent()
	if !ok || ev != 500_000_000 {
		t.Fatalf("NextEvent = %d, %v; want 500ms", ev, ok)
	}
	g.clock.Set(ev - 1)
	g.r.Update()
	if g.line.Level() {
		t.Fatal("IRQ8 early")
	}
	g.clock.Set(ev)
	g.r.Update()
	if !g.line.Level() {
		t.Fatal("IRQ8 not raised by the periodic interrupt")
	}
	if c := g.get(regC); c != cIRQF|cPF {
		t.Fatalf("C=%#x, want IRQF|PF", c)
	}
	if g.line.Level() || g.get(regC) != 0 {
		t.Fatal("reading C did not clear the flags and the line")
	}
	// 1024 Hz: 976.5625 us.
	g.set(regA, aDVNormal|0x06)
	g.clock.Set(uint64(time.Second))
	g.r.Update()
	if ev, _ := g.r.NextEvent(); ev != uint64(time.Second)+976563 {
		t.Fatalf("1024 Hz NextEvent %d", ev)
	}
}

func TestUpdateAndAlarm(t *testing.T) {
	g := newRig(t)
	g.set(regA, aDVNormal) // RS=0: no periodic flag in the way
	g.set(regB, b24|bDM|bAIE)
	g.set(regSecAlarm, 5)
	g.set(regMinAlarm, 0xC0) // don't care
	g.set(regHourAlarm, 0xFF)
	g.clock.Set(3 * uint64(time.Second)) // 00:00:01
	g.r.Update()
	if g.line.Level() {
		t.Fatal("alarm fired early")
	}
	if c := g.get(regC); c != cUF {
		t.Fatalf("C=%#x, want UF alone (UIE off)", c)
	}
	g.clock.Set(7*uint64(time.Second) + 1) // passed 00:00:05
	g.r.Update()
	if c := g.get(regC); c != cIRQF|cAF|cUF {
		t.Fatalf("C=%#x, want IRQF|AF|UF", c)
	}
	g.set(regB, b24|bUIE)
	g.clock.Set(8 * uint64(time.Second))
	g.r.Update()
	if !g.line.Level() {
		t.Fatal("update-ended interrupt missing")
	}
}

func TestDividerReset(t *testing.T) {
	g := newRig(t)
	g.set(regA, 0x70) // divider in reset
	g.clock.Set(10 * uint64(time.Second))
	if g.get(regSeconds) != 0x58 {
		t.Fatal("time moved with the divider in reset")
	}
	g.set(regA, aDVNormal|0x06)
	g.clock.Set(10*uint64(time.Second) + 499_999_999)
	if g.get(regSeconds) != 0x58 {
		t.Fatal("first update earlier than 500 ms")
	}
	g.clock.Set(10*uint64(time.Second) + 500_000_000)
	if g.get(regSeconds) != 0x59 {
		t.Fatal("first update missing at 500 ms")
	}
}

func TestCMOSAndNMI(t *testing.T) {
	g := newRig(t)
	g.r.SetMemorySize(512<<20, 6<<30)
	if lo, hi := g.get(0x17), g.get(0x18); uint16(hi)<<8|uint16(lo) != 0xFFFF { // capped at 64 MiB
		t.Fatalf("extended memory %d KiB", uint16(hi)<<8|uint16(lo))
	}
	if lo, hi := g.get(0x34), g.get(0x35); uint16(hi)<<8|uint16(lo) != (512-16)*16 {
		t.Fatalf("above 16M %d", uint16(hi)<<8|uint16(lo))
	}
	if v := uint32(g.get(0x5B)) | uint32(g.get(0x5C))<<8 | uint32(g.get(0x5D))<<16; v != 6<<14 {
		t.Fatalf("above 4G %d units", v)
	}
	var sum uint16
	for i := uint8(0x10); i <= 0x2D; i++ {
		sum += uint16(g.get(i))
	}
	if got := uint16(g.get(0x2E))<<8 | uint16(g.get(0x2F)); got != sum {
		t.Fatalf("checksum %#x, want %#x", got, sum)
	}
	g.set(0x40, 0xA5)
	_ = g.b.WritePort(0x70, []byte{0x80 | 0x40})
	var d [1]byte
	_ = g.b.ReadPort(0x71, d[:])
	if d[0] != 0xA5 || !g.r.NMIDisabled() {
		t.Fatalf("RAM %#x, NMI disabled %v", d[0], g.r.NMIDisabled())
	}
	if err := g.r.SetCMOS(0x0B, 0); err == nil {
		t.Fatal("SetCMOS wrote a clock register")
	}
}

func TestSaveRestore(t *testing.T) {
	g := newRig(t)
	g.set(regA, aDVNormal|0x0C)
	g.set(regB, b24|bPIE|bUIE)
	g.set(0x50, 0x42)
	g.clock.Set(1_234_567_890)
	g.r.Update()
	blob, err := g.r.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	h := newRig(t)
	h.clock.Set(1_234_567_890)
	if err := h.r.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if again, _ := h.r.SaveState(); !bytes.Equal(again, blob) {
		t.Fatal("save after restore differs")
	}
	for _, x := range []*rig{g, h} {
		x.clock.Set(5_000_000_000)
		x.r.Update()
	}
	if diff := cmp.Diff(g.clockRegs(), h.clockRegs()); diff != "" {
		t.Errorf("clock (-orig +restored):\n%s", diff)
	}
	if a, b := g.get(regC), h.get(regC); a != b {
		t.Errorf("C %#x vs %#x", a, b)
	}
	bad := append([]byte(nil), blob...)
	bad[len(bad)-5] ^= 1
	if err := h.r.RestoreState(bad); err == nil {
		t.Error("corrupt blob accepted")
	}
	if err := h.r.RestoreState(snapshot.Reseal(blob[:len(blob)-9])); err == nil {
		t.Error("short blob accepted")
	}
}

// FuzzRegisters: random index/data traffic and time. Invariants: no
// panic; IRQ8 equals IRQF; the index stays 7-bit; save/restore lossless.
func FuzzRegisters(f *testing.F) {
	f.Add([]byte{0, 0x0B, 1, 0x52, 0, 0x0A, 1, 0x2F, 2, 9, 0, 0x0C, 3, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		g := newRig(t)
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch op % 5 {
			case 0:
				_ = g.b.WritePort(0x70, []byte{v})
			case 1:
				_ = g.b.WritePort(0x71, []byte{v})
			case 2:
				g.clock.Advance(uint64(v) * uint64(op) * 1_000_003)
				g.r.Update()
			case 3:
				var d [2]byte
				_ = g.b.ReadPort(0x70, d[:])
			case 4:
				blob, _ := g.r.SaveState()
				if err := g.r.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again, _ := g.r.SaveState(); !bytes.Equal(again, blob) {
					t.Fatal("save/restore changed state")
				}
			}
			g.r.mu.Lock()
			irqf, idx := g.r.c&cIRQF != 0, g.r.index
			g.r.mu.Unlock()
			if g.line.Level() != irqf || idx > indexMask {
				t.Fatalf("IRQ8 %v, IRQF %v, index %#x", g.line.Level(), irqf, idx)
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	seed, _ := New(nil, nil, start).SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			var clock devtest.Clock
			r := New(nil, &clock, start)
			if r.RestoreState(b) != nil {
				continue
			}
			clock.Advance(1 << 40)
			r.Update()
			r.NextEvent()
			for i := range uint8(14) {
				r.Write(0, []byte{i})
				r.Read(1, make([]byte, 1))
			}
		}
	})
}
