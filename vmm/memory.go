package vmm

import (
	"errors"
	"fmt"
	"sort"
)

// ErrOutsideMemory is returned for a guest-physical access that hits no RAM.
var ErrOutsideMemory = errors.New("outside guest memory")

// RAM is one region of guest RAM backed by contiguous host frames.
type RAM struct {
	GPA, HPA, Size uint64
}

// Memory is a guest's physical address space: RAM regions backed by host
// frames. MMIO regions are the bus's business; everything else is outside
// guest memory.
type Memory struct {
	host Host
	ram  []RAM // sorted by GPA, non-overlapping
}

// RAMChunk is the granule in which guest RAM is allocated and mapped: 2 MiB,
// so nested page tables can use large pages.
const RAMChunk = 2 << 20

// NewMemory allocates size bytes of guest RAM at GPA 0, in 2 MiB-aligned
// chunks (one contiguous block when the host has it).
func NewMemory(host Host, size uint64) (*Memory, error) {
	if size == 0 || size%RAMChunk != 0 {
		return nil, fmt.Errorf("vmm: guest RAM size %#x is not a positive multiple of 2 MiB", size)
	}
	m := &Memory{host: host}
	frames := uint64(RAMChunk / 4096)
	if hpa, err := host.AllocFrames(size/4096, frames); err == nil {
		m.ram = []RAM{{GPA: 0, HPA: hpa, Size: size}}
		return m, nil
	}
	for gpa := uint64(0); gpa < size; gpa += RAMChunk {
		hpa, err := host.AllocFrames(frames, frames)
		if err != nil {
			m.Free()
			return nil, fmt.Errorf("vmm: allocate guest RAM at %#x: %w", gpa, err)
		}
		if n := len(m.ram); n > 0 && m.ram[n-1].HPA+m.ram[n-1].Size == hpa {
			m.ram[n-1].Size += RAMChunk
			continue
		}
		m.ram = append(m.ram, RAM{GPA: gpa, HPA: hpa, Size: RAMChunk})
	}
	return m, nil
}

// Free returns the RAM to the host.
func (m *Memory) Free() {
	for _, r := range m.ram {
		_ = m.host.FreeFrames(r.HPA, r.Size/4096)
	}
	m.ram = nil
}

// Regions returns the RAM regions.
func (m *Memory) Regions() []RAM { return m.ram }

// Size is the total RAM size.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.ram {
		n += r.Size
	}
	return n
}

func (m *Memory) find(gpa uint64) (RAM, bool) {
	i := sort.Search(len(m.ram), func(i int) bool { return m.ram[i].GPA+m.ram[i].Size > gpa })
	if i < len(m.ram) && m.ram[i].GPA <= gpa {
		return m.ram[i], true
	}
	return RAM{}, false
}

// IsRAM reports whether gpa is guest RAM.
func (m *Memory) IsRAM(gpa uint64) bool {
	_, ok := m.find(gpa)
	return ok
}

// Slice returns the host view of [gpa, gpa+n), which must lie in one RAM
// region.
func (m *Memory) Slice(gpa, n uint64) ([]byte, error) {
	r, ok := m.find(gpa)
	if !ok || gpa+n < gpa || gpa+n > r.GPA+r.Size {
		return nil, fmt.Errorf("vmm: guest-physical %#x+%#x: %w", gpa, n, ErrOutsideMemory)
	}
	return m.host.Bytes(r.HPA+gpa-r.GPA, n), nil
}

// covered reports whether [gpa, gpa+n) is all RAM (possibly across
// adjacent regions).
func (m *Memory) covered(gpa, n uint64) bool {
	if gpa+n < gpa {
		return false
	}
	for n > 0 {
		r, ok := m.find(gpa)
		if !ok {
			return false
		}
		k := min(n, r.GPA+r.Size-gpa)
		gpa, n = gpa+k, n-k
	}
	return true
}

// ReadPhys copies guest memory at gpa into p; it fails without copying
// anything if any byte lies outside RAM.
func (m *Memory) ReadPhys(gpa uint64, p []byte) error {
	if !m.covered(gpa, uint64(len(p))) {
		return fmt.Errorf("vmm: read guest-physical %#x+%#x: %w", gpa, len(p), ErrOutsideMemory)
	}
	for len(p) > 0 {
		r, ok := m.find(gpa)
		if !ok {
			return fmt.Errorf("vmm: read guest-physical %#x: %w", gpa, ErrOutsideMemory)
		}
		n := min(uint64(len(p)), r.GPA+r.Size-gpa)
		copy(p, m.host.Bytes(r.HPA+gpa-r.GPA, n))
		p, gpa = p[n:], gpa+n
	}
	return nil
}

// WritePhys copies p into guest memory at gpa; it fails without writing
// anything if any byte lies outside RAM.
func (m *Memory) WritePhys(gpa uint64, p []byte) error {
	if !m.covered(gpa, uint64(len(p))) {
		return fmt.Errorf("vmm: write guest-physical %#x+%#x: %w", gpa, len(p), ErrOutsideMemory)
	}
	for len(p) > 0 {
		r, ok := m.find(gpa)
		if !ok {
			return fmt.Errorf("vmm: write guest-physical %#x: %w", gpa, ErrOutsideMemory)
		}
		n := min(uint64(len(p)), r.GPA+r.Size-gpa)
		copy(m.host.Bytes(r.HPA+gpa-r.GPA, n), p[:n])
		p, gpa = p[n:], gpa+n
	}
	return nil
}
