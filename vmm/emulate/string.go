package emulate

import (
	"golang.org/x/arch/x86/x86asm"

	"hv/vmm/pagewalk"
)

// Register numbers of the implicit string-instruction operands.
const (
	regAX = 0
	regCX = 1
	regDX = 2
	regSI = 6
	regDI = 7
)

type stringKind uint8

const (
	kindMOVS stringKind = iota
	kindSTOS
	kindLODS
	kindINS
	kindOUTS
)

// stringShape returns the kind and element size of a string instruction.
func stringShape(op x86asm.Op) (stringKind, int) {
	switch op {
	case x86asm.MOVSB:
		return kindMOVS, 1
	case x86asm.MOVSW:
		return kindMOVS, 2
	case x86asm.MOVSD:
		return kindMOVS, 4
	case x86asm.MOVSQ:
		return kindMOVS, 8
	case x86asm.STOSB:
		return kindSTOS, 1
	case x86asm.STOSW:
		return kindSTOS, 2
	case x86asm.STOSD:
		return kindSTOS, 4
	case x86asm.STOSQ:
		return kindSTOS, 8
	case x86asm.LODSB:
		return kindLODS, 1
	case x86asm.LODSW:
		return kindLODS, 2
	case x86asm.LODSD:
		return kindLODS, 4
	case x86asm.LODSQ:
		return kindLODS, 8
	case x86asm.INSB:
		return kindINS, 1
	case x86asm.INSW:
		return kindINS, 2
	case x86asm.INSD:
		return kindINS, 4
	case x86asm.OUTSB:
		return kindOUTS, 1
	case x86asm.OUTSW:
		return kindOUTS, 2
	}
	return kindOUTS, 4 // OUTSD
}

// hasRep reports a REP or REPNE prefix. For the string instructions handled
// here (none of which compare) both repeat while rCX is non-zero.
// Intel SDM vol 2B "REP/REPE/REPZ/REPNE/REPNZ".
func (e *Emulator) hasRep() bool {
	for _, p := range e.inst.Prefix {
		if p == 0 {
			return false
		}
		if b := p & 0xFF; b == 0xF3 || b == 0xF2 {
			return true
		}
	}
	return false
}

// srcSegment returns the segment of the source operand of MOVS, LODS and
// OUTS: DS unless overridden. The destination is always ES.
func (e *Emulator) srcSegment() SegReg {
	if m, ok := e.inst.Args[1].(x86asm.Mem); ok && m.Segment >= x86asm.ES && m.Segment <= x86asm.GS {
		return SegReg(m.Segment - x86asm.ES)
	}
	return DS
}

// stringOp implements MOVS, STOS, LODS, INS and OUTS, with REP. Each
// iteration checks both operands before touching either, so a fault leaves
// the registers describing exactly the iterations done (Intel SDM vol 2B
// "REP": a faulting iteration can be restarted). At most maxRepeat
// iterations run per call; if rCX is still non-zero then, RIP is left on
// the instruction and Result.Done is false.
func (e *Emulator) stringOp() error {
	kind, size := stringShape(e.inst.Op)
	amask := sizeMask(e.inst.AddrSize / 8)
	rep := e.hasRep()
	si, di := e.cpu.GPR(regSI), e.cpu.GPR(regDI)
	cx := e.cpu.GPR(regCX)
	count := cx & amask
	if rep && count == 0 {
		return nil
	}
	iters := uint64(1)
	if rep {
		iters = min(count, uint64(e.maxRepeat))
	}
	delta := uint64(size)
	if e.rflags&FlagDF != 0 {
		delta = -delta
	}
	src := e.srcSegment()
	port := uint16(e.cpu.GPR(regDX))
	acc := e.cpu.GPR(regAX)
	m := sizeMask(size)

	var done uint64
	var err error
loop:
	for ; done < iters; done++ {
		switch kind {
		case kindMOVS:
			s, ok, rerr := e.resolve(src, si&amask, size, 0)
			if !ok {
				err = rerr
				break loop
			}
			d, ok, rerr := e.resolve(ES, di&amask, size, pagewalk.AccessWrite)
			if !ok {
				err = rerr
				break loop
			}
			v, lerr := e.load(s)
			if lerr != nil {
				err = lerr
				break loop
			}
			if err = e.store(d, v); err != nil {
				break loop
			}
			si += delta
			di += delta
		case kindSTOS:
			d, ok, rerr := e.resolve(ES, di&amask, size, pagewalk.AccessWrite)
			if !ok {
				err = rerr
				break loop
			}
			if err = e.store(d, acc&m); err != nil {
				break loop
			}
			di += delta
		case kindLODS:
			s, ok, rerr := e.resolve(src, si&amask, size, 0)
			if !ok {
				err = rerr
				break loop
			}
			v, lerr := e.load(s)
			if lerr != nil {
				err = lerr
				break loop
			}
			acc = v
			si += delta
		case kindINS:
			// The destination is checked before the port is read, so a
			// fault does not lose a byte read from the device.
			d, ok, rerr := e.resolve(ES, di&amask, size, pagewalk.AccessWrite)
			if !ok {
				err = rerr
				break loop
			}
			v, ierr := e.bus.In(port, size)
			if ierr != nil {
				err = e.ioError("in", port, ierr)
				break loop
			}
			if err = e.store(d, uint64(v)&m); err != nil {
				break loop
			}
			di += delta
		case kindOUTS:
			s, ok, rerr := e.resolve(src, si&amask, size, 0)
			if !ok {
				err = rerr
				break loop
			}
			v, lerr := e.load(s)
			if lerr != nil {
				err = lerr
				break loop
			}
			if oerr := e.bus.Out(port, size, uint32(v)); oerr != nil {
				err = e.ioError("out", port, oerr)
				break loop
			}
			si += delta
		}
	}

	// Write back what the completed iterations did, with the address size
	// deciding which part of each register changes.
	asz := e.inst.AddrSize / 8
	switch kind {
	case kindMOVS:
		e.setSized(regSI, asz, si)
		e.setSized(regDI, asz, di)
	case kindSTOS, kindINS:
		e.setSized(regDI, asz, di)
	case kindLODS:
		e.setSized(regSI, asz, si)
		if done > 0 {
			e.setSized(regAX, size, acc)
		}
	case kindOUTS:
		e.setSized(regSI, asz, si)
	}
	if rep {
		count -= done
		e.setSized(regCX, asz, count)
		e.pending = count != 0 && !e.raised && err == nil
	}
	return err
}
