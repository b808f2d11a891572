// Package pagetable builds and edits x86-64 4-level page tables (SDM vol. 3A §4.5) in physical
// memory: map, unmap, change protection and look up, using 1 GiB, 2 MiB and 4 KiB pages as
// alignment and the allowed Sizes permit, and splitting large pages when part of one changes.
//
// Boundary: it edits table memory through Memory and takes table frames from a FrameSource; it
// never writes CR3 nor flushes TLBs. After changing a table that is in use, the caller
// invalidates the affected translations (INVLPG, or a CR3 reload). It does not own the frames
// it maps, only the table frames it allocates.
//
// The page tables are the state: Table is a handle holding the root's physical address and the
// means to reach memory. Keep Root (a uint64) in globals and build a Table where it is needed.
// Like the rest of early boot/, nothing here allocates on the Go heap or keeps package state.
package pagetable

// Memory is a view of physical memory. Bytes returns the n bytes at physical address addr, or
// false when any of them lies outside the view. Writes to the returned slice write memory.
type Memory interface {
	Bytes(addr, n uint64) ([]byte, bool)
}

// FrameSource supplies 4 KiB frames for page tables and takes back the ones Unmap empties. The
// frames need not be zeroed. *pmem.Frames satisfies it.
type FrameSource interface {
	AllocFrame() (uint64, error)
	FreeFrame(pa uint64) error
}

// Error is a constant error; converting a constant to error does not allocate.
type Error string

func (e Error) Error() string { return string(e) }

// Errors. Callers branch on them with ==.
const (
	ErrNonCanonical = Error("pagetable: address range is not canonical")
	ErrMisaligned   = Error("pagetable: address or size is not 4 KiB-aligned")
	ErrBadSize      = Error("pagetable: size is zero or wraps")
	ErrBadPhys      = Error("pagetable: physical range beyond the 52-bit physical address space")
	ErrBadFlags     = Error("pagetable: flags must include Present and exclude PageSize")
	ErrNotMapped    = Error("pagetable: range is not entirely mapped")
	ErrMemory       = Error("pagetable: table memory is not accessible")
)

// Flags are the page-table entry bits of SDM vol. 3A §4.5, tables 4-15 to 4-20.
type Flags uint64

// Entry flags.
const (
	Present      Flags = 1 << 0  // P
	Writable     Flags = 1 << 1  // R/W
	User         Flags = 1 << 2  // U/S
	WriteThrough Flags = 1 << 3  // PWT
	CacheDisable Flags = 1 << 4  // PCD
	Accessed     Flags = 1 << 5  // A
	Dirty        Flags = 1 << 6  // D (leaf entries only)
	PageSize     Flags = 1 << 7  // PS: the PDPTE or PDE maps a 1 GiB or 2 MiB page
	Global       Flags = 1 << 8  // G (leaf entries only)
	NoExecute    Flags = 1 << 63 // XD, honoured when IA32_EFER.NXE = 1

	// leafFlags are the flags Map, Protect and Lookup deal in.
	leafFlags = Present | Writable | User | WriteThrough | CacheDisable | Accessed | Dirty | Global | NoExecute
	// tableFlags are set on non-leaf entries. Access rights combine across levels (§4.6), so
	// permissive upper levels let each leaf alone decide.
	tableFlags = Present | Writable | User
)

// Page sizes (§4.5.4).
const (
	Size4K = 1 << 12
	Size2M = 1 << 21
	Size1G = 1 << 30
)

// Sizes says which large pages Map may use; 4 KiB pages are always allowed. 1 GiB pages need
// CPUID.80000001H:EDX.Page1GB[bit 26].
type Sizes uint8

// Large page permissions.
const (
	Allow2M Sizes = 1 << 0
	Allow1G Sizes = 1 << 1
)

