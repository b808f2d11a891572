package boot

import (
	"sync/atomic"
	"unsafe"
)

// Linux x86-64 system call numbers served here (arch/x86/entry/syscalls/
// syscall_64.tbl).
const (
	sysRead             = 0
	sysWrite            = 1
	sysClose            = 3
	sysMmap             = 9
	sysMprotect         = 10
	sysMunmap           = 11
	sysBrk              = 12
	sysRtSigaction      = 13
	sysRtSigprocmask    = 14
	sysRtSigreturn      = 15
	sysPread64          = 17
	sysSchedYield       = 24
	sysMincore          = 27
	sysMadvise          = 28
	sysNanosleep        = 35
	sysGetpid           = 39
	sysClone            = 56
	sysExit             = 60
	sysUname            = 63
	sysFcntl            = 72
	sysSigaltstack      = 131
	sysPrctl            = 157
	sysArchPrctl        = 158
	sysGettid           = 186
	sysTkill            = 200
	sysFutex            = 202
	sysSchedSetaffinity = 203
	sysSchedGetaffinity = 204
	sysClockGettime     = 228
	sysClockGetres      = 229
	sysClockNanosleep   = 230
	sysExitGroup        = 231
	sysEpollWait        = 232
	sysEpollCtl         = 233
	sysTgkill           = 234
	sysOpenat           = 257
	sysEpollPwait       = 281
	sysEventfd2         = 290
	sysEpollCreate1     = 291
	sysPrlimit64        = 302
	sysGetrandom        = 318
	sysRseq             = 334

	// Platform calls for the hypervisor proper (not Linux): see api.go.
	sysHVAllocFrames = 1000
	sysHVFreeFrames  = 1001
	sysHVSetTick     = 1002
	sysHVInterrupt   = 1003
)

// errno values (include/uapi/asm-generic/errno-base.h, errno.h).
const (
	_EPERM     = 1
	_ENOENT    = 2
	_ESRCH     = 3
	_EINTR     = 4
	_EBADF     = 9
	_EAGAIN    = 11
	_ENOMEM    = 12
	_EFAULT    = 14
	_EINVAL    = 22
	_ENOSYS    = 38
	_ETIMEDOUT = 110
)

const (
	archSetFS = 0x1002
	archGetFS = 0x1003

	cloneVM     = 0x00000100
	cloneThread = 0x00010000
	cloneSetTLS = 0x00080000

	futexWait          = 0
	futexWake          = 1
	futexPrivateFlag   = 128
	futexClockRealtime = 256
)

// syscallNames names the calls we serve or expect, for the unknown-call
// report; others print as their number only.
func syscallName(n uint64) string {
	switch n {
	case sysMprotect:
		return "mprotect"
	case sysBrk:
		return "brk"
	case sysPread64:
		return "pread64"
	case sysMincore:
		return "mincore"
	case sysUname:
		return "uname"
	case sysRseq:
		return "rseq"
	case 16:
		return "ioctl"
	case 20:
		return "writev"
	case 89:
		return "readlink"
	case 435:
		return "clone3"
	}
	return "?"
}

// reportedUnknown remembers which unknown numbers were already reported.
var reportedUnknown [512 / 64]uint64

