// Package lapic models one processor's local APIC (Intel SDM Vol. 3A,
// chapter 11, "Advanced Programmable Interrupt Controller"): the xAPIC
// register page at 0xFEE00000, the x2APIC MSRs 0x800-0x8FF, interrupt
// acceptance and priority (IRR, ISR, TMR, TPR, PPR), EOI, the local vector
// table, the APIC timer in one-shot, periodic and TSC-deadline modes, and
// the interrupt command register for IPIs.
//
// Boundary: a LAPIC knows nothing about other processors or the I/O APIC.
// IPIs leave through an injected callback (Router implements the APIC bus
// that delivers them by destination), level-triggered EOIs leave through
// another (to the I/O APIC), and the vCPU loop pulls what to inject with
// PendingVector/Acknowledge, TakeNMI, TakeINIT, TakeSIPI and TakeExtINT.
// Time comes only from the injected devices.Clock and TSC conversion, so a
// replay with the same accesses at the same clock values is bit-identical.
//
// Section numbers are those of the SDM Vol. 3A (order number 253668).
package lapic

import (
	"errors"
	"sync"

	"hv/devices"
)

// DefaultBase is the power-on physical address of the xAPIC register page
// (SDM 11.4.1) and PageSize its size.
const (
	DefaultBase = 0xFEE00000
	PageSize    = 0x1000
)

// MSRs owned by the local APIC.
const (
	MSRAPICBase    = 0x1B  // IA32_APIC_BASE, SDM 11.4.4 figure 11-5
	MSRTSCDeadline = 0x6E0 // IA32_TSC_DEADLINE, SDM 11.5.4.1
	MSRX2APICFirst = 0x800 // x2APIC register MSRs, SDM 11.12.1.2 table 11-6
	MSRX2APICLast  = 0x8FF
)

// IA32_APIC_BASE bits (SDM 11.4.4 figure 11-5, 11.12.1 table 11-5).
const (
	BaseBSP      = 1 << 8
	BaseX2APIC   = 1 << 10 // EXTD
	BaseEnable   = 1 << 11 // EN: xAPIC global enable
	baseAddrMask = 0x000FFFFFFFFFF000
	baseMask     = baseAddrMask | BaseBSP | BaseX2APIC | BaseEnable
)

// Register offsets in the xAPIC page (SDM 11.4.1 table 11-1). The x2APIC
// MSR for a register is 0x800 + offset>>4 (SDM 11.12.1.2).
const (
	RegID         = 0x020
	RegVersion    = 0x030
	RegTPR        = 0x080
	RegAPR        = 0x090
	RegPPR        = 0x0A0
	RegEOI        = 0x0B0
	RegRRD        = 0x0C0
	RegLDR        = 0x0D0
	RegDFR        = 0x0E0
	RegSVR        = 0x0F0
	RegISR        = 0x100 // eight registers, 0x100-0x170
	RegTMR        = 0x180 // 0x180-0x1F0
	RegIRR        = 0x200 // 0x200-0x270
	RegESR        = 0x280
	RegLVTCMCI    = 0x2F0
	RegICRLow     = 0x300
	RegICRHigh    = 0x310
	RegLVTTimer   = 0x320
	RegLVTThermal = 0x330
	RegLVTPerf    = 0x340
	RegLVTLINT0   = 0x350
	RegLVTLINT1   = 0x360
	RegLVTError   = 0x370
	RegTimerInit  = 0x380
	RegTimerCur   = 0x390
	RegTimerDiv   = 0x3E0
	RegSelfIPI    = 0x3F0 // x2APIC only (MSR 0x83F), SDM 11.12.11
)

// Version register (SDM 11.4.8 figure 11-7): version 0x14 is an integrated
// xAPIC; Max LVT Entry is the number of LVT entries minus one. This model has
// six (timer, thermal, performance, LINT0, LINT1, error) and no CMCI.
const (
	apicVersion = 0x14
	maxLVTEntry = 5
	versionReg  = apicVersion | maxLVTEntry<<16
)

// LVT entry fields (SDM 11.5.1 figure 11-8).
const (
	lvtVectorMask   = 0xFF
	lvtDeliveryMask = 0x700
	lvtDeliveryShft = 8
	lvtPending      = 1 << 12 // delivery status, read-only
	lvtPolarity     = 1 << 13 // LINT0/1 only
	lvtRemoteIRR    = 1 << 14 // LINT0/1 only, read-only
	lvtLevel        = 1 << 15 // LINT0/1 only
	LVTMasked       = 1 << 16
	lvtTimerMode    = 3 << 17
	lvtTimerShift   = 17

	// Writable bits per LVT register.
	lvtTimerWritable = lvtVectorMask | LVTMasked | lvtTimerMode
	lvtLINTWritable  = lvtVectorMask | lvtDeliveryMask | lvtPolarity | lvtLevel | LVTMasked
	lvtOtherWritable = lvtVectorMask | lvtDeliveryMask | LVTMasked // thermal, perf
	lvtErrWritable   = lvtVectorMask | LVTMasked
)

