// Command mkiso makes a hybrid BIOS+UEFI GRUB ISO that boots the hypervisor
// image with a given kernel command line and boot modules (see package
// hv/tools/bootmedia). Each module is named by its base name, the name the
// hypervisor's options and VM configurations use.
//
// Usage:
//
//	mkiso -o out/hv.iso [-cmdline "selftest"] out/hv [module ...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"hv/tools/bootmedia"
)

func main() {
	out := flag.String("o", "", "write the ISO to this `file`")
	cmdline := flag.String("cmdline", "", "kernel command line (boot options)")
	flag.Parse()
	if *out == "" || flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: mkiso -o ISO [-cmdline OPTIONS] IMAGE [MODULE...]")
		os.Exit(2)
	}
	if err := bootmedia.MakeISO(context.Background(), flag.Arg(0), *cmdline, *out, flag.Args()[1:]...); err != nil {
		fmt.Fprintln(os.Stderr, "mkiso:", err)
		os.Exit(1)
	}
}
