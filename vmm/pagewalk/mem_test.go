package pagewalk

import (
	"encoding/binary"
	"fmt"
)

// fakeMem is sparse guest RAM below limit; pages never written read as zero.
type fakeMem struct {
	pages map[uint64]*[Size4K]byte
	limit uint64
	// alias, when non-zero, folds every page number onto that many
	// backing pages so that random page-table pointers mostly land on
	// data the fuzzer controls.
	alias uint64
}

func newFakeMem(limit uint64) *fakeMem {
	return &fakeMem{pages: map[uint64]*[Size4K]byte{}, limit: limit}
}

func (m *fakeMem) page(gpa uint64) *[Size4K]byte {
	pn := gpa >> 12
	if m.alias != 0 {
		pn %= m.alias
	}
	p := m.pages[pn]
	if p == nil {
		p = new([Size4K]byte)
		m.pages[pn] = p
	}
	return p
}

func (m *fakeMem) check(gpa uint64, n int) error {
	if gpa >= m.limit || uint64(n) > m.limit-gpa {
		return fmt.Errorf("fake: gpa %#x+%d outside RAM", gpa, n)
	}
	return nil
}

func (m *fakeMem) ReadPhys(gpa uint64, p []byte) error {
	if err := m.check(gpa, len(p)); err != nil {
		return err
	}
	for i := range p {
		a := gpa + uint64(i)
		p[i] = m.page(a)[a&0xFFF]
	}
	return nil
}

func (m *fakeMem) WritePhys(gpa uint64, p []byte) error {
	if err := m.check(gpa, len(p)); err != nil {
		return err
	}
	for i, b := range p {
		a := gpa + uint64(i)
		m.page(a)[a&0xFFF] = b
	}
	return nil
}

func (m *fakeMem) put64(gpa, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if err := m.WritePhys(gpa, b[:]); err != nil {
		panic(err)
	}
}

func (m *fakeMem) put32(gpa uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if err := m.WritePhys(gpa, b[:]); err != nil {
		panic(err)
	}
}

func (m *fakeMem) get64(gpa uint64) uint64 {
	var b [8]byte
	if err := m.ReadPhys(gpa, b[:]); err != nil {
		panic(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (m *fakeMem) get32(gpa uint64) uint32 {
	var b [4]byte
	if err := m.ReadPhys(gpa, b[:]); err != nil {
		panic(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}
