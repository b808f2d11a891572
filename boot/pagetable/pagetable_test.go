package pagetable

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// fakeMem is physical memory [0, len(b)); tables come from frames inside it.
type fakeMem struct{ b []byte }

func (m *fakeMem) Bytes(addr, n uint64) ([]byte, bool) {
	if n > uint64(len(m.b)) || addr > uint64(len(m.b))-n {
		return nil, false
	}
	return m.b[addr : addr+n], true
}

// fakeFrames hands out frames from [base, base+n*4K), reusing freed ones, dirtying them so that
// a missing clear shows, and failing once limit frames are out.
type fakeFrames struct {
	mem     *fakeMem
	base    uint64
	n       uint64
	next    uint64
	freed   []uint64
	out     map[uint64]bool
	limit   int
	noFrame uint64 // if non-zero, AllocFrame returns this unreachable address
}

func newFrames(m *fakeMem, base, n uint64) *fakeFrames {
	return &fakeFrames{mem: m, base: base, n: n, out: map[uint64]bool{}, limit: 1 << 30}
}

func (f *fakeFrames) AllocFrame() (uint64, error) {
	if f.noFrame != 0 {
		return f.noFrame, nil
	}
	if len(f.out) >= f.limit {
		return 0, fmt.Errorf("fake: limit of %d frames", f.limit)
	}
	var pa uint64
	if k := len(f.freed); k > 0 {
		pa, f.freed = f.freed[k-1], f.freed[:k-1]
	} else {
		if f.next == f.n {
			return 0, fmt.Errorf("fake: out of frames")
		}
		pa = f.base + f.next*Size4K
		f.next++
	}
	for i := range uint64(Size4K) {
		f.mem.b[pa+i] = 0xFF
	}
	f.out[pa] = true
	return pa, nil
}

func (f *fakeFrames) FreeFrame(pa uint64) error {
	if !f.out[pa] {
		return fmt.Errorf("fake: free of %#x, not allocated", pa)
	}
	delete(f.out, pa)
	f.freed = append(f.freed, pa)
	return nil
}

// refWalk is an independent walker: it follows SDM vol. 3A §4.5 bit by bit.
func refWalk(m *fakeMem, cr3, va uint64) (pa uint64, flags Flags, size uint64, ok bool) {
	table := cr3 &^ 0xFFF
	shifts := []uint{39, 30, 21, 12}
	for lvl, sh := range shifts {
		e := binary.LittleEndian.Uint64(m.b[table+((va>>sh)&0x1FF)*8:])
		if e&1 == 0 {
			return 0, 0, 0, false
		}
		leaf := lvl == 3 || (lvl >= 1 && e&(1<<7) != 0)
		if lvl == 0 && e&(1<<7) != 0 {
			panic("PS set in a PML4E")
		}
		if leaf {
			size = uint64(1) << sh
			frame := e & 0x000F_FFFF_FFFF_F000 &^ (size - 1)
			return frame + va&(size-1), Flags(e) & (leafFlags), size, true
		}
		table = e & 0x000F_FFFF_FFFF_F000
	}
	panic("unreachable")
}

type setup struct {
	mem    *fakeMem
	frames *fakeFrames
	t      Table
}

func newSetup(t *testing.T, sizes Sizes) *setup {
	t.Helper()
	m := &fakeMem{b: make([]byte, 8*MiB)}
	fr := newFrames(m, 0, 2048)
	tb, err := New(m, fr, sizes)
	if err != nil {
		t.Fatal(err)
	}
	return &setup{m, fr, tb}
}

