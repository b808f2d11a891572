package svm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeTables is a TableMemory over Go arrays, handing out addresses from
// tableBase upward. It fails loudly on a free of an unknown page or on
// access to a page it does not hold, and can be told to run out of pages.
type fakeTables struct {
	next   uint64
	limit  int // live tables allowed; 0 means no limit
	tables map[uint64]*[512]uint64
	allocs int
}

const tableBase = 0x80_0000_0000

var errNoFrames = errors.New("fake: out of frames")

func newFakeTables() *fakeTables {
	return &fakeTables{next: tableBase, tables: map[uint64]*[512]uint64{}}
}

func (m *fakeTables) AllocTable() (uint64, error) {
	if m.limit > 0 && len(m.tables) >= m.limit {
		return 0, errNoFrames
	}
	pa := m.next
	m.next += PageSize4K
	m.tables[pa] = new([512]uint64)
	m.allocs++
	return pa, nil
}

func (m *fakeTables) FreeTable(pa uint64) {
	if _, ok := m.tables[pa]; !ok {
		panic(fmt.Sprintf("fake: free of unknown table %#x", pa))
	}
	delete(m.tables, pa)
}

func (m *fakeTables) Table(pa uint64) *[512]uint64 {
	t, ok := m.tables[pa]
	if !ok {
		panic(fmt.Sprintf("fake: access to unknown table %#x", pa))
	}
	return t
}

func (m *fakeTables) snapshot() map[uint64][512]uint64 {
	s := make(map[uint64][512]uint64, len(m.tables))
	for pa, t := range m.tables {
		s[pa] = *t
	}
	return s
}

// Guest RAM of the tests: 64 MiB of host memory at 1 GiB, plus one MMIO
// page passed through at FEB0_0000h.
var testRanges = []HostRange{{Base: 0x4000_0000, Size: 64 << 20}, {Base: 0xfeb0_0000, Size: PageSize4K}}

func newTestNPT(t *testing.T) (*NPT, *fakeTables) {
	t.Helper()
	mem := newFakeTables()
	n, err := NewNPT(mem, testRanges)
	if err != nil {
		t.Fatal(err)
	}
	return n, mem
}

