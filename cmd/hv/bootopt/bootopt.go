// Package bootopt parses the hypervisor's kernel command line into boot
// options. It knows the option names and their value syntax; what an option
// does is the caller's business.
package bootopt

import (
	"fmt"
	"strconv"
	"strings"
)

// Options are the parsed boot options.
type Options struct {
	// SelfTest is "" (off), "run" for `selftest`, or "crash" for
	// `selftest=crash`.
	SelfTest string
	// Bench runs the platform micro-benchmarks.
	Bench bool
	// Guests lists test guests to run (`guest=a,b`); ["list"] prints them
	// and ["all"] runs every one.
	Guests []string
	// VM is a PC guest to run (`vm=<name>`), nil without one.
	VM *VM
	// Config is the boot module holding a VM configuration file
	// (`config=<module>`, vmm/config): every VM in it runs at once.
	Config string
	// CacheMonMs is the cache-monitoring interval in milliseconds
	// (`cachemon` for DefaultCacheMonMs, `cachemon=<ms>`); 0: off.
	CacheMonMs int
}

// DefaultCacheMonMs is the interval of a bare `cachemon`, and
// MaxCacheMonMs the longest accepted.
const (
	DefaultCacheMonMs = 100
	MaxCacheMonMs     = 60_000
)

// VM is a PC guest's configuration: files are named by their boot module
// names (the module's command line), the guest command line is `append`.
type VM struct {
	Name   string // vm=<name>
	Kernel string // kernel=<module>: bzImage, Multiboot or ELF
	Initrd string // initrd=<module>, optional
	Disk   string // disk=<module>: virtio-blk contents, optional
	Append string // append=<guest command line>
	MemMiB uint64 // mem=<MiB>, 0: the machine's default
	CPUs   int    // cpus=<n>, 0 when not given; only 1 is supported today
}

// MaxCPUs is the most vCPUs a VM can have today: the VMM runs vCPU 0 only.
const MaxCPUs = 1

// MaxMemMiB bounds mem= (the PC keeps guest RAM below its 3.5 GiB PCI
// window).
const MaxMemMiB = 3584

// known maps each option to whether it takes a value.
var known = map[string]string{
	"selftest": "optional: crash",
	"bench":    "none",
	"guest":    "required: comma-separated names, list, or all",
	"vm":       "required: the VM's name",
	"kernel":   "required: boot module name",
	"initrd":   "required: boot module name",
	"disk":     "required: boot module name",
	"append":   "required: guest command line (quote it)",
	"mem":      "required: MiB",
	"cpus":     "required: vCPU count",
	"config":   "required: boot module name",
	"cachemon": "optional: sampling interval in ms",
}

// vmOptions are the options that only make sense with vm=.
var vmOptions = []string{"kernel", "initrd", "disk", "append", "mem", "cpus"}

// Names lists the known options for error messages.
func Names() []string {
	return []string{"selftest", "selftest=crash", "bench", "guest=<name>[,<name>...]|list|all",
		"vm=<name>", "kernel=<module>", "initrd=<module>", "disk=<module>", `append="<cmdline>"`, "mem=<MiB>", "cpus=1", "config=<module>"}
}

