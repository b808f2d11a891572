// Package boot is the ring-0 platform under the stock Go runtime: it takes the
// machine from the multiboot entry (32-bit protected mode, paging off) to long
// mode, sets up every CPU (GDT, TSS, IDT with IST stacks, SSE, SYSCALL), manages
// physical memory and the host page tables, starts the other CPUs, and then
// serves the Linux system calls that the Go runtime makes, so that an ordinary
// GOOS=linux program runs at CPL 0 with privileged instructions available.
//
// Boundary: boot knows the machine (x86-64, PC platform, multiboot, ACPI) and
// the Go runtime's Linux system-call contract. It knows nothing of guests; the
// vmm, svm and vmx packages build on the services it exports (see api.go).
//
// Kernel-context rule: code reached from the entry stubs (system calls,
// interrupts, faults) and everything that runs before the Go runtime starts
// executes on a per-CPU kernel stack with a fake g (see percpu.go). It must not
// allocate, must not write pointers into globals or the heap (no write
// barriers: there is no M), must not panic and must not use package-level
// variables with dynamic initialisers (package init has not run yet).
package boot