func doSyscall(c *percpu, t *thread) {
	f := &t.f
	a0, a1, a2, a3, a4 := f.rdi, f.rsi, f.rdx, f.r10, f.r8
	var r int64
	switch n := f.rax; n {
	case sysRead:
		r = sysReadFD(int64(a0), a1, a2)
	case sysWrite:
		r = sysWriteFD(int64(a0), a1, a2)
	case sysClose, sysFcntl:
		r = 0
	case sysMmap:
		r = sysMmapCall(a0, a1, a2, a3, int64(a4))
	case sysMunmap:
		r = sysMunmapCall(a0, a1)
	case sysMadvise:
		r = sysMadviseCall(a0, a1, a2)
	case sysMprotect:
		r = 0
	case sysRtSigaction:
		r = sysSigaction(a0, a1, a2, a3)
	case sysRtSigprocmask:
		r = sysSigprocmask(t, a0, a1, a2, a3)
	case sysRtSigreturn:
		sigreturn(t)
		return // registers come from the signal frame
	case sysSigaltstack:
		r = sysSigaltstackCall(t, a0, a1)
	case sysSchedYield:
		t.sliceEnd = 0
		r = 0
	case sysNanosleep:
		r = sysNanosleepCall(t, a0)
		if t.state == threadBlocked {
			return
		}
	case sysClockNanosleep:
		// clock, flags, request, remain: only relative sleeps.
		if a1 != 0 {
			r = -_EINVAL
			break
		}
		r = sysNanosleepCall(t, a2)
		if t.state == threadBlocked {
			return
		}
	case sysGetpid:
		r = 1
	case sysGettid:
		r = int64(t.tid)
	case sysClone:
		r = sysCloneCall(c, t, a0, a1, a4)
	case sysExit:
		t.state = threadDead
		return
	case sysExitGroup:
		exitGroup(int(int32(a0)))
	case sysArchPrctl:
		switch a0 {
		case archSetFS:
			if !canonical(a1) {
				r = -_EPERM
				break
			}
			t.fsbase = a1
		case archGetFS:
			r = putUser64(a1, t.fsbase)
		default:
			r = -_EINVAL
		}
	case sysFutex:
		r = sysFutexCall(t, a0, a1, a2, a3)
		if t.state == threadBlocked {
			return
		}
	case sysSchedGetaffinity:
		r = sysGetaffinity(t, int64(a0), a1, a2)
	case sysSchedSetaffinity:
		r = sysSetaffinity(t, int64(a0), a1, a2)
	case sysClockGettime:
		r = sysClockGettimeCall(a0, a1)
	case sysClockGetres:
		if a1 != 0 {
			r = putTimespec(a1, 1)
		}
	case sysEpollCreate1:
		r = newFD(fdEpoll)
	case sysEventfd2:
		r = newFD(fdEventfd)
		if r >= 0 {
			fds[r].counter = a0
		}
	case sysEpollCtl:
		r = sysEpollCtlCall(int64(a0), a1, int64(a2), a3)
	case sysEpollWait, sysEpollPwait:
		r = sysEpollWaitCall(t, int64(a0), a1, int64(a2), int64(int32(a3)))
		if t.state == threadBlocked {
			return
		}
	case sysTkill, sysTgkill:
		sig := a1
		if n == sysTgkill {
			sig = a2
		}
		r = sysKill(t, sig)
	case sysOpenat:
		r = -_ENOENT
	case sysPrlimit64:
		if a3 != 0 {
			r = putUser64(a3, 1024)
			if r == 0 {
				r = putUser64(a3+8, 4096)
			}
		}
	case sysPrctl:
		r = -_EINVAL
	case sysGetrandom:
		r = sysGetrandomCall(a0, a1)
	case sysHVAllocFrames:
		r = hvAllocFrames(a0, a1)
	case sysHVFreeFrames:
		r = hvFreeFrames(a0, a1)
	case sysHVSetTick:
		if int64(a0) < 0 {
			r = -_EINVAL
			break
		}
		t.tickNs = int64(a0)
	case sysHVInterrupt:
		r = hvInterruptCPU(c, a0)
	default:
		r = -_ENOSYS
		if n >= 512 || reportedUnknown[n/64]&(1<<(n%64)) == 0 {
			if n < 512 {
				reportedUnknown[n/64] |= 1 << (n % 64)
			}
			var l line
			l.s("hv: unsupported system call ").s(syscallName(n)).s(" (").dec(n).s(") from rip=").hex(f.rip).s(" tid=").dec(uint64(t.tid)).s(": ENOSYS").print()
		}
	}
	f.rax = uint64(r)
}

func canonical(a uint64) bool { return a < 1<<47 || a >= 0xFFFF800000000000 }

// User memory. The "user" is the Go runtime in the same address space, but a
// bad pointer from it must give EFAULT, not a platform fault, so every range
// is checked against the mapped regions first.
func userBytes(addr, n uint64) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	if addr == 0 || addr+n < addr || !canonical(addr) || !canonical(addr+n-1) || !mmMapped(addr, n) {
		return nil, false
	}
	return unsafe.Slice((*byte)(physPtr(addr)), n), true
}

func putUser64(addr, v uint64) int64 {
	b, ok := userBytes(addr, 8)
	if !ok {
		return -_EFAULT
	}
	le64put(b, v)
	return 0
}

