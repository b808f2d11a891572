# exit-port-real: see exitport.inc; in real mode.
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "exitport.inc"
