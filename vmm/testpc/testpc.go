// Package testpc builds the small PC that the in-tree test guests run on
// (RAM at 0, an 8259 pair, an 8254, a 16550 on ports and one on MMIO, a CMOS
// RTC, the POST port, a debug console on port 0xE9 and an isa-debug-exit
// compatible exit port) and runs one guest on it to a verdict.
//
// Boundary: it wires vmm and devices together and judges outcomes; it does
// not know the guests' contents or the hardware backend.
package testpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"hv/devices"
	"hv/devices/debugport"
	"hv/devices/lapic"
	"hv/devices/pic"
	"hv/devices/pit"
	"hv/devices/rtc"
	"hv/devices/uart"
	"hv/vmm"
)

// Guest-visible addresses of the test PC (docs/testguests.md).
const (
	LoadAddr     = 0x8000
	StackTop     = 0x7000
	UARTMMIOBase = 0xFED00000
	ConsolePort  = 0xE9
	// TSCOffset makes guest TSC values at least 1<<40.
	TSCOffset = 1 << 40
)

// Spec is one guest to run.
type Spec struct {
	Name    string
	Image   []byte
	MemSize uint64
	Timeout time.Duration
	// Either an exit code written to the exit port, or a stop reason the
	// VMM must give (matched as a prefix).
	WantExit uint32
	WantStop string
	// WantConsole lists console lines that must appear, in this order.
	WantConsole []string
	Corrupt     func(vmm.VCPU) // optional: break the initial state on purpose
	StopAfter   uint64         // optional: snapshot after this many exits and resume in a fresh VM
	CPUs        int            // vCPUs (0: 1); more than one get local APICs
}

// lineWriter turns bytes from the guest's console devices into lines
// prefixed with the guest's name.
type lineWriter struct {
	mu    sync.Mutex
	name  string
	out   io.Writer
	buf   bytes.Buffer
	lines []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		switch {
		case c == '\n':
			w.flushLocked()
		case c == '\r':
		case c < 0x20 || c > 0x7E:
			fmt.Fprintf(&w.buf, "\\x%02x", c)
		default:
			w.buf.WriteByte(c)
		}
		if w.buf.Len() > 200 {
			w.flushLocked()
		}
	}
	return len(p), nil
}

func (w *lineWriter) flushLocked() {
	fmt.Fprintf(w.out, "guest %s: %s\n", w.name, w.buf.String())
	w.lines = append(w.lines, w.buf.String())
	w.buf.Reset()
}

// Lines returns the lines written so far.
func (w *lineWriter) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.flushLocked()
	}
}

// consolePort is the write-only debug console at port 0xE9 (Bochs' and
// QEMU's "port E9 hack"); reads return 0xE9, as in Bochs.
type consolePort struct{ w io.Writer }

func (c consolePort) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0xE9
	}
}
func (c consolePort) Write(_ uint64, data []byte) { _, _ = c.w.Write(data[:1]) }

type clockFunc func() uint64

func (f clockFunc) Now() uint64 { return f() }

type kickLine struct{ vm *vmm.VM }

func (k kickLine) Set(level bool) {
	if level {
		k.vm.Kick()
	}
}

// Machine is a test PC around a VM.
type Machine struct {
	VM      *vmm.VM
	Console *lineWriter
	PIC     *pic.Pair
	LAPICs  []*lapic.LAPIC     // with more than one vCPU
	Devices []devices.Stateful // in a fixed order, for save and restore
}

// New builds the test PC for spec.
func New(spec Spec, b vmm.Backend, p vmm.Platform, console io.Writer) (*Machine, error) {
	return newMachine(spec, b, p, &lineWriter{name: spec.Name, out: console})
}

