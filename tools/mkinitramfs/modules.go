package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// module is one loadable kernel module found in a module tree.
type module struct {
	Name    string   // as modinfo's name= (underscores)
	Path    string   // host path of the .ko
	Depends []string // modinfo's depends=, normalized
}

// canonical normalizes a module name the way modprobe does: dashes and
// underscores are the same character.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// modinfo reads the key=value strings of a module's .modinfo section.
// The kernel package ships no modules.dep (depmod runs at install time), so
// the dependency list must come from the modules themselves.
func modinfo(path string) (map[string][]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: read .modinfo: %w", path, err)
	}
	return parseModinfo(data), nil
}

// parseModinfo splits a .modinfo section: NUL-separated key=value strings,
// with NUL padding between them.
func parseModinfo(data []byte) map[string][]string {
	info := make(map[string][]string)
	for s := range bytes.SplitSeq(data, []byte{0}) {
		k, v, ok := strings.Cut(string(s), "=")
		if !ok {
			continue
		}
		info[k] = append(info[k], v)
	}
	return info
}

// moduleTree indexes the .ko files under a lib/modules/<release> directory
// and the modules built into the kernel.
type moduleTree struct {
	ko      map[string]string // canonical name -> path
	builtin map[string]bool
}

func scanModules(dir string) (*moduleTree, error) {
	t := &moduleTree{ko: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		switch {
		case d.IsDir():
		case strings.HasSuffix(name, ".ko"):
			t.ko[canonical(strings.TrimSuffix(name, ".ko"))] = path
		case strings.HasSuffix(name, ".ko.xz"), strings.HasSuffix(name, ".ko.zst"), strings.HasSuffix(name, ".ko.gz"):
			// Recorded so a request for it fails with a clear message
			// rather than "not found": busybox insmod cannot load these.
			base := name[:strings.Index(name, ".ko.")]
			if _, ok := t.ko[canonical(base)]; !ok {
				t.ko[canonical(base)] = path
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan modules %s: %w", dir, err)
	}
	if len(t.ko) == 0 {
		return nil, fmt.Errorf("scan modules %s: no modules", dir)
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			base := filepath.Base(strings.TrimSpace(sc.Text()))
			t.builtin[canonical(strings.TrimSuffix(base, ".ko"))] = true
		}
		f.Close()
	}
	return t, nil
}

// resolve returns the modules needed for want, in an order in which each
// module comes after everything it depends on (the order insmod needs).
// Built-in modules are skipped; a module that is neither present nor
// built in is an error.
func (t *moduleTree) resolve(want []string) ([]module, error) {
	return resolveOrder(want, t.lookup)
}

func (t *moduleTree) lookup(name string) (module, bool, error) {
	if t.builtin[name] {
		return module{}, false, nil
	}
	path, ok := t.ko[name]
	if !ok {
		return module{}, false, fmt.Errorf("module %s: neither in the tree nor built in", name)
	}
	if !strings.HasSuffix(path, ".ko") {
		return module{}, false, fmt.Errorf("module %s: %s is compressed; busybox insmod needs a plain .ko", name, path)
	}
	info, err := modinfo(path)
	if err != nil {
		return module{}, false, err
	}
	m := module{Name: name, Path: path}
	for _, d := range info["depends"] {
		for dep := range strings.SplitSeq(d, ",") {
			if dep != "" {
				m.Depends = append(m.Depends, canonical(dep))
			}
		}
	}
	return m, true, nil
}

// resolveOrder is a depth-first topological sort over lookup. lookup says
// whether the module must be loaded (false: built in).
func resolveOrder(want []string, lookup func(string) (module, bool, error)) ([]module, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []module
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, name), " -> "))
		}
		state[name] = visiting
		m, load, err := lookup(name)
		if err != nil {
			return err
		}
		if load {
			for _, d := range m.Depends {
				if err := visit(d, append(path, name)); err != nil {
					return err
				}
			}
			order = append(order, m)
		}
		state[name] = done
		return nil
	}
	for _, w := range want {
		if err := visit(canonical(w), nil); err != nil {
			return nil, err
		}
	}
	return slices.Clip(order), nil
}
