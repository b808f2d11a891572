package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"hv/vmm/pagewalk"
)

var (
	errNoDevice = errors.New("fake: no device")
	errPortFake = errors.New("fake: port broken")
)

type fakeCPU struct {
	gpr                 [16]uint64
	rip, rflags         uint64
	seg                 [numSegRegs]Segment
	cr0, cr3, cr4, efer uint64
}

func (c *fakeCPU) GPR(r int) uint64         { return c.gpr[r&15] }
func (c *fakeCPU) SetGPR(r int, v uint64)   { c.gpr[r&15] = v }
func (c *fakeCPU) RIP() uint64              { return c.rip }
func (c *fakeCPU) SetRIP(v uint64)          { c.rip = v }
func (c *fakeCPU) RFLAGS() uint64           { return c.rflags }
func (c *fakeCPU) SetRFLAGS(v uint64)       { c.rflags = v }
func (c *fakeCPU) Segment(s SegReg) Segment { return c.seg[s%numSegRegs] }
func (c *fakeCPU) CR0() uint64              { return c.cr0 }
func (c *fakeCPU) CR3() uint64              { return c.cr3 }
func (c *fakeCPU) CR4() uint64              { return c.cr4 }
func (c *fakeCPU) EFER() uint64             { return c.efer }

// busOp is one MMIO or port access seen by fakeBus.
type busOp struct {
	Kind string // "r", "w" (MMIO), "in", "out"
	Addr uint64
	Size int
	Val  uint64
}

// Guest physical layout of the fake machine.
const (
	lowRAMEnd   = 0xA0000    // RAM [0, lowRAMEnd)
	vgaMMIO     = 0xA0000    // MMIO [vgaMMIO, 0xC0000)
	vgaMMIOEnd  = 0xC0000    //
	highRAM     = 0x100000   // RAM [highRAM, highRAMEnd)
	highRAMEnd  = 0x1000000  //
	devMMIO     = 0xE0000000 // MMIO [devMMIO, devMMIOEnd)
	devMMIOEnd  = 0xE0400000 //
	codeAddr    = 0x1000
	dataAddr    = 0x3000
	pml4Addr    = 0x80000
	pageTabSize = 6 * 4096
)

// fakeBus is RAM plus two MMIO windows that behave like memory (so that
// reads return what the test stored) and log every access, plus ports.
type fakeBus struct {
	ram  pages
	mmio pages
	log  []busOp
	// inVal is what the next IN returns; it increments after each read.
	inVal uint32
	// failMMIO makes every MMIO access fail.
	failMMIO bool
}

func newFakeBus() *fakeBus {
	return &fakeBus{ram: pages{}, mmio: pages{}, inVal: 0x11223344}
}

// pages is sparse byte storage; unwritten bytes read as zero.
type pages map[uint64]*[4096]byte

func (p pages) at(a uint64) *byte {
	pg := p[a>>12]
	if pg == nil {
		pg = new([4096]byte)
		p[a>>12] = pg
	}
	return &pg[a&0xFFF]
}

func (p pages) get(a uint64) byte {
	if pg := p[a>>12]; pg != nil {
		return pg[a&0xFFF]
	}
	return 0
}

func isRAM(a uint64) bool { return a < lowRAMEnd || (a >= highRAM && a < highRAMEnd) }
func isMMIO(a uint64) bool {
	return (a >= vgaMMIO && a < vgaMMIOEnd) || (a >= devMMIO && a < devMMIOEnd)
}

func (b *fakeBus) ReadPhys(gpa uint64, p []byte) error {
	for i := range p {
		a := gpa + uint64(i)
		if !isRAM(a) {
			return fmt.Errorf("fake: gpa %#x not RAM", a)
		}
		p[i] = b.ram.get(a)
	}
	return nil
}

