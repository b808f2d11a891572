package boot

import (
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"hv/boot/pagetable"
	"hv/boot/pmem"
)

// The tests run the real mm.go on the host. Its "physical memory" is reached
// through the identity map (physPtr), so the tests map a block of anonymous
// memory at a fixed, otherwise unused address of the test process and
// describe it to initMemory as the machine's RAM. Page tables are built in
// that RAM and walked, but never loaded into CR3.
const (
	fakeRAMBase = 0x4000_0000 // 1 GiB
	fakeRAMSize = 64 << 20
	fakeRAMEnd  = fakeRAMBase + fakeRAMSize
	// fakeImage plays the kernel image: reserved, never handed out.
	fakeImageStart = fakeRAMBase + 0x10_0000
	fakeImageEnd   = fakeRAMBase + 0x18_0000
	// highRAM is usable memory above 4 GiB that the tests describe but never
	// touch (it is not mapped in the test process): frames are handed out
	// lowest first, so only the page-table test, which allocates a few
	// frames, may describe it.
	highRAMStart = 4 << 30
	highRAMEnd   = 5 << 30

	mapPrivate = 0x02
)

var (
	fakeRAMOnce sync.Once
	fakeRAMErr  error
)

// setupMemory maps the fake RAM (once), fills it with a pattern so that
// missing zeroing shows, and initialises the allocator over it.
func setupMemory(t testing.TB, withHighRAM bool) {
	t.Helper()
	fakeRAMOnce.Do(func() {
		const mapFixedNoReplace = 0x100000
		r, _, errno := syscall.Syscall6(syscall.SYS_MMAP, fakeRAMBase, fakeRAMSize,
			syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|mapFixedNoReplace, ^uintptr(0), 0)
		if errno != 0 {
			fakeRAMErr = errno
		} else if r != fakeRAMBase {
			fakeRAMErr = syscall.EADDRINUSE
		}
	})
	if fakeRAMErr != nil {
		t.Skipf("cannot map fake RAM at %#x: %v", fakeRAMBase, fakeRAMErr)
	}
	b := physBytes(fakeRAMBase, fakeRAMSize)
	for i := range b {
		b[i] = 0xAA
	}
	usable := []pmem.Range{{Start: fakeRAMBase, End: fakeRAMEnd}}
	if withHighRAM {
		usable = append(usable, pmem.Range{Start: highRAMStart, End: highRAMEnd})
	}
	reserved := []pmem.Range{{Start: fakeImageStart, End: fakeImageEnd}}
	kernelCR3 = 0
	if err := initMemory(usable, reserved); err != nil {
		t.Fatalf("initMemory: %v", err)
	}
	t.Cleanup(func() { kernelCR3 = 0 })
}