func TestMapLookup(t *testing.T) {
	const rw = Present | Writable
	tests := []struct {
		name      string
		sizes     Sizes
		va, pa, n uint64
		flags     Flags
		wantSize  uint64
		wantPages int
	}{
		{"one 4K page", Allow2M | Allow1G, 0x40_0000_0000, 0x1234_5000, Size4K, rw, Size4K, 1},
		{"2M aligned uses 2M", Allow2M, 0x20_0000, 0x4000_0000, 4 * MiB, rw | NoExecute, Size2M, 2},
		{"2M without permission uses 4K", 0, 0x20_0000, 0x4000_0000, 2 * MiB, rw, Size4K, 512},
		{"1G aligned uses 1G", Allow2M | Allow1G, 0x80_0000_0000, 3 * GiB, 2 * GiB, rw | Global, Size1G, 2},
		{"1G only if allowed", Allow2M, 0x80_0000_0000, 3 * GiB, GiB, rw, Size2M, 512},
		{"pa misaligned for 2M", Allow2M, 0x20_0000, 0x4000_1000, 2 * MiB, rw, Size4K, 512},
		{"upper half", Allow2M | Allow1G, 0xFFFF_FFFF_8000_0000, 0x20_0000, 2 * MiB, rw | Global, Size2M, 1},
		{"top page", Allow2M, 0xFFFF_FFFF_FFFF_F000, 0x5000, Size4K, Present | User, Size4K, 1},
		{"all flags", 0, 0x1000, 0x2000, Size4K, leafFlags, Size4K, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.sizes)
			if err := s.t.Map(tt.va, tt.pa, tt.n, tt.flags); err != nil {
				t.Fatal(err)
			}
			pages := 0
			for off := uint64(0); off < tt.n; off += Size4K {
				va := tt.va + off
				pa, f, size, ok := s.t.Lookup(va + 0x10)
				rpa, rf, rsize, rok := refWalk(s.mem, s.t.Root, va+0x10)
				if !ok || pa != tt.pa+off+0x10 || f != tt.flags || size != tt.wantSize {
					t.Fatalf("Lookup(%#x) = %#x, %#x, %#x, %v; want %#x, %#x, %#x", va, pa, f, size, ok, tt.pa+off+0x10, tt.flags, tt.wantSize)
				}
				if rpa != pa || rf != f || rsize != size || !rok {
					t.Fatalf("reference walk of %#x = %#x, %#x, %#x, %v; Lookup %#x, %#x, %#x", va, rpa, rf, rsize, rok, pa, f, size)
				}
				if (va-tt.va)%size == 0 {
					pages++
				}
			}
			if pages != tt.wantPages {
				t.Errorf("mapped with %d pages, want %d", pages, tt.wantPages)
			}
			// Neighbours stay unmapped.
			for _, va := range []uint64{tt.va - Size4K, tt.va + tt.n} {
				if !canonical(va) {
					continue
				}
				if _, _, _, ok := s.t.Lookup(va); ok {
					t.Errorf("neighbour %#x is mapped", va)
				}
			}
			// Unmapping everything frees every table but the root.
			if _, err := s.t.Unmap(tt.va, tt.n); err != nil {
				t.Fatal(err)
			}
			if len(s.frames.out) != 1 || !s.frames.out[s.t.Root] {
				t.Errorf("after Unmap %d table frames remain, want only the root", len(s.frames.out))
			}
			if _, _, _, ok := refWalk(s.mem, s.t.Root, tt.va); ok {
				t.Errorf("%#x still mapped after Unmap", tt.va)
			}
		})
	}
}

