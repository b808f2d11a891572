package emulate

import (
	"hv/vmm/pagewalk"
)

// CPU is the guest vCPU state the emulator reads and writes. The VMM's vCPU
// type satisfies it; methods may fetch lazily from the VMCS or VMCB, and the
// emulator calls each getter at most a few times per instruction.
type CPU interface {
	// GPR returns general-purpose register r in encoding order
	// (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8..15 R8..R15).
	GPR(r int) uint64
	SetGPR(r int, v uint64)
	RIP() uint64
	SetRIP(v uint64)
	RFLAGS() uint64
	SetRFLAGS(v uint64)
	// Segment returns the descriptor-cache contents of a segment register.
	Segment(s SegReg) Segment
	CR0() uint64
	CR3() uint64
	CR4() uint64
	EFER() uint64
}

// PDPTECPU is implemented by a CPU that holds the four PAE PDPTEs loaded
// with CR3 (VMX keeps them in the VMCS). Without it the emulator lets the
// page walker read them from guest memory.
type PDPTECPU interface {
	PDPTEs() *[4]uint64
}

// PKRUCPU is implemented by a CPU whose guest may use protection keys.
type PKRUCPU interface {
	PKRU() uint32
}

// SegReg names a segment register, numbered as in the sreg field of an
// instruction (Intel SDM vol 2, appendix B, "Encoding of Segment Register
// (sreg) Field").
type SegReg uint8

const (
	ES SegReg = iota
	CS
	SS
	DS
	FS
	GS
	numSegRegs
)

var segNames = [numSegRegs]string{"ES", "CS", "SS", "DS", "FS", "GS"}

func (s SegReg) String() string {
	if s < numSegRegs {
		return segNames[s]
	}
	return "Seg?"
}

// Segment is a segment register's hidden part.
type Segment struct {
	Selector uint16
	Base     uint64
	// Limit is the byte-granular limit (already scaled when G=1), as the
	// VMCS and VMCB store it.
	Limit uint32
	// Attr holds the descriptor attributes in the VMCB layout (AMD APM
	// vol 2 15.5.1 "VMCB segment attributes"): type in bits 3:0, S 4,
	// DPL 6:5, P 7, AVL 8, L 9, D/B 10, G 11. A VMX backend packs its
	// access-rights field into this layout and reports an unusable segment
	// as not present (P=0).
	Attr uint16
}

// Segment attribute bits, AMD APM vol 2 15.5.1; the descriptor fields
// themselves are in Intel SDM vol 3A 3.4.5.
const (
	AttrType     = 0xF    // segment type
	AttrAccessed = 1 << 0 // type bit 0
	AttrWritable = 1 << 1 // type bit 1 for data segments; "readable" for code
	AttrExpDown  = 1 << 2 // type bit 2 for data segments; "conforming" for code
	AttrCode     = 1 << 3 // type bit 3: code segment
	AttrS        = 1 << 4 // code or data (not system)
	AttrDPLShift = 5
	AttrP        = 1 << 7
	AttrL        = 1 << 9  // 64-bit code segment
	AttrDB       = 1 << 10 // default operation size / big
	AttrG        = 1 << 11
)

// DPL returns the descriptor privilege level.
func (s Segment) DPL() uint8 { return uint8(s.Attr>>AttrDPLShift) & 3 }

// RFLAGS bits, Intel SDM vol 1 3.4.3 (Figure 3-8); AMD APM vol 2 3.1.6.
const (
	FlagCF = 1 << 0
	FlagPF = 1 << 2
	FlagAF = 1 << 4
	FlagZF = 1 << 6
	FlagSF = 1 << 7
	FlagDF = 1 << 10
	FlagOF = 1 << 11
	FlagVM = 1 << 17
	FlagAC = 1 << 18

	// arithFlags are the six status flags ALU instructions define.
	arithFlags = FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF
)

// CR0AM enables alignment checking with RFLAGS.AC at CPL 3.
// Intel SDM vol 3A 2.5.
const CR0AM = 1 << 18

// Exception vectors the emulator raises, Intel SDM vol 3A 6.3.1 (Table 6-1).
const (
	VectorUD = 6  // invalid opcode
	VectorSS = 12 // stack-segment fault
	VectorGP = 13 // general protection
	VectorPF = 14 // page fault
	VectorAC = 17 // alignment check
)

// Mode is the processor's execution mode for decoding and addressing.
type Mode uint8

const (
	ModeReal     Mode = iota // CR0.PE=0
	ModeVM86                 // virtual-8086 (RFLAGS.VM=1)
	ModeProt16               // protected mode, 16-bit code segment
	ModeProt32               // protected mode, 32-bit code segment
	ModeCompat16             // IA-32e compatibility mode, 16-bit code segment
	ModeCompat32             // IA-32e compatibility mode, 32-bit code segment
	Mode64                   // IA-32e 64-bit mode
	numModes
)

var modeNames = [numModes]string{"real", "vm86", "prot16", "prot32", "compat16", "compat32", "64-bit"}

func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return "Mode?"
}

// Bits returns the default operand and address size of the mode.
func (m Mode) Bits() int {
	switch m {
	case Mode64:
		return 64
	case ModeProt32, ModeCompat32:
		return 32
	}
	return 16
}

// ModeOf derives the execution mode from CR0, EFER, RFLAGS and the CS
// attributes (Intel SDM vol 3A 2.2, 5.2.1; AMD APM vol 2 1.2). Real mode is
// treated as 16-bit whatever the cached CS.D/B says.
func ModeOf(cr0, efer, rflags uint64, cs Segment) Mode {
	switch {
	case cr0&pagewalk.CR0PE == 0:
		return ModeReal
	case efer&pagewalk.EFERLMA != 0 && cs.Attr&AttrL != 0:
		return Mode64
	case efer&pagewalk.EFERLMA != 0:
		if cs.Attr&AttrDB != 0 {
			return ModeCompat32
		}
		return ModeCompat16
	case rflags&FlagVM != 0:
		return ModeVM86
	case cs.Attr&AttrDB != 0:
		return ModeProt32
	}
	return ModeProt16
}
