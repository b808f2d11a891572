package boot

import (
	"sync/atomic"
)

// Local APIC in xAPIC mode (Intel SDM vol. 3A ch. 11). The register page is
// identity-mapped uncached.
const (
	lapicDefaultBase = 0xFEE00000
	lapicID          = 0x020
	lapicEOI         = 0x0B0
	lapicSVR         = 0x0F0
	lapicICRLow      = 0x300
	lapicICRHigh     = 0x310
	lapicLVTTimer    = 0x320
	lapicLVTLINT0    = 0x350
	lapicLVTLINT1    = 0x360
	lapicLVTError    = 0x370
	lapicTimerInit   = 0x380
	lapicTimerCur    = 0x390
	lapicTimerDiv    = 0x3E0

	lvtMasked          = 1 << 16
	icrDeliveryPending = 1 << 12
	svrEnable          = 1 << 8

	vecTimer    = 0xEF
	vecWake     = 0xF0
	vecSpurious = 0xFF

	msrAPICBase = 0x1B
)

// lapicBase is set once on CPU 0 before the other CPUs start.
var lapicBase uint64 = lapicDefaultBase

func lapicRead(reg uint32) uint32 {
	return atomic.LoadUint32((*uint32)(physPtr(lapicBase + uint64(reg))))
}

func lapicWrite(reg uint32, v uint32) {
	atomic.StoreUint32((*uint32)(physPtr(lapicBase+uint64(reg))), v)
}

// maskPIC reprograms the legacy 8259 pair away from the exception vectors
// (0x20-0x2F) and masks every line: the firmware leaves the PIT's IRQ0
// enabled, and we use the local APIC only.
func maskPIC() {
	outb(0x20, 0x11) // ICW1: edge, cascade, ICW4 needed
	outb(0xA0, 0x11)
	outb(0x21, 0x20) // ICW2: vector offsets
	outb(0xA1, 0x28)
	outb(0x21, 0x04) // ICW3: slave on IRQ2
	outb(0xA1, 0x02)
	outb(0x21, 0x01) // ICW4: 8086 mode
	outb(0xA1, 0x01)
	outb(0x21, 0xFF) // OCW1: mask all
	outb(0xA1, 0xFF)
}

// lapicInit enables this CPU's local APIC with a spurious vector and the
// timer masked, one-shot, divide by 16.
func lapicInit() {
	v := rdmsr(msrAPICBase)
	wrmsr(msrAPICBase, v|1<<11) // global enable
	lapicWrite(lapicSVR, svrEnable|vecSpurious)
	lapicWrite(lapicTimerDiv, 0x3) // divide by 16
	lapicWrite(lapicLVTTimer, lvtMasked|vecTimer)
	lapicWrite(lapicLVTLINT0, lvtMasked)
	lapicWrite(lapicLVTLINT1, lvtMasked)
	lapicWrite(lapicLVTError, lvtMasked|vecSpurious)
	lapicWrite(lapicEOI, 0)
}

func lapicEOIWrite() { lapicWrite(lapicEOI, 0) }

// lapicOneShot arms the timer to fire after ns nanoseconds (at least one
// tick); ns <= 0 fires as soon as possible.
func lapicOneShot(ns int64) {
	ticks := uint64(1)
	if ns > 0 {
		ticks = mulDiv(uint64(ns), clock.lapicHz, 1e9)
		if ticks == 0 {
			ticks = 1
		}
		if ticks > 0xFFFFFFFF {
			ticks = 0xFFFFFFFF
		}
	}
	lapicWrite(lapicLVTTimer, vecTimer) // one-shot, unmasked
	lapicWrite(lapicTimerInit, uint32(ticks))
}

func lapicStopTimer() {
	lapicWrite(lapicTimerInit, 0)
}

// lapicSendIPI sends a fixed interrupt to one APIC ID.
func lapicSendIPI(apicID uint32, vector uint32) {
	lapicWaitICR()
	lapicWrite(lapicICRHigh, apicID<<24)
	lapicWrite(lapicICRLow, vector)
}

func lapicWaitICR() {
	for i := 0; i < 1000000 && lapicRead(lapicICRLow)&icrDeliveryPending != 0; i++ {
		pause()
	}
}
