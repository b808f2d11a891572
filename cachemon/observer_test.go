package cachemon

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestObserverAttributesAndCloses(t *testing.T) {
	s, cpu := newTestSampler(t, 2, 1<<48-1)
	o, err := NewObserver(s, "vm", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// vCPU 1 of the VM on host CPU 0, vCPU 0 on host CPU 1.
	o.SwitchIn(1, 0, 0)
	o.SwitchIn(0, 1, 0)
	cpu[0].run(100, 10, 1)
	cpu[1].run(200, 20, 2)
	o.SwitchOut(1, 0, 50) // the first Tick starts the clock
	o.SwitchOut(0, 1, 150)
	if o.Errors() != 0 {
		t.Fatalf("%d sampler errors", o.Errors())
	}
	st := s.Stats()
	if diff := cmp.Diff([]string{"vm/0", "vm/1"}, []string{st[0].Name, st[1].Name}); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{Instrs: 200, Refs: 20, Misses: 2}, st[o.V[0]].Total); diff != "" {
		t.Errorf("vm/0 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{Instrs: 100, Refs: 10, Misses: 1}, st[o.V[1]].Total); diff != "" {
		t.Errorf("vm/1 (-want +got):\n%s", diff)
	}
	// 100 time units after the first switch out the interval closed, with
	// both vCPUs' counts.
	if s.nclosed != 1 {
		t.Errorf("%d intervals closed, want 1", s.nclosed)
	}
	if st[o.V[0]].Last.Misses != 2 || st[o.V[1]].Last.Misses != 1 {
		t.Errorf("last intervals %+v, %+v; want 2 and 1 misses", st[o.V[0]].Last, st[o.V[1]].Last)
	}
}

func TestObserverCountsErrors(t *testing.T) {
	s, _ := newTestSampler(t, 1, 1<<48-1)
	o, err := NewObserver(s, "vm", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.SwitchIn(3, 0, 0)  // no such vCPU
	o.SwitchOut(0, 0, 1) // nothing switched in
	o.SwitchIn(0, 7, 2)  // no such host CPU
	if got := o.Errors(); got != 3 {
		t.Errorf("Errors() = %d, want 3", got)
	}
}

// With a Clock the Sampler's intervals follow it, not the VM's own time.
func TestObserverClock(t *testing.T) {
	s, _ := newTestSampler(t, 1, 1<<48-1)
	host := uint64(1000)
	o, err := NewObserver(s, "vm", 1, func() uint64 { return host })
	if err != nil {
		t.Fatal(err)
	}
	o.SwitchIn(0, 0, 0)
	o.SwitchOut(0, 0, 0) // starts the intervals at 1000
	host = 1100
	o.SwitchIn(0, 0, 5)
	o.SwitchOut(0, 0, 5) // the VM says 5; the clock says 100 later
	if s.nclosed != 1 {
		t.Errorf("%d intervals closed, want 1", s.nclosed)
	}
}
