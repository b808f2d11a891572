# exception-long64: exceptions handled by the guest's own IDT, in 64-bit long mode (see exception.inc).
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
	.include "exception.inc"
