// Package hostnet drives a host virtio-net NIC through the modern virtio
// PCI transport (OASIS virtio 1.2, §4.1 and §5.1): under QEMU that is
// `-device virtio-net-pci`, the NIC the hypervisor uses as the uplink of a
// virtual switch. It negotiates VERSION_1 and MAC, runs one receive and one
// transmit split virtqueue (§2.7) by polling, and hands received frames to
// a callback.
//
// Boundary: it finds its registers through hostpci and reaches them and DMA
// memory only through the Regs, Mapper and DMA interfaces, so it knows
// nothing of boot/ and runs on a fake device in tests. The device is not
// trusted: every capability offset, used-ring index, descriptor id and
// length it reports is checked, and a device that breaks the ring protocol
// stops the driver with an error instead of corrupting host memory.
package hostnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"hv/devices/hostpci"
)

// PCI identity of virtio devices (virtio 1.2 §4.1.2): vendor 0x1AF4,
// device 0x1040 + the virtio device ID for modern devices, or a
// transitional ID 0x1000-0x103F (0x1000 is the network card).
const (
	VendorVirtio       = 0x1AF4
	DeviceNetModern    = 0x1041 // 0x1040 + device ID 1 (network card, §5)
	DeviceNetTransient = 0x1000
	pciCapVendor       = 0x09 // vendor-specific capability (PCI 3.0 Appendix H)
)

// virtio PCI capabilities (§4.1.4): struct virtio_pci_cap after the
// generic ID and next bytes.
const (
	capCfgType    = 3  // cfg_type
	capBAR        = 4  // bar
	capOffset     = 8  // le32 offset within the BAR
	capLength     = 12 // le32 length
	capNotifyMult = 16 // le32 notify_off_multiplier (notify cap only, §4.1.4.4)
	capLen        = 16
	capNotifyLen  = 20

	CapCommonCfg = 1 // VIRTIO_PCI_CAP_COMMON_CFG
	CapNotifyCfg = 2 // VIRTIO_PCI_CAP_NOTIFY_CFG
	CapISRCfg    = 3 // VIRTIO_PCI_CAP_ISR_CFG
	CapDeviceCfg = 4 // VIRTIO_PCI_CAP_DEVICE_CFG
)

// Common configuration structure (§4.1.4.3), offsets in the window.
const (
	ccDeviceFeatureSelect = 0x00 // le32
	ccDeviceFeature       = 0x04 // le32
	ccDriverFeatureSelect = 0x08 // le32
	ccDriverFeature       = 0x0C // le32
	ccConfigMSIXVector    = 0x10 // le16
	ccNumQueues           = 0x12 // le16
	ccDeviceStatus        = 0x14 // u8
	ccConfigGeneration    = 0x15 // u8
	ccQueueSelect         = 0x16 // le16
	ccQueueSize           = 0x18 // le16
	ccQueueMSIXVector     = 0x1A // le16
	ccQueueEnable         = 0x1C // le16
	ccQueueNotifyOff      = 0x1E // le16
	ccQueueDesc           = 0x20 // le64
	ccQueueDriver         = 0x28 // le64
	ccQueueDevice         = 0x30 // le64
	commonCfgLen          = 0x38 // the virtio 1.0 layout, all we use

	noVector = 0xFFFF // VIRTIO_MSI_NO_VECTOR (§4.1.5.1.2)
)

// Device status bits (§2.1).
const (
	StatusAcknowledge = 1
	StatusDriver      = 2
	StatusDriverOK    = 4
	StatusFeaturesOK  = 8
	StatusNeedsReset  = 64
	StatusFailed      = 128
)

// Feature bits: VIRTIO_F_VERSION_1 (§6) and VIRTIO_NET_F_MAC (§5.1.3).
// Nothing else is accepted: no offloads, no mergeable buffers, no control
// queue (so QEMU's device stays promiscuous, its reset state), no
// ACCESS_PLATFORM (we give physical addresses).
const (
	FeatureVersion1 = 1 << 32
	FeatureMAC      = 1 << 5
)

// Split virtqueue layout (§2.7).
const (
	descSize      = 16 // le64 addr, le32 len, le16 flags, le16 next
	descFlagWrite = 2  // VIRTQ_DESC_F_WRITE: device-writable
	availNoIntr   = 1  // VIRTQ_AVAIL_F_NO_INTERRUPT
	usedElemSize  = 8  // le32 id, le32 len
	ringHeader    = 4  // le16 flags, le16 idx
)

