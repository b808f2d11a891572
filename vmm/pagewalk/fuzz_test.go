package pagewalk

import (
	"encoding/binary"
	"errors"
	"testing"
)

type refOutcome struct {
	kind int // 0 ok, 1 #PF, 2 outside memory, 3 non-canonical
	gpa  uint64
	size uint64
	code ErrorCode
}

// refTranslate is a deliberately plain reading of Intel SDM vol 3A chapter 4
// used to cross-check the walker: one explicit step per mode and level,
// no shared loop, rights recomputed from the list of entries used.
func refTranslate(mem *fakeMem, feat Walker, s State, la uint64, acc Access) refOutcome {
	maxPA := uint(feat.PhysAddrBits)
	fetch := acc&AccessFetch != 0
	write := acc&AccessWrite != 0 && !fetch
	user := s.CPL == 3 && acc&AccessImplicit == 0
	nxe := s.EFER&EFERNXE != 0

	var code ErrorCode
	if write {
		code |= PFWrite
	}
	if user {
		code |= PFUser
	}
	if fetch && (s.CR4&CR4SMEP != 0 || (s.CR4&CR4PAE != 0 && nxe)) {
		code |= PFFetch
	}
	notPresent := refOutcome{kind: 1, code: code}
	reserved := refOutcome{kind: 1, code: code | PFPresent | PFReserved}

	rd := func(gpa uint64, n int) (uint64, bool) {
		var b [8]byte
		if mem.ReadPhys(gpa, b[:n]) != nil {
			return 0, false
		}
		return binary.LittleEndian.Uint64(b[:]), true
	}
	isSet := func(e uint64, bit uint) bool { return e>>bit&1 == 1 }
	anyIn := func(e uint64, hi, lo uint) bool {
		for b := lo; b <= hi; b++ {
			if isSet(e, b) {
				return true
			}
		}
		return false
	}

	if s.CR0&CR0PG == 0 {
		return refOutcome{gpa: la & 0xFFFFFFFF, size: 4096}
	}

	var used []uint64 // entries whose R/W, U/S, XD count
	var gpa, size uint64
	longMode := false
	switch {
	case s.CR4&CR4PAE == 0: // 32-bit paging
		la &= 0xFFFFFFFF
		notPresent.code, reserved.code = code, code|PFPresent|PFReserved
		pde, ok := rd((s.CR3>>12<<12)&0xFFFFFFFF+(la>>22)*4, 4)
		if !ok {
			return refOutcome{kind: 2}
		}
		if !isSet(pde, 0) {
			return refOutcome{kind: 1, code: code}
		}
		used = append(used, pde)
		if isSet(pde, 7) && s.CR4&CR4PSE != 0 {
			top := uint(32)
			if feat.PSE36 {
				top = min(maxPA, 40)
			}
			if isSet(pde, 21) || (top < 40 && anyIn(pde, 20, 13+top-32)) {
				return refOutcome{kind: 1, code: code | PFPresent | PFReserved}
			}
			gpa = (pde>>22)<<22 | (pde>>13&0xFF)<<32 | la&0x3FFFFF
			size = 4 << 20
		} else {
			pte, ok := rd(pde>>12<<12+(la>>12&0x3FF)*4, 4)
			if !ok {
				return refOutcome{kind: 2}
			}
			if !isSet(pte, 0) {
				return refOutcome{kind: 1, code: code}
			}
			used = append(used, pte)
			gpa = pte>>12<<12 | la&0xFFF
			size = 4096
		}
	default:
		addr := func(e uint64) uint64 { return e & (1<<maxPA - 1) &^ 0xFFF }
		rsvdHigh := func(e uint64, pae bool) bool {
			top := uint(51)
			if pae {
				top = 62
			}
			if maxPA <= top && anyIn(e, top, maxPA) {
				return true
			}
			return !nxe && isSet(e, 63)
		}
		var table uint64
		var shifts []uint
		pae := s.EFER&EFERLMA == 0
		if pae {
			la &= 0xFFFFFFFF
			var pdpte uint64
			if s.PDPTE != nil {
				pdpte = s.PDPTE[la>>30]
			} else {
				var ok bool
				pdpte, ok = rd(s.CR3&0xFFFFFFE0+(la>>30)*8, 8)
				if !ok {
					return refOutcome{kind: 2}
				}
			}
			if !isSet(pdpte, 0) {
				return notPresent
			}
			if anyIn(pdpte, 63, maxPA) || anyIn(pdpte, 8, 5) || anyIn(pdpte, 2, 1) {
				return reserved
			}
			table = addr(pdpte)
			shifts = []uint{21, 12}
		} else {
			longMode = true
			bitsLA := uint(48)
			shifts = []uint{39, 30, 21, 12}
			if s.CR4&CR4LA57 != 0 {
				bitsLA = 57
				shifts = append([]uint{48}, shifts...)
			}
			for b := bitsLA; b < 64; b++ {
				if la>>b&1 != la>>(bitsLA-1)&1 {
					return refOutcome{kind: 3}
				}
			}
			table = addr(s.CR3)
		}
		for _, sh := range shifts {
			e, ok := rd(table+(la>>sh&511)*8, 8)
			if !ok {
				return refOutcome{kind: 2}
			}
			if !isSet(e, 0) {
				return notPresent
			}
			if rsvdHigh(e, pae) {
				return reserved
			}
			used = append(used, e)
			ps := isSet(e, 7)
			switch {
			case sh >= 39 && (ps || (feat.Vendor == VendorAMD && isSet(e, 8))):
				return reserved
			case sh == 30 && ps && (!feat.Page1G || anyIn(e, 29, 13)):
				return reserved
			case sh == 21 && ps && anyIn(e, 20, 13):
				return reserved
			}
			if sh == 12 || ((sh == 30 || sh == 21) && ps) {
				size = 1 << sh
				gpa = addr(e)&^(size-1) | la&(size-1)
				break
			}
			table = addr(e)
		}
	}

	allRW, allUS, anyXD := true, true, false
	for _, e := range used {
		allRW = allRW && isSet(e, 1)
		allUS = allUS && isSet(e, 2)
		anyXD = anyXD || (s.CR4&CR4PAE != 0 && nxe && isSet(e, 63))
	}
	wp := s.CR0&CR0WP != 0
	smapExempt := acc&AccessImplicit == 0 && s.CPL < 3 && s.RFLAGS&RFLAGSAC != 0
	var denied bool
	if fetch {
		denied = (user && !allUS) || (!user && allUS && s.CR4&CR4SMEP != 0) || anyXD
	} else {
		denied = (user && !allUS) ||
			(!user && allUS && s.CR4&CR4SMAP != 0 && !smapExempt) ||
			(write && !allRW && (user || wp))
	}
	pkFault := false
	if longMode && !fetch && allUS && s.CR4&CR4PKE != 0 {
		key := used[len(used)-1] >> 59 & 15
		if s.PKRU>>(2*key)&1 == 1 || (write && s.PKRU>>(2*key+1)&1 == 1 && (user || wp)) {
			pkFault = true
		}
	}
	if denied || pkFault {
		c := code | PFPresent
		if pkFault {
			c |= PFProtKey
		}
		return refOutcome{kind: 1, code: c}
	}
	return refOutcome{gpa: gpa, size: size}
}

