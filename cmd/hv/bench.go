package main

import (
	"fmt"
	"io"
	"time"

	"hv/boot"
	"hv/vmm/testpc"
)

// benchLoops is the iteration count of the exit benchmarks' guest loops.
const benchLoops = 10000

// loopGuest builds a real-mode guest that runs body benchLoops times
// (counting in ESI, which CPUID does not touch) and then writes 0 to the
// exit port.
func loopGuest(body ...byte) []byte {
	img := []byte{0x66, 0xBE, benchLoops & 0xFF, benchLoops >> 8 & 0xFF, 0, 0} // mov esi, benchLoops
	img = append(img, body...)
	img = append(img, 0x66, 0x4E) // dec esi
	back := -(len(body) + 2 + 2)
	img = append(img, 0x75, byte(int8(back))) // jnz body
	return append(img,
		0x66, 0x31, 0xC0, // xor eax, eax
		0xBA, 0xF4, 0x00, // mov dx, 0xF4
		0x66, 0xEF, // out dx, eax
		0xF4, 0xEB, 0xFE) // hlt; jmp $
}

var (
	benchBase  = loopGuest(0x66, 0x31, 0xC0, 0x66, 0x01, 0xD8) // xor eax, eax; add eax, ebx
	benchCPUID = loopGuest(0x66, 0x31, 0xC0, 0x0F, 0xA2)       // xor eax, eax; cpuid
	benchPIO   = loopGuest(0x66, 0x31, 0xC0, 0xE6, 0x80)       // xor eax, eax; out 0x80, al
)

// benchExits measures the cost of an exit round trip: the same guest loop
// with CPUID (an exit each time), with OUT to port 0x80 (an exit and a
// device write), and with two plain instructions (no exits), each timed by
// the host TSC around the whole run. Under QEMU with -icount shift=0 the
// TSC counts instructions, so the difference per iteration is the
// hypervisor's instruction count per exit.
func benchExits(w io.Writer) {
	b, err := newBackend()
	if err != nil {
		fmt.Fprintf(w, "bench: exits skipped: %v\n", err)
		return
	}
	run := func(name string, img []byte) (tsc uint64, wall time.Duration, exits uint64, ok bool) {
		spec := testpc.Spec{Name: name, Image: img, Timeout: 60 * time.Second}
		t0, c0 := time.Now(), boot.TSC()
		v := testpc.Run(spec, b, platform{}, 0, io.Discard)
		c1, el := boot.TSC(), time.Since(t0)
		if !v.Pass {
			fmt.Fprintf(w, "bench: %s failed: %s\n", name, v.Reason)
			return 0, 0, 0, false
		}
		return c1 - c0, el, v.Exits, true
	}
	base, _, _, ok1 := run("bench-base", benchBase)
	cpuid, cpuidWall, cpuidExits, ok2 := run("bench-cpuid", benchCPUID)
	pio, _, _, ok3 := run("bench-pio", benchPIO)
	if !ok1 || !ok2 || !ok3 {
		return
	}
	per := func(t uint64) float64 { return (float64(t) - float64(base)) / benchLoops }
	fmt.Fprintf(w, "bench: %s_cpuid_exit %.0f tsc\n", b.Name(), per(cpuid))
	fmt.Fprintf(w, "bench: %s_pio_exit %.0f tsc\n", b.Name(), per(pio))
	fmt.Fprintf(w, "bench: %s_guest_only_loop %.1f tsc\n", b.Name(), float64(base)/benchLoops)
	fmt.Fprintf(w, "bench: %s_exits_per_second %.0f exits/s\n", b.Name(), float64(cpuidExits)/cpuidWall.Seconds())
}