// HeaderLen is struct virtio_net_hdr with num_buffers, always present with
// VERSION_1 (§5.1.6).
const HeaderLen = 12

// Sizes the driver chooses.
const (
	// BufSize holds one header and the largest frame without offloads
	// (1514 bytes, 1518 with a VLAN tag); the spec asks for at least 1526
	// bytes per receive buffer without mergeable buffers (§5.1.6.3.1).
	BufSize = 2048
	// MaxFrame is the largest frame Send accepts.
	MaxFrame = BufSize - HeaderLen
	// DefaultQueueSize is used when the device allows it.
	DefaultQueueSize = 256
	minFrame         = 14
	rxQueue          = 0
	txQueue          = 1
	resetSpins       = 1 << 20
)

// Regs is a window of device registers; offsets are relative to it.
type Regs interface {
	Read8(off uint64) uint8
	Read16(off uint64) uint16
	Read32(off uint64) uint32
	Write8(off uint64, v uint8)
	Write16(off uint64, v uint16)
	Write32(off uint64, v uint32)
}

// Mapper gives access to the register window at physical address pa.
type Mapper func(pa, size uint64) (Regs, error)

// DMA allocates zeroed, physically contiguous memory the device can reach:
// buf is the driver's view of the size bytes at physical address phys.
type DMA interface {
	Alloc(size uint64) (phys uint64, buf []byte, err error)
}

// Config is what Open needs.
type Config struct {
	PCI       hostpci.ConfigSpace
	Map       Mapper
	DMA       DMA
	QueueSize int // 0: DefaultQueueSize (or less if the device's maximum is less)
}

// Errors callers may branch on.
var (
	ErrNoDevice = errors.New("hostnet: no virtio-net PCI function")
	ErrTXFull   = errors.New("hostnet: transmit queue full")
	ErrTooBig   = errors.New("hostnet: frame larger than a buffer")
	ErrBroken   = errors.New("hostnet: device broke the virtqueue protocol")
)

// Find returns the virtio-net functions among fns.
func Find(fns []hostpci.Function) []hostpci.Function {
	var out []hostpci.Function
	for _, f := range fns {
		if f.Vendor == VendorVirtio && (f.Device == DeviceNetModern || f.Device == DeviceNetTransient) {
			out = append(out, f)
		}
	}
	return out
}

// Stats counts the driver's traffic and the device's misbehaviour.
type Stats struct {
	RxFrames, RxBytes, RxDropped uint64 // dropped: runt or header-only buffers
	TxFrames, TxBytes, TxDropped uint64 // dropped: queue full or too big
	Notifies                     uint64
}

// NIC is an open device.
type NIC struct {
	addr   hostpci.Address
	mac    [6]byte
	common Regs
	notify Regs
	rx, tx *queue

	mu    sync.Mutex // Stats and err
	stats Stats
	err   error // first protocol violation; the NIC is dead after it

	kick chan struct{} // a transmit wakes the poller (capacity 1)
}

// Addr returns the PCI address; MAC the device's MAC address.
func (n *NIC) Addr() hostpci.Address { return n.addr }
func (n *NIC) MAC() [6]byte          { return n.mac }

// Stats returns the counters.
func (n *NIC) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Err returns the protocol violation that stopped the NIC, if any.
func (n *NIC) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *NIC) fail(err error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err == nil {
		n.err = fmt.Errorf("%w: %s: %v", ErrBroken, n.addr, err)
	}
	return n.err
}

func (n *NIC) count(f func(*Stats)) {
	n.mu.Lock()
	f(&n.stats)
	n.mu.Unlock()
}

// window is one virtio capability's register range.
type window struct {
	bar        int
	offset     uint64
	length     uint64
	multiplier uint32
}

