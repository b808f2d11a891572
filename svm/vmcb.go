package svm

// The VMCB layout follows AMD64 APM vol. 2 (24593) appendix B: table B-1
// "VMCB Layout, Control Area" and table B-2 "VMCB Layout, State Save Area".
// Field names are the manual's names in Go spelling; reserved ranges are
// named after their offset so that an offset test catches any drift.

// VMCBSize is the size of a VMCB: one 4 KiB page, 4 KiB aligned (APM 15.5.1).
const VMCBSize = 4096

// SaveAreaOffset is where the state save area starts in the VMCB (table B-2).
const SaveAreaOffset = 0x400

// VMCB is the virtual machine control block. It must be placed in a 4 KiB
// aligned, physically contiguous page; VMRUN takes its physical address in
// RAX (APM 15.5.1).
type VMCB struct {
	Control ControlArea
	Save    SaveArea
}

// ControlArea is the VMCB control area, offsets 000h-3FFh (table B-1).
type ControlArea struct {
	// 000h: bits 15:0 intercept reads of CR0-CR15, bits 31:16 writes.
	InterceptCR uint32
	// 004h: bits 15:0 intercept reads of DR0-DR15, bits 31:16 writes.
	InterceptDR uint32
	// 008h: bit n intercepts exception vector n.
	InterceptExceptions uint32
	// 00Ch: intercept vector 3 (InterceptINTR ... InterceptShutdown).
	InterceptMisc1 uint32
	// 010h: intercept vector 4 (InterceptVMRUN ... CR write traps).
	InterceptMisc2 uint32
	// 014h: intercept vector 5 (InterceptINVLPGB ... InterceptIdleHLT).
	InterceptMisc3 uint32
	// 018h-03Bh reserved.
	Reserved018 [0x3c - 0x18]byte
	// 03Ch: PAUSE filter threshold (cycles between PAUSEs that reset the count).
	PauseFilterThreshold uint16
	// 03Eh: PAUSE filter count.
	PauseFilterCount uint16
	// 040h: physical base address of the IOPM (bits 11:0 ignored).
	IOPMBasePA uint64
	// 048h: physical base address of the MSRPM (bits 11:0 ignored).
	MSRPMBasePA uint64
	// 050h: TSC_OFFSET, added to the TSC for RDTSC/RDTSCP/RDMSR in the guest.
	TSCOffset uint64
	// 058h: bits 31:0 guest ASID.
	GuestASID uint32
	// 05Ch: bits 39:32 of the quadword at 058h, TLB_CONTROL (TLBControl*).
	TLBControl uint8
	// 05Dh-05Fh reserved.
	Reserved05D [3]byte
	// 060h: V_TPR, V_IRQ, VGIF, V_NMI, V_NMI_MASK, V_INTR_PRIO, V_IGN_TPR,
	// V_INTR_MASKING, AMD virtual GIF enable, V_NMI_ENABLE, x2AVIC enable,
	// AVIC enable, V_INTR_VECTOR (VIntr* constants).
	VIntr uint64
	// 068h: bit 0 INTERRUPT_SHADOW, bit 1 GUEST_INTERRUPT_MASK.
	InterruptShadow uint64
	// 070h: EXITCODE.
	ExitCode uint64
	// 078h: EXITINFO1.
	ExitInfo1 uint64
	// 080h: EXITINFO2.
	ExitInfo2 uint64
	// 088h: EXITINTINFO (EventInj format).
	ExitIntInfo uint64
	// 090h: NP_ENABLE, enable SEV, SEV-ES, GMET, SSSCheckEn, VTE, ROGPT,
	// INVLPGB/TLBSYNC enable (NestedCtl* constants).
	NestedCtl uint64
	// 098h: bits 51:0 AVIC APIC_BAR.
	AVICAPICBar uint64
	// 0A0h: guest physical address of the GHCB (SEV-ES).
	GHCBPA uint64
	// 0A8h: EVENTINJ.
	EventInj uint64
	// 0B0h: N_CR3, the nested page table root (host physical).
	NCR3 uint64
	// 0B8h: bit 0 LBR virtualization enable, bit 1 virtualized VMSAVE/VMLOAD
	// enable (VirtExt* constants).
	VirtExt uint64
	// 0C0h: bits 31:0 VMCB clean bits (Clean* constants).
	CleanBits uint32
	// 0C4h reserved.
	Reserved0C4 uint32
	// 0C8h: nRIP, the next sequential instruction pointer (NRIPS).
	NRIP uint64
	// 0D0h: number of guest instruction bytes fetched (decode assists).
	NumBytesFetched uint8
	// 0D1h-0DFh: the guest instruction bytes.
	GuestInstrBytes [15]byte
	// 0E0h: bits 51:12 AVIC APIC_BACKING_PAGE pointer.
	AVICBackingPage uint64
	// 0E8h reserved.
	Reserved0E8 uint64
	// 0F0h: bits 51:12 AVIC_LOGICAL_TABLE pointer.
	AVICLogicalTable uint64
	// 0F8h: low bits AVIC_PHYSICAL_MAX_INDEX (7:0, 8:0 with x2AVIC), bits
	// 51:12 AVIC_PHYSICAL_TABLE.
	AVICPhysicalTable uint64
	// 100h reserved.
	Reserved100 uint64
	// 108h: bits 51:12 VMSA pointer (SEV-ES).
	VMSAPointer uint64
	// 110h: VMGEXIT_RAX (SEV-ES).
	VMGExitRAX uint64
	// 118h: bits 7:0 VMGEXIT_CPL.
	VMGExitCPL uint8
	// 119h-11Fh reserved.
	Reserved119 [7]byte
	// 120h: bits 15:0 bus lock threshold counter.
	BusLockCounter uint16
	// 122h-3DFh reserved.
	Reserved122 [0x3e0 - 0x122]byte
	// 3E0h-3FFh: reserved for host (software) use; the CPU does not touch it.
	HostReserved [0x20]byte
}

