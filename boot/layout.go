package boot

// Sizes of the statically allocated platform areas. They live in the image's
// BSS so that they exist before any allocator does.
const (
	maxCPUs        = 64
	maxThreads     = 512
	bootStackSize  = 64 << 10  // CPU 0 before the runtime starts
	kstackSize     = 64 << 10  // per CPU: system calls, interrupts, faults
	istStackSize   = 16 << 10  // per CPU and IST slot; the whole set doubles as the fault stack
	idleStackSize  = 4 << 10   // per CPU idle thread
	mainStackSize  = 256 << 10 // thread 0: rt0_go carves a 64 KiB g0 stack from it
	stackGuardRoom = 8 << 10   // fake g: distance of stackguard0 above stack.lo
)

// Segment selectors of the platform GDT (see percpu.go for the descriptors).
const (
	selKernelCode = 0x08
	selKernelData = 0x10
	selTSS        = 0x18
)

// fakeG mirrors the first fields of the runtime's g (stack.lo, stack.hi,
// stackguard0, stackguard1) so that the stack-check prologue of ordinary Go
// functions works on platform stacks. Everything after them stays zero: any
// code that reaches for g.m here is a platform bug and faults on a nil m.
type fakeG struct {
	lo, hi      uintptr
	stackguard0 uintptr
	stackguard1 uintptr
	_           [60]uintptr
}

// earlyArea is written by the 32-bit entry before paging is on. The entry
// finds it through the displacement of a LEAQ it never executes (see
// entry_amd64.s), because the Go assembler only emits RIP-relative references
// and those mean something else in 32-bit mode.
//
//lint:ignore U1000 the fields are read by entry_amd64.s
type earlyArea struct {
	magic  uint32
	info   uint32
	gdtr   [16]byte
	gdt    [4]uint64
	_      [16]byte
	tables [7 * 4096]byte // 6 pages (PML4, PDPT, 4 PDs) from its first page boundary
}

// The early area's fields, the boot stack, g and TLS are used only by
// entry_amd64.s.
var (
	early earlyArea
	//lint:ignore U1000 used by entry_amd64.s
	bootStack [bootStackSize]byte
	//lint:ignore U1000 used by entry_amd64.s
	bootG fakeG
	//lint:ignore U1000 used by entry_amd64.s
	bootTLS [4]uintptr
)
