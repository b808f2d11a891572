package loader

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
)

// Setup header offsets: the header sits at 0x1F1 in both the bzImage file
// and struct boot_params (Documentation/arch/x86/boot.rst, "The Real-Mode
// Kernel Header"; arch/x86/include/uapi/asm/bootparam.h).
const (
	hdrSetupSects      = 0x1F1 // 1 byte: size of the setup in 512-byte sectors, minus the boot sector
	hdrSyssize         = 0x1F4 // 4: protected-mode code size in 16-byte paragraphs (2.04+)
	hdrBootFlag        = 0x1FE // 2: 0xAA55
	hdrJump            = 0x200 // 2: jump instruction; byte 0x201 gives the header's length
	hdrMagic           = 0x202 // 4: "HdrS"
	hdrVersion         = 0x206 // 2: boot protocol version
	hdrTypeOfLoader    = 0x210 // 1
	hdrLoadflags       = 0x211 // 1
	hdrCode32Start     = 0x214 // 4
	hdrRamdiskImage    = 0x218 // 4
	hdrRamdiskSize     = 0x21C // 4
	hdrHeapEndPtr      = 0x224 // 2 (2.01+)
	hdrExtLoaderVer    = 0x226 // 1 (2.02+)
	hdrCmdLinePtr      = 0x228 // 4 (2.02+)
	hdrInitrdAddrMax   = 0x22C // 4 (2.03+)
	hdrKernelAlignment = 0x230 // 4 (2.05+)
	hdrRelocatable     = 0x234 // 1 (2.05+)
	hdrXloadflags      = 0x236 // 2 (2.12+)
	hdrCmdlineSize     = 0x238 // 4 (2.06+)
	hdrPrefAddress     = 0x258 // 8 (2.10+)
	hdrInitSize        = 0x260 // 4 (2.10+)
	hdrEnd212          = 0x264 // end of the fields a 2.12 header must have
)

// boot_params fields outside the setup header (Documentation/arch/x86/
// zero-page.rst).
const (
	bpACPIRSDPAddr     = 0x070 // 8 (2.14+)
	bpExtRamdiskImage  = 0x0C0 // 4: high 32 bits of ramdisk_image
	bpExtRamdiskSize   = 0x0C4 // 4
	bpExtCmdLinePtr    = 0x0C8 // 4
	bpE820Entries      = 0x1E8 // 1
	bpE820Table        = 0x2D0 // 128 entries of 20 bytes
	bpE820MaxEntries   = 128   // E820_MAX_ENTRIES_ZEROPAGE
	bpE820EntrySize    = 20    // struct boot_e820_entry: addr u64, size u64, type u32, packed
	bootParamsSize     = 4096
	entry64Offset      = 0x200 // the 64-bit entry point, from the protected-mode kernel's start
	setupSectorSize    = 512
	defaultSetupSects  = 4 // setup_sects == 0 means 4 (boot.rst, "Details of Header Fields")
	bootFlagValue      = 0xAA55
	heapEndPtrValue    = 0xFE00 // end of the setup heap, relative to the real-mode code (what boot.rst's sample loader uses)
	typeOfLoaderUndef  = 0xFF   // "undefined" boot loader ID (boot.rst, type_of_loader)
	minProtocol64      = 0x020C // 2.12: xloadflags, and with it XLF_KERNEL_64
	protocolRSDPAddr   = 0x020E // 2.14: acpi_rsdp_addr
	highKernelDefault  = 0x100000
	initrdAddrMaxOlder = 0x37FFFFFF // initrd_addr_max before protocol 2.03 (boot.rst)
)

// loadflags and xloadflags bits (boot.rst, "Details of Header Fields").
const (
	LoadedHigh           = 1 << 0 // protected-mode code loaded at 0x100000 (a bzImage)
	CanUseHeap           = 1 << 7 // heap_end_ptr is valid
	XLFKernel64          = 1 << 0 // has the legacy 64-bit entry point at 0x200
	XLFCanBeLoadedAbove4 = 1 << 1 // kernel, boot_params, cmdline and ramdisk may be above 4 GiB
)

