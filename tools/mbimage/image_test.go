package mbimage

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seg is one PT_LOAD of a synthetic ELF.
type seg struct {
	off, vaddr, filesz, memsz uint64
	flags                     elf.ProgFlag
}

// synthELF describes a minimal ELF64 built by the tests, so that every shape
// error can be provoked without a linker.
type synthELF struct {
	class   elf.Class
	typ     elf.Type
	machine elf.Machine
	entry   uint64
	loads   []seg
	note    *seg   // an optional PT_NOTE (only off and filesz are used)
	shoff   uint64 // where the section header table goes; 0 means none
	size    int    // total file size
	fill    map[int]byte
}

// kernelLike is shaped like the Go linker's output with -T 0x201000.
func kernelLike() synthELF {
	return synthELF{
		class: elf.ELFCLASS64, typ: elf.ET_EXEC, machine: elf.EM_X86_64,
		entry: 0x201040,
		loads: []seg{
			{off: 0, vaddr: 0x200000, filesz: 0x2000, memsz: 0x2000, flags: elf.PF_R | elf.PF_X},
			{off: 0x2000, vaddr: 0x202000, filesz: 0x1000, memsz: 0x1000, flags: elf.PF_R},
			{off: 0x3000, vaddr: 0x203000, filesz: 0x800, memsz: 0x5000, flags: elf.PF_R | elf.PF_W},
		},
		note:  &seg{off: 0xf78, filesz: 0x64},
		shoff: 0x190,
		size:  0x4000,
	}
}

func (s synthELF) bytes(t testing.TB) []byte {
	t.Helper()
	le := binary.LittleEndian
	b := make([]byte, s.size)
	phnum := len(s.loads)
	if s.note != nil {
		phnum++
	}
	shnum := 0
	if s.shoff != 0 {
		shnum = 2 // SHT_NULL and .shstrtab
	}
	hdr := elf.Header64{
		Type: uint16(s.typ), Machine: uint16(s.machine), Version: uint32(elf.EV_CURRENT),
		Entry: s.entry, Phoff: 64, Shoff: s.shoff, Ehsize: 64,
		Phentsize: 56, Phnum: uint16(phnum), Shentsize: 64, Shnum: uint16(shnum), Shstrndx: uint16(shnum - 1),
	}
	if shnum == 0 {
		hdr.Shstrndx = 0
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(s.class)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var w bytes.Buffer
	binary.Write(&w, le, hdr)
	for _, l := range s.loads {
		binary.Write(&w, le, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(l.flags), Off: l.off, Vaddr: l.vaddr, Paddr: l.vaddr, Filesz: l.filesz, Memsz: l.memsz, Align: 0x1000})
	}
	if s.note != nil {
		binary.Write(&w, le, elf.Prog64{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R), Off: s.note.off, Vaddr: 0x200000 + s.note.off, Filesz: s.note.filesz, Memsz: s.note.filesz, Align: 4})
		for i := range s.note.filesz {
			b[s.note.off+i] = 0x4e
		}
	}
	copy(b, w.Bytes())
	if shnum > 0 {
		// .shstrtab lives near the end of the file, outside the header page.
		strOff := uint64(s.size - 16)
		copy(b[strOff:], "\x00.shstrtab\x00")
		w.Reset()
		binary.Write(&w, le, elf.Section64{})
		binary.Write(&w, le, elf.Section64{Name: 1, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: 11, Addralign: 1})
		copy(b[s.shoff:], w.Bytes())
	}
	for off, v := range s.fill {
		b[off] = v
	}
	return b
}

func TestTinyKernelBuilds(t *testing.T) {
	in := tinyKernel().bytes(t)
	img, p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, in, img, p)
}

func TestInspectKernelShape(t *testing.T) {
	got, err := Inspect(kernelLike().bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Layout{Delta: 0x200000, LoadAddr: 0x200000, LoadEndAddr: 0x203800, BSSEndAddr: 0x208000, Entry: 0x201040}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Inspect layout (-want +got):\n%s", diff)
	}
}

func TestInspectRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*synthELF)
		raw    []byte
		want   string // substring of the error
		shape  bool   // error must wrap ErrShape
	}{
		{name: "not an ELF", raw: []byte("MZ this is not an ELF file at all, sorry"), want: "parse ELF"},
		{name: "truncated", raw: []byte("\x7fELF\x02\x01\x01"), want: "parse ELF"},
		{name: "32-bit", mutate: func(s *synthELF) { s.class = elf.ELFCLASS32 }, want: "parse ELF"},
		{name: "wrong machine", mutate: func(s *synthELF) { s.machine = elf.EM_AARCH64 }, want: "x86-64", shape: true},
		{name: "PIE", mutate: func(s *synthELF) { s.typ = elf.ET_DYN }, want: "ET_EXEC", shape: true},
		{name: "no PT_LOAD", mutate: func(s *synthELF) { s.loads = nil }, want: "no PT_LOAD", shape: true},
		{name: "header page not loaded", mutate: func(s *synthELF) {
			s.loads[0].off, s.loads[0].vaddr, s.loads[0].filesz, s.loads[0].memsz = 0x1000, 0x201000, 0x1000, 0x1000
		}, want: "file offset 0x1000, want 0", shape: true},
		{name: "delta differs", mutate: func(s *synthELF) { s.loads[1].vaddr = 0x202800 }, want: "vaddr-offset differs", shape: true},
		{name: "bss not last", mutate: func(s *synthELF) { s.loads[1].memsz = 0x1800 }, want: "has bss", shape: true},
		{name: "memsz below filesz", mutate: func(s *synthELF) { s.loads[2].memsz = 0x100 }, want: "memsz", shape: true},
		{name: "past end of file", mutate: func(s *synthELF) { s.loads[2].filesz, s.loads[2].memsz = 0x8000, 0x8000 }, want: "past the end", shape: true},
		{name: "below 1 MiB", mutate: func(s *synthELF) {
			for i := range s.loads {
				s.loads[i].vaddr -= 0x180000
			}
			s.entry -= 0x180000
		}, want: "below 1 MiB", shape: true},
		{name: "above 4 GiB", mutate: func(s *synthELF) { s.loads[2].memsz = 1 << 32 }, want: "above 4 GiB", shape: true},
		{name: "entry outside text", mutate: func(s *synthELF) { s.entry = 0x202010 }, want: "entry 0x202010", shape: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.raw
			if img == nil {
				s := kernelLike()
				tt.mutate(&s)
				img = s.bytes(t)
			}
			_, err := Inspect(img)
			if err == nil {
				t.Fatalf("Inspect accepted a broken ELF")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if errors.Is(err, ErrShape) != tt.shape {
				t.Errorf("errors.Is(%v, ErrShape) = %v, want %v", err, !tt.shape, tt.shape)
			}
			if _, _, err := Build(img); err == nil {
				t.Errorf("Build accepted what Inspect rejected")
			}
		})
	}
}

func TestBuildPlacement(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*synthELF)
		wantMB1 int
		wantErr string
	}{
		{name: "preferred offset free", wantMB1: 0x800},
		// 26 section headers at 0x190 end at 0x810, as in a real Go binary.
		{name: "section headers cover 0x800", mutate: func(s *synthELF) { s.shoff = 0x7d0 }, wantMB1: 0x850},
		{name: "stray byte at 0x800", mutate: func(s *synthELF) { s.fill = map[int]byte{0x803: 1} }, wantMB1: 0x808},
		{name: "note covers 0x800", mutate: func(s *synthELF) { s.note = &seg{off: 0x7f0, filesz: 0x20} }, wantMB1: 0x810},
		{name: "only room below 0x800", mutate: func(s *synthELF) {
			s.fill = map[int]byte{}
			for off := 0x800; off < 0x2100; off += 64 {
				s.fill[off] = 0xcc
			}
		}, wantMB1: 0x210},
		{name: "no room in 8 KiB", mutate: func(s *synthELF) {
			s.fill = map[int]byte{}
			for off := 0x100; off < 0x2100; off += 64 {
				s.fill[off] = 0xcc
			}
		}, wantErr: "no 136 free zero bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kernelLike()
			if tt.mutate != nil {
				tt.mutate(&s)
			}
			in := s.bytes(t)
			orig := append([]byte(nil), in...)
			img, p, err := Build(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Errorf("Build modified its input")
			}
			if p.MB1Offset != tt.wantMB1 {
				t.Errorf("MB1 at %#x, want %#x", p.MB1Offset, tt.wantMB1)
			}
			checkImage(t, orig, img, p)
		})
	}
}

