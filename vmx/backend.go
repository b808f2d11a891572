package vmx

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"hv/boot"
	"hv/vmm"
)

// Backend is the Intel VMX implementation of vmm.Backend.
type Backend struct {
	host     vmm.Host
	caps     *Caps
	controls Controls
	physBits uint
	rdtscp   bool // the CPU has RDTSCP (and IA32_TSC_AUX)

	mu    sync.Mutex
	vmxon map[int]uint64 // per CPU: the VMXON region, once in VMX operation

	vpids atomic.Uint32
}

// ErrNoVMX is returned by New on a CPU without usable VMX.
var ErrNoVMX = errors.New("vmx: no Intel VT-x with EPT and unrestricted guest")

// hwMSRs reads MSRs through the platform, which turns the #GP of a missing
// MSR into an error.
type hwMSRs struct{}

func (hwMSRs) ReadMSR(msr uint32) (uint64, error) {
	v, err := boot.ReadMSR(msr)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, ErrNoMSR)
	}
	return v, nil
}

// hostMSR reads an MSR whose host value a VM exit must restore. The MSRs
// asked for exist on every CPU with VMX (the MSR-load list holds TSC_AUX
// only where RDTSCP does).
func hostMSR(msr uint32) uint64 {
	v, _ := boot.ReadMSR(msr)
	return v
}

// CPUID bits the probe reads (SDM Vol. 2A CPUID).
const (
	cpuid1ECXVMX      = 1 << 5  // leaf 1 ECX
	cpuidExtEDXRDTSCP = 1 << 27 // leaf 0x8000_0001 EDX
	cpuid7EBXINVPCID  = 1 << 10 // leaf 7 EBX
	cpuid7ECXWAITPKG  = 1 << 5  // leaf 7 ECX
	cpuid7ECXRDPID    = 1 << 22 // leaf 7 ECX
)

// New probes the CPU (through cpuid and the capability MSRs) and returns the
// backend, or an error naming what is missing.
func New(host vmm.Host, cpuid func(leaf, sub uint32) (a, b, c, d uint32)) (*Backend, error) {
	if _, _, c, _ := cpuid(1, 0); c&cpuid1ECXVMX == 0 {
		return nil, fmt.Errorf("%w: CPUID.1:ECX.VMX is 0", ErrNoVMX)
	}
	caps, err := ReadCaps(hwMSRs{})
	if err != nil {
		return nil, err
	}
	return newBackend(host, caps, cpuid)
}

func newBackend(host vmm.Host, caps *Caps, cpuid func(leaf, sub uint32) (a, b, c, d uint32)) (*Backend, error) {
	if !caps.VMXAllowed() {
		return nil, ErrVMXDisabled
	}
	if !caps.HasUnrestrictedGuest() {
		return nil, fmt.Errorf("%w (PROCBASED_CTLS2 %#x, EPT_VPID_CAP %#x)", ErrNoVMX,
			caps.Raw[MSRVMXProcBasedCtls2], uint64(caps.EPTVPID))
	}
	ctl, err := ComputeControls(caps, controlRequest())
	if err != nil {
		return nil, err
	}
	for _, bit := range []uint32{ProcInterruptWindowExiting, ProcRDTSCExiting} {
		if caps.Proc.May1&bit == 0 {
			return nil, &MissingControlError{Set: SetProc, Bit: uint(bits.TrailingZeros32(bit))}
		}
	}
	b := &Backend{host: host, caps: caps, controls: ctl, physBits: 36, vmxon: map[int]uint64{}}
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt >= 0x80000008 {
		a, _, _, _ := cpuid(0x80000008, 0)
		b.physBits = uint(a & 0xFF)
	}
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt >= 0x80000001 {
		_, _, _, d := cpuid(0x80000001, 0)
		b.rdtscp = d&cpuidExtEDXRDTSCP != 0
	}
	if !b.rdtscp {
		b.controls.Proc2 &^= Proc2EnableRDTSCP
	}
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf >= 7 {
		if _, b7, _, _ := cpuid(7, 0); b7&cpuid7EBXINVPCID == 0 {
			b.controls.Proc2 &^= Proc2EnableINVPCID
		}
	} else {
		b.controls.Proc2 &^= Proc2EnableINVPCID
	}
	return b, nil
}

// HiddenCPUID implements vmm.CPUIDHider: in VMX non-root operation
// INVPCID, and RDTSCP and RDPID, raise #UD unless "enable INVPCID" and
// "enable RDTSCP" are set (SDM 26.3), and TPAUSE, UMONITOR and UMWAIT
// unless "enable user wait and pause" is, which the backend never sets
// (their deadlines run on the host's TSC, not the guest's).
func (b *Backend) HiddenCPUID(leaf, sub uint32) (a, bx, c, d uint32) {
	switch {
	case leaf == 7 && sub == 0:
		if b.controls.Proc2&Proc2EnableINVPCID == 0 {
			bx |= cpuid7EBXINVPCID
		}
		c |= cpuid7ECXWAITPKG
		if b.controls.Proc2&Proc2EnableRDTSCP == 0 {
			c |= cpuid7ECXRDPID
		}
	case leaf == 0x80000001:
		if b.controls.Proc2&Proc2EnableRDTSCP == 0 {
			d |= cpuidExtEDXRDTSCP
		}
	}
	return a, bx, c, d
}

