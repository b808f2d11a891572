package vaspace

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

func mustInit(t *testing.T, c Config) *Space {
	t.Helper()
	s := new(Space)
	if err := s.Init(c); err != nil {
		t.Fatal(err)
	}
	return s
}

// kernelLayout forbids the null page, an identity map of 64 GiB and an upper bound.
var kernelLayout = Config{Forbidden: []Range{{0, PageSize}, {0, 64 * GiB}}}

func TestReserveAndMap(t *testing.T) {
	s := mustInit(t, kernelLayout)
	var ch [8]Change
	// Like the Go runtime: a PROT_NONE arena reservation at a hint, then RW maps inside it.
	addr, n, err := s.Reserve(0xc000000000, 64*MiB, false, ch[:])
	if err != nil || addr != 0xc000000000 {
		t.Fatalf("Reserve at hint = %#x, %v", addr, err)
	}
	if d := cmp.Diff([]Change{{0xc000000000, 0xc004000000, Free, Reserved}}, ch[:n]); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	n, err = s.SetState(0xc000000000+4*MiB, 4*MiB, Mapped, ch[:])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Change{{0xc000400000, 0xc000800000, Reserved, Mapped}}, ch[:n]); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	// Mapping an overlapping range reports only the part that changed.
	n, err = s.SetState(0xc000000000+2*MiB, 4*MiB, Mapped, ch[:])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Change{{0xc000200000, 0xc000400000, Reserved, Mapped}}, ch[:n]); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	want := []Region{
		{0xc000000000, 0xc000200000, Reserved},
		{0xc000200000, 0xc000800000, Mapped},
		{0xc000800000, 0xc004000000, Reserved},
	}
	if d := cmp.Diff(want, s.Regions()); d != "" {
		t.Errorf("regions (-want +got):\n%s", d)
	}
	if r, ok := s.Lookup(0xc000300000); !ok || r != want[1] {
		t.Errorf("Lookup = %+v, %v", r, ok)
	}
	if _, ok := s.Lookup(0xc004000000); ok {
		t.Error("Lookup beyond the end found a region")
	}
	// A taken hint falls back to the lowest free range at the floor.
	addr, _, err = s.Reserve(0xc000000000, MiB, false, ch[:])
	if err != nil || addr != DefaultFloor {
		t.Errorf("Reserve at a taken hint = %#x, %v; want %#x", addr, err, DefaultFloor)
	}
	addr, _, err = s.Reserve(0, 3*KiB, false, ch[:])
	if err != nil || addr != DefaultFloor+MiB {
		t.Errorf("Reserve without hint = %#x, %v; want %#x", addr, err, DefaultFloor+MiB)
	}
	// MAP_FIXED over the middle of everything: mapped and reserved parts become Reserved.
	_, n, err = s.Reserve(0xc000100000, 2*MiB, true, ch[:])
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Change{{0xc000200000, 0xc000300000, Mapped, Reserved}}, ch[:n]); d != "" {
		t.Errorf("fixed changes (-want +got):\n%s", d)
	}
	// munmap of a range spanning mapped, reserved and free parts.
	n, err = s.Release(0xc000700000, 0xc004100000-0xc000700000, ch[:])
	if err != nil {
		t.Fatal(err)
	}
	wantCh := []Change{
		{0xc000700000, 0xc000800000, Mapped, Free},
		{0xc000800000, 0xc004000000, Reserved, Free},
	}
	if d := cmp.Diff(wantCh, ch[:n]); d != "" {
		t.Errorf("release changes (-want +got):\n%s", d)
	}
	want = []Region{
		{DefaultFloor, DefaultFloor + MiB + PageSize, Reserved},
		{0xc000000000, 0xc000300000, Reserved},
		{0xc000300000, 0xc000700000, Mapped},
	}
	if d := cmp.Diff(want, s.Regions()); d != "" {
		t.Errorf("regions (-want +got):\n%s", d)
	}
}

