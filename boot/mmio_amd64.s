#include "textflag.h"

// Device register accesses (boot/hostio.go). Each is one load or store of
// exactly the register's width at the identity-mapped physical address a:
// a+0(FP) holds the address, the value follows it (ABI0 frame).

TEXT ·mmioRead8(SB),NOSPLIT,$0-9
	MOVQ a+0(FP), BX
	MOVB (BX), AX
	MOVB AX, ret+8(FP)
	RET

TEXT ·mmioRead16(SB),NOSPLIT,$0-10
	MOVQ a+0(FP), BX
	MOVW (BX), AX
	MOVW AX, ret+8(FP)
	RET

TEXT ·mmioRead32(SB),NOSPLIT,$0-12
	MOVQ a+0(FP), BX
	MOVL (BX), AX
	MOVL AX, ret+8(FP)
	RET

TEXT ·mmioWrite8(SB),NOSPLIT,$0-9
	MOVQ a+0(FP), BX
	MOVB v+8(FP), AX
	MOVB AX, (BX)
	RET

TEXT ·mmioWrite16(SB),NOSPLIT,$0-10
	MOVQ a+0(FP), BX
	MOVW v+8(FP), AX
	MOVW AX, (BX)
	RET

TEXT ·mmioWrite32(SB),NOSPLIT,$0-12
	MOVQ a+0(FP), BX
	MOVL v+8(FP), AX
	MOVL AX, (BX)
	RET
