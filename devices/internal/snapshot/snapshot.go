// Package snapshot encodes and decodes the versioned state blobs of device
// models. A blob is: the magic "HVDS", a length-prefixed device tag, a
// 16-bit version, the device's fields in little-endian order, and a CRC-32C
// of everything before it. The decoder never panics on any input: every read
// is bounds-checked, the first problem is kept as a sticky error, and the
// device validates field values itself before it commits them.
package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const magic = "HVDS"

// ErrCorrupt is wrapped by every decoding error so callers can tell a bad
// blob from other failures.
var ErrCorrupt = errors.New("corrupt state blob")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encoder builds a blob. Its methods never fail; Finish seals the blob.
type Encoder struct {
	buf []byte
}

// NewEncoder starts a blob for the device kind tag at the given version.
func NewEncoder(tag string, version uint16) *Encoder {
	e := &Encoder{buf: make([]byte, 0, 64)}
	e.buf = append(e.buf, magic...)
	e.U8(uint8(len(tag)))
	e.buf = append(e.buf, tag...)
	e.U16(version)
	return e
}

// U8 appends one byte.
func (e *Encoder) U8(v uint8) { e.buf = append(e.buf, v) }

// Bool appends a boolean as 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// U16 appends a little-endian 16-bit value.
func (e *Encoder) U16(v uint16) { e.buf = binary.LittleEndian.AppendUint16(e.buf, v) }

// U32 appends a little-endian 32-bit value.
func (e *Encoder) U32(v uint32) { e.buf = binary.LittleEndian.AppendUint32(e.buf, v) }

// U64 appends a little-endian 64-bit value.
func (e *Encoder) U64(v uint64) { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(b []byte) {
	e.U32(uint32(len(b)))
	e.buf = append(e.buf, b...)
}

// Finish appends the checksum and returns the blob.
func (e *Encoder) Finish() []byte {
	return binary.LittleEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, castagnoli))
}

// Decoder reads a blob field by field. After the first error every read
// returns a zero value and Err reports that error.
type Decoder struct {
	buf     []byte
	off     int
	err     error
	tag     string
	Version uint16
}

// NewDecoder checks the framing of blob (magic, tag, checksum) and that its
// version lies in [1, maxVersion].
func NewDecoder(blob []byte, tag string, maxVersion uint16) (*Decoder, error) {
	if len(blob) < len(magic)+1+2+4 {
		return nil, fmt.Errorf("snapshot: %s blob of %d bytes is too short: %w", tag, len(blob), ErrCorrupt)
	}
	body, sum := blob[:len(blob)-4], binary.LittleEndian.Uint32(blob[len(blob)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("snapshot: %s blob checksum %#x, want %#x: %w", tag, got, sum, ErrCorrupt)
	}
	d := &Decoder{buf: body, tag: tag}
	if string(d.take(len(magic))) != magic {
		return nil, fmt.Errorf("snapshot: %s blob has no magic: %w", tag, ErrCorrupt)
	}
	n := int(d.U8())
	if got := string(d.take(n)); d.err == nil && got != tag {
		return nil, fmt.Errorf("snapshot: blob is for device %q, not %q: %w", got, tag, ErrCorrupt)
	}
	d.Version = d.U16()
	if d.err != nil {
		return nil, d.err
	}
	if d.Version == 0 || d.Version > maxVersion {
		return nil, fmt.Errorf("snapshot: %s blob version %d not in [1,%d]: %w", tag, d.Version, maxVersion, ErrCorrupt)
	}
	return d, nil
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.err = fmt.Errorf("snapshot: %s blob truncated at offset %d: %w", d.tag, d.off, ErrCorrupt)
		return nil
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Bool reads a boolean; any byte other than 0 or 1 is corruption.
func (d *Decoder) Bool() bool {
	v := d.U8()
	if v > 1 {
		d.Failf("boolean byte %#x", v)
	}
	return v == 1
}

// U16 reads a little-endian 16-bit value.
func (d *Decoder) U16() uint16 {
	b := d.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

// U32 reads a little-endian 32-bit value.
func (d *Decoder) U32() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// U64 reads a little-endian 64-bit value.
func (d *Decoder) U64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Bytes reads a length-prefixed byte string of at most max bytes and
// returns a copy of it.
func (d *Decoder) Bytes(max int) []byte {
	n := d.U32()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.Failf("byte string of %d bytes exceeds %d", n, max)
		return nil
	}
	b := d.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Failf records a validation failure found by the device; the first failure
// wins.
func (d *Decoder) Failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("snapshot: %s blob: %s: %w", d.tag, fmt.Sprintf(format, args...), ErrCorrupt)
	}
}

// Check records a validation failure when ok is false.
func (d *Decoder) Check(ok bool, format string, args ...any) {
	if !ok {
		d.Failf(format, args...)
	}
}

// Finish reports the first error, or an error when bytes are left over.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.Failf("%d trailing bytes", len(d.buf)-d.off)
	}
	return d.err
}

// Reseal replaces the checksum at the end of blob with the right one. Fuzz
// tests use it so that mutated blobs get past the checksum and exercise the
// field validation behind it.
func Reseal(blob []byte) []byte {
	if len(blob) < 4 {
		return blob
	}
	body := blob[:len(blob)-4]
	out := append([]byte(nil), body...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
}
