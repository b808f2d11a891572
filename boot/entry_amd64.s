#include "textflag.h"
#include "go_asm.h"

// The multiboot loader enters here in 32-bit protected mode with paging off:
// EAX = multiboot magic, EBX = physical address of the boot information.
// Everything until the far return below executes as 32-bit code, so only
// instructions whose encodings are identical in both modes appear: 32-bit
// operand sizes, no REX prefixes, no RIP-relative memory operands.
//
// It identity-maps the first 4 GiB with 2 MiB pages, enables PAE and long
// mode, and far-returns into entry64.
TEXT ·entry32(SB),NOSPLIT|NOFRAME,$0
	CLI
	CLD
	MOVL AX, SI
	MOVL BX, DI
	BYTE $0xE8; LONG $0            // call .+5: push the address of the POP
	POPQ BX                        // ebx = runtime address of this instruction
	BYTE $0xEB; BYTE $0x07         // jmp over the 7-byte LEAQ
	LEAQ ·early(SB), AX            // never executed: disp32 = early - (ebx+10)
	MOVL 6(BX), CX
	ADDL CX, BX
	ADDL $10, BX                   // ebx = &early
	MOVL SI, earlyArea_magic(BX)
	MOVL DI, earlyArea_info(BX)

	// edx = first page boundary inside early.tables
	MOVL BX, DX
	ADDL $(earlyArea_tables+4095), DX
	ANDL $-4096, DX

	MOVL DX, DI
	XORL AX, AX
	MOVL $(6*1024), CX
	REP; STOSL

	// PML4[0] -> PDPT, PDPT[0..3] -> PD0..PD3 (present, writable)
	MOVL DX, AX
	ADDL $(4096+3), AX
	MOVL AX, 0(DX)
	MOVL DX, AX
	ADDL $(8192+3), AX
	MOVL AX, 4096(DX)
	ADDL $4096, AX
	MOVL AX, 4104(DX)
	ADDL $4096, AX
	MOVL AX, 4112(DX)
	ADDL $4096, AX
	MOVL AX, 4120(DX)

	// PD entries: 2048 x 2 MiB pages (present, writable, page size)
	MOVL DX, DI
	ADDL $8192, DI
	MOVL $0x83, AX
	MOVL $2048, CX
fill:
	MOVL AX, 0(DI)
	ADDL $0x200000, AX
	ADDL $8, DI
	DECL CX
	JNE fill

	// GDT: null, 64-bit code (0x08), data (0x10)
	MOVL $0, (earlyArea_gdt+0)(BX)
	MOVL $0, (earlyArea_gdt+4)(BX)
	MOVL $0x0000FFFF, (earlyArea_gdt+8)(BX)
	MOVL $0x00AF9A00, (earlyArea_gdt+12)(BX)
	MOVL $0x0000FFFF, (earlyArea_gdt+16)(BX)
	MOVL $0x00CF9200, (earlyArea_gdt+20)(BX)
	MOVW $23, earlyArea_gdtr(BX)
	MOVL BX, AX
	ADDL $earlyArea_gdt, AX
	MOVL AX, (earlyArea_gdtr+2)(BX)
	MOVL $0, (earlyArea_gdtr+6)(BX)

	MOVL CR4, AX
	ORL $0x20, AX                  // CR4.PAE
	MOVL AX, CR4
	MOVL DX, AX
	MOVL AX, CR3
	MOVL $0xC0000080, CX           // IA32_EFER
	RDMSR
	ORL $0x100, AX                 // EFER.LME
	WRMSR
	MOVL CR0, AX
	ORL $0x80010001, AX            // CR0.PG | CR0.WP | CR0.PE
	MOVL AX, CR0

	MOVL BX, AX
	ADDL $earlyArea_gdtr, AX
	LGDT (AX)

	BYTE $0xE8; LONG $0
	POPQ BX
	BYTE $0xEB; BYTE $0x07
	LEAQ ·entry64(SB), AX          // never executed: locates entry64
	MOVL 6(BX), AX
	ADDL BX, AX
	ADDL $10, AX
	PUSHQ $0x08
	PUSHQ AX
	BYTE $0xCB                     // 32-bit far return into 64-bit CS 0x08

// entry64 runs in 64-bit mode on the early page tables. It enables SSE, points
// FS at a TLS block whose slot -8 holds the boot fake g (that is where the
// ABI0-to-Go wrapper loads R14 from), and calls bootMain on the boot stack.
TEXT ·entry64(SB),NOSPLIT|NOFRAME,$0
	MOVL $0x10, AX
	MOVW AX, DS
	MOVW AX, ES
	MOVW AX, SS
	XORL AX, AX
	MOVW AX, FS
	MOVW AX, GS

	// Caching on (CD and NW clear: the loader may leave them as INIT
	// sets them), x87/SSE without emulation (EM clear, MP set).
	MOVQ CR0, AX
	ANDQ $~0x60000004, AX          // clear CR0.CD, CR0.NW, CR0.EM
	ORQ $2, AX                     // set CR0.MP
	MOVQ AX, CR0
	MOVQ CR4, AX
	ORQ $0x600, AX                 // CR4.OSFXSR | CR4.OSXMMEXCPT
	MOVQ AX, CR4
	BYTE $0xDB; BYTE $0xE3          // FNINIT

	LEAQ ·bootStack(SB), AX
	MOVQ AX, ·bootG+fakeG_lo(SB)
	LEAQ const_stackGuardRoom(AX), BX
	MOVQ BX, ·bootG+fakeG_stackguard0(SB)
	MOVQ BX, ·bootG+fakeG_stackguard1(SB)
	ADDQ $const_bootStackSize, AX
	MOVQ AX, ·bootG+fakeG_hi(SB)
	MOVQ AX, SP

	LEAQ ·bootG(SB), AX
	MOVQ AX, ·bootTLS(SB)
	LEAQ ·bootTLS+8(SB), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX           // IA32_FS_BASE
	WRMSR

	CALL ·bootMain(SB)
hang:
	CLI
	HLT
	JMP hang
