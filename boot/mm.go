package boot

import (
	"unsafe"

	"hv/boot/pagetable"
	"hv/boot/pmem"
	"hv/boot/vaspace"
)

// Memory management for the platform and the Go runtime. The work is done by
// three packages: pmem hands out physical frames, pagetable edits the host
// page tables and vaspace keeps the books of the runtime's mmap space. This
// file owns their state and applies the platform's rules on top.
//
// Physical memory is identity-mapped (VA = PA) for all RAM and the whole low
// 4 GiB (firmware tables, the local APIC and IOAPIC pages), except page 0,
// which stays unmapped so that a nil dereference faults. The Go runtime's
// mmap regions live elsewhere in the lower half (it asks for 0xc000000000 and
// up; regions without a usable hint go at mmapFloor and up), backed eagerly by
// zeroed 4 KiB frames when mapped read-write and not backed at all while
// PROT_NONE. Mappings never change from one frame to another: munmap and
// PROT_NONE keep the backing in the page tables, and a later mmap of the range
// reuses and re-zeroes it, so no other CPU can hold a stale translation and no
// TLB shootdown is needed. Nothing here ever removes or narrows a present
// translation; it only fills in entries that were not present.
//
// Kernel context: the state kept in globals is pointer-free (pmem.Allocator,
// vaspace.Space, the root's physical address). pagetable.Table handles are
// built on the stack for each operation, over the zero-size physMem and
// hostFrames, so that nothing escapes to the heap (TestMMNoHeap checks).
// Everything runs on the boot CPU before the others start, or under the big
// kernel lock.

const (
	pageSize  = 4096
	mmapFloor = 0x7f0000000000

	// identityMin is the least the identity map covers: the whole low 4 GiB,
	// where the firmware's tables and the MMIO ranges live, whatever the RAM.
	identityMin = 4 << 30
	// uncachedBase starts the 32 MiB below 4 GiB that hold the IOAPIC
	// (FEC00000H) and the local APIC (FEE00000H, Intel SDM vol. 3A §11.4.1)
	// registers; they are mapped uncached (PCD|PWT, SDM vol. 3A §4.9.2).
	uncachedBase = 0xFE000000

	// cpuidPage1GB is CPUID.80000001H:EDX.Page1GB[bit 26]: 1 GiB pages are
	// available (SDM vol. 3A §4.1.4).
	cpuidPage1GB = 1 << 26

	// Linux mmap(2) ABI values (include/uapi/asm-generic/mman-common.h).
	protRead          = 1
	protWrite         = 2
	mapFixed          = 0x10
	mapAnon           = 0x20
	mapFixedNoReplace = 0x100000

	// errnoEEXIST and errnoENODEV are the Linux errno values mmap returns
	// for an occupied MAP_FIXED_NOREPLACE range and for file mappings.
	errnoEEXIST = 17
	errnoENODEV = 19
)

var (
	frameAlloc pmem.Allocator
	// framesFree mirrors frameAlloc.FreeFrames() after every operation, for
	// the readers in other files.
	framesFree  uint64
	frameTop    uint64 // one past the highest usable frame (a frame number)
	physTop     uint64 // highest usable RAM address + 1 (identity-mapped)
	kernelCR3   uint64 // root of the host page tables; 0 while on the entry's tables
	nxSupported bool   // CPUID says NX; loadCPU sets EFER.NXE to match

	mmapSpace vaspace.Space
	// mmapChanges receives vaspace's change lists. The platform does not need
	// them (backing stays with the address range), but vaspace refuses an
	// operation whose list does not fit; an operation over k regions changes
	// at most 2k+1 pieces.
	mmapChanges [2*vaspace.MaxRegions + 1]vaspace.Change
)

// physBytes returns the n bytes of physical memory at pa, through the
// identity map.
func physBytes(pa, n uint64) []byte {
	return unsafe.Slice((*byte)(physPtr(pa)), n)
}

// hostFrames is the frame source for the host page tables: frameAlloc over
// the identity map. It is zero-size, like physMem, so that pagetable's
// interface calls, through which their operands escape, cost no allocation;
// a pmem.Frames holds a pointer that would have to move to the heap.
type hostFrames struct{}

func (hostFrames) AllocFrame() (uint64, error) { return frameAlloc.Alloc(physMem{}) }
func (hostFrames) FreeFrame(pa uint64) error   { return frameAlloc.Free(physMem{}, pa) }

