# io-real: port I/O in all sizes and string forms, in real mode (see io.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "io.inc"
