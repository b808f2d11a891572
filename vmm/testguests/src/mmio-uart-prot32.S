# mmio-uart-prot32: the MMIO 16550 through the instruction emulator, in 32-bit protected mode (see mmio.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "mmio.inc"
