package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"hv/boot"
	"hv/cmd/hv/monitor"
	"hv/vmm"
	"hv/vmm/pc"
)

// consolePoll is how often the console router reads COM1: boot.ConsoleRead
// does not wait, and the platform delivers no device interrupts. 5 ms keeps
// typing immediate without a busy goroutine.
const consolePoll = 5 * time.Millisecond

// maxPendingInput bounds what is kept for a VM whose serial receiver is
// full (a guest that does not read its console); more is dropped.
const maxPendingInput = 4096

// vmSlot is one VM of the run as the console and the monitor see it: its
// configuration, its current machine while one exists, and input typed for
// it that its UART has not taken yet.
type vmSlot struct {
	g       guest
	restart chan struct{} // the monitor asks a stopped VM to start again

	mu      sync.Mutex
	state   string
	machine *pc.Machine // running; nil otherwise
	last    *vmm.VM     // the latest machine's VM: its exit counts outlive it
	input   []byte
}

func newSlot(g guest) *vmSlot {
	return &vmSlot{g: g, state: "waiting for a cpu", restart: make(chan struct{}, 1)}
}

func (s *vmSlot) setState(state string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
}

// started records m as the VM's running machine.
func (s *vmSlot) started(m *pc.Machine) {
	s.mu.Lock()
	s.state, s.machine, s.last = "running", m, m.VM
	s.mu.Unlock()
}

// ended records how the machine's run ended.
func (s *vmSlot) ended(out pc.Outcome, ok bool) {
	state := "failed"
	switch {
	case !ok:
	case out.Kind == pc.PowerOff:
		state = "powered off"
	case out.Kind == pc.Stopped:
		state = "stopped"
	case out.Kind == pc.ExitPort:
		state = fmt.Sprintf("exited through port 0xf4 with %d", out.Value)
	default:
		state = out.Kind.String()
	}
	s.mu.Lock()
	s.state, s.machine = state, nil
	s.input = nil // typed for a machine that is gone
	s.mu.Unlock()
}

// run runs the VM on host CPU cpu until it ends by itself; a VM stopped
// from the monitor waits, holding its CPU, until the monitor restarts it.
func (s *vmSlot) run(b vmm.Backend, build *sync.Mutex, cpu int) (pc.Outcome, bool) {
	for {
		s.setState("starting")
		out, ok := runGuest(s, b, build, cpu) // records the end in s
		if !ok || out.Kind != pc.Stopped {
			return out, ok
		}
		<-s.restart
	}
}

// feed offers the VM's pending input to its serial port.
func (s *vmSlot) feed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.machine == nil || len(s.input) == 0 {
		return
	}
	if n := s.machine.COM1.Receive(s.input); n > 0 {
		s.input = s.input[n:]
		// The UART's interrupt wakes a halted vCPU; a running one sees it
		// at its next exit.
		s.machine.VM.Kick()
	}
}

// vmSet is every VM of the run; it is the monitor's Controller.
type vmSet []*vmSlot

func (vs vmSet) slot(name string) *vmSlot {
	for _, s := range vs {
		if s.g.name == name {
			return s
		}
	}
	return nil
}

func (vs vmSet) VMs() []monitor.VM {
	var l []monitor.VM
	for _, s := range vs {
		s.mu.Lock()
		v := monitor.VM{Name: s.g.name, State: s.state}
		if s.last != nil {
			for r := range s.last.Stats {
				if n := s.last.Stats[r].Load(); n > 0 {
					v.Exits += n
					v.ByReason = append(v.ByReason, monitor.Count{Reason: vmm.Reason(r).String(), N: n})
				}
			}
		}
		s.mu.Unlock()
		l = append(l, v)
	}
	return l
}

// Send keeps input for a VM that runs or is about to; a VM that has ended
// has no one to read it.
func (vs vmSet) Send(name string, p []byte) {
	s := vs.slot(name)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case "running", "starting", "waiting for a cpu":
		if room := maxPendingInput - len(s.input); room > 0 {
			s.input = append(s.input, p[:min(room, len(p))]...)
		}
	}
}

func (vs vmSet) Stop(name string) error {
	s := vs.slot(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.machine == nil {
		return fmt.Errorf("vm %s is %s, not running", name, s.state)
	}
	s.machine.Stop()
	return nil
}

func (vs vmSet) Restart(name string) error {
	s := vs.slot(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != "stopped" {
		return fmt.Errorf("vm %s is %s; only a VM stopped from the monitor restarts", name, s.state)
	}
	s.state = "restarting"
	s.restart <- struct{}{}
	return nil
}

// serveConsole routes what the host types on COM1 to the VM that owns the
// console, through the monitor, until done is closed.
// CacheStats implements monitor.Controller: every VM of the set reports
// to the same cache monitoring.
func (vs vmSet) CacheStats(w io.Writer, prefix string) {
	var c *cacheMon
	if len(vs) > 0 {
		c = vs[0].g.cache
	}
	c.writeText(w, prefix)
}

func (vs vmSet) serveConsole(done <-chan struct{}) {
	mon := monitor.New(vs, os.Stdout, vs[0].g.name)
	buf := make([]byte, 256)
	t := time.NewTicker(consolePoll)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if n := boot.ConsoleRead(buf); n > 0 {
			mon.Input(buf[:n])
		}
		for _, s := range vs {
			s.feed()
		}
	}
}

// consoleHelp is printed once when VMs start, so that the keys are found.
func consoleHelp(vs vmSet) string {
	names := make([]string, len(vs))
	for i, s := range vs {
		names[i] = s.g.name
	}
	return fmt.Sprintf("hv: console: typing goes to vm %s; Ctrl-] enters the monitor (VMs: %s)\n", vs[0].g.name, strings.Join(names, ", "))
}