func TestErrors(t *testing.T) {
	s := mustInit(t, Config{Floor: 16 * MiB, Limit: 64 * MiB, Forbidden: []Range{{0, PageSize}, {32 * MiB, 33 * MiB}}})
	var ch [4]Change
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"misaligned fixed", func() error { _, _, err := s.Reserve(0x1001, PageSize, true, ch[:]); return err }, ErrBadRange},
		{"zero size", func() error { _, _, err := s.Reserve(0, 0, false, ch[:]); return err }, ErrBadRange},
		{"huge size", func() error { _, _, err := s.Reserve(0, 1<<63, false, ch[:]); return err }, ErrBadRange},
		{"beyond limit", func() error { _, _, err := s.Reserve(64*MiB, PageSize, true, ch[:]); return err }, ErrBadRange},
		{"wraps", func() error { _, _, err := s.Reserve(48*MiB, ^uint64(0)-PageSize, true, ch[:]); return err }, ErrBadRange},
		{"null page", func() error { _, _, err := s.Reserve(0, PageSize, true, ch[:]); return err }, ErrForbidden},
		{"forbidden middle", func() error { _, _, err := s.Reserve(31*MiB, 4*MiB, true, ch[:]); return err }, ErrForbidden},
		{"no space", func() error { _, _, err := s.Reserve(0, 40*MiB, false, ch[:]); return err }, ErrNoSpace},
		{"set state of free", func() error { _, err := s.SetState(20*MiB, PageSize, Mapped, ch[:]); return err }, ErrNotReserved},
		{"set state Free", func() error { _, err := s.SetState(20*MiB, PageSize, Free, ch[:]); return err }, ErrBadState},
		{"release forbidden", func() error { _, err := s.Release(32*MiB, PageSize, ch[:]); return err }, ErrForbidden},
		{"no room for changes", func() error { _, _, err := s.Reserve(16*MiB, PageSize, true, nil); return err }, ErrTooManyChanges},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); err != tt.want {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if s.n != 0 {
				t.Errorf("failed operation left regions %+v", s.Regions())
			}
		})
	}
	// A search skips the forbidden range.
	a, _, err := s.Reserve(0, 16*MiB, false, ch[:])
	if err != nil || a != 16*MiB {
		t.Fatalf("Reserve = %#x, %v", a, err)
	}
	a, _, err = s.Reserve(0, 8*MiB, false, ch[:])
	if err != nil || a != 33*MiB {
		t.Errorf("Reserve past the forbidden range = %#x, %v; want %#x", a, err, 33*MiB)
	}
	for _, c := range []Config{
		{Floor: 1}, {Limit: LowerHalfEnd + PageSize}, {Floor: 2 * PageSize, Limit: PageSize},
		{Forbidden: []Range{{5, 5}}}, {Forbidden: make([]Range, MaxForbidden+1)},
	} {
		var sp Space
		if err := sp.Init(c); err != ErrBadConfig {
			t.Errorf("Init(%+v) = %v, want %v", c, err, ErrBadConfig)
		}
	}
}

