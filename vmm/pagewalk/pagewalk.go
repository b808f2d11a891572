// Package pagewalk translates a guest linear address to a guest physical
// address the way the guest's own MMU would, for every x86 paging mode:
// paging off, 32-bit paging (with PSE and PSE-36), PAE, and 4- and 5-level
// long-mode paging. It applies the full permission rules of Intel SDM vol 3A
// 4.6 and AMD APM vol 2 5.6 and, when the walk fails, describes the #PF the
// guest must see, with its exact error code.
//
// Boundary: the package reads (and, when asked to set accessed and dirty
// flags, writes) guest physical memory only through Memory. It knows nothing
// about segmentation, vendors or exits; callers hand it the guest's control
// registers in a State. A page table that points outside guest memory is not
// a guest-visible fault but a hostile or broken guest; the walker reports it
// as an error wrapping ErrTableOutsideMemory so the VMM can stop the VM.
package pagewalk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Memory is guest physical memory as the walker needs it. Both methods
// return an error when any byte of [gpa, gpa+len(p)) lies outside guest RAM.
type Memory interface {
	ReadPhys(gpa uint64, p []byte) error
	WritePhys(gpa uint64, p []byte) error
}

// ErrTableOutsideMemory is wrapped by the error Translate returns when a
// paging-structure entry (or CR3) points outside guest memory.
var ErrTableOutsideMemory = errors.New("paging structure outside guest memory")

// ErrNonCanonical is returned for a linear address that is not canonical in
// 4- or 5-level paging. The processor raises #GP(0) or #SS(0) for it before
// any page walk (Intel SDM vol 3A 3.3.7.1), so it is not a page fault.
var ErrNonCanonical = errors.New("pagewalk: non-canonical linear address")

// Vendor selects the few places where AMD and Intel check different bits.
type Vendor uint8

const (
	// VendorIntel follows Intel SDM vol 3A chapter 4.
	VendorIntel Vendor = iota
	// VendorAMD follows AMD APM vol 2 chapter 5: bit 8 of a PML4E or PML5E
	// is reserved (must be zero) in addition to the Intel rules.
	VendorAMD
)

// Mode is a paging mode, derived from CR0, CR4 and EFER.
type Mode uint8

const (
	ModeOff    Mode = iota // CR0.PG=0: linear equals physical
	Mode32                 // 32-bit paging
	ModePAE                // PAE paging
	ModeLevel4             // 4-level paging (IA-32e)
	ModeLevel5             // 5-level paging (IA-32e with CR4.LA57)
	numModes
)

var modeNames = [numModes]string{"off", "32-bit", "PAE", "4-level", "5-level"}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ModeOf returns the paging mode selected by the control registers,
// following Intel SDM vol 3A 4.1.1 (Table 4-1). EFER.LMA, not LME, decides
// long mode, as it does in hardware.
func ModeOf(cr0, cr4, efer uint64) Mode {
	switch {
	case cr0&CR0PG == 0:
		return ModeOff
	case cr4&CR4PAE == 0:
		return Mode32
	case efer&EFERLMA == 0:
		return ModePAE
	case cr4&CR4LA57 != 0:
		return ModeLevel5
	default:
		return ModeLevel4
	}
}

// State is the part of a vCPU's state that decides a translation.
type State struct {
	CR0, CR3, CR4, EFER uint64
	// RFLAGS is consulted for AC only (SMAP).
	RFLAGS uint64
	// CPL is the current privilege level, 0..3.
	CPL uint8
	// PKRU is the protection-key rights register, used when CR4.PKE=1.
	PKRU uint32
	// PDPTE holds the four PAE page-directory-pointer-table entries the
	// processor loaded with CR3 (Intel SDM vol 3A 4.4.1: they are not
	// re-read on a walk). When nil, the walker reads them from memory at
	// CR3[31:5], which is what AMD processors with nested paging do.
	PDPTE *[4]uint64
}

// Access describes the access being translated.
type Access uint8

const (
	// AccessWrite is a data write (a read-modify-write counts as a write).
	AccessWrite Access = 1 << iota
	// AccessFetch is an instruction fetch.
	AccessFetch
	// AccessImplicit is an implicit supervisor-mode access (descriptor
	// tables, TSS, shadow stack of another level): a supervisor access
	// even at CPL 3, and never exempted from SMAP by RFLAGS.AC.
	// Intel SDM vol 3A 4.6.
	AccessImplicit
)

// ErrorCode is a #PF error code.
type ErrorCode uint32

