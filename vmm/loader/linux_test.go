package loader

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bzOpts describes a synthetic bzImage.
type bzOpts struct {
	setupSects  uint8
	version     uint16
	loadflags   uint8
	xloadflags  uint16
	align       uint32
	relocatable bool
	pref        uint64
	initSize    uint32
	kernelSize  int
	cmdlineSize uint32
	addrMax     uint32
}

func defaultBz() bzOpts {
	return bzOpts{
		setupSects: 4, version: 0x020F, loadflags: LoadedHigh,
		xloadflags: XLFKernel64 | XLFCanBeLoadedAbove4, align: 0x200000, relocatable: true,
		pref: 0x1000000, initSize: 0x300000, kernelSize: 0x10000, cmdlineSize: 2047, addrMax: 0x7FFFFFFF,
	}
}

// makeBzImage lays out a bzImage the way arch/x86/boot/header.S does:
// boot sector and setup, the header at 0x1F1, then the protected-mode
// kernel.
func makeBzImage(o bzOpts) []byte {
	setup := (int(o.setupSects) + 1) * 512
	if o.setupSects == 0 {
		setup = 5 * 512
	}
	img := make([]byte, setup+o.kernelSize)
	img[hdrSetupSects] = o.setupSects
	le.PutUint32(img[hdrSyssize:], uint32((o.kernelSize+15)/16))
	le.PutUint16(img[hdrBootFlag:], 0xAA55)
	img[hdrJump] = 0xEB
	img[hdrJump+1] = 0x268 - 0x202
	copy(img[hdrMagic:], "HdrS")
	le.PutUint16(img[hdrVersion:], o.version)
	img[hdrLoadflags] = o.loadflags
	le.PutUint32(img[hdrCode32Start:], 0x100000)
	le.PutUint32(img[hdrInitrdAddrMax:], o.addrMax)
	le.PutUint32(img[hdrKernelAlignment:], o.align)
	if o.relocatable {
		img[hdrRelocatable] = 1
	}
	le.PutUint16(img[hdrXloadflags:], o.xloadflags)
	le.PutUint32(img[hdrCmdlineSize:], o.cmdlineSize)
	le.PutUint64(img[hdrPrefAddress:], o.pref)
	le.PutUint32(img[hdrInitSize:], o.initSize)
	copy(img[setup:], pattern(o.kernelSize, 0x5A))
	return img
}

func TestParseSetupHeader(t *testing.T) {
	good := defaultBz()
	tests := []struct {
		name    string
		mutate  func(o *bzOpts, img []byte) []byte
		wantErr string
	}{
		{"good", nil, ""},
		{"setup_sects 0 means 4", func(o *bzOpts, img []byte) []byte { img[hdrSetupSects] = 0; return img }, ""},
		{"no magic", func(o *bzOpts, img []byte) []byte { img[hdrMagic] = 'X'; return img }, "no HdrS magic at 0x202"},
		{"short", func(o *bzOpts, img []byte) []byte { return img[:0x100] }, "too short"},
		{"boot flag", func(o *bzOpts, img []byte) []byte { img[hdrBootFlag] = 0; return img }, "boot flag"},
		{"old protocol", func(o *bzOpts, img []byte) []byte { le.PutUint16(img[hdrVersion:], 0x020B); return img }, "boot protocol 2.11"},
		{"short header", func(o *bzOpts, img []byte) []byte { img[hdrJump+1] = 0x40; return img }, "setup header ends"},
		{"zImage", func(o *bzOpts, img []byte) []byte { img[hdrLoadflags] = 0; return img }, "LOADED_HIGH"},
		{"no 64-bit entry", func(o *bzOpts, img []byte) []byte { le.PutUint16(img[hdrXloadflags:], 0); return img }, "XLF_KERNEL_64"},
		{"truncated kernel", func(o *bzOpts, img []byte) []byte { return img[:len(img)-32] }, "syssize"},
		{"truncated setup", func(o *bzOpts, img []byte) []byte { img[hdrSetupSects] = 200; return img }, "shorter than the"},
		{"zero syssize", func(o *bzOpts, img []byte) []byte { le.PutUint32(img[hdrSyssize:], 0); return img }, "syssize"},
		{"alignment not power of two", func(o *bzOpts, img []byte) []byte { le.PutUint32(img[hdrKernelAlignment:], 0x300000); return img }, "power of two"},
		{"alignment zero", func(o *bzOpts, img []byte) []byte { le.PutUint32(img[hdrKernelAlignment:], 0); return img }, "power of two"},
		{"init_size too small", func(o *bzOpts, img []byte) []byte { le.PutUint32(img[hdrInitSize:], 0x100); return img }, "init_size"},
		{"fixed kernel misaligned", func(o *bzOpts, img []byte) []byte {
			img[hdrRelocatable] = 0
			le.PutUint64(img[hdrPrefAddress:], 0x1001000)
			return img
		}, "not aligned"},
		{"no cmdline", func(o *bzOpts, img []byte) []byte { le.PutUint32(img[hdrCmdlineSize:], 0); return img }, "cmdline_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			img := makeBzImage(o)
			if tt.mutate != nil {
				img = tt.mutate(&o, img)
			}
			h, err := ParseSetupHeader(img)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrNotBzImage) {
					t.Fatalf("err = %v, want ErrNotBzImage containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &SetupHeader{
				SetupSects: img[hdrSetupSects], Syssize: 0x1000, Version: 0x020F, Loadflags: LoadedHigh,
				Code32Start: 0x100000, InitrdAddrMax: 0x7FFFFFFF, KernelAlignment: 0x200000, Relocatable: true,
				Xloadflags: 3, CmdlineSize: 2047, PrefAddress: 0x1000000, InitSize: 0x300000, HeaderEnd: 0x268,
			}
			if diff := cmp.Diff(want, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if h.SetupSize() != 5*512 {
				t.Errorf("SetupSize = %d, want %d", h.SetupSize(), 5*512)
			}
		})
	}
}

