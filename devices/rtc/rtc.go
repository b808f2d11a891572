// Package rtc models the Motorola MC146818 real-time clock and CMOS RAM of
// a PC at ports 0x70 (index, with the NMI-disable bit) and 0x71 (data):
// the time and alarm registers in BCD or binary and 12- or 24-hour form,
// registers A-D, the periodic, alarm and update-ended interrupts on IRQ8,
// and 128 bytes of CMOS RAM, per the MC146818A datasheet.
//
// Time is the injected clock plus a start time the VMM sets; nothing reads
// wall time. The calendar lives as seconds since the Unix epoch and is
// shown in whatever format register B selects when read, so a guest that
// flips the data-mode bit sees the same time re-encoded (the real chip
// would show its old bytes; see docs/devices.md). The package does not
// know what the CMOS bytes mean beyond the memory-size convention it
// offers the VMM.
package rtc

import (
	"fmt"
	"math/bits"
	"sync"
	"time"

	"hv/devices"
	"hv/devices/bus"
)

// Ports and wiring.
const (
	Base  = 0x70
	Ports = 2
	IRQ   = 8
)

// Register indexes (MC146818A datasheet, Figure 3 "Address Map").
const (
	regSeconds    = 0x00
	regSecAlarm   = 0x01
	regMinutes    = 0x02
	regMinAlarm   = 0x03
	regHours      = 0x04
	regHourAlarm  = 0x05
	regDayOfWeek  = 0x06
	regDayOfMonth = 0x07
	regMonth      = 0x08
	regYear       = 0x09
	regA          = 0x0A
	regB          = 0x0B
	regC          = 0x0C
	regD          = 0x0D
	ramSize       = 128

	// IndexCentury holds the century in BCD (the IBM PC/AT convention,
	// also ACPI FADT CENTURY's usual value).
	IndexCentury = 0x32
)

// Register A, B, C, D bits (datasheet, "Register A" through "Register D").
const (
	aUIP       = 0x80
	aDVMask    = 0x70
	aDVNormal  = 0x20 // 32.768 kHz time base
	aDVReset   = 0x60 // 11x holds the divider chain in reset
	aRSMask    = 0x0F
	bSET       = 0x80
	bPIE       = 0x40
	bAIE       = 0x20
	bUIE       = 0x10
	bSQWE      = 0x08
	bDM        = 0x04 // binary data mode
	b24        = 0x02
	bDSE       = 0x01
	cIRQF      = 0x80
	cPF        = 0x40
	cAF        = 0x20
	cUF        = 0x10
	dVRT       = 0x80
	hourPM     = 0x80
	alarmAny   = 0xC0 // "don't care" codes are 11xxxxxx
	portNMIOff = 0x80 // port 0x70 bit 7 disables NMI
	indexMask  = 0x7F

	timeBase = 32768 // Hz
	// uipWindow: UIP rises this long before an update (244 µs, datasheet
	// "Update Cycle"); the update itself is instantaneous here.
	uipWindow = 244_000
	second    = 1_000_000_000
	// firstUpdateDelay: after the divider leaves reset, the first update
	// comes half a second later (datasheet, Register A DV bits).
	firstUpdateDelay = 500_000_000
	// Any alarm pattern that can match at all matches within a day.
	secondsPerDay = 86400
)

// RTC is the MC146818 with its CMOS RAM. It is safe for concurrent use.
type RTC struct {
	mu    sync.Mutex
	clock devices.Clock
	irq   devices.IRQLine

	ram         [ramSize]byte // 0x0E-0x7F; time registers are not stored here
	index       uint8
	nmiDisabled bool
	a, b, c     uint8
	alarm       [3]uint8 // seconds, minutes, hours, as written

	// The calendar: at clock time origin (ns) the time was secs; updates
	// happen every second after origin while running.
	secs     int64
	origin   int64
	running  bool   // divider running and SET clear
	divBase  int64  // clock time the divider left reset (periodic phase)
	doneSecs int64  // updates processed so far (seconds after origin)
	doneTick uint64 // periodic intervals processed since divBase
	irqLevel bool
}

// New returns an RTC reading start at clock time zero, in its reset
// state: 24-hour BCD, divider running, no interrupts enabled.
func New(irq devices.IRQLine, clock devices.Clock, start time.Time) *RTC {
	if irq == nil {
		irq = devices.NopLine{}
	}
	r := &RTC{irq: irq, clock: clock}
	r.secs = start.Unix()
	r.Reset()
	return r
}

