// Command mkpxe fills a directory that iPXE boots the hypervisor from: the
// image, an iPXE script carrying the kernel command line, and Debian's iPXE
// loaders when installed (see package hv/tools/bootmedia).
//
// Usage:
//
//	mkpxe -o out/pxe [-cmdline "selftest"] out/hv
package main

import (
	"flag"
	"fmt"
	"os"

	"hv/tools/bootmedia"
)

func main() {
	out := flag.String("o", "", "fill this `directory`")
	cmdline := flag.String("cmdline", "", "kernel command line (boot options)")
	ipxe := flag.String("ipxe", bootmedia.IPXEDir, "copy undionly.kpxe and ipxe.efi from this `directory`")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkpxe -o DIR [-cmdline OPTIONS] IMAGE")
		os.Exit(2)
	}
	missing, err := bootmedia.MakePXE(*out, flag.Arg(0), *cmdline, *ipxe)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkpxe:", err)
		os.Exit(1)
	}
	for _, m := range missing {
		fmt.Fprintf(os.Stderr, "mkpxe: %s not found in %s (Debian package ipxe); only iPXE clients can boot %s\n", m, *ipxe, *out)
	}
}