// Open brings fn up: it reads the virtio capabilities, checks each against
// its BAR, maps the common, notify and device windows, resets the device,
// negotiates features (§3.1.1), sets up the receive and transmit queues,
// fills the receive queue and sets DRIVER_OK. On an error after the reset
// the device is left FAILED.
func Open(cfg Config, fn hostpci.Function) (*NIC, error) {
	n := &NIC{addr: fn.Addr, kick: make(chan struct{}, 1)}
	wrap := func(err error) error { return fmt.Errorf("hostnet: %s: %w", fn.Addr, err) }
	bars, err := hostpci.ReadBARs(cfg.PCI, fn.Addr)
	if err != nil {
		return nil, err
	}
	wins, err := findWindows(cfg.PCI, fn.Addr, bars)
	if err != nil {
		return nil, wrap(err)
	}
	mapWin := func(t int, min uint64) (Regs, error) {
		w := wins[t]
		if w.length < min {
			return nil, fmt.Errorf("capability type %d: %d bytes, want at least %d", t, w.length, min)
		}
		r, err := cfg.Map(bars[w.bar].Base+w.offset, w.length)
		if err != nil {
			return nil, fmt.Errorf("capability type %d: %w", t, err)
		}
		return r, nil
	}
	if n.common, err = mapWin(CapCommonCfg, commonCfgLen); err != nil {
		return nil, wrap(err)
	}
	if n.notify, err = mapWin(CapNotifyCfg, 2); err != nil {
		return nil, wrap(err)
	}
	devCfg, err := mapWin(CapDeviceCfg, 6)
	if err != nil {
		return nil, wrap(err)
	}
	hostpci.SetCommand(cfg.PCI, fn.Addr, hostpci.CommandMemory|hostpci.CommandBusMaster|hostpci.CommandIntxDisable)

	if err := n.reset(); err != nil {
		return nil, wrap(err)
	}
	ok := false
	defer func() {
		if !ok {
			n.common.Write8(ccDeviceStatus, n.common.Read8(ccDeviceStatus)|StatusFailed)
		}
	}()
	n.common.Write8(ccDeviceStatus, StatusAcknowledge)
	n.common.Write8(ccDeviceStatus, StatusAcknowledge|StatusDriver)
	offered := n.readFeatures()
	if offered&FeatureVersion1 == 0 {
		return nil, wrap(fmt.Errorf("device features %#x lack VERSION_1 (a legacy-only device)", offered))
	}
	want := offered & (FeatureVersion1 | FeatureMAC)
	n.common.Write32(ccDriverFeatureSelect, 0)
	n.common.Write32(ccDriverFeature, uint32(want))
	n.common.Write32(ccDriverFeatureSelect, 1)
	n.common.Write32(ccDriverFeature, uint32(want>>32))
	n.common.Write8(ccDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
	if n.common.Read8(ccDeviceStatus)&StatusFeaturesOK == 0 {
		return nil, wrap(fmt.Errorf("device refused features %#x", want))
	}
	if want&FeatureMAC != 0 {
		n.mac = readMAC(n.common, devCfg)
	} else {
		// No MAC from the device: a locally administered one of our own.
		n.mac = [6]byte{0x02, 0x68, 0x76, fn.Addr.Bus, fn.Addr.Device, fn.Addr.Function}
	}
	if nq := n.common.Read16(ccNumQueues); nq < 2 {
		return nil, wrap(fmt.Errorf("device has %d queues, want at least 2", nq))
	}
	qs := cfg.QueueSize
	if qs == 0 {
		qs = DefaultQueueSize
	}
	if qs < 1 || qs > 32768 || qs&(qs-1) != 0 {
		return nil, wrap(fmt.Errorf("queue size %d: want a power of two up to 32768", qs))
	}
	for _, q := range []struct {
		idx int
		dst **queue
	}{{rxQueue, &n.rx}, {txQueue, &n.tx}} {
		if *q.dst, err = n.setupQueue(cfg.DMA, q.idx, qs, wins[CapNotifyCfg]); err != nil {
			return nil, wrap(err)
		}
	}
	n.rx.fillRX()
	n.common.Write8(ccDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
	n.rx.kick()
	ok = true
	return n, nil
}

// findWindows reads the virtio capabilities and checks that the four the
// driver needs exist, point at implemented memory BARs and lie inside them.
// The first capability of each type wins (§4.1.4: the driver should use
// the first it can).
func findWindows(cs hostpci.ConfigSpace, a hostpci.Address, bars [hostpci.NumBARs]hostpci.BAR) (map[int]window, error) {
	caps, err := hostpci.Capabilities(cs, a)
	if err != nil {
		return nil, err
	}
	wins := map[int]window{}
	for _, c := range caps {
		if c.ID != pciCapVendor {
			continue
		}
		b, err := hostpci.ReadBytes(cs, a, int(c.Offset), min(capNotifyLen, 256-int(c.Offset)))
		if err != nil || len(b) < capLen || b[2] < capLen {
			continue // too short to be a virtio_pci_cap
		}
		t := int(b[capCfgType])
		if t < CapCommonCfg || t > CapDeviceCfg {
			continue
		}
		if _, dup := wins[t]; dup {
			continue
		}
		w := window{bar: int(b[capBAR]), offset: uint64(binary.LittleEndian.Uint32(b[capOffset:])),
			length: uint64(binary.LittleEndian.Uint32(b[capLength:]))}
		if t == CapNotifyCfg {
			if b[2] < capNotifyLen || len(b) < capNotifyLen {
				return nil, fmt.Errorf("notify capability at %#x: %d bytes, want %d", c.Offset, b[2], capNotifyLen)
			}
			w.multiplier = binary.LittleEndian.Uint32(b[capNotifyMult:])
		}
		if w.bar >= hostpci.NumBARs {
			return nil, fmt.Errorf("capability type %d names BAR %d", t, w.bar)
		}
		bar := bars[w.bar]
		if bar.IO || bar.Size == 0 || bar.Base == 0 {
			return nil, fmt.Errorf("capability type %d: BAR %d is not an assigned memory BAR", t, w.bar)
		}
		if w.length == 0 || w.offset > bar.Size || w.length > bar.Size-w.offset {
			return nil, fmt.Errorf("capability type %d: %#x+%#x outside BAR %d (%#x bytes)", t, w.offset, w.length, w.bar, bar.Size)
		}
		wins[t] = w
	}
	for _, t := range []int{CapCommonCfg, CapNotifyCfg, CapDeviceCfg} {
		if _, ok := wins[t]; !ok {
			return nil, fmt.Errorf("no virtio capability of type %d (not a modern virtio-pci device)", t)
		}
	}
	return wins, nil
}

// reset writes 0 to the status and waits for the device to read 0 back
// (§4.1.4.3.2), bounded.
func (n *NIC) reset() error {
	n.common.Write8(ccDeviceStatus, 0)
	for i := 0; i < resetSpins; i++ {
		if n.common.Read8(ccDeviceStatus) == 0 {
			return nil
		}
	}
	return fmt.Errorf("device status still %#x after reset", n.common.Read8(ccDeviceStatus))
}

func (n *NIC) readFeatures() uint64 {
	n.common.Write32(ccDeviceFeatureSelect, 0)
	lo := n.common.Read32(ccDeviceFeature)
	n.common.Write32(ccDeviceFeatureSelect, 1)
	hi := n.common.Read32(ccDeviceFeature)
	return uint64(hi)<<32 | uint64(lo)
}

// readMAC reads the MAC from the device configuration, retrying while the
// configuration generation changes under it (§4.1.4.3.1).
func readMAC(common, dev Regs) [6]byte {
	var mac [6]byte
	for try := 0; try < 16; try++ {
		g := common.Read8(ccConfigGeneration)
		for i := range mac {
			mac[i] = dev.Read8(uint64(i))
		}
		if common.Read8(ccConfigGeneration) == g {
			break
		}
	}
	return mac
}

// queue is the driver's side of one split virtqueue: descriptor i always
// points at buffer i (one descriptor per buffer, no chains).
type queue struct {
	mu      sync.Mutex
	index   int
	size    int
	ring    []byte // descriptor table, avail ring, used ring
	availAt int
	usedAt  int
	bufs    []byte // size buffers of BufSize bytes
	write   bool   // device-writable buffers (receive)

	availIdx uint16 // next free avail slot (free-running)
	lastUsed uint16 // next used entry to look at (free-running)
	posted   []bool // descriptor i is with the device
	free     []uint16
	notify   func()
}

func align(v, a int) int { return (v + a - 1) &^ (a - 1) }

// setupQueue selects queue idx, picks its size, allocates and lays out its
// ring and buffers and enables it (§4.1.5.1.3).
func (n *NIC) setupQueue(dma DMA, idx, want int, nw window) (*queue, error) {
	c := n.common
	c.Write16(ccQueueSelect, uint16(idx))
	max := int(c.Read16(ccQueueSize))
	if max == 0 {
		return nil, fmt.Errorf("queue %d not available", idx)
	}
	if c.Read16(ccQueueEnable) != 0 {
		return nil, fmt.Errorf("queue %d enabled after reset", idx)
	}
	size := want
	for size > max {
		size /= 2
	}
	q := &queue{index: idx, size: size, write: idx == rxQueue, posted: make([]bool, size)}
	q.availAt = align(size*descSize, 4096)
	q.usedAt = align(q.availAt+ringHeader+2*size+2, 4096)
	ringLen := q.usedAt + align(ringHeader+usedElemSize*size+2, 4096)
	ringPhys, ring, err := dma.Alloc(uint64(ringLen))
	if err != nil {
		return nil, fmt.Errorf("queue %d ring: %w", idx, err)
	}
	bufPhys, bufs, err := dma.Alloc(uint64(size * BufSize))
	if err != nil {
		return nil, fmt.Errorf("queue %d buffers: %w", idx, err)
	}
	if len(ring) < ringLen || len(bufs) < size*BufSize {
		return nil, fmt.Errorf("queue %d: DMA gave short memory", idx)
	}
	q.ring, q.bufs = ring[:ringLen], bufs[:size*BufSize]
	for i := 0; i < size; i++ {
		d := q.ring[i*descSize:]
		binary.LittleEndian.PutUint64(d[0:], bufPhys+uint64(i*BufSize))
		binary.LittleEndian.PutUint32(d[8:], BufSize)
		var flags uint16
		if q.write {
			flags = descFlagWrite
		}
		binary.LittleEndian.PutUint16(d[12:], flags)
		if !q.write {
			q.free = append(q.free, uint16(i))
		}
	}
	// No interrupts: the driver polls.
	binary.LittleEndian.PutUint16(q.ring[q.availAt:], availNoIntr)

	noff := uint64(c.Read16(ccQueueNotifyOff)) * uint64(nw.multiplier)
	if noff+2 > nw.length {
		return nil, fmt.Errorf("queue %d notify offset %#x outside the %#x-byte notify window", idx, noff, nw.length)
	}
	c.Write16(ccQueueSize, uint16(size))
	c.Write16(ccQueueMSIXVector, noVector)
	write64 := func(off uint64, v uint64) {
		c.Write32(off, uint32(v))
		c.Write32(off+4, uint32(v>>32))
	}
	write64(ccQueueDesc, ringPhys)
	write64(ccQueueDriver, ringPhys+uint64(q.availAt))
	write64(ccQueueDevice, ringPhys+uint64(q.usedAt))
	c.Write16(ccQueueEnable, 1)
	q.notify = func() {
		n.notify.Write16(noff, uint16(idx))
		n.count(func(s *Stats) { s.Notifies++ })
	}
	return q, nil
}

// ring32 is the 32-bit word at off in the ring: flags in the low half and
// idx in the high half of a ring header. Accessed atomically because the
// device writes it concurrently; the atomic also orders the entries around
// it (acquire on load, release on store).
func (q *queue) ring32(off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&q.ring[off]))
}