func (r *RTC) now() int64 {
	if r.clock == nil {
		return 0
	}
	return int64(r.clock.Now() & (1<<63 - 1))
}

// Reset keeps time and RAM (they are battery-backed) and clears what the
// RESET pin clears: the interrupt enables and flags (datasheet, "RESET").
func (r *RTC) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.settle(now)
	cur := r.currentSecs(now)
	r.a = aDVNormal | 0x06 // 1024 Hz periodic rate, the PC default
	r.b = b24
	r.c = 0
	r.index, r.nmiDisabled = 0, false
	r.secs, r.origin, r.running, r.doneSecs = cur, now, true, 0
	r.divBase, r.doneTick = now, 0
	r.drive()
}

// SetTime sets the calendar (as a VMM would from the host's clock).
func (r *RTC) SetTime(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.settle(now)
	r.secs, r.origin, r.doneSecs = t.Unix(), now, 0
}

// Time returns the calendar time the guest would read now.
func (r *RTC) Time() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Unix(r.currentSecs(r.now()), 0).UTC()
}

// NMIDisabled reports port 0x70 bit 7 as last written.
func (r *RTC) NMIDisabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nmiDisabled
}

// SetCMOS writes a RAM byte (0x0E-0x7F) as firmware setup would.
func (r *RTC) SetCMOS(index uint8, v uint8) error {
	if index < regD+1 || index >= ramSize {
		return fmt.Errorf("rtc: set cmos %#x: not a RAM byte", index)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram[index] = v
	return nil
}

// CMOS RAM layout of PC firmware for memory sizes (IBM PC/AT BIOS; the
// bytes above 16 MiB and 4 GiB are the SeaBIOS/QEMU extension).
const (
	cmosBaseMemLo   = 0x15 // KiB of base memory
	cmosExtMemLo    = 0x17 // KiB from 1 MiB, up to 64 MiB
	cmosExtMem2Lo   = 0x30 // same value, POST copy
	cmosChecksumHi  = 0x2E // sum of 0x10-0x2D, big-endian
	cmosAbove16MLo  = 0x34 // 64 KiB units from 16 MiB to below 4 GiB
	cmosAbove4GLo   = 0x5B // 64 KiB units above 4 GiB, 3 bytes
	checksumFirst   = 0x10
	checksumLast    = 0x2D
	baseMemKiB      = 640
	mib             = 1 << 20
	maxU16          = 0xFFFF
	kib64           = 64 << 10
	maxAbove4GUnits = 1<<24 - 1
)

// SetMemorySize fills the CMOS memory-size bytes for below4G bytes of RAM
// under 4 GiB and above4G bytes above it, and fixes the checksum.
func (r *RTC) SetMemorySize(below4G, above4G uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	put16 := func(i int, v uint64) {
		v = min(v, maxU16)
		r.ram[i], r.ram[i+1] = byte(v), byte(v>>8)
	}
	put16(cmosBaseMemLo, baseMemKiB)
	var ext uint64
	if below4G > mib {
		ext = (below4G - mib) >> 10
	}
	put16(cmosExtMemLo, ext)
	put16(cmosExtMem2Lo, ext)
	var high uint64
	if below4G > 16*mib {
		high = (below4G - 16*mib) / kib64
	}
	put16(cmosAbove16MLo, high)
	units := min(above4G/kib64, maxAbove4GUnits)
	r.ram[cmosAbove4GLo], r.ram[cmosAbove4GLo+1], r.ram[cmosAbove4GLo+2] = byte(units), byte(units>>8), byte(units>>16)
	var sum uint16
	for i := checksumFirst; i <= checksumLast; i++ {
		sum += uint16(r.ram[i])
	}
	r.ram[cmosChecksumHi], r.ram[cmosChecksumHi+1] = byte(sum>>8), byte(sum)
}

func (r *RTC) currentSecs(now int64) int64 {
	if !r.running || now < r.origin {
		return r.secs
	}
	return r.secs + (now-r.origin)/second
}

// periodicShift gives the periodic interval as 2^shift cycles of the
// 32.768 kHz time base (datasheet, Table 5); ok is false for RS=0.
func periodicShift(rs uint8) (uint, bool) {
	switch {
	case rs == 0:
		return 0, false
	case rs <= 2:
		return uint(rs) + 6, true // 1 and 2 repeat rates 8 and 9
	default:
		return uint(rs) - 1, true
	}
}

func (r *RTC) dividerRunning() bool { return r.a&aDVMask&aDVReset != aDVReset }

// baseTicks counts 32.768 kHz cycles from divBase to now.
func (r *RTC) baseTicks(now int64) uint64 {
	if now <= r.divBase {
		return 0
	}
	hi, lo := bits.Mul64(uint64(now-r.divBase), timeBase)
	q, _ := bits.Div64(hi, lo, second)
	return q
}

// settle sets the flags of register C for everything that happened up to
// now: periodic interrupts, update cycles and alarms.
func (r *RTC) settle(now int64) {
	if r.dividerRunning() {
		if shift, ok := periodicShift(r.a & aRSMask); ok {
			if idx := r.baseTicks(now) >> shift; idx > r.doneTick {
				r.c |= cPF
				r.doneTick = idx
			}
		}
	}
	if !r.running || now < r.origin {
		return
	}
	k := (now - r.origin) / second
	if k <= r.doneSecs {
		return
	}
	r.c |= cUF
	from := max(r.doneSecs+1, k-secondsPerDay)
	for j := from; j <= k; j++ {
		if r.alarmMatches(r.secs + j) {
			r.c |= cAF
			break
		}
	}
	r.doneSecs = k
}

func (r *RTC) alarmMatches(unix int64) bool {
	t := time.Unix(unix, 0).UTC()
	want := [3]int{t.Second(), t.Minute(), t.Hour()}
	for i, raw := range r.alarm {
		if raw&alarmAny == alarmAny {
			continue
		}
		var v int
		if i == 2 {
			v = r.decodeHour(raw)
		} else {
			v = r.decode(raw)
		}
		if v != want[i] {
			return false
		}
	}
	return true
}

// drive computes IRQF and sets the IRQ8 line to it.
func (r *RTC) drive() {
	f := r.c & (cPF | cAF | cUF)
	irqf := (f&cPF != 0 && r.b&bPIE != 0) || (f&cAF != 0 && r.b&bAIE != 0) || (f&cUF != 0 && r.b&bUIE != 0)
	if irqf {
		r.c |= cIRQF
	} else {
		r.c &^= cIRQF
	}
	if irqf != r.irqLevel {
		r.irqLevel = irqf
		r.irq.Set(irqf)
	}
}

// Update sets the interrupt flags due by now and drives IRQ8. The VMM
// calls it when NextEvent has passed.
func (r *RTC) Update() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settle(r.now())
	r.drive()
}

