//go:build ignore

// gen.go assembles the test guests in src/ and writes zz_generated.go.
// Run it with `go generate ./vmm/testguests/` after changing a source; it
// needs GNU binutils (as, ld, objcopy), building the package does not.
package main

import (
	"log"
	"os"

	"hv/vmm/testguests/internal/build"
)

func main() {
	src, err := build.Generate("src")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("zz_generated.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
}
