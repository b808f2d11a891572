package vmm

import "unsafe"

// FXArea holds an FXSAVE image (512 bytes, Intel SDM vol. 1 10.5.1) at the
// 16-byte boundary FXSAVE and FXRSTOR require, inside a Go value whose own
// alignment is only 8. Backends keep the guest's x87/SSE state in one and
// switch it around every entry.
type FXArea struct {
	buf [512 + 16]byte
}

// Image returns the 512-byte, 16-byte-aligned image.
func (a *FXArea) Image() []byte {
	off := (16 - uintptr(unsafe.Pointer(&a.buf[0]))%16) % 16
	return a.buf[off : off+512]
}

// Reset sets the power-on state a guest expects: everything zero but FCW
// 0x037F and MXCSR 0x1F80 (all exceptions masked).
func (a *FXArea) Reset() {
	fx := a.Image()
	clear(fx)
	fx[0], fx[1] = 0x7F, 0x03
	fx[24], fx[25] = 0x80, 0x1F
}
