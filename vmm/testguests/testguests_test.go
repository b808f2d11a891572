package testguests

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readDefs parses src/defs.inc: one `.set NAME, VALUE` a line, VALUE a
// plain decimal or hex literal.
func readDefs(t *testing.T) map[string]uint64 {
	t.Helper()
	f, err := os.Open(filepath.Join("src", "defs.inc"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^\s*\.set\s+([A-Z0-9_]+),\s*(\S+)`)
	defs := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Fatalf("defs.inc:%d: %s: value %q is not a plain literal: %v", line, m[1], m[2], err)
		}
		if _, dup := defs[m[1]]; dup {
			t.Fatalf("defs.inc:%d: %s set twice", line, m[1])
		}
		defs[m[1]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestDefsMatchContract keeps src/defs.inc and the Go constants in step.
func TestDefsMatchContract(t *testing.T) {
	defs := readDefs(t)
	sig := []byte(HypervisorSignature)
	want := map[string]uint64{
		"LOAD_ADDR":    LoadAddr,
		"STACK_TOP":    EntrySP,
		"PORT_CONSOLE": PortConsole,
		"PORT_EXIT":    PortExit,
		"PORT_POST":    PortPOST,
		"COM1":         COM1Base,
		"UART_MMIO":    UARTMMIOBase,
		"GPA_OUTSIDE":  OutsideGPA,
		"HV_LEAF":      HypervisorLeaf,
		// EBX, ECX and EDX each hold the same 4 bytes.
		"HV_SIG":           uint64(binary.LittleEndian.Uint32(sig[0:4])),
		"HV_LEAF_MIN_MAX":  HypervisorLeaf + 1,
		"TSC_MIN_HI":       MinTSC >> 32,
		"POST_RESET":       PostReset,
		"POST_PROT32":      PostProt32,
		"POST_LONG64":      PostLong64,
		"POST_MAIN":        PostMain,
		"EXIT_CODE_REAL":   uint64(exitPortCodes()[ModeReal]),
		"EXIT_CODE_PROT32": uint64(exitPortCodes()[ModeProt32]),
		"EXIT_CODE_LONG64": uint64(exitPortCodes()[ModeLong64]),
	}
	if !bytes.Equal(sig[0:4], sig[4:8]) || !bytes.Equal(sig[0:4], sig[8:12]) {
		t.Fatalf("HypervisorSignature %q is not one 4-byte word three times", sig)
	}
	if MinTSC%(1<<32) != 0 {
		t.Fatalf("MinTSC %#x is not a whole number of 1<<32: TSC_MIN_HI cannot express it", uint64(MinTSC))
	}
	for name, w := range want {
		got, ok := defs[name]
		if !ok {
			t.Errorf("defs.inc: %s missing", name)
			continue
		}
		if got != w {
			t.Errorf("defs.inc: %s = %#x, Go contract says %#x", name, got, w)
		}
	}
}

// TestDefsMatchManuals checks the architectural numbers in src/defs.inc
// against the manuals and datasheets, with bit fields assembled from the
// field layouts the documents give rather than copied as one number.
func TestDefsMatchManuals(t *testing.T) {
	defs := readDefs(t)
	// 8254 control word (Intel 8254 datasheet, figure "Control Word
	// Format"): SC1:SC0 in 7:6, RW1:RW0 in 5:4, M2:M0 in 3:1, BCD in 0.
	pitCW := func(sc, rw, m, bcd uint64) uint64 { return sc<<6 | rw<<4 | m<<1 | bcd }
	// 8254 read-back command: 11 in 7:6, COUNT# in 5, STATUS# in 4,
	// CNT2..CNT0 in 3:1 (active low latch bits).
	pitReadBack := func(noCount, noStatus, counters uint64) uint64 {
		return 3<<6 | noCount<<5 | noStatus<<4 | counters<<1
	}
	want := map[string]uint64{
		// SDM vol. 3A 6.3.1 table 6-1.
		"VEC_DE": 0, "VEC_BP": 3, "VEC_UD": 6, "VEC_DF": 8, "VEC_GP": 13, "VEC_PF": 14,
		// SDM vol. 3A 4.7: P is bit 0, W/R bit 1.
		"PFERR_P": 1 << 0, "PFERR_W": 1 << 1,
		// SDM vol. 3A 2.5: CR0.PE bit 0, ET 4, WP 16, PG 31; CR4.PAE 5.
		"CR0_PE": 1 << 0, "CR0_ET": 1 << 4, "CR0_WP": 1 << 16, "CR0_PG": 1 << 31, "CR4_PAE": 1 << 5,
		// SDM vol. 3A 4.5: P 0, R/W 1, PWT 3, PCD 4, PS 7.
		"PTE_P": 1 << 0, "PTE_RW": 1 << 1, "PTE_PWT": 1 << 3, "PTE_PCD": 1 << 4, "PTE_PS": 1 << 7,
		// SDM vol. 4 table 2-2; APM vol. 2 appendix A and 15.30.
		"MSR_TSC": 0x10, "MSR_APIC_BASE": 0x1B, "MSR_SYSENTER_CS": 0x174, "MSR_SYSENTER_ESP": 0x175,
		"MSR_SYSENTER_EIP": 0x176, "MSR_PAT": 0x277, "MSR_EFER": 0xC0000080, "MSR_STAR": 0xC0000081,
		"MSR_LSTAR": 0xC0000082, "MSR_KERNEL_GS_BASE": 0xC0000102, "MSR_VM_CR": 0xC0010114,
		"MSR_VM_HSAVE_PA": 0xC0010117,
		// APM vol. 2 3.1.7: SCE 0, LME 8, LMA 10, SVME 12; bit 3 reserved.
		"EFER_SCE": 1 << 0, "EFER_RSVD3": 1 << 3, "EFER_LME": 1 << 8, "EFER_LMA": 1 << 10, "EFER_SVME": 1 << 12,
		// SDM vol. 2A CPUID: leaf 1 ECX.VMX bit 5, bit 31 for hypervisors;
		// APM vol. 3 E.4.2: 80000001h ECX.SVM bit 2.
		"CPUID1_ECX_VMX": 1 << 5, "CPUID1_ECX_HV": 1 << 31, "CPUID81_ECX_SVM": 1 << 2,
		// 8259A datasheet: ICW1 has D4=1, IC4 in D0; ICW4 uPM in D0;
		// OCW2 EOI is R,SL,EOI = 001 in D7:D5; OCW3 has D3=1, RR in D1,
		// RIS in D0.
		"PIC1_CMD": 0x20, "PIC1_DATA": 0x21, "PIC2_CMD": 0xA0, "PIC2_DATA": 0xA1,
		"ICW1_INIT_IC4": 1<<4 | 1<<0, "ICW4_8086": 1 << 0, "ICW3_MASTER": 1 << 2, "ICW3_SLAVE": 2,
		"OCW2_EOI": 1 << 5, "OCW3_READ_IRR": 1<<3 | 1<<1, "OCW3_READ_ISR": 1<<3 | 1<<1 | 1<<0,
		// 8254: counter 0 at 40h, control at 43h.
		"PIT_CH0": 0x40, "PIT_CTRL": 0x43,
		"PIT_CW_CH0_MODE2": pitCW(0, 3, 2, 0), "PIT_CW_CH0_MODE3": pitCW(0, 3, 3, 0),
		"PIT_CW_LATCH0": pitCW(0, 0, 0, 0), "PIT_READBACK_ST0": pitReadBack(1, 0, 1),
		"PIT_STATUS_CW_MASK": 0x3F,
		// PC16550D section 8.1 table 4: register offsets; LCR WLS=11 is
		// 8 bits, DLAB bit 7; MCR LOOP bit 4; LSR DR bit 0, THRE bit 5;
		// IIR 01h = no interrupt pending.
		"UART_RBR": 0, "UART_IER": 1, "UART_IIR": 2, "UART_LCR": 3, "UART_MCR": 4, "UART_LSR": 5,
		"UART_MSR": 6, "UART_SCR": 7, "LCR_8N1": 3, "LCR_DLAB": 1 << 7, "MCR_LOOP": 1 << 4,
		"LSR_DR": 1 << 0, "LSR_THRE": 1 << 5, "IIR_NONE": 1,
		// "Auth" and "Genu" as the little-endian EBX of CPUID leaf 0.
		"VENDOR_AMD_EBX":   uint64(binary.LittleEndian.Uint32([]byte("Auth"))),
		"VENDOR_INTEL_EBX": uint64(binary.LittleEndian.Uint32([]byte("Genu"))),
	}
	for name, w := range want {
		got, ok := defs[name]
		if !ok {
			t.Errorf("defs.inc: %s missing", name)
			continue
		}
		if got != w {
			t.Errorf("defs.inc: %s = %#x, the manual says %#x", name, got, w)
		}
	}
	// PAT test values must use only defined memory types (SDM vol. 3A
	// table 12-10: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC-); 2 and 3 would
	// make the allowed WRMSR raise #GP.
	for _, name := range []string{"PAT_TEST_LO", "PAT_TEST_HI"} {
		v := defs[name]
		for i := 0; i < 4; i++ {
			if ty := v >> (8 * i) & 0xFF; ty > 7 || ty == 2 || ty == 3 {
				t.Errorf("defs.inc: %s byte %d = %#x is not a defined memory type", name, i, ty)
			}
		}
	}
	// 1193182 Hz / PIT_COUNT should be the 500 Hz the comments promise.
	if hz := 1193182 / defs["PIT_COUNT"]; hz != 500 {
		t.Errorf("PIT_COUNT %d gives %d Hz, want 500", defs["PIT_COUNT"], hz)
	}
}

// TestLayout checks that the guests' own memory below LoadAddr does not
// overlap, and that the long-mode test addresses are where the page tables
// say: RAM identity-mapped, RO_ALIAS a read-only alias, UNMAPPED unmapped.
func TestLayout(t *testing.T) {
	d := readDefs(t)
	type region struct {
		name       string
		start, end uint64
	}
	rs := []region{
		{"IVT", 0, d["NVEC"] * 4},
		{"page tables", d["PT_PML4"], d["PT_END"]},
		{"IDT", d["IDT_BASE"], d["IDT_BASE"] + d["NVEC"]*16},
		{"stack (1 KiB at least)", d["STACK_TOP"] - 0x400, d["STACK_TOP"]},
		{"image", LoadAddr, LoadAddr + 1},
	}
	for i := 1; i < len(rs); i++ {
		if rs[i-1].end > rs[i].start {
			t.Errorf("%s [%#x,%#x) overlaps %s [%#x,%#x)", rs[i-1].name, rs[i-1].start, rs[i-1].end,
				rs[i].name, rs[i].start, rs[i].end)
		}
	}
	if got := []uint64{d["PT_PDPT"] - d["PT_PML4"], d["PT_PD0"] - d["PT_PDPT"], d["PT_PD3"] - d["PT_PD0"], d["PT_END"] - d["PT_PD3"]}; !slices.Equal(got, []uint64{4096, 4096, 4096, 4096}) {
		t.Errorf("page tables are not four consecutive 4 KiB pages: %#x", got)
	}
	if d["NVEC"] != 48 || d["PIC2_VECTOR"]+8 != d["NVEC"] {
		t.Errorf("NVEC %d must cover the exceptions and both PICs (to %#x)", d["NVEC"], d["PIC2_VECTOR"]+8)
	}
	if d["RO_ALIAS"] < DefaultMemSize || d["RO_ALIAS"]>>30 != 0 || d["RO_ALIAS"]%(2<<20) != 0 {
		t.Errorf("RO_ALIAS %#x must be a 2 MiB page in PD0 above the identity-mapped RAM", d["RO_ALIAS"])
	}
	if pdpt := d["UNMAPPED"] >> 30; pdpt == 0 || pdpt == 3 {
		t.Errorf("UNMAPPED %#x falls in a mapped PDPT entry", d["UNMAPPED"])
	}
	if OutsideGPA < DefaultMemSize || (OutsideGPA >= UARTMMIOBase && OutsideGPA < UARTMMIOBase+UARTMMIOSize) {
		t.Errorf("OutsideGPA %#x is RAM or the MMIO UART", OutsideGPA)
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestGuests(t *testing.T) {
	all := All()
	if len(all) == 0 {
		t.Fatal("no guests")
	}
	seen := map[string]bool{}
	for _, g := range all {
		t.Run(g.Name, func(t *testing.T) {
			if !nameRE.MatchString(g.Name) {
				t.Errorf("name %q is not lower-case words joined by '-'", g.Name)
			}
			if seen[g.Name] {
				t.Errorf("name %q used twice", g.Name)
			}
			seen[g.Name] = true
			if g.Description == "" {
				t.Error("no description")
			}
			if len(g.Image) == 0 {
				t.Fatal("empty image")
			}
			if uint64(len(g.Image)) > g.MemSize-LoadAddr {
				t.Errorf("image of %d bytes does not fit in %d bytes of RAM above %#x", len(g.Image), g.MemSize, LoadAddr)
			}
			// Every guest starts in real mode with 16-bit offsets.
			if LoadAddr+len(g.Image) > 0x10000 {
				t.Errorf("image ends at %#x, beyond real mode's 64 KiB segment", LoadAddr+len(g.Image))
			}
			if g.Image[0] != 0xFA {
				t.Errorf("image starts with %#02x, not CLI (the prologue's first instruction)", g.Image[0])
			}
			// The VMM prints guest text as "guest <name>: <text>"; text
			// starting with a verdict word would look like one.
			for _, w := range []string{"PASS", "FAIL"} {
				if bytes.Contains(g.Image, []byte(w)) {
					t.Errorf("image contains %q, which the harness's verdict lines use", w)
				}
			}
			if g.MemSize != DefaultMemSize {
				t.Errorf("MemSize %#x, want %#x", g.MemSize, DefaultMemSize)
			}
			if g.Timeout <= 0 {
				t.Errorf("Timeout %v", g.Timeout)
			}
			checkMode(t, g)
			checkExpect(t, g)
		})
	}
	if diff := cmp.Diff(sortedCopy(sourceNames()), sortedCopy(Names())); diff != "" {
		t.Errorf("src/*.S and the guest table differ (-sources +table):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// checkMode checks that the source enters the mode the table claims.
func checkMode(t *testing.T, g Guest) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("src", g.Name+".S"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*\.set\s+MODE,\s*MODE_([A-Z0-9]+)\s*$`).FindAllSubmatch(src, -1)
	if len(m) != 1 {
		t.Fatalf("src/%s.S: want exactly one `.set MODE, MODE_X`, found %d", g.Name, len(m))
	}
	if got := strings.ToLower(string(m[0][1])); got != g.Mode {
		t.Errorf("src/%s.S enters %s, the table says %s", g.Name, got, g.Mode)
	}
}

func checkExpect(t *testing.T, g Guest) {
	t.Helper()
	e := g.Expect
	switch e.Kind {
	case ExitCode:
		if e.StopReason != "" {
			t.Errorf("exit-code outcome with a stop reason %q", e.StopReason)
		}
		if e.ExitCode >= 1<<31 {
			t.Errorf("exit code %#x does not survive isa-debug-exit's (v<<1)|1 in 32 bits", e.ExitCode)
		}
	case Stopped:
		switch e.StopReason {
		case StopTripleFault, StopOutsideMemory, StopWatchdog, StopInvalidState:
		default:
			t.Errorf("unknown stop reason %q", e.StopReason)
		}
		if e.ExitCode != 0 {
			t.Errorf("stopped outcome with an exit code %#x", e.ExitCode)
		}
	default:
		t.Errorf("invalid outcome kind %v", e.Kind)
	}
	if e.StopReason == StopWatchdog && g.Timeout > DefaultTimeout {
		t.Errorf("a guest meant to hit the watchdog has a long timeout %v", g.Timeout)
	}
	// Expected console lines are text the guest sends itself, so they are
	// in its image; only the last character may come from elsewhere (the
	// MMIO block line ends with a byte sent as a register value).
	for _, line := range e.Console {
		if !strings.HasPrefix(line, strings.SplitN(g.Name, "-", 2)[0]) {
			t.Errorf("console line %q does not start with the guest's family name", line)
		}
		if !bytes.Contains(g.Image, []byte(line[:len(line)-1])) {
			t.Errorf("console line %q is not text of the image", line)
		}
	}
}

// TestModes checks that every per-mode family runs in all three modes.
func TestModes(t *testing.T) {
	for _, f := range families() {
		for _, mode := range []string{ModeReal, ModeProt32, ModeLong64} {
			g, ok := ByName(f.name + "-" + mode)
			if !ok {
				t.Errorf("%s has no %s guest", f.name, mode)
				continue
			}
			if g.Mode != mode {
				t.Errorf("%s: Mode %q, want %q", g.Name, g.Mode, mode)
			}
		}
	}
	for _, name := range []string{"triple-fault", "outside-ram", "loop-forever"} {
		if g, ok := ByName(name); !ok || g.Expect.Kind != Stopped {
			t.Errorf("isolation case %s missing or not expected to be stopped", name)
		}
	}
}

func TestByNameAndCopies(t *testing.T) {
	for _, g := range All() {
		got, ok := ByName(g.Name)
		if !ok {
			t.Fatalf("ByName(%q) not found", g.Name)
		}
		if diff := cmp.Diff(g, got); diff != "" {
			t.Errorf("ByName(%q) differs from All (-All +ByName):\n%s", g.Name, diff)
		}
	}
	if _, ok := ByName("no-such-guest"); ok {
		t.Error("ByName found no-such-guest")
	}
	// A caller that scribbles on its copy does not change the next one.
	a, _ := ByName("io-real")
	orig := slices.Clone(a.Image)
	a.Image[0] ^= 0xFF
	a.Expect.Console[0] = "changed"
	b, _ := ByName("io-real")
	if !bytes.Equal(b.Image, orig) || b.Expect.Console[0] == "changed" {
		t.Error("modifying a returned Guest changed the package's guests")
	}
	if diff := cmp.Diff(len(All()), len(Names())); diff != "" {
		t.Error(diff)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		list    string
		want    []string
		wantErr string
	}{
		{list: "cpuid-real", want: []string{"cpuid-real"}},
		{list: "io-long64,triple-fault,io-long64", want: []string{"io-long64", "triple-fault", "io-long64"}},
		{list: "cpuid-real,nope", wantErr: `unknown guest "nope"`},
		{list: "", wantErr: `unknown guest ""`},
		{list: "cpuid-real,", wantErr: `unknown guest ""`},
	}
	for _, tt := range tests {
		gs, err := Lookup(tt.list)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Lookup(%q) error %v, want %q", tt.list, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%q): %v", tt.list, err)
			continue
		}
		var names []string
		for _, g := range gs {
			names = append(names, g.Name)
		}
		if diff := cmp.Diff(tt.want, names); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tt.list, diff)
		}
	}
}

