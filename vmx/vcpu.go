package vmx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"hv/boot"
	"hv/vmm"
)

// VCPU is one guest CPU under VMX: a VMCS, the I/O and MSR bitmaps, the
// MSR areas for the MSRs VM entry and exit switch through lists, the EPT of
// its guest memory, and the guest registers the VMCS does not hold.
//
// The VMCS is current on the CPU the vCPU was created on; every VMREAD and
// VMWRITE (vmread, vmwrite) and every entry makes it current first if
// another vCPU's VMCS was, so vCPUs may share a CPU one after another. The
// vCPU must never move to another CPU: its VMCS is active there.
type VCPU struct {
	b    *Backend
	host vmm.Host
	mem  *vmm.Memory
	cpu  int

	vmcsPA, msrBitmapPA, ioBitmapPA, guestMSRPA, hostMSRPA uint64
	eptTables                                              *tables
	ept                                                    *EPT
	eptp                                                   uint64
	vpid                                                   uint16

	ctl      Controls // as written to the VMCS
	cr0Mask  uint64   // CR0 bits the VMM owns: reads see the shadow, changes exit
	cr4Mask  uint64
	msrList  []uint32 // MSRs on the entry-load/exit-store and exit-load lists, in list order
	tscOff   int64
	tscAux   uint64 // when the CPU has no RDTSCP
	cr8      uint64 // when CR8 accesses exit (CPUs without TRUE controls)
	launched bool
	flushed  bool // INVEPT/INVVPID done for this EPTP and VPID

	gprs                guestGPRs
	rip, rsp, rflags    uint64
	regsDirty           bool
	interruptibility    uint32
	fxArea, hostFXArea  vmm.FXArea
	injected            bool // the VM-entry interruption information is valid
	reinject            *Reinjection
	lastInstrLen        uint32
	err                 error // first failed VMREAD/VMWRITE
	dirty               bool  // the VMM changed the state: check it before the next entry
	entryCheck          string
	exits, crEmulations uint64
}

func asTable(b []byte) *[512]uint64 { return (*[512]uint64)(unsafe.Pointer(&b[0])) }

// ReadField implements Accessor with VMREAD on the vCPU's VMCS.
func (v *VCPU) ReadField(f Field) (uint64, error) {
	x, st := vmread(v.vmcsPA, uint64(f))
	if st != vmSucceed {
		return 0, v.instrError("VMREAD "+f.String(), st)
	}
	return x, nil
}

// WriteField implements Accessor with VMWRITE on the vCPU's VMCS.
func (v *VCPU) WriteField(f Field, x uint64) error {
	if st := vmwrite(v.vmcsPA, uint64(f), x); st != vmSucceed {
		return v.instrError("VMWRITE "+f.String(), st)
	}
	return nil
}

// instrError explains a failed VMX instruction.
func (v *VCPU) instrError(what string, st uint64) error {
	if st == vmFailInvalid {
		return fmt.Errorf("vmx: %s: VMfailInvalid (no current VMCS)", what)
	}
	n, st2 := vmread(v.vmcsPA, uint64(VMCSInstructionError))
	if st2 != vmSucceed {
		return fmt.Errorf("vmx: %s: VMfailValid", what)
	}
	return fmt.Errorf("vmx: %s: %w", what, InstructionError(n))
}

// rd and wr access fields, remembering the first failure in v.err (a failed
// VMREAD/VMWRITE is a bug of ours, reported at the next Run).
func (v *VCPU) rd(f Field) uint64 {
	x, err := v.ReadField(f)
	if err != nil && v.err == nil {
		v.err = err
	}
	return x
}

func (v *VCPU) wr(f Field, x uint64) {
	if err := v.WriteField(f, x); err != nil && v.err == nil {
		v.err = err
	}
}

// Guest MSRs switched through the VM-entry MSR-load, VM-exit MSR-store and
// VM-exit MSR-load lists (SDM 25.7.2, 25.8.2): the SYSCALL MSRs and the
// kernel GS base, which the VMCS has no fields for. The host's values (the
// platform's system-call entry among them) come back on every exit.
var listMSRs = []uint32{vmm.MSRSTAR, vmm.MSRLSTAR, vmm.MSRCSTAR, vmm.MSRSFMASK, vmm.MSRKernelGSBase}

// passMSRs need no exit: the VMCS or the MSR lists switch them.
var passMSRs = []uint32{vmm.MSRFSBase, vmm.MSRGSBase, vmm.MSRSysenterCS, vmm.MSRSysenterESP, vmm.MSRSysenterEIP}

// MSR-list entry layout, SDM 25.7.2 Table 25-14: index (32 bits), reserved
// (32), data (64).
const msrEntrySize = 16

