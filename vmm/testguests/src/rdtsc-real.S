# rdtsc-real: RDTSC and IA32_TSC with the VMM's TSC offset, in real mode (see rdtsc.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "rdtsc.inc"