// Timer modes, LVT timer bits 18:17 (SDM 11.5.4 figure 11-8).
const (
	TimerOneShot     = 0
	TimerPeriodic    = 1
	TimerTSCDeadline = 2
)

// Spurious-interrupt vector register (SDM 11.9 figure 11-23).
const (
	svrVector      = 0xFF
	SVREnable      = 1 << 8 // APIC software enable
	svrFocus       = 1 << 9 // focus processor checking (no effect here)
	svrWritable    = svrVector | SVREnable | svrFocus
	svrResetValue  = 0xFF
	dfrFlat        = 0xFFFFFFFF
	dfrWritable    = 0xF0000000
	ldrXAPICMask   = 0xFF000000
	tprMask        = 0xFF
	timerDivMask   = 0xB
	icrLowWritable = 0xFFF | icrLevelAssert | icrTriggerLevel | icrShorthand
)

// Error status register bits (SDM 11.5.3 figure 11-9).
const (
	ESRSendIllegalVector    = 1 << 5
	ESRReceiveIllegalVector = 1 << 6
	ESRIllegalRegister      = 1 << 7
)

// ICR fields (SDM 11.6.1 figure 11-12).
const (
	icrVector       = 0xFF
	icrDeliveryShft = 8
	icrLogical      = 1 << 11
	icrLevelAssert  = 1 << 14
	icrTriggerLevel = 1 << 15
	icrShorthand    = 3 << 18
	icrShortShift   = 18
)

// DeliveryMode is the 3-bit delivery mode of an ICR, LVT or I/O APIC
// redirection entry (SDM 11.6.1, 11.5.1).
type DeliveryMode uint8

// Delivery modes.
const (
	Fixed          DeliveryMode = 0
	LowestPriority DeliveryMode = 1
	SMI            DeliveryMode = 2
	NMI            DeliveryMode = 4
	INIT           DeliveryMode = 5
	StartUp        DeliveryMode = 6
	ExtINT         DeliveryMode = 7
)

// Shorthand is the ICR destination shorthand (SDM 11.6.1).
type Shorthand uint8

// Destination shorthands.
const (
	NoShorthand      Shorthand = 0
	Self             Shorthand = 1
	AllIncludingSelf Shorthand = 2
	AllExcludingSelf Shorthand = 3
)

// Broadcast destinations in physical mode (SDM 11.6.2.1, 11.12.9).
const (
	BroadcastXAPIC  = 0xFF
	BroadcastX2APIC = 0xFFFFFFFF
)

// Message is an interrupt on the APIC bus: what an ICR write, an I/O APIC
// redirection entry or an MSI produces.
type Message struct {
	Vector    uint8
	Mode      DeliveryMode
	Logical   bool   // destination mode: logical (true) or physical
	Dest      uint32 // 8 bits in xAPIC mode, 32 in x2APIC mode
	Level     bool   // trigger mode: level (true) or edge
	Assert    bool   // level: assert; false only for INIT level de-assert
	Shorthand Shorthand
}

// ErrGP is returned by MSR accesses that raise #GP(0) on the processor; the
// caller injects the exception.
var ErrGP = errors.New("lapic: general protection")

// TSC converts between VM clock time and the guest's time-stamp counter,
// for the TSC-deadline timer mode.
type TSC interface {
	// TicksAt returns the guest TSC value at VM clock time ns.
	TicksAt(ns uint64) uint64
	// NanosAt returns the earliest VM clock time at which the guest TSC
	// reaches tsc (^uint64(0) when it never does).
	NanosAt(tsc uint64) uint64
}

// Config wires a LAPIC to the rest of the VM. Callbacks are wiring, not
// state: they are not saved.
type Config struct {
	// ID is the initial APIC ID.
	ID uint32
	// BSP sets IA32_APIC_BASE.BSP.
	BSP bool
	// Clock is the VM clock; TSC the guest TSC over it (nil: FixedTSC at
	// BusHz).
	Clock devices.Clock
	TSC   TSC
	// BusHz is the rate at which the timer's divider is clocked (the APIC
	// bus or core crystal clock). 0 means DefaultBusHz.
	BusHz uint64
	// SendIPI is called for every ICR write (and x2APIC self-IPI) with no
	// LAPIC lock held.
	SendIPI func(from *LAPIC, m Message)
	// EOI is called with the vector when the guest EOIs a level-triggered
	// interrupt, with no LAPIC lock held (the I/O APIC clears Remote IRR).
	EOI func(vector uint8)
	// Kick is called when something new becomes pending for the vCPU. It
	// may be called with this LAPIC's lock held and must not call back
	// into it (it should just wake the vCPU).
	Kick func()
}

