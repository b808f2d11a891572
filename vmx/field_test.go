package vmx

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// manualFields is a transcription of SDM Vol. 3D Appendix B, Tables B-1 to
// B-15 ("Field Name, Index, Encoding"); 64-bit fields are listed once, with
// their full encoding, as the tables list "(full)" and "(high)" rows.
// Each block starts with the table's width and type as stated in its
// caption, e.g. "0000_10xx_xxxx_xxx0B" = 16-bit guest-state.
const manualFields = `
# B-1 16-bit control
Virtual-processor identifier (VPID)                     000000000B 00000000H
Posted-interrupt notification vector                    000000001B 00000002H
EPTP index                                              000000010B 00000004H
HLAT prefix size                                        000000011B 00000006H
Last PID-pointer index                                  000000100B 00000008H
# B-2 16-bit guest
Guest ES selector                                       000000000B 00000800H
Guest CS selector                                       000000001B 00000802H
Guest SS selector                                       000000010B 00000804H
Guest DS selector                                       000000011B 00000806H
Guest FS selector                                       000000100B 00000808H
Guest GS selector                                       000000101B 0000080AH
Guest LDTR selector                                     000000110B 0000080CH
Guest TR selector                                       000000111B 0000080EH
Guest interrupt status                                  000001000B 00000810H
PML index                                               000001001B 00000812H
Guest UINV                                              000001010B 00000814H
# B-3 16-bit host
Host ES selector                                        000000000B 00000C00H
Host CS selector                                        000000001B 00000C02H
Host SS selector                                        000000010B 00000C04H
Host DS selector                                        000000011B 00000C06H
Host FS selector                                        000000100B 00000C08H
Host GS selector                                        000000101B 00000C0AH
Host TR selector                                        000000110B 00000C0CH
# B-4 64-bit control
Address of I/O bitmap A                                 000000000B 00002000H
Address of I/O bitmap B                                 000000001B 00002002H
Address of MSR bitmaps                                  000000010B 00002004H
VM-exit MSR-store address                               000000011B 00002006H
VM-exit MSR-load address                                000000100B 00002008H
VM-entry MSR-load address                               000000101B 0000200AH
Executive-VMCS pointer                                  000000110B 0000200CH
PML address                                             000000111B 0000200EH
TSC offset                                              000001000B 00002010H
Virtual-APIC address                                    000001001B 00002012H
APIC-access address                                     000001010B 00002014H
Posted-interrupt descriptor address                     000001011B 00002016H
VM-function controls                                    000001100B 00002018H
EPT pointer                                             000001101B 0000201AH
EOI-exit bitmap 0                                       000001110B 0000201CH
EOI-exit bitmap 1                                       000001111B 0000201EH
EOI-exit bitmap 2                                       000010000B 00002020H
EOI-exit bitmap 3                                       000010001B 00002022H
EPTP-list address                                       000010010B 00002024H
VMREAD-bitmap address                                   000010011B 00002026H
VMWRITE-bitmap address                                  000010100B 00002028H
Virtualization-exception information address            000010101B 0000202AH
XSS-exiting bitmap                                      000010110B 0000202CH
ENCLS-exiting bitmap                                    000010111B 0000202EH
Sub-page-permission-table pointer                       000011000B 00002030H
TSC multiplier                                          000011001B 00002032H
Tertiary processor-based VM-execution controls          000011010B 00002034H
ENCLV-exiting bitmap                                    000011011B 00002036H
Low PASID directory address                             000011100B 00002038H
High PASID directory address                            000011101B 0000203AH
Shared EPT pointer                                      000011110B 0000203CH
PCONFIG-exiting bitmap                                  000011111B 0000203EH
Hypervisor-managed linear-address translation pointer   000100000B 00002040H
PID-pointer table address                               000100001B 00002042H
Secondary VM-exit controls                              000100010B 00002044H
IA32_SPEC_CTRL mask                                     000100101B 0000204AH
IA32_SPEC_CTRL shadow                                   000100110B 0000204CH
# B-5 64-bit read-only
Guest-physical address                                  000000000B 00002400H
# B-6 64-bit guest
VMCS link pointer                                       000000000B 00002800H
Guest IA32_DEBUGCTL                                     000000001B 00002802H
Guest IA32_PAT                                          000000010B 00002804H
Guest IA32_EFER                                         000000011B 00002806H
Guest IA32_PERF_GLOBAL_CTRL                             000000100B 00002808H
Guest PDPTE0                                            000000101B 0000280AH
Guest PDPTE1                                            000000110B 0000280CH
Guest PDPTE2                                            000000111B 0000280EH
Guest PDPTE3                                            000001000B 00002810H
Guest IA32_BNDCFGS                                      000001001B 00002812H
Guest IA32_RTIT_CTL                                     000001010B 00002814H
Guest IA32_LBR_CTL                                      000001011B 00002816H
Guest IA32_PKRS                                         000001100B 00002818H
# B-7 64-bit host
Host IA32_PAT                                           000000000B 00002C00H
Host IA32_EFER                                          000000001B 00002C02H
Host IA32_PERF_GLOBAL_CTRL                              000000010B 00002C04H
Host IA32_PKRS                                          000000011B 00002C06H
# B-8 32-bit control
Pin-based VM-execution controls                         000000000B 00004000H
Primary processor-based VM-execution controls           000000001B 00004002H
Exception bitmap                                        000000010B 00004004H
Page-fault error-code mask                              000000011B 00004006H
Page-fault error-code match                             000000100B 00004008H
CR3-target count                                        000000101B 0000400AH
Primary VM-exit controls                                000000110B 0000400CH
VM-exit MSR-store count                                 000000111B 0000400EH
VM-exit MSR-load count                                  000001000B 00004010H
VM-entry controls                                       000001001B 00004012H
VM-entry MSR-load count                                 000001010B 00004014H
VM-entry interruption-information field                 000001011B 00004016H
VM-entry exception error code                           000001100B 00004018H
VM-entry instruction length                             000001101B 0000401AH
TPR threshold                                           000001110B 0000401CH
Secondary processor-based VM-execution controls         000001111B 0000401EH
PLE_Gap                                                 000010000B 00004020H
PLE_Window                                              000010001B 00004022H
Instruction-timeout control                             000010010B 00004024H
# B-9 32-bit read-only
VM-instruction error                                    000000000B 00004400H
Exit reason                                             000000001B 00004402H
VM-exit interruption information                        000000010B 00004404H
VM-exit interruption error code                         000000011B 00004406H
IDT-vectoring information field                         000000100B 00004408H
IDT-vectoring error code                                000000101B 0000440AH
VM-exit instruction length                              000000110B 0000440CH
VM-exit instruction information                         000000111B 0000440EH
# B-10 32-bit guest
Guest ES limit                                          000000000B 00004800H
Guest CS limit                                          000000001B 00004802H
Guest SS limit                                          000000010B 00004804H
Guest DS limit                                          000000011B 00004806H
Guest FS limit                                          000000100B 00004808H
Guest GS limit                                          000000101B 0000480AH
Guest LDTR limit                                        000000110B 0000480CH
Guest TR limit                                          000000111B 0000480EH
Guest GDTR limit                                        000001000B 00004810H
Guest IDTR limit                                        000001001B 00004812H
Guest ES access rights                                  000001010B 00004814H
Guest CS access rights                                  000001011B 00004816H
Guest SS access rights                                  000001100B 00004818H
Guest DS access rights                                  000001101B 0000481AH
Guest FS access rights                                  000001110B 0000481CH
Guest GS access rights                                  000001111B 0000481EH
Guest LDTR access rights                                000010000B 00004820H
Guest TR access rights                                  000010001B 00004822H
Guest interruptibility state                            000010010B 00004824H
Guest activity state                                    000010011B 00004826H
Guest SMBASE                                            000010100B 00004828H
Guest IA32_SYSENTER_CS                                  000010101B 0000482AH
VMX-preemption timer value                              000010111B 0000482EH
# B-11 32-bit host
Host IA32_SYSENTER_CS                                   000000000B 00004C00H
# B-12 natural control
CR0 guest/host mask                                     000000000B 00006000H
CR4 guest/host mask                                     000000001B 00006002H
CR0 read shadow                                         000000010B 00006004H
CR4 read shadow                                         000000011B 00006006H
CR3-target value 0                                      000000100B 00006008H
CR3-target value 1                                      000000101B 0000600AH
CR3-target value 2                                      000000110B 0000600CH
CR3-target value 3                                      000000111B 0000600EH
# B-13 natural read-only
Exit qualification                                      000000000B 00006400H
I/O RCX                                                 000000001B 00006402H
I/O RSI                                                 000000010B 00006404H
I/O RDI                                                 000000011B 00006406H
I/O RIP                                                 000000100B 00006408H
Guest-linear address                                    000000101B 0000640AH
# B-14 natural guest
Guest CR0                                               000000000B 00006800H
Guest CR3                                               000000001B 00006802H
Guest CR4                                               000000010B 00006804H
Guest ES base                                           000000011B 00006806H
Guest CS base                                           000000100B 00006808H
Guest SS base                                           000000101B 0000680AH
Guest DS base                                           000000110B 0000680CH
Guest FS base                                           000000111B 0000680EH
Guest GS base                                           000001000B 00006810H
Guest LDTR base                                         000001001B 00006812H
Guest TR base                                           000001010B 00006814H
Guest GDTR base                                         000001011B 00006816H
Guest IDTR base                                         000001100B 00006818H
Guest DR7                                               000001101B 0000681AH
Guest RSP                                               000001110B 0000681CH
Guest RIP                                               000001111B 0000681EH
Guest RFLAGS                                            000010000B 00006820H
Guest pending debug exceptions                          000010001B 00006822H
Guest IA32_SYSENTER_ESP                                 000010010B 00006824H
Guest IA32_SYSENTER_EIP                                 000010011B 00006826H
Guest IA32_S_CET                                        000010100B 00006828H
Guest SSP                                               000010101B 0000682AH
Guest IA32_INTERRUPT_SSP_TABLE_ADDR                     000010110B 0000682CH
# B-15 natural host
Host CR0                                                000000000B 00006C00H
Host CR3                                                000000001B 00006C02H
Host CR4                                                000000010B 00006C04H
Host FS base                                            000000011B 00006C06H
Host GS base                                            000000100B 00006C08H
Host TR base                                            000000101B 00006C0AH
Host GDTR base                                          000000110B 00006C0CH
Host IDTR base                                          000000111B 00006C0EH
Host IA32_SYSENTER_ESP                                  000001000B 00006C10H
Host IA32_SYSENTER_EIP                                  000001001B 00006C12H
Host RSP                                                000001010B 00006C14H
Host RIP                                                000001011B 00006C16H
Host IA32_S_CET                                         000001100B 00006C18H
Host SSP                                                000001101B 00006C1AH
Host IA32_INTERRUPT_SSP_TABLE_ADDR                      000001110B 00006C1CH
`