func TestSplitAndMerge(t *testing.T) {
	s := newSetup(t, Allow2M|Allow1G)
	const rw = Present | Writable
	if err := s.t.Map(GiB, 4*GiB, GiB, rw); err != nil {
		t.Fatal(err)
	}
	if n := len(s.frames.out); n != 2 { // PML4 and one PDPT
		t.Fatalf("1 GiB page used %d tables, want 2", n)
	}
	// Remap one 4K page in the middle: the 1G page splits into 2M pages, one of them into 4K.
	if err := s.t.Map(GiB+3*MiB, 0x7000, Size4K, rw|NoExecute); err != nil {
		t.Fatal(err)
	}
	check := func(va, wantPA uint64, wantF Flags, wantSize uint64) {
		t.Helper()
		pa, f, size, ok := refWalk(s.mem, s.t.Root, va)
		if !ok || pa != wantPA || f != wantF || size != wantSize {
			t.Errorf("walk(%#x) = %#x, %#x, %#x, %v; want %#x, %#x, %#x", va, pa, f, size, ok, wantPA, wantF, wantSize)
		}
	}
	check(GiB, 4*GiB, rw, Size2M)
	check(GiB+2*MiB, 4*GiB+2*MiB, rw, Size4K)
	check(GiB+3*MiB, 0x7000, rw|NoExecute, Size4K)
	check(GiB+3*MiB+Size4K, 4*GiB+3*MiB+Size4K, rw, Size4K)
	check(2*GiB-Size4K, 5*GiB-Size4K, rw, Size2M)
	// Protect a 2M-straddling range read-only.
	if err := s.t.Protect(GiB+MiB, 2*MiB, Present); err != nil {
		t.Fatal(err)
	}
	check(GiB, 4*GiB, rw, Size4K)
	check(GiB+MiB, 4*GiB+MiB, Present, Size4K)
	check(GiB+3*MiB, 0x7000, rw|NoExecute, Size4K)
	check(GiB+3*MiB-Size4K, 4*GiB+3*MiB-Size4K, Present, Size4K)
	check(GiB+3*MiB+Size4K, 4*GiB+3*MiB+Size4K, rw, Size4K)
	// Mapping a whole 1G again replaces the subtree with one leaf and frees its tables.
	if err := s.t.Map(GiB, 4*GiB, GiB, rw); err != nil {
		t.Fatal(err)
	}
	check(GiB+3*MiB, 4*GiB+3*MiB, rw, Size1G)
	if n := len(s.frames.out); n != 2 {
		t.Errorf("after remapping the 1 GiB page %d tables are in use, want 2", n)
	}
	// Unmapping a 4K hole splits again; the rest stays.
	freed, err := s.t.Unmap(GiB+5*MiB, Size4K)
	if err != nil || freed != 0 {
		t.Fatalf("Unmap = %d, %v", freed, err)
	}
	if _, _, _, ok := refWalk(s.mem, s.t.Root, GiB+5*MiB); ok {
		t.Error("hole still mapped")
	}
	check(GiB+5*MiB+Size4K, 4*GiB+5*MiB+Size4K, rw, Size4K)
	check(GiB+6*MiB, 4*GiB+6*MiB, rw, Size2M)
	// Unmap the whole gigabyte: PD, PT and PDPT go back.
	freed, err = s.t.Unmap(GiB, GiB)
	if err != nil || freed != 3 || len(s.frames.out) != 1 {
		t.Errorf("Unmap(1G) = %d, %v; %d frames in use", freed, err, len(s.frames.out))
	}
}

