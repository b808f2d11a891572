// Package i8042 models the part of the PC/AT keyboard controller (Intel
// 8042 with the IBM PC/AT firmware) that an operating system needs when no
// keyboard or mouse is attached: the status and command port 0x64, the data
// port 0x60, the command byte and controller RAM, self-tests, the output
// port with the A20 gate and the system reset line, and the 0xF0-0xFF
// output-port pulse commands (0xFE pulses reset, the classic reboot path).
//
// Boundary: it is a single-channel (AT, no auxiliary port) controller with
// no keyboard behind it: bytes sent to the keyboard time out, as on a board
// with nothing plugged in. Reset and A20 changes leave through injected
// callbacks; whether guest memory honours A20 is the VMM's business. The
// ACPI tables built for our VMs do not advertise a PS/2 controller, so Linux
// touches it only to reboot.
package i8042

import (
	"fmt"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// Ports (IBM PC/AT Technical Reference, keyboard controller).
const (
	DataPort    = 0x60
	CommandPort = 0x64
)

// Status register bits (read from port 0x64).
const (
	StatusOBF     = 1 << 0 // output buffer full
	StatusIBF     = 1 << 1 // input buffer full: never seen, commands complete at once
	StatusSYS     = 1 << 2 // system flag, from the command byte
	StatusCmd     = 1 << 3 // A2: last write was to port 0x64
	StatusUnlock  = 1 << 4 // keyboard not inhibited
	StatusTimeout = 1 << 6 // general timeout: the keyboard did not answer
)

// Command byte (controller RAM byte 0) bits.
const (
	CtrKbdInt  = 1 << 0 // IRQ1 on output buffer full
	CtrSys     = 1 << 2
	CtrKbdDis  = 1 << 4
	CtrXlate   = 1 << 6
	ctrDefault = CtrSys | CtrXlate
)

// Output port bits (command 0xD0/0xD1).
const (
	OutReset      = 1 << 0 // system reset line, active low
	OutA20        = 1 << 1
	outDefault    = OutReset | OutA20
	pulseResetBit = 1 << 0 // in the low nibble of 0xF0-0xFF: 0 pulses reset
)

// Controller commands (written to port 0x64).
const (
	cmdReadRAM     = 0x20 // 0x20-0x3F: read RAM byte n&0x1F
	cmdWriteRAM    = 0x60 // 0x60-0x7F: write RAM byte n&0x1F (next data byte)
	cmdSelfTest    = 0xAA
	cmdKbdTest     = 0xAB
	cmdKbdDisable  = 0xAD
	cmdKbdEnable   = 0xAE
	cmdReadInput   = 0xC0
	cmdReadOutput  = 0xD0
	cmdWriteOutput = 0xD1
	cmdWriteKbdOB  = 0xD2
	cmdA20Off      = 0xDD
	cmdA20On       = 0xDF
	cmdPulseFirst  = 0xF0

	selfTestOK  = 0x55
	kbdTestOK   = 0x00
	noKbdAnswer = 0xFF
	// inputPort: bit 7 keyboard not inhibited, bit 5 no manufacturing
	// jumper, bit 4 256 KiB of base RAM (AT meaning, fixed on clones).
	inputPort = 0xB0
)

// Config wires the controller.
type Config struct {
	// IRQ1 is the keyboard interrupt (asserted while output data waits
	// and the command byte enables it).
	IRQ1 devices.IRQLine
	// Reset is called when the guest pulses or drives the reset line; A20
	// when the gate changes. Both run with no lock held.
	Reset func()
	A20   func(enabled bool)
}

// Controller is the 8042. It is safe for concurrent use.
type Controller struct {
	mu  sync.Mutex
	cfg Config

	ram      [32]byte // ram[0] is the command byte
	out      uint8    // output port
	obf      bool
	obData   uint8
	timeout  bool
	lastCmd  bool  // A2
	pending  uint8 // command waiting for its data byte, 0 if none
	irqLevel bool
}

// New returns the controller in its power-on state.
func New(cfg Config) *Controller {
	if cfg.IRQ1 == nil {
		cfg.IRQ1 = devices.NopLine{}
	}
	if cfg.Reset == nil {
		cfg.Reset = func() {}
	}
	if cfg.A20 == nil {
		cfg.A20 = func(bool) {}
	}
	c := &Controller{cfg: cfg}
	c.Reset()
	return c
}

// Reset puts the controller in the state its firmware leaves after
// power-on: command byte with SYS and translation, A20 enabled (as the VMM
// runs guests), reset line high, buffers empty.
func (c *Controller) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ram = [32]byte{}
	c.ram[0] = ctrDefault
	c.out = outDefault
	c.obf, c.obData, c.timeout, c.lastCmd, c.pending = false, 0, false, false, 0
	c.drive()
}

// A20 reports the A20 gate.
func (c *Controller) A20() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out&OutA20 != 0
}

