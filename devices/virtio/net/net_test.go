package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
	"hv/devices/virtio/net/vswitch"
	"hv/devices/virtio/virtiotest"
)

type recorder struct{ frames [][]byte }

func (r *recorder) Send(f []byte) error {
	r.frames = append(r.frames, append([]byte(nil), f...))
	return nil
}

type rig struct {
	dev  *Device
	t    *virtio.Transport
	d    *virtiotest.Driver
	rx   *virtiotest.DriverQueue
	tx   *virtiotest.DriverQueue
	line devtest.Line
}

var macA = [6]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56}

func newRig(t testing.TB, mac [6]byte, b Backend) *rig {
	r := &rig{}
	var err error
	if r.dev, err = New(mac, b); err != nil {
		t.Fatal(err)
	}
	mem := virtiotest.NewMemory(1 << 20)
	if r.t, err = virtio.NewTransport("net", r.dev, mem); err != nil {
		t.Fatal(err)
	}
	r.t.Function().ConnectINTx(&r.line, 10)
	if r.d, err = virtiotest.NewDriver(r.t, mem); err != nil {
		t.Fatal(err)
	}
	if st := r.d.Init(virtio.FeatureVersion1|FeatureMAC|FeatureStatus, 16); st&virtio.StatusDriverOK == 0 {
		t.Fatalf("status %#x", st)
	}
	r.rx, r.tx = r.d.Queues[0], r.d.Queues[1]
	return r
}

func ethFrame(dst, src [6]byte, payload string) []byte {
	f := append(append(dst[:], src[:]...), 0x08, 0x00)
	return append(f, payload...)
}

// send queues a frame with a virtio-net header, split over two buffers as
// Linux does (header, then data).
func (r *rig) send(hdr []byte, frame []byte) {
	r.d.AddChain(r.tx, []virtiotest.Desc{
		{Addr: r.d.Buffer(hdr, len(hdr)), Len: uint32(len(hdr))},
		{Addr: r.d.Buffer(frame, len(frame)), Len: uint32(len(frame))},
	})
	r.d.Kick(r.tx)
}

func (r *rig) addRxBuffer(n int) uint64 {
	a := r.d.Buffer(nil, n)
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: a, Len: uint32(n), Write: true}})
	r.d.Kick(r.rx)
	return a
}

func TestConfig(t *testing.T) {
	r := newRig(t, macA, &recorder{})
	var c [configSize]byte
	r.d.ReadConfig(0, c[:])
	if !bytes.Equal(c[:6], macA[:]) || binary.LittleEndian.Uint16(c[6:]) != StatusLinkUp {
		t.Errorf("config %x", c)
	}
	r.d.WriteConfig(0, []byte{0xFF})
	r.d.ReadConfig(0, c[:1])
	if c[0] != macA[0] {
		t.Error("MAC writable without CTRL_MAC_ADDR")
	}
	g := r.d.Read8(virtiotest.ConfigGeneration)
	if err := r.dev.SetLink(false); err != nil {
		t.Fatal(err)
	}
	r.d.ReadConfig(6, c[:2])
	if c[0] != 0 || r.d.Read8(virtiotest.ConfigGeneration) == g || r.d.ISR()&2 == 0 {
		t.Error("link down not signalled")
	}
	if _, err := New([6]byte{1}, &recorder{}); err == nil {
		t.Error("multicast MAC accepted")
	}
}

func TestTransmit(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
		size int
		sent bool
	}{
		{"plain frame", make([]byte, HeaderLen), 60, true},
		{"max frame", make([]byte, HeaderLen), MaxFrame, true},
		{"runt", make([]byte, HeaderLen), 10, false},
		{"too long", make([]byte, HeaderLen), MaxFrame + 1, false},
		{"gso requested", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 60, false},
		{"needs csum not negotiated", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 60, false},
	}
	for _, tc := range tests {
		rec := &recorder{}
		r := newRig(t, macA, rec)
		f := bytes.Repeat([]byte{0xA5}, tc.size)
		r.send(tc.hdr, f)
		used := r.d.TakeUsed(r.tx)
		if len(used) != 1 || used[0].Len != 0 {
			t.Errorf("%s: used %v", tc.name, used)
		}
		if tc.sent != (len(rec.frames) == 1) || tc.sent && !bytes.Equal(rec.frames[0], f) {
			t.Errorf("%s: backend got %d frames", tc.name, len(rec.frames))
		}
		if r.t.Status()&virtio.StatusDeviceNeedsReset != 0 {
			t.Errorf("%s: device needs reset", tc.name)
		}
	}
}

