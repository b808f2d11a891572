package testguests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"hv/vmm/testguests/internal/build"
)

// TestGeneratedUpToDate re-assembles every guest from src/ and compares the
// result with zz_generated.go, so a source edit without `go generate` fails.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("assembling the guests is slow; skipped with -short")
	}
	if err := build.CheckTools(); errors.Is(err, build.ErrNoBinutils) {
		t.Skipf("cannot re-assemble the guests: %v", err)
	}
	imgs, err := build.AssembleAll("src")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := build.AssemblerVersion()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		committed, ok := sourceImage(img.Name)
		if !ok {
			t.Errorf("%s: assembled from src/ but not in zz_generated.go; run go generate", img.Name)
			continue
		}
		if msg := firstDifference([]byte(committed), img.Bytes); msg != "" {
			t.Errorf("%s: zz_generated.go differs from the assembled source (%s); run go generate (assembler here: %s)", img.Name, msg, ver)
		}
	}
	want, err := build.Render(imgs, ver)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("zz_generated.go is not what gen.go writes from src/ with %s; run go generate", ver)
	}
}

func firstDifference(a, b []byte) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at image offset %#x: %#02x, assembled %#02x", i, a[i], b[i])
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d bytes, assembled %d", len(a), len(b))
	}
	return ""
}
