// Package net is a virtio-net device (virtio 1.2, section 5.1) with one
// receive and one transmit queue: frames the guest transmits go to a
// Backend, frames handed to Receive are placed in the guest's receive
// buffers.
//
// Boundary: Ethernet framing and the virtio-net header live here; the
// virtqueue and transport are the virtio package's, switching between VMs
// is vswitch's.
package net

import (
	"encoding/binary"
	"fmt"
	"sync"

	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
)

// Feature bits, spec 5.1.3.
const (
	FeatureMAC    = 1 << 5  // VIRTIO_NET_F_MAC
	FeatureStatus = 1 << 16 // VIRTIO_NET_F_STATUS
)

// Layout constants, spec 5.1.4 and 5.1.6.
const (
	// StatusLinkUp is VIRTIO_NET_S_LINK_UP in the config status field.
	StatusLinkUp = 1

	cfgMAC     = 0 // mac[6]
	cfgStatus  = 6 // le16
	configSize = 8

	// HeaderLen is struct virtio_net_hdr with num_buffers, which is
	// always present once VIRTIO_F_VERSION_1 is negotiated (5.1.6).
	HeaderLen = 12
	hdrNumBuf = 10

	// MaxFrame bounds one transmitted frame (without the header). With no
	// GSO features the guest sends at most MTU 1500 + 14 + a VLAN tag;
	// anything beyond the largest jumbo frame is refused.
	MaxFrame = 9018
	// minFrame is an Ethernet header: destination, source, EtherType.
	minFrame = 14

	rxQueue   = 0
	txQueue   = 1
	queueSize = 256
)

// Backend takes frames the guest transmits. Send is called without any
// device lock held and may deliver to other devices synchronously; it must
// not keep frame after returning.
type Backend interface {
	Send(frame []byte) error
}

// Stats counts traffic; diagnostics, not saved state.
type Stats struct {
	TxFrames, RxFrames, TxDropped, RxDropped, BackendErrors uint64
}

// Device is a virtio-net device.
type Device struct {
	backend Backend
	runner  virtio.Runner

	// State below is protected by the transport's lock (all access is
	// through transport calls or Runner.Run).
	mac    [6]byte
	linkUp bool

	statsMu sync.Mutex
	stats   Stats
}

// New returns a device with the given MAC address and backend. The link
// starts up.
func New(mac [6]byte, backend Backend) (*Device, error) {
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("net: MAC %x is a multicast address", mac)
	}
	if backend == nil {
		return nil, fmt.Errorf("net: no backend")
	}
	return &Device{backend: backend, mac: mac, linkUp: true}, nil
}

// Bind implements virtio.Binder.
func (d *Device) Bind(r virtio.Runner) { d.runner = r }

// Stats returns the traffic counters.
func (d *Device) Stats() Stats {
	d.statsMu.Lock()
	defer d.statsMu.Unlock()
	return d.stats
}

func (d *Device) count(f func(s *Stats)) {
	d.statsMu.Lock()
	f(&d.stats)
	d.statsMu.Unlock()
}

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeNet }

// Features implements virtio.Device. No offloads: the guest sends complete
// frames with checksums, which keeps frames valid on any backend.
func (d *Device) Features() uint64 { return FeatureMAC | FeatureStatus }

// QueueSizes implements virtio.Device: receiveq1 and transmitq1.
func (d *Device) QueueSizes() []uint16 { return []uint16{queueSize, queueSize} }

// ConfigSize implements virtio.Device.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(off int, p []byte) {
	var c [configSize]byte
	copy(c[cfgMAC:], d.mac[:])
	if d.linkUp {
		binary.LittleEndian.PutUint16(c[cfgStatus:], StatusLinkUp)
	}
	if off >= 0 && off < configSize {
		copy(p, c[off:])
	}
}

// WriteConfig implements virtio.Device. The MAC is writable only through
// the legacy interface or VIRTIO_NET_F_CTRL_MAC_ADDR (5.1.4.2), neither of
// which is offered, so writes are ignored.
func (d *Device) WriteConfig(*virtio.Env, int, []byte) {}

// Reset implements virtio.Device. MAC and link state are properties of the
// NIC, not of the driver session, and survive a reset.
func (d *Device) Reset() {}

// SetLink changes the link status and tells the driver (spec 5.1.4.2,
// configuration change notification).
func (d *Device) SetLink(up bool) error {
	if d.runner == nil {
		return fmt.Errorf("net: set link: %w", virtio.ErrNotReady)
	}
	return d.runner.Run(func(env *virtio.Env) error {
		if d.linkUp != up {
			d.linkUp = up
			env.ConfigChanged()
		}
		return nil
	})
}