// Segment is a segment register in the state save area: selector, 12-bit
// packed attributes (see Attrib), 32-bit limit and 64-bit base (table B-2).
type Segment struct {
	Selector uint16
	Attrib   uint16
	Limit    uint32
	Base     uint64
}

// SaveArea is the VMCB state save area; offsets in the comments are relative
// to its start, which is VMCB offset 400h (table B-2).
type SaveArea struct {
	ES, CS, SS, DS, FS, GS Segment // 000h-05Fh
	GDTR                   Segment // 060h: only limit and base are used
	LDTR                   Segment // 070h
	IDTR                   Segment // 080h: only limit and base are used
	TR                     Segment // 090h
	Reserved0A0            [0xca - 0xa0]byte
	// 0CAh: VMPL (SEV-SNP).
	VMPL uint8
	// 0CBh: CPL. Hardware takes the CPL from here, not from CS or SS.DPL.
	CPL          uint8
	Reserved0CC  [4]byte
	EFER         uint64 // 0D0h
	Reserved0D8  [0x148 - 0xd8]byte
	CR4          uint64 // 148h
	CR3          uint64 // 150h
	CR0          uint64 // 158h
	DR7          uint64 // 160h
	DR6          uint64 // 168h
	RFLAGS       uint64 // 170h
	RIP          uint64 // 178h
	Reserved180  [0x1d8 - 0x180]byte
	RSP          uint64 // 1D8h
	SCET         uint64 // 1E0h: S_CET
	SSP          uint64 // 1E8h
	ISSTAddr     uint64 // 1F0h: ISST_ADDR
	RAX          uint64 // 1F8h
	STAR         uint64 // 200h
	LSTAR        uint64 // 208h
	CSTAR        uint64 // 210h
	SFMASK       uint64 // 218h
	KernelGSBase uint64 // 220h
	SysenterCS   uint64 // 228h
	SysenterESP  uint64 // 230h
	SysenterEIP  uint64 // 238h
	CR2          uint64 // 240h
	Reserved248  [0x268 - 0x248]byte
	GPAT         uint64 // 268h: G_PAT, guest PAT used by nested paging
	DBGCTL       uint64 // 270h
	BRFrom       uint64 // 278h: BR_FROM
	BRTo         uint64 // 280h: BR_TO
	LastExcpFrom uint64 // 288h: LASTEXCPFROM
	LastExcpTo   uint64 // 290h: LASTEXCPTO
	Reserved298  [0x2e0 - 0x298]byte
	SpecCtrl     uint64 // 2E0h: SPEC_CTRL (guest value, with the SpecCtrl feature)
	Reserved2E8  [VMCBSize - SaveAreaOffset - 0x2e8]byte
}

