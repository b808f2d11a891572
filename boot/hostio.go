package boot

import (
	"fmt"

	"hv/boot/bootinfo"
)

// Host device access for the hypervisor's own drivers (the host NIC):
// port I/O and uncached memory-mapped registers. The drivers' logic lives
// in devices/ behind small interfaces; these are the real instructions.

// InL reads a 32-bit I/O port on the calling CPU.
func InL(port uint16) uint32 { return inl(port) }

// OutL writes a 32-bit I/O port on the calling CPU.
func OutL(port uint16, v uint32) { outl(port, v) }

// MMIO is a window of device registers at a physical address, reached
// through the identity map. Below 4 GiB the identity map uses write-back
// page attributes except for the APIC range; the firmware's MTRRs type the
// PCI hole uncacheable, and a UC MTRR wins over a WB page (Intel SDM vol. 3A
// §12.5.2.2, table 12-7), so register accesses are uncached there. Each
// access is one instruction of exactly its width (mmio_amd64.s): the
// compiler can neither merge nor drop it.
type MMIO struct {
	base, size uint64
}

// MapMMIO returns the register window [pa, pa+size). It must lie inside
// the identity map (above page 0, below max(4 GiB, top of RAM)) and outside
// RAM the memory map calls available.
func MapMMIO(pa, size uint64) (MMIO, error) {
	top := max(uint64(identityMin), (physTop+(2<<20)-1)&^uint64((2<<20)-1))
	if size == 0 || pa < pageSize || pa+size < pa || pa+size > top {
		return MMIO{}, fmt.Errorf("boot: mmio %#x+%#x: outside the identity map (below %#x)", pa, size, top)
	}
	for _, r := range bootInfo.MemoryMap() {
		if r.Type == bootinfo.MemAvailable && pa < r.End && r.Start < pa+size {
			return MMIO{}, fmt.Errorf("boot: mmio %#x+%#x: overlaps RAM %#x-%#x", pa, size, r.Start, r.End)
		}
	}
	return MMIO{base: pa, size: size}, nil
}

// Base returns the window's physical address; Size its length.
func (m MMIO) Base() uint64 { return m.base }
func (m MMIO) Size() uint64 { return m.size }

func (m MMIO) addr(off, width uint64) uintptr {
	if off > m.size || width > m.size-off || off&(width-1) != 0 {
		panic(fmt.Sprintf("boot: mmio %#x+%#x: access of %d bytes at offset %#x", m.base, m.size, width, off))
	}
	return uintptr(m.base + off)
}

// Read8, Read16 and Read32 read the register at offset off (naturally
// aligned, inside the window; anything else is a driver bug and panics).
func (m MMIO) Read8(off uint64) uint8   { return mmioRead8(m.addr(off, 1)) }
func (m MMIO) Read16(off uint64) uint16 { return mmioRead16(m.addr(off, 2)) }
func (m MMIO) Read32(off uint64) uint32 { return mmioRead32(m.addr(off, 4)) }

// Write8, Write16 and Write32 write the register at offset off.
func (m MMIO) Write8(off uint64, v uint8)   { mmioWrite8(m.addr(off, 1), v) }
func (m MMIO) Write16(off uint64, v uint16) { mmioWrite16(m.addr(off, 2), v) }
func (m MMIO) Write32(off uint64, v uint32) { mmioWrite32(m.addr(off, 4), v) }

func mmioRead8(a uintptr) uint8
func mmioRead16(a uintptr) uint16
func mmioRead32(a uintptr) uint32
func mmioWrite8(a uintptr, v uint8)
func mmioWrite16(a uintptr, v uint16)
func mmioWrite32(a uintptr, v uint32)
