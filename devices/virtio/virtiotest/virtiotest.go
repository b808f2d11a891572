// Package virtiotest is a test-only virtio driver: fake guest memory, and
// a driver that negotiates with a virtio.Transport through its BAR
// registers, builds split virtqueues by hand and reads the used ring. It is
// the "guest" in the host tests of virtio devices.
package virtiotest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"hv/devices/bus"
	"hv/devices/pci"
	"hv/devices/virtio"
)

// ErrOutside is returned for accesses outside the fake memory.
var ErrOutside = errors.New("virtiotest: outside guest memory")

// Memory is guest RAM at guest-physical 0..len(Bytes).
type Memory struct{ Bytes []byte }

// NewMemory returns size bytes of zeroed fake guest RAM.
func NewMemory(size int) *Memory { return &Memory{Bytes: make([]byte, size)} }

func (m *Memory) span(gpa uint64, n int) ([]byte, error) {
	if gpa > uint64(len(m.Bytes)) || uint64(n) > uint64(len(m.Bytes))-gpa {
		return nil, fmt.Errorf("%#x+%#x: %w", gpa, n, ErrOutside)
	}
	return m.Bytes[gpa : gpa+uint64(n)], nil
}

// ReadPhys implements virtio.GuestMemory.
func (m *Memory) ReadPhys(gpa uint64, p []byte) error {
	s, err := m.span(gpa, len(p))
	if err != nil {
		return err
	}
	copy(p, s)
	return nil
}

// WritePhys implements virtio.GuestMemory.
func (m *Memory) WritePhys(gpa uint64, p []byte) error {
	s, err := m.span(gpa, len(p))
	if err != nil {
		return err
	}
	copy(s, p)
	return nil
}

// Common configuration offsets (spec 4.1.4.3), duplicated here on purpose:
// the driver side must not share the device's constants to catch layout
// mistakes.
const (
	DeviceFeatureSelect = 0
	DeviceFeature       = 4
	DriverFeatureSelect = 8
	DriverFeature       = 12
	NumQueues           = 18
	DeviceStatus        = 20
	ConfigGeneration    = 21
	QueueSelect         = 22
	QueueSize           = 24
	QueueEnable         = 28
	QueueNotifyOff      = 30
	QueueDesc           = 32
	QueueDriver         = 40
	QueueDevice         = 48
)

// Driver is a minimal virtio-pci driver over a transport's BAR 0 handler
// found through the PCI capabilities, as Linux's virtio_pci_modern does.
type Driver struct {
	Mem  *Memory
	Fn   *pci.Function
	BAR  bus.Device
	Caps map[uint8]Cap // by cfg_type
	// Queues as the driver set them up.
	Queues []*DriverQueue
	next   uint64 // bump allocator in Mem
}

// Cap is a parsed virtio_pci_cap.
type Cap struct {
	Offset, Length, Multiplier uint32
	Bar                        uint8
	At                         int // offset in configuration space
}

// DriverQueue is the driver's side of one split virtqueue.
type DriverQueue struct {
	Index             int
	Size              uint16
	Desc, Avail, Used uint64
	nextDesc          uint16
	availIdx          uint16
	usedSeen          uint16
}

// barDevice captures the handler the function registers on a bus.
type recorder struct {
	dev bus.Device
}

func (r *recorder) RegisterPorts(uint16, uint32, string, bus.Device) error { return nil }
func (r *recorder) UnregisterPorts(uint16) error                           { return nil }
func (r *recorder) RegisterMMIO(_, _ uint64, _ string, d bus.Device) error { r.dev = d; return nil }
func (r *recorder) UnregisterMMIO(uint64) error                            { return nil }

// NewDriver places t's function on a host, programs BAR0, enables memory
// decode and bus mastering, and parses the virtio capabilities.
func NewDriver(t *virtio.Transport, mem *Memory) (*Driver, error) {
	rec := &recorder{}
	h := pci.NewHost(rec)
	if err := h.Register(1, 0, t.Function()); err != nil {
		return nil, err
	}
	f := t.Function()
	f.WriteConfig(pci.RegBAR0, []byte{0, 0, 0, 0xE0})
	f.WriteConfig(pci.RegCommand, []byte{pci.CommandMemory | pci.CommandBusMaster, 0})
	if rec.dev == nil {
		return nil, errors.New("virtiotest: BAR0 not registered")
	}
	d := &Driver{Mem: mem, Fn: f, BAR: rec.dev, Caps: map[uint8]Cap{}, next: 0x1000}
	var b [1]byte
	f.ReadConfig(pci.RegCapPointer, b[:])
	for p, n := int(b[0]), 0; p != 0 && n < 48; n++ {
		var c [20]byte
		f.ReadConfig(p, c[:16])
		if c[0] == pci.CapIDVendorSpecific {
			cp := Cap{Bar: c[4], Offset: binary.LittleEndian.Uint32(c[8:]), Length: binary.LittleEndian.Uint32(c[12:]), At: p}
			if c[3] == 2 {
				f.ReadConfig(p+16, c[16:20])
				cp.Multiplier = binary.LittleEndian.Uint32(c[16:])
			}
			d.Caps[c[3]] = cp
		}
		p = int(c[1])
	}
	for _, typ := range []uint8{1, 2, 3} {
		if _, ok := d.Caps[typ]; !ok {
			return nil, fmt.Errorf("virtiotest: capability type %d missing", typ)
		}
	}
	return d, nil
}

