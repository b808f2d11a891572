// Command mkinitramfs builds the Linux guest's initramfs: a gzip-compressed
// newc cpio archive with a static busybox, the kernel modules the guest
// needs (virtio over PCI and MMIO, block, network, console) with their
// dependencies in load order, an /init script, a /test script and udhcpc's
// event script /etc/udhcpc.script. It reads
// the tree tools/getkernel unpacked and knows nothing about how it got there.
//
// Usage:
//
//	mkinitramfs [-root out/linux/root] [-modules LIST] [-test FILE] -o out/linux/initramfs.cpio.gz
//
// The archive is reproducible: entries are in a fixed order with zero
// timestamps and owner root, so the same inputs give the same bytes (the
// boot-time benchmark and fault-tolerant replay both rely on identical
// guests).
package main

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cavaliergopher/cpio"
)

// initScript is the guest's /init; defaultTest is its /test unless -test
// names another.
var (
	//go:embed init.sh
	initScript []byte
	//go:embed test-default.sh
	defaultTest []byte
	//go:embed udhcpc.sh
	udhcpcScript []byte
)

// defaultModules are what the Debian cloud kernel needs to find virtio
// devices on PCI (or on MMIO announced in ACPI) and drive a disk, a NIC and
// a console; their dependencies (virtio, virtio_ring, the PCI transport
// libraries, failover) are added by resolve.
const defaultModules = "virtio_pci,virtio_mmio,virtio_blk,virtio_net,virtio_console"

func main() {
	root := flag.String("root", "out/linux/root", "unpacked kernel and busybox packages (from tools/getkernel)")
	busybox := flag.String("busybox", "", "static busybox `binary` (default ROOT/bin/busybox)")
	mods := flag.String("modules", defaultModules, "comma-separated `modules` to load at boot, dependencies added")
	test := flag.String("test", "", "script `file` to run as /test (default: print what was found, power off)")
	out := flag.String("o", "", "write the archive to this `file`")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: mkinitramfs [flags] -o FILE")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if *busybox == "" {
		*busybox = filepath.Join(*root, "bin", "busybox")
	}
	if err := run(*root, *busybox, *mods, *test, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

func run(root, busyboxPath, mods, testPath, out string) error {
	release, err := onlyRelease(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return err
	}
	modDir := filepath.Join(root, "lib", "modules", release)
	tree, err := scanModules(modDir)
	if err != nil {
		return err
	}
	var want []string
	for m := range strings.SplitSeq(mods, ",") {
		if m = strings.TrimSpace(m); m != "" {
			want = append(want, m)
		}
	}
	order, err := tree.resolve(want)
	if err != nil {
		return err
	}
	busybox, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	test := defaultTest
	if testPath != "" {
		if test, err = os.ReadFile(testPath); err != nil {
			return fmt.Errorf("test script: %w", err)
		}
	}
	img := image{release: release, busybox: busybox, init: initScript, test: test}
	for _, m := range order {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return err
		}
		img.modules = append(img.modules, moduleFile{name: m.Name, data: data})
	}
	var buf bytes.Buffer
	if err := img.write(&buf); err != nil {
		return err
	}
	if err := writeFileAtomic(out, buf.Bytes()); err != nil {
		return err
	}
	var names []string
	for _, m := range order {
		names = append(names, m.Name)
	}
	fmt.Printf("mkinitramfs: %s (%d bytes): kernel %s, modules %s\n", out, buf.Len(), release, strings.Join(names, " "))
	return nil
}

func onlyRelease(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("kernel modules (run tools/getkernel first): %w", err)
	}
	var rel []string
	for _, e := range ents {
		if e.IsDir() {
			rel = append(rel, e.Name())
		}
	}
	if len(rel) != 1 {
		return "", fmt.Errorf("want one kernel release in %s, found %q", dir, rel)
	}
	return rel[0], nil
}

// moduleFile is a module's bytes under its canonical name.
type moduleFile struct {
	name string
	data []byte
}

// image is the initramfs content.
type image struct {
	release string
	busybox []byte
	init    []byte
	test    []byte
	modules []moduleFile // in load order
}

// archiveFile is a regular file in the archive.
type archiveFile struct {
	name string
	mode cpio.FileMode
	data []byte
}

// write emits the archive. /dev/console is not included: the kernel's
// built-in initramfs (usr/default_cpio_list) already has it and is
// unpacked before this one, so init's console is open from the start.
func (img *image) write(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	cw := cpio.NewWriter(zw)
	dirs := []string{"bin", "dev", "etc", "lib", "lib/modules", "lib/modules/" + img.release, "proc", "root", "sys", "tmp"}
	for _, d := range dirs {
		if err := cw.WriteHeader(&cpio.Header{Name: d, Mode: cpio.TypeDir | 0o755, Links: 2}); err != nil {
			return fmt.Errorf("cpio %s: %w", d, err)
		}
	}
	var order strings.Builder
	files := []archiveFile{
		{"bin/busybox", 0o755, img.busybox},
		{"init", 0o755, img.init},
		{"test", 0o755, img.test},
		{"etc/udhcpc.script", 0o755, udhcpcScript},
	}
	for _, m := range img.modules {
		files = append(files, archiveFile{"lib/modules/" + img.release + "/" + m.name + ".ko", 0o644, m.data})
		fmt.Fprintln(&order, m.name)
	}
	files = append(files, archiveFile{"lib/modules/load-order", 0o644, []byte(order.String())})
	for _, f := range files {
		hdr := &cpio.Header{Name: f.name, Mode: cpio.TypeReg | f.mode, Size: int64(len(f.data)), Links: 1}
		if err := cw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("cpio %s: %w", f.name, err)
		}
		if _, err := cw.Write(f.data); err != nil {
			return fmt.Errorf("cpio %s: %w", f.name, err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return zw.Close()
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
