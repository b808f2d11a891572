package cachemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeCounters is one CPU's free-running counters, advanced by the test.
type fakeCounters struct {
	c    Counts
	mask uint64
	err  error
}

func (f *fakeCounters) ReadCounts() (Counts, error) { return f.c, f.err }
func (f *fakeCounters) CounterMask() uint64         { return f.mask }
func (f *fakeCounters) run(instrs, refs, misses uint64) {
	f.c.Instrs = (f.c.Instrs + instrs) & f.mask
	f.c.Refs = (f.c.Refs + refs) & f.mask
	f.c.Misses = (f.c.Misses + misses) & f.mask
}

type fakeMonitor struct {
	assigned []uint32
	bytes    map[uint32]uint64
}

func (m *fakeMonitor) Assign(rmid uint32) error { m.assigned = append(m.assigned, rmid); return nil }
func (m *fakeMonitor) OccupancyBytes(rmid uint32) (uint64, error) {
	return m.bytes[rmid], nil
}

func newTestSampler(t *testing.T, cpus int, mask uint64) (*Sampler, []*fakeCounters) {
	t.Helper()
	var srcs []CounterSource
	var fakes []*fakeCounters
	domain := make([]int, cpus)
	for range cpus {
		f := &fakeCounters{mask: mask}
		fakes = append(fakes, f)
		srcs = append(srcs, f)
	}
	s, err := NewSampler(SamplerConfig{LineBytes: 64, CacheBytes: 64 * 1024, Domain: domain, Interval: 100, Model: ModelBasic, MRCBins: 8}, srcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, fakes
}

func TestSamplerAttributesCountsToVCPUs(t *testing.T) {
	s, cpu := newTestSampler(t, 2, 1<<48-1)
	a, _ := s.AddVCPU("a")
	b, _ := s.AddVCPU("b")
	cpu[0].run(999, 999, 999) // before anything: nobody's
	must(t, s.SwitchIn(0, a, 0))
	must(t, s.SwitchIn(1, b, 0))
	cpu[0].run(100, 10, 1)
	cpu[1].run(200, 20, 2)
	must(t, s.SwitchOut(0, 5))
	cpu[0].run(7, 7, 7) // the hypervisor between vCPUs
	if err := s.SwitchIn(0, b, 6); err == nil {
		t.Error("vCPU b switched in on CPU 0 while running on CPU 1")
	}
	must(t, s.SwitchOut(1, 6))
	cpu[1].run(5, 5, 5)          // CPU 1's hypervisor time
	must(t, s.SwitchIn(0, b, 6)) // b migrates to CPU 0
	cpu[0].run(300, 30, 3)
	must(t, s.Checkpoint(0, 8))
	cpu[0].run(1, 1, 1)
	must(t, s.SwitchOut(0, 9))
	st := s.Stats()
	if diff := cmp.Diff(Counts{Instrs: 100, Refs: 10, Misses: 1}, st[a].Total); diff != "" {
		t.Errorf("a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{Instrs: 501, Refs: 51, Misses: 6}, st[b].Total); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
}

func TestSamplerCounterWrap(t *testing.T) {
	s, cpu := newTestSampler(t, 1, 1<<48-1)
	a, _ := s.AddVCPU("a")
	cpu[0].c = Counts{Instrs: 1<<48 - 10, Refs: 1<<48 - 1, Misses: 1<<48 - 1}
	must(t, s.SwitchIn(0, a, 0))
	cpu[0].run(30, 5, 2)
	must(t, s.SwitchOut(0, 1))
	if diff := cmp.Diff(Counts{Instrs: 30, Refs: 5, Misses: 2}, s.Stats()[a].Total); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSamplerIntervalsFeedModelAndMRC(t *testing.T) {
	s, cpu := newTestSampler(t, 1, 1<<48-1)
	a, _ := s.AddVCPU("a")
	b, _ := s.AddVCPU("b")
	if closed, _ := s.Tick(0, 0); closed {
		t.Fatal("first tick closed an interval")
	}
	for i := range uint64(40) {
		now := i * 100
		must(t, s.SwitchIn(0, a, now))
		cpu[0].run(10000, 400, 100) // a: miss ratio 0.25
		must(t, s.SwitchOut(0, now+50))
		must(t, s.SwitchIn(0, b, now+50))
		cpu[0].run(10000, 800, 300) // b: miss ratio 0.375
		must(t, s.SwitchOut(0, now+99))
		closed, err := s.Tick(0, now+100)
		must(t, err)
		if !closed {
			t.Fatalf("interval %d not closed", i)
		}
		if closed, _ := s.Tick(0, now+150); closed {
			t.Fatal("interval closed early")
		}
	}
	st := s.Stats()
	// Basic model: shares converge to the miss shares, 1/4 and 3/4 of
	// the 1024 lines.
	if st[a].Occupancy < 250 || st[a].Occupancy > 262 || st[b].Occupancy < 762 || st[b].Occupancy > 774 {
		t.Errorf("occupancies %v and %v, want about 256 and 768", st[a].Occupancy, st[b].Occupancy)
	}
	if st[a].MRC.Measured() == 0 || st[b].MRC.Measured() == 0 {
		t.Fatal("no MRC points after the cache filled")
	}
	if got := st[a].MRC.At(256); got != 0.25 {
		t.Errorf("a's miss ratio at 256 lines %v, want 0.25", got)
	}
	var out strings.Builder
	must(t, s.WriteText(&out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "cachemon: llc 64 KiB (1024 lines), model basic, 40 intervals") {
		t.Fatalf("export:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[1], `vcpu 0 "a" instr 400000 refs 16000 misses 4000 mpki 10.00 missratio 0.250 occ 256 lines 25.0%`) {
		t.Errorf("line for a: %s", lines[1])
	}
	if !strings.Contains(lines[2], "mrc") || !strings.Contains(lines[2], "37.5") {
		t.Errorf("line for b: %s", lines[2])
	}
}

func TestSamplerMonitor(t *testing.T) {
	f := &fakeCounters{mask: 1<<48 - 1}
	m := &fakeMonitor{bytes: map[uint32]uint64{1: 6400}}
	s, err := NewSampler(SamplerConfig{LineBytes: 64, CacheBytes: 1 << 16, Domain: []int{0}, Interval: 1}, []CounterSource{f}, []OccupancyMonitor{m})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AddVCPU("a")
	must(t, s.SwitchIn(0, a, 0))
	must(t, s.SwitchOut(0, 1))
	s.Tick(0, 1)
	s.Tick(0, 2)
	if diff := cmp.Diff([]uint32{1, 0}, m.assigned); diff != "" {
		t.Errorf("RMIDs assigned (-want +got):\n%s", diff)
	}
	st := s.Stats()[a]
	if !st.HWValid || st.HWOccupancyBytes != 6400 {
		t.Errorf("hardware occupancy %d valid %v", st.HWOccupancyBytes, st.HWValid)
	}
	var out strings.Builder
	s.WriteText(&out)
	if !strings.Contains(out.String(), "hw 100 lines") {
		t.Errorf("export lacks the hardware figure:\n%s", out.String())
	}
}

func TestSamplerErrors(t *testing.T) {
	s, cpu := newTestSampler(t, 1, 1<<48-1)
	a, _ := s.AddVCPU("a")
	if err := s.SwitchIn(0, 5, 0); err == nil {
		t.Error("unknown vCPU accepted")
	}
	if err := s.SwitchIn(3, a, 0); err == nil {
		t.Error("unknown CPU accepted")
	}
	if err := s.SwitchOut(0, 0); err == nil {
		t.Error("switch out of an idle CPU accepted")
	}
	must(t, s.SwitchIn(0, a, 0))
	if err := s.SwitchIn(0, a, 0); err == nil {
		t.Error("double switch in accepted")
	}
	gp := errors.New("#GP")
	cpu[0].err = gp
	if err := s.SwitchOut(0, 1); !errors.Is(err, gp) {
		t.Errorf("read failure gives %v", err)
	}
	cpu[0].err = nil
	var out strings.Builder
	s.WriteText(&out)
	if !strings.Contains(out.String(), "first counter error") {
		t.Errorf("export hides the counter error:\n%s", out.String())
	}
	for _, cfg := range []SamplerConfig{
		{LineBytes: 64, CacheBytes: 32, Domain: []int{0}, Interval: 1},
		{LineBytes: 64, CacheBytes: 1024, Domain: []int{0, 0}, Interval: 1},
		{LineBytes: 64, CacheBytes: 1024, Domain: []int{0}, Interval: 0},
		{LineBytes: 64, CacheBytes: 1024, Domain: []int{5}, Interval: 1},
	} {
		if _, err := NewSampler(cfg, []CounterSource{&fakeCounters{}}, nil); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
