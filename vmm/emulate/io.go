package emulate

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

func (e *Emulator) ioError(dir string, port uint16, err error) error {
	return fmt.Errorf("emulate: %v at rip %#x: %s port %#x: %w", e.inst.Op, e.rip, dir, port, err)
}

// portInOut implements IN and OUT with an immediate or DX port. Privilege
// checks (IOPL, the TSS I/O bitmap) take priority over the I/O exit on both
// vendors, so an instruction that reaches here may perform the access.
// Intel SDM vol 3C 26.1.1; AMD APM vol 2 15.10.2.
func (e *Emulator) portInOut() error {
	regArg, portArg := e.inst.Args[0], e.inst.Args[1]
	if e.inst.Op == x86asm.OUT {
		regArg, portArg = portArg, regArg
	}
	r, ok := regArg.(x86asm.Reg)
	g, isGPR := gprOf(r)
	if !ok || !isGPR || g.idx != regAX || g.high {
		return e.unsupported("operand form")
	}
	var port uint16
	switch p := portArg.(type) {
	case x86asm.Imm:
		port = uint16(uint8(p))
	case x86asm.Reg:
		if p != x86asm.DX {
			return e.unsupported("operand form")
		}
		port = uint16(e.cpu.GPR(regDX))
	default:
		return e.unsupported("operand form")
	}
	if e.inst.Op == x86asm.IN {
		v, err := e.bus.In(port, g.size)
		if err != nil {
			return e.ioError("in", port, err)
		}
		e.writeGPR(g, uint64(v))
		return nil
	}
	if err := e.bus.Out(port, g.size, uint32(e.readGPR(g))); err != nil {
		return e.ioError("out", port, err)
	}
	return nil
}
