package boot

// Ending the run. Under QEMU the isa-debug-exit device at port 0xF4 ends the
// emulator with status (v<<1)|1; Bochs ends on the string "Shutdown" written
// to port 0x8900; a real machine powers off through ACPI (PM1 control,
// SLP_TYPa of \_S5 with SLP_EN). Whatever is absent ignores the write, so
// all three are tried in order, and if the machine still runs it halts.

const (
	qemuExitPort  = 0xF4
	bochsShutdown = 0x8900
)

// acpiPowerOff is filled from the FADT and DSDT at boot; zero port means
// unknown.
var acpiPowerOff struct {
	pm1a, pm1b uint16
	slpTypA    uint16
	slpTypB    uint16
	valid      bool
}

func exitGroup(status int) {
	var l line
	l.s("hv: exit status ").sdec(int64(status)).print()
	platformExit(status)
}

func platformExit(status int) {
	cli()
	// Let the UART drain (LSR bit 6, transmitter empty): the exit ports end
	// the emulator at once, and Bochs drops bytes still in the FIFO.
	for i := 0; i < 1000000 && inb(com1+uartLSR)&0x40 == 0; i++ {
		pause()
	}
	outl(qemuExitPort, uint32(status))
	const shutdown = "Shutdown"
	for i := 0; i < len(shutdown); i++ {
		outb(bochsShutdown, shutdown[i])
	}
	if acpiPowerOff.valid {
		const slpEn = 1 << 13
		outw(acpiPowerOff.pm1a, acpiPowerOff.slpTypA<<10|slpEn)
		if acpiPowerOff.pm1b != 0 {
			outw(acpiPowerOff.pm1b, acpiPowerOff.slpTypB<<10|slpEn)
		}
	}
	kputs("hv: halted")
	stop()
}
