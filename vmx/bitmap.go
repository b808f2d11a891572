package vmx

import "fmt"

// MSRBitmap is the 4 KiB MSR-bitmap page (SDM 25.6.9): four 1 KiB bitmaps,
// one bit per MSR, a set bit meaning RDMSR/WRMSR of that MSR exits. MSRs
// outside the two covered ranges always exit. The hypervisor converts its
// page-aligned frame to *MSRBitmap; the layout is the hardware's.
type MSRBitmap [4096]byte

// Offsets of the four bitmaps and the MSR ranges they cover, SDM 25.6.9.
const (
	msrBitmapReadLow   = 0    // RDMSR of 0x00000000-0x00001FFF
	msrBitmapReadHigh  = 1024 // RDMSR of 0xC0000000-0xC0001FFF
	msrBitmapWriteLow  = 2048 // WRMSR of 0x00000000-0x00001FFF
	msrBitmapWriteHigh = 3072 // WRMSR of 0xC0000000-0xC0001FFF
	msrLowBase         = 0x0000_0000
	msrHighBase        = 0xC000_0000
	msrRangeLen        = 0x2000
)

// msrBit returns the byte offset (within the read bitmap; add 2048 for the
// write bitmap) and bit of msr, or ok=false if the MSR is not covered.
func msrBit(msr uint32) (off int, bit uint8, ok bool) {
	switch {
	case msr-msrLowBase < msrRangeLen:
		return msrBitmapReadLow + int(msr-msrLowBase)/8, uint8(msr % 8), true
	case msr-msrHighBase < msrRangeLen:
		return msrBitmapReadHigh + int(msr-msrHighBase)/8, uint8(msr % 8), true
	}
	return 0, 0, false
}

// InterceptAll makes every RDMSR and WRMSR exit.
func (b *MSRBitmap) InterceptAll() {
	for i := range b {
		b[i] = 0xFF
	}
}

// SetIntercept chooses whether RDMSR and WRMSR of msr exit. It fails for an
// MSR outside the bitmap's ranges, which always exits.
func (b *MSRBitmap) SetIntercept(msr uint32, read, write bool) error {
	off, bit, ok := msrBit(msr)
	if !ok {
		return fmt.Errorf("vmx: MSR %#x is outside the MSR bitmap and always exits", msr)
	}
	set := func(i int, on bool) {
		if on {
			b[i] |= 1 << bit
		} else {
			b[i] &^= 1 << bit
		}
	}
	set(off, read)
	set(off+msrBitmapWriteLow, write)
	return nil
}

// Intercepts reports whether RDMSR and WRMSR of msr exit.
func (b *MSRBitmap) Intercepts(msr uint32) (read, write bool) {
	off, bit, ok := msrBit(msr)
	if !ok {
		return true, true
	}
	return b[off]>>bit&1 != 0, b[off+msrBitmapWriteLow]>>bit&1 != 0
}

// IOBitmaps are I/O bitmaps A (ports 0x0000-0x7FFF) and B (0x8000-0xFFFF),
// SDM 25.6.4: a set bit makes an access to that port exit. Each points to a
// caller-provided 4 KiB page.
type IOBitmaps struct {
	A, B *[4096]byte
}

func (io IOBitmaps) byteOf(port uint16) *byte {
	if port < 0x8000 {
		return &io.A[port/8]
	}
	return &io.B[(port-0x8000)/8]
}

// InterceptAll makes every port exit.
func (io IOBitmaps) InterceptAll() {
	for i := range io.A {
		io.A[i], io.B[i] = 0xFF, 0xFF
	}
}

// SetIntercept sets or clears the bits of ports [port, port+count); the
// range may not wrap past 0xFFFF.
func (io IOBitmaps) SetIntercept(port uint16, count int, on bool) error {
	if count < 0 || int(port)+count > 0x10000 {
		return fmt.Errorf("vmx: I/O bitmap range %#x+%d outside the port space", port, count)
	}
	for i := 0; i < count; i++ {
		p := port + uint16(i)
		if on {
			*io.byteOf(p) |= 1 << (p % 8)
		} else {
			*io.byteOf(p) &^= 1 << (p % 8)
		}
	}
	return nil
}

// Intercepts reports whether an access of size bytes at port exits: if any
// byte's bit is set, or if the access wraps around the port space (SDM
// 26.1.3).
func (io IOBitmaps) Intercepts(port uint16, size int) bool {
	if size <= 0 || int(port)+size > 0x10000 {
		return true
	}
	for i := 0; i < size; i++ {
		p := port + uint16(i)
		if *io.byteOf(p)>>(p%8)&1 != 0 {
			return true
		}
	}
	return false
}
