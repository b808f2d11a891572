package vmx

import "testing"

func TestMSRBitmapLayout(t *testing.T) {
	// Byte and bit positions from SDM 25.6.9: read-low at 0, read-high at
	// 1024, write-low at 2048, write-high at 3072; bit n%8 of byte n/8.
	tests := []struct {
		msr               uint32
		readOff, writeOff int
		bit               uint8
	}{
		{0x0000_0000, 0, 2048, 0},
		{0x0000_0010, 2, 2050, 0}, // IA32_TIME_STAMP_COUNTER
		{0x0000_001B, 3, 2051, 3}, // IA32_APIC_BASE
		{0x0000_1FFF, 1023, 3071, 7},
		{0xC000_0080, 1024 + 16, 3072 + 16, 0}, // IA32_EFER
		{0xC000_0102, 1024 + 32, 3072 + 32, 2}, // IA32_KERNEL_GS_BASE
		{0xC000_1FFF, 2047, 4095, 7},
	}
	for _, tt := range tests {
		var b MSRBitmap
		if err := b.SetIntercept(tt.msr, true, false); err != nil {
			t.Fatal(err)
		}
		if b[tt.readOff] != 1<<tt.bit {
			t.Errorf("MSR %#x read: byte %d = %#x, want %#x", tt.msr, tt.readOff, b[tt.readOff], 1<<tt.bit)
		}
		if b[tt.writeOff] != 0 {
			t.Errorf("MSR %#x: write bit set for a read-only intercept", tt.msr)
		}
		if err := b.SetIntercept(tt.msr, false, true); err != nil {
			t.Fatal(err)
		}
		if b[tt.readOff] != 0 || b[tt.writeOff] != 1<<tt.bit {
			t.Errorf("MSR %#x write: bytes %#x/%#x", tt.msr, b[tt.readOff], b[tt.writeOff])
		}
		if r, w := b.Intercepts(tt.msr); r || !w {
			t.Errorf("MSR %#x Intercepts = %v, %v", tt.msr, r, w)
		}
		set := 0
		for _, x := range b {
			if x != 0 {
				set++
			}
		}
		if set != 1 {
			t.Errorf("MSR %#x: %d bytes touched, want 1", tt.msr, set)
		}
	}
}

func TestMSRBitmapOutOfRange(t *testing.T) {
	var b MSRBitmap
	for _, msr := range []uint32{0x2000, 0x4000_0000, 0xBFFF_FFFF, 0xC000_2000, 0xC001_0114, 0xFFFF_FFFF} {
		if err := b.SetIntercept(msr, false, false); err == nil {
			t.Errorf("SetIntercept(%#x) accepted an uncovered MSR", msr)
		}
		if r, w := b.Intercepts(msr); !r || !w {
			t.Errorf("uncovered MSR %#x does not exit", msr)
		}
	}
	b.InterceptAll()
	if r, w := b.Intercepts(0xC000_0080); !r || !w {
		t.Error("InterceptAll left EFER passed through")
	}
}

func TestIOBitmaps(t *testing.T) {
	var a, bb [4096]byte
	io := IOBitmaps{A: &a, B: &bb}
	if err := io.SetIntercept(0x3F8, 8, true); err != nil { // COM1
		t.Fatal(err)
	}
	if err := io.SetIntercept(0xCFC, 4, true); err != nil { // PCI config data
		t.Fatal(err)
	}
	if err := io.SetIntercept(0xFFFF, 1, true); err != nil {
		t.Fatal(err)
	}
	// Byte positions, SDM 25.6.4: port p is bit p%8 of byte p/8 of A (p < 0x8000), else of B.
	if a[0x3F8/8] != 0xFF || a[0xCFC/8] != 0xF0 || bb[0xFFF] != 0x80 {
		t.Errorf("bitmap bytes %#x %#x %#x", a[0x3F8/8], a[0xCFC/8], bb[0xFFF])
	}
	tests := []struct {
		port uint16
		size int
		want bool
	}{
		{0x3F8, 1, true},
		{0x3F7, 1, false},
		{0x3F6, 2, false},
		{0x3F7, 2, true}, // second byte is intercepted
		{0x3F7, 4, true},
		{0x400, 4, false},
		{0xCF8, 4, false},
		{0xCFB, 2, true},
		{0x7FFF, 2, false}, // crosses from A to B, neither set
		{0xFFFE, 1, false},
		{0xFFFF, 1, true},
		{0xFFFE, 4, true}, // wraps: always exits
		{0x80, 0, true},
	}
	for _, tt := range tests {
		if got := io.Intercepts(tt.port, tt.size); got != tt.want {
			t.Errorf("Intercepts(%#x, %d) = %v, want %v", tt.port, tt.size, got, tt.want)
		}
	}
	if err := io.SetIntercept(0xFFFF, 2, true); err == nil {
		t.Error("wrapping SetIntercept accepted")
	}
	if err := io.SetIntercept(0x3F8, 8, false); err != nil || io.Intercepts(0x3F8, 1) {
		t.Errorf("clear: %v", err)
	}
	io.InterceptAll()
	if !io.Intercepts(0x1234, 1) || !io.Intercepts(0x9000, 1) {
		t.Error("InterceptAll left ports open")
	}
}
