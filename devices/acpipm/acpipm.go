// Package acpipm models the ACPI fixed hardware of a legacy (not
// hardware-reduced) PC: the PM1a event and control blocks, the PM timer,
// a minimal GPE0 block and a reset register, in one port-I/O block whose
// layout the FADT built by vmm/acpitables describes (ACPI 6.5 chapter 4.8).
//
// Boundary: it raises the SCI on an injected line and reports sleep (S5,
// soft-off) and reset requests through injected callbacks; what power-off
// and reset mean for the VM is the VMM's business. There is no power or
// sleep button (the FADT says so) and no SMI command port: the platform is
// in ACPI mode from reset, so SCI_EN powers on set.
package acpipm

import (
	"fmt"
	"math/bits"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// DefaultBase is the block's port base, where QEMU's PIIX4 and ICH9 put
// their PM blocks; the FADT built for the VM must use the same base.
const DefaultBase = 0x600

// Offsets and lengths of the registers in the block. The FADT's
// PM1_EVT_LEN, PM1_CNT_LEN, PM_TMR_LEN and GPE0_BLK_LEN are these lengths
// (ACPI 6.5 §5.2.9 table 5.9).
const (
	OffPM1aEvent   = 0x00
	PM1EventLen    = 4 // PM1a_STS (2) + PM1a_EN (2), §4.8.3.1
	OffPM1aControl = 0x04
	PM1ControlLen  = 2 // §4.8.3.2
	OffPMTimer     = 0x08
	PMTimerLen     = 4 // §4.8.3.3
	OffReset       = 0x0C
	ResetLen       = 1 // §4.8.3.6, RESET_REG
	OffGPE0        = 0x10
	GPE0Len        = 8 // GPE0_STS (4) + GPE0_EN (4), §4.8.4.1
	BlockSize      = 0x18
)

// ResetValue is what the guest writes to the reset register (the FADT's
// RESET_VALUE); 0x06 is the PIIX/ICH 0xCF9 "full reset" value, which the
// same FADT field carries on real boards.
const ResetValue = 0x06

// SleepTypeS5 is the SLP_TYP value for soft-off, published as \_S5_ in the
// DSDT. Sleep types are platform-defined (§7.4.2); 5 matches S5 for
// readability. No other sleep state is offered.
const SleepTypeS5 = 5

// PMTimerHz is the PM timer's frequency, 3.579545 MHz (§4.8.3.3).
const PMTimerHz = 3_579_545

// PM1 status and enable bits (§4.8.3.1.1 table 4.11, §4.8.3.1.2 table 4.12).
const (
	TmrSts    = 1 << 0
	BmSts     = 1 << 4
	GblSts    = 1 << 5
	PwrbtnSts = 1 << 8
	SlpbtnSts = 1 << 9
	RTCSts    = 1 << 10
	WakeSts   = 1 << 15

	TmrEn = 1 << 0
	GblEn = 1 << 5

	// Only the timer can be a status source here; BM_STS, GBL_STS and
	// the buttons have no hardware behind them.
	pm1StsImplemented = TmrSts | WakeSts
	pm1EnImplemented  = TmrEn | GblEn
)

// PM1 control bits (§4.8.3.2.1 table 4.13).
const (
	SCIEn        = 1 << 0
	bmRld        = 1 << 1
	gblRls       = 1 << 2 // write-only
	slpTypShift  = 10
	slpTypMask   = 7 << slpTypShift
	SlpEn        = 1 << 13 // write-only
	pm1CntStored = SCIEn | bmRld | slpTypMask
)

// tmrStsBit is the counter bit whose toggle sets TMR_STS: bit 23 for the
// 24-bit timer (§4.8.3.3).
const tmrStsBit = 23

// Config wires the block.
type Config struct {
	// SCI is the SCI interrupt line (level, asserted while an enabled
	// status bit is set and SCI_EN is set).
	SCI devices.IRQLine
	// Clock is the VM clock for the PM timer.
	Clock devices.Clock
	// PowerOff is called when the guest enters S5; Reset when it writes
	// ResetValue to the reset register. Both run with no lock held.
	PowerOff, Reset func()
}

// PM is the ACPI PM register block. It is safe for concurrent use.
type PM struct {
	mu  sync.Mutex
	cfg Config

	pm1Sts, pm1En uint16
	pm1Cnt        uint16
	gpeSts        uint32
	gpeEn         uint32
	tmrSeen       uint64 // number of bit-23 toggles already turned into TMR_STS
	sciLevel      bool
	// sleepRequests counts SLP_EN writes with a sleep type other than S5,
	// which the platform does not offer and ignores.
	sleepRequests uint64
}

// New returns the block in its power-on state.
func New(cfg Config) *PM {
	if cfg.SCI == nil {
		cfg.SCI = devices.NopLine{}
	}
	if cfg.PowerOff == nil {
		cfg.PowerOff = func() {}
	}
	if cfg.Reset == nil {
		cfg.Reset = func() {}
	}
	p := &PM{cfg: cfg}
	p.Reset()
	return p
}

// Reset puts the block in its power-on state: no status, nothing enabled,
// SCI_EN set (no legacy mode to leave).
func (p *PM) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pm1Sts, p.pm1En, p.pm1Cnt = 0, 0, SCIEn
	p.gpeSts, p.gpeEn = 0, 0
	p.tmrSeen = p.ticks() >> tmrStsBit
	p.sleepRequests = 0
	p.driveSCI()
}

