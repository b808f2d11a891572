// Package bootmedia writes boot media around a finished hypervisor image: a
// hybrid BIOS+UEFI GRUB ISO (through grub-mkrescue) and a directory that
// iPXE can boot over TFTP or HTTP (with GRUB for UEFI clients, built with
// grub-mkimage).
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
	"slices"
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
		if base == "." || base == "/" || strings.ContainsAny(base, " \t\n\r\x00'\"\\$;#") {
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
	return grubConfig(ImagePath, moduleDir, cmdline, modules)
}

// grubConfig writes the configuration with the image at image and each
// module at modDir + its base name (GRUB paths).
func grubConfig(image, modDir, cmdline string, modules []string) (string, error) {
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
		fmt.Fprintf(&mb2, "\tmodule2 %s%s %s\n", modDir, base, base)
		fmt.Fprintf(&mb1, "\tmodule %s%s %s\n", modDir, base, base)
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
`, image, args.String(), mb2.String(), mb1.String()), nil
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

// PXE directory layout: the image, the scripts and the loaders sit at the
// top, the boot modules under pxeModuleDir, each under its base name.
const (
	// PXEScript is the iPXE script a DHCP server hands to iPXE clients.
	PXEScript = "boot.ipxe"
	// PXEGrubImage is the GRUB EFI program that iPXE chains under UEFI,
	// and PXEGrubConfig the configuration it loads over HTTP.
	PXEGrubImage  = "grubx64.efi"
	PXEGrubConfig = "grub.cfg"
	pxeImage      = "hv"
	pxeModuleDir  = "modules/"
)

// ipxeUnsafe says why iPXE's command parser would not pass word through to
// the kernel unchanged: iPXE splits a line at blanks without any quoting,
// expands ${...} settings, and treats a word starting with '#' as a comment
// and "||", "&&" and ";" as command separators (iPXE src/core/exec.c).
func ipxeUnsafe(word string) string {
	switch {
	case strings.Contains(word, "${"):
		return "iPXE would expand ${...} in it"
	case strings.HasPrefix(word, "#"):
		return "iPXE would take it for a comment"
	case word == "||" || word == "&&" || word == ";":
		return "iPXE would take it for a command separator"
	case strings.HasPrefix(word, "-"):
		return "iPXE would take it for an option of its kernel command"
	}
	return ""
}

// IPXEScript returns the iPXE script of a PXE directory. Under a BIOS it
// loads the image as a Multiboot 1 kernel with the given command line and
// the modules (host paths) as Multiboot modules from pxeModuleDir, each
// with its base name as its command line, so the hypervisor finds it by
// that name (iPXE puts the module's URL first, whose base name is the same).
// Under UEFI iPXE cannot load Multiboot kernels, so the script chains GRUB
// (PXEGrubImage), which loads the same files with multiboot2 and passes the
// ACPI tables. All names are relative to the script's own URL, so the same
// script works over TFTP and HTTP.
//
// iPXE has no quoting: the command line is passed word by word, so a word
// must not change meaning in iPXE's parser, and a quoted value's blanks
// must be single blanks, which is what iPXE rejoins the words with.
func IPXEScript(cmdline string, modules ...string) (string, error) {
	if err := checkCmdline(cmdline); err != nil {
		return "", err
	}
	if err := checkModules(modules); err != nil {
		return "", err
	}
	fields := strings.Fields(cmdline)
	for _, w := range fields {
		if why := ipxeUnsafe(w); why != "" {
			return "", fmt.Errorf("bootmedia: command line word %q: %s", w, why)
		}
	}
	want, err := bootopt.Split(cmdline)
	if err != nil {
		return "", fmt.Errorf("bootmedia: command line %q: %w", cmdline, err)
	}
	if got, _ := bootopt.Split(strings.Join(fields, " ")); !slices.Equal(got, want) {
		return "", fmt.Errorf("bootmedia: command line %q: iPXE would join its words with single blanks, changing a quoted value", cmdline)
	}
	var b strings.Builder
	b.WriteString("#!ipxe\n# Written by hv/tools/bootmedia.\n")
	b.WriteString("iseq ${platform} efi && goto uefi ||\n")
	b.WriteString(strings.Join(append([]string{"kernel", pxeImage}, fields...), " ") + "\n")
	for _, m := range modules {
		base := filepath.Base(m)
		fmt.Fprintf(&b, "module %s%s %s\n", pxeModuleDir, base, base)
	}
	b.WriteString("boot\n")
	b.WriteString("# iPXE for UEFI has no Multiboot: GRUB loads the same files with multiboot2.\n")
	b.WriteString(":uefi\nchain " + PXEGrubImage + "\n")
	return b.String(), nil
}

// GrubNetBootstrap is the configuration built into PXEGrubImage. Chained
// by iPXE, GRUB takes the network set-up iPXE hands over (its DHCP answer,
// through UEFI's PXE base code protocol), which sets net_default_server to
// the DHCP server's next-server address. It then loads PXEGrubConfig, and
// through it the image and modules, from that server over HTTP (port 80:
// GRUB 2.06 cannot name another port). GRUB runs a built-in configuration
// with its rescue parser: no comments, no "if".
const GrubNetBootstrap = `serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial
set root=(http,$net_default_server)
echo "grub: configuration from http://$net_default_server/` + PXEGrubConfig + `"
configfile /` + PXEGrubConfig + `
`

// grubNetModules are built into PXEGrubImage: the network, HTTP and TFTP,
// multiboot2 and what the configurations use.
var grubNetModules = []string{"normal", "configfile", "echo", "test", "serial", "terminal",
	"net", "efinet", "http", "tftp", "multiboot", "multiboot2", "boot"}

// GrubNetConfig returns the PXE directory's grub.cfg: the entries of the
// ISO's configuration with the image and modules on the HTTP server that
// served it.
func GrubNetConfig(cmdline string, modules ...string) (string, error) {
	return grubConfig("/"+pxeImage, "/"+pxeModuleDir, cmdline, modules)
}

// MakeGrubNetImage writes PXEGrubImage with GrubNetBootstrap built in,
// using grub-mkimage and the x86_64-efi modules in grubDir (Debian's
// grub-efi-amd64-bin).
func MakeGrubNetImage(ctx context.Context, out, grubDir string) error {
	tmp, err := os.MkdirTemp("", "hv-grubnet-")
	if err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	defer os.RemoveAll(tmp)
	cfg := filepath.Join(tmp, "bootstrap.cfg")
	if err := os.WriteFile(cfg, []byte(GrubNetBootstrap), 0o644); err != nil {
		return fmt.Errorf("bootmedia: %w", err)
	}
	args := append([]string{"-O", "x86_64-efi", "-d", grubDir, "-p", "/", "-c", cfg, "-o", out}, grubNetModules...)
	if b, err := exec.CommandContext(ctx, "grub-mkimage", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("bootmedia: grub-mkimage for %s: %w\n%s", out, err, b)
	}
	return nil
}

// IPXEDir is where Debian's ipxe package keeps its network boot programs.
const IPXEDir = "/usr/lib/ipxe"

// GrubEFIDir is where Debian's grub-efi-amd64-bin keeps GRUB's EFI modules.
const GrubEFIDir = "/usr/lib/grub/x86_64-efi"

// IPXELoaders are copied into a PXE directory when present, so that a DHCP
// server can chain plain PXE (BIOS) or UEFI firmware into iPXE.
var IPXELoaders = []string{"undionly.kpxe", "ipxe.efi"}

// PXE says where MakePXE finds the programs it copies or builds; an empty
// directory means "not available".
type PXE struct {
	IPXEDir string // Debian's ipxe: undionly.kpxe, ipxe.efi
	GrubDir string // Debian's grub-efi-amd64-bin: x86_64-efi modules
}

// DefaultPXE is where Debian installs them.
var DefaultPXE = PXE{IPXEDir: IPXEDir, GrubDir: GrubEFIDir}

// MakePXE fills dir with the image (as "hv"), the modules under
// pxeModuleDir, boot.ipxe, grub.cfg and the GRUB EFI program for UEFI, the
// iPXE loaders, and a README on serving it. It returns the programs it
// could not find or build (the directory then boots only the clients that
// do not need them).
func MakePXE(ctx context.Context, dir, image, cmdline string, from PXE, modules ...string) (missing []string, err error) {
	script, err := IPXEScript(cmdline, modules...)
	if err != nil {
		return nil, err
	}
	grubCfg, err := GrubNetConfig(cmdline, modules...)
	if err != nil {
		return nil, err
	}
	// The module directory holds exactly this run's modules.
	if err := os.RemoveAll(filepath.Join(dir, pxeModuleDir)); err != nil {
		return nil, fmt.Errorf("bootmedia: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, pxeModuleDir), 0o755); err != nil {
		return nil, fmt.Errorf("bootmedia: %w", err)
	}
	if err := copyFile(image, filepath.Join(dir, pxeImage)); err != nil {
		return nil, err
	}
	for _, m := range modules {
		if err := copyFile(m, filepath.Join(dir, pxeModuleDir, filepath.Base(m))); err != nil {
			return nil, err
		}
	}
	for name, text := range map[string]string{PXEScript: script, PXEGrubConfig: grubCfg, "README": pxeReadme} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("bootmedia: %w", err)
		}
	}
	for _, l := range IPXELoaders {
		src := filepath.Join(from.IPXEDir, l)
		if _, err := os.Stat(src); from.IPXEDir == "" || err != nil {
			missing = append(missing, l)
			continue
		}
		if err := copyFile(src, filepath.Join(dir, l)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(from.GrubDir, "multiboot2.mod")); from.GrubDir == "" || err != nil {
		missing = append(missing, PXEGrubImage)
	} else if err := MakeGrubNetImage(ctx, filepath.Join(dir, PXEGrubImage), from.GrubDir); err != nil {
		return nil, err
	}
	return missing, nil
}

const pxeReadme = `Serve this directory with tools/pxeserver (README, "Boot a lab server"):
  pxeserver -iface IFACE -dir out/pxe [-proxy | -range FIRST-LAST]
It answers DHCP (or proxyDHCP beside the lab's DHCP server), TFTP and HTTP:
- plain PXE BIOS firmware gets "undionly.kpxe", UEFI firmware "ipxe.efi";
- iPXE (those, or a NIC's iPXE ROM) gets http://SERVER/boot.ipxe, which
  loads "hv" and the modules under modules/ with Multiboot (BIOS), or chains
  "grubx64.efi", which loads them with multiboot2 from "grub.cfg" (UEFI).
With another DHCP server, give iPXE clients (user class "iPXE") the boot file
http://SERVER/boot.ipxe, BIOS clients (option 93 = 0) undionly.kpxe and
UEFI x86-64 clients (option 93 = 7 or 9) ipxe.efi, next-server SERVER.
Or try it with QEMU's built-in DHCP/TFTP server (BIOS only):
  qemu-system-x86_64 -accel tcg -cpu EPYC -m 512 -display none -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -netdev user,id=n,tftp=out/pxe,bootfile=boot.ipxe -device virtio-net-pci,netdev=n -boot n
`

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