// DefaultBusHz is the timer input clock when Config.BusHz is 0: 1 GHz, one
// tick per VM-clock nanosecond, as KVM's emulated APIC uses.
const DefaultBusHz = 1_000_000_000

// LAPIC is one processor's local APIC. It is safe for concurrent use.
type LAPIC struct {
	mu    sync.Mutex
	cfg   Config
	tsc   TSC
	busHz uint64

	base            uint64 // IA32_APIC_BASE
	id              uint32 // xAPIC: 8 bits, x2APIC: 32 bits
	tpr             uint32
	ldr             uint32
	dfr             uint32
	svr             uint32
	irr, isr, tmr   [8]uint32
	esr, errPending uint32
	icrLow, icrHigh uint32
	lvt             [numLVT]uint32
	timerDiv        uint32

	timer timerState

	lintLevel [2]bool
	nmi       bool
	init      bool
	sipi      bool
	sipiVec   uint8
	extINT    bool
}

// LVT indices.
const (
	lvtTimer = iota
	lvtThermal
	lvtPerf
	lvtLINT0
	lvtLINT1
	lvtError
	numLVT
)

var lvtOffsets = [numLVT]uint32{RegLVTTimer, RegLVTThermal, RegLVTPerf, RegLVTLINT0, RegLVTLINT1, RegLVTError}

// FixedTSC is a TSC that runs at Hz from 0 at VM clock 0.
type FixedTSC struct{ Hz uint64 }

// TicksAt implements TSC.
func (f FixedTSC) TicksAt(ns uint64) uint64 { return mulDiv(ns, f.Hz, 1_000_000_000) }

// NanosAt implements TSC.
func (f FixedTSC) NanosAt(tsc uint64) uint64 { return mulDivCeil(tsc, 1_000_000_000, f.Hz) }

// New returns a LAPIC in its power-on state (SDM 11.4.7.1): xAPIC mode,
// globally enabled, software disabled, every LVT masked.
func New(cfg Config) *LAPIC {
	a := &LAPIC{cfg: cfg, tsc: cfg.TSC, busHz: cfg.BusHz}
	if a.busHz == 0 {
		a.busHz = DefaultBusHz
	}
	if a.tsc == nil {
		a.tsc = FixedTSC{Hz: a.busHz}
	}
	if a.cfg.SendIPI == nil {
		a.cfg.SendIPI = func(*LAPIC, Message) {}
	}
	if a.cfg.EOI == nil {
		a.cfg.EOI = func(uint8) {}
	}
	if a.cfg.Kick == nil {
		a.cfg.Kick = func() {}
	}
	a.Reset()
	return a
}

// Reset puts the LAPIC in its power-on state.
func (a *LAPIC) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.base = DefaultBase | BaseEnable
	if a.cfg.BSP {
		a.base |= BaseBSP
	}
	a.id = a.cfg.ID
	if a.id > 0xFF {
		a.id &= 0xFF
	}
	a.resetRegisters()
	a.nmi, a.init, a.sipi, a.sipiVec, a.extINT = false, false, false, 0, false
	a.lintLevel = [2]bool{}
}

// resetRegisters is the register part of power-on and INIT (SDM 11.4.7.1,
// 11.4.7.3): everything but the APIC ID and IA32_APIC_BASE.
func (a *LAPIC) resetRegisters() {
	a.tpr, a.ldr = 0, 0
	a.dfr = dfrFlat
	a.svr = svrResetValue
	a.irr, a.isr, a.tmr = [8]uint32{}, [8]uint32{}, [8]uint32{}
	a.esr, a.errPending = 0, 0
	a.icrLow, a.icrHigh = 0, 0
	for i := range a.lvt {
		a.lvt[i] = LVTMasked
	}
	a.timerDiv = 0
	a.timer = timerState{}
}

// INITReset applies an INIT to the LAPIC (the vCPU loop calls it when it
// performs an INIT on its processor): the registers return to their
// power-on values, keeping the APIC ID and IA32_APIC_BASE (SDM 11.4.7.3).
func (a *LAPIC) INITReset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resetRegisters()
	a.nmi, a.extINT = false, false
}

