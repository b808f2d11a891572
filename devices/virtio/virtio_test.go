package virtio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
	"hv/devices/pci"
	"hv/devices/virtio"
	"hv/devices/virtio/virtiotest"
)

const (
	descAt  = 0x1000
	availAt = 0x2000
	usedAt  = 0x3000
	qsize   = 8
)

func newQueue(mem *virtiotest.Memory) (*virtio.Queue, *virtiotest.Driver) {
	q := &virtio.Queue{Size: qsize, Desc: descAt, Avail: availAt, Used: usedAt, Enabled: true, Indirect: true}
	return q, &virtiotest.Driver{Mem: mem}
}

func publish(mem *virtiotest.Memory, heads ...uint16) {
	for i, h := range heads {
		_ = mem.WritePhys(availAt+4+2*uint64(i), binary.LittleEndian.AppendUint16(nil, h))
	}
	_ = mem.WritePhys(availAt+2, binary.LittleEndian.AppendUint16(nil, uint16(len(heads))))
}

func TestWalkValidChains(t *testing.T) {
	mem := virtiotest.NewMemory(1 << 16)
	q, d := newQueue(mem)
	// chain 0: readable 0x100+16 -> readable 0x200+8 -> writable 0x300+1
	d.PutDesc(descAt, 0, 0x8000, 16, virtio.DescFNext, 5)
	d.PutDesc(descAt, 5, 0x8100, 8, virtio.DescFNext, 2)
	d.PutDesc(descAt, 2, 0x8200, 1, virtio.DescFWrite, 0)
	// chain 1: indirect table at 0x4000 with 2 entries (its own next numbering)
	d.PutDesc(descAt, 3, 0x4000, 32, virtio.DescFIndirect|virtio.DescFWrite, 0)
	d.PutDesc(0x4000, 0, 0x9000, 4, virtio.DescFNext, 1)
	d.PutDesc(0x4000, 1, 0x9100, 12, virtio.DescFWrite, 0)
	publish(mem, 0, 3)
	want := []*virtio.Chain{
		{Head: 0, Readable: []virtio.Segment{{0x8000, 16}, {0x8100, 8}}, Writable: []virtio.Segment{{0x8200, 1}}, ReadLen: 24, WriteLen: 1},
		{Head: 3, Readable: []virtio.Segment{{0x9000, 4}}, Writable: []virtio.Segment{{0x9100, 12}}, ReadLen: 4, WriteLen: 12},
	}
	for i, w := range want {
		c, err := q.Pop(mem)
		if err != nil {
			t.Fatalf("chain %d: %v", i, err)
		}
		if diff := cmp.Diff(w, c); diff != "" {
			t.Errorf("chain %d (-want +got):\n%s", i, diff)
		}
	}
	if c, err := q.Pop(mem); c != nil || err != nil {
		t.Errorf("empty ring gave %v, %v", c, err)
	}
	if err := q.Push(mem, 3, 12); err != nil {
		t.Fatal(err)
	}
	var u [12]byte
	_ = mem.ReadPhys(usedAt, u[:])
	if got := [3]uint32{uint32(binary.LittleEndian.Uint16(u[2:])), binary.LittleEndian.Uint32(u[4:]), binary.LittleEndian.Uint32(u[8:])}; got != [3]uint32{1, 3, 12} {
		t.Errorf("used ring idx/id/len = %v", got)
	}
}

