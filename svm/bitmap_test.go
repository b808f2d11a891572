package svm

import (
	"errors"
	"testing"
)

func TestIOPMSizes(t *testing.T) {
	// APM 15.10.1: 12 KiB, 64K+3 bits; APM 15.11: 8 KiB.
	if IOPMSize != 12*1024 || iopmBits != 65539 {
		t.Errorf("IOPM size %d bytes, %d bits; want 12288, 65539", IOPMSize, iopmBits)
	}
	if MSRPMSize != 8*1024 {
		t.Errorf("MSRPM size %d, want 8192", MSRPMSize)
	}
}

func TestIOPMLayout(t *testing.T) {
	var m IOPM
	if err := m.Intercept(0x3f8, 8); err != nil {
		t.Fatal(err)
	}
	// Port n is bit n%8 of byte n/8: 3F8h-3FFh fill byte 7Fh.
	if m[0x7f] != 0xff || m[0x7e] != 0 || m[0x80] != 0 {
		t.Errorf("bytes 7E-80h = %#x %#x %#x, want 0 ff 0", m[0x7e], m[0x7f], m[0x80])
	}
	// The three bits past port FFFFh are set by any change.
	if m[0x2000] != 0x07 {
		t.Errorf("byte 2000h = %#x, want 0x07", m[0x2000])
	}
	if err := m.Allow(0x3fa, 1); err != nil {
		t.Fatal(err)
	}
	if m[0x7f] != 0xfb {
		t.Errorf("byte 7Fh after allowing 3FAh = %#x, want 0xfb", m[0x7f])
	}
}

func TestIOPMIntercepts(t *testing.T) {
	var m IOPM
	m.InterceptAll()
	if err := m.Allow(0x3f8, 8); err != nil {
		t.Fatal(err)
	}
	if err := m.Allow(0xfffe, 2); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		port uint16
		size int
		want bool
	}{
		{0x3f8, 1, false},
		{0x3f8, 4, false},
		{0x3fc, 4, false},
		{0x3fd, 4, true}, // runs into 400h
		{0x3f7, 2, true}, // starts in 3F7h
		{0x3f7, 1, true},
		{0x400, 1, true},
		{0x80, 1, true},
		{0xfffe, 2, false},
		{0xffff, 1, false},
		{0xffff, 2, true}, // runs past FFFFh
		{0xfffe, 4, true},
	}
	for _, tt := range tests {
		if got := m.Intercepts(tt.port, tt.size); got != tt.want {
			t.Errorf("Intercepts(%#x, %d) = %v, want %v", tt.port, tt.size, got, tt.want)
		}
	}
}

func TestIOPMWrapBitsStaySet(t *testing.T) {
	var m IOPM // zero: everything allowed, as a careless caller might start
	if err := m.Allow(0, 0x10000); err != nil {
		t.Fatal(err)
	}
	if m.Intercepts(0xffff, 1) {
		t.Error("port FFFFh byte access intercepted after allowing it")
	}
	if !m.Intercepts(0xffff, 2) || !m.Intercepts(0xfffd, 4) {
		t.Error("access running past FFFFh not intercepted")
	}
}

func TestIOPMRange(t *testing.T) {
	var m IOPM
	for _, tt := range []struct {
		first uint16
		count int
	}{
		{0xffff, 2}, {0, 0}, {0, -1}, {0, 0x10001}, {0x8000, 0x8001},
	} {
		if err := m.Allow(tt.first, tt.count); !errors.Is(err, ErrRange) {
			t.Errorf("Allow(%#x, %d) error = %v, want ErrRange", tt.first, tt.count, err)
		}
		if err := m.Intercept(tt.first, tt.count); !errors.Is(err, ErrRange) {
			t.Errorf("Intercept(%#x, %d) error = %v, want ErrRange", tt.first, tt.count, err)
		}
	}
	if m != (IOPM{}) {
		t.Error("a refused call changed the map")
	}
}