// bzMagic is "HdrS" at 0x202.
var bzMagic = []byte("HdrS")

// SetupHeader is the part of a bzImage's setup header a loader uses.
type SetupHeader struct {
	SetupSects      uint8
	Syssize         uint32
	Version         uint16
	Loadflags       uint8
	Code32Start     uint32
	InitrdAddrMax   uint32
	KernelAlignment uint32
	Relocatable     bool
	Xloadflags      uint16
	CmdlineSize     uint32
	PrefAddress     uint64
	InitSize        uint32
	// HeaderEnd is the offset just past the header (0x202 plus the byte at
	// 0x201), the bytes a loader copies into boot_params.
	HeaderEnd int
}

// SetupSize is the size of the real-mode part of the file: the boot
// sector plus setup_sects sectors. The protected-mode kernel follows it.
func (h *SetupHeader) SetupSize() int {
	n := int(h.SetupSects)
	if n == 0 {
		n = defaultSetupSects
	}
	return (n + 1) * setupSectorSize
}

// IsBzImage reports whether image carries the Linux setup header magic.
func IsBzImage(image []byte) bool {
	return len(image) >= hdrMagic+4 && bytes.Equal(image[hdrMagic:hdrMagic+4], bzMagic)
}

func describeBzMagic(image []byte) string {
	if len(image) < hdrMagic+4 {
		return fmt.Sprintf("%d bytes, too short for a setup header", len(image))
	}
	return fmt.Sprintf("no HdrS magic at %#x", hdrMagic)
}

// ErrNotBzImage wraps every reason ParseSetupHeader rejects an image.
var ErrNotBzImage = errors.New("not a loadable bzImage")

// ParseSetupHeader reads and checks a bzImage's setup header: everything
// the 64-bit boot protocol needs must be there and make sense.
func ParseSetupHeader(image []byte) (*SetupHeader, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrNotBzImage, fmt.Sprintf(format, a...))
	}
	if !IsBzImage(image) {
		return nil, bad("%s", describeBzMagic(image))
	}
	if len(image) < hdrEnd212 {
		return nil, bad("%d bytes, too short for a 2.12 setup header", len(image))
	}
	if f := le.Uint16(image[hdrBootFlag:]); f != bootFlagValue {
		return nil, bad("boot flag at %#x is %#x, want %#x", hdrBootFlag, f, bootFlagValue)
	}
	h := &SetupHeader{Version: le.Uint16(image[hdrVersion:])}
	if h.Version < minProtocol64 {
		return nil, bad("boot protocol %d.%02d, want 2.12 or later for the 64-bit entry", h.Version>>8, h.Version&0xFF)
	}
	h.HeaderEnd = 0x202 + int(image[hdrJump+1])
	if h.HeaderEnd < hdrEnd212 {
		return nil, bad("setup header ends at %#x, before the 2.12 fields end at %#x", h.HeaderEnd, hdrEnd212)
	}
	h.SetupSects = image[hdrSetupSects]
	if len(image) < h.SetupSize() || h.HeaderEnd > h.SetupSize() {
		return nil, bad("%d bytes, shorter than the %d-byte setup with a header to %#x", len(image), h.SetupSize(), h.HeaderEnd)
	}
	h.Syssize = le.Uint32(image[hdrSyssize:])
	h.Loadflags = image[hdrLoadflags]
	h.Code32Start = le.Uint32(image[hdrCode32Start:])
	h.InitrdAddrMax = le.Uint32(image[hdrInitrdAddrMax:])
	h.KernelAlignment = le.Uint32(image[hdrKernelAlignment:])
	h.Relocatable = image[hdrRelocatable] != 0
	h.Xloadflags = le.Uint16(image[hdrXloadflags:])
	h.CmdlineSize = le.Uint32(image[hdrCmdlineSize:])
	h.PrefAddress = le.Uint64(image[hdrPrefAddress:])
	h.InitSize = le.Uint32(image[hdrInitSize:])

	if h.Loadflags&LoadedHigh == 0 {
		return nil, bad("loadflags %#x lacks LOADED_HIGH: a zImage, not a bzImage", h.Loadflags)
	}
	if h.Xloadflags&XLFKernel64 == 0 {
		return nil, bad("xloadflags %#x lacks XLF_KERNEL_64: no 64-bit entry point", h.Xloadflags)
	}
	pm := uint64(len(image) - h.SetupSize())
	if h.Syssize == 0 || uint64(h.Syssize)*16 > pm {
		return nil, bad("syssize %#x paragraphs, but the file has %#x bytes after the setup", h.Syssize, pm)
	}
	if h.KernelAlignment == 0 || bits.OnesCount32(h.KernelAlignment) != 1 {
		return nil, bad("kernel_alignment %#x is not a power of two", h.KernelAlignment)
	}
	if uint64(h.InitSize) < uint64(h.Syssize)*16 {
		return nil, bad("init_size %#x is smaller than the %#x-byte kernel", h.InitSize, uint64(h.Syssize)*16)
	}
	if !h.Relocatable && h.PrefAddress%uint64(h.KernelAlignment) != 0 {
		return nil, bad("not relocatable and pref_address %#x is not aligned to %#x", h.PrefAddress, h.KernelAlignment)
	}
	if h.CmdlineSize == 0 {
		return nil, bad("cmdline_size is 0")
	}
	return h, nil
}

