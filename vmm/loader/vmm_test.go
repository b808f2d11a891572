package loader_test

import (
	"hv/vmm"
	"hv/vmm/loader"
)

// The loader does not import vmm (vmm may import it), so these
// conversions are the contract that keeps the two in step: if either side
// changes a field, this stops compiling.
var (
	_ = vmm.Regs(loader.Regs{})
	_ = vmm.Segment(loader.Segment{})
	_ = vmm.DTable(loader.DTable{})

	_ loader.Memory = (*vmm.Memory)(nil)
)