func (b *fakeBus) WritePhys(gpa uint64, p []byte) error {
	for i := range p {
		if !isRAM(gpa + uint64(i)) {
			return fmt.Errorf("fake: gpa %#x not RAM", gpa+uint64(i))
		}
	}
	for i, v := range p {
		*b.ram.at(gpa + uint64(i)) = v
	}
	return nil
}

func (b *fakeBus) mmioOK(gpa uint64, size int) error {
	if b.failMMIO || !isMMIO(gpa) || !isMMIO(gpa+uint64(size)-1) {
		return fmt.Errorf("gpa %#x: %w", gpa, errNoDevice)
	}
	if size != 1 && size != 2 && size != 4 && size != 8 {
		return fmt.Errorf("fake: bad MMIO size %d", size)
	}
	return nil
}

func (b *fakeBus) ReadMMIO(gpa uint64, size int) (uint64, error) {
	if err := b.mmioOK(gpa, size); err != nil {
		return 0, err
	}
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(b.mmio.get(gpa+uint64(i)))
	}
	b.log = append(b.log, busOp{"r", gpa, size, v})
	return v, nil
}

func (b *fakeBus) WriteMMIO(gpa uint64, size int, v uint64) error {
	if err := b.mmioOK(gpa, size); err != nil {
		return err
	}
	for i := 0; i < size; i++ {
		*b.mmio.at(gpa + uint64(i)) = byte(v >> (8 * i))
	}
	b.log = append(b.log, busOp{"w", gpa, size, v})
	return nil
}

func (b *fakeBus) In(port uint16, size int) (uint32, error) {
	if port == 0xDEAD {
		return 0, fmt.Errorf("port %#x: %w", port, errPortFake)
	}
	v := b.inVal & uint32(sizeMask(size))
	b.inVal++
	b.log = append(b.log, busOp{"in", uint64(port), size, uint64(v)})
	return v, nil
}

func (b *fakeBus) Out(port uint16, size int, v uint32) error {
	b.log = append(b.log, busOp{"out", uint64(port), size, uint64(v)})
	return nil
}

// put stores little-endian v of size bytes at gpa, in RAM or MMIO.
func (b *fakeBus) put(gpa uint64, size int, v uint64) {
	for i := 0; i < size; i++ {
		a := gpa + uint64(i)
		if isMMIO(a) {
			*b.mmio.at(a) = byte(v >> (8 * i))
		} else {
			*b.ram.at(a) = byte(v >> (8 * i))
		}
	}
}

func (b *fakeBus) get(gpa uint64, size int) uint64 {
	var v uint64
	for i := size - 1; i >= 0; i-- {
		a := gpa + uint64(i)
		if isMMIO(a) {
			v = v<<8 | uint64(b.mmio.get(a))
		} else {
			v = v<<8 | uint64(b.ram.get(a))
		}
	}
	return v
}

func (b *fakeBus) put64(gpa, v uint64) {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	for i, x := range buf {
		*b.ram.at(gpa + uint64(i)) = x
	}
}

// identityMap builds 4-level page tables at pml4Addr mapping the low 4 GiB
// with 2-MiB supervisor pages; pte receives each PDE's flags.
func (b *fakeBus) identityMap(flags uint64) {
	const pdpt = pml4Addr + 0x1000
	b.put64(pml4Addr, pdpt|pagewalk.PteP|pagewalk.PteRW|pagewalk.PteUS)
	for i := uint64(0); i < 4; i++ {
		pd := pml4Addr + 0x2000 + i*0x1000
		b.put64(pdpt+8*i, pd|pagewalk.PteP|pagewalk.PteRW|pagewalk.PteUS)
		for j := uint64(0); j < 512; j++ {
			b.put64(pd+8*j, (i<<30|j<<21)|pagewalk.PtePS|flags)
		}
	}
}

// setPDE replaces the PDE mapping linear address la in the identity map.
func (b *fakeBus) setPDE(la, v uint64) {
	b.put64(pml4Addr+0x2000+(la>>30)*0x1000+8*(la>>21&511), v)
}
