// Package pmem allocates 4 KiB physical frames from the firmware's usable memory, minus the
// ranges the caller reserves (kernel image, boot information, modules) and minus the first MiB.
//
// Boundary: it hands out and takes back physical frame addresses; it does not map, zero or
// otherwise touch the frames it manages (zeroing is the caller's job: a fresh frame holds
// whatever was there before). Its only memory access is to its own bitmap, through Memory.
//
// The bitmap lives in physical memory that Init carves out of the usable ranges, so the state
// scales with the machine without a static array; Allocator itself is a few words with no
// pointers, so it may live in a global and be used from any context. Like the rest of early
// boot/, nothing here allocates on the Go heap or keeps package state. Allocation is
// deterministic: the lowest suitable frame is always chosen.
package pmem

import "math/bits"

// Memory is a view of physical memory. Bytes returns the n bytes at physical address addr, or
// false when any of them lies outside the view. Writes to the returned slice write memory.
type Memory interface {
	Bytes(addr, n uint64) ([]byte, bool)
}

// Error is a constant error; converting a constant to error does not allocate.
type Error string

func (e Error) Error() string { return string(e) }

// Errors. Callers branch on them with ==.
const (
	ErrNoUsableMemory = Error("pmem: no usable memory above 1 MiB")
	ErrNoBitmapRoom   = Error("pmem: no free range large enough for the allocator bitmap")
	ErrBitmapAccess   = Error("pmem: allocator bitmap is not accessible through Memory")
	ErrNotInitialised = Error("pmem: allocator not initialised")
	ErrOutOfMemory    = Error("pmem: out of physical memory")
	ErrMisaligned     = Error("pmem: address is not frame-aligned")
	ErrNotManaged     = Error("pmem: frame is not managed by the allocator")
	ErrDoubleFree     = Error("pmem: frame is already free")
	ErrInUse          = Error("pmem: frame to reserve is allocated")
	ErrBadRequest     = Error("pmem: bad frame count or alignment")
)

// FrameSize is the size of the frames managed: the 4 KiB page of SDM vol. 3A §4.5.
const FrameSize = 4096

// LowMemoryEnd is never handed out. Below 1 MiB sit the real-mode IVT and BIOS data area, the
// EBDA, option ROMs and the legacy video hole, and the AP start-up trampoline must be placed
// there by the caller (the SIPI vector addresses a 4 KiB page below 1 MiB; SDM vol. 3A §9.4.4).
const LowMemoryEnd = 1 << 20

const wordBits = 64

// Range is the physical range [Start, End).
type Range struct {
	Start, End uint64
}

// Allocator is the state of the frame allocator. The zero value is not initialised. It holds no
// pointers: the bitmaps are at physical address bitmap, and every operation that reads them takes
// the Memory they are reachable through.
//
// The bitmap area holds two bitmaps of words, one bit per frame from frame number first:
// managed (the frame was usable and not reserved) and then free (the frame is managed and not
// allocated). Keeping both is what lets Free tell a double free from a stray address.
type Allocator struct {
	bitmap     uint64 // physical address of the bitmap area
	bitmapSize uint64 // bytes, a multiple of FrameSize
	first      uint64 // frame number of bit 0
	words      uint64 // words in each bitmap
	total      uint64 // managed frames
	free       uint64 // free frames
	hint       uint64 // no free frame has an index below this
}

// TotalFrames returns the number of frames under management (usable minus reserved).
func (a *Allocator) TotalFrames() uint64 { return a.total }

// FreeFrames returns the number of frames that Alloc can still return.
func (a *Allocator) FreeFrames() uint64 { return a.free }

// Bitmap returns the physical range the allocator's own bitmap occupies.
func (a *Allocator) Bitmap() Range { return Range{a.bitmap, a.bitmap + a.bitmapSize} }

func frameUp(x uint64) uint64 {
	if x > ^uint64(0)-(FrameSize-1) {
		return ^uint64(0) / FrameSize
	}
	return (x + FrameSize - 1) / FrameSize
}

func frameDown(x uint64) uint64 { return x / FrameSize }

