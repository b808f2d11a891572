# exception-prot32: exceptions handled by the guest's own IDT, in 32-bit protected mode (see exception.inc).
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
	.include "exception.inc"
