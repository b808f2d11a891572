# cpuid-prot32: CPUID leaves the VMM defines, checked in 32-bit protected mode.
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "cpuid.inc"
