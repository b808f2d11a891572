package main

import "hv/vmm/testpc"

// extraGuests adds the in-tree test guest catalogue (vmm/testguests).
func extraGuests() []testpc.Spec { return nil }
