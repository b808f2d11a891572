package svm

import (
	"reflect"
	"testing"
	"unsafe"
)

type fieldLayout struct {
	name       string // Go field, "Control.X" or "Save.X"
	off, size  uintptr
	manualOff  uintptr // absolute VMCB offset from the manual
	manualSize uintptr
}

// vmcbLayout lists every named field with the offset and size given in APM
// vol. 2 appendix B. Control area rows are table B-1; state save area rows
// are table B-2, whose offsets are relative to the save area at 400h.
func vmcbLayout() []fieldLayout {
	var c ControlArea
	var s SaveArea
	ctl := func(name string, off, size, mOff, mSize uintptr) fieldLayout {
		return fieldLayout{"Control." + name, off, size, mOff, mSize}
	}
	sav := func(name string, off, size, mOff, mSize uintptr) fieldLayout {
		return fieldLayout{"Save." + name, SaveAreaOffset + off, size, 0x400 + mOff, mSize}
	}
	return []fieldLayout{
		// Table B-1, VMCB Layout, Control Area.
		ctl("InterceptCR", unsafe.Offsetof(c.InterceptCR), unsafe.Sizeof(c.InterceptCR), 0x000, 4),
		ctl("InterceptDR", unsafe.Offsetof(c.InterceptDR), unsafe.Sizeof(c.InterceptDR), 0x004, 4),
		ctl("InterceptExceptions", unsafe.Offsetof(c.InterceptExceptions), unsafe.Sizeof(c.InterceptExceptions), 0x008, 4),
		ctl("InterceptMisc1", unsafe.Offsetof(c.InterceptMisc1), unsafe.Sizeof(c.InterceptMisc1), 0x00c, 4),
		ctl("InterceptMisc2", unsafe.Offsetof(c.InterceptMisc2), unsafe.Sizeof(c.InterceptMisc2), 0x010, 4),
		ctl("InterceptMisc3", unsafe.Offsetof(c.InterceptMisc3), unsafe.Sizeof(c.InterceptMisc3), 0x014, 4),
		ctl("Reserved018", unsafe.Offsetof(c.Reserved018), unsafe.Sizeof(c.Reserved018), 0x018, 0x3c-0x18),
		ctl("PauseFilterThreshold", unsafe.Offsetof(c.PauseFilterThreshold), unsafe.Sizeof(c.PauseFilterThreshold), 0x03c, 2),
		ctl("PauseFilterCount", unsafe.Offsetof(c.PauseFilterCount), unsafe.Sizeof(c.PauseFilterCount), 0x03e, 2),
		ctl("IOPMBasePA", unsafe.Offsetof(c.IOPMBasePA), unsafe.Sizeof(c.IOPMBasePA), 0x040, 8),
		ctl("MSRPMBasePA", unsafe.Offsetof(c.MSRPMBasePA), unsafe.Sizeof(c.MSRPMBasePA), 0x048, 8),
		ctl("TSCOffset", unsafe.Offsetof(c.TSCOffset), unsafe.Sizeof(c.TSCOffset), 0x050, 8),
		ctl("GuestASID", unsafe.Offsetof(c.GuestASID), unsafe.Sizeof(c.GuestASID), 0x058, 4),
		ctl("TLBControl", unsafe.Offsetof(c.TLBControl), unsafe.Sizeof(c.TLBControl), 0x05c, 1), // 058h bits 39:32
		ctl("Reserved05D", unsafe.Offsetof(c.Reserved05D), unsafe.Sizeof(c.Reserved05D), 0x05d, 3),
		ctl("VIntr", unsafe.Offsetof(c.VIntr), unsafe.Sizeof(c.VIntr), 0x060, 8),
		ctl("InterruptShadow", unsafe.Offsetof(c.InterruptShadow), unsafe.Sizeof(c.InterruptShadow), 0x068, 8),
		ctl("ExitCode", unsafe.Offsetof(c.ExitCode), unsafe.Sizeof(c.ExitCode), 0x070, 8),
		ctl("ExitInfo1", unsafe.Offsetof(c.ExitInfo1), unsafe.Sizeof(c.ExitInfo1), 0x078, 8),
		ctl("ExitInfo2", unsafe.Offsetof(c.ExitInfo2), unsafe.Sizeof(c.ExitInfo2), 0x080, 8),
		ctl("ExitIntInfo", unsafe.Offsetof(c.ExitIntInfo), unsafe.Sizeof(c.ExitIntInfo), 0x088, 8),
		ctl("NestedCtl", unsafe.Offsetof(c.NestedCtl), unsafe.Sizeof(c.NestedCtl), 0x090, 8),
		ctl("AVICAPICBar", unsafe.Offsetof(c.AVICAPICBar), unsafe.Sizeof(c.AVICAPICBar), 0x098, 8),
		ctl("GHCBPA", unsafe.Offsetof(c.GHCBPA), unsafe.Sizeof(c.GHCBPA), 0x0a0, 8),
		ctl("EventInj", unsafe.Offsetof(c.EventInj), unsafe.Sizeof(c.EventInj), 0x0a8, 8),
		ctl("NCR3", unsafe.Offsetof(c.NCR3), unsafe.Sizeof(c.NCR3), 0x0b0, 8),
		ctl("VirtExt", unsafe.Offsetof(c.VirtExt), unsafe.Sizeof(c.VirtExt), 0x0b8, 8),
		ctl("CleanBits", unsafe.Offsetof(c.CleanBits), unsafe.Sizeof(c.CleanBits), 0x0c0, 4),
		ctl("Reserved0C4", unsafe.Offsetof(c.Reserved0C4), unsafe.Sizeof(c.Reserved0C4), 0x0c4, 4),
		ctl("NRIP", unsafe.Offsetof(c.NRIP), unsafe.Sizeof(c.NRIP), 0x0c8, 8),
		ctl("NumBytesFetched", unsafe.Offsetof(c.NumBytesFetched), unsafe.Sizeof(c.NumBytesFetched), 0x0d0, 1),
		ctl("GuestInstrBytes", unsafe.Offsetof(c.GuestInstrBytes), unsafe.Sizeof(c.GuestInstrBytes), 0x0d1, 15),
		ctl("AVICBackingPage", unsafe.Offsetof(c.AVICBackingPage), unsafe.Sizeof(c.AVICBackingPage), 0x0e0, 8),
		ctl("Reserved0E8", unsafe.Offsetof(c.Reserved0E8), unsafe.Sizeof(c.Reserved0E8), 0x0e8, 8),
		ctl("AVICLogicalTable", unsafe.Offsetof(c.AVICLogicalTable), unsafe.Sizeof(c.AVICLogicalTable), 0x0f0, 8),
		ctl("AVICPhysicalTable", unsafe.Offsetof(c.AVICPhysicalTable), unsafe.Sizeof(c.AVICPhysicalTable), 0x0f8, 8),
		ctl("Reserved100", unsafe.Offsetof(c.Reserved100), unsafe.Sizeof(c.Reserved100), 0x100, 8),
		ctl("VMSAPointer", unsafe.Offsetof(c.VMSAPointer), unsafe.Sizeof(c.VMSAPointer), 0x108, 8),
		ctl("VMGExitRAX", unsafe.Offsetof(c.VMGExitRAX), unsafe.Sizeof(c.VMGExitRAX), 0x110, 8),
		ctl("VMGExitCPL", unsafe.Offsetof(c.VMGExitCPL), unsafe.Sizeof(c.VMGExitCPL), 0x118, 1),
		ctl("Reserved119", unsafe.Offsetof(c.Reserved119), unsafe.Sizeof(c.Reserved119), 0x119, 7),
		ctl("BusLockCounter", unsafe.Offsetof(c.BusLockCounter), unsafe.Sizeof(c.BusLockCounter), 0x120, 2),
		ctl("Reserved122", unsafe.Offsetof(c.Reserved122), unsafe.Sizeof(c.Reserved122), 0x122, 0x3e0-0x122),
		ctl("HostReserved", unsafe.Offsetof(c.HostReserved), unsafe.Sizeof(c.HostReserved), 0x3e0, 0x20),

		// Table B-2, VMCB Layout, State Save Area (offsets from 400h).
		sav("ES", unsafe.Offsetof(s.ES), unsafe.Sizeof(s.ES), 0x000, 16),
		sav("CS", unsafe.Offsetof(s.CS), unsafe.Sizeof(s.CS), 0x010, 16),
		sav("SS", unsafe.Offsetof(s.SS), unsafe.Sizeof(s.SS), 0x020, 16),
		sav("DS", unsafe.Offsetof(s.DS), unsafe.Sizeof(s.DS), 0x030, 16),
		sav("FS", unsafe.Offsetof(s.FS), unsafe.Sizeof(s.FS), 0x040, 16),
		sav("GS", unsafe.Offsetof(s.GS), unsafe.Sizeof(s.GS), 0x050, 16),
		sav("GDTR", unsafe.Offsetof(s.GDTR), unsafe.Sizeof(s.GDTR), 0x060, 16),
		sav("LDTR", unsafe.Offsetof(s.LDTR), unsafe.Sizeof(s.LDTR), 0x070, 16),
		sav("IDTR", unsafe.Offsetof(s.IDTR), unsafe.Sizeof(s.IDTR), 0x080, 16),
		sav("TR", unsafe.Offsetof(s.TR), unsafe.Sizeof(s.TR), 0x090, 16),
		sav("Reserved0A0", unsafe.Offsetof(s.Reserved0A0), unsafe.Sizeof(s.Reserved0A0), 0x0a0, 0xca-0xa0),
		sav("VMPL", unsafe.Offsetof(s.VMPL), unsafe.Sizeof(s.VMPL), 0x0ca, 1),
		sav("CPL", unsafe.Offsetof(s.CPL), unsafe.Sizeof(s.CPL), 0x0cb, 1),
		sav("Reserved0CC", unsafe.Offsetof(s.Reserved0CC), unsafe.Sizeof(s.Reserved0CC), 0x0cc, 4),
		sav("EFER", unsafe.Offsetof(s.EFER), unsafe.Sizeof(s.EFER), 0x0d0, 8),
		sav("Reserved0D8", unsafe.Offsetof(s.Reserved0D8), unsafe.Sizeof(s.Reserved0D8), 0x0d8, 0x148-0xd8),
		sav("CR4", unsafe.Offsetof(s.CR4), unsafe.Sizeof(s.CR4), 0x148, 8),
		sav("CR3", unsafe.Offsetof(s.CR3), unsafe.Sizeof(s.CR3), 0x150, 8),
		sav("CR0", unsafe.Offsetof(s.CR0), unsafe.Sizeof(s.CR0), 0x158, 8),
		sav("DR7", unsafe.Offsetof(s.DR7), unsafe.Sizeof(s.DR7), 0x160, 8),
		sav("DR6", unsafe.Offsetof(s.DR6), unsafe.Sizeof(s.DR6), 0x168, 8),
		sav("RFLAGS", unsafe.Offsetof(s.RFLAGS), unsafe.Sizeof(s.RFLAGS), 0x170, 8),
		sav("RIP", unsafe.Offsetof(s.RIP), unsafe.Sizeof(s.RIP), 0x178, 8),
		sav("Reserved180", unsafe.Offsetof(s.Reserved180), unsafe.Sizeof(s.Reserved180), 0x180, 0x1d8-0x180),
		sav("RSP", unsafe.Offsetof(s.RSP), unsafe.Sizeof(s.RSP), 0x1d8, 8),
		sav("SCET", unsafe.Offsetof(s.SCET), unsafe.Sizeof(s.SCET), 0x1e0, 8),
		sav("SSP", unsafe.Offsetof(s.SSP), unsafe.Sizeof(s.SSP), 0x1e8, 8),
		sav("ISSTAddr", unsafe.Offsetof(s.ISSTAddr), unsafe.Sizeof(s.ISSTAddr), 0x1f0, 8),
		sav("RAX", unsafe.Offsetof(s.RAX), unsafe.Sizeof(s.RAX), 0x1f8, 8),
		sav("STAR", unsafe.Offsetof(s.STAR), unsafe.Sizeof(s.STAR), 0x200, 8),
		sav("LSTAR", unsafe.Offsetof(s.LSTAR), unsafe.Sizeof(s.LSTAR), 0x208, 8),
		sav("CSTAR", unsafe.Offsetof(s.CSTAR), unsafe.Sizeof(s.CSTAR), 0x210, 8),
		sav("SFMASK", unsafe.Offsetof(s.SFMASK), unsafe.Sizeof(s.SFMASK), 0x218, 8),
		sav("KernelGSBase", unsafe.Offsetof(s.KernelGSBase), unsafe.Sizeof(s.KernelGSBase), 0x220, 8),
		sav("SysenterCS", unsafe.Offsetof(s.SysenterCS), unsafe.Sizeof(s.SysenterCS), 0x228, 8),
		sav("SysenterESP", unsafe.Offsetof(s.SysenterESP), unsafe.Sizeof(s.SysenterESP), 0x230, 8),
		sav("SysenterEIP", unsafe.Offsetof(s.SysenterEIP), unsafe.Sizeof(s.SysenterEIP), 0x238, 8),
		sav("CR2", unsafe.Offsetof(s.CR2), unsafe.Sizeof(s.CR2), 0x240, 8),
		sav("Reserved248", unsafe.Offsetof(s.Reserved248), unsafe.Sizeof(s.Reserved248), 0x248, 0x268-0x248),
		sav("GPAT", unsafe.Offsetof(s.GPAT), unsafe.Sizeof(s.GPAT), 0x268, 8),
		sav("DBGCTL", unsafe.Offsetof(s.DBGCTL), unsafe.Sizeof(s.DBGCTL), 0x270, 8),
		sav("BRFrom", unsafe.Offsetof(s.BRFrom), unsafe.Sizeof(s.BRFrom), 0x278, 8),
		sav("BRTo", unsafe.Offsetof(s.BRTo), unsafe.Sizeof(s.BRTo), 0x280, 8),
		sav("LastExcpFrom", unsafe.Offsetof(s.LastExcpFrom), unsafe.Sizeof(s.LastExcpFrom), 0x288, 8),
		sav("LastExcpTo", unsafe.Offsetof(s.LastExcpTo), unsafe.Sizeof(s.LastExcpTo), 0x290, 8),
		sav("Reserved298", unsafe.Offsetof(s.Reserved298), unsafe.Sizeof(s.Reserved298), 0x298, 0x2e0-0x298),
		sav("SpecCtrl", unsafe.Offsetof(s.SpecCtrl), unsafe.Sizeof(s.SpecCtrl), 0x2e0, 8),
		sav("Reserved2E8", unsafe.Offsetof(s.Reserved2E8), unsafe.Sizeof(s.Reserved2E8), 0x2e8, 0xc00-0x2e8),
	}
}

