package pmem

import (
	"encoding/binary"
	"testing"
)

// FuzzInit feeds arbitrary usable and reserved ranges (they come from firmware) and checks that
// every frame handed out lies inside a usable range, above 1 MiB, outside every reserved range
// and the bitmap, and that exactly TotalFrames frames are handed out.
func FuzzInit(f *testing.F) {
	seed := func(rs ...uint64) []byte {
		var b []byte
		for _, r := range rs {
			b = binary.LittleEndian.AppendUint64(b, r)
		}
		return b
	}
	f.Add(seed(0, 0x9FC00, MiB, 3*MiB), seed(2*MiB, 2*MiB+10))
	f.Add(seed(MiB+1, 4*MiB-1, 3*MiB, 5*MiB), seed(0, MiB+FrameSize))
	f.Fuzz(func(t *testing.T, u, r []byte) {
		ranges := func(b []byte) []Range {
			var out []Range
			for len(b) >= 16 && len(out) < 8 {
				// Keep ranges inside a small window so the frames can be enumerated.
				s := binary.LittleEndian.Uint64(b) % (6 * MiB)
				e := binary.LittleEndian.Uint64(b[8:]) % (6 * MiB)
				out = append(out, Range{s, e})
				b = b[16:]
			}
			return out
		}
		usable, reserved := ranges(u), ranges(r)
		m := &fakeMem{base: 0, b: make([]byte, 6*MiB)}
		var a Allocator
		if err := a.Init(m, usable, reserved); err != nil {
			return
		}
		bm := a.Bitmap()
		for i := uint64(0); ; i++ {
			pa, err := a.Alloc(m)
			if err == ErrOutOfMemory {
				if i != a.TotalFrames() {
					t.Fatalf("handed out %d frames, TotalFrames %d", i, a.TotalFrames())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			in := false
			for _, u := range usable {
				if u.Start <= pa && pa+FrameSize <= u.End {
					in = true
				}
			}
			for _, x := range append(reserved, bm) {
				if x.Start < pa+FrameSize && pa < x.End {
					in = false
				}
			}
			if !in || pa < LowMemoryEnd {
				t.Fatalf("frame %#x is not usable (usable %#x, reserved %#x, bitmap %#x)", pa, usable, reserved, bm)
			}
		}
	})
}
