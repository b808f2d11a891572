package vmx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeMemory is TableMemory over a map of frames, with an allocation limit
// to test failure paths.
type fakeMemory struct {
	frames map[uint64]*[512]uint64
	next   uint64
	limit  int
}

func newFakeMemory() *fakeMemory {
	return &fakeMemory{frames: map[uint64]*[512]uint64{}, next: 0x10_0000_0000, limit: 1 << 20}
}

func (m *fakeMemory) AllocTable() (uint64, error) {
	if len(m.frames) >= m.limit {
		return 0, errors.New("out of frames")
	}
	pa := m.next
	m.next += 0x1000
	m.frames[pa] = new([512]uint64)
	return pa, nil
}

func (m *fakeMemory) Table(pa uint64) (*[512]uint64, error) {
	t, ok := m.frames[pa]
	if !ok {
		return nil, fmt.Errorf("no table at %#x", pa)
	}
	return t, nil
}

const (
	bochsEPTCap = EPTVPIDCap(0x00000f0106334141) // 2M, 1G, A/D, exec-only, WB, UC, walk 4
	sandyEPTCap = EPTVPIDCap(0x00000f0106114141) // 2M, no 1G, no A/D
)

func TestMakeEPTP(t *testing.T) {
	tests := []struct {
		name   string
		root   uint64
		levels int
		mt     MemType
		ad     bool
		caps   EPTVPIDCap
		want   uint64
		ok     bool
	}{
		{"bochs WB 4-level A/D", 0x12345000, 4, MemWB, true, bochsEPTCap, 0x12345000 | 6 | 3<<3 | 1<<6, true},
		{"bochs UC 4-level", 0x1000, 4, MemUC, false, bochsEPTCap, 0x1000 | 3<<3, true},
		{"bochs 5-level", 0x1000, 5, MemWB, false, bochsEPTCap, 0, false},
		{"5-level when supported", 0x1000, 5, MemWB, false, bochsEPTCap | EPTVPIDCap(EPTCapWalk5), 0x1000 | 6 | 4<<3, true},
		{"sandy A/D", 0x1000, 4, MemWB, true, sandyEPTCap, 0, false},
		{"WT not allowed for EPTP", 0x1000, 4, MemWT, false, bochsEPTCap, 0, false},
		{"unaligned root", 0x1800, 4, MemWB, false, bochsEPTCap, 0, false},
		{"root above 52 bits", 1 << 52, 4, MemWB, false, bochsEPTCap, 0, false},
	}
	for _, tt := range tests {
		got, err := MakeEPTP(tt.root, tt.levels, tt.mt, tt.ad, tt.caps)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: MakeEPTP = %#x, %v; want %#x, ok=%v", tt.name, got, err, tt.want, tt.ok)
		}
	}
}

func TestINVTypes(t *testing.T) {
	if ty, ok := bochsEPTCap.INVEPTType(); !ok || ty != INVEPTSingleContext {
		t.Errorf("INVEPTType = %d, %v", ty, ok)
	}
	if ty, ok := EPTVPIDCap(EPTCapINVEPT | EPTCapINVEPTAll).INVEPTType(); !ok || ty != INVEPTGlobal {
		t.Errorf("INVEPTType(all only) = %d, %v", ty, ok)
	}
	if _, ok := EPTVPIDCap(EPTCapINVEPTSingle).INVEPTType(); ok {
		t.Error("INVEPT type chosen without INVEPT support")
	}
	if ty, ok := bochsEPTCap.INVVPIDType(); !ok || ty != INVVPIDSingleContext {
		t.Errorf("INVVPIDType = %d, %v", ty, ok)
	}
	if d := INVVPIDDescriptor(7, 0xdead000); d != [2]uint64{7, 0xdead000} {
		t.Errorf("INVVPID descriptor %#x", d)
	}
}

func newTestEPT(t *testing.T, caps EPTVPIDCap, large bool) (*EPT, *fakeMemory) {
	t.Helper()
	mem := newFakeMemory()
	e, err := NewEPT(mem, caps, EPTConfig{AllowLarge: large, PhysAddrBits: 46})
	if err != nil {
		t.Fatal(err)
	}
	return e, mem
}

