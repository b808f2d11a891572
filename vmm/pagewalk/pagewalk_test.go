package pagewalk

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Page-table placement used by the tests.
const (
	tPML5 = 0x9000
	tPML4 = 0x10000
	tPDPT = 0x11000
	tPD   = 0x12000
	tPT   = 0x13000
	// tPAECR3 is 32-byte aligned but not page aligned, as PAE allows.
	tPAECR3 = 0x14020
)

const ptePUW = PteP | PteRW | PteUS

func idx(la uint64, shift uint) uint64 { return la >> shift & 0x1FF }

// lm4 maps la to pa with a 4-KiB page under 4-level paging rooted at tPML4,
// with the given flags for PML4E, PDPTE, PDE and PTE.
func lm4(m *fakeMem, la, pa, f4, f3, f2, f1 uint64) {
	m.put64(tPML4+8*idx(la, 39), tPDPT|f4)
	m.put64(tPDPT+8*idx(la, 30), tPD|f3)
	m.put64(tPD+8*idx(la, 21), tPT|f2)
	m.put64(tPT+8*idx(la, 12), pa|f1)
}

func state32() State {
	return State{CR0: CR0PE | CR0PG | CR0WP, CR3: tPML4, CR4: CR4PSE}
}

func statePAE() State {
	return State{CR0: CR0PE | CR0PG | CR0WP, CR3: tPAECR3, CR4: CR4PAE, EFER: EFERNXE}
}

func state4() State {
	return State{CR0: CR0PE | CR0PG | CR0WP, CR3: tPML4, CR4: CR4PAE, EFER: EFERLME | EFERLMA | EFERNXE}
}

func state5() State {
	s := state4()
	s.CR4 |= CR4LA57
	s.CR3 = tPML5
	return s
}

func with(s State, f func(*State)) State { f(&s); return s }

type walkCase struct {
	name   string
	state  State
	walker Walker // features only; Mem is filled in
	setup  func(m *fakeMem)
	la     uint64
	acc    Access
	want   Translation
	fault  *Fault // expected page fault
	err    error  // expected sentinel (errors.Is)
}