func FuzzTranslate(f *testing.F) {
	// A seed with a valid 4-level chain at the start of the aliased pages.
	seed := make([]byte, 4*Size4K)
	binary.LittleEndian.PutUint64(seed[0:], 0x1000|ptePUW)
	binary.LittleEndian.PutUint64(seed[Size4K:], 0x2000|ptePUW)
	binary.LittleEndian.PutUint64(seed[2*Size4K:], 0x3000|ptePUW)
	binary.LittleEndian.PutUint64(seed[3*Size4K:], 0x5000|ptePUW)
	f.Add(uint64(1<<0|1<<2|1<<8), uint64(3), uint64(0x123), seed[:])
	f.Add(uint64(1<<8|0x7), uint64(0xFF), uint64(0xFFFF_8000_0000_0000), seed[:64])
	f.Add(^uint64(0), uint64(2), uint64(0x4000_0000), []byte{0x83, 0x10, 0, 0, 0, 0, 0, 0x80})

	f.Fuzz(func(t *testing.T, cfg, cfg2, la uint64, data []byte) {
		mem := newFakeMem(1 << (32 + cfg2>>60)) // 4 GiB .. 128 TiB of "RAM"
		mem.alias = 4
		for i := 0; i < len(data) && i < 4*Size4K; i++ {
			mem.page(uint64(i))[i&0xFFF] = data[i]
		}
		bit := func(n uint) bool { return cfg>>n&1 == 1 }
		pick := func(n uint, v uint64) uint64 {
			if bit(n) {
				return v
			}
			return 0
		}
		s := State{
			CR0: CR0PE | pick(0, CR0PG) | pick(1, CR0WP),
			CR3: cfg2 & 0x0FFF_FFFF_FFFF_FFFF,
			CR4: pick(2, CR4PAE) | pick(3, CR4PSE) | pick(4, CR4LA57) | pick(5, CR4SMEP) |
				pick(6, CR4SMAP) | pick(7, CR4PKE),
			EFER:   pick(8, EFERLMA|EFERLME) | pick(9, EFERNXE),
			RFLAGS: pick(10, RFLAGSAC),
			CPL:    uint8(cfg >> 11 & 3),
			PKRU:   uint32(cfg >> 32),
		}
		if bit(13) {
			s.PDPTE = &[4]uint64{cfg2, cfg2 ^ la, la, ^cfg2}
		}
		acc := Access(cfg>>14) & (AccessWrite | AccessFetch | AccessImplicit)
		feat := Walker{
			PhysAddrBits: uint8(32 + cfg>>17%21), // 32..52
			Page1G:       bit(22),
			PSE36:        bit(23),
			Vendor:       Vendor(cfg >> 24 & 1),
		}
		want := refTranslate(mem, feat, s, la, acc)

		w := feat
		w.Mem = mem
		got, err := w.Translate(&s, la, acc)
		var f *Fault
		switch {
		case err == nil:
			if want.kind != 0 || got.GPA != want.gpa || got.PageSize != want.size {
				t.Fatalf("Translate = %+v, want %+v (state %+v)", got, want, s)
			}
		case errors.As(err, &f):
			if want.kind != 1 || f.Code != want.code {
				t.Fatalf("Translate = fault code %#x, want %+v (state %+v)", f.Code, want, s)
			}
		case errors.Is(err, ErrTableOutsideMemory):
			if want.kind != 2 {
				t.Fatalf("Translate = %v, want %+v", err, want)
			}
		case errors.Is(err, ErrNonCanonical):
			if want.kind != 3 {
				t.Fatalf("Translate = %v, want %+v", err, want)
			}
		default:
			t.Fatalf("Translate: unexpected error %v", err)
		}

		// Setting A/D must not panic either.
		w.SetAccessedDirty = true
		_, _ = w.Translate(&s, la, acc)
	})
}
