// Package config parses the hypervisor's VM configuration file: a small
// line-oriented text format (a boot module, e.g. vms.conf) naming each VM's
// memory, vCPUs, kernel, initrd, command line, disk and NIC.
//
// Boundary: it checks syntax and each value's range and returns plain
// values; files are named by boot module names, which it does not resolve,
// and what a VM is built from them is the caller's business.
//
// The format, one statement a line, '#' to the end of a line a comment:
//
//	vm <name>                 starts a VM block; every other key belongs to the last vm
//	memory <MiB>              guest RAM (default: the machine's)
//	cpus <n>                  vCPUs, 1 to MaxCPUs (default 1)
//	kernel <module>           bzImage, Multiboot or ELF image (required)
//	initrd <module>           Linux initrd, or a Multiboot kernel's first module
//	cmdline "<text>"          guest command line
//	disk <module>|ram:<MiB>   virtio-blk contents: a copy of a module, or zeros
//	nic <switch>              virtio-net on the named virtual switch; the switch
//	                          named uplink (UplinkSwitch) is bridged to the host's NIC
//
// Values with blanks are double-quoted; inside quotes \" and \\ stand for "
// and \.
package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits of the values. MaxMemoryMiB keeps guest RAM below a PC's 32-bit
// PCI window at 3.5 GiB (vmm/pc).
const (
	MaxMemoryMiB  = 3584
	MaxDiskMiB    = 1024
	MaxCPUs       = 8 // vCPUs per VM: vmm.MaxCPUs (the xAPIC flat logical model's 8 processors)
	MaxNameLen    = 32
	MaxCmdlineLen = 4096
	MaxVMs        = 64
	maxLineLen    = 8192
)

// UplinkSwitch is the switch name that means "bridged to the host NIC": the
// caller adds the host's network card to it as a port, and reports a VM
// naming it on a host without one as an error at NICLine.
const UplinkSwitch = "uplink"

// File is a parsed configuration.
type File struct {
	VMs []VM
}

// VM is one vm block.
type VM struct {
	Name string
	Line int // of the vm statement, for the caller's messages

	MemoryMiB uint64 // 0: the machine's default
	CPUs      int    // 1 when not given
	Kernel    string // boot module name
	Initrd    string // boot module name, "" for none
	Cmdline   string
	Disk      Disk
	NIC       string // switch name, "" for none
	NICLine   int    // of the nic statement, for the caller's messages
}

// Disk is the contents of a VM's virtio disk: a boot module's copy, or
// RAMMiB MiB of zeros; the zero Disk is the machine's default.
type Disk struct {
	Module string
	RAMMiB uint64
}

// Error is a configuration error at a line of the file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse parses a configuration; file names it in errors. The first error
// ends parsing.
func Parse(file string, data []byte) (*File, error) {
	p := parser{file: file, seen: map[string]bool{}}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		p.line = i + 1
		if err := p.statement(strings.TrimSuffix(l, "\r")); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if len(p.f.VMs) == 0 {
		return nil, &Error{File: file, Line: len(lines), Msg: "no vm in the file (want at least one `vm <name>` block)"}
	}
	return &p.f, nil
}

type parser struct {
	file string
	line int
	f    File
	cur  *VM
	keys map[string]int // keys of the current VM and their lines
	seen map[string]bool
}