func runWalkCases(t *testing.T, cases []walkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMem(1 << 32)
			if tc.setup != nil {
				tc.setup(m)
			}
			w := tc.walker
			w.Mem = m
			if w.PhysAddrBits == 0 {
				w.PhysAddrBits = 46
			}
			st := tc.state
			got, err := w.Translate(&st, tc.la, tc.acc)
			switch {
			case tc.fault != nil:
				var f *Fault
				if !errors.As(err, &f) {
					t.Fatalf("Translate(%#x) = %+v, %v; want fault %+v", tc.la, got, err, *tc.fault)
				}
				if diff := cmp.Diff(*tc.fault, *f); diff != "" {
					t.Errorf("fault mismatch (-want +got):\n%s", diff)
				}
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("Translate(%#x) = %+v, %v; want error %v", tc.la, got, err, tc.err)
				}
			default:
				if err != nil {
					t.Fatalf("Translate(%#x): %v", tc.la, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("translation mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestModeOf(t *testing.T) {
	for _, tc := range []struct {
		cr0, cr4, efer uint64
		want           Mode
	}{
		{0, 0, 0, ModeOff},
		{CR0PE, CR4PAE, 0, ModeOff},
		{CR0PE | CR0PG, 0, 0, Mode32},
		{CR0PE | CR0PG, CR4PSE, 0, Mode32},
		{CR0PE | CR0PG, CR4PAE, 0, ModePAE},
		// LME without LMA (between setting LME and CR0.PG) is still PAE.
		{CR0PE | CR0PG, CR4PAE, EFERLME, ModePAE},
		{CR0PE | CR0PG, CR4PAE, EFERLME | EFERLMA, ModeLevel4},
		{CR0PE | CR0PG, CR4PAE | CR4LA57, EFERLME | EFERLMA, ModeLevel5},
	} {
		if got := ModeOf(tc.cr0, tc.cr4, tc.efer); got != tc.want {
			t.Errorf("ModeOf(%#x, %#x, %#x) = %v, want %v", tc.cr0, tc.cr4, tc.efer, got, tc.want)
		}
	}
}

// TestArchitecturalConstants checks the numbers against the manuals' tables.
func TestArchitecturalConstants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uint64
	}{
		{"CR0.PE", CR0PE, 1 << 0}, {"CR0.WP", CR0WP, 1 << 16}, {"CR0.PG", CR0PG, 1 << 31},
		{"CR4.PSE", CR4PSE, 1 << 4}, {"CR4.PAE", CR4PAE, 1 << 5}, {"CR4.LA57", CR4LA57, 1 << 12},
		{"CR4.SMEP", CR4SMEP, 1 << 20}, {"CR4.SMAP", CR4SMAP, 1 << 21}, {"CR4.PKE", CR4PKE, 1 << 22},
		{"EFER.LME", EFERLME, 1 << 8}, {"EFER.LMA", EFERLMA, 1 << 10}, {"EFER.NXE", EFERNXE, 1 << 11},
		{"RFLAGS.AC", RFLAGSAC, 1 << 18},
		// Figure 4-12, "Page-Fault Error Code".
		{"PF.P", uint64(PFPresent), 1}, {"PF.W/R", uint64(PFWrite), 2}, {"PF.U/S", uint64(PFUser), 4},
		{"PF.RSVD", uint64(PFReserved), 8}, {"PF.I/D", uint64(PFFetch), 16}, {"PF.PK", uint64(PFProtKey), 32},
		// Table 4-19/4-20 bit positions.
		{"P", PteP, 1}, {"R/W", PteRW, 2}, {"U/S", PteUS, 4}, {"A", PteA, 32}, {"D", PteD, 64},
		{"PS", PtePS, 128}, {"G", PteG, 256}, {"XD", PteXD, 1 << 63},
		{"bits(51,46)", bits(51, 46), 0x000F_C000_0000_0000}, {"bits(20,13)", bits(20, 13), 0x1F_E000},
		{"bits(2,1)", bits(2, 1), 6}, {"bits(12,13)", bits(12, 13), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestTranslateModes(t *testing.T) {
	const la4 = 0x0000_7F12_3456_7ABC
	const la5 = 0x00AB_7F12_3456_7ABC // uses bits 56:48
	runWalkCases(t, []walkCase{
		{name: "paging off is identity", state: State{CR0: CR0PE}, la: 0x12345, want: Translation{0x12345, Size4K}},
		{name: "paging off truncates to 32 bits", state: State{}, la: 0x1_0000_1000, want: Translation{0x1000, Size4K}},

		// 32-bit paging, Intel SDM vol 3A 4.3.
		{name: "32-bit 4K", state: state32(), la: 0x0040_3ABC, acc: AccessWrite,
			setup: func(m *fakeMem) {
				m.put32(tPML4+4*1, tPT|uint32(ptePUW))
				m.put32(tPT+4*3, 0x0567_8000|uint32(ptePUW))
			},
			want: Translation{0x0567_8ABC, Size4K}},
		{name: "32-bit PDE not present", state: state32(), la: 0x0040_3ABC, acc: AccessWrite,
			fault: &Fault{0x0040_3ABC, PFWrite}},
		{name: "32-bit PTE not present, user", state: with(state32(), func(s *State) { s.CPL = 3 }), la: 0x0040_3ABC,
			setup: func(m *fakeMem) { m.put32(tPML4+4*1, tPT|uint32(ptePUW)) },
			fault: &Fault{0x0040_3ABC, PFUser}},
		{name: "32-bit 4M page", state: state32(), la: 0x0ABC_DEF0,
			setup: func(m *fakeMem) { m.put32(tPML4+4*(0x0ABC_DEF0>>22), 0x1FC0_0000|uint32(ptePUW|PtePS)) },
			want:  Translation{0x1FC0_0000 | 0x0ABC_DEF0&(Size4M-1), Size4M}},
		{name: "32-bit PS ignored without CR4.PSE", state: with(state32(), func(s *State) { s.CR4 = 0 }), la: 0x0040_3ABC,
			setup: func(m *fakeMem) {
				m.put32(tPML4+4*1, tPT|uint32(ptePUW|PtePS))
				m.put32(tPT+4*3, 0x0567_8000|uint32(ptePUW))
			},
			want: Translation{0x0567_8ABC, Size4K}},
		{name: "32-bit PSE-36 4M page above 4G", state: state32(), walker: Walker{PSE36: true, PhysAddrBits: 36},
			la: 0x0040_0010,
			setup: func(m *fakeMem) {
				// PDE bits 16:13 = 0xA give physical bits 35:32.
				m.put32(tPML4+4*1, 0x0080_0000|0xA<<13|uint32(ptePUW|PtePS))
			},
			want: Translation{0xA_0080_0010, Size4M}},
		{name: "32-bit PSE-36 bit above MAXPHYADDR reserved", state: state32(), walker: Walker{PSE36: true, PhysAddrBits: 36},
			la: 0x0040_0010, acc: AccessWrite,
			setup: func(m *fakeMem) { m.put32(tPML4+4*1, 0x0080_0000|1<<17|uint32(ptePUW|PtePS)) },
			fault: &Fault{0x0040_0010, PFPresent | PFWrite | PFReserved}},
		{name: "32-bit without PSE-36 bits 20:13 reserved", state: state32(),
			la:    0x0040_0010,
			setup: func(m *fakeMem) { m.put32(tPML4+4*1, 0x0080_0000|1<<13|uint32(ptePUW|PtePS)) },
			fault: &Fault{0x0040_0010, PFPresent | PFReserved}},
		{name: "32-bit 4M bit 21 reserved", state: state32(), walker: Walker{PSE36: true},
			la:    0x0040_0010,
			setup: func(m *fakeMem) { m.put32(tPML4+4*1, 0x0080_0000|1<<21|uint32(ptePUW|PtePS)) },
			fault: &Fault{0x0040_0010, PFPresent | PFReserved}},
		{name: "32-bit truncates the linear address", state: state32(), la: 0xFFFF_FFFF_0040_3ABC,
			setup: func(m *fakeMem) {
				m.put32(tPML4+4*1, tPT|uint32(ptePUW))
				m.put32(tPT+4*3, 0x0567_8000|uint32(ptePUW))
			},
			want: Translation{0x0567_8ABC, Size4K}},
		{name: "32-bit PD outside memory", state: with(state32(), func(s *State) { s.CR3 = 0xFFFF_F000 }),
			setup: func(m *fakeMem) { m.limit = 0x8000_0000 }, la: 0x1000, err: ErrTableOutsideMemory},

		// PAE paging, Intel SDM vol 3A 4.4.
		{name: "PAE 4K with PDPTE from memory", state: statePAE(), la: 0xC012_3456,
			setup: func(m *fakeMem) {
				m.put64(tPAECR3+8*3, tPD|PteP)
				m.put64(tPD+8*idx(0xC012_3456, 21), tPT|ptePUW)
				m.put64(tPT+8*idx(0xC012_3456, 12), 0x9_8765_4000|ptePUW)
			},
			want: Translation{0x9_8765_4456, Size4K}},
		{name: "PAE 2M with PDPTE from State", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP} }),
			setup: func(m *fakeMem) { m.put64(tPD+8*idx(0x4030_1234, 21), 0x7_FFE0_0000|ptePUW|PtePS) },
			want:  Translation{0x7_FFF0_1234, Size2M}},
		{name: "PAE PDPTE not present", la: 0x4030_1234, acc: AccessWrite,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{PteP, 0} }),
			fault: &Fault{0x4030_1234, PFWrite}},
		{name: "PAE PDPTE R/W bit reserved", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP | PteRW} }),
			fault: &Fault{0x4030_1234, PFPresent | PFReserved}},
		{name: "PAE PDPTE XD bit reserved", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP | PteXD} }),
			fault: &Fault{0x4030_1234, PFPresent | PFReserved}},
		{name: "PAE 2M bits 20:13 reserved", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP} }),
			setup: func(m *fakeMem) { m.put64(tPD+8*idx(0x4030_1234, 21), 0x7_FFE0_0000|1<<14|ptePUW|PtePS) },
			fault: &Fault{0x4030_1234, PFPresent | PFReserved}},
		{name: "PAE bits 62:52 reserved (unlike long mode)", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP} }),
			setup: func(m *fakeMem) { m.put64(tPD+8*idx(0x4030_1234, 21), 0x7_FFE0_0000|1<<60|ptePUW|PtePS) },
			fault: &Fault{0x4030_1234, PFPresent | PFReserved}},
		{name: "PAE XD reserved without NXE", la: 0x4030_1234,
			state: with(statePAE(), func(s *State) { s.EFER = 0; s.PDPTE = &[4]uint64{0, tPD | PteP} }),
			setup: func(m *fakeMem) { m.put64(tPD+8*idx(0x4030_1234, 21), 0x7_FFE0_0000|PteXD|ptePUW|PtePS) },
			fault: &Fault{0x4030_1234, PFPresent | PFReserved}},
		{name: "PAE XD blocks fetch", la: 0x4030_1234, acc: AccessFetch,
			state: with(statePAE(), func(s *State) { s.PDPTE = &[4]uint64{0, tPD | PteP} }),
			setup: func(m *fakeMem) { m.put64(tPD+8*idx(0x4030_1234, 21), 0x7_FFE0_0000|PteXD|ptePUW|PtePS) },
			fault: &Fault{0x4030_1234, PFPresent | PFFetch}},
		{name: "PAE PDPTE outside memory", la: 0x1000,
			state: with(statePAE(), func(s *State) { s.CR3 = 0xFFFF_FFE0 }), walker: Walker{},
			setup: func(m *fakeMem) { m.limit = 0xFFFF_F000 }, err: ErrTableOutsideMemory},

		// 4-level paging, Intel SDM vol 3A 4.5.
		{name: "4-level 4K", state: state4(), la: la4, acc: AccessWrite,
			setup: func(m *fakeMem) { lm4(m, la4, 0x3_4567_8000, ptePUW, ptePUW, ptePUW, ptePUW) },
			want:  Translation{0x3_4567_8ABC, Size4K}},
		{name: "4-level kernel half", state: state4(), la: 0xFFFF_8000_0010_2345,
			setup: func(m *fakeMem) { lm4(m, 0xFFFF_8000_0010_2345, 0x5000, ptePUW, ptePUW, ptePUW, ptePUW) },
			want:  Translation{0x5345, Size4K}},
		{name: "4-level 2M", state: state4(), la: la4,
			setup: func(m *fakeMem) {
				lm4(m, la4, 0, ptePUW, ptePUW, 0, 0)
				m.put64(tPD+8*idx(la4, 21), 0x2_0000_0000|ptePUW|PtePS|pteLargePAT)
			},
			want: Translation{0x2_0000_0000 | la4&(Size2M-1), Size2M}},
		{name: "4-level 1G", state: state4(), walker: Walker{Page1G: true}, la: la4,
			setup: func(m *fakeMem) {
				lm4(m, la4, 0, ptePUW, 0, 0, 0)
				m.put64(tPDPT+8*idx(la4, 30), 0x40_0000_0000|ptePUW|PtePS)
			},
			want: Translation{0x40_0000_0000 | la4&(Size1G-1), Size1G}},
		{name: "4-level 1G without 1G pages is reserved", state: state4(), la: la4,
			setup: func(m *fakeMem) {
				lm4(m, la4, 0, ptePUW, 0, 0, 0)
				m.put64(tPDPT+8*idx(la4, 30), 0x40_0000_0000|ptePUW|PtePS)
			},
			fault: &Fault{la4, PFPresent | PFReserved}},
		{name: "4-level 1G bits 29:13 reserved", state: state4(), walker: Walker{Page1G: true}, la: la4,
			setup: func(m *fakeMem) {
				lm4(m, la4, 0, ptePUW, 0, 0, 0)
				m.put64(tPDPT+8*idx(la4, 30), 0x40_0000_0000|1<<29|ptePUW|PtePS)
			},
			fault: &Fault{la4, PFPresent | PFReserved}},
		{name: "4-level PML4E PS reserved", state: state4(), la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW|PtePS, ptePUW, ptePUW, ptePUW) },
			fault: &Fault{la4, PFPresent | PFReserved}},
		{name: "4-level PML4E G ignored on Intel", state: state4(), la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW|PteG, ptePUW, ptePUW, ptePUW) },
			want:  Translation{0x5ABC, Size4K}},
		{name: "4-level PML4E bit 8 reserved on AMD", state: state4(), walker: Walker{Vendor: VendorAMD}, la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW|PteG, ptePUW, ptePUW, ptePUW) },
			fault: &Fault{la4, PFPresent | PFReserved}},
		{name: "4-level address bit at MAXPHYADDR reserved", state: state4(), la: la4, acc: AccessFetch,
			walker: Walker{PhysAddrBits: 36},
			setup:  func(m *fakeMem) { lm4(m, la4, 1<<36, ptePUW, ptePUW, ptePUW, ptePUW) },
			fault:  &Fault{la4, PFPresent | PFReserved | PFFetch}},
		{name: "4-level bits 62:52 ignored", state: state4(), la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW|1<<52, ptePUW|1<<62, ptePUW, ptePUW|0x3F<<53) },
			want:  Translation{0x5ABC, Size4K}},
		{name: "4-level XD reserved without NXE", state: with(state4(), func(s *State) { s.EFER &^= EFERNXE }), la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW, ptePUW|PteXD, ptePUW, ptePUW) },
			fault: &Fault{la4, PFPresent | PFReserved}},
		{name: "4-level non-present PML4E ignores reserved bits", state: state4(), la: la4,
			setup: func(m *fakeMem) { m.put64(tPML4+8*idx(la4, 39), ^uint64(PteP)) },
			fault: &Fault{la4, 0}},
		{name: "4-level non-canonical", state: state4(), la: 0x0000_8000_0000_0000, err: ErrNonCanonical},
		{name: "4-level CR3 PCID and high bits masked", state: with(state4(), func(s *State) { s.CR3 |= 0xABC | 1<<63 }), la: la4,
			setup: func(m *fakeMem) { lm4(m, la4, 0x5000, ptePUW, ptePUW, ptePUW, ptePUW) },
			want:  Translation{0x5ABC, Size4K}},
		{name: "4-level PT outside memory", state: state4(), la: la4,
			setup: func(m *fakeMem) {
				lm4(m, la4, 0x5000, ptePUW, ptePUW, ptePUW, ptePUW)
				m.put64(tPD+8*idx(la4, 21), 0x1_0000_0000|ptePUW)
			},
			err: ErrTableOutsideMemory},

		// 5-level paging, Intel SDM vol 3A 4.5.
		{name: "5-level 4K", state: state5(), la: la5,
			setup: func(m *fakeMem) {
				m.put64(tPML5+8*idx(la5, 48), tPML4|ptePUW)
				lm4(m, la5, 0x6000, ptePUW, ptePUW, ptePUW, ptePUW)
			},
			want: Translation{0x6ABC, Size4K}},
		{name: "5-level PML5E not present", state: state5(), la: la5, fault: &Fault{la5, 0}},
		{name: "5-level PML5E PS reserved", state: state5(), la: la5,
			setup: func(m *fakeMem) { m.put64(tPML5+8*idx(la5, 48), tPML4|ptePUW|PtePS) },
			fault: &Fault{la5, PFPresent | PFReserved}},
		{name: "5-level non-canonical", state: state5(), la: 0x0100_0000_0000_0000, err: ErrNonCanonical},
		{name: "4-level rejects 57-bit address", state: state4(), la: la5, err: ErrNonCanonical},
	})
}

