// Package noheap checks, from the compiler's own output, that a package's
// non-test code never touches the Go heap: the boot packages run before the
// runtime is initialised and inside system calls, where an allocation or a
// write barrier has no M to run on. It is used by those packages' tests.
package noheap

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var (
	// Converting a constant Error to error is reported as "escapes to
	// heap" by -m but is a static read-only value; the -S check confirms
	// that no allocation call appears anywhere.
	constErr = regexp.MustCompile(`Error\(".*"\) escapes to heap`)
	alloc    = regexp.MustCompile(`runtime\.(newobject|mallocgc|makeslice|growslice|convT|convT16|convT32|convT64|convTstring|convTslice|concatstring|slicebytetostring|makemap|newproc)`)
)

// Check builds the package in the current directory with -gcflags='-m -S'
// and fails t for anything moved to the heap or any call to an allocating
// runtime function. It is skipped with -short because it runs the compiler.
func Check(t *testing.T) {
	t.Helper()
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
	for _, line := range strings.Split(string(out), "\n") {
		if (strings.Contains(line, "escapes to heap") && !constErr.MatchString(line)) ||
			strings.Contains(line, "moved to heap") || alloc.MatchString(line) {
			t.Errorf("heap use: %s", strings.TrimSpace(line))
		}
	}
}
