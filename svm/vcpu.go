package svm

import (
	"errors"
	"fmt"
	"unsafe"

	"hv/vmm"
)

// VCPU is one guest CPU under SVM: a VMCB, a host VMSAVE area, the I/O and
// MSR permission maps, the nested page tables of its guest memory and the
// registers VMRUN does not switch.
type VCPU struct {
	b    *Backend
	host vmm.Host

	vmcbPA, hostSavePA, iopmPA, msrpmPA uint64
	vmcb                                *VMCB
	npt                                 *NPT
	asid                                uint32

	gprs    guestGPRs
	fxArea  vmm.FXArea // guest x87/SSE state
	hostFX  vmm.FXArea
	tscAux  uint64
	flushed bool

	reinject uint64 // EXITINTINFO of the last exit, delivered before anything new

	// Where the CPU has no NRIP save (QEMU TCG), external interrupts are
	// injected as a virtual interrupt (V_IRQ with the vector in
	// V_INTR_VECTOR), which the processor delivers when the guest can take
	// it and clears when it does. QEMU 7.2 TCG delivers an EVENTINJ
	// interrupt a second time when a kick lands before the guest's next
	// exit (the injection leaves its exception_index behind); the hlt-pit
	// guests caught it with two CPUs running VMs. Everywhere else EVENTINJ
	// is used: it delivers at the very next instruction boundary, which a
	// HLT woken by that interrupt needs (Bochs takes V_IRQ one instruction
	// later).
	virqPending bool

	// The guest cannot make its own state invalid (the processor checks
	// what it loads), only the VMM can, through the setters. So the state
	// is checked in software before the first entry after a setter, and
	// the finding explains a VMEXIT_INVALID, after which the processor may
	// have overwritten the save area (QEMU does).
	dirty      bool
	entryCheck string
	entryRIP   uint64
}

// Intercepts every guest gets (APM vol. 2 15.9-15.14). Exceptions are not
// intercepted: guests handle their own.
const (
	baseMisc1 = InterceptINTR | InterceptNMI | InterceptCPUID | InterceptHLT |
		InterceptIOIOProt | InterceptMSRProt | InterceptShutdown
	baseMisc2 = InterceptVMRUN | InterceptVMMCALL | InterceptVMLOAD | InterceptVMSAVE |
		InterceptSTGI | InterceptCLGI | InterceptSKINIT | InterceptXSETBV |
		InterceptMONITOR | InterceptMWAIT
)

// passMSRs are switched by VMLOAD/VMSAVE or live in the VMCB, so guest
// accesses need no exit.
var passMSRs = []uint32{
	vmm.MSRFSBase, vmm.MSRGSBase, vmm.MSRKernelGSBase, vmm.MSRSTAR, vmm.MSRLSTAR,
	vmm.MSRCSTAR, vmm.MSRSFMASK, vmm.MSRSysenterCS, vmm.MSRSysenterESP, vmm.MSRSysenterEIP,
}

func (b *Backend) page(pa uint64) []byte { return b.host.Bytes(pa, 4096) }

// NewVCPU implements vmm.Backend.
func (b *Backend) NewVCPU(mem *vmm.Memory, cpu int) (vmm.VCPU, error) {
	v := &VCPU{b: b, host: b.host}
	var err error
	alloc := func(n uint64) uint64 {
		if err != nil {
			return 0
		}
		var pa uint64
		pa, err = b.host.AllocFrames(n, 1)
		return pa
	}
	v.vmcbPA = alloc(1)
	v.hostSavePA = alloc(1)
	v.iopmPA = alloc(IOPMSize / 4096)
	v.msrpmPA = alloc(MSRPMSize / 4096)
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("svm: allocate VMCB: %w", err)
	}
	v.vmcb = (*VMCB)(unsafe.Pointer(&b.page(v.vmcbPA)[0]))
	iopm := (*IOPM)(unsafe.Pointer(&b.host.Bytes(v.iopmPA, IOPMSize)[0]))
	iopm.InterceptAll()
	msrpm := (*MSRPM)(unsafe.Pointer(&b.host.Bytes(v.msrpmPA, MSRPMSize)[0]))
	msrpm.InterceptAll()
	for _, m := range passMSRs {
		if err := msrpm.Allow(m, MSRReadWrite); err != nil {
			v.Close()
			return nil, fmt.Errorf("svm: MSR permission map: %w", err)
		}
	}
	var ranges []HostRange
	for _, r := range mem.Regions() {
		ranges = append(ranges, HostRange{Base: r.HPA, Size: r.Size})
	}
	if v.npt, err = NewNPT(tables{b.host}, ranges); err != nil {
		v.Close()
		return nil, err
	}
	for _, r := range mem.Regions() {
		if err := v.npt.Map(r.GPA, r.HPA, r.Size, PermRead|PermWrite|PermExec); err != nil {
			v.Close()
			return nil, fmt.Errorf("svm: map guest RAM %#x+%#x: %w", r.GPA, r.Size, err)
		}
	}
	v.asid = 1 + b.asids.Add(1)%b.info.MaxASID()

	c := &v.vmcb.Control
	c.InterceptMisc1 = baseMisc1
	c.InterceptMisc2 = baseMisc2
	c.IOPMBasePA = v.iopmPA
	c.MSRPMBasePA = v.msrpmPA
	c.GuestASID = v.asid
	c.NestedCtl = NestedCtlNPEnable
	c.NCR3 = v.npt.Root()
	c.VIntr = VIntrMasking // guest RFLAGS.IF masks only virtual interrupts; host interrupts always exit
	v.reset()
	v.fxArea.Reset()
	v.dirty = true
	return v, nil
}