// rawEntry walks the fake tables and returns the entry that maps gpa.
func rawEntry(t *testing.T, e *EPT, mem *fakeMemory, gpa uint64) uint64 {
	t.Helper()
	table := e.Root()
	for l := e.Levels(); l >= 1; l-- {
		ent := mem.frames[table][gpa>>levelShift(l)&511]
		if l == 1 || ent&EPTLargePage != 0 || ent&7 == 0 {
			return ent
		}
		table = ent & EPTAddrMask
	}
	return 0
}

func TestEPTEntryFormat(t *testing.T) {
	e, mem := newTestEPT(t, bochsEPTCap, true)
	if err := e.Map(0x1000, 0x1234000, 0x1000, PermRWX, MemWB); err != nil {
		t.Fatal(err)
	}
	if err := e.Map(0x20_0000, 0x40_0000, 0x20_0000, PermRead, MemUC); err != nil {
		t.Fatal(err)
	}
	if err := e.Map(0x4000_0000, 0x8000_0000, 0x4000_0000, PermExecute, MemWT); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		gpa, want uint64
	}{
		// SDM Table 29-6 (PTE): address | X W R = 111b | memory type 6 in bits 5:3.
		{0x1000, 0x1234000 | 0x7 | 6<<3},
		// Table 29-4 (PDE mapping 2 MiB): bit 7 set, memory type 0, read only.
		{0x20_0000, 0x40_0000 | 0x1 | 1<<7},
		// Table 29-2 (PDPTE mapping 1 GiB): bit 7, WT = 4, execute-only.
		{0x4000_0000, 0x8000_0000 | 0x4 | 4<<3 | 1<<7},
	} {
		if got := rawEntry(t, e, mem, tt.gpa); got != tt.want {
			t.Errorf("entry for %#x = %#x, want %#x", tt.gpa, got, tt.want)
		}
	}
	// Non-leaf entries grant everything so the leaf decides.
	if pml4e := mem.frames[e.Root()][0]; pml4e&7 != 7 || pml4e&EPTLargePage != 0 {
		t.Errorf("PML4E %#x", pml4e)
	}
}

func TestEPTMapLookup(t *testing.T) {
	tests := []struct {
		name     string
		caps     EPTVPIDCap
		large    bool
		gpa, hpa uint64
		size     uint64
		pageSize uint64
	}{
		{"4k", bochsEPTCap, true, 0x5000, 0x9000, 0x3000, 0x1000},
		{"2M aligned", bochsEPTCap, true, 0x20_0000, 0x60_0000, 0x40_0000, 0x20_0000},
		{"2M misaligned hpa falls back to 4K", bochsEPTCap, true, 0x20_0000, 0x61_0000, 0x20_0000, 0x1000},
		{"1G", bochsEPTCap, true, 0x4000_0000, 0xC000_0000, 0x4000_0000, 0x4000_0000},
		{"1G unsupported uses 2M", sandyEPTCap, true, 0x4000_0000, 0xC000_0000, 0x4000_0000, 0x20_0000},
		{"large disabled", bochsEPTCap, false, 0x20_0000, 0x60_0000, 0x20_0000, 0x1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEPT(t, tt.caps, tt.large)
			if err := e.Map(tt.gpa, tt.hpa, tt.size, PermRW, MemWB); err != nil {
				t.Fatal(err)
			}
			for _, off := range []uint64{0, 0x123, tt.size / 2, tt.size - 1} {
				m, ok, err := e.Lookup(tt.gpa + off)
				want := Mapping{HPA: tt.hpa + off, Perm: PermRW, MemType: MemWB, PageSize: tt.pageSize}
				if err != nil || !ok {
					t.Fatalf("Lookup(%#x) = %v, %v", tt.gpa+off, ok, err)
				}
				if diff := cmp.Diff(want, m); diff != "" {
					t.Errorf("Lookup(%#x) (-want +got):\n%s", tt.gpa+off, diff)
				}
			}
			for _, gpa := range []uint64{tt.gpa - 1, tt.gpa + tt.size} {
				if _, ok, _ := e.Lookup(gpa); ok {
					t.Errorf("Lookup(%#x) outside the range is mapped", gpa)
				}
			}
			if err := e.Map(tt.gpa+tt.size-0x1000, 0x1000, 0x1000, PermRead, MemWB); !errors.Is(err, ErrEPTMapped) {
				t.Errorf("overlapping Map = %v, want ErrEPTMapped", err)
			}
		})
	}
}

