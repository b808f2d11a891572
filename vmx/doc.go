// Package vmx holds the Intel VMX architecture as data and pure logic: VMCS
// field encodings, capability-MSR decoding, control-field computation, exit
// decoding, EPT page tables, MSR and I/O bitmaps and the software-checkable
// VM-entry checks.
//
// Boundary: nothing here executes a VMX instruction or touches hardware.
// MSRs come in through an MSRReader, the VMCS through an Accessor and memory
// through a FrameSource, so every function is testable on the host with
// fakes. The VMXON/VMCS assembly, the world switch and the vCPU that turn
// these pieces into a running guest live in other files of this package and
// translate exits into vmm.Exit; nothing here imports vmm or devices.
//
// Section and table numbers refer to the Intel 64 and IA-32 Architectures
// Software Developer's Manual, Volume 3C, in the numbering used since 2023
// (VMCS = chapter 25, VM entries = 27, VM exits = 28, EPT = 29, VMX
// instruction reference = 31); older editions number these chapters one
// lower. Appendix A (capability MSRs), B (field encodings) and C (exit
// reasons) keep their letters. See docs/vmx.md.
package vmx
