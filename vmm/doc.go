// Package vmm is the vendor-neutral core of the hypervisor: guest physical
// memory, the virtual CPU run loop, the exit dispatch table, event
// injection, the CPUID and MSR policy guests see, and the hook through which
// every nondeterministic input reaches a guest.
//
// Boundary: vmm never touches hardware. A Backend (svm or vmx) turns
// hardware exits into Exit values and programs the VMCB or VMCS; a Host
// supplies physical frames and pins threads; devices answer port and MMIO
// accesses through a devices/bus.Bus. Everything here is testable on the host
// with fakes.
package vmm