func TestVMCBLayoutMatchesManual(t *testing.T) {
	for _, f := range vmcbLayout() {
		if f.off != f.manualOff || f.size != f.manualSize {
			t.Errorf("%s at %#x size %d, manual says %#x size %d", f.name, f.off, f.size, f.manualOff, f.manualSize)
		}
	}
	var v VMCB
	if got := unsafe.Sizeof(v); got != VMCBSize {
		t.Errorf("sizeof(VMCB) = %d, want %d", got, VMCBSize)
	}
	if got := unsafe.Offsetof(v.Save); got != SaveAreaOffset {
		t.Errorf("offsetof(VMCB.Save) = %#x, want %#x", got, SaveAreaOffset)
	}
	if got := unsafe.Sizeof(v.Control); got != 0x400 {
		t.Errorf("sizeof(ControlArea) = %#x, want 0x400", got)
	}
	var seg Segment
	segLayout := []struct {
		name      string
		off, want uintptr
	}{
		// APM 15.5.2 / table B-2: selector 0, attrib 2, limit 4, base 8.
		{"Selector", unsafe.Offsetof(seg.Selector), 0},
		{"Attrib", unsafe.Offsetof(seg.Attrib), 2},
		{"Limit", unsafe.Offsetof(seg.Limit), 4},
		{"Base", unsafe.Offsetof(seg.Base), 8},
	}
	for _, f := range segLayout {
		if f.off != f.want {
			t.Errorf("Segment.%s at %d, want %d", f.name, f.off, f.want)
		}
	}
	if unsafe.Sizeof(seg) != 16 {
		t.Errorf("sizeof(Segment) = %d, want 16", unsafe.Sizeof(seg))
	}
}

