# cpuid-real: CPUID leaves the VMM defines, checked in real mode.
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "cpuid.inc"
