package aml

// Resource descriptors (ACPI 6.5 §6.4). Small items have a one-byte tag of
// name<<3|length; large items a tag 0x80|name and a 16-bit length.
const (
	smallIRQ       = 0x04 << 3 // §6.4.2.1, IRQ descriptor
	smallIO        = 0x08 << 3 // §6.4.2.5, I/O port descriptor
	smallEnd       = 0x0F << 3 // §6.4.2.9, end tag
	largeDWordAddr = 0x87      // §6.4.3.5.2 DWord Address Space Descriptor
	largeWordAddr  = 0x88      // §6.4.3.5.3 Word Address Space Descriptor
	largeQWordAddr = 0x8A      // §6.4.3.5.1 QWord Address Space Descriptor

	// Address space resource types (§6.4.3.5 table 6.48).
	resTypeMemory = 0
	resTypeIO     = 1
	resTypeBus    = 2

	// General flags: producer (bit 0 = 0), positive decode, minimum and
	// maximum fixed (_MIF bit 2, _MAF bit 3), as a root bridge's windows.
	genFlagsFixed = 1<<2 | 1<<3
	// I/O type-specific flags: _RNG = 3, ISA and non-ISA ranges.
	ioFlagsEntire = 3
	// Memory type-specific flags: _RW read-write (bit 0), _MEM in bits 2:1
	// (0 non-cacheable, 1 cacheable).
	memFlagsRW        = 1 << 0
	memFlagsCacheable = 1 << 1
)

func le16(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
func le64(v uint64) []byte { return append(le32(uint32(v)), le32(uint32(v>>32))...) }

// IO is a 16-bit-decode I/O port descriptor (§6.4.2.5).
func (b *Builder) IO(min, max uint16, align, length uint8) []byte {
	out := []byte{smallIO | 7, 1}
	out = append(out, le16(min)...)
	out = append(out, le16(max)...)
	return append(out, align, length)
}

// IRQNoFlags is an IRQ descriptor for edge, active-high ISA interrupts
// (§6.4.2.1 with the two-byte form).
func (b *Builder) IRQNoFlags(irqs ...uint8) []byte {
	var mask uint16
	for _, q := range irqs {
		if q > 15 {
			b.fail("ISA IRQ %d out of range", q)
			continue
		}
		mask |= 1 << q
	}
	return append([]byte{smallIRQ | 2}, le16(mask)...)
}

func (b *Builder) checkRange(kind string, min, max uint64) {
	if max < min {
		b.fail("%s range [%#x, %#x] is empty", kind, min, max)
	}
}

// WordBusNumber is a bus-number range a root bridge produces.
func (b *Builder) WordBusNumber(min, max uint16) []byte {
	b.checkRange("bus", uint64(min), uint64(max))
	return b.wordAddr(resTypeBus, 0, min, max)
}

// WordIO is an I/O window a root bridge produces.
func (b *Builder) WordIO(min, max uint16) []byte {
	b.checkRange("I/O", uint64(min), uint64(max))
	return b.wordAddr(resTypeIO, ioFlagsEntire, min, max)
}

func (b *Builder) wordAddr(typ, tflags uint8, min, max uint16) []byte {
	out := []byte{largeWordAddr}
	out = append(out, le16(13)...)
	out = append(out, typ, genFlagsFixed, tflags)
	out = append(out, le16(0)...) // granularity
	out = append(out, le16(min)...)
	out = append(out, le16(max)...)
	out = append(out, le16(0)...) // translation
	return append(out, le16(max-min+1)...)
}

func memFlags(cacheable bool) uint8 {
	if cacheable {
		return memFlagsRW | memFlagsCacheable
	}
	return memFlagsRW
}

// DWordMemory is a 32-bit memory window a root bridge produces.
func (b *Builder) DWordMemory(min, max uint32, cacheable bool) []byte {
	b.checkRange("memory", uint64(min), uint64(max))
	out := []byte{largeDWordAddr}
	out = append(out, le16(23)...)
	out = append(out, resTypeMemory, genFlagsFixed, memFlags(cacheable))
	out = append(out, le32(0)...)
	out = append(out, le32(min)...)
	out = append(out, le32(max)...)
	out = append(out, le32(0)...)
	return append(out, le32(max-min+1)...)
}

// QWordMemory is a 64-bit memory window a root bridge produces.
func (b *Builder) QWordMemory(min, max uint64, cacheable bool) []byte {
	b.checkRange("memory", min, max)
	out := []byte{largeQWordAddr}
	out = append(out, le16(43)...)
	out = append(out, resTypeMemory, genFlagsFixed, memFlags(cacheable))
	out = append(out, le64(0)...)
	out = append(out, le64(min)...)
	out = append(out, le64(max)...)
	out = append(out, le64(0)...)
	return append(out, le64(max-min+1)...)
}

// ResourceTemplate wraps descriptors in a buffer with the end tag
// (§6.4.2.9; a zero checksum byte means "treat as valid").
func (b *Builder) ResourceTemplate(items ...[]byte) []byte {
	return b.Buffer(append(concat(items), smallEnd|1, 0))
}
