# rdtsc-prot32: RDTSC and IA32_TSC with the VMM's TSC offset, in 32-bit protected mode (see rdtsc.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "rdtsc.inc"
