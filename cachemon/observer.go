package cachemon

// Observer connects a Sampler to one vCPU's world switches (it satisfies
// vmm.SwitchObserver without importing vmm). Errors from the sampler are
// counted, not returned: a world switch cannot fail because monitoring did.
type Observer struct {
	S      *Sampler
	V      VCPU
	Errors uint64
}

// SwitchIn is called on the host CPU just before the vCPU enters the guest.
func (o *Observer) SwitchIn(hostCPU int, now uint64) {
	if o.S.SwitchIn(hostCPU, o.V, now) != nil {
		o.Errors++
	}
}

// SwitchOut is called on the host CPU just after the vCPU left the guest.
func (o *Observer) SwitchOut(hostCPU int, now uint64) {
	if o.S.SwitchOut(hostCPU, now) != nil {
		o.Errors++
	}
}
