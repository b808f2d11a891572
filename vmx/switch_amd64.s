#include "textflag.h"
#include "go_asm.h"

// VMX instructions (SDM Vol. 3C chapter 31): the Go assembler has no
// mnemonics for them, so they are spelled out. Operand registers are fixed:
// the memory operand of VMXON/VMCLEAR/VMPTRLD is (AX); VMREAD and VMWRITE
// take the field encoding in AX and the value in CX; INVEPT and INVVPID
// take the type in AX and the descriptor at (CX).
#define VMXON_AX     BYTE $0xF3; BYTE $0x0F; BYTE $0xC7; BYTE $0x30
#define VMCLEAR_AX   BYTE $0x66; BYTE $0x0F; BYTE $0xC7; BYTE $0x30
#define VMPTRLD_AX   BYTE $0x0F; BYTE $0xC7; BYTE $0x30
#define VMPTRST_AX   BYTE $0x0F; BYTE $0xC7; BYTE $0x38
#define VMREAD_AX_CX  BYTE $0x0F; BYTE $0x78; BYTE $0xC1
#define VMWRITE_AX_CX BYTE $0x0F; BYTE $0x79; BYTE $0xC1
#define VMLAUNCH     BYTE $0x0F; BYTE $0x01; BYTE $0xC2
#define VMRESUME     BYTE $0x0F; BYTE $0x01; BYTE $0xC3
#define INVEPT_AX_CX  BYTE $0x66; BYTE $0x0F; BYTE $0x38; BYTE $0x80; BYTE $0x01
#define INVVPID_AX_CX BYTE $0x66; BYTE $0x0F; BYTE $0x38; BYTE $0x81; BYTE $0x01

// Host-state field encodings the stub writes itself (SDM Appendix B,
// Table B-15); the same values as VMCSHostRSP and VMCSHostRIP.
#define FIELD_HOST_RSP $0x6C14
#define FIELD_HOST_RIP $0x6C16

// VMSTATUS stores the outcome of the VMX instruction just executed into
// ret: 0 VMsucceed, 1 VMfailInvalid (CF), 2 VMfailValid (ZF). Clobbers DX
// and SI; has no labels, so it may be used several times in a function.
#define VMSTATUS(ret) \
	PUSHFQ; \
	POPQ DX; \
	MOVQ DX, SI; \
	ANDQ $1, DX; \
	SHRQ $5, SI; \
	ANDQ $2, SI; \
	ORQ SI, DX; \
	MOVQ DX, ret

