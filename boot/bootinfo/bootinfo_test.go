package bootinfo

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeMem is physical memory [base, base+len(b)).
type fakeMem struct {
	base uint64
	b    []byte
}

func (m *fakeMem) Bytes(addr, n uint64) ([]byte, bool) {
	if addr < m.base || n > uint64(len(m.b)) || addr-m.base > uint64(len(m.b))-n {
		return nil, false
	}
	off := addr - m.base
	return m.b[off : off+n], true
}

func (m *fakeMem) put32(addr uint64, v uint32) { binary.LittleEndian.PutUint32(m.b[addr-m.base:], v) }
func (m *fakeMem) put64(addr uint64, v uint64) { binary.LittleEndian.PutUint64(m.b[addr-m.base:], v) }
func (m *fakeMem) putStr(addr uint64, s string) {
	copy(m.b[addr-m.base:], s)
	m.b[addr-m.base+uint64(len(s))] = 0
}

const memBase = 0x10000

func newMem() *fakeMem { return &fakeMem{base: memBase, b: make([]byte, 0x10000)} }

type e820 struct {
	base, n uint64
	typ     uint32
}

// mb1 writes a Multiboot-1 structure at memBase with the given pieces; entrySize is the mmap
// entry size field (20 normally, larger to test that the size field is honoured).
func mb1(m *fakeMem, cmdline string, mods []Module, modStrs []string, mmap []e820, entrySize uint32, loader string) uint64 {
	info := uint64(memBase)
	var flags uint32
	next := info + 0x200
	if cmdline != "" {
		flags |= mb1FlagCmdline
		m.put32(info+mb1Cmdline, uint32(next))
		m.putStr(next, cmdline)
		next += uint64(len(cmdline)) + 1
	}
	if mods != nil {
		flags |= mb1FlagMods
		tab := next
		next += uint64(len(mods)) * mb1ModSize
		m.put32(info+mb1ModsCount, uint32(len(mods)))
		m.put32(info+mb1ModsAddr, uint32(tab))
		for i, mod := range mods {
			e := tab + uint64(i)*mb1ModSize
			m.put32(e, uint32(mod.Start))
			m.put32(e+4, uint32(mod.End))
			if modStrs[i] != "" {
				m.put32(e+8, uint32(next))
				m.putStr(next, modStrs[i])
				next += uint64(len(modStrs[i])) + 1
			}
		}
	}
	if mmap != nil {
		flags |= mb1FlagMmap
		start := next
		for _, e := range mmap {
			m.put32(next, entrySize)
			m.put64(next+4, e.base)
			m.put64(next+12, e.n)
			m.put32(next+20, e.typ)
			next += 4 + uint64(entrySize)
		}
		m.put32(info+mb1MmapAddr, uint32(start))
		m.put32(info+mb1MmapLength, uint32(next-start))
	}
	if loader != "" {
		flags |= mb1FlagLoaderName
		m.put32(info+mb1BootLoaderName, uint32(next))
		m.putStr(next, loader)
	}
	m.put32(info+mb1Flags, flags)
	return info
}

var cmpInfo = cmp.Options{cmpopts.IgnoreUnexported(Info{})}

