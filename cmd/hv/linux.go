package main

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"hv/boot"
	"hv/cmd/hv/bootopt"
	"hv/vmm/pc"
)

// moduleBytes returns a copy of the boot module called name: a module is
// called by the base name of the first word of its command line (QEMU and
// GRUB put the file's path there) or by any later word.
func moduleBytes(name string) ([]byte, error) {
	var names []string
	for _, m := range boot.Modules() {
		words := strings.Fields(m.Cmdline)
		match := false
		for i, w := range words {
			if w == name || i == 0 && path.Base(w) == name {
				match = true
			}
		}
		names = append(names, fmt.Sprintf("%q", m.Cmdline))
		if !match {
			continue
		}
		if m.End < m.Start {
			return nil, fmt.Errorf("boot module %q: end %#x before start %#x", name, m.End, m.Start)
		}
		// A copy: the module's frames are not guest memory and the
		// guest's disk writes must not reach the boot module.
		return append([]byte(nil), boot.Phys(m.Start, m.End-m.Start)...), nil
	}
	return nil, fmt.Errorf("no boot module called %q (modules: %s)", name, strings.Join(names, ", "))
}

// runVM runs the PC guest the boot options describe on CPU 0 and returns
// the hypervisor's exit status: 0 when the guest powered off, the value it
// wrote to the exit port, 1 for anything else.
func runVM(o *bootopt.VM) int {
	cfg := pc.Config{Name: o.Name, Cmdline: o.Append, MemSize: o.MemMiB << 20, Console: os.Stdout}
	var err error
	if cfg.Kernel, err = moduleBytes(o.Kernel); err != nil {
		fmt.Printf("hv: error: vm %s: kernel: %v\n", o.Name, err)
		return 1
	}
	if o.Initrd != "" {
		if cfg.Initrd, err = moduleBytes(o.Initrd); err != nil {
			fmt.Printf("hv: error: vm %s: initrd: %v\n", o.Name, err)
			return 1
		}
	}
	if o.Disk != "" {
		if cfg.Disk, err = moduleBytes(o.Disk); err != nil {
			fmt.Printf("hv: error: vm %s: disk: %v\n", o.Name, err)
			return 1
		}
	}
	b, err := newBackend()
	if err != nil {
		fmt.Printf("hv: error: vm %s: %v\n", o.Name, err)
		return 1
	}
	m, err := pc.New(cfg, b, platform{})
	if err != nil {
		fmt.Printf("hv: error: %v\n", err)
		return 1
	}
	defer m.Close()
	fmt.Printf("hv: vm %s: %s, %d MiB, kernel %d bytes, initrd %d bytes\n", o.Name, m.Loaded.Kind, m.VM.Mem.Size()>>20, len(cfg.Kernel), len(cfg.Initrd))
	start := time.Now()
	out, exits, err := m.Run(0)
	fmt.Printf("hv: vm %s: %d exits in %v\n", o.Name, exits, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Printf("hv: vm %s: %v\n", o.Name, err)
		return 1
	}
	fmt.Printf("hv: vm %s: %s\n", o.Name, out.Kind)
	switch out.Kind {
	case pc.PowerOff:
		return 0
	case pc.ExitPort:
		return int(out.Value)
	}
	return 1
}
