// Package vaspace keeps the books of the Go runtime's virtual address space: which ranges of the
// canonical lower half are reserved (PROT_NONE, no backing) and which are mapped (read-write,
// backed), so that mmap, munmap and mprotect can be answered at ring 0.
//
// Boundary: bookkeeping only. It never touches page tables or frames; every operation reports
// the sub-ranges whose state changed so that the caller backs or frees exactly those pages. It
// refuses ranges that overlap the configured forbidden areas (the identity map of physical
// memory, the kernel image, the null page).
//
// Space is a fixed-capacity sorted list without pointers, so it may live in a global and be
// used from system-call context. Like the rest of early boot/, nothing here allocates on the Go
// heap or keeps package state.
package vaspace

// Error is a constant error; converting a constant to error does not allocate.
type Error string

func (e Error) Error() string { return string(e) }

// Errors. Callers branch on them with ==; each maps onto an errno for the runtime.
const (
	ErrBadConfig      = Error("vaspace: bad configuration")                        // (setup)
	ErrBadRange       = Error("vaspace: range misaligned, empty or out of bounds") // EINVAL
	ErrForbidden      = Error("vaspace: range overlaps a forbidden area")          // EINVAL / ENOMEM
	ErrNoSpace        = Error("vaspace: no free range large enough")               // ENOMEM
	ErrTooManyRegions = Error("vaspace: region list full")                         // ENOMEM
	ErrTooManyChanges = Error("vaspace: change list too small")                    // caller bug
	ErrNotReserved    = Error("vaspace: part of the range is not reserved")        // ENOMEM
	ErrBadState       = Error("vaspace: state must be Reserved or Mapped")         // caller bug
)

// PageSize is the granularity of every range: the 4 KiB page of SDM vol. 3A §4.5.
const PageSize = 4096

// Capacities.
const (
	MaxRegions   = 1024
	MaxForbidden = 8
	// LowerHalfEnd is the end of the canonical lower half with 4-level paging (48-bit linear
	// addresses, SDM vol. 3A §4.5): addresses from here up to the upper half are not canonical.
	LowerHalfEnd = 1 << 47
	// DefaultFloor is where a search without a usable hint starts: 64 GiB, above an identity map
	// of ordinary machines' memory and far below the Go heap's hint addresses, so that first-fit
	// placements are compact and predictable.
	DefaultFloor = 0x10_0000_0000
)

// State is the state of a page.
type State uint8

// Page states.
const (
	Free     State = iota // not part of the address space
	Reserved              // reserved, inaccessible, no backing (mmap PROT_NONE)
	Mapped                // accessible and backed (mmap PROT_READ|PROT_WRITE)
)

// Range is [Start, End).
type Range struct {
	Start, End uint64
}

// Region is a range in one state.
type Region struct {
	Start, End uint64
	State      State
}

// Change reports that [Start, End) went from From to To.
type Change struct {
	Start, End uint64
	From, To   State
}

// Config describes the space.
type Config struct {
	// Floor is where searches start; DefaultFloor when zero.
	Floor uint64
	// Limit is the end of usable address space; LowerHalfEnd when zero.
	Limit uint64
	// Forbidden lists ranges no operation may touch, at most MaxForbidden.
	Forbidden []Range
}

// Space is the address space. The zero value must be initialised with Init.
type Space struct {
	floor, limit uint64
	forbidden    [MaxForbidden]Range
	nForbidden   int
	// regions[:n] are sorted, disjoint, never Free, and neighbours that touch differ in state.
	regions [MaxRegions]Region
	n       int
}

