// Package emulate carries out, on behalf of a guest, the instructions that
// exit to the VMM because they touch something that is not plain RAM: MMIO
// accesses (a nested page fault or EPT violation) and string port I/O.
//
// It decodes the instruction at CS:RIP with golang.org/x/arch/x86/x86asm,
// computes effective and linear addresses with the guest's segmentation,
// translates them with vmm/pagewalk, and performs the access through a Bus.
// Guest-visible faults (#GP, #SS, #PF, #AC, #UD) come back in the Result for
// the VMM to inject; anything the emulator does not implement is an error
// wrapping ErrUnsupported that names the instruction, so the VMM can stop the
// VM with a clear reason instead of guessing.
//
// Boundary: the package sees the vCPU only through CPU and the machine only
// through Bus; it never touches hardware, vendor structures or devices.
package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"hv/vmm/pagewalk"
)

// Bus is the guest physical address space and I/O port space. RAM accesses
// go through the pagewalk.Memory methods, which fail for addresses outside
// RAM; MMIO and ports go to device models.
type Bus interface {
	pagewalk.Memory
	ReadMMIO(gpa uint64, size int) (uint64, error)
	WriteMMIO(gpa uint64, size int, value uint64) error
	In(port uint16, size int) (uint32, error)
	Out(port uint16, size int, value uint32) error
}

// ErrUnsupported is wrapped by the error returned for an instruction, or a
// form of one, that the emulator does not implement. The message names the
// mnemonic.
var ErrUnsupported = errors.New("emulate: unsupported instruction")

// ErrFetch is wrapped by the error returned when the instruction bytes lie
// outside guest RAM (a guest executing from MMIO, or a hostile mapping).
var ErrFetch = errors.New("emulate: instruction fetch outside guest RAM")

// DefaultMaxRepeat is the number of iterations of a REP string instruction
// performed per call. The bound keeps a vCPU responsive to interrupts and
// the VMM's own events (a REP of 2^32 iterations would otherwise hold the
// exit handler for seconds); the guest re-executes the instruction, which
// exits again and continues where RCX, RSI and RDI left it. 256 covers one
// 512-byte ATA sector transferred with REP INSW in a single call.
const DefaultMaxRepeat = 256

// Config describes the guest CPU model as far as the emulator cares.
type Config struct {
	// PhysAddrBits, Page1G, PSE36 and Vendor are passed to the page walker
	// (see pagewalk.Walker).
	PhysAddrBits uint8
	Page1G       bool
	PSE36        bool
	Vendor       pagewalk.Vendor
	// SetAccessedDirty makes translations set A/D flags in guest page
	// tables, as the processor would have.
	SetAccessedDirty bool
	// MaxRepeat bounds REP iterations per call; zero means DefaultMaxRepeat.
	MaxRepeat int
}

// Exception is a fault to inject into the guest.
type Exception struct {
	Vector       uint8
	HasErrorCode bool
	ErrorCode    uint32
	// CR2 is the faulting linear address of a #PF.
	CR2 uint64
}

// Result reports what one call did.
type Result struct {
	// Op is the decoded instruction (zero if decoding did not get that far).
	Op x86asm.Op
	// Len is the instruction length in bytes.
	Len int
	// NextRIP is the address of the next instruction.
	NextRIP uint64
	// Done is true when the instruction completed and RIP was set to
	// NextRIP. It is false when a REP instruction stopped after its
	// per-call bound (registers are updated, RIP is unchanged so the guest
	// re-executes it) and when an exception is to be injected.
	Done bool
	// Raised says that Exception must be injected. RIP is unchanged; a REP
	// instruction keeps the progress of the iterations before the fault, as
	// on hardware.
	Raised    bool
	Exception Exception
}

