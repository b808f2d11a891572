package svm

import (
	"errors"
	"fmt"
)

// ErrReserved reports a value that uses an encoding the manual reserves.
var ErrReserved = errors.New("reserved encoding")

// EventType is the TYPE field of EVENTINJ and EXITINTINFO (APM 15.20,
// "Event Injection", and 15.7.2).
type EventType uint8

// Event types; 1 and 5-7 are reserved.
const (
	EventINTR      EventType = 0 // external or virtual interrupt
	EventNMI       EventType = 2
	EventException EventType = 3 // fault or trap
	EventSoftInt   EventType = 4 // INTn
)

func (t EventType) valid() bool {
	return t == EventINTR || t == EventNMI || t == EventException || t == EventSoftInt
}

func (t EventType) String() string {
	switch t {
	case EventINTR:
		return "INTR"
	case EventNMI:
		return "NMI"
	case EventException:
		return "exception"
	case EventSoftInt:
		return "software interrupt"
	}
	return fmt.Sprintf("reserved(%d)", uint8(t))
}

// EVENTINJ / EXITINTINFO bit layout (APM 15.20, 15.7.2).
const (
	eventVectorMask = 0xff
	eventTypeShift  = 8
	eventTypeMask   = 7 << eventTypeShift
	eventEV         = 1 << 11 // error code valid
	eventReserved   = 0x7ffff000
	eventValid      = 1 << 31
	eventErrShift   = 32
)

// Event is a decoded EVENTINJ or EXITINTINFO value.
type Event struct {
	Valid          bool
	Vector         uint8
	Type           EventType
	ErrorCodeValid bool
	ErrorCode      uint32
}

// DecodeEvent decodes an EVENTINJ or EXITINTINFO value. An invalid record
// (V clear) decodes to the zero Event. A valid record with a reserved TYPE
// or reserved bits 30:12 set is an error: the CPU never writes one, so it
// means the value did not come from the CPU.
func DecodeEvent(raw uint64) (Event, error) {
	if raw&eventValid == 0 {
		return Event{}, nil
	}
	e := Event{
		Valid:          true,
		Vector:         uint8(raw & eventVectorMask),
		Type:           EventType((raw & eventTypeMask) >> eventTypeShift),
		ErrorCodeValid: raw&eventEV != 0,
		ErrorCode:      uint32(raw >> eventErrShift),
	}
	if !e.Type.valid() {
		return Event{}, fmt.Errorf("svm: decode event %#x: type %d: %w", raw, e.Type, ErrReserved)
	}
	if raw&eventReserved != 0 {
		return Event{}, fmt.Errorf("svm: decode event %#x: bits 30:12 set: %w", raw, ErrReserved)
	}
	return e, nil
}

// Encode returns the EVENTINJ value for e. It refuses what VMRUN would
// reject with VMEXIT_INVALID or what makes no sense to inject (APM 15.20):
// a reserved type, an exception vector above 31 or equal to 2 (NMI is its
// own type), and an error code on anything but an exception. The vector of
// an NMI is ignored by the CPU; Encode writes 2. The zero Event encodes to
// 0, "nothing to inject".
func (e Event) Encode() (uint64, error) {
	if !e.Valid {
		return 0, nil
	}
	if !e.Type.valid() {
		return 0, fmt.Errorf("svm: encode event: type %d: %w", e.Type, ErrReserved)
	}
	vector := e.Vector
	switch e.Type {
	case EventException:
		if vector > 31 || vector == 2 {
			return 0, fmt.Errorf("svm: encode event: exception vector %d: %w", vector, ErrReserved)
		}
	case EventNMI:
		vector = 2
	}
	if e.ErrorCodeValid && e.Type != EventException {
		return 0, fmt.Errorf("svm: encode event: error code on %v vector %d: %w", e.Type, vector, ErrReserved)
	}
	raw := uint64(vector) | uint64(e.Type)<<eventTypeShift | eventValid
	if e.ErrorCodeValid {
		raw |= eventEV | uint64(e.ErrorCode)<<eventErrShift
	}
	return raw, nil
}

// ExceptionHasErrorCode reports whether exception vector pushes an error
// code in protected mode (APM vol. 2 8.2: #DF, #TS, #NP, #SS,
// #GP, #PF, #AC, #CP, #VC, #SX). In real mode no exception pushes one.
func ExceptionHasErrorCode(vector uint8) bool {
	switch vector {
	case 8, 10, 11, 12, 13, 14, 17, 21, 29, 30:
		return true
	}
	return false
}

// SegReg numbers segment registers the way EXITINFO1 of an IOIO intercept
// does (APM 15.10.2): ES=0, CS=1, SS=2, DS=3, FS=4, GS=5.
type SegReg uint8

const (
	SegES SegReg = iota
	SegCS
	SegSS
	SegDS
	SegFS
	SegGS
)

func (s SegReg) String() string {
	if s <= SegGS {
		return [...]string{"ES", "CS", "SS", "DS", "FS", "GS"}[s]
	}
	return fmt.Sprintf("seg(%d)", uint8(s))
}

