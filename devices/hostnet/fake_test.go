package hostnet

import (
	"encoding/binary"
	"fmt"
	"sync"

	"hv/devices/hostpci"
	"hv/devices/hostpci/pcitest"
)

// The fake device: a modern virtio-net PCI function with its registers in
// a 16 KiB 64-bit BAR 4 (QEMU's layout) and guest... host memory in mem.
const (
	fakeBAR      = 0xFE000000
	fakeBARSize  = 0x4000
	fakeCommon   = 0x0000
	fakeISR      = 0x1000
	fakeDevice   = 0x2000
	fakeNotify   = 0x3000
	fakeMult     = 4
	fakeMemBase  = 0x10000000
	fakeMemSize  = 4 << 20
	fakeQueueMax = 256
)

var fakeAddr = hostpci.Address{Device: 3}

type fakeQueue struct {
	size, enable, notifyOff uint16
	desc, driver, device    uint64
	lastAvail               uint16
	usedIdx                 uint16
}

type fakeDev struct {
	mu       sync.Mutex
	pci      *pcitest.Config
	mem      []byte
	next     uint64 // DMA bump pointer (offset in mem)
	offered  uint64
	accepted uint64
	fsel     uint32
	dfsel    uint32
	status   uint8
	qsel     uint16
	q        [2]fakeQueue
	mac      [6]byte
	qmax     uint16 // queue size maximum after reset
	refuse   bool   // refuse FEATURES_OK
	holdTX   bool   // do not consume transmitted frames
	sent     [][]byte
	notifies [2]int
}

func newFakeDev() *fakeDev {
	d := &fakeDev{pci: pcitest.New(), mem: make([]byte, fakeMemSize),
		offered: FeatureVersion1 | FeatureMAC | 1<<0 | 1<<15 | 1<<16 | 1<<17,
		mac:     [6]byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, qmax: fakeQueueMax}
	for i := range d.q {
		d.q[i].size = fakeQueueMax
		d.q[i].notifyOff = uint16(i)
	}
	f := d.pci.Add(fakeAddr, VendorVirtio, DeviceNetModern, 0x020000)
	f.SetBAR(4, fakeBAR|0xC, fakeBARSize, true)
	f.SetBAR(1, 0xFEBD1000, 0x1000, false)
	vcap := func(t, bar uint8, off, length uint32, extra ...uint32) []byte {
		b := make([]byte, 14+4*len(extra))
		b[0] = byte(16 + 4*len(extra)) // cap_len
		b[1], b[2] = t, bar
		binary.LittleEndian.PutUint32(b[6:], off)
		binary.LittleEndian.PutUint32(b[10:], length)
		for i, e := range extra {
			binary.LittleEndian.PutUint32(b[14+4*i:], e)
		}
		return b
	}
	f.AddCap(0x40, 0x11, []byte{0, 0}) // MSI-X, ignored
	f.AddCap(0x50, pciCapVendor, vcap(CapCommonCfg, 4, fakeCommon, 0x1000))
	f.AddCap(0x64, pciCapVendor, vcap(CapISRCfg, 4, fakeISR, 0x1000))
	f.AddCap(0x74, pciCapVendor, vcap(CapDeviceCfg, 4, fakeDevice, 0x1000))
	f.AddCap(0x84, pciCapVendor, vcap(CapNotifyCfg, 4, fakeNotify, 0x1000, fakeMult))
	return d
}

func (d *fakeDev) config() Config {
	return Config{PCI: d.pci, DMA: d, Map: func(pa, size uint64) (Regs, error) {
		if pa < fakeBAR || pa+size > fakeBAR+fakeBARSize {
			return nil, fmt.Errorf("fake: map %#x+%#x outside the BAR", pa, size)
		}
		return fakeWindow{d, pa - fakeBAR, size}, nil
	}}
}

// Alloc implements DMA.
func (d *fakeDev) Alloc(size uint64) (uint64, []byte, error) {
	size = (size + 4095) &^ 4095
	if d.next+size > uint64(len(d.mem)) {
		return 0, nil, fmt.Errorf("fake: out of DMA memory")
	}
	p := d.next
	d.next += size
	return fakeMemBase + p, d.mem[p : p+size], nil
}

// phys returns n bytes of memory at physical address pa, or nil.
func (d *fakeDev) phys(pa, n uint64) []byte {
	if pa < fakeMemBase || pa-fakeMemBase+n > uint64(len(d.mem)) || pa+n < pa {
		return nil
	}
	return d.mem[pa-fakeMemBase : pa-fakeMemBase+n]
}

type fakeWindow struct {
	d         *fakeDev
	off, size uint64
}

func (w fakeWindow) Read8(o uint64) uint8   { return uint8(w.d.read(w.off+o, 1)) }
func (w fakeWindow) Read16(o uint64) uint16 { return uint16(w.d.read(w.off+o, 2)) }
func (w fakeWindow) Read32(o uint64) uint32 { return w.d.read(w.off+o, 4) }
func (w fakeWindow) Write8(o uint64, v uint8) {
	w.d.write(w.off+o, 1, uint32(v))
}
func (w fakeWindow) Write16(o uint64, v uint16) { w.d.write(w.off+o, 2, uint32(v)) }
func (w fakeWindow) Write32(o uint64, v uint32) { w.d.write(w.off+o, 4, v) }