func TestMultiboot1(t *testing.T) {
	m := newMem()
	addr := mb1(m, "console=ttyS0 selftest",
		[]Module{{Start: 0x200000, End: 0x201234}, {Start: 0x300000, End: 0x300000}},
		[]string{"guest.elf mem=64", ""},
		[]e820{
			{0, 0x9fc00, 1},
			{0x9fc00, 0x400, 2},
			{0xf0000, 0x10000, 2},
			{0x100000, 0x7ee0000, 1},
			{0x7fe0000, 0x20000, 2},
			{0xfffc0000, 0x40000, 2},
		}, 24, "GRUB 2.06")
	var in Info
	if err := Parse(m, MagicMultiboot1, addr, &in); err != nil {
		t.Fatal(err)
	}
	if got, want := string(in.CmdlineBytes()), "console=ttyS0 selftest"; got != want {
		t.Errorf("cmdline %q, want %q", got, want)
	}
	if got, want := string(in.LoaderNameBytes()), "GRUB 2.06"; got != want {
		t.Errorf("loader %q, want %q", got, want)
	}
	wantMap := []MemRange{
		{0, 0x9fc00, MemAvailable},
		{0x9fc00, 0xa0000, MemReserved},
		{0xf0000, 0x100000, MemReserved},
		{0x100000, 0x7fe0000, MemAvailable},
		{0x7fe0000, 0x8000000, MemReserved},
		{0xfffc0000, 0x100000000, MemReserved},
	}
	if d := cmp.Diff(wantMap, in.MemoryMap()); d != "" {
		t.Errorf("memory map (-want +got):\n%s", d)
	}
	if in.NModules != 2 {
		t.Fatalf("%d modules, want 2", in.NModules)
	}
	if got := string(in.Modules[0].CmdlineBytes()); got != "guest.elf mem=64" {
		t.Errorf("module cmdline %q", got)
	}
	if in.Modules[0].Start != 0x200000 || in.Modules[0].End != 0x201234 || in.Modules[1].CmdlineLen != 0 {
		t.Errorf("modules %+v", in.Modules[:2])
	}
	if in.RSDPBytes() != nil {
		t.Errorf("Multiboot-1 has no RSDP, got %x", in.RSDPBytes())
	}
	// Everything Parse read must be listed as occupied, so a frame allocator keeps it.
	for _, r := range []PhysRange{{addr, addr + mb1InfoSize}, {0x200000, 0x201234}} {
		if !covered(in.Occupied(), r) {
			t.Errorf("range %#x-%#x not in Occupied %#x", r.Start, r.End, in.Occupied())
		}
	}
	cmdAddr := uint64(binary.LittleEndian.Uint32(m.b[mb1Cmdline:]))
	if !covered(in.Occupied(), PhysRange{cmdAddr, cmdAddr + uint64(len("console=ttyS0 selftest")) + 1}) {
		t.Errorf("command line not in Occupied %#x", in.Occupied())
	}
}

func covered(rs []PhysRange, r PhysRange) bool {
	for _, o := range rs {
		if o.Start <= r.Start && r.End <= o.End {
			return true
		}
	}
	return false
}

func TestMultiboot1MemSizesOnly(t *testing.T) {
	m := newMem()
	m.put32(memBase+mb1Flags, mb1FlagMem)
	m.put32(memBase+mb1MemLower, 639)
	m.put32(memBase+mb1MemUpper, 130048)
	var in Info
	if err := Parse(m, MagicMultiboot1, memBase, &in); err != nil {
		t.Fatal(err)
	}
	want := []MemRange{{0, 639 * 1024, MemAvailable}, {1 << 20, 1<<20 + 130048*1024, MemAvailable}}
	if d := cmp.Diff(want, in.MemoryMap()); d != "" {
		t.Errorf("memory map (-want +got):\n%s", d)
	}
}