func TestErrors(t *testing.T) {
	s := newSetup(t, Allow2M)
	tests := []struct {
		name      string
		va, pa, n uint64
		flags     Flags
		err       error
	}{
		{"misaligned va", 0x1001, 0, Size4K, Present, ErrMisaligned},
		{"misaligned pa", 0x1000, 0x10, Size4K, Present, ErrMisaligned},
		{"misaligned size", 0x1000, 0, 100, Present, ErrMisaligned},
		{"zero size", 0x1000, 0, 0, Present, ErrBadSize},
		{"wraps", 0xFFFF_FFFF_FFFF_F000, 0, 2 * Size4K, Present, ErrBadSize},
		{"non-canonical", 0x8000_0000_0000, 0, Size4K, Present, ErrNonCanonical},
		{"runs into the hole", 0x7FFF_FFFF_F000, 0, 2 * Size4K, Present, ErrNonCanonical},
		{"pa beyond 52 bits", 0x1000, 1 << 52, Size4K, Present, ErrBadPhys},
		{"not present", 0x1000, 0, Size4K, Writable, ErrBadFlags},
		{"PageSize given", 0x1000, 0, Size4K, Present | PageSize, ErrBadFlags},
		{"reserved bit", 0x1000, 0, Size4K, Present | 1<<52, ErrBadFlags},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.t.Map(tt.va, tt.pa, tt.n, tt.flags); err != tt.err {
				t.Errorf("Map = %v, want %v", err, tt.err)
			}
		})
	}
	if _, err := s.t.Unmap(0x8000_0000_0000, Size4K); err != ErrNonCanonical {
		t.Errorf("Unmap(non-canonical) = %v", err)
	}
	if err := s.t.Map(0x10000, 0x10000, 2*Size4K, Present); err != nil {
		t.Fatal(err)
	}
	if err := s.t.Protect(0x10000, 3*Size4K, Present|Writable); err != ErrNotMapped {
		t.Errorf("Protect over a hole = %v, want %v", err, ErrNotMapped)
	}
	if _, f, _, _ := s.t.Lookup(0x10000); f != Present {
		t.Errorf("failed Protect changed flags to %#x", f)
	}
	if err := s.t.Protect(0x10000, Size4K, Writable); err != ErrBadFlags {
		t.Errorf("Protect without Present = %v", err)
	}
	if _, _, _, ok := s.t.Lookup(0x8000_0000_0000); ok {
		t.Error("Lookup of a non-canonical address succeeded")
	}
	// Out of frames: the error comes back, nothing panics, and Unmap cleans up.
	s.frames.limit = len(s.frames.out) + 1
	if err := s.t.Map(0x100_0000_0000, 0, 3*Size4K, Present); err == nil {
		t.Error("Map without frames for tables succeeded")
	}
	s.frames.limit = 1 << 30
	if _, err := s.t.Unmap(0x100_0000_0000, 3*Size4K); err != nil {
		t.Fatal(err)
	}
	// A frame outside memory is reported, not dereferenced.
	s.frames.noFrame = 1 << 40
	if err := s.t.Map(0x200_0000_0000, 0, Size4K, Present); err != ErrMemory {
		t.Errorf("Map with an unreachable table frame = %v, want %v", err, ErrMemory)
	}
	if _, err := New(s.mem, s.frames, 0); err != ErrMemory {
		t.Errorf("New with an unreachable frame = %v", err)
	}
}

