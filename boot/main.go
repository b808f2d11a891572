package boot

import (
	"unsafe"

	"hv/boot/acpi"
	"hv/boot/bootinfo"
	"hv/boot/pmem"
)

// physMem is the boot-time view of physical memory for the parsers: the
// identity map.
type physMem struct{}

func (physMem) Bytes(addr, n uint64) ([]byte, bool) {
	lim := uint64(4 << 30)
	if kernelCR3 != 0 && physTop > lim {
		lim = physTop
	}
	if addr == 0 || addr+n < addr || addr+n > lim {
		return nil, false
	}
	return physBytes(addr, n), true
}

func addrOfEnd() uint64

// Facts gathered at boot, read by the API after the runtime starts. All
// plain values: no pointers.
var (
	bootInfo     bootinfo.Info
	madt         acpi.MADT
	fadt         acpi.FADT
	haveMADT     bool
	cpuVendor    [12]byte
	cpuBrand     [48]byte
	hasSVM       bool
	hasVMX       bool
	usableBytes  uint64
	minMemoryMiB = uint64(128)
)

// bootMain is called by entry64 on CPU 0, on the boot stack with the boot fake
// g, before the Go runtime has run a single instruction. It never returns:
// it ends by resuming thread 0 at the runtime's entry point.
//
//lint:ignore U1000 called from entry_amd64.s
func bootMain() {
	consoleInit()
	maskPIC()
	kputs("hv: booting")
	probeCPU()

	if err := bootinfo.Parse(physMem{}, early.magic, uint64(early.info), &bootInfo); err != nil {
		var l line
		l.s("hv: error: boot information (magic ").hex(uint64(early.magic)).s(" at ").hex(uint64(early.info)).s("): ").s(err.Error()).print()
		platformExit(1)
	}
	initFrames()
	if usableBytes < minMemoryMiB<<20 {
		var l line
		l.s("hv: error: too little memory: ").dec(usableBytes >> 20).s(" MiB usable, need at least ").dec(minMemoryMiB).s(" MiB").print()
		platformExit(1)
	}
	readACPI() // before page 0 (the BIOS data area's EBDA pointer) is unmapped
	if !buildKernelPageTables() {
		kputs("hv: error: out of memory building the page tables")
		platformExit(1)
	}
	buildIDT()
	setupCPU(0)
	lapicInit()
	cpus[0].apicID = lapicRead(lapicID) >> 24
	if !calibrate() {
		kputs("hv: error: the 8254 PIT does not count: cannot calibrate the clock")
		platformExit(1)
	}
	ncpu.Store(1)
	cpus[0].online = 1
	makeIdleThread(0)
	startAPs()

	t := makeMainThread()
	cpus[0].runHead, cpus[0].runTail = -1, -1
	t.state = threadRunning
	t.cpu = 0
	t.sliceEnd = nanotime() + timeSlice
	startFirstThread(addrOf(t))
}

func probeCPU() {
	_, b, c, d := cpuid(0, 0)
	le32put(cpuVendor[0:], b)
	le32put(cpuVendor[4:], d)
	le32put(cpuVendor[8:], c)
	_, _, c1, _ := cpuid(1, 0)
	cpuHasRDRAND = c1&(1<<30) != 0
	hasVMX = c1&(1<<5) != 0
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	if maxExt >= 0x80000001 {
		_, _, ce, de := cpuid(0x80000001, 0)
		hasSVM = ce&(1<<2) != 0
		nxSupported = de&(1<<20) != 0
	}
	if maxExt >= 0x80000004 {
		for i := uint32(0); i < 3; i++ {
			a, b, c, d := cpuid(0x80000002+i, 0)
			le32put(cpuBrand[i*16:], a)
			le32put(cpuBrand[i*16+4:], b)
			le32put(cpuBrand[i*16+8:], c)
			le32put(cpuBrand[i*16+12:], d)
		}
	}
}

// initFrames hands the usable RAM of the loader's memory map to the frame
// allocator, minus the kernel image (loaded at 2 MiB) and everything the boot
// information occupies, modules included.
func initFrames() {
	var usable [bootinfo.MaxMemRanges]pmem.Range
	nu := 0
	for _, r := range bootInfo.MemoryMap() {
		if r.Type == bootinfo.MemAvailable {
			usable[nu] = pmem.Range{Start: r.Start, End: r.End}
			nu++
		}
	}
	var reserved [1 + bootinfo.MaxOccupied + bootinfo.MaxModules]pmem.Range
	reserved[0] = pmem.Range{Start: 0x200000, End: addrOfEnd()}
	nr := 1
	for _, r := range bootInfo.Occupied() {
		reserved[nr] = pmem.Range{Start: r.Start, End: r.End}
		nr++
	}
	for _, m := range bootInfo.ModuleList() {
		reserved[nr] = pmem.Range{Start: m.Start, End: m.End}
		nr++
	}
	if err := initMemory(usable[:nu], reserved[:nr]); err != nil {
		var l line
		l.s("hv: error: physical memory: ").s(err.Error()).print()
		platformExit(1)
	}
	usableBytes = framesFree * pageSize
}

