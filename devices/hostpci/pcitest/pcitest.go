// Package pcitest is a fake host PCI configuration space for tests of
// hostpci and of the drivers built on it.
//
// Boundary: test support only; it models the registers drivers read
// (identity, command/status, BARs with their size masks, capabilities as
// raw bytes) and nothing of the devices behind them.
package pcitest

import (
	"encoding/binary"
	"sync"

	"hv/devices/hostpci"
)

// Func is one fake function: its 256 bytes of configuration space and the
// writable bits of each BAR register (the size mask; 0: not implemented).
type Func struct {
	Space   [256]byte
	BARMask [hostpci.NumBARs]uint32
}

// Config is a fake ConfigSpace.
type Config struct {
	mu    sync.Mutex
	Funcs map[hostpci.Address]*Func
	Reads int
}

// New returns an empty configuration space.
func New() *Config { return &Config{Funcs: map[hostpci.Address]*Func{}} }

// Add places a function and returns it for further setup.
func (c *Config) Add(a hostpci.Address, vendor, device uint16, class uint32) *Func {
	f := &Func{}
	binary.LittleEndian.PutUint16(f.Space[0:], vendor)
	binary.LittleEndian.PutUint16(f.Space[2:], device)
	binary.LittleEndian.PutUint32(f.Space[8:], class<<8)
	c.Funcs[a] = f
	return f
}

// SetBAR gives BAR i the base (with its type bits) and a size (a power of
// two); for a 64-bit BAR the next register holds the upper half.
func (f *Func) SetBAR(i int, base uint64, size uint64, is64 bool) {
	binary.LittleEndian.PutUint32(f.Space[0x10+4*i:], uint32(base))
	mask := ^(size - 1)
	f.BARMask[i] = uint32(mask) &^ 0xF
	if is64 {
		binary.LittleEndian.PutUint32(f.Space[0x10+4*i+4:], uint32(base>>32))
		f.BARMask[i+1] = uint32(mask >> 32)
	}
}

// AddCap appends a capability with the body bytes (after ID and next) at
// off and links it into the list.
func (f *Func) AddCap(off uint8, id uint8, body []byte) {
	f.Space[6] |= 1 << 4 // status: capability list
	f.Space[off] = id
	f.Space[off+1] = 0
	copy(f.Space[int(off)+2:], body)
	if f.Space[0x34] == 0 {
		f.Space[0x34] = off
		return
	}
	p := f.Space[0x34]
	for f.Space[p+1] != 0 {
		p = f.Space[p+1]
	}
	f.Space[p+1] = off
}

// Read32 implements hostpci.ConfigSpace.
func (c *Config) Read32(a hostpci.Address, off uint8) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Reads++
	f := c.Funcs[a]
	if f == nil {
		return 0xFFFFFFFF
	}
	return binary.LittleEndian.Uint32(f.Space[off&0xFC:])
}

// Write32 implements hostpci.ConfigSpace: the command register, BARs
// (only their mask bits) and capability bodies are writable.
func (c *Config) Write32(a hostpci.Address, off uint8, v uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.Funcs[a]
	if f == nil {
		return
	}
	off &= 0xFC
	switch {
	case off == hostpci.RegCommand:
		binary.LittleEndian.PutUint16(f.Space[4:], uint16(v))
	case off >= hostpci.RegBAR0 && off < hostpci.RegBAR0+4*hostpci.NumBARs:
		i := (off - hostpci.RegBAR0) / 4
		old := binary.LittleEndian.Uint32(f.Space[off:])
		m := f.BARMask[i]
		binary.LittleEndian.PutUint32(f.Space[off:], old&^m|v&m)
	case off >= 0x40:
		binary.LittleEndian.PutUint32(f.Space[off:], v)
	}
}