// func vmEnter(vmcsPA uint64, launched bool, gprs *guestGPRs, guestFX, hostFX *byte) uint64
//
// Register contract: Go ABI0, NOFRAME, so that the VM-exit path
// (vmxExit<>), which the CPU enters with RSP = the host RSP written here,
// finds the same stack and returns to our caller. Stack while the guest
// runs, from the host RSP up:
//
//	0  gprs pointer      24 return address   48 gprs
//	8  caller's RFLAGS   32 vmcsPA           56 guestFX
//	16 caller's RBP      40 launched         64 hostFX
//	                                         72 result
//
// On return every general register except SP and BP holds garbage (the ABI
// wrapper restores R14 and X15), XMM/x87 state is the host's again (saved to
// hostFX before the guest's is loaded from guestFX) and RFLAGS.IF is what
// it was at the call. Interrupts are off from before the VMCS is made
// current until the guest's state is saved after the exit: VM exit clears
// RFLAGS, and a host interrupt that caused the exit (external-interrupt
// exiting, not acknowledged) is taken by the POPFQ at the end, after the
// CPU has restored the host's FS and GS bases, TR, GDTR and IDTR from the
// host-state area and the MSRs on the VM-exit MSR-load list.
TEXT ·vmEnter(SB),NOSPLIT|NOFRAME,$0-48
	MOVQ hostFX+32(FP), BX
	FXSAVE64 (BX)
	MOVQ guestFX+24(FP), BX
	FXRSTOR64 (BX)
	MOVQ gprs+16(FP), BX
	PUSHFQ
	POPQ DX
	CLI
	LEAQ -24(SP), SP                // the frame above; LEAQ keeps the assembler's SP bookkeeping out of it
	MOVQ BX, 0(SP)
	MOVQ DX, 8(SP)
	MOVQ BP, 16(SP)

	LEAQ 32(SP), AX                 // &vmcsPA
	VMPTRLD_AX
	VMSTATUS(AX)
	CMPQ AX, $0
	JNE fail

	MOVQ FIELD_HOST_RSP, AX
	MOVQ SP, CX
	VMWRITE_AX_CX
	MOVQ FIELD_HOST_RIP, AX
	MOVQ $vmxExit<>(SB), CX
	VMWRITE_AX_CX

	MOVQ 0(SP), AX
	MOVQ guestGPRs_cr2(AX), BX
	MOVQ BX, CR2                    // leaves the arithmetic flags undefined
	MOVBLZX 40(SP), BX              // launched
	CMPQ BX, $0                     // flags survive the MOVs below
	MOVQ guestGPRs_rbx(AX), BX
	MOVQ guestGPRs_rcx(AX), CX
	MOVQ guestGPRs_rdx(AX), DX
	MOVQ guestGPRs_rsi(AX), SI
	MOVQ guestGPRs_rdi(AX), DI
	MOVQ guestGPRs_rbp(AX), BP
	MOVQ guestGPRs_r8(AX), R8
	MOVQ guestGPRs_r9(AX), R9
	MOVQ guestGPRs_r10(AX), R10
	MOVQ guestGPRs_r11(AX), R11
	MOVQ guestGPRs_r12(AX), R12
	MOVQ guestGPRs_r13(AX), R13
	MOVQ guestGPRs_r14(AX), R14
	MOVQ guestGPRs_r15(AX), R15
	MOVQ guestGPRs_rax(AX), AX
	JNE resume
	VMLAUNCH
	JMP failed
resume:
	VMRESUME
failed:
	// The guest never ran: SP is ours, the registers hold guest values.
	VMSTATUS(AX)
fail:
	MOVQ 56(SP), BX
	FXSAVE64 (BX)
	MOVQ 64(SP), BX
	FXRSTOR64 (BX)
	MOVQ 8(SP), DX
	MOVQ 16(SP), BP
	LEAQ 24(SP), SP
	MOVQ AX, ret+40(FP)
	PUSHQ DX
	POPFQ
	RET

// vmxExit is the host RIP: the CPU arrives here at every VM exit with RSP =
// the host RSP vmEnter wrote, interrupts off and the guest's general
// registers live.
TEXT vmxExit<>(SB),NOSPLIT|NOFRAME,$0
	XCHGQ AX, 0(SP)                 // AX = gprs, 0(SP) = guest RAX
	MOVQ BX, guestGPRs_rbx(AX)
	MOVQ CX, guestGPRs_rcx(AX)
	MOVQ DX, guestGPRs_rdx(AX)
	MOVQ SI, guestGPRs_rsi(AX)
	MOVQ DI, guestGPRs_rdi(AX)
	MOVQ BP, guestGPRs_rbp(AX)
	MOVQ R8, guestGPRs_r8(AX)
	MOVQ R9, guestGPRs_r9(AX)
	MOVQ R10, guestGPRs_r10(AX)
	MOVQ R11, guestGPRs_r11(AX)
	MOVQ R12, guestGPRs_r12(AX)
	MOVQ R13, guestGPRs_r13(AX)
	MOVQ R14, guestGPRs_r14(AX)
	MOVQ R15, guestGPRs_r15(AX)
	MOVQ 0(SP), BX
	MOVQ BX, guestGPRs_rax(AX)
	MOVQ CR2, BX
	MOVQ BX, guestGPRs_cr2(AX)
	MOVQ 56(SP), BX
	FXSAVE64 (BX)
	MOVQ 64(SP), BX
	FXRSTOR64 (BX)
	MOVQ 8(SP), DX
	MOVQ 16(SP), BP
	LEAQ 24(SP), SP
	MOVQ $0, 48(SP)                 // result: vmSucceed
	PUSHQ DX
	POPFQ
	RET

