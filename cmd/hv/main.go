// Command hv is the hypervisor: the Go program that the boot platform runs
// once the runtime is up. It reads the boot options, reports the machine,
// and runs what the options ask for.
package main

import (
	"fmt"
	"os"
	"strings"

	"hv/boot"
	"hv/boot/selftest"
	"hv/cmd/hv/bootopt"
)

func main() {
	opts, err := bootopt.Parse(boot.Cmdline())
	if err != nil {
		fmt.Printf("hv: error: %v\n", err)
		boot.Exit(1)
	}
	report()
	switch opts.SelfTest {
	case "crash":
		selftest.Crash()
	case "run":
		if selftest.Run(os.Stdout) != 0 {
			boot.Exit(1)
		}
	}
	if opts.Bench {
		cachemonReport()
		selftest.Bench(os.Stdout)
		benchExits(os.Stdout)
		fmt.Println("bench: done")
	}
	if len(opts.Guests) > 0 {
		if runGuests(opts.Guests) != 0 {
			boot.Exit(1)
		}
	}
	if opts.VM != nil {
		boot.Exit(runVM(opts.VM, newCacheMon(opts.CacheMonMs)))
	}
	if opts.Config != "" {
		boot.Exit(runConfig(opts.Config, newCacheMon(opts.CacheMonMs)))
	}
	boot.Exit(0)
}

func report() {
	c := boot.CPUInfo()
	m := boot.MemoryInfo()
	fmt.Printf("hv: cpu %s %q tsc %d MHz\n", strings.TrimSpace(c.Vendor), c.Brand, c.TSCHz/1e6)
	fmt.Printf("hv: memory %d MiB usable, %d MiB free, top of RAM %#x\n", m.Usable>>20, m.Free>>20, m.Top)
	fmt.Printf("hv: cpus started %d\n", boot.CPUCount())
	fmt.Printf("hv: virtualization %s\n", boot.Virtualization())
	if l := boot.LoaderName(); l != "" {
		fmt.Printf("hv: boot loader %s\n", l)
	}
	// The boot modules as the loader named them: a VM's files are found
	// by these names (a network boot test checks they arrived).
	for _, m := range boot.Modules() {
		fmt.Printf("hv: module %q, %d bytes\n", m.Cmdline, m.End-m.Start)
	}
	// The PMU probe runs only when benchmarks are asked for: it touches
	// 64 MiB to check that the counters count, which a plain boot and the
	// self-test should not pay for.
}