// Init sets up the allocator to manage the frames wholly inside the usable ranges and above
// LowMemoryEnd, minus the frames touched by any reserved range. Ranges may overlap and come in
// any order. The bitmap is placed in the lowest usable, unreserved place that fits, so that it is
// reachable through an early identity map of low memory.
func (a *Allocator) Init(mem Memory, usable, reserved []Range) error {
	*a = Allocator{}
	lo, hi := ^uint64(0), uint64(0)
	for _, r := range usable {
		s, e := max(frameUp(r.Start), LowMemoryEnd/FrameSize), frameDown(r.End)
		if s < e {
			lo, hi = min(lo, s), max(hi, e)
		}
	}
	if lo >= hi {
		return ErrNoUsableMemory
	}
	words := (hi - lo + wordBits - 1) / wordBits
	size := (2*words*8 + FrameSize - 1) &^ (FrameSize - 1)
	at, ok := placeBitmap(usable, reserved, size)
	if !ok {
		return ErrNoBitmapRoom
	}
	bm, ok := mem.Bytes(at, size)
	if !ok || uint64(len(bm)) < size {
		return ErrBitmapAccess
	}
	clear(bm[:size])
	*a = Allocator{bitmap: at, bitmapSize: size, first: lo, words: words, hint: 0}
	managed, free := a.maps(bm)
	for _, r := range usable {
		s, e := max(frameUp(r.Start), LowMemoryEnd/FrameSize), frameDown(r.End)
		if s < e {
			fillBits(managed, s-lo, e-lo, true)
			fillBits(free, s-lo, e-lo, true)
		}
	}
	unmanage := func(r Range) {
		s, e := max(frameDown(r.Start), lo), min(frameUp(r.End), hi)
		if s < e {
			fillBits(managed, s-lo, e-lo, false)
			fillBits(free, s-lo, e-lo, false)
		}
	}
	for _, r := range reserved {
		unmanage(r)
	}
	unmanage(a.Bitmap())
	for i := uint64(0); i < words; i++ {
		a.total += uint64(bits.OnesCount64(word(managed, i)))
	}
	a.free = a.total
	return nil
}

// placeBitmap returns the lowest frame-aligned address above LowMemoryEnd where size bytes fit
// inside one usable range without touching a reserved one.
func placeBitmap(usable, reserved []Range, size uint64) (uint64, bool) {
	best, found := uint64(0), false
	for _, u := range usable {
		s, e := max(frameUp(u.Start), LowMemoryEnd/FrameSize)*FrameSize, frameDown(u.End)*FrameSize
		for s < e && e-s >= size {
			// Move past the first reserved range in the way, then look again.
			moved := false
			for _, r := range reserved {
				if r.Start < s+size && r.End > s && r.End > r.Start {
					s = frameUp(r.End) * FrameSize
					moved = true
					break
				}
			}
			if !moved {
				if !found || s < best {
					best, found = s, true
				}
				break
			}
		}
	}
	return best, found
}

// maps returns the two bitmaps inside the bitmap area bm.
func (a *Allocator) maps(bm []byte) (managed, free []byte) {
	n := a.words * 8
	return bm[:n], bm[n : 2*n]
}

// view fetches the bitmaps for one operation.
func (a *Allocator) view(mem Memory) (managed, free []byte, err error) {
	if a.bitmapSize == 0 {
		return nil, nil, ErrNotInitialised
	}
	bm, ok := mem.Bytes(a.bitmap, a.bitmapSize)
	if !ok || uint64(len(bm)) < a.bitmapSize {
		return nil, nil, ErrBitmapAccess
	}
	managed, free = a.maps(bm)
	return managed, free, nil
}

