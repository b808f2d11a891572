package svm

// guestGPRs holds the guest registers that the VMCB does not: VMRUN loads
// and saves RAX, RSP, RIP and RFLAGS itself (APM vol. 2 15.5), the rest are
// the VMM's to switch. Layout shared with switch_amd64.s via go_asm.h.
type guestGPRs struct {
	rbx, rcx, rdx, rsi, rdi, rbp uint64
	r8, r9, r10, r11, r12, r13   uint64
	r14, r15                     uint64
}

// worldSwitch runs the guest whose VMCB is at vmcbPA until the next
// #VMEXIT. hostSavePA is a VMSAVE area for the host's hidden state (FS, GS,
// TR, LDTR, KernelGSBase, STAR/LSTAR/CSTAR/SFMASK, SYSENTER_*), which VMRUN
// does not restore; guestFX and hostFX are 16-byte-aligned FXSAVE areas.
//
//go:noescape
func worldSwitch(vmcbPA, hostSavePA uint64, gprs *guestGPRs, guestFX, hostFX *byte)