// Notify implements virtio.Device. New receive buffers need no action:
// frames arriving with no buffer are dropped, as a NIC with a full ring
// drops them.
func (d *Device) Notify(env *virtio.Env, q int) error {
	if q != txQueue {
		return nil
	}
	var frames [][]byte
	defer func() {
		if len(frames) > 0 {
			env.Defer(func() { d.transmit(frames) })
		}
	}()
	for {
		c, err := env.Pop(txQueue)
		if err != nil || c == nil {
			return err
		}
		frame, ok, err := readFrame(env, c)
		if err != nil {
			return err
		}
		if ok && d.linkUp {
			frames = append(frames, frame)
		} else {
			d.count(func(s *Stats) { s.TxDropped++ })
		}
		// A transmit buffer is returned with no bytes written (5.1.6.2).
		if err := env.Push(txQueue, c.Head, 0); err != nil {
			return err
		}
	}
}

// readFrame gathers a transmitted frame. ok is false for a frame the
// device drops (too short or long, a GSO request never negotiated, a
// writable buffer in a transmit chain).
func readFrame(env *virtio.Env, c *virtio.Chain) ([]byte, bool, error) {
	if len(c.Writable) > 0 || c.ReadLen < HeaderLen+minFrame || c.ReadLen > HeaderLen+MaxFrame {
		return nil, false, nil
	}
	buf := make([]byte, c.ReadLen)
	if _, err := c.Reader(env.Mem).Read(buf); err != nil {
		return nil, false, nil // buffer outside guest memory: drop the frame, keep the device
	}
	// gso_type (byte 1) must be VIRTIO_NET_HDR_GSO_NONE without the GSO
	// features; flags may only carry NEEDS_CSUM with VIRTIO_NET_F_CSUM.
	if buf[0] != 0 || buf[1] != 0 {
		return nil, false, nil
	}
	return buf[HeaderLen:], true, nil
}

func (d *Device) transmit(frames [][]byte) {
	for _, f := range frames {
		if err := d.backend.Send(f); err != nil {
			d.count(func(s *Stats) { s.BackendErrors++ })
			continue
		}
		d.count(func(s *Stats) { s.TxFrames++ })
	}
}

// Receive places frame in the guest's next receive buffer. It returns
// false when the frame was dropped (device not live, link down, no buffer,
// buffer too small, malformed frame). It never blocks.
func (d *Device) Receive(frame []byte) bool {
	if d.runner == nil || len(frame) < minFrame || len(frame) > MaxFrame {
		d.count(func(s *Stats) { s.RxDropped++ })
		return false
	}
	delivered := false
	_ = d.runner.Run(func(env *virtio.Env) error {
		if !env.Live() || !d.linkUp {
			return nil
		}
		c, err := env.Pop(rxQueue)
		if err != nil || c == nil {
			return err
		}
		if len(c.Readable) > 0 {
			return fmt.Errorf("net: receive chain %d has device-readable buffers: %w", c.Head, virtio.ErrMalformed)
		}
		if c.WriteLen < uint64(HeaderLen+len(frame)) {
			// Without MRG_RXBUF every buffer must hold a whole frame
			// (5.1.6.3.1); drop the frame and hand the buffer back empty.
			return env.Push(rxQueue, c.Head, 0)
		}
		var hdr [HeaderLen]byte
		binary.LittleEndian.PutUint16(hdr[hdrNumBuf:], 1) // num_buffers is 1 without MRG_RXBUF (5.1.6.4)
		w := c.Writer(env.Mem, c.WriteLen)
		if _, err := w.Write(hdr[:]); err != nil {
			return env.Push(rxQueue, c.Head, 0)
		}
		if _, err := w.Write(frame); err != nil {
			return env.Push(rxQueue, c.Head, 0)
		}
		delivered = true
		return env.Push(rxQueue, c.Head, uint32(w.Written))
	})
	d.count(func(s *Stats) {
		if delivered {
			s.RxFrames++
		} else {
			s.RxDropped++
		}
	})
	return delivered
}

// MAC returns the device's MAC address.
func (d *Device) MAC() [6]byte { return d.mac }

const (
	stateTag     = "virtio-net"
	stateVersion = 1
)

// SaveDevice implements virtio.Device.
func (d *Device) SaveDevice() []byte {
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.Bytes(d.mac[:])
	e.Bool(d.linkUp)
	return e.Finish()
}

// PrepareRestoreDevice implements virtio.Device.
func (d *Device) PrepareRestoreDevice(blob []byte) (func(), error) {
	dec, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return nil, fmt.Errorf("net: restore: %w", err)
	}
	mac := dec.Bytes(6)
	up := dec.Bool()
	dec.Check(len(mac) == 6 && mac[0]&1 == 0, "MAC %x", mac)
	if err := dec.Finish(); err != nil {
		return nil, fmt.Errorf("net: restore: %w", err)
	}
	return func() { copy(d.mac[:], mac); d.linkUp = up }, nil
}
