package loader

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// elfSeg is a segment of a synthetic ELF: data is placed in the file and
// memsz may exceed it (bss).
type elfSeg struct {
	vaddr, paddr uint64
	data         []byte
	memsz        uint64
	ptype        uint32
}

// makeELF writes a minimal ELF executable: header, program headers, then
// each segment's data at a 16-byte aligned offset.
func makeELF(class int, entry uint64, segs []elfSeg) []byte {
	hsize, psize := elf64HeaderSize, elf64PhdrSize
	machine := uint16(elfMachineX64)
	if class == 32 {
		hsize, psize, machine = elf32HeaderSize, elf32PhdrSize, elfMachine386
	}
	off := hsize + psize*len(segs)
	var offsets []int
	for _, s := range segs {
		off = (off + 15) &^ 15
		offsets = append(offsets, off)
		off += len(s.data)
	}
	img := make([]byte, off)
	copy(img, elfMagic)
	img[4] = byte(map[int]int{32: elfClass32, 64: elfClass64}[class])
	img[5], img[6] = elfData2LSB, elfVersion
	le.PutUint16(img[16:], elfTypeExec)
	le.PutUint16(img[18:], machine)
	le.PutUint32(img[20:], 1)
	for i, s := range segs {
		ptype := s.ptype
		if ptype == 0 {
			ptype = elfPTLoad
		}
		memsz := max(s.memsz, uint64(len(s.data)))
		ph := img[hsize+psize*i:]
		if class == 32 {
			le.PutUint32(ph[0:], ptype)
			le.PutUint32(ph[4:], uint32(offsets[i]))
			le.PutUint32(ph[8:], uint32(s.vaddr))
			le.PutUint32(ph[12:], uint32(s.paddr))
			le.PutUint32(ph[16:], uint32(len(s.data)))
			le.PutUint32(ph[20:], uint32(memsz))
		} else {
			le.PutUint32(ph[0:], ptype)
			le.PutUint64(ph[8:], uint64(offsets[i]))
			le.PutUint64(ph[16:], s.vaddr)
			le.PutUint64(ph[24:], s.paddr)
			le.PutUint64(ph[32:], uint64(len(s.data)))
			le.PutUint64(ph[40:], memsz)
		}
		copy(img[offsets[i]:], s.data)
	}
	if class == 32 {
		le.PutUint32(img[24:], uint32(entry))
		le.PutUint32(img[28:], uint32(hsize))
		le.PutUint16(img[40:], uint16(hsize))
		le.PutUint16(img[42:], uint16(psize))
		le.PutUint16(img[44:], uint16(len(segs)))
	} else {
		le.PutUint64(img[24:], entry)
		le.PutUint64(img[32:], uint64(hsize))
		le.PutUint16(img[52:], uint16(hsize))
		le.PutUint16(img[54:], uint16(psize))
		le.PutUint16(img[56:], uint16(len(segs)))
	}
	return img
}

