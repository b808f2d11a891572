// Package monitor is the hypervisor's console monitor: it splits what the
// user types on the serial console between the VM that owns the console and
// a small command language (list VMs, connect the console to another VM,
// stop and restart a VM), entered with an escape key.
//
// It is pure logic over two interfaces, the VMs (Controller) and the
// console output (an io.Writer): reading the serial port and running VMs
// are the caller's.
package monitor

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Escape is the key that enters the monitor: Ctrl-] (as in telnet), since
// QEMU's -serial mon:stdio already takes Ctrl-A. Typed twice it sends one
// Ctrl-] to the guest.
const Escape = 0x1D

// maxLine bounds a command line; longer input is dropped, not buffered.
const maxLine = 80

// VM is what the monitor shows of one VM.
type VM struct {
	Name  string
	State string // "running", "stopped", "powered off", ...
	Exits uint64
	// ByReason are exit counts by reason, in the order to print them
	// (reasons with no exits left out).
	ByReason []Count
}

// Count is a number of exits for one reason.
type Count struct {
	Reason string
	N      uint64
}

// Controller is the set of VMs the monitor acts on.
type Controller interface {
	// VMs lists the VMs in a stable order.
	VMs() []VM
	// Send hands bytes typed on the console to VM name's serial port.
	Send(name string, p []byte)
	// Stop and Restart act on VM name, which the monitor has checked
	// exists; they return an error when its state does not allow it.
	Stop(name string) error
	Restart(name string) error
	// CacheStats writes the cache-monitoring state (each vCPU's
	// occupancy and miss-ratio curve, or why monitoring is off), each
	// line starting with prefix.
	CacheStats(w io.Writer, prefix string)
}

// Monitor is the console's input state machine. It is not safe for
// concurrent use: one goroutine feeds it the console's input.
type Monitor struct {
	ctl   Controller
	out   io.Writer
	owner string // the VM that receives console input
	// active is true while input goes to the monitor's command line.
	active bool
	line   []byte
}

// New returns a monitor that sends console input to VM owner until told
// otherwise, writing its own messages to out.
func New(ctl Controller, out io.Writer, owner string) *Monitor {
	return &Monitor{ctl: ctl, out: out, owner: owner}
}

// Owner is the VM that console input goes to.
func (m *Monitor) Owner() string { return m.owner }

// Active says whether the monitor's command line has the console.
func (m *Monitor) Active() bool { return m.active }

// Input handles bytes typed on the console: outside the monitor they go to
// the owner unaltered (runs of them in one Send), except Escape.
func (m *Monitor) Input(p []byte) {
	for len(p) > 0 {
		if !m.active {
			i := slices.Index(p, Escape)
			if i < 0 {
				m.ctl.Send(m.owner, p)
				return
			}
			if i > 0 {
				m.ctl.Send(m.owner, p[:i])
			}
			m.enter()
			p = p[i+1:]
			continue
		}
		m.key(p[0])
		p = p[1:]
	}
}

func (m *Monitor) enter() {
	m.active = true
	m.line = m.line[:0]
	m.printf("\nhv: monitor: console of vm %s; h for help, Ctrl-] Ctrl-] sends Ctrl-]\n", m.owner)
	m.prompt()
}

func (m *Monitor) leave() {
	m.active = false
	m.line = m.line[:0]
	m.printf("hv: monitor: back to vm %s\n", m.owner)
}

func (m *Monitor) prompt() { m.printf("hv: monitor> ") }

func (m *Monitor) printf(format string, args ...any) {
	fmt.Fprintf(m.out, format, args...)
}

// key edits the command line with one byte. The host terminal is raw (it
// does not echo), so the monitor echoes what it keeps.
func (m *Monitor) key(b byte) {
	switch {
	case b == Escape && len(m.line) == 0:
		// The escape typed twice: the guest gets one.
		m.printf("\n")
		m.active = false
		m.ctl.Send(m.owner, []byte{Escape})
	case b == Escape:
		m.printf("\n")
		m.leave()
	case b == '\r' || b == '\n':
		m.printf("\n")
		line := string(m.line)
		m.line = m.line[:0]
		if m.command(line) {
			m.prompt()
		}
	case b == 0x7F || b == 0x08: // DEL, BS
		if len(m.line) > 0 {
			m.line = m.line[:len(m.line)-1]
			m.printf("\b \b")
		}
	case b == 0x15: // Ctrl-U: kill the line
		m.line = m.line[:0]
		m.printf("\n")
		m.prompt()
	case b >= 0x20 && b < 0x7F && len(m.line) < maxLine:
		m.line = append(m.line, b)
		m.printf("%c", b)
	}
	// Other control bytes and bytes past maxLine are dropped.
}

