package loader

import (
	"fmt"
)

// fakeMemory is sparse guest RAM from 0 to size, in 4 KiB pages allocated
// on first non-zero write, so tests can give a guest gigabytes cheaply.
type fakeMemory struct {
	size   uint64
	pages  map[uint64][]byte
	fill   byte // what unwritten memory reads as, to catch missing zeroing
	writes int
}

func newFakeMemory(size uint64) *fakeMemory {
	return &fakeMemory{size: size, pages: map[uint64][]byte{}}
}

func (m *fakeMemory) Size() uint64 { return m.size }

func (m *fakeMemory) WritePhys(gpa uint64, p []byte) error {
	if gpa+uint64(len(p)) < gpa || gpa+uint64(len(p)) > m.size {
		return fmt.Errorf("fake: write %#x+%#x outside %#x bytes of RAM", gpa, len(p), m.size)
	}
	m.writes++
	for len(p) > 0 {
		page, off := gpa&^0xFFF, gpa&0xFFF
		n := min(uint64(len(p)), 4096-off)
		b, ok := m.pages[page]
		if !ok {
			if allZero(p[:n]) && m.fill == 0 {
				p, gpa = p[n:], gpa+n
				continue
			}
			b = make([]byte, 4096)
			for i := range b {
				b[i] = m.fill
			}
			m.pages[page] = b
		}
		copy(b[off:], p[:n])
		p, gpa = p[n:], gpa+n
	}
	return nil
}

func (m *fakeMemory) read(gpa, n uint64) []byte {
	out := make([]byte, n)
	for i := range out {
		a := gpa + uint64(i)
		if b, ok := m.pages[a&^0xFFF]; ok {
			out[i] = b[a&0xFFF]
		} else {
			out[i] = m.fill
		}
	}
	return out
}

func (m *fakeMemory) u32(gpa uint64) uint32 { return le.Uint32(m.read(gpa, 4)) }
func (m *fakeMemory) u64(gpa uint64) uint64 { return le.Uint64(m.read(gpa, 8)) }

func (m *fakeMemory) cstring(gpa uint64) string {
	var s []byte
	for i := uint64(0); i < 1<<16; i++ {
		c := m.read(gpa+i, 1)[0]
		if c == 0 {
			break
		}
		s = append(s, c)
	}
	return string(s)
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// pattern is n recognizable bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}
