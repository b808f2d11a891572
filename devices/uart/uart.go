// Package uart models a National Semiconductor PC16550D UART (the "16550A"
// of PCs) as seen at COM1's eight ports: the register file, 16-byte
// receive FIFO, interrupt priority and clearing rules, modem control and
// status, and loopback, per the PC16550D datasheet (TI SNLS378), section
// 8 "Registers".
//
// Transmission is instantaneous: a byte written to THR goes to the sink at
// once and THR is empty again when the write returns, so the guest never
// waits and no timer paces output. Reception comes from the host through
// Receive. The only timed behaviour, the FIFO character timeout, is derived
// from the injected clock. The package knows nothing about consoles or
// terminals beyond the io.Writer it is given.
package uart

import (
	"fmt"
	"io"
	"sync"

	"hv/devices"
	"hv/devices/bus"
)

// Standard PC port base and IRQ of the first serial port.
const (
	COM1Base = 0x3F8
	COM1IRQ  = 4
	Ports    = 8 // register file size in ports
)

// Register offsets (PC16550D datasheet, Table II "Register Summary").
const (
	regRBR = 0 // read, DLAB=0: receiver buffer
	regTHR = 0 // write, DLAB=0: transmitter holding
	regDLL = 0 // DLAB=1: divisor latch LSB
	regIER = 1 // DLAB=0: interrupt enable
	regDLM = 1 // DLAB=1: divisor latch MSB
	regIIR = 2 // read: interrupt identification
	regFCR = 2 // write: FIFO control
	regLCR = 3
	regMCR = 4
	regLSR = 5
	regMSR = 6
	regSCR = 7
)

// IER bits (8.3 "Interrupt Enable Register").
const (
	ierERBFI = 0x01 // received data available (and character timeout)
	ierETBEI = 0x02 // transmitter holding register empty
	ierELSI  = 0x04 // receiver line status
	ierEDSSI = 0x08 // modem status
	ierMask  = 0x0F // bits 4-7 are always 0
)

// IIR values (8.4 "Interrupt Identification Register", Table IV), in
// priority order.
const (
	iirNoInterrupt = 0x01
	iirLineStatus  = 0x06
	iirRxData      = 0x04
	iirTimeout     = 0x0C
	iirTHRE        = 0x02
	iirModemStatus = 0x00
	iirFIFOEnabled = 0xC0 // bits 6-7 set when FCR0=1
)

// FCR bits (8.5 "FIFO Control Register").
const (
	fcrEnable    = 0x01
	fcrRxReset   = 0x02
	fcrTxReset   = 0x04
	fcrDMAMode   = 0x08
	fcrTrigShift = 6
	fcrStoredMsk = fcrEnable | fcrDMAMode | 0xC0
)

// rxTrigger maps FCR bits 7:6 to the receive FIFO trigger level.
var rxTrigger = [4]int{1, 4, 8, 14}

// LCR bits (8.6 "Line Control Register").
const (
	lcrWordLenMask = 0x03
	lcrStopBits    = 0x04
	lcrParity      = 0x08
	lcrBreak       = 0x40
	lcrDLAB        = 0x80
)

// MCR bits (8.7 "Modem Control Register").
const (
	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08 // on a PC, gates the INTR pin onto the ISA IRQ line
	mcrLOOP = 0x10
	mcrMask = 0x1F
)

// LSR bits (8.8 "Line Status Register").
const (
	lsrDR     = 0x01
	lsrOE     = 0x02
	lsrPE     = 0x04
	lsrFE     = 0x08
	lsrBI     = 0x10
	lsrTHRE   = 0x20
	lsrTEMT   = 0x40
	lsrFIFOEr = 0x80
	lsrErrors = lsrOE | lsrPE | lsrFE | lsrBI
)

// MSR bits (8.9 "Modem Status Register").
const (
	msrDCTS   = 0x01
	msrDDSR   = 0x02
	msrTERI   = 0x04
	msrDDCD   = 0x08
	msrCTS    = 0x10
	msrDSR    = 0x20
	msrRI     = 0x40
	msrDCD    = 0x80
	msrDeltas = 0x0F
)