func TestWalkRejectsBadChains(t *testing.T) {
	tests := []struct {
		name     string
		indirect bool
		build    func(d *virtiotest.Driver)
		avail    uint16 // avail idx to publish (default 1 with head 0)
	}{
		{"loop", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x8000, 4, virtio.DescFNext, 1)
			d.PutDesc(descAt, 1, 0x8000, 4, virtio.DescFNext, 0)
		}, 0},
		{"self loop", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, 0x8000, 4, virtio.DescFNext, 0) }, 0},
		{"next out of range", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, 0x8000, 4, virtio.DescFNext, qsize) }, 0},
		{"zero length", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, 0x8000, 0, 0, 0) }, 0},
		{"buffer wraps", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, ^uint64(0)-2, 8, 0, 0) }, 0},
		{"readable after writable", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x8000, 4, virtio.DescFWrite|virtio.DescFNext, 1)
			d.PutDesc(descAt, 1, 0x8000, 4, 0, 0)
		}, 0},
		{"indirect not negotiated", false, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x4000, 16, virtio.DescFIndirect, 0)
			d.PutDesc(0x4000, 0, 0x8000, 4, 0, 0)
		}, 0},
		{"indirect with next", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x4000, 16, virtio.DescFIndirect|virtio.DescFNext, 1)
			d.PutDesc(0x4000, 0, 0x8000, 4, 0, 0)
		}, 0},
		{"indirect table not whole descriptors", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x4000, 20, virtio.DescFIndirect, 0)
		}, 0},
		{"indirect empty", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, 0x4000, 0, virtio.DescFIndirect, 0) }, 0},
		{"nested indirect", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x4000, 16, virtio.DescFIndirect, 0)
			d.PutDesc(0x4000, 0, 0x5000, 16, virtio.DescFIndirect, 0)
		}, 0},
		{"indirect after direct", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x8000, 4, virtio.DescFNext, 1)
			d.PutDesc(descAt, 1, 0x4000, 16, virtio.DescFIndirect, 0)
			d.PutDesc(0x4000, 0, 0x8000, 4, 0, 0)
		}, 0},
		{"loop inside indirect table", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 0x4000, 32, virtio.DescFIndirect, 0)
			d.PutDesc(0x4000, 0, 0x8000, 4, virtio.DescFNext, 1)
			d.PutDesc(0x4000, 1, 0x8000, 4, virtio.DescFNext, 0)
		}, 0},
		{"indirect table outside memory", true, func(d *virtiotest.Driver) {
			d.PutDesc(descAt, 0, 1<<40, 16, virtio.DescFIndirect, 0)
		}, 0},
		{"avail idx beyond queue size", true, func(d *virtiotest.Driver) { d.PutDesc(descAt, 0, 0x8000, 4, 0, 0) }, qsize + 1},
	}
	for _, tc := range tests {
		mem := virtiotest.NewMemory(1 << 16)
		q, d := newQueue(mem)
		q.Indirect = tc.indirect
		tc.build(d)
		publish(mem, 0)
		if tc.avail != 0 {
			_ = mem.WritePhys(availAt+2, binary.LittleEndian.AppendUint16(nil, tc.avail))
		}
		c, err := q.Pop(mem)
		if !errors.Is(err, virtio.ErrMalformed) || c != nil {
			t.Errorf("%s: Pop = %v, %v; want ErrMalformed", tc.name, c, err)
		}
	}
}

func TestRingOutsideMemory(t *testing.T) {
	mem := virtiotest.NewMemory(1 << 16)
	q := &virtio.Queue{Size: qsize, Desc: 1 << 30, Avail: 1 << 31, Used: 1 << 32, Enabled: true}
	if _, err := q.Pop(mem); !errors.Is(err, virtio.ErrMalformed) {
		t.Errorf("pop: %v", err)
	}
	if err := q.Push(mem, 0, 0); !errors.Is(err, virtio.ErrMalformed) {
		t.Errorf("push: %v", err)
	}
}