func (a *LAPIC) now() uint64 {
	if a.cfg.Clock == nil {
		return 0
	}
	return a.cfg.Clock.Now()
}

func (a *LAPIC) x2APIC() bool    { return a.base&BaseX2APIC != 0 }
func (a *LAPIC) hwEnabled() bool { return a.base&BaseEnable != 0 }
func (a *LAPIC) swEnabled() bool { return a.hwEnabled() && a.svr&SVREnable != 0 }

// ID returns the current APIC ID (8 bits in xAPIC mode, 32 in x2APIC mode).
func (a *LAPIC) ID() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// Enabled reports whether the APIC is globally enabled (IA32_APIC_BASE.EN).
func (a *LAPIC) Enabled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hwEnabled()
}

// X2APIC reports whether the APIC is in x2APIC mode.
func (a *LAPIC) X2APIC() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.x2APIC()
}

// Base returns IA32_APIC_BASE.
func (a *LAPIC) Base() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.base
}

// SetBase writes IA32_APIC_BASE with the transitions of SDM 11.12.5
// figure 11-29: x2APIC may be entered only from enabled xAPIC, left only
// by disabling, and EXTD without EN is invalid. The base address is kept
// (so software reads back what it wrote) but the register page stays where
// the VMM registered it; no known guest relocates it.
func (a *LAPIC) SetBase(v uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v&^baseMask != 0 {
		return ErrGP
	}
	newEN, newX2 := v&BaseEnable != 0, v&BaseX2APIC != 0
	oldEN, oldX2 := a.hwEnabled(), a.x2APIC()
	switch {
	case newX2 && !newEN:
		return ErrGP // invalid state
	case newX2 && !oldEN:
		return ErrGP // disabled -> x2APIC
	case oldX2 && newEN && !newX2:
		return ErrGP // x2APIC -> xAPIC
	}
	v = v&^BaseBSP | a.base&BaseBSP // BSP is read-only to software
	if !newEN && oldEN {
		// Globally disabling resets the APIC's state as a power-on does,
		// keeping the ID (SDM 11.4.3).
		a.resetRegisters()
	}
	if newX2 && !oldX2 {
		// Entering x2APIC mode: the ID is the initial APIC ID and the LDR
		// is derived from it (SDM 11.12.10.2).
		a.id = a.cfg.ID
		a.ldr = x2LDR(a.id)
	}
	if !newX2 && oldX2 {
		a.id = a.cfg.ID & 0xFF
		a.ldr = 0
	}
	a.base = v
	return nil
}

// x2LDR is the x2APIC logical ID derived from the x2APIC ID: cluster in
// bits 31:16, one-hot position in bits 15:0 (SDM 11.12.10.2).
func x2LDR(id uint32) uint32 { return (id>>4)<<16 | 1<<(id&0xF) }

// ---- interrupt acceptance and priority (SDM 11.8) ----

func highest(r *[8]uint32) (uint8, bool) {
	for i := 7; i >= 0; i-- {
		if r[i] != 0 {
			for b := 31; b >= 0; b-- {
				if r[i]&(1<<b) != 0 {
					return uint8(i*32 + b), true
				}
			}
		}
	}
	return 0, false
}

func testBit(r *[8]uint32, v uint8) bool { return r[v/32]&(1<<(v%32)) != 0 }
func setBit(r *[8]uint32, v uint8)       { r[v/32] |= 1 << (v % 32) }
func clearBit(r *[8]uint32, v uint8)     { r[v/32] &^= 1 << (v % 32) }

// ppr computes the processor priority (SDM 11.8.3.1).
func (a *LAPIC) ppr() uint32 {
	isrv, _ := highest(&a.isr)
	if a.tpr>>4 >= uint32(isrv)>>4 {
		return a.tpr
	}
	return uint32(isrv) & 0xF0
}

// apr computes the arbitration priority (SDM 11.6.2.4, figure 11-16).
func (a *LAPIC) apr() uint32 {
	isrv, _ := highest(&a.isr)
	irrv, _ := highest(&a.irr)
	if a.tpr>>4 >= uint32(irrv)>>4 && a.tpr>>4 > uint32(isrv)>>4 {
		return a.tpr
	}
	return max(a.tpr&0xF0, uint32(isrv)&0xF0, uint32(irrv)&0xF0)
}

// ArbitrationPriority returns the APR, by which the Router picks the target
// of a lowest-priority interrupt.
func (a *LAPIC) ArbitrationPriority() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apr()
}

