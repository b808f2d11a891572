package acpi

import (
	"testing"

	"hv/boot/internal/noheap"
)

// TestNoHeapInCode proves from the compiler's own output that the package's
// non-test code neither moves anything to the heap nor calls an allocating
// runtime function.
func TestNoHeapInCode(t *testing.T) { noheap.Check(t) }
