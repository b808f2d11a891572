# hypercall-real: see hypercall.inc; in real mode.
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "hypercall.inc"
