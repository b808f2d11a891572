#include "textflag.h"

// Privileged-instruction wrappers. Each is a leaf with the Go ABI0 stack
// contract: arguments and results at FP offsets, no registers preserved
// beyond what ABI0 requires.

TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW port+0(FP), DX
	MOVB v+2(FP), AX
	OUTB
	RET

TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW port+0(FP), DX
	XORL AX, AX
	INB
	MOVB AX, ret+8(FP)
	RET

TEXT ·outw(SB),NOSPLIT,$0-4
	MOVW port+0(FP), DX
	MOVW v+2(FP), AX
	OUTW
	RET

TEXT ·outl(SB),NOSPLIT,$0-8
	MOVW port+0(FP), DX
	MOVL v+4(FP), AX
	OUTL
	RET

TEXT ·inl(SB),NOSPLIT,$0-12
	MOVW port+0(FP), DX
	INL
	MOVL AX, ret+8(FP)
	RET

TEXT ·rdmsr(SB),NOSPLIT,$0-16
	MOVL msr+0(FP), CX
	RDMSR
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+8(FP)
	RET

TEXT ·wrmsr(SB),NOSPLIT,$0-16
	MOVL msr+0(FP), CX
	MOVQ v+8(FP), AX
	MOVQ AX, DX
	SHRQ $32, DX
	WRMSR
	RET

TEXT ·cpuid(SB),NOSPLIT,$0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ $32, DX
	ORQ DX, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·readCR0(SB),NOSPLIT,$0-8
	MOVQ CR0, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·writeCR0(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR0
	RET

TEXT ·readCR2(SB),NOSPLIT,$0-8
	MOVQ CR2, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·readCR3(SB),NOSPLIT,$0-8
	MOVQ CR3, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·writeCR3(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR3
	RET

TEXT ·readCR4(SB),NOSPLIT,$0-8
	MOVQ CR4, AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·writeCR4(SB),NOSPLIT,$0-8
	MOVQ v+0(FP), AX
	MOVQ AX, CR4
	RET

TEXT ·xsetbv(SB),NOSPLIT,$0-16
	MOVL idx+0(FP), CX
	MOVQ v+8(FP), AX
	MOVQ AX, DX
	SHRQ $32, DX
	XSETBV
	RET

TEXT ·lgdt(SB),NOSPLIT,$0-8
	MOVQ p+0(FP), AX
	LGDT (AX)
	RET

TEXT ·lidt(SB),NOSPLIT,$0-8
	MOVQ p+0(FP), AX
	LIDT (AX)
	RET

TEXT ·ltr(SB),NOSPLIT,$0-2
	MOVW sel+0(FP), AX
	LTR AX
	RET

TEXT ·cli(SB),NOSPLIT,$0
	CLI
	RET

// stop disables interrupts and halts forever.
TEXT ·stop(SB),NOSPLIT,$0
again:
	CLI
	HLT
	JMP again

TEXT ·pause(SB),NOSPLIT,$0
	PAUSE
	RET

// rdrand64 returns a hardware random number; ok is false when the DRNG had
// none ready (CF=0).
TEXT ·rdrand64(SB),NOSPLIT,$0-9
	BYTE $0x48; BYTE $0x0F; BYTE $0xC7; BYTE $0xF0 // RDRAND RAX
	SETCS BX
	MOVQ AX, v+0(FP)
	MOVB BX, ok+8(FP)
	RET

// reloadSegments reloads CS with the kernel code selector (far return) and
// the data segment registers after a new GDT is loaded. FS and GS get the
// null selector: their bases come from MSRs.
TEXT ·reloadSegments(SB),NOSPLIT|NOFRAME,$0
	MOVL $0x10, AX
	MOVW AX, DS
	MOVW AX, ES
	MOVW AX, SS
	LEAQ reloaded<>(SB), AX
	SUBQ $16, SP
	MOVQ AX, 0(SP)
	MOVQ $0x08, 8(SP)
	BYTE $0x48; BYTE $0xCB         // RETFQ: pops RIP and CS

TEXT reloaded<>(SB),NOSPLIT|NOFRAME,$0
	RET
