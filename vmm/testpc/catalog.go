package testpc

import (
	"sort"
	"time"

	"hv/vmm"
	"hv/vmm/testguests"
)

// smokeImage is the smallest guest: in real mode it prints "hello" on the
// debug console, executes CPUID and writes 0 to the exit port.
var smokeImage = []byte{
	0xBA, 0xE9, 0x00, // mov dx, 0xE9
	0xB0, 'h', 0xEE, // mov al, 'h'; out dx, al
	0xB0, 'i', 0xEE, // mov al, 'i'; out dx, al
	0xB0, '\n', 0xEE, // mov al, '\n'; out dx, al
	0x66, 0x31, 0xC0, // xor eax, eax
	0x0F, 0xA2, // cpuid
	0x66, 0x31, 0xC0, // xor eax, eax
	0xBA, 0xF4, 0x00, // mov dx, 0xF4
	0x66, 0xEF, // out dx, eax
	0xF4,       // hlt
	0xEB, 0xFE, // jmp $
}

// Catalog returns every runnable test guest by name: the in-tree guests of
// vmm/testguests and these built-ins, which check the VMM itself (a minimal
// guest, the watchdog, an entry the hardware must refuse, and save/restore
// in the middle of a run).
func Catalog() map[string]Spec {
	specs := map[string]Spec{
		"smoke":        {Name: "smoke", Image: smokeImage, Timeout: 20 * time.Second},
		"smoke-loop":   {Name: "smoke-loop", Image: []byte{0xEB, 0xFE}, Timeout: 2 * time.Second, WantStop: "watchdog"},
		"invalid-vmcb": {Name: "invalid-vmcb", Image: smokeImage, Timeout: 20 * time.Second, WantStop: "invalid state", Corrupt: corruptState},
		"snapshot":     {Name: "snapshot", Image: smokeImage, Timeout: 20 * time.Second, StopAfter: 2},
	}
	for _, g := range testguests.All() {
		s := Spec{
			Name:        g.Name,
			Image:       g.Image,
			MemSize:     g.MemSize,
			Timeout:     g.Timeout,
			WantConsole: g.Expect.Console,
			CPUs:        g.CPUs,
		}
		switch g.Expect.Kind {
		case testguests.ExitCode:
			s.WantExit = g.Expect.ExitCode
		case testguests.Stopped:
			s.WantStop = g.Expect.StopReason
		}
		specs[g.Name] = s
	}
	return specs
}

// CatalogNames returns the names in Catalog, sorted.
func CatalogNames() []string {
	var names []string
	for n := range Catalog() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// corruptState makes the initial state one that VM entry must refuse:
// CR0.NW set with CR0.CD clear (APM vol. 2 15.5.1, Intel SDM 27.3.1.1).
func corruptState(c vmm.VCPU) {
	s := c.SRegs()
	s.CR0 = s.CR0&^(1<<30) | 1<<29
	c.SetSRegs(s)
}
