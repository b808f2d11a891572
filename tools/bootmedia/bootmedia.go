// Package bootmedia writes boot media around a finished hypervisor image: a
// hybrid BIOS+UEFI GRUB ISO (through grub-mkrescue) and a directory that
// iPXE can boot over TFTP or HTTP.
//
// The image itself comes from package hv/tools/mbimage; this package only
// wraps it with a loader configuration that carries the kernel command line.
package bootmedia

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"hv/cmd/hv/bootopt"
)

// ImagePath is where the image sits inside the ISO.
const ImagePath = "/boot/hv"

// moduleDir is where boot modules sit inside the ISO, each under its base
// name, which is also its module command line: the hypervisor finds a
// module by that name (README, "Boot modules").
const moduleDir = "/boot/modules/"

// checkModules rejects module lists the ISO cannot carry: each module is
// named by its base name, so two with one name would be ambiguous, and
// GRUB's parser would split a name at a blank.
func checkModules(modules []string) error {
	seen := map[string]string{}
	for _, m := range modules {
		base := filepath.Base(m)
		if base == "." || base == "/" || strings.ContainsAny(base, " \t\n\r\x00'\"\\$;") {
			return fmt.Errorf("bootmedia: module %q: its base name cannot be a GRUB file name", m)
		}
		if prev, ok := seen[base]; ok {
			return fmt.Errorf("bootmedia: modules %q and %q have the same base name", prev, m)
		}
		seen[base] = m
	}
	return nil
}

// checkCmdline rejects command lines that no loader configuration can carry
// on one line.
func checkCmdline(cmdline string) error {
	if strings.ContainsAny(cmdline, "\n\r\x00") {
		return fmt.Errorf("bootmedia: command line %q contains a line break or NUL", cmdline)
	}
	return nil
}

// grubQuote quotes one word for GRUB's shell-like parser: inside single
// quotes nothing is special, so a single quote itself ends the quoted part,
// is written escaped with a backslash, and a new quoted part begins.
func grubQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// GrubConfig returns the grub.cfg for the ISO. GRUB talks on COM1 so a
// headless run shows its messages in the same log as the kernel's (only
// there: OVMF copies its own console to COM1, which would print every GRUB
// line twice), boots the
// first entry at once, and loads the image with multiboot2, which passes the
// ACPI RSDP that UEFI firmware hides from Multiboot 1 kernels. The second
// entry (multiboot 1) is there for diagnosis from the menu. Each module
// (a host path) is loaded from moduleDir under its base name.
func GrubConfig(cmdline string, modules ...string) (string, error) {
	if err := checkCmdline(cmdline); err != nil {
		return "", err
	}
	if err := checkModules(modules); err != nil {
		return "", err
	}
	// One GRUB argument per word of the hypervisor's command line: GRUB
	// joins its arguments with blanks, double-quoting one that has blanks
	// and escaping quotes and backslashes, which bootopt.Split undoes.
	words, err := bootopt.Split(cmdline)
	if err != nil {
		return "", fmt.Errorf("bootmedia: command line %q: %w", cmdline, err)
	}
	var args strings.Builder
	for _, w := range words {
		args.WriteString(" ")
		args.WriteString(grubQuote(w))
	}
	var mb1, mb2 strings.Builder
	for _, m := range modules {
		base := filepath.Base(m)
		fmt.Fprintf(&mb2, "\tmodule2 %s%s %s\n", moduleDir, base, base)
		fmt.Fprintf(&mb1, "\tmodule %s%s %s\n", moduleDir, base, base)
	}
	return fmt.Sprintf(`# Written by hv/tools/bootmedia.
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial
set timeout=0
set default=0

menuentry 'hv (multiboot2)' {
	multiboot2 %[1]s%[2]s
%[3]s	boot
}

menuentry 'hv (multiboot)' {
	multiboot %[1]s%[2]s
%[4]s	boot
}
`, ImagePath, args.String(), mb2.String(), mb1.String()), nil
}

