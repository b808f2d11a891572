package svm

import (
	"errors"
	"fmt"
)

// Nested page tables (APM vol. 2 15.25) translate guest physical addresses
// to host physical addresses. With a long-mode host they use the 4-level
// long-mode page-table format of APM vol. 2 5.3, rooted at N_CR3, and the
// walk treats every guest access as a user access (15.25.5): an entry
// without U/S set faults, at every level. That is why every entry built here
// has U/S set, and why QEMU TCG, which checks it, stops a guest whose NPT
// lacks it.

// Nested page-table entry bits (APM vol. 2 5.4.1 and 5.3.3).
const (
	PTEPresent  = 1 << 0
	PTEWrite    = 1 << 1 // R/W
	PTEUser     = 1 << 2 // U/S: must be set for guest accesses
	PTEPWT      = 1 << 3
	PTEPCD      = 1 << 4
	PTEAccessed = 1 << 5
	PTEDirty    = 1 << 6  // leaves only
	PTELarge    = 1 << 7  // PS in a PDE or PDPE: the entry maps a 2 MiB or 1 GiB page
	PTEPAT4K    = 1 << 7  // PAT bit of a 4 KiB PTE (same position as PS)
	PTEGlobal   = 1 << 8  // ignored in nested tables
	PTEPATLarge = 1 << 12 // PAT bit of a 2 MiB or 1 GiB leaf
	PTENX       = 1 << 63 // needs host EFER.NXE at VMRUN, else it is a reserved bit

	// PTEAddrMask selects bits 51:12, the physical address of a 4 KiB page
	// or next-level table (52-bit physical addresses, APM vol. 2 5.3.3).
	PTEAddrMask = 0x000f_ffff_ffff_f000
	// PTEAddrMask2M selects bits 51:21, the address of a 2 MiB page.
	PTEAddrMask2M = 0x000f_ffff_ffe0_0000
)

// Page sizes NPT maps.
const (
	PageSize4K = 1 << 12
	PageSize2M = 1 << 21
)

// MaxGPA is the first guest physical address a 4-level nested table cannot
// map (48-bit addresses).
const MaxGPA = 1 << 48

// maxHPA is the first host physical address an entry cannot hold.
const maxHPA = 1 << 52

// Perm is what the guest may do with a mapping, plus its memory type.
type Perm uint8

const (
	PermRead  Perm = 1 << iota // every mapping must allow reads: NPT has no write- or execute-only pages
	PermWrite                  // R/W set
	PermExec                   // NX clear
	// PermUncached selects PCD|PWT, PAT entry 3, which is UC in the reset
	// PAT (APM vol. 2 7.8.2); the host must keep its PAT entries 0 (WB)
	// and 3 (UC) at their reset values. Without it the mapping is WB.
	PermUncached
)

// TableMemory provides the 4 KiB pages that hold nested tables. The
// bare-metal implementation takes frames from the host frame allocator and
// reaches them through the host's mapping of physical memory; tests use
// plain Go arrays.
type TableMemory interface {
	// AllocTable returns the host physical address of a zeroed, 4 KiB
	// aligned page.
	AllocTable() (pa uint64, err error)
	// FreeTable gives back a page obtained from AllocTable.
	FreeTable(pa uint64)
	// Table returns the 512 entries of a page obtained from AllocTable.
	Table(pa uint64) *[512]uint64
}

// HostRange is a range of host physical memory [Base, Base+Size).
type HostRange struct {
	Base, Size uint64
}

func (r HostRange) contains(pa, size uint64) bool {
	return pa >= r.Base && size <= r.Size && pa-r.Base <= r.Size-size
}

func (r HostRange) overlaps(pa, size uint64) bool {
	return pa < r.Base+r.Size && r.Base < pa+size
}

// Errors of the NPT builder.
var (
	ErrMapped      = errors.New("guest physical range already mapped")
	ErrNotAllowed  = errors.New("host physical range outside the VM's host ranges")
	ErrAlignment   = errors.New("address or size not 4 KiB aligned")
	ErrTableInside = errors.New("table page lies inside a range the guest can map")
)

