package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// BARKind says what a base address register decodes.
type BARKind uint8

// BAR kinds. A 64-bit memory BAR occupies two consecutive registers; the
// second one must be left BARUnused in the Function's list.
const (
	BARUnused BARKind = iota
	BARIO
	BARMem32
	BARMem64
	barUpper // internal: upper half of the 64-bit BAR below it
)

// BAR describes one base address register of a function: its kind and
// size, and the register file that answers accesses inside it once the
// guest has placed it and enabled decode.
type BAR struct {
	Kind         BARKind
	Size         uint64 // power of two; I/O 4..256 bytes, memory at least 16 bytes
	Prefetchable bool
	Handler      bus.Device
}

// Header is the identification part of a type 0 configuration header.
type Header struct {
	VendorID, DeviceID uint16
	RevisionID         uint8
	ClassCode          uint32 // base class<<16 | sub-class<<8 | programming interface
	SubsystemVendorID  uint16
	SubsystemID        uint16
	InterruptPin       uint8 // PinNone or PinA..PinD
	MultiFunction      bool
}

// CapHook serves the bytes of a capability structure whose fields are not
// plain read-only data (for example virtio's PCI configuration access
// capability). offset is relative to the capability's first byte (its ID).
// The hook is called without the Function's lock held, so it may call
// into the device that owns it.
type CapHook interface {
	ReadCap(offset int, data []byte)
	WriteCap(offset int, data []byte)
}

// AddressSpace is where a Function's BAR handlers are registered when the
// guest enables them. *bus.Bus implements it.
type AddressSpace interface {
	RegisterPorts(base uint16, size uint32, name string, dev bus.Device) error
	UnregisterPorts(base uint16) error
	RegisterMMIO(base, size uint64, name string, dev bus.Device) error
	UnregisterMMIO(base uint64) error
}

// BARMove reports that a BAR's decode window changed: Mapped is false when
// the BAR no longer decodes (decode disabled, address 0, or the range could
// not be registered because it overlaps another device).
type BARMove struct {
	BAR    int
	Kind   BARKind
	Base   uint64
	Size   uint64
	Mapped bool
	Err    error // registration error, when the guest placed it on top of another device
}

// Errors returned when building a Function.
var (
	ErrBadBAR      = errors.New("invalid BAR description")
	ErrNoCapSpace  = errors.New("capability does not fit in configuration space")
	ErrSlotInUse   = errors.New("slot already populated")
	ErrBadLocation = errors.New("invalid slot or function number")
)

type capRange struct {
	start, end int // [start, end) in configuration space
	hook       CapHook
}

type mapping struct {
	on   bool
	base uint64
}

// Function is the configuration space of one PCI function with a type 0
// header. It is safe for concurrent use.
type Function struct {
	name string

	mu      sync.Mutex
	cfg     [ConfigSize]byte
	initial [ConfigSize]byte // power-on contents, also the reference for RO bytes on restore
	wmask   [ConfigSize]byte // bits a guest may write in plain registers
	bars    [NumBARs]BAR
	caps    []capRange
	lastCap int // offset of the last capability in the list, 0 if none

	space    AddressSpace // nil until the function is placed on a host
	maps     [NumBARs]mapping
	onMove   func(BARMove)
	mapFails uint64

	irq      devices.IRQLine
	intx     bool // the device asserts INTx
	irqLevel bool // the level driven on irq
}