// TestVMCBLayoutComplete makes sure the manual table above covers every
// field and that the fields tile the page with no compiler padding: a new
// field added without a manual row, or a size change that makes Go insert
// padding, fails here.
func TestVMCBLayoutComplete(t *testing.T) {
	rows := map[string]fieldLayout{}
	for _, f := range vmcbLayout() {
		rows[f.name] = f
	}
	var next uintptr
	for _, area := range []struct {
		prefix string
		typ    reflect.Type
		base   uintptr
	}{
		{"Control.", reflect.TypeOf(ControlArea{}), 0},
		{"Save.", reflect.TypeOf(SaveArea{}), SaveAreaOffset},
	} {
		for i := 0; i < area.typ.NumField(); i++ {
			sf := area.typ.Field(i)
			name := area.prefix + sf.Name
			if _, ok := rows[name]; !ok {
				t.Errorf("field %s has no row in the manual layout table", name)
			}
			delete(rows, name)
			if off := area.base + sf.Offset; off != next {
				t.Errorf("field %s at %#x, want %#x (gap or overlap)", name, off, next)
			}
			next = area.base + sf.Offset + sf.Type.Size()
		}
	}
	if next != VMCBSize {
		t.Errorf("fields end at %#x, want %#x", next, VMCBSize)
	}
	for name := range rows {
		t.Errorf("table row %s names no field", name)
	}
}