// LoadLinux loads a bzImage for the 64-bit boot protocol (boot.rst,
// "64-bit Boot Protocol"): the protected-mode kernel at pref_address (or
// the lowest aligned place from 1 MiB when that is taken and the kernel is
// relocatable), the initrd as high as initrd_addr_max and RAM allow, the
// zero page, the command line, a GDT and identity page tables; the vCPU
// starts at the 64-bit entry with RSI pointing at the zero page.
func LoadLinux(mem Memory, image []byte, cfg Config) (*Result, error) {
	h, err := ParseSetupHeader(image)
	if err != nil {
		return nil, err
	}
	if len(cfg.Modules) > 0 {
		return nil, errors.New("bzImage: Multiboot modules given; use Initrd")
	}
	if uint64(len(cfg.Cmdline)) > uint64(h.CmdlineSize) {
		return nil, fmt.Errorf("bzImage: command line is %d bytes, the kernel takes at most %d", len(cfg.Cmdline), h.CmdlineSize)
	}
	s, err := newSpace(mem, cfg.Map)
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	// Loader structures go below 1 MiB first, so the kernel and initrd
	// keep the large free ranges.
	entry, err := s.longModeSetup()
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	zp, err := s.low(bootParamsSize, pageSize, lowBase, 1<<32, "zero page")
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	cl, err := s.low(uint64(len(cfg.Cmdline))+1, 16, lowBase, 1<<32, "command line")
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	sp, err := s.stack()
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}

	kernel, err := s.placeKernel(h)
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	pm := image[h.SetupSize():]
	if err := s.write(kernel.Start, pm, "kernel"); err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}

	var initrd Range
	if len(cfg.Initrd) > 0 {
		// boot.rst: initrd_addr_max is the highest address the initrd may
		// occupy, so the end must be at most initrd_addr_max+1.
		limit := uint64(initrdAddrMaxOlder) + 1
		if h.Version >= 0x0203 {
			limit = uint64(h.InitrdAddrMax) + 1
		}
		if initrd, err = s.high(uint64(len(cfg.Initrd)), pageSize, limit, "initrd"); err != nil {
			return nil, fmt.Errorf("bzImage: %w", err)
		}
		if err := s.write(initrd.Start, cfg.Initrd, "initrd"); err != nil {
			return nil, fmt.Errorf("bzImage: %w", err)
		}
	}

	bp, err := bootParams(image, h, cfg, s.mapForGuest(cfg.Map), kernel.Start, cl.Start, initrd)
	if err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	if err := s.write(zp.Start, bp, "zero page"); err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}
	if err := s.write(cl.Start, append([]byte(cfg.Cmdline), 0), "command line"); err != nil {
		return nil, fmt.Errorf("bzImage: %w", err)
	}

	entry.Regs.RIP = kernel.Start + entry64Offset
	entry.Regs.RSI = zp.Start
	entry.Regs.RSP = sp
	return &Result{Kind: KindLinux, Entry: entry, Kernel: kernel, Initrd: initrd, Info: zp}, nil
}