// NewFunction builds a function from its header and BAR list. name labels
// its bus registrations.
func NewFunction(name string, h Header, bars [NumBARs]BAR) (*Function, error) {
	f := &Function{name: name, irq: devices.NopLine{}}
	if h.InterruptPin > PinD {
		return nil, fmt.Errorf("pci: function %s: interrupt pin %d: %w", name, h.InterruptPin, ErrBadBAR)
	}
	c := f.cfg[:]
	binary.LittleEndian.PutUint16(c[RegVendorID:], h.VendorID)
	binary.LittleEndian.PutUint16(c[RegDeviceID:], h.DeviceID)
	c[RegRevisionID] = h.RevisionID
	c[RegClassCode] = byte(h.ClassCode)
	c[RegClassCode+1] = byte(h.ClassCode >> 8)
	c[RegClassCode+2] = byte(h.ClassCode >> 16)
	if h.MultiFunction {
		c[RegHeaderType] = HeaderTypeMultiFunction
	}
	binary.LittleEndian.PutUint16(c[RegSubsystemVID:], h.SubsystemVendorID)
	binary.LittleEndian.PutUint16(c[RegSubsystemID:], h.SubsystemID)
	c[RegInterruptPin] = h.InterruptPin
	c[RegInterruptLine] = 0xFF // "unknown / not connected" on x86 until firmware routes it

	binary.LittleEndian.PutUint16(f.wmask[RegCommand:], commandWritableMask)
	f.wmask[RegCacheLineSize] = 0xFF
	f.wmask[RegLatencyTimer] = 0xFF
	f.wmask[RegInterruptLine] = 0xFF

	for i := 0; i < NumBARs; i++ {
		b := bars[i]
		switch b.Kind {
		case BARUnused:
			continue
		case BARIO:
			if b.Size < 4 || b.Size > 256 || bits.OnesCount64(b.Size) != 1 || b.Prefetchable {
				return nil, fmt.Errorf("pci: function %s BAR%d: I/O size %#x: %w", name, i, b.Size, ErrBadBAR)
			}
		case BARMem32:
			if b.Size < 16 || b.Size > 1<<31 || bits.OnesCount64(b.Size) != 1 {
				return nil, fmt.Errorf("pci: function %s BAR%d: memory size %#x: %w", name, i, b.Size, ErrBadBAR)
			}
		case BARMem64:
			if i == NumBARs-1 || bars[i+1].Kind != BARUnused {
				return nil, fmt.Errorf("pci: function %s BAR%d: 64-bit BAR needs the next register free: %w", name, i, ErrBadBAR)
			}
			if b.Size < 16 || b.Size > 1<<62 || bits.OnesCount64(b.Size) != 1 {
				return nil, fmt.Errorf("pci: function %s BAR%d: memory size %#x: %w", name, i, b.Size, ErrBadBAR)
			}
		default:
			return nil, fmt.Errorf("pci: function %s BAR%d: kind %d: %w", name, i, b.Kind, ErrBadBAR)
		}
		if b.Handler == nil {
			return nil, fmt.Errorf("pci: function %s BAR%d: no handler: %w", name, i, ErrBadBAR)
		}
		f.bars[i] = b
		binary.LittleEndian.PutUint32(c[RegBAR0+4*i:], f.barFlags(i))
		if b.Kind == BARMem64 {
			i++
			f.bars[i] = BAR{Kind: barUpper}
		}
	}
	f.initial = f.cfg
	return f, nil
}

// Name returns the label given to NewFunction.
func (f *Function) Name() string { return f.name }

// AddCapability appends a capability structure to the capabilities list.
// body is the structure after its ID and next-pointer bytes. With a nil
// hook the structure is read-only. It returns the capability's offset.
// Capabilities must be added before the function is placed on a host.
func (f *Function) AddCapability(id uint8, body []byte, hook CapHook) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := CapabilitiesStart
	if n := len(f.caps); n > 0 {
		start = (f.caps[n-1].end + 3) &^ 3 // capabilities are dword aligned (PCI 3.0, 6.7)
	}
	end := start + 2 + len(body)
	if end > ConfigSize {
		return 0, fmt.Errorf("pci: function %s: capability %#x of %d bytes: %w", f.name, id, len(body)+2, ErrNoCapSpace)
	}
	f.cfg[start] = id
	f.cfg[start+1] = 0
	copy(f.cfg[start+2:end], body)
	if f.lastCap == 0 {
		f.cfg[RegCapPointer] = byte(start)
	} else {
		f.cfg[f.lastCap+1] = byte(start)
	}
	f.lastCap = start
	binary.LittleEndian.PutUint16(f.cfg[RegStatus:], binary.LittleEndian.Uint16(f.cfg[RegStatus:])|StatusCapList)
	f.caps = append(f.caps, capRange{start: start, end: end, hook: hook})
	f.initial = f.cfg
	return start, nil
}

// SetBARMoveHook installs a function called after a BAR's decode window
// changes, with no lock held. The Function has already re-registered the
// BAR's handler; the hook is for logging and for VMMs that map BARs
// themselves.
func (f *Function) SetBARMoveHook(fn func(BARMove)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onMove = fn
}

// ConnectINTx wires the function's interrupt pin to line and writes the
// line number the firmware would report in the Interrupt Line register
// (for an ISA IRQ through the 8259 this is the IRQ number). Reset keeps it.
func (f *Function) ConnectINTx(line devices.IRQLine, lineNumber uint8) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if line == nil {
		line = devices.NopLine{}
	}
	f.irq = line
	f.cfg[RegInterruptLine] = lineNumber
	f.initial[RegInterruptLine] = lineNumber
	f.irqLevel = f.wantIRQ()
	f.irq.Set(f.irqLevel)
}