func TestOutcomeCheck(t *testing.T) {
	pass := Outcome{Kind: ExitCode, Console: []string{"a", "b"}}
	tests := []struct {
		name    string
		want    Outcome
		got     Outcome
		wantErr string
	}{
		{"pass", pass, Outcome{Kind: ExitCode, Console: []string{"x", "a", "y", "b"}}, ""},
		{"wrong code", pass, Outcome{Kind: ExitCode, ExitCode: 5, Console: []string{"a", "b"}}, "got exit code 0x5, want exit code 0x0"},
		{"line missing", pass, Outcome{Kind: ExitCode, Console: []string{"a"}}, `console line "b" missing`},
		{"lines out of order", pass, Outcome{Kind: ExitCode, Console: []string{"b", "a"}}, `console line "b" missing`},
		{"stopped instead", pass, Outcome{Kind: Stopped, StopReason: StopWatchdog}, "got stopped: watchdog, want exit code 0x0"},
		{"stop reason", Outcome{Kind: Stopped, StopReason: StopTripleFault}, Outcome{Kind: Stopped, StopReason: StopTripleFault}, ""},
		{"wrong stop reason", Outcome{Kind: Stopped, StopReason: StopTripleFault}, Outcome{Kind: Stopped, StopReason: StopWatchdog}, "got stopped: watchdog, want stopped: triple fault"},
		{"exited instead", Outcome{Kind: Stopped, StopReason: StopOutsideMemory}, Outcome{Kind: ExitCode}, "got exit code 0x0, want stopped: outside guest memory"},
		{"invalid expectation", Outcome{}, Outcome{}, "invalid expected outcome kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.want.Check(tt.got)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
