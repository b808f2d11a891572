package boot

import "unsafe"

// Memory management for the platform and the Go runtime.
//
// Physical memory is identity-mapped (VA = PA) for all RAM and the local
// APIC/IOAPIC pages, except page 0, which stays unmapped so that a nil
// dereference faults. The Go runtime's mmap regions live elsewhere in the
// lower half (it asks for 0xc000000000 and up; regions without a hint go at
// mmapFloor and up), backed eagerly by zeroed 4 KiB frames when mapped
// read-write and not backed at all while PROT_NONE. Mappings never change from
// one frame to another: munmap and PROT_NONE keep the backing for reuse, so
// no other CPU can hold a stale translation and no TLB shootdown is needed.

const (
	pageSize  = 4096
	mmapFloor = 0x7f0000000000

	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	ptePWT     = 1 << 3
	ptePCD     = 1 << 4
	ptePS      = 1 << 7
	pteGlobal  = 1 << 8
	pteNX      = 1 << 63
	pteAddr    = 0x000FFFFFFFFFF000

	maxRegions = 1024
)

// Frame allocator: a bitmap over physical memory up to maxPhys, one bit per
// 4 KiB frame, set = in use. 1 MiB of bitmap covers 32 GiB.
const maxPhys = 32 << 30

var (
	frameBitmap [maxPhys / pageSize / 64]uint64
	frameNext   uint64 // next-fit cursor (frame number)
	frameTop    uint64 // one past the highest usable frame
	framesFree  uint64
	framesTotal uint64
	physTop     uint64 // highest RAM address + 1 (identity-mapped)
	kernelCR3   uint64
)

func frameUsed(n uint64) bool { return frameBitmap[n/64]&(1<<(n%64)) != 0 }

func frameMark(n uint64, used bool) {
	if used {
		frameBitmap[n/64] |= 1 << (n % 64)
	} else {
		frameBitmap[n/64] &^= 1 << (n % 64)
	}
}

// frameInitRange marks [base, base+size) free (usable RAM).
func frameFreeRange(base, size uint64) {
	start := (base + pageSize - 1) / pageSize
	end := (base + size) / pageSize
	if end > maxPhys/pageSize {
		end = maxPhys / pageSize
	}
	for n := start; n < end; n++ {
		if frameUsed(n) {
			frameMark(n, false)
			framesFree++
			framesTotal++
		}
	}
	if end > frameTop {
		frameTop = end
	}
}

// frameReserveRange marks [base, base+size) used.
func frameReserveRange(base, size uint64) {
	start := base / pageSize
	end := (base + size + pageSize - 1) / pageSize
	if end > maxPhys/pageSize {
		end = maxPhys / pageSize
	}
	for n := start; n < end; n++ {
		if !frameUsed(n) {
			frameMark(n, true)
			framesFree--
			framesTotal--
		}
	}
}

// allocFrame returns a zeroed frame.
func allocFrame() (uint64, bool) {
	for i := uint64(0); i < frameTop; i++ {
		n := frameNext
		frameNext++
		if frameNext >= frameTop {
			frameNext = 0
		}
		if frameBitmap[n/64] == ^uint64(0) {
			// skip the rest of a full word
			frameNext = (n/64 + 1) * 64
			if frameNext >= frameTop {
				frameNext = 0
			}
			continue
		}
		if !frameUsed(n) {
			frameMark(n, true)
			framesFree--
			pa := n * pageSize
			clear(physBytes(pa, pageSize))
			return pa, true
		}
	}
	return 0, false
}

// allocContiguous returns n zeroed frames aligned to align bytes (for guest
// RAM in 2 MiB pages).
func allocContiguous(n, align uint64) (uint64, bool) {
	step := align / pageSize
	if step == 0 {
		step = 1
	}
	for s := uint64(0); s+n <= frameTop; s += step {
		ok := true
		for i := uint64(0); i < n; i++ {
			if frameUsed(s + i) {
				ok = false
				s = (s + i) / step * step
				break
			}
		}
		if ok {
			for i := uint64(0); i < n; i++ {
				frameMark(s+i, true)
			}
			framesFree -= n
			clear(physBytes(s*pageSize, n*pageSize))
			return s * pageSize, true
		}
	}
	return 0, false
}