func (p *parser) errorf(format string, args ...any) error {
	return &Error{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// keyArgs says how many arguments each key takes.
var keyArgs = map[string]string{
	"vm": "<name>", "memory": "<MiB>", "cpus": "<n>", "kernel": "<module>", "initrd": "<module>",
	"cmdline": `"<text>"`, "disk": "<module>|ram:<MiB>", "nic": "<switch>",
}

func (p *parser) statement(l string) error {
	if len(l) > maxLineLen {
		return p.errorf("line longer than %d bytes", maxLineLen)
	}
	words, err := split(l)
	if err != nil {
		return p.errorf("%v", err)
	}
	if len(words) == 0 {
		return nil
	}
	key := words[0]
	usage, ok := keyArgs[key]
	if !ok {
		return p.errorf("unknown key %q (known: vm, memory, cpus, kernel, initrd, cmdline, disk, nic)", key)
	}
	if len(words) != 2 {
		return p.errorf("%s takes one value: %s %s", key, key, usage)
	}
	v := words[1]
	if key == "vm" {
		return p.startVM(v)
	}
	if p.cur == nil {
		return p.errorf("%s before the first `vm <name>`", key)
	}
	if at, dup := p.keys[key]; dup {
		return p.errorf("%s given twice for vm %s (first at line %d)", key, p.cur.Name, at)
	}
	p.keys[key] = p.line
	vm := p.cur
	switch key {
	case "memory":
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 || n > MaxMemoryMiB {
			return p.errorf("memory %q: want MiB from 1 to %d", v, MaxMemoryMiB)
		}
		vm.MemoryMiB = n
	case "cpus":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCPUs {
			return p.errorf("cpus %q: want a vCPU count from 1 to %d", v, MaxCPUs)
		}
		vm.CPUs = n
	case "kernel", "initrd":
		if err := checkModule(v); err != nil {
			return p.errorf("%s %q: %v", key, v, err)
		}
		if key == "kernel" {
			vm.Kernel = v
		} else {
			vm.Initrd = v
		}
	case "cmdline":
		if len(v) > MaxCmdlineLen {
			return p.errorf("cmdline of %d bytes: at most %d", len(v), MaxCmdlineLen)
		}
		vm.Cmdline = v
	case "disk":
		if size, ok := strings.CutPrefix(v, "ram:"); ok {
			n, err := strconv.ParseUint(size, 10, 64)
			if err != nil || n == 0 || n > MaxDiskMiB {
				return p.errorf("disk %q: want ram:<MiB> with MiB from 1 to %d", v, MaxDiskMiB)
			}
			vm.Disk = Disk{RAMMiB: n}
			break
		}
		if err := checkModule(v); err != nil {
			return p.errorf("disk %q: %v", v, err)
		}
		vm.Disk = Disk{Module: v}
	case "nic":
		if !validName(v) {
			return p.errorf("nic %q: a switch name is 1 to %d letters, digits, '-' or '_'", v, MaxNameLen)
		}
		vm.NIC, vm.NICLine = v, p.line
	}
	return nil
}

func (p *parser) startVM(name string) error {
	if err := p.finish(); err != nil {
		return err
	}
	if !validName(name) {
		return p.errorf("vm %q: a VM name is 1 to %d letters, digits, '-' or '_'", name, MaxNameLen)
	}
	if p.seen[name] {
		return p.errorf("vm %s defined twice", name)
	}
	if len(p.f.VMs) == MaxVMs {
		return p.errorf("more than %d VMs", MaxVMs)
	}
	p.seen[name] = true
	p.f.VMs = append(p.f.VMs, VM{Name: name, Line: p.line, CPUs: 1})
	p.cur = &p.f.VMs[len(p.f.VMs)-1]
	p.keys = map[string]int{}
	return nil
}

// finish checks the VM block that is ending.
func (p *parser) finish() error {
	if p.cur == nil {
		return nil
	}
	if p.cur.Kernel == "" {
		return &Error{File: p.file, Line: p.cur.Line, Msg: fmt.Sprintf("vm %s has no kernel (want `kernel <module>`)", p.cur.Name)}
	}
	return nil
}

// checkModule accepts a boot module name: printable, no blanks (split
// already removed them outside quotes).
func checkModule(s string) error {
	if s == "" {
		return fmt.Errorf("empty module name")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7F {
			return fmt.Errorf("module name has byte %#x at %d; want printable characters without blanks", c, i)
		}
	}
	return nil
}

// validName reports whether s is usable as a VM or switch name: names
// prefix console lines, so letters, digits, '-' and '_' only.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// split cuts a line into words: blanks separate words, '#' outside quotes
// starts a comment, and double quotes group (with \" and \\ escapes).
func split(l string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quoted:
			switch c {
			case '"':
				quoted = false
			case '\\':
				if i+1 < len(l) && (l[i+1] == '"' || l[i+1] == '\\') {
					i++
					cur.WriteByte(l[i])
				} else {
					cur.WriteByte(c)
				}
			default:
				if c < 0x20 && c != '\t' || c == 0x7F {
					return nil, fmt.Errorf("control character %#x in a quoted value", c)
				}
				cur.WriteByte(c)
			}
		case c == '"':
			quoted, inWord = true, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#':
			i = len(l)
		case c < 0x20 || c == 0x7F:
			return nil, fmt.Errorf("control character %#x", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