func (d *fakeDev) read(off uint64, width int) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := &d.q[d.qsel%2]
	switch {
	case off >= fakeDevice && off < fakeDevice+6 && width == 1:
		return uint32(d.mac[off-fakeDevice])
	case off >= fakeDevice:
		return 0
	}
	switch off {
	case ccDeviceFeature:
		return uint32(d.offered >> (32 * d.fsel))
	case ccNumQueues:
		return 2
	case ccDeviceStatus:
		return uint32(d.status)
	case ccQueueSize:
		return uint32(q.size)
	case ccQueueEnable:
		return uint32(q.enable)
	case ccQueueNotifyOff:
		return uint32(q.notifyOff)
	}
	return 0
}

func (d *fakeDev) write(off uint64, width int, v uint32) {
	d.mu.Lock()
	q := &d.q[d.qsel%2]
	set64 := func(p *uint64, hi bool) {
		if hi {
			*p = *p&0xFFFFFFFF | uint64(v)<<32
		} else {
			*p = *p&^0xFFFFFFFF | uint64(v)
		}
	}
	switch {
	case off >= fakeNotify:
		n := int(v)
		d.mu.Unlock()
		if off != fakeNotify+uint64(n)*fakeMult || width != 2 || n > 1 {
			panic(fmt.Sprintf("fake: bad notify %d at %#x width %d", v, off, width))
		}
		d.notifies[n]++
		if n == txQueue && !d.holdTX {
			d.consumeTX()
		}
		return
	case off == ccDeviceFeatureSelect:
		d.fsel = v & 1
	case off == ccDriverFeatureSelect:
		d.dfsel = v & 1
	case off == ccDriverFeature:
		d.accepted = d.accepted&^(0xFFFFFFFF<<(32*d.dfsel)) | uint64(v)<<(32*d.dfsel)
	case off == ccDeviceStatus:
		if v == 0 {
			d.q = [2]fakeQueue{{size: d.qmax}, {size: d.qmax, notifyOff: 1}}
		}
		if v&StatusFeaturesOK != 0 && (d.refuse || d.accepted&^d.offered != 0) {
			v &^= StatusFeaturesOK
		}
		d.status = uint8(v)
	case off == ccQueueSelect:
		d.qsel = uint16(v)
	case off == ccQueueSize:
		q.size = uint16(v)
	case off == ccQueueEnable:
		q.enable = uint16(v)
	case off == ccQueueDesc || off == ccQueueDesc+4:
		set64(&q.desc, off&4 != 0)
	case off == ccQueueDriver || off == ccQueueDriver+4:
		set64(&q.driver, off&4 != 0)
	case off == ccQueueDevice || off == ccQueueDevice+4:
		set64(&q.device, off&4 != 0)
	}
	d.mu.Unlock()
}

// availIdx reads queue n's avail index.
func (d *fakeDev) availIdx(n int) uint16 {
	return binary.LittleEndian.Uint16(d.phys(d.q[n].driver+2, 2))
}

// pop takes the next available descriptor of queue n: its id, buffer
// address and length; ok false when the driver has none.
func (d *fakeDev) pop(n int) (id uint16, addr uint64, length uint32, ok bool) {
	q := &d.q[n]
	if q.lastAvail == d.availIdx(n) {
		return 0, 0, 0, false
	}
	id = binary.LittleEndian.Uint16(d.phys(q.driver+4+2*uint64(q.lastAvail%q.size), 2))
	q.lastAvail++
	desc := d.phys(q.desc+16*uint64(id), 16)
	return id, binary.LittleEndian.Uint64(desc), binary.LittleEndian.Uint32(desc[8:]), true
}

// pushUsed writes a used entry of queue n and publishes it.
func (d *fakeDev) pushUsed(n int, id, length uint32) {
	q := &d.q[n]
	e := d.phys(q.device+4+8*uint64(q.usedIdx%q.size), 8)
	binary.LittleEndian.PutUint32(e, id)
	binary.LittleEndian.PutUint32(e[4:], length)
	q.usedIdx++
	binary.LittleEndian.PutUint16(d.phys(q.device+2, 2), q.usedIdx)
}

func (d *fakeDev) consumeTX() {
	for {
		id, addr, l, ok := d.pop(txQueue)
		if !ok {
			return
		}
		b := d.phys(addr, uint64(l))
		d.sent = append(d.sent, append([]byte(nil), b[HeaderLen:]...))
		d.pushUsed(txQueue, uint32(id), 0)
	}
}

// receive puts a frame into the next receive buffer; false when none.
func (d *fakeDev) receive(frame []byte) bool {
	id, addr, l, ok := d.pop(rxQueue)
	if !ok {
		return false
	}
	if uint32(HeaderLen+len(frame)) > l {
		panic("fake: frame does not fit")
	}
	b := d.phys(addr, uint64(l))
	clear(b[:HeaderLen])
	copy(b[HeaderLen:], frame)
	d.pushUsed(rxQueue, uint32(id), uint32(HeaderLen+len(frame)))
	return true
}