// EXITINFO1 bits for the IOIO intercept (APM 15.10.2, figure 15-2).
const (
	ioioTypeIn    = 1 << 0
	ioioStr       = 1 << 2
	ioioRep       = 1 << 3
	ioioSz8       = 1 << 4
	ioioSz16      = 1 << 5
	ioioSz32      = 1 << 6
	ioioA16       = 1 << 7
	ioioA32       = 1 << 8
	ioioA64       = 1 << 9
	ioioSegShift  = 10
	ioioSegMask   = 7 << ioioSegShift
	ioioPortShift = 16
)

// IOExit is a decoded IOIO intercept.
type IOExit struct {
	Port     uint16
	In       bool // IN/INS; false for OUT/OUTS
	String   bool // INS/OUTS
	Rep      bool // REP prefix present
	Size     int  // operand size in bytes: 1, 2 or 4
	AddrSize int  // 16, 32 or 64; 0 when the CPU did not report it (QEMU TCG)
	// Segment is the effective segment of a string instruction. Only CPUs
	// with decode assists fill it in; elsewhere it reads as ES (0), so a
	// caller must not rely on it without FeatureDecodeAssists.
	Segment SegReg
	// NextRIP is EXITINFO2: the RIP of the instruction after the IN/OUT,
	// written even by CPUs without NRIP save (APM 15.10.2).
	NextRIP uint64
}

// DecodeIOIO decodes EXITINFO1 and EXITINFO2 of a VMEXIT_IOIO. Exactly one
// operand size bit must be set and at most one address size bit; anything
// else is an error rather than a guess, because it means the exit did not
// come from a conforming CPU.
func DecodeIOIO(info1, info2 uint64) (IOExit, error) {
	e := IOExit{
		Port:    uint16(info1 >> ioioPortShift),
		In:      info1&ioioTypeIn != 0,
		String:  info1&ioioStr != 0,
		Rep:     info1&ioioRep != 0,
		Segment: SegReg((info1 & ioioSegMask) >> ioioSegShift),
		NextRIP: info2,
	}
	switch info1 & (ioioSz8 | ioioSz16 | ioioSz32) {
	case ioioSz8:
		e.Size = 1
	case ioioSz16:
		e.Size = 2
	case ioioSz32:
		e.Size = 4
	default:
		return IOExit{}, fmt.Errorf("svm: decode IOIO exitinfo1 %#x: operand size bits 6:4: %w", info1, ErrReserved)
	}
	switch info1 & (ioioA16 | ioioA32 | ioioA64) {
	case 0:
	case ioioA16:
		e.AddrSize = 16
	case ioioA32:
		e.AddrSize = 32
	case ioioA64:
		e.AddrSize = 64
	default:
		return IOExit{}, fmt.Errorf("svm: decode IOIO exitinfo1 %#x: address size bits 9:7: %w", info1, ErrReserved)
	}
	if e.Segment > SegGS {
		return IOExit{}, fmt.Errorf("svm: decode IOIO exitinfo1 %#x: segment %d: %w", info1, e.Segment, ErrReserved)
	}
	return e, nil
}

// Encode returns the EXITINFO1 value of e, the inverse of DecodeIOIO (used
// by nested virtualization to reflect an exit to a guest hypervisor, and by
// tests).
func (e IOExit) Encode() (info1 uint64, err error) {
	info1 = uint64(e.Port)<<ioioPortShift | uint64(e.Segment&7)<<ioioSegShift
	if e.In {
		info1 |= ioioTypeIn
	}
	if e.String {
		info1 |= ioioStr
	}
	if e.Rep {
		info1 |= ioioRep
	}
	switch e.Size {
	case 1:
		info1 |= ioioSz8
	case 2:
		info1 |= ioioSz16
	case 4:
		info1 |= ioioSz32
	default:
		return 0, fmt.Errorf("svm: encode IOIO: operand size %d: %w", e.Size, ErrReserved)
	}
	switch e.AddrSize {
	case 0:
	case 16:
		info1 |= ioioA16
	case 32:
		info1 |= ioioA32
	case 64:
		info1 |= ioioA64
	default:
		return 0, fmt.Errorf("svm: encode IOIO: address size %d: %w", e.AddrSize, ErrReserved)
	}
	if e.Segment > SegGS {
		return 0, fmt.Errorf("svm: encode IOIO: segment %d: %w", e.Segment, ErrReserved)
	}
	return info1, nil
}

// EXITINFO1 bits of a nested page fault (APM 15.25.6): the low bits follow
// the #PF error code (APM vol. 2 8.4.2), bits 33:32 say what the CPU was
// doing when the nested walk failed.
const (
	NPFPresent     = 1 << 0 // the nested entry was present (a protection fault)
	NPFWrite       = 1 << 1
	NPFUser        = 1 << 2 // always set: guest accesses are user accesses to NPT
	NPFReserved    = 1 << 3 // a reserved bit was set in a nested entry
	NPFFetch       = 1 << 4 // instruction fetch
	NPFProtKey     = 1 << 5
	NPFShadowStack = 1 << 6
	NPFFinalGPA    = 1 << 32 // fault translating the final guest physical address
	NPFPageWalk    = 1 << 33 // fault translating a guest page-table access
)

