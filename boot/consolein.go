package boot

// Console input: the bytes the host's terminal sends to COM1.
//
// The platform programs no interrupt controller for devices (the 8259 pair
// is masked and the I/O APIC left alone, lapic.go), so input is polled: the
// receiver's FIFO holds 16 bytes, which at 115200 baud fill in about 1.4 ms.
// A caller polling every few milliseconds keeps up with typing; a paste on
// real hardware can overrun the FIFO and lose bytes (emulators hold input
// back until the FIFO has room, so nothing is lost there).
//
// Reading is safe next to consolePutByte on another CPU without
// consoleLock: reading LSR clears only its error bits, and only reading
// RBR takes a byte, neither of which touches the transmitter.

// ConsoleRead moves the bytes COM1 has received into p without waiting and
// returns how many it moved (0 when none arrived). Only one goroutine
// should read the console.
func ConsoleRead(p []byte) int {
	n := 0
	for n < len(p) {
		lsr := inb(com1 + uartLSR)
		// A missing UART reads as all ones: no data, not endless data.
		if lsr == 0xFF || lsr&lsrDR == 0 {
			break
		}
		p[n] = inb(com1 + uartRBR)
		n++
	}
	return n
}
