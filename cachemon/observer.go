package cachemon

import (
	"fmt"
	"sync/atomic"
)

// Observer connects a Sampler to the world switches of one VM's vCPUs (it
// satisfies vmm.SwitchObserver without importing vmm): vCPU i of the VM is
// the Sampler's V[i]. Each switch out also gives the Sampler a chance to
// close an interval, so sampling needs no timer of its own. Errors from the
// sampler are counted, not returned: a world switch cannot fail because
// monitoring did. It is safe for concurrent use by the VM's vCPUs.
type Observer struct {
	S *Sampler
	V []VCPU
	// Clock, if set, replaces the time a switch is reported with: VMs
	// sharing a Sampler each count time from their own start, and the
	// Sampler's intervals need one clock.
	Clock  func() uint64
	errors atomic.Uint64
}

// NewObserver registers a VM's vCPUs, named "<vm>/<index>", with s; clock
// is the Observer's Clock.
func NewObserver(s *Sampler, vm string, vcpus int, clock func() uint64) (*Observer, error) {
	o := &Observer{S: s, Clock: clock}
	for i := range vcpus {
		v, err := s.AddVCPU(fmt.Sprintf("%s/%d", vm, i))
		if err != nil {
			return nil, err
		}
		o.V = append(o.V, v)
	}
	return o, nil
}

// SwitchIn is called on the host CPU just before vCPU vcpu enters the
// guest.
func (o *Observer) SwitchIn(vcpu, hostCPU int, now uint64) {
	now = o.time(now)
	if vcpu < 0 || vcpu >= len(o.V) || o.S.SwitchIn(hostCPU, o.V[vcpu], now) != nil {
		o.errors.Add(1)
	}
}

// SwitchOut is called on the host CPU just after vCPU vcpu left the guest.
func (o *Observer) SwitchOut(vcpu, hostCPU int, now uint64) {
	now = o.time(now)
	if o.S.SwitchOut(hostCPU, now) != nil {
		o.errors.Add(1)
	}
	if _, err := o.S.Tick(hostCPU, now); err != nil {
		o.errors.Add(1)
	}
}

// Errors is the number of sampler calls that failed.
func (o *Observer) Errors() uint64 { return o.errors.Load() }

func (o *Observer) time(now uint64) uint64 {
	if o.Clock != nil {
		return o.Clock()
	}
	return now
}
