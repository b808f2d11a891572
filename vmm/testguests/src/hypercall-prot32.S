# hypercall-prot32: see hypercall.inc; in 32-bit protected mode.
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "hypercall.inc"
