// Command mkpxe fills a directory that tools/pxeserver (or any DHCP, TFTP and
// HTTP server) serves to boot the hypervisor over the network: the image,
// the boot modules, an iPXE script carrying the kernel command line, GRUB
// for UEFI clients, and Debian's iPXE loaders when installed (see package
// hv/tools/bootmedia).
//
// Usage:
//
//	mkpxe -o out/pxe [-cmdline "selftest"] out/hv [module ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"hv/tools/bootmedia"
)

func main() {
	out := flag.String("o", "", "fill this `directory`")
	cmdline := flag.String("cmdline", "", "kernel command line (boot options)")
	from := bootmedia.DefaultPXE
	flag.StringVar(&from.IPXEDir, "ipxe", from.IPXEDir, "copy undionly.kpxe and ipxe.efi from this `directory`")
	flag.StringVar(&from.GrubDir, "grub", from.GrubDir, "build grubx64.efi from GRUB's x86_64-efi modules in this `directory`")
	flag.Parse()
	if *out == "" || flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: mkpxe -o DIR [-cmdline OPTIONS] IMAGE [MODULE...]")
		os.Exit(2)
	}
	missing, err := bootmedia.MakePXE(context.Background(), *out, flag.Arg(0), *cmdline, from, flag.Args()[1:]...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkpxe:", err)
		os.Exit(1)
	}
	for _, m := range missing {
		switch m {
		case bootmedia.PXEGrubImage:
			fmt.Fprintf(os.Stderr, "mkpxe: no GRUB EFI modules in %s (Debian package grub-efi-amd64-bin); UEFI clients cannot boot %s\n", from.GrubDir, *out)
		default:
			fmt.Fprintf(os.Stderr, "mkpxe: %s not found in %s (Debian package ipxe); only iPXE clients can boot %s\n", m, from.IPXEDir, *out)
		}
	}
}
