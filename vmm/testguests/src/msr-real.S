# msr-real: allowed and refused MSRs, in real mode (see msr.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "msr.inc"