// Fault is a page fault to inject into the guest: vector 14 with Code as
// the error code and Addr loaded into CR2.
type Fault struct {
	Addr uint64
	Code ErrorCode
}

func (f *Fault) Error() string {
	return fmt.Sprintf("pagewalk: #PF at %#x, error code %#x", f.Addr, uint32(f.Code))
}

// Translation is a successful translation.
type Translation struct {
	GPA uint64
	// PageSize is the size of the page that maps the address (4 KiB with
	// paging off). The translation holds for the rest of that page.
	PageSize uint64
}

// Walker translates addresses for one vCPU. It is not safe for concurrent
// use: it keeps a scratch buffer so that a walk does not allocate.
type Walker struct {
	Mem Memory
	// PhysAddrBits is the guest's MAXPHYADDR (CPUID 0x80000008 EAX[7:0]);
	// address bits at or above it are reserved in paging entries. Zero
	// means 52, the architectural maximum.
	PhysAddrBits uint8
	// Page1G says whether 1-GiB pages exist (CPUID 0x80000001 EDX[26]);
	// without them PS in a PDPTE is a reserved bit.
	Page1G bool
	// PSE36 says whether 4-MiB pages of 32-bit paging reach above 4 GiB
	// (CPUID 1 EDX[17]).
	PSE36 bool
	// Vendor selects vendor-specific reserved bits.
	Vendor Vendor
	// SetAccessedDirty makes a successful walk set the accessed flag in
	// every paging-structure entry it used and, for a write, the dirty flag
	// in the leaf, as the processor does (Intel SDM vol 3A 4.8). Entries are
	// written back with plain stores, not locked read-modify-write, so a
	// concurrent update by another vCPU between our read and write can be
	// lost; flags are only set after the access is known to be allowed.
	SetAccessedDirty bool

	buf [8]byte
}

// maxLevels is the depth of the deepest walk (5-level paging).
const maxLevels = 5

// walk is the bookkeeping of one walk, kept on the stack.
type walk struct {
	entryGPA  [maxLevels]uint64
	entry     [maxLevels]uint64
	levels    int
	entrySize int // 4 or 8 bytes
}

// Translate translates linear address la for access acc in state s.
// On a page fault it returns a *Fault; when a paging structure lies outside
// guest memory, an error wrapping ErrTableOutsideMemory and the Memory error;
// for a non-canonical address under long-mode paging, ErrNonCanonical.
func (w *Walker) Translate(s *State, la uint64, acc Access) (Translation, error) {
	mode := ModeOf(s.CR0, s.CR4, s.EFER)
	if mode == ModeOff {
		// Without paging, linear addresses are 32 bits wide (long mode
		// requires paging). Intel SDM vol 3A 4.1.1.
		return Translation{GPA: la & 0xFFFF_FFFF, PageSize: Size4K}, nil
	}
	m := w.physBits()
	if mode == Mode32 {
		return w.walk32(s, la&0xFFFF_FFFF, acc, m)
	}
	return w.walk64(s, mode, la, acc, m)
}

func (w *Walker) physBits() uint {
	if w.PhysAddrBits == 0 || w.PhysAddrBits > MaxPhysAddrBits {
		return MaxPhysAddrBits
	}
	return uint(w.PhysAddrBits)
}