// pending returns the vector the processor would take now: the highest
// IRR vector whose priority class is above the PPR's (SDM 11.8.4).
func (a *LAPIC) pending() (uint8, bool) {
	if !a.hwEnabled() {
		return 0, false
	}
	v, ok := highest(&a.irr)
	if !ok || uint32(v)>>4 <= a.ppr()>>4 {
		return 0, false
	}
	return v, true
}

// PendingVector reports the interrupt the vCPU should take when it can
// (RFLAGS.IF set, no interrupt shadow).
func (a *LAPIC) PendingVector() (uint8, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance()
	return a.pending()
}

// Acknowledge is the INTA cycle for vector, which the vCPU has just taken:
// the vector moves from IRR to ISR (SDM 11.8.4). Acknowledging a vector
// that is not the deliverable one is ignored and reported false.
func (a *LAPIC) Acknowledge(vector uint8) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.pending()
	if !ok || v != vector {
		return false
	}
	clearBit(&a.irr, v)
	setBit(&a.isr, v)
	return true
}

// accept puts a fixed interrupt in the IRR (SDM 11.8.3, 11.8.4). Vectors
// 0-15 are illegal and set the receive-illegal-vector error instead.
func (a *LAPIC) accept(vector uint8, level bool) {
	if vector < 16 {
		a.setError(ESRReceiveIllegalVector)
		return
	}
	setBit(&a.irr, vector)
	if level {
		setBit(&a.tmr, vector)
	} else {
		clearBit(&a.tmr, vector)
	}
	a.cfg.Kick()
}

// setError latches an error and raises the error LVT (SDM 11.5.3).
func (a *LAPIC) setError(bit uint32) {
	a.errPending |= bit
	a.lvtInterrupt(lvtError)
}

// lvtInterrupt delivers a local interrupt source through its LVT entry
// (SDM 11.5.1). Masked entries, and all of them while the APIC is software
// disabled (their mask bits are forced on), deliver nothing.
func (a *LAPIC) lvtInterrupt(i int) {
	e := a.lvt[i]
	if e&LVTMasked != 0 || !a.swEnabled() {
		return
	}
	mode := Fixed
	if i != lvtTimer && i != lvtError {
		mode = DeliveryMode(e & lvtDeliveryMask >> lvtDeliveryShft)
	}
	level := (i == lvtLINT0 || i == lvtLINT1) && e&lvtLevel != 0
	switch mode {
	case Fixed:
		if level {
			// Remote IRR stays set until the EOI of this vector (11.5.1).
			a.lvt[i] |= lvtRemoteIRR
		}
		a.accept(uint8(e&lvtVectorMask), level)
	case NMI:
		a.nmi = true
		a.cfg.Kick()
	case ExtINT:
		a.extINT = true
		a.cfg.Kick()
	case SMI, INIT:
		// SMM is not modelled; INIT through an LVT is reserved for LINTs
		// on modern processors. Both are dropped.
	}
}

// deliver accepts a message the APIC bus has routed to this LAPIC.
func (a *LAPIC) deliver(m Message) {
	switch m.Mode {
	case Fixed, LowestPriority:
		// A software-disabled APIC holds what it has but accepts no new
		// fixed interrupts (11.4.7.2; KVM drops them the same way).
		if a.swEnabled() {
			a.accept(m.Vector, m.Level)
		}
	case NMI:
		a.nmi = true
		a.cfg.Kick()
	case INIT:
		if m.Level && !m.Assert {
			return // INIT level de-assert only resynchronises arbitration IDs
		}
		// INIT resets the processor: a start-up IPI that arrived before
		// it is void (only one received in wait-for-SIPI starts it).
		a.init, a.sipi, a.sipiVec = true, false, 0
		a.cfg.Kick()
	case StartUp:
		a.sipi, a.sipiVec = true, m.Vector
		a.cfg.Kick()
	case ExtINT:
		a.extINT = true
		a.cfg.Kick()
	}
}

// Deliver accepts an interrupt message addressed to this LAPIC (the Router
// has done the destination matching).
func (a *LAPIC) Deliver(m Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.hwEnabled() {
		a.deliver(m)
	}
}

// TakeNMI reports and clears a pending NMI.
func (a *LAPIC) TakeNMI() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.nmi
	a.nmi = false
	return v
}

// TakeINIT reports and clears a pending INIT.
func (a *LAPIC) TakeINIT() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.init
	a.init = false
	return v
}

// TakeSIPI reports and clears a pending start-up IPI and its vector (the
// real-mode start page number). The vCPU loop honours it only in the
// wait-for-SIPI state, as the processor does.
func (a *LAPIC) TakeSIPI() (uint8, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.sipiVec, a.sipi
	a.sipi, a.sipiVec = false, 0
	return v, ok
}