func TestMultiboot1Errors(t *testing.T) {
	tests := []struct {
		name  string
		build func(m *fakeMem) uint64
		want  error
	}{
		{"no memory information", func(m *fakeMem) uint64 { return memBase }, ErrNoMemoryMap},
		{"info outside memory", func(m *fakeMem) uint64 { return 0x1000 }, ErrUnreadable},
		{"info at end of memory", func(m *fakeMem) uint64 { return memBase + 0x10000 - 8 }, ErrUnreadable},
		{"cmdline pointer outside memory", func(m *fakeMem) uint64 {
			m.put32(memBase+mb1Flags, mb1FlagCmdline)
			m.put32(memBase+mb1Cmdline, 0xdead0000)
			return memBase
		}, ErrUnreadable},
		{"cmdline without NUL up to end of memory", func(m *fakeMem) uint64 {
			m.put32(memBase+mb1Flags, mb1FlagCmdline)
			m.put32(memBase+mb1Cmdline, memBase+0x10000-16)
			for i := range 16 {
				m.b[0x10000-16+i] = 'x'
			}
			return memBase
		}, ErrUnreadable},
		{"cmdline too long", func(m *fakeMem) uint64 {
			m.put32(memBase+mb1Flags, mb1FlagCmdline)
			m.put32(memBase+mb1Cmdline, memBase+0x1000)
			for i := range MaxCmdline + 1 {
				m.b[0x1000+i] = 'a'
			}
			return memBase
		}, ErrCmdlineTooLong},
		{"too many modules", func(m *fakeMem) uint64 {
			m.put32(memBase+mb1Flags, mb1FlagMods)
			m.put32(memBase+mb1ModsCount, MaxModules+1)
			m.put32(memBase+mb1ModsAddr, memBase+0x100)
			return memBase
		}, ErrTooManyModules},
		{"module table outside memory", func(m *fakeMem) uint64 {
			m.put32(memBase+mb1Flags, mb1FlagMods)
			m.put32(memBase+mb1ModsCount, 2)
			m.put32(memBase+mb1ModsAddr, 0xfffffff8)
			return memBase
		}, ErrUnreadable},
		{"module end before start", func(m *fakeMem) uint64 {
			return mb1(m, "", []Module{{Start: 0x5000, End: 0x4000}}, []string{""}, nil, 20, "")
		}, ErrBadModule},
		{"mmap entry size too small", func(m *fakeMem) uint64 {
			return mb1(m, "", nil, nil, []e820{{0, 0x1000, 1}}, 16, "")
		}, ErrBadMemoryMapEntry},
		{"mmap entry truncated", func(m *fakeMem) uint64 {
			a := mb1(m, "", nil, nil, []e820{{0, 0x1000, 1}}, 20, "")
			m.put32(a+mb1MmapLength, 20)
			return a
		}, ErrMalformed},
		{"mmap huge entry size", func(m *fakeMem) uint64 {
			a := mb1(m, "", nil, nil, []e820{{0, 0x1000, 1}}, 20, "")
			m.put32(uint64(binary.LittleEndian.Uint32(m.b[mb1MmapAddr:])), 0xffffffff)
			return a
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem()
			addr := tt.build(m)
			var in Info
			if err := Parse(m, MagicMultiboot1, addr, &in); err != tt.want {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUnknownMagic(t *testing.T) {
	var in Info
	if err := Parse(newMem(), 0x12345678, memBase, &in); err != ErrUnknownMagic {
		t.Errorf("Parse = %v, want %v", err, ErrUnknownMagic)
	}
}

// mb2Builder appends Multiboot2 tags.
type mb2Builder struct{ b []byte }

func (w *mb2Builder) tag(typ uint32, body []byte) {
	size := 8 + len(body)
	t := binary.LittleEndian.AppendUint32(nil, typ)
	t = binary.LittleEndian.AppendUint32(t, uint32(size))
	t = append(t, body...)
	for len(t)%8 != 0 {
		t = append(t, 0xAA) // padding is not zero on purpose: it must be skipped
	}
	w.b = append(w.b, t...)
}

func (w *mb2Builder) bytes() []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(8+len(w.b)))
	out = binary.LittleEndian.AppendUint32(out, 0)
	return append(out, w.b...)
}

func le32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func mmapTag(entrySize uint32, version uint32, es []e820) []byte {
	body := le32s(entrySize, version)
	for _, e := range es {
		ent := make([]byte, entrySize)
		binary.LittleEndian.PutUint64(ent, e.base)
		binary.LittleEndian.PutUint64(ent[8:], e.n)
		binary.LittleEndian.PutUint32(ent[16:], e.typ)
		for i := 24; i < len(ent); i++ {
			ent[i] = 0xEE
		}
		body = append(body, ent...)
	}
	return body
}

func TestMultiboot2(t *testing.T) {
	rsdp1 := []byte("RSD PTR \x00OEMID \x00\x00\x10\x00\x00")
	rsdp2 := append([]byte("RSD PTR \x00OEMID \x02\x00\x10\x00\x00"), make([]byte, 16)...)
	rsdp2[20] = 36
	var w mb2Builder
	w.tag(mb2TagCmdline, []byte("selftest\x00"))
	w.tag(mb2TagLoaderName, []byte("GRUB 2.06\x00"))
	w.tag(99, []byte("unknown tag with odd size"))
	w.tag(mb2TagModule, append(le32s(0x400000, 0x480000), "vm0.cfg\x00"...))
	w.tag(mb2TagMemInfo, le32s(639, 523136))
	w.tag(mb2TagACPINew, rsdp2)
	w.tag(mb2TagACPIOld, rsdp1) // after the new one: must not replace it
	w.tag(mb2TagMmap, mmapTag(32, 1, []e820{
		{0x100000, 0x1ff00000, 1},
		{0, 0x9fc00, 1},
		{0x1000000, 0x100000, 5},      // bad RAM inside available: bad wins
		{0x9f000, 0x1000, 2},          // reserved overlapping the end of low memory
		{0x20000000, 0x10000, 3},      // ACPI tables
		{0x20010000, 0x10000, 0x1234}, // unknown type: reserved
		{0x20020000, 0x10000, 2},      // adjacent reserved: merged with the unknown type
	}))
	w.tag(mb2TagEnd, nil)
	m := newMem()
	copy(m.b[0x100:], w.bytes())
	var in Info
	if err := Parse(m, MagicMultiboot2, memBase+0x100, &in); err != nil {
		t.Fatal(err)
	}
	want := Info{
		Protocol:    2,
		MemLowerKiB: 639, MemUpperKiB: 523136, HasMemSizes: true,
		NMemMap: 6, CmdlineLen: 8, NModules: 1, LoaderNameLen: 9, RSDPLen: 36,
	}
	copy(want.MemMap[:], []MemRange{
		{0, 0x9f000, MemAvailable},
		{0x9f000, 0xa0000, MemReserved},
		{0x100000, 0x1000000, MemAvailable},
		{0x1000000, 0x1100000, MemBad},
		{0x1100000, 0x20000000, MemAvailable},
		{0x20000000, 0x20010000, MemACPIReclaimable},
	})
	want.NMemMap = 7
	want.MemMap[6] = MemRange{0x20010000, 0x20030000, MemReserved}
	copy(want.Cmdline[:], "selftest")
	copy(want.LoaderName[:], "GRUB 2.06")
	want.Modules[0] = Module{Start: 0x400000, End: 0x480000, CmdlineLen: 7}
	copy(want.Modules[0].Cmdline[:], "vm0.cfg")
	copy(want.RSDP[:], rsdp2)
	if d := cmp.Diff(&want, &in, cmpInfo); d != "" {
		t.Errorf("Info (-want +got):\n%s", d)
	}
	if !covered(in.Occupied(), PhysRange{memBase + 0x100, memBase + 0x100 + uint64(len(w.bytes()))}) ||
		!covered(in.Occupied(), PhysRange{0x400000, 0x480000}) {
		t.Errorf("Occupied %#x misses the information or the module", in.Occupied())
	}
}

func TestMultiboot2Errors(t *testing.T) {
	valid := func() *mb2Builder {
		var w mb2Builder
		w.tag(mb2TagMemInfo, le32s(639, 1024))
		return &w
	}
	tests := []struct {
		name  string
		bytes func() []byte
		addr  uint64
		want  error
	}{
		{"missing end tag", func() []byte { return valid().bytes() }, 0, ErrMalformed},
		{"tag size below header", func() []byte {
			w := valid()
			w.b = append(w.b, le32s(1, 4)...)
			return w.bytes()
		}, 0, ErrMalformed},
		{"tag beyond total size", func() []byte {
			w := valid()
			w.b = append(w.b, le32s(1, 4096)...)
			return w.bytes()
		}, 0, ErrMalformed},
		{"total size too small", func() []byte { return le32s(8, 0) }, 0, ErrMalformed},
		{"total size beyond memory", func() []byte { return le32s(0xfffffff0, 0) }, 0, ErrUnreadable},
		{"misaligned", func() []byte { w := valid(); w.tag(0, nil); return w.bytes() }, 4, ErrMisalignedInfo},
		{"short module tag", func() []byte { w := valid(); w.tag(mb2TagModule, le32s(1)); w.tag(0, nil); return w.bytes() }, 0, ErrMalformed},
		{"module end before start", func() []byte {
			w := valid()
			w.tag(mb2TagModule, le32s(0x2000, 0x1000))
			w.tag(0, nil)
			return w.bytes()
		}, 0, ErrBadModule},
		{"mmap entry too small", func() []byte {
			w := valid()
			w.tag(mb2TagMmap, le32s(16, 0, 0, 0, 0, 0))
			w.tag(0, nil)
			return w.bytes()
		}, 0, ErrBadMemoryMapEntry},
		{"mmap entry size not a multiple of 8", func() []byte {
			w := valid()
			w.tag(mb2TagMmap, le32s(28, 0, 0, 0, 0, 0, 0, 0, 0))
			w.tag(0, nil)
			return w.bytes()
		}, 0, ErrBadMemoryMapEntry},
		{"short RSDP", func() []byte { w := valid(); w.tag(mb2TagACPINew, []byte("RSD PTR ")); w.tag(0, nil); return w.bytes() }, 0, ErrMalformed},
		{"cmdline too long", func() []byte {
			w := valid()
			long := make([]byte, MaxCmdline+1)
			for i := range long {
				long[i] = 'a'
			}
			w.tag(mb2TagCmdline, long)
			w.tag(0, nil)
			return w.bytes()
		}, 0, ErrCmdlineTooLong},
		{"too many modules", func() []byte {
			w := valid()
			for range MaxModules + 1 {
				w.tag(mb2TagModule, le32s(0x1000, 0x2000))
			}
			w.tag(0, nil)
			return w.bytes()
		}, 0, ErrTooManyModules},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem()
			copy(m.b[0x100+tt.addr:], tt.bytes())
			var in Info
			if err := Parse(m, MagicMultiboot2, memBase+0x100+tt.addr, &in); err != tt.want {
				t.Errorf("Parse = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestNormaliseAgainstModel compares the memory map normalisation with a byte-granular model
// over small random maps.
func TestNormaliseAgainstModel(t *testing.T) {
	seed := uint64(1)
	rnd := func(n uint64) uint64 {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return seed % n
	}
	for iter := range 2000 {
		var in Info
		const span = 64
		var model [span]MemType
		n := int(rnd(12))
		for range n {
			s, l, typ := rnd(span), rnd(20), MemType(rnd(7))
			if s+l > span {
				l = span - s
			}
			if err := in.addRaw(s, l, uint32(typ)); err != nil {
				t.Fatal(err)
			}
			for a := s; a < s+l; a++ {
				if model[a] == 0 || normalType(uint32(typ)).restrictiveness() > model[a].restrictiveness() {
					model[a] = normalType(uint32(typ))
				}
			}
		}
		if err := in.normalise(); err != nil {
			t.Fatal(err)
		}
		var got [span]MemType
		for i, r := range in.MemoryMap() {
			if r.Start >= r.End {
				t.Fatalf("iter %d: empty range %+v", iter, r)
			}
			if i > 0 {
				p := in.MemMap[i-1]
				if p.End > r.Start || (p.End == r.Start && p.Type == r.Type) {
					t.Fatalf("iter %d: ranges %+v %+v overlap or are unmerged", iter, p, r)
				}
			}
			for a := r.Start; a < r.End; a++ {
				got[a] = r.Type
			}
		}
		if got != model {
			t.Fatalf("iter %d: got %v, want %v (raw %+v)", iter, got, model, in.raw[:in.nRaw])
		}
	}
}

func TestTooManyRanges(t *testing.T) {
	var in Info
	// Nested ranges of alternating types produce more output ranges than inputs.
	for i := range uint64(MaxRawRanges) {
		if err := in.addRaw(i*0x1000, 0x1000, uint32(1+i%2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.normalise(); err != nil {
		t.Fatalf("normalise %d alternating ranges: %v", MaxRawRanges, err)
	}
	if err := in.addRaw(0, 1, 1); err != ErrTooManyRanges {
		t.Errorf("addRaw beyond capacity = %v, want %v", err, ErrTooManyRanges)
	}
	// One available range punched by 127 reserved holes normalises to 255 ranges.
	var holes Info
	holes.addRaw(0, 1<<30, 1)
	for i := range uint64(MaxRawRanges - 1) {
		holes.addRaw((2*i+1)*0x1000, 0x1000, 2)
	}
	if err := holes.normalise(); err != ErrTooManyRanges {
		t.Errorf("normalise into 255 ranges = %v, want %v", err, ErrTooManyRanges)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	m1 := newMem()
	a1 := mb1(m1, "console=ttyS0", []Module{{Start: 0x200000, End: 0x201000}}, []string{"mod"},
		[]e820{{0, 0x9fc00, 1}, {0x100000, 0x100000, 1}}, 20, "GRUB")
	var w mb2Builder
	w.tag(mb2TagCmdline, []byte("x\x00"))
	w.tag(mb2TagMmap, mmapTag(24, 0, []e820{{0, 0x9fc00, 1}}))
	w.tag(mb2TagEnd, nil)
	m2 := newMem()
	copy(m2.b, w.bytes())
	in := new(Info)
	for _, c := range []struct {
		m     *fakeMem
		magic uint32
		addr  uint64
	}{{m1, MagicMultiboot1, a1}, {m2, MagicMultiboot2, memBase}} {
		var err error
		allocs := testing.AllocsPerRun(20, func() {
			err = Parse(c.m, c.magic, c.addr, in)
			_ = in.Occupied()
			_ = in.MemoryMap()
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("Parse(%#x) allocates %v times", c.magic, allocs)
		}
	}
	var err error
	if allocs := testing.AllocsPerRun(20, func() { err = Parse(m1, 1, 0, in) }); allocs != 0 || err == nil {
		t.Errorf("failing Parse allocates %v times (err %v)", allocs, err)
	}
}
