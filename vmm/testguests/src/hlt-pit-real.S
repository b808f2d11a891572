# hlt-pit-real: HLT woken by PIT IRQ0 through the 8259, in real mode (see hlt.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "hlt.inc"