// setupTables builds the host page tables in the fake RAM and makes them the
// ones mm.go works on, as buildKernelPageTables does without writing CR3.
func setupTables(t testing.TB) {
	t.Helper()
	root, ok := buildHostPageTables()
	if !ok {
		t.Fatal("buildHostPageTables failed")
	}
	framesFree = frameAlloc.FreeFrames()
	kernelCR3 = root
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestFrames(t *testing.T) {
	setupMemory(t, false)
	if physTop != fakeRAMEnd || frameTop != fakeRAMEnd/pageSize {
		t.Errorf("physTop, frameTop = %#x, %#x; want %#x, %#x", physTop, frameTop, uint64(fakeRAMEnd), uint64(fakeRAMEnd/pageSize))
	}
	imageFrames := uint64(fakeImageEnd-fakeImageStart) / pageSize
	bm := frameAlloc.Bitmap()
	bitmapFrames := (bm.End - bm.Start) / pageSize
	if want := uint64(fakeRAMSize)/pageSize - imageFrames - bitmapFrames; framesFree != want {
		t.Errorf("framesFree = %d; want %d (all RAM minus the image and the bitmap)", framesFree, want)
	}

	free0 := framesFree
	var got []uint64
	for i := 0; i < 1024; i++ { // past the reserved image
		pa, ok := allocFrame()
		if !ok {
			t.Fatalf("allocFrame %d failed", i)
		}
		if pa%pageSize != 0 || pa < fakeRAMBase || pa >= fakeRAMEnd ||
			pa >= fakeImageStart && pa < fakeImageEnd || pa >= bm.Start && pa < bm.End {
			t.Fatalf("allocFrame = %#x: not a usable frame", pa)
		}
		if !isZero(physBytes(pa, pageSize)) {
			t.Fatalf("allocFrame = %#x: not zeroed", pa)
		}
		physBytes(pa, pageSize)[0] = 1
		got = append(got, pa)
	}
	if framesFree != free0-1024 {
		t.Errorf("framesFree = %d after 1024 allocations from %d", framesFree, free0)
	}

	run, ok := allocContiguous(512, 2<<20)
	if !ok || run%(2<<20) != 0 || run < fakeRAMBase || run+512*pageSize > fakeRAMEnd {
		t.Fatalf("allocContiguous(512, 2 MiB) = %#x, %v", run, ok)
	}
	if !isZero(physBytes(run, 512*pageSize)) {
		t.Error("allocContiguous: run not zeroed")
	}
	if pa, ok := allocContiguous(3, 0); !ok || !isZero(physBytes(pa, 3*pageSize)) {
		t.Errorf("allocContiguous(3, 0) = %#x, %v; want 3 zeroed frames", pa, ok)
	} else if !freeFrames(pa, 3) {
		t.Error("freeFrames of a 3-frame run failed")
	}
	if _, ok := allocContiguous(1, 3*pageSize); ok {
		t.Error("allocContiguous with a non-power-of-two alignment succeeded")
	}
	if _, ok := allocContiguous(fakeRAMSize/pageSize, pageSize); ok {
		t.Error("allocContiguous of more frames than are free succeeded")
	}

	refused := []struct {
		name  string
		pa, n uint64
	}{
		{"trampoline page", trampolineBase, 1},
		{"first MiB", 0, 1},
		{"kernel image", fakeImageStart, 1},
		{"misaligned", got[0] + 8, 1},
		{"beyond RAM", fakeRAMEnd, 1},
		{"run into a free frame", got[len(got)-1], 2},
		{"zero frames", got[0], 0},
	}
	for _, tc := range refused {
		before := framesFree
		if freeFrames(tc.pa, tc.n) {
			t.Errorf("freeFrames(%s) succeeded", tc.name)
		}
		if framesFree != before {
			t.Errorf("freeFrames(%s) changed framesFree", tc.name)
		}
	}
	for _, pa := range got {
		if !freeFrames(pa, 1) {
			t.Fatalf("freeFrames(%#x) failed", pa)
		}
	}
	if freeFrames(got[0], 1) {
		t.Error("double free succeeded")
	}
	if !freeFrames(run, 512) {
		t.Error("freeFrames of the 2 MiB run failed")
	}
	if framesFree != free0 {
		t.Errorf("framesFree = %d after freeing everything; want %d", framesFree, free0)
	}
	for _, n := range []uint64{0, trampolineBase / pageSize, pmem.LowMemoryEnd/pageSize - 1, frameTop} {
		if freeFrames(n*pageSize, 1) {
			t.Errorf("freeFrames(%#x) succeeded for a frame the allocator never hands out", n*pageSize)
		}
	}
}

func TestHostPageTables(t *testing.T) {
	setupMemory(t, true)
	if mmMapped(0x1000, 8) != true || mmMapped(identityMin-8, 16) != false {
		t.Error("before the host tables, mmMapped does not describe the entry's 4 GiB identity map")
	}
	free0 := frameAlloc.FreeFrames()
	setupTables(t)
	if used := free0 - framesFree; used == 0 || used > 16 {
		t.Errorf("the identity map took %d table frames; want a handful", used)
	}
	highPage := uint64(pagetable.Size2M)
	if cpuHasPage1GB() {
		highPage = pagetable.Size1G
	}
	uc := pagetable.CacheDisable | pagetable.WriteThrough
	tests := []struct {
		va     uint64
		mapped bool
		size   uint64
		flags  pagetable.Flags
	}{
		{0, false, 0, 0},
		{0xFFF, false, 0, 0},
		{0x1000, true, pagetable.Size4K, 0},
		{trampolineBase, true, pagetable.Size4K, 0},
		{0x1FF000, true, pagetable.Size4K, 0},
		{0x200000, true, pagetable.Size2M, 0},
		{fakeRAMBase, true, pagetable.Size2M, 0},
		{0xC000_0000, true, pagetable.Size2M, 0},
		{uncachedBase - pageSize, true, pagetable.Size2M, 0},
		{uncachedBase, true, pagetable.Size2M, uc},
		{0xFEC0_0000, true, pagetable.Size2M, uc},
		{0xFEE0_0000, true, pagetable.Size2M, uc},
		{identityMin - 1, true, pagetable.Size2M, uc},
		{identityMin, true, highPage, 0},
		{highRAMEnd - 1, true, highPage, 0},
		{highRAMEnd, false, 0, 0},
		{mmapFloor, false, 0, 0},
	}
	tbl := hostTable()
	for _, tc := range tests {
		pa, flags, size, ok := tbl.Lookup(tc.va)
		if ok != tc.mapped {
			t.Errorf("Lookup(%#x): mapped = %v; want %v", tc.va, ok, tc.mapped)
			continue
		}
		if !ok {
			continue
		}
		want := pagetable.Present | pagetable.Writable | tc.flags
		if pa != tc.va || size != tc.size || flags&^(pagetable.Accessed|pagetable.Dirty) != want {
			t.Errorf("Lookup(%#x) = pa %#x, flags %#x, page %#x; want identity, flags %#x, page %#x", tc.va, pa, flags, size, want, tc.size)
		}
	}

	mapped := []struct {
		addr, n uint64
		want    bool
	}{
		{0, 1, false},
		{0xFF8, 16, false},
		{0x1000, identityMin - 0x1000, true},
		{0x1000, 0, true},
		{0, 0, true},
		{highRAMEnd - 8, 8, true},
		{highRAMEnd - 8, 16, false},
		{^uint64(0) - 3, 8, false},
		{mmapFloor, 8, false},
	}
	for _, tc := range mapped {
		if got := mmMapped(tc.addr, tc.n); got != tc.want {
			t.Errorf("mmMapped(%#x, %#x) = %v; want %v", tc.addr, tc.n, got, tc.want)
		}
	}
}

// backing returns the frame va maps to, or false.
func backing(va uint64) (uint64, bool) {
	tbl := hostTable()
	pa, _, _, ok := tbl.Lookup(va)
	return pa, ok
}

func TestMmapErrors(t *testing.T) {
	setupMemory(t, false)
	setupTables(t)
	const rw, anon = protRead | protWrite, mapAnon | mapPrivate
	tests := []struct {
		name                      string
		addr, length, prot, flags uint64
		want                      int64
	}{
		{"file mapping", 0, pageSize, rw, mapPrivate, -errnoENODEV},
		{"zero length", 0, 0, rw, anon, -_EINVAL},
		{"misaligned hint", 0x1234, pageSize, rw, anon, -_EINVAL},
		{"length wraps", 0, ^uint64(0) - 100, rw, anon, -_ENOMEM},
		{"larger than the lower half", 0, 1 << 48, 0, anon, -_ENOMEM},
		{"fixed in the identity map", 0x1000_0000, pageSize, rw, anon | mapFixed, -_EINVAL},
		{"fixed at page 0", 0, pageSize, rw, anon | mapFixed, -_EINVAL},
		{"fixed past the lower half", 1 << 47, pageSize, rw, anon | mapFixed, -_EINVAL},
		{"fixed across the lower half's end", 1<<47 - pageSize, 2 * pageSize, 0, anon | mapFixed, -_EINVAL},
		{"noreplace in the identity map", 0x1000_0000, pageSize, rw, anon | mapFixedNoReplace, -_EINVAL},
		{"more than memory", 0, 2 * fakeRAMSize, rw, anon, -_ENOMEM},
	}
	for _, tc := range tests {
		before := framesFree
		if got := sysMmapCall(tc.addr, tc.length, tc.prot, tc.flags, -1); got != tc.want {
			t.Errorf("%s: mmap = %d; want %d", tc.name, got, tc.want)
		}
		if tc.want != -_ENOMEM && framesFree != before {
			t.Errorf("%s: failed mmap changed framesFree", tc.name)
		}
		if n := len(mmapSpace.Regions()); n != 0 {
			t.Errorf("%s: failed mmap left %d regions: %v", tc.name, n, mmapSpace.Regions())
		}
	}
	munmaps := []struct {
		name         string
		addr, length uint64
		want         int64
	}{
		{"misaligned", mmapFloor + 8, pageSize, -_EINVAL},
		{"zero length", mmapFloor, 0, -_EINVAL},
		{"identity map", 0x1000_0000, pageSize, -_EINVAL},
		{"past the lower half", 1 << 47, pageSize, -_EINVAL},
		{"a hole", mmapFloor, 1 << 20, 0},
	}
	for _, tc := range munmaps {
		if got := sysMunmapCall(tc.addr, tc.length); got != tc.want {
			t.Errorf("munmap %s = %d; want %d", tc.name, got, tc.want)
		}
	}
}

func TestMmapPlacementAndReuse(t *testing.T) {
	setupMemory(t, false)
	setupTables(t)
	const rw, anon = protRead | protWrite, mapAnon | mapPrivate
	const heapHint = 0xc0_0000_0000

	// Unhinted regions go at the floor, first fit.
	a := sysMmapCall(0, 3*pageSize, rw, anon, -1)
	b := sysMmapCall(0, 1, rw, anon, -1)
	if a != mmapFloor || b != mmapFloor+3*pageSize {
		t.Fatalf("unhinted mmaps at %#x, %#x; want %#x, %#x", a, b, mmapFloor, mmapFloor+3*pageSize)
	}
	if !mmMapped(uint64(a), 4*pageSize) {
		t.Error("read-write mmap is not mapped")
	}
	// A hint in the identity map is ignored; a free one is honoured.
	if c := sysMmapCall(0x1000_0000, pageSize, rw, anon, -1); c != mmapFloor+4*pageSize {
		t.Errorf("mmap with a hint in the identity map = %#x; want the floor's next page %#x", c, mmapFloor+4*pageSize)
	}
	free0 := framesFree
	if r := sysMmapCall(heapHint, 64<<20, 0, anon, -1); r != heapHint {
		t.Fatalf("PROT_NONE mmap at the heap hint = %#x; want %#x", r, heapHint)
	}
	if framesFree != free0 || mmMapped(heapHint, 1) {
		t.Error("PROT_NONE reservation got backing")
	}
	if r := sysMmapCall(heapHint, pageSize, 0, anon, -1); r == heapHint {
		t.Error("hint inside an existing reservation was honoured")
	}
	if r := sysMmapCall(heapHint+pageSize, pageSize, rw, anon|mapFixedNoReplace, -1); r != -errnoEEXIST {
		t.Errorf("MAP_FIXED_NOREPLACE over a reservation = %d; want -EEXIST", r)
	}

	// Committing part of the reservation backs exactly those pages.
	free0 = framesFree
	if r := sysMmapCall(heapHint+pageSize, 2*pageSize, rw, anon|mapFixed, -1); r != heapHint+pageSize {
		t.Fatalf("MAP_FIXED inside the reservation = %#x", r)
	}
	if !mmMapped(heapHint+pageSize, 2*pageSize) || mmMapped(heapHint, 1) || mmMapped(heapHint+3*pageSize, 1) {
		t.Error("MAP_FIXED backed the wrong pages")
	}
	if used := free0 - framesFree; used < 2 || used > 2+3 { // the pages, plus at most a PDPT, PD and PT
		t.Errorf("backing two pages took %d frames", used)
	}
	va := uint64(heapHint + pageSize)

	// munmap keeps the backing; a later mmap of the range reuses and re-zeroes it.
	pa1, _ := backing(va)
	pa2, _ := backing(va + pageSize)
	frame := physBytes(pa1, pageSize)
	if !isZero(frame) || !isZero(physBytes(pa2, pageSize)) {
		t.Fatal("fresh backing is not zero")
	}
	frame[100] = 0x55
	if r := sysMunmapCall(va, 2*pageSize); r != 0 {
		t.Fatalf("munmap = %d", r)
	}
	if p, ok := backing(va); !ok || p != pa1 {
		t.Error("munmap changed the page's frame")
	}
	free0 = framesFree
	if r := sysMmapCall(va, pageSize, 0, anon|mapFixedNoReplace, -1); r != int64(va) {
		t.Fatalf("MAP_FIXED_NOREPLACE over the unmapped range = %#x", r)
	}
	if r := sysMmapCall(va, 2*pageSize, rw, anon|mapFixed, -1); r != int64(va) {
		t.Fatalf("re-mmap = %#x", r)
	}
	if framesFree != free0 {
		t.Errorf("re-mmap took %d new frames; want the old backing reused", free0-framesFree)
	}
	if p, _ := backing(va); p != pa1 || !isZero(frame) {
		t.Errorf("re-mmap: frame %#x (was %#x), zero %v", p, pa1, isZero(frame))
	}

	// PROT_NONE over a mapped range keeps the backing too; RW again zeroes it.
	frame[7] = 9
	if r := sysMmapCall(va, pageSize, 0, anon|mapFixed, -1); r != int64(va) {
		t.Fatalf("PROT_NONE over mapped = %#x", r)
	}
	if frame[7] != 9 {
		t.Error("PROT_NONE zeroed the page")
	}
	if r := sysMmapCall(va, pageSize, protRead, anon|mapFixed, -1); r != int64(va) || !isZero(frame) {
		t.Errorf("PROT_READ mmap = %#x, zero %v", r, isZero(frame))
	}
}

func TestMmapOutOfMemory(t *testing.T) {
	setupMemory(t, false)
	setupTables(t)
	const rw, anon = protRead | protWrite, mapAnon | mapPrivate
	if r := sysMmapCall(0, 2*fakeRAMSize, rw, anon, -1); r != -_ENOMEM {
		t.Fatalf("mmap of more than memory = %d; want -ENOMEM", r)
	}
	// The last frame may be left when it was taken for a page whose page
	// table then found none.
	if framesFree > 1 {
		t.Fatalf("the failed mmap left %d frames free; it should have used them all", framesFree)
	}
	if n := len(mmapSpace.Regions()); n != 0 {
		t.Fatalf("the failed mmap left %d regions", n)
	}
	for framesFree > 0 {
		if _, ok := allocFrame(); !ok {
			t.Fatal("allocFrame failed with frames free")
		}
	}
	if _, ok := allocFrame(); ok {
		t.Error("allocFrame succeeded with no frames free")
	}
	// The failed mapping's backing stays with the range, so the range can be
	// mapped again without a single free frame.
	if r := sysMmapCall(0, 1<<20, rw, anon, -1); r != mmapFloor {
		t.Errorf("mmap after exhaustion = %d; want %#x from the kept backing", r, mmapFloor)
	}
	if r := sysMmapCall(0, 64<<20, rw, anon, -1); r != -_ENOMEM {
		t.Errorf("mmap beyond the kept backing with no frames free = %d; want -ENOMEM", r)
	}
}

func BenchmarkMmMapped(b *testing.B) {
	setupMemory(b, false)
	setupTables(b)
	if r := sysMmapCall(0, pageSize, protRead|protWrite, mapAnon|mapPrivate, -1); r != mmapFloor {
		b.Fatalf("mmap = %d", r)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !mmMapped(mmapFloor+8, 8) {
			b.Fatal("not mapped")
		}
	}
}

// TestMMNoHeap proves from the compiler's output that the memory management
// code, which runs before the runtime and in system calls with a fake g,
// neither moves anything to the heap nor calls an allocating runtime
// function. physMem{} and hostFrames{} "escape" as interface operands, but
// they are zero-size: their interface values point at runtime.zerobase, and
// the -S check confirms that no allocation call comes with them.
func TestMMNoHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	out, err := exec.Command("go", "build", "-gcflags=-m -S", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	zeroSize := regexp.MustCompile(`(physMem|hostFrames)\{\} escapes to heap`)
	alloc := regexp.MustCompile(`runtime\.(newobject|mallocgc|makeslice|growslice|convT|convT16|convT32|convT64|convTstring|convTslice|concatstring|slicebytetostring|makemap|newproc|deferproc)`)
	// Functions of main.go that feed the memory code; everything in mm.go is checked.
	mainFuncs := map[string]bool{"hv/boot.initFrames": true, "hv/boot.physMem.Bytes": true}
	checked := map[string]bool{}
	fn, inMM := "", false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "boot/mm.go:") || strings.HasPrefix(line, "./mm.go:") {
			if strings.Contains(line, "moved to heap") ||
				strings.Contains(line, "escapes to heap") && !zeroSize.MatchString(line) {
				t.Errorf("heap use: %s", line)
			}
			continue
		}
		if f := strings.Fields(line); len(f) > 1 && f[1] == "STEXT" {
			fn, inMM = f[0], mainFuncs[f[0]]
			continue
		}
		if fn != "" && strings.Contains(line, "\tTEXT\t") && strings.Contains(line, "/boot/mm.go:") {
			inMM = true
		}
		if inMM {
			checked[fn] = true
			if alloc.MatchString(line) {
				t.Errorf("%s allocates: %s", fn, strings.TrimSpace(line))
			}
		}
	}
	for _, want := range []string{"hv/boot.allocFrame", "hv/boot.sysMmapCall", "hv/boot.backRange", "hv/boot.initFrames", "hv/boot.mmMapped"} {
		if !checked[want] {
			t.Errorf("%s was not found in the compiler output, so it was not checked", want)
		}
	}
}

