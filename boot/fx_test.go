package boot

import (
	"testing"
	"unsafe"
)

// TestCopyFXStateAcrossAlignments: a clone must see its parent's MXCSR and
// FCW whatever the offsets of the two FXSAVE images inside their threads.
func TestCopyFXStateAcrossAlignments(t *testing.T) {
	if unsafe.Sizeof(thread{})%16 == 0 {
		t.Log("thread size is a multiple of 16: offsets agree, the test still checks the copy")
	}
	for i := 0; i < 4; i++ {
		src, dst := &threads[i], &threads[i+1]
		initFX(src)
		o := fxOffset(src)
		le32put(src.fxArea[o+24:], 0x1F80|0x6000) // MXCSR with round-toward-zero
		src.fxArea[o], src.fxArea[o+1] = 0x7F, 0x03
		copyFXState(dst, src)
		d := fxOffset(dst)
		if got := le64(dst.fxArea[d+24:d+32]) & 0xFFFFFFFF; got != 0x7F80 {
			t.Errorf("thread %d -> %d (offsets %d, %d): MXCSR %#x, want 0x7f80", i, i+1, o, d, got)
		}
		if dst.fxArea[d] != 0x7F || dst.fxArea[d+1] != 0x03 {
			t.Errorf("thread %d -> %d: FCW %#x%02x", i, i+1, dst.fxArea[d+1], dst.fxArea[d])
		}
		if addrOf(&dst.fxArea[d])%16 != 0 {
			t.Errorf("thread %d: image not 16-byte aligned", i+1)
		}
	}
}
