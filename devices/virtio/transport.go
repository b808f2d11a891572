package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"hv/devices/pci"
)

// Device is one virtio device type, independent of its transport. The
// transport calls every method with its own lock held, so a device needs
// no lock for state that only these calls touch.
type Device interface {
	Type() DeviceType
	// Features are the device-type feature bits offered (bits 0-23 and
	// 50+); the transport adds the reserved bits it supports.
	Features() uint64
	// QueueSizes gives the maximum size of each virtqueue.
	QueueSizes() []uint16
	// ConfigSize is the size of the device-specific configuration space.
	ConfigSize() int
	ReadConfig(off int, p []byte)
	WriteConfig(env *Env, off int, p []byte)
	// Notify is called when the driver kicks queue q of a live device. A
	// returned error wrapping ErrMalformed puts the device in
	// DEVICE_NEEDS_RESET.
	Notify(env *Env, q int) error
	// Reset puts the device in its initial state (a driver reset or a
	// power-on reset).
	Reset()
	// SaveDevice and PrepareRestoreDevice save and validate the device's
	// own state; the returned commit installs it.
	SaveDevice() []byte
	PrepareRestoreDevice(blob []byte) (commit func(), err error)
}

// Runner lets a device act on events from outside the guest (a received
// frame, console input): Run calls fn with the transport's lock held.
type Runner interface {
	Run(fn func(env *Env) error) error
}

// Binder is implemented by devices that take host-side input; the
// transport hands them their Runner when it is created.
type Binder interface {
	Bind(r Runner)
}

// Env is what a device may touch during a call from the transport.
type Env struct {
	Mem      GuestMemory
	Features uint64 // negotiated features

	t        *Transport
	live     bool
	used     uint64 // bitmap of queues (< 64) that got used buffers
	config   bool
	deferred []func()
}

// Live reports whether the driver has set DRIVER_OK and the device is not
// in an error state, i.e. whether queues may be used.
func (e *Env) Live() bool { return e.live }

// Queue returns queue i if the device is live and the driver enabled it.
func (e *Env) Queue(i int) (*Queue, bool) {
	if !e.live || i < 0 || i >= len(e.t.queues) || !e.t.queues[i].q.Enabled {
		return nil, false
	}
	return &e.t.queues[i].q, true
}

// Pop takes the next chain from queue i; nil when there is none or the
// queue is not usable.
func (e *Env) Pop(i int) (*Chain, error) {
	q, ok := e.Queue(i)
	if !ok {
		return nil, nil
	}
	return q.Pop(e.Mem)
}

// Push returns a chain to queue i and schedules an interrupt.
func (e *Env) Push(i int, head uint16, written uint32) error {
	q, ok := e.Queue(i)
	if !ok {
		return fmt.Errorf("virtio: push to queue %d: %w", i, ErrNotReady)
	}
	if err := q.Push(e.Mem, head, written); err != nil {
		return err
	}
	if i < 64 {
		e.used |= 1 << i
	}
	return nil
}

// ConfigChanged tells the driver the device configuration changed.
func (e *Env) ConfigChanged() { e.config = true }

// Defer runs fn after the transport's lock is released; a device uses it
// to hand data to a backend that may call back into other devices.
func (e *Env) Defer(fn func()) { e.deferred = append(e.deferred, fn) }

// Layout of the transport's memory BAR. Each structure gets its own 4 KiB
// page as QEMU lays them out, so a driver mapping them separately never
// overlaps.
const (
	barIndex        = 0
	barSize         = 0x4000
	commonOffset    = 0x0000
	isrOffset       = 0x1000
	deviceCfgOffset = 0x2000
	notifyOffset    = 0x3000
	// notifyMultiplier is notify_off_multiplier: queue q is notified at
	// notifyOffset + q*4 (spec 4.1.4.4).
	notifyMultiplier = 4
	maxConfigSize    = 0x1000
	maxQueues        = (barSize - notifyOffset) / notifyMultiplier
)