// placeKernel claims init_size bytes for the kernel: it is loaded at the
// start and decompresses in place, so all of it must be free RAM.
func (s *space) placeKernel(h *SetupHeader) (Range, error) {
	size := uint64(h.InitSize)
	align := uint64(h.KernelAlignment)
	pref := h.PrefAddress
	if pref == 0 {
		pref = highKernelDefault
	}
	if r, err := s.claim(pref, size, "kernel"); err == nil || !h.Relocatable {
		return r, err
	}
	// The 64-bit entry relocates itself to the next kernel_alignment
	// boundary, so any aligned address below 4 GiB will do (above needs
	// XLF_CAN_BE_LOADED_ABOVE_4G and is never needed with this layout).
	return s.low(size, align, highKernelDefault, 1<<32, "kernel")
}

// mapForGuest is the memory map the guest is told: the caller's, or the
// default for the memory size.
func (s *space) mapForGuest(m []E820Entry) []E820Entry {
	if m == nil {
		return DefaultMap(s.mem.Size())
	}
	return m
}

// bootParams builds the zero page: all zero, the image's setup header
// copied to 0x1F1, and the fields a boot loader must fill in.
func bootParams(image []byte, h *SetupHeader, cfg Config, m []E820Entry, load, cmdline uint64, initrd Range) ([]byte, error) {
	if len(m) > bpE820MaxEntries {
		return nil, fmt.Errorf("memory map has %d entries, boot_params holds %d", len(m), bpE820MaxEntries)
	}
	bp := make([]byte, bootParamsSize)
	copy(bp[hdrSetupSects:h.HeaderEnd], image[hdrSetupSects:h.HeaderEnd])

	bp[hdrTypeOfLoader] = typeOfLoaderUndef
	bp[hdrExtLoaderVer] = 0
	bp[hdrLoadflags] |= LoadedHigh | CanUseHeap
	le.PutUint16(bp[hdrHeapEndPtr:], heapEndPtrValue)
	if load < 1<<32 {
		le.PutUint32(bp[hdrCode32Start:], uint32(load))
	}
	le.PutUint32(bp[hdrCmdLinePtr:], uint32(cmdline))
	le.PutUint32(bp[bpExtCmdLinePtr:], uint32(cmdline>>32))
	size := initrd.End - initrd.Start
	le.PutUint32(bp[hdrRamdiskImage:], uint32(initrd.Start))
	le.PutUint32(bp[bpExtRamdiskImage:], uint32(initrd.Start>>32))
	le.PutUint32(bp[hdrRamdiskSize:], uint32(size))
	le.PutUint32(bp[bpExtRamdiskSize:], uint32(size>>32))
	if cfg.RSDP != 0 {
		if h.Version < protocolRSDPAddr {
			return nil, fmt.Errorf("boot protocol %d.%02d has no acpi_rsdp_addr (2.14+)", h.Version>>8, h.Version&0xFF)
		}
		le.PutUint64(bp[bpACPIRSDPAddr:], cfg.RSDP)
	}
	bp[bpE820Entries] = uint8(len(m))
	for i, e := range m {
		o := bpE820Table + i*bpE820EntrySize
		le.PutUint64(bp[o:], e.Addr)
		le.PutUint64(bp[o+8:], e.Size)
		le.PutUint32(bp[o+16:], uint32(e.Type))
	}
	return bp, nil
}