func TestEPTUnmapSplitsLargePages(t *testing.T) {
	e, _ := newTestEPT(t, bochsEPTCap, true)
	if err := e.Map(0x4000_0000, 0x8000_0000, 0x4000_0000, PermRWX, MemWB); err != nil {
		t.Fatal(err)
	}
	// Punch a 4 KiB hole in the middle of the 1 GiB page.
	hole := uint64(0x4123_4000)
	if err := e.Unmap(hole, 0x1000); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.Lookup(hole); ok {
		t.Error("hole still mapped")
	}
	for _, tt := range []struct {
		gpa, pageSize uint64
	}{
		{hole - 0x1000, 0x1000}, // same 2 MiB region: now 4 KiB pages
		{hole + 0x1000, 0x1000},
		{0x4000_0000, 0x20_0000}, // other 2 MiB regions keep 2 MiB pages
		{0x7FFF_FFFF, 0x20_0000},
	} {
		m, ok, err := e.Lookup(tt.gpa)
		want := Mapping{HPA: tt.gpa - 0x4000_0000 + 0x8000_0000, Perm: PermRWX, MemType: MemWB, PageSize: tt.pageSize}
		if err != nil || !ok {
			t.Fatalf("Lookup(%#x) = %v, %v", tt.gpa, ok, err)
		}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("Lookup(%#x) (-want +got):\n%s", tt.gpa, diff)
		}
	}
	// The hole can be mapped again, elsewhere.
	if err := e.Map(hole, 0x1000, 0x1000, PermRead, MemUC); err != nil {
		t.Errorf("remap hole: %v", err)
	}
	// Unmapping everything, including unmapped space, leaves nothing.
	if err := e.Unmap(0, 0x8000_0000); err != nil {
		t.Fatal(err)
	}
	for _, gpa := range []uint64{hole, 0x4000_0000, 0x7FFF_F000} {
		if _, ok, _ := e.Lookup(gpa); ok {
			t.Errorf("%#x mapped after full unmap", gpa)
		}
	}
}

func TestEPTRejects(t *testing.T) {
	e, _ := newTestEPT(t, sandyEPTCap&^EPTVPIDCap(EPTCapExecuteOnly), true)
	tests := []struct {
		name           string
		gpa, hpa, size uint64
		perm           Perm
		mt             MemType
		is             error
	}{
		{"write without read", 0, 0, 0x1000, PermWrite, MemWB, nil},
		{"execute-only unsupported", 0, 0, 0x1000, PermExecute, MemWB, nil},
		{"no access", 0, 0, 0x1000, 0, MemWB, nil},
		{"user-execute without MBEC", 0, 0, 0x1000, PermRead | PermUserExecute, MemWB, nil},
		{"reserved memory type 2", 0, 0, 0x1000, PermRead, 2, nil},
		{"reserved memory type 7", 0, 0, 0x1000, PermRead, 7, nil},
		{"unaligned gpa", 0x800, 0, 0x1000, PermRead, MemWB, ErrEPTAlignment},
		{"zero size", 0, 0, 0, PermRead, MemWB, ErrEPTAlignment},
		{"gpa beyond 48 bits", 1<<48 - 0x1000, 0, 0x2000, PermRead, MemWB, ErrEPTRange},
		{"hpa beyond MAXPHYADDR", 0, 1 << 46, 0x1000, PermRead, MemWB, ErrEPTRange},
		{"wrapping size", 0x1000, 0, ^uint64(0xFFF), PermRead, MemWB, ErrEPTRange},
	}
	for _, tt := range tests {
		err := e.Map(tt.gpa, tt.hpa, tt.size, tt.perm, tt.mt)
		if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: Map = %v, want error %v", tt.name, err, tt.is)
		}
	}
	if _, err := NewEPT(newFakeMemory(), bochsEPTCap, EPTConfig{Levels: 5}); err == nil {
		t.Error("5-level EPT accepted without support")
	}
	mem := newFakeMemory()
	mem.limit = 2
	small, err := NewEPT(mem, bochsEPTCap, EPTConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Map(0, 0, 0x1000, PermRead, MemWB); err == nil {
		t.Error("Map succeeded without frames for its tables")
	}
}

