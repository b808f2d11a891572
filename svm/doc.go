// Package svm is the AMD SVM (AMD-V) backend: it knows the layout and the
// encodings that AMD64 Architecture Programmer's Manual volume 2 (publication
// 24593, chapter 15 "Secure Virtual Machine", appendices B and C) defines, and
// turns them into plain Go values.
//
// This part of the package is pure logic and runs in host unit tests:
//
//   - vmcb.go: the VMCB as a Go struct (control area, state save area),
//     intercept bits, VMCB clean bits, segment attribute packing.
//   - exitcode.go: the #VMEXIT codes of appendix C with their names.
//   - decode.go: EXITINFO1/EXITINFO2/EXITINTINFO/EVENTINJ decoders and
//     encoders (IOIO, #NPF, CR/DR access, MSR, event records).
//   - bitmap.go: the I/O permission map (IOPM) and MSR permission map (MSRPM)
//     over caller-provided memory.
//   - cpuid.go: CPUID Fn8000_000A, the SVM-related MSRs and their bits.
//   - npt.go: nested page tables over a small table-memory interface.
//
// Boundary: nothing here executes SVM instructions, touches MSRs or reads
// host memory by physical address; the world switch, the per-CPU host save
// area and the vCPU type live in other files of this package and call into
// this code. Nothing here imports vmm or devices: translating an exit into a
// vendor-neutral vmm.Exit is done by the caller from the decoded values.
//
// docs/svm.md maps each definition to its manual section and records how the
// emulators we test under (QEMU TCG, Bochs) differ from hardware.
package svm