const (
	fifoSize = 16
	// baseClock is the divisor input of a PC serial port: 1.8432 MHz / 16.
	baseClock = 115200
	// resetDivisor gives 9600 baud; the datasheet leaves the latch
	// undefined at reset and firmware always programs it.
	resetDivisor = 12
)

// rxChar is one received character with the error bits it arrived with.
type rxChar struct {
	data  uint8
	flags uint8 // lsrPE|lsrFE|lsrBI
}

// UART is one 16550A. It is safe for concurrent use.
type UART struct {
	mu    sync.Mutex
	irq   devices.IRQLine
	clock devices.Clock
	sink  io.Writer

	ier, lcr, mcr, scr uint8
	dll, dlm           uint8
	fcr                uint8 // stored bits only (enable, DMA, trigger)
	lsrSticky          uint8 // OE, PE, FE, BI until LSR is read
	msr                uint8
	modemIn            uint8 // CTS, DSR, RI, DCD from the host side
	rx                 []rxChar
	thrIntPending      bool
	lastRxActivity     uint64 // ns: last character received or RBR read
	irqLevel           bool
	sinkErrors         uint64
}

// New returns a UART in its reset state. Transmitted bytes go to sink
// (nil discards them), the interrupt output drives irq, and clock times the
// FIFO character timeout. The host side reports CTS, DSR and DCD asserted,
// as a connected terminal does.
func New(sink io.Writer, irq devices.IRQLine, clock devices.Clock) *UART {
	if sink == nil {
		sink = io.Discard
	}
	if irq == nil {
		irq = devices.NopLine{}
	}
	u := &UART{sink: sink, irq: irq, clock: clock, modemIn: msrCTS | msrDSR | msrDCD}
	u.Reset()
	return u
}

// Reset applies the MR (master reset) values of the datasheet's Table III.
func (u *UART) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ier, u.lcr, u.mcr, u.scr, u.fcr, u.lsrSticky = 0, 0, 0, 0, 0, 0
	u.dll, u.dlm = resetDivisor, 0
	u.rx = u.rx[:0]
	u.thrIntPending = false
	u.lastRxActivity = u.now()
	u.msr = u.modemLines() // deltas cleared
	u.updateIRQ()
}

func (u *UART) now() uint64 {
	if u.clock == nil {
		return 0
	}
	return u.clock.Now()
}

func (u *UART) fifoEnabled() bool { return u.fcr&fcrEnable != 0 }
func (u *UART) loop() bool        { return u.mcr&mcrLOOP != 0 }

func (u *UART) rxCapacity() int {
	if u.fifoEnabled() {
		return fifoSize
	}
	return 1
}

