package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"hv/boot"
	"hv/cmd/hv/bootopt"
	"hv/devices/virtio/net/vswitch"
	"hv/vmm"
	"hv/vmm/config"
	"hv/vmm/loader"
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

// guest is one PC VM to run, its files named by boot module names.
type guest struct {
	name    string
	kernel  string
	initrd  string
	cmdline string
	disk    string // module copied into the virtio disk, "" for none
	diskMiB uint64 // size of an empty disk when disk is "" (0: the PC's default)
	memMiB  uint64 // 0: the PC's default
	cpus    int    // vCPUs; 0: 1
	sw      *vswitch.Switch
	cache   *cacheMon // cache monitoring the VM reports to (boot option cachemon)
}

// hostCPUs places a VM's vCPUs: vCPU 0 on first, the others on the host
// CPUs after it in turn, wrapping around, so that vCPUs spread over the
// host CPUs and share one only when there are more vCPUs than CPUs.
func hostCPUs(first, vcpus, ncpu int) []int {
	cpus := make([]int, max(vcpus, 1))
	for i := range cpus {
		cpus[i] = (first + i) % max(ncpu, 1)
	}
	return cpus
}

// machineConfig reads the guest's modules into a PC configuration.
func (g guest) machineConfig() (pc.Config, error) {
	cfg := pc.Config{Name: g.name, Cmdline: g.cmdline, MemSize: g.memMiB << 20, DiskSize: g.diskMiB << 20,
		CPUs: g.cpus, Switch: g.sw, Console: os.Stdout}
	var err error
	if cfg.Kernel, err = moduleBytes(g.kernel); err != nil {
		return cfg, fmt.Errorf("kernel: %w", err)
	}
	if g.initrd != "" {
		if cfg.Initrd, err = moduleBytes(g.initrd); err != nil {
			return cfg, fmt.Errorf("initrd: %w", err)
		}
		// A Multiboot loader hands the initrd over as the kernel's first
		// module, named as it was given (QEMU's -initrd does the same).
		if !loader.IsBzImage(cfg.Kernel) {
			cfg.Modules = []loader.Module{{Data: cfg.Initrd, Cmdline: g.initrd}}
			cfg.Initrd = nil
		}
	}
	// Multiboot loaders (GRUB, QEMU) put the kernel's name before its
	// command line.
	if _, err := loader.FindMultibootHeader(cfg.Kernel); err == nil && !loader.IsBzImage(cfg.Kernel) {
		cfg.Cmdline = strings.TrimSpace(g.kernel + " " + g.cmdline)
	}
	if g.disk != "" {
		if cfg.Disk, err = moduleBytes(g.disk); err != nil {
			return cfg, fmt.Errorf("disk: %w", err)
		}
	}
	return cfg, nil
}

// runGuest builds the slot's PC and runs it on host CPU cpu; ok is false
// when it could not be built or the VMM stopped it. VMs running at once
// share one backend, which gives each vCPU its own ASID, and are built one
// at a time under build.
func runGuest(s *vmSlot, b vmm.Backend, build *sync.Mutex, cpu int) (out pc.Outcome, ok bool) {
	g := s.g
	build.Lock()
	cfg, err := g.machineConfig()
	if err != nil {
		build.Unlock()
		s.ended(out, false)
		fmt.Printf("hv: error: vm %s: %v\n", g.name, err)
		return out, false
	}
	m, err := pc.New(cfg, b, platform{})
	build.Unlock()
	if err != nil {
		s.ended(out, false)
		fmt.Printf("hv: error: %v\n", err)
		return out, false
	}
	defer m.Close()
	if err := g.cache.attach(m.VM, m.VM.CPUs); err != nil {
		fmt.Printf("hv: vm %s: %v; running without cache monitoring\n", g.name, err)
	}
	placement := hostCPUs(cpu, m.VM.CPUs, boot.CPUCount())
	where := fmt.Sprintf("cpu %d", cpu)
	if len(placement) > 1 {
		where = fmt.Sprintf("%d vCPUs on host cpus %v", len(placement), placement)
	}
	fmt.Printf("hv: vm %s: %s, %d MiB, kernel %d bytes, initrd %d bytes, %s\n", g.name, m.Loaded.Kind, m.VM.Mem.Size()>>20, len(cfg.Kernel), len(cfg.Initrd)+moduleBytesLen(cfg.Modules), where)
	s.started(m)
	start := time.Now()
	out, exits, err := m.Run(placement...)
	fmt.Printf("hv: vm %s: %d exits in %v\n", g.name, exits, time.Since(start).Round(time.Millisecond))
	// The slot's state changes before the line that reports it (on every
	// path), so that a monitor command prompted by the line sees it.
	s.ended(out, err == nil)
	if err != nil {
		// A StopError names the VM itself, and carries the exits before
		// the stop.
		if se := (*vmm.StopError)(nil); errors.As(err, &se) {
			fmt.Printf("hv: %v\n", err)
			for _, l := range se.Recent {
				fmt.Printf("hv: vm %s:   %s\n", g.name, l)
			}
		} else {
			fmt.Printf("hv: vm %s: %v\n", g.name, err)
		}
		return out, false
	}
	if g.cache != nil && g.cache.s != nil {
		g.cache.writeText(os.Stdout, "hv: vm "+g.name+": ")
	}
	if out.Kind == pc.Stopped {
		fmt.Printf("hv: vm %s: stopped by the monitor\n", g.name)
	} else {
		fmt.Printf("hv: vm %s: %s\n", g.name, out.Kind)
	}
	return out, true
}

