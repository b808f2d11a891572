package pc

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/lapic"
	"hv/devices/pic"
	"hv/devices/virtio/net/vswitch"
	"hv/vmm"
	"hv/vmm/acpitables"
	"hv/vmm/config"
	"hv/vmm/loader"
)

type fakeClock struct{ ns uint64 }

func (c *fakeClock) Now() uint64 { return c.ns }

func write32(a *lapic.LAPIC, off uint32, v uint32) {
	a.Write(uint64(off), binary.LittleEndian.AppendUint32(nil, v))
}

// picProgram initialises the master 8259 the way Linux's init_8259A does:
// vectors 0x30-0x37, IRQ0 unmasked.
func picProgram(p *pic.Pair) {
	m := p.Master()
	m.Write(0, []byte{0x11}) // ICW1: edge, cascade, ICW4
	m.Write(1, []byte{0x30}) // ICW2: vector base
	m.Write(1, []byte{0x04}) // ICW3: slave on IRQ2
	m.Write(1, []byte{0x01}) // ICW4: 8086 mode
	m.Write(1, []byte{0xFE}) // OCW1: only IRQ0
}

func TestInterrupts(t *testing.T) {
	clk := &fakeClock{}
	a := lapic.New(lapic.Config{BSP: true, Clock: clk})
	p := pic.New(a.LINT(0))
	picProgram(p)
	ic := &interrupts{apic: a, pic: p}
	irq0, _ := p.Line(0)

	// Power-on LAPIC: software disabled, LINT0 masked, so the 8259 does
	// not reach the processor until firmware sets up the virtual wire.
	irq0.Set(true)
	if ic.HasInterrupt() {
		t.Fatal("8259 interrupt delivered through a masked LINT0")
	}
	firmwareLAPIC(a)
	if !ic.HasInterrupt() {
		t.Fatal("8259 interrupt not delivered through LINT0 ExtINT")
	}
	if v := ic.Acknowledge(); v != 0x30 {
		t.Errorf("ExtINT vector %#x, want 0x30 from the 8259", v)
	}
	irq0.Set(false)

	// A fixed interrupt in the LAPIC wins over the 8259 path.
	a.Deliver(lapic.Message{Vector: 0x41, Mode: lapic.Fixed})
	if !ic.HasInterrupt() {
		t.Fatal("LAPIC fixed interrupt not seen")
	}
	if v := ic.Acknowledge(); v != 0x41 {
		t.Errorf("vector %#x, want 0x41 from the LAPIC", v)
	}
	if ic.HasInterrupt() {
		t.Error("interrupt still pending after acknowledge (in service, no EOI yet, same class)")
	}

	// With LINT0 masked (the OS switched to the I/O APIC), the 8259 is cut off.
	write32(a, lapic.RegEOI, 0)
	write32(a, lapic.RegLVTLINT0, lapic.LVTMasked|uint32(lapic.ExtINT)<<8)
	irq0.Set(true)
	if ic.HasInterrupt() {
		t.Error("8259 interrupt delivered through a masked LINT0")
	}
}