// NPT builds and edits one nested page table hierarchy.
//
// A guest cannot reach host memory that is not its own, by construction:
// the only way to create a present leaf is Map, and Map refuses any host
// range that is not wholly inside the ranges given to NewNPT (the VM's RAM
// and any device memory deliberately passed through). Table pages must lie
// outside those ranges, so the guest can never write its own translations.
// A guest physical address with no leaf has no present entry, so touching it
// ends in a VMEXIT_NPF that the vCPU loop handles (emulated MMIO, or the VM
// is stopped).
//
// After Unmap the caller flushes the guest's ASID (TLB_CONTROL) before the
// next VMRUN, since the TLB may still hold the removed translations; Map
// only fills empty entries, which the TLB does not cache. NPT is not safe
// for concurrent use.
type NPT struct {
	mem     TableMemory
	root    uint64
	allowed []HostRange
}

// NewNPT allocates an empty hierarchy whose leaves may point only into
// allowed. Each allowed range must be 4 KiB aligned and non-empty.
func NewNPT(mem TableMemory, allowed []HostRange) (*NPT, error) {
	for _, r := range allowed {
		if r.Base%PageSize4K != 0 || r.Size%PageSize4K != 0 || r.Size == 0 || r.Base+r.Size > maxHPA || r.Base+r.Size < r.Base {
			return nil, fmt.Errorf("svm: NPT host range %#x+%#x: %w", r.Base, r.Size, ErrAlignment)
		}
	}
	n := &NPT{mem: mem, allowed: append([]HostRange(nil), allowed...)}
	root, err := n.allocTable()
	if err != nil {
		return nil, fmt.Errorf("svm: NPT root: %w", err)
	}
	n.root = root
	return n, nil
}

// Root returns the value for the VMCB's N_CR3: the physical address of the
// top-level table (PWT and PCD clear, so the walk itself is write-back).
func (n *NPT) Root() uint64 { return n.root }

func (n *NPT) allocTable() (uint64, error) {
	pa, err := n.mem.AllocTable()
	if err != nil {
		return 0, err
	}
	if pa%PageSize4K != 0 || pa >= maxHPA {
		n.mem.FreeTable(pa)
		return 0, fmt.Errorf("svm: NPT table page %#x: %w", pa, ErrAlignment)
	}
	for _, r := range n.allowed {
		if r.overlaps(pa, PageSize4K) {
			n.mem.FreeTable(pa)
			return 0, fmt.Errorf("svm: NPT table page %#x: %w", pa, ErrTableInside)
		}
	}
	return pa, nil
}

func (n *NPT) hostAllowed(hpa, size uint64) bool {
	for _, r := range n.allowed {
		if r.contains(hpa, size) {
			return true
		}
	}
	return false
}

// index returns the table index of gpa at level (3 = PML4 ... 0 = PT).
func index(gpa uint64, level int) int {
	return int(gpa>>(12+9*uint(level))) & 511
}

// nonLeaf is the entry pointing at a lower table: present, writable, user,
// executable, so that only the leaf decides the permissions (the walk ANDs
// R/W and U/S and ORs NX across levels, APM vol. 2 5.6).
func nonLeaf(table uint64) uint64 {
	return table | PTEPresent | PTEWrite | PTEUser
}

func leafBits(perm Perm) uint64 {
	e := uint64(PTEPresent | PTEUser)
	if perm&PermWrite != 0 {
		e |= PTEWrite
	}
	if perm&PermExec == 0 {
		e |= PTENX
	}
	if perm&PermUncached != 0 {
		e |= PTEPWT | PTEPCD
	}
	return e
}

func permOf(e uint64) Perm {
	p := PermRead
	if e&PTEWrite != 0 {
		p |= PermWrite
	}
	if e&PTENX == 0 {
		p |= PermExec
	}
	if e&(PTEPWT|PTEPCD) == PTEPWT|PTEPCD {
		p |= PermUncached
	}
	return p
}

func isLarge(e uint64, level int) bool {
	return level > 0 && e&PTELarge != 0
}

// walk descends from the root to the table at level stop for gpa, creating
// missing tables if create is set. It returns the table's physical address,
// or 0 with ok=false if a table is missing (and create is clear), and
// ErrMapped if a large leaf covers gpa above stop.
func (n *NPT) walk(gpa uint64, stop int, create bool) (table uint64, ok bool, err error) {
	table = n.root
	for level := 3; level > stop; level-- {
		t := n.mem.Table(table)
		i := index(gpa, level)
		e := t[i]
		if e&PTEPresent == 0 {
			if !create {
				return 0, false, nil
			}
			next, err := n.allocTable()
			if err != nil {
				return 0, false, err
			}
			t[i] = nonLeaf(next)
			table = next
			continue
		}
		if isLarge(e, level) {
			return 0, false, ErrMapped
		}
		table = e & PTEAddrMask
	}
	return table, true, nil
}