func word(m []byte, i uint64) uint64 {
	b := m[i*8 : i*8+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// fillBits sets (or clears) bits [s, e), a byte at a time where it can: Init runs this over
// every frame of the machine.
func fillBits(m []byte, s, e uint64, set bool) {
	for ; s < e && s%8 != 0; s++ {
		putBit(m, s, set)
	}
	var fill byte
	if set {
		fill = 0xFF
	}
	for ; e-s >= 8; s += 8 {
		m[s/8] = fill
	}
	for ; s < e; s++ {
		putBit(m, s, set)
	}
}

func putBit(m []byte, i uint64, set bool) {
	if set {
		setBit(m, i)
	} else {
		clearBit(m, i)
	}
}

func testBit(m []byte, i uint64) bool { return m[i/8]&(1<<(i%8)) != 0 }
func setBit(m []byte, i uint64)       { m[i/8] |= 1 << (i % 8) }
func clearBit(m []byte, i uint64)     { m[i/8] &^= 1 << (i % 8) }

// Alloc returns the lowest free frame.
func (a *Allocator) Alloc(mem Memory) (uint64, error) {
	_, free, err := a.view(mem)
	if err != nil {
		return 0, err
	}
	for i := a.hint / wordBits; i < a.words; i++ {
		w := word(free, i)
		if w == 0 {
			continue
		}
		idx := i*wordBits + uint64(bits.TrailingZeros64(w))
		clearBit(free, idx)
		a.free--
		a.hint = idx + 1
		return (a.first + idx) * FrameSize, nil
	}
	a.hint = a.words * wordBits
	return 0, ErrOutOfMemory
}

// AllocContiguous returns the lowest run of n free frames whose first frame number is a
// multiple of alignFrames (a power of two), e.g. n = alignFrames = 512 for a 2 MiB page.
func (a *Allocator) AllocContiguous(mem Memory, n, alignFrames uint64) (uint64, error) {
	if n == 0 || alignFrames == 0 || alignFrames&(alignFrames-1) != 0 {
		return 0, ErrBadRequest
	}
	_, free, err := a.view(mem)
	if err != nil {
		return 0, err
	}
	limit := a.words * wordBits
	if n > limit {
		return 0, ErrOutOfMemory
	}
	// Candidates are indices idx with (first+idx) % alignFrames == 0.
	idx := alignIndex(a.first, a.hint, alignFrames)
	for idx <= limit-n {
		busy, ok := firstBusy(free, idx, n)
		if !ok {
			for k := idx; k < idx+n; k++ {
				clearBit(free, k)
			}
			a.free -= n
			if idx == a.hint {
				a.hint = idx + n
			}
			return (a.first + idx) * FrameSize, nil
		}
		next := alignIndex(a.first, busy+1, alignFrames)
		if next <= idx { // overflow guard
			break
		}
		idx = next
	}
	return 0, ErrOutOfMemory
}

// alignIndex returns the lowest index >= idx whose frame number first+index is a multiple of
// align.
func alignIndex(first, idx, align uint64) uint64 {
	f := first + idx
	return (f+align-1)&^(align-1) - first
}

// firstBusy returns the first index in [idx, idx+n) whose frame is not free, skipping whole
// words where it can.
func firstBusy(free []byte, idx, n uint64) (uint64, bool) {
	end := idx + n
	for i := idx; i < end; {
		if i%wordBits == 0 && end-i >= wordBits {
			if w := word(free, i/wordBits); w != ^uint64(0) {
				return i + uint64(bits.TrailingZeros64(^w)), true
			}
			i += wordBits
			continue
		}
		if !testBit(free, i) {
			return i, true
		}
		i++
	}
	return 0, false
}

// index converts a frame address to a bitmap index, checking alignment and range.
func (a *Allocator) index(pa uint64) (uint64, error) {
	if pa%FrameSize != 0 {
		return 0, ErrMisaligned
	}
	f := pa / FrameSize
	if f < a.first || f-a.first >= a.words*wordBits {
		return 0, ErrNotManaged
	}
	return f - a.first, nil
}

// Free returns the frame at pa. Freeing a frame twice, or one the allocator does not manage, is
// an error and changes nothing.
func (a *Allocator) Free(mem Memory, pa uint64) error {
	return a.FreeContiguous(mem, pa, 1)
}

// FreeContiguous returns the n frames starting at pa: all of them, or, on error, none.
func (a *Allocator) FreeContiguous(mem Memory, pa, n uint64) error {
	managed, free, err := a.view(mem)
	if err != nil {
		return err
	}
	if n == 0 || n > a.words*wordBits {
		return ErrBadRequest
	}
	idx, err := a.index(pa)
	if err != nil {
		return err
	}
	if idx+n > a.words*wordBits {
		return ErrNotManaged
	}
	for k := idx; k < idx+n; k++ {
		if !testBit(managed, k) {
			return ErrNotManaged
		}
		if testBit(free, k) {
			return ErrDoubleFree
		}
	}
	for k := idx; k < idx+n; k++ {
		setBit(free, k)
	}
	a.free += n
	a.hint = min(a.hint, idx)
	return nil
}

// Reserve takes the frames that r touches out of management for good, e.g. a firmware table
// found after Init. Frames outside management are ignored; if any frame in r is allocated, it
// is ErrInUse and nothing changes.
func (a *Allocator) Reserve(mem Memory, r Range) error {
	managed, free, err := a.view(mem)
	if err != nil {
		return err
	}
	if r.End <= r.Start {
		return nil
	}
	lim := a.first + a.words*wordBits
	s, e := max(frameDown(r.Start), a.first), min(frameUp(r.End), lim)
	for f := s; f < e; f++ {
		k := f - a.first
		if testBit(managed, k) && !testBit(free, k) {
			return ErrInUse
		}
	}
	for f := s; f < e; f++ {
		k := f - a.first
		if testBit(managed, k) {
			clearBit(managed, k)
			clearBit(free, k)
			a.total--
			a.free--
		}
	}
	return nil
}

// Frames binds an Allocator to the Memory its bitmap is reachable through, which makes it the
// frame source that boot/pagetable takes. Build one where it is needed (it holds pointers, so
// it must not be stored in a global that is written after the runtime starts).
type Frames struct {
	A   *Allocator
	Mem Memory
}

// AllocFrame allocates one frame; it is not zeroed.
func (f *Frames) AllocFrame() (uint64, error) { return f.A.Alloc(f.Mem) }

// FreeFrame frees one frame.
func (f *Frames) FreeFrame(pa uint64) error { return f.A.Free(f.Mem, pa) }