// NextEvent returns the clock time of the next event that would raise
// IRQ8 given the enabled interrupts (alarms are checked at every update).
func (r *RTC) NextEvent() (ns uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.settle(now)
	best := int64(-1)
	if r.b&bPIE != 0 && r.dividerRunning() {
		if shift, ok := periodicShift(r.a & aRSMask); ok {
			// Smallest time whose tick index exceeds doneTick.
			cycles := (r.doneTick + 1) << shift
			hi, lo := bits.Mul64(cycles, second)
			if hi < timeBase {
				q, rem := bits.Div64(hi, lo, timeBase)
				if rem != 0 {
					q++
				}
				best = r.divBase + int64(q&(1<<63-1))
			}
		}
	}
	if r.b&(bUIE|bAIE) != 0 && r.running {
		t := r.origin + (r.doneSecs+1)*second
		if best < 0 || t < best {
			best = t
		}
	}
	if best < 0 {
		return 0, false
	}
	return uint64(best), true
}

func (r *RTC) binary() bool { return r.b&bDM != 0 }

func (r *RTC) encode(v int) uint8 {
	if r.binary() {
		return uint8(v)
	}
	return uint8(v/10<<4 | v%10)
}

// decode reads a register value in the current data mode. Invalid BCD
// digits are taken at face value; the calendar normalizes what results.
func (r *RTC) decode(v uint8) int {
	if r.binary() {
		return int(v)
	}
	return int(v>>4)*10 + int(v&0xF)
}

func (r *RTC) encodeHour(h int) uint8 {
	if r.b&b24 != 0 {
		return r.encode(h)
	}
	pm := h >= 12
	h %= 12
	if h == 0 {
		h = 12
	}
	v := r.encode(h)
	if pm {
		v |= hourPM
	}
	return v
}

func (r *RTC) decodeHour(v uint8) int {
	if r.b&b24 != 0 {
		return r.decode(v)
	}
	h := r.decode(v&^hourPM) % 12
	if v&hourPM != 0 {
		h += 12
	}
	return h
}

