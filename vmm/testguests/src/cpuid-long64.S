# cpuid-long64: CPUID leaves the VMM defines, checked in 64-bit long mode.
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "cpuid.inc"
