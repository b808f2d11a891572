package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
	"hv/devices/virtio/virtiotest"
)

type rig struct {
	disk []byte
	dev  *Device
	t    *virtio.Transport
	d    *virtiotest.Driver
	q    *virtiotest.DriverQueue
	line devtest.Line
}

func newRig(t testing.TB, opt Options) *rig {
	r := &rig{disk: make([]byte, 64*SectorSize)}
	for i := range r.disk {
		r.disk[i] = byte(i / SectorSize)
	}
	ram, err := NewRAMDisk(r.disk)
	if err != nil {
		t.Fatal(err)
	}
	if r.dev, err = New(ram, opt); err != nil {
		t.Fatal(err)
	}
	mem := virtiotest.NewMemory(1 << 20)
	if r.t, err = virtio.NewTransport("blk", r.dev, mem); err != nil {
		t.Fatal(err)
	}
	r.t.Function().ConnectINTx(&r.line, 11)
	if r.d, err = virtiotest.NewDriver(r.t, mem); err != nil {
		t.Fatal(err)
	}
	if st := r.d.Init(virtio.FeatureVersion1|virtio.FeatureIndirectDesc|FeatureFlush|FeatureBlkSize|FeatureSegMax, 16); st&virtio.StatusDriverOK == 0 {
		t.Fatalf("status %#x", st)
	}
	r.q = r.d.Queues[0]
	return r
}

func header(typ uint32, sector uint64) []byte {
	h := make([]byte, headerLen)
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

func TestConfig(t *testing.T) {
	r := newRig(t, Options{})
	var c [configSize]byte
	r.d.ReadConfig(0, c[:])
	if got := binary.LittleEndian.Uint64(c[cfgCapacity:]); got != 64 {
		t.Errorf("capacity %d", got)
	}
	if got := binary.LittleEndian.Uint32(c[cfgBlkSize:]); got != 512 {
		t.Errorf("blk_size %d", got)
	}
	if got := binary.LittleEndian.Uint32(c[cfgSegMax:]); got != segMax {
		t.Errorf("seg_max %d", got)
	}
	if f := r.d.DeviceFeatures(); f&FeatureRO != 0 || f&FeatureFlush == 0 {
		t.Errorf("features %#x", f)
	}
	ro := newRig(t, Options{ReadOnly: true})
	if ro.d.DeviceFeatures()&FeatureRO == 0 {
		t.Error("read-only device does not offer RO")
	}
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name       string
		opt        Options
		typ        uint32
		sector     uint64
		out        []byte // data after the header (device-readable)
		in         int    // writable data bytes before the status byte
		wantStatus byte
		wantLen    uint32
		wantIn     []byte
		wantDisk   func(disk []byte) bool
	}{
		{name: "read one sector", typ: TypeIn, sector: 3, in: 512, wantStatus: StatusOK, wantLen: 513, wantIn: bytes.Repeat([]byte{3}, 512)},
		{name: "read two sectors", typ: TypeIn, sector: 62, in: 1024, wantStatus: StatusOK, wantLen: 1025,
			wantIn: append(bytes.Repeat([]byte{62}, 512), bytes.Repeat([]byte{63}, 512)...)},
		{name: "read past the end", typ: TypeIn, sector: 63, in: 1024, wantStatus: StatusIOErr, wantLen: 1},
		{name: "read huge sector", typ: TypeIn, sector: 1 << 62, in: 512, wantStatus: StatusIOErr, wantLen: 1},
		{name: "read partial sector", typ: TypeIn, sector: 0, in: 100, wantStatus: StatusIOErr, wantLen: 1},
		{name: "write", typ: TypeOut, sector: 5, out: bytes.Repeat([]byte{0xAB}, 512), wantStatus: StatusOK, wantLen: 1,
			wantDisk: func(d []byte) bool { return d[5*512] == 0xAB && d[6*512-1] == 0xAB && d[6*512] == 6 }},
		{name: "write past the end", typ: TypeOut, sector: 64, out: make([]byte, 512), wantStatus: StatusIOErr, wantLen: 1},
		{name: "write to read-only", opt: Options{ReadOnly: true}, typ: TypeOut, sector: 1, out: make([]byte, 512), wantStatus: StatusIOErr, wantLen: 1,
			wantDisk: func(d []byte) bool { return d[512] == 1 }},
		{name: "flush", typ: TypeFlush, wantStatus: StatusOK, wantLen: 1},
		{name: "get id", opt: Options{ID: "hv-disk-0"}, typ: TypeGetID, in: IDLen, wantStatus: StatusOK, wantLen: IDLen + 1,
			wantIn: append([]byte("hv-disk-0"), make([]byte, IDLen-9)...)},
		{name: "unknown type", typ: 99, wantStatus: StatusUnsupp, wantLen: 1},
		{name: "discard not offered", typ: 11, out: make([]byte, 16), wantStatus: StatusUnsupp, wantLen: 1},
	}
	for _, tc := range tests {
		r := newRig(t, tc.opt)
		descs := []virtiotest.Desc{{Addr: r.d.Buffer(header(tc.typ, tc.sector), headerLen), Len: headerLen}}
		if len(tc.out) > 0 {
			descs = append(descs, virtiotest.Desc{Addr: r.d.Buffer(tc.out, len(tc.out)), Len: uint32(len(tc.out))})
		}
		var inAt uint64
		if tc.in > 0 {
			inAt = r.d.Buffer(nil, tc.in)
			descs = append(descs, virtiotest.Desc{Addr: inAt, Len: uint32(tc.in), Write: true})
		}
		statusAt := r.d.Buffer([]byte{0xEE}, 1)
		descs = append(descs, virtiotest.Desc{Addr: statusAt, Len: 1, Write: true})
		head := r.d.AddChain(r.q, descs)
		r.d.Kick(r.q)
		if diff := cmp.Diff([]virtiotest.Used{{ID: uint32(head), Len: tc.wantLen}}, r.d.TakeUsed(r.q)); diff != "" {
			t.Errorf("%s: used (-want +got):\n%s", tc.name, diff)
		}
		if got := r.d.Bytes(statusAt, 1)[0]; got != tc.wantStatus {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.wantStatus)
		}
		if tc.wantIn != nil && !bytes.Equal(r.d.Bytes(inAt, len(tc.wantIn)), tc.wantIn) {
			t.Errorf("%s: data read differs", tc.name)
		}
		if tc.wantDisk != nil && !tc.wantDisk(r.disk) {
			t.Errorf("%s: disk contents wrong", tc.name)
		}
		if !r.line.Level() {
			t.Errorf("%s: no interrupt", tc.name)
		}
		if r.t.Status()&virtio.StatusDeviceNeedsReset != 0 {
			t.Errorf("%s: device needs reset", tc.name)
		}
	}
}

