package acpitables

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/boot/acpi"
	"hv/devices/acpipm"
)

// fakeMem is guest memory below 1 MiB for the builder and the parser.
type fakeMem struct{ b []byte }

func newFakeMem() *fakeMem { return &fakeMem{b: make([]byte, 1<<20)} }

func (m *fakeMem) WritePhys(addr uint64, data []byte) error {
	if addr > uint64(len(m.b)) || uint64(len(data)) > uint64(len(m.b))-addr {
		return errors.New("outside memory")
	}
	copy(m.b[addr:], data)
	return nil
}

func (m *fakeMem) Bytes(addr, n uint64) ([]byte, bool) {
	if addr > uint64(len(m.b)) || n > uint64(len(m.b))-addr {
		return nil, false
	}
	return m.b[addr : addr+n], true
}

func testConfig() Config {
	return Config{
		APICIDs:  []uint32{0, 1, 2, 3},
		IOAPICID: 4,
		PMBase:   acpipm.DefaultBase,
		PCI: &PCI{BusFirst: 0, BusLast: 0xFF, MMIO32Base: 0xC0000000, MMIO32Size: 0x3EC00000,
			MMIO64Base: 1 << 36, MMIO64Size: 1 << 34, ECAMBase: 0xB0000000},
		COM1: true,
	}
}

func build(t *testing.T, cfg Config) (*Image, *fakeMem) {
	t.Helper()
	img, err := Build(cfg, RSDPAddr, TablesAddr)
	if err != nil {
		t.Fatal(err)
	}
	mem := newFakeMem()
	if err := img.Write(mem); err != nil {
		t.Fatal(err)
	}
	return img, mem
}

