# exit-port-long64: see exitport.inc; in 64-bit long mode.
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "exitport.inc"