func TestScatteredAndIndirectRead(t *testing.T) {
	r := newRig(t, Options{})
	table := r.d.Alloc(16*4, 16)
	a, b := r.d.Buffer(nil, 300), r.d.Buffer(nil, 212)
	st := r.d.Buffer(nil, 1)
	r.d.PutDesc(table, 0, r.d.Buffer(header(TypeIn, 7), 16), 16, virtio.DescFNext, 1)
	r.d.PutDesc(table, 1, a, 300, virtio.DescFNext|virtio.DescFWrite, 2)
	r.d.PutDesc(table, 2, b, 212, virtio.DescFNext|virtio.DescFWrite, 3)
	r.d.PutDesc(table, 3, st, 1, virtio.DescFWrite, 0)
	head := r.d.AddChain(r.q, []virtiotest.Desc{{Addr: table, Len: 64, Flags: virtio.DescFIndirect}})
	r.d.Kick(r.q)
	if diff := cmp.Diff([]virtiotest.Used{{ID: uint32(head), Len: 513}}, r.d.TakeUsed(r.q)); diff != "" {
		t.Errorf("used:\n%s", diff)
	}
	if !bytes.Equal(append(r.d.Bytes(a, 300), r.d.Bytes(b, 212)...), bytes.Repeat([]byte{7}, 512)) || r.d.Bytes(st, 1)[0] != StatusOK {
		t.Error("scattered read wrong")
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name       string
		descs      func(r *rig) []virtiotest.Desc
		needsReset bool
		status     byte // expected status byte when the request completes
	}{
		{"no writable status byte", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeIn, 0), 16), Len: 16}}
		}, true, 0},
		{"header in a writable buffer", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeIn, 0), 16), Len: 16, Write: true}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}}
		}, false, StatusIOErr},
		{"short header", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeIn, 0), 8), Len: 8}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}}
		}, false, StatusIOErr},
		{"read into memory that does not exist", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeIn, 0), 16), Len: 16}, {Addr: 1 << 40, Len: 512, Write: true}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}}
		}, false, StatusIOErr},
		{"write from memory that does not exist", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeOut, 0), 16), Len: 16}, {Addr: 1 << 40, Len: 512}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}}
		}, false, StatusIOErr},
		{"status byte outside memory", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeFlush, 0), 16), Len: 16}, {Addr: 1 << 40, Len: 1, Write: true}}
		}, true, 0},
		{"zero-length data", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeIn, 0), 16), Len: 16}, {Addr: 0x100, Len: 0, Write: true}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}}
		}, true, 0},
		{"wrong direction: data before header", func(r *rig) []virtiotest.Desc {
			return []virtiotest.Desc{{Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}, {Addr: r.d.Buffer(header(TypeIn, 0), 16), Len: 16}}
		}, true, 0},
	}
	for _, tc := range tests {
		r := newRig(t, Options{})
		descs := tc.descs(r)
		r.d.AddChain(r.q, descs)
		r.d.Kick(r.q)
		nr := r.t.Status()&virtio.StatusDeviceNeedsReset != 0
		if nr != tc.needsReset {
			t.Errorf("%s: needs reset = %v (last error %v)", tc.name, nr, r.t.LastError())
		}
		if !tc.needsReset {
			used := r.d.TakeUsed(r.q)
			last := descs[len(descs)-1]
			if len(used) != 1 || r.d.Bytes(last.Addr, 1)[0] != tc.status {
				t.Errorf("%s: used %v status %d", tc.name, used, r.d.Bytes(last.Addr, 1)[0])
			}
		}
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t, Options{})
	blob, err := r.t.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.t.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	// A blob from a disk of a different size is refused.
	other, _ := NewRAMDisk(make([]byte, 8*SectorSize))
	dev, _ := New(other, Options{})
	if _, err := dev.PrepareRestoreDevice(r.dev.SaveDevice()); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("capacity mismatch: %v", err)
	}
	tr, _ := virtio.NewTransport("blk", dev, r.d.Mem)
	if err := tr.RestoreState(blob); err == nil {
		t.Error("transport restore accepted a blob for another disk")
	}
	// A request after restore is served.
	r.d.AddChain(r.q, []virtiotest.Desc{{Addr: r.d.Buffer(header(TypeFlush, 0), 16), Len: 16}, {Addr: r.d.Buffer(nil, 1), Len: 1, Write: true}})
	r.d.Kick(r.q)
	if len(r.d.TakeUsed(r.q)) != 1 {
		t.Error("no completion after restore")
	}
}

