# hypercall-long64: see hypercall.inc; in 64-bit long mode.
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "hypercall.inc"
