package loader

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mbHeader encodes a Multiboot 1 header; with the a.out kludge when
// fields are given.
func mbHeader(flags uint32, fields ...uint32) []byte {
	b := make([]byte, 12+4*len(fields))
	le.PutUint32(b, MultibootHeaderMagic)
	le.PutUint32(b[4:], flags)
	le.PutUint32(b[8:], -(MultibootHeaderMagic + flags))
	for i, f := range fields {
		le.PutUint32(b[12+4*i:], f)
	}
	return b
}

// aoutImage is a kernel like the one tools/mkimage makes: a file whose
// bytes from offset 0 load at 0x100000, with the header at offset 0x40.
func aoutImage(size int, loadEnd, bssEnd, entry uint32) []byte {
	img := pattern(size, 9)
	copy(img[0x40:], mbHeader(MultibootPageAlign|MultibootMemInfo|MultibootAoutKludge,
		0x100040, 0x100000, loadEnd, bssEnd, entry))
	return img
}

func TestFindMultibootHeader(t *testing.T) {
	at := func(off int, h []byte, size int) []byte {
		img := make([]byte, size)
		copy(img[off:], h)
		return img
	}
	plain := mbHeader(MultibootMemInfo)
	badSum := mbHeader(MultibootMemInfo)
	badSum[8]++
	tests := []struct {
		name    string
		img     []byte
		want    *MultibootHeader
		wantErr string
	}{
		{"at 0", at(0, plain, 64), &MultibootHeader{Offset: 0, Flags: 2}, ""},
		{"last slot in 8 KiB", at(8192-12, plain, 9000), &MultibootHeader{Offset: 8180, Flags: 2}, ""},
		{"beyond 8 KiB", at(8192, plain, 9000), nil, "no Multiboot header"},
		{"misaligned", at(2, plain, 64), nil, "no Multiboot header"},
		{"bad checksum", at(0, badSum, 64), nil, "no Multiboot header"},
		{"bad checksum then good", append(at(0, badSum, 16), plain...), &MultibootHeader{Offset: 16, Flags: 2}, ""},
		{"kludge", at(4, mbHeader(MultibootAoutKludge, 1, 2, 3, 4, 5), 64),
			&MultibootHeader{Offset: 4, Flags: MultibootAoutKludge, HeaderAddr: 1, LoadAddr: 2, LoadEndAddr: 3, BSSEndAddr: 4, EntryAddr: 5}, ""},
		{"kludge truncated", mbHeader(MultibootAoutKludge, 1, 2, 3), nil, "run past"},
		{"empty", nil, nil, "no Multiboot header"},
		{"short", []byte{0x02, 0xB0, 0xAD, 0x1B}, nil, "no Multiboot header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := FindMultibootHeader(tt.img)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// mbInfo is the decoded information structure.
type mbInfo struct {
	Flags, MemLower, MemUpper uint32
	Cmdline, LoaderName       string
	Mods                      []mbMod
	Mmap                      []E820Entry
}

type mbMod struct {
	Start, End uint32
	Cmdline    string
	Data       []byte
}

func readMBInfo(m *fakeMemory, at uint64) mbInfo {
	in := mbInfo{
		Flags: m.u32(at), MemLower: m.u32(at + 4), MemUpper: m.u32(at + 8),
		Cmdline:    m.cstring(uint64(m.u32(at + 16))),
		LoaderName: m.cstring(uint64(m.u32(at + 64))),
	}
	mods := uint64(m.u32(at + 24))
	for i := range uint64(m.u32(at + 20)) {
		e := mods + 16*i
		mod := mbMod{Start: m.u32(e), End: m.u32(e + 4), Cmdline: m.cstring(uint64(m.u32(e + 8)))}
		mod.Data = m.read(uint64(mod.Start), uint64(mod.End-mod.Start))
		in.Mods = append(in.Mods, mod)
	}
	// Walk the map the way the specification's example kernel does: by
	// each entry's size field.
	p, end := uint64(m.u32(at+48)), uint64(m.u32(at+48))+uint64(m.u32(at+44))
	for p < end {
		in.Mmap = append(in.Mmap, E820Entry{m.u64(p + 4), m.u64(p + 12), E820Type(m.u32(p + 20))})
		p += uint64(m.u32(p)) + 4
	}
	return in
}

func TestLoadMultibootAout(t *testing.T) {
	const memSize = 32 << 20
	img := aoutImage(0x3000, 0, 0x105000, 0x100200)
	mem := newFakeMemory(memSize)
	mem.fill = 0xAB
	mods := []Module{{Data: pattern(5000, 1), Cmdline: "vm.cfg"}, {Data: nil, Cmdline: "empty"}, {Data: pattern(10, 2)}}
	r, err := Load(mem, "hv", img, Config{Cmdline: "selftest smp", Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindMultiboot || r.Kernel != (Range{0x100000, 0x105000}) {
		t.Errorf("kind %v kernel %#x", r.Kind, r.Kernel)
	}
	e := r.Entry
	if e.Regs.RIP != 0x100200 || e.Regs.RAX != 0x2BADB002 || e.Regs.RBX != r.Info.Start || e.CR0 != CR0PE|CR0ET|CR0NE ||
		e.EFER != 0 || e.CS.Selector != SelectorCode32 || e.CS.Attrib != AttribCode32 || e.Regs.RFLAGS&(1<<9) != 0 {
		t.Errorf("entry state %+v", e)
	}
	if !bytes.Equal(mem.read(0x100000, 0x3000), img) {
		t.Error("image not loaded from offset 0")
	}
	if !allZero(mem.read(0x103000, 0x2000)) {
		t.Error("bss not cleared")
	}
	want := mbInfo{
		Flags:    MultibootInfoMemory | MultibootInfoCmdline | MultibootInfoMods | MultibootInfoMemMap | MultibootInfoBootLoaderName,
		MemLower: 639, MemUpper: (memSize - 1<<20) >> 10,
		Cmdline: "selftest smp", LoaderName: "hv",
		Mods: []mbMod{
			{0x105000, 0x105000 + 5000, "vm.cfg", mods[0].Data},
			{0x107000, 0x107000, "empty", []byte{}},
			{0x108000, 0x10800A, "", mods[2].Data},
		},
		Mmap: DefaultMap(memSize),
	}
	if diff := cmp.Diff(want, readMBInfo(mem, e.Regs.RBX)); diff != "" {
		t.Errorf("information structure (-want +got):\n%s", diff)
	}
	for i, m := range r.Modules {
		if m.Start%4096 != 0 {
			t.Errorf("module %d at %#x is not page aligned", i, m.Start)
		}
	}
}

func TestLoadMultibootELF(t *testing.T) {
	// A higher-half ELF kernel with the header in its first segment:
	// entered at the physical address of e_entry.
	text := pattern(0x400, 7)
	copy(text[0x10:], mbHeader(MultibootMemInfo))
	img := makeELF(32, 0xC0100020, []elfSeg{{vaddr: 0xC0100000, paddr: 0x100000, data: text, memsz: 0x1000}})
	mem := newFakeMemory(8 << 20)
	mp := []E820Entry{{0, 0x9F000, E820RAM}, {0x100000, 7 << 20, E820RAM}, {0xFEC00000, 0x1000, E820Reserved}}
	r, err := Load(mem, "k", img, Config{Map: mp})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindMultiboot || r.Entry.Regs.RIP != 0x100020 {
		t.Errorf("kind %v RIP %#x", r.Kind, r.Entry.Regs.RIP)
	}
	in := readMBInfo(mem, r.Entry.Regs.RBX)
	if in.MemLower != 0x9F000>>10 || in.MemUpper != 7<<10 || !cmp.Equal(in.Mmap, mp) || in.Cmdline != "" || len(in.Mods) != 0 {
		t.Errorf("information %+v", in)
	}
}

func TestLoadMultibootErrors(t *testing.T) {
	elfWith := func(h []byte, entry uint64) []byte {
		text := pattern(0x100, 1)
		copy(text, h)
		return makeELF(64, entry, []elfSeg{{vaddr: entry, paddr: entry, data: text}})
	}
	tests := []struct {
		name    string
		img     []byte
		cfg     Config
		wantErr string
	}{
		{"unknown required flag", aoutWithFlags(MultibootAoutKludge | 1<<3), Config{}, "bits 0x8"},
		{"initrd", aoutImage(0x1000, 0, 0, 0x100000), Config{Initrd: []byte{1}}, "as a module"},
		{"load_addr above header_addr", kludge(0x100040, 0x100080, 0, 0, 0x100080), Config{}, "above header_addr"},
		{"header before file start", kludge(0x200040, 0x100000, 0, 0, 0x100000), Config{}, "file offset"},
		{"load_end below load_addr", kludge(0x100040, 0x100000, 0xFFFFF, 0, 0x100000), Config{}, "below load_addr"},
		{"load_end past file", kludge(0x100040, 0x100000, 0x102000, 0, 0x100000), Config{}, "the file has"},
		{"bss_end below load_end", kludge(0x100040, 0x100000, 0x100800, 0x100400, 0x100000), Config{}, "bss_end_addr"},
		{"entry outside", kludge(0x100040, 0x100000, 0, 0, 0x200000), Config{}, "outside the image"},
		{"image outside RAM", kludge(0x100040, 0x100000, 0, 0x10000000, 0x100000), Config{}, "not in guest RAM"},
		{"ELF without kludge needs ELF", mbHeader(MultibootMemInfo), Config{}, "needs an ELF kernel"},
		{"ELF entry above 4 GiB", elfWith(mbHeader(0), 0x100000000), Config{}, "above 4 GiB"},
		{"module too big", aoutImage(0x1000, 0, 0, 0x100000), Config{Modules: []Module{{Data: make([]byte, 8<<20)}}}, "no room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadMultiboot(newFakeMemory(8<<20), tt.img, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func aoutWithFlags(flags uint32) []byte {
	img := pattern(0x1000, 3)
	copy(img[0x40:], mbHeader(flags, 0x100040, 0x100000, 0, 0, 0x100000))
	return img
}

func kludge(header, load, loadEnd, bssEnd, entry uint32) []byte {
	img := pattern(0x1000, 3)
	copy(img[0x40:], mbHeader(MultibootAoutKludge, header, load, loadEnd, bssEnd, entry))
	return img
}

func TestLoadDetect(t *testing.T) {
	mb := aoutImage(0x1000, 0, 0, 0x100000)
	elf := makeELF(64, 0x100000, []elfSeg{{vaddr: 0x100000, paddr: 0x100000, data: pattern(16, 1)}})
	tests := []struct {
		name    string
		img     []byte
		want    Kind
		wantErr string
	}{
		{"bzImage", makeBzImage(defaultBz()), KindLinux, ""},
		{"multiboot", mb, KindMultiboot, ""},
		{"ELF", elf, KindELF, ""},
		{"garbage", bytes.Repeat([]byte("junk"), 300), 0,
			"loader: /boot/x: not a bzImage (no HdrS magic at 0x202), not Multiboot (no header magic 0x1badb002 in the first 8192 bytes) and not ELF (starts 6a 75 6e 6b)"},
		{"tiny", []byte{1}, 0, "not a bzImage (1 bytes, too short for a setup header)"},
		{"broken bzImage names the format", makeBzImage(bzOpts{version: 0x0200}), 0, "loader: /boot/x: not a loadable bzImage: boot protocol 2.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(newFakeMemory(64<<20), "/boot/x", tt.img, Config{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v\nwant one containing %q", err, tt.wantErr)
				}
				if tt.want == 0 && strings.Contains(tt.wantErr, "not ELF") && !errors.Is(err, ErrFormat) {
					t.Errorf("err is not ErrFormat")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind != tt.want {
				t.Errorf("kind = %v, want %v", r.Kind, tt.want)
			}
		})
	}
}