// reset puts the vCPU in the architectural power-on state (APM vol. 2
// 14.1.3): real mode at F000:FFF0.
func (v *VCPU) reset() {
	s := &v.vmcb.Save
	data := Segment{Attrib: 0x93, Limit: 0xFFFF}
	s.ES, s.SS, s.DS, s.FS, s.GS = data, data, data, data, data
	s.CS = Segment{Selector: 0xF000, Attrib: 0x9B, Limit: 0xFFFF, Base: 0xFFFF0000}
	s.GDTR = Segment{Limit: 0xFFFF}
	s.IDTR = Segment{Limit: 0xFFFF}
	s.LDTR = Segment{Attrib: 0x82, Limit: 0xFFFF}
	s.TR = Segment{Attrib: 0x8B, Limit: 0xFFFF}
	s.CR0 = vmm.ResetCR0
	s.CR3, s.CR4 = 0, 0
	s.EFER = EFERSVME
	s.RFLAGS = 2
	s.RIP = 0xFFF0
	s.DR6, s.DR7 = vmm.ResetDR6, vmm.ResetDR7
	s.GPAT = vmm.ResetPAT
	s.CPL = 0
}

// Close implements vmm.VCPU.
func (v *VCPU) Close() error {
	if v.npt != nil {
		v.npt.Destroy()
		v.npt = nil
	}
	for _, p := range []struct{ pa, n uint64 }{{v.vmcbPA, 1}, {v.hostSavePA, 1}, {v.iopmPA, IOPMSize / 4096}, {v.msrpmPA, MSRPMSize / 4096}} {
		if p.pa != 0 {
			_ = v.host.FreeFrames(p.pa, p.n)
		}
	}
	v.vmcbPA, v.hostSavePA, v.iopmPA, v.msrpmPA, v.vmcb = 0, 0, 0, 0, nil
	return nil
}

// Run implements vmm.VCPU.
func (v *VCPU) Run() (vmm.Exit, error) {
	c := &v.vmcb.Control
	if c.EventInj&(1<<31) == 0 && v.reinject != 0 {
		c.EventInj = v.reinject
	}
	v.reinject = 0
	if v.dirty {
		v.entryCheck = v.invalidReason()
		v.dirty = false
	}
	v.entryRIP = v.vmcb.Save.RIP
	c.TLBControl = TLBControlDoNothing
	if !v.flushed {
		// A new ASID may hold another guest's translations from before.
		c.TLBControl = TLBControlFlushAll
		v.flushed = true
	}
	worldSwitch(v.vmcbPA, v.hostSavePA, &v.gprs, &v.fxArea.Image()[0], &v.hostFX.Image()[0])
	c.EventInj = 0
	if v.virqPending && c.VIntr&VIntrIRQ == 0 {
		v.virqPending = false // the guest took it
	}
	if ev, err := DecodeEvent(c.ExitIntInfo); err == nil && ev.Valid {
		v.reinject = c.ExitIntInfo
	}
	return v.decodeExit()
}

func (v *VCPU) nextRIP() uint64 {
	if v.b.nrips {
		return v.vmcb.Control.NRIP
	}
	return 0 // QEMU TCG: the VMM decodes the instruction
}