// Intercept vector 3 (VMCB offset 00Ch), table B-1.
const (
	InterceptINTR        = 1 << 0
	InterceptNMI         = 1 << 1
	InterceptSMI         = 1 << 2
	InterceptINIT        = 1 << 3
	InterceptVINTR       = 1 << 4
	InterceptCR0SelWrite = 1 << 5 // CR0 writes that change bits other than CR0.TS or CR0.MP
	InterceptIDTRRead    = 1 << 6
	InterceptGDTRRead    = 1 << 7
	InterceptLDTRRead    = 1 << 8
	InterceptTRRead      = 1 << 9
	InterceptIDTRWrite   = 1 << 10
	InterceptGDTRWrite   = 1 << 11
	InterceptLDTRWrite   = 1 << 12
	InterceptTRWrite     = 1 << 13
	InterceptRDTSC       = 1 << 14
	InterceptRDPMC       = 1 << 15
	InterceptPUSHF       = 1 << 16
	InterceptPOPF        = 1 << 17
	InterceptCPUID       = 1 << 18
	InterceptRSM         = 1 << 19
	InterceptIRET        = 1 << 20
	InterceptINTn        = 1 << 21
	InterceptINVD        = 1 << 22
	InterceptPAUSE       = 1 << 23
	InterceptHLT         = 1 << 24
	InterceptINVLPG      = 1 << 25
	InterceptINVLPGA     = 1 << 26
	InterceptIOIOProt    = 1 << 27 // consult the IOPM
	InterceptMSRProt     = 1 << 28 // consult the MSRPM
	InterceptTaskSwitch  = 1 << 29
	InterceptFERRFreeze  = 1 << 30
	InterceptShutdown    = 1 << 31
)

// Intercept vector 4 (VMCB offset 010h), table B-1.
const (
	InterceptVMRUN            = 1 << 0 // must be set, or VMRUN fails with VMEXIT_INVALID (APM 15.5.1)
	InterceptVMMCALL          = 1 << 1
	InterceptVMLOAD           = 1 << 2
	InterceptVMSAVE           = 1 << 3
	InterceptSTGI             = 1 << 4
	InterceptCLGI             = 1 << 5
	InterceptSKINIT           = 1 << 6
	InterceptRDTSCP           = 1 << 7
	InterceptICEBP            = 1 << 8
	InterceptWBINVD           = 1 << 9  // WBINVD and WBNOINVD
	InterceptMONITOR          = 1 << 10 // MONITOR and MONITORX
	InterceptMWAIT            = 1 << 11 // MWAIT and MWAITX, unconditionally
	InterceptMWAITConditional = 1 << 12 // MWAIT and MWAITX if the monitor hardware is armed
	InterceptXSETBV           = 1 << 13
	InterceptRDPRU            = 1 << 14
	TrapEFERWrite             = 1 << 15 // #VMEXIT after a guest EFER write completes
)