const (
	entries     = 512
	entrySize   = 8
	levels      = 4
	maxPhysBits = 52 // MAXPHYADDR is at most 52 (§4.1.4)
	// addrMask selects bits 51:12 of an entry: the next table or the 4 KiB frame.
	addrMask = (uint64(1)<<maxPhysBits - 1) &^ (Size4K - 1)
	// vaBits is the linear address width with 4-level paging; bits 63:47 must be equal (§4.5).
	vaBits = 48
)

// span returns the bytes one entry at level maps: level 1 is the page table (4 KiB entries),
// 4 the PML4 (512 GiB entries).
func span(level int) uint64 { return Size4K << (9 * (level - 1)) }

func index(va uint64, level int) uint64 { return (va >> (12 + 9*(level-1))) & (entries - 1) }

// Table is a handle on one 4-level hierarchy.
type Table struct {
	Mem    Memory
	Frames FrameSource
	// Root is the physical address of the PML4: the value for CR3 (with PCD/PWT clear).
	Root  uint64
	Sizes Sizes
}

// New allocates and clears a PML4 and returns a handle on the empty hierarchy.
func New(mem Memory, frames FrameSource, sizes Sizes) (Table, error) {
	t := Table{Mem: mem, Frames: frames, Sizes: sizes}
	root, err := t.newTable()
	if err != nil {
		return Table{}, err
	}
	t.Root = root
	return t, nil
}

func (t *Table) newTable() (uint64, error) {
	pa, err := t.Frames.AllocFrame()
	if err != nil {
		return 0, err
	}
	b, ok := t.Mem.Bytes(pa, Size4K)
	if !ok || len(b) < Size4K || pa%Size4K != 0 {
		// A frame we cannot reach is useless; give it back.
		_ = t.Frames.FreeFrame(pa)
		return 0, ErrMemory
	}
	clear(b[:Size4K])
	return pa, nil
}

func (t *Table) table(pa uint64) ([]byte, error) {
	b, ok := t.Mem.Bytes(pa, Size4K)
	if !ok || len(b) < Size4K {
		return nil, ErrMemory
	}
	return b[:Size4K], nil
}