func (w *Walker) read(gpa uint64, size int, level string) (uint64, error) {
	b := w.buf[:size]
	if err := w.Mem.ReadPhys(gpa, b); err != nil {
		return 0, fmt.Errorf("pagewalk: read %s at gpa %#x: %w: %w", level, gpa, ErrTableOutsideMemory, err)
	}
	if size == 4 {
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (w *Walker) write(gpa uint64, size int, v uint64) error {
	b := w.buf[:size]
	if size == 4 {
		binary.LittleEndian.PutUint32(b, uint32(v))
	} else {
		binary.LittleEndian.PutUint64(b, v)
	}
	if err := w.Mem.WritePhys(gpa, b); err != nil {
		return fmt.Errorf("pagewalk: set accessed/dirty at gpa %#x: %w: %w", gpa, ErrTableOutsideMemory, err)
	}
	return nil
}

// walk32 implements 32-bit paging, Intel SDM vol 3A 4.3.
func (w *Walker) walk32(s *State, la uint64, acc Access, m uint) (Translation, error) {
	var wk walk
	wk.entrySize = 4
	pdeGPA := s.CR3&0xFFFF_F000 | (la>>22)<<2
	pde, err := w.read(pdeGPA, 4, "PDE")
	if err != nil {
		return Translation{}, err
	}
	wk.entryGPA[0], wk.entry[0], wk.levels = pdeGPA, pde, 1
	if pde&PteP == 0 {
		return Translation{}, w.fault(s, la, acc, 0)
	}
	if pde&PtePS != 0 && s.CR4&CR4PSE != 0 {
		// A 4-MiB page: bits 20:13 carry physical-address bits 39:32 when
		// PSE-36 is present; the rest up to bit 21 are reserved.
		pm := uint(32)
		if w.PSE36 {
			pm = min(m, pse36Bits)
		}
		if pde&bits(21, pm-19) != 0 {
			return Translation{}, w.fault(s, la, acc, PFReserved|PFPresent)
		}
		base := pde&0xFFC0_0000 | (pde>>13&0xFF)<<32
		return w.finish(s, la, acc, &wk, base|la&(Size4M-1), Size4M, 0)
	}
	pteGPA := pde&0xFFFF_F000 | (la>>12&0x3FF)<<2
	pte, err := w.read(pteGPA, 4, "PTE")
	if err != nil {
		return Translation{}, err
	}
	wk.entryGPA[1], wk.entry[1], wk.levels = pteGPA, pte, 2
	if pte&PteP == 0 {
		return Translation{}, w.fault(s, la, acc, 0)
	}
	return w.finish(s, la, acc, &wk, pte&0xFFFF_F000|la&(Size4K-1), Size4K, 0)
}

// walk64 implements PAE paging (Intel SDM vol 3A 4.4) and 4- and 5-level
// paging (4.5), which share the 8-byte entry format.
func (w *Walker) walk64(s *State, mode Mode, la uint64, acc Access, m uint) (Translation, error) {
	var wk walk
	wk.entrySize = 8
	nxe := s.EFER&EFERNXE != 0
	addrMask := bits(m-1, 12)

	var table uint64 // physical address of the next table
	var shift uint   // bit position of the current level's index
	switch mode {
	case ModePAE:
		la &= 0xFFFF_FFFF
		// PAE PDPTEs: bits 2:1, 8:5 and 63:M are reserved, and there is no
		// XD bit. Intel SDM vol 3A 4.4.1 (Table 4-8).
		idx := la >> 30
		var pdpte uint64
		if s.PDPTE != nil {
			pdpte = s.PDPTE[idx]
		} else {
			gpa := s.CR3&0xFFFF_FFE0 | idx<<3
			e, err := w.read(gpa, 8, "PDPTE")
			if err != nil {
				return Translation{}, err
			}
			pdpte = e
		}
		if pdpte&PteP == 0 {
			return Translation{}, w.fault(s, la, acc, 0)
		}
		if pdpte&(bits(63, m)|bits(8, 5)|bits(2, 1)) != 0 {
			return Translation{}, w.fault(s, la, acc, PFReserved|PFPresent)
		}
		// The PDPTE carries no R/W, U/S or XD: it neither grants nor
		// restricts, so it stays out of the permission bookkeeping.
		table = pdpte & addrMask
		shift = 21
	case ModeLevel4, ModeLevel5:
		width := uint(48)
		shift = 39
		if mode == ModeLevel5 {
			width, shift = 57, 48
		}
		if !canonical(la, width) {
			return Translation{}, ErrNonCanonical
		}
		table = s.CR3 & addrMask
	}

	// Reserved address bits: 51:M under long-mode paging (62:52 are
	// ignored), 62:M under PAE. Bit 63 is reserved unless EFER.NXE=1.
	highRsvd := bits(51, m)
	if mode == ModePAE {
		highRsvd = bits(62, m)
	}
	if !nxe {
		highRsvd |= PteXD
	}

	for {
		gpa := table | (la>>shift&0x1FF)<<3
		e, err := w.read(gpa, 8, levelName(mode, shift))
		if err != nil {
			return Translation{}, err
		}
		wk.entryGPA[wk.levels], wk.entry[wk.levels] = gpa, e
		wk.levels++
		if e&PteP == 0 {
			return Translation{}, w.fault(s, la, acc, 0)
		}
		rsvd := highRsvd
		leaf := shift == 12
		switch shift {
		case 48, 39: // PML5E, PML4E: PS is reserved
			rsvd |= PtePS
			if w.Vendor == VendorAMD {
				rsvd |= PteG
			}
		case 30: // PDPTE under long mode
			if e&PtePS != 0 {
				if !w.Page1G {
					rsvd |= PtePS
				} else {
					rsvd |= bits(29, 13)
					leaf = true
				}
			}
		case 21: // PDE
			if e&PtePS != 0 {
				rsvd |= bits(20, 13)
				leaf = true
			}
		}
		if e&rsvd != 0 {
			return Translation{}, w.fault(s, la, acc, PFReserved|PFPresent)
		}
		if leaf {
			size := uint64(1) << shift
			base := e & addrMask &^ (size - 1)
			return w.finish(s, la, acc, &wk, base|la&(size-1), size, e)
		}
		table = e & addrMask
		shift -= 9
	}
}

func levelName(mode Mode, shift uint) string {
	switch shift {
	case 48:
		return "PML5E"
	case 39:
		return "PML4E"
	case 30:
		return "PDPTE"
	case 21:
		return "PDE"
	}
	return "PTE"
}

// canonical reports whether bits 63:width-1 of la are all equal.
func canonical(la uint64, width uint) bool {
	return uint64(int64(la<<(64-width))>>(64-width)) == la
}

// finish applies the permission rules to a completed walk and, if the
// access is allowed, sets accessed and dirty flags. leaf is the leaf entry
// for protection keys (zero for 32-bit paging, which has none).
func (w *Walker) finish(s *State, la uint64, acc Access, wk *walk, gpa, size, leaf uint64) (Translation, error) {
	// The effective rights are the intersection over all levels.
	// Intel SDM vol 3A 4.6.1; AMD APM vol 2 5.6.
	rw, us := true, true
	nx := false
	nxe := s.EFER&EFERNXE != 0 && wk.entrySize == 8
	for i := 0; i < wk.levels; i++ {
		e := wk.entry[i]
		rw = rw && e&PteRW != 0
		us = us && e&PteUS != 0
		nx = nx || (nxe && e&PteXD != 0)
	}

	user := s.CPL == 3 && acc&AccessImplicit == 0
	write := acc&AccessWrite != 0 && acc&AccessFetch == 0
	wp := s.CR0&CR0WP != 0
	denied, pk := false, false
	if acc&AccessFetch != 0 {
		switch {
		case user && !us:
			denied = true
		case !user && us && s.CR4&CR4SMEP != 0:
			denied = true
		case nx:
			denied = true
		}
	} else {
		switch {
		case user && !us:
			denied = true
		case !user && us && s.CR4&CR4SMAP != 0 &&
			(acc&AccessImplicit != 0 || s.CPL == 3 || s.RFLAGS&RFLAGSAC == 0):
			denied = true
		case write && !rw && (user || wp):
			denied = true
		}
		// Protection keys govern data accesses to user-mode pages, by
		// user and supervisor alike, under long-mode paging only.
		// Intel SDM vol 3A 4.6.2.
		if us && wk.entrySize == 8 && s.CR4&CR4PKE != 0 && s.EFER&EFERLMA != 0 {
			key := uint(leaf>>pkeyShift) & 0xF
			ad := s.PKRU>>(2*key)&1 != 0
			wd := s.PKRU>>(2*key+1)&1 != 0
			if ad || (write && wd && (user || wp)) {
				pk = true
			}
		}
	}
	if denied || pk {
		code := PFPresent
		if pk {
			code |= PFProtKey
		}
		return Translation{}, w.fault(s, la, acc, code)
	}

	if w.SetAccessedDirty {
		if err := w.setAD(wk, write); err != nil {
			return Translation{}, err
		}
	}
	return Translation{GPA: gpa, PageSize: size}, nil
}

func (w *Walker) setAD(wk *walk, write bool) error {
	for i := 0; i < wk.levels; i++ {
		e := wk.entry[i]
		n := e | PteA
		if i == wk.levels-1 && write {
			n |= PteD
		}
		if n != e {
			if err := w.write(wk.entryGPA[i], wk.entrySize, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// fault builds the #PF for an access; code carries P, RSVD and PK, and the
// access-describing bits are added here. Intel SDM vol 3A 4.7.
func (w *Walker) fault(s *State, la uint64, acc Access, code ErrorCode) error {
	if acc&AccessWrite != 0 && acc&AccessFetch == 0 {
		code |= PFWrite
	}
	if s.CPL == 3 && acc&AccessImplicit == 0 {
		code |= PFUser
	}
	// I/D is reported only where execute protection exists: with SMEP, or
	// with EFER.NXE under PAE or long-mode paging.
	if acc&AccessFetch != 0 &&
		(s.CR4&CR4SMEP != 0 || (s.CR4&CR4PAE != 0 && s.EFER&EFERNXE != 0)) {
		code |= PFFetch
	}
	return &Fault{Addr: la, Code: code}
}