func (v *VCPU) decodeExit() (vmm.Exit, error) {
	c := &v.vmcb.Control
	code := NormalizeExitCode(c.ExitCode)
	ex := vmm.Exit{Raw: uint64(code), Qual: c.ExitInfo1, Info2: c.ExitInfo2}
	switch code {
	case ExitIOIO:
		io, err := DecodeIOIO(c.ExitInfo1, c.ExitInfo2)
		if err != nil {
			ex.Reason, ex.Detail = vmm.ExitUnknown, err.Error()
			return ex, nil
		}
		ex.Reason = vmm.ExitIO
		ex.IO = vmm.IOAccess{Port: io.Port, Size: io.Size, In: io.In, String: io.String, Rep: io.Rep}
		ex.NextRIP = io.NextRIP
	case ExitNPF:
		npf := DecodeNPF(c.ExitInfo1, c.ExitInfo2)
		ex.Reason, ex.GPA, ex.Write = vmm.ExitMMIO, npf.GPA, npf.Write
	case ExitCPUID:
		ex.Reason, ex.NextRIP = vmm.ExitCPUID, v.nextRIP()
	case ExitHLT:
		ex.Reason, ex.NextRIP = vmm.ExitHLT, v.nextRIP()
	case ExitMSR:
		write, err := DecodeMSRExit(c.ExitInfo1)
		if err != nil {
			ex.Reason, ex.Detail = vmm.ExitUnknown, err.Error()
			return ex, nil
		}
		ex.Reason, ex.Write, ex.MSR, ex.NextRIP = vmm.ExitMSRRead, write, uint32(v.gprs.rcx), v.nextRIP()
		if write {
			ex.Reason = vmm.ExitMSRWrite
		}
	case ExitRDTSC:
		ex.Reason, ex.NextRIP = vmm.ExitRDTSC, v.nextRIP()
	case ExitRDTSCP:
		ex.Reason, ex.NextRIP = vmm.ExitRDTSCP, v.nextRIP()
	case ExitVMMCALL:
		ex.Reason, ex.NextRIP = vmm.ExitHypercall, v.nextRIP()
	case ExitPAUSE:
		ex.Reason, ex.NextRIP = vmm.ExitPause, v.nextRIP()
	case ExitXSETBV:
		ex.Reason, ex.NextRIP = vmm.ExitXSETBV, v.nextRIP()
	case ExitINTR:
		ex.Reason = vmm.ExitExternalInterrupt
	case ExitNMI:
		ex.Reason = vmm.ExitNMI
	case ExitVINTR:
		ex.Reason = vmm.ExitInterruptWindow
		v.InterruptWindow(false)
	case ExitShutdown:
		ex.Reason = vmm.ExitShutdown
	case ExitVMRUN, ExitVMLOAD, ExitVMSAVE, ExitSTGI, ExitCLGI, ExitSKINIT:
		ex.Reason = vmm.ExitVirtInstr
	case ExitMONITOR, ExitMWAIT, ExitMWAITConditional:
		ex.Reason = vmm.ExitInvalidOpcode
	case ExitInvalid:
		ex.Reason, ex.Detail = vmm.ExitInvalidState, "VMRUN refused the VMCB (VMEXIT_INVALID): "+v.entryCheck
		v.vmcb.Save.RIP = v.entryRIP
	default:
		if vec, ok := code.ExceptionVector(); ok {
			ex.Reason, ex.Vector = vmm.ExitException, vec
			ex.ErrCode, ex.HasError = uint32(c.ExitInfo1), ExceptionHasErrorCode(vec)
			break
		}
		ex.Reason, ex.Detail = vmm.ExitUnknown, code.String()
	}
	return ex, nil
}

