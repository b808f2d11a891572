package monitor

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeVMs records what the monitor asks of the VMs.
type fakeVMs struct {
	vms  []VM
	sent []string // "vm:bytes" per Send
	acts []string // "stop vm", "restart vm"
}

func (f *fakeVMs) VMs() []VM { return f.vms }

func (f *fakeVMs) Send(name string, p []byte) { f.sent = append(f.sent, name+":"+string(p)) }

func (f *fakeVMs) Stop(name string) error {
	for _, v := range f.vms {
		if v.Name == name && v.State != "running" {
			return errors.New("not running")
		}
	}
	f.acts = append(f.acts, "stop "+name)
	return nil
}

func (f *fakeVMs) Restart(name string) error {
	f.acts = append(f.acts, "restart "+name)
	return nil
}

func (f *fakeVMs) CacheStats(w io.Writer, prefix string) {
	fmt.Fprintf(w, "%scachemon: llc 1024 KiB\n%svcpu 0 \"vm1/0\" occ 10 lines\n", prefix, prefix)
}

func newFake() *fakeVMs {
	return &fakeVMs{vms: []VM{
		{Name: "vm1", State: "running", Exits: 12, ByReason: []Count{{"io", 10}, {"hlt", 2}}},
		{Name: "vm2", State: "stopped"},
	}}
}

// monitorLines are the lines the monitor printed that start with
// "hv: monitor: " (not the prompt, echo or the entry banner).
func monitorLines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimPrefix(l, "hv: monitor> ")
		if strings.HasPrefix(l, "hv: monitor: ") && !strings.HasPrefix(l, "hv: monitor: console of vm") &&
			!strings.HasPrefix(l, "hv: monitor: back to vm") {
			ls = append(ls, strings.TrimPrefix(l, "hv: monitor: "))
		}
	}
	return ls
}

