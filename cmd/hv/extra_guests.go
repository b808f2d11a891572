package main

import (
	"hv/vmm/testguests"
	"hv/vmm/testpc"
)

// extraGuests adds the in-tree test guest catalogue (vmm/testguests).
func extraGuests() []testpc.Spec {
	var specs []testpc.Spec
	for _, g := range testguests.All() {
		s := testpc.Spec{
			Name:        g.Name,
			Image:       g.Image,
			MemSize:     g.MemSize,
			Timeout:     g.Timeout,
			WantConsole: g.Expect.Console,
		}
		switch g.Expect.Kind {
		case testguests.ExitCode:
			s.WantExit = g.Expect.ExitCode
		case testguests.Stopped:
			s.WantStop = g.Expect.StopReason
		}
		specs = append(specs, s)
	}
	return specs
}