// invalidReason names the first consistency check of APM vol. 2 15.5.1
// that the saved state fails, when it can be determined in software.
func (v *VCPU) invalidReason() string {
	s := &v.vmcb.Save
	const cd, nw, pg, pe = 1 << 30, 1 << 29, 1 << 31, 1
	switch {
	case s.EFER&EFERSVME == 0:
		return "EFER.SVME is zero"
	case s.CR0&cd == 0 && s.CR0&nw != 0:
		return "CR0.CD is zero and CR0.NW is set"
	case s.CR0>>32 != 0:
		return "CR0[63:32] are not zero"
	case s.CR4>>32 != 0 || s.CR4&(1<<15) != 0:
		return "CR4 reserved bits are set"
	case s.DR6>>32 != 0 || s.DR7>>32 != 0:
		return "DR6[63:32] or DR7[63:32] are not zero"
	case s.EFER>>16 != 0 || s.EFER&(1<<9|1<<1|1<<2|1<<3|1<<4|1<<5|1<<6|1<<7) != 0:
		return "EFER reserved bits are set"
	case s.EFER&(1<<8) != 0 && s.CR0&pg != 0 && s.CR4&(1<<5) == 0:
		return "EFER.LME and CR0.PG are set but CR4.PAE is zero"
	case s.EFER&(1<<8) != 0 && s.CR0&pg != 0 && s.CR0&pe == 0:
		return "EFER.LME and CR0.PG are set but CR0.PE is zero"
	case v.vmcb.Control.InterceptMisc2&InterceptVMRUN == 0:
		return "the VMRUN intercept is clear"
	case v.vmcb.Control.GuestASID == 0:
		return "ASID is zero"
	}
	return "a check that software cannot see (event injection or segment state)"
}

// Regs implements vmm.VCPU.
func (v *VCPU) Regs() vmm.Regs {
	s, g := &v.vmcb.Save, &v.gprs
	return vmm.Regs{
		RAX: s.RAX, RBX: g.rbx, RCX: g.rcx, RDX: g.rdx, RSI: g.rsi, RDI: g.rdi, RBP: g.rbp, RSP: s.RSP,
		R8: g.r8, R9: g.r9, R10: g.r10, R11: g.r11, R12: g.r12, R13: g.r13, R14: g.r14, R15: g.r15,
		RIP: s.RIP, RFLAGS: s.RFLAGS,
	}
}

// SetRegs implements vmm.VCPU.
func (v *VCPU) SetRegs(r vmm.Regs) {
	s, g := &v.vmcb.Save, &v.gprs
	s.RAX, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, s.RSP = r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP, r.RSP
	g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15 = r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15
	if r.RIP != s.RIP {
		// The VMM moved past an instruction (or elsewhere): an STI or MOV SS
		// shadow covered that instruction only, as after STI;HLT.
		v.vmcb.Control.InterruptShadow = 0
	}
	s.RIP, s.RFLAGS = r.RIP, r.RFLAGS|2
}

func toSeg(s Segment) vmm.Segment {
	return vmm.Segment{Selector: s.Selector, Attrib: s.Attrib, Limit: s.Limit, Base: s.Base}
}

func fromSeg(s vmm.Segment) Segment {
	return Segment{Selector: s.Selector, Attrib: s.Attrib, Limit: s.Limit, Base: s.Base}
}

// SRegs implements vmm.VCPU.
func (v *VCPU) SRegs() vmm.SRegs {
	s := &v.vmcb.Save
	return vmm.SRegs{
		CS: toSeg(s.CS), DS: toSeg(s.DS), ES: toSeg(s.ES), FS: toSeg(s.FS), GS: toSeg(s.GS), SS: toSeg(s.SS),
		TR: toSeg(s.TR), LDTR: toSeg(s.LDTR),
		GDT: vmm.DTable{Base: s.GDTR.Base, Limit: uint16(s.GDTR.Limit)},
		IDT: vmm.DTable{Base: s.IDTR.Base, Limit: uint16(s.IDTR.Limit)},
		CR0: s.CR0, CR2: s.CR2, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER &^ EFERSVME, CPL: s.CPL,
	}
}

// SetSRegs implements vmm.VCPU. The guest's EFER.SVME stays set: VMRUN
// requires it, and the guest never sees it.
func (v *VCPU) SetSRegs(r vmm.SRegs) {
	s := &v.vmcb.Save
	v.dirty = true
	s.CS, s.DS, s.ES, s.FS, s.GS, s.SS = fromSeg(r.CS), fromSeg(r.DS), fromSeg(r.ES), fromSeg(r.FS), fromSeg(r.GS), fromSeg(r.SS)
	s.TR, s.LDTR = fromSeg(r.TR), fromSeg(r.LDTR)
	s.GDTR = Segment{Base: r.GDT.Base, Limit: uint32(r.GDT.Limit)}
	s.IDTR = Segment{Base: r.IDT.Base, Limit: uint32(r.IDT.Limit)}
	s.CR0, s.CR2, s.CR3, s.CR4, s.EFER, s.CPL = r.CR0, r.CR2, r.CR3, r.CR4, r.EFER|EFERSVME, r.CPL
}

