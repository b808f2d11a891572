# mmio-uart-real: the MMIO 16550 through the instruction emulator, in big real mode (see mmio.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "mmio.inc"
