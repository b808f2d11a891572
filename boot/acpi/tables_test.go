package acpi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func lapic(uid, id uint8, flags uint32) []byte {
	return cat([]byte{madtTypeLocalAPIC, 8, uid, id}, u32(flags))
}

func x2apic(id, flags, uid uint32) []byte {
	return cat([]byte{madtTypeLocalX2APIC, 16, 0, 0}, u32(id), u32(flags), u32(uid))
}

func madt(entries ...[]byte) []byte {
	return table(SigMADT, 5, cat(u32(0xFEE00000), u32(MADTPCATCompat), cat(entries...)))
}

func TestParseMADT(t *testing.T) {
	tb := madt(
		lapic(0, 0, CPUEnabled),
		lapic(1, 1, CPUEnabled),
		lapic(2, 2, 0),                // disabled, not online-capable: not usable
		lapic(3, 3, CPUOnlineCapable), // hot-pluggable
		lapic(4, 0xFF, CPUEnabled),    // invalid ID
		x2apic(0x100, CPUEnabled, 5),
		x2apic(1, CPUEnabled, 1), // the same CPU again as x2APIC: started once
		x2apic(0xFFFFFFFF, CPUEnabled, 6),
		cat([]byte{madtTypeIOAPIC, 12, 2, 0}, u32(0xFEC00000), u32(0)),
		cat([]byte{madtTypeOverride, 10, 0, 0}, u32(2), u16(0)),
		cat([]byte{madtTypeOverride, 10, 0, 9}, u32(9), u16(INTIPolarityHigh|INTITriggerLevel)),
		cat([]byte{madtTypeNMISource, 8}, u16(INTIPolarityHigh), u32(23)),
		cat([]byte{madtTypeLocalAPICNMI, 6, AllProcessorsUID8}, u16(0), []byte{1}),
		cat([]byte{madtTypeLocalX2APICNMI, 12}, u16(0), u32(AllProcessorsUID32), []byte{1, 0, 0, 0}),
		[]byte{0x7F, 4, 0xAA, 0xBB}, // unknown type, skipped
		cat([]byte{madtTypeLocalAPICOverride, 12, 0, 0}, u64(0x1_FEE0_0000)),
		cat([]byte{madtTypeLocalAPIC, 10, 7, 7}, u32(CPUEnabled), []byte{0xEE, 0xEE}), // longer than 8: later revision
	)
	var got MADT
	if err := ParseMADT(tb, &got); err != nil {
		t.Fatal(err)
	}
	want := MADT{LocalAPICAddr: 0x1_FEE0_0000, Flags: MADTPCATCompat, NCPU: 5, NIOAPIC: 1, NOverride: 2, NNMI: 3}
	copy(want.CPUs[:], []CPU{
		{APICID: 0, ProcessorUID: 0, Flags: CPUEnabled},
		{APICID: 1, ProcessorUID: 1, Flags: CPUEnabled},
		{APICID: 3, ProcessorUID: 3, Flags: CPUOnlineCapable},
		{APICID: 0x100, ProcessorUID: 5, Flags: CPUEnabled, X2APIC: true},
		{APICID: 7, ProcessorUID: 7, Flags: CPUEnabled},
	})
	want.IOAPICs[0] = IOAPIC{ID: 2, Addr: 0xFEC00000}
	want.Overrides[0] = Override{GSI: 2}
	want.Overrides[1] = Override{Source: 9, GSI: 9, Flags: INTIPolarityHigh | INTITriggerLevel}
	copy(want.NMIs[:], []NMI{
		{Kind: NMISource, Flags: INTIPolarityHigh, GSI: 23},
		{Kind: LocalAPICNMI, ProcessorUID: AllProcessorsUID8, LINT: 1},
		{Kind: LocalX2APICNMI, ProcessorUID: AllProcessorsUID32, LINT: 1},
	})
	if d := cmp.Diff(&want, &got); d != "" {
		t.Errorf("MADT (-want +got):\n%s", d)
	}
	if !got.CPUs[0].Enabled() || got.CPUs[2].Enabled() {
		t.Errorf("Enabled() wrong for %+v / %+v", got.CPUs[0], got.CPUs[2])
	}
}