func TestMSRPMBit(t *testing.T) {
	// APM 15.11: the ranges start at byte 000h, 800h and 1000h; MSR m of a
	// range has its read bit at 2*(m - range base) and its write bit next.
	tests := []struct {
		msr uint32
		bit int
		ok  bool
	}{
		{0x0000_0000, 0, true},
		{0x0000_0010, 0x20, true},             // TSC
		{0x0000_0174, 0x2e8, true},            // SYSENTER_CS
		{0x0000_1fff, 0x3ffe, true},           // last of range 0
		{0x0000_2000, 0, false},               // first uncovered
		{0x4000_0000, 0, false},               // hypervisor range
		{0xc000_0000, 0x800 * 8, true},        // first of range 1
		{0xc000_0080, 0x800*8 + 0x100, true},  // EFER
		{0xc000_0100, 0x800*8 + 0x200, true},  // FS_BASE
		{0xc000_1fff, 0x800*8 + 0x3ffe, true}, // last of range 1
		{0xc000_2000, 0, false},
		{0xc001_0000, 0x1000 * 8, true},        // first of range 2
		{0xc001_0114, 0x1000*8 + 0x228, true},  // VM_CR
		{0xc001_0117, 0x1000*8 + 0x22e, true},  // VM_HSAVE_PA
		{0xc001_1fff, 0x1000*8 + 0x3ffe, true}, // last of range 2
		{0xc001_2000, 0, false},
		{0xffff_ffff, 0, false},
		{0xbfff_ffff, 0, false},
	}
	for _, tt := range tests {
		bit, ok := MSRPMBit(tt.msr)
		if bit != tt.bit || ok != tt.ok {
			t.Errorf("MSRPMBit(%#x) = %#x, %v; want %#x, %v", tt.msr, bit, ok, tt.bit, tt.ok)
		}
	}
}

func TestMSRPM(t *testing.T) {
	var m MSRPM
	m.InterceptAll()
	if err := m.Allow(0xc000_0100, MSRReadWrite); err != nil { // FS_BASE
		t.Fatal(err)
	}
	if err := m.Allow(0x10, MSRRead); err != nil { // TSC: reads pass, writes exit
		t.Fatal(err)
	}
	// EFER and VM_CR stay intercepted; the bytes are where the manual says.
	if m[0x840] != 0xfc {
		t.Errorf("byte 840h (FS_BASE) = %#x, want 0xfc", m[0x840])
	}
	if m[0x4] != 0xfe {
		t.Errorf("byte 4h (TSC) = %#x, want 0xfe", m[0x4])
	}
	tests := []struct {
		msr   uint32
		write bool
		want  bool
	}{
		{0xc000_0100, false, false},
		{0xc000_0100, true, false},
		{0x10, false, false},
		{0x10, true, true},
		{0xc000_0080, false, true},
		{0xc001_0114, true, true},
		{0x4000_0000, false, true}, // outside the map: always exits
	}
	for _, tt := range tests {
		if got := m.Intercepts(tt.msr, tt.write); got != tt.want {
			t.Errorf("Intercepts(%#x, write=%v) = %v, want %v", tt.msr, tt.write, got, tt.want)
		}
	}
	if err := m.Intercept(0x10, MSRRead); err != nil {
		t.Fatal(err)
	}
	if !m.Intercepts(0x10, false) {
		t.Error("TSC read not intercepted after Intercept")
	}
}

func TestMSRPMUncovered(t *testing.T) {
	var m MSRPM // all allowed
	for _, msr := range []uint32{0x2000, 0x4000_0000, 0xc000_2000, 0xc001_2000, 0xffff_ffff} {
		if !m.Intercepts(msr, false) || !m.Intercepts(msr, true) {
			t.Errorf("uncovered MSR %#x not reported as intercepted", msr)
		}
		if err := m.Allow(msr, MSRReadWrite); !errors.Is(err, ErrRange) {
			t.Errorf("Allow(%#x) error = %v, want ErrRange", msr, err)
		}
	}
	if m != (MSRPM{}) {
		t.Error("a refused call changed the map")
	}
}

// FuzzIOPM compares the bitmap with a plain per-port model over a sequence
// of Allow/Intercept calls decoded from the fuzz input.
func FuzzIOPM(f *testing.F) {
	f.Add([]byte{0, 0x03, 0xf8, 8, 1, 0x03, 0xfa, 1})
	f.Add([]byte{1, 0xff, 0xff, 1, 0, 0xff, 0xfe, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var m IOPM
		var model [0x10000]bool
		changed := false // any successful call also sets the bits past FFFFh
		for len(ops) >= 4 {
			intercept := ops[0]&1 != 0
			first := uint16(ops[1])<<8 | uint16(ops[2])
			count := int(ops[3])
			ops = ops[4:]
			var err error
			if intercept {
				err = m.Intercept(first, count)
			} else {
				err = m.Allow(first, count)
			}
			if (err != nil) != (count == 0 || int(first)+count > 0x10000) {
				t.Fatalf("first %#x count %d: error %v", first, count, err)
			}
			if err == nil {
				changed = true
				for p := int(first); p < int(first)+count; p++ {
					model[p] = intercept
				}
			}
		}
		for p := 0; p < 0x10000; p++ {
			for _, size := range []int{1, 2, 4} {
				want := changed && p+size > 0x10000
				for i := 0; i < size && p+i < 0x10000; i++ {
					want = want || model[p+i]
				}
				if got := m.Intercepts(uint16(p), size); got != want {
					t.Fatalf("Intercepts(%#x, %d) = %v, model says %v", p, size, got, want)
				}
			}
		}
	})
}