// checkImage parses the headers back out of img the way loaders do and
// compares them with the ELF they came from.
func checkImage(t *testing.T, orig, img []byte, p Placement) {
	t.Helper()
	l, err := Inspect(orig)
	if err != nil {
		t.Fatal(err)
	}
	if len(img) != len(orig) {
		t.Fatalf("image is %d bytes, ELF %d", len(img), len(orig))
	}
	mb1, err := FindMB1(img)
	if err != nil {
		t.Fatal(err)
	}
	wantMB1 := MB1{
		Offset: p.MB1Offset, Flags: MB1FlagPageAlign | MB1FlagMemInfo | MB1FlagAddress,
		Checksum:   mb1.Checksum,
		HeaderAddr: uint32(uint64(p.MB1Offset) + l.Delta),
		LoadAddr:   l.LoadAddr, LoadEndAddr: l.LoadEndAddr, BSSEndAddr: l.BSSEndAddr, EntryAddr: l.Entry,
	}
	if diff := cmp.Diff(wantMB1, mb1); diff != "" {
		t.Errorf("multiboot 1 header (-want +got):\n%s", diff)
	}
	if sum := uint32(MB1Magic) + mb1.Flags + mb1.Checksum; sum != 0 {
		t.Errorf("multiboot 1 checksum: magic+flags+checksum = %#x, want 0", sum)
	}
	if p.MB1Offset%MB1Align != 0 || p.MB1Offset+MB1Size > MB1Search {
		t.Errorf("multiboot 1 header at %#x: not 4-aligned within the first 8 KiB", p.MB1Offset)
	}
	// §3.1.3: the loader starts loading at (header offset) - (header_addr - load_addr).
	if start := int64(mb1.Offset) - int64(mb1.HeaderAddr-mb1.LoadAddr); start != 0 {
		t.Errorf("multiboot 1 load starts at file offset %d, want 0", start)
	}

	mb2, err := FindMB2(img)
	if err != nil {
		t.Fatal(err)
	}
	if mb2.Offset != p.MB2Offset || mb2.Offset%MB2Align != 0 || mb2.Offset+int(mb2.Length) > MB2Search {
		t.Errorf("multiboot 2 header at %#x (placement %#x, length %d): not 8-aligned within 32 KiB", mb2.Offset, p.MB2Offset, mb2.Length)
	}
	if mb2.Offset < mb1.Offset+MB1Size {
		t.Errorf("multiboot 2 header at %#x overlaps multiboot 1 at %#x", mb2.Offset, mb1.Offset)
	}
	if sum := uint32(MB2Magic) + mb2.Architecture + mb2.Length + mb2.Checksum; sum != 0 || mb2.Architecture != MB2ArchI386 {
		t.Errorf("multiboot 2: arch %d, checksum sum %#x", mb2.Architecture, sum)
	}
	var types []uint16
	for _, tag := range mb2.Tags {
		types = append(types, tag.Type)
		if tag.Flags&MB2TagFlagOptional != 0 {
			t.Errorf("tag %d is optional; the kernel needs every one", tag.Type)
		}
	}
	if diff := cmp.Diff([]uint16{MB2TagInfoRequest, MB2TagAddress, MB2TagEntryAddress, MB2TagModuleAlign, MB2TagEnd}, types); diff != "" {
		t.Errorf("multiboot 2 tags (-want +got):\n%s", diff)
	}
	req, _ := mb2.Tag(MB2TagInfoRequest)
	if diff := cmp.Diff([]uint32{1, 3, 4, 6, 14, 15}, req.Uint32s()); diff != "" {
		t.Errorf("information request (-want +got):\n%s", diff)
	}
	addr, _ := mb2.Tag(MB2TagAddress)
	wantAddr := []uint32{uint32(uint64(mb2.Offset) + l.Delta), l.LoadAddr, l.LoadEndAddr, l.BSSEndAddr}
	if diff := cmp.Diff(wantAddr, addr.Uint32s()); diff != "" {
		t.Errorf("address tag (-want +got):\n%s", diff)
	}
	entry, _ := mb2.Tag(MB2TagEntryAddress)
	if diff := cmp.Diff([]uint32{l.Entry}, entry.Uint32s()); diff != "" {
		t.Errorf("entry tag (-want +got):\n%s", diff)
	}

	// Nothing but the header block may differ from the ELF.
	end := mb2.Offset + int(mb2.Length)
	for i := range img {
		if (i < mb1.Offset || i >= end) && img[i] != orig[i] {
			t.Fatalf("byte %#x changed outside the header block [%#x, %#x)", i, mb1.Offset, end)
		}
	}
	if _, err := elf.NewFile(bytes.NewReader(img)); err != nil {
		t.Errorf("image is no longer a valid ELF: %v", err)
	}
}

