package boot

import "unsafe"

// frame is a thread's saved user-visible register state: every general
// register, the vector that entered the kernel (or vecSyscall) with its error
// code, and the interrupt-return frame. The entry stubs fill it and
// resumeThread restores it, so its layout is shared with assembly through
// go_asm.h.
type frame struct {
	rax, rbx, rcx, rdx, rsi, rdi, rbp    uint64
	r8, r9, r10, r11, r12, r13, r14, r15 uint64
	vector, errcode                      uint64
	rip, cs, rflags, rsp, ss             uint64
}

// vecSyscall marks a frame saved by the SYSCALL entry.
const vecSyscall = 0x100

// thread is a kernel thread as the Go runtime sees it (an M): its registers,
// FS base and FPU/SSE state, plus the scheduler's bookkeeping. Threads live in
// a static table and refer to each other by index, never by pointer (kernel
// code must not write pointers into globals).
type thread struct {
	f      frame
	fsbase uint64
	fxArea [512 + 16]byte // FXSAVE image, 16-byte aligned inside

	tid      int32
	state    int32 // threadFree, threadRunnable, threadRunning, threadBlocked, threadDead
	cpu      int32 // CPU whose run queue holds it (or held it last)
	idle     bool  // the per-CPU idle thread
	affinity cpuMask

	// Blocking: what the thread waits for and until when (TSC-based ns;
	// 0 = no deadline). waitKind says what the result will be on timeout.
	waitKind int32
	waitAddr uint64
	deadline int64
	nextRun  int32 // run-queue link
	sliceEnd int64
	tickNs   int64 // while running, wake the CPU at least this often (vCPU threads)
	switches uint64

	// Signal state (see signal.go).
	altSP, altSize uint64
	altFlags       uint64
	sigmask        uint64
	inSignal       int32
}

type cpuMask [maxCPUs / 64]uint64

func (m *cpuMask) has(c int) bool { return c >= 0 && c < maxCPUs && m[c/64]&(1<<(c%64)) != 0 }
func (m *cpuMask) set(c int)      { m[c/64] |= 1 << (c % 64) }
func (m *cpuMask) empty() bool {
	for _, w := range m {
		if w != 0 {
			return false
		}
	}
	return true
}

const (
	threadFree = iota
	threadRunnable
	threadRunning
	threadBlocked
	threadDead
)

// percpu is one CPU's private area, reached from assembly through GS base,
// which the Go runtime never touches on linux/amd64. The first fields are the
// assembly contract (offsets via go_asm.h).
type percpu struct {
	self      uint64 // address of this percpu
	cur       uint64 // address of the running thread
	kstackTop uint64
	ktls      uint64 // FS base for kernel-context Go code (slot -8 = &g)
	inKernel  uint64 // nonzero while kernel-context code runs on this CPU
	scratch   uint64
	faultTLS  uint64 // FS base for the kernel-fault reporter (slot -8 = &faultG)

	id           int32
	apicID       uint32
	online       uint32
	idleTid      int32
	runHead      int32
	runTail      int32
	nrun         int32
	timerArmedAt int64 // deadline the LAPIC timer is programmed for (0: stopped)
	needResched  bool  // a thread was made runnable here: reconsider the current one

	g             fakeG
	tls           [2]uint64
	faultG        fakeG
	faultTL       [2]uint64
	gdt           [8]uint64
	gdtr          [2]uint64
	tss           tss
	ticks         uint64
	kernelEntries uint64
}

// tss is the 64-bit task-state segment (Intel SDM vol. 3A 8.7, figure 8-11):
// 104 bytes with 64-bit fields at 4-byte alignment, so it is kept as 32-bit
// words. Only the IST pointers matter: every vector uses an IST stack because
// an interrupt at CPL 0 does not otherwise switch stacks and goroutine stacks
// are small.
type tss [26]uint32

// setIST sets IST pointer n (1-7), at byte offset 36 + 8*(n-1).
func (t *tss) setIST(n int, sp uint64) {
	i := 9 + 2*(n-1)
	t[i], t[i+1] = uint32(sp), uint32(sp>>32)
}

// setIOMapBase places the I/O permission bitmap (none: past the limit).
func (t *tss) setIOMapBase(off uint16) { t[25] = uint32(off) << 16 }

var (
	cpus       [maxCPUs]percpu
	threads    [maxThreads]thread
	kstacks    [maxCPUs][kstackSize]byte
	istStacks  [maxCPUs][4][istStackSize]byte
	idleStacks [maxCPUs][idleStackSize]byte
	mainStack  [mainStackSize]byte
	idt        [256][2]uint64
	idtr       [2]uint64
)

func addrOf[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// physPtr turns a physical (identity-mapped) or static address into a
// pointer. The memory is never Go heap, so the collector ignores it; the
// conversion goes through memory so that vet's unsafeptr check, which is
// about heap objects, does not apply. Not inlined: the Go 1.26 compiler
// crashes (disjointTypes) when it sees through this in a memmove.
//
//go:noinline
func physPtr(addr uint64) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&addr)) }

func threadAt(addr uint64) *thread { return (*thread)(physPtr(addr)) }

func (t *thread) index() int {
	return int((addrOf(t) - addrOf(&threads[0])) / uint64(unsafe.Sizeof(threads[0])))
}
