// Package bus routes guest port-I/O and MMIO accesses to device models.
//
// A Bus holds two address spaces: the 16-bit x86 port space and the 64-bit
// guest-physical MMIO space. Devices are registered on non-overlapping
// ranges; an access is delivered to the device with the offset from the
// start of the range it was registered on. The bus knows nothing about how
// an access was produced (an I/O exit, an emulated MOV, a string
// instruction): the vmm decodes, the bus routes.
//
// Rules, chosen to match what a PC chipset does:
//   - Accesses that hit no device follow the PC rule: reads return all ones
//     (the floating ISA/PCI data bus) and writes are dropped. Both are
//     counted in Stats.
//   - An access that is not wholly inside one device's range is split at
//     range boundaries, the way the ISA bus controller splits a wide access
//     to 8-bit devices into byte cycles: each piece goes to the device (or
//     the unhandled rule) that covers it, with its own offset and length.
//     Port addresses do not wrap: bytes past port 0xFFFF are unhandled.
//   - Port accesses are 1, 2 or 4 bytes; MMIO accesses 1, 2, 4 or 8 bytes.
//     Other sizes are a bug in the caller and return ErrSize.
//
// Concurrency: registration and dispatch may run concurrently (a read lock
// is held during dispatch). The bus does not serialize calls into a device:
// every device does its own locking, because vCPU goroutines and timer
// ticks reach it concurrently.
package bus

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Device is a register file on the bus, in the style of rust-vmm's
// BusDevice. offset is relative to the base of the range the device was
// registered on; len(data) is the access size (already split at range
// boundaries). Data is little-endian, as on x86. Read fills data; Write
// consumes it. Neither may panic on any offset or data a guest can produce.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// Errors returned by the Bus.
var (
	ErrOverlap = errors.New("range overlaps a registered device")
	ErrSize    = errors.New("unsupported access size")
	ErrRange   = errors.New("invalid range")
	ErrNoRange = errors.New("no device registered at base")
)

// PortSpaceSize is the size of the x86 I/O address space: 64 KiB of byte
// ports (Intel SDM Vol. 1, 19.2 "I/O Port Addressing").
const PortSpaceSize = 1 << 16

// Stats counts accesses that hit no device. A split access counts once
// when any of its pieces hit no device.
type Stats struct {
	UnhandledPortReads  uint64
	UnhandledPortWrites uint64
	UnhandledMMIOReads  uint64
	UnhandledMMIOWrites uint64
}

type entry struct {
	base, size uint64 // size > 0; base+size does not overflow the space
	name       string
	dev        Device
}

func (e *entry) last() uint64 { return e.base + e.size - 1 }

// space is one address space: a sorted list of disjoint ranges.
type space struct {
	kind    string
	limit   uint64 // highest valid address
	entries []*entry
}

// Bus is a port-I/O space and an MMIO space with their devices.
type Bus struct {
	mu   sync.RWMutex
	pio  space
	mmio space

	unPortR, unPortW, unMMIOR, unMMIOW atomic.Uint64
}

// New returns an empty bus.
func New() *Bus {
	return &Bus{
		pio:  space{kind: "port", limit: PortSpaceSize - 1},
		mmio: space{kind: "mmio", limit: ^uint64(0)},
	}
}

// RegisterPorts puts dev on ports [base, base+size). size may be up to
// 0x10000 so that one device could cover the whole space.
func (b *Bus) RegisterPorts(base uint16, size uint32, name string, dev Device) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pio.insert(uint64(base), uint64(size), name, dev)
}

// RegisterMMIO puts dev on guest-physical addresses [base, base+size).
func (b *Bus) RegisterMMIO(base, size uint64, name string, dev Device) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mmio.insert(base, size, name, dev)
}

// UnregisterPorts removes the device registered at exactly base.
func (b *Bus) UnregisterPorts(base uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pio.remove(uint64(base))
}

// UnregisterMMIO removes the device registered at exactly base.
func (b *Bus) UnregisterMMIO(base uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mmio.remove(base)
}

func (s *space) insert(base, size uint64, name string, dev Device) error {
	if dev == nil {
		return fmt.Errorf("bus: register %s %q: nil device: %w", s.kind, name, ErrRange)
	}
	if size == 0 || base > s.limit || size-1 > s.limit-base {
		return fmt.Errorf("bus: register %s %q at %#x size %#x: %w", s.kind, name, base, size, ErrRange)
	}
	e := &entry{base: base, size: size, name: name, dev: dev}
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].base > base })
	// Only the neighbours can overlap because the list is sorted and disjoint.
	if i > 0 && s.entries[i-1].last() >= base {
		p := s.entries[i-1]
		return fmt.Errorf("bus: register %s %q at %#x size %#x: %w %q at %#x size %#x",
			s.kind, name, base, size, ErrOverlap, p.name, p.base, p.size)
	}
	if i < len(s.entries) && s.entries[i].base <= e.last() {
		n := s.entries[i]
		return fmt.Errorf("bus: register %s %q at %#x size %#x: %w %q at %#x size %#x",
			s.kind, name, base, size, ErrOverlap, n.name, n.base, n.size)
	}
	s.entries = append(s.entries, nil)
	copy(s.entries[i+1:], s.entries[i:])
	s.entries[i] = e
	return nil
}