// TestHeaderConstants pins the numbers to the specifications' tables.
func TestHeaderConstants(t *testing.T) {
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"MB1 magic (MB 0.6.96 §3.1.2)", MB1Magic, 0x1BADB002},
		{"MB1 boot magic (§3.2)", MB1BootMagic, 0x2BADB002},
		{"MB1 flags: page align, memory info, address fields", MB1Flags, 0x00010003},
		{"MB2 magic (MB2 1.6 §3.1.2)", MB2Magic, 0xE85250D6},
		{"MB2 boot magic (§3.3)", MB2BootMagic, 0x36D76289},
		{"MB2 information request tag (§3.1.4)", MB2TagInfoRequest, 1},
		{"MB2 address tag (§3.1.5)", MB2TagAddress, 2},
		{"MB2 entry address tag (§3.1.6)", MB2TagEntryAddress, 3},
		{"MB2 module alignment tag (§3.1.9)", MB2TagModuleAlign, 6},
		{"MB2 info: cmdline (§3.6.3)", MB2InfoCmdline, 1},
		{"MB2 info: modules (§3.6.6)", MB2InfoModule, 3},
		{"MB2 info: basic meminfo (§3.6.7)", MB2InfoBasicMeminfo, 4},
		{"MB2 info: mmap (§3.6.8)", MB2InfoMmap, 6},
		{"MB2 info: ACPI old RSDP (§3.6.13)", MB2InfoACPIOld, 14},
		{"MB2 info: ACPI new RSDP (§3.6.14)", MB2InfoACPINew, 15},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
	// MB2 header: 16 fixed bytes, request 8+6*4=32, address 24, entry 12
	// padded to 16, module alignment 8, end 8.
	if n := len(MB2Header(Layout{}, 0)); n != 16+32+24+16+8+8 {
		t.Errorf("MB2 header is %d bytes, want 104", n)
	}
}

