package boot

import "unsafe"

const (
	msrEFER   = 0xC0000080
	msrSTAR   = 0xC0000081
	msrLSTAR  = 0xC0000082
	msrFMASK  = 0xC0000084
	msrFSBase = 0xC0000100
	msrGSBase = 0xC0000101

	eferSCE = 1 << 0
	eferNXE = 1 << 11

	cr4OSXSAVE = 1 << 18
	cr4PGE     = 1 << 7

	// RFLAGS bits cleared on SYSCALL: TF, IF, DF, NT, AC.
	fmaskBits = 0x100 | 0x200 | 0x400 | 0x4000 | 0x40000
)

// buildIDT fills the shared IDT: a 64-bit interrupt gate per vector, each on
// an IST stack (IST1 for all but NMI (IST2), #DF (IST3) and #MC (IST4)).
func buildIDT() {
	table := (*[256]uint64)(physPtr(addrOfVectorTable()))
	for v := 0; v < 256; v++ {
		h := table[v]
		ist := uint64(1)
		switch v {
		case 2:
			ist = 2
		case 8:
			ist = 3
		case 18:
			ist = 4
		}
		idt[v][0] = h&0xFFFF | uint64(selKernelCode)<<16 | ist<<32 | 0x8E<<40 | (h>>16&0xFFFF)<<48
		idt[v][1] = h >> 32
	}
	base := addrOf(&idt)
	idtr[0] = uint64(len(idt)*16-1) | base<<16
	idtr[1] = base >> 48
}

// setupCPU prepares CPU id's platform state and loads it into the running
// CPU.
func setupCPU(id int) {
	prepareCPU(id)
	loadCPU(id)
}

// prepareCPU fills CPU id's percpu: stacks, fake g's, TSS and GDT.
func prepareCPU(id int) {
	c := &cpus[id]
	c.self = addrOf(c)
	c.id = int32(id)
	c.inKernel = 1 // until the first thread is resumed on this CPU
	c.kstackTop = addrOf(&kstacks[id]) + kstackSize
	lo := uintptr(addrOf(&kstacks[id]))
	c.g = fakeG{lo: lo, hi: lo + kstackSize, stackguard0: lo + stackGuardRoom, stackguard1: lo + stackGuardRoom}
	c.tls[0] = addrOf(&c.g)
	c.ktls = addrOf(&c.tls[1])
	flo := uintptr(addrOf(&istStacks[id]))
	c.faultG = fakeG{lo: flo, hi: flo + 4*istStackSize, stackguard0: flo + 4096, stackguard1: flo + 4096}
	c.faultTL[0] = addrOf(&c.faultG)
	c.faultTLS = addrOf(&c.faultTL[1])

	for i := 0; i < 4; i++ {
		c.tss.setIST(i+1, addrOf(&istStacks[id][i])+istStackSize)
	}
	c.tss.setIOMapBase(uint16(unsafe.Sizeof(c.tss)))
	c.gdt[0] = 0
	c.gdt[1] = 0x00AF9A000000FFFF // 64-bit code, DPL 0
	c.gdt[2] = 0x00CF92000000FFFF // data
	tb := addrOf(&c.tss)
	tl := uint64(unsafe.Sizeof(c.tss) - 1)
	c.gdt[3] = tl&0xFFFF | (tb&0xFFFFFF)<<16 | 0x89<<40 | (tl>>16&0xF)<<48 | (tb>>24&0xFF)<<56
	c.gdt[4] = tb >> 32
	gb := addrOf(&c.gdt)
	c.gdtr[0] = 5*8 - 1 | gb<<16
	c.gdtr[1] = gb >> 48
}

// loadCPU loads CPU id's state into the running CPU: GDT with TSS, IDT, GS
// base, SYSCALL MSRs, SSE/XSAVE control bits.
func loadCPU(id int) {
	c := &cpus[id]
	lgdt(uintptr(addrOf(&c.gdtr)))
	reloadSegments()
	ltr(selTSS)
	lidt(uintptr(addrOf(&idtr)))
	wrmsr(msrGSBase, c.self)

	efer := rdmsr(msrEFER) | eferSCE
	if nxSupported {
		efer |= eferNXE
	}
	wrmsr(msrEFER, efer)
	wrmsr(msrSTAR, uint64(selKernelCode)<<32)
	wrmsr(msrLSTAR, addrOfSyscallEntry())
	wrmsr(msrFMASK, fmaskBits)

	// XSAVE on, but XCR0 = x87|SSE only: the Go runtime then sees no AVX,
	// and FXSAVE covers all the state threads can have. Guests get their
	// own XCR0 around VM entry.
	_, _, c1, _ := cpuid(1, 0)
	cr4 := readCR4() | cr4PGE
	if c1&(1<<26) != 0 {
		cr4 |= cr4OSXSAVE
		writeCR4(cr4)
		xsetbv(0, 3)
	} else {
		writeCR4(cr4)
	}
}