func TestQueueCheck(t *testing.T) {
	for _, tc := range []struct {
		q  virtio.Queue
		ok bool
	}{
		{virtio.Queue{Size: 256, Desc: 0x1000, Avail: 0x2000, Used: 0x3000}, true},
		{virtio.Queue{Size: 0, Desc: 0x1000, Avail: 0x2000, Used: 0x3000}, false},
		{virtio.Queue{Size: 100, Desc: 0x1000, Avail: 0x2000, Used: 0x3000}, false},
		{virtio.Queue{Size: 512, Desc: 0x1000, Avail: 0x2000, Used: 0x3000}, false},
		{virtio.Queue{Size: 256, Desc: 0x1008, Avail: 0x2000, Used: 0x3000}, false},
		{virtio.Queue{Size: 256, Desc: 0x1000, Avail: 0x2001, Used: 0x3000}, false},
		{virtio.Queue{Size: 256, Desc: 0x1000, Avail: 0x2000, Used: 0x3002}, false},
		{virtio.Queue{Size: 256, Desc: ^uint64(0) &^ 15, Avail: 0x2000, Used: 0x3000}, false},
	} {
		if err := tc.q.Check(256); (err == nil) != tc.ok {
			t.Errorf("%+v: Check = %v", tc.q, err)
		}
	}
}

// echo is a test device: queue 0 takes chains, writes the readable bytes
// reversed into the writable buffers, and returns them.
type echo struct {
	resets  int
	cfg     [8]byte
	notices int
}

func (e *echo) Type() virtio.DeviceType { return virtio.TypeConsole }
func (e *echo) Features() uint64        { return 1 << 0 }
func (e *echo) QueueSizes() []uint16    { return []uint16{8, 4} }
func (e *echo) ConfigSize() int         { return len(e.cfg) }
func (e *echo) ReadConfig(off int, p []byte) {
	copy(p, e.cfg[off:])
}
func (e *echo) WriteConfig(env *virtio.Env, off int, p []byte) {
	copy(e.cfg[off:], p)
	env.ConfigChanged()
}
func (e *echo) Reset() { e.resets++; e.notices = 0 }
func (e *echo) Notify(env *virtio.Env, q int) error {
	e.notices++
	for {
		c, err := env.Pop(q)
		if err != nil || c == nil {
			return err
		}
		buf := make([]byte, c.ReadLen)
		if _, err := c.Reader(env.Mem).Read(buf); err != nil {
			return err
		}
		for i, j := 0, len(buf)-1; i < j; i, j = i+1, j-1 {
			buf[i], buf[j] = buf[j], buf[i]
		}
		w := c.Writer(env.Mem, c.WriteLen)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := env.Push(q, c.Head, uint32(w.Written)); err != nil {
			return err
		}
	}
}
func (e *echo) SaveDevice() []byte {
	enc := snapshot.NewEncoder("echo", 1)
	enc.Bytes(e.cfg[:])
	return enc.Finish()
}
func (e *echo) PrepareRestoreDevice(blob []byte) (func(), error) {
	d, err := snapshot.NewDecoder(blob, "echo", 1)
	if err != nil {
		return nil, err
	}
	b := d.Bytes(8)
	d.Check(len(b) == 8, "cfg")
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return func() { copy(e.cfg[:], b) }, nil
}

type rig struct {
	t    *virtio.Transport
	d    *virtiotest.Driver
	dev  *echo
	line devtest.Line
}

func newRig(t testing.TB) *rig {
	r := &rig{dev: &echo{}}
	mem := virtiotest.NewMemory(1 << 20)
	tr, err := virtio.NewTransport("echo", r.dev, mem)
	if err != nil {
		t.Fatal(err)
	}
	tr.Function().ConnectINTx(&r.line, 10)
	r.t = tr
	if r.d, err = virtiotest.NewDriver(tr, mem); err != nil {
		t.Fatal(err)
	}
	return r
}

const ready = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusFeaturesOK | virtio.StatusDriverOK

func TestPCIIdentity(t *testing.T) {
	r := newRig(t)
	var id [4]byte
	r.d.Fn.ReadConfig(pci.RegVendorID, id[:])
	if got := binary.LittleEndian.Uint32(id[:]); got != 0x1043<<16|0x1AF4 {
		t.Errorf("vendor/device = %#x", got)
	}
	var rev [1]byte
	r.d.Fn.ReadConfig(pci.RegRevisionID, rev[:])
	if rev[0] < 1 {
		t.Errorf("revision %d", rev[0])
	}
	if _, ok := r.d.Caps[5]; !ok {
		t.Error("no PCI configuration access capability")
	}
	if r.d.Caps[2].Multiplier != 4 || r.d.Caps[1].Length < 56 {
		t.Errorf("caps %+v", r.d.Caps)
	}
}

func TestFeatureNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		features uint64
		want     uint8
	}{
		{"version 1 and device bit", virtio.FeatureVersion1 | 1, ready},
		{"version 1 and indirect", virtio.FeatureVersion1 | virtio.FeatureIndirectDesc, ready},
		{"legacy driver (no VERSION_1)", 1, virtio.StatusAcknowledge | virtio.StatusDriver},
		{"bit not offered", virtio.FeatureVersion1 | 1<<5, virtio.StatusAcknowledge | virtio.StatusDriver},
		{"event idx not offered", virtio.FeatureVersion1 | virtio.FeatureEventIdx, virtio.StatusAcknowledge | virtio.StatusDriver},
	}
	for _, tc := range tests {
		r := newRig(t)
		if f := r.d.DeviceFeatures(); f != virtio.FeatureVersion1|virtio.FeatureIndirectDesc|1 {
			t.Fatalf("offered %#x", f)
		}
		if got := r.d.Init(tc.features, 0); got != tc.want {
			t.Errorf("%s: status %#x, want %#x", tc.name, got, tc.want)
		}
	}
	r := newRig(t)
	r.d.Init(virtio.FeatureVersion1, 0)
	r.d.Write32(virtiotest.DriverFeatureSelect, 0)
	r.d.Write32(virtiotest.DriverFeature, 1)
	if got := r.d.Read32(virtiotest.DriverFeature); got != 0 {
		t.Errorf("driver features changed after FEATURES_OK: %#x", got)
	}
}

func TestEchoThroughQueue(t *testing.T) {
	r := newRig(t)
	if st := r.d.Init(virtio.FeatureVersion1|virtio.FeatureIndirectDesc, 0); st != ready {
		t.Fatalf("status %#x", st)
	}
	q := r.d.Queues[0]
	in := r.d.Buffer([]byte("hello"), 5)
	out := r.d.Buffer(nil, 3)
	out2 := r.d.Buffer(nil, 8)
	head := r.d.AddChain(q, []virtiotest.Desc{{Addr: in, Len: 5}, {Addr: out, Len: 3, Write: true}, {Addr: out2, Len: 8, Write: true}})
	r.d.Kick(q)
	if diff := cmp.Diff([]virtiotest.Used{{ID: uint32(head), Len: 5}}, r.d.TakeUsed(q)); diff != "" {
		t.Errorf("used (-want +got):\n%s", diff)
	}
	if got := string(r.d.Bytes(out, 3)) + string(r.d.Bytes(out2, 2)); got != "olleh" {
		t.Errorf("echo wrote %q", got)
	}
	if !r.line.Level() {
		t.Fatal("no interrupt for a used buffer")
	}
	if isr := r.d.ISR(); isr != 1 {
		t.Errorf("ISR = %#x", isr)
	}
	if r.line.Level() || r.d.ISR() != 0 {
		t.Error("ISR read did not acknowledge")
	}
	// NO_INTERRUPT suppresses the interrupt but not the work.
	r.d.SuppressInterrupts(q, true)
	r.d.AddChain(q, []virtiotest.Desc{{Addr: in, Len: 1}, {Addr: out, Len: 1, Write: true}})
	r.d.Kick(q)
	if len(r.d.TakeUsed(q)) != 1 || r.line.Level() {
		t.Error("suppression: wrong used count or interrupt raised")
	}
}

