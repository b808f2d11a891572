package lapic

import "sync"

// Router is the APIC bus of one VM: it delivers IPIs, I/O APIC messages and
// MSIs to the LAPICs they address (SDM 11.6.2, 11.6.3). It holds no LAPIC
// lock while it decides, and takes each target's lock only to deliver, so
// a LAPIC may send to itself.
type Router struct {
	mu    sync.RWMutex
	apics []*LAPIC
}

// NewRouter returns an empty APIC bus.
func NewRouter() *Router { return &Router{} }

// Add attaches a LAPIC. Lowest-priority ties go to the earliest added.
func (r *Router) Add(a *LAPIC) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apics = append(r.apics, a)
}

// SendIPI delivers an ICR message from a LAPIC; it is the function to put
// in Config.SendIPI.
func (r *Router) SendIPI(from *LAPIC, m Message) { r.route(from, m) }

// Deliver routes a message with no source processor (I/O APIC, MSI).
// Shorthands are not used by such sources and are ignored.
func (r *Router) Deliver(m Message) {
	m.Shorthand = NoShorthand
	r.route(nil, m)
}

func (r *Router) route(from *LAPIC, m Message) {
	r.mu.RLock()
	apics := r.apics
	r.mu.RUnlock()

	var targets []*LAPIC
	switch m.Shorthand {
	case Self:
		if from != nil {
			targets = []*LAPIC{from}
		}
	case AllIncludingSelf, AllExcludingSelf:
		for _, a := range apics {
			if a != from || m.Shorthand == AllIncludingSelf {
				targets = append(targets, a)
			}
		}
	default:
		for _, a := range apics {
			if a.Matches(m.Dest, m.Logical) {
				targets = append(targets, a)
			}
		}
	}
	if m.Mode == LowestPriority && len(targets) > 1 {
		// The processor with the lowest arbitration priority wins
		// (11.6.2.4); ties go to the first attached, which keeps routing
		// deterministic for replay.
		best := targets[0]
		bestAPR := best.ArbitrationPriority()
		for _, a := range targets[1:] {
			if p := a.ArbitrationPriority(); p < bestAPR {
				best, bestAPR = a, p
			}
		}
		targets = targets[:1]
		targets[0] = best
	}
	for _, a := range targets {
		a.Deliver(m)
	}
}
