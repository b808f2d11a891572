package virtio

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Split virtqueue layout, spec 2.7.
const (
	// MaxQueueSize is the largest queue size a split virtqueue may have
	// (spec 2.7: "Queue Size ... maximum 32768").
	MaxQueueSize = 32768

	descSize      = 16 // struct virtq_desc: addr le64, len le32, flags le16, next le16
	descAlign     = 16 // spec 2.7, table "Virtqueue Part Alignment"
	availAlign    = 2
	usedAlign     = 4
	usedElemSize  = 8 // struct virtq_used_elem: id le32, len le32
	ringHeaderLen = 4 // flags le16, idx le16

	DescFNext     = 1 // VIRTQ_DESC_F_NEXT
	DescFWrite    = 2 // VIRTQ_DESC_F_WRITE
	DescFIndirect = 4 // VIRTQ_DESC_F_INDIRECT

	AvailFNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT

	// maxChainBytes bounds the bytes one chain may describe in each
	// direction: used-ring lengths are 32-bit.
	maxChainBytes = 1<<32 - 1
)

// Queue is the device's view of one split virtqueue: where the driver put
// it and how far the device has consumed and produced.
type Queue struct {
	Size    uint16 // negotiated size, a power of two <= MaxQueueSize
	Desc    uint64 // descriptor table
	Avail   uint64 // driver area (available ring)
	Used    uint64 // device area (used ring)
	Enabled bool

	// Indirect is set when VIRTIO_F_INDIRECT_DESC was negotiated.
	Indirect bool

	LastAvail uint16 // next available-ring slot the device will read
	UsedIdx   uint16 // the used ring's idx as last written by the device
}

// Segment is one guest buffer of a descriptor chain.
type Segment struct {
	Addr uint64
	Len  uint32
}

// Chain is a descriptor chain taken from the available ring: its head
// index (to return in the used ring), the device-readable buffers and
// then the device-writable ones.
type Chain struct {
	Head     uint16
	Readable []Segment
	Writable []Segment
	ReadLen  uint64 // sum of Readable lengths
	WriteLen uint64 // sum of Writable lengths
}

// Check validates the queue's geometry as the driver set it (spec 2.7:
// power-of-two size no larger than max, aligned parts that do not wrap the
// address space).
func (q *Queue) Check(max uint16) error {
	switch {
	case q.Size == 0 || bits.OnesCount16(q.Size) != 1 || q.Size > max:
		return fmt.Errorf("virtio: queue size %d (max %d): %w", q.Size, max, ErrMalformed)
	case q.Desc%descAlign != 0 || q.Avail%availAlign != 0 || q.Used%usedAlign != 0:
		return fmt.Errorf("virtio: queue areas %#x/%#x/%#x misaligned: %w", q.Desc, q.Avail, q.Used, ErrMalformed)
	}
	n := uint64(q.Size)
	for _, a := range []struct{ base, size uint64 }{
		{q.Desc, descSize * n},
		{q.Avail, ringHeaderLen + 2*n + 2},
		{q.Used, ringHeaderLen + usedElemSize*n + 2},
	} {
		if a.base+a.size < a.base {
			return fmt.Errorf("virtio: queue area %#x+%#x wraps: %w", a.base, a.size, ErrMalformed)
		}
	}
	return nil
}