// TestParsedByBootACPI is the round trip: what we build, the platform's own
// parser (boot/acpi, which validates every checksum and length) reads back
// as the configuration we asked for.
func TestParsedByBootACPI(t *testing.T) {
	img, mem := build(t, testConfig())
	rsdp, err := acpi.FindRSDP(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rsdp.Revision != 2 || rsdp.Addr != RSDPAddr {
		t.Errorf("RSDP %+v", rsdp)
	}
	var root acpi.Tables
	if err := acpi.ReadRoot(mem, rsdp, &root); err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, r := range root.List() {
		sigs = append(sigs, string(r.Signature[:]))
	}
	if d := cmp.Diff([]string{"FACP", "APIC", "MCFG"}, sigs); d != "" || !root.FromXSDT {
		t.Errorf("XSDT entries (-want +got):\n%s (from XSDT %v)", d, root.FromXSDT)
	}
	// The RSDT lists the same tables.
	var rsdt acpi.Tables
	if err := acpi.ReadRoot(mem, acpi.RSDP{RSDTAddr: rsdp.RSDTAddr}, &rsdt); err != nil || rsdt.N != 3 {
		t.Errorf("RSDT: %v, %d entries", err, rsdt.N)
	}

	fadtAddr, _ := root.Find(acpi.SigFADT, 0)
	fb, err := acpi.Load(mem, fadtAddr, acpi.SigFADT)
	if err != nil {
		t.Fatal(err)
	}
	var fadt acpi.FADT
	if err := acpi.ParseFADT(fb, &fadt); err != nil {
		t.Fatal(err)
	}
	io := func(addr uint64, bits uint8, access uint8) acpi.GAS {
		return acpi.GAS{SpaceID: acpi.SpaceSystemIO, BitWidth: bits, AccessSize: access, Address: addr}
	}
	wantFADT := acpi.FADT{
		Revision: 6, Length: 276,
		FirmwareCtrl: img.Addr["FACS"], DSDT: img.Addr["DSDT"],
		SCIInterrupt: 9,
		PM1aEvent:    io(0x600, 32, 2),
		PM1aControl:  io(0x604, 16, 2),
		PMTimer:      io(0x608, 32, 3),
		Century:      0x32,
		BootArch:     acpi.BootArchLegacyDevices | acpi.BootArchVGANotPresent,
		Flags:        acpi.FADTWBINVD | acpi.FADTProcC1 | acpi.FADTPowerButton | acpi.FADTSleepButton | acpi.FADTFixRTC | acpi.FADTResetRegSup,
		Reset:        io(0x60C, 8, 1),
		ResetValue:   acpipm.ResetValue,
		HasReset:     true,
	}
	if d := cmp.Diff(wantFADT, fadt); d != "" {
		t.Errorf("FADT (-want +got):\n%s", d)
	}
	if fadt.HardwareReduced() || fadt.PMTimerBits() != 24 {
		t.Errorf("hardware reduced %v, PM timer %d bits", fadt.HardwareReduced(), fadt.PMTimerBits())
	}

	madtAddr, _ := root.Find(acpi.SigMADT, 0)
	mb, err := acpi.Load(mem, madtAddr, acpi.SigMADT)
	if err != nil {
		t.Fatal(err)
	}
	var madt acpi.MADT
	if err := acpi.ParseMADT(mb, &madt); err != nil {
		t.Fatal(err)
	}
	var cpus []acpi.CPU
	for i := range 4 {
		cpus = append(cpus, acpi.CPU{APICID: uint32(i), ProcessorUID: uint32(i), Flags: acpi.CPUEnabled})
	}
	if d := cmp.Diff(cpus, madt.CPUList()); d != "" {
		t.Errorf("MADT CPUs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]acpi.IOAPIC{{ID: 4, Addr: IOAPICAddr}}, madt.IOAPICList()); d != "" {
		t.Errorf("MADT I/O APICs (-want +got):\n%s", d)
	}
	wantOverrides := []acpi.Override{
		{Source: 0, GSI: 2, Flags: 0},
		{Source: 9, GSI: 9, Flags: acpi.INTIPolarityLow | acpi.INTITriggerLevel},
	}
	if d := cmp.Diff(wantOverrides, madt.OverrideList()); d != "" {
		t.Errorf("MADT overrides (-want +got):\n%s", d)
	}
	if madt.LocalAPICAddr != LocalAPICAddr || madt.Flags&acpi.MADTPCATCompat == 0 {
		t.Errorf("MADT local APIC %#x flags %#x", madt.LocalAPICAddr, madt.Flags)
	}
	if n := madt.NMIList(); len(n) != 1 || n[0].LINT != 1 || n[0].ProcessorUID != acpi.AllProcessorsUID8 {
		t.Errorf("MADT NMIs %+v", n)
	}

	db, err := acpi.Load(mem, fadt.DSDT, acpi.SigDSDT)
	if err != nil {
		t.Fatal(err)
	}
	s5, err := acpi.FindS5(db)
	if err != nil {
		t.Fatal(err)
	}
	if s5 != (acpi.S5{SLPTypA: acpipm.SleepTypeS5, SLPTypB: acpipm.SleepTypeS5}) {
		t.Errorf("S5 %+v", s5)
	}
	if _, err := acpi.Load(mem, img.Addr["MCFG"], acpi.SigMCFG); err != nil {
		t.Errorf("MCFG: %v", err)
	}
	facs := img.Tables[img.Addr["FACS"]-img.Base:]
	if string(facs[:4]) != "FACS" || img.Addr["FACS"]%64 != 0 {
		t.Errorf("FACS at %#x", img.Addr["FACS"])
	}
}

func TestX2APICEntries(t *testing.T) {
	cfg := testConfig()
	cfg.APICIDs = []uint32{0, 300}
	_, mem := build(t, cfg)
	rsdp, _ := acpi.FindRSDP(mem, nil)
	var root acpi.Tables
	_ = acpi.ReadRoot(mem, rsdp, &root)
	addr, _ := root.Find(acpi.SigMADT, 0)
	mb, _ := acpi.Load(mem, addr, acpi.SigMADT)
	var madt acpi.MADT
	if err := acpi.ParseMADT(mb, &madt); err != nil {
		t.Fatal(err)
	}
	want := []acpi.CPU{{APICID: 0, Flags: 1}, {APICID: 300, ProcessorUID: 1, Flags: 1, X2APIC: true}}
	if d := cmp.Diff(want, madt.CPUList()); d != "" {
		t.Errorf("CPUs (-want +got):\n%s", d)
	}
}

func TestBadConfigs(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no CPUs":       func(c *Config) { c.APICIDs = nil },
		"duplicate IDs": func(c *Config) { c.APICIDs = []uint32{1, 1} },
		"broadcast ID":  func(c *Config) { c.APICIDs = []uint32{0xFF} },
		"IOAPIC ID":     func(c *Config) { c.IOAPICID = 16 },
		"PM base":       func(c *Config) { c.PMBase = 0xFFF0 },
		"bus range":     func(c *Config) { c.PCI.BusFirst, c.PCI.BusLast = 2, 1 },
		"32-bit window": func(c *Config) { c.PCI.MMIO32Base, c.PCI.MMIO32Size = 0xF0000000, 0x20000000 },
		"OEM ID":        func(c *Config) { c.OEMID = "TOOLONG" },
	} {
		cfg := testConfig()
		p := *cfg.PCI
		cfg.PCI = &p
		mod(&cfg)
		if _, err := Build(cfg, RSDPAddr, TablesAddr); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Build(testConfig(), RSDPAddr, RSDPAddr+16); !errors.Is(err, ErrConfig) {
		t.Errorf("overlapping RSDP: %v", err)
	}
	if _, err := Build(testConfig(), RSDPAddr+8, TablesAddr); !errors.Is(err, ErrConfig) {
		t.Errorf("unaligned RSDP: %v", err)
	}
}

func TestPRTSwizzle(t *testing.T) {
	for _, c := range []struct {
		slot, pin int
		gsi       uint32
	}{
		{1, 0, 17}, {1, 3, 20}, {7, 0, 23}, {7, 1, 16}, {8, 0, 16}, {31, 3, 18},
	} {
		if g := PCIGSI(c.slot, c.pin); g != c.gsi {
			t.Errorf("slot %d pin %d -> GSI %d, want %d", c.slot, c.pin, g, c.gsi)
		}
	}
}

// TestIASLDisassembles feeds every table to ACPICA's disassembler when it is
// installed (Debian package acpica-tools): it validates the AML grammar and
// the table layouts independently of our own parser.
func TestIASLDisassembles(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed")
	}
	img, _ := build(t, testConfig())
	dir := t.TempDir()
	for _, sig := range []string{"DSDT", "FACP", "APIC", "MCFG"} {
		off := img.Addr[sig] - img.Base
		n := uint64(img.Tables[off+4]) | uint64(img.Tables[off+5])<<8 | uint64(img.Tables[off+6])<<16
		aml := filepath.Join(dir, strings.ToLower(sig)+".dat")
		if err := os.WriteFile(aml, img.Tables[off:off+n], 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(iasl, "-d", aml).CombinedOutput()
		if err != nil {
			t.Fatalf("iasl -d %s: %v\n%s", sig, err, out)
		}
		dsl, err := os.ReadFile(strings.TrimSuffix(aml, ".dat") + ".dsl")
		if err != nil {
			t.Fatal(err)
		}
		text := string(dsl)
		if strings.Contains(text, "Invalid") || strings.Contains(strings.ToLower(string(out)), "error") {
			t.Errorf("%s: iasl reports problems:\n%s\n%s", sig, out, text)
		}
		if sig == "DSDT" {
			for _, want := range []string{`Name (\_S5, Package (0x04)`, `EisaId ("PNP0A08")`, `EisaId ("PNP0A03")`,
				`EisaId ("PNP0501")`, "Device (PCI0)", "Device (COM1)", "Name (_PRT, Package (0x7C)",
				"WordBusNumber", "IRQNoFlags ()", "0x03F8", "QWordMemory"} {
				if !strings.Contains(text, want) {
					t.Errorf("DSDT disassembly lacks %q:\n%s", want, text)
				}
			}
		}
	}
}
