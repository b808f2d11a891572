package pmem

import (
	"math/rand/v2"
	"testing"
)

// fakeMem backs physical memory [base, base+len(b)).
type fakeMem struct {
	base uint64
	b    []byte
}

func (m *fakeMem) Bytes(addr, n uint64) ([]byte, bool) {
	if addr < m.base || n > uint64(len(m.b)) || addr-m.base > uint64(len(m.b))-n {
		return nil, false
	}
	return m.b[addr-m.base : addr-m.base+n], true
}

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

func newMem() *fakeMem { return &fakeMem{base: MiB, b: make([]byte, 2*MiB)} }

func mustInit(t *testing.T, mem Memory, usable, reserved []Range) *Allocator {
	t.Helper()
	a := new(Allocator)
	if err := a.Init(mem, usable, reserved); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestInit(t *testing.T) {
	m := newMem()
	for i := range m.b {
		m.b[i] = 0xA5 // the bitmap must not trust memory contents
	}
	usable := []Range{{0, 0x9FC00}, {MiB, 16 * MiB}}
	reserved := []Range{{2 * MiB, 3 * MiB}, {5*MiB + 10, 5*MiB + 20}}
	a := mustInit(t, m, usable, reserved)
	// 15 MiB above 1 MiB = 3840 frames, minus 256 kernel frames, one frame touched by the small
	// reservation and the one-frame bitmap at 1 MiB.
	if got, want := a.TotalFrames(), uint64(3840-256-1-1); got != want {
		t.Errorf("TotalFrames = %d, want %d", got, want)
	}
	if a.FreeFrames() != a.TotalFrames() {
		t.Errorf("FreeFrames = %d, want %d", a.FreeFrames(), a.TotalFrames())
	}
	if got, want := a.Bitmap(), (Range{MiB, MiB + FrameSize}); got != want {
		t.Errorf("Bitmap = %#x, want %#x", got, want)
	}
	pa, err := a.Alloc(m)
	if err != nil || pa != MiB+FrameSize {
		t.Errorf("first Alloc = %#x, %v; want %#x", pa, err, MiB+FrameSize)
	}
	// A 2 MiB page: the kernel holds 2-3 MiB and the reserved frame sits in 4-6 MiB, so the
	// first aligned free run is at 6 MiB.
	pa, err = a.AllocContiguous(m, 512, 512)
	if err != nil || pa != 6*MiB {
		t.Errorf("AllocContiguous(512, 512) = %#x, %v; want %#x", pa, err, 6*MiB)
	}
	pa, err = a.AllocContiguous(m, 512, 512)
	if err != nil || pa != 8*MiB {
		t.Errorf("second AllocContiguous = %#x, %v; want %#x", pa, err, 8*MiB)
	}
	if err := a.FreeContiguous(m, 6*MiB, 512); err != nil {
		t.Fatal(err)
	}
	if pa, err = a.AllocContiguous(m, 512, 512); err != nil || pa != 6*MiB {
		t.Errorf("AllocContiguous after free = %#x, %v; want %#x", pa, err, 6*MiB)
	}
	// Unaligned runs fill the gap below the kernel first.
	if pa, err = a.AllocContiguous(m, 3, 1); err != nil || pa != MiB+2*FrameSize {
		t.Errorf("AllocContiguous(3, 1) = %#x, %v; want %#x", pa, err, MiB+2*FrameSize)
	}
}

func TestBitmapPlacement(t *testing.T) {
	// 64 GiB of usable memory needs a 4 MiB bitmap: it must skip the too-small first range and
	// the reserved kernel, and it must not be handed out afterwards.
	m := &fakeMem{base: 32 * MiB, b: make([]byte, 8*MiB)}
	usable := []Range{{MiB, 3 * MiB}, {16 * MiB, 64 * GiB}}
	reserved := []Range{{15 * MiB, 33 * MiB}}
	a := mustInit(t, m, usable, reserved)
	bm := a.Bitmap()
	if bm.Start != 33*MiB || bm.End-bm.Start != 4*MiB {
		t.Fatalf("Bitmap = %#x", bm)
	}
	want := uint64((3*MiB-MiB)/FrameSize + (64*GiB-33*MiB-4*MiB)/FrameSize)
	if a.TotalFrames() != want {
		t.Errorf("TotalFrames = %d, want %d", a.TotalFrames(), want)
	}
	for range 512 {
		pa, err := a.Alloc(m)
		if err != nil {
			t.Fatal(err)
		}
		if pa >= 3*MiB && pa < bm.End {
			t.Fatalf("Alloc returned %#x inside the reserved range or the bitmap", pa)
		}
	}
	if pa, _ := a.Alloc(m); pa != bm.End {
		t.Errorf("Alloc after low memory = %#x, want %#x", pa, bm.End)
	}
}

func TestInitErrors(t *testing.T) {
	m := newMem()
	tests := []struct {
		name             string
		usable, reserved []Range
		mem              Memory
		err              error
	}{
		{"nothing usable", nil, nil, m, ErrNoUsableMemory},
		{"only low memory", []Range{{0, 0x9FC00}}, nil, m, ErrNoUsableMemory},
		{"less than a frame", []Range{{MiB + 1, MiB + FrameSize + 1}}, nil, m, ErrNoUsableMemory},
		{"all reserved", []Range{{MiB, 2 * MiB}}, []Range{{0, 4 * MiB}}, m, ErrNoBitmapRoom},
		{"bitmap unreachable", []Range{{64 * MiB, 128 * MiB}}, nil, m, ErrBitmapAccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Allocator
			if err := a.Init(tt.mem, tt.usable, tt.reserved); err != tt.err {
				t.Errorf("Init = %v, want %v", err, tt.err)
			}
		})
	}
	var a Allocator
	if _, err := a.Alloc(m); err != ErrNotInitialised {
		t.Errorf("Alloc before Init = %v", err)
	}
	if err := a.Free(m, MiB); err != ErrNotInitialised {
		t.Errorf("Free before Init = %v", err)
	}
}