func TestRegionCapacity(t *testing.T) {
	s := mustInit(t, Config{Floor: PageSize})
	var ch [4]Change
	// Alternate states page by page until the list is full.
	for i := range uint64(MaxRegions) {
		if _, _, err := s.Reserve(PageSize*(1+i), PageSize, true, ch[:]); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := s.SetState(PageSize*(1+i), PageSize, Mapped, ch[:]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.n != MaxRegions {
		t.Fatalf("%d regions, want %d", s.n, MaxRegions)
	}
	// A new region does not fit: refused, nothing changed.
	before := s.regions
	if _, _, err := s.Reserve(1<<40, PageSize, true, ch[:]); err != ErrTooManyRegions {
		t.Errorf("Reserve into a full list = %v, want %v", err, ErrTooManyRegions)
	}
	if _, _, err := s.Reserve(1<<40, PageSize, false, ch[:]); err != ErrTooManyRegions {
		t.Errorf("hinted Reserve into a full list = %v, want %v", err, ErrTooManyRegions)
	}
	// Splitting a region needs more entries too.
	if _, err := s.SetState(2*PageSize, PageSize, Reserved, ch[:]); err != nil {
		// Page 2 is Mapped between two Reserved pages: making it Reserved merges three into one.
		t.Fatalf("merging change refused: %v", err)
	}
	if s.n != MaxRegions-2 {
		t.Errorf("after merging %d regions, want %d", s.n, MaxRegions-2)
	}
	if before[0] == s.regions[0] {
		t.Errorf("merge did not change the first region %+v", before[0])
	}
}

// model is the reference: one state per page of a small window.
type model struct {
	base      uint64
	pages     []State
	floor     uint64
	forbidden []Range
}

func (m *model) allowed(a, b uint64) bool {
	for _, f := range m.forbidden {
		if f.Start < b && a < f.End {
			return false
		}
	}
	return a >= m.base && b <= m.base+uint64(len(m.pages))*PageSize
}

func (m *model) set(a, b uint64, to State) []Change {
	var out []Change
	for p := a; p < b; p += PageSize {
		from := m.pages[(p-m.base)/PageSize]
		if from != to {
			if k := len(out); k > 0 && out[k-1].End == p && out[k-1].From == from {
				out[k-1].End = p + PageSize
			} else {
				out = append(out, Change{p, p + PageSize, from, to})
			}
		}
		m.pages[(p-m.base)/PageSize] = to
	}
	return out
}

func (m *model) free(a, b uint64) bool {
	for p := a; p < b; p += PageSize {
		if m.pages[(p-m.base)/PageSize] != Free {
			return false
		}
	}
	return true
}

func (m *model) regions() []Region {
	var out []Region
	for i, st := range m.pages {
		p := m.base + uint64(i)*PageSize
		if st == Free {
			continue
		}
		if k := len(out); k > 0 && out[k-1].End == p && out[k-1].State == st {
			out[k-1].End += PageSize
		} else {
			out = append(out, Region{p, p + PageSize, st})
		}
	}
	return out
}

// run applies one operation to both and compares; op bytes choose the operation.
func step(t *testing.T, s *Space, m *model, kind int, pageA, pages uint64, other uint64) {
	t.Helper()
	var ch [MaxRegions + 1]Change
	a := m.base + pageA*PageSize
	size := pages * PageSize
	if pages == 0 {
		size = 1 + other%PageSize // sub-page sizes round up
	}
	b := a + (size+PageSize-1)&^(PageSize-1)
	ok := m.allowed(a, b)
	switch kind % 5 {
	case 0, 1: // Reserve, fixed or hinted
		fixed := kind%5 == 0
		addr, n, err := s.Reserve(a, size, fixed, ch[:])
		var want []Change
		wantAddr := a
		switch {
		case fixed && !ok:
			if err == nil {
				t.Fatalf("Reserve fixed %#x+%#x succeeded in a forbidden or outside range", a, size)
			}
			return
		case fixed || (ok && m.free(a, b)):
			want = m.set(a, b, Reserved)
		default:
			// First fit from the floor inside the window.
			found := false
			for p := m.floor; p+(b-a) <= m.base+uint64(len(m.pages))*PageSize; p += PageSize {
				if m.allowed(p, p+(b-a)) && m.free(p, p+(b-a)) {
					wantAddr, found = p, true
					break
				}
			}
			if !found {
				if err == nil && addr < m.base+uint64(len(m.pages))*PageSize {
					t.Fatalf("Reserve(%#x) found %#x where the model found nothing", size, addr)
				}
				return
			}
			want = m.set(wantAddr, wantAddr+(b-a), Reserved)
		}
		if err != nil || addr != wantAddr {
			t.Fatalf("Reserve(%#x, %#x, %v) = %#x, %v; want %#x", a, size, fixed, addr, err, wantAddr)
		}
		if !slices.Equal(want, ch[:n]) {
			d := cmp.Diff(want, ch[:n], cmpEmpty)
			t.Fatalf("Reserve(%#x, %#x, %v) changes (-want +got):\n%s", a, size, fixed, d)
		}
	case 2, 3: // SetState
		to := Reserved + State(kind%2)
		n, err := s.SetState(a, size, to, ch[:])
		covered := ok
		if ok {
			for p := a; p < b; p += PageSize {
				if m.pages[(p-m.base)/PageSize] == Free {
					covered = false
				}
			}
		}
		if !covered {
			if err == nil {
				t.Fatalf("SetState(%#x, %#x) succeeded over a hole or forbidden range", a, size)
			}
			return
		}
		want := m.set(a, b, to)
		if err != nil {
			t.Fatalf("SetState(%#x, %#x, %d) = %v", a, size, to, err)
		}
		if !slices.Equal(want, ch[:n]) {
			d := cmp.Diff(want, ch[:n], cmpEmpty)
			t.Fatalf("SetState changes (-want +got):\n%s", d)
		}
	case 4:
		n, err := s.Release(a, size, ch[:])
		if !ok {
			if err == nil {
				t.Fatalf("Release(%#x, %#x) of a forbidden or outside range succeeded", a, size)
			}
			return
		}
		want := m.set(a, b, Free)
		if err != nil {
			t.Fatalf("Release = %v", err)
		}
		if !slices.Equal(want, ch[:n]) {
			d := cmp.Diff(want, ch[:n], cmpEmpty)
			t.Fatalf("Release changes (-want +got):\n%s", d)
		}
	}
	if want := m.regions(); !slices.Equal(want, s.Regions()) {
		t.Fatalf("regions (-model +space):\n%s", cmp.Diff(want, s.Regions(), cmpEmpty))
	}
}

var cmpEmpty = cmpopts.EquateEmpty()

const (
	windowBase  = 0x10_0000
	windowPages = 256
)

func newModelPair(t *testing.T) (*Space, *model) {
	forbidden := []Range{{windowBase + 100*PageSize, windowBase + 110*PageSize}}
	c := Config{Floor: windowBase + 16*PageSize, Limit: windowBase + windowPages*PageSize, Forbidden: forbidden}
	s := mustInit(t, c)
	m := &model{base: windowBase, pages: make([]State, windowPages), floor: c.Floor, forbidden: forbidden}
	return s, m
}

func TestAgainstModel(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s, m := newModelPair(t)
		for range 500 {
			pa := rng.Uint64N(windowPages)
			n := rng.Uint64N(min(windowPages-pa, 24) + 1)
			step(t, s, m, rng.IntN(5), pa, n, rng.Uint64())
		}
	}
}

func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 10, 5, 2, 12, 1, 4, 11, 1, 1, 0, 3})
	f.Add([]byte{1, 0, 200, 3, 16, 4, 4, 0, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s, m := newModelPair(t)
		for i := 0; i+2 < len(ops); i += 3 {
			pa := uint64(ops[i+1]) % windowPages
			n := uint64(ops[i+2]) % (windowPages - pa + 1)
			step(t, s, m, int(ops[i]), pa, n, uint64(ops[i+2]))
		}
	})
}

func TestNoAllocs(t *testing.T) {
	s := mustInit(t, kernelLayout)
	var ch [16]Change
	fail := 0
	allocs := testing.AllocsPerRun(50, func() {
		a, _, err := s.Reserve(0, 64*MiB, false, ch[:])
		if err != nil {
			fail++
		}
		if _, err := s.SetState(a+MiB, MiB, Mapped, ch[:]); err != nil {
			fail++
		}
		if _, _, err := s.Reserve(a+3*MiB, MiB, true, ch[:]); err != nil {
			fail++
		}
		if _, ok := s.Lookup(a + MiB); !ok {
			fail++
		}
		if _, err := s.Release(a, 64*MiB, ch[:]); err != nil {
			fail++
		}
		if _, _, err := s.Reserve(0, PageSize, true, ch[:]); err == nil {
			fail++
		}
	})
	if fail != 0 {
		t.Fatalf("%d operations failed", fail)
	}
	if allocs != 0 {
		t.Errorf("operations allocate %v times per run", allocs)
	}
}