// MSR implements vmm.VCPU.
func (v *VCPU) MSR(msr uint32) (uint64, bool) {
	s := &v.vmcb.Save
	switch msr {
	case vmm.MSREFER:
		return s.EFER &^ EFERSVME, true
	case vmm.MSRPAT:
		return s.GPAT, true
	case vmm.MSRSTAR:
		return s.STAR, true
	case vmm.MSRLSTAR:
		return s.LSTAR, true
	case vmm.MSRCSTAR:
		return s.CSTAR, true
	case vmm.MSRSFMASK:
		return s.SFMASK, true
	case vmm.MSRFSBase:
		return s.FS.Base, true
	case vmm.MSRGSBase:
		return s.GS.Base, true
	case vmm.MSRKernelGSBase:
		return s.KernelGSBase, true
	case vmm.MSRSysenterCS:
		return s.SysenterCS, true
	case vmm.MSRSysenterESP:
		return s.SysenterESP, true
	case vmm.MSRSysenterEIP:
		return s.SysenterEIP, true
	case vmm.MSRTSCAux:
		return v.tscAux, true
	}
	return 0, false
}

// SetMSR implements vmm.VCPU.
func (v *VCPU) SetMSR(msr uint32, val uint64) bool {
	s := &v.vmcb.Save
	v.dirty = true
	switch msr {
	case vmm.MSREFER:
		// LMA is the processor's to set (APM vol. 2 14.6.2).
		const lma = 1 << 10
		s.EFER = val&^lma | s.EFER&lma | EFERSVME
	case vmm.MSRPAT:
		s.GPAT = val
	case vmm.MSRSTAR:
		s.STAR = val
	case vmm.MSRLSTAR:
		s.LSTAR = val
	case vmm.MSRCSTAR:
		s.CSTAR = val
	case vmm.MSRSFMASK:
		s.SFMASK = val
	case vmm.MSRFSBase:
		s.FS.Base = val
	case vmm.MSRGSBase:
		s.GS.Base = val
	case vmm.MSRKernelGSBase:
		s.KernelGSBase = val
	case vmm.MSRSysenterCS:
		s.SysenterCS = val
	case vmm.MSRSysenterESP:
		s.SysenterESP = val
	case vmm.MSRSysenterEIP:
		s.SysenterEIP = val
	case vmm.MSRTSCAux:
		v.tscAux = val & 0xFFFFFFFF
	default:
		return false
	}
	return true
}

var eventTypes = [...]EventType{vmm.EventExternal: EventINTR, vmm.EventNMI: EventNMI, vmm.EventException: EventException, vmm.EventSoftware: EventSoftInt}

// Inject implements vmm.VCPU.
func (v *VCPU) Inject(ev vmm.Event) {
	if ev.Type == vmm.EventExternal && !v.b.nrips {
		c := &v.vmcb.Control
		c.VIntr = c.VIntr&^(VIntrVectorMask|VIntrPrioMask) | uint64(ev.Vector)<<VIntrVectorShift |
			0xF<<VIntrPrioShift | VIntrIRQ | VIntrIgnTPR
		c.InterceptMisc1 &^= InterceptVINTR
		v.virqPending = true
		return
	}
	e := Event{Valid: true, Vector: ev.Vector, Type: eventTypes[ev.Type], ErrorCodeValid: ev.HasError, ErrorCode: ev.ErrCode}
	raw, err := e.Encode()
	if err != nil {
		return // the VMM never asks for an unencodable event
	}
	v.vmcb.Control.EventInj = raw
}

// InterruptWindow implements vmm.VCPU with a virtual interrupt request
// (V_IRQ) and the VINTR intercept: the exit comes when the guest could take
// it (APM vol. 2 15.21.4).
func (v *VCPU) InterruptWindow(want bool) {
	c := &v.vmcb.Control
	if v.virqPending {
		return // V_IRQ carries an injected interrupt; it needs no window
	}
	if want {
		c.VIntr |= VIntrIRQ | VIntrIgnTPR
		c.InterceptMisc1 |= InterceptVINTR
		return
	}
	c.VIntr &^= VIntrIRQ | VIntrIgnTPR
	c.InterceptMisc1 &^= InterceptVINTR
}

