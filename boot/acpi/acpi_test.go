package acpi

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeMem is physical memory [0, len(b)).
type fakeMem struct{ b []byte }

func (m *fakeMem) Bytes(addr, n uint64) ([]byte, bool) {
	if n > uint64(len(m.b)) || addr > uint64(len(m.b))-n {
		return nil, false
	}
	return m.b[addr : addr+n], true
}

func newMem() *fakeMem { return &fakeMem{b: make([]byte, 2<<20)} }

// table builds an ACPI table with a correct length and checksum.
func table(sig string, rev uint8, body []byte) []byte {
	t := make([]byte, HeaderSize, HeaderSize+len(body))
	copy(t, sig)
	t[headerRevision] = rev
	copy(t[10:], "HVTEST")
	t = append(t, body...)
	binary.LittleEndian.PutUint32(t[headerLength:], uint32(len(t)))
	t[9] = -sum(t)
	return t
}

func rsdp(rev uint8, rsdt uint32, xsdt uint64) []byte {
	b := make([]byte, rsdpV2Len)
	copy(b, rsdpSignature)
	copy(b[9:], "HVTEST")
	b[rsdpRevision] = rev
	binary.LittleEndian.PutUint32(b[rsdpRSDTAddr:], rsdt)
	binary.LittleEndian.PutUint32(b[rsdpLength:], rsdpV2Len)
	binary.LittleEndian.PutUint64(b[rsdpXSDTAddr:], xsdt)
	b[8] = -sum(b[:rsdpV1Len])
	b[32] = -sum(b)
	if rev < 2 {
		return b[:rsdpV1Len]
	}
	return b
}