// post makes descriptor d available (caller holds mu); kick publishes.
func (q *queue) post(d uint16) {
	slot := q.availAt + ringHeader + 2*int(q.availIdx%uint16(q.size))
	binary.LittleEndian.PutUint16(q.ring[slot:], d)
	q.availIdx++
	q.posted[d] = true
}

// publish stores the avail index (release) and notifies the device.
func (q *queue) publish() {
	atomic.StoreUint32(q.ring32(q.availAt), uint32(q.availIdx)<<16|availNoIntr)
	q.notify()
}

func (q *queue) kick() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.publish()
}

// fillRX posts every receive buffer.
func (q *queue) fillRX() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := 0; i < q.size; i++ {
		q.post(uint16(i))
	}
}

// used is one checked used-ring entry.
type used struct {
	id  uint16
	len uint32
}

// takeUsed returns the new used entries, each checked: the index may run at
// most a queue size ahead, every id must be a descriptor the driver posted
// and has not had back, and a length at most the buffer's size. Caller
// holds mu.
func (q *queue) takeUsed(out []used) ([]used, error) {
	idx := uint16(atomic.LoadUint32(q.ring32(q.usedAt)) >> 16)
	pending := int(idx - q.lastUsed)
	if pending > q.size {
		return out, fmt.Errorf("queue %d: used index %d is %d entries ahead of %d (size %d)", q.index, idx, pending, q.lastUsed, q.size)
	}
	for ; q.lastUsed != idx; q.lastUsed++ {
		e := q.ring[q.usedAt+ringHeader+usedElemSize*int(q.lastUsed%uint16(q.size)):]
		id := binary.LittleEndian.Uint32(e[0:])
		l := binary.LittleEndian.Uint32(e[4:])
		if id >= uint32(q.size) {
			return out, fmt.Errorf("queue %d: used id %d outside the %d descriptors", q.index, id, q.size)
		}
		if !q.posted[id] {
			return out, fmt.Errorf("queue %d: used id %d was not given to the device", q.index, id)
		}
		if q.write && l > BufSize {
			return out, fmt.Errorf("queue %d: used length %d exceeds the %d-byte buffer", q.index, l, BufSize)
		}
		q.posted[id] = false
		out = append(out, used{uint16(id), l})
	}
	return out, nil
}

