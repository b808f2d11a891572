# triple-fault: a guest that shuts its processor down, in 64-bit long mode.
# With an IDT limit of 0, UD2's #UD cannot be delivered (SDM vol. 3A 6.10:
# a vector beyond the limit raises #GP), nor can that #GP, which makes a #DF,
# which cannot be delivered either: a triple fault (SDM vol. 3A 6.15, #DF
# "Interrupt 8"), which shuts the processor down. The VMM must stop this VM
# with reason "triple fault" and nothing else.
	.include "defs.inc"
	.set MODE, MODE_LONG64
	.include "entry.inc"
main:
	PUTS "triple-fault: IDT limit 0, then UD2: #UD, #GP and #DF cannot be delivered"
	lidt null_idt
	ud2
	FAIL 0x01, "still running after a triple fault"
null_idt:
	.word 0
	.quad 0
