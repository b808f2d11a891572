// Command getkernel fetches the Linux guest's boot files from Debian: the
// cloud kernel package (vmlinuz and its modules) and busybox-static. It uses
// the machine's own apt configuration (apt-get download, dpkg-deb -x), so
// what it fetches is exactly what Debian ships, and it writes only under its
// output directory. Building the initramfs is tools/mkinitramfs's job.
//
// Usage:
//
//	getkernel [-out out/linux] [-kernel linux-image-cloud-amd64] [-busybox busybox-static]
//
// Results in the output directory:
//
//	debs/            the downloaded .deb files (reused when present)
//	root/            the packages' contents (boot/, lib/modules/<release>/, bin/busybox)
//	vmlinuz          the bzImage
//	busybox          the static busybox binary
//	kernel-release   the release string, as uname -r prints it
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("out", "out/linux", "output `directory`")
	kernelPkg := flag.String("kernel", "linux-image-cloud-amd64",
		"kernel `package`; a metapackage is resolved to the versioned image it depends on")
	busyboxPkg := flag.String("busybox", "busybox-static", "busybox `package`")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *kernelPkg, *busyboxPkg); err != nil {
		fmt.Fprintln(os.Stderr, "getkernel:", err)
		os.Exit(1)
	}
}

func run(out, kernelPkg, busyboxPkg string) error {
	pkg, err := resolveKernel(kernelPkg)
	if err != nil {
		return err
	}
	debs := filepath.Join(out, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	var files []string
	for _, p := range []string{pkg, busyboxPkg} {
		f, err := download(debs, p)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	// A fresh tree, so modules of an older kernel release never linger next
	// to the new ones.
	root := filepath.Join(out, "root")
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	for _, f := range files {
		if err := command("", "dpkg-deb", "-x", f, root); err != nil {
			return err
		}
	}
	release, err := kernelRelease(root)
	if err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "boot", "vmlinuz-"+release), filepath.Join(out, "vmlinuz")); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(root, "bin", "busybox"), filepath.Join(out, "busybox")); err != nil {
		return fmt.Errorf("busybox from %s: %w", busyboxPkg, err)
	}
	if err := os.WriteFile(filepath.Join(out, "kernel-release"), []byte(release+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("getkernel: %s (%s) and busybox in %s\n", pkg, release, out)
	return nil
}

// resolveKernel turns a metapackage such as linux-image-cloud-amd64 into the
// versioned image package it depends on; a versioned name is returned as is.
// Missing package lists are fetched once with apt-get update.
func resolveKernel(pkg string) (string, error) {
	for attempt := 0; ; attempt++ {
		out, err := exec.Command("apt-cache", "depends", pkg).Output()
		if err == nil {
			name, ok := imageDependency(string(out), pkg)
			if ok {
				return name, nil
			}
		}
		if attempt > 0 {
			if err == nil {
				err = errors.New("no linux-image dependency and no kernel of that name")
			}
			return "", fmt.Errorf("resolve kernel package %s: %w", pkg, err)
		}
		if err := command("", "apt-get", "update"); err != nil {
			return "", err
		}
	}
}

// imageDependency reads `apt-cache depends` output. A metapackage lists its
// kernel as "Depends: linux-image-<release>"; a package that has no such
// dependency but is itself known (its name is the first line) is taken to
// be the kernel.
func imageDependency(out, pkg string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	known := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == pkg {
			known = true
		}
		dep, ok := strings.CutPrefix(line, "Depends: ")
		if !ok {
			continue
		}
		dep = strings.Trim(dep, "<>")
		if strings.HasPrefix(dep, "linux-image-") && dep != pkg {
			return dep, true
		}
	}
	return pkg, known && strings.HasPrefix(pkg, "linux-image-") && hasRelease(pkg)
}

// hasRelease reports whether a linux-image package name carries a release
// number (linux-image-6.1.0-56-cloud-amd64), as opposed to a metapackage.
func hasRelease(pkg string) bool {
	rest := strings.TrimPrefix(pkg, "linux-image-")
	return rest != "" && rest[0] >= '0' && rest[0] <= '9'
}

// download fetches pkg's .deb into dir unless one is already there.
func download(dir, pkg string) (string, error) {
	if f, ok := existingDeb(dir, pkg); ok {
		return f, nil
	}
	if err := command(dir, "apt-get", "download", pkg); err != nil {
		return "", err
	}
	f, ok := existingDeb(dir, pkg)
	if !ok {
		return "", fmt.Errorf("apt-get download %s left no %s_*.deb in %s", pkg, pkg, dir)
	}
	return f, nil
}

func existingDeb(dir, pkg string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}

// kernelRelease finds the one release under root/lib/modules.
func kernelRelease(root string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("kernel package has no modules: %w", err)
	}
	var rel []string
	for _, e := range ents {
		if e.IsDir() {
			rel = append(rel, e.Name())
		}
	}
	if len(rel) != 1 {
		return "", fmt.Errorf("want one kernel release under %s/lib/modules, found %q", root, rel)
	}
	return rel[0], nil
}

func command(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := to + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}