type manualField struct {
	name     string
	index    uint32
	encoding Field
	width    Width
	typ      FieldType
}

func parseManualFields(t *testing.T) []manualField {
	t.Helper()
	blockWidth := map[string]Width{"16-bit": Width16, "64-bit": Width64, "32-bit": Width32, "natural": WidthNatural}
	blockType := map[string]FieldType{"control": TypeControl, "read-only": TypeExitInfo, "guest": TypeGuest, "host": TypeHostState}
	var out []manualField
	var w Width
	var typ FieldType
	for _, line := range strings.Split(manualFields, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			f := strings.Fields(line)
			var ok1, ok2 bool
			w, ok1 = blockWidth[f[2]]
			typ, ok2 = blockType[f[3]]
			if !ok1 || !ok2 {
				t.Fatalf("bad block header %q", line)
			}
			continue
		}
		f := strings.Fields(line)
		n := len(f)
		idx, err := strconv.ParseUint(strings.TrimSuffix(f[n-2], "B"), 2, 32)
		if err != nil {
			t.Fatalf("line %q: index: %v", line, err)
		}
		enc, err := strconv.ParseUint(strings.TrimSuffix(f[n-1], "H"), 16, 32)
		if err != nil {
			t.Fatalf("line %q: encoding: %v", line, err)
		}
		out = append(out, manualField{
			name: strings.Join(f[:n-2], " "), index: uint32(idx), encoding: Field(enc), width: w, typ: typ,
		})
	}
	return out
}

