package vmx

import (
	"errors"
	"testing"
)

// fakeCPUID answers the leaves newBackend reads: extended leaves up to
// 0x8000_0008, 39 physical address bits, RDTSCP and INVPCID present.
func fakeCPUID(leaf, _ uint32) (a, b, c, d uint32) {
	switch leaf {
	case 0:
		return 0xD, 0, 0, 0
	case 7:
		return 0, cpuid7EBXINVPCID, 0, 0
	case 0x80000000:
		return 0x80000008, 0, 0, 0
	case 0x80000001:
		return 0, 0, 0, cpuidExtEDXRDTSCP
	case 0x80000008:
		return 39, 0, 0, 0
	}
	return 0, 0, 0, 0
}

func TestBackendControls(t *testing.T) {
	required := Controls{
		Pin:   PinExternalInterruptExiting,
		Proc:  ProcHLTExiting | ProcUseIOBitmaps | ProcUseMSRBitmaps | ProcUseTSCOffsetting | ProcActivateSecondary | ProcMWAITExiting | ProcMONITORExiting,
		Proc2: Proc2EnableEPT | Proc2UnrestrictedGuest,
		Exit:  ExitHostAddressSpaceSize | ExitSaveEFER | ExitLoadEFER | ExitSavePAT | ExitLoadPAT,
		Entry: EntryLoadEFER | EntryLoadPAT,
	}
	tests := []struct {
		name       string
		msrs       MSRMap
		optional   Controls // optional controls the CPU has, so they must be on
		notWanted  Controls // controls that must stay off
		wantErr    error
		wantRDTSCP bool
	}{
		{
			name: "bochs skylake_x", msrs: bochsSkylakeXMSRs(),
			optional:  Controls{Pin: PinNMIExiting | PinPreemptionTimer, Proc2: Proc2EnableVPID | Proc2EnableRDTSCP | Proc2EnableINVPCID, Exit: ExitSaveDebugControls, Entry: EntryLoadDebugControls},
			notWanted: Controls{Proc: ProcRDTSCExiting | ProcInterruptWindowExiting | ProcCR3LoadExiting | ProcCR3StoreExiting | ProcUnconditionalIOExiting, Exit: ExitAckInterruptOnExit, Entry: EntryIA32eModeGuest},
		},
		{
			name: "sandy bridge", msrs: sandyBridgeMSRs(),
			optional:  Controls{Pin: PinNMIExiting | PinPreemptionTimer, Proc2: Proc2EnableVPID | Proc2EnableRDTSCP},
			notWanted: Controls{Proc: ProcCR3LoadExiting | ProcCR3StoreExiting, Exit: ExitAckInterruptOnExit},
		},
		{name: "penryn: no EPT, no unrestricted guest", msrs: penrynMSRs(), wantErr: ErrNoVMX},
	}
	for _, tt := range tests {
		caps, err := ReadCaps(tt.msrs)
		if err != nil {
			t.Fatalf("%s: ReadCaps: %v", tt.name, err)
		}
		b, err := newBackend(nil, caps, fakeCPUID)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: newBackend error %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: newBackend: %v", tt.name, err)
		}
		got := b.Controls()
		for _, c := range []struct {
			set       ControlSet
			got, want uint32
			no        uint32
			allowed   Allowed
		}{
			{SetPin, got.Pin, required.Pin | tt.optional.Pin, tt.notWanted.Pin, caps.Pin},
			{SetProc, got.Proc, required.Proc | tt.optional.Proc, tt.notWanted.Proc, caps.Proc},
			{SetProc2, got.Proc2, required.Proc2 | tt.optional.Proc2, tt.notWanted.Proc2, caps.Proc2},
			{SetExit, got.Exit, required.Exit | tt.optional.Exit, tt.notWanted.Exit, caps.Exit},
			{SetEntry, got.Entry, required.Entry | tt.optional.Entry, tt.notWanted.Entry, caps.Entry},
		} {
			if missing := c.want &^ c.got; missing != 0 {
				t.Errorf("%s: %v controls %#x lack %#x", tt.name, c.set, c.got, missing)
			}
			if extra := c.got & c.no; extra != 0 {
				t.Errorf("%s: %v controls %#x have unwanted %#x", tt.name, c.set, c.got, extra)
			}
			if c.got&c.allowed.Must1 != c.allowed.Must1 || c.got&^c.allowed.May1 != 0 {
				t.Errorf("%s: %v controls %#x outside the allowed settings %+v", tt.name, c.set, c.got, c.allowed)
			}
		}
		if b.physBits != 39 || b.rdtscp != true {
			t.Errorf("%s: physBits %d rdtscp %v, want 39 true", tt.name, b.physBits, b.rdtscp)
		}
	}
}

