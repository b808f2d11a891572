package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"
)

func TestParseModinfo(t *testing.T) {
	data := []byte("license=GPL\x00\x00\x00depends=virtio_ring,virtio\x00alias=virtio:d00000002v*\x00alias=x\x00name=virtio_blk\x00junk\x00")
	want := map[string][]string{
		"license": {"GPL"},
		"depends": {"virtio_ring,virtio"},
		"alias":   {"virtio:d00000002v*", "x"},
		"name":    {"virtio_blk"},
	}
	if diff := cmp.Diff(want, parseModinfo(data)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestResolveOrder(t *testing.T) {
	// The dependency graph of Debian 6.1's virtio modules, plus a built-in
	// and a broken entry.
	graph := map[string][]string{
		"virtio_ring": nil, "virtio": {"virtio_ring"},
		"virtio_pci_modern_dev": nil, "virtio_pci_legacy_dev": nil,
		"virtio_pci":   {"virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"},
		"virtio_blk":   {"virtio", "virtio_ring"},
		"virtio_net":   {"virtio_ring", "virtio", "net_failover"},
		"net_failover": {"failover"}, "failover": nil,
		"uses_builtin": {"builtin_thing"},
		"a":            {"b"}, "b": {"a"},
	}
	lookup := func(name string) (module, bool, error) {
		if name == "builtin_thing" {
			return module{}, false, nil
		}
		deps, ok := graph[name]
		if !ok {
			return module{}, false, fmt.Errorf("module %s: neither in the tree nor built in", name)
		}
		return module{Name: name, Depends: deps}, true, nil
	}
	tests := []struct {
		want    []string
		order   []string
		wantErr string
	}{
		{want: []string{"virtio_pci", "virtio-blk", "virtio_net"}, order: []string{
			"virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_pci",
			"virtio_blk", "failover", "net_failover", "virtio_net"}},
		{want: []string{"uses_builtin"}, order: []string{"uses_builtin"}},
		{want: []string{"virtio_blk", "virtio_blk"}, order: []string{"virtio_ring", "virtio", "virtio_blk"}},
		{want: []string{"a"}, wantErr: "cycle: a -> b -> a"},
		{want: []string{"nope"}, wantErr: "neither in the tree"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.want, ","), func(t *testing.T) {
			got, err := resolveOrder(tt.want, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if diff := cmp.Diff(tt.order, names); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

type entry struct {
	Name string
	Mode cpio.FileMode
	Data string
}

func readArchive(t *testing.T, b []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := cpio.NewReader(zr)
	var out []entry
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, h.Mode, string(data)})
	}
}

func TestImageWrite(t *testing.T) {
	img := image{
		release: "6.1.0-1-test", busybox: []byte("BB"), init: []byte("#!init"), test: []byte("#!test"),
		modules: []moduleFile{{"virtio_ring", []byte("ring")}, {"virtio", []byte("virtio!")}},
	}
	var a, b bytes.Buffer
	if err := img.write(&a); err != nil {
		t.Fatal(err)
	}
	if err := img.write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("archive is not reproducible")
	}
	dir := func(n string) entry { return entry{n, cpio.TypeDir | 0o755, ""} }
	want := []entry{
		dir("bin"), dir("dev"), dir("etc"), dir("lib"), dir("lib/modules"), dir("lib/modules/6.1.0-1-test"),
		dir("proc"), dir("root"), dir("sys"), dir("tmp"),
		{"bin/busybox", cpio.TypeReg | 0o755, "BB"},
		{"init", cpio.TypeReg | 0o755, "#!init"},
		{"test", cpio.TypeReg | 0o755, "#!test"},
		{"etc/udhcpc.script", cpio.TypeReg | 0o755, string(udhcpcScript)},
		{"lib/modules/6.1.0-1-test/virtio_ring.ko", cpio.TypeReg | 0o644, "ring"},
		{"lib/modules/6.1.0-1-test/virtio.ko", cpio.TypeReg | 0o644, "virtio!"},
		{"lib/modules/load-order", cpio.TypeReg | 0o644, "virtio_ring\nvirtio\n"},
	}
	if diff := cmp.Diff(want, readArchive(t, a.Bytes())); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
}

// TestScripts checks the embedded scripts are valid sh, with the host's
// sh -n, and that init prints the markers the tests look for.
func TestScripts(t *testing.T) {
	for name, s := range map[string][]byte{"init": initScript, "test": defaultTest, "udhcpc": udhcpcScript} {
		if !bytes.HasPrefix(s, []byte("#!/bin/busybox sh\n")) {
			t.Errorf("%s: no busybox shebang", name)
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, s, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := execSh(path); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", name, err, out)
		}
	}
	for _, marker := range []string{`echo "init: uname $(uname -r)"`, "poweroff -f", "/lib/modules/load-order", "sh /test"} {
		if !bytes.Contains(initScript, []byte(marker)) {
			t.Errorf("init lacks %q", marker)
		}
	}
}

// TestRealTree resolves the default modules in the tree tools/getkernel
// unpacked, when it is there.
func TestRealTree(t *testing.T) {
	root := filepath.Join("..", "..", "out", "linux", "root")
	rel, err := onlyRelease(filepath.Join(root, "lib", "modules"))
	if err != nil {
		t.Skipf("no kernel tree (run make linux-files): %v", err)
	}
	tree, err := scanModules(filepath.Join(root, "lib", "modules", rel))
	if err != nil {
		t.Fatal(err)
	}
	order, err := tree.resolve(strings.Split(defaultModules, ","))
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name] = i
	}
	for _, m := range order {
		for _, d := range m.Depends {
			if _, ok := pos[d]; !ok && !tree.builtin[d] {
				t.Errorf("%s needs %s, which is not loaded", m.Name, d)
			} else if ok && pos[d] > pos[m.Name] {
				t.Errorf("%s loads before its dependency %s", m.Name, d)
			}
		}
	}
	for _, need := range []string{"virtio", "virtio_ring", "virtio_pci", "virtio_blk", "virtio_net", "failover", "net_failover"} {
		if _, ok := pos[need]; !ok {
			t.Errorf("%s missing from %v", need, pos)
		}
	}
}

func execSh(path string) ([]byte, error) {
	return exec.Command("sh", "-n", path).CombinedOutput()
}
