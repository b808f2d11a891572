package i8042

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

type rig struct {
	c      *Controller
	b      *bus.Bus
	irq    devtest.Line
	resets int
	a20    []bool
}

func newRig(t *testing.T) *rig {
	r := &rig{b: bus.New()}
	r.c = New(Config{IRQ1: &r.irq, Reset: func() { r.resets++ }, A20: func(on bool) { r.a20 = append(r.a20, on) }})
	if err := r.c.Install(r.b); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) out(port uint16, v byte) { _ = r.b.WritePort(port, []byte{v}) }
func (r *rig) in(port uint16) byte {
	var d [1]byte
	_ = r.b.ReadPort(port, d[:])
	return d[0]
}

func TestCommands(t *testing.T) {
	r := newRig(t)
	type io struct {
		cmd    int // -1: none
		data   int // -1: none
		status byte
		read   int // expected data byte, -1 for no read
	}
	for i, s := range []io{
		{cmd: -1, data: -1, status: StatusUnlock | StatusSYS, read: -1},
		{cmd: 0x20, data: -1, status: StatusUnlock | StatusSYS | StatusCmd | StatusOBF, read: ctrDefault},
		{cmd: 0xAA, data: -1, status: StatusUnlock | StatusSYS | StatusCmd | StatusOBF, read: 0x55},
		{cmd: 0xAB, data: -1, status: StatusUnlock | StatusSYS | StatusCmd | StatusOBF, read: 0x00},
		{cmd: 0x60, data: 0x01, status: StatusUnlock, read: -1}, // SYS cleared, IRQ1 on
		{cmd: 0x20, data: -1, status: StatusUnlock | StatusCmd | StatusOBF, read: 0x01},
		{cmd: 0x7F, data: 0x99, status: StatusUnlock, read: -1},
		{cmd: 0x3F, data: -1, status: StatusUnlock | StatusCmd | StatusOBF, read: 0x99},
		{cmd: 0xD0, data: -1, status: StatusUnlock | StatusCmd | StatusOBF, read: outDefault},
		{cmd: -1, data: 0xF2, status: StatusUnlock | StatusOBF | StatusTimeout, read: 0xFF}, // no keyboard
		{cmd: 0xD2, data: 0x42, status: StatusUnlock | StatusOBF, read: 0x42},
		{cmd: 0xA8, data: -1, status: StatusUnlock | StatusCmd, read: -1}, // no aux port
	} {
		if s.cmd >= 0 {
			r.out(CommandPort, byte(s.cmd))
		}
		if s.data >= 0 {
			r.out(DataPort, byte(s.data))
		}
		if st := r.in(CommandPort); st != s.status {
			t.Errorf("step %d: status %#x, want %#x", i, st, s.status)
		}
		if s.read >= 0 {
			if got := r.in(DataPort); got != byte(s.read) {
				t.Errorf("step %d: data %#x, want %#x", i, got, s.read)
			}
			if r.in(CommandPort)&StatusOBF != 0 {
				t.Errorf("step %d: OBF after read", i)
			}
		}
	}
	if r.irq.Rising() != 5 || r.irq.Level() {
		t.Errorf("IRQ1 rising edges %d (want 5, one per byte after 0x60 0x01), level %v", r.irq.Rising(), r.irq.Level())
	}
}

func TestResetAndA20(t *testing.T) {
	r := newRig(t)
	r.out(CommandPort, 0xFF) // pulse nothing
	r.out(CommandPort, 0xFD) // bit 1 (A20) is not pulsed to anything
	if r.resets != 0 {
		t.Fatal("reset without bit 0 pulsed")
	}
	r.out(CommandPort, 0xFE)
	if r.resets != 1 {
		t.Fatalf("0xFE resets %d", r.resets)
	}
	r.out(CommandPort, 0xDD)
	r.out(CommandPort, 0xDF)
	r.out(CommandPort, 0xD1)
	r.out(DataPort, 0x01) // A20 off, reset high
	r.out(CommandPort, 0xD1)
	r.out(DataPort, 0x02) // reset low: resets
	if d := cmp.Diff([]bool{false, true, false, true}, r.a20); d != "" {
		t.Errorf("A20 changes (-want +got):\n%s", d)
	}
	if r.resets != 2 || !r.c.A20() {
		t.Errorf("resets %d A20 %v", r.resets, r.c.A20())
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.out(CommandPort, 0x60)
	r.out(DataPort, 0x45)
	r.out(CommandPort, 0xAA)
	blob, _ := r.c.SaveState()
	var line devtest.Line
	c := New(Config{IRQ1: &line})
	if err := c.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if !line.Level() {
		t.Error("IRQ1 not re-driven")
	}
	if again, _ := c.SaveState(); !bytes.Equal(again, blob) {
		t.Error("not lossless")
	}
	bad := append([]byte(nil), blob...)
	bad[len(bad)-5] = 0xAA // a pending command that takes no data
	if err := c.RestoreState(snapshot.Reseal(bad)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("bad pending command: %v", err)
	}
}

func FuzzRegisters(f *testing.F) {
	f.Add([]byte{4, 0x60, 0, 0x01, 4, 0xAA, 1, 0, 4, 0xFE})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 2 {
			op, v := prog[0], prog[1]
			prog = prog[2:]
			switch op % 4 {
			case 0:
				r.out(DataPort, v)
			case 1:
				r.in(DataPort)
			case 2:
				r.in(CommandPort)
			case 3:
				r.out(CommandPort, v)
			}
			if op&0x80 != 0 {
				blob, _ := r.c.SaveState()
				if err := r.c.RestoreState(blob); err != nil {
					t.Fatal(err)
				}
			}
			r.c.mu.Lock()
			want := r.c.obf && r.c.ram[0]&CtrKbdInt != 0
			r.c.mu.Unlock()
			if r.irq.Level() != want {
				t.Fatalf("IRQ1 %v want %v", r.irq.Level(), want)
			}
		}
	})
}