// initMemory sets the frame allocator up over the usable RAM ranges minus the
// reserved ones. pmem itself never hands out the first MiB, which keeps the
// AP trampoline and the BIOS areas safe.
func initMemory(usable, reserved []pmem.Range) error {
	physTop, frameTop, framesFree = 0, 0, 0
	if err := frameAlloc.Init(physMem{}, usable, reserved); err != nil {
		return err
	}
	for _, r := range usable {
		physTop = max(physTop, r.End)
	}
	frameTop = physTop / pageSize
	framesFree = frameAlloc.FreeFrames()
	return nil
}

// The AP start-up page must be one the allocator never hands out.
const _ = uint64(pmem.LowMemoryEnd - (trampolineBase + pageSize))

// allocFrame returns a zeroed frame.
func allocFrame() (uint64, bool) {
	pa, err := frameAlloc.Alloc(physMem{})
	if err != nil {
		return 0, false
	}
	framesFree = frameAlloc.FreeFrames()
	clear(physBytes(pa, pageSize))
	return pa, true
}

// allocContiguous returns n zeroed frames aligned to align bytes, a power of
// two (for guest RAM in 2 MiB pages).
func allocContiguous(n, align uint64) (uint64, bool) {
	pa, err := frameAlloc.AllocContiguous(physMem{}, n, max(align/pageSize, 1))
	if err != nil {
		return 0, false
	}
	framesFree = frameAlloc.FreeFrames()
	clear(physBytes(pa, n*pageSize))
	return pa, true
}

// freeFrames returns n frames from allocFrame or allocContiguous. It frees all
// of them, or, when any was not handed out (free already, reserved, below
// 1 MiB, outside RAM, misaligned), none, and reports false.
func freeFrames(pa, n uint64) bool {
	if frameAlloc.FreeContiguous(physMem{}, pa, n) != nil {
		return false
	}
	framesFree = frameAlloc.FreeFrames()
	return true
}

// hostTable returns a handle on the host page tables that can look up but not
// map (it has no frame source).
func hostTable() pagetable.Table {
	return pagetable.Table{Mem: physMem{}, Root: kernelCR3}
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
	if kernelCR3 == 0 {
		// Still on the entry's tables, which map the low 4 GiB.
		return end <= identityMin
	}
	t := hostTable()
	for va := addr &^ (pageSize - 1); va < end; {
		_, _, size, ok := t.Lookup(va)
		if !ok {
			return false
		}
		next := (va &^ (size - 1)) + size
		if next == 0 {
			return true // the page ends at the top of the address space
		}
		va = next
	}
	return true
}

// buildKernelPageTables creates the final host page tables and switches CR3
// to them.
func buildKernelPageTables() bool {
	root, ok := buildHostPageTables()
	framesFree = frameAlloc.FreeFrames()
	if !ok {
		return false
	}
	writeCR3(root)
	kernelCR3 = root
	return true
}

// buildHostPageTables builds the identity map of RAM and the low 4 GiB without
// page 0, with the APIC range uncached, and sets up the mmap space above it.
// It returns the root; CR3 and framesFree are the caller's business.
func buildHostPageTables() (uint64, bool) {
	// Below 4 GiB the firmware's MTRRs give MMIO holes their own memory type,
	// so 2 MiB pages keep each page inside one type: a large page spanning
	// several is undefined (SDM vol. 3A, "Large Page Size Considerations",
	// §12.11.9). Above, RAM may use 1 GiB pages.
	t, err := pagetable.New(physMem{}, hostFrames{}, pagetable.Allow2M)
	if err != nil {
		return 0, false
	}
	top := max(identityMin, (physTop+pagetable.Size2M-1)&^(pagetable.Size2M-1))
	rw := pagetable.Present | pagetable.Writable
	if t.Map(pageSize, pageSize, pagetable.Size2M-pageSize, rw) != nil ||
		t.Map(pagetable.Size2M, pagetable.Size2M, uncachedBase-pagetable.Size2M, rw) != nil ||
		t.Map(uncachedBase, uncachedBase, identityMin-uncachedBase, rw|pagetable.CacheDisable|pagetable.WriteThrough) != nil {
		return 0, false
	}
	if top > identityMin {
		if cpuHasPage1GB() {
			t.Sizes |= pagetable.Allow1G
		}
		if t.Map(identityMin, identityMin, top-identityMin, rw) != nil {
			return 0, false
		}
	}
	forbidden := [1]vaspace.Range{{Start: 0, End: top}}
	if mmapSpace.Init(vaspace.Config{Floor: mmapFloor, Forbidden: forbidden[:]}) != nil {
		return 0, false
	}
	return t.Root, true
}

func cpuHasPage1GB() bool {
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	if maxExt < 0x80000001 {
		return false
	}
	_, _, _, d := cpuid(0x80000001, 0)
	return d&cpuidPage1GB != 0
}

