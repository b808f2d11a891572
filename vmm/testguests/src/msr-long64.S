# msr-long64: allowed and refused MSRs, in 64-bit long mode (see msr.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "msr.inc"