// virtio_pci_cap cfg_type values, spec 4.1.4.
const (
	capCommonCfg = 1
	capNotifyCfg = 2
	capISRCfg    = 3
	capDeviceCfg = 4
	capPCICfg    = 5
)

// PCI identity of a modern (non-transitional) virtio device, spec 4.1.2.
const (
	PCIVendorID     = 0x1AF4
	PCIDeviceIDBase = 0x1040
	pciRevision     = 1      // "Non-transitional devices SHOULD have a PCI Revision ID of 1 or higher"
	pciSubsystemID  = 0x1100 // ">= 0x40"; QEMU's value, so guests see a familiar ID
)

// struct virtio_pci_common_cfg field offsets, spec 4.1.4.3 (the 1.0
// layout; queue_notify_data and queue_reset belong to features not offered).
const (
	ccDeviceFeatureSelect = 0
	ccDeviceFeature       = 4
	ccDriverFeatureSelect = 8
	ccDriverFeature       = 12
	ccConfigMSIXVector    = 16
	ccNumQueues           = 18
	ccDeviceStatus        = 20
	ccConfigGeneration    = 21
	ccQueueSelect         = 22
	ccQueueSize           = 24
	ccQueueMSIXVector     = 26
	ccQueueEnable         = 28
	ccQueueNotifyOff      = 30
	ccQueueDesc           = 32
	ccQueueDriver         = 40
	ccQueueDevice         = 48
	commonCfgLen          = 56

	noVector = 0xFFFF // VIRTIO_MSI_NO_VECTOR: no MSI-X, interrupts are INTx

	isrQueue  = 1 // ISR bit 0: a queue interrupt (spec 4.1.4.5)
	isrConfig = 2 // ISR bit 1: configuration change
)

// PCI class codes per device type (PCI Code and ID Assignment, classes 01h,
// 02h, 07h), as QEMU presents them.
var classCodes = map[DeviceType]uint32{
	TypeNet:     0x020000, // Ethernet controller
	TypeBlock:   0x010000, // SCSI storage controller
	TypeConsole: 0x078000, // other communication controller
}

type queueState struct {
	q   Queue
	max uint16
}

// Transport is a virtio-pci modern function carrying one Device.
type Transport struct {
	fn  *pci.Function
	dev Device
	mem GuestMemory

	mu            sync.Mutex
	offered       uint64
	devFeatureSel uint32
	drvFeatureSel uint32
	drvFeatures   uint64
	status        uint8
	generation    uint8
	queueSel      uint16
	queues        []queueState
	isr           uint8
	cfgCap        pciCfgCap
	errors        uint64
	lastErr       error
	configSize    int
}

// pciCfgCap holds the writable fields of the VIRTIO_PCI_CAP_PCI_CFG
// capability, through which a driver can reach the BAR via config space.
type pciCfgCap struct {
	bar    uint8
	offset uint32
	length uint32
	data   [4]byte
}