// TakeExtINT reports and clears a pending ExtINT request: the vCPU loop
// then takes the vector from the 8259 (its INTA cycle).
func (a *LAPIC) TakeExtINT() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := a.extINT
	a.extINT = false
	return v
}

// AcceptsPICInterrupts reports whether the 8259's INTR reaches the
// processor: through LINT0 programmed as unmasked ExtINT, or directly when
// the APIC is globally disabled (virtual wire, SDM 11.4.3 and MP spec 3.6.2).
func (a *LAPIC) AcceptsPICInterrupts() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.hwEnabled() {
		return true
	}
	e := a.lvt[lvtLINT0]
	return a.swEnabled() && e&LVTMasked == 0 && DeliveryMode(e&lvtDeliveryMask>>lvtDeliveryShft) == ExtINT
}

// SetLINT drives local interrupt pin LINT0 (pin 0) or LINT1 (pin 1).
// Edge-triggered entries fire on the active edge; level-triggered fixed
// entries fire while active and Remote IRR is clear (SDM 11.5.1).
func (a *LAPIC) SetLINT(pin int, level bool) {
	if pin != 0 && pin != 1 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	i := lvtLINT0 + pin
	e := a.lvt[i]
	active := level != (e&lvtPolarity != 0)
	was := a.lintLevel[pin] != (e&lvtPolarity != 0)
	a.lintLevel[pin] = level
	if e&lvtLevel != 0 && DeliveryMode(e&lvtDeliveryMask>>lvtDeliveryShft) == Fixed {
		if active && e&lvtRemoteIRR == 0 {
			a.lvtInterrupt(i)
		}
		return
	}
	if active && !was {
		a.lvtInterrupt(i)
	}
}

// LINT returns pin (0 or 1) as an IRQ line.
func (a *LAPIC) LINT(pin int) devices.IRQLine { return lintLine{a, pin} }

type lintLine struct {
	a   *LAPIC
	pin int
}

func (l lintLine) Set(level bool) { l.a.SetLINT(l.pin, level) }

// eoi retires the highest in-service interrupt (SDM 11.8.5). It returns
// the vector and whether it was level-triggered, for the broadcast.
func (a *LAPIC) eoi() (uint8, bool) {
	v, ok := highest(&a.isr)
	if !ok {
		return 0, false
	}
	clearBit(&a.isr, v)
	level := testBit(&a.tmr, v)
	if level {
		for _, i := range []int{lvtLINT0, lvtLINT1} {
			if a.lvt[i]&lvtVectorMask == uint32(v) {
				a.lvt[i] &^= lvtRemoteIRR
			}
		}
	}
	return v, level
}

// ---- matching (SDM 11.6.2) ----

// Matches reports whether a message with this destination and mode is
// addressed to this LAPIC (shorthands are the Router's business).
func (a *LAPIC) Matches(dest uint32, logical bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.matches(dest, logical)
}

func (a *LAPIC) matches(dest uint32, logical bool) bool {
	if !a.hwEnabled() {
		return false
	}
	if a.x2APIC() {
		if dest == BroadcastX2APIC {
			return true
		}
		if !logical {
			return dest == a.id
		}
		// Cluster in 31:16, bit mask in 15:0 (11.12.10.2).
		return dest>>16 == a.ldr>>16 && dest&a.ldr&0xFFFF != 0
	}
	dest &= 0xFF
	if dest == BroadcastXAPIC {
		return true
	}
	if !logical {
		return dest == a.id&0xFF
	}
	ldr := a.ldr >> 24
	if a.dfr>>28 == 0xF { // flat model (11.6.2.2)
		return dest&ldr != 0
	}
	// Cluster model: cluster in the high nibble, members in the low one.
	return dest>>4 == ldr>>4 && dest&ldr&0xF != 0
}

// ---- register file ----

func (a *LAPIC) readReg(off uint32) (uint32, bool) {
	switch {
	case off >= RegISR && off < RegISR+0x80:
		return a.isr[(off-RegISR)>>4], true
	case off >= RegTMR && off < RegTMR+0x80:
		return a.tmr[(off-RegTMR)>>4], true
	case off >= RegIRR && off < RegIRR+0x80:
		return a.irr[(off-RegIRR)>>4], true
	}
	switch off {
	case RegID:
		if a.x2APIC() {
			return a.id, true
		}
		return a.id << 24, true
	case RegVersion:
		return versionReg, true
	case RegTPR:
		return a.tpr, true
	case RegAPR:
		return a.apr(), true
	case RegPPR:
		return a.ppr(), true
	case RegLDR:
		return a.ldr, true
	case RegDFR:
		return a.dfr, !a.x2APIC()
	case RegSVR:
		return a.svr, true
	case RegESR:
		return a.esr, true
	case RegICRLow:
		return a.icrLow, true
	case RegICRHigh:
		return a.icrHigh, !a.x2APIC()
	case RegTimerInit:
		return a.timer.initial, true
	case RegTimerCur:
		return a.currentCount(), true
	case RegTimerDiv:
		return a.timerDiv, true
	}
	for i, o := range lvtOffsets {
		if off == o {
			return a.lvt[i], true
		}
	}
	return 0, false // reserved, write-only (EOI, self-IPI) or RRD
}