// A CPU without RDTSCP must not get "enable RDTSCP" (VM entry checks only
// the capability MSR, but the guest would then see an instruction CPUID
// does not announce).
func TestBackendNoRDTSCP(t *testing.T) {
	caps, err := ReadCaps(bochsSkylakeXMSRs())
	if err != nil {
		t.Fatal(err)
	}
	noRDTSCP := func(leaf, sub uint32) (a, b, c, d uint32) {
		a, b, c, d = fakeCPUID(leaf, sub)
		if leaf == 0x80000001 {
			d = 0
		}
		return
	}
	b, err := newBackend(nil, caps, noRDTSCP)
	if err != nil {
		t.Fatal(err)
	}
	if b.Controls().Proc2&Proc2EnableRDTSCP != 0 || b.rdtscp {
		t.Errorf("enable RDTSCP set without RDTSCP: %#x", b.Controls().Proc2)
	}
}

// The guest never sees an instruction that would raise #UD in VMX
// non-root operation: INVPCID without "enable INVPCID" (Sandy Bridge has
// neither), RDTSCP and RDPID without "enable RDTSCP", and the WAITPKG
// instructions, whose control the backend never sets.
func TestHiddenCPUID(t *testing.T) {
	noRDTSCP := func(leaf, sub uint32) (a, b, c, d uint32) {
		a, b, c, d = fakeCPUID(leaf, sub)
		if leaf == 0x80000001 {
			d = 0
		}
		return
	}
	tests := []struct {
		name               string
		msrs               MSRMap
		cpuid              func(leaf, sub uint32) (a, b, c, d uint32)
		want7EBX, want7ECX uint32
		wantExtEDX         uint32
		wantINVPCIDControl bool
	}{
		{"skylake", bochsSkylakeXMSRs(), fakeCPUID, 0, cpuid7ECXWAITPKG, 0, true},
		{"sandy bridge", sandyBridgeMSRs(), fakeCPUID, cpuid7EBXINVPCID, cpuid7ECXWAITPKG, 0, false},
		{"skylake without RDTSCP", bochsSkylakeXMSRs(), noRDTSCP, 0, cpuid7ECXWAITPKG | cpuid7ECXRDPID, cpuidExtEDXRDTSCP, true},
	}
	for _, tt := range tests {
		caps, err := ReadCaps(tt.msrs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newBackend(nil, caps, tt.cpuid)
		if err != nil {
			t.Fatal(err)
		}
		if _, bx, c, _ := b.HiddenCPUID(7, 0); bx != tt.want7EBX || c != tt.want7ECX {
			t.Errorf("%s: leaf 7 hides EBX %#x ECX %#x, want %#x %#x", tt.name, bx, c, tt.want7EBX, tt.want7ECX)
		}
		if _, _, _, d := b.HiddenCPUID(0x80000001, 0); d != tt.wantExtEDX {
			t.Errorf("%s: leaf 0x80000001 hides EDX %#x, want %#x", tt.name, d, tt.wantExtEDX)
		}
		if got := b.Controls().Proc2&Proc2EnableINVPCID != 0; got != tt.wantINVPCIDControl {
			t.Errorf("%s: enable INVPCID = %v, want %v", tt.name, got, tt.wantINVPCIDControl)
		}
	}
}

func TestBackendVMXDisabled(t *testing.T) {
	m := sandyBridgeMSRs()
	m[MSRFeatureControl] = FeatureControlLock // locked, VMX off
	caps, err := ReadCaps(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newBackend(nil, caps, fakeCPUID); !errors.Is(err, ErrVMXDisabled) {
		t.Errorf("newBackend with VMX locked off: %v, want ErrVMXDisabled", err)
	}
}

func TestPreemptionValue(t *testing.T) {
	for _, tt := range []struct {
		rate uint8
		want uint64
	}{{0, 1 << 20}, {5, 1 << 15}, {31, 1}} {
		if got := preemptionValue(tt.rate); got != tt.want {
			t.Errorf("preemptionValue(%d) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

func TestPutRevisionAndTSSBase(t *testing.T) {
	p := make([]byte, 8)
	putRevision(p, 0x8000002b)
	if p[0] != 0x2b || p[3] != 0 {
		t.Errorf("putRevision: % x, want 2b 00 00 00 (bit 31 clear)", p[:4])
	}
	// The platform's TSS descriptor (boot/cpusetup.go) for base
	// 0xffff_8000_1234_5678, limit 0x67.
	base, limit := uint64(0xffff_8000_1234_5678), uint64(0x67)
	lo := limit&0xFFFF | (base&0xFFFFFF)<<16 | 0x89<<40 | (limit>>16&0xF)<<48 | (base>>24&0xFF)<<56
	d := make([]byte, 16)
	for i := 0; i < 8; i++ {
		d[i], d[8+i] = byte(lo>>(8*i)), byte((base>>32)>>(8*i))
	}
	if got := tssBase(d); got != base {
		t.Errorf("tssBase = %#x, want %#x", got, base)
	}
}
