# io-prot32: port I/O in all sizes and string forms, in 32-bit protected mode (see io.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "io.inc"