// SetINTx is how the device asserts (true) or deasserts its INTx pin. The
// pin reaches the interrupt line unless the guest set Interrupt Disable; the
// Interrupt Status bit follows the pin either way (PCI 3.0, 6.2.3).
func (f *Function) SetINTx(level bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intx = level
	f.syncIRQ(false)
}

// BusMaster reports whether the guest allows the function to master the
// bus (DMA). Devices check it before touching guest memory.
func (f *Function) BusMaster() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.command()&CommandBusMaster != 0
}

// BARBase returns the address the guest programmed into BAR i and whether
// it currently decodes.
func (f *Function) BARBase(i int) (base uint64, decoding bool) {
	if i < 0 || i >= NumBARs {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barAddr(i), f.maps[i].on
}

// MapFailures counts BAR placements that could not be registered because
// they overlapped another device.
func (f *Function) MapFailures() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mapFails
}

func (f *Function) command() uint16 { return binary.LittleEndian.Uint16(f.cfg[RegCommand:]) }

func (f *Function) wantIRQ() bool { return f.intx && f.command()&CommandIntxDisable == 0 }

// syncIRQ updates the interrupt status bit and drives the line when its
// level changed (or always, when force is set).
func (f *Function) syncIRQ(force bool) {
	st := binary.LittleEndian.Uint16(f.cfg[RegStatus:]) &^ StatusInterrupt
	if f.intx {
		st |= StatusInterrupt
	}
	binary.LittleEndian.PutUint16(f.cfg[RegStatus:], st)
	if want := f.wantIRQ(); force || want != f.irqLevel {
		f.irqLevel = want
		f.irq.Set(want)
	}
}

func (f *Function) barFlags(i int) uint32 {
	b := f.bars[i]
	switch b.Kind {
	case BARIO:
		return barIOSpace
	case BARMem32, BARMem64:
		var v uint32
		if b.Kind == BARMem64 {
			v |= barMemType64
		}
		if b.Prefetchable {
			v |= barPrefetchable
		}
		return v
	}
	return 0
}

// barStore applies the BAR write rules: address bits below the size are
// hardwired to zero and the type bits are read-only, which is what makes
// the sizing protocol (write all ones, read back the mask) work
// (PCI 3.0, 6.2.5.1).
func (f *Function) barStore(i int, v uint32) {
	var out uint32
	switch f.bars[i].Kind {
	case BARIO:
		out = v&^uint32(f.bars[i].Size-1)&^barIOFlagBits | f.barFlags(i)
	case BARMem32:
		out = v&^uint32(f.bars[i].Size-1)&^barMemFlagBits | f.barFlags(i)
	case BARMem64:
		low := uint32(f.bars[i].Size - 1)
		if f.bars[i].Size > 1<<32 {
			low = ^uint32(0)
		}
		out = v&^low&^barMemFlagBits | f.barFlags(i)
	case barUpper:
		out = v &^ uint32((f.bars[i-1].Size-1)>>32)
	default:
		out = 0
	}
	binary.LittleEndian.PutUint32(f.cfg[RegBAR0+4*i:], out)
}

func (f *Function) barReg(i int) uint32 { return binary.LittleEndian.Uint32(f.cfg[RegBAR0+4*i:]) }

func (f *Function) barAddr(i int) uint64 {
	switch f.bars[i].Kind {
	case BARIO:
		return uint64(f.barReg(i) &^ barIOFlagBits)
	case BARMem32:
		return uint64(f.barReg(i) &^ barMemFlagBits)
	case BARMem64:
		return uint64(f.barReg(i)&^barMemFlagBits) | uint64(f.barReg(i+1))<<32
	}
	return 0
}

// desired says where BAR i should decode now. Address 0 counts as "not
// placed", as firmware and QEMU treat it, so an unprogrammed BAR never
// shadows RAM at 0.
func (f *Function) desired(i int) mapping {
	b := f.bars[i]
	base := f.barAddr(i)
	cmd := f.command()
	switch b.Kind {
	case BARIO:
		if cmd&CommandIO == 0 || base == 0 || base+b.Size > bus.PortSpaceSize {
			return mapping{}
		}
	case BARMem32, BARMem64:
		if cmd&CommandMemory == 0 || base == 0 || base+b.Size < base {
			return mapping{}
		}
	default:
		return mapping{}
	}
	return mapping{on: true, base: base}
}

