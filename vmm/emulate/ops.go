package emulate

import (
	"math/bits"

	"golang.org/x/arch/x86/x86asm"

	"hv/vmm/pagewalk"
)

// gpr describes a general-purpose register operand.
type gpr struct {
	idx  int  // encoding number 0..15
	size int  // bytes
	high bool // AH, CH, DH, BH: bits 15:8 of registers 0..3
}

// gprOf maps an x86asm register to its GPR slot; ok is false for anything
// that is not a general-purpose register.
func gprOf(r x86asm.Reg) (gpr, bool) {
	switch {
	case r >= x86asm.AL && r <= x86asm.BL:
		return gpr{idx: int(r - x86asm.AL), size: 1}, true
	case r >= x86asm.AH && r <= x86asm.BH:
		return gpr{idx: int(r - x86asm.AH), size: 1, high: true}, true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return gpr{idx: int(r-x86asm.SPB) + 4, size: 1}, true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return gpr{idx: int(r - x86asm.AX), size: 2}, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return gpr{idx: int(r - x86asm.EAX), size: 4}, true
	case r >= x86asm.RAX && r <= x86asm.R15:
		return gpr{idx: int(r - x86asm.RAX), size: 8}, true
	}
	return gpr{}, false
}

func (e *Emulator) readGPR(g gpr) uint64 {
	v := e.cpu.GPR(g.idx)
	if g.high {
		return v >> 8 & 0xFF
	}
	return v & sizeMask(g.size)
}

// writeGPR writes with the architectural merge rules: 8- and 16-bit writes
// keep the other bits, 32-bit writes zero bits 63:32 (Intel SDM vol 1
// 3.4.1.1), 64-bit writes replace the register.
func (e *Emulator) writeGPR(g gpr, v uint64) {
	switch {
	case g.high:
		old := e.cpu.GPR(g.idx)
		e.cpu.SetGPR(g.idx, old&^0xFF00|(v&0xFF)<<8)
	case g.size == 4:
		e.cpu.SetGPR(g.idx, v&0xFFFF_FFFF)
	case g.size == 8:
		e.cpu.SetGPR(g.idx, v)
	default:
		m := sizeMask(g.size)
		old := e.cpu.GPR(g.idx)
		e.cpu.SetGPR(g.idx, old&^m|v&m)
	}
}

// setSized writes the low size bytes of register idx with the same rules.
func (e *Emulator) setSized(idx, size int, v uint64) {
	e.writeGPR(gpr{idx: idx, size: size}, v)
}

// effAddr computes the segment and offset of a memory operand: base +
// index*scale + displacement, truncated to the address size (Intel SDM
// vol 1 3.7.5). The default segment is SS for a BP or SP base, DS otherwise
// (3.7.4); in 64-bit mode only FS and GS overrides have any effect, which
// resolve handles.
func (e *Emulator) effAddr(m x86asm.Mem) (SegReg, uint64) {
	var off uint64
	seg := DS
	switch m.Base {
	case 0:
	case x86asm.RIP:
		off = e.next
	case x86asm.EIP:
		off = e.next & 0xFFFF_FFFF
	default:
		if g, ok := gprOf(m.Base); ok {
			off = e.readGPR(g)
			if g.idx == 4 || g.idx == 5 {
				seg = SS
			}
		}
	}
	if m.Index != 0 {
		if g, ok := gprOf(m.Index); ok {
			off += e.readGPR(g) * uint64(m.Scale)
		}
	}
	off += e.disp(m)
	switch e.inst.AddrSize {
	case 16:
		off &= 0xFFFF
	case 32:
		off &= 0xFFFF_FFFF
	}
	if m.Segment >= x86asm.ES && m.Segment <= x86asm.GS {
		seg = SegReg(m.Segment - x86asm.ES)
	}
	return seg, off
}

// disp is m's displacement as the processor adds it. x86asm reports a
// 32-bit displacement zero-extended; with 64-bit addressing the processor
// sign-extends it (SDM vol. 2A 2.2.1.3), except in the moffs forms of MOV
// (A0-A3), whose offset is a full 64-bit address (2.2.1.4).
func (e *Emulator) disp(m x86asm.Mem) uint64 {
	if e.inst.AddrSize != 64 {
		return uint64(m.Disp)
	}
	if op := e.inst.Opcode >> 24; op >= 0xA0 && op <= 0xA3 {
		return uint64(m.Disp)
	}
	return uint64(int64(int32(m.Disp)))
}