// TrapCRWrite returns the intercept vector 4 bit that traps (after the
// instruction completes) writes of CRn, n in 0-15 (table B-1, bits 31:16).
func TrapCRWrite(n int) uint32 { return 1 << (16 + uint(n&15)) }

// Intercept vector 5 (VMCB offset 014h), table B-1.
const (
	InterceptINVLPGB        = 1 << 0 // all INVLPGB
	InterceptINVLPGBIllegal = 1 << 1 // only illegally specified INVLPGB
	InterceptINVPCID        = 1 << 2
	InterceptMCOMMIT        = 1 << 3
	InterceptTLBSYNC        = 1 << 4
	InterceptBusLock        = 1 << 5
	InterceptIdleHLT        = 1 << 6
)

// InterceptCRRead and InterceptCRWrite return the InterceptCR bit for reads
// or writes of CRn, n in 0-15 (table B-1, offset 000h).
func InterceptCRRead(n int) uint32  { return 1 << uint(n&15) }
func InterceptCRWrite(n int) uint32 { return 1 << (16 + uint(n&15)) }

// InterceptDRRead and InterceptDRWrite return the InterceptDR bit for reads
// or writes of DRn, n in 0-15 (table B-1, offset 004h).
func InterceptDRRead(n int) uint32  { return 1 << uint(n&15) }
func InterceptDRWrite(n int) uint32 { return 1 << (16 + uint(n&15)) }

// InterceptException returns the InterceptExceptions bit for a vector 0-31.
func InterceptException(vector uint8) uint32 { return 1 << uint(vector&31) }

// TLB_CONTROL values (table B-1, offset 058h bits 39:32; APM 15.16.1).
const (
	TLBControlDoNothing           = 0x00
	TLBControlFlushAll            = 0x01 // every ASID; use only for the host's own reasons
	TLBControlFlushGuest          = 0x03 // this guest's ASID (needs FlushByAsid)
	TLBControlFlushGuestNonGlobal = 0x07 // this guest's non-global entries (needs FlushByAsid)
)

// Bits of VIntr (VMCB offset 060h), table B-1 and APM 15.21.
const (
	VIntrTPRMask      = 0xff    // V_TPR, bits 7:0 (only 3:0 are used for CR8)
	VIntrIRQ          = 1 << 8  // V_IRQ: a virtual interrupt is pending
	VIntrVGIF         = 1 << 9  // VGIF value (with VIntrVGIFEnable)
	VIntrNMI          = 1 << 11 // V_NMI: a virtual NMI is pending
	VIntrNMIMask      = 1 << 12 // V_NMI_MASK: virtual NMIs are blocked
	VIntrPrioShift    = 16      // V_INTR_PRIO, bits 19:16
	VIntrPrioMask     = 0xf << VIntrPrioShift
	VIntrIgnTPR       = 1 << 20 // V_IGN_TPR
	VIntrMasking      = 1 << 24 // V_INTR_MASKING: EFLAGS.IF/TPR virtualized
	VIntrVGIFEnable   = 1 << 25 // AMD virtual GIF enable
	VIntrNMIEnable    = 1 << 26 // V_NMI_ENABLE
	VIntrX2AVICEnable = 1 << 30
	VIntrAVICEnable   = 1 << 31
	VIntrVectorShift  = 32 // V_INTR_VECTOR, bits 39:32
	VIntrVectorMask   = 0xff << VIntrVectorShift
)

// Bits of InterruptShadow (VMCB offset 068h), table B-1.
const (
	InterruptShadowActive = 1 << 0 // INTERRUPT_SHADOW: guest is in an STI/MOV SS shadow
	GuestInterruptMask    = 1 << 1 // GUEST_INTERRUPT_MASK: guest EFLAGS.IF (V_INTR_MASKING)
)

