// Command mkimage makes the bootable hypervisor image: it copies the kernel
// ELF and writes Multiboot 1 and Multiboot 2 headers into its unused header
// page (see package hv/tools/mbimage).
//
// Usage:
//
//	mkimage [-v] -o out/hv out/hv.elf
package main

import (
	"flag"
	"fmt"
	"os"

	"hv/tools/mbimage"
)

func main() {
	out := flag.String("o", "", "write the image to this `file`")
	verbose := flag.Bool("v", false, "print the header placement and layout")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkimage [-v] -o IMAGE KERNEL.elf\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(in, out string, verbose bool) error {
	elfBytes, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	img, p, err := mbimage.Build(elfBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	// Write next to the target and rename, so a failed run never leaves a
	// half-written image that make would consider up to date.
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, img, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if verbose {
		fmt.Printf("%s: multiboot1 at %#x, multiboot2 at %#x; load %#x-%#x, bss to %#x, entry %#x\n",
			out, p.MB1Offset, p.MB2Offset, p.LoadAddr, p.LoadEndAddr, p.BSSEndAddr, p.Entry)
	}
	return nil
}
