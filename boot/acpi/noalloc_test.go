package acpi

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestNoHeapInCode proves from the compiler's own output that the package's non-test code
// neither moves anything to the heap nor calls an allocating runtime function. Converting a
// constant Error to error is reported as "escapes to heap" by -m but is a static read-only
// value, which the -S check confirms: no allocation call appears anywhere.
func TestNoHeapInCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	out, err := exec.Command("go", "build", "-gcflags=-m -S", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "STEXT") {
		t.Fatalf("no assembly listing in the compiler output, so nothing was checked:\n%s", out)
	}
	constErr := regexp.MustCompile(`Error\(".*"\) escapes to heap`)
	alloc := regexp.MustCompile(`runtime\.(newobject|mallocgc|makeslice|growslice|convT|convT16|convT32|convT64|convTstring|convTslice|concatstring|slicebytetostring|makemap|newproc)`)
	for _, line := range strings.Split(string(out), "\n") {
		if (strings.Contains(line, "escapes to heap") && !constErr.MatchString(line)) ||
			strings.Contains(line, "moved to heap") || alloc.MatchString(line) {
			t.Errorf("heap use: %s", strings.TrimSpace(line))
		}
	}
}