func TestParseMADTErrors(t *testing.T) {
	many := make([][]byte, MaxIOAPICs+1)
	for i := range many {
		many[i] = cat([]byte{madtTypeIOAPIC, 12, byte(i), 0}, u32(0xFEC00000), u32(uint32(i*24)))
	}
	truncatedLen := madt(lapic(0, 0, 1))
	truncatedLen[headerLength] += 4 // Length claims more than the slice holds
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"entry length zero", madt([]byte{0x7F, 0}), ErrBadEntry},
		{"entry runs past table", madt([]byte{madtTypeLocalAPIC, 8, 0, 0}), ErrBadEntry},
		{"lone type byte", madt([]byte{madtTypeLocalAPIC}), ErrBadEntry},
		{"local APIC too short", madt([]byte{madtTypeLocalAPIC, 6, 0, 0, 1, 0}), ErrBadEntry},
		{"x2APIC too short", madt(cat([]byte{madtTypeLocalX2APIC, 12, 0, 0}, u32(1), u32(1))), ErrBadEntry},
		{"override too short", madt([]byte{madtTypeOverride, 8, 0, 0, 2, 0, 0, 0}), ErrBadEntry},
		{"too many IOAPICs", madt(many...), ErrTooManyEntries},
		{"no room for fixed fields", table(SigMADT, 1, u32(0xFEE00000)), ErrBadLength},
		{"length beyond slice", truncatedLen, ErrBadLength},
		{"wrong signature", table("FACP", 1, make([]byte, 8)), ErrBadSignature},
		{"shorter than a header", []byte("APIC"), ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m MADT
			if err := ParseMADT(tt.b, &m); err != tt.err {
				t.Errorf("ParseMADT = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestMADTTooManyCPUs(t *testing.T) {
	var es [][]byte
	for i := range MaxCPUs + 3 {
		es = append(es, x2apic(uint32(i), CPUEnabled, uint32(i)))
	}
	var m MADT
	if err := ParseMADT(madt(es...), &m); err != nil {
		t.Fatal(err)
	}
	if m.NCPU != MaxCPUs || m.CPUsDropped != 3 {
		t.Errorf("NCPU %d dropped %d, want %d and 3", m.NCPU, m.CPUsDropped, MaxCPUs)
	}
}

// fadtBytes lays out a FADT body (everything after the header) of the given total length.
type fadtBuilder struct{ b [fadtMaxLen]byte }

func (f *fadtBuilder) put(off int, v []byte) { copy(f.b[off:], v) }

func (f *fadtBuilder) table(rev uint8, length int) []byte {
	return table(SigFADT, rev, f.b[HeaderSize:length])
}

func gas(space, width, access uint8, addr uint64) []byte {
	return cat([]byte{space, width, 0, access}, u64(addr))
}

// qemuPIIX4 returns the legacy fields the way QEMU's i440FX FADT fills them.
func qemuPIIX4() *fadtBuilder {
	var f fadtBuilder
	f.put(fadtFirmwareCtrl, u32(0x7FFE0000))
	f.put(fadtDSDT, u32(0x7FFE0040))
	f.put(fadtSCIInt, u16(9))
	f.put(fadtSMICmd, u32(0xB2))
	f.b[fadtACPIEnable], f.b[fadtACPIDisable] = 0xF1, 0xF0
	f.put(fadtPM1aEvtBlk, u32(0x600))
	f.put(fadtPM1aCntBlk, u32(0x604))
	f.put(fadtPMTmrBlk, u32(0x608))
	f.b[fadtPM1EvtLen], f.b[fadtPM1CntLen], f.b[fadtPMTmrLen] = 4, 2, 4
	f.b[fadtCentury] = 0x32
	f.put(fadtIAPCBootArch, u16(BootArchLegacyDevices|BootArch8042))
	f.put(fadtFlags, u32(FADTWBINVD|FADTProcC1|FADTSleepButton|FADTFixRTC|FADTResetRegSup))
	f.put(fadtResetReg, gas(SpaceSystemIO, 8, 1, 0xCF9))
	f.b[fadtResetValue] = 0x0F
	return &f
}

func TestParseFADT(t *testing.T) {
	io := func(width uint8, addr uint64) GAS { return GAS{SpaceID: SpaceSystemIO, BitWidth: width, Address: addr} }
	legacy := FADT{
		FirmwareCtrl: 0x7FFE0000, DSDT: 0x7FFE0040, SCIInterrupt: 9, SMICommand: 0xB2,
		ACPIEnable: 0xF1, ACPIDisable: 0xF0,
		PM1aEvent: io(32, 0x600), PM1aControl: io(16, 0x604), PMTimer: io(32, 0x608),
		Century: 0x32,
		Flags:   FADTWBINVD | FADTProcC1 | FADTSleepButton | FADTFixRTC | FADTResetRegSup,
	}
	rev1 := legacy
	rev1.Revision, rev1.Length = 1, fadtLenRev1
	rev3 := legacy
	rev3.Revision, rev3.Length = 3, 244
	rev3.BootArch = BootArchLegacyDevices | BootArch8042
	rev3.Reset, rev3.ResetValue, rev3.HasReset = GAS{SpaceID: SpaceSystemIO, BitWidth: 8, AccessSize: 1, Address: 0xCF9}, 0x0F, true

	xf := qemuPIIX4()
	xf.put(fadtXDSDT, u64(0x1_0000_0040))
	xf.put(fadtXPM1aEvtBlk, gas(SpaceSystemIO, 32, 2, 0x600))
	xf.put(fadtXPM1aCntBlk, gas(SpaceSystemIO, 0, 2, 0x1604)) // zero width: taken from PM1_CNT_LEN
	xf.put(fadtXPMTmrBlk, gas(SpaceSystemMemory, 32, 3, 0xFED0_0000))
	xf.put(fadtFlags, u32(FADTResetRegSup|FADTTimerValExt))
	rev6 := rev3
	rev6.Revision, rev6.Length = 6, fadtMaxLen
	rev6.DSDT = 0x1_0000_0040
	rev6.PM1aEvent = GAS{SpaceID: SpaceSystemIO, BitWidth: 32, AccessSize: 2, Address: 0x600}
	rev6.PM1aControl = GAS{SpaceID: SpaceSystemIO, BitWidth: 16, AccessSize: 2, Address: 0x1604}
	rev6.PMTimer = GAS{SpaceID: SpaceSystemMemory, BitWidth: 32, AccessSize: 3, Address: 0xFED0_0000}
	rev6.Flags = FADTResetRegSup | FADTTimerValExt

	noReset := qemuPIIX4()
	noReset.put(fadtFlags, u32(0))
	rev3NoReset := rev3
	rev3NoReset.Flags, rev3NoReset.Reset, rev3NoReset.ResetValue, rev3NoReset.HasReset = 0, GAS{}, 0, false

	badTimer := qemuPIIX4()
	badTimer.b[fadtPMTmrLen] = 3
	rev3BadTimer := rev3
	rev3BadTimer.PMTimer = GAS{}

	tests := []struct {
		name string
		b    []byte
		want FADT
	}{
		// An ACPI 1.0 table has no reset register even if the (then reserved) flag is set.
		{"revision 1", qemuPIIX4().table(1, fadtLenRev1), rev1},
		{"revision 3", qemuPIIX4().table(3, 244), rev3},
		{"revision 6 with X_ blocks", xf.table(6, fadtMaxLen), rev6},
		{"reset not supported", noReset.table(3, 244), rev3NoReset},
		{"PM_TMR_LEN not 4", badTimer.table(3, 244), rev3BadTimer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got FADT
			if err := ParseFADT(tt.b, &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("FADT (-want +got):\n%s", d)
			}
		})
	}
	var f FADT
	if err := ParseFADT(qemuPIIX4().table(3, 244)[:100], &f); err != ErrBadLength {
		t.Errorf("truncated FADT: %v, want %v", err, ErrBadLength)
	}
	if f.PMTimerBits() != 24 {
		t.Errorf("PMTimerBits without TMR_VAL_EXT = %d", f.PMTimerBits())
	}
	f.Flags = FADTTimerValExt | FADTHWReducedACPI
	if f.PMTimerBits() != 32 || !f.HardwareReduced() {
		t.Errorf("PMTimerBits with TMR_VAL_EXT = %d, HardwareReduced %v", f.PMTimerBits(), f.HardwareReduced())
	}
}

// aml wraps AML bytes in a DSDT.
func aml(b ...[]byte) []byte { return table(SigDSDT, 2, cat(b...)) }

func TestFindS5(t *testing.T) {
	s5 := []byte("_S5_")
	name := func(prefix ...byte) []byte { return cat([]byte{amlNameOp}, prefix, s5) }
	// Package(){5, 5, 0, 0} with a one-byte PkgLength, as QEMU and most firmware emit it.
	pkg := func(elems ...[]byte) []byte {
		body := cat(elems...)
		return cat([]byte{amlPackageOp, byte(2 + len(body)), byte(len(elems))}, body)
	}
	zero, one := []byte{amlZeroOp}, []byte{amlOneOp}
	b := func(v byte) []byte { return []byte{amlBytePrefix, v} }
	scope := []byte{0x10, 0x05, '\\', '_', 'S', 'B', '_'} // Scope(\_SB) noise before the name
	method := []byte{0x14, 0x08, '_', 'S', '5', '_', 0x00, 0xA4, 0x00}
	tests := []struct {
		name string
		aml  []byte
		want S5
		err  error
	}{
		{"QEMU form", aml(scope, name('\\'), pkg(zero, zero, zero, zero)), S5{0, 0}, nil},
		{"byte values", aml(name('\\'), pkg(b(5), b(5), zero, zero)), S5{5, 5}, nil},
		{"no root prefix", aml(name(), pkg(b(7), one)), S5{7, 1}, nil},
		{"word and dword", aml(name(), pkg([]byte{amlWordPrefix, 6, 0}, []byte{amlDWordPrefix, 2, 0, 0, 0})), S5{6, 2}, nil},
		{"qword", aml(name(), pkg([]byte{amlQWordPrefix, 3, 0, 0, 0, 0, 0, 0, 0}, zero)), S5{3, 0}, nil},
		{"one packed element", aml(name(), pkg([]byte{amlWordPrefix, 0x05, 0x07})), S5{5, 7}, nil},
		{"two-byte PkgLength", aml(name(), []byte{amlPackageOp, 0x40 | 8, 0, 4, amlBytePrefix, 5, amlBytePrefix, 5, 0, 0}), S5{5, 5}, nil},
		{"method named _S5_ is skipped", aml(method, name(), pkg(b(4), b(4))), S5{4, 4}, nil},
		{"string mention is skipped", aml([]byte{0x0D, '_', 'S', '5', '_', 0}, name(), pkg(one, one)), S5{1, 1}, nil},
		{"none", aml(scope, method), S5{}, ErrNoS5},
		{"value out of range", aml(name(), pkg(b(8), zero)), S5{}, ErrBadS5},
		{"ones", aml(name(), pkg([]byte{amlOnesOp}, zero)), S5{}, ErrBadS5},
		{"name reference element", aml(name(), pkg([]byte{'A', 'B', 'C', 'D'}, zero)), S5{}, ErrNoS5},
		{"empty package", aml(name(), pkg()), S5{}, ErrNoS5},
		{"PkgLength past table", aml(name(), []byte{amlPackageOp, 0x3F, 2, 0, 0}), S5{}, ErrNoS5},
		{"PkgLength shorter than itself", aml(name(), []byte{amlPackageOp, 0x01, 2, 0, 0}), S5{}, ErrNoS5},
		{"element past package end", aml(name(), []byte{amlPackageOp, 3, 2, amlWordPrefix, 5, 0}), S5{}, ErrNoS5},
		{"multi-byte PkgLength reserved bits", aml(name(), []byte{amlPackageOp, 0x40 | 0x10 | 8, 0, 2, 0, 0}), S5{}, ErrNoS5},
		{"truncated at name", aml(name()), S5{}, ErrNoS5},
		{"truncated at PkgLength", aml(name(), []byte{amlPackageOp}), S5{}, ErrNoS5},
		{"truncated multi-byte PkgLength", aml(name(), []byte{amlPackageOp, 0xC0}), S5{}, ErrNoS5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindS5(tt.aml)
			if err != tt.err || got != tt.want {
				t.Errorf("FindS5 = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
	if _, err := FindS5([]byte("DSDT")); err != ErrBadLength {
		t.Errorf("FindS5(short) = %v, want %v", err, ErrBadLength)
	}
}

func TestPkgLength(t *testing.T) {
	tests := []struct {
		b          []byte
		length, sz int
	}{
		{[]byte{0x3F}, 63, 1},
		{[]byte{0x4F, 0xFF}, 0xFFF, 2},
		{[]byte{0x81, 0x23, 0x45}, 0x45231, 3},
		{[]byte{0xC2, 0x01, 0x02, 0x03}, 0x302012, 4},
	}
	for _, tt := range tests {
		l, sz, ok := pkgLength(tt.b, 0)
		if !ok || l != tt.length || sz != tt.sz {
			t.Errorf("pkgLength(%x) = %#x, %d, %v; want %#x, %d", tt.b, l, sz, ok, tt.length, tt.sz)
		}
	}
}