func TestPTEBits(t *testing.T) {
	// APM vol. 2 5.4.1, long-mode page-table entry fields.
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"P", PTEPresent, 1 << 0},
		{"R/W", PTEWrite, 1 << 1},
		{"U/S", PTEUser, 1 << 2},
		{"PWT", PTEPWT, 1 << 3},
		{"PCD", PTEPCD, 1 << 4},
		{"A", PTEAccessed, 1 << 5},
		{"D", PTEDirty, 1 << 6},
		{"PS", PTELarge, 1 << 7},
		{"PAT (4 KiB)", PTEPAT4K, 1 << 7},
		{"G", PTEGlobal, 1 << 8},
		{"PAT (2 MiB)", PTEPATLarge, 1 << 12},
		{"NX", PTENX, 1 << 63},
		{"address 51:12", PTEAddrMask, (1<<52 - 1) &^ (1<<12 - 1)},
		{"address 51:21", PTEAddrMask2M, (1<<52 - 1) &^ (1<<21 - 1)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestNPTMapLargePages(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0, 0x4000_0000, 4<<20, PermRead|PermWrite|PermExec); err != nil {
		t.Fatal(err)
	}
	// Root, PDPT, PD; no PT, since both 2 MiB halves are aligned.
	if len(mem.tables) != 3 {
		t.Errorf("%d tables, want 3", len(mem.tables))
	}
	tests := []struct {
		gpa  uint64
		want Mapping
	}{
		{0, Mapping{HPA: 0x4000_0000, PageSize: PageSize2M, Perm: PermRead | PermWrite | PermExec}},
		{0x1234, Mapping{HPA: 0x4000_1234, PageSize: PageSize2M, Perm: PermRead | PermWrite | PermExec}},
		{0x3f_ffff, Mapping{HPA: 0x403f_ffff, PageSize: PageSize2M, Perm: PermRead | PermWrite | PermExec}},
	}
	for _, tt := range tests {
		got, ok := n.Lookup(tt.gpa)
		if !ok {
			t.Errorf("Lookup(%#x) not mapped", tt.gpa)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Lookup(%#x) mismatch (-want +got):\n%s", tt.gpa, diff)
		}
	}
	if _, ok := n.Lookup(4 << 20); ok {
		t.Error("Lookup past the mapping succeeded")
	}
	// The raw entries: a PD leaf with PS, P, R/W, U/S; non-leaf entries
	// with P, R/W, U/S and no NX.
	pml4 := mem.Table(n.Root())
	if e := pml4[0]; e&(PTEPresent|PTEWrite|PTEUser) != PTEPresent|PTEWrite|PTEUser || e&PTENX != 0 {
		t.Errorf("PML4E = %#x, want P|RW|US without NX", e)
	}
	pdpt := mem.Table(pml4[0] & PTEAddrMask)
	pd := mem.Table(pdpt[0] & PTEAddrMask)
	if want := uint64(0x4020_0000 | PTELarge | PTEPresent | PTEWrite | PTEUser); pd[1] != want {
		t.Errorf("PDE[1] = %#x, want %#x", pd[1], want)
	}
}

func TestNPTMapSmallAndMixedPages(t *testing.T) {
	n, mem := newTestNPT(t)
	// GPA 1FF000h-401000h onto HPA 401FF000h: 4 KiB at each end, one 2 MiB
	// page in the middle (both addresses 2 MiB aligned there).
	if err := n.Map(0x1f_f000, 0x401f_f000, 0x20_2000, PermRead|PermWrite); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		gpa      uint64
		hpa      uint64
		pageSize uint64
	}{
		{0x1f_f000, 0x401f_f000, PageSize4K},
		{0x20_0000, 0x4020_0000, PageSize2M},
		{0x3f_f008, 0x403f_f008, PageSize2M},
		{0x40_0000, 0x4040_0000, PageSize4K},
	}
	for _, tt := range tests {
		got, ok := n.Lookup(tt.gpa)
		if !ok || got.HPA != tt.hpa || got.PageSize != tt.pageSize || got.Perm != PermRead|PermWrite {
			t.Errorf("Lookup(%#x) = %+v, %v; want hpa %#x size %#x rw", tt.gpa, got, ok, tt.hpa, tt.pageSize)
		}
	}
	for _, gpa := range []uint64{0x1f_e000, 0x40_1000} {
		if _, ok := n.Lookup(gpa); ok {
			t.Errorf("Lookup(%#x) mapped", gpa)
		}
	}
	// Not executable: NX on the 4 KiB leaf.
	pml4 := mem.Table(n.Root())
	pd := mem.Table(mem.Table(pml4[0] & PTEAddrMask)[0] & PTEAddrMask)
	pt := mem.Table(pd[0] & PTEAddrMask)
	if want := uint64(0x401f_f000 | PTEPresent | PTEWrite | PTEUser | PTENX); pt[511] != want {
		t.Errorf("PTE = %#x, want %#x", pt[511], want)
	}
	// 2 MiB-misaligned host: all 4 KiB pages.
	if err := n.Map(0x100_0000, 0x4080_1000, PageSize2M, PermRead); err != nil {
		t.Fatal(err)
	}
	if got, _ := n.Lookup(0x110_0000); got.PageSize != PageSize4K || got.HPA != 0x4090_1000 || got.Perm != PermRead {
		t.Errorf("Lookup(0x1100000) = %+v, want a 4 KiB read-only page at 0x40901000", got)
	}
}

func TestNPTUncachedMMIO(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0xfeb0_0000, 0xfeb0_0000, PageSize4K, PermRead|PermWrite|PermUncached); err != nil {
		t.Fatal(err)
	}
	got, ok := n.Lookup(0xfeb0_0abc)
	if !ok || got.HPA != 0xfeb0_0abc || got.Perm != PermRead|PermWrite|PermUncached {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	pml4 := mem.Table(n.Root())
	pdpt := mem.Table(pml4[0] & PTEAddrMask)
	pd := mem.Table(pdpt[3] & PTEAddrMask)
	pt := mem.Table(pd[0x1f5] & PTEAddrMask)
	if e := pt[0x100]; e&(PTEPWT|PTEPCD) != PTEPWT|PTEPCD {
		t.Errorf("MMIO PTE %#x lacks PCD|PWT", e)
	}
}

