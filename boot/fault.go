package boot

// kernelFault reports an exception raised by platform code itself (kernel
// context) and stops the machine: such a fault means the platform is broken,
// and continuing could corrupt guests. It runs on the fault stack.
//
//lint:ignore U1000 called from trap_amd64.s
func kernelFault(fp uint64) {
	f := (*frame)(physPtr(fp))
	c := thisCPU()
	if c.kernelEntries == ^uint64(0) {
		stop() // fault inside the fault reporter
	}
	c.kernelEntries = ^uint64(0)
	var l line
	l.s("hv: PLATFORM FAULT on cpu ").dec(uint64(c.id)).s(": vector ").dec(f.vector).s(" (").s(vectorName(f.vector)).s(") err=").hex(f.errcode).s(" cr2=").hex(readCR2()).print()
	dumpFrame(f)
	platformExit(3)
}

func dumpFrame(f *frame) {
	var l line
	l.s("  rip=").hex(f.rip).s(" rsp=").hex(f.rsp).s(" rflags=").hex(f.rflags).s(" cs=").hex(f.cs).print()
	l = line{}
	l.s("  rax=").hex(f.rax).s(" rbx=").hex(f.rbx).s(" rcx=").hex(f.rcx).s(" rdx=").hex(f.rdx).print()
	l = line{}
	l.s("  rsi=").hex(f.rsi).s(" rdi=").hex(f.rdi).s(" rbp=").hex(f.rbp).s(" r8=").hex(f.r8).print()
	l = line{}
	l.s("  r9=").hex(f.r9).s(" r10=").hex(f.r10).s(" r11=").hex(f.r11).s(" r12=").hex(f.r12).print()
	l = line{}
	l.s("  r13=").hex(f.r13).s(" r14=").hex(f.r14).s(" r15=").hex(f.r15).print()
	// Backtrace along the frame-pointer chain (Go keeps RBP frames on
	// amd64); every link is checked to be mapped before it is read.
	l = line{}
	l.s("  backtrace: ").hex(f.rip)
	bp := f.rbp
	for i := 0; i < 16 && bp != 0 && bp&7 == 0; i++ {
		if !mmMapped(bp, 16) {
			break
		}
		ret := *(*uint64)(physPtr(bp + 8))
		next := *(*uint64)(physPtr(bp))
		l.c(' ').hex(ret)
		if next <= bp {
			break
		}
		bp = next
	}
	l.print()
	kputs("  (resolve with: go tool addr2line out/hv.elf)")
}

func vectorName(v uint64) string {
	names := [...]string{"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP", "#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"}
	if v < uint64(len(names)) {
		return names[v]
	}
	return "interrupt"
}