// TestPermissions walks the access-rights rules of Intel SDM vol 3A 4.6
// (AMD APM vol 2 5.6) case by case under 4-level paging.
func TestPermissions(t *testing.T) {
	const la = 0x0000_0040_0020_3000
	type flags struct{ f4, f3, f2, f1 uint64 }
	user := flags{ptePUW, ptePUW, ptePUW, ptePUW}
	userRO := flags{ptePUW, ptePUW, ptePUW, PteP | PteUS}
	sup := flags{ptePUW, ptePUW, PteP | PteRW, ptePUW} // U/S clear at the PDE only
	supRO := flags{PteP, ptePUW, ptePUW, PteP}         // R/W clear in PML4E and PTE
	userXD := flags{ptePUW, ptePUW, ptePUW | PteXD, ptePUW}
	userKey5 := flags{ptePUW, ptePUW, ptePUW, ptePUW | 5<<pkeyShift}
	supKey5 := flags{ptePUW, ptePUW, PteP | PteRW, ptePUW | 5<<pkeyShift}
	const pkru5AD, pkru5WD = 1 << 10, 1 << 11

	type st struct {
		cpl                uint8
		wp, smep, smap, ac bool
		nxe                bool
		pkru               uint32
	}
	base := st{wp: true, nxe: true}
	cpl3 := base
	cpl3.cpl = 3
	mod := func(s st, f func(*st)) st { f(&s); return s }
	const ok = ErrorCode(0xFFFF) // marker: access allowed

	for _, tc := range []struct {
		name string
		f    flags
		s    st
		acc  Access
		want ErrorCode
	}{
		{"user reads user page", user, cpl3, 0, ok},
		{"user writes user page", user, cpl3, AccessWrite, ok},
		{"user reads supervisor page", sup, cpl3, 0, PFPresent | PFUser},
		{"user writes read-only page", userRO, cpl3, AccessWrite, PFPresent | PFWrite | PFUser},
		{"user write ignores WP=0", userRO, mod(cpl3, func(s *st) { s.wp = false }), AccessWrite, PFPresent | PFWrite | PFUser},
		{"user write to RW=0 in PML4E", flags{PteP | PteUS, ptePUW, ptePUW, ptePUW}, cpl3, AccessWrite, PFPresent | PFWrite | PFUser},
		{"supervisor writes read-only with WP=1", supRO, base, AccessWrite, PFPresent | PFWrite},
		{"supervisor writes read-only with WP=0", supRO, mod(base, func(s *st) { s.wp = false }), AccessWrite, ok},
		{"supervisor writes read-only user page, WP=1", userRO, base, AccessWrite, PFPresent | PFWrite},
		{"supervisor reads user page without SMAP", user, base, 0, ok},
		{"SMAP blocks supervisor read, AC=0", user, mod(base, func(s *st) { s.smap = true }), 0, PFPresent},
		{"SMAP allows supervisor read, AC=1", user, mod(base, func(s *st) { s.smap, s.ac = true, true }), 0, ok},
		{"SMAP blocks supervisor write, AC=0", user, mod(base, func(s *st) { s.smap = true }), AccessWrite, PFPresent | PFWrite},
		{"SMAP allows supervisor write, AC=1", user, mod(base, func(s *st) { s.smap, s.ac = true, true }), AccessWrite, ok},
		{"SMAP blocks implicit access despite AC=1", user, mod(base, func(s *st) { s.smap, s.ac = true, true }), AccessImplicit, PFPresent},
		{"SMAP blocks implicit access at CPL3", user, mod(cpl3, func(s *st) { s.smap, s.ac = true, true }), AccessImplicit, PFPresent},
		{"implicit access at CPL3 reaches supervisor page", sup, cpl3, AccessImplicit, ok},
		{"implicit write at CPL3 honours WP", supRO, cpl3, AccessImplicit | AccessWrite, PFPresent | PFWrite},
		{"SMAP does not affect supervisor pages", sup, mod(base, func(s *st) { s.smap = true }), AccessWrite, ok},
		{"supervisor fetch from user page without SMEP", user, base, AccessFetch, ok},
		{"SMEP blocks supervisor fetch from user page", user, mod(base, func(s *st) { s.smep = true }), AccessFetch, PFPresent | PFFetch},
		{"SMEP ignores AC", user, mod(base, func(s *st) { s.smep, s.ac = true, true }), AccessFetch, PFPresent | PFFetch},
		{"SMEP allows user fetch", user, mod(cpl3, func(s *st) { s.smep = true }), AccessFetch, ok},
		{"XD blocks supervisor fetch", userXD, base, AccessFetch, PFPresent | PFFetch},
		{"XD blocks user fetch", userXD, cpl3, AccessFetch, PFPresent | PFUser | PFFetch},
		{"XD does not block reads", userXD, cpl3, 0, ok},
		{"user fetch from supervisor page", sup, cpl3, AccessFetch, PFPresent | PFUser | PFFetch},
		{"fetch is not a write", supRO, base, AccessFetch | AccessWrite, ok},
		{"no I/D without NXE and SMEP", flags{ptePUW, ptePUW, ptePUW, PteP}, mod(cpl3, func(s *st) { s.nxe = false }), AccessFetch, PFPresent | PFUser},
		{"not-present PTE keeps W and U", flags{ptePUW, ptePUW, ptePUW, 0}, cpl3, AccessWrite, PFWrite | PFUser},
		{"PK access-disable blocks user read", userKey5, mod(cpl3, func(s *st) { s.pkru = pkru5AD }), 0, PFPresent | PFUser | PFProtKey},
		{"PK access-disable blocks supervisor read of user page", userKey5, mod(base, func(s *st) { s.pkru = pkru5AD }), 0, PFPresent | PFProtKey},
		{"PK write-disable allows read", userKey5, mod(cpl3, func(s *st) { s.pkru = pkru5WD }), 0, ok},
		{"PK write-disable blocks user write", userKey5, mod(cpl3, func(s *st) { s.pkru = pkru5WD }), AccessWrite, PFPresent | PFWrite | PFUser | PFProtKey},
		{"PK write-disable blocks supervisor write with WP", userKey5, mod(base, func(s *st) { s.pkru = pkru5WD }), AccessWrite, PFPresent | PFWrite | PFProtKey},
		{"PK write-disable ignored for supervisor with WP=0", userKey5, mod(base, func(s *st) { s.pkru, s.wp = pkru5WD, false }), AccessWrite, ok},
		{"PK does not govern fetches", userKey5, mod(cpl3, func(s *st) { s.pkru = pkru5AD }), AccessFetch, ok},
		{"PK does not govern supervisor pages", supKey5, mod(base, func(s *st) { s.pkru = pkru5AD | pkru5WD }), AccessWrite, ok},
		{"PK other key unaffected", userKey5, mod(cpl3, func(s *st) { s.pkru = 0xFFFF_FFFF &^ (3 << 10) }), AccessWrite, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMem(1 << 32)
			lm4(m, la, 0x7000, tc.f.f4, tc.f.f3, tc.f.f2, tc.f.f1)
			s := state4()
			s.CPL = tc.s.cpl
			s.PKRU = tc.s.pkru
			if !tc.s.wp {
				s.CR0 &^= CR0WP
			}
			if tc.s.smep {
				s.CR4 |= CR4SMEP
			}
			if tc.s.smap {
				s.CR4 |= CR4SMAP
			}
			if tc.s.pkru != 0 {
				s.CR4 |= CR4PKE
			}
			if tc.s.ac {
				s.RFLAGS |= RFLAGSAC
			}
			if !tc.s.nxe {
				s.EFER &^= EFERNXE
			}
			w := Walker{Mem: m, PhysAddrBits: 46}
			got, err := w.Translate(&s, la, tc.acc)
			if tc.want == ok {
				if err != nil {
					t.Fatalf("Translate: %v, want success", err)
				}
				if got.GPA != 0x7000 {
					t.Errorf("GPA = %#x, want 0x7000", got.GPA)
				}
				return
			}
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("Translate = %+v, %v; want #PF code %#x", got, err, tc.want)
			}
			if f.Code != tc.want || f.Addr != la {
				t.Errorf("fault = {%#x, %#x}, want {%#x, %#x}", f.Addr, f.Code, uint64(la), tc.want)
			}
		})
	}
}

