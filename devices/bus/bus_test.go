package bus

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a device that remembers accesses and answers reads with
// bytes derived from the offset, so tests can see which device and which
// offset served each byte.
type recorder struct {
	mu   sync.Mutex
	id   byte
	size uint64
	log  []access
}

type access struct {
	Write  bool
	Offset uint64
	Data   string
}

func (r *recorder) Read(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		data[i] = r.id<<4 | byte(off+uint64(i))&0xF
	}
	r.log = append(r.log, access{Offset: off, Data: string(data)})
}

func (r *recorder) Write(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, access{Write: true, Offset: off, Data: string(data)})
}

func TestRegisterOverlap(t *testing.T) {
	tests := []struct {
		name string
		base uint16
		size uint32
		want error
	}{
		{"below", 0x3F0, 8, nil},
		{"touching below", 0x3F0, 8, nil},
		{"touching above", 0x400, 0x10, nil},
		{"inside", 0x3FA, 2, ErrOverlap},
		{"covers", 0x3F0, 0x20, ErrOverlap},
		{"low edge", 0x3F7, 2, ErrOverlap},
		{"high edge", 0x3FF, 1, ErrOverlap},
		{"zero size", 0x500, 0, ErrRange},
		{"past end", 0xFFFF, 2, ErrRange},
		{"last port", 0xFFFF, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New()
			if err := b.RegisterPorts(0x3F8, 8, "com1", &recorder{}); err != nil {
				t.Fatal(err)
			}
			if tc.name == "touching below" {
				if err := b.RegisterPorts(0x400, 8, "x", &recorder{}); err != nil {
					t.Fatal(err)
				}
			}
			err := b.RegisterPorts(tc.base, tc.size, tc.name, &recorder{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("RegisterPorts(%#x, %d) = %v, want %v", tc.base, tc.size, err, tc.want)
			}
		})
	}
}

func TestRegisterMMIOLimits(t *testing.T) {
	b := New()
	if err := b.RegisterMMIO(^uint64(0)-0xFFF, 0x1000, "top", &recorder{}); err != nil {
		t.Fatalf("top page: %v", err)
	}
	if err := b.RegisterMMIO(^uint64(0)-0xFFF, 0x1001, "wrap", &recorder{}); !errors.Is(err, ErrRange) {
		t.Fatalf("wrapping range: %v", err)
	}
	if err := b.RegisterMMIO(0xFEE00000, 0x1000, "lapic", nil); !errors.Is(err, ErrRange) {
		t.Fatalf("nil device: %v", err)
	}
	if err := b.UnregisterMMIO(0x1234); !errors.Is(err, ErrNoRange) {
		t.Fatalf("unregister nothing: %v", err)
	}
	if err := b.UnregisterMMIO(^uint64(0) - 0xFFF); err != nil {
		t.Fatal(err)
	}
	if got := b.MMIORanges(); len(got) != 0 {
		t.Fatalf("ranges after unregister: %v", got)
	}
}

func TestDispatch(t *testing.T) {
	a := &recorder{id: 0xA, size: 8}
	c := &recorder{id: 0xC, size: 4}
	b := New()
	must(t, b.RegisterPorts(0x3F8, 8, "a", a))
	must(t, b.RegisterPorts(0x400, 4, "c", c))

	tests := []struct {
		name      string
		port      uint16
		size      int
		want      []byte
		wantA     []access
		wantC     []access
		unhandled uint64
	}{
		{"inside", 0x3F9, 2, []byte{0xA1, 0xA2}, []access{{Offset: 1, Data: "\xA1\xA2"}}, nil, 0},
		{"dword at base", 0x3F8, 4, []byte{0xA0, 0xA1, 0xA2, 0xA3}, []access{{Offset: 0, Data: "\xA0\xA1\xA2\xA3"}}, nil, 0},
		{"no device", 0x80, 1, []byte{0xFF}, nil, nil, 1},
		{"straddles two devices", 0x3FE, 4, []byte{0xA6, 0xA7, 0xC0, 0xC1}, []access{{Offset: 6, Data: "\xA6\xA7"}}, []access{{Offset: 0, Data: "\xC0\xC1"}}, 0},
		{"hole then device", 0x3F6, 4, []byte{0xFF, 0xFF, 0xA0, 0xA1}, []access{{Offset: 0, Data: "\xA0\xA1"}}, nil, 1},
		{"past end of space", 0xFFFF, 2, []byte{0xFF, 0xFF}, nil, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.log, c.log = nil, nil
			before := b.Stats().UnhandledPortReads
			got := make([]byte, tc.size)
			must(t, b.ReadPort(tc.port, got))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantA, a.log); diff != "" {
				t.Errorf("device a (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantC, c.log); diff != "" {
				t.Errorf("device c (-want +got):\n%s", diff)
			}
			if n := b.Stats().UnhandledPortReads - before; n != tc.unhandled {
				t.Errorf("unhandled reads +%d, want +%d", n, tc.unhandled)
			}
		})
	}
}