func TestFreeErrors(t *testing.T) {
	m := newMem()
	a := mustInit(t, m, []Range{{MiB, 4 * MiB}}, []Range{{2 * MiB, 2*MiB + FrameSize}})
	used, _ := a.Alloc(m)
	run, _ := a.AllocContiguous(m, 4, 1)
	tests := []struct {
		name string
		pa   uint64
		n    uint64
		err  error
	}{
		{"misaligned", used + 8, 1, ErrMisaligned},
		{"below management", 0x9000, 1, ErrNotManaged},
		{"far beyond", 64 * GiB, 1, ErrNotManaged},
		{"reserved frame", 2 * MiB, 1, ErrNotManaged},
		{"the bitmap", MiB, 1, ErrNotManaged},
		{"never allocated", 3 * MiB, 1, ErrDoubleFree},
		{"run overlapping a free frame", run, 5, ErrDoubleFree},
		{"zero frames", run, 0, ErrBadRequest},
		{"huge count", run, 1 << 60, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.FreeFrames()
			if err := a.FreeContiguous(m, tt.pa, tt.n); err != tt.err {
				t.Errorf("FreeContiguous(%#x, %d) = %v, want %v", tt.pa, tt.n, err, tt.err)
			}
			if a.FreeFrames() != before {
				t.Errorf("failed free changed FreeFrames from %d to %d", before, a.FreeFrames())
			}
		})
	}
	if err := a.Free(m, used); err != nil {
		t.Errorf("Free(%#x) = %v", used, err)
	}
	if err := a.Free(m, used); err != ErrDoubleFree {
		t.Errorf("second Free(%#x) = %v, want %v", used, err, ErrDoubleFree)
	}
	if err := a.Reserve(m, Range{run, run + 1}); err != ErrInUse {
		t.Errorf("Reserve of an allocated frame = %v, want %v", err, ErrInUse)
	}
	for _, c := range [][2]uint64{{0, 1}, {1, 0}, {1, 3}} {
		if _, err := a.AllocContiguous(m, c[0], c[1]); err != ErrBadRequest {
			t.Errorf("AllocContiguous(%d, %d) = %v, want %v", c[0], c[1], err, ErrBadRequest)
		}
	}
}

