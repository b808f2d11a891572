package aml

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPkgLength(t *testing.T) {
	// §20.2.4: the encoded value counts its own bytes.
	for _, c := range []struct {
		body int
		want []byte
	}{
		{0, []byte{0x01}},
		{62, []byte{0x3F}},
		{63, []byte{0x41, 0x04}},          // 65 = 0x041
		{0xFFD, []byte{0x4F, 0xFF}},       // 0xFFF, the two-byte maximum
		{0xFFE, []byte{0x81, 0x00, 0x01}}, // 0x1001
		{1<<20 - 4, []byte{0x8F, 0xFF, 0xFF}},
		{1<<20 - 3, []byte{0xC1, 0x00, 0x00, 0x01}},
	} {
		var b Builder
		if d := cmp.Diff(c.want, b.PkgLength(c.body)); d != "" {
			t.Errorf("PkgLength(%d) (-want +got):\n%s", c.body, d)
		}
	}
	var b Builder
	b.PkgLength(1 << 28)
	if b.Err() == nil {
		t.Error("oversized package accepted")
	}
}

func TestIntegers(t *testing.T) {
	var b Builder
	for _, c := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}}, {1, []byte{0x01}}, {2, []byte{0x0A, 0x02}}, {0xFF, []byte{0x0A, 0xFF}},
		{0x100, []byte{0x0B, 0x00, 0x01}}, {0x10000, []byte{0x0C, 0x00, 0x00, 0x01, 0x00}},
		{1 << 32, []byte{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		if d := cmp.Diff(c.want, b.Integer(c.v)); d != "" {
			t.Errorf("Integer(%#x) (-want +got):\n%s", c.v, d)
		}
	}
}

func TestNameStrings(t *testing.T) {
	var b Builder
	for _, c := range []struct {
		path string
		want string
	}{
		{"_HID", "_HID"},
		{"S5", "S5__"},
		{`\_S5_`, `\_S5_`},
		{`\_SB.PCI0`, "\\\x2e_SB_PCI0"},
		{`\_SB.PCI0.ISA`, "\\\x2f\x03_SB_PCI0ISA_"},
		{`\`, "\\\x00"},
	} {
		if got := string(b.NameString(c.path)); got != c.want {
			t.Errorf("NameString(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	for _, bad := range []string{"1ABC", "ABCDE", "a", "A..B"} {
		var e Builder
		e.NameString(bad)
		if e.Err() == nil {
			t.Errorf("bad name %q accepted", bad)
		}
	}
}

func TestEISAID(t *testing.T) {
	// Values as iasl compiles EISAID() (the well-known DWords in every DSDT).
	for id, want := range map[string]uint32{"PNP0A03": 0x030AD041, "PNP0A08": 0x080AD041, "PNP0501": 0x0105D041} {
		got, ok := eisaID(id)
		if !ok || got != want {
			t.Errorf("EISAID(%s) = %#08x %v, want %#08x", id, got, ok, want)
		}
	}
	for _, bad := range []string{"PNP0A0", "pnp0A03", "PNP0A0G"} {
		if _, ok := eisaID(bad); ok {
			t.Errorf("EISAID(%q) accepted", bad)
		}
	}
}

func TestGoldenTerms(t *testing.T) {
	var b Builder
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"S5 package", b.Name(`\_S5_`, b.Package(b.Integer(5), b.Integer(5), b.Integer(0), b.Integer(0))),
			[]byte{0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00}},
		{"device", b.Device("COM1", b.Name("_UID", b.Integer(1))),
			[]byte{0x5B, 0x82, 0x0B, 'C', 'O', 'M', '1', 0x08, '_', 'U', 'I', 'D', 0x01}},
		{"scope", b.Scope(`\_SB_`), []byte{0x10, 0x06, '\\', '_', 'S', 'B', '_'}},
		{"string", b.String("ab"), []byte{0x0D, 'a', 'b', 0}},
		{"buffer", b.Buffer([]byte{7, 8}), []byte{0x11, 0x05, 0x0A, 0x02, 7, 8}},
		{"IO", b.IO(0x3F8, 0x3F8, 1, 8), []byte{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}},
		{"IRQNoFlags", b.IRQNoFlags(4), []byte{0x22, 0x10, 0x00}},
		{"bus numbers", b.WordBusNumber(0, 0xFF),
			[]byte{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0x00, 0x01}},
		{"word IO", b.WordIO(0xD00, 0xFFFF),
			[]byte{0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0, 0, 0x00, 0x0D, 0xFF, 0xFF, 0, 0, 0x00, 0xF3}},
		{"dword memory", b.DWordMemory(0xA0000, 0xBFFFF, true),
			[]byte{0x87, 0x17, 0x00, 0x00, 0x0C, 0x03, 0, 0, 0, 0, 0x00, 0x00, 0x0A, 0x00, 0xFF, 0xFF, 0x0B, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x02, 0x00}},
		{"template", b.ResourceTemplate(b.IRQNoFlags(4)), []byte{0x11, 0x08, 0x0A, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}},
	} {
		if d := cmp.Diff(c.want, c.got); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
}

func TestStickyErrors(t *testing.T) {
	var b Builder
	b.String("\x80")
	b.IRQNoFlags(16)
	if b.Err() == nil || !strings.Contains(b.Err().Error(), "non-ASCII") {
		t.Errorf("first error not kept: %v", b.Err())
	}
	var p Builder
	elems := make([][]byte, 256)
	for i := range elems {
		elems[i] = p.Integer(0)
	}
	p.Package(elems...)
	if p.Err() == nil {
		t.Error("256-element package accepted")
	}
	var r Builder
	r.WordIO(5, 4)
	if r.Err() == nil {
		t.Error("empty range accepted")
	}
}

// FuzzNameString checks that no path makes the encoder panic and that a
// path it accepts encodes to whole segments.
func FuzzNameString(f *testing.F) {
	f.Add(`\_SB.PCI0`)
	f.Fuzz(func(t *testing.T, path string) {
		var b Builder
		out := b.NameString(path)
		if b.Err() == nil && len(out) == 0 {
			t.Fatal("empty encoding")
		}
	})
}