func TestReceive(t *testing.T) {
	r := newRig(t, macA, &recorder{})
	f := ethFrame(macA, [6]byte{2, 0, 0, 0, 0, 9}, "hello")
	if r.dev.Receive(f) {
		t.Error("delivered with no receive buffer")
	}
	buf := r.addRxBuffer(HeaderLen + 1514)
	if !r.dev.Receive(f) {
		t.Fatal("not delivered")
	}
	used := r.d.TakeUsed(r.rx)
	if diff := cmp.Diff([]virtiotest.Used{{ID: 0, Len: uint32(HeaderLen + len(f))}}, used); diff != "" {
		t.Errorf("used (-want +got):\n%s", diff)
	}
	want := append(make([]byte, HeaderLen), f...)
	want[hdrNumBuf] = 1
	if got := r.d.Bytes(buf, len(want)); !bytes.Equal(got, want) {
		t.Errorf("buffer %x, want %x", got, want)
	}
	if !r.line.Level() {
		t.Error("no receive interrupt")
	}
	// Too small a buffer: frame dropped, buffer returned empty.
	r.addRxBuffer(HeaderLen + 4)
	if r.dev.Receive(f) {
		t.Error("frame delivered into a too small buffer")
	}
	if u := r.d.TakeUsed(r.rx); len(u) != 1 || u[0].Len != 0 {
		t.Errorf("small buffer used %v", u)
	}
	// Link down drops.
	r.addRxBuffer(2048)
	_ = r.dev.SetLink(false)
	if r.dev.Receive(f) {
		t.Error("delivered with link down")
	}
	if s := r.dev.Stats(); s.RxFrames != 1 || s.RxDropped != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestReceiveChainWithReadableBuffer(t *testing.T) {
	r := newRig(t, macA, &recorder{})
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: r.d.Buffer(nil, 64), Len: 64}, {Addr: r.d.Buffer(nil, 2048), Len: 2048, Write: true}})
	if r.dev.Receive(ethFrame(macA, macA, "x")) {
		t.Error("delivered into a malformed chain")
	}
	if r.t.Status()&virtio.StatusDeviceNeedsReset == 0 {
		t.Error("malformed receive chain did not set DEVICE_NEEDS_RESET")
	}
}

func TestTwoVMsThroughSwitch(t *testing.T) {
	sw := vswitch.New(0)
	macB := [6]byte{0x52, 0x54, 0, 0, 0, 0xB}
	var a, b *rig
	pa, _ := sw.AddPort("a", func(f []byte) { a.dev.Receive(f) })
	pb, _ := sw.AddPort("b", func(f []byte) { b.dev.Receive(f) })
	a = newRig(t, macA, pa)
	b = newRig(t, macB, pb)
	bufB := b.addRxBuffer(2048)
	bufA := a.addRxBuffer(2048)
	// a broadcasts (b learns nothing yet), b answers unicast to a.
	arp := ethFrame([6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, macA, "who-has")
	a.send(make([]byte, HeaderLen), arp)
	if got := b.d.Bytes(bufB+HeaderLen, len(arp)); !bytes.Equal(got, arp) {
		t.Errorf("b received %x", got)
	}
	reply := ethFrame(macA, macB, "is-at")
	b.send(make([]byte, HeaderLen), reply)
	if got := a.d.Bytes(bufA+HeaderLen, len(reply)); !bytes.Equal(got, reply) {
		t.Errorf("a received %x", got)
	}
	if p, ok := sw.Lookup(macB); !ok || p != pb {
		t.Error("switch did not learn b")
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t, macA, &recorder{})
	_ = r.dev.SetLink(false)
	blob, err := r.t.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t, [6]byte{2, 0, 0, 0, 0, 1}, &recorder{})
	if err := r2.t.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if r2.dev.MAC() != macA || r2.dev.linkUp {
		t.Error("MAC or link not restored")
	}
	bad := r.dev.SaveDevice()
	bad[4+1+len(stateTag)+2+4] |= 1 // multicast MAC
	if _, err := r.dev.PrepareRestoreDevice(snapshot.Reseal(bad)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("multicast MAC restored: %v", err)
	}
}

// FuzzQueues lets the fuzzer build transmit and receive chains and feed
// frames. Invariants: no panic; every frame the backend sees is a
// well-formed Ethernet frame of allowed size.
func FuzzQueues(f *testing.F) {
	f.Add([]byte{0, 60, 12, 1, 0, 14, 2, 0x40, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		rec := &recorder{}
		r := newRig(t, macA, rec)
		for len(prog) >= 3 {
			op, a, b := prog[0], prog[1], prog[2]
			prog = prog[3:]
			switch op % 4 {
			case 0:
				hdr := make([]byte, int(a)%16)
				r.send(hdr, bytes.Repeat([]byte{b}, int(b)))
			case 1:
				r.addRxBuffer(int(a)*8 + 1)
			case 2:
				r.dev.Receive(bytes.Repeat([]byte{a}, int(b)*16))
			case 3:
				r.d.Mem.Bytes[0x1000+int(a)*16+int(b)%16] = b
				r.d.Kick(r.d.Queues[int(a)%2])
			}
		}
		for _, fr := range rec.frames {
			if len(fr) < minFrame || len(fr) > MaxFrame {
				t.Fatalf("backend got a %d-byte frame", len(fr))
			}
		}
	})
}
