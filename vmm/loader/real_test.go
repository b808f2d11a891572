package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// realLinuxDir is where `make linux-files` puts Debian's kernel and the
// initramfs (docs/linux-guest.md).
var realLinuxDir = filepath.Join("..", "..", "out", "linux")

// TestRealBzImage loads Debian's cloud kernel when it has been fetched, and
// checks the result against the file itself.
func TestRealBzImage(t *testing.T) {
	img, err := os.ReadFile(filepath.Join(realLinuxDir, "vmlinuz"))
	if err != nil {
		t.Skipf("no real kernel (run make linux-files): %v", err)
	}
	h, err := ParseSetupHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot protocol %d.%02d, setup_sects %d, pref_address %#x, init_size %#x, alignment %#x, xloadflags %#x, initrd_addr_max %#x, cmdline_size %d",
		h.Version>>8, h.Version&0xFF, h.SetupSects, h.PrefAddress, h.InitSize, h.KernelAlignment, h.Xloadflags, h.InitrdAddrMax, h.CmdlineSize)
	if !h.Relocatable || h.Xloadflags&XLFKernel64 == 0 {
		t.Errorf("Debian's kernel should be relocatable with a 64-bit entry: %+v", h)
	}
	initrd, err := os.ReadFile(filepath.Join(realLinuxDir, "initramfs.cpio.gz"))
	if err != nil {
		initrd = pattern(1<<20, 1)
	}
	const memSize = 512 << 20
	mem := newFakeMemory(memSize)
	cfg := Config{Cmdline: "console=ttyS0 panic=-1", Initrd: initrd}
	r, err := Load(mem, "vmlinuz", img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kernel.Start != h.PrefAddress || r.Entry.Regs.RIP != h.PrefAddress+0x200 {
		t.Errorf("kernel at %#x, RIP %#x; want pref_address %#x", r.Kernel.Start, r.Entry.Regs.RIP, h.PrefAddress)
	}
	pm := img[h.SetupSize():]
	if got := mem.read(r.Kernel.Start, uint64(len(pm))); !bytes.Equal(got, pm) {
		t.Error("protected-mode kernel not loaded verbatim")
	}
	if got := mem.read(r.Initrd.Start, uint64(len(initrd))); !bytes.Equal(got, initrd) || r.Initrd.End > memSize || r.Initrd.Start%4096 != 0 {
		t.Errorf("initrd at %#x", r.Initrd)
	}
	if r.Initrd.Start < r.Kernel.End {
		t.Errorf("initrd %#x overlaps the kernel's decompression area %#x", r.Initrd, r.Kernel)
	}
	zp := r.Entry.Regs.RSI
	if got := mem.read(zp+hdrMagic, 4); string(got) != "HdrS" {
		t.Errorf("zero page has no header copy: %q", got)
	}
	if got := mem.u32(zp + hdrRamdiskImage); uint64(got) != r.Initrd.Start {
		t.Errorf("ramdisk_image = %#x", got)
	}
	if got := mem.cstring(uint64(mem.u32(zp + hdrCmdLinePtr))); got != cfg.Cmdline {
		t.Errorf("command line = %q", got)
	}
}