func TestWriteSplitAndDrop(t *testing.T) {
	a := &recorder{id: 0xA}
	b := New()
	must(t, b.RegisterMMIO(0x1000, 0x10, "a", a))
	must(t, b.WriteMMIO(0x100C, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	must(t, b.WriteMMIO(0x2000, []byte{9}))
	want := []access{{Write: true, Offset: 0xC, Data: "\x01\x02\x03\x04"}}
	if diff := cmp.Diff(want, a.log); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{UnhandledMMIOWrites: 2}, b.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestSizes(t *testing.T) {
	b := New()
	for _, n := range []int{0, 3, 8, 16} {
		if err := b.ReadPort(0, make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Errorf("ReadPort %d bytes: %v", n, err)
		}
		if err := b.WritePort(0, make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Errorf("WritePort %d bytes: %v", n, err)
		}
	}
	for _, n := range []int{0, 3, 5, 16} {
		if err := b.ReadMMIO(0, make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Errorf("ReadMMIO %d bytes: %v", n, err)
		}
		if err := b.WriteMMIO(0, make([]byte, n)); !errors.Is(err, ErrSize) {
			t.Errorf("WriteMMIO %d bytes: %v", n, err)
		}
	}
	if err := b.ReadMMIO(^uint64(0)-3, make([]byte, 8)); err != nil {
		t.Errorf("read at top of space: %v", err)
	}
}

// TestConcurrent is meant for -race: dispatch while registering.
func TestConcurrent(t *testing.T) {
	b := New()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &recorder{id: byte(g)}
			for i := range 100 {
				base := uint16(0x1000*g + 0x10*i)
				_ = b.RegisterPorts(base, 0x10, "d", d)
				var buf [4]byte
				_ = b.ReadPort(base+0xE, buf[:])
				_ = b.WritePort(base, buf[:2])
			}
		}()
	}
	wg.Wait()
	if n := len(b.PortRanges()); n != 400 {
		t.Fatalf("%d ranges, want 400", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// boundsDevice fails the test when the bus hands it an access outside its
// range.
type boundsDevice struct {
	t    *testing.T
	size uint64
}

func (d *boundsDevice) check(off uint64, data []byte) {
	if len(data) == 0 || off >= d.size || uint64(len(data)) > d.size-off {
		d.t.Fatalf("access off=%#x len=%d outside size %#x", off, len(data), d.size)
	}
}
func (d *boundsDevice) Read(off uint64, data []byte)  { d.check(off, data) }
func (d *boundsDevice) Write(off uint64, data []byte) { d.check(off, data) }

// FuzzBus registers random ranges and performs random accesses; a device
// must only ever see accesses inside its own range.
func FuzzBus(f *testing.F) {
	f.Add([]byte{0x10, 0, 8, 0x12, 0, 4, 0xFF, 0xFF, 1})
	f.Fuzz(func(t *testing.T, prog []byte) {
		b := New()
		for len(prog) >= 3 {
			op, x, y := prog[0], uint64(prog[1]), uint64(prog[2])
			prog = prog[3:]
			addr := x<<8 | y
			switch op % 4 {
			case 0:
				size := uint64(op>>2) + 1
				_ = b.RegisterPorts(uint16(addr), uint32(size), "d", &boundsDevice{t: t, size: size})
				_ = b.RegisterMMIO(addr<<48|addr, size, "d", &boundsDevice{t: t, size: size})
			case 1:
				buf := make([]byte, []int{1, 2, 4, 8}[op>>2&3])
				_ = b.ReadPort(uint16(addr), buf)
				_ = b.ReadMMIO(addr<<48|addr, buf)
			case 2:
				buf := make([]byte, []int{1, 2, 4, 8}[op>>2&3])
				_ = b.WritePort(uint16(addr), buf)
				_ = b.WriteMMIO(addr<<48|addr, buf)
			case 3:
				_ = b.UnregisterPorts(uint16(addr))
			}
		}
		rs := b.PortRanges()
		for i := 1; i < len(rs); i++ {
			if rs[i-1].Base+rs[i-1].Size > rs[i].Base {
				t.Fatalf("overlapping ranges %v", rs)
			}
		}
	})
}