// remap brings every BAR's registration in line with the registers and
// returns the moves to report once the lock is dropped.
func (f *Function) remap() []BARMove {
	var moves []BARMove
	for i := range f.bars {
		b := f.bars[i]
		if b.Kind != BARIO && b.Kind != BARMem32 && b.Kind != BARMem64 {
			continue
		}
		want := f.desired(i)
		if f.space == nil {
			want = mapping{}
		}
		cur := f.maps[i]
		if want == cur {
			continue
		}
		if cur.on {
			if b.Kind == BARIO {
				_ = f.space.UnregisterPorts(uint16(cur.base))
			} else {
				_ = f.space.UnregisterMMIO(cur.base)
			}
		}
		mv := BARMove{BAR: i, Kind: b.Kind, Base: f.barAddr(i), Size: b.Size}
		if want.on {
			name := fmt.Sprintf("%s BAR%d", f.name, i)
			var err error
			if b.Kind == BARIO {
				err = f.space.RegisterPorts(uint16(want.base), uint32(b.Size), name, b.Handler)
			} else {
				err = f.space.RegisterMMIO(want.base, b.Size, name, b.Handler)
			}
			if err != nil {
				// Overlapping decoders are undefined on real hardware; here
				// the BAR simply does not decode until the guest moves it.
				f.mapFails++
				want = mapping{}
				mv.Err = fmt.Errorf("pci: %s: %w", name, err)
			}
		}
		f.maps[i] = want
		mv.Mapped = want.on
		moves = append(moves, mv)
	}
	return moves
}

func (f *Function) report(moves []BARMove, hook func(BARMove)) {
	if hook == nil {
		return
	}
	for _, m := range moves {
		hook(m)
	}
}

// attach places the function on an address space (called by Host).
func (f *Function) attach(space AddressSpace) {
	f.mu.Lock()
	f.space = space
	moves, hook := f.remap(), f.onMove
	f.mu.Unlock()
	f.report(moves, hook)
}

// hookAt returns the capability hook covering [off, off+n) entirely.
func (f *Function) hookAt(off, n int) (CapHook, int) {
	for _, c := range f.caps {
		if c.hook != nil && off >= c.start && off+n <= c.end {
			return c.hook, c.start
		}
	}
	return nil, 0
}

// ReadConfig reads len(data) bytes of configuration space at off. Bytes
// past the end read as zero; it never panics.
func (f *Function) ReadConfig(off int, data []byte) {
	if hook, start := f.hookAt(off, len(data)); hook != nil {
		hook.ReadCap(off-start, data)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range data {
		r := off + i
		if r < 0 || r >= ConfigSize {
			data[i] = 0
			continue
		}
		data[i] = f.cfg[r]
	}
}

// WriteConfig writes data to configuration space at off, applying the
// register rules: read-only bytes ignore writes, status error bits are
// write-one-to-clear, BARs keep their size alignment and type bits.
func (f *Function) WriteConfig(off int, data []byte) {
	if hook, start := f.hookAt(off, len(data)); hook != nil {
		hook.WriteCap(off-start, data)
		return
	}
	f.mu.Lock()
	var barTouched [NumBARs]bool
	var newBAR [NumBARs][4]byte
	for i := range newBAR {
		binary.LittleEndian.PutUint32(newBAR[i][:], f.barReg(i))
	}
	oldCmd := f.command()
	for i, v := range data {
		r := off + i
		switch {
		case r < 0 || r >= ConfigSize:
		case r == RegStatus || r == RegStatus+1:
			clear := v & byte(uint16(statusW1C)>>(8*(r-RegStatus)))
			f.cfg[r] &^= clear
		case r >= RegBAR0 && r < RegBAR0+4*NumBARs:
			n := (r - RegBAR0) / 4
			newBAR[n][(r-RegBAR0)%4] = v
			barTouched[n] = true
		default:
			f.cfg[r] = f.cfg[r]&^f.wmask[r] | v&f.wmask[r]
		}
	}
	for i, t := range barTouched {
		if t {
			f.barStore(i, binary.LittleEndian.Uint32(newBAR[i][:]))
		}
	}
	var moves []BARMove
	if f.command() != oldCmd || barTouched != [NumBARs]bool{} {
		moves = f.remap()
	}
	f.syncIRQ(false)
	hook := f.onMove
	f.mu.Unlock()
	f.report(moves, hook)
}

// Reset returns the configuration space to its power-on contents (the
// firmware-assigned interrupt line stays), stops decoding every BAR and
// releases INTx.
func (f *Function) Reset() {
	f.mu.Lock()
	f.cfg = f.initial
	f.intx = false
	moves := f.remap()
	f.syncIRQ(false)
	hook := f.onMove
	f.mu.Unlock()
	f.report(moves, hook)
}