// Map maps guest physical [gpa, gpa+size) to host physical [hpa, hpa+size)
// with perm, using 2 MiB pages wherever both addresses are 2 MiB aligned and
// at least 2 MiB remain, and 4 KiB pages elsewhere. It fails without
// changing anything if any part of the guest range is already mapped, if the
// host range is not inside the NPT's host ranges, or if an address or the
// size is not 4 KiB aligned.
func (n *NPT) Map(gpa, hpa, size uint64, perm Perm) error {
	switch {
	case gpa%PageSize4K != 0 || hpa%PageSize4K != 0 || size%PageSize4K != 0 || size == 0:
		return fmt.Errorf("svm: NPT map gpa %#x hpa %#x size %#x: %w", gpa, hpa, size, ErrAlignment)
	case gpa >= MaxGPA || size > MaxGPA-gpa:
		return fmt.Errorf("svm: NPT map gpa %#x size %#x: beyond the 48-bit guest physical space: %w", gpa, size, ErrRange)
	case perm&PermRead == 0:
		return fmt.Errorf("svm: NPT map gpa %#x: permission %#x without read", gpa, perm)
	case !n.hostAllowed(hpa, size):
		return fmt.Errorf("svm: NPT map gpa %#x to hpa %#x size %#x: %w", gpa, hpa, size, ErrNotAllowed)
	}
	bits := leafBits(perm)
	for off := uint64(0); off < size; {
		g, h := gpa+off, hpa+off
		var err error
		step := uint64(PageSize4K)
		if g%PageSize2M == 0 && h%PageSize2M == 0 && size-off >= PageSize2M {
			step = PageSize2M
			err = n.setLeaf(g, 1, h|bits|PTELarge)
		} else {
			err = n.setLeaf(g, 0, h|bits)
		}
		if err != nil {
			n.prune(g)
			if off > 0 {
				// Only whole leaves written above are removed: no split,
				// so no allocation, so this cannot fail.
				_ = n.unmap(gpa, off)
			}
			return fmt.Errorf("svm: NPT map gpa %#x: %w", g, err)
		}
		off += step
	}
	return nil
}

// setLeaf writes entry at level (0: 4 KiB, 1: 2 MiB) for gpa if the slot
// is empty. A 2 MiB slot that holds a table is not empty: some 4 KiB page
// under it is mapped (Unmap frees tables that become empty).
func (n *NPT) setLeaf(gpa uint64, level int, entry uint64) error {
	table, _, err := n.walk(gpa, level, true)
	if err != nil {
		return err
	}
	t := n.mem.Table(table)
	i := index(gpa, level)
	if t[i]&PTEPresent != 0 {
		return ErrMapped
	}
	t[i] = entry
	return nil
}

// Unmap removes every mapping in guest physical [gpa, gpa+size); holes are
// skipped. A 2 MiB page only partly inside the range is split into 4 KiB
// pages first, which needs a table page and can fail; tables left empty are
// freed. The caller must flush the guest's ASID afterwards.
func (n *NPT) Unmap(gpa, size uint64) error {
	switch {
	case gpa%PageSize4K != 0 || size%PageSize4K != 0:
		return fmt.Errorf("svm: NPT unmap gpa %#x size %#x: %w", gpa, size, ErrAlignment)
	case gpa >= MaxGPA || size > MaxGPA-gpa:
		return fmt.Errorf("svm: NPT unmap gpa %#x size %#x: %w", gpa, size, ErrRange)
	}
	if err := n.unmap(gpa, size); err != nil {
		return fmt.Errorf("svm: NPT unmap gpa %#x size %#x: %w", gpa, size, err)
	}
	return nil
}