// Alloc reserves n bytes of fake guest memory aligned to align.
func (d *Driver) Alloc(n, align uint64) uint64 {
	d.next = (d.next + align - 1) &^ (align - 1)
	a := d.next
	d.next += n
	return a
}

func (d *Driver) common(off uint32) uint64 { return uint64(d.Caps[1].Offset + off) }

// Read8/16/32/Write8/16/32 access the common configuration.
func (d *Driver) Read8(off uint32) uint8 {
	var b [1]byte
	d.BAR.Read(d.common(off), b[:])
	return b[0]
}
func (d *Driver) Read16(off uint32) uint16 {
	var b [2]byte
	d.BAR.Read(d.common(off), b[:])
	return binary.LittleEndian.Uint16(b[:])
}
func (d *Driver) Read32(off uint32) uint32 {
	var b [4]byte
	d.BAR.Read(d.common(off), b[:])
	return binary.LittleEndian.Uint32(b[:])
}
func (d *Driver) Write8(off uint32, v uint8) { d.BAR.Write(d.common(off), []byte{v}) }
func (d *Driver) Write16(off uint32, v uint16) {
	d.BAR.Write(d.common(off), binary.LittleEndian.AppendUint16(nil, v))
}
func (d *Driver) Write32(off uint32, v uint32) {
	d.BAR.Write(d.common(off), binary.LittleEndian.AppendUint32(nil, v))
}

// Write64 writes a 64-bit field as two 32-bit halves, as Linux does.
func (d *Driver) Write64(off uint32, v uint64) {
	d.Write32(off, uint32(v))
	d.Write32(off+4, uint32(v>>32))
}

// DeviceFeatures reads all 64 offered feature bits.
func (d *Driver) DeviceFeatures() uint64 {
	d.Write32(DeviceFeatureSelect, 0)
	lo := d.Read32(DeviceFeature)
	d.Write32(DeviceFeatureSelect, 1)
	return uint64(d.Read32(DeviceFeature))<<32 | uint64(lo)
}

// ReadConfig reads the device-specific configuration.
func (d *Driver) ReadConfig(off uint32, p []byte) {
	d.BAR.Read(uint64(d.Caps[4].Offset+off), p)
}

// WriteConfig writes the device-specific configuration.
func (d *Driver) WriteConfig(off uint32, p []byte) {
	d.BAR.Write(uint64(d.Caps[4].Offset+off), p)
}

// ISR reads (and so acknowledges) the ISR status.
func (d *Driver) ISR() uint8 {
	var b [1]byte
	d.BAR.Read(uint64(d.Caps[3].Offset), b[:])
	return b[0]
}

// Init runs the initialization sequence of spec 3.1.1 with the given
// features and sets up every queue with size (0: the device's maximum).
// It returns the status the device ends in.
func (d *Driver) Init(features uint64, size uint16) uint8 {
	d.Write8(DeviceStatus, 0)
	d.Write8(DeviceStatus, virtio.StatusAcknowledge)
	d.Write8(DeviceStatus, virtio.StatusAcknowledge|virtio.StatusDriver)
	d.Write32(DriverFeatureSelect, 0)
	d.Write32(DriverFeature, uint32(features))
	d.Write32(DriverFeatureSelect, 1)
	d.Write32(DriverFeature, uint32(features>>32))
	d.Write8(DeviceStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	if d.Read8(DeviceStatus)&virtio.StatusFeaturesOK == 0 {
		return d.Read8(DeviceStatus)
	}
	n := int(d.Read16(NumQueues))
	d.Queues = nil
	for i := 0; i < n; i++ {
		d.Write16(QueueSelect, uint16(i))
		s := d.Read16(QueueSize)
		if size != 0 && size < s {
			s = size
			d.Write16(QueueSize, s)
		}
		q := &DriverQueue{Index: i, Size: s}
		q.Desc = d.Alloc(16*uint64(s), 16)
		q.Avail = d.Alloc(6+2*uint64(s), 2)
		q.Used = d.Alloc(6+8*uint64(s), 4)
		d.Write64(QueueDesc, q.Desc)
		d.Write64(QueueDriver, q.Avail)
		d.Write64(QueueDevice, q.Used)
		d.Write16(QueueEnable, 1)
		d.Queues = append(d.Queues, q)
	}
	d.Write8(DeviceStatus, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	return d.Read8(DeviceStatus)
}

// Desc is one descriptor the test wants in a chain.
type Desc struct {
	Addr  uint64
	Len   uint32
	Write bool
	Flags uint16 // extra raw flags (e.g. INDIRECT), OR-ed in
	Next  *uint16
}

// PutDesc writes a raw descriptor at index i of the table at table.
func (d *Driver) PutDesc(table uint64, i uint16, addr uint64, length uint32, flags, next uint16) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], length)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
	_ = d.Mem.WritePhys(table+16*uint64(i), b[:])
}