const help = `hv: monitor: commands (the console returns to the VM after c and q):
hv: monitor:   l, list        list VMs: state and exits by reason
hv: monitor:   c, connect VM  connect the console to VM
hv: monitor:   s, stop VM     stop VM (its vCPU loop ends)
hv: monitor:   r, restart VM  start a stopped VM again from its configuration
hv: monitor:   m, cache       cache monitoring: each vCPU's LLC occupancy and miss-ratio curve
hv: monitor:   q, quit        back to the console (also Enter on an empty line, or Ctrl-])
hv: monitor:   h, ?, help     this text
hv: monitor: Ctrl-] Ctrl-] sends one Ctrl-] to the VM.
`

// command runs one command line and says whether the monitor stays
// active (so it prompts again).
func (m *Monitor) command(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		m.leave()
		return false
	}
	cmd, args := f[0], f[1:]
	switch cmd {
	case "q", "quit":
		if m.noArgs(cmd, args) {
			m.leave()
			return false
		}
	case "h", "?", "help":
		if m.noArgs(cmd, args) {
			m.printf("%s", help)
		}
	case "l", "list":
		if m.noArgs(cmd, args) {
			m.list()
		}
	case "m", "cache":
		if m.noArgs(cmd, args) {
			m.ctl.CacheStats(m.out, "hv: monitor: ")
		}
	case "c", "connect":
		if name, ok := m.vmArg(cmd, args); ok {
			m.owner = name
			m.leave()
			return false
		}
	case "s", "stop":
		if name, ok := m.vmArg(cmd, args); ok {
			if err := m.ctl.Stop(name); err != nil {
				m.printf("hv: monitor: stop %s: %v\n", name, err)
			} else {
				m.printf("hv: monitor: stopping vm %s\n", name)
			}
		}
	case "r", "restart":
		if name, ok := m.vmArg(cmd, args); ok {
			if err := m.ctl.Restart(name); err != nil {
				m.printf("hv: monitor: restart %s: %v\n", name, err)
			} else {
				m.printf("hv: monitor: restarting vm %s\n", name)
			}
		}
	default:
		m.printf("hv: monitor: unknown command %q (h for help)\n", cmd)
	}
	return true
}

func (m *Monitor) noArgs(cmd string, args []string) bool {
	if len(args) > 0 {
		m.printf("hv: monitor: %s takes no arguments, got %q\n", cmd, strings.Join(args, " "))
		return false
	}
	return true
}

// vmArg checks that args is exactly the name of a VM.
func (m *Monitor) vmArg(cmd string, args []string) (string, bool) {
	vms := m.ctl.VMs()
	names := make([]string, len(vms))
	for i, v := range vms {
		names[i] = v.Name
	}
	switch {
	case len(args) == 0:
		m.printf("hv: monitor: %s needs a VM name (vms: %s)\n", cmd, strings.Join(names, ", "))
		return "", false
	case len(args) > 1:
		m.printf("hv: monitor: %s takes one VM name, got %q\n", cmd, strings.Join(args, " "))
		return "", false
	case !slices.Contains(names, args[0]):
		m.printf("hv: monitor: no vm %q (vms: %s)\n", args[0], strings.Join(names, ", "))
		return "", false
	}
	return args[0], true
}

func (m *Monitor) list() {
	for _, v := range m.ctl.VMs() {
		console := ""
		if v.Name == m.owner {
			console = ", console"
		}
		var by []string
		for _, c := range v.ByReason {
			by = append(by, fmt.Sprintf("%s %d", c.Reason, c.N))
		}
		reasons := ""
		if len(by) > 0 {
			reasons = " (" + strings.Join(by, ", ") + ")"
		}
		m.printf("hv: monitor: vm %s: %s%s, %d exits%s\n", v.Name, v.State, console, v.Exits, reasons)
	}
}
