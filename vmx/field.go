package vmx

import "fmt"

// Field is the 32-bit encoding of a VMCS component, the operand of VMREAD and
// VMWRITE. Its structure (SDM 25.11.2, Table 25-21):
//
//	bit 0      access type: 0 full, 1 high (the upper 32 bits of a 64-bit field)
//	bits 9:1   index
//	bits 11:10 type: control, VM-exit information (read-only data), guest state, host state
//	bit 12     reserved, 0
//	bits 14:13 width: 16-bit, 64-bit, 32-bit, natural width
//	bits 31:15 reserved, 0
//
// Code that writes the VMCS uses the typed encodings Field16, Field32,
// Field64 and FieldNat below, so a value of the wrong width does not compile.
type Field uint32

// Encoding bit layout, SDM 25.11.2 Table 25-21.
const (
	fieldAccessHigh = 1 << 0
	fieldIndexShift = 1
	fieldIndexMask  = 0x1FF
	fieldTypeShift  = 10
	fieldTypeMask   = 0x3
	fieldWidthShift = 13
	fieldWidthMask  = 0x3
	fieldReserved   = 0xFFFF8000 | 1<<12
)

// Width is the width class in bits 14:13 of a field encoding.
type Width uint8

// Widths, SDM 25.11.2 Table 25-21.
const (
	Width16      Width = 0
	Width64      Width = 1
	Width32      Width = 2
	WidthNatural Width = 3
)

func (w Width) String() string {
	switch w {
	case Width16:
		return "16-bit"
	case Width64:
		return "64-bit"
	case Width32:
		return "32-bit"
	case WidthNatural:
		return "natural-width"
	}
	return fmt.Sprintf("width(%d)", uint8(w))
}

// FieldType is the area a field belongs to, bits 11:10 of its encoding.
type FieldType uint8

// Field types, SDM 25.11.2 Table 25-21.
const (
	TypeControl   FieldType = 0
	TypeExitInfo  FieldType = 1 // "VM-exit information", read-only data
	TypeGuest     FieldType = 2
	TypeHostState FieldType = 3
)

