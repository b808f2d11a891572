package vmm

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// topoHost is a host CPU with every topology leaf filled in with values
// that must not reach a guest (its own APIC IDs and core counts).
func topoHost(leaf, sub uint32) (a, b, c, d uint32) {
	switch leaf {
	case 0:
		return 0x1F, 0, 0, 0
	case 1:
		return 0x00800F12, 0x07100800, 0, 0 // host APIC ID 7, 16 IDs
	case 4:
		switch sub {
		case 0:
			return 0xFC004121, 0, 0, 0 // L1 data, 64 cores, 2 sharing
		case 1:
			return 0xFC01C163, 0, 0, 0 // L3, 8 sharing
		}
		return 0, 0, 0, 0
	case 0xB, 0x1F:
		return 1, 2, sub | 1<<8, 7
	case 0x80000008:
		return 0x3030, 0, 0x0000700F, 0 // 16 cores, 7-bit APIC ID core field
	case 0x8000001E:
		return 7, 0x0103, 0x0100, 0
	}
	return 0, 0, 0, 0
}

// Each vCPU's CPUID names it and the VM's topology consistently: leaf 1,
// 0xB, 0x1F, 0x8000001E agree on the APIC ID; the counts are the VM's.
func TestCPUIDTopology(t *testing.T) {
	for _, ncpu := range []int{1, 2, 3, 4, 8} {
		bits := CoreIDBits(ncpu)
		for vcpu := 0; vcpu < ncpu; vcpu++ {
			name := fmt.Sprintf("vcpu %d of %d", vcpu, ncpu)
			_, b, _, d := GuestCPUID(topoHost, vcpu, ncpu, 1, 0)
			if int(b>>24) != vcpu {
				t.Errorf("%s: leaf 1 APIC ID %d", name, b>>24)
			}
			if n := b >> 16 & 0xFF; n != 1<<bits || n < uint32(ncpu) {
				t.Errorf("%s: leaf 1 addressable IDs %d", name, n)
			}
			if (d&cpuidHTT != 0) != (ncpu > 1) {
				t.Errorf("%s: leaf 1 HTT %v", name, d&cpuidHTT != 0)
			}
			for _, leaf := range []uint32{0xB, 0x1F} {
				a0, b0, c0, d0 := GuestCPUID(topoHost, vcpu, ncpu, leaf, 0)
				a1, b1, c1, d1 := GuestCPUID(topoHost, vcpu, ncpu, leaf, 1)
				_, b2, c2, d2 := GuestCPUID(topoHost, vcpu, ncpu, leaf, 2)
				if a0 != 0 || b0 != 1 || c0 != levelTypeSMT<<8 {
					t.Errorf("%s: leaf %#x.0 = %#x %#x %#x", name, leaf, a0, b0, c0)
				}
				if a1 != bits || b1 != uint32(ncpu) || c1 != levelTypeCore<<8|1 {
					t.Errorf("%s: leaf %#x.1 = %#x %#x %#x", name, leaf, a1, b1, c1)
				}
				if b2 != 0 || c2>>8&0xFF != 0 || c2&0xFF != 2 {
					t.Errorf("%s: leaf %#x.2 = ebx %#x ecx %#x, want the invalid level", name, leaf, b2, c2)
				}
				for _, x2 := range []uint32{d0, d1, d2} {
					if int(x2) != vcpu {
						t.Errorf("%s: leaf %#x x2APIC ID %d", name, leaf, x2)
					}
				}
			}
			a, b, c, _ := GuestCPUID(topoHost, vcpu, ncpu, 0x8000001E, 0)
			if int(a) != vcpu || int(b&0xFF) != vcpu || b>>8&0xFF != 0 || c != 0 {
				t.Errorf("%s: leaf 0x8000001E = %#x %#x %#x", name, a, b, c)
			}
			_, _, c, _ = GuestCPUID(topoHost, vcpu, ncpu, 0x80000008, 0)
			if int(c&0xFF) != ncpu-1 || c>>12&0xF != bits || c&0xF0000 != 0 {
				t.Errorf("%s: leaf 0x80000008 ECX %#x", name, c)
			}
			a, _, _, _ = GuestCPUID(topoHost, vcpu, ncpu, 4, 0)
			if a>>26 != 1<<bits-1 || a>>14&0xFFF != 0 || a&0x1F != 1 {
				t.Errorf("%s: leaf 4.0 EAX %#x", name, a)
			}
			a, _, _, _ = GuestCPUID(topoHost, vcpu, ncpu, 4, 1)
			if a>>26 != 1<<bits-1 || a>>14&0xFFF != 1<<bits-1 {
				t.Errorf("%s: leaf 4.1 (L3) EAX %#x", name, a)
			}
			if a, _, _, _ = GuestCPUID(topoHost, vcpu, ncpu, 4, 2); a != 0 {
				t.Errorf("%s: leaf 4.2 (no cache) EAX %#x", name, a)
			}
		}
	}
	for n, want := range map[int]uint32{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 8: 3} {
		if got := CoreIDBits(n); got != want {
			t.Errorf("CoreIDBits(%d) = %d, want %d", n, got, want)
		}
	}
}