// modemLines is the upper MSR nibble: the host's lines, or in loopback the
// UART's own outputs fed back (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD).
func (u *UART) modemLines() uint8 {
	if !u.loop() {
		return u.modemIn
	}
	var v uint8
	if u.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if u.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if u.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if u.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// refreshMSR sets the delta bits for lines that changed.
func (u *UART) refreshMSR() {
	old, cur := u.msr, u.modemLines()
	d := u.msr & msrDeltas
	if (old^cur)&msrCTS != 0 {
		d |= msrDCTS
	}
	if (old^cur)&msrDSR != 0 {
		d |= msrDDSR
	}
	if old&msrRI != 0 && cur&msrRI == 0 {
		d |= msrTERI // trailing edge of the ring indicator
	}
	if (old^cur)&msrDCD != 0 {
		d |= msrDDCD
	}
	u.msr = cur | d
}

// charTimeNS is how long one character frame takes at the programmed rate.
func (u *UART) charTimeNS() uint64 {
	div := uint64(u.dlm)<<8 | uint64(u.dll)
	if div == 0 {
		div = 1 << 16 // treated as the largest divisor; 0 is not a valid setting
	}
	wl := uint64(5 + u.lcr&lcrWordLenMask)
	half := 2 * (1 + wl) // start bit and data, in half bits
	if u.lcr&lcrParity != 0 {
		half += 2
	}
	switch {
	case u.lcr&lcrStopBits == 0:
		half += 2
	case wl == 5:
		half += 3 // 1.5 stop bits
	default:
		half += 4
	}
	return half * div * 1_000_000_000 / (2 * baseClock)
}

func (u *UART) timeoutDeadline() (uint64, bool) {
	if !u.fifoEnabled() || len(u.rx) == 0 {
		return 0, false
	}
	return u.lastRxActivity + 4*u.charTimeNS(), true
}

func (u *UART) timeoutPending() bool {
	d, ok := u.timeoutDeadline()
	return ok && u.now() >= d
}

func (u *UART) lsr() uint8 {
	v := u.lsrSticky | lsrTHRE | lsrTEMT
	if len(u.rx) > 0 {
		v |= lsrDR
	}
	if u.fifoEnabled() {
		for _, c := range u.rx {
			if c.flags != 0 {
				v |= lsrFIFOEr
				break
			}
		}
	}
	return v
}

// interrupt returns the IIR identification of the highest-priority pending
// interrupt (Table IV).
func (u *UART) interrupt() uint8 {
	switch {
	case u.ier&ierELSI != 0 && u.lsrSticky&lsrErrors != 0:
		return iirLineStatus
	case u.ier&ierERBFI != 0 && u.rxDataAvailable():
		return iirRxData
	case u.ier&ierERBFI != 0 && u.timeoutPending():
		return iirTimeout
	case u.ier&ierETBEI != 0 && u.thrIntPending:
		return iirTHRE
	case u.ier&ierEDSSI != 0 && u.msr&msrDeltas != 0:
		return iirModemStatus
	}
	return iirNoInterrupt
}

func (u *UART) rxDataAvailable() bool {
	if u.fifoEnabled() {
		return len(u.rx) >= rxTrigger[u.fcr>>fcrTrigShift]
	}
	return len(u.rx) > 0
}

// updateIRQ drives the ISA line: INTRPT gated by OUT2, which loopback
// forces inactive (8.7, bit 4).
func (u *UART) updateIRQ() {
	level := u.interrupt() != iirNoInterrupt && u.mcr&mcrOUT2 != 0 && !u.loop()
	if level != u.irqLevel {
		u.irqLevel = level
		u.irq.Set(level)
	}
}

// receive puts one character into the receiver, applying the overrun rule:
// with the FIFO full the new character is lost; without FIFO it replaces
// the unread one (8.8, bit 1).
func (u *UART) receive(c rxChar) {
	c.data &= 0xFF >> (3 - u.lcr&lcrWordLenMask)
	switch {
	case len(u.rx) < u.rxCapacity():
		u.rx = append(u.rx, c)
		if len(u.rx) == 1 {
			u.lsrSticky |= c.flags
		}
	case u.fifoEnabled():
		u.lsrSticky |= lsrOE
	default:
		u.rx[0] = c
		u.lsrSticky |= lsrOE | c.flags
	}
	u.lastRxActivity = u.now()
}

// Receive hands characters from the host (the console) to the receiver.
// It takes only what fits in the receive FIFO (one character with the FIFO
// disabled) and returns how many it took, so the host never causes an
// overrun and can offer the rest later. In loopback mode the receiver is
// disconnected from the outside and nothing is taken.
func (u *UART) Receive(p []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.loop() {
		return 0
	}
	n := 0
	for _, b := range p {
		if len(u.rx) >= u.rxCapacity() {
			break
		}
		u.receive(rxChar{data: b})
		n++
	}
	u.updateIRQ()
	return n
}

// SetModemInputs sets the host side's CTS, DSR, RI and DCD lines.
func (u *UART) SetModemInputs(cts, dsr, ri, dcd bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var v uint8
	for _, l := range []struct {
		on  bool
		bit uint8
	}{{cts, msrCTS}, {dsr, msrDSR}, {ri, msrRI}, {dcd, msrDCD}} {
		if l.on {
			v |= l.bit
		}
	}
	u.modemIn = v
	u.refreshMSR()
	u.updateIRQ()
}

// Update re-evaluates time-dependent interrupts (the character timeout) at
// the clock's current time. The VMM calls it when NextEvent has passed.
func (u *UART) Update() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.updateIRQ()
}

