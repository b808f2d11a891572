# loop-forever: a guest that never exits: a jump to itself with interrupts
# off, in real mode, right after its one console line. Only the VMM's
# watchdog can stop it (reason "watchdog"); it needs a timer the guest cannot
# mask.
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"
main:
	PUTS "loop-forever: CLI, then JMP to itself"
	cli
1:	jmp 1b
