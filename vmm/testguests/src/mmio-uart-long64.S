# mmio-uart-long64: the MMIO 16550 through the instruction emulator, in 64-bit long mode (see mmio.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "mmio.inc"
