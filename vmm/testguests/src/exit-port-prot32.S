# exit-port-prot32: see exitport.inc; in 32-bit protected mode.
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "exitport.inc"