func (p *PM) now() uint64 {
	if p.cfg.Clock == nil {
		return 0
	}
	return p.cfg.Clock.Now()
}

// TicksAt converts VM nanoseconds to PM timer ticks.
func TicksAt(ns uint64) uint64 {
	hi, lo := bits.Mul64(ns, PMTimerHz)
	q, _ := bits.Div64(hi, lo, 1_000_000_000)
	return q
}

// NanosAt is the first VM time at which TicksAt reaches tick.
func NanosAt(tick uint64) uint64 {
	hi, lo := bits.Mul64(tick, 1_000_000_000)
	if hi >= PMTimerHz {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, PMTimerHz)
	if r != 0 {
		q++
	}
	return q
}

func (p *PM) ticks() uint64 { return TicksAt(p.now()) }

// advance turns bit-23 toggles of the counter into TMR_STS.
func (p *PM) advance() {
	if n := p.ticks() >> tmrStsBit; n != p.tmrSeen {
		p.tmrSeen = n
		p.pm1Sts |= TmrSts
	}
	p.driveSCI()
}

func (p *PM) sciCondition() bool {
	if p.pm1Cnt&SCIEn == 0 {
		return false
	}
	return p.pm1Sts&p.pm1En&pm1EnImplemented != 0 || p.gpeSts&p.gpeEn != 0
}

func (p *PM) driveSCI() {
	if l := p.sciCondition(); l != p.sciLevel {
		p.sciLevel = l
		p.cfg.SCI.Set(l)
	}
}

// Update brings TMR_STS and the SCI up to the clock's time.
func (p *PM) Update() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance()
}

// NextEvent returns the next time TMR_STS can be set while it would raise
// the SCI.
func (p *PM) NextEvent() (ns uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pm1En&TmrEn == 0 || p.pm1Cnt&SCIEn == 0 || p.pm1Sts&TmrSts != 0 {
		return 0, false
	}
	return NanosAt((p.tmrSeen + 1) << tmrStsBit), true
}

// RaiseGPE sets GPE0 status bit n (0-31), as a general-purpose event
// source such as hot-plug would.
func (p *PM) RaiseGPE(n int) {
	if n < 0 || n >= 32 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gpeSts |= 1 << n
	p.driveSCI()
}