// Emulator emulates instructions for one vCPU. It is not safe for
// concurrent use; it keeps scratch buffers so that the common paths do not
// allocate.
type Emulator struct {
	cpu       CPU
	bus       Bus
	pdpteCPU  PDPTECPU
	pkruCPU   PKRUCPU
	walker    pagewalk.Walker
	maxRepeat int

	// Per-instruction state.
	st        pagewalk.State
	mode      Mode
	rflags    uint64
	faultPage uint64 // page number of the MMIO exit's GPA
	haveFault bool
	inst      x86asm.Inst
	rip, next uint64
	raised    bool
	exc       Exception
	pending   bool // a REP instruction has iterations left

	fetch [16]byte
	data  [8]byte
}

// New returns an emulator for cpu on bus.
func New(cpu CPU, bus Bus, cfg Config) *Emulator {
	e := &Emulator{
		cpu: cpu,
		bus: bus,
		walker: pagewalk.Walker{
			Mem:              bus,
			PhysAddrBits:     cfg.PhysAddrBits,
			Page1G:           cfg.Page1G,
			PSE36:            cfg.PSE36,
			Vendor:           cfg.Vendor,
			SetAccessedDirty: cfg.SetAccessedDirty,
		},
		maxRepeat: cfg.MaxRepeat,
	}
	if e.maxRepeat <= 0 {
		e.maxRepeat = DefaultMaxRepeat
	}
	e.pdpteCPU, _ = cpu.(PDPTECPU)
	e.pkruCPU, _ = cpu.(PKRUCPU)
	return e
}

// MMIO emulates the instruction at CS:RIP after an MMIO exit (nested page
// fault or EPT violation) at guest physical address gpa. Accesses that land
// on gpa's page go to Bus.ReadMMIO/WriteMMIO; others go to RAM, falling back
// to MMIO where the address is not RAM (a MOVS between two MMIO regions).
func (e *Emulator) MMIO(gpa uint64) (Result, error) {
	e.faultPage, e.haveFault = gpa>>12, true
	return e.run()
}

// PortIO emulates the I/O instruction at CS:RIP after an I/O exit: INS and
// OUTS (with REP), and IN and OUT in all their forms.
func (e *Emulator) PortIO() (Result, error) {
	e.haveFault = false
	return e.run()
}

func (e *Emulator) run() (Result, error) {
	e.raised, e.pending = false, false
	e.begin()
	if err := e.decode(); err != nil || e.raised {
		return e.result(), err
	}
	if e.inst.Prefix[0] != 0 {
		for _, p := range e.inst.Prefix {
			if p == 0 {
				break
			}
			if p&x86asm.PrefixInvalid != 0 {
				// LOCK on an instruction or operand that does not allow
				// it. Intel SDM vol 2A 3.2 "LOCK".
				e.raise(VectorUD, false, 0, 0)
				return e.result(), nil
			}
		}
	}

	var err error
	switch e.inst.Op {
	case x86asm.MOV:
		err = e.mov()
	case x86asm.MOVZX, x86asm.MOVSX, x86asm.MOVSXD:
		err = e.movExtend()
	case x86asm.ADD, x86asm.ADC, x86asm.SUB, x86asm.SBB, x86asm.AND, x86asm.OR,
		x86asm.XOR, x86asm.CMP, x86asm.TEST:
		err = e.alu()
	case x86asm.XCHG:
		err = e.xchg()
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ,
		x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ,
		x86asm.INSB, x86asm.INSW, x86asm.INSD,
		x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
		err = e.stringOp()
	case x86asm.IN, x86asm.OUT:
		err = e.portInOut()
	default:
		err = e.unsupported("")
	}
	if err != nil || e.raised {
		return e.result(), err
	}
	if !e.pending {
		e.cpu.SetRIP(e.next)
	}
	return e.result(), nil
}

func (e *Emulator) result() Result {
	r := Result{Op: e.inst.Op, Len: e.inst.Len, NextRIP: e.next}
	if e.raised {
		r.Raised, r.Exception = true, e.exc
		return r
	}
	r.Done = e.inst.Len != 0 && !e.pending
	return r
}

func (e *Emulator) unsupported(why string) error {
	if why == "" {
		return fmt.Errorf("%w: %v", ErrUnsupported, e.inst.Op)
	}
	return fmt.Errorf("%w: %v: %s", ErrUnsupported, e.inst.Op, why)
}