func TestMalformedChainNeedsReset(t *testing.T) {
	r := newRig(t)
	r.d.Init(virtio.FeatureVersion1, 0)
	q := r.d.Queues[0]
	loop := uint16(0)
	r.d.AddChain(q, []virtiotest.Desc{{Addr: 0x100, Len: 4, Next: &loop}})
	r.d.Kick(q)
	if st := r.d.Read8(virtiotest.DeviceStatus); st&virtio.StatusDeviceNeedsReset == 0 {
		t.Fatalf("status %#x after a looping chain", st)
	}
	if !errors.Is(r.t.LastError(), virtio.ErrMalformed) {
		t.Errorf("last error %v", r.t.LastError())
	}
	if isr := r.d.ISR(); isr&2 == 0 {
		t.Errorf("no configuration interrupt: ISR %#x", isr)
	}
	before := r.dev.notices
	r.d.Kick(q)
	if r.dev.notices != before {
		t.Error("device still processing in DEVICE_NEEDS_RESET")
	}
	// Driver reset recovers.
	if st := r.d.Init(virtio.FeatureVersion1, 0); st != ready {
		t.Errorf("status after reset and re-init %#x", st)
	}
}

func TestQueueSetupRules(t *testing.T) {
	r := newRig(t)
	r.d.Write8(virtiotest.DeviceStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
	r.d.Write32(virtiotest.DriverFeatureSelect, 1)
	r.d.Write32(virtiotest.DriverFeature, 1)
	r.d.Write8(virtiotest.DeviceStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	r.d.Write16(virtiotest.QueueSelect, 0)
	if got := r.d.Read16(virtiotest.QueueSize); got != 8 {
		t.Errorf("queue size %d, want the maximum 8", got)
	}
	r.d.Write16(virtiotest.QueueSize, 6)
	r.d.Write64(virtiotest.QueueDesc, 0x1000)
	r.d.Write64(virtiotest.QueueDriver, 0x2000)
	r.d.Write64(virtiotest.QueueDevice, 0x3000)
	r.d.Write16(virtiotest.QueueEnable, 1)
	if r.d.Read16(virtiotest.QueueEnable) != 0 || r.d.Read8(virtiotest.DeviceStatus)&virtio.StatusDeviceNeedsReset == 0 {
		t.Error("queue of size 6 was enabled")
	}
	r.d.Write8(virtiotest.DeviceStatus, 0)
	r.d.Write16(virtiotest.QueueSelect, 1)
	r.d.Write16(virtiotest.QueueSize, 2)
	r.d.Write64(virtiotest.QueueDesc, 0x1000)
	r.d.Write16(virtiotest.QueueEnable, 1)
	r.d.Write64(virtiotest.QueueDesc, 0x5000)
	r.d.Write16(virtiotest.QueueSize, 4)
	if r.d.Read32(virtiotest.QueueDesc) != 0x1000 || r.d.Read16(virtiotest.QueueSize) != 2 {
		t.Error("enabled queue accepted new geometry")
	}
	r.d.Write16(virtiotest.QueueSelect, 7)
	if r.d.Read16(virtiotest.QueueSize) != 0 {
		t.Error("non-existent queue has a size")
	}
	if r.d.Read16(virtiotest.NumQueues) != 2 {
		t.Error("num_queues")
	}
}

func TestNotifyIgnoredUntilLiveAndBusMaster(t *testing.T) {
	r := newRig(t)
	r.d.Init(virtio.FeatureVersion1, 0)
	q := r.d.Queues[0]
	r.d.Fn.WriteConfig(pci.RegCommand, []byte{pci.CommandMemory, 0})
	r.d.AddChain(q, []virtiotest.Desc{{Addr: 0x100, Len: 1}})
	r.d.Kick(q)
	if r.dev.notices != 0 {
		t.Error("device did DMA with bus mastering off")
	}
	r.d.Fn.WriteConfig(pci.RegCommand, []byte{pci.CommandMemory | pci.CommandBusMaster, 0})
	r.d.Kick(q)
	if r.dev.notices != 1 || len(r.d.TakeUsed(q)) != 1 {
		t.Error("kick after enabling bus mastering not processed")
	}
}

func TestConfigChangeAndGeneration(t *testing.T) {
	r := newRig(t)
	r.d.Init(virtio.FeatureVersion1, 0)
	g := r.d.Read8(virtiotest.ConfigGeneration)
	r.d.WriteConfig(2, []byte{7})
	var b [8]byte
	r.d.ReadConfig(0, b[:])
	if b[2] != 7 || r.d.Read8(virtiotest.ConfigGeneration) == g || r.d.ISR() != 2 {
		t.Error("config change not signalled")
	}
}

func TestPCICfgCapability(t *testing.T) {
	r := newRig(t)
	c := r.d.Caps[5]
	// Read device_status (common cfg offset 20) through the window.
	r.d.Write8(virtiotest.DeviceStatus, virtio.StatusAcknowledge)
	r.d.Fn.WriteConfig(c.At+8, binary.LittleEndian.AppendUint32(nil, 20))
	r.d.Fn.WriteConfig(c.At+12, binary.LittleEndian.AppendUint32(nil, 1))
	var v [4]byte
	r.d.Fn.ReadConfig(c.At+16, v[:])
	if v[0] != virtio.StatusAcknowledge {
		t.Errorf("status through pci_cfg = %#x", v[0])
	}
	r.d.Fn.WriteConfig(c.At+16, []byte{virtio.StatusAcknowledge | virtio.StatusDriver, 0, 0, 0})
	if r.d.Read8(virtiotest.DeviceStatus) != virtio.StatusAcknowledge|virtio.StatusDriver {
		t.Error("write through pci_cfg lost")
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.d.Init(virtio.FeatureVersion1|virtio.FeatureIndirectDesc, 4)
	q := r.d.Queues[0]
	in := r.d.Buffer([]byte("ab"), 2)
	out := r.d.Buffer(nil, 2)
	r.d.AddChain(q, []virtiotest.Desc{{Addr: in, Len: 2}, {Addr: out, Len: 2, Write: true}})
	r.d.Kick(q)
	r.d.WriteConfig(0, []byte{9})
	blob, err := r.t.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	// Restore into a fresh transport over the same memory.
	r2 := &rig{dev: &echo{}}
	tr, _ := virtio.NewTransport("echo", r2.dev, r.d.Mem)
	tr.Function().ConnectINTx(&r2.line, 10)
	d2, _ := virtiotest.NewDriver(tr, r.d.Mem)
	if err := tr.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if again, _ := tr.SaveState(); !bytes.Equal(again, blob) {
		t.Error("save after restore differs")
	}
	if !r2.line.Level() {
		t.Error("pending interrupt not re-driven")
	}
	// Both continue identically.
	d2.Queues = r.d.Queues
	r.d.AddChain(q, []virtiotest.Desc{{Addr: in, Len: 2}, {Addr: out, Len: 2, Write: true}})
	d2.Kick(q)
	if r2.dev.notices != 1 || d2.Read8(virtiotest.DeviceStatus) != ready {
		t.Errorf("restored device did not continue: notices %d status %#x", r2.dev.notices, d2.Read8(virtiotest.DeviceStatus))
	}
	// Corruptions.
	for name, mut := range map[string]func([]byte){
		"status":   func(b []byte) { b[4+1+len("virtio-pci")+2+2+4+4+8] = virtio.StatusDriverOK },
		"isr":      func(b []byte) { b[4+1+len("virtio-pci")+2+2+4+4+8+1+1+2] = 0x80 },
		"truncate": nil,
	} {
		b := append([]byte(nil), blob...)
		if mut == nil {
			b = b[:len(b)-3]
		} else {
			mut(b)
			b = snapshot.Reseal(b)
		}
		before, _ := tr.SaveState()
		if err := tr.RestoreState(b); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Errorf("%s: err %v", name, err)
		}
		if after, _ := tr.SaveState(); !bytes.Equal(before, after) {
			t.Errorf("%s: failed restore changed state", name)
		}
	}
	tr.Reset()
	if tr.Status() != 0 || r2.line.Level() {
		t.Error("reset left status or interrupt")
	}
}

// FuzzQueueWalker lets the fuzzer own the descriptor table, the rings and
// an indirect table. Invariants: no panic, every chain returned obeys the
// rules the walker promises.
func FuzzQueueWalker(f *testing.F) {
	seed := make([]byte, 0x200)
	binary.LittleEndian.PutUint64(seed[0:], 0x1800)
	binary.LittleEndian.PutUint32(seed[8:], 16)
	binary.LittleEndian.PutUint16(seed[12:], virtio.DescFNext)
	binary.LittleEndian.PutUint16(seed[14:], 1)
	binary.LittleEndian.PutUint64(seed[16:], 0x1900)
	binary.LittleEndian.PutUint32(seed[24:], 4)
	binary.LittleEndian.PutUint16(seed[28:], virtio.DescFWrite)
	binary.LittleEndian.PutUint16(seed[0x102:], 1)
	f.Add(seed, true)
	f.Fuzz(func(t *testing.T, raw []byte, indirect bool) {
		mem := virtiotest.NewMemory(0x2000)
		copy(mem.Bytes[0x1000:], raw) // desc table at 0x1000, avail at 0x1100, used at 0x1200
		q := &virtio.Queue{Size: qsize, Desc: 0x1000, Avail: 0x1100, Used: 0x1200, Enabled: true, Indirect: indirect}
		for i := 0; i < 2*qsize; i++ {
			c, err := q.Pop(mem)
			if err != nil || c == nil {
				return
			}
			if len(c.Readable)+len(c.Writable) > virtio.MaxQueueSize || c.Head >= qsize {
				t.Fatalf("chain %+v", c)
			}
			for _, s := range append(c.Readable, c.Writable...) {
				if s.Len == 0 || s.Addr+uint64(s.Len) < s.Addr {
					t.Fatalf("segment %+v", s)
				}
			}
			_ = q.Push(mem, c.Head, 0)
		}
	})
}

// FuzzTransport drives the BAR registers, the PCI configuration space and
// kicks with arbitrary values while the driver's queues live in memory the
// fuzzer also scribbles on. Invariants: no panic; the INTx line is high
// exactly when the ISR is non-zero and interrupts are not disabled;
// save/restore is lossless.
func FuzzTransport(f *testing.F) {
	f.Add([]byte{0x14, 0x01, 0x14, 0x03, 0x0C, 0x01, 0x14, 0x0B, 0x14, 0x0F, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		r.d.Init(virtio.FeatureVersion1|virtio.FeatureIndirectDesc, 0)
		for len(prog) >= 3 {
			op, a, v := prog[0], prog[1], prog[2]
			prog = prog[3:]
			switch op % 8 {
			case 0:
				r.d.BAR.Write(uint64(a)%64, []byte{v})
			case 1:
				r.d.BAR.Write(uint64(a)%64&^3, []byte{v, a, v, 0})
			case 2:
				var b [4]byte
				r.d.BAR.Read(uint64(a)%64, b[:1+int(v%4)])
			case 3:
				r.d.Kick(r.d.Queues[int(a)%len(r.d.Queues)])
			case 4:
				r.d.Mem.Bytes[0x1000+int(a)*4+int(v)%4] = v ^ a
			case 5:
				r.d.AddChain(r.d.Queues[0], []virtiotest.Desc{{Addr: uint64(a) << 4, Len: uint32(v)}, {Addr: uint64(v) << 8, Len: uint32(a), Write: true}})
				r.d.Kick(r.d.Queues[0])
			case 6:
				r.d.Fn.WriteConfig(int(a), []byte{v})
				r.d.ISR()
			case 7:
				blob, err := r.t.SaveState()
				if err != nil {
					t.Fatal(err)
				}
				if err := r.t.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again, _ := r.t.SaveState(); !bytes.Equal(again, blob) {
					t.Fatal("save/restore not lossless")
				}
			}
		}
	})
}
