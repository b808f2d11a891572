// Package aml encodes the small subset of ACPI Machine Language that a
// static DSDT needs: names, scopes, devices, integers, strings, buffers,
// packages, EISA IDs and resource templates (ACPI 6.5 chapter 20 for the
// grammar, chapter 6.4 for resource descriptors).
//
// Boundary: it produces bytes; it does not interpret AML and knows nothing
// about tables or checksums (package acpitables does). Its input comes from
// the VMM's own code, not from guests; malformed names or out-of-range
// values are reported through the Builder's sticky error rather than by
// panicking, so a table builder checks once at the end.
package aml

import (
	"fmt"
	"strings"
)

// Opcodes and prefixes (ACPI 6.5 §20.2).
const (
	ZeroOp        = 0x00 // §20.2.3 ConstObj
	OneOp         = 0x01
	OnesOp        = 0xFF
	NameOp        = 0x08 // §20.2.5.1 DefName
	BytePrefix    = 0x0A // §20.2.3 ComputationalData
	WordPrefix    = 0x0B
	DWordPrefix   = 0x0C
	StringPrefix  = 0x0D
	QWordPrefix   = 0x0E
	ScopeOp       = 0x10 // §20.2.5.1 DefScope
	BufferOp      = 0x11 // §20.2.5.4 DefBuffer
	PackageOp     = 0x12 // §20.2.5.4 DefPackage
	ExtOpPrefix   = 0x5B
	DeviceOp      = 0x82 // after ExtOpPrefix, §20.2.5.2 DefDevice
	RootChar      = '\\' // §20.2.2
	DualNamePref  = 0x2E
	MultiNamePref = 0x2F
	NullName      = 0x00

	// PkgLength (§20.2.4): one byte holds up to 63; otherwise the top
	// two bits of the lead byte count 1-3 following bytes, the lead byte
	// keeps 4 bits and each following byte 8, for at most 2^28-1.
	maxPkgLength = 1<<28 - 1
)

// Builder encodes AML terms. The first error (a bad name, an oversized
// package) sticks and is reported by Err; after it the methods keep
// returning bytes so the caller need not check each call.
type Builder struct {
	err error
}

// Err returns the first encoding error.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("aml: "+format, args...)
	}
}

// PkgLength encodes the length of a package whose body (everything after
// the PkgLength) is n bytes; the encoded length counts its own bytes too.
func (b *Builder) PkgLength(n int) []byte {
	for size := 1; size <= 4; size++ {
		total := n + size
		if size == 1 && total <= 0x3F {
			return []byte{byte(total)}
		}
		if size > 1 && total < 1<<(4+8*(size-1)) {
			out := []byte{byte(size-1)<<6 | byte(total&0xF)}
			for i := 1; i < size; i++ {
				out = append(out, byte(total>>(4+8*(i-1))))
			}
			return out
		}
	}
	b.fail("package body of %d bytes exceeds the PkgLength maximum %d", n, maxPkgLength)
	return []byte{0}
}

func validSeg(s string) bool {
	if len(s) == 0 || len(s) > 4 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// NameString encodes a name path such as "_HID", "PCI0" or "\_SB.PCI0"
// (§20.2.2). Segments shorter than four characters are padded with '_'.
func (b *Builder) NameString(path string) []byte {
	var out []byte
	if strings.HasPrefix(path, `\`) {
		out = append(out, RootChar)
		path = path[1:]
	}
	if path == "" {
		return append(out, NullName)
	}
	segs := strings.Split(path, ".")
	if len(segs) > 255 {
		b.fail("name %q has too many segments", path)
		return append(out, NullName)
	}
	switch len(segs) {
	case 1:
	case 2:
		out = append(out, DualNamePref)
	default:
		out = append(out, MultiNamePref, byte(len(segs)))
	}
	for _, s := range segs {
		if !validSeg(s) {
			b.fail("bad name segment %q in %q", s, path)
			s = "____"
		}
		out = append(out, s...)
		for range 4 - len(s) {
			out = append(out, '_')
		}
	}
	return out
}

// Integer encodes v in the shortest form (§20.2.3).
func (b *Builder) Integer(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{ZeroOp}
	case v == 1:
		return []byte{OneOp}
	case v <= 0xFF:
		return []byte{BytePrefix, byte(v)}
	case v <= 0xFFFF:
		return []byte{WordPrefix, byte(v), byte(v >> 8)}
	case v <= 0xFFFFFFFF:
		return []byte{DWordPrefix, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	}
	out := []byte{QWordPrefix}
	for i := range 8 {
		out = append(out, byte(v>>(8*i)))
	}
	return out
}

// String encodes an ASCII string constant (§20.2.3: AsciiCharList of
// 0x01-0x7F, then NullChar).
func (b *Builder) String(s string) []byte {
	out := []byte{StringPrefix}
	for _, c := range []byte(s) {
		if c == 0 || c > 0x7F {
			b.fail("string %q has a non-ASCII or NUL byte", s)
			c = '?'
		}
		out = append(out, c)
	}
	return append(out, 0)
}

// EISAID encodes a seven-character PNP ID such as "PNP0A03" as the 32-bit
// compressed EISA ID integer (§19.6.35 EISAID): three letters of five bits
// each and four hex digits, stored big-endian.
func (b *Builder) EISAID(id string) []byte {
	v, ok := eisaID(id)
	if !ok {
		b.fail("bad EISA ID %q", id)
	}
	return []byte{DWordPrefix, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

func eisaID(id string) (uint32, bool) {
	if len(id) != 7 {
		return 0, false
	}
	var be uint32
	for i := range 3 {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return 0, false
		}
		be = be<<5 | uint32(c-'@')
	}
	for i := 3; i < 7; i++ {
		var d byte
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		be = be<<4 | uint32(d)
	}
	// Stored as the bytes of the big-endian value, read back as a
	// little-endian DWord.
	return be>>24 | be>>8&0xFF00 | be<<8&0xFF0000 | be<<24, true
}

func (b *Builder) withPkgLength(op []byte, body []byte) []byte {
	out := append([]byte(nil), op...)
	out = append(out, b.PkgLength(len(body))...)
	return append(out, body...)
}

func concat(parts [][]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Buffer encodes a buffer holding data (§20.2.5.4 DefBuffer).
func (b *Builder) Buffer(data []byte) []byte {
	body := append(b.Integer(uint64(len(data))), data...)
	return b.withPkgLength([]byte{BufferOp}, body)
}

// Package encodes a package of elements (§20.2.5.4 DefPackage: at most 255
// elements in NumElements).
func (b *Builder) Package(elems ...[]byte) []byte {
	if len(elems) > 255 {
		b.fail("package of %d elements exceeds 255", len(elems))
	}
	body := append([]byte{byte(len(elems))}, concat(elems)...)
	return b.withPkgLength([]byte{PackageOp}, body)
}

// Name encodes Name(name, object) (§20.2.5.1 DefName).
func (b *Builder) Name(name string, obj []byte) []byte {
	out := append([]byte{NameOp}, b.NameString(name)...)
	return append(out, obj...)
}

// Scope encodes Scope(name) { terms } (§20.2.5.1 DefScope).
func (b *Builder) Scope(name string, terms ...[]byte) []byte {
	body := append(b.NameString(name), concat(terms)...)
	return b.withPkgLength([]byte{ScopeOp}, body)
}

// Device encodes Device(name) { terms } (§20.2.5.2 DefDevice).
func (b *Builder) Device(name string, terms ...[]byte) []byte {
	body := append(b.NameString(name), concat(terms)...)
	return b.withPkgLength([]byte{ExtOpPrefix, DeviceOp}, body)
}