// Init sets the space up empty.
func (s *Space) Init(c Config) error {
	*s = Space{floor: c.Floor, limit: c.Limit}
	if s.floor == 0 {
		s.floor = DefaultFloor
	}
	if s.limit == 0 {
		s.limit = LowerHalfEnd
	}
	if s.limit > LowerHalfEnd || s.limit%PageSize != 0 || s.floor%PageSize != 0 || s.floor >= s.limit ||
		len(c.Forbidden) > MaxForbidden {
		return ErrBadConfig
	}
	for i, f := range c.Forbidden {
		if f.End <= f.Start {
			return ErrBadConfig
		}
		s.forbidden[i] = f
	}
	s.nForbidden = len(c.Forbidden)
	return nil
}

// Regions returns the reserved and mapped regions in address order.
func (s *Space) Regions() []Region { return s.regions[:s.n] }

// Lookup returns the region containing addr, or false when addr is in no region.
func (s *Space) Lookup(addr uint64) (Region, bool) {
	i := s.search(addr)
	if i < s.n && s.regions[i].Start <= addr {
		return s.regions[i], true
	}
	return Region{}, false
}

// search returns the index of the first region ending above addr.
func (s *Space) search(addr uint64) int {
	lo, hi := 0, s.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.regions[m].End <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// pageRange validates [addr, addr+size), rounding size up to pages.
func (s *Space) pageRange(addr, size uint64) (Range, error) {
	if addr%PageSize != 0 || size == 0 || size > s.limit {
		return Range{}, ErrBadRange
	}
	size = (size + PageSize - 1) &^ (PageSize - 1)
	if addr >= s.limit || s.limit-addr < size {
		return Range{}, ErrBadRange
	}
	r := Range{addr, addr + size}
	if s.forbiddenOverlap(r) {
		return Range{}, ErrForbidden
	}
	return r, nil
}

func (s *Space) forbiddenOverlap(r Range) bool {
	_, hit := s.forbiddenEnd(r)
	return hit
}

// forbiddenEnd returns the end of a forbidden range overlapping r.
func (s *Space) forbiddenEnd(r Range) (uint64, bool) {
	for _, f := range s.forbidden[:s.nForbidden] {
		if f.Start < r.End && r.Start < f.End {
			return f.End, true
		}
	}
	return 0, false
}

// isFree reports whether no region overlaps r.
func (s *Space) isFree(r Range) bool {
	i := s.search(r.Start)
	return i == s.n || s.regions[i].Start >= r.End
}

// Reserve adds a reserved range of size bytes (rounded up to pages) and returns its address.
// With fixed, the range is exactly [hint, hint+size), and whatever was there becomes Reserved;
// out receives the sub-ranges that changed (Mapped ones lose their backing, as a MAP_FIXED
// mapping replaces old contents). Without fixed, a page-aligned hint is used if that range is
// free, else the lowest free range at or above the floor is chosen.
func (s *Space) Reserve(hint, size uint64, fixed bool, out []Change) (addr uint64, n int, err error) {
	if fixed {
		r, err := s.pageRange(hint, size)
		if err != nil {
			return 0, 0, err
		}
		n, err := s.set(r, Reserved, out)
		return r.Start, n, err
	}
	if hint != 0 && hint%PageSize == 0 {
		if r, err := s.pageRange(hint, size); err == nil && s.isFree(r) {
			n, err := s.set(r, Reserved, out)
			return r.Start, n, err
		}
	}
	if size == 0 || size > s.limit {
		return 0, 0, ErrBadRange
	}
	size = (size + PageSize - 1) &^ (PageSize - 1)
	r, ok := s.findFree(size)
	if !ok {
		return 0, 0, ErrNoSpace
	}
	n, err = s.set(r, Reserved, out)
	return r.Start, n, err
}

// findFree returns the lowest free, allowed range of size bytes at or above the floor.
func (s *Space) findFree(size uint64) (Range, bool) {
	x := s.floor
	for x <= s.limit && s.limit-x >= size {
		r := Range{x, x + size}
		if end, hit := s.forbiddenEnd(r); hit {
			x = (end + PageSize - 1) &^ (PageSize - 1)
			if x < end { // wrapped
				return Range{}, false
			}
			continue
		}
		i := s.search(x)
		if i < s.n && s.regions[i].Start < r.End {
			x = s.regions[i].End
			continue
		}
		return r, true
	}
	return Range{}, false
}

// SetState changes [addr, addr+size) to Reserved or Mapped. The whole range must already be in
// the space (reserved or mapped), as for mprotect. out receives the sub-ranges that changed.
func (s *Space) SetState(addr, size uint64, state State, out []Change) (int, error) {
	if state != Reserved && state != Mapped {
		return 0, ErrBadState
	}
	r, err := s.pageRange(addr, size)
	if err != nil {
		return 0, err
	}
	// Covered means no gaps: walk the regions from Start and require them to touch.
	c := r.Start
	for i := s.search(r.Start); i < s.n && c < r.End; i++ {
		if s.regions[i].Start > c {
			break
		}
		c = s.regions[i].End
	}
	if c < r.End {
		return 0, ErrNotReserved
	}
	return s.set(r, state, out)
}

// Release removes [addr, addr+size) from the space, as munmap does. Parts that were not in the
// space are ignored. out receives the sub-ranges that changed.
func (s *Space) Release(addr, size uint64, out []Change) (int, error) {
	r, err := s.pageRange(addr, size)
	if err != nil {
		return 0, err
	}
	return s.set(r, Free, out)
}

// changes walks r in address order and reports each piece whose state differs from to. It
// writes at most len(out) entries and returns how many there are.
func (s *Space) changes(r Range, to State, out []Change) int {
	n := 0
	emit := func(start, end uint64, from State) {
		if from == to || start >= end {
			return
		}
		if n < len(out) {
			out[n] = Change{Start: start, End: end, From: from, To: to}
		}
		n++
	}
	c := r.Start
	for i := s.search(r.Start); i < s.n && s.regions[i].Start < r.End; i++ {
		g := s.regions[i]
		emit(c, g.Start, Free)
		c = max(c, g.Start)
		e := min(g.End, r.End)
		emit(c, e, g.State)
		c = e
	}
	emit(c, r.End, Free)
	return n
}

// set makes r state to, all or nothing: capacity of out and of the region list are checked
// before anything changes.
func (s *Space) set(r Range, to State, out []Change) (int, error) {
	n := s.changes(r, to, out)
	if n > len(out) {
		return 0, ErrTooManyChanges
	}
	if n == 0 {
		return 0, nil
	}
	// The regions overlapping r are [i, j); the splice also takes in the neighbours i-1 and j
	// so that merging across r's edges happens in the small buffer.
	i := s.search(r.Start)
	j := i
	for j < s.n && s.regions[j].Start < r.End {
		j++
	}
	lo, hi := i, j
	if lo > 0 {
		lo--
	}
	if hi < s.n {
		hi++
	}
	var buf [5]Region
	k := 0
	add := func(g Region) {
		if g.Start >= g.End || g.State == Free {
			return
		}
		if k > 0 && buf[k-1].End == g.Start && buf[k-1].State == g.State {
			buf[k-1].End = g.End
			return
		}
		buf[k] = g
		k++
	}
	if lo < i {
		add(s.regions[lo])
	}
	if i < j && s.regions[i].Start < r.Start {
		add(Region{s.regions[i].Start, r.Start, s.regions[i].State})
	}
	add(Region{r.Start, r.End, to})
	if i < j && s.regions[j-1].End > r.End {
		add(Region{r.End, s.regions[j-1].End, s.regions[j-1].State})
	}
	if j < hi {
		add(s.regions[j])
	}
	newN := s.n - (hi - lo) + k
	if newN > MaxRegions {
		return 0, ErrTooManyRegions
	}
	// Move the tail, then write the buffer in.
	copy(s.regions[lo+k:newN], s.regions[hi:s.n])
	copy(s.regions[lo:lo+k], buf[:k])
	s.n = newN
	return n, nil
}