// reclaimTX returns used transmit buffers to the free list (caller holds
// tx.mu).
func (n *NIC) reclaimTX() error {
	us, err := n.tx.takeUsed(nil)
	for _, u := range us {
		n.tx.free = append(n.tx.free, u.id)
	}
	if err != nil {
		return n.fail(err)
	}
	return nil
}

// Send transmits one Ethernet frame: it is copied behind a zero header
// (no checksum or segmentation offload) into a free transmit buffer. It
// never blocks: with no buffer free the frame is dropped (ErrTXFull).
func (n *NIC) Send(frame []byte) error {
	if err := n.Err(); err != nil {
		return err
	}
	if len(frame) > MaxFrame {
		n.count(func(s *Stats) { s.TxDropped++ })
		return fmt.Errorf("%w: %d bytes", ErrTooBig, len(frame))
	}
	q := n.tx
	q.mu.Lock()
	if err := n.reclaimTX(); err != nil {
		q.mu.Unlock()
		return err
	}
	if len(q.free) == 0 {
		q.mu.Unlock()
		n.count(func(s *Stats) { s.TxDropped++ })
		return ErrTXFull
	}
	d := q.free[len(q.free)-1]
	q.free = q.free[:len(q.free)-1]
	b := q.bufs[int(d)*BufSize:]
	clear(b[:HeaderLen])
	copy(b[HeaderLen:], frame)
	binary.LittleEndian.PutUint32(q.ring[int(d)*descSize+8:], uint32(HeaderLen+len(frame)))
	q.post(d)
	q.publish()
	q.mu.Unlock()
	n.count(func(s *Stats) { s.TxFrames++; s.TxBytes += uint64(len(frame)) })
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// Poll takes every frame the device has received, hands each to deliver
// (which must copy what it keeps: the buffer is given back to the device
// right after), reposts the buffers and reclaims finished transmissions.
// It returns the number of frames delivered; after a protocol violation it
// returns the error and the NIC stays stopped.
func (n *NIC) Poll(deliver func(frame []byte)) (int, error) {
	if err := n.Err(); err != nil {
		return 0, err
	}
	q := n.rx
	q.mu.Lock()
	us, err := q.takeUsed(nil)
	q.mu.Unlock()
	delivered := 0
	for _, u := range us {
		if u.len < HeaderLen+minFrame {
			n.count(func(s *Stats) { s.RxDropped++ })
			continue
		}
		frame := q.bufs[int(u.id)*BufSize+HeaderLen : int(u.id)*BufSize+int(u.len)]
		deliver(frame)
		delivered++
		n.count(func(s *Stats) { s.RxFrames++; s.RxBytes += uint64(len(frame)) })
	}
	if len(us) > 0 {
		q.mu.Lock()
		for _, u := range us {
			q.post(u.id)
		}
		q.publish()
		q.mu.Unlock()
	}
	if err != nil {
		return delivered, n.fail(err)
	}
	n.tx.mu.Lock()
	err = n.reclaimTX()
	n.tx.mu.Unlock()
	return delivered, err
}