// func vmxon(pa uint64) uint64
TEXT ·vmxon(SB),NOSPLIT,$0-16
	LEAQ pa+0(FP), AX
	VMXON_AX
	VMSTATUS(ret+8(FP))
	RET

// func vmclear(pa uint64) uint64
TEXT ·vmclear(SB),NOSPLIT,$0-16
	LEAQ pa+0(FP), AX
	VMCLEAR_AX
	VMSTATUS(ret+8(FP))
	RET

// func vmptrld(pa uint64) uint64
TEXT ·vmptrld(SB),NOSPLIT,$0-16
	LEAQ pa+0(FP), AX
	VMPTRLD_AX
	VMSTATUS(ret+8(FP))
	RET

// ENSURE_CURRENT makes the VMCS at pa+0(FP) current unless it already is,
// with interrupts off (the caller's RFLAGS pushed, popped by the caller's
// epilogue code); on failure it jumps to fail with the status in DX. Uses
// the local cur-8(SP) and the label current, so once per function.
#define ENSURE_CURRENT \
	PUSHFQ; \
	CLI; \
	LEAQ cur-8(SP), AX; \
	VMPTRST_AX; \
	MOVQ cur-8(SP), AX; \
	CMPQ AX, pa+0(FP); \
	JEQ current; \
	LEAQ pa+0(FP), AX; \
	VMPTRLD_AX; \
	VMSTATUS(DX); \
	CMPQ DX, $0; \
	JNE fail; \
current:

// func vmread(pa uint64, f uint64) (v uint64, status uint64)
TEXT ·vmread(SB),NOSPLIT,$16-32
	ENSURE_CURRENT
	MOVQ f+8(FP), AX
	VMREAD_AX_CX
	MOVQ CX, v+16(FP)
	VMSTATUS(DX)
fail:
	MOVQ DX, status+24(FP)
	POPFQ
	RET

// func vmwrite(pa uint64, f uint64, v uint64) uint64
TEXT ·vmwrite(SB),NOSPLIT,$16-32
	ENSURE_CURRENT
	MOVQ f+8(FP), AX
	MOVQ v+16(FP), CX
	VMWRITE_AX_CX
	VMSTATUS(DX)
fail:
	MOVQ DX, ret+24(FP)
	POPFQ
	RET

// func invept(typ uint64, desc *[2]uint64) uint64
TEXT ·invept(SB),NOSPLIT,$0-24
	MOVQ typ+0(FP), AX
	MOVQ desc+8(FP), CX
	INVEPT_AX_CX
	VMSTATUS(ret+16(FP))
	RET

// func invvpid(typ uint64, desc *[2]uint64) uint64
TEXT ·invvpid(SB),NOSPLIT,$0-24
	MOVQ typ+0(FP), AX
	MOVQ desc+8(FP), CX
	INVVPID_AX_CX
	VMSTATUS(ret+16(FP))
	RET

// func sgdt() (base uint64, limit uint16)
TEXT ·sgdt(SB),NOSPLIT,$16-10
	SGDT 0(SP)
	MOVW 0(SP), AX
	MOVQ 2(SP), BX
	MOVQ BX, base+0(FP)
	MOVW AX, limit+8(FP)
	RET

// func sidt() (base uint64, limit uint16)
TEXT ·sidt(SB),NOSPLIT,$16-10
	SIDT 0(SP)
	MOVW 0(SP), AX
	MOVQ 2(SP), BX
	MOVQ BX, base+0(FP)
	MOVW AX, limit+8(FP)
	RET

// func str() uint16
TEXT ·str(SB),NOSPLIT,$0-2
	STRW AX
	MOVW AX, ret+0(FP)
	RET

TEXT ·readDR6(SB),NOSPLIT,$0-8
	MOVQ DR6, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·writeDR6(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, DR6
	RET