// TestFieldsMatchManual checks every entry of the package's table against
// the manual's tables: same set of fields, same names, and index, type and
// width taken from the encoding bits equal to what the manual states.
func TestFieldsMatchManual(t *testing.T) {
	manual := parseManualFields(t)
	if len(manual) != len(fieldTable) {
		t.Errorf("manual lists %d fields, package %d", len(manual), len(fieldTable))
	}
	seen := map[Field]bool{}
	for _, m := range manual {
		if seen[m.encoding] {
			t.Errorf("%s: encoding %#x listed twice", m.name, uint32(m.encoding))
		}
		seen[m.encoding] = true
		if got := m.encoding.Index(); got != m.index {
			t.Errorf("%s: index from encoding %d, manual %d", m.name, got, m.index)
		}
		if got := m.encoding.Width(); got != m.width {
			t.Errorf("%s: width from encoding %v, table %v", m.name, got, m.width)
		}
		if got := m.encoding.Type(); got != m.typ {
			t.Errorf("%s: type from encoding %v, table %v", m.name, got, m.typ)
		}
		if m.encoding.High() || !m.encoding.WellFormed() {
			t.Errorf("%s: %#x is not a well-formed full encoding", m.name, uint32(m.encoding))
		}
		if got := m.encoding.String(); got != m.name {
			t.Errorf("%#x: String() = %q, manual name %q", uint32(m.encoding), got, m.name)
		}
		if f, ok := FieldByName(m.name); !ok || f != m.encoding {
			t.Errorf("FieldByName(%q) = %#x, %v; want %#x", m.name, uint32(f), ok, uint32(m.encoding))
		}
	}
}

