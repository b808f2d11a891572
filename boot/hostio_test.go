package boot

import (
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"

	"hv/boot/bootinfo"
)

// TestMMIOAccess runs the access stubs on ordinary memory: each touches
// exactly its width at the offset.
func TestMMIOAccess(t *testing.T) {
	var buf [16]byte
	m := MMIO{base: uint64(uintptr(unsafe.Pointer(&buf[0]))), size: uint64(len(buf))}
	m.Write32(4, 0x11223344)
	m.Write16(10, 0xA1B2)
	m.Write8(15, 0x5C)
	want := [16]byte{4: 0x44, 5: 0x33, 6: 0x22, 7: 0x11, 10: 0xB2, 11: 0xA1, 15: 0x5C}
	if buf != want {
		t.Errorf("memory % x, want % x", buf, want)
	}
	if got := m.Read32(4); got != 0x11223344 {
		t.Errorf("Read32 = %#x", got)
	}
	if got := m.Read16(10); got != 0xA1B2 {
		t.Errorf("Read16 = %#x", got)
	}
	if got := m.Read8(15); got != 0x5C {
		t.Errorf("Read8 = %#x", got)
	}
	binary.LittleEndian.PutUint32(buf[8:], 0xDEADBEEF)
	if got := m.Read16(8); got != 0xBEEF {
		t.Errorf("Read16 of a dword = %#x", got)
	}
	for _, bad := range []func(){
		func() { m.Read32(14) },    // crosses the end
		func() { m.Read16(3) },     // misaligned
		func() { m.Write8(16, 0) }, // outside
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "mmio") {
					t.Errorf("bad access: recovered %v, want an mmio panic", r)
				}
			}()
			bad()
		}()
	}
}

func TestMapMMIO(t *testing.T) {
	oldInfo, oldTop := bootInfo, physTop
	defer func() { bootInfo, physTop = oldInfo, oldTop }()
	bootInfo = bootinfo.Info{}
	bootInfo.MemMap[0] = bootinfo.MemRange{Start: 0, End: 0x9FC00, Type: bootinfo.MemAvailable}
	bootInfo.MemMap[1] = bootinfo.MemRange{Start: 0x100000, End: 0x3FFE0000, Type: bootinfo.MemAvailable}
	bootInfo.MemMap[2] = bootinfo.MemRange{Start: 0xFFFC0000, End: 0x100000000, Type: bootinfo.MemReserved}
	bootInfo.NMemMap = 3
	physTop = 0x3FFE0000
	for _, tc := range []struct {
		pa, size uint64
		err      string
	}{
		{0xFE000000, 0x4000, ""},
		{0xFEBD1000, 0x1000, ""},
		{0xFFFFF000, 0x1000, ""}, // reserved, not RAM: allowed
		{0x3FF00000, 0x1000, "overlaps RAM"},
		{0x3FFDF000, 0x2000, "overlaps RAM"},
		{0, 0x1000, "outside the identity map"},
		{0xFFFFF000, 0x2000, "outside the identity map"},
		{0x1_0000_0000, 0x1000, "outside the identity map"},
		{0xFE000000, 0, "outside the identity map"},
		{^uint64(0) - 0xFFF, 0x2000, "outside the identity map"},
	} {
		m, err := MapMMIO(tc.pa, tc.size)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("MapMMIO(%#x, %#x): %v", tc.pa, tc.size, err)
		case tc.err == "" && (m.Base() != tc.pa || m.Size() != tc.size):
			t.Errorf("MapMMIO(%#x, %#x) = %#x+%#x", tc.pa, tc.size, m.Base(), m.Size())
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("MapMMIO(%#x, %#x): %v, want %q", tc.pa, tc.size, err, tc.err)
		}
	}
}