// Bits of NestedCtl (VMCB offset 090h), table B-1.
const (
	NestedCtlNPEnable      = 1 << 0 // NP_ENABLE
	NestedCtlSEVEnable     = 1 << 1
	NestedCtlSEVESEnable   = 1 << 2
	NestedCtlGMETEnable    = 1 << 3 // guest mode execute trap
	NestedCtlSSSCheckEn    = 1 << 4 // supervisor shadow stack check
	NestedCtlVTEEnable     = 1 << 5 // virtual transparent encryption
	NestedCtlROGPTEnable   = 1 << 6 // read-only guest page table
	NestedCtlINVLPGBEnable = 1 << 7 // allow INVLPGB/TLBSYNC in the guest
)

// Bits of VirtExt (VMCB offset 0B8h), table B-1.
const (
	VirtExtLBRVirt    = 1 << 0 // LBR_VIRTUALIZATION_ENABLE
	VirtExtVMSAVEVirt = 1 << 1 // virtualized VMSAVE/VMLOAD enable
)

// VMCB clean bits (VMCB offset 0C0h), APM 15.15.3. A set bit
// tells the CPU that the named fields did not change since the last VMRUN
// with this VMCB on this CPU, so it may skip reloading them. Clear a bit
// whenever software writes one of its fields; clear all of them when the VMCB
// moves to another CPU.
const (
	CleanIntercepts = 1 << 0  // I: intercept vectors, TSC_OFFSET, pause filter
	CleanIOPM       = 1 << 1  // IOPM_BASE_PA, MSRPM_BASE_PA
	CleanASID       = 1 << 2  // guest ASID
	CleanTPR        = 1 << 3  // V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR
	CleanNP         = 1 << 4  // NP_ENABLE, N_CR3, G_PAT
	CleanCRx        = 1 << 5  // CR0, CR3, CR4, EFER
	CleanDRx        = 1 << 6  // DR6, DR7
	CleanDT         = 1 << 7  // GDT and IDT base and limit
	CleanSeg        = 1 << 8  // CS, DS, SS, ES selectors, attributes, limits, bases; CPL
	CleanCR2        = 1 << 9  // CR2
	CleanLBR        = 1 << 10 // DBGCTL, BR_FROM, BR_TO, LASTEXCPFROM, LASTEXCPTO
	CleanAVIC       = 1 << 11 // AVIC APIC_BAR, backing page, logical and physical tables
	CleanCET        = 1 << 12 // S_CET, SSP, ISST_ADDR
)

// Attrib is the VMCB's 12-bit packed segment attribute field (APM 15.5.2,
// "Segment state in the VMCB"): bits 7:0 hold descriptor bits 47:40 (type,
// S, DPL, P) and bits 11:8 hold descriptor bits 55:52 (AVL, L, D/B, G).
type Attrib uint16

// Attribute bits, in Attrib positions (APM 15.5.2; descriptor layout in
// APM vol. 2 4.7 and 4.8).
const (
	AttribTypeMask Attrib = 0xf
	AttribS        Attrib = 1 << 4 // code/data (1) or system (0) segment
	AttribDPLShift        = 5
	AttribDPLMask  Attrib = 3 << AttribDPLShift
	AttribP        Attrib = 1 << 7
	AttribAVL      Attrib = 1 << 8
	AttribL        Attrib = 1 << 9 // 64-bit code segment
	AttribDB       Attrib = 1 << 10
	AttribG        Attrib = 1 << 11
	attribValid    Attrib = 0xfff
)

// Type returns the 4-bit descriptor type.
func (a Attrib) Type() uint8 { return uint8(a & AttribTypeMask) }

// DPL returns the descriptor privilege level.
func (a Attrib) DPL() uint8 { return uint8((a & AttribDPLMask) >> AttribDPLShift) }