func (t FieldType) String() string {
	switch t {
	case TypeControl:
		return "control"
	case TypeExitInfo:
		return "read-only data"
	case TypeGuest:
		return "guest-state"
	case TypeHostState:
		return "host-state"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Width returns the width class from bits 14:13.
func (f Field) Width() Width { return Width(f >> fieldWidthShift & fieldWidthMask) }

// Type returns the area from bits 11:10.
func (f Field) Type() FieldType { return FieldType(f >> fieldTypeShift & fieldTypeMask) }

// Index returns bits 9:1.
func (f Field) Index() uint32 { return uint32(f) >> fieldIndexShift & fieldIndexMask }

// High reports whether f is the high-access encoding of a 64-bit field.
func (f Field) High() bool { return f&fieldAccessHigh != 0 }

// Full returns the full-access encoding of f (f itself unless f is High).
func (f Field) Full() Field { return f &^ fieldAccessHigh }

// Bits is the number of bits VMREAD returns for f in 64-bit mode: 32 for the
// high half of a 64-bit field, else the width of the field.
func (f Field) Bits() int {
	if f.High() {
		return 32
	}
	switch f.Width() {
	case Width16:
		return 16
	case Width32:
		return 32
	default:
		return 64
	}
}

// WellFormed reports whether f obeys the encoding rules of SDM 25.11.2: no
// reserved bit set, and high access only for 64-bit fields. It says nothing
// about whether the field exists; see Known.
func (f Field) WellFormed() bool {
	if f&fieldReserved != 0 {
		return false
	}
	return !f.High() || f.Width() == Width64
}

// Known reports whether f (full or high) is a field of SDM Appendix B.
func (f Field) Known() bool {
	_, ok := fieldName(f.Full())
	return ok && f.WellFormed()
}

// String returns the manual's name of the field ("Guest RIP", "EPT pointer
// (high)"), or a description of the encoding if the field is unknown.
func (f Field) String() string {
	if f.WellFormed() {
		if name, ok := fieldName(f.Full()); ok {
			if f.High() {
				return name + " (high)"
			}
			return name
		}
	}
	return fmt.Sprintf("field %#x (%s %s index %d)", uint32(f), f.Width(), f.Type(), f.Index())
}

// FieldByName returns the full-access encoding of the field the manual calls
// name (case-sensitive, as in Appendix B).
func FieldByName(name string) (Field, bool) {
	for _, e := range fieldTable {
		if e.name == name {
			return e.f, true
		}
	}
	return 0, false
}

// Fields returns every full-access field encoding of Appendix B known to this
// package, in table order.
func Fields() []Field {
	out := make([]Field, len(fieldTable))
	for i, e := range fieldTable {
		out[i] = e.f
	}
	return out
}

func fieldName(f Field) (string, bool) {
	for _, e := range fieldTable {
		if e.f == f {
			return e.name, true
		}
	}
	return "", false
}

// Field16 is the encoding of a 16-bit field.
type Field16 uint32

// Field32 is the encoding of a 32-bit field.
type Field32 uint32

// Field64 is the full-access encoding of a 64-bit field.
type Field64 uint32

// FieldNat is the encoding of a natural-width field (64 bits on our host).
type FieldNat uint32

// Field returns the untyped encoding.
func (f Field16) Field() Field { return Field(f) }

// Field returns the untyped encoding.
func (f Field32) Field() Field { return Field(f) }

// Field returns the untyped full-access encoding.
func (f Field64) Field() Field { return Field(f) }

// HighField returns the high-access encoding (full + 1), which reads or
// writes bits 63:32 only.
func (f Field64) HighField() Field { return Field(f) | fieldAccessHigh }

// Field returns the untyped encoding.
func (f FieldNat) Field() Field { return Field(f) }

func (f Field16) String() string  { return Field(f).String() }
func (f Field32) String() string  { return Field(f).String() }
func (f Field64) String() string  { return Field(f).String() }
func (f FieldNat) String() string { return Field(f).String() }

// Accessor reads and writes fields of the current VMCS: VMREAD/VMWRITE on a
// CPU, a map in tests, the shadow VMCS of a nested guest. Values are
// zero-extended to 64 bits.
type Accessor interface {
	ReadField(f Field) (uint64, error)
	WriteField(f Field, v uint64) error
}

// Read16 reads a 16-bit field.
func Read16(a Accessor, f Field16) (uint16, error) {
	v, err := a.ReadField(f.Field())
	return uint16(v), err
}

// Read32 reads a 32-bit field.
func Read32(a Accessor, f Field32) (uint32, error) {
	v, err := a.ReadField(f.Field())
	return uint32(v), err
}

// Read64 reads a 64-bit field with one full access.
func Read64(a Accessor, f Field64) (uint64, error) { return a.ReadField(f.Field()) }

// ReadNat reads a natural-width field.
func ReadNat(a Accessor, f FieldNat) (uint64, error) { return a.ReadField(f.Field()) }

// Write16 writes a 16-bit field.
func Write16(a Accessor, f Field16, v uint16) error { return a.WriteField(f.Field(), uint64(v)) }

// Write32 writes a 32-bit field.
func Write32(a Accessor, f Field32, v uint32) error { return a.WriteField(f.Field(), uint64(v)) }

// Write64 writes a 64-bit field with one full access.
func Write64(a Accessor, f Field64, v uint64) error { return a.WriteField(f.Field(), v) }

// WriteNat writes a natural-width field.
func WriteNat(a Accessor, f FieldNat, v uint64) error { return a.WriteField(f.Field(), v) }

// 16-bit control fields, SDM Table B-1.
const (
	VMCSVPID                  Field16 = 0x0000
	VMCSPostedInterruptVector Field16 = 0x0002
	VMCSEPTPIndex             Field16 = 0x0004
	VMCSHLATPrefixSize        Field16 = 0x0006
	VMCSLastPIDPointerIndex   Field16 = 0x0008
)

// 16-bit guest-state fields, SDM Table B-2.
const (
	VMCSGuestESSelector      Field16 = 0x0800
	VMCSGuestCSSelector      Field16 = 0x0802
	VMCSGuestSSSelector      Field16 = 0x0804
	VMCSGuestDSSelector      Field16 = 0x0806
	VMCSGuestFSSelector      Field16 = 0x0808
	VMCSGuestGSSelector      Field16 = 0x080A
	VMCSGuestLDTRSelector    Field16 = 0x080C
	VMCSGuestTRSelector      Field16 = 0x080E
	VMCSGuestInterruptStatus Field16 = 0x0810
	VMCSPMLIndex             Field16 = 0x0812
	VMCSGuestUINV            Field16 = 0x0814
)

// 16-bit host-state fields, SDM Table B-3.
const (
	VMCSHostESSelector Field16 = 0x0C00
	VMCSHostCSSelector Field16 = 0x0C02
	VMCSHostSSSelector Field16 = 0x0C04
	VMCSHostDSSelector Field16 = 0x0C06
	VMCSHostFSSelector Field16 = 0x0C08
	VMCSHostGSSelector Field16 = 0x0C0A
	VMCSHostTRSelector Field16 = 0x0C0C
)

// 64-bit control fields, SDM Table B-4 (full-access encodings; high = +1).
const (
	VMCSIOBitmapA                 Field64 = 0x2000
	VMCSIOBitmapB                 Field64 = 0x2002
	VMCSMSRBitmap                 Field64 = 0x2004
	VMCSExitMSRStoreAddr          Field64 = 0x2006
	VMCSExitMSRLoadAddr           Field64 = 0x2008
	VMCSEntryMSRLoadAddr          Field64 = 0x200A
	VMCSExecutiveVMCSPointer      Field64 = 0x200C
	VMCSPMLAddr                   Field64 = 0x200E
	VMCSTSCOffset                 Field64 = 0x2010
	VMCSVirtualAPICAddr           Field64 = 0x2012
	VMCSAPICAccessAddr            Field64 = 0x2014
	VMCSPostedInterruptDescAddr   Field64 = 0x2016
	VMCSVMFunctionControls        Field64 = 0x2018
	VMCSEPTPointer                Field64 = 0x201A
	VMCSEOIExitBitmap0            Field64 = 0x201C
	VMCSEOIExitBitmap1            Field64 = 0x201E
	VMCSEOIExitBitmap2            Field64 = 0x2020
	VMCSEOIExitBitmap3            Field64 = 0x2022
	VMCSEPTPListAddr              Field64 = 0x2024
	VMCSVMREADBitmapAddr          Field64 = 0x2026
	VMCSVMWRITEBitmapAddr         Field64 = 0x2028
	VMCSVEInfoAddr                Field64 = 0x202A
	VMCSXSSExitingBitmap          Field64 = 0x202C
	VMCSENCLSExitingBitmap        Field64 = 0x202E
	VMCSSPPTPointer               Field64 = 0x2030
	VMCSTSCMultiplier             Field64 = 0x2032
	VMCSTertiaryProcBasedControls Field64 = 0x2034
	VMCSENCLVExitingBitmap        Field64 = 0x2036
	VMCSLowPASIDDirectoryAddr     Field64 = 0x2038
	VMCSHighPASIDDirectoryAddr    Field64 = 0x203A
	VMCSSharedEPTPointer          Field64 = 0x203C
	VMCSPCONFIGExitingBitmap      Field64 = 0x203E
	VMCSHLATPointer               Field64 = 0x2040
	VMCSPIDPointerTableAddr       Field64 = 0x2042
	VMCSSecondaryExitControls     Field64 = 0x2044
	VMCSSpecCtrlMask              Field64 = 0x204A
	VMCSSpecCtrlShadow            Field64 = 0x204C
)

// 64-bit read-only data field, SDM Table B-5.
const (
	VMCSGuestPhysicalAddr Field64 = 0x2400
)

// 64-bit guest-state fields, SDM Table B-6.
const (
	VMCSLinkPointer         Field64 = 0x2800
	VMCSGuestDebugCtl       Field64 = 0x2802
	VMCSGuestPAT            Field64 = 0x2804
	VMCSGuestEFER           Field64 = 0x2806
	VMCSGuestPerfGlobalCtrl Field64 = 0x2808
	VMCSGuestPDPTE0         Field64 = 0x280A
	VMCSGuestPDPTE1         Field64 = 0x280C
	VMCSGuestPDPTE2         Field64 = 0x280E
	VMCSGuestPDPTE3         Field64 = 0x2810
	VMCSGuestBNDCFGS        Field64 = 0x2812
	VMCSGuestRTITCtl        Field64 = 0x2814
	VMCSGuestLBRCtl         Field64 = 0x2816
	VMCSGuestPKRS           Field64 = 0x2818
)

// 64-bit host-state fields, SDM Table B-7.
const (
	VMCSHostPAT            Field64 = 0x2C00
	VMCSHostEFER           Field64 = 0x2C02
	VMCSHostPerfGlobalCtrl Field64 = 0x2C04
	VMCSHostPKRS           Field64 = 0x2C06
)

// 32-bit control fields, SDM Table B-8.
const (
	VMCSPinBasedControls       Field32 = 0x4000
	VMCSProcBasedControls      Field32 = 0x4002
	VMCSExceptionBitmap        Field32 = 0x4004
	VMCSPageFaultErrorMask     Field32 = 0x4006
	VMCSPageFaultErrorMatch    Field32 = 0x4008
	VMCSCR3TargetCount         Field32 = 0x400A
	VMCSExitControls           Field32 = 0x400C
	VMCSExitMSRStoreCount      Field32 = 0x400E
	VMCSExitMSRLoadCount       Field32 = 0x4010
	VMCSEntryControls          Field32 = 0x4012
	VMCSEntryMSRLoadCount      Field32 = 0x4014
	VMCSEntryInterruptionInfo  Field32 = 0x4016
	VMCSEntryExceptionError    Field32 = 0x4018
	VMCSEntryInstructionLength Field32 = 0x401A
	VMCSTPRThreshold           Field32 = 0x401C
	VMCSProcBasedControls2     Field32 = 0x401E
	VMCSPLEGap                 Field32 = 0x4020
	VMCSPLEWindow              Field32 = 0x4022
	VMCSInstructionTimeout     Field32 = 0x4024
)

// 32-bit read-only data fields, SDM Table B-9.
const (
	VMCSInstructionError      Field32 = 0x4400
	VMCSExitReason            Field32 = 0x4402
	VMCSExitInterruptionInfo  Field32 = 0x4404
	VMCSExitInterruptionError Field32 = 0x4406
	VMCSIDTVectoringInfo      Field32 = 0x4408
	VMCSIDTVectoringError     Field32 = 0x440A
	VMCSExitInstructionLength Field32 = 0x440C
	VMCSExitInstructionInfo   Field32 = 0x440E
)

// 32-bit guest-state fields, SDM Table B-10.
const (
	VMCSGuestESLimit          Field32 = 0x4800
	VMCSGuestCSLimit          Field32 = 0x4802
	VMCSGuestSSLimit          Field32 = 0x4804
	VMCSGuestDSLimit          Field32 = 0x4806
	VMCSGuestFSLimit          Field32 = 0x4808
	VMCSGuestGSLimit          Field32 = 0x480A
	VMCSGuestLDTRLimit        Field32 = 0x480C
	VMCSGuestTRLimit          Field32 = 0x480E
	VMCSGuestGDTRLimit        Field32 = 0x4810
	VMCSGuestIDTRLimit        Field32 = 0x4812
	VMCSGuestESAccessRights   Field32 = 0x4814
	VMCSGuestCSAccessRights   Field32 = 0x4816
	VMCSGuestSSAccessRights   Field32 = 0x4818
	VMCSGuestDSAccessRights   Field32 = 0x481A
	VMCSGuestFSAccessRights   Field32 = 0x481C
	VMCSGuestGSAccessRights   Field32 = 0x481E
	VMCSGuestLDTRAccessRights Field32 = 0x4820
	VMCSGuestTRAccessRights   Field32 = 0x4822
	VMCSGuestInterruptibility Field32 = 0x4824
	VMCSGuestActivityState    Field32 = 0x4826
	VMCSGuestSMBASE           Field32 = 0x4828
	VMCSGuestSysenterCS       Field32 = 0x482A
	VMCSPreemptionTimerValue  Field32 = 0x482E
)

// 32-bit host-state field, SDM Table B-11.
const (
	VMCSHostSysenterCS Field32 = 0x4C00
)

// Natural-width control fields, SDM Table B-12.
const (
	VMCSCR0GuestHostMask FieldNat = 0x6000
	VMCSCR4GuestHostMask FieldNat = 0x6002
	VMCSCR0ReadShadow    FieldNat = 0x6004
	VMCSCR4ReadShadow    FieldNat = 0x6006
	VMCSCR3Target0       FieldNat = 0x6008
	VMCSCR3Target1       FieldNat = 0x600A
	VMCSCR3Target2       FieldNat = 0x600C
	VMCSCR3Target3       FieldNat = 0x600E
)

// Natural-width read-only data fields, SDM Table B-13.
const (
	VMCSExitQualification FieldNat = 0x6400
	VMCSIORCX             FieldNat = 0x6402
	VMCSIORSI             FieldNat = 0x6404
	VMCSIORDI             FieldNat = 0x6406
	VMCSIORIP             FieldNat = 0x6408
	VMCSGuestLinearAddr   FieldNat = 0x640A
)

// Natural-width guest-state fields, SDM Table B-14.
const (
	VMCSGuestCR0               FieldNat = 0x6800
	VMCSGuestCR3               FieldNat = 0x6802
	VMCSGuestCR4               FieldNat = 0x6804
	VMCSGuestESBase            FieldNat = 0x6806
	VMCSGuestCSBase            FieldNat = 0x6808
	VMCSGuestSSBase            FieldNat = 0x680A
	VMCSGuestDSBase            FieldNat = 0x680C
	VMCSGuestFSBase            FieldNat = 0x680E
	VMCSGuestGSBase            FieldNat = 0x6810
	VMCSGuestLDTRBase          FieldNat = 0x6812
	VMCSGuestTRBase            FieldNat = 0x6814
	VMCSGuestGDTRBase          FieldNat = 0x6816
	VMCSGuestIDTRBase          FieldNat = 0x6818
	VMCSGuestDR7               FieldNat = 0x681A
	VMCSGuestRSP               FieldNat = 0x681C
	VMCSGuestRIP               FieldNat = 0x681E
	VMCSGuestRFLAGS            FieldNat = 0x6820
	VMCSGuestPendingDebug      FieldNat = 0x6822
	VMCSGuestSysenterESP       FieldNat = 0x6824
	VMCSGuestSysenterEIP       FieldNat = 0x6826
	VMCSGuestSCET              FieldNat = 0x6828
	VMCSGuestSSP               FieldNat = 0x682A
	VMCSGuestInterruptSSPTable FieldNat = 0x682C
)

// Natural-width host-state fields, SDM Table B-15.
const (
	VMCSHostCR0               FieldNat = 0x6C00
	VMCSHostCR3               FieldNat = 0x6C02
	VMCSHostCR4               FieldNat = 0x6C04
	VMCSHostFSBase            FieldNat = 0x6C06
	VMCSHostGSBase            FieldNat = 0x6C08
	VMCSHostTRBase            FieldNat = 0x6C0A
	VMCSHostGDTRBase          FieldNat = 0x6C0C
	VMCSHostIDTRBase          FieldNat = 0x6C0E
	VMCSHostSysenterESP       FieldNat = 0x6C10
	VMCSHostSysenterEIP       FieldNat = 0x6C12
	VMCSHostRSP               FieldNat = 0x6C14
	VMCSHostRIP               FieldNat = 0x6C16
	VMCSHostSCET              FieldNat = 0x6C18
	VMCSHostSSP               FieldNat = 0x6C1A
	VMCSHostInterruptSSPTable FieldNat = 0x6C1C
)

// fieldTable is the one list of fields: every constant above with the name
// Appendix B gives it. field_test.go checks, by parsing this file, that each
// constant is listed here exactly once and that its Go type matches the width
// in its encoding bits, and checks every entry against a transcription of the
// manual's tables.
var fieldTable = [...]struct {
	f    Field
	name string
}{
	{VMCSVPID.Field(), "Virtual-processor identifier (VPID)"},
	{VMCSPostedInterruptVector.Field(), "Posted-interrupt notification vector"},
	{VMCSEPTPIndex.Field(), "EPTP index"},
	{VMCSHLATPrefixSize.Field(), "HLAT prefix size"},
	{VMCSLastPIDPointerIndex.Field(), "Last PID-pointer index"},

	{VMCSGuestESSelector.Field(), "Guest ES selector"},
	{VMCSGuestCSSelector.Field(), "Guest CS selector"},
	{VMCSGuestSSSelector.Field(), "Guest SS selector"},
	{VMCSGuestDSSelector.Field(), "Guest DS selector"},
	{VMCSGuestFSSelector.Field(), "Guest FS selector"},
	{VMCSGuestGSSelector.Field(), "Guest GS selector"},
	{VMCSGuestLDTRSelector.Field(), "Guest LDTR selector"},
	{VMCSGuestTRSelector.Field(), "Guest TR selector"},
	{VMCSGuestInterruptStatus.Field(), "Guest interrupt status"},
	{VMCSPMLIndex.Field(), "PML index"},
	{VMCSGuestUINV.Field(), "Guest UINV"},

	{VMCSHostESSelector.Field(), "Host ES selector"},
	{VMCSHostCSSelector.Field(), "Host CS selector"},
	{VMCSHostSSSelector.Field(), "Host SS selector"},
	{VMCSHostDSSelector.Field(), "Host DS selector"},
	{VMCSHostFSSelector.Field(), "Host FS selector"},
	{VMCSHostGSSelector.Field(), "Host GS selector"},
	{VMCSHostTRSelector.Field(), "Host TR selector"},

	{VMCSIOBitmapA.Field(), "Address of I/O bitmap A"},
	{VMCSIOBitmapB.Field(), "Address of I/O bitmap B"},
	{VMCSMSRBitmap.Field(), "Address of MSR bitmaps"},
	{VMCSExitMSRStoreAddr.Field(), "VM-exit MSR-store address"},
	{VMCSExitMSRLoadAddr.Field(), "VM-exit MSR-load address"},
	{VMCSEntryMSRLoadAddr.Field(), "VM-entry MSR-load address"},
	{VMCSExecutiveVMCSPointer.Field(), "Executive-VMCS pointer"},
	{VMCSPMLAddr.Field(), "PML address"},
	{VMCSTSCOffset.Field(), "TSC offset"},
	{VMCSVirtualAPICAddr.Field(), "Virtual-APIC address"},
	{VMCSAPICAccessAddr.Field(), "APIC-access address"},
	{VMCSPostedInterruptDescAddr.Field(), "Posted-interrupt descriptor address"},
	{VMCSVMFunctionControls.Field(), "VM-function controls"},
	{VMCSEPTPointer.Field(), "EPT pointer"},
	{VMCSEOIExitBitmap0.Field(), "EOI-exit bitmap 0"},
	{VMCSEOIExitBitmap1.Field(), "EOI-exit bitmap 1"},
	{VMCSEOIExitBitmap2.Field(), "EOI-exit bitmap 2"},
	{VMCSEOIExitBitmap3.Field(), "EOI-exit bitmap 3"},
	{VMCSEPTPListAddr.Field(), "EPTP-list address"},
	{VMCSVMREADBitmapAddr.Field(), "VMREAD-bitmap address"},
	{VMCSVMWRITEBitmapAddr.Field(), "VMWRITE-bitmap address"},
	{VMCSVEInfoAddr.Field(), "Virtualization-exception information address"},
	{VMCSXSSExitingBitmap.Field(), "XSS-exiting bitmap"},
	{VMCSENCLSExitingBitmap.Field(), "ENCLS-exiting bitmap"},
	{VMCSSPPTPointer.Field(), "Sub-page-permission-table pointer"},
	{VMCSTSCMultiplier.Field(), "TSC multiplier"},
	{VMCSTertiaryProcBasedControls.Field(), "Tertiary processor-based VM-execution controls"},
	{VMCSENCLVExitingBitmap.Field(), "ENCLV-exiting bitmap"},
	{VMCSLowPASIDDirectoryAddr.Field(), "Low PASID directory address"},
	{VMCSHighPASIDDirectoryAddr.Field(), "High PASID directory address"},
	{VMCSSharedEPTPointer.Field(), "Shared EPT pointer"},
	{VMCSPCONFIGExitingBitmap.Field(), "PCONFIG-exiting bitmap"},
	{VMCSHLATPointer.Field(), "Hypervisor-managed linear-address translation pointer"},
	{VMCSPIDPointerTableAddr.Field(), "PID-pointer table address"},
	{VMCSSecondaryExitControls.Field(), "Secondary VM-exit controls"},
	{VMCSSpecCtrlMask.Field(), "IA32_SPEC_CTRL mask"},
	{VMCSSpecCtrlShadow.Field(), "IA32_SPEC_CTRL shadow"},

	{VMCSGuestPhysicalAddr.Field(), "Guest-physical address"},

	{VMCSLinkPointer.Field(), "VMCS link pointer"},
	{VMCSGuestDebugCtl.Field(), "Guest IA32_DEBUGCTL"},
	{VMCSGuestPAT.Field(), "Guest IA32_PAT"},
	{VMCSGuestEFER.Field(), "Guest IA32_EFER"},
	{VMCSGuestPerfGlobalCtrl.Field(), "Guest IA32_PERF_GLOBAL_CTRL"},
	{VMCSGuestPDPTE0.Field(), "Guest PDPTE0"},
	{VMCSGuestPDPTE1.Field(), "Guest PDPTE1"},
	{VMCSGuestPDPTE2.Field(), "Guest PDPTE2"},
	{VMCSGuestPDPTE3.Field(), "Guest PDPTE3"},
	{VMCSGuestBNDCFGS.Field(), "Guest IA32_BNDCFGS"},
	{VMCSGuestRTITCtl.Field(), "Guest IA32_RTIT_CTL"},
	{VMCSGuestLBRCtl.Field(), "Guest IA32_LBR_CTL"},
	{VMCSGuestPKRS.Field(), "Guest IA32_PKRS"},

	{VMCSHostPAT.Field(), "Host IA32_PAT"},
	{VMCSHostEFER.Field(), "Host IA32_EFER"},
	{VMCSHostPerfGlobalCtrl.Field(), "Host IA32_PERF_GLOBAL_CTRL"},
	{VMCSHostPKRS.Field(), "Host IA32_PKRS"},

	{VMCSPinBasedControls.Field(), "Pin-based VM-execution controls"},
	{VMCSProcBasedControls.Field(), "Primary processor-based VM-execution controls"},
	{VMCSExceptionBitmap.Field(), "Exception bitmap"},
	{VMCSPageFaultErrorMask.Field(), "Page-fault error-code mask"},
	{VMCSPageFaultErrorMatch.Field(), "Page-fault error-code match"},
	{VMCSCR3TargetCount.Field(), "CR3-target count"},
	{VMCSExitControls.Field(), "Primary VM-exit controls"},
	{VMCSExitMSRStoreCount.Field(), "VM-exit MSR-store count"},
	{VMCSExitMSRLoadCount.Field(), "VM-exit MSR-load count"},
	{VMCSEntryControls.Field(), "VM-entry controls"},
	{VMCSEntryMSRLoadCount.Field(), "VM-entry MSR-load count"},
	{VMCSEntryInterruptionInfo.Field(), "VM-entry interruption-information field"},
	{VMCSEntryExceptionError.Field(), "VM-entry exception error code"},
	{VMCSEntryInstructionLength.Field(), "VM-entry instruction length"},
	{VMCSTPRThreshold.Field(), "TPR threshold"},
	{VMCSProcBasedControls2.Field(), "Secondary processor-based VM-execution controls"},
	{VMCSPLEGap.Field(), "PLE_Gap"},
	{VMCSPLEWindow.Field(), "PLE_Window"},
	{VMCSInstructionTimeout.Field(), "Instruction-timeout control"},

	{VMCSInstructionError.Field(), "VM-instruction error"},
	{VMCSExitReason.Field(), "Exit reason"},
	{VMCSExitInterruptionInfo.Field(), "VM-exit interruption information"},
	{VMCSExitInterruptionError.Field(), "VM-exit interruption error code"},
	{VMCSIDTVectoringInfo.Field(), "IDT-vectoring information field"},
	{VMCSIDTVectoringError.Field(), "IDT-vectoring error code"},
	{VMCSExitInstructionLength.Field(), "VM-exit instruction length"},
	{VMCSExitInstructionInfo.Field(), "VM-exit instruction information"},

	{VMCSGuestESLimit.Field(), "Guest ES limit"},
	{VMCSGuestCSLimit.Field(), "Guest CS limit"},
	{VMCSGuestSSLimit.Field(), "Guest SS limit"},
	{VMCSGuestDSLimit.Field(), "Guest DS limit"},
	{VMCSGuestFSLimit.Field(), "Guest FS limit"},
	{VMCSGuestGSLimit.Field(), "Guest GS limit"},
	{VMCSGuestLDTRLimit.Field(), "Guest LDTR limit"},
	{VMCSGuestTRLimit.Field(), "Guest TR limit"},
	{VMCSGuestGDTRLimit.Field(), "Guest GDTR limit"},
	{VMCSGuestIDTRLimit.Field(), "Guest IDTR limit"},
	{VMCSGuestESAccessRights.Field(), "Guest ES access rights"},
	{VMCSGuestCSAccessRights.Field(), "Guest CS access rights"},
	{VMCSGuestSSAccessRights.Field(), "Guest SS access rights"},
	{VMCSGuestDSAccessRights.Field(), "Guest DS access rights"},
	{VMCSGuestFSAccessRights.Field(), "Guest FS access rights"},
	{VMCSGuestGSAccessRights.Field(), "Guest GS access rights"},
	{VMCSGuestLDTRAccessRights.Field(), "Guest LDTR access rights"},
	{VMCSGuestTRAccessRights.Field(), "Guest TR access rights"},
	{VMCSGuestInterruptibility.Field(), "Guest interruptibility state"},
	{VMCSGuestActivityState.Field(), "Guest activity state"},
	{VMCSGuestSMBASE.Field(), "Guest SMBASE"},
	{VMCSGuestSysenterCS.Field(), "Guest IA32_SYSENTER_CS"},
	{VMCSPreemptionTimerValue.Field(), "VMX-preemption timer value"},

	{VMCSHostSysenterCS.Field(), "Host IA32_SYSENTER_CS"},

	{VMCSCR0GuestHostMask.Field(), "CR0 guest/host mask"},
	{VMCSCR4GuestHostMask.Field(), "CR4 guest/host mask"},
	{VMCSCR0ReadShadow.Field(), "CR0 read shadow"},
	{VMCSCR4ReadShadow.Field(), "CR4 read shadow"},
	{VMCSCR3Target0.Field(), "CR3-target value 0"},
	{VMCSCR3Target1.Field(), "CR3-target value 1"},
	{VMCSCR3Target2.Field(), "CR3-target value 2"},
	{VMCSCR3Target3.Field(), "CR3-target value 3"},

	{VMCSExitQualification.Field(), "Exit qualification"},
	{VMCSIORCX.Field(), "I/O RCX"},
	{VMCSIORSI.Field(), "I/O RSI"},
	{VMCSIORDI.Field(), "I/O RDI"},
	{VMCSIORIP.Field(), "I/O RIP"},
	{VMCSGuestLinearAddr.Field(), "Guest-linear address"},

	{VMCSGuestCR0.Field(), "Guest CR0"},
	{VMCSGuestCR3.Field(), "Guest CR3"},
	{VMCSGuestCR4.Field(), "Guest CR4"},
	{VMCSGuestESBase.Field(), "Guest ES base"},
	{VMCSGuestCSBase.Field(), "Guest CS base"},
	{VMCSGuestSSBase.Field(), "Guest SS base"},
	{VMCSGuestDSBase.Field(), "Guest DS base"},
	{VMCSGuestFSBase.Field(), "Guest FS base"},
	{VMCSGuestGSBase.Field(), "Guest GS base"},
	{VMCSGuestLDTRBase.Field(), "Guest LDTR base"},
	{VMCSGuestTRBase.Field(), "Guest TR base"},
	{VMCSGuestGDTRBase.Field(), "Guest GDTR base"},
	{VMCSGuestIDTRBase.Field(), "Guest IDTR base"},
	{VMCSGuestDR7.Field(), "Guest DR7"},
	{VMCSGuestRSP.Field(), "Guest RSP"},
	{VMCSGuestRIP.Field(), "Guest RIP"},
	{VMCSGuestRFLAGS.Field(), "Guest RFLAGS"},
	{VMCSGuestPendingDebug.Field(), "Guest pending debug exceptions"},
	{VMCSGuestSysenterESP.Field(), "Guest IA32_SYSENTER_ESP"},
	{VMCSGuestSysenterEIP.Field(), "Guest IA32_SYSENTER_EIP"},
	{VMCSGuestSCET.Field(), "Guest IA32_S_CET"},
	{VMCSGuestSSP.Field(), "Guest SSP"},
	{VMCSGuestInterruptSSPTable.Field(), "Guest IA32_INTERRUPT_SSP_TABLE_ADDR"},

	{VMCSHostCR0.Field(), "Host CR0"},
	{VMCSHostCR3.Field(), "Host CR3"},
	{VMCSHostCR4.Field(), "Host CR4"},
	{VMCSHostFSBase.Field(), "Host FS base"},
	{VMCSHostGSBase.Field(), "Host GS base"},
	{VMCSHostTRBase.Field(), "Host TR base"},
	{VMCSHostGDTRBase.Field(), "Host GDTR base"},
	{VMCSHostIDTRBase.Field(), "Host IDTR base"},
	{VMCSHostSysenterESP.Field(), "Host IA32_SYSENTER_ESP"},
	{VMCSHostSysenterEIP.Field(), "Host IA32_SYSENTER_EIP"},
	{VMCSHostRSP.Field(), "Host RSP"},
	{VMCSHostRIP.Field(), "Host RIP"},
	{VMCSHostSCET.Field(), "Host IA32_S_CET"},
	{VMCSHostSSP.Field(), "Host SSP"},
	{VMCSHostInterruptSSPTable.Field(), "Host IA32_INTERRUPT_SSP_TABLE_ADDR"},
}
