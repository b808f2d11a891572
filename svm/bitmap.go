package svm

import (
	"errors"
	"fmt"
)

// IOPMSize is the size of the I/O permission map: 12 KiB, three contiguous
// 4 KiB-aligned pages holding 65536+3 bits (APM 15.10.1).
const IOPMSize = 3 * 4096

// iopmBits is the number of meaningful IOPM bits: one per port plus three
// past port FFFFh, consulted by multi-byte accesses that start near FFFFh.
const iopmBits = 0x10000 + 3

// IOPM is the I/O permission map, bit n set meaning "intercept port n".
// A multi-byte access checks the bit of every byte it touches and exits if
// any is set (APM 15.10.1). The IOPM lives in memory the CPU reads by
// physical address, so callers usually view a host frame through it:
// (*svm.IOPM)(unsafe.Pointer(hostVA)).
//
// Every method that changes the map also sets the three bits past port
// FFFFh, so an access that runs past FFFFh always exits: whether it wraps to
// port 0 on the bus is the hypervisor's business, not the guest's.
type IOPM [IOPMSize]byte

// ErrRange reports a port or MSR range that the permission map does not
// cover.
var ErrRange = errors.New("outside the permission map")

// InterceptAll sets every bit: every IN/OUT/INS/OUTS exits.
func (m *IOPM) InterceptAll() {
	for i := range m {
		m[i] = 0xff
	}
}

// Intercept makes accesses to ports first..first+count-1 exit.
func (m *IOPM) Intercept(first uint16, count int) error {
	return m.set(first, count, true)
}

// Allow lets the guest access ports first..first+count-1 directly. Only a
// multi-byte access all of whose bytes are allowed goes through.
func (m *IOPM) Allow(first uint16, count int) error {
	return m.set(first, count, false)
}

func (m *IOPM) set(first uint16, count int, intercept bool) error {
	if count <= 0 || int(first)+count > 0x10000 {
		return fmt.Errorf("svm: IOPM ports %#x+%d: %w", first, count, ErrRange)
	}
	for p := int(first); p < int(first)+count; p++ {
		setBit(m[:], p, intercept)
	}
	for p := 0x10000; p < iopmBits; p++ {
		setBit(m[:], p, true)
	}
	return nil
}

// Intercepts reports whether an access of size bytes (1, 2 or 4) at port
// exits, checking the bits the CPU checks.
func (m *IOPM) Intercepts(port uint16, size int) bool {
	for i := 0; i < size; i++ {
		if getBit(m[:], int(port)+i) {
			return true
		}
	}
	return false
}

// MSRPMSize is the size of the MSR permission map: 8 KiB, two contiguous
// 4 KiB-aligned pages (APM 15.11).
const MSRPMSize = 2 * 4096

// The MSR ranges the MSRPM covers (APM 15.11): each range of 8192 MSRs takes 2 KiB at the given
// byte offset, two bits per MSR; 1800h-1FFFh is reserved.
const (
	msrpmRangeLen = 0x2000
	msrpmRange0   = 0x0000_0000 // MSR 0000_0000h-0000_1FFFh at offset 000h
	msrpmRange1   = 0xc000_0000 // MSR C000_0000h-C000_1FFFh at offset 800h
	msrpmRange2   = 0xc001_0000 // MSR C001_0000h-C001_1FFFh at offset 1000h
)

// MSRAccess selects the read half, the write half or both of an MSR's
// permission bits.
type MSRAccess uint8

const (
	MSRRead      MSRAccess = 1 << 0
	MSRWrite     MSRAccess = 1 << 1
	MSRReadWrite           = MSRRead | MSRWrite
)

// MSRPM is the MSR permission map. MSR m in a covered range has two bits:
// the even one intercepts RDMSR, the odd one WRMSR (APM 15.11). MSRs outside
// the three covered ranges always exit when MSR_PROT is set, whatever the
// map says; Intercept and Allow refuse them with ErrRange so a caller never
// believes an uncovered MSR is passed through.
type MSRPM [MSRPMSize]byte

// MSRPMBit returns the bit index in the MSRPM of the read-intercept bit of
// msr (the write bit is the next one), or ok=false if msr is not covered.
func MSRPMBit(msr uint32) (bit int, ok bool) {
	var base int
	switch {
	case msr-msrpmRange0 < msrpmRangeLen:
		base = 0x000
	case msr-msrpmRange1 < msrpmRangeLen:
		base = 0x800
	case msr-msrpmRange2 < msrpmRangeLen:
		base = 0x1000
	default:
		return 0, false
	}
	return base*8 + int(msr&(msrpmRangeLen-1))*2, true
}

// InterceptAll sets every bit: every RDMSR and WRMSR exits.
func (m *MSRPM) InterceptAll() {
	for i := range m {
		m[i] = 0xff
	}
}

// Intercept makes the selected accesses to msr exit.
func (m *MSRPM) Intercept(msr uint32, acc MSRAccess) error {
	return m.set(msr, acc, true)
}

// Allow lets the guest perform the selected accesses to msr directly. Pass
// an MSR through only when the guest may see and change the real register.
func (m *MSRPM) Allow(msr uint32, acc MSRAccess) error {
	return m.set(msr, acc, false)
}

func (m *MSRPM) set(msr uint32, acc MSRAccess, intercept bool) error {
	bit, ok := MSRPMBit(msr)
	if !ok {
		return fmt.Errorf("svm: MSRPM MSR %#x: %w (always intercepted)", msr, ErrRange)
	}
	if acc&MSRRead != 0 {
		setBit(m[:], bit, intercept)
	}
	if acc&MSRWrite != 0 {
		setBit(m[:], bit+1, intercept)
	}
	return nil
}

// Intercepts reports whether a RDMSR (write=false) or WRMSR of msr exits
// with MSR_PROT set; MSRs outside the covered ranges always do.
func (m *MSRPM) Intercepts(msr uint32, write bool) bool {
	bit, ok := MSRPMBit(msr)
	if !ok {
		return true
	}
	if write {
		bit++
	}
	return getBit(m[:], bit)
}

func setBit(b []byte, n int, v bool) {
	if v {
		b[n/8] |= 1 << (n % 8)
	} else {
		b[n/8] &^= 1 << (n % 8)
	}
}

func getBit(b []byte, n int) bool { return b[n/8]&(1<<(n%8)) != 0 }