// AddChain writes descs as a chain of consecutive descriptors, publishes
// its head in the available ring and returns the head index.
func (d *Driver) AddChain(q *DriverQueue, descs []Desc) uint16 {
	head := q.nextDesc
	for i, ds := range descs {
		idx := (head + uint16(i)) % q.Size
		flags := ds.Flags
		if ds.Write {
			flags |= virtio.DescFWrite
		}
		next := (idx + 1) % q.Size
		if i < len(descs)-1 {
			flags |= virtio.DescFNext
		}
		if ds.Next != nil {
			flags |= virtio.DescFNext
			next = *ds.Next
		}
		d.PutDesc(q.Desc, idx, ds.Addr, ds.Len, flags, next)
	}
	q.nextDesc = (head + uint16(len(descs))) % q.Size
	d.Publish(q, head)
	return head
}

// Publish puts head in the available ring and advances avail idx.
func (d *Driver) Publish(q *DriverQueue, head uint16) {
	_ = d.Mem.WritePhys(q.Avail+4+2*uint64(q.availIdx%q.Size), binary.LittleEndian.AppendUint16(nil, head))
	q.availIdx++
	_ = d.Mem.WritePhys(q.Avail+2, binary.LittleEndian.AppendUint16(nil, q.availIdx))
}

// SetAvailIdx forces the available index (to test corrupted indices).
func (d *Driver) SetAvailIdx(q *DriverQueue, idx uint16) {
	_ = d.Mem.WritePhys(q.Avail+2, binary.LittleEndian.AppendUint16(nil, idx))
}

// SuppressInterrupts sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT.
func (d *Driver) SuppressInterrupts(q *DriverQueue, on bool) {
	var f uint16
	if on {
		f = virtio.AvailFNoInterrupt
	}
	_ = d.Mem.WritePhys(q.Avail, binary.LittleEndian.AppendUint16(nil, f))
}

// Kick notifies queue q.
func (d *Driver) Kick(q *DriverQueue) {
	d.Write16(QueueSelect, uint16(q.Index))
	off := uint64(d.Read16(QueueNotifyOff)) * uint64(d.Caps[2].Multiplier)
	d.BAR.Write(uint64(d.Caps[2].Offset)+off, binary.LittleEndian.AppendUint16(nil, uint16(q.Index)))
}

// Used is one used-ring element.
type Used struct {
	ID  uint32
	Len uint32
}

// TakeUsed returns the used elements the device added since the last call.
func (d *Driver) TakeUsed(q *DriverQueue) []Used {
	var b [8]byte
	_ = d.Mem.ReadPhys(q.Used+2, b[:2])
	idx := binary.LittleEndian.Uint16(b[:2])
	var out []Used
	for ; q.usedSeen != idx; q.usedSeen++ {
		_ = d.Mem.ReadPhys(q.Used+4+8*uint64(q.usedSeen%q.Size), b[:])
		out = append(out, Used{ID: binary.LittleEndian.Uint32(b[:]), Len: binary.LittleEndian.Uint32(b[4:])})
	}
	return out
}

// Buffer allocates n bytes filled with data (zero when nil).
func (d *Driver) Buffer(data []byte, n int) uint64 {
	a := d.Alloc(uint64(n), 16)
	_ = d.Mem.WritePhys(a, data)
	return a
}

// Bytes reads n bytes of guest memory at a.
func (d *Driver) Bytes(a uint64, n int) []byte {
	b := make([]byte, n)
	_ = d.Mem.ReadPhys(a, b)
	return b
}
