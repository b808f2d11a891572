// Package vswitch is a learning Ethernet switch (IEEE 802.1D transparent
// bridging without spanning tree) joining the virtual NICs of the VMs on
// one host, and later a host NIC: each Port is a net.Backend for the NIC
// behind it.
//
// Boundary: the switch forwards whole Ethernet frames between ports by
// destination MAC; it knows nothing of virtio, IP or VLANs.
package vswitch

import (
	"fmt"
	"sync"
)

const (
	// minFrame is the destination, source and EtherType of an Ethernet
	// header; shorter frames are runts and dropped.
	minFrame = 14
	// DefaultTableSize bounds the MAC table so that a guest spraying
	// source addresses cannot grow host memory without bound.
	DefaultTableSize = 4096
)

// Deliver hands a frame to the NIC behind a port. It must copy frame if it
// keeps it, and must not call back into the switch for the same frame.
type Deliver func(frame []byte)

// Stats counts switch activity.
type Stats struct {
	Forwarded, Flooded, Dropped uint64
}

// Switch is a learning switch. It is safe for concurrent use by the vCPU
// goroutines of several VMs.
type Switch struct {
	mu       sync.RWMutex
	ports    []*Port // in the order added, so flooding order is deterministic
	table    map[[6]byte]*Port
	maxTable int
	stats    Stats
}

// Port is one switch port.
type Port struct {
	sw      *Switch
	name    string
	deliver Deliver
}

// New returns a switch whose MAC table holds at most tableSize entries
// (DefaultTableSize when 0).
func New(tableSize int) *Switch {
	if tableSize <= 0 {
		tableSize = DefaultTableSize
	}
	return &Switch{table: map[[6]byte]*Port{}, maxTable: tableSize}
}

// AddPort connects a NIC: deliver receives the frames forwarded to it.
func (s *Switch) AddPort(name string, deliver Deliver) (*Port, error) {
	if deliver == nil {
		return nil, fmt.Errorf("vswitch: add port %q: no delivery function", name)
	}
	p := &Port{sw: s, name: name, deliver: deliver}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, p)
	return p, nil
}

// Remove disconnects the port and forgets the addresses learned on it.
func (p *Port) Remove() {
	s := p.sw
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.ports {
		if q == p {
			s.ports = append(s.ports[:i:i], s.ports[i+1:]...)
			break
		}
	}
	for mac, q := range s.table {
		if q == p {
			delete(s.table, mac)
		}
	}
}

// Name returns the port's name.
func (p *Port) Name() string { return p.name }

// Send implements net.Backend: the NIC behind p transmitted frame.
func (p *Port) Send(frame []byte) error { return p.sw.forward(p, frame) }

// Lookup returns the port a MAC was learned on.
func (s *Switch) Lookup(mac [6]byte) (*Port, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.table[mac]
	return p, ok
}

// Stats returns the counters.
func (s *Switch) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

func isMulticast(mac [6]byte) bool { return mac[0]&1 != 0 } // I/G bit; broadcast is a multicast

// forward learns the source and forwards by destination: known unicast to
// its port, unknown unicast, multicast and broadcast flooded to every port
// but the ingress. A frame never goes back out of the port it came in on,
// and with a single switch and no links between switches there is no
// loop to break.
func (s *Switch) forward(in *Port, frame []byte) error {
	if len(frame) < minFrame {
		s.count(func(st *Stats) { st.Dropped++ })
		return fmt.Errorf("vswitch: %s sent a %d-byte runt", in.name, len(frame))
	}
	var dst, src [6]byte
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	if isMulticast(src) {
		s.count(func(st *Stats) { st.Dropped++ })
		return fmt.Errorf("vswitch: %s sent a frame from multicast address %x", in.name, src)
	}

	s.mu.Lock()
	if !s.has(in) {
		s.mu.Unlock()
		return fmt.Errorf("vswitch: send on removed port %q", in.name)
	}
	if cur, known := s.table[src]; !known && len(s.table) < s.maxTable || known && cur != in {
		s.table[src] = in // learn, or move a station that changed ports
	}
	var out []*Port
	if to, ok := s.table[dst]; ok && !isMulticast(dst) {
		if to != in {
			out = append(out, to)
		}
		s.stats.Forwarded++
	} else {
		for _, p := range s.ports {
			if p != in {
				out = append(out, p)
			}
		}
		s.stats.Flooded++
	}
	s.mu.Unlock()

	// Deliver outside the lock: a receiving NIC takes its own locks and
	// may itself transmit in response.
	for _, p := range out {
		p.deliver(frame)
	}
	return nil
}

func (s *Switch) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Switch) has(p *Port) bool {
	for _, q := range s.ports {
		if q == p {
			return true
		}
	}
	return false
}