func TestInterceptBits(t *testing.T) {
	// Bit positions from table B-1.
	tests := []struct {
		name string
		got  uint32
		bit  uint
	}{
		{"INTR", InterceptINTR, 0},
		{"NMI", InterceptNMI, 1},
		{"SMI", InterceptSMI, 2},
		{"INIT", InterceptINIT, 3},
		{"VINTR", InterceptVINTR, 4},
		{"CR0_SEL_WRITE", InterceptCR0SelWrite, 5},
		{"IDTR read", InterceptIDTRRead, 6},
		{"GDTR read", InterceptGDTRRead, 7},
		{"LDTR read", InterceptLDTRRead, 8},
		{"TR read", InterceptTRRead, 9},
		{"IDTR write", InterceptIDTRWrite, 10},
		{"GDTR write", InterceptGDTRWrite, 11},
		{"LDTR write", InterceptLDTRWrite, 12},
		{"TR write", InterceptTRWrite, 13},
		{"RDTSC", InterceptRDTSC, 14},
		{"RDPMC", InterceptRDPMC, 15},
		{"PUSHF", InterceptPUSHF, 16},
		{"POPF", InterceptPOPF, 17},
		{"CPUID", InterceptCPUID, 18},
		{"RSM", InterceptRSM, 19},
		{"IRET", InterceptIRET, 20},
		{"INTn", InterceptINTn, 21},
		{"INVD", InterceptINVD, 22},
		{"PAUSE", InterceptPAUSE, 23},
		{"HLT", InterceptHLT, 24},
		{"INVLPG", InterceptINVLPG, 25},
		{"INVLPGA", InterceptINVLPGA, 26},
		{"IOIO_PROT", InterceptIOIOProt, 27},
		{"MSR_PROT", InterceptMSRProt, 28},
		{"task switch", InterceptTaskSwitch, 29},
		{"FERR_FREEZE", InterceptFERRFreeze, 30},
		{"shutdown", InterceptShutdown, 31},
		{"VMRUN", InterceptVMRUN, 0},
		{"VMMCALL", InterceptVMMCALL, 1},
		{"VMLOAD", InterceptVMLOAD, 2},
		{"VMSAVE", InterceptVMSAVE, 3},
		{"STGI", InterceptSTGI, 4},
		{"CLGI", InterceptCLGI, 5},
		{"SKINIT", InterceptSKINIT, 6},
		{"RDTSCP", InterceptRDTSCP, 7},
		{"ICEBP", InterceptICEBP, 8},
		{"WBINVD", InterceptWBINVD, 9},
		{"MONITOR", InterceptMONITOR, 10},
		{"MWAIT", InterceptMWAIT, 11},
		{"MWAIT conditional", InterceptMWAITConditional, 12},
		{"XSETBV", InterceptXSETBV, 13},
		{"RDPRU", InterceptRDPRU, 14},
		{"EFER write trap", TrapEFERWrite, 15},
		{"CR0 write trap", TrapCRWrite(0), 16},
		{"CR8 write trap", TrapCRWrite(8), 24},
		{"CR15 write trap", TrapCRWrite(15), 31},
		{"INVLPGB", InterceptINVLPGB, 0},
		{"INVLPGB illegal", InterceptINVLPGBIllegal, 1},
		{"INVPCID", InterceptINVPCID, 2},
		{"MCOMMIT", InterceptMCOMMIT, 3},
		{"TLBSYNC", InterceptTLBSYNC, 4},
		{"bus lock", InterceptBusLock, 5},
		{"idle HLT", InterceptIdleHLT, 6},
		{"CR0 read", InterceptCRRead(0), 0},
		{"CR3 read", InterceptCRRead(3), 3},
		{"CR0 write", InterceptCRWrite(0), 16},
		{"CR8 write", InterceptCRWrite(8), 24},
		{"DR7 read", InterceptDRRead(7), 7},
		{"DR7 write", InterceptDRWrite(7), 23},
		{"#PF", InterceptException(14), 14},
		{"#AC", InterceptException(17), 17},
	}
	for _, tt := range tests {
		if tt.got != 1<<tt.bit {
			t.Errorf("%s = %#x, want bit %d", tt.name, tt.got, tt.bit)
		}
	}
}