// NewVCPU implements vmm.Backend. The caller must be pinned to cpu, on
// which EnableCPU has succeeded.
func (b *Backend) NewVCPU(mem *vmm.Memory, cpu int) (vmm.VCPU, error) {
	b.mu.Lock()
	_, on := b.vmxon[cpu]
	b.mu.Unlock()
	if !on {
		return nil, fmt.Errorf("vmx: cpu %d is not in VMX operation", cpu)
	}
	v := &VCPU{b: b, host: b.host, mem: mem, cpu: cpu, ctl: b.controls}
	if err := v.allocate(); err != nil {
		v.Close()
		return nil, err
	}
	if err := v.setup(); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

func (v *VCPU) allocate() error {
	var err error
	alloc := func(n uint64) uint64 {
		if err != nil {
			return 0
		}
		var pa uint64
		pa, err = v.host.AllocFrames(n, 1)
		return pa
	}
	v.vmcsPA = alloc(1)
	v.msrBitmapPA = alloc(1)
	v.ioBitmapPA = alloc(2)
	v.guestMSRPA = alloc(1)
	v.hostMSRPA = alloc(1)
	if err != nil {
		return fmt.Errorf("vmx: allocate VMCS: %w", err)
	}
	putRevision(v.host.Bytes(v.vmcsPA, 4096), v.b.caps.Basic.Revision)

	msrs := (*MSRBitmap)(unsafe.Pointer(&v.host.Bytes(v.msrBitmapPA, 4096)[0]))
	msrs.InterceptAll()
	v.msrList = append([]uint32(nil), listMSRs...)
	if v.b.rdtscp {
		v.msrList = append(v.msrList, vmm.MSRTSCAux)
	}
	for _, m := range append(append([]uint32(nil), passMSRs...), v.msrList...) {
		if err := msrs.SetIntercept(m, false, false); err != nil {
			return err
		}
	}
	io := v.host.Bytes(v.ioBitmapPA, 8192)
	IOBitmaps{A: (*[4096]byte)(io[:4096]), B: (*[4096]byte)(io[4096:])}.InterceptAll()

	host, guest := v.host.Bytes(v.hostMSRPA, 4096), v.host.Bytes(v.guestMSRPA, 4096)
	for i, m := range v.msrList {
		binary.LittleEndian.PutUint32(guest[i*msrEntrySize:], m)
		binary.LittleEndian.PutUint32(host[i*msrEntrySize:], m)
		binary.LittleEndian.PutUint64(host[i*msrEntrySize+8:], hostMSR(m))
	}

	v.eptTables = &tables{host: v.host}
	v.ept, err = NewEPT(v.eptTables, v.b.caps.EPTVPID, EPTConfig{PhysAddrBits: v.b.physBits, AllowLarge: true})
	if err != nil {
		return err
	}
	for _, r := range v.mem.Regions() {
		if err := v.ept.Map(r.GPA, r.HPA, r.Size, PermRWX, MemWB); err != nil {
			return fmt.Errorf("vmx: map guest RAM %#x+%#x: %w", r.GPA, r.Size, err)
		}
	}
	if v.eptp, err = MakeEPTP(v.ept.Root(), v.ept.Levels(), MemWB, false, v.b.caps.EPTVPID); err != nil {
		return err
	}
	if v.ctl.Proc2&Proc2EnableVPID != 0 {
		v.vpid = uint16(1 + v.b.vpids.Add(1)%0xFFFF)
	}
	if st := vmclear(v.vmcsPA); st != vmSucceed {
		return fmt.Errorf("vmx: VMCLEAR: status %d", st)
	}
	if st := vmptrld(v.vmcsPA); st != vmSucceed {
		return fmt.Errorf("vmx: VMPTRLD: status %d", st)
	}
	return nil
}

// Host selectors of the platform GDT (boot/layout.go): 64-bit code, data,
// and the TSS, which VM exits need non-zero (SDM 27.2.3).
const (
	hostCS = 0x08
	hostDS = 0x10
	hostTR = 0x18
)

// MSR numbers of the host state (SDM Vol. 4).
const (
	msrFSBase = 0xC0000100
	msrGSBase = 0xC0000101
)

// setup writes the control and host-state fields and the power-on guest
// state.
func (v *VCPU) setup() error {
	c := v.b.caps
	v.wr(VMCSPinBasedControls.Field(), uint64(v.ctl.Pin))
	v.wr(VMCSProcBasedControls.Field(), uint64(v.ctl.Proc))
	if v.ctl.Proc&ProcActivateSecondary != 0 {
		v.wr(VMCSProcBasedControls2.Field(), uint64(v.ctl.Proc2))
	}
	v.wr(VMCSExitControls.Field(), uint64(v.ctl.Exit))
	v.wr(VMCSEntryControls.Field(), uint64(v.ctl.Entry))
	v.wr(VMCSExceptionBitmap.Field(), 0) // guests handle their own exceptions
	v.wr(VMCSPageFaultErrorMask.Field(), 0)
	v.wr(VMCSPageFaultErrorMatch.Field(), 0)
	v.wr(VMCSCR3TargetCount.Field(), 0)
	v.wr(VMCSIOBitmapA.Field(), v.ioBitmapPA)
	v.wr(VMCSIOBitmapB.Field(), v.ioBitmapPA+4096)
	v.wr(VMCSMSRBitmap.Field(), v.msrBitmapPA)
	v.wr(VMCSEPTPointer.Field(), v.eptp)
	if v.vpid != 0 {
		v.wr(VMCSVPID.Field(), uint64(v.vpid))
	}
	v.wr(VMCSTSCOffset.Field(), 0)
	n := uint64(len(v.msrList))
	v.wr(VMCSEntryMSRLoadAddr.Field(), v.guestMSRPA)
	v.wr(VMCSEntryMSRLoadCount.Field(), n)
	v.wr(VMCSExitMSRStoreAddr.Field(), v.guestMSRPA)
	v.wr(VMCSExitMSRStoreCount.Field(), n)
	v.wr(VMCSExitMSRLoadAddr.Field(), v.hostMSRPA)
	v.wr(VMCSExitMSRLoadCount.Field(), n)
	v.wr(VMCSEntryInterruptionInfo.Field(), 0)
	v.wr(VMCSLinkPointer.Field(), ^uint64(0))
	if v.ctl.Pin&PinPreemptionTimer != 0 {
		v.wr(VMCSPreemptionTimerValue.Field(), preemptionValue(c.Misc.PreemptionTimerRate))
	}

	// CR0 and CR4 bits fixed in VMX operation are the VMM's: the guest
	// reads its own values from the read shadows, and a MOV that would
	// change one exits (SDM 25.6.6).
	v.cr0Mask = (c.GuestCR0Fixed0(true) | ^c.CR0Fixed1) & 0xFFFF_FFFF
	v.cr4Mask = (c.CR4Fixed0 | ^c.CR4Fixed1) & 0xFFFF_FFFF
	v.wr(VMCSCR0GuestHostMask.Field(), v.cr0Mask)
	v.wr(VMCSCR4GuestHostMask.Field(), v.cr4Mask)

	// Host state (SDM 25.5, 28.5): what this CPU runs with now.
	v.wr(VMCSHostCR0.Field(), boot.CR0())
	v.wr(VMCSHostCR4.Field(), boot.CR4())
	// CR3, FS base (the Go TLS of this locked thread) and GS base (the
	// platform's per-CPU area of this pinned CPU) cannot change while the
	// vCPU lives: it exists within one VM.Run on one locked, pinned thread.
	// So the host state is written once, not before every entry.
	v.wr(VMCSHostCR3.Field(), boot.CR3())
	for _, f := range []Field16{VMCSHostESSelector, VMCSHostSSSelector, VMCSHostDSSelector} {
		v.wr(f.Field(), hostDS)
	}
	v.wr(VMCSHostCSSelector.Field(), hostCS)
	v.wr(VMCSHostFSSelector.Field(), 0)
	v.wr(VMCSHostGSSelector.Field(), 0)
	tr := str()
	if tr == 0 {
		return errors.New("vmx: the host has no task register (VM exits need one)")
	}
	v.wr(VMCSHostTRSelector.Field(), uint64(tr))
	gdt, gdtLimit := sgdt()
	idt, _ := sidt()
	if uint64(tr)+15 > uint64(gdtLimit) {
		return fmt.Errorf("vmx: host TR %#x outside the GDT (limit %#x)", tr, gdtLimit)
	}
	v.wr(VMCSHostTRBase.Field(), tssBase(v.host.Bytes(gdt+uint64(tr), 16)))
	v.wr(VMCSHostGDTRBase.Field(), gdt)
	v.wr(VMCSHostIDTRBase.Field(), idt)
	v.wr(VMCSHostSysenterCS.Field(), hostMSR(vmm.MSRSysenterCS))
	v.wr(VMCSHostSysenterESP.Field(), hostMSR(vmm.MSRSysenterESP))
	v.wr(VMCSHostSysenterEIP.Field(), hostMSR(vmm.MSRSysenterEIP))
	v.wr(VMCSHostEFER.Field(), hostMSR(vmm.MSREFER))
	v.wr(VMCSHostPAT.Field(), hostMSR(vmm.MSRPAT))
	v.wr(VMCSHostFSBase.Field(), hostMSR(msrFSBase))
	v.wr(VMCSHostGSBase.Field(), hostMSR(msrGSBase))

	v.reset()
	v.fxArea.Reset()
	if v.err != nil {
		return v.err
	}
	return nil
}

// preemptionBudget bounds, in TSC cycles, how long the guest runs between
// two entries. External-interrupt exiting already bounds it by the host's
// tick, so this is a second bound: Bochs 2.7 leaves external interrupts
// masked for a guest entered with RFLAGS.IF = 0 from a host that had
// interrupts off (it recomputes the mask before it marks the CPU as being
// in the guest), so without it a guest spinning with interrupts disabled
// would never exit there. The timer is reloaded from the VMCS at every
// entry (its value is not saved on exit), so the bound is per entry. 2^20
// cycles is a fraction of a millisecond on hardware and a quarter of a
// second of guest time in Bochs at 4 million instructions per second.
const preemptionBudget = 1 << 20

// preemptionValue converts preemptionBudget into timer ticks: the timer
// counts down by one each time bit rate of the TSC changes (SDM 26.5.1).
func preemptionValue(rate uint8) uint64 {
	return max(uint64(preemptionBudget)>>rate, 1)
}

// tssBase reads the base of a 16-byte 64-bit TSS descriptor (SDM Vol. 3A
// 8.2.3).
func tssBase(d []byte) uint64 {
	lo, hi := binary.LittleEndian.Uint64(d), binary.LittleEndian.Uint64(d[8:])
	return lo>>16&0xFFFFFF | (lo>>56&0xFF)<<24 | (hi&0xFFFFFFFF)<<32
}

// reset puts the vCPU in the power-on state (SDM Vol. 3A 10.1.1 Table
// 10-1): real mode at F000:FFF0.
func (v *VCPU) reset() {
	data := vmm.Segment{Attrib: 0x93, Limit: 0xFFFF}
	v.SetSRegs(vmm.SRegs{
		CS: vmm.Segment{Selector: 0xF000, Attrib: 0x9B, Limit: 0xFFFF, Base: 0xFFFF0000},
		DS: data, ES: data, FS: data, GS: data, SS: data,
		LDTR: vmm.Segment{Attrib: 0x82, Limit: 0xFFFF},
		TR:   vmm.Segment{Attrib: 0x8B, Limit: 0xFFFF},
		GDT:  vmm.DTable{Limit: 0xFFFF}, IDT: vmm.DTable{Limit: 0xFFFF},
		CR0: vmm.ResetCR0,
	})
	v.SetRegs(vmm.Regs{RIP: 0xFFF0, RFLAGS: 2})
	v.wr(VMCSGuestDR7.Field(), vmm.ResetDR7)
	v.wr(VMCSGuestPAT.Field(), vmm.ResetPAT)
	v.wr(VMCSGuestDebugCtl.Field(), 0)
	v.wr(VMCSGuestSysenterCS.Field(), 0)
	v.wr(VMCSGuestSysenterESP.Field(), 0)
	v.wr(VMCSGuestSysenterEIP.Field(), 0)
	v.wr(VMCSGuestInterruptibility.Field(), 0)
	v.wr(VMCSGuestActivityState.Field(), uint64(ActivityActive))
	v.wr(VMCSGuestPendingDebug.Field(), 0)
}

// Close implements vmm.VCPU: VMCLEAR (the VMCS stops being active on this
// CPU) and the frames go back.
func (v *VCPU) Close() error {
	if v.vmcsPA != 0 {
		vmclear(v.vmcsPA)
	}
	if v.eptTables != nil {
		v.eptTables.free()
		v.eptTables, v.ept = nil, nil
	}
	for _, p := range []struct{ pa, n uint64 }{{v.vmcsPA, 1}, {v.msrBitmapPA, 1}, {v.ioBitmapPA, 2}, {v.guestMSRPA, 1}, {v.hostMSRPA, 1}} {
		if p.pa != 0 {
			_ = v.host.FreeFrames(p.pa, p.n)
		}
	}
	v.vmcsPA, v.msrBitmapPA, v.ioBitmapPA, v.guestMSRPA, v.hostMSRPA = 0, 0, 0, 0, 0
	return nil
}

// flush invalidates what this CPU may have cached for the EPTP and VPID,
// which earlier, freed structures may have used (SDM 29.4.3.1).
func (v *VCPU) flush() {
	caps := v.b.caps.EPTVPID
	if t, ok := caps.INVEPTType(); ok {
		d := INVEPTDescriptor(v.eptp)
		invept(t, &d)
	}
	if v.vpid != 0 {
		if t, ok := caps.INVVPIDType(); ok {
			d := INVVPIDDescriptor(v.vpid, 0)
			invvpid(t, &d)
		}
	}
	v.flushed = true
}

// Run implements vmm.VCPU.
func (v *VCPU) Run() (vmm.Exit, error) {
	for {
		ex, handled, err := v.run()
		if err != nil || !handled {
			return ex, err
		}
	}
}

// run enters the guest once. handled is true when the exit was one the
// backend deals with itself (a control-register access) and the guest can
// go on at once.
func (v *VCPU) run() (ex vmm.Exit, handled bool, err error) {
	if v.err != nil {
		return ex, false, v.err
	}
	if !v.flushed {
		v.flush()
	}
	if !v.injected && v.reinject != nil {
		r := v.reinject
		v.wr(VMCSEntryInterruptionInfo.Field(), uint64(r.Info))
		v.wr(VMCSEntryExceptionError.Field(), uint64(r.ErrorCode))
		v.wr(VMCSEntryInstructionLength.Field(), uint64(r.InstructionLength))
		if r.ClearNMIBlocking {
			v.setInterruptibility(v.interruptibility &^ BlockingByNMI)
		}
		v.injected = true
	}
	v.reinject = nil
	if v.regsDirty {
		v.wr(VMCSGuestRIP.Field(), v.rip)
		v.wr(VMCSGuestRSP.Field(), v.rsp)
		v.wr(VMCSGuestRFLAGS.Field(), v.rflags)
		v.regsDirty = false
	}
	if v.err != nil {
		return ex, false, v.err
	}
	if v.dirty {
		v.dirty = false
		v.entryCheck = v.checkState()
	}
	if v.entryCheck != "" {
		// Refused before the hardware sees it: the state is one the
		// hardware would also refuse (CheckEntry) or would silently alter.
		return vmm.Exit{Reason: vmm.ExitInvalidState, Detail: "refused before VM entry: " + v.entryCheck}, false, nil
	}
	st := vmEnter(v.vmcsPA, v.launched, &v.gprs, &v.fxArea.Image()[0], &v.hostFXArea.Image()[0])
	if st != vmSucceed {
		instr := "VMLAUNCH"
		if v.launched {
			instr = "VMRESUME"
		}
		err := v.instrError(instr, st)
		if st == vmFailInvalid {
			return ex, false, err
		}
		detail := err.Error()
		if s, cerr := readEntryState(v, v.b.physBits); cerr == nil {
			if cerr := CheckEntry(v.b.caps, s); cerr != nil {
				detail += "; " + cerr.Error()
			}
		}
		return vmm.Exit{Reason: vmm.ExitInvalidState, Detail: detail}, false, nil
	}
	v.exits++
	return v.afterExit()
}

// afterExit reads the exit information and turns it into a vmm.Exit.
func (v *VCPU) afterExit() (vmm.Exit, bool, error) {
	reason := ExitReasonField(v.rd(VMCSExitReason.Field()))
	if reason.EntryFailure() {
		// The guest never ran; its state is as it was (SDM 27.8).
		f := exitFields{Reason: reason, Qual: v.rd(VMCSExitQualification.Field())}
		if s, err := readEntryState(v, v.b.physBits); err == nil {
			if err := CheckEntry(v.b.caps, s); err != nil {
				f.EntryFail = err.Error()
			}
		}
		return decodeExit(f), false, v.err
	}
	v.launched = true
	v.injected = false // VM exits clear the valid bit (SDM 28.2.5)
	v.rip = v.rd(VMCSGuestRIP.Field())
	v.rsp = v.rd(VMCSGuestRSP.Field())
	v.rflags = v.rd(VMCSGuestRFLAGS.Field())
	v.interruptibility = uint32(v.rd(VMCSGuestInterruptibility.Field()))
	v.lastInstrLen = uint32(v.rd(VMCSExitInstructionLength.Field()))
	idt := InterruptionInfo(v.rd(VMCSIDTVectoringInfo.Field()))
	if idt.Valid() {
		r, ok := Reinject(idt, uint32(v.rd(VMCSIDTVectoringError.Field())), v.lastInstrLen)
		if ok {
			v.reinject = &r
		}
	}
	v.syncIA32e()
	f := exitFields{Reason: reason, RIP: v.rip, InstrLen: v.lastInstrLen, RCX: v.gprs.rcx}
	switch reason.Basic() {
	case ExitCRAccess:
		return v.emulateCR(CRQualification(v.rd(VMCSExitQualification.Field())))
	case ExitIOInstruction, ExitEPTViolation, ExitEPTMisconfig, ExitExceptionOrNMI:
		f.Qual = v.rd(VMCSExitQualification.Field())
		f.GPA = v.rd(VMCSGuestPhysicalAddr.Field())
		f.IntInfo = InterruptionInfo(v.rd(VMCSExitInterruptionInfo.Field()))
		f.IntError = uint32(v.rd(VMCSExitInterruptionError.Field()))
	case ExitInterruptWindow:
		v.InterruptWindow(false)
	}
	f.Mode = execMode(v.ctl.Entry&EntryIA32eModeGuest != 0, uint32(v.rd(VMCSGuestCSAccessRights.Field())))
	return decodeExit(f), false, v.err
}

// syncIA32e keeps the "IA-32e mode guest" entry control equal to the
// guest's EFER.LMA, which the guest changes itself by enabling paging
// with EFER.LME set (SDM 27.2.1.3 requires them equal).
func (v *VCPU) syncIA32e() {
	lma := v.rd(VMCSGuestEFER.Field())&EFERLMA != 0
	v.setIA32e(lma)
}

func (v *VCPU) setIA32e(on bool) {
	v.setControl(&v.ctl.Entry, VMCSEntryControls, EntryIA32eModeGuest, on)
}

// setControl sets or clears bit in the cached control word *ctl and
// writes the VMCS field only when the word changes, because the callers
// run on every exit and a VMWRITE costs more than the compare.
func (v *VCPU) setControl(ctl *uint32, f Field32, bit uint32, on bool) {
	c := *ctl &^ bit
	if on {
		c |= bit
	}
	if c != *ctl {
		*ctl = c
		v.wr(f.Field(), uint64(c))
	}
}

// checkState runs before an entry that follows a change by the VMM.
func (v *VCPU) checkState() string {
	if s := cr0Inconsistent(v.guestCR0()); s != "" {
		return s
	}
	if bad := v.guestCR4() &^ v.b.caps.CR4Fixed1 &^ CR4VMXE; bad != 0 {
		return fmt.Sprintf("CR4 bits %#x are not supported by this CPU", bad)
	}
	s, err := readEntryState(v, v.b.physBits)
	if err != nil {
		return err.Error()
	}
	if err := CheckEntry(v.b.caps, s); err != nil {
		return err.Error()
	}
	return ""
}

func (v *VCPU) setInterruptibility(x uint32) {
	v.interruptibility = x
	v.wr(VMCSGuestInterruptibility.Field(), uint64(x))
}

// gpr reads general register i (encoding order) including RSP.
func (v *VCPU) gpr(i int) uint64 {
	r := v.Regs()
	return r.GPR(i)
}

func (v *VCPU) setGPR(i int, x uint64) {
	r := v.Regs()
	r.SetGPR(i, x)
	v.SetRegs(r)
}

func (v *VCPU) injectGP() {
	v.Inject(vmm.Event{Type: vmm.EventException, Vector: 13, HasError: true})
}

// emulateCR performs a MOV to or from a control register, CLTS or LMSW that
// exited because it touched a bit the VMM owns (the fixed bits of CR0 and
// CR4), or CR3/CR8 on CPUs that force those exits. The result is what the
// instruction does on a CPU (SDM Vol. 2B MOV—Move to/from Control
// Registers): #GP(0) for values a CPU refuses, else the new value, with the
// fixed bits kept in the real register and the guest's own in the shadow.
func (v *VCPU) emulateCR(q CRQualification) (vmm.Exit, bool, error) {
	v.crEmulations++
	cur := v.SRegs()
	ok := true
	switch q.Access() {
	case CRMovTo:
		val := v.gpr(q.GPR())
		if v.ctl.Entry&EntryIA32eModeGuest == 0 {
			val &= 0xFFFF_FFFF
		}
		switch q.CR() {
		case 0:
			ok = v.writeCR0(cur, val)
		case 3:
			cur.CR3 = val &^ (1 << 63) // bit 63 only asks not to flush PCID entries
			v.SetSRegs(cur)
			v.dirty = false
		case 4:
			ok = v.writeCR4(cur, val)
		case 8:
			if val>>4 != 0 {
				ok = false
			} else {
				v.cr8 = val
			}
		default:
			return vmm.Exit{Reason: vmm.ExitUnknown, Raw: uint64(ExitCRAccess), Detail: fmt.Sprintf("MOV to CR%d", q.CR())}, false, nil
		}
	case CRMovFrom:
		switch q.CR() {
		case 3:
			v.setGPR(q.GPR(), cur.CR3)
		case 8:
			v.setGPR(q.GPR(), v.cr8)
		default:
			return vmm.Exit{Reason: vmm.ExitUnknown, Raw: uint64(ExitCRAccess), Detail: fmt.Sprintf("MOV from CR%d", q.CR())}, false, nil
		}
	case CRCLTS:
		ok = v.writeCR0(cur, cur.CR0&^(1<<3))
	case CRLMSW:
		// LMSW writes PE, MP, EM, TS and cannot clear PE.
		val := cur.CR0&^0xE | uint64(q.LMSWSource())&0xF | cur.CR0&CR0PE
		ok = v.writeCR0(cur, val)
	}
	if !ok {
		v.injectGP()
		return vmm.Exit{Reason: vmm.ExitNone, Raw: uint64(ExitCRAccess)}, true, v.err
	}
	v.rip = nextRIP(v.rip, v.lastInstrLen, execMode(v.ctl.Entry&EntryIA32eModeGuest != 0, uint32(v.rd(VMCSGuestCSAccessRights.Field()))))
	v.regsDirty = true
	return vmm.Exit{Reason: vmm.ExitNone, Raw: uint64(ExitCRAccess)}, true, v.err
}

// writeCR0 emulates MOV to CR0 with the checks a CPU makes (#GP for
// reserved bits, PG without PE, NW without CD, long mode without PAE) and
// the long-mode transitions (SDM Vol. 3A 11.8.5: EFER.LMA follows CR0.PG
// when EFER.LME is set).
func (v *VCPU) writeCR0(cur vmm.SRegs, val uint64) bool {
	const lme = EFERLME
	if val>>32 != 0 || val&CR0PG != 0 && val&CR0PE == 0 || val&CR0NW != 0 && val&CR0CD == 0 {
		return false
	}
	pgOn, pgOff := cur.CR0&CR0PG == 0 && val&CR0PG != 0, cur.CR0&CR0PG != 0 && val&CR0PG == 0
	if pgOn && cur.EFER&lme != 0 && cur.CR4&CR4PAE == 0 {
		return false
	}
	cur.CR0 = val | 1<<4 // ET is hard-wired to 1
	if pgOn && cur.EFER&lme != 0 {
		cur.EFER |= EFERLMA
	}
	if pgOff {
		cur.EFER &^= EFERLMA
	}
	v.SetSRegs(cur)
	v.dirty = false // a state the guest reached, not one the VMM made up
	return true
}

// writeCR4 emulates MOV to CR4: a bit this CPU does not support in VMX
// operation, or VMXE (CPUID shows the guest no VMX), is #GP.
func (v *VCPU) writeCR4(cur vmm.SRegs, val uint64) bool {
	if val&v.cr4Mask != 0 || val>>32 != 0 {
		return false
	}
	if cur.EFER&EFERLMA != 0 && val&CR4PAE == 0 {
		return false
	}
	cur.CR4 = val
	v.SetSRegs(cur)
	v.dirty = false
	return true
}

// Regs implements vmm.VCPU.
func (v *VCPU) Regs() vmm.Regs {
	g := &v.gprs
	return vmm.Regs{
		RAX: g.rax, RBX: g.rbx, RCX: g.rcx, RDX: g.rdx, RSI: g.rsi, RDI: g.rdi, RBP: g.rbp, RSP: v.rsp,
		R8: g.r8, R9: g.r9, R10: g.r10, R11: g.r11, R12: g.r12, R13: g.r13, R14: g.r14, R15: g.r15,
		RIP: v.rip, RFLAGS: v.rflags,
	}
}

// SetRegs implements vmm.VCPU. Moving RIP completes the instruction the
// guest exited on, which ends an interrupt shadow of STI or MOV SS as
// executing it would (SDM Vol. 3A 6.8.3); left set, it would hold off an
// interrupt the guest enabled with STI; HLT.
func (v *VCPU) SetRegs(r vmm.Regs) {
	if r.RIP != v.rip && v.interruptibility&(BlockingBySTI|BlockingByMovSS) != 0 {
		v.setInterruptibility(v.interruptibility &^ (BlockingBySTI | BlockingByMovSS))
	}
	g := &v.gprs
	g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp = r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP
	g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15 = r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15
	v.rip, v.rsp, v.rflags = r.RIP, r.RSP, r.RFLAGS|2
	v.regsDirty = true
}

// SRegs implements vmm.VCPU.
func (v *VCPU) SRegs() vmm.SRegs {
	var s vmm.SRegs
	for i, p := range v.segPtrs(&s) {
		f := guestSegs[i]
		*p = vmm.Segment{
			Selector: uint16(v.rd(f.sel.Field())),
			Base:     v.rd(f.base.Field()),
			Limit:    uint32(v.rd(f.limit.Field())),
			Attrib:   attributes(uint32(v.rd(f.ar.Field()))),
		}
	}
	s.GDT = vmm.DTable{Base: v.rd(VMCSGuestGDTRBase.Field()), Limit: uint16(v.rd(VMCSGuestGDTRLimit.Field()))}
	s.IDT = vmm.DTable{Base: v.rd(VMCSGuestIDTRBase.Field()), Limit: uint16(v.rd(VMCSGuestIDTRLimit.Field()))}
	s.CR0, s.CR4 = v.guestCR0(), v.guestCR4()
	s.CR3 = v.rd(VMCSGuestCR3.Field())
	s.CR2 = v.gprs.cr2
	s.EFER = v.rd(VMCSGuestEFER.Field())
	// The CPL is SS.DPL (SDM 27.3.2.2).
	s.CPL = uint8(s.SS.Attrib >> 5 & 3)
	return s
}

// guestCR0 and guestCR4 are the values the guest sees: its own bits from
// the register, the VMM-owned ones from the read shadow (which holds
// stale copies of the others, so it is never read alone).
func (v *VCPU) guestCR0() uint64 {
	return v.rd(VMCSGuestCR0.Field())&^v.cr0Mask | v.rd(VMCSCR0ReadShadow.Field())&v.cr0Mask
}

func (v *VCPU) guestCR4() uint64 {
	return v.rd(VMCSGuestCR4.Field())&^v.cr4Mask | v.rd(VMCSCR4ReadShadow.Field())&v.cr4Mask
}

func (v *VCPU) segPtrs(s *vmm.SRegs) [8]*vmm.Segment {
	return [8]*vmm.Segment{&s.ES, &s.CS, &s.SS, &s.DS, &s.FS, &s.GS, &s.LDTR, &s.TR}
}

// SetSRegs implements vmm.VCPU. CR0 and CR4 keep their fixed bits in the
// VMCS and the values asked for in the read shadows; EFER.LMA is derived
// as the CPU would (LME and PG); the CPL follows SS.DPL.
func (v *VCPU) SetSRegs(s vmm.SRegs) {
	c := v.b.caps
	v.dirty = true
	for i, p := range v.segPtrs(&s) {
		f := guestSegs[i]
		v.wr(f.sel.Field(), uint64(p.Selector))
		v.wr(f.base.Field(), p.Base)
		v.wr(f.limit.Field(), uint64(p.Limit))
		v.wr(f.ar.Field(), uint64(accessRights(p.Attrib)))
	}
	v.wr(VMCSGuestGDTRBase.Field(), s.GDT.Base)
	v.wr(VMCSGuestGDTRLimit.Field(), uint64(s.GDT.Limit))
	v.wr(VMCSGuestIDTRBase.Field(), s.IDT.Base)
	v.wr(VMCSGuestIDTRLimit.Field(), uint64(s.IDT.Limit))
	v.wr(VMCSCR0ReadShadow.Field(), s.CR0)
	v.wr(VMCSGuestCR0.Field(), c.FixCR0(s.CR0, true))
	v.wr(VMCSCR4ReadShadow.Field(), s.CR4)
	v.wr(VMCSGuestCR4.Field(), c.FixCR4(s.CR4))
	v.wr(VMCSGuestCR3.Field(), s.CR3)
	v.gprs.cr2 = s.CR2
	efer := s.EFER &^ EFERLMA
	if efer&EFERLME != 0 && s.CR0&CR0PG != 0 {
		efer |= EFERLMA
	}
	v.wr(VMCSGuestEFER.Field(), efer)
	v.setIA32e(efer&EFERLMA != 0)
	v.loadPDPTEs(s.CR0, s.CR3, s.CR4, efer)
}

// loadPDPTEs fills the guest PDPTE fields, which VM entry loads instead of
// reading them through CR3 when EPT is on and the guest uses PAE paging
// outside long mode (SDM 27.3.2.4). A MOV to CR3 inside the guest loads
// them itself; the VMM must when it sets the state.
func (v *VCPU) loadPDPTEs(cr0, cr3, cr4, efer uint64) {
	fields := [4]Field64{VMCSGuestPDPTE0, VMCSGuestPDPTE1, VMCSGuestPDPTE2, VMCSGuestPDPTE3}
	var buf [32]byte
	if cr0&CR0PG != 0 && cr4&CR4PAE != 0 && efer&EFERLMA == 0 {
		if err := v.mem.ReadPhys(cr3&0xFFFF_FFE0, buf[:]); err != nil {
			clear(buf[:]) // not present: the guest faults on its first access
		}
	}
	for i, f := range fields {
		v.wr(f.Field(), binary.LittleEndian.Uint64(buf[i*8:]))
	}
}

// msrSlot returns the guest MSR-area bytes of msr, or nil.
func (v *VCPU) msrSlot(msr uint32) []byte {
	for i, m := range v.msrList {
		if m == msr {
			return v.host.Bytes(v.guestMSRPA, 4096)[i*msrEntrySize+8 : (i+1)*msrEntrySize]
		}
	}
	return nil
}

// MSR implements vmm.VCPU.
func (v *VCPU) MSR(msr uint32) (uint64, bool) {
	if p := v.msrSlot(msr); p != nil {
		return binary.LittleEndian.Uint64(p), true
	}
	switch msr {
	case vmm.MSREFER:
		return v.rd(VMCSGuestEFER.Field()), true
	case vmm.MSRPAT:
		return v.rd(VMCSGuestPAT.Field()), true
	case vmm.MSRFSBase:
		return v.rd(VMCSGuestFSBase.Field()), true
	case vmm.MSRGSBase:
		return v.rd(VMCSGuestGSBase.Field()), true
	case vmm.MSRSysenterCS:
		return v.rd(VMCSGuestSysenterCS.Field()), true
	case vmm.MSRSysenterESP:
		return v.rd(VMCSGuestSysenterESP.Field()), true
	case vmm.MSRSysenterEIP:
		return v.rd(VMCSGuestSysenterEIP.Field()), true
	case vmm.MSRTSCAux:
		return v.tscAux, true
	}
	return 0, false
}

// SetMSR implements vmm.VCPU.
func (v *VCPU) SetMSR(msr uint32, val uint64) bool {
	v.dirty = true
	if p := v.msrSlot(msr); p != nil {
		binary.LittleEndian.PutUint64(p, val)
		return true
	}
	switch msr {
	case vmm.MSREFER:
		// LMA is the processor's to set (SDM Vol. 3A 11.8.5).
		cur := v.rd(VMCSGuestEFER.Field())
		efer := val&^EFERLMA | cur&EFERLMA
		v.wr(VMCSGuestEFER.Field(), efer)
	case vmm.MSRPAT:
		v.wr(VMCSGuestPAT.Field(), val)
	case vmm.MSRFSBase:
		v.wr(VMCSGuestFSBase.Field(), val)
	case vmm.MSRGSBase:
		v.wr(VMCSGuestGSBase.Field(), val)
	case vmm.MSRSysenterCS:
		v.wr(VMCSGuestSysenterCS.Field(), val&0xFFFF_FFFF)
	case vmm.MSRSysenterESP:
		v.wr(VMCSGuestSysenterESP.Field(), val)
	case vmm.MSRSysenterEIP:
		v.wr(VMCSGuestSysenterEIP.Field(), val)
	case vmm.MSRTSCAux:
		v.tscAux = val & 0xFFFF_FFFF
	default:
		return false
	}
	return true
}

// Inject implements vmm.VCPU.
func (v *VCPU) Inject(ev vmm.Event) {
	protected := v.guestCR0()&CR0PE != 0
	info := eventInfo(ev, protected)
	v.wr(VMCSEntryInterruptionInfo.Field(), uint64(info))
	if info.ErrorCodeValid() {
		v.wr(VMCSEntryExceptionError.Field(), uint64(ev.ErrCode))
	}
	if info.Type().HasInstructionLength() {
		v.wr(VMCSEntryInstructionLength.Field(), uint64(v.lastInstrLen))
	}
	v.injected = true
}

// InterruptWindow implements vmm.VCPU with interrupt-window exiting: the
// exit comes as soon as RFLAGS.IF is 1 and nothing blocks interrupts (SDM
// 26.7.5).
func (v *VCPU) InterruptWindow(want bool) {
	v.setControl(&v.ctl.Proc, VMCSProcBasedControls, ProcInterruptWindowExiting, want)
}

// CanInterrupt implements vmm.VCPU.
func (v *VCPU) CanInterrupt() bool {
	return v.rflags&RFLAGSIF != 0 && v.interruptibility&(BlockingBySTI|BlockingByMovSS) == 0 &&
		!v.injected && v.reinject == nil
}

// SetTSCOffset implements vmm.VCPU.
func (v *VCPU) SetTSCOffset(off int64) {
	v.tscOff = off
	v.wr(VMCSTSCOffset.Field(), uint64(off))
}

// TSCOffset implements vmm.VCPU.
func (v *VCPU) TSCOffset() int64 { return v.tscOff }

// InterceptRDTSC implements vmm.VCPU. With "enable RDTSCP" set, RDTSC
// exiting makes RDTSCP exit too (SDM 26.1.3).
func (v *VCPU) InterceptRDTSC(on bool) {
	v.setControl(&v.ctl.Proc, VMCSProcBasedControls, ProcRDTSCExiting, on)
}

// InterceptPause implements vmm.PauseInterceptor with the "PAUSE exiting"
// control (SDM 25.6.2), where the processor allows it.
func (v *VCPU) InterceptPause(on bool) {
	if on && v.b.caps.Proc.May1&ProcPAUSEExiting == 0 {
		return
	}
	v.setControl(&v.ctl.Proc, VMCSProcBasedControls, ProcPAUSEExiting, on)
}

var stateMSRs = []uint32{vmm.MSRPAT, vmm.MSRSTAR, vmm.MSRLSTAR, vmm.MSRCSTAR, vmm.MSRSFMASK,
	vmm.MSRKernelGSBase, vmm.MSRSysenterCS, vmm.MSRSysenterESP, vmm.MSRSysenterEIP, vmm.MSRTSCAux}

// SaveState implements vmm.VCPU.
func (v *VCPU) SaveState() (vmm.State, error) {
	st := vmm.State{Regs: v.Regs(), SRegs: v.SRegs(), MSRs: map[uint32]uint64{}, TSCOffset: v.tscOff}
	for _, m := range stateMSRs {
		st.MSRs[m], _ = v.MSR(m)
	}
	copy(st.FPU[:], v.fxArea.Image())
	switch {
	case v.injected:
		st.Pending = pendingEvent(InterruptionInfo(v.rd(VMCSEntryInterruptionInfo.Field())), uint32(v.rd(VMCSEntryExceptionError.Field())))
	case v.reinject != nil:
		st.Pending = pendingEvent(v.reinject.Info, v.reinject.ErrorCode)
	}
	st.Shadow = v.interruptibility&(BlockingBySTI|BlockingByMovSS) != 0
	st.DR6, st.DR7 = readDR6(), v.rd(VMCSGuestDR7.Field())
	return st, v.err
}

// RestoreState implements vmm.VCPU.
func (v *VCPU) RestoreState(st vmm.State) error {
	if st.MSRs == nil {
		return errors.New("vmx: restore: state has no MSRs")
	}
	v.SetRegs(st.Regs)
	v.SetSRegs(st.SRegs)
	for m, val := range st.MSRs {
		if !v.SetMSR(m, val) {
			return fmt.Errorf("vmx: restore: MSR %#x is not part of the vCPU state", m)
		}
	}
	copy(v.fxArea.Image(), st.FPU[:])
	v.SetTSCOffset(st.TSCOffset)
	v.injected, v.reinject = false, nil
	v.wr(VMCSEntryInterruptionInfo.Field(), 0)
	if st.Pending != nil {
		v.Inject(*st.Pending)
	}
	var intr uint32
	if st.Shadow {
		// STI blocking needs RFLAGS.IF = 1 (SDM 27.3.1.5); MOV SS blocking
		// is the equivalent one instruction long shadow otherwise.
		intr = BlockingByMovSS
		if st.Regs.RFLAGS&RFLAGSIF != 0 {
			intr = BlockingBySTI
		}
	}
	v.setInterruptibility(intr)
	writeDR6(st.DR6)
	v.wr(VMCSGuestDR7.Field(), st.DR7)
	return v.err
}
