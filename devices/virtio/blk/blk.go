// Package blk is a virtio-blk device (virtio 1.2, section 5.2): one
// request queue serving read, write, flush and get-ID requests against a
// Backend (a host disk, or a RAM disk over a byte slice such as a
// multiboot module).
//
// Boundary: request decoding and status reporting live here; the virtqueue
// and the PCI transport are the virtio package's, storage is the Backend's.
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"hv/devices/internal/snapshot"
	"hv/devices/virtio"
)

// Backend is the storage behind the device. Size is in bytes and a
// multiple of SectorSize.
type Backend interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	Flush() error
}

// Feature bits, spec 5.2.3.
const (
	FeatureSegMax  = 1 << 2 // VIRTIO_BLK_F_SEG_MAX
	FeatureRO      = 1 << 5 // VIRTIO_BLK_F_RO
	FeatureBlkSize = 1 << 6 // VIRTIO_BLK_F_BLK_SIZE
	FeatureFlush   = 1 << 9 // VIRTIO_BLK_F_FLUSH
)

// Request types and status values, spec 5.2.6.
const (
	TypeIn       = 0 // VIRTIO_BLK_T_IN
	TypeOut      = 1 // VIRTIO_BLK_T_OUT
	TypeFlush    = 4 // VIRTIO_BLK_T_FLUSH
	TypeGetID    = 8 // VIRTIO_BLK_T_GET_ID
	StatusOK     = 0 // VIRTIO_BLK_S_OK
	StatusIOErr  = 1 // VIRTIO_BLK_S_IOERR
	StatusUnsupp = 2 // VIRTIO_BLK_S_UNSUPP

	// SectorSize is the unit of capacity and of the request's sector
	// field, fixed at 512 by the spec regardless of blk_size.
	SectorSize = 512
	// IDLen is the size of the GET_ID answer (VIRTIO_BLK_ID_BYTES).
	IDLen = 20

	headerLen = 16 // struct virtio_blk_req: type le32, reserved le32, sector le64

	// Configuration layout, spec 5.2.4: capacity le64 at 0, size_max le32
	// at 8, seg_max le32 at 12, geometry at 16, blk_size le32 at 20.
	cfgCapacity = 0
	cfgSegMax   = 12
	cfgBlkSize  = 20
	configSize  = 24

	queueSize = 256
	// segMax keeps a request's data descriptors plus header and status
	// inside one chain (spec 5.2.4: seg_max is the data segment count).
	segMax = queueSize - 2

	chunk = 64 << 10 // copy granule between backend and guest
)

// Options configure a Device.
type Options struct {
	ReadOnly bool
	ID       string // serial number answered to GET_ID (truncated to 20 bytes)
}

// Device is a virtio-blk device.
type Device struct {
	backend Backend
	opt     Options
	sectors uint64
	stats   Stats
}

// Stats counts what the device did; they are diagnostics, not saved state.
type Stats struct {
	Reads, Writes, Flushes, IDs, IOErrors, Unsupported uint64
}

// New returns a device over backend.
func New(backend Backend, opt Options) (*Device, error) {
	size := backend.Size()
	if size < 0 || size%SectorSize != 0 {
		return nil, fmt.Errorf("blk: backend of %d bytes is not whole sectors", size)
	}
	return &Device{backend: backend, opt: opt, sectors: uint64(size) / SectorSize}, nil
}

// Stats returns the counters. Call it only while the device is idle or
// through the transport's Runner.
func (d *Device) Stats() Stats { return d.stats }

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeBlock }

// Features implements virtio.Device.
func (d *Device) Features() uint64 {
	f := uint64(FeatureSegMax | FeatureBlkSize | FeatureFlush)
	if d.opt.ReadOnly {
		f |= FeatureRO
	}
	return f
}

// QueueSizes implements virtio.Device: one request queue.
func (d *Device) QueueSizes() []uint16 { return []uint16{queueSize} }

