# msr-prot32: allowed and refused MSRs, in 32-bit protected mode (see msr.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "msr.inc"
