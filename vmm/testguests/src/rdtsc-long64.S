# rdtsc-long64: RDTSC and IA32_TSC with the VMM's TSC offset, in 64-bit long mode (see rdtsc.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "rdtsc.inc"
