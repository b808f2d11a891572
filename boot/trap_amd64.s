#include "textflag.h"
#include "go_asm.h"

// GS base always holds the address of this CPU's percpu (the Go runtime
// never uses GS on linux/amd64). GS-relative operands are written as a 0x65
// prefix byte followed by an absolute-address instruction.
#define GSP BYTE $0x65;

// syscallEntry is the LSTAR target. Contract on entry (SYSCALL at CPL 0):
// RCX = return RIP, R11 = RFLAGS before the call, RSP = the caller's stack
// (not switched: CPL does not change), IF = 0 through IA32_FMASK; RAX =
// system call number, RDI RSI RDX R10 R8 R9 = arguments. Every register is
// saved into the running thread's frame; the caller's stack is not touched.
TEXT ·syscallEntry(SB),NOSPLIT|NOFRAME,$0
	GSP MOVQ SP, percpu_scratch
	GSP MOVQ percpu_cur, SP
	MOVQ AX, frame_rax(SP)
	MOVQ BX, frame_rbx(SP)
	MOVQ CX, frame_rcx(SP)
	MOVQ DX, frame_rdx(SP)
	MOVQ SI, frame_rsi(SP)
	MOVQ DI, frame_rdi(SP)
	MOVQ BP, frame_rbp(SP)
	MOVQ R8, frame_r8(SP)
	MOVQ R9, frame_r9(SP)
	MOVQ R10, frame_r10(SP)
	MOVQ R11, frame_r11(SP)
	MOVQ R12, frame_r12(SP)
	MOVQ R13, frame_r13(SP)
	MOVQ R14, frame_r14(SP)
	MOVQ R15, frame_r15(SP)
	MOVQ CX, frame_rip(SP)
	MOVQ R11, frame_rflags(SP)
	GSP MOVQ percpu_scratch, AX
	MOVQ AX, frame_rsp(SP)
	MOVQ $const_selKernelCode, frame_cs(SP)
	MOVQ $const_selKernelData, frame_ss(SP)
	MOVQ $const_vecSyscall, frame_vector(SP)
	MOVQ $0, frame_errcode(SP)
	MOVQ SP, AX
	JMP ·kernelEnter(SB)

// trapCommon is reached from every IDT vector stub with the vector number and
// an error code (0 when the CPU pushes none) on top of the hardware interrupt
// frame, on an IST stack: 0(SP) vector, 8 errcode, 16 RIP, 24 CS, 32 RFLAGS,
// 40 RSP, 48 SS. From a thread it saves the full state into the thread's frame
// and enters the kernel; from kernel context it is a platform fault.
TEXT ·trapCommon(SB),NOSPLIT|NOFRAME,$0
	GSP CMPQ percpu_inKernel, $0
	JNE inkernel
	PUSHQ AX
	GSP MOVQ percpu_cur, AX
	MOVQ BX, frame_rbx(AX)
	POPQ BX
	MOVQ BX, frame_rax(AX)
	MOVQ CX, frame_rcx(AX)
	MOVQ DX, frame_rdx(AX)
	MOVQ SI, frame_rsi(AX)
	MOVQ DI, frame_rdi(AX)
	MOVQ BP, frame_rbp(AX)
	MOVQ R8, frame_r8(AX)
	MOVQ R9, frame_r9(AX)
	MOVQ R10, frame_r10(AX)
	MOVQ R11, frame_r11(AX)
	MOVQ R12, frame_r12(AX)
	MOVQ R13, frame_r13(AX)
	MOVQ R14, frame_r14(AX)
	MOVQ R15, frame_r15(AX)
	MOVQ 0(SP), BX
	MOVQ BX, frame_vector(AX)
	MOVQ 8(SP), BX
	MOVQ BX, frame_errcode(AX)
	MOVQ 16(SP), BX
	MOVQ BX, frame_rip(AX)
	MOVQ 24(SP), BX
	MOVQ BX, frame_cs(AX)
	MOVQ 32(SP), BX
	MOVQ BX, frame_rflags(AX)
	MOVQ 40(SP), BX
	MOVQ BX, frame_rsp(AX)
	MOVQ 48(SP), BX
	MOVQ BX, frame_ss(AX)
	JMP ·kernelEnter(SB)
inkernel:
	// Build a frame in place (the hardware part is already in frame order)
	// and report the fault on the fault stack's fake g. Never returns.
	PUSHQ R15
	PUSHQ R14
	PUSHQ R13
	PUSHQ R12
	PUSHQ R11
	PUSHQ R10
	PUSHQ R9
	PUSHQ R8
	PUSHQ BP
	PUSHQ DI
	PUSHQ SI
	PUSHQ DX
	PUSHQ CX
	PUSHQ BX
	PUSHQ AX
	MOVQ SP, BX
	GSP MOVQ percpu_faultTLS, AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	SUBQ $16, SP
	ANDQ $~15, SP
	MOVQ BX, 0(SP)
	CALL ·kernelFault(SB)
die:
	CLI
	HLT
	JMP die

// kernelEnter finishes a kernel entry. AX = the thread whose registers were
// just saved. It saves the thread's FPU/SSE state, switches to this CPU's
// kernel stack and kernel TLS, runs kernelEntry (which returns the thread to
// run next) and resumes that thread.
TEXT ·kernelEnter(SB),NOSPLIT|NOFRAME,$0
	LEAQ (thread_fxArea+15)(AX), BX
	ANDQ $~15, BX
	FXSAVE64 (BX)
	GSP MOVQ $1, percpu_inKernel
	GSP MOVQ percpu_kstackTop, SP
	GSP MOVQ percpu_ktls, AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	SUBQ $16, SP
	CALL ·kernelEntry(SB)
	MOVQ 0(SP), AX
	JMP ·resumeThread(SB)