// TestFieldConstantsTyped parses field.go and checks that every typed field
// constant appears exactly once in fieldTable and that its Go type
// (Field16/32/64/Nat) agrees with bits 14:13 of its value. This is what
// makes the typed accessors width-safe.
func TestFieldConstantsTyped(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "field.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	typeWidth := map[string]Width{"Field16": Width16, "Field64": Width64, "Field32": Width32, "FieldNat": WidthNatural}
	inTable := map[Field]int{}
	for _, e := range fieldTable {
		inTable[e.f]++
	}
	count := 0
	for _, decl := range file.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			id, ok := vs.Type.(*ast.Ident)
			if !ok {
				continue
			}
			want, ok := typeWidth[id.Name]
			if !ok {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Errorf("%s: value is not a literal", name.Name)
					continue
				}
				v, err := strconv.ParseUint(lit.Value, 0, 32)
				if err != nil {
					t.Fatalf("%s: %v", name.Name, err)
				}
				f := Field(v)
				count++
				if f.Width() != want {
					t.Errorf("%s is a %s but its encoding %#x says %v", name.Name, id.Name, v, f.Width())
				}
				if inTable[f] != 1 {
					t.Errorf("%s (%#x) appears %d times in fieldTable, want 1", name.Name, v, inTable[f])
				}
			}
		}
	}
	if count != len(fieldTable) {
		t.Errorf("field.go declares %d typed field constants, fieldTable has %d entries", count, len(fieldTable))
	}
}

func TestFieldHighAccess(t *testing.T) {
	for _, f := range Fields() {
		if f.Width() != Width64 {
			hi := f | fieldAccessHigh
			if hi.WellFormed() || hi.Known() {
				t.Errorf("%v: high access accepted for a %v field", f, f.Width())
			}
			continue
		}
		hi := Field64(f).HighField()
		if hi != f+1 {
			t.Errorf("%v: high encoding %#x, want full+1 = %#x", f, uint32(hi), uint32(f+1))
		}
		if !hi.High() || hi.Full() != f || !hi.Known() || hi.Bits() != 32 {
			t.Errorf("%v: high encoding %#x decodes wrongly", f, uint32(hi))
		}
		if got, want := hi.String(), f.String()+" (high)"; got != want {
			t.Errorf("String(%#x) = %q, want %q", uint32(hi), got, want)
		}
	}
}

func TestFieldUnknown(t *testing.T) {
	for _, f := range []Field{0x482C, 0x0C0E, 0x2402, 0x8000, 0x1000, 0x6C1E} {
		if f.Known() {
			t.Errorf("%#x reported as known", uint32(f))
		}
		if !strings.HasPrefix(f.String(), "field ") {
			t.Errorf("String(%#x) = %q", uint32(f), f.String())
		}
	}
	if _, ok := FieldByName("Guest RIPX"); ok {
		t.Error("FieldByName found a field that does not exist")
	}
}

// mapVMCS is an Accessor over a map that keeps each field to its width, as
// the processor does (VMWRITE of a 16-bit field ignores the upper bits).
type mapVMCS map[Field]uint64

func (m mapVMCS) ReadField(f Field) (uint64, error) {
	if f.High() {
		return m[f.Full()] >> 32, nil
	}
	return m[f], nil
}

func (m mapVMCS) WriteField(f Field, v uint64) error {
	if f.Bits() < 64 {
		v &= 1<<f.Bits() - 1
	}
	m[f] = v
	return nil
}

func TestTypedAccessors(t *testing.T) {
	m := mapVMCS{}
	if err := Write16(m, VMCSGuestCSSelector, 0x1234); err != nil {
		t.Fatal(err)
	}
	if err := Write32(m, VMCSGuestCSLimit, 0xFFFFF); err != nil {
		t.Fatal(err)
	}
	if err := Write64(m, VMCSEPTPointer, 0x1234_5678_9ABC_D000); err != nil {
		t.Fatal(err)
	}
	if err := WriteNat(m, VMCSGuestRIP, 0xFFFF_8000_0000_1000); err != nil {
		t.Fatal(err)
	}
	sel, _ := Read16(m, VMCSGuestCSSelector)
	lim, _ := Read32(m, VMCSGuestCSLimit)
	eptp, _ := Read64(m, VMCSEPTPointer)
	rip, _ := ReadNat(m, VMCSGuestRIP)
	hi, _ := m.ReadField(VMCSEPTPointer.HighField())
	if sel != 0x1234 || lim != 0xFFFFF || eptp != 0x1234_5678_9ABC_D000 || rip != 0xFFFF_8000_0000_1000 || hi != 0x1234_5678 {
		t.Errorf("round trip: sel %#x lim %#x eptp %#x rip %#x hi %#x", sel, lim, eptp, rip, hi)
	}
}