// TestPermissions32 covers the two older modes, where execute protection is
// partial (32-bit: SMEP only) and U/S and R/W come from fewer levels.
func TestPermissions32(t *testing.T) {
	const la = 0x0040_3ABC
	setup32 := func(pde, pte uint32) func(*fakeMem) {
		return func(m *fakeMem) {
			m.put32(tPML4+4*1, tPT|pde)
			m.put32(tPT+4*3, 0x5000|pte)
		}
	}
	cpl3 := func(s *State) { s.CPL = 3 }
	runWalkCases(t, []walkCase{
		{name: "32-bit user write to RW=0 PDE", state: with(state32(), cpl3), la: la, acc: AccessWrite,
			setup: setup32(uint32(PteP|PteUS), uint32(ptePUW)), fault: &Fault{la, PFPresent | PFWrite | PFUser}},
		{name: "32-bit user fetch from supervisor PTE, no I/D", state: with(state32(), cpl3), la: la, acc: AccessFetch,
			setup: setup32(uint32(ptePUW), uint32(PteP)), fault: &Fault{la, PFPresent | PFUser}},
		{name: "32-bit SMEP sets I/D", state: with(state32(), func(s *State) { s.CR4 |= CR4SMEP }), la: la, acc: AccessFetch,
			setup: setup32(uint32(ptePUW), uint32(ptePUW)), fault: &Fault{la, PFPresent | PFFetch}},
		{name: "32-bit has no XD: bit 31 of the PTE is address", state: state32(), la: la, acc: AccessFetch,
			setup: setup32(uint32(ptePUW), 0x8000_0000|uint32(ptePUW)), want: Translation{0x8000_5ABC, Size4K}},
		{name: "32-bit ignores PKE", state: with(state32(), func(s *State) { s.CR4 |= CR4PKE; s.PKRU = ^uint32(0); s.CPL = 3 }), la: la,
			setup: setup32(uint32(ptePUW), uint32(ptePUW)), want: Translation{0x5ABC, Size4K}},
		{name: "PAE user write through read-only PDE", la: la, acc: AccessWrite,
			state: with(statePAE(), func(s *State) { s.CPL = 3; s.PDPTE = &[4]uint64{tPD | PteP} }),
			setup: func(m *fakeMem) {
				m.put64(tPD+8*idx(la, 21), tPT|PteP|PteUS)
				m.put64(tPT+8*idx(la, 12), 0x5000|ptePUW)
			},
			fault: &Fault{la, PFPresent | PFWrite | PFUser}},
		{name: "PAE ignores PKE", la: la, acc: AccessWrite,
			state: with(statePAE(), func(s *State) {
				s.CPL = 3
				s.CR4 |= CR4PKE
				s.PKRU = ^uint32(0)
				s.PDPTE = &[4]uint64{tPD | PteP}
			}),
			setup: func(m *fakeMem) {
				m.put64(tPD+8*idx(la, 21), tPT|ptePUW)
				m.put64(tPT+8*idx(la, 12), 0x5000|ptePUW|5<<pkeyShift&bits(51, 46))
			},
			want: Translation{0x5ABC, Size4K}},
	})
}