func u16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestParseRSDP(t *testing.T) {
	good2 := rsdp(2, 0x1000, 0x2000)
	badExt := append([]byte(nil), good2...)
	badExt[rsdpXSDTAddr] ^= 1 // breaks only the extended checksum
	badExt[8] = -sum(badExt[:rsdpV1Len])
	shortLen := append([]byte(nil), good2...)
	binary.LittleEndian.PutUint32(shortLen[rsdpLength:], 20)
	tests := []struct {
		name string
		b    []byte
		want RSDP
		err  error
	}{
		{"ACPI 1.0", rsdp(0, 0x1000, 0), RSDP{Revision: 0, RSDTAddr: 0x1000}, nil},
		{"ACPI 2.0", good2, RSDP{Revision: 2, RSDTAddr: 0x1000, XSDTAddr: 0x2000}, nil},
		{"bad checksum", append([]byte("RSD PTR \x01"), good2[9:]...), RSDP{}, ErrBadChecksum},
		{"bad extended checksum", badExt, RSDP{}, ErrBadChecksum},
		{"length below 36", shortLen, RSDP{}, ErrBadRSDP},
		{"revision 2 but only 20 bytes", good2[:20], RSDP{}, ErrBadRSDP},
		{"bad signature", append([]byte("RSD PTX "), good2[8:]...), RSDP{}, ErrBadRSDP},
		{"empty", nil, RSDP{}, ErrBadRSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRSDP(tt.b)
			if err != tt.err || got != tt.want {
				t.Errorf("ParseRSDP = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestFindRSDP(t *testing.T) {
	t.Run("loader copy wins", func(t *testing.T) {
		m := newMem()
		copy(m.b[0xF0000:], rsdp(0, 0x1111, 0))
		r, err := FindRSDP(m, rsdp(2, 0x2222, 0x3333))
		if err != nil || r.XSDTAddr != 0x3333 || r.Addr != 0 {
			t.Errorf("FindRSDP = %+v, %v", r, err)
		}
	})
	t.Run("corrupt loader copy falls back to scanning", func(t *testing.T) {
		m := newMem()
		copy(m.b[0xF0000:], rsdp(0, 0x1111, 0))
		bad := rsdp(2, 0x2222, 0x3333)
		bad[8]++
		r, err := FindRSDP(m, bad)
		if err != nil || r.RSDTAddr != 0x1111 || r.Addr != 0xF0000 {
			t.Errorf("FindRSDP = %+v, %v", r, err)
		}
		if _, err := FindRSDP(newMem(), bad); err != ErrBadChecksum {
			t.Errorf("FindRSDP with a corrupt copy and nothing to scan = %v, want %v", err, ErrBadChecksum)
		}
	})
	t.Run("EBDA before BIOS area", func(t *testing.T) {
		m := newMem()
		binary.LittleEndian.PutUint16(m.b[biosEBDASegment:], 0x9FC0)
		copy(m.b[0x9FC00+0x40:], rsdp(0, 0x1111, 0))
		copy(m.b[0xF0000:], rsdp(0, 0x2222, 0))
		r, err := FindRSDP(m, nil)
		if err != nil || r.RSDTAddr != 0x1111 || r.Addr != 0x9FC40 {
			t.Errorf("FindRSDP = %+v, %v", r, err)
		}
	})
	t.Run("BIOS area, decoys skipped", func(t *testing.T) {
		m := newMem()
		binary.LittleEndian.PutUint16(m.b[biosEBDASegment:], 0x9FC0)
		copy(m.b[0x9FC00+0x400:], rsdp(0, 0x9999, 0)) // beyond the EBDA's first KiB
		copy(m.b[0xE0000:], "RSD PTR garbage here")   // signature, bad checksum
		copy(m.b[0xE0108:], rsdp(0, 0x8888, 0))       // not 16-byte aligned
		copy(m.b[0xFFFD0:], rsdp(2, 0x1111, 0x4444))
		r, err := FindRSDP(m, nil)
		if err != nil || r.XSDTAddr != 0x4444 || r.Addr != 0xFFFD0 {
			t.Errorf("FindRSDP = %+v, %v", r, err)
		}
	})
	t.Run("none", func(t *testing.T) {
		m := newMem()
		binary.LittleEndian.PutUint16(m.b[biosEBDASegment:], 0xFFFF)
		if _, err := FindRSDP(m, nil); err != ErrNoRSDP {
			t.Errorf("FindRSDP error %v, want %v", err, ErrNoRSDP)
		}
	})
	t.Run("memory too small to scan", func(t *testing.T) {
		if _, err := FindRSDP(&fakeMem{b: make([]byte, 0x1000)}, nil); err != ErrNoRSDP {
			t.Errorf("FindRSDP error %v, want %v", err, ErrNoRSDP)
		}
	})
}

func TestLoad(t *testing.T) {
	m := newMem()
	good := table("APIC", 1, make([]byte, 20))
	copy(m.b[0x1000:], good)
	bad := table("APIC", 1, make([]byte, 20))
	bad[40] = 1
	copy(m.b[0x2000:], bad)
	huge := table("APIC", 1, nil)
	binary.LittleEndian.PutUint32(huge[headerLength:], MaxTableLength+1)
	copy(m.b[0x3000:], huge)
	short := table("APIC", 1, nil)
	binary.LittleEndian.PutUint32(short[headerLength:], 35)
	copy(m.b[0x4000:], short)
	past := table("APIC", 1, nil)
	binary.LittleEndian.PutUint32(past[headerLength:], 0x100)
	copy(m.b[len(m.b)-HeaderSize:], past)
	tests := []struct {
		name string
		addr uint64
		sig  string
		err  error
	}{
		{"good", 0x1000, "APIC", nil},
		{"any signature", 0x1000, "", nil},
		{"wrong signature", 0x1000, "FACP", ErrBadSignature},
		{"bad checksum", 0x2000, "APIC", ErrBadChecksum},
		{"huge length", 0x3000, "APIC", ErrBadLength},
		{"length below header", 0x4000, "APIC", ErrBadLength},
		{"runs past memory", uint64(len(m.b) - HeaderSize), "APIC", ErrUnreadable},
		{"header past memory", ^uint64(0) - 4, "APIC", ErrUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Load(m, tt.addr, tt.sig)
			if err != tt.err {
				t.Fatalf("Load error %v, want %v", err, tt.err)
			}
			if err == nil && len(b) != len(good) {
				t.Errorf("Load returned %d bytes, want %d", len(b), len(good))
			}
		})
	}
}

func TestReadRoot(t *testing.T) {
	m := newMem()
	copy(m.b[0x10000:], table("APIC", 1, nil))
	copy(m.b[0x11000:], table("FACP", 1, nil))
	copy(m.b[0x12000:], table("SSDT", 1, nil))
	copy(m.b[0x13000:], table("SSDT", 1, nil))
	xsdt := table(SigXSDT, 1, cat(u64(0x10000), u64(0), u64(0x11000), u64(0x12000), u64(0x13000), u64(0xFFFFFFFFF000), u32(7)))
	copy(m.b[0x20000:], xsdt)
	rsdt := table(SigRSDT, 1, cat(u32(0x11000), u32(0x10000)))
	copy(m.b[0x21000:], rsdt)

	var ts Tables
	if err := ReadRoot(m, RSDP{Revision: 2, RSDTAddr: 0x21000, XSDTAddr: 0x20000}, &ts); err != nil {
		t.Fatal(err)
	}
	want := []TableRef{
		{[4]byte{'A', 'P', 'I', 'C'}, 0x10000, HeaderSize},
		{[4]byte{'F', 'A', 'C', 'P'}, 0x11000, HeaderSize},
		{[4]byte{'S', 'S', 'D', 'T'}, 0x12000, HeaderSize},
		{[4]byte{'S', 'S', 'D', 'T'}, 0x13000, HeaderSize},
	}
	if d := cmp.Diff(want, ts.List()); d != "" || !ts.FromXSDT || ts.Dropped != 1 {
		t.Errorf("XSDT tables (-want +got):\n%s FromXSDT=%v Dropped=%d", d, ts.FromXSDT, ts.Dropped)
	}
	if a, ok := ts.Find("SSDT", 1); !ok || a != 0x13000 {
		t.Errorf("Find(SSDT, 1) = %#x, %v", a, ok)
	}
	if _, ok := ts.Find("SSDT", 2); ok {
		t.Errorf("Find(SSDT, 2) found a third SSDT")
	}
	if _, ok := ts.Find("HPET", 0); ok {
		t.Errorf("Find(HPET) found a table that is not there")
	}

	// A corrupt XSDT falls back to the RSDT.
	m.b[0x20000+HeaderSize] ^= 0xFF
	if err := ReadRoot(m, RSDP{Revision: 2, RSDTAddr: 0x21000, XSDTAddr: 0x20000}, &ts); err != nil {
		t.Fatal(err)
	}
	if ts.FromXSDT || ts.N != 2 || ts.Refs[0].Addr != 0x11000 {
		t.Errorf("RSDT fallback gave %+v", ts.List())
	}
	// ACPI 1.0 never looks at an XSDT.
	if err := ReadRoot(m, RSDP{Revision: 0, RSDTAddr: 0x21000, XSDTAddr: 0x20000}, &ts); err != nil || ts.FromXSDT {
		t.Errorf("ReadRoot(rev 0) = %v, FromXSDT %v", err, ts.FromXSDT)
	}
	if err := ReadRoot(m, RSDP{Revision: 2, XSDTAddr: 0x20000}, &ts); err != ErrBadChecksum {
		t.Errorf("ReadRoot with only a corrupt XSDT = %v, want %v", err, ErrBadChecksum)
	}
	if err := ReadRoot(m, RSDP{}, &ts); err != ErrNoRoot {
		t.Errorf("ReadRoot without root = %v, want %v", err, ErrNoRoot)
	}
}