func TestExhaustion(t *testing.T) {
	m := newMem()
	a := mustInit(t, m, []Range{{MiB, MiB + 64*FrameSize}}, nil)
	n := a.FreeFrames()
	var last uint64
	for i := range n {
		pa, err := a.Alloc(m)
		if err != nil {
			t.Fatalf("Alloc %d of %d: %v", i, n, err)
		}
		last = pa
	}
	if _, err := a.Alloc(m); err != ErrOutOfMemory {
		t.Errorf("Alloc when empty = %v", err)
	}
	if _, err := a.AllocContiguous(m, 1, 1); err != ErrOutOfMemory {
		t.Errorf("AllocContiguous when empty = %v", err)
	}
	if err := a.Free(m, last); err != nil {
		t.Fatal(err)
	}
	if pa, err := a.Alloc(m); err != nil || pa != last {
		t.Errorf("Alloc after Free = %#x, %v; want %#x", pa, err, last)
	}
	if _, err := a.AllocContiguous(m, 1<<40, 1); err != ErrOutOfMemory {
		t.Errorf("AllocContiguous beyond memory = %v", err)
	}
}

// model is the reference allocator: one state per frame.
type model struct {
	first uint64
	state []byte // 0 unmanaged, 1 free, 2 used
}

func (md *model) alloc(n, align uint64) (uint64, bool) {
	for i := uint64(0); i+n <= uint64(len(md.state)); i++ {
		if (md.first+i)%align != 0 {
			continue
		}
		ok := true
		for k := i; k < i+n; k++ {
			if md.state[k] != 1 {
				ok = false
				break
			}
		}
		if ok {
			for k := i; k < i+n; k++ {
				md.state[k] = 2
			}
			return (md.first + i) * FrameSize, true
		}
	}
	return 0, false
}

func (md *model) free(pa, n uint64) error {
	if pa%FrameSize != 0 {
		return ErrMisaligned
	}
	f := pa / FrameSize
	for k := f; k < f+n; k++ {
		if k < md.first || k-md.first >= uint64(len(md.state)) || md.state[k-md.first] == 0 {
			return ErrNotManaged
		}
		if md.state[k-md.first] == 1 {
			return ErrDoubleFree
		}
	}
	for k := f; k < f+n; k++ {
		md.state[k-md.first] = 1
	}
	return nil
}

func (md *model) reserve(r Range) error {
	if r.End <= r.Start {
		return nil
	}
	for f := r.Start / FrameSize; f < (r.End+FrameSize-1)/FrameSize; f++ {
		if f >= md.first && f-md.first < uint64(len(md.state)) && md.state[f-md.first] == 2 {
			return ErrInUse
		}
	}
	for f := r.Start / FrameSize; f < (r.End+FrameSize-1)/FrameSize; f++ {
		if f >= md.first && f-md.first < uint64(len(md.state)) {
			md.state[f-md.first] = 0
		}
	}
	return nil
}

func (md *model) counts() (total, free uint64) {
	for _, s := range md.state {
		if s != 0 {
			total++
		}
		if s == 1 {
			free++
		}
	}
	return
}