func newMachine(spec Spec, b vmm.Backend, p vmm.Platform, console *lineWriter) (*Machine, error) {
	size := spec.MemSize
	if size == 0 {
		size = 4 << 20
	}
	vm, err := vmm.NewVM(vmm.Config{Name: spec.Name, Watchdog: spec.Timeout, TSCOffset: TSCOffset, CPUs: spec.CPUs}, b, p, size)
	if err != nil {
		return nil, err
	}
	m := &Machine{VM: vm, Console: console}
	clk := clockFunc(vm.Now)
	m.PIC = pic.New(kickLine{vm})
	vm.IC = m.PIC
	line := func(n uint8) devices.IRQLine {
		l, _ := m.PIC.Line(n)
		return l
	}
	pt := pit.New(line(0), clk)
	com1 := uart.New(m.Console, line(4), clk)
	mmioUART := uart.New(m.Console, devices.NopLine{}, clk)
	rt := rtc.New(line(8), clk, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	exit := debugport.NewExit(func(status uint32) { vm.Exit(status) })
	steps := []error{
		m.PIC.Install(vm.Bus),
		pt.Install(vm.Bus),
		com1.Install(vm.Bus, uart.COM1Base),
		vm.Bus.RegisterMMIO(UARTMMIOBase, 8, "uart-mmio", mmioUART),
		rt.Install(vm.Bus),
		debugport.Install(vm.Bus, debugport.NewPOST(), exit),
		vm.Bus.RegisterPorts(ConsolePort, 1, "console", consolePort{m.Console}),
	}
	if err := errors.Join(steps...); err != nil {
		vm.Close()
		return nil, fmt.Errorf("testpc: %s: %w", spec.Name, err)
	}
	vm.Timers = []vmm.Timer{pt, com1, mmioUART, rt}
	m.Devices = []devices.Stateful{m.PIC, pt, com1, mmioUART, rt}
	if spec.CPUs > 1 {
		m.addLAPICs(spec.CPUs, clk)
	}
	if len(spec.Image) == 0 || uint64(len(spec.Image)) > size-LoadAddr {
		vm.Close()
		return nil, fmt.Errorf("testpc: %s: image of %d bytes does not fit", spec.Name, len(spec.Image))
	}
	if err := vm.Mem.WritePhys(LoadAddr, spec.Image); err != nil {
		vm.Close()
		return nil, err
	}
	return m, nil
}

// RealModeStart is the initial vCPU state of every test guest: real mode,
// CS=0 IP=0x8000, SS=0 SP=0x7000, interrupts off.
func RealModeStart(c vmm.VCPU) error {
	seg := func(sel uint16, attr uint16) vmm.Segment {
		return vmm.Segment{Selector: sel, Base: uint64(sel) << 4, Limit: 0xFFFF, Attrib: attr}
	}
	s := c.SRegs()
	s.CS = seg(0, 0x9B)
	s.DS, s.ES, s.FS, s.GS, s.SS = seg(0, 0x93), seg(0, 0x93), seg(0, 0x93), seg(0, 0x93), seg(0, 0x93)
	s.GDT = vmm.DTable{Limit: 0xFFFF}
	s.IDT = vmm.DTable{Limit: 0x3FF}
	s.CR0, s.CR3, s.CR4, s.EFER, s.CPL = 0x10, 0, 0, 0, 0
	c.SetSRegs(s)
	c.SetRegs(vmm.Regs{RIP: LoadAddr, RSP: StackTop, RFLAGS: 2})
	return nil
}

// Verdict is the outcome of one guest run.
type Verdict struct {
	Pass   bool
	Reason string // why it failed
	Stop   string // the VMM's stop line, if it stopped the VM
	Exits  uint64
}

// Run runs spec on host CPU cpu and judges it.
func Run(spec Spec, b vmm.Backend, p vmm.Platform, cpu int, console io.Writer) Verdict {
	m, err := New(spec, b, p, console)
	if err != nil {
		return Verdict{Reason: err.Error()}
	}
	defer m.VM.Close()
	setup := func(c vmm.VCPU) error {
		if err := RealModeStart(c); err != nil {
			return err
		}
		if spec.Corrupt != nil {
			spec.Corrupt(c)
		}
		return nil
	}
	res, err := m.VM.Run(cpu, vmm.RunOptions{Setup: setup, StopAfter: spec.StopAfter})
	exits := res.Exits
	if err == nil && res.Snapshot != nil {
		// Save/restore: continue the saved vCPU in a fresh VM with a copy
		// of the memory and the same devices (whose state has not moved).
		m2, err2 := newMachine(spec, b, p, m.Console)
		if err2 != nil {
			return Verdict{Reason: "restore: " + err2.Error()}
		}
		defer m2.VM.Close()
		if err := copyMemory(m2.VM.Mem, m.VM.Mem); err != nil {
			return Verdict{Reason: "restore: " + err.Error()}
		}
		m2.VM.SetClock(m.VM.Now())
		for i, d := range m.Devices {
			blob, err := d.SaveState()
			if err == nil {
				err = m2.Devices[i].RestoreState(blob)
			}
			if err != nil {
				return Verdict{Reason: fmt.Sprintf("restore: device %d: %v", i, err)}
			}
		}
		m = m2
		res, err = m.VM.Run(cpu, vmm.RunOptions{Restore: res.Snapshot})
		exits += res.Exits
	}
	m.Console.Flush()
	v := Verdict{Exits: exits}
	var stop *vmm.StopError
	switch {
	case errors.Is(err, vmm.ErrExited):
		status, _ := m.VM.ExitStatus()
		code := status >> 1
		switch {
		case spec.WantStop != "":
			v.Reason = fmt.Sprintf("guest exited with code %d; want the VMM to stop it (%s)", code, spec.WantStop)
		case code != spec.WantExit:
			v.Reason = fmt.Sprintf("guest exit code %d, want %d", code, spec.WantExit)
		default:
			v.Pass = true
		}
	case errors.As(err, &stop):
		v.Stop = stop.Error()
		if spec.WantStop != "" && strings.HasPrefix(stop.Reason, spec.WantStop) {
			v.Pass = true
		} else {
			v.Reason = "stopped: " + stop.Reason
		}
	case err != nil:
		v.Reason = err.Error()
	default:
		v.Reason = "run ended without a result"
	}
	if v.Pass {
		if missing := missingLine(m.Console.Lines(), spec.WantConsole); missing != "" {
			v.Pass, v.Reason = false, fmt.Sprintf("console line %q missing or out of order", missing)
		}
	}
	return v
}

// missingLine returns the first of want that is not found, in order, in
// got, or "".
func missingLine(got, want []string) string {
	for _, w := range want {
		i := 0
		for i < len(got) && got[i] != w {
			i++
		}
		if i == len(got) {
			return w
		}
		got = got[i+1:]
	}
	return ""
}

func copyMemory(dst, src *vmm.Memory) error {
	buf := make([]byte, 64<<10)
	for off := uint64(0); off < src.Size(); off += uint64(len(buf)) {
		n := min(uint64(len(buf)), src.Size()-off)
		if err := src.ReadPhys(off, buf[:n]); err != nil {
			return err
		}
		if err := dst.WritePhys(off, buf[:n]); err != nil {
			return err
		}
	}
	return nil
}