func freeFrames(pa, n uint64) {
	for i := uint64(0); i < n; i++ {
		f := pa/pageSize + i
		if f < frameTop && frameUsed(f) {
			frameMark(f, false)
			framesFree++
		}
	}
}

func physBytes(pa, n uint64) []byte {
	return unsafe.Slice((*byte)(physPtr(pa)), n)
}

func ptEntries(pa uint64) *[512]uint64 {
	return (*[512]uint64)(physPtr(pa))
}

// walkCreate returns the page-table entry for va at the given level (1 =
// PT entry for a 4 KiB page, 2 = PD entry for 2 MiB), creating intermediate
// tables. nil when out of memory or a large page is in the way.
func walkCreate(va uint64, level int) *uint64 {
	table := kernelCR3 & pteAddr
	for l := 4; l > level; l-- {
		idx := (va >> (12 + 9*(l-1))) & 511
		e := &ptEntries(table)[idx]
		if *e&ptePresent == 0 {
			pa, ok := allocFrame()
			if !ok {
				return nil
			}
			*e = pa | ptePresent | pteWrite
		} else if *e&ptePS != 0 {
			return nil
		}
		table = *e & pteAddr
	}
	return &ptEntries(table)[(va>>(12+9*(level-1)))&511]
}

// lookupPTE returns the leaf entry mapping va, or nil.
func lookupPTE(va uint64) *uint64 {
	table := kernelCR3 & pteAddr
	for l := 4; l >= 1; l-- {
		e := &ptEntries(table)[(va>>(12+9*(l-1)))&511]
		if *e&ptePresent == 0 {
			return nil
		}
		if l == 1 || *e&ptePS != 0 {
			return e
		}
		table = *e & pteAddr
	}
	return nil
}

// mmMapped reports whether every byte of [addr, addr+n) is mapped.
func mmMapped(addr, n uint64) bool {
	if n == 0 {
		return true
	}
	end := addr + n
	if end < addr {
		return false
	}
	for va := addr &^ (pageSize - 1); va < end; {
		e := lookupPTE(va)
		if e == nil {
			return false
		}
		size := uint64(pageSize)
		if *e&ptePS != 0 {
			size = 2 << 20
		}
		va = (va &^ (size - 1)) + size
	}
	return true
}

// buildKernelPageTables creates the final host page tables: RAM and the
// APIC pages identity-mapped, page 0 absent, and switches CR3 to them.
func buildKernelPageTables() bool {
	root, ok := allocFrame()
	if !ok {
		return false
	}
	kernelCR3 = root
	top := (physTop + (2<<20 - 1)) &^ (2<<20 - 1)
	if top < 4<<30 {
		top = 4 << 30 // keep the whole low 4 GiB (firmware tables, MMIO) reachable
	}
	// First 2 MiB with 4 KiB pages, page 0 left out.
	for va := uint64(pageSize); va < 2<<20; va += pageSize {
		e := walkCreate(va, 1)
		if e == nil {
			return false
		}
		*e = va | ptePresent | pteWrite
	}
	for va := uint64(2 << 20); va < top; va += 2 << 20 {
		e := walkCreate(va, 2)
		if e == nil {
			return false
		}
		flags := uint64(ptePresent | pteWrite | ptePS)
		if va >= 0xFE000000 && va < 1<<32 {
			flags |= ptePCD | ptePWT // APIC and IOAPIC registers: uncached
		}
		*e = va | flags
	}
	writeCR3(kernelCR3)
	return true
}

// Virtual regions handed to the Go runtime by mmap.
const (
	regionFree     = iota
	regionReserved // PROT_NONE: no backing
	regionMapped   // read-write, backed
)

type region struct {
	start, end uint64
	state      int32
}

var (
	regions  [maxRegions]region
	nregions int
)

// regionOverlaps reports whether [a, b) intersects any live region.
func regionOverlaps(a, b uint64) bool {
	for i := 0; i < nregions; i++ {
		r := &regions[i]
		if r.state != regionFree && a < r.end && r.start < b {
			return true
		}
	}
	return false
}

// vaForbidden refuses ranges overlapping the identity map or the upper half.
func vaForbidden(a, b uint64) bool {
	identTop := uint64(4 << 30)
	if physTop > identTop {
		identTop = (physTop + (2<<20 - 1)) &^ (2<<20 - 1)
	}
	return a < identTop || b > 1<<47 || b < a
}

