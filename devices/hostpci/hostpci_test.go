package hostpci_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/devices/hostpci"
	"hv/devices/hostpci/pcitest"
)

type portLog struct {
	addr uint32
	ops  []string
}

func (p *portLog) OutL(port uint16, v uint32) {
	if port == hostpci.ConfigAddressPort {
		p.addr = v
	}
	p.ops = append(p.ops, "out")
}

func (p *portLog) InL(port uint16) uint32 {
	p.ops = append(p.ops, "in")
	if port != hostpci.ConfigDataPort {
		return 0
	}
	return p.addr
}

func TestMech1Address(t *testing.T) {
	io := &portLog{}
	m := hostpci.NewMech1(io)
	got := m.Read32(hostpci.Address{Bus: 2, Device: 31, Function: 7}, 0x3F)
	if want := uint32(1<<31 | 2<<16 | 31<<11 | 7<<8 | 0x3C); got != want {
		t.Errorf("address %#x, want %#x", got, want)
	}
	m.Write32(hostpci.Address{}, 4, 7)
	if diff := cmp.Diff([]string{"out", "in", "out", "out"}, io.ops); diff != "" {
		t.Errorf("port sequence (-want +got):\n%s", diff)
	}
}

func TestScan(t *testing.T) {
	c := pcitest.New()
	c.Add(hostpci.Address{}, 0x8086, 0x1237, 0x060000)
	multi := c.Add(hostpci.Address{Device: 1}, 0x8086, 0x7000, 0x060100)
	multi.Space[0x0E] = 0x80
	c.Add(hostpci.Address{Device: 1, Function: 3}, 0x8086, 0x7113, 0x068000)
	c.Add(hostpci.Address{Device: 2, Function: 1}, 0x1234, 0x1111, 0) // function 0 absent: not scanned
	c.Add(hostpci.Address{Device: 3, Function: 2}, 0x1234, 0x1111, 0) // not multi-function
	c.Add(hostpci.Address{Device: 3}, 0x1AF4, 0x1041, 0x020000)
	c.Add(hostpci.Address{Bus: 5, Device: 9}, 0x1AF4, 0x1042, 0x010000)
	var got []string
	for _, f := range hostpci.Scan(c) {
		got = append(got, f.Addr.String()+" "+strings.ToLower(hex16(f.Vendor)+":"+hex16(f.Device)))
	}
	want := []string{"00:00.0 8086:1237", "00:01.0 8086:7000", "00:01.3 8086:7113", "00:03.0 1af4:1041", "05:09.0 1af4:1042"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scan (-want +got):\n%s", diff)
	}
}

func hex16(v uint16) string {
	const d = "0123456789abcdef"
	return string([]byte{d[v>>12], d[v>>8&15], d[v>>4&15], d[v&15]})
}

func TestReadBARs(t *testing.T) {
	c := pcitest.New()
	a := hostpci.Address{Device: 3}
	f := c.Add(a, 0x1AF4, 0x1041, 0x020000)
	f.SetBAR(0, 0xC041, 0x20, false)                // I/O
	f.SetBAR(1, 0xFEBD1000, 0x1000, false)          // 32-bit memory
	f.SetBAR(4, 0xFE000000|0xC, 0x4000, true)       // 64-bit prefetchable
	binary.LittleEndian.PutUint16(f.Space[4:], 0x7) // decode and bus master on
	bars, err := hostpci.ReadBARs(c, a)
	if err != nil {
		t.Fatal(err)
	}
	want := [6]hostpci.BAR{
		{Index: 0, Base: 0xC040, Size: 0x20, IO: true},
		{Index: 1, Base: 0xFEBD1000, Size: 0x1000},
		{Index: 2}, {Index: 3},
		{Index: 4, Base: 0xFE000000, Size: 0x4000, Is64: true, Prefetch: true},
		{Index: 5},
	}
	if diff := cmp.Diff(want, bars); diff != "" {
		t.Errorf("BARs (-want +got):\n%s", diff)
	}
	if got := binary.LittleEndian.Uint16(f.Space[4:]); got != 0x7 {
		t.Errorf("command %#x after sizing, want it restored to 0x7", got)
	}
	if got := binary.LittleEndian.Uint32(f.Space[0x20:]); got != 0xFE00000C {
		t.Errorf("BAR4 %#x after sizing, want it restored", got)
	}
}

func TestReadBARsRejects(t *testing.T) {
	c := pcitest.New()
	a := hostpci.Address{Device: 3}
	f := c.Add(a, 0x1AF4, 0x1041, 0)
	f.SetBAR(5, 0xFE000004, 0x4000, false) // 64-bit type in the last BAR
	if _, err := hostpci.ReadBARs(c, a); err == nil || !strings.Contains(err.Error(), "last BAR") {
		t.Errorf("64-bit last BAR: err %v", err)
	}
	f.SetBAR(5, 0, 0, false)
	f.SetBAR(1, 0xFE001000, 0x4000, false) // base not aligned to its size
	if _, err := hostpci.ReadBARs(c, a); err == nil || !strings.Contains(err.Error(), "naturally aligned") {
		t.Errorf("misaligned BAR: err %v", err)
	}
	f.Space[0x0E] = 1
	if _, err := hostpci.ReadBARs(c, a); err == nil {
		t.Error("type 1 header: no error")
	}
}

func TestCapabilities(t *testing.T) {
	c := pcitest.New()
	a := hostpci.Address{Device: 3}
	f := c.Add(a, 0x1AF4, 0x1041, 0)
	if caps, err := hostpci.Capabilities(c, a); err != nil || caps != nil {
		t.Errorf("no list: %v, %v", caps, err)
	}
	f.AddCap(0x84, 0x09, []byte{16, 1})
	f.AddCap(0x40, 0x11, nil)
	caps, err := hostpci.Capabilities(c, a)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]hostpci.Capability{{0x09, 0x84}, {0x11, 0x40}}, caps); diff != "" {
		t.Errorf("caps (-want +got):\n%s", diff)
	}
	b, err := hostpci.ReadBytes(c, a, 0x85, 4)
	if err != nil || !cmp.Equal(b, []byte{0x40, 16, 1, 0}) {
		t.Errorf("ReadBytes = % x, %v", b, err)
	}
	if _, err := hostpci.ReadBytes(c, a, 0xFE, 4); err == nil {
		t.Error("ReadBytes past the end: no error")
	}
	f.Space[0x41] = 0x84 // a loop
	if _, err := hostpci.Capabilities(c, a); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("loop: err %v", err)
	}
	f.Space[0x41] = 0x10 // into the header
	if _, err := hostpci.Capabilities(c, a); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("into header: err %v", err)
	}
}
