# io-long64: port I/O in all sizes and string forms, in 64-bit long mode (see io.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "io.inc"