// regionSet gives [a, b) the state s, splitting and replacing whatever
// regions are there. Backing frames stay with the address range: a region
// that becomes mapped again finds its pages still present and rezeroes
// them.
func regionSet(a, b uint64, s int32) bool {
	// Cut existing regions around [a, b).
	for i := 0; i < nregions; i++ {
		r := regions[i]
		if r.state == regionFree || b <= r.start || r.end <= a {
			continue
		}
		regions[i].state = regionFree
		if r.start < a && !regionAdd(r.start, a, r.state) {
			return false
		}
		if b < r.end && !regionAdd(b, r.end, r.state) {
			return false
		}
	}
	if s != regionFree {
		return regionAdd(a, b, s)
	}
	return true
}

func regionAdd(a, b uint64, s int32) bool {
	for i := 0; i < nregions; i++ {
		if regions[i].state == regionFree {
			regions[i] = region{a, b, s}
			return true
		}
	}
	if nregions == maxRegions {
		return false
	}
	regions[nregions] = region{a, b, s}
	nregions++
	return true
}

// backRange maps and zeroes every page of [a, b).
func backRange(a, b uint64) bool {
	for va := a; va < b; va += pageSize {
		e := walkCreate(va, 1)
		if e == nil {
			return false
		}
		if *e&ptePresent != 0 {
			clear(physBytes(*e&pteAddr, pageSize))
			continue
		}
		pa, ok := allocFrame()
		if !ok {
			return false
		}
		*e = pa | ptePresent | pteWrite | pteNXIfSupported()
	}
	return true
}

var nxSupported bool

func pteNXIfSupported() uint64 {
	if nxSupported {
		return pteNX
	}
	return 0
}

// findFree returns the lowest free, allowed range of size at or above
// mmapFloor.
func findFree(size uint64) (uint64, bool) {
	a := uint64(mmapFloor)
	for a+size <= 1<<47 {
		conflict := false
		for i := 0; i < nregions; i++ {
			r := &regions[i]
			if r.state != regionFree && a < r.end && r.start < a+size {
				a = (r.end + pageSize - 1) &^ (pageSize - 1)
				conflict = true
			}
		}
		if !conflict {
			return a, true
		}
	}
	return 0, false
}

const (
	protRead          = 1
	protWrite         = 2
	mapFixed          = 0x10
	mapAnon           = 0x20
	mapFixedNoReplace = 0x100000
)

func sysMmapCall(addr, length, prot, flags uint64, fd int64) int64 {
	if flags&mapAnon == 0 || fd != -1 && fd != 0 && flags&mapAnon == 0 {
		return -19 // ENODEV: no files here
	}
	if length == 0 || addr&(pageSize-1) != 0 {
		return -_EINVAL
	}
	size := (length + pageSize - 1) &^ (pageSize - 1)
	if size < length {
		return -_ENOMEM
	}
	fixed := flags&(mapFixed|mapFixedNoReplace) != 0
	a := addr
	switch {
	case fixed:
		if vaForbidden(a, a+size) {
			return -_EINVAL
		}
		if flags&mapFixedNoReplace != 0 && regionOverlaps(a, a+size) {
			return -17 // EEXIST
		}
	case a != 0 && !vaForbidden(a, a+size) && !regionOverlaps(a, a+size):
		// honour the hint
	default:
		var ok bool
		if a, ok = findFree(size); !ok {
			return -_ENOMEM
		}
	}
	state := int32(regionReserved)
	if prot&(protRead|protWrite) != 0 {
		state = regionMapped
	}
	if !regionSet(a, a+size, state) {
		return -_ENOMEM
	}
	if state == regionMapped && !backRange(a, a+size) {
		return -_ENOMEM
	}
	return int64(a)
}

func sysMunmapCall(addr, length uint64) int64 {
	if addr&(pageSize-1) != 0 || length == 0 {
		return -_EINVAL
	}
	size := (length + pageSize - 1) &^ (pageSize - 1)
	if vaForbidden(addr, addr+size) {
		return -_EINVAL
	}
	if !regionSet(addr, addr+size, regionFree) {
		return -_ENOMEM
	}
	return 0
}