func TestParseELF(t *testing.T) {
	text := pattern(0x300, 1)
	good64 := func() []byte {
		return makeELF(64, 0xFFFFFFFF80100010, []elfSeg{
			{vaddr: 0xFFFFFFFF80100000, paddr: 0x100000, data: text, memsz: 0x2000},
			{ptype: 4, vaddr: 0, data: []byte("note")}, // PT_NOTE: skipped
		})
	}
	tests := []struct {
		name    string
		img     func() []byte
		want    *ELFFile
		wantErr string
	}{
		{"elf64", good64, &ELFFile{Class: 64, Machine: 62, Entry: 0xFFFFFFFF80100010, Segments: []ELFSegment{
			{Offset: 0xB0, Vaddr: 0xFFFFFFFF80100000, Paddr: 0x100000, Filesz: 0x300, Memsz: 0x2000}}}, ""},
		{"elf32", func() []byte {
			return makeELF(32, 0x200000, []elfSeg{{vaddr: 0x200000, paddr: 0x200000, data: text}})
		}, &ELFFile{Class: 32, Machine: 3, Entry: 0x200000, Segments: []ELFSegment{
			{Offset: 0x60, Vaddr: 0x200000, Paddr: 0x200000, Filesz: 0x300, Memsz: 0x300}}}, ""},
		{"no magic", func() []byte { return []byte("hello world, not an ELF file at all, really, honest.....") }, nil, "no ELF magic"},
		{"short", func() []byte { return elfMagic }, nil, "too short"},
		{"short elf64", func() []byte { return good64()[:60] }, nil, "too short for an ELF64"},
		{"class", func() []byte { b := good64(); b[4] = 3; return b }, nil, "class 3"},
		{"big endian", func() []byte { b := good64(); b[5] = 2; return b }, nil, "little-endian"},
		{"version", func() []byte { b := good64(); b[6] = 0; return b }, nil, "version"},
		{"PIE", func() []byte { b := good64(); le.PutUint16(b[16:], elfTypeDyn); return b }, nil, "ET_DYN"},
		{"relocatable object", func() []byte { b := good64(); le.PutUint16(b[16:], 1); return b }, nil, "ELF type 1"},
		{"arm64", func() []byte { b := good64(); le.PutUint16(b[18:], 183); return b }, nil, "machine 183"},
		{"elf32 x86-64", func() []byte {
			b := makeELF(32, 0, []elfSeg{{data: text}})
			le.PutUint16(b[18:], elfMachineX64)
			return b
		}, nil, "want i386"},
		{"no phdrs", func() []byte { b := good64(); le.PutUint16(b[56:], 0); return b }, nil, "no program headers"},
		{"small phentsize", func() []byte { b := good64(); le.PutUint16(b[54:], 32); return b }, nil, "program header size"},
		{"phdrs past end", func() []byte { b := good64(); le.PutUint64(b[32:], uint64(len(b))-8); return b }, nil, "run past"},
		{"phoff huge", func() []byte { b := good64(); le.PutUint64(b[32:], 1<<63); return b }, nil, "run past"},
		{"filesz > memsz", func() []byte { b := good64(); le.PutUint64(b[64+40:], 0x10); return b }, nil, "exceeds memory size"},
		{"data past end", func() []byte { b := good64(); le.PutUint64(b[64+8:], uint64(len(b))); return b }, nil, "runs past"},
		{"offset huge", func() []byte { b := good64(); le.PutUint64(b[64+8:], 1<<63); return b }, nil, "runs past"},
		{"wraps", func() []byte { b := good64(); le.PutUint64(b[64+24:], ^uint64(0)-0x100); return b }, nil, "wraps"},
		{"nothing to load", func() []byte {
			return makeELF(64, 0, []elfSeg{{ptype: 4, data: text}})
		}, nil, "no loadable segments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseELF(tt.img())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, f); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadELF64(t *testing.T) {
	text, data := pattern(0x1234, 2), pattern(0x100, 3)
	// A higher-half kernel: the entry is translated to its physical
	// address because the loader's page tables are identity.
	img := makeELF(64, 0xFFFFFFFF80200100, []elfSeg{
		{vaddr: 0xFFFFFFFF80200000, paddr: 0x200000, data: text},
		{vaddr: 0xFFFFFFFF80400000, paddr: 0x400000, data: data, memsz: 0x3000},
	})
	mem := newFakeMemory(16 << 20)
	mem.fill = 0xEE
	r, err := Load(mem, "k64", img, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != KindELF || r.Entry.Regs.RIP != 0x200100 || r.Entry.EFER != EFERLME|EFERLMA || r.Entry.CS.Attrib != AttribCode64 || r.Entry.CR3 == 0 {
		t.Errorf("entry state %+v", r.Entry)
	}
	if r.Kernel != (Range{0x200000, 0x403000}) {
		t.Errorf("kernel range %#x", r.Kernel)
	}
	if !bytes.Equal(mem.read(0x200000, uint64(len(text))), text) || !bytes.Equal(mem.read(0x400000, uint64(len(data))), data) {
		t.Error("segments not loaded")
	}
	if bss := mem.read(0x400100, 0x2F00); !allZero(bss) {
		t.Error("bss not cleared")
	}
}

func TestLoadELF32(t *testing.T) {
	img := makeELF(32, 0x100000, []elfSeg{{vaddr: 0x100000, paddr: 0x100000, data: pattern(64, 4)}})
	r, err := LoadELF(newFakeMemory(4<<20), img, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ds := flat(SelectorData, AttribData)
	want := EntryState{
		Regs: Regs{RIP: 0x100000, RSP: 0x6000, RFLAGS: 2},
		CS:   Segment{Selector: 0x08, Attrib: 0xC9B, Limit: 0xFFFFFFFF},
		DS:   ds, ES: ds, FS: ds, GS: ds, SS: ds,
		TR: Segment{Attrib: 0x8B, Limit: 0xFFFF}, LDTR: Segment{Attrib: 0x82, Limit: 0xFFFF},
		GDT: DTable{Base: 0x1000, Limit: 31},
		CR0: 0x31,
	}
	if diff := cmp.Diff(want, r.Entry); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
}

func TestLoadELFErrors(t *testing.T) {
	seg := func(paddr uint64) elfSeg { return elfSeg{vaddr: paddr, paddr: paddr, data: pattern(0x100, 5)} }
	tests := []struct {
		name    string
		img     []byte
		cfg     Config
		wantErr string
	}{
		{"command line", makeELF(64, 0x100000, []elfSeg{seg(0x100000)}), Config{Cmdline: "x"}, "no way to receive"},
		{"entry outside segments", makeELF(64, 0x900000, []elfSeg{seg(0x100000)}), Config{}, "in no loadable segment"},
		{"outside RAM", makeELF(64, 0x10000000, []elfSeg{seg(0x10000000)}), Config{}, "not in guest RAM"},
		{"in the BIOS hole", makeELF(32, 0xF0000, []elfSeg{seg(0xF0000)}), Config{}, "not in guest RAM"},
		{"overlapping segments", makeELF(64, 0x100000, []elfSeg{seg(0x100000), seg(0x100080)}), Config{}, "overlaps"},
		{"entry above the identity map", makeELF(64, 0x100000000, []elfSeg{seg(0x100000000)}), Config{Map: []E820Entry{{0x100000000, 1 << 20, E820RAM}}}, "above"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadELF(newFakeMemory(8<<20), tt.img, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