// TestMadviseDontNeedZeroes: the Go runtime treats pages it released with
// MADV_DONTNEED as zero when it reuses them, so they must read back as zero.
func TestMadviseDontNeedZeroes(t *testing.T) {
	setupMemory(t, false)
	setupTables(t)
	const rw, anon = protRead | protWrite, mapAnon | mapPrivate
	a := uint64(sysMmapCall(0, 4*pageSize, rw, anon, -1))
	if a != mmapFloor {
		t.Fatalf("mmap = %#x", a)
	}
	tb := pagetable.Table{Mem: physMem{}, Frames: hostFrames{}, Root: kernelCR3}
	fill := func(va uint64, v byte) {
		pa, _, _, ok := tb.Lookup(va)
		if !ok {
			t.Fatalf("%#x not mapped", va)
		}
		b := physBytes(pa, pageSize)
		for i := range b {
			b[i] = v
		}
	}
	read := func(va uint64) byte {
		pa, _, _, _ := tb.Lookup(va)
		return physBytes(pa, pageSize)[100]
	}
	for i := uint64(0); i < 4; i++ {
		fill(a+i*pageSize, 0xAA)
	}
	if r := sysMadviseCall(a+pageSize, 2*pageSize, madvDontNeed); r != 0 {
		t.Fatalf("madvise = %d", r)
	}
	if read(a) != 0xAA || read(a+3*pageSize) != 0xAA {
		t.Error("madvise cleared pages outside its range")
	}
	if read(a+pageSize) != 0 || read(a+2*pageSize) != 0 {
		t.Error("MADV_DONTNEED pages do not read back as zero")
	}
	fill(a, 0xBB)
	if r := sysMadviseCall(a, pageSize, 14 /* MADV_HUGEPAGE */); r != 0 || read(a) != 0xBB {
		t.Errorf("other advice changed memory or failed (%d)", r)
	}
	if r := sysMadviseCall(0x1000, pageSize, madvDontNeed); r != -_EINVAL {
		t.Errorf("madvise on the identity map = %d; want -EINVAL", r)
	}
	if r := sysMadviseCall(a+1, pageSize, madvDontNeed); r != -_EINVAL {
		t.Errorf("unaligned madvise = %d; want -EINVAL", r)
	}
}
