# outside-ram: a guest that reads a guest physical address that is neither
# RAM nor a device, in 32-bit protected mode without paging (linear =
# physical). The VMM must stop this VM with reason "outside guest memory";
# a VMM that answers the read instead lets the guest report a failure.
	.include "defs.inc"
	.set MODE, MODE_PROT32
	.include "entry.inc"
main:
	PUTS "outside-ram: reading guest physical 80000000h, outside RAM and every device"
	mov GPA_OUTSIDE, %eax
	FAIL 0x01, "the read outside guest memory returned"
