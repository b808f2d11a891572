#include "textflag.h"
#include "go_asm.h"

// SVM instructions (APM vol. 3): the Go assembler has no mnemonics for them.
// Each takes its physical address operand in RAX.
#define VMRUN  BYTE $0x0F; BYTE $0x01; BYTE $0xD8
#define VMLOAD BYTE $0x0F; BYTE $0x01; BYTE $0xDA
#define VMSAVE BYTE $0x0F; BYTE $0x01; BYTE $0xDB
#define STGI   BYTE $0x0F; BYTE $0x01; BYTE $0xDC
#define CLGI   BYTE $0x0F; BYTE $0x01; BYTE $0xDD

// func worldSwitch(vmcbPA, hostSavePA uint64, gprs *guestGPRs, guestFX, hostFX *byte)
//
// Register contract: Go ABI0. On entry all registers but SP and BP are
// free; on return every general register except SP and BP holds garbage and
// the XMM/x87 state is the host's again (saved in hostFX before the guest's
// is loaded from guestFX). Interrupts are held off by GIF=0 from CLGI until
// STGI, so a host interrupt that caused the exit is taken only after the
// host's FS (the Go TLS), GS (per-CPU data), TR and LSTAR are back.
TEXT ·worldSwitch(SB),NOSPLIT,$16-40
	MOVQ BP, 0(SP)
	MOVQ gprs+16(FP), AX
	MOVQ AX, 8(SP)                  // gprs, needed again after the exit

	MOVQ hostFX+32(FP), BX
	FXSAVE64 (BX)
	MOVQ guestFX+24(FP), BX
	FXRSTOR64 (BX)

	CLGI
	MOVQ hostSavePA+8(FP), AX
	VMSAVE                          // host hidden state
	MOVQ vmcbPA+0(FP), AX
	VMLOAD                          // guest hidden state

	MOVQ 8(SP), BX
	MOVQ guestGPRs_rcx(BX), CX
	MOVQ guestGPRs_rdx(BX), DX
	MOVQ guestGPRs_rsi(BX), SI
	MOVQ guestGPRs_rdi(BX), DI
	MOVQ guestGPRs_r8(BX), R8
	MOVQ guestGPRs_r9(BX), R9
	MOVQ guestGPRs_r10(BX), R10
	MOVQ guestGPRs_r11(BX), R11
	MOVQ guestGPRs_r12(BX), R12
	MOVQ guestGPRs_r13(BX), R13
	MOVQ guestGPRs_r14(BX), R14
	MOVQ guestGPRs_r15(BX), R15
	PUSHQ guestGPRs_rbp(BX)
	MOVQ guestGPRs_rbx(BX), BX
	POPQ BP

	VMRUN                           // RAX = vmcbPA; returns at #VMEXIT with host RAX, RSP, RIP

	PUSHQ BX                        // guest RBX
	MOVQ 16(SP), BX                 // gprs (8(SP) before the push)
	MOVQ CX, guestGPRs_rcx(BX)
	MOVQ DX, guestGPRs_rdx(BX)
	MOVQ SI, guestGPRs_rsi(BX)
	MOVQ DI, guestGPRs_rdi(BX)
	MOVQ BP, guestGPRs_rbp(BX)
	MOVQ R8, guestGPRs_r8(BX)
	MOVQ R9, guestGPRs_r9(BX)
	MOVQ R10, guestGPRs_r10(BX)
	MOVQ R11, guestGPRs_r11(BX)
	MOVQ R12, guestGPRs_r12(BX)
	MOVQ R13, guestGPRs_r13(BX)
	MOVQ R14, guestGPRs_r14(BX)
	MOVQ R15, guestGPRs_r15(BX)
	POPQ CX
	MOVQ CX, guestGPRs_rbx(BX)
	MOVQ 0(SP), BP                  // host frame pointer

	MOVQ vmcbPA+0(FP), AX
	VMSAVE                          // guest hidden state
	MOVQ hostSavePA+8(FP), AX
	VMLOAD                          // host FS, GS, TR, LSTAR, ...

	MOVQ guestFX+24(FP), BX
	FXSAVE64 (BX)
	MOVQ hostFX+32(FP), BX
	FXRSTOR64 (BX)
	STGI
	RET
