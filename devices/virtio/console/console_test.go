package console

import (
	"bytes"
	"errors"
	"testing"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
	"hv/devices/virtio/virtiotest"
)

type rig struct {
	out  bytes.Buffer
	dev  *Device
	t    *virtio.Transport
	d    *virtiotest.Driver
	rx   *virtiotest.DriverQueue
	tx   *virtiotest.DriverQueue
	line devtest.Line
}

func newRig(t testing.TB) *rig {
	r := &rig{}
	r.dev = New(&r.out)
	mem := virtiotest.NewMemory(1 << 20)
	var err error
	if r.t, err = virtio.NewTransport("console", r.dev, mem); err != nil {
		t.Fatal(err)
	}
	r.t.Function().ConnectINTx(&r.line, 9)
	if r.d, err = virtiotest.NewDriver(r.t, mem); err != nil {
		t.Fatal(err)
	}
	if st := r.d.Init(virtio.FeatureVersion1, 8); st&virtio.StatusDriverOK == 0 {
		t.Fatalf("status %#x", st)
	}
	r.rx, r.tx = r.d.Queues[0], r.d.Queues[1]
	return r
}

func TestOutput(t *testing.T) {
	r := newRig(t)
	for _, s := range []string{"hello, ", "world\n"} {
		r.d.AddChain(r.tx, []virtiotest.Desc{{Addr: r.d.Buffer([]byte(s), len(s)), Len: uint32(len(s))}})
	}
	r.d.AddChain(r.tx, []virtiotest.Desc{{Addr: 1 << 40, Len: 5}}) // outside memory: dropped, returned
	r.d.Kick(r.tx)
	if r.out.String() != "hello, world\n" {
		t.Errorf("output %q", r.out.String())
	}
	if u := r.d.TakeUsed(r.tx); len(u) != 3 {
		t.Errorf("used %v", u)
	}
	if r.t.Status()&virtio.StatusDeviceNeedsReset != 0 {
		t.Error("needs reset")
	}
}

func TestInput(t *testing.T) {
	r := newRig(t)
	if n := r.dev.Receive([]byte("abcdef")); n != 6 {
		t.Fatalf("accepted %d", n)
	}
	b1 := r.d.Buffer(nil, 4)
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: b1, Len: 4, Write: true}})
	r.d.Kick(r.rx) // pending input flows when buffers arrive
	b2 := r.d.Buffer(nil, 4)
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: b2, Len: 4, Write: true}})
	r.d.Kick(r.rx)
	u := r.d.TakeUsed(r.rx)
	if len(u) != 2 || u[0].Len != 4 || u[1].Len != 2 {
		t.Fatalf("used %v", u)
	}
	if got := string(r.d.Bytes(b1, 4)) + string(r.d.Bytes(b2, 2)); got != "abcdef" {
		t.Errorf("guest read %q", got)
	}
	if !r.line.Level() {
		t.Error("no interrupt")
	}
	if n := r.dev.Receive(make([]byte, MaxPending+10)); n != MaxPending {
		t.Errorf("accepted %d beyond the bound", n)
	}
}

func TestReceiveChainWithReadableBuffer(t *testing.T) {
	r := newRig(t)
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: r.d.Buffer(nil, 4), Len: 4}})
	r.dev.Receive([]byte("x"))
	if r.t.Status()&virtio.StatusDeviceNeedsReset == 0 {
		t.Error("readable receive buffer accepted")
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.dev.Receive([]byte("pending"))
	blob, err := r.t.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t)
	if err := r2.t.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	b := r.d.Buffer(nil, 16)
	r2.d.Queues = r.d.Queues
	r2.d.Mem.Bytes = r.d.Mem.Bytes
	r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: b, Len: 16, Write: true}})
	r2.d.Kick(r.rx)
	if got := string(r.d.Bytes(b, 7)); got != "pending" {
		t.Errorf("restored input %q", got)
	}
	big := snapshot.NewEncoder(stateTag, stateVersion)
	big.Bytes(make([]byte, MaxPending+1))
	if _, err := r.dev.PrepareRestoreDevice(big.Finish()); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("oversized pending input restored: %v", err)
	}
}

// FuzzQueues: arbitrary chains on both queues and input. Invariants: no
// panic; pending input stays bounded.
func FuzzQueues(f *testing.F) {
	f.Add([]byte{0, 8, 1, 1, 4, 0, 2, 'a', 3})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 3 {
			op, a, b := prog[0], prog[1], prog[2]
			prog = prog[3:]
			switch op % 4 {
			case 0:
				r.d.AddChain(r.tx, []virtiotest.Desc{{Addr: uint64(a) << 8, Len: uint32(b), Write: op&4 != 0}})
				r.d.Kick(r.tx)
			case 1:
				r.d.AddChain(r.rx, []virtiotest.Desc{{Addr: uint64(a) << 8, Len: uint32(b), Write: op&4 == 0}})
				r.d.Kick(r.rx)
			case 2:
				r.dev.Receive(bytes.Repeat([]byte{a}, int(b)))
			case 3:
				r.d.Mem.Bytes[0x1000+int(a)*16+int(b)%16] = b
			}
			if len(r.dev.pending) > MaxPending {
				t.Fatal("pending input unbounded")
			}
		}
	})
}
