package vmx

// guestGPRs holds the guest registers that the VMCS does not: VM entry and
// exit switch RSP, RIP and RFLAGS through the guest-state area (SDM 25.4.1),
// every other general register is the VMM's to switch. Layout shared with
// switch_amd64.s via go_asm.h.
// CR2 is here too: VMX does not switch it (SDM 28.3.1), so the stub loads
// the guest's before entry and saves it after the exit.
type guestGPRs struct {
	rax, rbx, rcx, rdx, rsi, rdi, rbp uint64
	r8, r9, r10, r11, r12, r13        uint64
	r14, r15                          uint64
	cr2                               uint64
}

// Results of the VMX instructions (SDM 31.2 "Conventions"): VMsucceed
// clears CF and ZF, VMfailInvalid sets CF (no current VMCS), VMfailValid
// sets ZF (the error number is in the VM-instruction error field).
const (
	vmSucceed     = 0
	vmFailInvalid = 1
	vmFailValid   = 2
)

// vmEnter enters the guest of the VMCS at vmcsPA with VMLAUNCH (launched
// false) or VMRESUME, and returns at the next VM exit (vmSucceed) or when
// the instruction fails (vmFailInvalid, vmFailValid; the guest never ran).
// guestFX and hostFX are 16-byte-aligned FXSAVE areas.
//
//go:noescape
func vmEnter(vmcsPA uint64, launched bool, gprs *guestGPRs, guestFX, hostFX *byte) uint64

// vmxon enters VMX operation with the VMXON region at pa.
func vmxon(pa uint64) uint64

// vmclear makes the VMCS at pa clear and inactive, flushing it to memory.
func vmclear(pa uint64) uint64

// vmptrld makes the VMCS at pa current (and active) on this CPU.
func vmptrld(pa uint64) uint64

// vmread reads field f of the VMCS at pa, making it current first if it is
// not; interrupts are held off in between so that no other vCPU thread on
// this CPU can make its own VMCS current.
func vmread(pa uint64, f uint64) (v uint64, status uint64)

// vmwrite writes field f of the VMCS at pa, like vmread.
func vmwrite(pa uint64, f uint64, v uint64) uint64

// invept and invvpid invalidate cached translations (SDM 31.3); desc is
// the 128-bit descriptor.
//
//go:noescape
func invept(typ uint64, desc *[2]uint64) uint64

//go:noescape
func invvpid(typ uint64, desc *[2]uint64) uint64

// sgdt and sidt return the base of the GDT and IDT; str the task register.
func sgdt() (base uint64, limit uint16)
func sidt() (base uint64, limit uint16)
func str() uint16

// readDR6 and writeDR6 move the debug status register, which VMX does not
// switch (SDM 28.3.1).
func readDR6() uint64
func writeDR6(v uint64)
