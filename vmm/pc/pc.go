// Package pc builds the PC a general-purpose guest (Linux) runs on: guest
// RAM with an e820 map, ACPI tables, a local APIC per vCPU, an I/O APIC, the
// 8259 pair, 8254 PIT, CMOS RTC, COM1, the ACPI PM block, the 8042, a PCI
// host bridge with virtio-blk, virtio-net and virtio-console, and the
// isa-debug-exit port; it loads the guest's kernel and runs the VM to an
// outcome (power-off, reset, exit port).
//
// Boundary: it wires vmm, vmm/loader, vmm/acpitables and devices together
// as the firmware of a PC would. It knows nothing of the hardware backend
// or where the kernel's bytes came from.
package pc

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"hv/devices"
	"hv/devices/acpipm"
	"hv/devices/bus"
	"hv/devices/debugport"
	"hv/devices/i8042"
	"hv/devices/ioapic"
	"hv/devices/lapic"
	"hv/devices/pci"
	"hv/devices/pic"
	"hv/devices/pit"
	"hv/devices/rtc"
	"hv/devices/uart"
	"hv/devices/virtio"
	"hv/devices/virtio/blk"
	"hv/devices/virtio/console"
	"hv/devices/virtio/net"
	"hv/devices/virtio/net/vswitch"
	"hv/vmm"
	"hv/vmm/acpitables"
	"hv/vmm/loader"
)

// Guest-visible layout of the PC.
const (
	// MinMemory is the least RAM New accepts: Debian's kernel needs about
	// 70 MiB to decompress itself and its initramfs (docs/linux-guest.md).
	MinMemory = 128 << 20
	// DefaultMemory is the RAM of a Config without MemSize.
	DefaultMemory = 256 << 20
	// PCIMMIOBase and PCIMMIOLimit bound the 32-bit PCI memory window,
	// below the I/O APIC as on PIIX/ICH chipsets; PCIIOBase and PCIIOLimit
	// the I/O window, above the legacy ports as SeaBIOS places it.
	PCIMMIOBase  = 0xE0000000
	PCIMMIOLimit = 0xFEC00000
	PCIIOBase    = 0xC000
	PCIIOLimit   = 0x10000
	// Slots of the PCI functions (bus 0). Distinct slots give each
	// function its own I/O APIC input through acpitables.PCIGSI.
	SlotBlk     = 3
	SlotNet     = 4
	SlotConsole = 5
	// DefaultDiskSize is the size of the empty disk of a Config without
	// Disk.
	DefaultDiskSize = 16 << 20
	// TSCOffset makes guest TSC values differ from the host's, as in the
	// test PC.
	TSCOffset = 1 << 40
)

// Config describes the machine and its guest.
type Config struct {
	Name    string
	MemSize uint64 // bytes, a multiple of 2 MiB; 0: DefaultMemory
	// CPUs is the number of vCPUs (0: 1; at most vmm.MaxCPUs). The MADT
	// lists a local APIC for each, with APIC IDs 0 to CPUs-1; vCPU 0 is
	// the bootstrap processor.
	CPUs int
	// Kernel is a bzImage, Multiboot or ELF image (vmm/loader).
	Kernel  []byte
	Initrd  []byte
	Cmdline string
	// Modules are a Multiboot kernel's modules, in order.
	Modules []loader.Module
	// Disk backs virtio-blk (the guest's writes go to it); nil: an empty
	// disk of DiskSize bytes (DefaultDiskSize when 0).
	Disk     []byte
	DiskSize uint64
	// Switch is the virtual switch virtio-net is plugged into; nil: one of
	// the VM's own. MAC is the NIC's address (zero: derived from Name).
	Switch *vswitch.Switch
	MAC    [6]byte
	// Console receives COM1 and virtio-console output, in lines prefixed
	// with Name.
	Console io.Writer
	// Watchdog stops the VM after that long (0: never).
	Watchdog time.Duration
	// StartTime is the RTC's time at power-on (zero: 2026-01-01 UTC).
	StartTime time.Time
}

// OutcomeKind says how a run ended.
type OutcomeKind int

// Outcomes.
const (
	// PowerOff: ACPI S5 through PM1a_CNT.
	PowerOff OutcomeKind = iota + 1
	// Reset: the 8042 reset line or the ACPI reset register.
	Reset
	// ExitPort: a write to the isa-debug-exit port; Value is what was
	// written.
	ExitPort
	// Stopped: the host ended the run (Machine.Stop), not the guest.
	Stopped
)