func (n *NPT) unmap(gpa, size uint64) error {
	end := gpa + size
	for g := gpa; g < end; {
		// path[level] is the table at that level on the way to g.
		var path [4]uint64
		path[3] = n.root
		for level := 3; level >= 0; {
			t := n.mem.Table(path[level])
			e := t[index(g, level)]
			span := uint64(1) << (12 + 9*uint(level))
			if e&PTEPresent == 0 {
				// Nothing is mapped anywhere in this entry's span.
				g = (g &^ (span - 1)) + span
				break
			}
			if level > 0 && !isLarge(e, level) {
				path[level-1] = e & PTEAddrMask
				level--
				continue
			}
			if level > 0 && (g%span != 0 || end-g < span) {
				// A large page only partly inside the range: split it and
				// look at the same entry again, now a table.
				if err := n.split(path[level], g, level); err != nil {
					return err
				}
				continue
			}
			t[index(g, level)] = 0
			n.freeEmpty(path, g, level)
			g += span
			break
		}
	}
	return nil
}

// prune frees the tables on the way to gpa that hold no entries, after a
// Map that created them failed before writing a leaf.
func (n *NPT) prune(gpa uint64) {
	var path [4]uint64
	path[3] = n.root
	level := 3
	for ; level > 0; level-- {
		e := n.mem.Table(path[level])[index(gpa, level)]
		if e&PTEPresent == 0 || isLarge(e, level) {
			break
		}
		path[level-1] = e & PTEAddrMask
	}
	n.freeEmpty(path, gpa, level)
}

// split replaces the large leaf for gpa in table (at level 1) with a table
// of 4 KiB leaves that map the same memory with the same permissions.
func (n *NPT) split(table, gpa uint64, level int) error {
	if level != 1 {
		return fmt.Errorf("split at level %d: %w", level, ErrReserved)
	}
	t := n.mem.Table(table)
	i := index(gpa, level)
	e := t[i]
	pt, err := n.allocTable()
	if err != nil {
		return err
	}
	bits := e &^ (PTEAddrMask | PTELarge | PTEPATLarge)
	if e&PTEPATLarge != 0 {
		bits |= PTEPAT4K
	}
	base := e & PTEAddrMask2M
	sub := n.mem.Table(pt)
	for j := range sub {
		sub[j] = base + uint64(j)*PageSize4K | bits
	}
	t[i] = nonLeaf(pt)
	return nil
}

// freeEmpty frees the tables on path below the root that became empty
// after an entry at level was cleared, clearing their parent entries.
func (n *NPT) freeEmpty(path [4]uint64, gpa uint64, level int) {
	for l := level; l < 3; l++ {
		if !empty(n.mem.Table(path[l])) {
			return
		}
		n.mem.Table(path[l+1])[index(gpa, l+1)] = 0
		n.mem.FreeTable(path[l])
	}
}

func empty(t *[512]uint64) bool {
	for _, e := range t {
		if e != 0 {
			return false
		}
	}
	return true
}

// Mapping describes the translation of one guest physical address.
type Mapping struct {
	HPA      uint64 // host physical address of the looked-up byte
	PageSize uint64 // PageSize4K or PageSize2M
	Perm     Perm
}

// Lookup translates gpa the way the nested walk would; ok is false when no
// present leaf covers it.
func (n *NPT) Lookup(gpa uint64) (m Mapping, ok bool) {
	if gpa >= MaxGPA {
		return Mapping{}, false
	}
	table := n.root
	for level := 3; level >= 0; level-- {
		e := n.mem.Table(table)[index(gpa, level)]
		if e&PTEPresent == 0 {
			return Mapping{}, false
		}
		if level == 0 {
			return Mapping{HPA: e&PTEAddrMask | gpa&(PageSize4K-1), PageSize: PageSize4K, Perm: permOf(e)}, true
		}
		if isLarge(e, level) {
			if level != 1 {
				return Mapping{}, false // 1 GiB pages are never built here
			}
			return Mapping{HPA: e&PTEAddrMask2M | gpa&(PageSize2M-1), PageSize: PageSize2M, Perm: permOf(e)}, true
		}
		table = e & PTEAddrMask
	}
	return Mapping{}, false
}

// Destroy frees every table page, the root included. The NPT must not be
// used afterwards, and no VMCB may still name its root.
func (n *NPT) Destroy() {
	n.free(n.root, 3)
	n.root = 0
}

func (n *NPT) free(table uint64, level int) {
	if level > 0 {
		for _, e := range n.mem.Table(table) {
			if e&PTEPresent != 0 && !isLarge(e, level) {
				n.free(e&PTEAddrMask, level-1)
			}
		}
	}
	n.mem.FreeTable(table)
}
