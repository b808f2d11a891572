package pci

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/bus"
	"hv/devices/internal/devtest"
	"hv/devices/internal/snapshot"
)

// regs is a BAR handler that remembers its last write.
type regs struct{ last []byte }

func (r *regs) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = byte(off) + byte(i)
	}
}
func (r *regs) Write(off uint64, data []byte) { r.last = append([]byte(nil), data...) }

type rig struct {
	b    *bus.Bus
	h    *Host
	f    *Function
	line devtest.Line
	mmio *regs
	io   *regs
}

func newRig(t testing.TB) *rig {
	r := &rig{b: bus.New(), mmio: &regs{}, io: &regs{}}
	r.h = NewHost(r.b)
	if err := r.h.Install(r.b); err != nil {
		t.Fatal(err)
	}
	f, err := NewFunction("test", Header{
		VendorID: 0x1AF4, DeviceID: 0x1041, RevisionID: 1, ClassCode: 0x020000,
		SubsystemVendorID: 0x1AF4, SubsystemID: 0x40, InterruptPin: PinA,
	}, [NumBARs]BAR{
		0: {Kind: BARIO, Size: 0x20, Handler: r.io},
		1: {Kind: BARMem32, Size: 0x1000, Handler: r.mmio},
		2: {Kind: BARMem64, Size: 0x4000, Prefetchable: true, Handler: r.mmio},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddCapability(CapIDVendorSpecific, []byte{14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddCapability(CapIDVendorSpecific, []byte{6, 0xAA, 0xBB, 0xCC}, nil); err != nil {
		t.Fatal(err)
	}
	f.ConnectINTx(&r.line, 11)
	r.f = f
	if err := r.h.Register(3, 0, f); err != nil {
		t.Fatal(err)
	}
	return r
}

func cfgAddr(slot, fn, reg int) uint32 {
	return 1<<31 | uint32(slot)<<11 | uint32(fn)<<8 | uint32(reg)
}

func (r *rig) read(slot, reg, n int) uint32 {
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], cfgAddr(slot, 0, reg&^3))
	_ = r.b.WritePort(ConfigAddressPort, a[:])
	d := make([]byte, n)
	_ = r.b.ReadPort(ConfigDataPort+uint16(reg&3), d)
	var v [4]byte
	copy(v[:], d)
	return binary.LittleEndian.Uint32(v[:])
}

func (r *rig) write(slot, reg, n int, val uint32) {
	var a [4]byte
	binary.LittleEndian.PutUint32(a[:], cfgAddr(slot, 0, reg&^3))
	_ = r.b.WritePort(ConfigAddressPort, a[:])
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], val)
	_ = r.b.WritePort(ConfigDataPort+uint16(reg&3), v[:n])
}