func TestNPTRefusesHostMemoryOutsideRanges(t *testing.T) {
	n, mem := newTestNPT(t)
	before := mem.snapshot()
	tests := []struct {
		name           string
		gpa, hpa, size uint64
	}{
		{"below RAM", 0, 0x3fff_f000, PageSize4K},
		{"straddles RAM end", 0, 0x43ff_f000, 2 * PageSize4K},
		{"after RAM", 0, 0x4400_0000, PageSize4K},
		{"host zero page", 0, 0, PageSize4K},
		{"wraps around", 0, 0xffff_ffff_ffff_f000, 2 * PageSize4K},
		{"table pages", 0, tableBase, PageSize4K},
		{"two MMIO pages", 0, 0xfeb0_0000, 2 * PageSize4K},
	}
	for _, tt := range tests {
		if err := n.Map(tt.gpa, tt.hpa, tt.size, PermRead); !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: Map error = %v, want ErrNotAllowed", tt.name, err)
		}
	}
	if diff := cmp.Diff(before, mem.snapshot()); diff != "" {
		t.Errorf("refused maps changed the tables:\n%s", diff)
	}
}

func TestNPTMapArgumentChecks(t *testing.T) {
	n, _ := newTestNPT(t)
	tests := []struct {
		name           string
		gpa, hpa, size uint64
		perm           Perm
		want           error
	}{
		{"unaligned gpa", 0x800, 0x4000_0000, PageSize4K, PermRead, ErrAlignment},
		{"unaligned hpa", 0, 0x4000_0800, PageSize4K, PermRead, ErrAlignment},
		{"unaligned size", 0, 0x4000_0000, 0x800, PermRead, ErrAlignment},
		{"zero size", 0, 0x4000_0000, 0, PermRead, ErrAlignment},
		{"gpa beyond 48 bits", MaxGPA, 0x4000_0000, PageSize4K, PermRead, ErrRange},
		{"gpa end beyond 48 bits", MaxGPA - PageSize4K, 0x4000_0000, 2 * PageSize4K, PermRead, ErrRange},
	}
	for _, tt := range tests {
		if err := n.Map(tt.gpa, tt.hpa, tt.size, tt.perm); !errors.Is(err, tt.want) {
			t.Errorf("%s: Map error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := n.Map(0, 0x4000_0000, PageSize4K, PermWrite); err == nil {
		t.Error("Map without PermRead succeeded")
	}
}

func TestNPTOverlapFailsWithoutChange(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0x20_0000, 0x4020_0000, PageSize2M, PermRead); err != nil {
		t.Fatal(err)
	}
	if err := n.Map(0x60_3000, 0x4060_3000, PageSize4K, PermRead); err != nil {
		t.Fatal(err)
	}
	before := mem.snapshot()
	tests := []struct {
		name           string
		gpa, hpa, size uint64
	}{
		{"4 KiB inside a 2 MiB page", 0x30_0000, 0x4100_0000, PageSize4K},
		{"2 MiB over a 2 MiB page", 0x20_0000, 0x4100_0000, PageSize2M},
		{"2 MiB over a table with one page", 0x60_0000, 0x4100_0000, PageSize2M},
		{"range whose tail overlaps", 0x1f_0000, 0x4000_0000, 0x2_0000},
		{"range whose tail hits a 4 KiB page", 0x60_0000, 0x4100_0000, 0x8000},
	}
	for _, tt := range tests {
		if err := n.Map(tt.gpa, tt.hpa, tt.size, PermRead); !errors.Is(err, ErrMapped) {
			t.Errorf("%s: Map error = %v, want ErrMapped", tt.name, err)
		}
		if diff := cmp.Diff(before, mem.snapshot()); diff != "" {
			t.Fatalf("%s: failed Map changed the tables:\n%s", tt.name, diff)
		}
	}
}

func TestNPTUnmapSplitsLargePage(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0, 0x4000_0000, 4<<20, PermRead|PermExec); err != nil {
		t.Fatal(err)
	}
	// Punch a 12 KiB hole into the second 2 MiB page.
	if err := n.Unmap(0x20_5000, 0x3000); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		gpa      uint64
		mapped   bool
		pageSize uint64
	}{
		{0x10_0000, true, PageSize2M}, // first page untouched
		{0x20_4fff, true, PageSize4K},
		{0x20_5000, false, 0},
		{0x20_7fff, false, 0},
		{0x20_8000, true, PageSize4K},
		{0x3f_f000, true, PageSize4K},
	}
	for _, tt := range tests {
		got, ok := n.Lookup(tt.gpa)
		if ok != tt.mapped {
			t.Errorf("Lookup(%#x) mapped = %v, want %v", tt.gpa, ok, tt.mapped)
			continue
		}
		if ok && (got.HPA != 0x4000_0000+tt.gpa || got.PageSize != tt.pageSize || got.Perm != PermRead|PermExec) {
			t.Errorf("Lookup(%#x) = %+v, want hpa %#x size %#x r-x", tt.gpa, got, 0x4000_0000+tt.gpa, tt.pageSize)
		}
	}
	// Unmapping the rest frees every table but the root.
	if err := n.Unmap(0, 4<<20); err != nil {
		t.Fatal(err)
	}
	if len(mem.tables) != 1 {
		t.Errorf("%d tables after unmapping everything, want 1 (the root)", len(mem.tables))
	}
	if !empty(mem.Table(n.Root())) {
		t.Error("root not empty after unmapping everything")
	}
}