// ConfigSize implements virtio.Device.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(off int, p []byte) {
	var c [configSize]byte
	binary.LittleEndian.PutUint64(c[cfgCapacity:], d.sectors)
	binary.LittleEndian.PutUint32(c[cfgSegMax:], segMax)
	binary.LittleEndian.PutUint32(c[cfgBlkSize:], SectorSize)
	if off >= 0 && off < configSize {
		copy(p, c[off:])
	}
}

// WriteConfig implements virtio.Device: every field offered is read-only
// (writeback is only writable with CONFIG_WCE, not offered).
func (d *Device) WriteConfig(*virtio.Env, int, []byte) {}

// Reset implements virtio.Device; the device keeps no per-driver state.
func (d *Device) Reset() {}

// Notify implements virtio.Device: serve every available request.
func (d *Device) Notify(env *virtio.Env, q int) error {
	for {
		c, err := env.Pop(q)
		if err != nil || c == nil {
			return err
		}
		written, err := d.serve(env, c)
		if err != nil {
			return err
		}
		if err := env.Push(q, c.Head, written); err != nil {
			return err
		}
	}
}

// serve runs one request and writes its status byte. It returns the bytes
// written into the chain, or an error (wrapping virtio.ErrMalformed) when
// not even a status can be reported.
func (d *Device) serve(env *virtio.Env, c *virtio.Chain) (uint32, error) {
	statusAt, ok := c.LastWritable()
	if !ok {
		return 0, fmt.Errorf("blk: request %d has no writable status byte: %w", c.Head, virtio.ErrMalformed)
	}
	status, n, err := d.execute(env, c)
	if err != nil {
		if !errors.Is(err, virtio.ErrMalformed) {
			return 0, err
		}
		// A data buffer outside guest memory fails this request only.
		status, n = StatusIOErr, 0
	}
	switch status {
	case StatusIOErr:
		d.stats.IOErrors++
	case StatusUnsupp:
		d.stats.Unsupported++
	}
	if err := env.Mem.WritePhys(statusAt, []byte{status}); err != nil {
		return 0, fmt.Errorf("blk: request %d status byte at %#x: %w: %w", c.Head, statusAt, virtio.ErrMalformed, err)
	}
	return uint32(n) + 1, nil
}

func (d *Device) execute(env *virtio.Env, c *virtio.Chain) (status uint8, written uint64, err error) {
	var h [headerLen]byte
	r := c.Reader(env.Mem)
	if c.ReadLen < headerLen {
		return StatusIOErr, 0, nil // header missing or in a writable buffer
	}
	if _, err := r.Read(h[:]); err != nil {
		return 0, 0, err
	}
	typ := binary.LittleEndian.Uint32(h[0:])
	sector := binary.LittleEndian.Uint64(h[8:])
	dataIn := c.WriteLen - 1 // writable bytes before the status byte
	dataOut := c.ReadLen - headerLen

	switch typ {
	case TypeIn:
		if dataIn%SectorSize != 0 || !d.inRange(sector, dataIn) {
			return StatusIOErr, 0, nil
		}
		d.stats.Reads++
		w := c.Writer(env.Mem, dataIn)
		buf := make([]byte, min(chunk, dataIn))
		off := int64(sector * SectorSize)
		for done := uint64(0); done < dataIn; {
			n := min(uint64(len(buf)), dataIn-done)
			if _, err := d.backend.ReadAt(buf[:n], off+int64(done)); err != nil {
				return StatusIOErr, w.Written, nil
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return 0, 0, err
			}
			done += n
		}
		return StatusOK, w.Written, nil
	case TypeOut:
		if d.opt.ReadOnly {
			return StatusIOErr, 0, nil // spec 5.2.6.2: writes to a read-only device fail
		}
		if dataOut%SectorSize != 0 || !d.inRange(sector, dataOut) {
			return StatusIOErr, 0, nil
		}
		d.stats.Writes++
		buf := make([]byte, min(chunk, dataOut))
		off := int64(sector * SectorSize)
		for done := uint64(0); done < dataOut; {
			n := min(uint64(len(buf)), dataOut-done)
			if _, err := r.Read(buf[:n]); err != nil {
				return 0, 0, err
			}
			if _, err := d.backend.WriteAt(buf[:n], off+int64(done)); err != nil {
				return StatusIOErr, 0, nil
			}
			done += n
		}
		return StatusOK, 0, nil
	case TypeFlush:
		d.stats.Flushes++
		if err := d.backend.Flush(); err != nil {
			return StatusIOErr, 0, nil
		}
		return StatusOK, 0, nil
	case TypeGetID:
		d.stats.IDs++
		var id [IDLen]byte
		copy(id[:], d.opt.ID)
		w := c.Writer(env.Mem, min(dataIn, IDLen))
		if _, err := w.Write(id[:]); err != nil {
			return 0, 0, err
		}
		return StatusOK, w.Written, nil
	}
	return StatusUnsupp, 0, nil
}