func TestMechanism1Decode(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name string
		addr uint32
		want uint32
	}{
		{"host bridge id", cfgAddr(0, 0, 0), DeviceI440FX<<16 | VendorIntel},
		{"host bridge class", cfgAddr(0, 0, 8), ClassHostBridge<<8 | hostBridgeRevision},
		{"device id", cfgAddr(3, 0, 0), 0x1041<<16 | 0x1AF4},
		{"empty slot", cfgAddr(4, 0, 0), 0xFFFFFFFF},
		{"function 1 of single-function device", cfgAddr(3, 1, 0), 0xFFFFFFFF},
		{"bus 1", cfgAddr(3, 0, 0) | 1<<16, 0xFFFFFFFF},
		{"enable bit clear", cfgAddr(3, 0, 0) &^ (1 << 31), 0xFFFFFFFF},
		{"interrupt line and pin", cfgAddr(3, 0, RegInterruptLine), PinA<<8 | 11},
	}
	for _, tc := range tests {
		var a, d [4]byte
		binary.LittleEndian.PutUint32(a[:], tc.addr)
		_ = r.b.WritePort(ConfigAddressPort, a[:])
		_ = r.b.ReadPort(ConfigDataPort, d[:])
		if got := binary.LittleEndian.Uint32(d[:]); got != tc.want {
			t.Errorf("%s: read %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestAddressRegister(t *testing.T) {
	r := newRig(t)
	// Linux's pci_check_type1: write 0x80000000, read it back unchanged.
	_ = r.b.WritePort(ConfigAddressPort, []byte{0, 0, 0, 0x80})
	d := make([]byte, 4)
	_ = r.b.ReadPort(ConfigAddressPort, d)
	if got := binary.LittleEndian.Uint32(d); got != 0x80000000 {
		t.Errorf("address register = %#x", got)
	}
	_ = r.b.WritePort(ConfigAddressPort, []byte{0xFF, 0xFF, 0xFF, 0xFF})
	_ = r.b.ReadPort(ConfigAddressPort, d)
	if got := binary.LittleEndian.Uint32(d); got != configAddrMask {
		t.Errorf("reserved bits stored: %#x", got)
	}
	// A byte write to 0xCFB must not touch the address register.
	_ = r.b.WritePort(ConfigAddressPort+3, []byte{0})
	_ = r.b.ReadPort(ConfigAddressPort, d)
	if got := binary.LittleEndian.Uint32(d); got != configAddrMask {
		t.Errorf("byte write changed address to %#x", got)
	}
	b := make([]byte, 1)
	_ = r.b.ReadPort(ConfigAddressPort+1, b)
	if b[0] != 0xFF {
		t.Errorf("byte read of 0xCF9 = %#x, want floating bus", b[0])
	}
}

func TestReadOnlyFieldsIgnoreWrites(t *testing.T) {
	for _, reg := range []int{RegVendorID, RegDeviceID, RegRevisionID, RegClassCode, RegHeaderType,
		RegSubsystemVID, RegCapPointer, RegInterruptPin, RegExpansionROM, RegBIST, 0x40, 0x50, 0xFC} {
		r := newRig(t)
		before := r.read(3, reg&^3, 4)
		r.write(3, reg&^3, 4, 0x5A5A5A5A^before)
		// only writable bytes in the dword (none here, except the line register's dword) may change
		after := r.read(3, reg&^3, 4)
		if reg == RegInterruptPin {
			before, after = before&^0xFF, after&^0xFF
		}
		if reg&^3 == RegCacheLineSize {
			before, after = before&^0xFFFF, after&^0xFFFF // cache line size and latency timer are RW
		}
		if after != before {
			t.Errorf("register %#x: %#x -> %#x after a write", reg, before, after)
		}
	}
}

func TestWritableRegisters(t *testing.T) {
	r := newRig(t)
	r.write(3, RegCommand, 2, 0xFFFF)
	if got := r.read(3, RegCommand, 2); got != commandWritableMask {
		t.Errorf("command = %#x, want %#x", got, commandWritableMask)
	}
	r.write(3, RegInterruptLine, 1, 5)
	r.write(3, RegCacheLineSize, 1, 0x10)
	if got := r.read(3, RegCacheLineSize, 1); got != 0x10 {
		t.Errorf("cache line size = %#x", got)
	}
	if got := r.read(3, RegInterruptLine, 1); got != 5 {
		t.Errorf("interrupt line = %d", got)
	}
}

func TestStatusWriteOneToClear(t *testing.T) {
	r := newRig(t)
	r.f.mu.Lock()
	binary.LittleEndian.PutUint16(r.f.cfg[RegStatus:], StatusCapList|StatusRcvMasterAb|StatusDetParityErr)
	r.f.mu.Unlock()
	r.write(3, RegStatus, 2, StatusRcvMasterAb|StatusCapList)
	if got := r.read(3, RegStatus, 2); got != StatusCapList|StatusDetParityErr {
		t.Errorf("status = %#x", got)
	}
}

func TestBARSizing(t *testing.T) {
	tests := []struct {
		bar  int
		want uint32
	}{
		{0, 0xFFFFFFE0 | barIOSpace},
		{1, 0xFFFFF000},
		{2, 0xFFFFC000 | barMemType64 | barPrefetchable},
		{3, 0xFFFFFFFF}, // upper half of a small 64-bit BAR: all address bits writable
		{4, 0},
		{5, 0},
	}
	for _, tc := range tests {
		r := newRig(t)
		reg := RegBAR0 + 4*tc.bar
		orig := r.read(3, reg, 4)
		r.write(3, reg, 4, 0xFFFFFFFF)
		if got := r.read(3, reg, 4); got != tc.want {
			t.Errorf("BAR%d sizing read %#x, want %#x", tc.bar, got, tc.want)
		}
		r.write(3, reg, 4, orig)
		if got := r.read(3, reg, 4); got != orig {
			t.Errorf("BAR%d restore read %#x, want %#x", tc.bar, got, orig)
		}
	}
}

func TestBARDecodeFollowsCommandAndMoves(t *testing.T) {
	r := newRig(t)
	var moves []BARMove
	r.f.SetBARMoveHook(func(m BARMove) { moves = append(moves, m) })
	r.write(3, RegBAR0, 4, 0xC040)
	r.write(3, RegBAR0+4, 4, 0xFEB00000)
	r.write(3, RegBAR0+8, 4, 0x00000000)
	r.write(3, RegBAR0+12, 4, 0x1) // 64-bit BAR at 0x1_00000000
	if got := r.b.MMIORanges(); len(got) != 0 {
		t.Fatalf("decode disabled but mapped: %v", got)
	}
	r.write(3, RegCommand, 2, CommandIO|CommandMemory)
	want := []bus.Range{
		{Base: 0xFEB00000, Size: 0x1000, Name: "test BAR1"},
		{Base: 0x100000000, Size: 0x4000, Name: "test BAR2"},
	}
	if diff := cmp.Diff(want, r.b.MMIORanges()); diff != "" {
		t.Errorf("mmio ranges (-want +got):\n%s", diff)
	}
	d := make([]byte, 4)
	_ = r.b.ReadMMIO(0xFEB00010, d)
	if d[0] != 0x10 {
		t.Errorf("BAR1 read gave %v, handler not reached with its offset", d)
	}
	_ = r.b.WritePort(0xC044, []byte{7})
	if !bytes.Equal(r.io.last, []byte{7}) {
		t.Errorf("I/O BAR write not delivered")
	}
	r.write(3, RegBAR0+4, 4, 0xFEA00000)
	if _, on := r.f.BARBase(1); !on {
		t.Error("BAR1 not decoding after move")
	}
	want[0].Base = 0xFEA00000
	if diff := cmp.Diff(want, r.b.MMIORanges()); diff != "" {
		t.Errorf("after move (-want +got):\n%s", diff)
	}
	r.write(3, RegCommand, 2, CommandIO)
	if got := r.b.MMIORanges(); len(got) != 0 {
		t.Errorf("memory decode off but mapped: %v", got)
	}
	if len(moves) != 6 {
		t.Errorf("got %d move reports, want 6: %+v", len(moves), moves)
	}
}

func TestBAROverlapDoesNotDecode(t *testing.T) {
	r := newRig(t)
	if err := r.b.RegisterMMIO(0xFEE00000, 0x1000, "lapic", &regs{}); err != nil {
		t.Fatal(err)
	}
	r.write(3, RegBAR0+4, 4, 0xFEE00000)
	r.write(3, RegCommand, 2, CommandMemory)
	if _, on := r.f.BARBase(1); on {
		t.Error("BAR placed over another device decodes")
	}
	if r.f.MapFailures() != 1 {
		t.Errorf("map failures = %d", r.f.MapFailures())
	}
	r.write(3, RegBAR0+4, 4, 0xFEB00000)
	if _, on := r.f.BARBase(1); !on {
		t.Error("BAR moved off the conflict does not decode")
	}
}

func TestINTx(t *testing.T) {
	r := newRig(t)
	r.f.SetINTx(true)
	if !r.line.Level() || r.read(3, RegStatus, 2)&StatusInterrupt == 0 {
		t.Fatal("asserted INTx not visible")
	}
	r.write(3, RegCommand, 2, CommandIntxDisable)
	if r.line.Level() {
		t.Error("Interrupt Disable does not mask the line")
	}
	if r.read(3, RegStatus, 2)&StatusInterrupt == 0 {
		t.Error("Interrupt Status must follow the pin even when disabled")
	}
	r.write(3, RegCommand, 2, 0)
	if !r.line.Level() {
		t.Error("line not re-asserted after enabling")
	}
	r.f.SetINTx(false)
	if r.line.Level() || r.read(3, RegStatus, 2)&StatusInterrupt != 0 {
		t.Error("deasserted INTx still visible")
	}
}

func TestCapabilityList(t *testing.T) {
	r := newRig(t)
	if r.read(3, RegStatus, 2)&StatusCapList == 0 {
		t.Fatal("capabilities list bit clear")
	}
	var got []uint32
	for p := r.read(3, RegCapPointer, 1); p != 0 && len(got) < 48; p = r.read(3, int(p)+1, 1) {
		got = append(got, p)
		if r.read(3, int(p), 1) != CapIDVendorSpecific {
			t.Errorf("cap at %#x has id %#x", p, r.read(3, int(p), 1))
		}
	}
	if diff := cmp.Diff([]uint32{0x40, 0x50}, got); diff != "" {
		t.Errorf("capability chain (-want +got):\n%s", diff)
	}
	if v, w := r.read(3, 0x52, 2), r.read(3, 0x54, 2); v != 0xAA06 || w != 0xCCBB {
		t.Errorf("second capability body = %#x %#x", v, w)
	}
}

type hookCap struct{ data [8]byte }

func (h *hookCap) ReadCap(off int, p []byte)  { copy(p, h.data[off:]) }
func (h *hookCap) WriteCap(off int, p []byte) { copy(h.data[off:], p) }

func TestCapabilityHook(t *testing.T) {
	f, err := NewFunction("hook", Header{VendorID: 1}, [NumBARs]BAR{})
	if err != nil {
		t.Fatal(err)
	}
	h := &hookCap{}
	off, err := f.AddCapability(CapIDVendorSpecific, make([]byte, 6), h)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteConfig(off+4, []byte{1, 2, 3, 4})
	if h.data[4] != 1 || h.data[7] != 4 {
		t.Errorf("hook did not see the write: %v", h.data)
	}
	// Too big a capability is refused.
	if _, err := f.AddCapability(CapIDVendorSpecific, make([]byte, 250), nil); !errors.Is(err, ErrNoCapSpace) {
		t.Errorf("oversize capability: %v", err)
	}
}

func TestNewFunctionRejectsBadBARs(t *testing.T) {
	h := &regs{}
	for name, bars := range map[string][NumBARs]BAR{
		"io not power of two": {{Kind: BARIO, Size: 24, Handler: h}},
		"io too big":          {{Kind: BARIO, Size: 512, Handler: h}},
		"mem too small":       {{Kind: BARMem32, Size: 8, Handler: h}},
		"64-bit in last slot": {5: {Kind: BARMem64, Size: 4096, Handler: h}},
		"64-bit upper used":   {{Kind: BARMem64, Size: 4096, Handler: h}, {Kind: BARIO, Size: 4, Handler: h}},
		"no handler":          {{Kind: BARMem32, Size: 4096}},
	} {
		if _, err := NewFunction(name, Header{}, bars); !errors.Is(err, ErrBadBAR) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestAssignResources(t *testing.T) {
	r := newRig(t)
	if err := r.h.AssignResources(Window{Base: 0xE0000000, Limit: 0xF0000000}, Window{Base: 0xC000, Limit: 0x10000}); err != nil {
		t.Fatal(err)
	}
	want := []bus.Range{
		{Base: 0xE0000000, Size: 0x4000, Name: "test BAR2"},
		{Base: 0xE0004000, Size: 0x1000, Name: "test BAR1"},
	}
	if diff := cmp.Diff(want, r.b.MMIORanges()); diff != "" {
		t.Errorf("mmio (-want +got):\n%s", diff)
	}
	if base, on := r.f.BARBase(0); base != 0xC000 || !on {
		t.Errorf("io BAR at %#x decoding %v", base, on)
	}
	if err := r.h.AssignResources(Window{Base: 0xE0000000, Limit: 0xE0001000}, Window{Base: 0xC000, Limit: 0x10000}); err == nil {
		t.Error("assignment into a too-small window succeeded")
	}
}

func TestRegisterErrors(t *testing.T) {
	r := newRig(t)
	f, _ := NewFunction("x", Header{}, [NumBARs]BAR{})
	if err := r.h.Register(3, 0, f); !errors.Is(err, ErrSlotInUse) {
		t.Errorf("double registration: %v", err)
	}
	if err := r.h.Register(32, 0, f); !errors.Is(err, ErrBadLocation) {
		t.Errorf("slot 32: %v", err)
	}
}

func TestSaveRestore(t *testing.T) {
	r := newRig(t)
	r.write(3, RegBAR0+4, 4, 0xFEB00000)
	r.write(3, RegCommand, 2, CommandMemory|CommandBusMaster)
	r.write(3, RegLatencyTimer, 1, 0x40)
	r.f.SetINTx(true)
	blob, err := r.f.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t)
	if err := r2.f.RestoreState(blob); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.b.MMIORanges(), r2.b.MMIORanges()); diff != "" {
		t.Errorf("restored mappings differ:\n%s", diff)
	}
	if !r2.line.Level() {
		t.Error("restored INTx level not driven")
	}
	again, _ := r2.f.SaveState()
	if !bytes.Equal(blob, again) {
		t.Error("save after restore differs")
	}
	hb, _ := r.h.SaveState()
	if err := r2.h.RestoreState(hb); err != nil {
		t.Fatal(err)
	}
	r2.f.Reset()
	if got := r2.b.MMIORanges(); len(got) != 0 || r2.line.Level() {
		t.Errorf("reset left mappings %v or INTx %v", got, r2.line.Level())
	}
}

func TestRestoreRejectsCorruption(t *testing.T) {
	r := newRig(t)
	blob, _ := r.f.SaveState()
	// Field offsets: magic(4) taglen(1) tag version(2) len(4) cfg...
	cfgAt := 4 + 1 + len(functionTag) + 2 + 4
	for name, mut := range map[string]func(b []byte){
		"vendor id":        func(b []byte) { b[cfgAt+RegVendorID] ^= 1 },
		"BAR type bits":    func(b []byte) { b[cfgAt+RegBAR0+4] |= 1 },
		"BAR below size":   func(b []byte) { b[cfgAt+RegBAR0+5] = 0x01 },
		"interrupt pin":    func(b []byte) { b[cfgAt+RegInterruptPin] = 2 },
		"intx not boolean": func(b []byte) { b[len(b)-5] = 7 },
		"capability body":  func(b []byte) { b[cfgAt+0x43] ^= 0xFF },
		"status cap bit":   func(b []byte) { b[cfgAt+RegStatus] &^= StatusCapList },
	} {
		b := append([]byte(nil), blob...)
		mut(b)
		before, _ := r.f.SaveState()
		if err := r.f.RestoreState(snapshot.Reseal(b)); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Errorf("%s: err = %v", name, err)
		}
		if after, _ := r.f.SaveState(); !bytes.Equal(before, after) {
			t.Errorf("%s: failed restore changed the function", name)
		}
	}
	if err := r.f.RestoreState(blob[:len(blob)-1]); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
}

// FuzzConfigSpace drives the configuration ports with arbitrary traffic.
// Invariants: no panic; read-only identity never changes; BAR registers
// always hold size-aligned values with their type bits; a decoding BAR is
// registered exactly where its register says; save/restore is lossless.
func FuzzConfigSpace(f *testing.F) {
	f.Add([]byte{0, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0x04, 0x07, 0, 0, 0, 1, 0x10})
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := newRig(t)
		for len(prog) >= 6 {
			op, reg := prog[0], int(prog[1])
			val := binary.LittleEndian.Uint32(prog[2:6])
			prog = prog[6:]
			n := []int{1, 2, 4, 4}[op>>6]
			switch op & 7 {
			case 0, 1, 2:
				r.write(3, reg, n, val)
			case 3:
				r.read(3, reg, n)
			case 4:
				r.f.SetINTx(val&1 != 0)
			case 5:
				blob, _ := r.f.SaveState()
				if err := r.f.RestoreState(blob); err != nil {
					t.Fatalf("restore own state: %v", err)
				}
				if again, _ := r.f.SaveState(); !bytes.Equal(blob, again) {
					t.Fatal("save/restore not lossless")
				}
			case 6:
				var a [4]byte
				binary.LittleEndian.PutUint32(a[:], val)
				_ = r.b.WritePort(ConfigAddressPort+uint16(reg&3), a[:n])
				_ = r.b.ReadPort(ConfigDataPort+uint16(reg&3), a[:n])
			case 7:
				r.h.AssignResources(Window{Base: 0xE0000000, Limit: 0xF0000000}, Window{Base: 0xC000, Limit: 0x10000})
			}
		}
		if got := r.read(3, 0, 4); got != 0x1041<<16|0x1AF4 {
			t.Fatalf("identity changed to %#x", got)
		}
		r.f.mu.Lock()
		defer r.f.mu.Unlock()
		for i := 0; i < NumBARs; i++ {
			var p Function
			p.bars = r.f.bars
			p.barStore(i, r.f.barReg(i))
			if p.barReg(i) != r.f.barReg(i) {
				t.Fatalf("BAR%d holds %#x", i, r.f.barReg(i))
			}
			if m := r.f.maps[i]; m.on && m.base != r.f.barAddr(i) {
				t.Fatalf("BAR%d decodes at %#x, register says %#x", i, m.base, r.f.barAddr(i))
			}
		}
	})
}
