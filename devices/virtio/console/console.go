// Package console is a virtio-console device with a single port (virtio
// 1.2, section 5.3; no MULTIPORT, no emergency write): bytes the guest
// writes to the transmit queue go to an io.Writer, host input is placed in
// the receive queue's buffers.
//
// Boundary: the console's byte stream; queues and transport are the virtio
// package's.
package console

import (
	"fmt"
	"io"
	"sync"

	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
)

const (
	rxQueue   = 0 // receiveq(port0)
	txQueue   = 1 // transmitq(port0)
	queueSize = 64

	// configSize covers cols, rows (le16), max_nr_ports and emerg_wr
	// (le32), spec 5.3.4. Without SIZE, MULTIPORT or EMERG_WRITE the
	// fields carry no meaning and read as zero.
	configSize = 12

	// MaxPending bounds host input held while the guest has no receive
	// buffer, like a UART FIFO bounds it (but larger).
	MaxPending = 4096
	chunk      = 4096
)

// Device is a single-port virtio console.
type Device struct {
	out    io.Writer
	runner virtio.Runner

	// Protected by the transport's lock.
	pending []byte

	errMu     sync.Mutex
	outErrors uint64
}

// New returns a console whose output goes to out.
func New(out io.Writer) *Device {
	if out == nil {
		out = io.Discard
	}
	return &Device{out: out}
}

// Bind implements virtio.Binder.
func (d *Device) Bind(r virtio.Runner) { d.runner = r }

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeConsole }

// Features implements virtio.Device: none of the optional features.
func (d *Device) Features() uint64 { return 0 }

// QueueSizes implements virtio.Device.
func (d *Device) QueueSizes() []uint16 { return []uint16{queueSize, queueSize} }

// ConfigSize implements virtio.Device.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(off int, p []byte) {
	for i := range p {
		p[i] = 0
	}
}

// WriteConfig implements virtio.Device; emerg_wr is ignored without
// VIRTIO_CONSOLE_F_EMERG_WRITE.
func (d *Device) WriteConfig(*virtio.Env, int, []byte) {}

// Reset implements virtio.Device: input not yet delivered is discarded
// with the driver session.
func (d *Device) Reset() { d.pending = nil }

// OutputErrors counts writes to the output that failed.
func (d *Device) OutputErrors() uint64 {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return d.outErrors
}

// Notify implements virtio.Device.
func (d *Device) Notify(env *virtio.Env, q int) error {
	switch q {
	case txQueue:
		return d.transmit(env)
	case rxQueue:
		return d.fill(env)
	}
	return nil
}

func (d *Device) transmit(env *virtio.Env) error {
	for {
		c, err := env.Pop(txQueue)
		if err != nil || c == nil {
			return err
		}
		r := c.Reader(env.Mem)
		buf := make([]byte, min(c.ReadLen, chunk))
		for left := c.ReadLen; left > 0; {
			n := min(uint64(len(buf)), left)
			if _, err := r.Read(buf[:n]); err != nil {
				break // bytes outside guest memory: drop the rest of this chain
			}
			if _, err := d.out.Write(buf[:n]); err != nil {
				d.errMu.Lock()
				d.outErrors++
				d.errMu.Unlock()
			}
			left -= n
		}
		if err := env.Push(txQueue, c.Head, 0); err != nil {
			return err
		}
	}
}

// fill moves pending input into receive buffers.
func (d *Device) fill(env *virtio.Env) error {
	for len(d.pending) > 0 {
		c, err := env.Pop(rxQueue)
		if err != nil || c == nil {
			return err
		}
		if len(c.Readable) > 0 {
			return fmt.Errorf("console: receive chain %d has device-readable buffers: %w", c.Head, virtio.ErrMalformed)
		}
		w := c.Writer(env.Mem, c.WriteLen)
		_, werr := w.Write(d.pending)
		d.pending = d.pending[w.Written:]
		if werr != nil {
			d.pending = nil // the driver gave a bad buffer; do not retry into it
		}
		if err := env.Push(rxQueue, c.Head, uint32(w.Written)); err != nil {
			return err
		}
	}
	return nil
}

// Receive queues host input for the guest and returns how many bytes were
// accepted (fewer than len(p) when MaxPending bytes already wait).
func (d *Device) Receive(p []byte) int {
	if d.runner == nil {
		return 0
	}
	n := 0
	_ = d.runner.Run(func(env *virtio.Env) error {
		n = min(len(p), MaxPending-len(d.pending))
		d.pending = append(d.pending, p[:n]...)
		if !env.Live() {
			return nil
		}
		return d.fill(env)
	})
	return n
}

const (
	stateTag     = "virtio-console"
	stateVersion = 1
)

// SaveDevice implements virtio.Device.
func (d *Device) SaveDevice() []byte {
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.Bytes(d.pending)
	return e.Finish()
}

// PrepareRestoreDevice implements virtio.Device.
func (d *Device) PrepareRestoreDevice(blob []byte) (func(), error) {
	dec, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return nil, fmt.Errorf("console: restore: %w", err)
	}
	p := dec.Bytes(MaxPending)
	if err := dec.Finish(); err != nil {
		return nil, fmt.Errorf("console: restore: %w", err)
	}
	return func() { d.pending = p }, nil
}