func TestInput(t *testing.T) {
	esc := string(rune(Escape))
	tests := []struct {
		name   string
		input  []string // successive Input calls
		sent   []string
		acts   []string
		lines  []string // monitor output lines, prefix removed; nil: don't care
		active bool
		owner  string
	}{
		{name: "plain bytes pass unaltered", input: []string{"ls -l\r", "\x03\x7f\n"},
			sent: []string{"vm1:ls -l\r", "vm1:\x03\x7f\n"}, owner: "vm1"},
		{name: "escape enters the monitor", input: []string{"ab" + esc + "cd"},
			sent: []string{"vm1:ab"}, active: true, owner: "vm1"},
		{name: "double escape sends one", input: []string{"a" + esc + esc + "b"},
			sent: []string{"vm1:a", "vm1:" + esc, "vm1:b"}, owner: "vm1"},
		{name: "double escape across reads", input: []string{esc, esc},
			sent: []string{"vm1:" + esc}, owner: "vm1"},
		{name: "escape after typing cancels", input: []string{esc + "lis" + esc + "x"},
			sent: []string{"vm1:x"}, owner: "vm1"},
		{name: "empty line leaves", input: []string{esc + "\rx"}, sent: []string{"vm1:x"}, owner: "vm1"},
		{name: "q leaves", input: []string{esc + "q\rx"}, sent: []string{"vm1:x"}, owner: "vm1"},
		{name: "quit with argument is an error", input: []string{esc + "quit now\r"},
			lines: []string{`quit takes no arguments, got "now"`}, active: true, owner: "vm1"},
		{name: "list", input: []string{esc + "l\r"}, active: true, owner: "vm1",
			lines: []string{"vm vm1: running, console, 12 exits (io 10, hlt 2)", "vm vm2: stopped, 0 exits"}},
		{name: "list long form, typed in pieces", input: []string{esc + "li", "st", "\n"}, active: true, owner: "vm1",
			lines: []string{"vm vm1: running, console, 12 exits (io 10, hlt 2)", "vm vm2: stopped, 0 exits"}},
		{name: "backspace edits", input: []string{esc + "lx\x7f\r"}, active: true, owner: "vm1",
			lines: []string{"vm vm1: running, console, 12 exits (io 10, hlt 2)", "vm vm2: stopped, 0 exits"}},
		{name: "unknown command", input: []string{esc + "frob vm1\r"}, active: true, owner: "vm1",
			lines: []string{`unknown command "frob" (h for help)`}},
		{name: "connect switches the console", input: []string{esc + "c vm2\rhi"},
			sent: []string{"vm2:hi"}, owner: "vm2", lines: []string{}},
		{name: "connect to an unknown vm", input: []string{esc + "c vm3\r"}, active: true, owner: "vm1",
			lines: []string{`no vm "vm3" (vms: vm1, vm2)`}},
		{name: "connect without a name", input: []string{esc + "c\r"}, active: true, owner: "vm1",
			lines: []string{"c needs a VM name (vms: vm1, vm2)"}},
		{name: "connect with two names", input: []string{esc + "connect vm1 vm2\r"}, active: true, owner: "vm1",
			lines: []string{`connect takes one VM name, got "vm1 vm2"`}},
		{name: "stop", input: []string{esc + "s vm1\r"}, acts: []string{"stop vm1"}, active: true, owner: "vm1",
			lines: []string{"stopping vm vm1"}},
		{name: "stop refused", input: []string{esc + "stop vm2\r"}, active: true, owner: "vm1",
			lines: []string{"stop vm2: not running"}},
		{name: "stop an unknown vm", input: []string{esc + "s vmx\r"}, active: true, owner: "vm1",
			lines: []string{`no vm "vmx" (vms: vm1, vm2)`}},
		{name: "restart", input: []string{esc + "r vm2\r"}, acts: []string{"restart vm2"}, active: true, owner: "vm1",
			lines: []string{"restarting vm vm2"}},
		{name: "cache monitoring", input: []string{esc + "m\r"}, active: true, owner: "vm1",
			lines: []string{"cachemon: llc 1024 KiB", `vcpu 0 "vm1/0" occ 10 lines`}},
		{name: "cache takes no arguments", input: []string{esc + "cache vm1\r"}, active: true, owner: "vm1",
			lines: []string{`cache takes no arguments, got "vm1"`}},
		{name: "control bytes are dropped from commands", input: []string{esc + "\x01l\x02\r"}, active: true, owner: "vm1",
			lines: []string{"vm vm1: running, console, 12 exits (io 10, hlt 2)", "vm vm2: stopped, 0 exits"}},
		{name: "an overlong line is cut", input: []string{esc + strings.Repeat("z", 200) + "\r"}, active: true, owner: "vm1",
			lines: []string{fmt.Sprintf("unknown command %q (h for help)", strings.Repeat("z", maxLine))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			var out strings.Builder
			m := New(f, &out, "vm1")
			for _, in := range tt.input {
				m.Input([]byte(in))
			}
			if diff := cmp.Diff(tt.sent, f.sent); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.acts, f.acts); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if tt.lines != nil {
				if diff := cmp.Diff(tt.lines, monitorLines(out.String()), cmpEmpty); diff != "" {
					t.Errorf("monitor lines (-want +got):\n%s\noutput:\n%s", diff, out.String())
				}
			}
			if m.Active() != tt.active || m.Owner() != tt.owner {
				t.Errorf("active %v owner %s, want %v %s", m.Active(), m.Owner(), tt.active, tt.owner)
			}
		})
	}
}

// cmpEmpty treats a nil and an empty list of lines alike.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return slices.Equal(a, b)
})

func TestHelpNamesEveryCommand(t *testing.T) {
	f := newFake()
	var out strings.Builder
	m := New(f, &out, "vm1")
	m.Input([]byte{Escape, 'h', '\r'})
	for _, c := range []string{"list", "connect", "stop", "restart", "cache", "quit"} {
		if !strings.Contains(out.String(), c) {
			t.Errorf("help does not mention %q:\n%s", c, out.String())
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "hv: monitor") && l != "" {
			t.Errorf("output line %q does not start with hv: monitor", l)
		}
	}
}