// TestAgainstModel runs random operation sequences on random memory maps and checks every
// result, address and count against the reference model.
func TestAgainstModel(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		const span = 1024 // frames from 1 MiB
		m := &fakeMem{base: MiB, b: make([]byte, span*FrameSize)}
		addr := func() uint64 { return MiB + rng.Uint64N(span*FrameSize) }
		var usable, reserved []Range
		for range 1 + rng.IntN(5) {
			s := addr() - rng.Uint64N(64*KiB)
			usable = append(usable, Range{s, s + rng.Uint64N(span*FrameSize/2)})
		}
		for range rng.IntN(5) {
			s := addr()
			reserved = append(reserved, Range{s, s + rng.Uint64N(64*KiB)})
		}
		var a Allocator
		if err := a.Init(m, usable, reserved); err != nil {
			if err == ErrNoBitmapRoom || err == ErrNoUsableMemory {
				continue
			}
			t.Fatalf("seed %d: Init: %v", seed, err)
		}
		md := &model{first: a.first, state: make([]byte, a.words*wordBits)}
		bm := a.Bitmap()
		inBitmapUsable := false
		for i := range md.state {
			f := (md.first + uint64(i)) * FrameSize
			ok := f >= LowMemoryEnd
			inUsable := false
			for _, u := range usable {
				if u.Start <= f && f+FrameSize <= u.End {
					inUsable = true
				}
			}
			ok = ok && inUsable
			for _, r := range append(reserved, bm) {
				if r.Start < f+FrameSize && f < r.End {
					ok = false
				}
			}
			if f >= bm.Start && f < bm.End {
				if !inUsable {
					t.Fatalf("seed %d: bitmap %#x outside usable memory", seed, bm)
				}
				inBitmapUsable = true
			}
			if ok {
				md.state[i] = 1
			}
		}
		if !inBitmapUsable {
			t.Fatalf("seed %d: bitmap %#x empty or misplaced", seed, bm)
		}
		var live []uint64
		for op := range 3000 {
			switch rng.IntN(6) {
			case 0, 1:
				pa, err := a.Alloc(m)
				want, ok := md.alloc(1, 1)
				if (err == nil) != ok || pa != want {
					t.Fatalf("seed %d op %d: Alloc = %#x, %v; model %#x, %v", seed, op, pa, err, want, ok)
				}
				if ok {
					live = append(live, pa)
				}
			case 2:
				n, align := 1+rng.Uint64N(20), uint64(1)<<rng.IntN(5)
				pa, err := a.AllocContiguous(m, n, align)
				want, ok := md.alloc(n, align)
				if (err == nil) != ok || pa != want {
					t.Fatalf("seed %d op %d: AllocContiguous(%d, %d) = %#x, %v; model %#x, %v", seed, op, n, align, pa, err, want, ok)
				}
				if ok {
					for k := range n {
						live = append(live, pa+k*FrameSize)
					}
				}
			case 3, 4:
				var pa, n uint64 = addr() &^ (FrameSize - 1), 1 + rng.Uint64N(3)
				if len(live) > 0 && rng.IntN(4) != 0 {
					i := rng.IntN(len(live))
					pa, n = live[i], 1
					live = append(live[:i], live[i+1:]...)
				} else if rng.IntN(8) == 0 {
					pa |= 1 + rng.Uint64N(FrameSize-1)
				}
				err, want := a.FreeContiguous(m, pa, n), md.free(pa, n)
				if err != want {
					t.Fatalf("seed %d op %d: FreeContiguous(%#x, %d) = %v, model %v", seed, op, pa, n, err, want)
				}
			case 5:
				s := addr()
				r := Range{s, s + rng.Uint64N(3*FrameSize)}
				if err, want := a.Reserve(m, r), md.reserve(r); err != want {
					t.Fatalf("seed %d op %d: Reserve(%#x) = %v, model %v", seed, op, r, err, want)
				}
			}
			if total, free := md.counts(); a.TotalFrames() != total || a.FreeFrames() != free {
				t.Fatalf("seed %d op %d: counts %d/%d, model %d/%d", seed, op, a.FreeFrames(), a.TotalFrames(), free, total)
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	m := newMem()
	usable := []Range{{0, 0x9FC00}, {MiB, 3 * MiB}}
	reserved := []Range{{MiB + 64*KiB, MiB + 128*KiB}}
	a := new(Allocator)
	fr := &Frames{A: a, Mem: m}
	var fail int
	allocs := testing.AllocsPerRun(20, func() {
		if a.Init(m, usable, reserved) != nil {
			fail++
		}
		p1, err1 := a.Alloc(m)
		p2, err2 := a.AllocContiguous(m, 8, 8)
		p3, err3 := fr.AllocFrame()
		if err1 != nil || err2 != nil || err3 != nil {
			fail++
		}
		if a.Free(m, p1) != nil || a.FreeContiguous(m, p2, 8) != nil || fr.FreeFrame(p3) != nil {
			fail++
		}
		if a.Free(m, p1) == nil || a.Reserve(m, Range{2 * MiB, 2*MiB + 1}) != nil {
			fail++
		}
		_, _ = a.TotalFrames(), a.FreeFrames()
	})
	if fail != 0 {
		t.Fatalf("%d operations failed", fail)
	}
	if allocs != 0 {
		t.Errorf("allocator operations allocate %v times per run", allocs)
	}
}
