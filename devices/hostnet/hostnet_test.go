package hostnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/hostpci"
)

func open(t *testing.T, d *fakeDev) *NIC {
	t.Helper()
	fns := Find(hostpci.Scan(d.pci))
	if len(fns) != 1 {
		t.Fatalf("Find: %v", fns)
	}
	n, err := Open(d.config(), fns[0])
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return n
}

func frame(n int, fill byte) []byte {
	f := bytes.Repeat([]byte{fill}, n)
	copy(f, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	return f
}

func TestOpen(t *testing.T) {
	d := newFakeDev()
	n := open(t, d)
	if d.accepted != FeatureVersion1|FeatureMAC {
		t.Errorf("accepted features %#x, want VERSION_1|MAC only", d.accepted)
	}
	if want := uint8(StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK); d.status != want {
		t.Errorf("status %#x, want %#x", d.status, want)
	}
	if n.MAC() != d.mac {
		t.Errorf("MAC %x, want %x", n.MAC(), d.mac)
	}
	for i, q := range d.q {
		if q.enable != 1 || q.size != fakeQueueMax {
			t.Errorf("queue %d: enable %d size %d", i, q.enable, q.size)
		}
	}
	if got := d.availIdx(rxQueue); got != fakeQueueMax {
		t.Errorf("rx avail index %d, want every buffer posted (%d)", got, fakeQueueMax)
	}
	if d.notifies[rxQueue] == 0 {
		t.Error("rx queue never notified")
	}
	cmd := binary.LittleEndian.Uint16(d.pci.Funcs[fakeAddr].Space[4:])
	if cmd&(hostpci.CommandMemory|hostpci.CommandBusMaster) != hostpci.CommandMemory|hostpci.CommandBusMaster {
		t.Errorf("command %#x: memory decode or bus master off", cmd)
	}
}

func TestSmallQueue(t *testing.T) {
	d := newFakeDev()
	d.qmax = 200 // the driver halves 256 until it fits
	fns := Find(hostpci.Scan(d.pci))
	cfg := d.config()
	n, err := Open(cfg, fns[0])
	if err != nil {
		t.Fatal(err)
	}
	if n.rx.size != 128 || n.tx.size != 128 || d.q[0].size != 128 {
		t.Errorf("sizes %d/%d", n.rx.size, n.tx.size)
	}
	cfg.QueueSize = 3
	if _, err := Open(cfg, fns[0]); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("queue size 3: %v", err)
	}
}

func TestSendReceive(t *testing.T) {
	d := newFakeDev()
	n := open(t, d)
	want := [][]byte{frame(60, 1), frame(MaxFrame, 2), frame(14, 3)}
	for _, f := range want {
		if err := n.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, d.sent); diff != "" {
		t.Errorf("device got (-want +got):\n%s", diff)
	}
	if err := n.Send(frame(MaxFrame+1, 4)); !errors.Is(err, ErrTooBig) {
		t.Errorf("too big: %v", err)
	}
	// Receive more frames than the queue holds, in rounds.
	var got [][]byte
	deliver := func(f []byte) { got = append(got, append([]byte(nil), f...)) }
	var sent [][]byte
	for round := 0; round < 3; round++ {
		for i := 0; i < fakeQueueMax; i++ {
			f := frame(14+i, byte(i))
			if !d.receive(f) {
				t.Fatalf("round %d frame %d: no receive buffer", round, i)
			}
			sent = append(sent, f)
		}
		if d.receive(frame(60, 0)) {
			t.Fatal("device found more buffers than the queue size")
		}
		if k, err := n.Poll(deliver); err != nil || k != fakeQueueMax {
			t.Fatalf("Poll = %d, %v", k, err)
		}
	}
	if !cmp.Equal(sent, got) {
		t.Errorf("received %d frames, not the %d sent", len(got), len(sent))
	}
	s := n.Stats()
	if s.RxFrames != 3*fakeQueueMax || s.TxFrames != 3 || s.TxDropped != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestTXFullAndReclaim(t *testing.T) {
	d := newFakeDev()
	n := open(t, d)
	d.holdTX = true
	for i := 0; i < fakeQueueMax; i++ {
		if err := n.Send(frame(60, byte(i))); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := n.Send(frame(60, 0)); !errors.Is(err, ErrTXFull) {
		t.Fatalf("full queue: %v", err)
	}
	d.consumeTX()
	if len(d.sent) != fakeQueueMax {
		t.Fatalf("device took %d frames", len(d.sent))
	}
	if err := n.Send(frame(60, 0)); err != nil {
		t.Errorf("after the device finished: %v", err)
	}
}

func TestRunt(t *testing.T) {
	d := newFakeDev()
	n := open(t, d)
	id, _, _, _ := d.pop(rxQueue)
	d.pushUsed(rxQueue, uint32(id), HeaderLen+13)
	k, err := n.Poll(func([]byte) { t.Error("runt delivered") })
	if err != nil || k != 0 || n.Stats().RxDropped != 1 {
		t.Errorf("Poll = %d, %v, stats %+v", k, err, n.Stats())
	}
	// The buffer went back to the device.
	if got := d.availIdx(rxQueue); got != fakeQueueMax+1 {
		t.Errorf("avail index %d, want %d", got, fakeQueueMax+1)
	}
}

// TestBrokenDevice: a device that breaks the ring protocol stops the NIC
// with an error and never makes it read or deliver outside its buffers.
func TestBrokenDevice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(d *fakeDev)
		want   string
	}{
		{"index too far ahead", func(d *fakeDev) {
			binary.LittleEndian.PutUint16(d.phys(d.q[0].device+2, 2), fakeQueueMax+1)
		}, "ahead"},
		{"id outside the table", func(d *fakeDev) { d.pop(rxQueue); d.pushUsed(rxQueue, fakeQueueMax, 60) }, "outside"},
		{"id returned twice", func(d *fakeDev) {
			id, _, _, _ := d.pop(rxQueue)
			d.pushUsed(rxQueue, uint32(id), 60)
			d.pushUsed(rxQueue, uint32(id), 60)
		}, "not given"},
		{"length beyond the buffer", func(d *fakeDev) {
			id, _, _, _ := d.pop(rxQueue)
			d.pushUsed(rxQueue, uint32(id), BufSize+1)
		}, "exceeds"},
		{"tx id never sent", func(d *fakeDev) { d.pushUsed(txQueue, 5, 0) }, "not given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDev()
			n := open(t, d)
			tc.break_(d)
			_, err := n.Poll(func([]byte) {})
			if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Poll: %v, want ErrBroken mentioning %q", err, tc.want)
			}
			if err := n.Send(frame(60, 1)); !errors.Is(err, ErrBroken) {
				t.Errorf("Send after the break: %v", err)
			}
			if _, err := n.Poll(func([]byte) {}); !errors.Is(err, ErrBroken) {
				t.Errorf("Poll after the break: %v", err)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(d *fakeDev)
		want  string
	}{
		{"legacy only", func(d *fakeDev) { d.offered = FeatureMAC }, "VERSION_1"},
		{"features refused", func(d *fakeDev) { d.refuse = true }, "refused"},
		{"cap outside its BAR", func(d *fakeDev) {
			binary.LittleEndian.PutUint32(d.pci.Funcs[fakeAddr].Space[0x84+8:], 0x3800) // notify offset + 0x1000 > 16 KiB
		}, "outside BAR"},
		{"cap on an unimplemented BAR", func(d *fakeDev) { d.pci.Funcs[fakeAddr].Space[0x50+4] = 2 }, "not an assigned memory BAR"},
		{"cap on a BAR past 5", func(d *fakeDev) { d.pci.Funcs[fakeAddr].Space[0x50+4] = 7 }, "BAR 7"},
		{"no notify cap", func(d *fakeDev) { d.pci.Funcs[fakeAddr].Space[0x84+3] = 9 }, "type 2"},
		{"short notify cap", func(d *fakeDev) { d.pci.Funcs[fakeAddr].Space[0x84+2] = 16 }, "notify capability"},
		{"notify offset outside", func(d *fakeDev) {
			binary.LittleEndian.PutUint32(d.pci.Funcs[fakeAddr].Space[0x84+16:], 0x1000)
		}, "notify offset"},
		{"short common window", func(d *fakeDev) {
			binary.LittleEndian.PutUint32(d.pci.Funcs[fakeAddr].Space[0x50+12:], 0x10)
		}, "want at least"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFakeDev()
			tc.setup(d)
			fns := Find(hostpci.Scan(d.pci))
			_, err := Open(d.config(), fns[0])
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error mentioning %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "00:03.0") {
				t.Errorf("error %q does not name the device", err)
			}
		})
	}
}

