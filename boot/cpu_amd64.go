package boot

func outb(port uint16, v uint8)
func inb(port uint16) uint8
func outw(port uint16, v uint16)
func outl(port uint16, v uint32)
func inl(port uint16) uint32
func rdmsr(msr uint32) uint64
func wrmsr(msr uint32, v uint64)
func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func rdtsc() uint64
func readCR0() uint64
func writeCR0(v uint64)
func readCR2() uint64
func readCR3() uint64
func writeCR3(v uint64)
func readCR4() uint64
func writeCR4(v uint64)
func xsetbv(idx uint32, v uint64)
func lgdt(p uintptr)
func lidt(p uintptr)
func ltr(sel uint16)
func cli()
func stop()
func pause()
func rdrand64() (v uint64, ok bool)
