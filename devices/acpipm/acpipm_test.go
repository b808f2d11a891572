package acpipm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

type rig struct {
	p            *PM
	b            *bus.Bus
	clock        devtest.Clock
	sci          devtest.Line
	offs, resets int
}

func newRig(t *testing.T) *rig {
	r := &rig{b: bus.New()}
	r.p = New(Config{SCI: &r.sci, Clock: &r.clock, PowerOff: func() { r.offs++ }, Reset: func() { r.resets++ }})
	if err := r.p.Install(r.b, DefaultBase); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) in(off uint16, n int) uint32 {
	d := make([]byte, 4)
	_ = r.b.ReadPort(DefaultBase+off, d[:n])
	return binary.LittleEndian.Uint32(d)
}

func (r *rig) out(off uint16, n int, v uint32) {
	_ = r.b.WritePort(DefaultBase+off, binary.LittleEndian.AppendUint32(nil, v)[:n])
}

func TestTickConversion(t *testing.T) {
	if got := TicksAt(1_000_000_000); got != PMTimerHz {
		t.Errorf("one second = %d ticks", got)
	}
	for _, k := range []uint64{1, 3579544, 3579545, 1 << 33} {
		if ns := NanosAt(k); TicksAt(ns) != k || TicksAt(ns-1) != k-1 {
			t.Errorf("NanosAt(%d) = %d is not the first such time", k, ns)
		}
	}
}

func TestTimerCounts24Bits(t *testing.T) {
	r := newRig(t)
	for _, c := range []struct {
		ticks uint64
		want  uint32
	}{{0, 0}, {1, 1}, {3579545, 3579545}, {1<<24 - 1, 1<<24 - 1}, {1 << 24, 0}, {1<<24 + 5, 5}} {
		r.clock.Set(NanosAt(c.ticks))
		if got := r.in(OffPMTimer, 4); got != c.want {
			t.Errorf("at tick %d timer = %#x, want %#x", c.ticks, got, c.want)
		}
	}
}

func TestTimerStatusRaisesSCI(t *testing.T) {
	r := newRig(t)
	if v := r.in(OffPM1aControl, 2); v != SCIEn {
		t.Fatalf("PM1_CNT at reset %#x", v)
	}
	r.out(OffPM1aEvent+2, 2, TmrEn)
	ns, ok := r.p.NextEvent()
	if !ok || ns != NanosAt(1<<23) {
		t.Fatalf("NextEvent %d %v", ns, ok)
	}
	r.clock.Set(ns - 1)
	r.p.Update()
	if r.sci.Level() {
		t.Fatal("SCI before bit 23 toggled")
	}
	r.clock.Set(ns)
	r.p.Update()
	if !r.sci.Level() || r.in(OffPM1aEvent, 2)&TmrSts == 0 {
		t.Fatal("TMR_STS/SCI not set at bit 23 toggle")
	}
	r.out(OffPM1aEvent, 2, 0xFFFE) // writing 0 to TMR_STS keeps it
	if !r.sci.Level() {
		t.Fatal("write of 0 cleared TMR_STS")
	}
	r.out(OffPM1aEvent, 2, TmrSts)
	if r.sci.Level() || r.in(OffPM1aEvent, 2) != 0 {
		t.Fatal("write-1-to-clear failed")
	}
	// SCI_EN gates the SCI.
	r.p.RaiseGPE(3)
	r.out(OffGPE0+4, 1, 1<<3)
	if !r.sci.Level() {
		t.Fatal("GPE did not raise SCI")
	}
	r.out(OffPM1aControl, 2, 0)
	if r.sci.Level() {
		t.Fatal("SCI with SCI_EN clear")
	}
}

func TestSleepAndReset(t *testing.T) {
	r := newRig(t)
	r.out(OffPM1aControl, 2, SCIEn|3<<slpTypShift|SlpEn) // S3 is not offered
	if r.offs != 0 || r.p.IgnoredSleeps() != 1 {
		t.Errorf("S3: offs %d ignored %d", r.offs, r.p.IgnoredSleeps())
	}
	if v := r.in(OffPM1aControl, 2); v&SlpEn != 0 {
		t.Errorf("SLP_EN reads back: %#x", v)
	}
	r.out(OffPM1aControl, 2, SCIEn|SleepTypeS5<<slpTypShift) // type without SLP_EN
	if r.offs != 0 {
		t.Fatal("powered off without SLP_EN")
	}
	r.out(OffPM1aControl+1, 1, (SleepTypeS5<<slpTypShift|SlpEn)>>8) // high byte only, as Linux may
	if r.offs != 1 {
		t.Fatalf("S5 power-offs %d", r.offs)
	}
	r.out(OffReset, 1, 0x02)
	r.out(OffReset, 1, ResetValue)
	if r.resets != 1 {
		t.Errorf("resets %d", r.resets)
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.out(OffPM1aEvent+2, 2, TmrEn)
	r.clock.Set(NanosAt(1 << 23))
	r.p.Update()
	blob, _ := r.p.SaveState()
	var line devtest.Line
	q := New(Config{SCI: &line, Clock: &r.clock})
	if err := q.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if !line.Level() {
		t.Error("restore did not re-drive the SCI")
	}
	again, _ := q.SaveState()
	if !bytes.Equal(again, blob) {
		t.Error("restore not lossless")
	}
	bad := append([]byte(nil), blob...)
	bad[4+1+len(stateTag)+2] |= 0x02 // a PM1 status bit with no source
	if err := q.RestoreState(snapshot.Reseal(bad)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("bad status: %v", err)
	}
}

func FuzzRegisters(f *testing.F) {
	f.Add([]byte{1, 2, 1, 0, 3, 50, 0, 4, 0x01, 0x34})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 3 {
			op, a, v := prog[0], prog[1], prog[2]
			prog = prog[3:]
			switch op % 4 {
			case 0:
				r.out(uint16(a%0x20), 1+int(op>>6)%2*int(op>>6), uint32(v)*0x01010101)
			case 1:
				r.in(uint16(a%0x20), 1+int(op>>6)%2*int(op>>6))
			case 2:
				r.clock.Advance(uint64(a) * uint64(v) << 10)
				r.p.Update()
			case 3:
				blob, _ := r.p.SaveState()
				if err := r.p.RestoreState(blob); err != nil {
					t.Fatal(err)
				}
			}
			r.p.mu.Lock()
			want := r.p.sciCondition()
			r.p.mu.Unlock()
			if r.sci.Level() != want {
				t.Fatalf("SCI %v, condition %v", r.sci.Level(), want)
			}
		}
	})
}
