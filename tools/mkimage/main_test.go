package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRejectsBrokenELF(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "kernel.elf"), filepath.Join(dir, "hv")
	if err := os.WriteFile(in, []byte("#!/bin/sh\necho not an ELF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(in, out, false)
	if err == nil || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "parse ELF") {
		t.Fatalf("run(broken ELF) error = %v, want one naming the file and the parse failure", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an image was written for a broken ELF")
	}
	if err := run(filepath.Join(dir, "missing.elf"), out, false); err == nil {
		t.Errorf("run accepted a missing input")
	}
}