// begin loads the state that decides decoding and addressing.
func (e *Emulator) begin() {
	cr0, efer := e.cpu.CR0(), e.cpu.EFER()
	e.rflags = e.cpu.RFLAGS()
	e.mode = ModeOf(cr0, efer, e.rflags, e.cpu.Segment(CS))
	var cpl uint8
	switch e.mode {
	case ModeReal:
		cpl = 0
	case ModeVM86:
		cpl = 3
	default:
		// SS.DPL equals CPL outside real and virtual-8086 mode.
		// Intel SDM vol 3A 5.5; the VMX guest-state checks rely on it too.
		cpl = e.cpu.Segment(SS).DPL()
	}
	e.st = pagewalk.State{CR0: cr0, CR3: e.cpu.CR3(), CR4: e.cpu.CR4(), EFER: efer, RFLAGS: e.rflags, CPL: cpl}
	if e.pdpteCPU != nil && pagewalk.ModeOf(cr0, e.st.CR4, efer) == pagewalk.ModePAE {
		e.st.PDPTE = e.pdpteCPU.PDPTEs()
	}
	if e.pkruCPU != nil {
		e.st.PKRU = e.pkruCPU.PKRU()
	}
	e.inst.Op, e.inst.Len = 0, 0
	e.rip = e.cpu.RIP()
	e.next = e.rip
}

func (e *Emulator) raise(vector uint8, hasCode bool, code uint32, cr2 uint64) {
	e.raised = true
	e.exc = Exception{Vector: vector, HasErrorCode: hasCode, ErrorCode: code, CR2: cr2}
}

// raiseSeg raises the fault for a segmentation or canonicality violation:
// #SS(0) for accesses through SS, #GP(0) otherwise. Intel SDM vol 3A 6.15.
func (e *Emulator) raiseSeg(seg SegReg) {
	if seg == SS {
		e.raise(VectorSS, true, 0, 0)
		return
	}
	e.raise(VectorGP, true, 0, 0)
}

// maxInstLen is the architectural instruction length limit.
// Intel SDM vol 2A 2.3.11.
const maxInstLen = 15

// decode fetches and decodes the instruction at CS:RIP.
func (e *Emulator) decode() error {
	avail := uint64(maxInstLen)
	var la uint64
	if e.mode == Mode64 {
		la = e.rip
		if !e.canonical(la) {
			e.raise(VectorGP, true, 0, 0)
			return nil
		}
	} else {
		ip := e.rip & 0xFFFF_FFFF
		cs := e.cpu.Segment(CS)
		if ip > uint64(cs.Limit) {
			e.raise(VectorGP, true, 0, 0)
			return nil
		}
		avail = min(avail, uint64(cs.Limit)-ip+1)
		la = (cs.Base + ip) & 0xFFFF_FFFF
	}

	tr, err := e.walker.Translate(&e.st, la, pagewalk.AccessFetch)
	if err != nil {
		return e.walkError(err, CS)
	}
	n1 := min(avail, pageSize-la&(pageSize-1))
	if err := e.bus.ReadPhys(tr.GPA, e.fetch[:n1]); err != nil {
		return fmt.Errorf("%w: rip %#x gpa %#x: %w", ErrFetch, e.rip, tr.GPA, err)
	}
	n := n1
	// The rest of the instruction may sit on the next page; a fault there
	// matters only if the decoder needs those bytes.
	var nextErr error
	if n1 < avail {
		la2 := la + n1
		if e.mode != Mode64 {
			la2 &= 0xFFFF_FFFF
		}
		if tr2, err := e.walker.Translate(&e.st, la2, pagewalk.AccessFetch); err != nil {
			nextErr = err
		} else if err := e.bus.ReadPhys(tr2.GPA, e.fetch[n1:avail]); err != nil {
			nextErr = fmt.Errorf("%w: rip %#x gpa %#x: %w", ErrFetch, e.rip, tr2.GPA, err)
		} else {
			n = avail
		}
	}

	inst, err := x86asm.Decode(e.fetch[:n], e.mode.Bits())
	// x86asm reports a truncated instruction as a lone prefix (Op 0), not
	// as ErrTruncated, so a short buffer that does not decode is taken as
	// truncated: x86 encodings are prefix-free, so a cut instruction cannot
	// decode as a different, shorter valid one.
	if (err != nil || inst.Op == 0) && n < maxInstLen {
		switch {
		case nextErr != nil:
			if errors.Is(nextErr, ErrFetch) {
				return nextErr
			}
			return e.walkError(nextErr, CS)
		case avail < maxInstLen:
			// Cut short by the CS limit. Intel SDM vol 3A 5.3.
			e.raise(VectorGP, true, 0, 0)
			return nil
		}
	}
	if err != nil || inst.Op == 0 {
		return fmt.Errorf("%w: cannot decode % x at rip %#x: %v", ErrUnsupported, e.fetch[:n], e.rip, err)
	}
	e.inst = inst
	e.next = e.rip + uint64(inst.Len)
	switch e.mode.Bits() {
	case 16:
		e.next &= 0xFFFF
	case 32:
		e.next &= 0xFFFF_FFFF
	}
	return nil
}

