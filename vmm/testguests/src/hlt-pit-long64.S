# hlt-pit-long64: HLT woken by PIT IRQ0 through the 8259, in 64-bit long mode (see hlt.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "hlt.inc"