// regs renders the block as bytes, for reads.
func (p *PM) regs() [BlockSize]byte {
	var b [BlockSize]byte
	put := func(off int, v uint64, n int) {
		for i := range n {
			b[off+i] = byte(v >> (8 * i))
		}
	}
	put(OffPM1aEvent, uint64(p.pm1Sts), 2)
	put(OffPM1aEvent+2, uint64(p.pm1En), 2)
	put(OffPM1aControl, uint64(p.pm1Cnt), 2)
	put(OffPMTimer, p.ticks()&(1<<24-1), 4)
	put(OffGPE0, uint64(p.gpeSts), 4)
	put(OffGPE0+4, uint64(p.gpeEn), 4)
	return b
}

// Read implements bus.Device. Every byte of one access sees the same
// instant, so a 32-bit timer read is consistent.
func (p *PM) Read(off uint64, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance()
	b := p.regs()
	for i := range data {
		o := off + uint64(i)
		switch {
		case o == OffReset:
			data[i] = 0 // write-only register
		case inBlock(o, OffPM1aEvent, PM1EventLen), inBlock(o, OffPM1aControl, PM1ControlLen),
			inBlock(o, OffPMTimer, PMTimerLen), inBlock(o, OffGPE0, GPE0Len):
			data[i] = b[o]
		default:
			data[i] = 0xFF // gaps in the block float like unclaimed ports
		}
	}
}

func inBlock(o, reg uint64, n int) bool { return o >= reg && o < reg+uint64(n) }

// field gathers the bytes of a write that land in [reg, reg+n) as a value
// and a mask of the bits written.
func field(off uint64, data []byte, reg uint64, n int) (v, mask uint32) {
	for i, x := range data {
		o := off + uint64(i)
		if o >= reg && o < reg+uint64(n) {
			sh := 8 * (o - reg)
			v |= uint32(x) << sh
			mask |= 0xFF << sh
		}
	}
	return v, mask
}

// Write implements bus.Device.
func (p *PM) Write(off uint64, data []byte) {
	var powerOff, reset bool
	p.mu.Lock()
	p.advance()
	if v, m := field(off, data, OffPM1aEvent, 2); m != 0 {
		p.pm1Sts &^= uint16(v & m) // write 1 to clear (§4.8.3.1.1)
	}
	if v, m := field(off, data, OffPM1aEvent+2, 2); m != 0 {
		p.pm1En = p.pm1En&^uint16(m) | uint16(v&m)&pm1EnImplemented
	}
	if v, m := field(off, data, OffPM1aControl, 2); m != 0 {
		p.pm1Cnt = p.pm1Cnt&^uint16(m&pm1CntStored) | uint16(v&m&pm1CntStored)
		if v&m&SlpEn != 0 {
			// The sleep transition starts with the SLP_TYP in the same
			// write (§4.8.3.2.1); only S5 exists here.
			if (p.pm1Cnt&slpTypMask)>>slpTypShift == SleepTypeS5 {
				powerOff = true
			} else {
				p.sleepRequests++
			}
		}
	}
	if v, m := field(off, data, OffReset, 1); m != 0 && v == ResetValue {
		reset = true
	}
	if v, m := field(off, data, OffGPE0, 4); m != 0 {
		p.gpeSts &^= v & m
	}
	if v, m := field(off, data, OffGPE0+4, 4); m != 0 {
		p.gpeEn = p.gpeEn&^m | v&m
	}
	p.driveSCI()
	p.mu.Unlock()
	if powerOff {
		p.cfg.PowerOff()
	}
	if reset {
		p.cfg.Reset()
	}
}

// IgnoredSleeps reports how many sleep requests for states other than S5
// were dropped.
func (p *PM) IgnoredSleeps() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sleepRequests
}

// Install registers the block at base.
func (p *PM) Install(b *bus.Bus, base uint16) error {
	if err := b.RegisterPorts(base, BlockSize, "acpi-pm", p); err != nil {
		return fmt.Errorf("acpipm: install at %#x: %w", base, err)
	}
	return nil
}