// backRange maps and zeroes every page of [a, b): pages that still have their
// backing from an earlier mapping keep it and are zeroed, the others get a
// fresh frame.
func backRange(a, b uint64) bool {
	t := pagetable.Table{Mem: physMem{}, Frames: hostFrames{}, Root: kernelCR3}
	flags := pagetable.Present | pagetable.Writable
	if nxSupported {
		flags |= pagetable.NoExecute
	}
	ok := true
	for va := a; va < b && ok; va += pageSize {
		if pa, _, _, present := t.Lookup(va); present {
			clear(physBytes(pa, pageSize))
			continue
		}
		pa, err := frameAlloc.Alloc(physMem{})
		if err != nil {
			ok = false
			break
		}
		clear(physBytes(pa, pageSize))
		if t.Map(va, pa, pageSize, flags) != nil {
			_ = frameAlloc.Free(physMem{}, pa)
			ok = false
		}
	}
	framesFree = frameAlloc.FreeFrames()
	return ok
}

// mmapOverlaps reports whether any reserved or mapped region intersects
// [a, a+size); a+size must not wrap.
func mmapOverlaps(a, size uint64) bool {
	regs := mmapSpace.Regions()
	lo, hi := 0, len(regs)
	for lo < hi { // first region ending above a
		m := int(uint(lo+hi) >> 1)
		if regs[m].End <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(regs) && regs[lo].Start < a+size
}

func sysMmapCall(addr, length, prot, flags uint64, fd int64) int64 {
	if flags&mapAnon == 0 {
		return -errnoENODEV // no files here
	}
	if length == 0 || addr&(pageSize-1) != 0 {
		return -_EINVAL
	}
	size := (length + pageSize - 1) &^ (pageSize - 1)
	if size < length {
		return -_ENOMEM
	}
	fixed := flags&(mapFixed|mapFixedNoReplace) != 0
	if flags&mapFixedNoReplace != 0 && addr+size > addr && mmapOverlaps(addr, size) {
		return -errnoEEXIST
	}
	a, _, err := mmapSpace.Reserve(addr, size, fixed, mmapChanges[:])
	if err != nil {
		if fixed && (err == vaspace.ErrBadRange || err == vaspace.ErrForbidden) {
			return -_EINVAL
		}
		return -_ENOMEM
	}
	if prot&(protRead|protWrite) != 0 {
		if _, err := mmapSpace.SetState(a, size, vaspace.Mapped, mmapChanges[:]); err != nil || !backRange(a, a+size) {
			// Whatever got backed keeps its backing, as after munmap.
			_, _ = mmapSpace.Release(a, size, mmapChanges[:])
			return -_ENOMEM
		}
	}
	return int64(a)
}

func sysMunmapCall(addr, length uint64) int64 {
	if addr&(pageSize-1) != 0 || length == 0 {
		return -_EINVAL
	}
	if _, err := mmapSpace.Release(addr, length, mmapChanges[:]); err != nil {
		if err == vaspace.ErrBadRange || err == vaspace.ErrForbidden {
			return -_EINVAL
		}
		return -_ENOMEM
	}
	return 0
}

// madvise advice values (include/uapi/asm-generic/mman-common.h).
const (
	madvDontNeed = 4
	madvFree     = 8
)

// sysMadviseCall serves madvise. The Go runtime releases memory to the OS
// with MADV_DONTNEED (GODEBUG madvdontneed=1, the default) and, since Go
// 1.26, counts on those pages reading back as zero: a span made of
// scavenged pages is not cleared again (mheap.initSpan). Keeping the frames
// but not clearing them handed out fresh objects full of old data (the
// self-test's sync.Pool came back with a stale interface after the heap had
// grown and shrunk). So DONTNEED, and FREE for good measure, clear every
// mapped page of the range; the frames stay with the range as after munmap.
// Other advice is accepted and ignored.
func sysMadviseCall(addr, length, advice uint64) int64 {
	if addr&(pageSize-1) != 0 || addr+length < addr {
		return -_EINVAL
	}
	if advice != madvDontNeed && advice != madvFree {
		return 0
	}
	end := (addr + length + pageSize - 1) &^ (pageSize - 1)
	t := pagetable.Table{Mem: physMem{}, Frames: hostFrames{}, Root: kernelCR3}
	for va := addr; va < end; va += pageSize {
		if va < identityMin || va >= 1<<47 {
			return -_EINVAL // only the runtime's own regions, never the identity map
		}
		if pa, _, _, present := t.Lookup(va); present {
			clear(physBytes(pa, pageSize))
		}
	}
	return 0
}