func TestRun(t *testing.T) {
	d := newFakeDev()
	n := open(t, d)
	want := frame(100, 7)
	d.receive(want)
	stop := make(chan struct{})
	var got []byte
	err := n.Run(stop, func(f []byte) {
		got = append([]byte(nil), f...)
		close(stop)
	})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("Run = %v, delivered %d bytes", err, len(got))
	}
	// A broken device ends Run with the error.
	binary.LittleEndian.PutUint16(d.phys(d.q[0].device+2, 2), 0x8000)
	if err := n.Run(make(chan struct{}), func([]byte) {}); !errors.Is(err, ErrBroken) {
		t.Errorf("Run on a broken device = %v", err)
	}
}

// FuzzUsedRing lets the device write arbitrary used entries and indices
// into both queues between polls and sends: the driver must never panic
// (a slice outside a buffer would), must deliver only frames inside its
// buffers, and once it reports ErrBroken must stay stopped.
func FuzzUsedRing(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0x3c, 0, 0, 0})
	f.Add([]byte{0, 0xFF, 0xFF, 0, 0, 0, 0x10, 0, 0, 1, 1, 0, 5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newFakeDev()
		n := open(t, d)
		broken := false
		for len(data) >= 9 {
			q := int(data[0] & 1)
			idx := binary.LittleEndian.Uint16(data[1:])
			id := binary.LittleEndian.Uint16(data[3:])
			l := binary.LittleEndian.Uint32(data[5:])
			data = data[9:]
			e := d.phys(d.q[q].device+4+8*uint64(idx%fakeQueueMax), 8)
			binary.LittleEndian.PutUint32(e, uint32(id))
			binary.LittleEndian.PutUint32(e[4:], l)
			binary.LittleEndian.PutUint16(d.phys(d.q[q].device+2, 2), idx+1)
			_, err := n.Poll(func(fr []byte) {
				if len(fr) < minFrame || len(fr) > MaxFrame {
					t.Fatalf("delivered a %d-byte frame", len(fr))
				}
			})
			serr := n.Send(frame(60, 1))
			if broken && (!errors.Is(err, ErrBroken) || !errors.Is(serr, ErrBroken)) {
				t.Fatalf("broken NIC came back: %v, %v", err, serr)
			}
			if err != nil && !errors.Is(err, ErrBroken) {
				t.Fatalf("Poll: %v", err)
			}
			broken = broken || err != nil || errors.Is(serr, ErrBroken)
		}
	})
}