// Split tokenises a command line the way a shell would for simple cases:
// words separated by blanks, with double or single quotes grouping blanks
// into a word, and a backslash making the quote or backslash after it
// literal (outside quotes and inside double quotes). The escapes are
// GRUB's: its multiboot commands pass each argument with \, ' and "
// escaped and an argument with blanks in double quotes (grub-core/lib/
// cmdline.c), so Split recovers the words of a grub.cfg line. A
// backslash before anything else is itself. An unterminated quote is an
// error.
func Split(cmdline string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(cmdline); i++ {
		c := cmdline[i]
		if c == '\\' && quote != '\'' && i+1 < len(cmdline) && strings.IndexByte(`\'"`, cmdline[i+1]) >= 0 {
			i++
			cur.WriteByte(cmdline[i])
			inWord = true
			continue
		}
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			if c < 0x20 || c == 0x7F {
				return nil, fmt.Errorf("control character %#x at offset %d", c, i)
			}
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// IsImageName reports whether a command line's first word is the boot
// loader's name for the image rather than an option. QEMU's -kernel, GRUB and
// iPXE all put the image path or file name first; it contains a '/' or is
// named hv-something.
func IsImageName(w string) bool {
	if strings.Contains(w, "/") {
		return true
	}
	return !strings.Contains(w, "=") && strings.HasPrefix(w, "hv")
}

// Parse parses a whole command line; a leading image name is skipped.
func Parse(cmdline string) (Options, error) {
	var o Options
	words, err := Split(cmdline)
	if err != nil {
		return o, fmt.Errorf("malformed command line %q: %w", cmdline, err)
	}
	if len(words) > 0 && IsImageName(words[0]) {
		words = words[1:]
	}
	seen := map[string]bool{}
	for _, w := range words {
		name, value, hasValue := strings.Cut(w, "=")
		if name == "" {
			return o, fmt.Errorf("malformed boot option %q: no name before '='", w)
		}
		if _, ok := known[name]; !ok {
			return o, fmt.Errorf("unknown boot option %q (known: %s)", w, strings.Join(Names(), ", "))
		}
		if seen[name] {
			return o, fmt.Errorf("boot option %q given twice", name)
		}
		seen[name] = true
		switch name {
		case "selftest":
			switch {
			case !hasValue:
				o.SelfTest = "run"
			case value == "crash":
				o.SelfTest = "crash"
			default:
				return o, fmt.Errorf("bad value in boot option %q: want selftest or selftest=crash", w)
			}
		case "bench":
			if hasValue {
				return o, fmt.Errorf("boot option %q takes no value", w)
			}
			o.Bench = true
		case "guest":
			if !hasValue || value == "" {
				return o, fmt.Errorf("boot option %q needs a value: guest=<name>[,<name>...] or guest=list", w)
			}
			for _, g := range strings.Split(value, ",") {
				if g == "" {
					return o, fmt.Errorf("empty guest name in %q", w)
				}
				o.Guests = append(o.Guests, g)
			}
		case "cachemon":
			o.CacheMonMs = DefaultCacheMonMs
			if hasValue {
				ms, err := strconv.Atoi(value)
				if err != nil || ms < 1 || ms > MaxCacheMonMs {
					return o, fmt.Errorf("bad value in boot option %q: want cachemon or cachemon=<ms>, 1 to %d", w, MaxCacheMonMs)
				}
				o.CacheMonMs = ms
			}
		case "config":
			if !hasValue || value == "" {
				return o, fmt.Errorf("boot option %q needs a value: config=<module>", w)
			}
			o.Config = value
		case "vm", "kernel", "initrd", "disk", "mem", "cpus":
			if !hasValue || value == "" {
				return o, fmt.Errorf("boot option %q needs a value", w)
			}
			if o.VM == nil {
				o.VM = &VM{}
			}
			switch name {
			case "vm":
				if !validName(value) {
					return o, fmt.Errorf("bad VM name in %q: use letters, digits, '-' and '_'", w)
				}
				o.VM.Name = value
			case "kernel":
				o.VM.Kernel = value
			case "initrd":
				o.VM.Initrd = value
			case "disk":
				o.VM.Disk = value
			case "mem":
				n, err := strconv.ParseUint(value, 10, 64)
				if err != nil || n == 0 || n > MaxMemMiB {
					return o, fmt.Errorf("bad value in boot option %q: want MiB from 1 to %d", w, MaxMemMiB)
				}
				o.VM.MemMiB = n
			case "cpus":
				n, err := strconv.Atoi(value)
				if err != nil || n < 1 {
					return o, fmt.Errorf("bad value in boot option %q: want a vCPU count from 1", w)
				}
				if n > MaxCPUs {
					return o, fmt.Errorf("boot option %q: only %d vCPU per VM is supported today", w, MaxCPUs)
				}
				o.VM.CPUs = n
			}
		case "append":
			if !hasValue {
				return o, fmt.Errorf("boot option %q needs a value: append=\"<guest command line>\"", w)
			}
			if o.VM == nil {
				o.VM = &VM{}
			}
			o.VM.Append = value
		}
	}
	if o.VM != nil {
		if o.VM.Name == "" {
			for _, n := range vmOptions {
				if seen[n] {
					return o, fmt.Errorf("boot option %q needs vm=<name>", n)
				}
			}
		}
		if o.VM.Kernel == "" {
			return o, fmt.Errorf("vm=%s needs kernel=<module>", o.VM.Name)
		}
		if o.Config != "" {
			return o, fmt.Errorf("boot options vm= and config= exclude each other: put vm %s in the configuration file", o.VM.Name)
		}
	}
	return o, nil
}

// validName reports whether s is a usable VM name: it prefixes console
// lines, so letters, digits, '-' and '_' only.
func validName(s string) bool {
	if len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