// NPFExit is a decoded VMEXIT_NPF.
type NPFExit struct {
	GPA         uint64 // EXITINFO2: the faulting guest physical address
	Present     bool
	Write       bool
	User        bool
	Reserved    bool
	Fetch       bool
	ProtKey     bool
	ShadowStack bool
	FinalGPA    bool
	PageWalk    bool
}

// DecodeNPF decodes EXITINFO1 and EXITINFO2 of a VMEXIT_NPF. It accepts
// any value: the bits are independent flags and unknown ones are ignored.
func DecodeNPF(info1, info2 uint64) NPFExit {
	return NPFExit{
		GPA:         info2,
		Present:     info1&NPFPresent != 0,
		Write:       info1&NPFWrite != 0,
		User:        info1&NPFUser != 0,
		Reserved:    info1&NPFReserved != 0,
		Fetch:       info1&NPFFetch != 0,
		ProtKey:     info1&NPFProtKey != 0,
		ShadowStack: info1&NPFShadowStack != 0,
		FinalGPA:    info1&NPFFinalGPA != 0,
		PageWalk:    info1&NPFPageWalk != 0,
	}
}

// EXITINFO1 of CR and DR intercepts with decode assists (APM 15.33.1):
// bit 63 is set when the instruction was MOV to/from CRn (clear for CLTS,
// LMSW, SMSW), bits 3:0 name the general-purpose register.
const (
	crInfoMOV     = 1 << 63
	crInfoGPRMask = 0xf
)

// CRAccess is a decoded CR read/write intercept.
type CRAccess struct {
	CR    int  // control register number
	Write bool // MOV to CR, CLTS, LMSW; false for MOV from CR, SMSW
	// GPRValid is set when the CPU reported MOV CRn and its register
	// (decode assists); GPR is then the register number (0=RAX ... 15=R15).
	// Otherwise the caller decodes the instruction itself.
	GPRValid bool
	GPR      int
}

// DecodeCRAccess decodes a VMEXIT_CRn_READ/WRITE or VMEXIT_CR0_SEL_WRITE
// exit. decodeAssists says whether the CPU has FeatureDecodeAssists; without
// it EXITINFO1 is undefined (QEMU TCG writes 0) and is ignored.
func DecodeCRAccess(code ExitCode, info1 uint64, decodeAssists bool) (CRAccess, error) {
	var a CRAccess
	switch {
	case code <= ExitCRRead+15:
		a.CR = int(code - ExitCRRead)
	case code <= ExitCRWrite+15:
		a.CR, a.Write = int(code-ExitCRWrite), true
	case code == ExitCR0SelWrite:
		a.CR, a.Write = 0, true
	default:
		return CRAccess{}, fmt.Errorf("svm: decode CR access: exit code %v is not a CR access", code)
	}
	if decodeAssists && info1&crInfoMOV != 0 {
		a.GPRValid, a.GPR = true, int(info1&crInfoGPRMask)
	}
	return a, nil
}

// DRAccess is a decoded DR read/write intercept.
type DRAccess struct {
	DR       int
	Write    bool
	GPRValid bool // decode assists reported the register
	GPR      int
}

// DecodeDRAccess decodes a VMEXIT_DRn_READ/WRITE exit. DR accesses are
// always MOV, so with decode assists bits 3:0 of EXITINFO1 always name the
// register (APM 15.33.1).
func DecodeDRAccess(code ExitCode, info1 uint64, decodeAssists bool) (DRAccess, error) {
	var a DRAccess
	switch {
	case code >= ExitDRRead && code <= ExitDRRead+15:
		a.DR = int(code - ExitDRRead)
	case code >= ExitDRWrite && code <= ExitDRWrite+15:
		a.DR, a.Write = int(code-ExitDRWrite), true
	default:
		return DRAccess{}, fmt.Errorf("svm: decode DR access: exit code %v is not a DR access", code)
	}
	if decodeAssists {
		a.GPRValid, a.GPR = true, int(info1&crInfoGPRMask)
	}
	return a, nil
}

// EXITINFO1 of VMEXIT_MSR (APM 15.11): 0 for RDMSR, 1 for WRMSR. The MSR
// number is in the guest's ECX and, for WRMSR, the value in EDX:EAX.
const (
	MSRExitRead  = 0
	MSRExitWrite = 1
)

// DecodeMSRExit reports whether a VMEXIT_MSR was a WRMSR.
func DecodeMSRExit(info1 uint64) (write bool, err error) {
	switch info1 {
	case MSRExitRead:
		return false, nil
	case MSRExitWrite:
		return true, nil
	}
	return false, fmt.Errorf("svm: decode MSR exitinfo1 %#x: %w", info1, ErrReserved)
}
