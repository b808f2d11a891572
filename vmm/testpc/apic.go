package testpc

import (
	"hv/devices"
	"hv/devices/bus"
	"hv/devices/lapic"
	"hv/devices/pic"
)

// addLAPICs gives a test PC with more than one vCPU a local APIC per vCPU
// (x2APIC ID = vCPU index, vCPU 0 the BSP) on one APIC bus: the xAPIC page
// at lapic.DefaultBase and the APIC MSRs of the exiting vCPU reach its
// own. Each vCPU's interrupt controller is its LAPIC (with INIT, SIPI and
// NMI); vCPU 0's also takes the 8259 while its LAPIC lets it through.
func (m *Machine) addLAPICs(n int, clk devices.Clock) {
	router := lapic.NewRouter()
	vm := m.VM
	for i := range n {
		a := lapic.New(lapic.Config{ID: uint32(i), BSP: i == 0, Clock: clk, SendIPI: router.SendIPI,
			Kick: func() { vm.KickVCPU(i) }})
		router.Add(a)
		m.LAPICs = append(m.LAPICs, a)
		ic := &apicIC{apic: a}
		if i == 0 {
			ic.pic = m.PIC
		}
		vm.ICs = append(vm.ICs, ic)
		vm.Timers = append(vm.Timers, a)
		m.Devices = append(m.Devices, a)
	}
	vm.Local = apicLocal(m.LAPICs)
}

// apicIC is one vCPU's interrupt controller: its LAPIC, then (vCPU 0) the
// 8259 through the virtual wire.
type apicIC struct {
	apic *lapic.LAPIC
	pic  *pic.Pair
}

func (c *apicIC) HasInterrupt() bool {
	if _, ok := c.apic.PendingVector(); ok {
		return true
	}
	return c.pic != nil && c.apic.AcceptsPICInterrupts() && c.pic.HasInterrupt()
}

func (c *apicIC) Acknowledge() uint8 {
	if v, ok := c.apic.PendingVector(); ok && c.apic.Acknowledge(v) {
		return v
	}
	c.apic.TakeExtINT()
	return c.pic.Acknowledge()
}

func (c *apicIC) TakeNMI() bool           { return c.apic.TakeNMI() }
func (c *apicIC) TakeINIT() bool          { return c.apic.TakeINIT() }
func (c *apicIC) TakeSIPI() (uint8, bool) { return c.apic.TakeSIPI() }
func (c *apicIC) INITReset()              { c.apic.INITReset() }

// apicLocal routes the APIC MSRs and the xAPIC page to the exiting vCPU's
// LAPIC (vmm.Local).
type apicLocal []*lapic.LAPIC

func (l apicLocal) get(vcpu int, msr uint32) *lapic.LAPIC {
	if vcpu < 0 || vcpu >= len(l) {
		return nil
	}
	if msr != lapic.MSRAPICBase && msr != lapic.MSRTSCDeadline && (msr < lapic.MSRX2APICFirst || msr > lapic.MSRX2APICLast) {
		return nil
	}
	return l[vcpu]
}

func (l apicLocal) ReadMSR(vcpu int, msr uint32) (uint64, bool, error) {
	a := l.get(vcpu, msr)
	if a == nil {
		return 0, false, nil
	}
	v, err := a.ReadMSR(msr)
	return v, true, err
}

func (l apicLocal) WriteMSR(vcpu int, msr uint32, v uint64) (bool, error) {
	a := l.get(vcpu, msr)
	if a == nil {
		return false, nil
	}
	return true, a.WriteMSR(msr, v)
}

func (l apicLocal) MMIO(vcpu int, gpa uint64) (bus.Device, uint64, bool) {
	if vcpu < 0 || vcpu >= len(l) || gpa < lapic.DefaultBase || gpa-lapic.DefaultBase >= lapic.PageSize {
		return nil, 0, false
	}
	if a := l[vcpu]; a.Enabled() && !a.X2APIC() {
		return a, gpa - lapic.DefaultBase, true
	}
	return nil, 0, false
}