func TestEPTModeBasedExecute(t *testing.T) {
	mem := newFakeMemory()
	e, err := NewEPT(mem, bochsEPTCap, EPTConfig{ModeBased: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Map(0x1000, 0x2000, 0x1000, PermRead|PermUserExecute, MemWB); err != nil {
		t.Fatal(err)
	}
	if got := rawEntry(t, e, mem, 0x1000); got != 0x2000|1|6<<3|EPTUserExecute {
		t.Errorf("entry %#x", got)
	}
	m, ok, _ := e.Lookup(0x1000)
	if !ok || m.Perm != PermRead|PermUserExecute {
		t.Errorf("Lookup perm %v", m.Perm)
	}
}

// FuzzEPT drives Map and Unmap with arbitrary operations over a 4 GiB
// guest-physical window and checks every touched page against a page-level
// model. Page-size choices, splits and conflicts must never make Lookup
// disagree with the model.
func FuzzEPT(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 2, 1, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 2, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 0, 2, 0x10, 0, 0, 3, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		mem := newFakeMemory()
		e, err := NewEPT(mem, bochsEPTCap, EPTConfig{AllowLarge: true})
		if err != nil {
			t.Fatal(err)
		}
		model := map[uint64]uint64{} // gpa page -> hpa page
		var probes []uint64
		for len(ops) >= 7 {
			op, a, b, n := ops[0], binary.LittleEndian.Uint16(ops[1:]), binary.LittleEndian.Uint16(ops[3:]), binary.LittleEndian.Uint16(ops[5:])
			ops = ops[7:]
			// Addresses in 2 MiB units half the time, to reach large pages.
			unit := uint64(0x1000)
			if op&2 != 0 {
				unit = 0x20_0000
			}
			gpa := uint64(a) * unit % (1 << 32)
			hpa := uint64(b) * unit % (1 << 32)
			size := (uint64(n)%8 + 1) * unit
			if gpa+size > 1<<32 {
				continue
			}
			probes = append(probes, gpa, gpa+size-0x1000, gpa+size)
			if op&1 == 0 {
				overlap := false
				for p := gpa; p < gpa+size; p += 0x1000 {
					if _, ok := model[p]; ok {
						overlap = true
						break
					}
				}
				err := e.Map(gpa, hpa, size, PermRW, MemWB)
				if overlap {
					if !errors.Is(err, ErrEPTMapped) {
						t.Fatalf("Map(%#x,%#x,%#x) over a mapping = %v", gpa, hpa, size, err)
					}
					// Pages before the conflict may have been mapped: re-sync the model.
					for p := gpa; p < gpa+size; p += 0x1000 {
						if m, ok, _ := e.Lookup(p); ok {
							model[p] = m.HPA
						}
					}
					continue
				}
				if err != nil {
					t.Fatalf("Map(%#x,%#x,%#x) = %v", gpa, hpa, size, err)
				}
				for p := uint64(0); p < size; p += 0x1000 {
					model[gpa+p] = hpa + p
				}
			} else {
				if err := e.Unmap(gpa, size); err != nil {
					t.Fatalf("Unmap(%#x,%#x) = %v", gpa, size, err)
				}
				for p := gpa; p < gpa+size; p += 0x1000 {
					delete(model, p)
				}
			}
		}
		for _, p := range probes {
			m, ok, err := e.Lookup(p)
			if err != nil {
				t.Fatal(err)
			}
			want, wantOK := model[p]
			if ok != wantOK || (ok && m.HPA != want) {
				t.Fatalf("Lookup(%#x) = %#x, %v; model %#x, %v", p, m.HPA, ok, want, wantOK)
			}
		}
	})
}
