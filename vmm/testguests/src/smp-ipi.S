# smp-ipi: a guest with two vCPUs (Guest.CPUs). The bootstrap processor
# starts the application processor with INIT and two start-up IPIs (Intel
# SDM vol. 3A 9.4.4, 11.6.1) through its x2APIC ICR; the AP starts in real
# mode at AP_START (SIPI vector AP_START>>12), reports its CPUID initial
# APIC ID and IA32_APIC_BASE, and sends the BSP a fixed IPI at IPI_VECTOR;
# the BSP halts until that interrupt arrives through its real-mode IVT.
	.include "defs.inc"
	.set MODE, MODE_REAL
	.include "entry.inc"

	.set MSR_APIC_BASE, 0x1B
	.set APIC_BASE_BSP, 0x100
	.set APIC_BASE_EN_EXTD, 0xC00	# xAPIC enable and x2APIC mode
	.set MSR_X2APIC_EOI, 0x80B
	.set MSR_X2APIC_SVR, 0x80F
	.set MSR_X2APIC_ICR, 0x830
	.set SVR_ENABLE, 0x1FF		# APIC software enable, spurious vector 0xFF
	.set ICR_INIT, 0x4500		# INIT, level assert, physical, no shorthand
	.set ICR_STARTUP, 0x4600	# start-up; the vector is the start page
	.set AP_START, 0x9000		# LOAD_ADDR + the .org below
	.set IPI_VECTOR, 0x50

main:
	PUTS "smp-ipi: BSP starts the AP with INIT and SIPI; the AP answers with a fixed IPI"
	# entry.inc's IVT limit covers its NVEC vectors; IPI_VECTOR is above.
	movw $ipi_handler, (IPI_VECTOR * 4)
	movw $0, (IPI_VECTOR * 4 + 2)
	lidt ivt_full
	mov $MSR_APIC_BASE, %ecx
	rdmsr
	test $APIC_BASE_BSP, %eax
	FAILIF z, 0x01, "the BSP's IA32_APIC_BASE lacks the BSP flag"
	mov $MSR_APIC_BASE, %ecx
	rdmsr
	or $APIC_BASE_EN_EXTD, %eax
	wrmsr
	mov $MSR_X2APIC_SVR, %ecx
	mov $SVR_ENABLE, %eax
	xor %edx, %edx
	wrmsr
	mov $MSR_X2APIC_ICR, %ecx
	mov $1, %edx			# destination: x2APIC ID 1
	mov $ICR_INIT, %eax
	wrmsr
	mov $(ICR_STARTUP | AP_START >> 12), %eax
	wrmsr
	wrmsr				# the customary second SIPI: ignored
	sti
1:	hlt
	cmpb $1, (ipi_seen)
	jne 1b
	cli
	cmpb $1, (ap_id)
	FAILIF ne, 0x02, "the AP's CPUID leaf 1 initial APIC ID is not 1"
	testl $APIC_BASE_BSP, (ap_base)
	FAILIF nz, 0x03, "the AP's IA32_APIC_BASE has the BSP flag"
	PASS

ipi_handler:
	push %eax
	push %ecx
	push %edx
	movb $1, (ipi_seen)
	mov $MSR_X2APIC_EOI, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	pop %edx
	pop %ecx
	pop %eax
	iret

ivt_full:
	.word 0x3FF			# the whole real-mode IVT
	.long 0
ipi_seen: .byte 0
ap_id:	.byte 0
	.balign 4
ap_base: .long 0

# The AP's start page: real mode, CS = AP_START>>4, IP = 0, DS base 0 (the
# INIT state), so the labels above are its data addresses too.
	.org AP_START - LOAD_ADDR
ap_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov $1, %eax
	cpuid
	shr $24, %ebx
	mov %bl, (ap_id)
	mov $MSR_APIC_BASE, %ecx
	rdmsr
	mov %eax, (ap_base)
	or $APIC_BASE_EN_EXTD, %eax
	wrmsr
	mov $MSR_X2APIC_SVR, %ecx
	mov $SVR_ENABLE, %eax
	xor %edx, %edx
	wrmsr
	mov $MSR_X2APIC_ICR, %ecx
	xor %edx, %edx			# destination: x2APIC ID 0
	mov $IPI_VECTOR, %eax		# fixed, edge, physical
	wrmsr
2:	hlt
	jmp 2b
