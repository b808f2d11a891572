package lapic

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

type rig struct {
	clock  devtest.Clock
	router *Router
	apics  []*LAPIC
	eois   []uint8
}

func newRig(n int) *rig {
	r := &rig{router: NewRouter()}
	for i := range n {
		a := New(Config{ID: uint32(i), BSP: i == 0, Clock: &r.clock, SendIPI: r.router.SendIPI,
			EOI: func(v uint8) { r.eois = append(r.eois, v) }})
		r.router.Add(a)
		r.apics = append(r.apics, a)
	}
	return r
}

func w32(a *LAPIC, off uint64, v uint32) {
	a.Write(off, []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
}

func r32(a *LAPIC, off uint64) uint32 {
	var b [4]byte
	a.Read(off, b[:])
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func enable(a *LAPIC) { w32(a, RegSVR, SVREnable|0xFF) }

func TestPowerOnRegisters(t *testing.T) {
	a := newRig(2).apics[1]
	got := map[uint64]uint32{}
	want := map[uint64]uint32{
		RegID: 1 << 24, RegVersion: 0x00050014, RegTPR: 0, RegPPR: 0, RegLDR: 0, RegDFR: 0xFFFFFFFF,
		RegSVR: 0xFF, RegESR: 0, RegICRLow: 0, RegLVTTimer: LVTMasked, RegLVTLINT0: LVTMasked,
		RegLVTLINT1: LVTMasked, RegLVTError: LVTMasked, RegTimerInit: 0, RegTimerCur: 0, RegTimerDiv: 0,
	}
	for off := range want {
		got[off] = r32(a, off)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("power-on registers (-want +got):\n%s", d)
	}
	if b := a.Base(); b != DefaultBase|BaseEnable {
		t.Errorf("AP APIC base %#x", b)
	}
	if b := newRig(1).apics[0].Base(); b != DefaultBase|BaseEnable|BaseBSP {
		t.Errorf("BSP APIC base %#x", b)
	}
}

func TestDivisorTable(t *testing.T) {
	// SDM 11.5.4 figure 11-10: bits 3,1,0.
	want := map[uint32]uint64{0b0000: 2, 0b0001: 4, 0b0010: 8, 0b0011: 16, 0b1000: 32, 0b1001: 64, 0b1010: 128, 0b1011: 1}
	for reg, d := range want {
		if got := divisor(reg); got != d {
			t.Errorf("divisor(%04b) = %d, want %d", reg, got, d)
		}
	}
}

func TestPriorityAndEOI(t *testing.T) {
	r := newRig(1)
	a := r.apics[0]
	if _, ok := a.PendingVector(); ok {
		t.Fatal("pending at power-on")
	}
	// Software-disabled APICs drop fixed interrupts.
	a.Deliver(Message{Vector: 0x40, Mode: Fixed, Assert: true})
	if _, ok := a.PendingVector(); ok {
		t.Fatal("software-disabled APIC accepted a fixed interrupt")
	}
	enable(a)
	a.Deliver(Message{Vector: 0x41, Mode: Fixed, Assert: true})
	a.Deliver(Message{Vector: 0x62, Mode: Fixed, Level: true, Assert: true})
	a.Deliver(Message{Vector: 0x35, Mode: Fixed, Assert: true})

	type step struct {
		tpr     uint32
		ack     int // vector to acknowledge, -1 none
		eoi     bool
		pending int // -1 none
		ppr     uint32
	}
	for i, s := range []step{
		{tpr: 0x00, ack: -1, pending: 0x62, ppr: 0},
		{tpr: 0x60, ack: -1, pending: -1, ppr: 0x60},   // class 6 not above TPR class 6
		{tpr: 0x5F, ack: 0x62, pending: -1, ppr: 0x60}, // in service: ISR class 6 masks 4 and 3
		{tpr: 0x00, ack: -1, eoi: true, pending: 0x41, ppr: 0},
		{tpr: 0x00, ack: 0x41, pending: -1, ppr: 0x40},
		{tpr: 0x00, ack: -1, eoi: true, pending: 0x35, ppr: 0},
	} {
		w32(a, RegTPR, s.tpr)
		if s.ack >= 0 && !a.Acknowledge(uint8(s.ack)) {
			t.Fatalf("step %d: acknowledge %#x refused", i, s.ack)
		}
		if s.eoi {
			w32(a, RegEOI, 0)
		}
		v, ok := a.PendingVector()
		if got := map[bool]int{true: int(v), false: -1}[ok]; got != s.pending {
			t.Errorf("step %d: pending %#x, want %#x", i, got, s.pending)
		}
		if p := r32(a, RegPPR); p != s.ppr {
			t.Errorf("step %d: PPR %#x, want %#x", i, p, s.ppr)
		}
	}
	// Only the level-triggered vector was broadcast.
	if d := cmp.Diff([]uint8{0x62}, r.eois); d != "" {
		t.Errorf("EOI broadcasts (-want +got):\n%s", d)
	}
	if a.Acknowledge(0x99) {
		t.Error("acknowledged a vector that is not pending")
	}
}

func TestIllegalVectorError(t *testing.T) {
	r := newRig(1)
	a := r.apics[0]
	enable(a)
	w32(a, RegLVTError, 0xFE)
	a.Deliver(Message{Vector: 5, Mode: Fixed, Assert: true})
	if v := r32(a, RegESR); v != 0 {
		t.Errorf("ESR before the latching write = %#x", v)
	}
	w32(a, RegESR, 0)
	if v := r32(a, RegESR); v != ESRReceiveIllegalVector {
		t.Errorf("ESR = %#x", v)
	}
	if v, ok := a.PendingVector(); !ok || v != 0xFE {
		t.Errorf("error LVT vector pending = %#x %v", v, ok)
	}
	w32(a, RegICRLow, 3) // send illegal vector
	w32(a, RegESR, 0)
	if v := r32(a, RegESR); v != ESRSendIllegalVector {
		t.Errorf("ESR after sending vector 3 = %#x", v)
	}
}

func TestTimerOneShotAndPeriodic(t *testing.T) {
	r := newRig(1)
	a := r.apics[0]
	enable(a)
	w32(a, RegTimerDiv, 0b0001) // divide by 4
	w32(a, RegLVTTimer, 0x30)
	r.clock.Set(1000)
	w32(a, RegTimerInit, 100) // expires at 1000 + 400 ns (1 GHz bus)
	if ns, ok := a.NextEvent(); !ok || ns != 1400 {
		t.Fatalf("NextEvent = %d %v, want 1400", ns, ok)
	}
	for _, c := range []struct {
		at  uint64
		cur uint32
	}{{1000, 100}, {1001, 100}, {1004, 99}, {1399, 1}, {1400, 0}, {5000, 0}} {
		r.clock.Set(c.at)
		if got := r32(a, RegTimerCur); got != c.cur {
			t.Errorf("at %d: current count %d, want %d", c.at, got, c.cur)
		}
	}
	if v, ok := a.PendingVector(); !ok || v != 0x30 {
		t.Fatalf("one-shot did not fire: %#x %v", v, ok)
	}
	a.Acknowledge(0x30)
	w32(a, RegEOI, 0)
	if _, ok := a.NextEvent(); ok {
		t.Error("one-shot still armed")
	}

	// Periodic: 10 ticks of divide-by-1.
	w32(a, RegTimerDiv, 0b1011)
	w32(a, RegLVTTimer, 0x31|TimerPeriodic<<17)
	r.clock.Set(10_000)
	w32(a, RegTimerInit, 10)
	fires := 0
	for now := uint64(10_000); now <= 10_100; now++ {
		r.clock.Set(now)
		a.Update()
		if v, ok := a.PendingVector(); ok && v == 0x31 {
			a.Acknowledge(v)
			w32(a, RegEOI, 0)
			fires++
		}
	}
	if fires != 10 {
		t.Errorf("periodic timer fired %d times in 100 ns, want 10", fires)
	}
	if got := r32(a, RegTimerCur); got != 10 {
		t.Errorf("periodic count right after reload = %d", got)
	}
	// Masked: keeps counting, delivers nothing.
	w32(a, RegLVTTimer, 0x31|TimerPeriodic<<17|LVTMasked)
	r.clock.Set(20_000)
	a.Update()
	if _, ok := a.PendingVector(); ok {
		t.Error("masked timer delivered")
	}
	w32(a, RegTimerInit, 0)
	if _, ok := a.NextEvent(); ok {
		t.Error("zero initial count left the timer armed")
	}
}

func TestTSCDeadline(t *testing.T) {
	r := newRig(1)
	a := r.apics[0]
	enable(a)
	// Outside deadline mode the MSR ignores writes.
	if err := a.WriteMSR(MSRTSCDeadline, 500); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.ReadMSR(MSRTSCDeadline); v != 0 {
		t.Errorf("deadline outside its mode = %d", v)
	}
	w32(a, RegLVTTimer, 0x40|TimerTSCDeadline<<17)
	w32(a, RegTimerInit, 1234) // ignored in deadline mode
	if v := r32(a, RegTimerInit); v != 0 {
		t.Errorf("initial count accepted in deadline mode: %d", v)
	}
	_ = a.WriteMSR(MSRTSCDeadline, 2000) // TSC = ns at the default 1 GHz
	if ns, ok := a.NextEvent(); !ok || ns != 2000 {
		t.Fatalf("NextEvent %d %v", ns, ok)
	}
	r.clock.Set(1999)
	a.Update()
	if _, ok := a.PendingVector(); ok {
		t.Fatal("fired early")
	}
	r.clock.Set(2000)
	a.Update()
	if v, ok := a.PendingVector(); !ok || v != 0x40 {
		t.Fatalf("deadline did not fire: %#x %v", v, ok)
	}
	if v, _ := a.ReadMSR(MSRTSCDeadline); v != 0 {
		t.Errorf("deadline after firing = %d, want 0", v)
	}
	// A deadline in the past fires at once; leaving the mode disarms.
	a.Acknowledge(0x40)
	w32(a, RegEOI, 0)
	_ = a.WriteMSR(MSRTSCDeadline, 5)
	if v, ok := a.PendingVector(); !ok || v != 0x40 {
		t.Error("past deadline did not fire at once")
	}
	_ = a.WriteMSR(MSRTSCDeadline, 1<<40)
	w32(a, RegLVTTimer, 0x40)
	if _, ok := a.NextEvent(); ok {
		t.Error("mode switch left the deadline armed")
	}
}

func TestIPIRouting(t *testing.T) {
	r := newRig(4)
	for i, a := range r.apics {
		enable(a)
		w32(a, RegLDR, 1<<(24+i)) // flat model, one bit each
	}
	send := func(from int, dest uint32, low uint32) {
		w32(r.apics[from], RegICRHigh, dest<<24)
		w32(r.apics[from], RegICRLow, low)
	}
	got := func() []int {
		var out []int
		for i, a := range r.apics {
			if v, ok := a.PendingVector(); ok {
				out = append(out, i)
				a.Acknowledge(v)
				w32(a, RegEOI, 0)
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		from int
		dest uint32
		low  uint32
		want []int
	}{
		{"physical", 0, 2, 0x50, []int{2}},
		{"physical broadcast", 0, 0xFF, 0x50, []int{0, 1, 2, 3}},
		{"logical flat", 0, 0b1010, 0x50 | icrLogical, []int{1, 3}},
		{"self", 1, 0, 0x50 | 1<<18, []int{1}},
		{"all including self", 1, 0, 0x50 | 2<<18, []int{0, 1, 2, 3}},
		{"all excluding self", 1, 0, 0x50 | 3<<18, []int{0, 2, 3}},
		{"no match", 0, 9, 0x50, nil},
	} {
		send(c.from, c.dest, c.low)
		if d := cmp.Diff(c.want, got()); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}

	// Lowest priority goes to the lowest TPR among the addressed.
	w32(r.apics[1], RegTPR, 0x20)
	w32(r.apics[2], RegTPR, 0x10)
	w32(r.apics[3], RegTPR, 0x30)
	send(0, 0b1110, 0x60|1<<8|icrLogical)
	if d := cmp.Diff([]int{2}, got()); d != "" {
		t.Errorf("lowest priority (-want +got):\n%s", d)
	}

	// Cluster model: cluster 1, members 0 and 1.
	for i, a := range r.apics {
		w32(a, RegDFR, 0x0FFFFFFF)
		w32(a, RegLDR, uint32(0x10|1<<(i%2))<<24) // clusters: all in 1
		w32(a, RegTPR, 0)
	}
	send(0, 0x12, 0x50|icrLogical)
	if d := cmp.Diff([]int{1, 3}, got()); d != "" {
		t.Errorf("cluster (-want +got):\n%s", d)
	}

	// INIT and SIPI to processor 3.
	send(0, 3, 5<<8|icrLevelAssert)
	send(0, 3, 6<<8|0x9A)
	if !r.apics[3].TakeINIT() {
		t.Error("INIT not pending")
	}
	if v, ok := r.apics[3].TakeSIPI(); !ok || v != 0x9A {
		t.Errorf("SIPI %#x %v", v, ok)
	}
	send(0, 3, 5<<8|icrTriggerLevel) // INIT level de-assert: no INIT
	if r.apics[3].TakeINIT() {
		t.Error("INIT de-assert delivered an INIT")
	}
	send(0, 2, 4<<8)
	if !r.apics[2].TakeNMI() || r.apics[1].TakeNMI() {
		t.Error("NMI routed wrongly")
	}
}

func TestX2APIC(t *testing.T) {
	r := newRig(2)
	a := r.apics[1]
	if err := a.WriteMSR(0x802, 0); !errors.Is(err, ErrGP) {
		t.Errorf("x2APIC MSR in xAPIC mode: %v", err)
	}
	if err := a.WriteMSR(MSRAPICBase, DefaultBase|BaseX2APIC); !errors.Is(err, ErrGP) {
		t.Errorf("EXTD without EN: %v", err)
	}
	if err := a.WriteMSR(MSRAPICBase, DefaultBase|BaseEnable|BaseX2APIC); err != nil {
		t.Fatal(err)
	}
	_ = r.apics[0].WriteMSR(MSRAPICBase, DefaultBase|BaseEnable|BaseX2APIC|BaseBSP)
	if err := a.WriteMSR(MSRAPICBase, DefaultBase|BaseEnable); !errors.Is(err, ErrGP) {
		t.Errorf("x2APIC -> xAPIC: %v", err)
	}
	rd := func(msr uint32) uint64 {
		v, err := a.ReadMSR(msr)
		if err != nil {
			t.Errorf("rdmsr %#x: %v", msr, err)
		}
		return v
	}
	if v := rd(0x802); v != 1 {
		t.Errorf("x2APIC ID %#x", v)
	}
	if v := rd(0x80D); v != 1<<1 {
		t.Errorf("x2APIC LDR %#x", v)
	}
	for _, c := range []struct {
		msr   uint32
		v     uint64
		write bool
	}{
		{0x802, 5, true},       // ID read-only
		{0x80D, 5, true},       // LDR read-only
		{0x80E, 0, false},      // no DFR
		{0x80E, 0, true},       //
		{0x831, 0, false},      // ICR high folded into 0x830
		{0x80B, 1, true},       // EOI of non-zero
		{0x80B, 0, false},      // EOI write-only
		{0x83F, 0, false},      // self IPI write-only
		{0x839, 1, true},       // current count read-only
		{0x808, 1 << 32, true}, // reserved upper half
		{0x8FF, 0, false},      // reserved
	} {
		var err error
		if c.write {
			err = a.WriteMSR(c.msr, c.v)
		} else {
			_, err = a.ReadMSR(c.msr)
		}
		if !errors.Is(err, ErrGP) {
			t.Errorf("msr %#x write=%v: %v, want #GP", c.msr, c.write, err)
		}
	}
	// MMIO page is not decoded in x2APIC mode.
	if v := r32(a, RegID); v != 0 {
		t.Errorf("xAPIC page readable in x2APIC mode: %#x", v)
	}
	_ = a.WriteMSR(0x80F, SVREnable|0xFF)
	_ = r.apics[0].WriteMSR(0x80F, SVREnable|0xFF)
	if err := a.WriteMSR(0x83F, 0x77); err != nil {
		t.Fatal(err)
	}
	if v, ok := a.PendingVector(); !ok || v != 0x77 {
		t.Errorf("self IPI %#x %v", v, ok)
	}
	// ICR as one 64-bit MSR: destination 0 in 63:32.
	if err := a.WriteMSR(0x830, 0<<32|0x66); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.apics[0].PendingVector(); !ok || v != 0x66 {
		t.Errorf("x2APIC IPI %#x %v", v, ok)
	}
	if v := rd(0x830); v != 0x66 {
		t.Errorf("ICR read back %#x", v)
	}
	// Logical x2APIC: cluster 0, bit 1 is APIC 1.
	_ = r.apics[0].WriteMSR(0x830, 2<<32|0x67|icrLogical)
	if v, ok := a.PendingVector(); !ok || v != 0x77 { // 0x77 still above 0x67
		t.Errorf("after logical IPI %#x %v", v, ok)
	}
	a.Acknowledge(0x77)
	_ = a.WriteMSR(0x80B, 0)
	if v, ok := a.PendingVector(); !ok || v != 0x67 {
		t.Errorf("logical x2APIC IPI %#x %v", v, ok)
	}
}

func TestLINT0ExtINTAndNMI(t *testing.T) {
	a := newRig(1).apics[0]
	if a.AcceptsPICInterrupts() {
		t.Error("masked LINT0 passes PIC interrupts")
	}
	enable(a)
	w32(a, RegLVTLINT0, uint32(ExtINT)<<8)
	w32(a, RegLVTLINT1, uint32(NMI)<<8)
	if !a.AcceptsPICInterrupts() {
		t.Error("ExtINT LINT0 blocks PIC interrupts")
	}
	a.LINT(1).Set(true)
	if !a.TakeNMI() {
		t.Error("LINT1 NMI not pending")
	}
	a.LINT(1).Set(true) // no new edge
	if a.TakeNMI() {
		t.Error("NMI without an edge")
	}
	// Disabling the APIC globally turns it into a wire.
	_ = a.WriteMSR(MSRAPICBase, DefaultBase)
	if !a.AcceptsPICInterrupts() {
		t.Error("disabled APIC blocks PIC interrupts")
	}
}

func TestSaveRestoreMidTimer(t *testing.T) {
	r := newRig(1)
	a := r.apics[0]
	enable(a)
	w32(a, RegLVTTimer, 0x33|TimerPeriodic<<17)
	r.clock.Set(100)
	w32(a, RegTimerInit, 1000)
	a.Deliver(Message{Vector: 0x90, Mode: Fixed, Level: true, Assert: true})
	a.Acknowledge(0x90)
	r.clock.Set(700)
	blob, err := a.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	b := New(Config{ID: 0, BSP: true, Clock: &r.clock})
	if err := b.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	for _, now := range []uint64{700, 1099, 1100, 5000} {
		r.clock.Set(now)
		a.Update()
		b.Update()
		for _, off := range []uint64{RegTimerCur, RegPPR, RegISR + 0x40, RegIRR + 0x10, RegTMR + 0x40} {
			if x, y := r32(a, off), r32(b, off); x != y {
				t.Errorf("at %d reg %#x: %#x vs %#x", now, off, x, y)
			}
		}
	}
	sa, _ := a.SaveState()
	sb, _ := b.SaveState()
	if !bytes.Equal(sa, sb) {
		t.Error("states diverged")
	}
}

func TestRestoreRejectsCorrupt(t *testing.T) {
	a := New(Config{})
	good, _ := a.SaveState()
	before := append([]byte(nil), good...)
	bad := append([]byte(nil), good...)
	bad[len(bad)-5] ^= 1
	if err := a.RestoreState(bad); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("bad checksum: %v", err)
	}
	// A TPR above 0xFF behind a valid checksum.
	hdr := 4 + 1 + len(stateTag) + 2
	field := append([]byte(nil), good...)
	field[hdr+8+4+1] = 1 // TPR byte 1
	if err := a.RestoreState(snapshot.Reseal(field)); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("bad TPR: %v", err)
	}
	if err := a.RestoreState(good[:len(good)-9]); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
	if now, _ := a.SaveState(); !bytes.Equal(now, before) {
		t.Error("failed restore changed the device")
	}
}

// MP start-up signals (SDM 9.4.4, 11.6.1): an INIT voids a start-up IPI
// that arrived before it; INIT, SIPI and NMI reach a software-disabled
// APIC (only fixed interrupts need it enabled); a globally disabled one
// takes nothing; reserved and ExtINT delivery modes send nothing.
func TestStartupSignals(t *testing.T) {
	r := newRig(3)
	enable(r.apics[0])
	send := func(dest uint32, low uint32) {
		w32(r.apics[0], RegICRHigh, dest<<24)
		w32(r.apics[0], RegICRLow, low)
	}
	send(1, 6<<8|0x12)           // SIPI first ...
	send(1, 5<<8|icrLevelAssert) // ... then INIT: the SIPI is void
	if _, ok := r.apics[1].TakeSIPI(); ok {
		t.Error("a SIPI sent before the INIT survived it")
	}
	if !r.apics[1].TakeINIT() {
		t.Error("INIT to a software-disabled APIC not taken")
	}
	send(1, 6<<8|0x34)
	send(1, 6<<8|0x56) // two SIPIs coalesce; the last vector wins
	if v, ok := r.apics[1].TakeSIPI(); !ok || v != 0x56 {
		t.Errorf("SIPI %#x %v", v, ok)
	}
	send(1, 4<<8)
	if !r.apics[1].TakeNMI() {
		t.Error("NMI to a software-disabled APIC not taken")
	}
	send(1, 0x50) // fixed: dropped while software disabled
	if _, ok := r.apics[1].PendingVector(); ok {
		t.Error("fixed interrupt accepted by a software-disabled APIC")
	}
	// Globally disabled: nothing reaches it.
	if err := r.apics[2].WriteMSR(MSRAPICBase, DefaultBase); err != nil {
		t.Fatal(err)
	}
	send(2, 5<<8|icrLevelAssert)
	send(2, 6<<8|0x10)
	if r.apics[2].TakeINIT() {
		t.Error("INIT reached a globally disabled APIC")
	}
	if _, ok := r.apics[2].TakeSIPI(); ok {
		t.Error("SIPI reached a globally disabled APIC")
	}
	// Reserved mode 3 and ExtINT are not sendable; nothing arrives.
	enable(r.apics[1])
	for _, mode := range []uint32{3, 7} {
		send(1, mode<<8|0x60)
		if v, ok := r.apics[1].PendingVector(); ok {
			t.Errorf("delivery mode %d delivered vector %#x", mode, v)
		}
		if r.apics[1].TakeExtINT() || r.apics[1].TakeNMI() || r.apics[1].TakeINIT() {
			t.Errorf("delivery mode %d delivered a signal", mode)
		}
	}
	// A fixed IPI with an illegal vector sets the sender's send-illegal-vector.
	send(1, 0x05)
	w32(r.apics[0], RegESR, 0)
	if e := r32(r.apics[0], RegESR); e&ESRSendIllegalVector == 0 {
		t.Errorf("ESR %#x after an IPI with vector 5", e)
	}
}

// x2APIC destinations (SDM 11.12.9, 11.12.10): the 32-bit broadcast, the
// shorthands, and logical cluster IDs that must match cluster and bit.
func TestX2APICDestinations(t *testing.T) {
	r := newRig(20)
	for i, a := range r.apics {
		base := uint64(DefaultBase | BaseEnable | BaseX2APIC)
		if i == 0 {
			base |= BaseBSP
		}
		if err := a.WriteMSR(MSRAPICBase, base); err != nil {
			t.Fatal(err)
		}
		if err := a.WriteMSR(0x80F, SVREnable|0xFF); err != nil {
			t.Fatal(err)
		}
	}
	got := func() []int {
		var out []int
		for i, a := range r.apics {
			if v, ok := a.PendingVector(); ok {
				out = append(out, i)
				a.Acknowledge(v)
				_ = a.WriteMSR(0x80B, 0)
			}
		}
		return out
	}
	all := func(skip int) []int {
		var out []int
		for i := range 20 {
			if i != skip {
				out = append(out, i)
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		from int
		icr  uint64
		want []int
	}{
		{"physical 17", 0, 17<<32 | 0x50, []int{17}},
		{"physical broadcast", 3, 0xFFFFFFFF<<32 | 0x50, all(-1)},
		{"physical 0xFF is an ID, not a broadcast", 0, 0xFF<<32 | 0x50, nil},
		{"all excluding self", 5, 3<<18 | 0x50, all(5)},
		{"self", 7, 1<<18 | 0x50, []int{7}},
		// Logical: cluster 1 (IDs 16-31), bits 0 and 2: IDs 16 and 18.
		{"logical cluster 1", 0, (1<<16|0b101)<<32 | icrLogical | 0x50, []int{16, 18}},
		// Cluster 0 bit 1: ID 1 only, not 17.
		{"logical cluster 0", 0, (0<<16|0b10)<<32 | icrLogical | 0x50, []int{1}},
		{"logical cluster 2: nobody", 0, (2<<16|0xFFFF)<<32 | icrLogical | 0x50, nil},
	} {
		if err := r.apics[c.from].WriteMSR(0x830, c.icr); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d := cmp.Diff(c.want, got()); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
}

// IPIs from every processor at once, while each acknowledges and EOIs
// its own: the router and LAPIC locks keep every delivery consistent (go
// test -race checks the locking). Edge IPIs of one vector coalesce while
// pending, so each processor takes at least one and at most all of the
// IPIs sent to it, and nothing is left pending or in service at the end.
func TestConcurrentIPIs(t *testing.T) {
	const n, rounds = 4, 200
	router := NewRouter()
	var apics []*LAPIC
	var taken [n]atomic.Int64
	for i := range n {
		a := New(Config{ID: uint32(i), BSP: i == 0, SendIPI: router.SendIPI})
		router.Add(a)
		apics = append(apics, a)
		enable(a)
	}
	take := func(i int) {
		a := apics[i]
		if v, ok := a.PendingVector(); ok && a.Acknowledge(v) {
			w32(a, RegEOI, 0)
			taken[i].Add(1)
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				// Fixed IPI to the next processor; each sender its own vector.
				w32(apics[i], RegICRHigh, uint32((i+1)%n)<<24)
				w32(apics[i], RegICRLow, 0x40+uint32(i))
				take(i)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		take(i)
		if got := taken[i].Load(); got < 1 || got > rounds {
			t.Errorf("processor %d took %d IPIs", i, got)
		}
		if v, ok := apics[i].PendingVector(); ok {
			t.Errorf("processor %d: vector %#x still pending", i, v)
		}
		if isr := r32(apics[i], RegISR+0x20); isr != 0 {
			t.Errorf("processor %d: ISR %#x", i, isr)
		}
	}
}