func TestLocalRouting(t *testing.T) {
	a := lapic.New(lapic.Config{BSP: true, Clock: &fakeClock{}})
	l := &local{apics: []*lapic.LAPIC{a}}
	tests := []struct {
		name string
		vcpu int
		gpa  uint64
		ok   bool
		off  uint64
	}{
		{"ID register", 0, lapic.DefaultBase + 0x20, true, 0x20},
		{"last byte", 0, lapic.DefaultBase + lapic.PageSize - 1, true, lapic.PageSize - 1},
		{"past the page", 0, lapic.DefaultBase + lapic.PageSize, false, 0},
		{"below the page", 0, lapic.DefaultBase - 1, false, 0},
		{"no such vCPU", 1, lapic.DefaultBase, false, 0},
		{"negative vCPU", -1, lapic.DefaultBase, false, 0},
	}
	for _, tt := range tests {
		d, off, ok := l.MMIO(tt.vcpu, tt.gpa)
		if ok != tt.ok || ok && (off != tt.off || d != a) {
			t.Errorf("%s: MMIO(%d, %#x) = %v, %#x, %v", tt.name, tt.vcpu, tt.gpa, d, off, ok)
		}
	}
	if _, handled, _ := l.ReadMSR(0, 0x10); handled {
		t.Error("TSC MSR claimed by the LAPIC")
	}
	v, handled, err := l.ReadMSR(0, lapic.MSRAPICBase)
	if !handled || err != nil || v != lapic.DefaultBase|lapic.BaseEnable|lapic.BaseBSP {
		t.Errorf("APIC base %#x, %v, %v", v, handled, err)
	}
	if _, handled, err := l.ReadMSR(0, 0x802); !handled || err == nil {
		t.Errorf("x2APIC MSR in xAPIC mode: handled %v, err %v; want #GP", handled, err)
	}
	// Switching to x2APIC mode (SDM 11.12.5: EN and EXTD) turns the page off
	// and the MSRs on.
	if handled, err := l.WriteMSR(0, lapic.MSRAPICBase, v|lapic.BaseX2APIC); !handled || err != nil {
		t.Fatalf("enable x2APIC: %v, %v", handled, err)
	}
	if _, _, ok := l.MMIO(0, lapic.DefaultBase+0x20); ok {
		t.Error("xAPIC page decoded in x2APIC mode")
	}
	if id, handled, err := l.ReadMSR(0, 0x802); !handled || err != nil || id != 0 {
		t.Errorf("x2APIC ID %#x, %v, %v", id, handled, err)
	}
	if _, handled, _ := l.ReadMSR(1, lapic.MSRAPICBase); handled {
		t.Error("MSR of a vCPU without a LAPIC claimed")
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewLineWriter("vm1", &out)
	w.Write([]byte("hello\r\nwor"))
	w.Write([]byte("ld\x1b[2J\tx\n"))
	w.Write([]byte(strings.Repeat("a", maxLine+3)))
	w.Flush()
	want := "vm1: hello\nvm1: world\\x1b[2J\tx\nvm1: " + strings.Repeat("a", maxLine) + "\nvm1: aaa\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("console (-want +got):\n%s", diff)
	}
	if got := w.Lines(); len(got) != 4 || got[1] != "world\\x1b[2J\tx" {
		t.Errorf("Lines() = %q", got)
	}
}

func TestMACFor(t *testing.T) {
	a, b := macFor("vm1"), macFor("vm2")
	if a == b {
		t.Error("two names, one MAC")
	}
	for _, m := range [][6]byte{a, b} {
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("MAC %x is not locally administered unicast", m)
		}
	}
	if macFor("vm1") != a {
		t.Error("MAC not stable")
	}
}

// fakeHost backs guest RAM with a Go slice.
type fakeHost struct {
	mem  []byte
	next uint64
}

func (h *fakeHost) AllocFrames(n, align uint64) (uint64, error) {
	a := align * 4096
	pa := (h.next + a - 1) / a * a
	if pa+n*4096 > uint64(len(h.mem)) {
		return 0, bytes.ErrTooLarge
	}
	h.next = pa + n*4096
	return pa, nil
}
func (h *fakeHost) FreeFrames(pa, n uint64) error { return nil }
func (h *fakeHost) Bytes(pa, n uint64) []byte     { return h.mem[pa : pa+n] }

type fakePlatform struct {
	vmm.Platform
	*fakeHost
}

func (p fakePlatform) AllocFrames(n, align uint64) (uint64, error) {
	return p.fakeHost.AllocFrames(n, align)
}
func (p fakePlatform) FreeFrames(pa, n uint64) error { return p.fakeHost.FreeFrames(pa, n) }
func (p fakePlatform) Bytes(pa, n uint64) []byte     { return p.fakeHost.Bytes(pa, n) }