func TestRAMDiskBounds(t *testing.T) {
	if _, err := NewRAMDisk(make([]byte, 100)); err == nil {
		t.Error("partial-sector RAM disk accepted")
	}
	d, _ := NewRAMDisk(make([]byte, 512))
	for _, off := range []int64{-1, 1, 512, 1 << 62} {
		if _, err := d.ReadAt(make([]byte, 512), off); err == nil {
			t.Errorf("read at %d succeeded", off)
		}
		if _, err := d.WriteAt(make([]byte, 512), off); err == nil {
			t.Errorf("write at %d succeeded", off)
		}
	}
}

// FuzzRequest feeds arbitrary request headers, data lengths and config
// accesses. Invariants: no panic; every completed request has a status
// byte of OK, IOERR or UNSUPP; the disk never grows.
func FuzzRequest(f *testing.F) {
	f.Add(uint32(TypeIn), uint64(1), uint16(512), uint16(0), uint8(0))
	f.Add(uint32(TypeOut), uint64(63), uint16(0), uint16(512), uint8(3))
	f.Fuzz(func(t *testing.T, typ uint32, sector uint64, in, out uint16, cfg uint8) {
		r := newRig(t, Options{ID: "fuzz"})
		var c [8]byte
		r.d.ReadConfig(uint32(cfg)%32, c[:1+cfg%8])
		r.d.WriteConfig(uint32(cfg)%32, c[:1])
		descs := []virtiotest.Desc{{Addr: r.d.Buffer(header(typ, sector), 16), Len: 16}}
		if out > 0 {
			descs = append(descs, virtiotest.Desc{Addr: r.d.Buffer(nil, int(out)), Len: uint32(out)})
		}
		if in > 0 {
			descs = append(descs, virtiotest.Desc{Addr: r.d.Buffer(nil, int(in)), Len: uint32(in), Write: true})
		}
		st := r.d.Buffer([]byte{0xEE}, 1)
		descs = append(descs, virtiotest.Desc{Addr: st, Len: 1, Write: true})
		r.d.AddChain(r.q, descs)
		r.d.Kick(r.q)
		used := r.d.TakeUsed(r.q)
		if len(used) != 1 {
			t.Fatalf("used %v, status %#x, err %v", used, r.t.Status(), r.t.LastError())
		}
		if s := r.d.Bytes(st, 1)[0]; s > StatusUnsupp {
			t.Fatalf("status byte %d", s)
		}
		if len(r.disk) != 64*SectorSize {
			t.Fatal("disk changed size")
		}
	})
}