// CanInterrupt implements vmm.VCPU.
func (v *VCPU) CanInterrupt() bool {
	c := &v.vmcb.Control
	return v.vmcb.Save.RFLAGS&(1<<9) != 0 && c.InterruptShadow&1 == 0 && c.EventInj&(1<<31) == 0 && v.reinject == 0 && !v.virqPending
}

// SetTSCOffset implements vmm.VCPU.
func (v *VCPU) SetTSCOffset(off int64) { v.vmcb.Control.TSCOffset = uint64(off) }

// TSCOffset implements vmm.VCPU.
func (v *VCPU) TSCOffset() int64 { return int64(v.vmcb.Control.TSCOffset) }

// InterceptRDTSC implements vmm.VCPU.
func (v *VCPU) InterceptRDTSC(on bool) {
	c := &v.vmcb.Control
	if on {
		c.InterceptMisc1 |= InterceptRDTSC
		c.InterceptMisc2 |= InterceptRDTSCP
		return
	}
	c.InterceptMisc1 &^= InterceptRDTSC
	c.InterceptMisc2 &^= InterceptRDTSCP
}

// InterceptPause implements vmm.PauseInterceptor: every PAUSE exits (APM
// vol. 2 15.14.4; no pause filter is set, since QEMU TCG has none).
func (v *VCPU) InterceptPause(on bool) {
	c := &v.vmcb.Control
	if on {
		c.InterceptMisc1 |= InterceptPAUSE
		return
	}
	c.InterceptMisc1 &^= InterceptPAUSE
}

var stateMSRs = []uint32{vmm.MSRPAT, vmm.MSRSTAR, vmm.MSRLSTAR, vmm.MSRCSTAR, vmm.MSRSFMASK,
	vmm.MSRKernelGSBase, vmm.MSRSysenterCS, vmm.MSRSysenterESP, vmm.MSRSysenterEIP, vmm.MSRTSCAux}

// SaveState implements vmm.VCPU.
func (v *VCPU) SaveState() (vmm.State, error) {
	st := vmm.State{Regs: v.Regs(), SRegs: v.SRegs(), MSRs: map[uint32]uint64{}, TSCOffset: v.TSCOffset()}
	for _, m := range stateMSRs {
		st.MSRs[m], _ = v.MSR(m)
	}
	copy(st.FPU[:], v.fxArea.Image())
	c := &v.vmcb.Control
	pending := c.EventInj
	if pending&(1<<31) == 0 {
		pending = v.reinject
	}
	if pending&(1<<31) != 0 {
		e, err := DecodeEvent(pending)
		if err != nil {
			return st, fmt.Errorf("svm: save pending event: %w", err)
		}
		typ := map[EventType]vmm.EventType{EventINTR: vmm.EventExternal, EventNMI: vmm.EventNMI, EventException: vmm.EventException, EventSoftInt: vmm.EventSoftware}[e.Type]
		st.Pending = &vmm.Event{Type: typ, Vector: e.Vector, ErrCode: e.ErrorCode, HasError: e.ErrorCodeValid}
	}
	if st.Pending == nil && v.virqPending {
		st.Pending = &vmm.Event{Type: vmm.EventExternal, Vector: uint8(c.VIntr >> VIntrVectorShift)}
	}
	st.Shadow = c.InterruptShadow&1 != 0
	st.DR6, st.DR7 = v.vmcb.Save.DR6, v.vmcb.Save.DR7
	return st, nil
}

// RestoreState implements vmm.VCPU.
func (v *VCPU) RestoreState(st vmm.State) error {
	if st.MSRs == nil {
		return errors.New("svm: restore: state has no MSRs")
	}
	v.SetRegs(st.Regs)
	v.SetSRegs(st.SRegs)
	for m, val := range st.MSRs {
		if !v.SetMSR(m, val) {
			return fmt.Errorf("svm: restore: MSR %#x is not part of the vCPU state", m)
		}
	}
	copy(v.fxArea.Image(), st.FPU[:])
	v.SetTSCOffset(st.TSCOffset)
	v.vmcb.Control.EventInj, v.reinject = 0, 0
	v.virqPending = false
	v.vmcb.Control.VIntr &^= VIntrIRQ | VIntrIgnTPR | VIntrVectorMask
	if st.Pending != nil {
		v.Inject(*st.Pending)
	}
	v.vmcb.Control.InterruptShadow = 0
	if st.Shadow {
		v.vmcb.Control.InterruptShadow = 1
	}
	v.vmcb.Save.DR6, v.vmcb.Save.DR7 = st.DR6, st.DR7
	return nil
}