// walkError turns a page-walker error into a raised exception, or returns
// it when it is not guest-visible.
func (e *Emulator) walkError(err error, seg SegReg) error {
	var f *pagewalk.Fault
	switch {
	case errors.As(err, &f):
		e.raise(VectorPF, true, uint32(f.Code), f.Addr)
		return nil
	case errors.Is(err, pagewalk.ErrNonCanonical):
		e.raiseSeg(seg)
		return nil
	}
	return fmt.Errorf("emulate: rip %#x: %w", e.rip, err)
}

// pageSize is the granularity at which accesses are split.
const pageSize = pagewalk.Size4K

func (e *Emulator) canonical(la uint64) bool {
	w := uint(48)
	if e.st.CR4&pagewalk.CR4LA57 != 0 {
		w = 57
	}
	return uint64(int64(la<<(64-w))>>(64-w)) == la
}

// memRef is a resolved memory operand: every check is done, only the
// access itself remains.
type memRef struct {
	gpa  uint64 // first byte
	gpa2 uint64 // first byte on the next page when the access is split
	n1   int    // bytes on the first page
	size int
}

// resolve applies segmentation (Intel SDM vol 3A 3.4, 5.3, 5.4),
// alignment checking (6.15 #AC) and paging to an access of size bytes at
// seg:off. It returns ok=false when it raised an exception.
func (e *Emulator) resolve(seg SegReg, off uint64, size int, acc pagewalk.Access) (memRef, bool, error) {
	last := off + uint64(size) - 1
	var la uint64
	switch e.mode {
	case Mode64:
		// Only FS and GS have bases; there are no limits. 3.2.4.
		if seg == FS || seg == GS {
			la = e.cpu.Segment(seg).Base
		}
		la += off
		if !e.canonical(la) || !e.canonical(la+uint64(size)-1) {
			e.raiseSeg(seg)
			return memRef{}, false, nil
		}
	default:
		s := e.cpu.Segment(seg)
		if e.mode != ModeReal && e.mode != ModeVM86 {
			if !e.segmentAllows(s, acc) {
				e.raiseSeg(seg)
				return memRef{}, false, nil
			}
		}
		if s.Attr&(AttrCode|AttrExpDown) == AttrExpDown && e.mode != ModeReal && e.mode != ModeVM86 {
			// Expand-down: valid offsets are above the limit, up to
			// 64 KiB or 4 GiB by the B flag. 3.4.5.1.
			upper := uint64(0xFFFF)
			if s.Attr&AttrDB != 0 {
				upper = 0xFFFF_FFFF
			}
			if off <= uint64(s.Limit) || last > upper {
				e.raiseSeg(seg)
				return memRef{}, false, nil
			}
		} else if last > uint64(s.Limit) {
			e.raiseSeg(seg)
			return memRef{}, false, nil
		}
		la = (s.Base + off) & 0xFFFF_FFFF
	}

	if size > 1 && e.st.CPL == 3 && e.st.CR0&CR0AM != 0 && e.rflags&FlagAC != 0 &&
		la&uint64(size-1) != 0 {
		e.raise(VectorAC, true, 0, 0)
		return memRef{}, false, nil
	}

	tr, err := e.walker.Translate(&e.st, la, acc)
	if err != nil {
		return memRef{}, false, e.walkError(err, seg)
	}
	ref := memRef{gpa: tr.GPA, n1: size, size: size}
	if room := pageSize - la&(pageSize-1); room < uint64(size) {
		la2 := la + room
		if e.mode != Mode64 {
			la2 &= 0xFFFF_FFFF
		}
		tr2, err := e.walker.Translate(&e.st, la2, acc)
		if err != nil {
			return memRef{}, false, e.walkError(err, seg)
		}
		ref.n1, ref.gpa2 = int(room), tr2.GPA
	}
	return ref, true, nil
}