// readACPI finds the MADT (CPUs) and the FADT (power-off). Absence is not
// fatal: a machine without ACPI runs on its boot CPU.
func readACPI() {
	rsdp, err := acpi.FindRSDP(physMem{}, bootInfo.RSDPBytes())
	if err != nil {
		var l line
		l.s("hv: no ACPI (").s(err.Error()).s("): running on the boot CPU only").print()
		return
	}
	var tables acpi.Tables
	if err := acpi.ReadRoot(physMem{}, rsdp, &tables); err != nil {
		var l line
		l.s("hv: ACPI root table unusable: ").s(err.Error()).print()
		return
	}
	if a, ok := tables.Find("APIC", 0); ok {
		if b, err := acpi.Load(physMem{}, a, "APIC"); err == nil {
			if err := acpi.ParseMADT(b, &madt); err == nil {
				haveMADT = true
			} else {
				var l line
				l.s("hv: MADT unusable: ").s(err.Error()).print()
			}
		}
	}
	if a, ok := tables.Find("FACP", 0); ok {
		if b, err := acpi.Load(physMem{}, a, "FACP"); err == nil && acpi.ParseFADT(b, &fadt) == nil {
			if fadt.DSDT != 0 {
				if d, err := acpi.Load(physMem{}, fadt.DSDT, "DSDT"); err == nil {
					if s5, err := acpi.FindS5(d); err == nil && fadt.PM1aControl.SpaceID == 1 {
						acpiPowerOff.pm1a = uint16(fadt.PM1aControl.Address)
						acpiPowerOff.pm1b = uint16(fadt.PM1bControl.Address)
						acpiPowerOff.slpTypA = uint16(s5.SLPTypA)
						acpiPowerOff.slpTypB = uint16(s5.SLPTypB)
						acpiPowerOff.valid = true
					}
				}
			}
		}
	}
}

func makeIdleThread(cpu int) {
	t := newThread()
	t.idle = true
	t.f.rip = addrOfIdleLoop()
	t.f.rsp = addrOf(&idleStacks[cpu]) + idleStackSize - 8
	t.f.cs, t.f.ss = selKernelCode, selKernelData
	t.f.rflags = 0x202
	t.cpu = int32(cpu)
	t.affinity.set(cpu)
	t.state = threadRunnable
	initFX(t)
	cpus[cpu].idleTid = int32(t.index())
	cpus[cpu].runHead, cpus[cpu].runTail = -1, -1
}

// initFX gives a new thread the default FPU/SSE state (FCW 0x37F, MXCSR
// 0x1F80: all exceptions masked), as Linux gives a new process.
func initFX(t *thread) {
	o := fxOffset(t)
	fx := t.fxArea[o : o+512]
	clear(fx)
	fx[0], fx[1] = 0x7F, 0x03
	le32put(fx[24:], 0x1F80)
	le32put(fx[28:], 0xFFBF) // MXCSR_MASK as commonly reported
}

// makeMainThread builds thread 0 with a Linux process's initial stack
// (System V ABI AMD64 3.4.1): argc, argv, envp, auxv, then the strings.
func makeMainThread() *thread {
	t := newThread()
	n := int(ncpu.Load())
	for i := 0; i < n; i++ {
		t.affinity.set(i)
	}
	base := addrOf(&mainStack[0])
	top := base + mainStackSize
	// Strings at the very top.
	sp := top
	pushStr := func(s []byte) uint64 {
		sp -= uint64(len(s) + 1)
		b := physBytes(sp, uint64(len(s)+1))
		copy(b, s)
		b[len(s)] = 0
		return sp
	}
	var argv [64]uint64
	argc := 0
	argv[argc] = pushStr([]byte("hv"))
	argc++
	cmd := bootInfo.CmdlineBytes()
	for i := 0; i < len(cmd) && argc < len(argv)-1; {
		for i < len(cmd) && (cmd[i] == ' ' || cmd[i] == '\t') {
			i++
		}
		j := i
		for j < len(cmd) && cmd[j] != ' ' && cmd[j] != '\t' {
			j++
		}
		if j > i {
			argv[argc] = pushStr(cmd[i:j])
			argc++
		}
		i = j
	}
	var envBuf [4200]byte
	var envp [4]uint64
	envc := 0
	envp[envc] = pushStr([]byte("GODEBUG=asyncpreemptoff=1"))
	envc++
	var l line
	l.s("GOMAXPROCS=").dec(uint64(n))
	envp[envc] = pushStr(l.buf[:l.n])
	envc++
	k := copy(envBuf[:], "HV_CMDLINE=")
	k += copy(envBuf[k:], cmd)
	envp[envc] = pushStr(envBuf[:k])
	envc++
	// AT_RANDOM: 16 bytes.
	sp -= 16
	random := sp
	for i := uint64(0); i < 16; i += 8 {
		v, ok := uint64(0), false
		if cpuHasRDRAND {
			v, ok = rdrand64()
		}
		if !ok {
			// No DRNG: the runtime only seeds its hash functions from
			// AT_RANDOM, so TSC jitter is an acceptable stand-in.
			v = rdtsc() * 0x9E3779B97F4A7C15
		}
		le64put(physBytes(random+i, 8), v)
	}
	sp &^= 15
	words := 1 + argc + 1 + envc + 1 + 2*3
	if words%2 != 0 {
		sp -= 8
	}
	push := func(v uint64) {
		sp -= 8
		le64put(physBytes(sp, 8), v)
	}
	// auxv (pushed in reverse): AT_PAGESZ, AT_RANDOM, AT_NULL.
	push(0)
	push(0)
	push(random)
	push(25)
	push(pageSize)
	push(6)
	push(0)
	for i := envc - 1; i >= 0; i-- {
		push(envp[i])
	}
	push(0)
	for i := argc - 1; i >= 0; i-- {
		push(argv[i])
	}
	push(uint64(argc))

	t.f.rip = addrOfRt0()
	t.f.rsp = sp
	t.f.cs, t.f.ss = selKernelCode, selKernelData
	t.f.rflags = 0x202
	initFX(t)
	return t
}

var _ = unsafe.Pointer(nil)