func TestLoadLinux(t *testing.T) {
	const memSize = 64 << 20
	img := makeBzImage(defaultBz())
	mem := newFakeMemory(memSize)
	mem.fill = 0xCC
	initrd := pattern(100000, 0x33)
	cfg := Config{Cmdline: "console=ttyS0 panic=-1", Initrd: initrd, RSDP: 0xE0000}
	r, err := Load(mem, "test-bz", img, cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Low memory is handed out in a fixed order from 0x1000: GDT, six
	// pages of page tables, zero page, command line, stack.
	const (
		gdt, pt, zp, cl, stackTop = 0x1000, 0x2000, 0x8000, 0x9000, 0xE000
	)
	initrdStart := uint64(memSize-len(initrd)) &^ 0xFFF
	ds := Segment{Selector: 0x18, Attrib: 0xC93, Limit: 0xFFFFFFFF}
	want := &Result{
		Kind: KindLinux,
		Entry: EntryState{
			Regs: Regs{RIP: 0x1000000 + 0x200, RSI: zp, RSP: stackTop, RFLAGS: 2},
			CS:   Segment{Selector: 0x10, Attrib: 0xA9B, Limit: 0xFFFFFFFF},
			DS:   ds, ES: ds, FS: ds, GS: ds, SS: ds,
			TR:   Segment{Attrib: 0x8B, Limit: 0xFFFF},
			LDTR: Segment{Attrib: 0x82, Limit: 0xFFFF},
			GDT:  DTable{Base: gdt, Limit: 31},
			CR0:  0x80000031, CR3: pt, CR4: 0x20, EFER: 0x500,
		},
		Kernel: Range{0x1000000, 0x1300000},
		Initrd: Range{initrdStart, initrdStart + uint64(len(initrd))},
		Info:   Range{zp, zp + 4096},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}

	if got := mem.read(0x1000000, 0x10000); !bytes.Equal(got, img[5*512:]) {
		t.Error("protected-mode kernel not at pref_address")
	}
	if got := mem.read(initrdStart, uint64(len(initrd))); !bytes.Equal(got, initrd) {
		t.Error("initrd not where the zero page says")
	}
	if got := mem.cstring(cl); got != cfg.Cmdline {
		t.Errorf("command line = %q", got)
	}

	// The zero page: the image's header with the loader's fields patched.
	bp := mem.read(zp, 4096)
	wantBP := make([]byte, 4096)
	copy(wantBP[0x1F1:0x268], img[0x1F1:0x268])
	wantBP[0x210] = 0xFF                              // type_of_loader
	wantBP[0x211] = LoadedHigh | CanUseHeap           // loadflags
	le.PutUint16(wantBP[0x224:], 0xFE00)              // heap_end_ptr
	le.PutUint32(wantBP[0x214:], 0x1000000)           // code32_start
	le.PutUint32(wantBP[0x228:], cl)                  // cmd_line_ptr
	le.PutUint32(wantBP[0x218:], uint32(initrdStart)) // ramdisk_image
	le.PutUint32(wantBP[0x21C:], uint32(len(initrd))) // ramdisk_size
	le.PutUint64(wantBP[0x070:], 0xE0000)             // acpi_rsdp_addr
	m := DefaultMap(memSize)
	wantBP[0x1E8] = byte(len(m)) // e820_entries
	for i, e := range m {
		le.PutUint64(wantBP[0x2D0+20*i:], e.Addr)
		le.PutUint64(wantBP[0x2D0+20*i+8:], e.Size)
		le.PutUint32(wantBP[0x2D0+20*i+16:], uint32(e.Type))
	}
	if diff := cmp.Diff(wantBP, bp); diff != "" {
		t.Errorf("zero page (-want +got):\n%s", diff)
	}

	// GDT and page tables as the CPU will read them.
	if got := []uint64{mem.u64(gdt), mem.u64(gdt + 8), mem.u64(gdt + 16), mem.u64(gdt + 24)}; !cmp.Equal(got, []uint64{0, 0x00CF9B000000FFFF, 0x00AF9B000000FFFF, 0x00CF93000000FFFF}) {
		t.Errorf("GDT = %#x", got)
	}
	if got := mem.u64(pt); got != pt+0x1000|3 {
		t.Errorf("PML4[0] = %#x", got)
	}
	for i := uint64(0); i < 4; i++ {
		if got := mem.u64(pt + 0x1000 + 8*i); got != (pt+0x2000+i*0x1000)|3 {
			t.Errorf("PDPT[%d] = %#x", i, got)
		}
	}
	for _, va := range []uint64{0, 0x1000000, 0x40000000, 0xFFE00000} {
		pde := mem.u64(pt + 0x2000 + 8*(va>>21))
		if pde != va|0x83 {
			t.Errorf("PDE for %#x = %#x, want %#x", va, pde, va|0x83)
		}
	}
}

func TestLoadLinuxPlacement(t *testing.T) {
	tests := []struct {
		name       string
		memSize    uint64
		opts       func(*bzOpts)
		cfg        Config
		wantKernel uint64
		wantInitrd Range
		wantErr    string
	}{
		{
			name: "pref_address outside small RAM, relocated to next alignment from 1 MiB", memSize: 8 << 20,
			wantKernel: 0x200000,
		},
		{
			name: "not relocatable and pref_address outside RAM", memSize: 8 << 20,
			opts: func(o *bzOpts) { o.relocatable = false }, wantErr: "not in guest RAM",
		},
		{
			name: "initrd below initrd_addr_max", memSize: 256 << 20,
			opts:       func(o *bzOpts) { o.addrMax = 0x3FFFFFF },
			cfg:        Config{Initrd: make([]byte, 0x1800)},
			wantKernel: 0x1000000, wantInitrd: Range{0x4000000 - 0x2000, 0x4000000 - 0x800},
		},
		{
			name: "initrd below a reserved hole", memSize: 256 << 20,
			cfg: Config{Initrd: make([]byte, 0x1000), Map: []E820Entry{
				{0, 0x9FC00, E820RAM}, {0x100000, 0x6F00000, E820RAM},
				{0x7000000, 0x1000000, E820Reserved}, {0x8000000, 0x8000000, E820ACPI},
			}},
			wantKernel: 0x1000000, wantInitrd: Range{0x6FFF000, 0x7000000},
		},
		{
			name: "initrd does not fit beside the kernel", memSize: 20 << 20,
			cfg: Config{Initrd: make([]byte, 16<<20)}, wantErr: "no room",
		},
		{
			name: "command line too long", memSize: 64 << 20,
			cfg: Config{Cmdline: strings.Repeat("x", 2048)}, wantErr: "at most 2047",
		},
		{
			name: "RSDP needs protocol 2.14", memSize: 64 << 20,
			opts: func(o *bzOpts) { o.version = 0x020C }, cfg: Config{RSDP: 0xE0000}, wantErr: "acpi_rsdp_addr",
		},
		{
			name: "modules are Multiboot only", memSize: 64 << 20,
			cfg: Config{Modules: []Module{{Data: []byte{1}}}}, wantErr: "Multiboot modules",
		},
		{
			name: "map without RAM", memSize: 64 << 20,
			cfg: Config{Map: []E820Entry{{0, 64 << 20, E820Reserved}}}, wantErr: "no RAM",
		},
		{
			name: "map wraps", memSize: 64 << 20,
			cfg: Config{Map: []E820Entry{{0xFFFFFFFFFFFFF000, 0x2000, E820RAM}}}, wantErr: "wraps",
		},
		{
			name: "map larger than memory", memSize: 16 << 20,
			cfg: Config{Map: []E820Entry{{0, 0x9FC00, E820RAM}, {0x100000, 64 << 20, E820RAM}}}, wantErr: "outside",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultBz()
			if tt.opts != nil {
				tt.opts(&o)
			}
			r, err := LoadLinux(newFakeMemory(tt.memSize), makeBzImage(o), tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Kernel.Start != tt.wantKernel || r.Entry.Regs.RIP != tt.wantKernel+0x200 {
				t.Errorf("kernel at %#x, RIP %#x; want %#x", r.Kernel.Start, r.Entry.Regs.RIP, tt.wantKernel)
			}
			if r.Initrd != tt.wantInitrd {
				t.Errorf("initrd at %#x, want %#x", r.Initrd, tt.wantInitrd)
			}
		})
	}
}