// action is work a register write leaves for after the lock is dropped.
type action struct {
	ipi    bool
	msg    Message
	eoi    bool
	eoiVec uint8
}

func (a *LAPIC) writeReg(off, v uint32, act *action) bool {
	switch off {
	case RegID:
		if a.x2APIC() {
			return false
		}
		// The xAPIC ID is writable on the processors this models
		// (11.4.6); Linux never does it.
		a.id = v >> 24
	case RegTPR:
		a.tpr = v & tprMask
	case RegEOI:
		if a.x2APIC() && v != 0 {
			return false
		}
		act.eoiVec, act.eoi = a.eoi()
	case RegLDR:
		if a.x2APIC() {
			return false
		}
		a.ldr = v & ldrXAPICMask
	case RegDFR:
		if a.x2APIC() {
			return false
		}
		a.dfr = v&dfrWritable | ^uint32(dfrWritable)
	case RegSVR:
		a.svr = v & svrWritable
		if a.svr&SVREnable == 0 {
			// Software disable forces every LVT mask on (11.4.7.2).
			for i := range a.lvt {
				a.lvt[i] |= LVTMasked
			}
		}
	case RegESR:
		if a.x2APIC() && v != 0 {
			return false
		}
		a.esr, a.errPending = a.errPending, 0
	case RegICRLow:
		a.icrLow = v & icrLowWritable
		act.ipi, act.msg = a.icrMessage()
	case RegICRHigh:
		if a.x2APIC() {
			return false
		}
		a.icrHigh = v & 0xFF000000
	case RegLVTTimer:
		a.writeLVTTimer(v)
	case RegLVTThermal:
		a.writeLVT(lvtThermal, v, lvtOtherWritable)
	case RegLVTPerf:
		a.writeLVT(lvtPerf, v, lvtOtherWritable)
	case RegLVTLINT0:
		a.writeLVT(lvtLINT0, v, lvtLINTWritable)
	case RegLVTLINT1:
		a.writeLVT(lvtLINT1, v, lvtLINTWritable)
	case RegLVTError:
		a.writeLVT(lvtError, v, lvtErrWritable)
	case RegTimerInit:
		a.writeInitialCount(v)
	case RegTimerDiv:
		a.writeDivide(v & timerDivMask)
	case RegSelfIPI:
		if !a.x2APIC() {
			return false
		}
		// Self IPI: fixed, edge, to self (11.12.11).
		act.ipi, act.msg = true, Message{Vector: uint8(v), Mode: Fixed, Shorthand: Self, Assert: true}
	case RegTimerCur, RegVersion, RegAPR, RegPPR, RegRRD:
		return !a.x2APIC() // read-only: ignored in xAPIC, #GP in x2APIC
	default:
		if off >= RegISR && off < RegIRR+0x80 {
			return !a.x2APIC()
		}
		if !a.x2APIC() {
			a.setError(ESRIllegalRegister)
		}
		return false
	}
	return true
}

func (a *LAPIC) writeLVT(i int, v, writable uint32) {
	keep := a.lvt[i] & lvtRemoteIRR
	a.lvt[i] = v&writable | keep
	if !a.swEnabled() {
		a.lvt[i] |= LVTMasked
	}
}

// icrMessage builds the IPI for the current ICR (SDM 11.6.1). The delivery
// status bit is never seen set: the message is sent before the write
// returns.
func (a *LAPIC) icrMessage() (bool, Message) {
	lo := a.icrLow
	m := Message{
		Vector:    uint8(lo & icrVector),
		Mode:      DeliveryMode(lo >> icrDeliveryShft & 7),
		Logical:   lo&icrLogical != 0,
		Level:     lo&icrTriggerLevel != 0,
		Assert:    lo&icrLevelAssert != 0 || lo&icrTriggerLevel == 0,
		Shorthand: Shorthand(lo & icrShorthand >> icrShortShift),
	}
	if a.x2APIC() {
		m.Dest = a.icrHigh
	} else {
		m.Dest = a.icrHigh >> 24
	}
	switch m.Mode {
	case Fixed, LowestPriority:
		if m.Vector < 16 {
			a.setError(ESRSendIllegalVector)
			return false, m
		}
	case SMI, NMI, INIT:
		m.Vector = 0
	case StartUp:
	default:
		return false, m // reserved 3 and ExtINT are not sendable by IPI
	}
	return true, m
}

