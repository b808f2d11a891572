package bootinfo

import (
	"testing"
)

// checkInfo asserts the invariants Parse promises whenever it succeeds.
func checkInfo(t *testing.T, in *Info) {
	t.Helper()
	for i, r := range in.MemoryMap() {
		if r.Start >= r.End {
			t.Fatalf("empty range %+v", r)
		}
		if i > 0 {
			p := in.MemMap[i-1]
			if p.End > r.Start || (p.End == r.Start && p.Type == r.Type) {
				t.Fatalf("ranges %+v %+v overlap or are unmerged", p, r)
			}
		}
		if r.Type < MemAvailable || r.Type > MemBad {
			t.Fatalf("range %+v has an unnormalised type", r)
		}
	}
	for _, m := range in.ModuleList() {
		if m.End < m.Start {
			t.Fatalf("module %+v ends before it starts", m)
		}
	}
	for _, o := range in.Occupied() {
		if o.End < o.Start {
			t.Fatalf("occupied range %+v is inverted", o)
		}
	}
}

// fuzzMem places data at memBase in 64 KiB of memory, so pointers inside it may point back
// into it.
func fuzzMem(data []byte) *fakeMem {
	m := newMem()
	copy(m.b, data)
	return m
}

func FuzzMultiboot1(f *testing.F) {
	m := newMem()
	mb1(m, "console=ttyS0", []Module{{Start: 0x20000, End: 0x20100}}, []string{"m"},
		[]e820{{0, 0x9fc00, 1}, {0x100000, 0x100000, 1}, {0x9f000, 0x2000, 2}}, 20, "GRUB")
	f.Add(m.b[:0x400])
	m2 := newMem()
	m2.put32(memBase+mb1Flags, mb1FlagMem|mb1FlagMmap)
	f.Add(m2.b[:0x80])
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Info
		if err := Parse(fuzzMem(data), MagicMultiboot1, memBase, &in); err == nil {
			checkInfo(t, &in)
		}
	})
}

func FuzzMultiboot2(f *testing.F) {
	var w mb2Builder
	w.tag(mb2TagCmdline, []byte("selftest\x00"))
	w.tag(mb2TagModule, append(le32s(0x1000, 0x2000), "m\x00"...))
	w.tag(mb2TagMemInfo, le32s(639, 1024))
	w.tag(mb2TagMmap, mmapTag(24, 0, []e820{{0, 0x9fc00, 1}, {0x9f000, 0x2000, 2}}))
	w.tag(mb2TagACPIOld, make([]byte, 20))
	w.tag(mb2TagEnd, nil)
	f.Add(w.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Info
		if err := Parse(fuzzMem(data), MagicMultiboot2, memBase, &in); err == nil {
			checkInfo(t, &in)
			if in.RSDPLen != 0 && (in.RSDPLen < rsdpV1Len || in.RSDPLen > MaxRSDP) {
				t.Fatalf("RSDP length %d", in.RSDPLen)
			}
		}
	})
}
