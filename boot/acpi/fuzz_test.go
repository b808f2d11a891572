package acpi

import "testing"

func FuzzParseRSDP(f *testing.F) {
	f.Add(rsdp(0, 0x1000, 0))
	f.Add(rsdp(2, 0x1000, 0x2000))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRSDP(b)
		if err == nil && r.Revision < 2 && r.XSDTAddr != 0 {
			t.Fatalf("ACPI 1.0 RSDP with an XSDT address: %+v", r)
		}
	})
}

// FuzzReadRoot places fuzzed bytes as an XSDT or RSDT in memory that also holds one valid table.
func FuzzReadRoot(f *testing.F) {
	f.Add(table(SigXSDT, 1, cat(u64(0x1000), u64(0))), true)
	f.Add(table(SigRSDT, 1, cat(u32(0x1000), u32(0xFFFFFFFC))), false)
	f.Fuzz(func(t *testing.T, root []byte, x bool) {
		m := &fakeMem{b: make([]byte, 0x4000)}
		copy(m.b[0x1000:], table(SigMADT, 1, make([]byte, 8)))
		copy(m.b[0x2000:], root)
		r := RSDP{RSDTAddr: 0x2000}
		if x {
			r = RSDP{Revision: 2, XSDTAddr: 0x2000}
		}
		var ts Tables
		if err := ReadRoot(m, r, &ts); err == nil {
			for _, ref := range ts.List() {
				if ref.Addr == 0 {
					t.Fatalf("null table address listed: %+v", ts.List())
				}
			}
		}
	})
}

// fix makes a fuzzed table's Length field match its size where possible, so the fuzzer explores
// entries rather than only the header check.
func fix(b []byte) []byte {
	if len(b) >= HeaderSize {
		b[4], b[5], b[6], b[7] = byte(len(b)), byte(len(b)>>8), byte(len(b)>>16), byte(len(b)>>24)
	}
	return b
}

func FuzzParseMADT(f *testing.F) {
	f.Add(madt(lapic(0, 0, 1), x2apic(5, 1, 5), cat([]byte{madtTypeIOAPIC, 12, 2, 0}, u32(0xFEC00000), u32(0))))
	f.Add(madt(cat([]byte{madtTypeLocalAPICOverride, 12, 0, 0}, u64(1)), []byte{madtTypeLocalX2APICNMI, 12}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m MADT
		if err := ParseMADT(fix(b), &m); err != nil {
			return
		}
		seen := map[uint32]bool{}
		for _, c := range m.CPUList() {
			if seen[c.APICID] || c.Flags&(CPUEnabled|CPUOnlineCapable) == 0 {
				t.Fatalf("CPU %+v listed twice or unusable", c)
			}
			seen[c.APICID] = true
		}
	})
}

func FuzzParseFADT(f *testing.F) {
	f.Add(qemuPIIX4().table(1, fadtLenRev1))
	f.Add(qemuPIIX4().table(3, 244))
	f.Add(qemuPIIX4().table(6, fadtMaxLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fa FADT
		if err := ParseFADT(fix(b), &fa); err != nil {
			return
		}
		if fa.HasReset && (fa.Length < fadtLenResetReg || !fa.Reset.Present()) {
			t.Fatalf("reset register claimed in a %d-byte FADT: %+v", fa.Length, fa.Reset)
		}
		if fa.Revision < fadtRevBootArch && fa.BootArch != 0 {
			t.Fatalf("IAPC_BOOT_ARCH read from a revision %d FADT", fa.Revision)
		}
	})
}

func FuzzFindS5(f *testing.F) {
	f.Add(aml([]byte{amlNameOp, '\\', '_', 'S', '5', '_', amlPackageOp, 6, 4, 0, 0, 0, 0}))
	f.Add(aml([]byte{amlNameOp, '_', 'S', '5', '_', amlPackageOp, 0x40 | 8, 0, 2, amlBytePrefix, 5, amlWordPrefix, 5, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := FindS5(b)
		if err == nil && (s.SLPTypA > maxSleepType || s.SLPTypB > maxSleepType) {
			t.Fatalf("sleep type out of range: %+v", s)
		}
	})
}

func TestNoAllocs(t *testing.T) {
	m := newMem()
	copy(m.b[0xF0000:], rsdp(2, 0x21000, 0x20000))
	copy(m.b[0x10000:], madt(lapic(0, 0, 1), lapic(1, 1, 1)))
	copy(m.b[0x11000:], qemuPIIX4().table(3, 244))
	copy(m.b[0x12000:], aml([]byte{amlNameOp, '_', 'S', '5', '_', amlPackageOp, 4, 2, 0, 0}))
	copy(m.b[0x20000:], table(SigXSDT, 1, cat(u64(0x10000), u64(0x11000), u64(0x12000))))
	empty := &fakeMem{}
	var (
		ts   Tables
		md   MADT
		fa   FADT
		fail int
	)
	allocs := testing.AllocsPerRun(10, func() {
		r, err := FindRSDP(m, nil)
		if err != nil {
			fail++
		}
		if err := ReadRoot(m, r, &ts); err != nil {
			fail++
		}
		a, _ := ts.Find(SigMADT, 0)
		b, err := Load(m, a, SigMADT)
		if err != nil || ParseMADT(b, &md) != nil {
			fail++
		}
		a, _ = ts.Find(SigFADT, 0)
		if b, err = Load(m, a, SigFADT); err != nil || ParseFADT(b, &fa) != nil {
			fail++
		}
		if b, err = Load(m, 0x12000, SigDSDT); err != nil {
			fail++
		}
		if _, err := FindS5(b); err != nil {
			fail++
		}
		// Error paths too.
		if _, err := FindRSDP(empty, nil); err == nil {
			fail++
		}
		if _, err := Load(m, 0x30000, SigMADT); err == nil {
			fail++
		}
	})
	if fail != 0 {
		t.Fatalf("%d operations failed", fail)
	}
	if allocs != 0 {
		t.Errorf("ACPI parsing allocates %v times per run", allocs)
	}
}
