package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplaceResults(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.md")
	os.WriteFile(doc, []byte("intro\n"+beginMarker+"\nold\n"+endMarker+"\noutro\n"), 0o644)
	if err := replaceResults(doc, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(doc)
	if want := "intro\n" + beginMarker + "\nnew\n" + endMarker + "\noutro\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	os.WriteFile(doc, []byte("no markers"), 0o644)
	if err := replaceResults(doc, "x"); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("missing markers: %v", err)
	}
}