// TestAgainstModel applies random maps, unmaps and protects to a small window of the address
// space and compares every page with a model, through both Lookup and the reference walker.
func TestAgainstModel(t *testing.T) {
	type page struct {
		pa    uint64
		flags Flags
	}
	flagChoices := []Flags{Present, Present | Writable, Present | Writable | NoExecute, Present | User | Global}
	for seed := range uint64(25) {
		rng := rand.New(rand.NewPCG(seed, 3))
		m := &fakeMem{b: make([]byte, 32*MiB)}
		fr := newFrames(m, 0, 8192)
		tbl, err := New(m, fr, Allow2M|Allow1G)
		if err != nil {
			t.Fatal(err)
		}
		// The window spans two 1 GiB regions either side of a 512 GiB boundary, in pages.
		base := uint64(512*GiB - GiB)
		const pages = 2 * GiB / Size4K
		model := make([]page, pages) // flags 0: not mapped
		// Random ranges are mostly 2M- and 1G-friendly so that large pages and splits happen.
		rnd := func() (uint64, uint64) {
			var unit uint64 = Size4K
			switch rng.IntN(3) {
			case 0:
				unit = Size2M
			case 1:
				if rng.IntN(4) == 0 {
					unit = Size1G
				}
			}
			units := uint64(pages * Size4K / unit)
			s := rng.Uint64N(units)
			n := 1 + rng.Uint64N(min(units-s, 3))
			return s * unit, n * unit
		}
		for op := range 60 {
			off, n := rnd()
			va := base + off
			switch rng.IntN(3) {
			case 0:
				pa := rng.Uint64N(1<<20) * Size2M
				if rng.IntN(3) == 0 {
					pa += rng.Uint64N(512) * Size4K
				}
				f := flagChoices[rng.IntN(len(flagChoices))]
				if err := tbl.Map(va, pa, n, f); err != nil {
					t.Fatalf("seed %d op %d: Map: %v", seed, op, err)
				}
				for k := uint64(0); k < n; k += Size4K {
					model[(off+k)/Size4K] = page{pa + k, f}
				}
			case 1:
				if _, err := tbl.Unmap(va, n); err != nil {
					t.Fatalf("seed %d op %d: Unmap: %v", seed, op, err)
				}
				for k := uint64(0); k < n; k += Size4K {
					model[(off+k)/Size4K] = page{}
				}
			case 2:
				f := flagChoices[rng.IntN(len(flagChoices))]
				all := true
				for k := uint64(0); k < n; k += Size4K {
					if model[(off+k)/Size4K].flags == 0 {
						all = false
						break
					}
				}
				err := tbl.Protect(va, n, f)
				if all != (err == nil) {
					t.Fatalf("seed %d op %d: Protect = %v, model mapped=%v", seed, op, err, all)
				}
				if all {
					for k := uint64(0); k < n; k += Size4K {
						model[(off+k)/Size4K].flags = f
					}
				}
			}
			// Check a sample of pages plus every model page in a random 2 MiB window.
			for range 200 {
				pg := rng.Uint64N(pages)
				va := base + pg*Size4K
				want := model[pg]
				inModel := want.flags != 0
				pa, f, _, ok := tbl.Lookup(va)
				rpa, rf, _, rok := refWalk(m, tbl.Root, va)
				if ok != inModel || rok != inModel || (ok && (pa != want.pa || f != want.flags || rpa != pa || rf != f)) {
					t.Fatalf("seed %d op %d: %#x: Lookup %#x %#x %v, ref %#x %#x %v, model %+v %v", seed, op, va, pa, f, ok, rpa, rf, rok, want, inModel)
				}
			}
		}
		if _, err := tbl.Unmap(base, pages*Size4K); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[uint64]bool{tbl.Root: true}, fr.out); d != "" {
			t.Errorf("seed %d: tables left after unmapping everything (-want +got):\n%s", seed, d)
		}
	}
}

// countingFrames is an allocation-free frame source for the allocation test.
type countingFrames struct {
	next, base uint64
	free       [64]uint64
	nfree      int
}

func (c *countingFrames) AllocFrame() (uint64, error) {
	if c.nfree > 0 {
		c.nfree--
		return c.free[c.nfree], nil
	}
	pa := c.base + c.next*Size4K
	c.next++
	return pa, nil
}

func (c *countingFrames) FreeFrame(pa uint64) error {
	if c.nfree < len(c.free) {
		c.free[c.nfree] = pa
		c.nfree++
	}
	return nil
}

func TestNoAllocs(t *testing.T) {
	m := &fakeMem{b: make([]byte, 4*MiB)}
	fr := &countingFrames{}
	tbl, err := New(m, fr, Allow2M|Allow1G)
	if err != nil {
		t.Fatal(err)
	}
	fail := 0
	allocs := testing.AllocsPerRun(20, func() {
		if tbl.Map(GiB, 0, GiB, Present|Writable) != nil ||
			tbl.Map(GiB+Size2M, 0x3000, 3*Size4K, Present) != nil ||
			tbl.Protect(GiB, 4*Size2M, Present|NoExecute) != nil {
			fail++
		}
		if _, _, _, ok := tbl.Lookup(GiB + Size2M); !ok {
			fail++
		}
		if _, err := tbl.Unmap(GiB, GiB); err != nil {
			fail++
		}
		if tbl.Map(1, 0, 0, 0) == nil {
			fail++
		}
	})
	if fail != 0 {
		t.Fatalf("%d operations failed", fail)
	}
	if allocs != 0 {
		t.Errorf("page-table operations allocate %v times per run", allocs)
	}
}
