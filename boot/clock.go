package boot

import (
	"math/bits"
	"sync/atomic"
)

// The platform clock is the TSC, calibrated at boot against the 8254 PIT
// (channel 2, gated through port 0x61), which every PC and both emulators
// have. The local APIC timer is calibrated in the same window.

const (
	pitHz       = 1193182
	pitCh2      = 0x42
	pitCmd      = 0x43
	pitGatePort = 0x61
)

type clockState struct {
	tscHz   uint64
	lapicHz uint64
	tsc0    uint64
	wall0   int64  // Unix time in ns at tsc0, from the CMOS RTC
	mult    uint64 // ns = (tsc-tsc0) * mult >> 32
	ready   uint32
}

var clock clockState

func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// calibrate measures the TSC and LAPIC timer rates against the ACPI PM
// timer when the FADT has one, else against the PIT.
func calibrate() bool {
	ok := calibratePM() || calibratePIT()
	if ok {
		clock.mult = mulDiv(1e9, 1<<32, clock.tscHz)
		clock.wall0 = rtcUnixNano()
		clock.tsc0 = rdtsc()
		atomic.StoreUint32(&clock.ready, 1)
	}
	return ok
}

// pmRead reads the PM timer counter (24 or 32 bits wide).
func pmRead() uint32 {
	v := inl(uint16(fadt.PMTimer.Address))
	if fadt.PMTimerBits() == 24 {
		v &= 0xFFFFFF
	}
	return v
}

// pmSample reads the PM timer bracketed by two TSC reads and keeps the
// tightest of several tries, so that a vCPU descheduled by the emulator's
// host between two reads does not skew the calibration.
func pmSample() (pm uint32, tsc uint64, lapic uint32) {
	best := ^uint64(0)
	for i := 0; i < 8; i++ {
		a := rdtsc()
		p := pmRead()
		l := lapicRead(lapicTimerCur)
		b := rdtsc()
		if b-a < best {
			best, pm, tsc, lapic = b-a, p, a+(b-a)/2, l
		}
	}
	return
}

// calibratePM measures over 100 ms of the PM timer (3.579545 MHz, ACPI 6.5
// 4.8.3.3), reading it at both ends rather than waiting for an edge.
func calibratePM() bool {
	if fadt.PMTimer.Address == 0 || fadt.PMTimer.SpaceID != 1 || fadt.PMTimer.Address > 0xFFFF {
		return false
	}
	const pmHz = 3579545
	mask := uint32(0xFFFFFFFF)
	if fadt.PMTimerBits() == 24 {
		mask = 0xFFFFFF
	}
	lapicWrite(lapicTimerDiv, 0x3)
	lapicWrite(lapicLVTTimer, lvtMasked|vecTimer)
	lapicWrite(lapicTimerInit, 0xFFFFFFFF)
	p0, t0, l0 := pmSample()
	var p1, l1 uint32
	var t1 uint64
	for i := 0; ; i++ {
		p1, t1, l1 = pmSample()
		if (p1-p0)&mask >= pmHz/10 {
			break
		}
		if i > 50000000 || (i > 1000 && p1 == p0) {
			lapicWrite(lapicTimerInit, 0)
			return false // the PM timer does not count
		}
	}
	lapicWrite(lapicTimerInit, 0)
	dpm := uint64((p1 - p0) & mask)
	clock.tscHz = mulDiv(t1-t0, pmHz, dpm)
	clock.lapicHz = mulDiv(uint64(l0-l1), pmHz, dpm)
	return clock.tscHz != 0
}

// calibratePIT measures over a PIT interval of about 50 ms. It returns false
// when the PIT does not count (no 8254).
func calibratePIT() bool {
	const count = pitHz / 20 // 50 ms
	// Gate low, speaker off; channel 2 mode 0, lobyte/hibyte.
	g := inb(pitGatePort)
	outb(pitGatePort, g&^0x03)
	outb(pitCmd, 0xB0)
	outb(pitCh2, uint8(count&0xFF))
	outb(pitCh2, uint8(count>>8))
	lapicWrite(lapicTimerDiv, 0x3)
	lapicWrite(lapicLVTTimer, lvtMasked|vecTimer)
	// Raise the gate: counting starts; OUT2 (port 0x61 bit 5) goes high at 0.
	outb(pitGatePort, (g&^0x02)|0x01)
	lapicWrite(lapicTimerInit, 0xFFFFFFFF)
	t0 := rdtsc()
	ok := false
	for i := 0; i < 100000000; i++ {
		if inb(pitGatePort)&0x20 != 0 {
			ok = true
			break
		}
	}
	t1 := rdtsc()
	l1 := lapicRead(lapicTimerCur)
	lapicWrite(lapicTimerInit, 0)
	outb(pitGatePort, g&^0x03)
	if !ok || t1 <= t0 {
		return false
	}
	clock.tscHz = mulDiv(t1-t0, pitHz, count)
	clock.lapicHz = mulDiv(uint64(0xFFFFFFFF-l1), pitHz, count)
	return clock.tscHz != 0
}

// nanotime is the monotonic clock: nanoseconds since calibration.
func nanotime() int64 {
	d := rdtsc() - clock.tsc0
	hi, lo := bits.Mul64(d, clock.mult)
	return int64(hi<<32 | lo>>32)
}

// rtcUnixNano reads the CMOS real-time clock (MC146818) once, waiting for an
// update cycle to end, and converts it to Unix nanoseconds.
func rtcUnixNano() int64 {
	for i := 0; i < 1000000 && cmosRead(0x0A)&0x80 != 0; i++ {
	}
	sec, min, hour := cmosRead(0x00), cmosRead(0x02), cmosRead(0x04)
	day, mon, year := cmosRead(0x07), cmosRead(0x08), cmosRead(0x09)
	century := byte(0x20)
	regB := cmosRead(0x0B)
	bcd := regB&0x04 == 0
	conv := func(v byte) int64 {
		if bcd {
			return int64(v&0x0F) + int64(v>>4)*10
		}
		return int64(v)
	}
	pm := hour&0x80 != 0
	h := conv(hour & 0x7F)
	if regB&0x02 == 0 { // 12-hour mode
		h %= 12
		if pm {
			h += 12
		}
	}
	y := conv(century)*100 + conv(year)
	return (daysFromCivil(y, conv(mon), conv(day))*86400 + h*3600 + conv(min)*60 + conv(sec)) * 1e9
}

func cmosRead(reg byte) byte {
	outb(0x70, reg|0x80) // keep NMIs disabled while we talk to the RTC
	return inb(0x71)
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