func moduleBytesLen(ms []loader.Module) int {
	n := 0
	for _, m := range ms {
		n += len(m.Data)
	}
	return n
}

// status is the hypervisor's exit status for one VM's end: 0 when it
// powered off, the value it wrote to the exit port (so the outer QEMU
// exits as it would had the guest written there itself), 1 otherwise.
func status(out pc.Outcome, ok bool) int {
	switch {
	case !ok:
		return 1
	case out.Kind == pc.PowerOff:
		return 0
	case out.Kind == pc.ExitPort:
		return int(out.Value)
	}
	return 1
}

// runVM runs the PC guest the boot options describe, vCPU 0 on CPU 0, and
// returns the hypervisor's exit status.
func runVM(o *bootopt.VM, cache *cacheMon) int {
	b, err := newBackend()
	if err != nil {
		fmt.Printf("hv: error: vm %s: %v\n", o.Name, err)
		return 1
	}
	vs := vmSet{newSlot(guest{name: o.Name, kernel: o.Kernel, initrd: o.Initrd, cmdline: o.Append,
		disk: o.Disk, memMiB: o.MemMiB, cpus: o.CPUs, cache: cache})}
	done := make(chan struct{})
	defer close(done)
	fmt.Print(consoleHelp(vs))
	go vs.serveConsole(done)
	return status(vs[0].run(b, new(sync.Mutex), 0))
}

// runConfig runs every VM of the configuration file in boot module name at
// once, each on its own host CPU while there are enough (later VMs wait
// for a CPU to free), VMs naming the same nic on one virtual switch. It
// returns the exit status: a single VM's as runVM gives it, else 0 when
// every VM powered off and 1 otherwise.
func runConfig(name string, cache *cacheMon) int {
	data, err := moduleBytes(name)
	if err != nil {
		fmt.Printf("hv: error: config: %v\n", err)
		return 1
	}
	f, err := config.Parse(name, data)
	if err != nil {
		fmt.Printf("hv: error: config: %v\n", err)
		return 1
	}
	switches := map[string]*vswitch.Switch{}
	guests := make([]guest, len(f.VMs))
	var up *uplink
	for i, vm := range f.VMs {
		g := guest{name: vm.Name, kernel: vm.Kernel, initrd: vm.Initrd, cmdline: vm.Cmdline,
			disk: vm.Disk.Module, diskMiB: vm.Disk.RAMMiB, memMiB: vm.MemoryMiB, cpus: vm.CPUs, cache: cache}
		if vm.NIC != "" {
			if switches[vm.NIC] == nil {
				switches[vm.NIC] = vswitch.New(0)
			}
			g.sw = switches[vm.NIC]
		}
		if vm.NIC == config.UplinkSwitch && up == nil {
			if up, err = openUplink(g.sw); err != nil {
				fmt.Printf("hv: error: config: %s:%d: nic %s: %v\n", name, vm.NICLine, vm.NIC, err)
				return 1
			}
			fmt.Printf("hv: %v, uplink of switch %s\n", up, vm.NIC)
		}
		guests[i] = g
	}
	b, err := newBackend()
	if err != nil {
		fmt.Printf("hv: error: config: %v\n", err)
		return 1
	}
	ncpu := boot.CPUCount()
	fmt.Printf("hv: config %s: %d VMs on %d CPUs\n", name, len(guests), ncpu)
	if len(guests) > ncpu {
		fmt.Printf("hv: config %s: more VMs than CPUs: VMs after the first %d wait for a CPU to free (VMs waiting for each other will not finish)\n", name, ncpu)
	}
	type result struct {
		out pc.Outcome
		ok  bool
	}
	vs := make(vmSet, len(guests))
	for i, g := range guests {
		vs[i] = newSlot(g)
	}
	done := make(chan struct{})
	defer close(done)
	if up != nil {
		go up.run(done)
	}
	fmt.Print(consoleHelp(vs))
	go vs.serveConsole(done)
	results := make([]result, len(guests))
	work := make(chan int)
	var wg sync.WaitGroup
	var build sync.Mutex
	for cpu := 0; cpu < ncpu && cpu < len(guests); cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out, ok := vs[i].run(b, &build, cpu)
				results[i] = result{out, ok}
			}
		}()
	}
	for i := range guests {
		work <- i
	}
	close(work)
	wg.Wait()
	if up != nil {
		fmt.Printf("hv: %s\n", up.stats())
	}
	if len(guests) == 1 {
		return status(results[0].out, results[0].ok)
	}
	clean := 0
	for _, r := range results {
		if r.ok && r.out.Kind == pc.PowerOff {
			clean++
		}
	}
	fmt.Printf("hv: config %s: %d of %d VMs powered off\n", name, clean, len(guests))
	if clean != len(guests) {
		return 1
	}
	return 0
}
