// Command fakekernel is a test fixture for the image tool and the emulator
// runner: a stock-Go ELF whose 32-bit multiboot entry prints fixed self-test
// markers on COM1 and then exits through isa-debug-exit (QEMU) and the Bochs
// shutdown port. It never reaches the Go runtime; it only proves that the
// image, the ISO and the emulator plumbing work without the real kernel.
package main

// entry32 is the multiboot entry point, reached in 32-bit protected mode with
// paging off; see entry_amd64.s.
func entry32()

func main() { entry32() }
