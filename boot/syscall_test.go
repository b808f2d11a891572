package boot

import (
	"syscall"
	"testing"
	"unsafe"
)

// userBuf gives the test a region that is both real memory of this process
// and mapped in the fake kernel's page tables (mm_test.go), so that the
// system-call code, which dereferences user addresses directly after
// checking them against its page tables, works on it.
func userBuf(t *testing.T, n uint64) uint64 {
	t.Helper()
	setupMemory(t, false)
	setupTables(t)
	mem, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("host mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	va := uint64(uintptr(unsafe.Pointer(&mem[0])))
	if a := sysMmapCall(va, n, protRead|protWrite, mapAnon|mapPrivate|mapFixed, -1); a != int64(va) {
		t.Skipf("cannot map the host buffer at %#x in the fake page tables: %d", va, a)
	}
	return va
}

func TestSyscallArgumentChecks(t *testing.T) {
	buf := userBuf(t, 4*pageSize)
	ncpu.Store(2)
	defer ncpu.Store(0)
	th := &threads[0]
	saved := *th
	defer func() { *th = saved }()
	*th = thread{tid: 1}
	reportedNoRDRAND = 1 // the report goes to the UART, which a host test has not got
	th.affinity.set(0)

	tests := []struct {
		name string
		got  int64
		want int64
	}{
		{"clock_gettime bad clock", sysClockGettimeCall(99, buf), -_EINVAL},
		{"clock_gettime null", sysClockGettimeCall(1, 0), -_EFAULT},
		{"clock_gettime unmapped", sysClockGettimeCall(1, 0x7fff00000000), -_EFAULT},
		{"clock_gettime ok", sysClockGettimeCall(1, buf), 0},
		{"futex unaligned", sysFutexCall(th, buf+2, futexWait|futexPrivateFlag, 0, 0), -_EINVAL},
		{"futex unmapped", sysFutexCall(th, 0x7fff00000000, futexWait, 0, 0), -_EFAULT},
		{"futex value changed", sysFutexCall(th, buf+3*pageSize, futexWait, 1, 0), -_EAGAIN},
		{"futex unknown op", sysFutexCall(th, buf, 9, 0, 0), -_ENOSYS},
		{"futex wake nobody", sysFutexCall(th, buf, futexWake, 1, 0), 0},
		{"sigaction signal 0", sysSigaction(0, 0, 0, 8), -_EINVAL},
		{"sigaction signal 65", sysSigaction(65, 0, 0, 8), -_EINVAL},
		{"sigaction bad size", sysSigaction(11, 0, 0, 16), -_EINVAL},
		{"sigaction SIGKILL", sysSigaction(sigKILL, buf, 0, 8), -_EINVAL},
		{"sigaction bad pointer", sysSigaction(11, 0x7fff00000000, 0, 8), -_EFAULT},
		{"getaffinity short", sysGetaffinity(th, 0, 4, buf), -_EINVAL},
		{"getaffinity no thread", sysGetaffinity(th, 77, 8, buf), -_ESRCH},
		{"getaffinity ok", sysGetaffinity(th, 0, 128, buf), 8},
		{"mmap of a file", sysMmapCall(0, pageSize, protRead, mapPrivate, 3), -errnoENODEV},
		{"mmap zero length", sysMmapCall(0, 0, protRead, mapAnon, -1), -_EINVAL},
		{"munmap unaligned", sysMunmapCall(buf+1, pageSize), -_EINVAL},
		{"getrandom bad pointer", func() int64 {
			cpuHasRDRAND = true
			defer func() { cpuHasRDRAND = false }()
			return sysGetrandomCall(0x7fff00000000, 16)
		}(), -_EFAULT},
		{"getrandom without RDRAND", sysGetrandomCall(buf, 16), -_ENOSYS},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d; want %d", tt.name, tt.got, tt.want)
		}
	}

	// A futex wait whose value matches blocks the caller with its deadline.
	word := buf + 3*pageSize
	if r := sysFutexCall(th, word, futexWait|futexPrivateFlag, 0, 0); r != 0 || th.state != threadBlocked || th.waitAddr != word {
		t.Errorf("matching futex wait: r=%d state=%d addr=%#x", r, th.state, th.waitAddr)
	}
	th.state = threadRunning

	// setaffinity to no online CPU is refused; to CPU 1 sticks.
	le64put(physBytesAt(t, buf), 1<<5)
	if r := sysSetaffinity(th, 0, 8, buf); r != -_EINVAL {
		t.Errorf("setaffinity to an offline CPU = %d; want -EINVAL", r)
	}
	le64put(physBytesAt(t, buf), 1<<1)
	th.state = threadBlocked // not running: the thread moves when it next runs
	if r := sysSetaffinity(th, 0, 8, buf); r != 0 || !th.affinity.has(1) || th.affinity.has(0) {
		t.Errorf("setaffinity to CPU 1 = %d, mask %v", r, th.affinity)
	}

	// A sigaction round trip returns what was set.
	act := buf + pageSize
	b := physBytesAt(t, act)
	le64put(b[0:], 0x401000)
	le64put(b[8:], saSiginfo|saOnstack|saRestorer)
	le64put(b[16:], 0x402000)
	le64put(b[24:], 0)
	if r := sysSigaction(sigSEGV, act, 0, 8); r != 0 {
		t.Fatalf("sigaction set = %d", r)
	}
	old := act + 64
	if r := sysSigaction(sigSEGV, 0, old, 8); r != 0 || le64(physBytesAt(t, old)) != 0x401000 {
		t.Errorf("sigaction get = %d, handler %#x", r, le64(physBytesAt(t, old)))
	}
	sigactions[sigSEGV] = sigactionK{}

	// Timespecs: negative seconds and nanoseconds of a second or more are
	// malformed.
	ts := buf + 2*pageSize
	le64put(physBytesAt(t, ts), ^uint64(0))
	if _, ok := getTimespec(ts); ok {
		t.Error("negative seconds accepted")
	}
	le64put(physBytesAt(t, ts), 1)
	le64put(physBytesAt(t, ts+8), 1e9)
	if _, ok := getTimespec(ts); ok {
		t.Error("nsec of 1e9 accepted")
	}
	le64put(physBytesAt(t, ts+8), 5)
	if ns, ok := getTimespec(ts); !ok || ns != 1e9+5 {
		t.Errorf("1 s 5 ns = %d, %v", ns, ok)
	}
}

// physBytesAt returns the 64 bytes of user memory at va.
func physBytesAt(t *testing.T, va uint64) []byte {
	t.Helper()
	b, ok := userBytes(va, 64)
	if !ok {
		t.Fatalf("%#x not mapped", va)
	}
	return b
}