type interruptPlatform struct {
	fakePlatform
	hits []int
	n    atomic.Int32
}

func (p *interruptPlatform) InterruptCPU(cpu int) {
	p.hits = append(p.hits, cpu)
	p.n.Add(1)
}

// A kick wakes the vCPU (one token, however many kicks) and interrupts its
// host CPU only while it is in guest mode; a vCPU kicked before it enters
// does not enter until it has looked again.
func TestKickVCPU(t *testing.T) {
	p := &interruptPlatform{}
	vm := &VM{Config: Config{CPUs: 2}, platform: p, signals: newSignals(2)}
	s := &vm.signals[1]
	s.hostCPU.Store(3)

	vm.KickVCPU(1)
	vm.KickVCPU(1)
	if len(p.hits) != 0 {
		t.Errorf("a vCPU outside guest mode: host CPUs %v interrupted", p.hits)
	}
	if s.enter() {
		t.Error("kicked vCPU entered without looking again")
	}
	if !s.enter() {
		t.Error("second look: still kicked (kicks must coalesce into one token)")
	}
	vm.KickVCPU(1) // in guest mode now
	if len(p.hits) != 1 || p.hits[0] != 3 {
		t.Errorf("in guest mode: host CPUs %v interrupted, want [3]", p.hits)
	}
	s.leave()
	<-s.wake // the kick's token is there for the next look
	vm.KickVCPU(-1)
	vm.KickVCPU(2)
	vm.Kick()
	if len(vm.signals[0].wake) != 1 || len(s.wake) != 1 {
		t.Error("Kick did not reach every vCPU")
	}
}

// The VM's interrupt controllers: ICs per vCPU, or IC for vCPU 0 only.
func TestVMInterruptControllers(t *testing.T) {
	a, b := &fakeIC{}, &fakeIC{}
	vm := &VM{IC: a}
	if vm.ic(0) != a || vm.ic(1) != nil {
		t.Error("IC is not vCPU 0's alone")
	}
	vm.ICs = []InterruptController{a, b}
	if vm.ic(0) != a || vm.ic(1) != b || vm.ic(2) != nil || vm.ic(-1) != nil {
		t.Error("ICs not per vCPU")
	}
}

type fakeIC struct{}

func (*fakeIC) HasInterrupt() bool { return false }
func (*fakeIC) Acknowledge() uint8 { return 0 }

// NewVM takes 1 to MaxCPUs vCPUs.
func TestNewVMCPUs(t *testing.T) {
	for _, c := range []struct {
		cpus int
		ok   bool
	}{{0, true}, {1, true}, {MaxCPUs, true}, {MaxCPUs + 1, false}, {-1, false}} {
		h := &fakeHost{mem: make([]byte, 8<<20)}
		vm, err := NewVM(Config{Name: "x", CPUs: c.cpus}, nil, hostPlatform{h}, 2<<20)
		if (err == nil) != c.ok {
			t.Errorf("%d vCPUs: %v", c.cpus, err)
		}
		if err == nil && (vm.numCPUs() != max(c.cpus, 1) || len(vm.signals) != vm.numCPUs()) {
			t.Errorf("%d vCPUs: VM has %d (%d signals)", c.cpus, vm.numCPUs(), len(vm.signals))
		}
	}
}

type hostPlatform struct{ *fakeHost }

func (hostPlatform) Pin(int) error                              { return nil }
func (hostPlatform) Unpin()                                     {}
func (hostPlatform) SetTick(int64) error                        { return nil }
func (hostPlatform) CPUID(leaf, sub uint32) (a, b, c, d uint32) { return 0, 0, 0, 0 }
func (hostPlatform) TSC() uint64                                { return 0 }
func (hostPlatform) TSCHz() uint64                              { return 1e9 }

func TestSharesHostCPU(t *testing.T) {
	hosts := []int{0, 1, 0, 2}
	for i, want := range []bool{true, false, true, false} {
		if got := sharesHostCPU(hosts, i); got != want {
			t.Errorf("vCPU %d on %v: shares %v", i, hosts, got)
		}
	}
}