// segmentAllows applies the protected-mode type and presence checks for a
// data access through s. Intel SDM vol 3A 5.4.1 and Table 3-1.
func (e *Emulator) segmentAllows(s Segment, acc pagewalk.Access) bool {
	if s.Attr&AttrP == 0 || s.Attr&AttrS == 0 {
		return false // unusable (null) or a system segment
	}
	write := acc&pagewalk.AccessWrite != 0
	if s.Attr&AttrCode != 0 {
		// Code segments are never writable; reads need the R bit.
		return !write && s.Attr&AttrWritable != 0
	}
	return !write || s.Attr&AttrWritable != 0
}

func (e *Emulator) onFaultPage(gpa uint64) bool {
	return e.haveFault && gpa>>12 == e.faultPage
}

func (e *Emulator) load(r memRef) (uint64, error) {
	if r.n1 == r.size {
		return e.loadPart(r.gpa, r.size)
	}
	lo, err := e.loadPart(r.gpa, r.n1)
	if err != nil {
		return 0, err
	}
	hi, err := e.loadPart(r.gpa2, r.size-r.n1)
	if err != nil {
		return 0, err
	}
	return lo | hi<<(8*r.n1), nil
}

func (e *Emulator) store(r memRef, v uint64) error {
	if r.n1 == r.size {
		return e.storePart(r.gpa, r.size, v)
	}
	if err := e.storePart(r.gpa, r.n1, v); err != nil {
		return err
	}
	return e.storePart(r.gpa2, r.size-r.n1, v>>(8*r.n1))
}

func (e *Emulator) loadPart(gpa uint64, n int) (uint64, error) {
	if !e.onFaultPage(gpa) {
		b := e.data[:n]
		if e.bus.ReadPhys(gpa, b) == nil {
			var full [8]byte
			copy(full[:], b)
			return binary.LittleEndian.Uint64(full[:]), nil
		}
	}
	if !busSize(n) {
		return 0, e.unsupported(fmt.Sprintf("%d-byte MMIO read at gpa %#x split by a page boundary", n, gpa))
	}
	v, err := e.bus.ReadMMIO(gpa, n)
	if err != nil {
		return 0, fmt.Errorf("emulate: %v at rip %#x: read gpa %#x: %w", e.inst.Op, e.rip, gpa, err)
	}
	return v & sizeMask(n), nil
}

func (e *Emulator) storePart(gpa uint64, n int, v uint64) error {
	if !e.onFaultPage(gpa) {
		var full [8]byte
		binary.LittleEndian.PutUint64(full[:], v)
		b := e.data[:n]
		copy(b, full[:n])
		if e.bus.WritePhys(gpa, b) == nil {
			return nil
		}
	}
	if !busSize(n) {
		return e.unsupported(fmt.Sprintf("%d-byte MMIO write at gpa %#x split by a page boundary", n, gpa))
	}
	if err := e.bus.WriteMMIO(gpa, n, v&sizeMask(n)); err != nil {
		return fmt.Errorf("emulate: %v at rip %#x: write gpa %#x: %w", e.inst.Op, e.rip, gpa, err)
	}
	return nil
}

func busSize(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 }

func sizeMask(n int) uint64 {
	if n >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(n)) - 1
}