func TestAccessedDirty(t *testing.T) {
	const la = 0x0000_7F12_3456_7ABC
	for _, tc := range []struct {
		name      string
		acc       Access
		setAD     bool
		fault     bool
		wantA     [4]bool
		wantDLeaf bool
	}{
		{"read sets A everywhere", 0, true, false, [4]bool{true, true, true, true}, false},
		{"write sets D in leaf", AccessWrite, true, false, [4]bool{true, true, true, true}, true},
		{"disabled leaves entries alone", AccessWrite, false, false, [4]bool{}, false},
		{"fault leaves entries alone", AccessWrite | AccessFetch, true, true, [4]bool{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMem(1 << 32)
			leaf := uint64(ptePUW)
			if tc.fault {
				leaf |= PteXD
			}
			lm4(m, la, 0x5000, ptePUW, ptePUW, ptePUW, leaf)
			w := Walker{Mem: m, SetAccessedDirty: tc.setAD}
			s := state4()
			_, err := w.Translate(&s, la, tc.acc)
			if (err != nil) != tc.fault {
				t.Fatalf("Translate: %v, want fault %v", err, tc.fault)
			}
			gpas := [4]uint64{tPML4 + 8*idx(la, 39), tPDPT + 8*idx(la, 30), tPD + 8*idx(la, 21), tPT + 8*idx(la, 12)}
			for i, g := range gpas {
				e := m.get64(g)
				if got := e&PteA != 0; got != tc.wantA[i] {
					t.Errorf("level %d A = %v, want %v", i, got, tc.wantA[i])
				}
				if i < 3 && e&PteD != 0 {
					t.Errorf("level %d: D set in a non-leaf entry", i)
				}
			}
			if got := m.get64(gpas[3])&PteD != 0; got != tc.wantDLeaf {
				t.Errorf("leaf D = %v, want %v", got, tc.wantDLeaf)
			}
		})
	}

	t.Run("32-bit entries are written as 4 bytes", func(t *testing.T) {
		m := newFakeMem(1 << 32)
		m.put32(tPML4+4*1, tPT|uint32(ptePUW))
		m.put32(tPT+4*3, 0x5000|uint32(ptePUW))
		m.put32(tPT+4*4, 0xDEADBEEF) // the neighbour must survive
		w := Walker{Mem: m, SetAccessedDirty: true}
		s := state32()
		if _, err := w.Translate(&s, 0x0040_3ABC, AccessWrite); err != nil {
			t.Fatal(err)
		}
		if got, want := m.get32(tPT+4*3), 0x5000|uint32(ptePUW|PteA|PteD); got != want {
			t.Errorf("PTE = %#x, want %#x", got, want)
		}
		if got := m.get32(tPT + 4*4); got != 0xDEADBEEF {
			t.Errorf("neighbour PTE = %#x, clobbered", got)
		}
		if got, want := m.get32(tPML4+4*1), tPT|uint32(ptePUW|PteA); got != want {
			t.Errorf("PDE = %#x, want %#x", got, want)
		}
	})
}

func TestTranslateDoesNotAllocate(t *testing.T) {
	const la = 0x0000_7F12_3456_7ABC
	m := newFakeMem(1 << 32)
	lm4(m, la, 0x5000, ptePUW, ptePUW, ptePUW, ptePUW)
	w := Walker{Mem: m, SetAccessedDirty: true}
	s := state4()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := w.Translate(&s, la, AccessWrite); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Translate allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkTranslate4Level(b *testing.B) {
	const la = 0x0000_7F12_3456_7ABC
	m := newFakeMem(1 << 32)
	lm4(m, la, 0x5000, ptePUW, ptePUW, ptePUW, ptePUW)
	w := Walker{Mem: m}
	s := state4()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Translate(&s, la, 0); err != nil {
			b.Fatal(err)
		}
	}
}