func TestNPTUnmapSplitKeepsPAT(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0, 0x4000_0000, PageSize2M, PermRead); err != nil {
		t.Fatal(err)
	}
	pd := mem.Table(mem.Table(mem.Table(n.Root())[0] & PTEAddrMask)[0] & PTEAddrMask)
	pd[0] |= PTEPATLarge | PTEPWT // as if a caller chose PAT entry 5
	if err := n.Unmap(0, PageSize4K); err != nil {
		t.Fatal(err)
	}
	pt := mem.Table(pd[0] & PTEAddrMask)
	if want := uint64(0x4000_1000 | PTEPresent | PTEUser | PTENX | PTEPWT | PTEPAT4K); pt[1] != want {
		t.Errorf("split PTE[1] = %#x, want %#x", pt[1], want)
	}
}

func TestNPTUnmapHolesAndChecks(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Unmap(0, 1<<40); err != nil {
		t.Errorf("Unmap of nothing: %v", err)
	}
	if err := n.Unmap(0x800, PageSize4K); !errors.Is(err, ErrAlignment) {
		t.Errorf("unaligned Unmap error = %v", err)
	}
	if err := n.Unmap(MaxGPA-PageSize4K, 2*PageSize4K); !errors.Is(err, ErrRange) {
		t.Errorf("Unmap past 48 bits error = %v", err)
	}
	if len(mem.tables) != 1 {
		t.Errorf("%d tables, want 1", len(mem.tables))
	}
}

func TestNPTAllocationFailureLeavesNoTrace(t *testing.T) {
	n, mem := newTestNPT(t)
	if err := n.Map(0, 0x4000_0000, PageSize4K, PermRead); err != nil {
		t.Fatal(err)
	}
	before := mem.snapshot()
	// Root, PDPT, PD, PT exist; a mapping in another 1 GiB region needs a
	// new PD and PT, and the PT allocation fails.
	mem.limit = len(mem.tables) + 1
	err := n.Map(0x4000_0000, 0x4100_0000, 2*PageSize4K, PermRead)
	if !errors.Is(err, errNoFrames) {
		t.Fatalf("Map error = %v, want errNoFrames", err)
	}
	if diff := cmp.Diff(before, mem.snapshot()); diff != "" {
		t.Errorf("failed Map left tables behind:\n%s", diff)
	}
	// A split that cannot get its table fails and changes nothing.
	mem.limit = 0
	if err := n.Map(0x20_0000, 0x4020_0000, PageSize2M, PermRead); err != nil {
		t.Fatal(err)
	}
	before = mem.snapshot()
	mem.limit = len(mem.tables)
	if err := n.Unmap(0x20_0000, PageSize4K); !errors.Is(err, errNoFrames) {
		t.Errorf("Unmap needing a split error = %v, want errNoFrames", err)
	}
	if diff := cmp.Diff(before, mem.snapshot()); diff != "" {
		t.Errorf("failed split changed the tables:\n%s", diff)
	}
}

func TestNPTRejectsTablePagesInGuestRanges(t *testing.T) {
	mem := newFakeTables()
	mem.next = 0x4000_0000 // the allocator hands out guest RAM
	if _, err := NewNPT(mem, testRanges); !errors.Is(err, ErrTableInside) {
		t.Errorf("NewNPT error = %v, want ErrTableInside", err)
	}
	if len(mem.tables) != 0 {
		t.Errorf("refused table page not freed")
	}
	if _, err := NewNPT(newFakeTables(), []HostRange{{Base: 0x1000, Size: 0x800}}); !errors.Is(err, ErrAlignment) {
		t.Errorf("NewNPT with unaligned range error = %v, want ErrAlignment", err)
	}
}