// NextEvent returns when the character timeout will fire, if it can.
func (u *UART) NextEvent() (ns uint64, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ier&ierERBFI == 0 {
		return 0, false
	}
	return u.timeoutDeadline()
}

// SinkErrors reports how many transmitted bytes the sink failed to take.
func (u *UART) SinkErrors() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sinkErrors
}

func (u *UART) readReg(off uint64) uint8 {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case regRBR:
		if dlab {
			return u.dll
		}
		if len(u.rx) == 0 {
			return 0
		}
		c := u.rx[0]
		u.rx = append(u.rx[:0], u.rx[1:]...)
		if len(u.rx) > 0 {
			u.lsrSticky |= u.rx[0].flags // the next character's errors surface at the top
		}
		u.lastRxActivity = u.now()
		return c.data
	case regIER:
		if dlab {
			return u.dlm
		}
		return u.ier
	case regIIR:
		id := u.interrupt()
		if id == iirTHRE {
			u.thrIntPending = false // reading IIR clears a THRE interrupt it reports
		}
		if u.fifoEnabled() {
			id |= iirFIFOEnabled
		}
		return id
	case regLCR:
		return u.lcr
	case regMCR:
		return u.mcr
	case regLSR:
		v := u.lsr()
		u.lsrSticky = 0
		return v
	case regMSR:
		v := u.msr
		u.msr &^= msrDeltas
		return v
	case regSCR:
		return u.scr
	}
	return 0xFF
}

func (u *UART) writeReg(off uint64, v uint8) {
	dlab := u.lcr&lcrDLAB != 0
	switch off {
	case regTHR:
		if dlab {
			u.dll = v
			return
		}
		u.thrIntPending = false
		u.updateIRQ()
		u.transmit(v)
		u.thrIntPending = true // THR is empty again at once
	case regIER:
		if dlab {
			u.dlm = v
			return
		}
		old := u.ier
		u.ier = v & ierMask
		if u.ier&ierETBEI != 0 && old&ierETBEI == 0 {
			// Enabling ETBEI with THR empty raises the THRE interrupt.
			u.thrIntPending = true
		}
	case regFCR:
		if (v^u.fcr)&fcrEnable != 0 {
			u.rx = u.rx[:0] // changing FCR0 clears both FIFOs
		}
		if v&fcrEnable == 0 {
			u.fcr = 0
			return
		}
		if v&fcrRxReset != 0 {
			u.rx = u.rx[:0]
			u.lastRxActivity = u.now()
		}
		u.fcr = v & fcrStoredMsk
	case regLCR:
		old := u.lcr
		u.lcr = v
		if u.loop() && v&lcrBreak != 0 && old&lcrBreak == 0 {
			// Break on the looped-back line: the receiver sees an
			// all-zero character with BI and FE.
			u.receive(rxChar{flags: lsrBI | lsrFE})
		}
	case regMCR:
		u.mcr = v & mcrMask
		u.refreshMSR()
	case regLSR:
		// LSR is intended for read only; the datasheet allows writes for
		// factory test, which are not modelled.
	case regMSR:
	case regSCR:
		u.scr = v
	}
}

func (u *UART) transmit(v uint8) {
	v &= 0xFF >> (3 - u.lcr&lcrWordLenMask)
	if u.loop() {
		u.receive(rxChar{data: v})
		return
	}
	if _, err := u.sink.Write([]byte{v}); err != nil {
		u.sinkErrors++
	}
}

// Read implements bus.Device. A wide access is a run of byte cycles.
func (u *UART) Read(off uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range data {
		data[i] = u.readReg(off + uint64(i))
	}
	u.updateIRQ()
}

// Write implements bus.Device. A wide access is a run of byte cycles.
func (u *UART) Write(off uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, v := range data {
		u.writeReg(off+uint64(i), v)
		u.updateIRQ()
	}
}

// Install registers the UART's eight ports at base.
func (u *UART) Install(b *bus.Bus, base uint16) error {
	if err := b.RegisterPorts(base, Ports, "uart16550", u); err != nil {
		return fmt.Errorf("uart: install at %#x: %w", base, err)
	}
	return nil
}