// finish runs the work a register write left. It must be called without
// the lock held: the Router re-enters LAPICs (including this one, for a
// self-IPI), and the I/O APIC may redeliver on EOI.
func (a *LAPIC) finish(act action) {
	if act.ipi {
		a.cfg.SendIPI(a, act.msg)
	}
	if act.eoi {
		a.cfg.EOI(act.eoiVec)
	}
}

// Read implements bus.Device for the xAPIC page. Registers are 32 bits at
// 16-byte-aligned offsets; bytes outside a register's first four read as 0,
// and so does everything in x2APIC mode or with the APIC globally disabled
// (the page is then not decoded; the bus below would float, but 0 keeps
// the model independent of what is below).
func (a *LAPIC) Read(off uint64, data []byte) {
	clear(data)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.hwEnabled() || a.x2APIC() || off >= PageSize {
		return
	}
	a.advance()
	for i := range data {
		o := off + uint64(i)
		if o >= PageSize || o&0xF >= 4 {
			continue
		}
		v, _ := a.readReg(uint32(o &^ 0xF))
		data[i] = byte(v >> (8 * (o & 3)))
	}
}

// Write implements bus.Device for the xAPIC page. Only aligned 32-bit (or
// 64-bit, low half taken) writes to a register reach it; the SDM leaves
// other sizes undefined (11.4.1) and they are dropped.
func (a *LAPIC) Write(off uint64, data []byte) {
	if off >= PageSize || off&0xF != 0 || (len(data) != 4 && len(data) != 8) {
		return
	}
	v := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
	var act action
	a.mu.Lock()
	if a.hwEnabled() && !a.x2APIC() {
		a.advance()
		a.writeReg(uint32(off), v, &act)
	}
	a.mu.Unlock()
	a.finish(act)
}

// ReadMSR reads an x2APIC register MSR, IA32_APIC_BASE or
// IA32_TSC_DEADLINE. It returns ErrGP where RDMSR faults (SDM 11.12.1.2).
func (a *LAPIC) ReadMSR(msr uint32) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch msr {
	case MSRAPICBase:
		return a.base, nil
	case MSRTSCDeadline:
		a.advance()
		if a.lvt[lvtTimer]&lvtTimerMode>>lvtTimerShift != TimerTSCDeadline {
			return 0, nil
		}
		return a.timer.deadline, nil
	}
	if msr < MSRX2APICFirst || msr > MSRX2APICLast || !a.x2APIC() {
		return 0, ErrGP
	}
	off := (msr - MSRX2APICFirst) << 4
	a.advance()
	if off == RegICRLow {
		return uint64(a.icrHigh)<<32 | uint64(a.icrLow), nil
	}
	v, ok := a.readReg(off)
	if !ok {
		return 0, ErrGP
	}
	return uint64(v), nil
}

// WriteMSR writes an x2APIC register MSR, IA32_APIC_BASE or
// IA32_TSC_DEADLINE, returning ErrGP where WRMSR faults: read-only and
// reserved registers, reserved bits set in the upper half (SDM 11.12.1.2).
func (a *LAPIC) WriteMSR(msr uint32, v uint64) error {
	switch msr {
	case MSRAPICBase:
		return a.SetBase(v)
	case MSRTSCDeadline:
		a.mu.Lock()
		defer a.mu.Unlock()
		a.advance()
		a.writeDeadline(v)
		return nil
	}
	var act action
	a.mu.Lock()
	if msr < MSRX2APICFirst || msr > MSRX2APICLast || !a.x2APIC() {
		a.mu.Unlock()
		return ErrGP
	}
	off := (msr - MSRX2APICFirst) << 4
	a.advance()
	var ok bool
	switch {
	case off == RegICRLow:
		// One 64-bit register: destination in 63:32 (11.12.9).
		a.icrHigh = uint32(v >> 32)
		ok = a.writeReg(off, uint32(v), &act)
	case v>>32 != 0:
		ok = false
	default:
		ok = a.writeReg(off, uint32(v), &act)
	}
	a.mu.Unlock()
	if !ok {
		return ErrGP
	}
	a.finish(act)
	return nil
}