func TestNPTDestroyFreesEverything(t *testing.T) {
	n, mem := newTestNPT(t)
	for _, m := range []struct{ gpa, hpa, size uint64 }{
		{0, 0x4000_0000, 8 << 20},
		{0x1_0000_0000, 0x4080_1000, 0x10_0000},
		{0xfeb0_0000, 0xfeb0_0000, PageSize4K},
	} {
		if err := n.Map(m.gpa, m.hpa, m.size, PermRead|PermWrite); err != nil {
			t.Fatal(err)
		}
	}
	n.Destroy()
	if len(mem.tables) != 0 {
		t.Errorf("%d tables left after Destroy", len(mem.tables))
	}
}

// FuzzNPT runs random Map/Unmap sequences against a page-granular model
// and checks every touched page, the table count, and that no leaf ever
// points outside the allowed host ranges.
func FuzzNPT(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 2, 1, 0, 1, 0, 1, 0, 0})
	f.Add([]byte{0, 1, 0xff, 0, 0x1, 0x3, 1, 1, 0x2, 0, 0, 0x10, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		mem := newFakeTables()
		n, err := NewNPT(mem, testRanges)
		if err != nil {
			t.Fatal(err)
		}
		type page struct {
			hpa  uint64
			perm Perm
		}
		model := map[uint64]page{} // 4 KiB guest page -> host page
		// Guest addresses span 8 MiB in 4 KiB steps plus an upper region
		// 1 GiB up, so the ops cross 2 MiB and 1 GiB boundaries.
		gpaOf := func(b0, b1 byte) uint64 {
			g := (uint64(b0)<<8 | uint64(b1)) & 0x7ff * PageSize4K
			if b0&0x80 != 0 {
				g += 1 << 30
			}
			return g
		}
		for len(ops) >= 6 {
			op, gpa := ops[0], gpaOf(ops[1], ops[2])
			size := (uint64(ops[3])&0x3f + 1) * PageSize4K
			if ops[3]&0x40 != 0 {
				size = PageSize2M
			}
			hpa := 0x4000_0000 + (uint64(ops[4])<<8|uint64(ops[5]))&0x3fff*PageSize4K
			perm := PermRead | Perm(op>>1)&(PermWrite|PermExec)
			ops = ops[6:]
			if op&1 == 0 {
				err := n.Map(gpa, hpa, size, perm)
				free := true
				for off := uint64(0); off < size; off += PageSize4K {
					if _, ok := model[gpa+off]; ok {
						free = false
					}
				}
				inRAM := hpa+size <= 0x4000_0000+64<<20
				if (err == nil) != (free && inRAM) {
					t.Fatalf("Map(%#x, %#x, %#x): %v; free %v in RAM %v", gpa, hpa, size, err, free, inRAM)
				}
				if err == nil {
					for off := uint64(0); off < size; off += PageSize4K {
						model[gpa+off] = page{hpa + off, perm}
					}
				}
			} else {
				if err := n.Unmap(gpa, size); err != nil {
					t.Fatalf("Unmap(%#x, %#x): %v", gpa, size, err)
				}
				for off := uint64(0); off < size; off += PageSize4K {
					delete(model, gpa+off)
				}
			}
		}
		for _, base := range []uint64{0, 1 << 30} {
			for g := base; g < base+0xa00*PageSize4K; g += PageSize4K {
				got, ok := n.Lookup(g + 0x123)
				want, wantOK := model[g]
				if ok != wantOK {
					t.Fatalf("Lookup(%#x) mapped %v, model %v", g, ok, wantOK)
				}
				if ok && (got.HPA != want.hpa+0x123 || got.Perm != want.perm) {
					t.Fatalf("Lookup(%#x) = %+v, model %+v", g, got, want)
				}
				if ok && !n.hostAllowed(got.HPA&^(PageSize4K-1), PageSize4K) {
					t.Fatalf("Lookup(%#x) points outside the host ranges: %#x", g, got.HPA)
				}
			}
		}
		if len(model) == 0 && len(mem.tables) != 1 {
			t.Fatalf("nothing mapped but %d tables live", len(mem.tables))
		}
		n.Destroy()
		if len(mem.tables) != 0 {
			t.Fatalf("%d tables leaked", len(mem.tables))
		}
	})
}
