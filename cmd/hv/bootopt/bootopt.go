// Package bootopt parses the hypervisor's kernel command line into boot
// options. It knows the option names and their value syntax; what an option
// does is the caller's business.
package bootopt

import (
	"fmt"
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
}

// known maps each option to whether it takes a value.
var known = map[string]string{
	"selftest": "optional: crash",
	"bench":    "none",
	"guest":    "required: comma-separated names, list, or all",
}

// Names lists the known options for error messages.
func Names() []string {
	return []string{"selftest", "selftest=crash", "bench", "guest=<name>[,<name>...]|list|all"}
}

// Split tokenises a command line the way a shell would for simple cases:
// words separated by blanks, with double or single quotes grouping blanks
// into a word. An unterminated quote is an error.
func Split(cmdline string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(cmdline); i++ {
		c := cmdline[i]
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
		}
	}
	return o, nil
}
