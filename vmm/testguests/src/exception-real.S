# exception-real: exceptions handled by the guest's own IDT, in real mode (see exception.inc).
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
	.include "exception.inc"