// resumeThread switches this CPU to the thread at AX: FS base, FPU/SSE state
// and every register from its frame, returning with IRETQ (SYSRET would drop
// to CPL 3). Interrupts stay off until IRETQ loads the thread's RFLAGS.
TEXT ·resumeThread(SB),NOSPLIT|NOFRAME,$0
	GSP MOVQ AX, percpu_cur
	MOVQ AX, SI
	MOVQ thread_fsbase(SI), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	LEAQ (thread_fxArea+15)(SI), BX
	ANDQ $~15, BX
	FXRSTOR64 (BX)
	MOVQ SI, AX
	GSP MOVQ percpu_kstackTop, SP
	PUSHQ frame_ss(AX)
	PUSHQ frame_rsp(AX)
	PUSHQ frame_rflags(AX)
	PUSHQ frame_cs(AX)
	PUSHQ frame_rip(AX)
	GSP MOVQ $0, percpu_inKernel
	MOVQ frame_rbp(AX), BX
	XCHGQ BP, BX                   // (not MOVQ x, BP: keeps vet's framepointer check quiet)
	MOVQ frame_rbx(AX), BX
	MOVQ frame_rcx(AX), CX
	MOVQ frame_rdx(AX), DX
	MOVQ frame_rsi(AX), SI
	MOVQ frame_rdi(AX), DI
	MOVQ frame_r8(AX), R8
	MOVQ frame_r9(AX), R9
	MOVQ frame_r10(AX), R10
	MOVQ frame_r11(AX), R11
	MOVQ frame_r12(AX), R12
	MOVQ frame_r13(AX), R13
	MOVQ frame_r14(AX), R14
	MOVQ frame_r15(AX), R15
	MOVQ frame_rax(AX), AX
	IRETQ

// startFirstThread leaves the boot stack for good: it resumes the thread at
// addr on this CPU. func startFirstThread(addr uint64)
TEXT ·startFirstThread(SB),NOSPLIT|NOFRAME,$0-8
	MOVQ addr+0(FP), AX
	JMP ·resumeThread(SB)

// idleLoop is the body of every CPU's idle thread: halt until an interrupt
// enters the kernel, which then picks real work if there is any.
TEXT ·idleLoop(SB),NOSPLIT|NOFRAME,$0
again:
	STI
	HLT
	JMP again

// percpuSelf returns this CPU's percpu address from GS.
TEXT ·percpuSelf(SB),NOSPLIT,$0-8
	GSP MOVQ percpu_self, AX
	MOVQ AX, ret+0(FP)
	RET

// addrOfSyscallEntry, addrOfIdleLoop and addrOfVectors return code addresses
// for the MSRs, thread frames and IDT.
TEXT ·addrOfSyscallEntry(SB),NOSPLIT,$0-8
	LEAQ ·syscallEntry(SB), AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·addrOfIdleLoop(SB),NOSPLIT,$0-8
	LEAQ ·idleLoop(SB), AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·addrOfRt0(SB),NOSPLIT,$0-8
	LEAQ _rt0_amd64_linux(SB), AX
	MOVQ AX, ret+0(FP)
	RET

TEXT ·addrOfVectorTable(SB),NOSPLIT,$0-8
	LEAQ ·vectorTable(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// addrOfEnd returns the end of the image (the linker's runtime.end: past
// bss and noptrbss).
TEXT ·addrOfEnd(SB),NOSPLIT,$0-8
	LEAQ runtime·end(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// apEntry64 is where the AP trampoline lands in 64-bit mode on the kernel
// page tables. It enables SSE, takes the stack and kernel TLS that the BSP
// left in apBootStack/apBootTLS, and calls apMain.
TEXT ·apEntry64(SB),NOSPLIT|NOFRAME,$0
	MOVL $0x10, AX
	MOVW AX, DS
	MOVW AX, ES
	MOVW AX, SS
	XORL AX, AX
	MOVW AX, FS
	MOVW AX, GS
	MOVQ CR0, AX
	ANDQ $~0x60000004, AX          // CD and NW (set by INIT), EM
	ORQ $2, AX
	MOVQ AX, CR0
	MOVQ CR4, AX
	ORQ $0x600, AX
	MOVQ AX, CR4
	BYTE $0xDB; BYTE $0xE3          // FNINIT
	MOVQ ·apBootStack(SB), SP
	MOVQ ·apBootTLS(SB), AX
	MOVQ AX, DX
	SHRQ $32, DX
	MOVL $0xC0000100, CX
	WRMSR
	CALL ·apMain(SB)
hang:
	CLI
	HLT
	JMP hang

TEXT ·addrOfAPEntry64(SB),NOSPLIT,$0-8
	LEAQ ·apEntry64(SB), AX
	MOVQ AX, ret+0(FP)
	RET

// CurrentCPU returns the index of the CPU executing the caller.
TEXT ·CurrentCPU(SB),NOSPLIT,$0-8
	GSP MOVLQSX percpu_id, AX
	MOVQ AX, ret+0(FP)
	RET