// memOperand resolves the memory operand m for an access of size bytes.
func (e *Emulator) memOperand(m x86asm.Mem, size int, acc pagewalk.Access) (memRef, bool, error) {
	seg, off := e.effAddr(m)
	return e.resolve(seg, off, size, acc)
}

// loadOperand reads the memory operand m of size bytes. Like resolve it
// returns ok=false when it raised an exception.
func (e *Emulator) loadOperand(m x86asm.Mem, size int) (uint64, bool, error) {
	ref, ok, err := e.memOperand(m, size, 0)
	if !ok {
		return 0, false, err
	}
	v, err := e.load(ref)
	return v, err == nil, err
}

// regOrImm reads a source operand that is a general register or an
// immediate; ok is false for any other form.
func (e *Emulator) regOrImm(a x86asm.Arg) (uint64, bool) {
	switch src := a.(type) {
	case x86asm.Reg:
		g, ok := gprOf(src)
		if !ok {
			return 0, false
		}
		return e.readGPR(g), true
	case x86asm.Imm:
		return uint64(src), true
	}
	return 0, false
}

// mov implements MOV between memory and a register or immediate, including
// the moffs forms (A0-A3). Intel SDM vol 2B "MOV".
func (e *Emulator) mov() error {
	size := e.inst.MemBytes
	switch dst := e.inst.Args[0].(type) {
	case x86asm.Mem:
		v, ok := e.regOrImm(e.inst.Args[1])
		if !ok {
			return e.unsupported("operand form")
		}
		ref, ok, err := e.memOperand(dst, size, pagewalk.AccessWrite)
		if !ok {
			return err
		}
		return e.store(ref, v&sizeMask(size))
	case x86asm.Reg:
		src, isMem := e.inst.Args[1].(x86asm.Mem)
		g, isGPR := gprOf(dst)
		if !isMem || !isGPR {
			return e.unsupported("operand form")
		}
		v, ok, err := e.loadOperand(src, size)
		if !ok {
			return err
		}
		e.writeGPR(g, v)
		return nil
	}
	return e.unsupported("operand form")
}

// movExtend implements MOVZX, MOVSX and MOVSXD with a memory source.
func (e *Emulator) movExtend() error {
	dst, ok1 := e.inst.Args[0].(x86asm.Reg)
	src, ok2 := e.inst.Args[1].(x86asm.Mem)
	g, ok3 := gprOf(dst)
	if !ok1 || !ok2 || !ok3 {
		return e.unsupported("operand form")
	}
	size := e.inst.MemBytes
	v, ok, err := e.loadOperand(src, size)
	if !ok {
		return err
	}
	if e.inst.Op != x86asm.MOVZX {
		v = signExtend(v, size)
	}
	e.writeGPR(g, v)
	return nil
}

func signExtend(v uint64, size int) uint64 {
	s := 64 - 8*uint(size)
	return uint64(int64(v<<s) >> s)
}

// alu implements ADD, ADC, SUB, SBB, AND, OR, XOR, CMP and TEST with a
// memory operand. The memory destination is read, computed and written back
// (for CMP and TEST only read); the whole access is checked for a write
// before the read so that an MMIO read with side effects is never followed
// by a fault.
func (e *Emulator) alu() error {
	size := e.inst.MemBytes
	writesDst := e.inst.Op != x86asm.CMP && e.inst.Op != x86asm.TEST
	var (
		ref      memRef
		a, b     uint64
		dstReg   gpr
		dstIsMem bool
	)
	switch dst := e.inst.Args[0].(type) {
	case x86asm.Mem:
		dstIsMem = true
		acc := pagewalk.Access(0)
		if writesDst {
			acc = pagewalk.AccessWrite
		}
		var ok bool
		if b, ok = e.regOrImm(e.inst.Args[1]); !ok {
			return e.unsupported("operand form")
		}
		r, ok, err := e.memOperand(dst, size, acc)
		if !ok {
			return err
		}
		ref = r
		if a, err = e.load(ref); err != nil {
			return err
		}
	case x86asm.Reg:
		src, isMem := e.inst.Args[1].(x86asm.Mem)
		g, isGPR := gprOf(dst)
		if !isMem || !isGPR {
			return e.unsupported("operand form")
		}
		dstReg = g
		a = e.readGPR(g)
		var ok bool
		var err error
		if b, ok, err = e.loadOperand(src, size); !ok {
			return err
		}
	default:
		return e.unsupported("operand form")
	}

	m := sizeMask(size)
	a, b = a&m, b&m
	var res, flags uint64
	cf := e.rflags & FlagCF
	switch e.inst.Op {
	case x86asm.ADD:
		res, flags = addFlags(a, b, 0, size)
	case x86asm.ADC:
		res, flags = addFlags(a, b, cf, size)
	case x86asm.SUB, x86asm.CMP:
		res, flags = subFlags(a, b, 0, size)
	case x86asm.SBB:
		res, flags = subFlags(a, b, cf, size)
	case x86asm.AND, x86asm.TEST:
		res = a & b
		flags = logicFlags(res, size)
	case x86asm.OR:
		res = a | b
		flags = logicFlags(res, size)
	case x86asm.XOR:
		res = a ^ b
		flags = logicFlags(res, size)
	}
	if writesDst {
		if dstIsMem {
			if err := e.store(ref, res); err != nil {
				return err
			}
		} else {
			e.writeGPR(dstReg, res)
		}
	}
	e.rflags = e.rflags&^arithFlags | flags
	e.cpu.SetRFLAGS(e.rflags)
	return nil
}