// elf64 is a minimal x86-64 ET_EXEC with one PT_LOAD of code at 1 MiB.
func elf64(code []byte) []byte {
	const entry = 0x100000
	h := make([]byte, 64+56)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1 // ELFCLASS64, little-endian, version
	le := binary.LittleEndian
	le.PutUint16(h[16:], 2)    // ET_EXEC
	le.PutUint16(h[18:], 0x3E) // EM_X86_64
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[24:], entry)
	le.PutUint64(h[32:], 64) // phoff
	le.PutUint16(h[52:], 64) // ehsize
	le.PutUint16(h[54:], 56) // phentsize
	le.PutUint16(h[56:], 1)  // phnum
	p := h[64:]
	le.PutUint32(p[0:], 1) // PT_LOAD
	le.PutUint32(p[4:], 5) // R+X
	le.PutUint64(p[8:], uint64(len(h)))
	le.PutUint64(p[16:], entry)
	le.PutUint64(p[24:], entry)
	le.PutUint64(p[32:], uint64(len(code)))
	le.PutUint64(p[40:], uint64(len(code)))
	le.PutUint64(p[48:], 0x1000)
	return append(h, code...)
}

func TestNew(t *testing.T) {
	host := &fakeHost{mem: make([]byte, MinMemory)}
	p := fakePlatform{fakeHost: host}
	if _, err := New(Config{Name: "small", MemSize: 64 << 20, Kernel: []byte{1}}, nil, p); err == nil {
		t.Error("64 MiB accepted")
	}
	if _, err := New(Config{Name: "nokernel", MemSize: MinMemory}, nil, p); err == nil {
		t.Error("no kernel accepted")
	}
	if _, err := New(Config{Name: "junk", MemSize: MinMemory, Kernel: []byte("junk")}, nil, p); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("junk kernel: %v", err)
	}
	host.next = 0
	m, err := New(Config{Name: "elf", MemSize: MinMemory, Kernel: elf64([]byte{0xF4})}, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Loaded.Kind != loader.KindELF || m.Loaded.Entry.Regs.RIP != 0x100000 {
		t.Errorf("loaded %v entry %#x", m.Loaded.Kind, m.Loaded.Entry.Regs.RIP)
	}
	var sig [8]byte
	if err := m.VM.Mem.ReadPhys(acpitables.RSDPAddr, sig[:]); err != nil || string(sig[:]) != "RSD PTR " {
		t.Errorf("RSDP at %#x reads %q, %v", acpitables.RSDPAddr, sig, err)
	}
	// Firmware placed the virtio BARs in the PCI window and enabled decode.
	for _, f := range []int{SlotBlk, SlotNet, SlotConsole} {
		fn := m.PCI.Function(f, 0)
		if fn == nil {
			t.Fatalf("slot %d empty", f)
		}
		base, on := fn.BARBase(0)
		if !on || base < PCIMMIOBase || base >= PCIMMIOLimit {
			t.Errorf("slot %d BAR0 %#x decoding %v", f, base, on)
		}
	}
	// The I/O APIC, LAPIC page and devices decode where the tables say.
	found := false
	for _, r := range m.VM.Bus.MMIORanges() {
		if r.Base == acpitables.IOAPICAddr {
			found = true
		}
	}
	if !found {
		t.Error("no I/O APIC at its MADT address")
	}
}

// A closed machine is off its switch: a VM restarted on the same switch
// must not leave frames going to the old machine's freed memory.
func TestCloseLeavesSwitch(t *testing.T) {
	host := &fakeHost{mem: make([]byte, MinMemory)}
	sw := vswitch.New(0)
	m, err := New(Config{Name: "elf", MemSize: MinMemory, Kernel: elf64([]byte{0xF4}), Switch: sw}, nil, fakePlatform{fakeHost: host})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 64)
	copy(frame, "\xff\xff\xff\xff\xff\xff\x52\x54\x00\x00\x00\x01")
	if err := m.port.Send(frame); err != nil {
		t.Fatalf("send before Close: %v", err)
	}
	m.Close()
	if err := m.port.Send(frame); err == nil {
		t.Error("the closed machine's port still forwards frames")
	}
}

// The configuration formats' vCPU limit is the VMM's.
func TestMaxCPUsAgree(t *testing.T) {
	if config.MaxCPUs != vmm.MaxCPUs {
		t.Errorf("config.MaxCPUs = %d, vmm.MaxCPUs = %d", config.MaxCPUs, vmm.MaxCPUs)
	}
}
