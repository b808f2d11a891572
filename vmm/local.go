package vmm

import "hv/devices/bus"

// Local is a VM's per-processor devices, in practice the local APICs: the
// VMM hands them the MSRs and the MMIO they claim on behalf of the vCPU that
// exited, because the same MSR number or address reaches a different device
// on each processor (the xAPIC page at 0xFEE00000, the x2APIC MSRs,
// IA32_APIC_BASE, IA32_TSC_DEADLINE).
//
// A VM without Local devices uses the VMM's own MSR policy only.
type Local interface {
	// ReadMSR reads msr for vCPU vcpu. handled false leaves the MSR to the
	// VMM's policy; a non-nil error makes RDMSR raise #GP(0).
	ReadMSR(vcpu int, msr uint32) (v uint64, handled bool, err error)
	// WriteMSR writes msr for vCPU vcpu, with the same rules.
	WriteMSR(vcpu int, msr uint32, v uint64) (handled bool, err error)
	// MMIO returns the device that decodes guest-physical gpa for vCPU
	// vcpu and the offset of gpa in it; ok false leaves gpa to the VM's
	// bus.
	MMIO(vcpu int, gpa uint64) (d bus.Device, off uint64, ok bool)
}
