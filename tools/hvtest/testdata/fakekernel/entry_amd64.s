#include "textflag.h"

// PUTC writes one byte to COM1 once its transmit holding register is empty
// (LSR bit 5); Bochs drops bytes written while it is full. Immediates only:
// the Go assembler turns symbol addresses into RIP-relative forms, which mean
// something else in 32-bit mode. Macros cannot hold labels, so the wait loop
// is a hand-encoded "JZ rel8" back over IN (1 byte), TEST (2) and itself (2).
#define WAITTHR MOVW $0x3fd, DX; INB; TESTB $0x20, AL; BYTE $0x74; BYTE $0xFB
#define PUTC(c) WAITTHR; MOVW $0x3f8, DX; MOVB c, AL; OUTB

// PUTP writes one byte to the port in DX.
#define PUTP(c) MOVB c, AL; OUTB

// The multiboot loader enters here in 32-bit protected mode, paging off, with
// the boot magic in EAX and the boot information in EBX. Only instructions
// whose encodings mean the same in 32-bit and 64-bit mode are used: no REX
// prefixes, no RIP-relative addressing, 32-bit registers only.
TEXT ·entry32(SB), NOSPLIT|NOFRAME, $0
	CLI
	MOVL AX, BP
	MOVL BX, DI
	PUTC($0x68)
	PUTC($0x76)
	PUTC($0x3a)
	PUTC($0x20)
	PUTC($0x66)
	PUTC($0x61)
	PUTC($0x6b)
	PUTC($0x65)
	PUTC($0x20)
	PUTC($0x6b)
	PUTC($0x65)
	PUTC($0x72)
	PUTC($0x6e)
	PUTC($0x65)
	PUTC($0x6c)
	PUTC($0x0a)
	PUTC($0x68)
	PUTC($0x76)
	PUTC($0x3a)
	PUTC($0x20)
	PUTC($0x63)
	PUTC($0x6d)
	PUTC($0x64)
	PUTC($0x6c)
	PUTC($0x69)
	PUTC($0x6e)
	PUTC($0x65)
	PUTC($0x20)

	// Print the command line the loader passed, found the Multiboot 1 way
	// (flags bit 2, pointer at offset 16) or the Multiboot 2 way (tag 1).
	CMPL BP, $0x2BADB002
	JNE  mb2
	MOVL (DI), AX
	TESTL $4, AX
	JZ   eol
	MOVL 16(DI), SI
	JMP  puts
mb2:
	CMPL BP, $0x36D76289
	JNE  eol
	LEAL 8(DI), SI
tag:
	MOVL (SI), AX
	TESTL AX, AX
	JZ   eol
	CMPL AX, $1
	JEQ  found
	MOVL 4(SI), AX
	ADDL $7, AX
	ANDL $~7, AX
	ADDL AX, SI
	JMP  tag
found:
	ADDL $8, SI
puts:
	MOVB (SI), BL
	TESTB BL, BL
	JZ   eol
	WAITTHR
	MOVW $0x3f8, DX
	MOVB BL, AL
	OUTB
	INCL SI
	JMP  puts
eol:
	PUTC($0x0a)
	PUTC($0x73)
	PUTC($0x65)
	PUTC($0x6c)
	PUTC($0x66)
	PUTC($0x74)
	PUTC($0x65)
	PUTC($0x73)
	PUTC($0x74)
	PUTC($0x3a)
	PUTC($0x20)
	PUTC($0x50)
	PUTC($0x41)
	PUTC($0x53)
	PUTC($0x53)
	PUTC($0x20)
	PUTC($0x66)
	PUTC($0x61)
	PUTC($0x6b)
	PUTC($0x65)
	PUTC($0x0a)
	PUTC($0x73)
	PUTC($0x65)
	PUTC($0x6c)
	PUTC($0x66)
	PUTC($0x74)
	PUTC($0x65)
	PUTC($0x73)
	PUTC($0x74)
	PUTC($0x3a)
	PUTC($0x20)
	PUTC($0x64)
	PUTC($0x6f)
	PUTC($0x6e)
	PUTC($0x65)
	PUTC($0x20)
	PUTC($0x31)
	PUTC($0x2f)
	PUTC($0x31)
	PUTC($0x0a)

	// Wait until the transmitter is empty (LSR bit 6, TEMT): an emulator
	// that stops now would otherwise lose the last bytes still in the UART.
	MOVW $0x3fd, DX
	INB
	TESTB $0x40, AL
	BYTE $0x74; BYTE $0xFB
	// isa-debug-exit: QEMU ends with status (0<<1)|1 = 1, "success".
	MOVL $0, AX
	MOVW $0xf4, DX
	OUTL
	// Bochs ends when the string "Shutdown" is written to port 0x8900.
	MOVW $0x8900, DX
	PUTP($0x53)
	PUTP($0x68)
	PUTP($0x75)
	PUTP($0x74)
	PUTP($0x64)
	PUTP($0x6f)
	PUTP($0x77)
	PUTP($0x6e)
halt:
	HLT
	JMP halt
