# hlt-pit-prot32: HLT woken by PIT IRQ0 through the 8259, in 32-bit protected mode (see hlt.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "hlt.inc"