// NewTransport builds the PCI function for dev, with guest memory mem for
// the device's DMA. Register the returned Function on a pci.Host and wire
// its INTx with ConnectINTx.
func NewTransport(name string, dev Device, mem GuestMemory) (*Transport, error) {
	sizes := dev.QueueSizes()
	if len(sizes) == 0 || len(sizes) > maxQueues {
		return nil, fmt.Errorf("virtio: %s: %d queues", name, len(sizes))
	}
	for i, s := range sizes {
		if s == 0 || s&(s-1) != 0 || s > MaxQueueSize {
			return nil, fmt.Errorf("virtio: %s: queue %d max size %d is not a power of two <= %d", name, i, s, MaxQueueSize)
		}
	}
	if dev.ConfigSize() < 0 || dev.ConfigSize() > maxConfigSize {
		return nil, fmt.Errorf("virtio: %s: config space of %d bytes", name, dev.ConfigSize())
	}
	t := &Transport{dev: dev, mem: mem, configSize: dev.ConfigSize()}
	t.offered = dev.Features()&^(FeatureIndirectDesc|FeatureEventIdx) | FeatureVersion1 | FeatureIndirectDesc
	t.queues = make([]queueState, len(sizes))
	for i, s := range sizes {
		t.queues[i].max = s
	}
	t.resetLocked()
	fn, err := pci.NewFunction(name, pci.Header{
		VendorID: PCIVendorID, DeviceID: PCIDeviceIDBase + uint16(dev.Type()), RevisionID: pciRevision,
		ClassCode: classCodes[dev.Type()], SubsystemVendorID: PCIVendorID, SubsystemID: pciSubsystemID,
		InterruptPin: pci.PinA,
	}, [pci.NumBARs]pci.BAR{barIndex: {Kind: pci.BARMem32, Size: barSize, Handler: barRegs{t}}})
	if err != nil {
		return nil, fmt.Errorf("virtio: %s: %w", name, err)
	}
	caps := []struct {
		typ       uint8
		off, size uint32
		extra     []byte
	}{
		{capCommonCfg, commonOffset, commonCfgLen, nil},
		{capISRCfg, isrOffset, 1, nil},
		{capNotifyCfg, notifyOffset, uint32(len(sizes)) * notifyMultiplier, le32(notifyMultiplier)},
	}
	if t.configSize > 0 {
		caps = append(caps, struct {
			typ       uint8
			off, size uint32
			extra     []byte
		}{capDeviceCfg, deviceCfgOffset, uint32(t.configSize), nil})
	}
	for _, c := range caps {
		if _, err := fn.AddCapability(pci.CapIDVendorSpecific, capBody(c.typ, c.off, c.size, c.extra), nil); err != nil {
			return nil, fmt.Errorf("virtio: %s: %w", name, err)
		}
	}
	// The spec requires the PCI configuration access capability (4.1.4.9)
	// even though Linux does not use it.
	if _, err := fn.AddCapability(pci.CapIDVendorSpecific, capBody(capPCICfg, 0, 0, make([]byte, 4)), cfgCapHook{t}); err != nil {
		return nil, fmt.Errorf("virtio: %s: %w", name, err)
	}
	t.fn = fn
	if b, ok := dev.(Binder); ok {
		b.Bind(t)
	}
	return t, nil
}