func (k OutcomeKind) String() string {
	switch k {
	case PowerOff:
		return "power-off"
	case Reset:
		return "reset"
	case ExitPort:
		return "exit port"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("OutcomeKind(%d)", int(k))
}

// Outcome is how the guest ended its run.
type Outcome struct {
	Kind  OutcomeKind
	Value uint32 // ExitPort: the value written
}

// Machine is a PC around one VM.
type Machine struct {
	VM      *vmm.VM
	Console *LineWriter
	// COM1 is the serial port whose receiver the host's console feeds
	// (uart.UART.Receive).
	COM1 *uart.UART
	// LAPIC is the bootstrap processor's local APIC, LAPICs every vCPU's
	// (LAPICs[0] == LAPIC).
	LAPIC  *lapic.LAPIC
	LAPICs []*lapic.LAPIC
	IOAPIC *ioapic.IOAPIC
	PIC    *pic.Pair
	PCI    *pci.Host
	Blk    *virtio.Transport
	Net    *virtio.Transport
	NetDev *net.Device
	Loaded *loader.Result

	port *vswitch.Port // the NIC's, removed by Close

	mu      sync.Mutex
	outcome Outcome
	ended   bool
}

type clockFunc func() uint64

func (f clockFunc) Now() uint64 { return f() }

// vmTSC is the guest TSC over the VM clock, for the TSC-deadline timer.
type vmTSC struct{ vm *vmm.VM }

func (t vmTSC) TicksAt(ns uint64) uint64  { return t.vm.GuestTSCAt(ns) }
func (t vmTSC) NanosAt(tsc uint64) uint64 { return t.vm.NanosAtGuestTSC(tsc) }

// fanout drives several interrupt inputs from one source: an ISA IRQ goes
// to its 8259 input and its I/O APIC pin, as the PIIX wires them.
type fanout []devices.IRQLine

func (f fanout) Set(level bool) {
	for _, l := range f {
		l.Set(level)
	}
}

// intrLine is the 8259's INTR output: it reaches every processor's LINT0
// (virtual wire; on a PC the LINT0 pins are wired together, and the
// operating system masks it on all but one) and wakes the vCPUs that
// take it, since with the APIC globally disabled no LVT entry would.
type intrLine struct {
	apics []*lapic.LAPIC
	vm    *vmm.VM
}

func (l intrLine) Set(level bool) {
	for i, a := range l.apics {
		a.SetLINT(0, level)
		if level && a.AcceptsPICInterrupts() {
			l.vm.KickVCPU(i)
		}
	}
}

// New builds the machine, writes its firmware tables and loads the
// kernel. The caller runs it with Run and frees it with Close.
func New(cfg Config, b vmm.Backend, p vmm.Platform) (*Machine, error) {
	if cfg.MemSize == 0 {
		cfg.MemSize = DefaultMemory
	}
	if cfg.MemSize < MinMemory {
		return nil, fmt.Errorf("pc: %s: %d MiB of RAM, want at least %d", cfg.Name, cfg.MemSize>>20, MinMemory>>20)
	}
	if cfg.MemSize > PCIMMIOBase {
		return nil, fmt.Errorf("pc: %s: %d MiB of RAM would overlap the PCI window at %#x (RAM above 4 GiB is not done)", cfg.Name, cfg.MemSize>>20, PCIMMIOBase)
	}
	if len(cfg.Kernel) == 0 {
		return nil, fmt.Errorf("pc: %s: no kernel", cfg.Name)
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.CPUs < 1 || cfg.CPUs > vmm.MaxCPUs {
		return nil, fmt.Errorf("pc: %s: %d vCPUs, want 1 to %d", cfg.Name, cfg.CPUs, vmm.MaxCPUs)
	}
	vm, err := vmm.NewVM(vmm.Config{Name: cfg.Name, Watchdog: cfg.Watchdog, TSCOffset: TSCOffset, CPUs: cfg.CPUs}, b, p, cfg.MemSize)
	if err != nil {
		return nil, err
	}
	m := &Machine{VM: vm, Console: NewLineWriter(cfg.Name, cfg.Console)}
	if err := m.build(cfg); err != nil {
		m.Close()
		return nil, fmt.Errorf("pc: %s: %w", cfg.Name, err)
	}
	return m, nil
}

// Close takes the NIC off its switch (frames must not reach a machine
// whose memory is gone, as when a VM is restarted on the same switch) and
// frees the VM's memory.
func (m *Machine) Close() {
	if m.port != nil {
		m.port.Remove()
	}
	m.VM.Close()
}

// Stop ends the run from the host, as if the power were cut: Run returns
// the Stopped outcome once the vCPU next leaves the guest (at the latest
// after the VM's tick). Whatever the guest ended with first wins.
func (m *Machine) Stop() { m.end(Outcome{Kind: Stopped}) }

func (m *Machine) end(o Outcome) {
	m.mu.Lock()
	if !m.ended {
		m.ended, m.outcome = true, o
	}
	m.mu.Unlock()
	m.VM.Exit(0)
}

func (m *Machine) build(cfg Config) error {
	vm := m.VM
	clk := clockFunc(vm.Now)
	router := lapic.NewRouter()

	// The I/O APIC ID follows the local APICs' IDs 0 to CPUs-1 (it is 4
	// bits wide, so vmm.MaxCPUs keeps it valid).
	ioapicID := uint8(cfg.CPUs)
	m.IOAPIC = ioapic.New(ioapicID, router.Deliver)
	apicIDs := make([]uint32, cfg.CPUs)
	for i := range cfg.CPUs {
		apicIDs[i] = uint32(i)
		a := lapic.New(lapic.Config{
			ID: uint32(i), BSP: i == 0, Clock: clk, TSC: vmTSC{vm},
			SendIPI: router.SendIPI,
			EOI:     m.IOAPIC.EOI,
			Kick:    func() { vm.KickVCPU(i) },
		})
		router.Add(a)
		m.LAPICs = append(m.LAPICs, a)
	}
	m.LAPIC = m.LAPICs[0]
	// Firmware leaves the bootstrap processor in virtual-wire mode; the
	// application processors' APICs are reset by the INIT that starts
	// them.
	firmwareLAPIC(m.LAPIC)

	m.PIC = pic.New(intrLine{m.LAPICs, vm})
	isa := func(n uint8) devices.IRQLine {
		p, _ := m.PIC.Line(n)
		pin := int(n)
		if n == 0 {
			pin = 2 // the MADT's interrupt source override IRQ0 → GSI 2
		}
		a, _ := m.IOAPIC.Line(pin)
		return fanout{p, a}
	}

	timer := pit.New(isa(0), clk)
	com1 := uart.New(m.Console, isa(4), clk)
	m.COM1 = com1
	start := cfg.StartTime
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	cmos := rtc.New(isa(8), clk, start)
	cmos.SetMemorySize(cfg.MemSize, 0)
	pm := acpipm.New(acpipm.Config{
		SCI: isa(acpitables.SCIIRQ), Clock: clk,
		PowerOff: func() { m.end(Outcome{Kind: PowerOff}) },
		Reset:    func() { m.end(Outcome{Kind: Reset}) },
	})
	kbc := i8042.New(i8042.Config{IRQ1: isa(1), Reset: func() { m.end(Outcome{Kind: Reset}) }})
	exit := debugport.NewExit(func(status uint32) { m.end(Outcome{Kind: ExitPort, Value: status >> 1}) })

	m.PCI = pci.NewHost(vm.Bus)
	if err := m.addVirtio(cfg); err != nil {
		return err
	}
	steps := []error{
		m.PIC.Install(vm.Bus),
		timer.Install(vm.Bus),
		com1.Install(vm.Bus, uart.COM1Base),
		cmos.Install(vm.Bus),
		pm.Install(vm.Bus, acpipm.DefaultBase),
		kbc.Install(vm.Bus),
		debugport.Install(vm.Bus, debugport.NewPOST(), exit),
		m.IOAPIC.Install(vm.Bus, ioapic.DefaultBase),
		m.PCI.Install(vm.Bus),
	}
	if err := errors.Join(steps...); err != nil {
		return err
	}
	if err := m.PCI.AssignResources(pci.Window{Base: PCIMMIOBase, Limit: PCIMMIOLimit}, pci.Window{Base: PCIIOBase, Limit: PCIIOLimit}); err != nil {
		return err
	}
	vm.Timers = []vmm.Timer{timer, com1, cmos, pm}
	for _, a := range m.LAPICs {
		vm.ICs = append(vm.ICs, &interrupts{apic: a, pic: m.PIC})
		vm.Timers = append(vm.Timers, a)
	}
	vm.Local = &local{apics: m.LAPICs}

	tables, err := acpitables.Build(acpitables.Config{
		APICIDs:  apicIDs,
		IOAPICID: ioapicID,
		PMBase:   acpipm.DefaultBase,
		PCI: &acpitables.PCI{BusFirst: 0, BusLast: 0,
			MMIO32Base: PCIMMIOBase, MMIO32Size: PCIMMIOLimit - PCIMMIOBase},
		COM1:  true,
		NoMSI: true,
	}, acpitables.RSDPAddr, acpitables.TablesAddr)
	if err != nil {
		return err
	}
	if err := tables.Write(vm.Mem); err != nil {
		return fmt.Errorf("write ACPI tables: %w", err)
	}
	// DefaultMap reserves 0x9FC00-0x100000, where the tables are.
	res, err := loader.Load(vm.Mem, "kernel", cfg.Kernel, loader.Config{
		Cmdline: cfg.Cmdline,
		Initrd:  cfg.Initrd,
		Modules: cfg.Modules,
		Map:     loader.DefaultMap(cfg.MemSize),
		RSDP:    acpitables.RSDPAddr,
	})
	if err != nil {
		return err
	}
	m.Loaded = res
	return nil
}

// firmwareLAPIC leaves the BSP's local APIC as PC firmware hands it to an
// operating system (MP specification 3.6.2.2, virtual wire mode): software
// enabled with spurious vector 0xFF, LINT0 ExtINT so the 8259 reaches the
// processor, LINT1 NMI.
func firmwareLAPIC(a *lapic.LAPIC) {
	w := func(off uint32, v uint32) {
		a.Write(uint64(off), []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	w(lapic.RegSVR, lapic.SVREnable|0xFF)
	w(lapic.RegLVTLINT0, uint32(lapic.ExtINT)<<8)
	w(lapic.RegLVTLINT1, uint32(lapic.NMI)<<8)
}

func (m *Machine) addVirtio(cfg Config) error {
	disk := cfg.Disk
	if disk == nil {
		size := cfg.DiskSize
		if size == 0 {
			size = DefaultDiskSize
		}
		disk = make([]byte, size)
	}
	ram, err := blk.NewRAMDisk(disk)
	if err != nil {
		return err
	}
	bd, err := blk.New(ram, blk.Options{ID: cfg.Name})
	if err != nil {
		return err
	}
	if m.Blk, err = m.addFunction("virtio-blk", bd, SlotBlk); err != nil {
		return err
	}

	sw := cfg.Switch
	if sw == nil {
		sw = vswitch.New(0)
	}
	mac := cfg.MAC
	if mac == ([6]byte{}) {
		mac = macFor(cfg.Name)
	}
	port, err := sw.AddPort(cfg.Name, func(f []byte) {
		if m.NetDev != nil {
			m.NetDev.Receive(f)
		}
	})
	if err != nil {
		return err
	}
	m.port = port
	if m.NetDev, err = net.New(mac, port); err != nil {
		return err
	}
	if m.Net, err = m.addFunction("virtio-net", m.NetDev, SlotNet); err != nil {
		return err
	}

	cd := console.New(m.Console)
	_, err = m.addFunction("virtio-console", cd, SlotConsole)
	return err
}

// addFunction puts a virtio device on PCI slot with its INTA on the I/O
// APIC input the DSDT's _PRT names.
func (m *Machine) addFunction(name string, d virtio.Device, slot int) (*virtio.Transport, error) {
	t, err := virtio.NewTransport(name, d, m.VM.Mem)
	if err != nil {
		return nil, err
	}
	gsi := acpitables.PCIGSI(slot, 0)
	line, err := m.IOAPIC.Line(int(gsi))
	if err != nil {
		return nil, err
	}
	t.Function().ConnectINTx(line, uint8(gsi))
	if err := m.PCI.Register(slot, 0, t.Function()); err != nil {
		return nil, err
	}
	return t, nil
}

// macFor derives a locally administered unicast MAC from the VM name (FNV-1a),
// so a VM keeps its address across runs.
func macFor(name string) [6]byte {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	return [6]byte{0x52, 0x54, byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
}

// Setup puts the vCPU in the loader's entry state.
func (m *Machine) Setup(c vmm.VCPU) error {
	st := m.Loaded.Entry
	s := c.SRegs()
	s.CS, s.DS, s.ES, s.FS, s.GS, s.SS = vmm.Segment(st.CS), vmm.Segment(st.DS), vmm.Segment(st.ES), vmm.Segment(st.FS), vmm.Segment(st.GS), vmm.Segment(st.SS)
	s.TR, s.LDTR = vmm.Segment(st.TR), vmm.Segment(st.LDTR)
	s.GDT, s.IDT = vmm.DTable(st.GDT), vmm.DTable(st.IDT)
	s.CR0, s.CR2, s.CR3, s.CR4, s.EFER, s.CPL = st.CR0, 0, st.CR3, st.CR4, st.EFER, 0
	c.SetSRegs(s)
	c.SetRegs(vmm.Regs(st.Regs))
	return nil
}

// Run runs the machine's vCPUs, vCPU i on host CPU hostCPUs[i] (missing
// entries: hostCPUs[0], or CPU 0 when there are none), until the guest
// ends it (the Outcome) or the VMM stops it (the error).
func (m *Machine) Run(hostCPUs ...int) (Outcome, uint64, error) {
	cpu := 0
	if len(hostCPUs) > 0 {
		cpu = hostCPUs[0]
	}
	res, err := m.VM.Run(cpu, vmm.RunOptions{Setup: m.Setup, HostCPUs: hostCPUs})
	m.Console.Flush()
	if errors.Is(err, vmm.ErrExited) {
		m.mu.Lock()
		o := m.outcome
		m.mu.Unlock()
		return o, res.Exits, nil
	}
	if err == nil {
		err = fmt.Errorf("pc: %s: run ended without an outcome", m.VM.Name)
	}
	return Outcome{}, res.Exits, err
}

// interrupts is the vCPU's view of the interrupt controllers: the local
// APIC's highest deliverable vector, else the 8259 through the virtual
// wire (LINT0 ExtINT, or the APIC globally disabled).
type interrupts struct {
	apic *lapic.LAPIC
	pic  *pic.Pair
}

func (c *interrupts) HasInterrupt() bool {
	if _, ok := c.apic.PendingVector(); ok {
		return true
	}
	return c.apic.AcceptsPICInterrupts() && c.pic.HasInterrupt()
}

func (c *interrupts) Acknowledge() uint8 {
	if v, ok := c.apic.PendingVector(); ok && c.apic.Acknowledge(v) {
		return v
	}
	// The ExtINT flag is an edge record; the 8259's INTR level decides.
	c.apic.TakeExtINT()
	return c.pic.Acknowledge()
}

// The local APIC's processor-level signals (vmm.ProcessorSignals).

func (c *interrupts) TakeNMI() bool           { return c.apic.TakeNMI() }
func (c *interrupts) TakeINIT() bool          { return c.apic.TakeINIT() }
func (c *interrupts) TakeSIPI() (uint8, bool) { return c.apic.TakeSIPI() }
func (c *interrupts) INITReset()              { c.apic.INITReset() }

// local routes the xAPIC page and the APIC MSRs to the exiting vCPU's
// LAPIC.
type local struct{ apics []*lapic.LAPIC }

func (l *local) apic(vcpu int) *lapic.LAPIC {
	if vcpu < 0 || vcpu >= len(l.apics) {
		return nil
	}
	return l.apics[vcpu]
}

func isAPICMSR(msr uint32) bool {
	return msr == lapic.MSRAPICBase || msr == lapic.MSRTSCDeadline ||
		msr >= lapic.MSRX2APICFirst && msr <= lapic.MSRX2APICLast
}

func (l *local) ReadMSR(vcpu int, msr uint32) (uint64, bool, error) {
	a := l.apic(vcpu)
	if a == nil || !isAPICMSR(msr) {
		return 0, false, nil
	}
	v, err := a.ReadMSR(msr)
	return v, true, err
}

func (l *local) WriteMSR(vcpu int, msr uint32, v uint64) (bool, error) {
	a := l.apic(vcpu)
	if a == nil || !isAPICMSR(msr) {
		return false, nil
	}
	return true, a.WriteMSR(msr, v)
}

// MMIO decodes the xAPIC page while the LAPIC is in xAPIC mode; in x2APIC
// mode (or globally disabled) the page is not decoded (SDM 11.12.1.2).
func (l *local) MMIO(vcpu int, gpa uint64) (bus.Device, uint64, bool) {
	a := l.apic(vcpu)
	if a == nil || gpa < lapic.DefaultBase || gpa-lapic.DefaultBase >= lapic.PageSize {
		return nil, 0, false
	}
	if !a.Enabled() || a.X2APIC() {
		return nil, 0, false
	}
	return a, gpa - lapic.DefaultBase, true
}