// xchg implements XCHG between memory and a register. The memory side is
// checked for a write before it is read.
func (e *Emulator) xchg() error {
	var m x86asm.Mem
	var r x86asm.Reg
	switch a := e.inst.Args[0].(type) {
	case x86asm.Mem:
		m = a
		r, _ = e.inst.Args[1].(x86asm.Reg)
	case x86asm.Reg:
		r = a
		mm, ok := e.inst.Args[1].(x86asm.Mem)
		if !ok {
			return e.unsupported("register form")
		}
		m = mm
	default:
		return e.unsupported("operand form")
	}
	g, ok := gprOf(r)
	if !ok {
		return e.unsupported("operand form")
	}
	ref, ok, err := e.memOperand(m, e.inst.MemBytes, pagewalk.AccessWrite)
	if !ok {
		return err
	}
	old, err := e.load(ref)
	if err != nil {
		return err
	}
	if err := e.store(ref, e.readGPR(g)); err != nil {
		return err
	}
	e.writeGPR(g, old)
	return nil
}

// parity reports the PF value: set when the low byte has an even number of
// ones. Intel SDM vol 1 3.4.3.1.
func parity(v uint64) uint64 {
	if bits.OnesCount8(uint8(v))%2 == 0 {
		return FlagPF
	}
	return 0
}

func szpFlags(res uint64, size int) uint64 {
	f := parity(res)
	if res == 0 {
		f |= FlagZF
	}
	if res>>(8*uint(size)-1)&1 != 0 {
		f |= FlagSF
	}
	return f
}

// addFlags returns a+b+carry truncated to size bytes and the six status
// flags ADD and ADC define.
func addFlags(a, b, carry uint64, size int) (uint64, uint64) {
	n := 8 * uint(size)
	m := sizeMask(size)
	var res, cf uint64
	if n == 64 {
		res, cf = bits.Add64(a, b, carry)
	} else {
		s := a + b + carry
		res, cf = s&m, s>>n&1
	}
	f := szpFlags(res, size)
	if cf != 0 {
		f |= FlagCF
	}
	if (a^b^res)&0x10 != 0 {
		f |= FlagAF
	}
	if (a^res)&(b^res)>>(n-1)&1 != 0 {
		f |= FlagOF
	}
	return res, f
}

// subFlags returns a-b-borrow truncated to size bytes and the six status
// flags SUB, SBB and CMP define.
func subFlags(a, b, borrow uint64, size int) (uint64, uint64) {
	n := 8 * uint(size)
	m := sizeMask(size)
	var res, cf uint64
	if n == 64 {
		res, cf = bits.Sub64(a, b, borrow)
	} else {
		res = (a - b - borrow) & m
		if a < b+borrow {
			cf = 1
		}
	}
	f := szpFlags(res, size)
	if cf != 0 {
		f |= FlagCF
	}
	if (a^b^res)&0x10 != 0 {
		f |= FlagAF
	}
	if (a^b)&(a^res)>>(n-1)&1 != 0 {
		f |= FlagOF
	}
	return res, f
}

// logicFlags returns the flags of AND, OR, XOR and TEST: CF and OF cleared,
// SF, ZF, PF from the result. AF is architecturally undefined; clearing it
// keeps the emulator deterministic (record and replay depend on that).
func logicFlags(res uint64, size int) uint64 {
	return szpFlags(res, size)
}