func entry(tb []byte, i uint64) uint64 {
	b := tb[i*entrySize : i*entrySize+entrySize]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func setEntry(tb []byte, i uint64, v uint64) {
	b := tb[i*entrySize : i*entrySize+entrySize]
	for k := range b {
		b[k] = byte(v >> (8 * k))
	}
}

func present(e uint64) bool { return Flags(e)&Present != 0 }

// isLeaf reports whether entry e at level maps a page rather than pointing to a table.
func isLeaf(e uint64, level int) bool { return level == 1 || Flags(e)&PageSize != 0 }

// leafAddr returns the physical address of the page a leaf entry maps. For large pages the
// low address bits are dropped, including bit 12, which is PAT there (§4.5, table 4-18);
// Map never sets PAT, so splitting and protecting cannot misplace it.
func leafAddr(e uint64, level int) uint64 { return e & addrMask &^ (span(level) - 1) }

func makeLeaf(pa uint64, f Flags, level int) uint64 {
	e := pa | uint64(f&leafFlags)
	if level > 1 {
		e |= uint64(PageSize)
	}
	return e
}

func canonical(va uint64) bool {
	top := int64(va) >> (vaBits - 1)
	return top == 0 || top == -1
}

// checkRange validates [va, va+size) and returns its last address.
func checkRange(va, size uint64) (uint64, error) {
	if va%Size4K != 0 || size%Size4K != 0 {
		return 0, ErrMisaligned
	}
	if size == 0 || va+size-1 < va {
		return 0, ErrBadSize
	}
	last := va + size - 1
	if !canonical(va) || !canonical(last) || (va^last)>>63 != 0 {
		return 0, ErrNonCanonical
	}
	return last, nil
}

// Map maps [va, va+size) to [pa, pa+size) with flags, replacing any mapping there. It uses the
// largest page size that alignment of va and pa, the remaining size and Sizes allow. If it fails
// (out of frames), part of the range may be mapped; Unmap it to clean up.
func (t *Table) Map(va, pa, size uint64, flags Flags) error {
	last, err := checkRange(va, size)
	if err != nil {
		return err
	}
	if pa%Size4K != 0 {
		return ErrMisaligned
	}
	if pa+size-1 < pa || (pa+size-1)>>maxPhysBits != 0 {
		return ErrBadPhys
	}
	if flags&Present == 0 || flags&^leafFlags != 0 {
		return ErrBadFlags
	}
	return t.mapRange(t.Root, levels, va, last, pa, flags)
}

func (t *Table) allowLeaf(level int) bool {
	switch level {
	case 1:
		return true
	case 2:
		return t.Sizes&Allow2M != 0
	case 3:
		return t.Sizes&Allow1G != 0
	}
	return false
}

// mapRange maps [va, last] inside the table at tpa, which is at level.
func (t *Table) mapRange(tpa uint64, level int, va, last, pa uint64, flags Flags) error {
	tb, err := t.table(tpa)
	if err != nil {
		return err
	}
	sp := span(level)
	for {
		i := index(va, level)
		eLast := min(va|(sp-1), last)
		e := entry(tb, i)
		whole := va&(sp-1) == 0 && eLast-va == sp-1
		if whole && pa&(sp-1) == 0 && t.allowLeaf(level) {
			if present(e) && !isLeaf(e, level) {
				if _, err := t.freeTree(e&addrMask, level-1); err != nil {
					return err
				}
			}
			setEntry(tb, i, makeLeaf(pa, flags, level))
		} else {
			child, err := t.child(tb, i, level)
			if err != nil {
				return err
			}
			if err := t.mapRange(child, level-1, va, eLast, pa, flags); err != nil {
				return err
			}
		}
		if eLast == last {
			return nil
		}
		pa += eLast - va + 1
		va = eLast + 1
	}
}

// child returns the table that entry i of tb (at level > 1) points to, creating an empty one
// where nothing is mapped and splitting a large page into an equivalent table where one is.
func (t *Table) child(tb []byte, i uint64, level int) (uint64, error) {
	e := entry(tb, i)
	if present(e) && !isLeaf(e, level) {
		return e & addrMask, nil
	}
	c, err := t.newTable()
	if err != nil {
		return 0, err
	}
	if present(e) {
		// Split: the new table maps the same range with the same attributes (§4.10.2.3
		// allows either translation to be used until the TLB is invalidated, and both agree).
		ct, err := t.table(c)
		if err != nil {
			return 0, err
		}
		base, f := leafAddr(e, level), Flags(e)&leafFlags
		sub := span(level - 1)
		for k := uint64(0); k < entries; k++ {
			setEntry(ct, k, makeLeaf(base+k*sub, f, level-1))
		}
	}
	setEntry(tb, i, c|uint64(tableFlags))
	return c, nil
}

// freeTree frees the table at tpa (at level) and every table below it; it never frees mapped
// pages. It returns the number of table frames freed.
func (t *Table) freeTree(tpa uint64, level int) (int, error) {
	n := 0
	if level > 1 {
		tb, err := t.table(tpa)
		if err != nil {
			return 0, err
		}
		for i := uint64(0); i < entries; i++ {
			if e := entry(tb, i); present(e) && !isLeaf(e, level) {
				k, err := t.freeTree(e&addrMask, level-1)
				n += k
				if err != nil {
					return n, err
				}
			}
		}
	}
	if err := t.Frames.FreeFrame(tpa); err != nil {
		return n, err
	}
	return n + 1, nil
}

// Unmap removes every mapping in [va, va+size), splitting large pages that straddle its edges,
// and frees page tables that become empty (never the root). Unmapped parts of the range are
// skipped. It returns the number of table frames it freed.
func (t *Table) Unmap(va, size uint64) (freedTables int, err error) {
	last, err := checkRange(va, size)
	if err != nil {
		return 0, err
	}
	return t.unmapRange(t.Root, levels, va, last)
}

func (t *Table) unmapRange(tpa uint64, level int, va, last uint64) (int, error) {
	tb, err := t.table(tpa)
	if err != nil {
		return 0, err
	}
	freed := 0
	sp := span(level)
	for {
		i := index(va, level)
		eLast := min(va|(sp-1), last)
		e := entry(tb, i)
		whole := va&(sp-1) == 0 && eLast-va == sp-1
		switch {
		case !present(e):
		case isLeaf(e, level) && whole:
			setEntry(tb, i, 0)
		case !isLeaf(e, level) && whole:
			n, err := t.freeTree(e&addrMask, level-1)
			freed += n
			if err != nil {
				return freed, err
			}
			setEntry(tb, i, 0)
		default:
			c, err := t.child(tb, i, level)
			if err != nil {
				return freed, err
			}
			n, err := t.unmapRange(c, level-1, va, eLast)
			freed += n
			if err != nil {
				return freed, err
			}
			ct, err := t.table(c)
			if err != nil {
				return freed, err
			}
			if empty(ct) {
				if err := t.Frames.FreeFrame(c); err != nil {
					return freed, err
				}
				freed++
				setEntry(tb, i, 0)
			}
		}
		if eLast == last {
			return freed, nil
		}
		va = eLast + 1
	}
}

func empty(tb []byte) bool {
	for i := uint64(0); i < entries; i++ {
		if present(entry(tb, i)) {
			return false
		}
	}
	return true
}

// Protect sets the flags of every page in [va, va+size), splitting large pages that straddle
// its edges. The whole range must be mapped (checked before anything changes), as mprotect
// requires.
func (t *Table) Protect(va, size uint64, flags Flags) error {
	last, err := checkRange(va, size)
	if err != nil {
		return err
	}
	if flags&Present == 0 || flags&^leafFlags != 0 {
		return ErrBadFlags
	}
	for a := va; ; {
		_, _, ps, ok := t.Lookup(a)
		if !ok {
			return ErrNotMapped
		}
		next := (a | (ps - 1)) + 1
		if next-1 >= last || next == 0 {
			break
		}
		a = next
	}
	return t.protectRange(t.Root, levels, va, last, flags)
}

func (t *Table) protectRange(tpa uint64, level int, va, last uint64, flags Flags) error {
	tb, err := t.table(tpa)
	if err != nil {
		return err
	}
	sp := span(level)
	for {
		i := index(va, level)
		eLast := min(va|(sp-1), last)
		e := entry(tb, i)
		whole := va&(sp-1) == 0 && eLast-va == sp-1
		if isLeaf(e, level) && whole {
			setEntry(tb, i, makeLeaf(leafAddr(e, level), flags, level))
		} else {
			c, err := t.child(tb, i, level)
			if err != nil {
				return err
			}
			if err := t.protectRange(c, level-1, va, eLast, flags); err != nil {
				return err
			}
		}
		if eLast == last {
			return nil
		}
		va = eLast + 1
	}
}

// Lookup translates va. It returns the physical address va maps to, the leaf's flags (without
// PageSize), and the size of the page that maps it; ok is false when va is not mapped, not
// canonical, or the tables are unreachable.
func (t *Table) Lookup(va uint64) (pa uint64, flags Flags, pageSize uint64, ok bool) {
	if !canonical(va) {
		return 0, 0, 0, false
	}
	tpa := t.Root
	for level := levels; level >= 1; level-- {
		tb, err := t.table(tpa)
		if err != nil {
			return 0, 0, 0, false
		}
		e := entry(tb, index(va, level))
		if !present(e) {
			return 0, 0, 0, false
		}
		if isLeaf(e, level) {
			sp := span(level)
			return leafAddr(e, level) | va&(sp-1), Flags(e) & leafFlags, sp, true
		}
		tpa = e & addrMask
	}
	return 0, 0, 0, false
}