// controlRequest is what every vCPU asks of the control vectors. Required:
// what the backend cannot run without (exits for HLT, I/O, MSRs and host
// interrupts; EPT and unrestricted guest for real-mode guests; EFER and PAT
// switched by the CPU; a 64-bit host). Optional: VPID (else every entry
// flushes the guest's TLB), RDTSCP and INVPCID (else CPUID hides them from
// the guest, which would get #UD), NMI exiting
// (else a host NMI is delivered to the guest), the debug controls (else
// DR7 and IA32_DEBUGCTL are not switched).
func controlRequest() ControlRequest {
	return ControlRequest{
		Pin: Want{Required: PinExternalInterruptExiting, Optional: PinNMIExiting | PinPreemptionTimer},
		Proc: Want{
			Required: ProcHLTExiting | ProcUseIOBitmaps | ProcUseMSRBitmaps | ProcUseTSCOffsetting |
				ProcMWAITExiting | ProcMONITORExiting,
		},
		Proc2: Want{
			Required: Proc2EnableEPT | Proc2UnrestrictedGuest,
			Optional: Proc2EnableVPID | Proc2EnableRDTSCP | Proc2EnableINVPCID,
		},
		Exit: Want{
			Required: ExitHostAddressSpaceSize | ExitSaveEFER | ExitLoadEFER | ExitSavePAT | ExitLoadPAT,
			Optional: ExitSaveDebugControls,
		},
		Entry: Want{
			Required: EntryLoadEFER | EntryLoadPAT,
			Optional: EntryLoadDebugControls,
		},
	}
}

// Name implements vmm.Backend.
func (b *Backend) Name() string { return "vmx" }

// Caps returns what the capability MSRs said.
func (b *Backend) Caps() *Caps { return b.caps }

// Controls returns the control values every vCPU starts with.
func (b *Backend) Controls() Controls { return b.controls }

// EnableCPU enters VMX operation on the calling CPU, to which the caller
// must be pinned (SDM 24.7): IA32_FEATURE_CONTROL locked with VMX outside
// SMX, CR0 and CR4 forced to their fixed bits (CR4.VMXE among them), and
// VMXON with a region carrying the VMCS revision identifier. A CPU already
// in VMX operation is left as it is.
func (b *Backend) EnableCPU(cpu int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.vmxon[cpu]; ok {
		return nil
	}
	fc, err := hwMSRs{}.ReadMSR(MSRFeatureControl)
	if err != nil {
		return fmt.Errorf("vmx: cpu %d: %w", cpu, err)
	}
	next, write, err := FeatureControlEnable(fc)
	if err != nil {
		return fmt.Errorf("vmx: cpu %d: %w", cpu, err)
	}
	if write {
		if err := boot.WriteMSR(MSRFeatureControl, next); err != nil {
			return fmt.Errorf("vmx: cpu %d: %w", cpu, err)
		}
	}
	pa, err := b.host.AllocFrames(1, 1)
	if err != nil {
		return fmt.Errorf("vmx: cpu %d VMXON region: %w", cpu, err)
	}
	putRevision(b.host.Bytes(pa, 4096), b.caps.Basic.Revision)
	if cr0 := boot.CR0(); b.caps.FixCR0(cr0, false) != cr0 {
		boot.SetCR0(b.caps.FixCR0(cr0, false) | cr0&^0xFFFF_FFFF)
	}
	if cr4 := boot.CR4(); b.caps.FixCR4(cr4) != cr4 {
		boot.SetCR4(b.caps.FixCR4(cr4))
	}
	if st := vmxon(pa); st != vmSucceed {
		_ = b.host.FreeFrames(pa, 1)
		return fmt.Errorf("vmx: cpu %d: VMXON failed (status %d; CR0 %#x CR4 %#x)", cpu, st, boot.CR0(), boot.CR4())
	}
	b.vmxon[cpu] = pa
	return nil
}

// putRevision writes the VMCS revision identifier into the first word of a
// VMXON region or VMCS (bit 31 clear: not a shadow VMCS), SDM 25.2.
func putRevision(p []byte, rev uint32) {
	rev &= 0x7FFF_FFFF
	p[0], p[1], p[2], p[3] = byte(rev), byte(rev>>8), byte(rev>>16), byte(rev>>24)
}

// tables adapts the host to the EPT's TableMemory and remembers every frame
// it hands out, so that Close can return them (the EPT builder never frees
// tables itself).
type tables struct {
	host   vmm.Host
	frames []uint64
}

func (t *tables) AllocTable() (uint64, error) {
	pa, err := t.host.AllocFrames(1, 1)
	if err != nil {
		return 0, err
	}
	t.frames = append(t.frames, pa)
	return pa, nil
}

func (t *tables) Table(pa uint64) (*[512]uint64, error) {
	b := t.host.Bytes(pa, 4096)
	if len(b) != 4096 {
		return nil, fmt.Errorf("vmx: EPT table %#x not addressable", pa)
	}
	return (*[512]uint64)(asTable(b)), nil
}

func (t *tables) free() {
	for _, pa := range t.frames {
		_ = t.host.FreeFrames(pa, 1)
	}
	t.frames = nil
}