// Present, System, Long, DefaultBig and Granular report the P, !S, L, D/B
// and G bits.
func (a Attrib) Present() bool    { return a&AttribP != 0 }
func (a Attrib) System() bool     { return a&AttribS == 0 }
func (a Attrib) Long() bool       { return a&AttribL != 0 }
func (a Attrib) DefaultBig() bool { return a&AttribDB != 0 }
func (a Attrib) Granular() bool   { return a&AttribG != 0 }

// AttribFromAccessRights packs access rights in the layout of descriptor
// bits 55:40 shifted down by 40 (the layout LAR returns in bits 23:8 and VMX
// uses for its access-rights fields: type 3:0, S 4, DPL 6:5, P 7, limit
// 19:16 in 11:8, AVL 12, L 13, D/B 14, G 15) into a VMCB Attrib. The limit
// nibble is dropped: the VMCB keeps the limit expanded in Segment.Limit.
func AttribFromAccessRights(ar uint32) Attrib {
	return Attrib(ar&0xff) | Attrib((ar>>4)&0xf00)
}

// AccessRights is the inverse of AttribFromAccessRights; bits 11:8 (the
// limit nibble) come back as zero.
func (a Attrib) AccessRights() uint32 {
	return uint32(a&0xff) | uint32(a&0xf00)<<4
}

// AttribFromDescriptor extracts the VMCB Attrib from a raw 8-byte segment
// descriptor as it sits in a GDT or LDT.
func AttribFromDescriptor(desc uint64) Attrib {
	return AttribFromAccessRights(uint32(desc >> 40))
}

// SegmentFromDescriptor builds the VMCB segment that loading selector with
// the 8-byte descriptor desc would produce: the base from bits 63:56 and
// 39:16, the limit from bits 51:48 and 15:0, expanded to bytes when G is set
// (APM vol. 2 4.7.1). It does not check the descriptor: callers that load
// guest-controlled descriptors validate type and DPL themselves.
// For 16-byte system descriptors in long mode (LDT, TSS) the caller adds the
// upper 32 base bits from the second quadword.
func SegmentFromDescriptor(selector uint16, desc uint64) Segment {
	a := AttribFromDescriptor(desc)
	limit := uint32(desc&0xffff) | uint32((desc>>48)&0xf)<<16
	if a.Granular() {
		limit = limit<<12 | 0xfff
	}
	base := (desc>>16)&0xffffff | ((desc>>56)&0xff)<<24
	return Segment{Selector: selector, Attrib: uint16(a), Limit: limit, Base: base}
}

// Descriptor is the inverse of SegmentFromDescriptor for segments whose
// limit a descriptor can express (a limit above 1 MiB - 1 must have its low
// 12 bits set and G set); ok is false otherwise. The upper 32 bits of a
// 64-bit base are not represented.
func (s Segment) Descriptor() (desc uint64, ok bool) {
	a := Attrib(s.Attrib) & attribValid
	limit := s.Limit
	if a.Granular() {
		if limit&0xfff != 0xfff {
			return 0, false
		}
		limit >>= 12
	} else if limit > 0xfffff {
		return 0, false
	}
	desc = uint64(limit&0xffff) | uint64(limit>>16&0xf)<<48
	desc |= (s.Base & 0xffffff) << 16
	desc |= ((s.Base >> 24) & 0xff) << 56
	desc |= uint64(a.AccessRights()) << 40
	return desc, true
}

// RealModeSegment returns the segment a real-mode load of selector produces:
// base selector*16, limit 64 KiB - 1, a present, accessed read/write data
// segment (or execute/read code segment for CS). VMRUN accepts these for a
// guest with CR0.PE clear (APM 15.5.1 and 14.1.5 reset state).
func RealModeSegment(selector uint16, code bool) Segment {
	typ := Attrib(0x3) // read/write, accessed
	if code {
		typ = 0xb // execute/read, accessed
	}
	return Segment{
		Selector: selector,
		Attrib:   uint16(typ | AttribS | AttribP),
		Limit:    0xffff,
		Base:     uint64(selector) << 4,
	}
}