func (r *RTC) readReg(now int64, i uint8) uint8 {
	t := time.Unix(r.currentSecs(now), 0).UTC()
	switch i {
	case regSeconds:
		return r.encode(t.Second())
	case regMinutes:
		return r.encode(t.Minute())
	case regHours:
		return r.encodeHour(t.Hour())
	case regSecAlarm, regMinAlarm, regHourAlarm:
		return r.alarm[i/2]
	case regDayOfWeek:
		return r.encode(int(t.Weekday()) + 1)
	case regDayOfMonth:
		return r.encode(t.Day())
	case regMonth:
		return r.encode(int(t.Month()))
	case regYear:
		return r.encode(t.Year() % 100)
	case IndexCentury:
		return uint8(t.Year()/1000%10<<4 | t.Year()/100%10)
	case regA:
		v := r.a
		if r.running && now >= r.origin && (now-r.origin)%second >= second-uipWindow {
			v |= aUIP
		}
		return v
	case regB:
		return r.b
	case regC:
		v := r.c
		r.c = 0 // reading C clears every flag, IRQF included
		return v
	case regD:
		return dVRT
	}
	return r.ram[i]
}

// setField rewrites one calendar field, keeping the update phase.
func (r *RTC) setField(now int64, i uint8, v uint8) {
	cur := r.currentSecs(now)
	t := time.Unix(cur, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	switch i {
	case regSeconds:
		s = r.decode(v)
	case regMinutes:
		mi = r.decode(v)
	case regHours:
		h = r.decodeHour(v)
	case regDayOfMonth:
		d = r.decode(v)
	case regMonth:
		mo = time.Month(r.decode(v))
	case regYear:
		y = y/100*100 + r.decode(v)
	case IndexCentury:
		y = (int(v>>4)*10+int(v&0xF))*100 + y%100
	}
	n := time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix()
	r.secs += n - cur
}

func (r *RTC) writeReg(now int64, i uint8, v uint8) {
	switch i {
	case regSeconds, regMinutes, regHours, regDayOfMonth, regMonth, regYear, IndexCentury:
		r.setField(now, i, v)
	case regSecAlarm, regMinAlarm, regHourAlarm:
		r.alarm[i/2] = v
	case regDayOfWeek:
		// Derived from the date here; see docs/devices.md.
	case regA:
		wasRunning := r.dividerRunning()
		oldRS := r.a & aRSMask
		r.a = v &^ aUIP
		switch {
		case wasRunning && !r.dividerRunning():
			r.halt(now)
		case !wasRunning && r.dividerRunning():
			r.divBase, r.doneTick = now, 0
			if r.b&bSET == 0 {
				r.resume(now - (second - firstUpdateDelay))
			}
		case r.a&aRSMask != oldRS:
			if shift, ok := periodicShift(r.a & aRSMask); ok {
				r.doneTick = r.baseTicks(now) >> shift // a new rate starts counting now
			}
		}
	case regB:
		if v&bSET != 0 {
			v &^= bUIE // SET clears UIE (datasheet, Register B bit 7)
			if r.b&bSET == 0 {
				r.halt(now)
			}
		} else if r.b&bSET != 0 && r.dividerRunning() {
			r.resume(now)
		}
		r.b = v
	case regC, regD:
		// read-only
	default:
		r.ram[i] = v
	}
}

// halt stops the calendar at its current second.
func (r *RTC) halt(now int64) {
	if !r.running {
		return
	}
	r.secs = r.currentSecs(now)
	r.running = false
}

// resume restarts the calendar with its first update one second after
// origin.
func (r *RTC) resume(origin int64) {
	if r.running {
		return
	}
	r.origin, r.doneSecs, r.running = origin, 0, true
}

// Read implements bus.Device for ports 0x70-0x71. Port 0x70 is write-only
// and reads as all ones.
func (r *RTC) Read(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.settle(now)
	for i := range data {
		data[i] = 0xFF
		if off+uint64(i) == 1 {
			data[i] = r.readReg(now, r.index)
		}
	}
	r.drive()
}

// Write implements bus.Device for ports 0x70-0x71.
func (r *RTC) Write(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.settle(now)
	for i, v := range data {
		switch off + uint64(i) {
		case 0:
			r.index, r.nmiDisabled = v&indexMask, v&portNMIOff != 0
		case 1:
			r.writeReg(now, r.index, v)
		}
	}
	r.drive()
}

// Install registers the RTC at ports 0x70-0x71.
func (r *RTC) Install(b *bus.Bus) error {
	if err := b.RegisterPorts(Base, Ports, "rtc146818", r); err != nil {
		return fmt.Errorf("rtc: install: %w", err)
	}
	return nil
}