func TestControlBits(t *testing.T) {
	tests := []struct {
		name string
		got  uint64
		want uint64
	}{
		// Table B-1 offset 058h and APM 15.16.1.
		{"TLB_CONTROL flush all", TLBControlFlushAll, 0x01},
		{"TLB_CONTROL flush guest", TLBControlFlushGuest, 0x03},
		{"TLB_CONTROL flush guest non-global", TLBControlFlushGuestNonGlobal, 0x07},
		// Table B-1 offset 060h.
		{"V_IRQ", VIntrIRQ, 1 << 8},
		{"VGIF", VIntrVGIF, 1 << 9},
		{"V_NMI", VIntrNMI, 1 << 11},
		{"V_NMI_MASK", VIntrNMIMask, 1 << 12},
		{"V_INTR_PRIO", VIntrPrioMask, 0xf << 16},
		{"V_IGN_TPR", VIntrIgnTPR, 1 << 20},
		{"V_INTR_MASKING", VIntrMasking, 1 << 24},
		{"VGIF enable", VIntrVGIFEnable, 1 << 25},
		{"V_NMI_ENABLE", VIntrNMIEnable, 1 << 26},
		{"x2AVIC enable", VIntrX2AVICEnable, 1 << 30},
		{"AVIC enable", VIntrAVICEnable, 1 << 31},
		{"V_INTR_VECTOR", VIntrVectorMask, 0xff << 32},
		// Offset 068h.
		{"INTERRUPT_SHADOW", InterruptShadowActive, 1},
		{"GUEST_INTERRUPT_MASK", GuestInterruptMask, 2},
		// Offset 090h.
		{"NP_ENABLE", NestedCtlNPEnable, 1},
		{"SEV", NestedCtlSEVEnable, 2},
		{"SEV-ES", NestedCtlSEVESEnable, 4},
		{"GMET", NestedCtlGMETEnable, 8},
		// Offset 0B8h.
		{"LBR virtualization", VirtExtLBRVirt, 1},
		{"VMSAVE/VMLOAD virtualization", VirtExtVMSAVEVirt, 2},
		// APM 15.15.3, VMCB clean field bits.
		{"clean I", CleanIntercepts, 1 << 0},
		{"clean IOPM", CleanIOPM, 1 << 1},
		{"clean ASID", CleanASID, 1 << 2},
		{"clean TPR", CleanTPR, 1 << 3},
		{"clean NP", CleanNP, 1 << 4},
		{"clean CRx", CleanCRx, 1 << 5},
		{"clean DRx", CleanDRx, 1 << 6},
		{"clean DT", CleanDT, 1 << 7},
		{"clean SEG", CleanSeg, 1 << 8},
		{"clean CR2", CleanCR2, 1 << 9},
		{"clean LBR", CleanLBR, 1 << 10},
		{"clean AVIC", CleanAVIC, 1 << 11},
		{"clean CET", CleanCET, 1 << 12},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestSegmentFromDescriptor(t *testing.T) {
	tests := []struct {
		name string
		sel  uint16
		desc uint64
		want Segment
	}{
		{"64-bit kernel code", 0x08, 0x00af9a000000ffff, Segment{0x08, 0xa9a, 0xffffffff, 0}},
		{"32-bit flat code", 0x10, 0x00cf9b000000ffff, Segment{0x10, 0xc9b, 0xffffffff, 0}},
		{"32-bit flat data", 0x18, 0x00cf93000000ffff, Segment{0x18, 0xc93, 0xffffffff, 0}},
		{"16-bit data, byte granular", 0x20, 0x0000930b8000ffff, Segment{0x20, 0x093, 0xffff, 0xb8000}},
		{"user data DPL 3", 0x2b, 0x00cff3000000ffff, Segment{0x2b, 0xcf3, 0xffffffff, 0}},
		{"available 32/64-bit TSS", 0x30, 0x1200893456780067, Segment{0x30, 0x089, 0x67, 0x12345678}},
		{"LDT with AVL", 0x38, 0x0010820000001000, Segment{0x38, 0x182, 0x1000, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SegmentFromDescriptor(tt.sel, tt.desc)
			if got != tt.want {
				t.Fatalf("SegmentFromDescriptor(%#x, %#x) = %+v, want %+v", tt.sel, tt.desc, got, tt.want)
			}
			back, ok := got.Descriptor()
			if !ok || back != tt.desc {
				t.Errorf("Descriptor() = %#x, %v; want %#x", back, ok, tt.desc)
			}
		})
	}
}

func TestAttribAccessors(t *testing.T) {
	a := Attrib(0xa9b) // 64-bit code, DPL 0, present, accessed
	if a.Type() != 0xb || a.DPL() != 0 || !a.Present() || a.System() || !a.Long() || a.DefaultBig() || !a.Granular() {
		t.Errorf("Attrib(%#x) decoded wrongly: type %d dpl %d p %v sys %v l %v db %v g %v",
			uint16(a), a.Type(), a.DPL(), a.Present(), a.System(), a.Long(), a.DefaultBig(), a.Granular())
	}
	if u := Attrib(0xcf3); u.DPL() != 3 || !u.DefaultBig() {
		t.Errorf("Attrib(0xcf3): DPL %d D/B %v, want 3 true", u.DPL(), u.DefaultBig())
	}
	if tss := Attrib(0x08b); !tss.System() || tss.Type() != 0xb {
		t.Errorf("busy TSS attrib: system %v type %#x", tss.System(), tss.Type())
	}
}

func TestAccessRightsRoundTrip(t *testing.T) {
	tests := []struct {
		ar     uint32 // VMX-style access rights / LAR bits 23:8
		attrib Attrib
	}{
		{0xa09b, 0xa9b},
		{0xc093, 0xc93},
		{0x008b, 0x08b},
		{0x0082, 0x082},
		{0xf0ff, 0xfff},
	}
	for _, tt := range tests {
		if got := AttribFromAccessRights(tt.ar); got != tt.attrib {
			t.Errorf("AttribFromAccessRights(%#x) = %#x, want %#x", tt.ar, got, tt.attrib)
		}
		if got := tt.attrib.AccessRights(); got != tt.ar {
			t.Errorf("Attrib(%#x).AccessRights() = %#x, want %#x", tt.attrib, got, tt.ar)
		}
	}
	// The limit nibble (bits 11:8) is not part of the attributes.
	if got := AttribFromAccessRights(0xcf93); got != 0xc93 {
		t.Errorf("AttribFromAccessRights(0xcf93) = %#x, want 0xc93", got)
	}
}

func TestDescriptorRejectsUnencodableLimit(t *testing.T) {
	for _, s := range []Segment{
		{Attrib: 0x093, Limit: 0x100000},   // byte granular above 1 MiB - 1
		{Attrib: 0xc93, Limit: 0xfffff000}, // page granular without the low 12 bits set
	} {
		if d, ok := s.Descriptor(); ok {
			t.Errorf("Descriptor(%+v) = %#x, ok; want !ok", s, d)
		}
	}
}

func TestRealModeSegment(t *testing.T) {
	// Reset state of APM vol. 2 14.1.3: code attrib 9Bh, data 93h, limit FFFFh.
	if got, want := RealModeSegment(0xf000, true), (Segment{0xf000, 0x9b, 0xffff, 0xf0000}); got != want {
		t.Errorf("RealModeSegment(CS) = %+v, want %+v", got, want)
	}
	if got, want := RealModeSegment(0x1234, false), (Segment{0x1234, 0x93, 0xffff, 0x12340}); got != want {
		t.Errorf("RealModeSegment(DS) = %+v, want %+v", got, want)
	}
}