// capBody is struct virtio_pci_cap after cap_vndr and cap_next: cap_len,
// cfg_type, bar, id, padding[2], offset le32, length le32, then extra.
func capBody(typ uint8, off, size uint32, extra []byte) []byte {
	b := []byte{byte(16 + len(extra)), typ, barIndex, 0, 0, 0}
	b = append(b, le32(off)...)
	b = append(b, le32(size)...)
	return append(b, extra...)
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// Function returns the PCI function to register on a host.
func (t *Transport) Function() *pci.Function { return t.fn }

// Device returns the device the transport carries.
func (t *Transport) Device() Device { return t.dev }

// Status returns the device status register.
func (t *Transport) Status() uint8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// LastError returns the error that last put the device in
// DEVICE_NEEDS_RESET, for diagnostics.
func (t *Transport) LastError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

func (t *Transport) liveLocked() bool {
	return t.status&StatusDriverOK != 0 && t.status&(StatusDeviceNeedsReset|StatusFailed) == 0 && t.fn.BusMaster()
}

// Run implements Runner.
func (t *Transport) Run(fn func(env *Env) error) error {
	t.mu.Lock()
	env := t.envLocked()
	err := fn(env)
	deferred := t.finishLocked(env, err)
	t.mu.Unlock()
	for _, d := range deferred {
		d()
	}
	return err
}

func (t *Transport) envLocked() *Env {
	return &Env{Mem: t.mem, Features: t.drvFeatures, t: t, live: t.liveLocked()}
}

// finishLocked turns what the device did into interrupts and, on a
// malformed queue, the DEVICE_NEEDS_RESET state (spec 2.1.2).
func (t *Transport) finishLocked(env *Env, err error) []func() {
	if err != nil && isMalformed(err) {
		t.errors++
		t.lastErr = err
		if t.status&StatusDriverOK != 0 {
			t.status |= StatusDeviceNeedsReset
			env.config = true
		}
	}
	raise := false
	for i := range t.queues {
		if i < 64 && env.used&(1<<i) != 0 && t.queues[i].q.WantsInterrupt(t.mem) {
			t.isr |= isrQueue
			raise = true
		}
	}
	if env.config {
		t.generation++
		t.isr |= isrConfig
		raise = true
	}
	if raise {
		t.fn.SetINTx(true)
	}
	return env.deferred
}

func isMalformed(err error) bool { return errors.Is(err, ErrMalformed) }

// resetLocked is the device reset of spec 2.4: status, features, queues
// and ISR to their initial values.
func (t *Transport) resetLocked() {
	t.devFeatureSel, t.drvFeatureSel, t.drvFeatures = 0, 0, 0
	t.status, t.queueSel, t.isr = 0, 0, 0
	t.cfgCap = pciCfgCap{}
	for i := range t.queues {
		t.queues[i].q = Queue{Size: t.queues[i].max}
	}
	t.dev.Reset()
	if t.fn != nil {
		t.fn.SetINTx(false)
	}
}

// Reset is a power-on reset of the device and its PCI function.
func (t *Transport) Reset() {
	t.mu.Lock()
	t.resetLocked()
	t.generation = 0
	t.mu.Unlock()
	t.fn.Reset()
}

type barRegs struct{ t *Transport }

func (b barRegs) Read(off uint64, data []byte) {
	t := b.t
	for i := range data {
		data[i] = 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case off < commonOffset+commonCfgLen:
		c := t.renderCommonLocked()
		copyFrom(data, c[:], off)
	case off == isrOffset:
		// Reading the ISR acknowledges: it clears and deasserts INTx
		// (spec 4.1.4.5.1).
		data[0] = t.isr
		t.isr = 0
		t.fn.SetINTx(false)
	case off >= deviceCfgOffset && off < deviceCfgOffset+uint64(t.configSize):
		o := int(off - deviceCfgOffset)
		n := min(len(data), t.configSize-o)
		t.dev.ReadConfig(o, data[:n])
	}
}

func copyFrom(dst, src []byte, off uint64) {
	if off < uint64(len(src)) {
		copy(dst, src[off:])
	}
}

func (b barRegs) Write(off uint64, data []byte) {
	t := b.t
	t.mu.Lock()
	env := t.envLocked()
	var err error
	switch {
	case off < commonOffset+commonCfgLen:
		t.writeCommonLocked(int(off), data)
	case off >= deviceCfgOffset && off < deviceCfgOffset+uint64(t.configSize):
		o := int(off - deviceCfgOffset)
		n := min(len(data), t.configSize-o)
		t.dev.WriteConfig(env, o, data[:n])
	case off >= notifyOffset && off < notifyOffset+uint64(len(t.queues))*notifyMultiplier:
		// The address selects the queue; the value written (the queue
		// index, without NOTIFICATION_DATA) carries nothing more.
		q := int(off-notifyOffset) / notifyMultiplier
		if env.live && t.queues[q].q.Enabled {
			err = t.dev.Notify(env, q)
		}
	}
	deferred := t.finishLocked(env, err)
	t.mu.Unlock()
	for _, d := range deferred {
		d()
	}
}

func (t *Transport) selected() *queueState {
	if int(t.queueSel) < len(t.queues) {
		return &t.queues[t.queueSel]
	}
	return nil
}

func (t *Transport) renderCommonLocked() [commonCfgLen]byte {
	var c [commonCfgLen]byte
	le := binary.LittleEndian
	le.PutUint32(c[ccDeviceFeatureSelect:], t.devFeatureSel)
	if t.devFeatureSel < 2 {
		le.PutUint32(c[ccDeviceFeature:], uint32(t.offered>>(32*t.devFeatureSel)))
	}
	le.PutUint32(c[ccDriverFeatureSelect:], t.drvFeatureSel)
	if t.drvFeatureSel < 2 {
		le.PutUint32(c[ccDriverFeature:], uint32(t.drvFeatures>>(32*t.drvFeatureSel)))
	}
	le.PutUint16(c[ccConfigMSIXVector:], noVector)
	le.PutUint16(c[ccNumQueues:], uint16(len(t.queues)))
	c[ccDeviceStatus] = t.status
	c[ccConfigGeneration] = t.generation
	le.PutUint16(c[ccQueueSelect:], t.queueSel)
	le.PutUint16(c[ccQueueMSIXVector:], noVector)
	if qs := t.selected(); qs != nil {
		q := &qs.q
		le.PutUint16(c[ccQueueSize:], q.Size)
		if q.Enabled {
			le.PutUint16(c[ccQueueEnable:], 1)
		}
		le.PutUint16(c[ccQueueNotifyOff:], t.queueSel)
		le.PutUint64(c[ccQueueDesc:], q.Desc)
		le.PutUint64(c[ccQueueDriver:], q.Avail)
		le.PutUint64(c[ccQueueDevice:], q.Used)
	}
	return c
}

// writeCommonLocked overlays the write on the current register image and
// commits every field it touched, so any access width works (Linux writes
// the 64-bit queue addresses as two 32-bit halves).
func (t *Transport) writeCommonLocked(off int, data []byte) {
	c := t.renderCommonLocked()
	end := min(off+len(data), commonCfgLen)
	copy(c[off:end], data)
	touched := func(at, size int) bool { return off < at+size && end > at }
	le := binary.LittleEndian

	if touched(ccDeviceFeatureSelect, 4) {
		t.devFeatureSel = le.Uint32(c[ccDeviceFeatureSelect:])
	}
	if touched(ccDriverFeatureSelect, 4) {
		t.drvFeatureSel = le.Uint32(c[ccDriverFeatureSelect:])
	}
	// Features are frozen once FEATURES_OK is set (spec 3.1.1).
	if touched(ccDriverFeature, 4) && t.drvFeatureSel < 2 && t.status&StatusFeaturesOK == 0 {
		sh := 32 * t.drvFeatureSel
		t.drvFeatures = t.drvFeatures&^(0xFFFFFFFF<<sh) | uint64(le.Uint32(c[ccDriverFeature:]))<<sh
	}
	if touched(ccQueueSelect, 2) {
		t.queueSel = le.Uint16(c[ccQueueSelect:])
	}
	// Queue fields are writable only while the queue is disabled (spec
	// 4.1.4.3.2: the driver configures a queue before enabling it).
	if qs := t.selected(); qs != nil && !qs.q.Enabled {
		if touched(ccQueueSize, 2) {
			qs.q.Size = le.Uint16(c[ccQueueSize:])
		}
		if touched(ccQueueDesc, 8) {
			qs.q.Desc = le.Uint64(c[ccQueueDesc:])
		}
		if touched(ccQueueDriver, 8) {
			qs.q.Avail = le.Uint64(c[ccQueueDriver:])
		}
		if touched(ccQueueDevice, 8) {
			qs.q.Used = le.Uint64(c[ccQueueDevice:])
		}
		if touched(ccQueueEnable, 2) && le.Uint16(c[ccQueueEnable:]) == 1 {
			if err := qs.q.Check(qs.max); err != nil {
				t.failLocked(err)
			} else {
				qs.q.Enabled = true
				qs.q.Indirect = t.drvFeatures&FeatureIndirectDesc != 0
				qs.q.LastAvail, qs.q.UsedIdx = 0, 0
			}
		}
	}
	if touched(ccDeviceStatus, 1) {
		t.writeStatusLocked(c[ccDeviceStatus])
	}
}

// failLocked records a driver error outside a queue operation.
func (t *Transport) failLocked(err error) {
	t.errors++
	t.lastErr = err
	t.status |= StatusDeviceNeedsReset
	t.generation++
	t.isr |= isrConfig
	t.fn.SetINTx(true)
}

// writeStatusLocked runs the status state machine of spec 2.1 and 3.1.
func (t *Transport) writeStatusLocked(v uint8) {
	if v == 0 {
		t.resetLocked()
		return
	}
	v = v&^StatusDeviceNeedsReset | t.status&StatusDeviceNeedsReset
	if v&StatusFeaturesOK != 0 && t.status&StatusFeaturesOK == 0 {
		// Accept only a subset of what was offered, and only a modern
		// driver: VERSION_1 is mandatory on this transport (spec 4.1.2.2).
		if t.drvFeatures&^t.offered != 0 || t.drvFeatures&FeatureVersion1 == 0 {
			v &^= StatusFeaturesOK
		}
	}
	if v&StatusDriverOK != 0 && v&StatusFeaturesOK == 0 {
		v &^= StatusDriverOK // DRIVER_OK before the features were accepted
	}
	t.status = v
}

type cfgCapHook struct{ t *Transport }

// Offsets in struct virtio_pci_cfg_cap relative to the capability start.
const (
	cfgCapBar    = 4
	cfgCapOffset = 8
	cfgCapLength = 12
	cfgCapData   = 16
	cfgCapEnd    = 20
)

func (h cfgCapHook) ReadCap(off int, p []byte) {
	t := h.t
	t.mu.Lock()
	img := t.cfgCapImageLocked()
	c := t.cfgCap
	t.mu.Unlock()
	if off < cfgCapData && off+len(p) > cfgCapData {
		for i := range p {
			p[i] = 0
		}
	}
	if off == cfgCapData && c.bar == barIndex && (c.length == 1 || c.length == 2 || c.length == 4) &&
		c.offset%c.length == 0 && uint64(c.offset)+uint64(c.length) <= barSize && len(p) >= int(c.length) {
		barRegs{t}.Read(uint64(c.offset), p[:c.length])
		return
	}
	copyFrom(p, img[:], uint64(off))
}

func (t *Transport) cfgCapImageLocked() [cfgCapEnd]byte {
	var b [cfgCapEnd]byte
	b[0] = pci.CapIDVendorSpecific
	b[2] = cfgCapEnd
	b[3] = capPCICfg
	b[cfgCapBar] = t.cfgCap.bar
	binary.LittleEndian.PutUint32(b[cfgCapOffset:], t.cfgCap.offset)
	binary.LittleEndian.PutUint32(b[cfgCapLength:], t.cfgCap.length)
	copy(b[cfgCapData:], t.cfgCap.data[:])
	return b
}

func (h cfgCapHook) WriteCap(off int, p []byte) {
	t := h.t
	t.mu.Lock()
	img := t.cfgCapImageLocked()
	end := min(off+len(p), cfgCapEnd)
	if off < cfgCapBar || off >= end {
		t.mu.Unlock()
		return
	}
	copy(img[off:end], p)
	t.cfgCap.bar = img[cfgCapBar]
	t.cfgCap.offset = binary.LittleEndian.Uint32(img[cfgCapOffset:])
	t.cfgCap.length = binary.LittleEndian.Uint32(img[cfgCapLength:])
	copy(t.cfgCap.data[:], img[cfgCapData:])
	c := t.cfgCap
	t.mu.Unlock()
	if off == cfgCapData && c.bar == barIndex && (c.length == 1 || c.length == 2 || c.length == 4) &&
		c.offset%c.length == 0 && uint64(c.offset)+uint64(c.length) <= barSize && len(p) >= int(c.length) {
		barRegs{t}.Write(uint64(c.offset), c.data[:c.length])
	}
}