func (c *Controller) drive() {
	l := c.obf && c.ram[0]&CtrKbdInt != 0
	if l != c.irqLevel {
		c.irqLevel = l
		c.cfg.IRQ1.Set(l)
	}
}

func (c *Controller) put(b uint8) {
	c.obf, c.obData = true, b
}

func (c *Controller) status() uint8 {
	s := uint8(StatusUnlock)
	if c.obf {
		s |= StatusOBF
	}
	if c.ram[0]&CtrSys != 0 {
		s |= StatusSYS
	}
	if c.lastCmd {
		s |= StatusCmd
	}
	if c.timeout {
		s |= StatusTimeout
	}
	return s
}

// effects are callbacks a write leaves for after the lock is dropped.
type effects struct {
	reset     bool
	a20Change bool
	a20       bool
}

func (c *Controller) setOutput(v uint8, fx *effects) {
	old := c.out
	c.out = v
	if old&OutA20 != v&OutA20 {
		fx.a20Change, fx.a20 = true, v&OutA20 != 0
	}
	if v&OutReset == 0 {
		// Driving the line low resets the processor; the line itself
		// comes back high with the reset.
		fx.reset = true
		c.out |= OutReset
	}
}

func (c *Controller) command(cmd uint8, fx *effects) {
	c.pending = 0
	switch {
	case cmd >= cmdReadRAM && cmd < cmdReadRAM+32:
		c.put(c.ram[cmd&0x1F])
	case cmd >= cmdWriteRAM && cmd < cmdWriteRAM+32, cmd == cmdWriteOutput, cmd == cmdWriteKbdOB:
		c.pending = cmd
	case cmd == cmdSelfTest:
		c.put(selfTestOK)
	case cmd == cmdKbdTest:
		c.put(kbdTestOK)
	case cmd == cmdKbdDisable:
		c.ram[0] |= CtrKbdDis
	case cmd == cmdKbdEnable:
		c.ram[0] &^= CtrKbdDis
	case cmd == cmdReadInput:
		c.put(inputPort)
	case cmd == cmdReadOutput:
		c.put(c.out)
	case cmd == cmdA20Off:
		c.setOutput(c.out&^OutA20, fx)
	case cmd == cmdA20On:
		c.setOutput(c.out|OutA20, fx)
	case cmd >= cmdPulseFirst:
		// Pulse the output-port lines whose bits are 0 in the low nibble
		// for about 6 µs; only bit 0, reset, is wired to anything.
		if cmd&pulseResetBit == 0 {
			fx.reset = true
		}
	}
	// Other commands (auxiliary port, vendor extensions) do not exist on
	// this single-channel controller and are ignored.
}

func (c *Controller) data(v uint8, fx *effects) {
	cmd := c.pending
	c.pending = 0
	switch {
	case cmd >= cmdWriteRAM && cmd < cmdWriteRAM+32:
		c.ram[cmd&0x1F] = v
	case cmd == cmdWriteOutput:
		c.setOutput(v, fx)
	case cmd == cmdWriteKbdOB:
		c.put(v)
	default:
		// A byte for the keyboard: nobody answers, so the controller
		// reports a timeout with 0xFF, as an AT with no keyboard does.
		c.timeout = true
		c.put(noKbdAnswer)
	}
}

// Read implements bus.Device for ports 0x60 (offset 0) and 0x64 (offset 4).
func (c *Controller) Read(off uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range data {
		switch off + uint64(i) {
		case 0:
			data[i] = c.obData
			c.obf = false
			c.timeout = false
		case 4:
			data[i] = c.status()
		default:
			data[i] = 0xFF
		}
	}
	c.drive()
}

// Write implements bus.Device.
func (c *Controller) Write(off uint64, data []byte) {
	var fx effects
	c.mu.Lock()
	for i, v := range data {
		switch off + uint64(i) {
		case 0:
			c.lastCmd = false
			c.data(v, &fx)
		case 4:
			c.lastCmd = true
			c.command(v, &fx)
		}
	}
	c.drive()
	c.mu.Unlock()
	if fx.a20Change {
		c.cfg.A20(fx.a20)
	}
	if fx.reset {
		c.cfg.Reset()
	}
}

// Install registers ports 0x60-0x64. Port 0x61 is inside that range on the
// ISA map but belongs to the PIT's port B, so the controller is registered
// as two single ports.
func (c *Controller) Install(b *bus.Bus) error {
	if err := b.RegisterPorts(DataPort, 1, "i8042-data", c); err != nil {
		return fmt.Errorf("i8042: install: %w", err)
	}
	if err := b.RegisterPorts(CommandPort, 1, "i8042-cmd", portShift{c}); err != nil {
		return fmt.Errorf("i8042: install: %w", err)
	}
	return nil
}

// portShift presents port 0x64 at offset 4, as if the controller were
// registered on 0x60-0x64.
type portShift struct{ c *Controller }

func (p portShift) Read(off uint64, data []byte)  { p.c.Read(off+4, data) }
func (p portShift) Write(off uint64, data []byte) { p.c.Write(off+4, data) }