func getUser64(addr uint64) (uint64, bool) {
	b, ok := userBytes(addr, 8)
	if !ok {
		return 0, false
	}
	return le64(b), true
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func le64put(b []byte, v uint64) {
	_ = b[7]
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func putTimespec(addr uint64, ns int64) int64 {
	if r := putUser64(addr, uint64(ns/1e9)); r != 0 {
		return r
	}
	return putUser64(addr+8, uint64(ns%1e9))
}

// getTimespec reads a relative timeout; ok is false for a bad pointer or a
// malformed value.
func getTimespec(addr uint64) (ns int64, ok bool) {
	s, ok1 := getUser64(addr)
	nsec, ok2 := getUser64(addr + 8)
	if !ok1 || !ok2 || int64(s) < 0 || nsec >= 1e9 {
		return 0, false
	}
	if int64(s) > (1<<62)/1_000_000_000 {
		return 1 << 62, true
	}
	return int64(s)*1e9 + int64(nsec), true
}

func sysClockGettimeCall(clk, ts uint64) int64 {
	now := nanotime()
	switch clk {
	case 0, 5, 8: // REALTIME, REALTIME_COARSE, REALTIME_ALARM
		now += clock.wall0
	case 1, 4, 6, 7, 9: // MONOTONIC, _RAW, _COARSE, BOOTTIME, BOOTTIME_ALARM
	case 2, 3: // PROCESS/THREAD_CPUTIME_ID: good enough as monotonic time
	default:
		return -_EINVAL
	}
	return putTimespec(ts, now)
}

func sysNanosleepCall(t *thread, req uint64) int64 {
	d, ok := getTimespec(req)
	if !ok {
		return -_EINVAL
	}
	if d == 0 {
		t.sliceEnd = 0
		return 0
	}
	block(t, waitSleep, 0, nanotime()+d)
	return 0
}

func sysFutexCall(t *thread, addr, op, val, timeout uint64) int64 {
	if addr&3 != 0 {
		return -_EINVAL
	}
	b, ok := userBytes(addr, 4)
	if !ok {
		return -_EFAULT
	}
	word := (*uint32)(unsafe.Pointer(&b[0]))
	switch op &^ (futexPrivateFlag | futexClockRealtime) {
	case futexWait:
		if atomic.LoadUint32(word) != uint32(val) {
			return -_EAGAIN
		}
		var deadline int64
		if timeout != 0 {
			d, ok := getTimespec(timeout)
			if !ok {
				return -_EINVAL
			}
			deadline = nanotime() + d
			if deadline == 0 {
				deadline = 1
			}
		}
		block(t, waitFutex, addr, deadline)
		return 0
	case futexWake:
		n := int64(0)
		for i := range threads[:threadHigh] {
			if n >= int64(int32(val)) {
				break
			}
			w := &threads[i]
			if w.state == threadBlocked && w.waitKind == waitFutex && w.waitAddr == addr {
				wake(w, 0)
				n++
			}
		}
		return n
	}
	return -_ENOSYS
}

func sysCloneCall(c *percpu, t *thread, flags, stack, tls uint64) int64 {
	if flags&(cloneVM|cloneThread) != cloneVM|cloneThread {
		return -_EINVAL // only threads: there is one address space
	}
	if stack == 0 || !canonical(stack) {
		return -_EINVAL
	}
	n := newThread()
	if n == nil {
		return -_EAGAIN
	}
	n.f = t.f
	n.f.rax = 0
	n.f.rsp = stack
	n.fsbase = t.fsbase
	if flags&cloneSetTLS != 0 {
		n.fsbase = tls
	}
	copyFXState(n, t)
	n.affinity = t.affinity
	n.sigmask = t.sigmask
	n.cpu = int32(leastLoadedCPU(&n.affinity))
	enqueue(&cpus[n.cpu], n)
	if n.cpu != c.id {
		lapicSendIPI(cpus[n.cpu].apicID, vecWake)
	}
	return int64(n.tid)
}

func findThread(self *thread, tid int64) *thread {
	if tid == 0 || tid == int64(self.tid) {
		return self
	}
	if tid < 1 || tid > int64(len(threads)) {
		return nil
	}
	t := &threads[tid-1]
	if t.state == threadFree || t.state == threadDead {
		return nil
	}
	return t
}

func sysGetaffinity(self *thread, tid int64, size, mask uint64) int64 {
	t := findThread(self, tid)
	if t == nil {
		return -_ESRCH
	}
	const n = uint64(len(cpuMask{})) * 8
	if size < n {
		return -_EINVAL
	}
	b, ok := userBytes(mask, n)
	if !ok {
		return -_EFAULT
	}
	for i, w := range t.affinity {
		le64put(b[i*8:], w)
	}
	return int64(n)
}

func sysSetaffinity(self *thread, tid int64, size, mask uint64) int64 {
	t := findThread(self, tid)
	if t == nil {
		return -_ESRCH
	}
	var m cpuMask
	online := int(ncpu.Load())
	for i := range m {
		if uint64(i)*8+8 > size {
			break
		}
		w, ok := getUser64(mask + uint64(i)*8)
		if !ok {
			return -_EFAULT
		}
		m[i] = w
	}
	for c := online; c < maxCPUs; c++ {
		m[c/64] &^= 1 << (c % 64)
	}
	if m.empty() {
		return -_EINVAL
	}
	t.affinity = m
	if !m.has(int(t.cpu)) {
		// Move it: a running caller is requeued on an allowed CPU now; a
		// queued or blocked thread moves when it next becomes runnable.
		if t.state == threadRunning && t == self {
			target := pickCPU(t)
			enqueue(&cpus[target], t)
			lapicSendIPI(cpus[target].apicID, vecWake)
		}
	}
	return 0
}

func sysGetrandomCall(buf, n uint64) int64 {
	if !cpuHasRDRAND {
		reportOnce(&reportedNoRDRAND, "hv: getrandom: this CPU has no RDRAND; no entropy source (ENOSYS)")
		return -_ENOSYS
	}
	if n > 1<<20 {
		n = 1 << 20
	}
	b, ok := userBytes(buf, n)
	if !ok {
		return -_EFAULT
	}
	for i := uint64(0); i < n; i += 8 {
		var v uint64
		got := false
		for try := 0; try < 100 && !got; try++ {
			v, got = rdrand64()
		}
		if !got {
			if i == 0 {
				return -_EAGAIN
			}
			return int64(i)
		}
		for j := uint64(0); j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return int64(n)
}

var (
	cpuHasRDRAND     bool
	reportedNoRDRAND uint32
)

func reportOnce(flag *uint32, msg string) {
	if atomic.CompareAndSwapUint32(flag, 0, 1) {
		kputs(msg)
	}
}

// hvAllocFrames allocates n contiguous zeroed frames aligned to align
// frames (a power of two) and returns the physical address, which is also
// its address in the identity map.
func hvAllocFrames(n, align uint64) int64 {
	if n == 0 || n > framesFree || align == 0 || align&(align-1) != 0 || align > 1<<18 {
		if n > framesFree {
			return -_ENOMEM
		}
		return -_EINVAL
	}
	if n == 1 && align == 1 {
		pa, ok := allocFrame()
		if !ok {
			return -_ENOMEM
		}
		return int64(pa)
	}
	pa, ok := allocContiguous(n, align*pageSize)
	if !ok {
		return -_ENOMEM
	}
	return int64(pa)
}

// hvFreeFrames returns frames from hvAllocFrames. Only RAM frames that are
// allocated can be freed; the kernel image and boot data cannot.
func hvFreeFrames(pa, n uint64) int64 {
	if !freeFrames(pa, n) {
		return -_EINVAL
	}
	return 0
}

// copyFXState gives dst the FPU/SSE state of src. The FXSAVE image sits at
// a 16-byte boundary inside fxArea, whose offset differs between threads, so
// the image is copied, not the array: a shifted copy gave new threads a
// garbage MXCSR (SIGFPE in the garbage collector's float code).
func copyFXState(dst, src *thread) {
	copy(dst.fxArea[fxOffset(dst):fxOffset(dst)+512], src.fxArea[fxOffset(src):fxOffset(src)+512])
}

// hvInterruptCPU sends the wake vector to CPU n unless it is c itself.
// The kernel lock is held, so the ICR writes do not interleave with the
// scheduler's own IPIs.
func hvInterruptCPU(c *percpu, n uint64) int64 {
	if n >= uint64(ncpu.Load()) {
		return -_EINVAL
	}
	if n != uint64(c.id) {
		lapicSendIPI(cpus[n].apicID, vecWake)
	}
	return 0
}
