package lapic

import (
	"bytes"
	"encoding/binary"
	"testing"

	"hv/devices/internal/snapshot"
)

// FuzzRegisters drives two LAPICs on one Router with random MMIO, MSR,
// message and time traffic. Invariants: no panic; a pending vector is
// always in the IRR and above the PPR; ISR/IRR/TMR never hold vectors 0-15;
// save/restore is lossless at every point.
func FuzzRegisters(f *testing.F) {
	f.Add([]byte{0, 0xF0, 0, 0, 1, 0, 1, 0x20, 0x32, 0, 0, 0, 0, 0x38, 0xFF, 0, 0, 0, 3, 200, 4})
	f.Add([]byte{2, 0x1B, 0x0C, 0, 0xE0, 0xFE, 2, 0x0F, 0xFF, 1, 0, 0, 2, 0x3F, 0x40, 0, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(2)
		for len(prog) >= 6 {
			op, sel := prog[0], prog[1]
			v := binary.LittleEndian.Uint32(prog[2:6])
			prog = prog[6:]
			a := r.apics[op>>7]
			switch op % 8 {
			case 0:
				w32(a, uint64(sel)<<4, v)
			case 1:
				var b [8]byte
				a.Read(uint64(sel)<<4|uint64(v&0xF), b[:1+v>>8%8])
			case 2:
				msr := uint32(MSRX2APICFirst) + uint32(sel)
				if v&0x8000_0000 != 0 {
					msr = []uint32{MSRAPICBase, MSRTSCDeadline}[sel%2]
				}
				_ = a.WriteMSR(msr, uint64(v)|uint64(sel)<<40*uint64(v>>30&1))
				_, _ = a.ReadMSR(msr)
			case 3:
				r.clock.Advance(uint64(v % 100_000))
				a.Update()
			case 4:
				if vec, ok := a.PendingVector(); ok {
					if !testBit(&a.irr, vec) {
						t.Fatalf("pending %#x not in IRR", vec)
					}
					a.Acknowledge(vec)
				}
			case 5:
				r.router.Deliver(Message{Vector: sel, Mode: DeliveryMode(v & 7), Logical: v&8 != 0,
					Dest: v >> 8, Level: v&16 != 0, Assert: v&32 != 0})
			case 6:
				a.SetLINT(int(sel%3), v&1 != 0)
				a.TakeNMI()
				a.TakeINIT()
				a.TakeSIPI()
				a.TakeExtINT()
			case 7:
				blob, _ := a.SaveState()
				if err := a.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again, _ := a.SaveState(); !bytes.Equal(again, blob) {
					t.Fatal("save/restore changed state")
				}
			}
			for _, x := range r.apics {
				x.mu.Lock()
				bad := x.irr[0]&0xFFFF != 0 || x.isr[0]&0xFFFF != 0
				if v, ok := x.pending(); ok && uint32(v)>>4 <= x.ppr()>>4 {
					bad = true
				}
				x.mu.Unlock()
				if bad {
					t.Fatal("illegal vector accepted or pending below PPR")
				}
			}
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	seed, _ := New(Config{}).SaveState()
	f.Add(seed)
	f.Fuzz(func(t *testing.T, blob []byte) {
		for _, b := range [][]byte{blob, snapshot.Reseal(blob)} {
			r := newRig(1)
			a := r.apics[0]
			a.cfg.BSP = false
			if a.RestoreState(b) != nil {
				continue
			}
			for i := range 3 {
				r.clock.Advance(1 << (12 * i))
				a.Update()
				a.NextEvent()
				if v, ok := a.PendingVector(); ok {
					a.Acknowledge(v)
				}
				r32(a, RegTimerCur)
				w32(a, RegEOI, 0)
				_ = a.WriteMSR(0x80B, 0)
			}
		}
	})
}