func (s *space) remove(base uint64) error {
	for i, e := range s.entries {
		if e.base == base {
			s.entries = append(s.entries[:i], s.entries[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("bus: unregister %s at %#x: %w", s.kind, base, ErrNoRange)
}

// find returns the entry containing addr, or the first entry above addr
// (nil if none) with contains=false.
func (s *space) find(addr uint64) (e *entry, contains bool) {
	i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].last() >= addr })
	if i == len(s.entries) {
		return nil, false
	}
	e = s.entries[i]
	return e, e.base <= addr
}

// piece is one part of a split access.
type piece struct {
	dev    Device // nil: no device
	offset uint64 // offset within dev's range
	lo, hi int    // data[lo:hi]
}

// split cuts the access [addr, addr+n) at device range boundaries. The
// result has at most n pieces, so it fits in a small array.
func (s *space) split(addr uint64, n int, out *[8]piece) []piece {
	ps := out[:0]
	pos := 0
	for pos < n {
		a := addr + uint64(pos)
		if a < addr || a > s.limit { // wrapped or beyond the space
			ps = append(ps, piece{lo: pos, hi: n})
			break
		}
		e, in := s.find(a)
		switch {
		case in:
			k := n - pos
			if rem := e.last() - a + 1; rem < uint64(k) {
				k = int(rem)
			}
			ps = append(ps, piece{dev: e.dev, offset: a - e.base, lo: pos, hi: pos + k})
			pos += k
		default:
			k := n - pos
			if e != nil && e.base-a < uint64(k) {
				k = int(e.base - a)
			}
			ps = append(ps, piece{lo: pos, hi: pos + k})
			pos += k
		}
	}
	return ps
}

func validPortSize(n int) bool { return n == 1 || n == 2 || n == 4 }
func validMMIOSize(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 }

// ReadPort performs an IN of len(data) bytes from port.
func (b *Bus) ReadPort(port uint16, data []byte) error {
	if !validPortSize(len(data)) {
		return fmt.Errorf("bus: read port %#x: %d bytes: %w", port, len(data), ErrSize)
	}
	b.read(&b.pio, uint64(port), data, &b.unPortR)
	return nil
}

// WritePort performs an OUT of len(data) bytes to port.
func (b *Bus) WritePort(port uint16, data []byte) error {
	if !validPortSize(len(data)) {
		return fmt.Errorf("bus: write port %#x: %d bytes: %w", port, len(data), ErrSize)
	}
	b.write(&b.pio, uint64(port), data, &b.unPortW)
	return nil
}

// ReadMMIO reads len(data) bytes at guest-physical address addr.
func (b *Bus) ReadMMIO(addr uint64, data []byte) error {
	if !validMMIOSize(len(data)) {
		return fmt.Errorf("bus: read mmio %#x: %d bytes: %w", addr, len(data), ErrSize)
	}
	b.read(&b.mmio, addr, data, &b.unMMIOR)
	return nil
}

// WriteMMIO writes len(data) bytes at guest-physical address addr.
func (b *Bus) WriteMMIO(addr uint64, data []byte) error {
	if !validMMIOSize(len(data)) {
		return fmt.Errorf("bus: write mmio %#x: %d bytes: %w", addr, len(data), ErrSize)
	}
	b.write(&b.mmio, addr, data, &b.unMMIOW)
	return nil
}

func (b *Bus) read(s *space, addr uint64, data []byte, miss *atomic.Uint64) {
	var buf [8]piece
	b.mu.RLock()
	ps := s.split(addr, len(data), &buf)
	b.mu.RUnlock()
	missed := false
	for _, p := range ps {
		if p.dev == nil {
			for i := p.lo; i < p.hi; i++ {
				data[i] = 0xFF
			}
			missed = true
			continue
		}
		p.dev.Read(p.offset, data[p.lo:p.hi])
	}
	if missed {
		miss.Add(1)
	}
}

func (b *Bus) write(s *space, addr uint64, data []byte, miss *atomic.Uint64) {
	var buf [8]piece
	b.mu.RLock()
	ps := s.split(addr, len(data), &buf)
	b.mu.RUnlock()
	missed := false
	for _, p := range ps {
		if p.dev == nil {
			missed = true
			continue
		}
		p.dev.Write(p.offset, data[p.lo:p.hi])
	}
	if missed {
		miss.Add(1)
	}
}

// Stats returns the unhandled-access counters.
func (b *Bus) Stats() Stats {
	return Stats{
		UnhandledPortReads:  b.unPortR.Load(),
		UnhandledPortWrites: b.unPortW.Load(),
		UnhandledMMIOReads:  b.unMMIOR.Load(),
		UnhandledMMIOWrites: b.unMMIOW.Load(),
	}
}

// Range describes one registration, for listings and monitors.
type Range struct {
	Base, Size uint64
	Name       string
}

// PortRanges lists the port registrations in address order.
func (b *Bus) PortRanges() []Range { return b.ranges(&b.pio) }

// MMIORanges lists the MMIO registrations in address order.
func (b *Bus) MMIORanges() []Range { return b.ranges(&b.mmio) }

func (b *Bus) ranges(s *space) []Range {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]Range, len(s.entries))
	for i, e := range s.entries {
		out[i] = Range{Base: e.base, Size: e.size, Name: e.name}
	}
	return out
}
