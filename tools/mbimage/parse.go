package mbimage

import (
	"encoding/binary"
	"fmt"
)

// MB1 is a Multiboot 1 header as a loader reads it (§3.1.1), with the
// address fields of flag bit 16.
type MB1 struct {
	Offset      int // file offset where it was found
	Flags       uint32
	Checksum    uint32
	HeaderAddr  uint32
	LoadAddr    uint32
	LoadEndAddr uint32
	BSSEndAddr  uint32
	EntryAddr   uint32
}

// FindMB1 scans img the way a Multiboot 1 loader does: the first 4-byte
// aligned magic in the first 8 KiB whose checksum is right.
func FindMB1(img []byte) (MB1, error) {
	le := binary.LittleEndian
	for off := 0; off+12 <= len(img) && off+12 <= MB1Search; off += MB1Align {
		if le.Uint32(img[off:]) != MB1Magic {
			continue
		}
		flags, sum := le.Uint32(img[off+4:]), le.Uint32(img[off+8:])
		if MB1Magic+flags+sum != 0 {
			continue
		}
		h := MB1{Offset: off, Flags: flags, Checksum: sum}
		if flags&MB1FlagAddress != 0 {
			if off+MB1Size > len(img) {
				return MB1{}, fmt.Errorf("mbimage: multiboot 1 header at %#x is truncated", off)
			}
			h.HeaderAddr = le.Uint32(img[off+12:])
			h.LoadAddr = le.Uint32(img[off+16:])
			h.LoadEndAddr = le.Uint32(img[off+20:])
			h.BSSEndAddr = le.Uint32(img[off+24:])
			h.EntryAddr = le.Uint32(img[off+28:])
		}
		return h, nil
	}
	return MB1{}, fmt.Errorf("mbimage: no multiboot 1 header in the first %d bytes", MB1Search)
}

// MB2Tag is one Multiboot 2 header tag (§3.1.3) with its payload after the
// 8-byte type/flags/size prefix.
type MB2Tag struct {
	Type    uint16
	Flags   uint16
	Payload []byte
}

// MB2 is a Multiboot 2 header as a loader reads it (§3.1.2).
type MB2 struct {
	Offset       int
	Architecture uint32
	Length       uint32
	Checksum     uint32
	Tags         []MB2Tag // up to and including the end tag
}

// FindMB2 scans img the way a Multiboot 2 loader does: the first 8-byte
// aligned magic in the first 32 KiB with a valid checksum, then its tags,
// which must end with the end tag exactly at header_length.
func FindMB2(img []byte) (MB2, error) {
	le := binary.LittleEndian
	for off := 0; off+MB2FixedSize <= len(img) && off+MB2FixedSize <= MB2Search; off += MB2Align {
		if le.Uint32(img[off:]) != MB2Magic {
			continue
		}
		h := MB2{
			Offset:       off,
			Architecture: le.Uint32(img[off+4:]),
			Length:       le.Uint32(img[off+8:]),
			Checksum:     le.Uint32(img[off+12:]),
		}
		if MB2Magic+h.Architecture+h.Length+h.Checksum != 0 {
			continue
		}
		if h.Length < MB2FixedSize+8 || uint64(off)+uint64(h.Length) > uint64(len(img)) || off+int(h.Length) > MB2Search {
			return MB2{}, fmt.Errorf("mbimage: multiboot 2 header at %#x: bad length %d", off, h.Length)
		}
		body := img[off+MB2FixedSize : off+int(h.Length)]
		for pos := 0; ; {
			if pos+8 > len(body) {
				return MB2{}, fmt.Errorf("mbimage: multiboot 2 header at %#x: tags run past header_length without an end tag", off)
			}
			typ, flags, size := le.Uint16(body[pos:]), le.Uint16(body[pos+2:]), int(le.Uint32(body[pos+4:]))
			if size < 8 || pos+size > len(body) {
				return MB2{}, fmt.Errorf("mbimage: multiboot 2 header at %#x: tag type %d at +%#x has bad size %d", off, typ, MB2FixedSize+pos, size)
			}
			h.Tags = append(h.Tags, MB2Tag{Type: typ, Flags: flags, Payload: body[pos+8 : pos+size]})
			if typ == MB2TagEnd {
				if size != 8 || pos+size != len(body) {
					return MB2{}, fmt.Errorf("mbimage: multiboot 2 header at %#x: end tag of size %d at +%#x, header_length %d", off, size, MB2FixedSize+pos, h.Length)
				}
				return h, nil
			}
			pos += alignUp(size, MB2Align)
		}
	}
	return MB2{}, fmt.Errorf("mbimage: no multiboot 2 header in the first %d bytes", MB2Search)
}

// Tag returns the first tag of the given type.
func (h MB2) Tag(typ uint16) (MB2Tag, bool) {
	for _, t := range h.Tags {
		if t.Type == typ {
			return t, true
		}
	}
	return MB2Tag{}, false
}

// Uint32s decodes a tag payload as little-endian 32-bit words.
func (t MB2Tag) Uint32s() []uint32 {
	vs := make([]uint32, len(t.Payload)/4)
	for i := range vs {
		vs[i] = binary.LittleEndian.Uint32(t.Payload[4*i:])
	}
	return vs
}