func TestFindRejectsCorruptHeaders(t *testing.T) {
	s := kernelLike()
	img, p, err := Build(s.bytes(t))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	tests := []struct {
		name   string
		mutate func([]byte)
		find   func([]byte) error
	}{
		{"MB1 checksum", func(b []byte) { b[p.MB1Offset+8]++ }, func(b []byte) error { _, err := FindMB1(b); return err }},
		{"MB1 misaligned", func(b []byte) {
			copy(b[p.MB1Offset+2:], append([]byte(nil), b[p.MB1Offset:p.MB1Offset+MB1Size]...))
			b[p.MB1Offset], b[p.MB1Offset+1] = 0, 0
		}, func(b []byte) error { _, err := FindMB1(b); return err }},
		{"MB2 checksum", func(b []byte) { b[p.MB2Offset+12]++ }, func(b []byte) error { _, err := FindMB2(b); return err }},
		{"MB2 tag size too big", func(b []byte) {
			le.PutUint32(b[p.MB2Offset+MB2FixedSize+4:], 0x1000)
		}, func(b []byte) error { _, err := FindMB2(b); return err }},
		{"MB2 tag size below 8", func(b []byte) {
			le.PutUint32(b[p.MB2Offset+MB2FixedSize+4:], 4)
		}, func(b []byte) error { _, err := FindMB2(b); return err }},
		{"MB2 length past end tag", func(b []byte) {
			n := le.Uint32(b[p.MB2Offset+8:]) + 8
			le.PutUint32(b[p.MB2Offset+8:], n)
			le.PutUint32(b[p.MB2Offset+12:], -(MB2Magic + MB2ArchI386 + n))
		}, func(b []byte) error { _, err := FindMB2(b); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), img...)
			tt.mutate(b)
			if err := tt.find(b); err == nil {
				t.Errorf("corrupt header accepted")
			}
		})
	}
}

// TestBuildGoKernel checks the tool against a real stock-Go ELF linked the
// way the Makefile links the hypervisor.
func TestBuildGoKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	out := filepath.Join(t.TempDir(), "kernel.elf")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-T 0x201000 -E main.entry32", "-o", out, "hv/tools/hvtest/testdata/fakekernel")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOEXPERIMENT=norandomizedheapbase64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	orig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, p, err := Build(orig)
	if err != nil {
		t.Fatal(err)
	}
	if p.LoadAddr != 0x200000 {
		t.Errorf("load address %#x, want 0x200000 for -T 0x201000", p.LoadAddr)
	}
	checkImage(t, orig, img, p)
}

// tinyKernel has the kernel's shape in under 3 KiB: the fuzzer spends its
// time minimizing every interesting input byte by byte, so seeds stay small.
func tinyKernel() synthELF {
	return synthELF{
		class: elf.ELFCLASS64, typ: elf.ET_EXEC, machine: elf.EM_X86_64,
		entry: 0x200300,
		loads: []seg{
			{off: 0, vaddr: 0x200000, filesz: 0x900, memsz: 0x900, flags: elf.PF_R | elf.PF_X},
			{off: 0x900, vaddr: 0x200900, filesz: 0x100, memsz: 0x100, flags: elf.PF_R},
			{off: 0xa00, vaddr: 0x200a00, filesz: 0x100, memsz: 0x1000, flags: elf.PF_R | elf.PF_W},
		},
		shoff: 0x190,
		size:  0xb00,
	}
}

func FuzzBuild(f *testing.F) {
	f.Add(tinyKernel().bytes(f))
	s := tinyKernel()
	s.shoff = 0x7d0
	f.Add(s.bytes(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		img, p, err := Build(in)
		if err != nil {
			return
		}
		mb1, err := FindMB1(img)
		if err != nil {
			t.Fatalf("built image has no MB1 header: %v", err)
		}
		// A fuzzed ELF may already hold a stray magic earlier; only check
		// when the loader would find ours.
		if mb1.Offset == p.MB1Offset && mb1.EntryAddr != p.Entry {
			t.Fatalf("MB1 entry %#x, want %#x", mb1.EntryAddr, p.Entry)
		}
		if _, err := FindMB2(img); err != nil {
			t.Fatalf("built image has no MB2 header: %v", err)
		}
	})
}
