package boot

import "sync/atomic"

// The platform console is COM1, a 16550 UART, driven by polling: it must work
// before interrupts exist and from fault handlers. Everything here is usable in
// kernel context (no allocation).

const (
	com1     = 0x3F8
	uartTHR  = 0 // transmit holding register (DLAB=0, write)
	uartRBR  = 0 // receiver buffer register (DLAB=0, read)
	uartIER  = 1
	uartFCR  = 2
	uartLCR  = 3
	uartMCR  = 4
	uartLSR  = 5
	lsrTHRE  = 0x20 // transmit holding register empty
	lsrDR    = 0x01 // data ready
	lcrDLAB  = 0x80
	lcr8N1   = 0x03
	baudBase = 115200
)

// consoleLock serialises output from all CPUs so lines do not interleave
// byte by byte. It is a spinlock because waiters may be in kernel context.
var consoleLock atomic.Uint32

func consoleInit() {
	outb(com1+uartIER, 0)
	outb(com1+uartLCR, lcrDLAB)
	outb(com1+0, 1) // divisor 1: 115200 baud
	outb(com1+1, 0)
	outb(com1+uartLCR, lcr8N1)
	outb(com1+uartFCR, 0xC7) // enable and clear FIFOs, 14-byte threshold
	outb(com1+uartMCR, 0x03) // DTR, RTS
}

func consolePutByte(b byte) {
	// Bounded wait: a missing UART must not hang the machine.
	for i := 0; i < 100000; i++ {
		if inb(com1+uartLSR)&lsrTHRE != 0 {
			break
		}
		pause()
	}
	outb(com1+uartTHR, b)
}

func consoleLockAcquire() {
	for !consoleLock.CompareAndSwap(0, 1) {
		pause()
	}
}

func consoleLockRelease() { consoleLock.Store(0) }

// consoleWrite writes p, translating \n to \r\n for terminals.
func consoleWrite(p []byte) {
	consoleLockAcquire()
	for _, b := range p {
		if b == '\n' {
			consolePutByte('\r')
		}
		consolePutByte(b)
	}
	consoleLockRelease()
}

// kprint and friends format without allocating; a line is built in a stack
// buffer and written at once.
type line struct {
	buf [256]byte
	n   int
}

func (l *line) s(s string) *line {
	for i := 0; i < len(s) && l.n < len(l.buf); i++ {
		l.buf[l.n] = s[i]
		l.n++
	}
	return l
}

func (l *line) b(p []byte) *line {
	for i := 0; i < len(p) && l.n < len(l.buf); i++ {
		l.buf[l.n] = p[i]
		l.n++
	}
	return l
}

func (l *line) c(c byte) *line {
	if l.n < len(l.buf) {
		l.buf[l.n] = c
		l.n++
	}
	return l
}

func (l *line) hex(v uint64) *line {
	l.s("0x")
	var t [16]byte
	i := len(t)
	for {
		i--
		t[i] = "0123456789abcdef"[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return l.b(t[i:])
}

func (l *line) dec(v uint64) *line {
	var t [20]byte
	i := len(t)
	for {
		i--
		t[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return l.b(t[i:])
}

func (l *line) sdec(v int64) *line {
	if v < 0 {
		l.c('-')
		return l.dec(uint64(-v))
	}
	return l.dec(uint64(v))
}

func (l *line) print() {
	l.c('\n')
	consoleWrite(l.buf[:l.n])
}

// kputs prints one line.
func kputs(s string) {
	var l line
	l.s(s).print()
}