// MakeISO writes a hybrid BIOS+UEFI ISO to out that boots image with the
// given command line. It needs grub-mkrescue with the i386-pc and x86_64-efi
// platforms, xorriso and mtools. The modules (host paths) are copied in and
// loaded as boot modules named by their base names.
func MakeISO(ctx context.Context, image, cmdline, out string, modules ...string) error {
	cfg, err := GrubConfig(cmdline, modules...)
	if err != nil {
		return err
	}
	tree, err := os.MkdirTemp("", "hv-iso-")
	if err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	defer os.RemoveAll(tree)
	if err := os.MkdirAll(filepath.Join(tree, "boot", "grub"), 0o755); err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	if err := copyFile(image, filepath.Join(tree, filepath.FromSlash(ImagePath))); err != nil {
		return err
	}
	if len(modules) > 0 {
		dir := filepath.Join(tree, filepath.FromSlash(moduleDir))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("bootmedia: %w", err)
		}
		for _, m := range modules {
			if err := copyFile(m, filepath.Join(dir, filepath.Base(m))); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "boot", "grub", "grub.cfg"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, "grub-mkrescue", "-o", tmp, tree)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bootmedia: grub-mkrescue for %s: %w\n%s", out, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	return nil
}

// IPXEScript returns an iPXE script that boots the image named "hv" next to
// it (iPXE loads it as a Multiboot 1 kernel) with the given command line.
func IPXEScript(cmdline string) (string, error) {
	if err := checkCmdline(cmdline); err != nil {
		return "", err
	}
	kernel := strings.Join(append([]string{"kernel", "hv"}, strings.Fields(cmdline)...), " ")
	return "#!ipxe\n# Written by hv/tools/bootmedia.\n" + kernel + "\nboot\n", nil
}

// IPXEDir is where Debian's ipxe package keeps its network boot programs.
const IPXEDir = "/usr/lib/ipxe"

// ipxeLoaders are copied into a PXE directory when present, so that a DHCP
// server can chain plain PXE (BIOS) or UEFI firmware into iPXE.
var ipxeLoaders = []string{"undionly.kpxe", "ipxe.efi"}

// MakePXE fills dir with the image (as "hv"), boot.ipxe, the iPXE loaders
// found in ipxeDir, and a README on serving it. It returns the loaders it
// could not find.
func MakePXE(dir, image, cmdline, ipxeDir string) (missing []string, err error) {
	script, err := IPXEScript(cmdline)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bootmedia: %w", err)
	}
	if err := copyFile(image, filepath.Join(dir, "hv")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "boot.ipxe"), []byte(script), 0o644); err != nil {
		return nil, fmt.Errorf("bootmedia: %w", err)
	}
	for _, l := range ipxeLoaders {
		src := filepath.Join(ipxeDir, l)
		if _, err := os.Stat(src); err != nil {
			missing = append(missing, l)
			continue
		}
		if err := copyFile(src, filepath.Join(dir, l)); err != nil {
			return nil, err
		}
	}
	readme := `Serve this directory over TFTP (or HTTP) and point DHCP at it:
- iPXE clients (QEMU's NICs with Debian's ipxe-qemu ROMs): boot file "boot.ipxe".
- Plain PXE BIOS firmware: "undionly.kpxe"; UEFI firmware: "ipxe.efi"; both
  chain into iPXE, which then needs "boot.ipxe" (DHCP option 67 for iPXE).
Try it with QEMU's built-in DHCP/TFTP server:
  qemu-system-x86_64 -accel tcg -cpu EPYC -m 512 -display none -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -netdev user,id=n,tftp=out/pxe,bootfile=boot.ipxe -device virtio-net-pci,netdev=n -boot n
`
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte(readme), 0o644); err != nil {
		return nil, fmt.Errorf("bootmedia: %w", err)
	}
	return missing, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	return nil
}
