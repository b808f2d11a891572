package vmm

import (
	"testing"
	"unsafe"
)

func TestFXArea(t *testing.T) {
	var areas [3]struct {
		pad byte
		FXArea
	}
	for i := range areas {
		a := &areas[i].FXArea
		a.Reset()
		img := a.Image()
		if len(img) != 512 || uintptr(unsafe.Pointer(&img[0]))%16 != 0 {
			t.Fatalf("image %d: len %d at %p", i, len(img), &img[0])
		}
		if img[0] != 0x7F || img[1] != 0x03 || img[24] != 0x80 || img[25] != 0x1F || img[2] != 0 {
			t.Errorf("reset image %d: FCW %#x%02x MXCSR %#x%02x", i, img[1], img[0], img[25], img[24])
		}
	}
}