func read16(mem GuestMemory, gpa uint64) (uint16, error) {
	var b [2]byte
	if err := mem.ReadPhys(gpa, b[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b[:]), nil
}

// Pending reports how many chains the driver has made available that the
// device has not taken.
func (q *Queue) Pending(mem GuestMemory) (int, error) {
	idx, err := read16(mem, q.Avail+2)
	if err != nil {
		return 0, fmt.Errorf("virtio: read avail idx: %w: %w", ErrMalformed, err)
	}
	n := idx - q.LastAvail
	if n > q.Size {
		// The driver can never have more than Size chains outstanding
		// (spec 2.7.13.3); anything else is a corrupted index.
		return 0, fmt.Errorf("virtio: avail idx %d is %d ahead of %d in a queue of %d: %w", idx, n, q.LastAvail, q.Size, ErrMalformed)
	}
	return int(n), nil
}

// Pop takes the next available chain, or returns nil when there is none.
// Every descriptor is checked: indices in range, no loops (a chain may not
// be longer than its table), no zero-length or wrapping buffers, writable
// buffers only after readable ones, indirect tables only when negotiated,
// only at the head, not nested, a whole number of descriptors long.
func (q *Queue) Pop(mem GuestMemory) (*Chain, error) {
	if !q.Enabled {
		return nil, fmt.Errorf("virtio: pop from a disabled queue: %w", ErrNotReady)
	}
	n, err := q.Pending(mem)
	if err != nil || n == 0 {
		return nil, err
	}
	slot := q.Avail + ringHeaderLen + 2*uint64(q.LastAvail%q.Size)
	head, err := read16(mem, slot)
	if err != nil {
		return nil, fmt.Errorf("virtio: read avail ring: %w: %w", ErrMalformed, err)
	}
	c, err := q.walk(mem, head)
	if err != nil {
		return nil, err
	}
	q.LastAvail++
	return c, nil
}

func (q *Queue) walk(mem GuestMemory, head uint16) (*Chain, error) {
	c := &Chain{Head: head}
	table, tableLen := q.Desc, uint32(q.Size)
	idx := uint32(head)
	seen, indirect := uint32(0), false
	var d [descSize]byte
	for {
		if idx >= tableLen {
			return nil, fmt.Errorf("virtio: chain %d: descriptor index %d outside a table of %d: %w", head, idx, tableLen, ErrMalformed)
		}
		if seen++; seen > tableLen {
			return nil, fmt.Errorf("virtio: chain %d: longer than its table of %d (loop): %w", head, tableLen, ErrMalformed)
		}
		if err := mem.ReadPhys(table+uint64(idx)*descSize, d[:]); err != nil {
			return nil, fmt.Errorf("virtio: chain %d: read descriptor %d: %w: %w", head, idx, ErrMalformed, err)
		}
		addr := binary.LittleEndian.Uint64(d[0:])
		length := binary.LittleEndian.Uint32(d[8:])
		flags := binary.LittleEndian.Uint16(d[12:])
		next := binary.LittleEndian.Uint16(d[14:])

		if flags&DescFIndirect != 0 {
			switch {
			case !q.Indirect:
				return nil, fmt.Errorf("virtio: chain %d: indirect descriptor not negotiated: %w", head, ErrMalformed)
			case indirect:
				return nil, fmt.Errorf("virtio: chain %d: nested indirect table: %w", head, ErrMalformed)
			case seen != 1:
				return nil, fmt.Errorf("virtio: chain %d: indirect descriptor after direct ones: %w", head, ErrMalformed)
			case flags&DescFNext != 0:
				return nil, fmt.Errorf("virtio: chain %d: indirect descriptor with NEXT: %w", head, ErrMalformed)
			case length == 0 || length%descSize != 0 || length/descSize > MaxQueueSize:
				return nil, fmt.Errorf("virtio: chain %d: indirect table of %d bytes: %w", head, length, ErrMalformed)
			case addr+uint64(length) < addr:
				return nil, fmt.Errorf("virtio: chain %d: indirect table at %#x wraps: %w", head, addr, ErrMalformed)
			}
			table, tableLen, idx, seen, indirect = addr, length/descSize, 0, 0, true
			continue
		}
		if length == 0 {
			return nil, fmt.Errorf("virtio: chain %d: zero-length descriptor %d: %w", head, idx, ErrMalformed)
		}
		if addr+uint64(length) < addr {
			return nil, fmt.Errorf("virtio: chain %d: buffer %#x+%#x wraps: %w", head, addr, length, ErrMalformed)
		}
		s := Segment{Addr: addr, Len: length}
		if flags&DescFWrite != 0 {
			c.Writable = append(c.Writable, s)
			c.WriteLen += uint64(length)
		} else {
			if len(c.Writable) > 0 {
				return nil, fmt.Errorf("virtio: chain %d: readable buffer after a writable one: %w", head, ErrMalformed)
			}
			c.Readable = append(c.Readable, s)
			c.ReadLen += uint64(length)
		}
		if c.ReadLen > maxChainBytes || c.WriteLen > maxChainBytes {
			return nil, fmt.Errorf("virtio: chain %d: more than 4 GiB of buffers: %w", head, ErrMalformed)
		}
		if flags&DescFNext == 0 {
			return c, nil
		}
		idx = uint32(next)
	}
}

// Push returns chain head to the driver with written bytes of
// device-writable data (spec 2.7.8). The element is written before the
// index so the driver never sees an index ahead of its element.
func (q *Queue) Push(mem GuestMemory, head uint16, written uint32) error {
	var e [usedElemSize]byte
	binary.LittleEndian.PutUint32(e[0:], uint32(head))
	binary.LittleEndian.PutUint32(e[4:], written)
	if err := mem.WritePhys(q.Used+ringHeaderLen+usedElemSize*uint64(q.UsedIdx%q.Size), e[:]); err != nil {
		return fmt.Errorf("virtio: write used ring: %w: %w", ErrMalformed, err)
	}
	var idx [2]byte
	binary.LittleEndian.PutUint16(idx[:], q.UsedIdx+1)
	if err := mem.WritePhys(q.Used+2, idx[:]); err != nil {
		return fmt.Errorf("virtio: write used idx: %w: %w", ErrMalformed, err)
	}
	q.UsedIdx++
	return nil
}

// WantsInterrupt reports whether the driver asked to be interrupted for
// used buffers (the available ring's NO_INTERRUPT flag, spec 2.7.7; event
// index suppression is not negotiated).
func (q *Queue) WantsInterrupt(mem GuestMemory) bool {
	f, err := read16(mem, q.Avail)
	// An unreadable ring cannot suppress: interrupt, and let the driver
	// find out.
	return err != nil || f&AvailFNoInterrupt == 0
}

// SegmentReader reads a chain's device-readable bytes in order.
type SegmentReader struct {
	mem  GuestMemory
	segs []Segment
	off  uint32
}

// Reader returns a reader over c's readable buffers.
func (c *Chain) Reader(mem GuestMemory) *SegmentReader {
	return &SegmentReader{mem: mem, segs: c.Readable}
}

// Read copies the next bytes into p; it returns io.EOF-like (0, nil) at
// the end, and an error wrapping ErrMalformed when a buffer is outside
// guest memory.
func (r *SegmentReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(r.segs) > 0 {
		s := r.segs[0]
		k := min(uint64(len(p)-n), uint64(s.Len-r.off))
		if err := r.mem.ReadPhys(s.Addr+uint64(r.off), p[n:n+int(k)]); err != nil {
			return n, fmt.Errorf("virtio: read buffer %#x: %w: %w", s.Addr+uint64(r.off), ErrMalformed, err)
		}
		n += int(k)
		r.off += uint32(k)
		if r.off == s.Len {
			r.segs, r.off = r.segs[1:], 0
		}
	}
	return n, nil
}

// SegmentWriter writes a chain's device-writable bytes in order, up to a
// limit.
type SegmentWriter struct {
	mem     GuestMemory
	segs    []Segment
	off     uint32
	left    uint64
	Written uint64
}

// Writer returns a writer over c's writable buffers that accepts at most
// limit bytes.
func (c *Chain) Writer(mem GuestMemory, limit uint64) *SegmentWriter {
	return &SegmentWriter{mem: mem, segs: c.Writable, left: min(limit, c.WriteLen)}
}

// Write copies p into the buffers. It writes as much as fits and returns a
// short count without error at the limit.
func (w *SegmentWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(w.segs) > 0 && w.left > 0 {
		s := w.segs[0]
		k := min(uint64(len(p)-n), uint64(s.Len-w.off), w.left)
		if err := w.mem.WritePhys(s.Addr+uint64(w.off), p[n:n+int(k)]); err != nil {
			return n, fmt.Errorf("virtio: write buffer %#x: %w: %w", s.Addr+uint64(w.off), ErrMalformed, err)
		}
		n += int(k)
		w.off += uint32(k)
		w.left -= k
		w.Written += k
		if w.off == s.Len {
			w.segs, w.off = w.segs[1:], 0
		}
	}
	return n, nil
}

// LastWritable returns the guest address of the chain's last writable
// byte (where virtio-blk puts its status), or false when there is none.
func (c *Chain) LastWritable() (uint64, bool) {
	if len(c.Writable) == 0 {
		return 0, false
	}
	s := c.Writable[len(c.Writable)-1]
	return s.Addr + uint64(s.Len) - 1, true
}