func (d *Device) inRange(sector, n uint64) bool {
	return sector <= d.sectors && n/SectorSize <= d.sectors-sector
}

const (
	stateTag     = "virtio-blk"
	stateVersion = 1
)

// SaveDevice implements virtio.Device. The device's only state is its
// geometry (the disk contents belong to the backend); saving it lets a
// restore refuse a blob taken with a different disk.
func (d *Device) SaveDevice() []byte {
	e := snapshot.NewEncoder(stateTag, stateVersion)
	e.U64(d.sectors)
	e.Bool(d.opt.ReadOnly)
	return e.Finish()
}

// PrepareRestoreDevice implements virtio.Device.
func (d *Device) PrepareRestoreDevice(blob []byte) (func(), error) {
	dec, err := snapshot.NewDecoder(blob, stateTag, stateVersion)
	if err != nil {
		return nil, fmt.Errorf("blk: restore: %w", err)
	}
	sectors, ro := dec.U64(), dec.Bool()
	dec.Check(sectors == d.sectors, "capacity %d sectors, backend has %d", sectors, d.sectors)
	dec.Check(ro == d.opt.ReadOnly, "read-only %v, device is %v", ro, d.opt.ReadOnly)
	if err := dec.Finish(); err != nil {
		return nil, fmt.Errorf("blk: restore: %w", err)
	}
	return func() {}, nil
}

// RAMDisk is a Backend over a byte slice: a disk image loaded as a
// multiboot module, or a slice of host memory.
type RAMDisk struct {
	data []byte
}

// NewRAMDisk returns a disk over data, whose length must be whole sectors.
// The disk aliases data: writes land in it.
func NewRAMDisk(data []byte) (*RAMDisk, error) {
	if len(data)%SectorSize != 0 {
		return nil, fmt.Errorf("blk: RAM disk of %d bytes is not whole sectors", len(data))
	}
	return &RAMDisk{data: data}, nil
}

// ReadAt implements io.ReaderAt.
func (r *RAMDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(r.data)) || int64(len(p)) > int64(len(r.data))-off {
		return 0, fmt.Errorf("blk: RAM disk read %d at %d: %w", len(p), off, io.ErrUnexpectedEOF)
	}
	return copy(p, r.data[off:]), nil
}

// WriteAt implements io.WriterAt.
func (r *RAMDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(r.data)) || int64(len(p)) > int64(len(r.data))-off {
		return 0, fmt.Errorf("blk: RAM disk write %d at %d: %w", len(p), off, io.ErrShortWrite)
	}
	return copy(r.data[off:], p), nil
}

// Size implements Backend.
func (r *RAMDisk) Size() int64 { return int64(len(r.data)) }

// Flush implements Backend; memory needs no flushing.
func (r *RAMDisk) Flush() error { return nil }
