package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseStamp(t *testing.T) {
	tests := []struct {
		line string
		ns   uint64
		msg  string
		ok   bool
	}{
		{"[    1.597141] Run /init as init process", 1597141000, initMsg, true},
		{"linux: [    1.327517] Run /init as init process", 1327517000, initMsg, true},
		{"[  123.000001] x", 123000001000, "x", true},
		{"linux: [    0.000697] Calibrating delay loop (skipped), value calculated", 697000, "Calibrating delay loop (skipped), value calculated", true},
		{"init: uname 6.1.0", 0, "", false},
		{"[ 1.5] short fraction", 0, "", false},
		{"hv: [    1.000000] other prefix", 0, "", false},
	}
	for _, tt := range tests {
		ns, msg, ok := parseStamp(tt.line)
		if ns != tt.ns || msg != tt.msg || ok != tt.ok {
			t.Errorf("parseStamp(%q) = %d, %q, %v; want %d, %q, %v", tt.line, ns, msg, ok, tt.ns, tt.msg, tt.ok)
		}
	}
}

func TestDoneRE(t *testing.T) {
	for line, want := range map[string]bool{"test: done": true, "linux: test: done": true, "hv: test: done": false, "test: net eth0": false} {
		if got := doneRE.MatchString(line); got != want {
			t.Errorf("doneRE(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs          []float64
		med, lo, hi float64
		ok          bool
	}{
		{nil, 0, 0, 0, false},
		{[]float64{2}, 2, 2, 2, true},
		{[]float64{3, 1, 2}, 2, 1, 3, true},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, true},
	}
	for _, tt := range tests {
		med, lo, hi, ok := median(tt.xs)
		if med != tt.med || lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("median(%v) = %v %v %v %v; want %v %v %v %v", tt.xs, med, lo, hi, ok, tt.med, tt.lo, tt.hi, tt.ok)
		}
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Errorf("median sorted its argument: %v", xs)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		nested, direct []float64
		want           float64
		ok             bool
	}{
		{[]float64{2, 4, 3}, []float64{1, 1, 2}, 3, true},
		{[]float64{1}, nil, 0, false},
		{nil, []float64{1}, 0, false},
		{[]float64{1}, []float64{0}, 0, false},
	}
	for _, tt := range tests {
		got, ok := ratio(tt.nested, tt.direct)
		if math.Abs(got-tt.want) > 1e-9 || ok != tt.ok {
			t.Errorf("ratio(%v, %v) = %v %v; want %v %v", tt.nested, tt.direct, got, ok, tt.want, tt.ok)
		}
	}
}

func TestInitSpan(t *testing.T) {
	tests := []struct {
		s    sample
		want float64
		ok   bool
	}{
		{sample{stampInit: 1597141000, stampCalib: 90770000}, 1.506371, true},
		{sample{stampInit: 1597141000}, 0, false},
		{sample{stampInit: 5, stampCalib: 7}, 0, false},
	}
	for _, tt := range tests {
		got, ok := initSpan(tt.s)
		if math.Abs(got-tt.want) > 1e-9 || ok != tt.ok {
			t.Errorf("initSpan(%+v) = %v %v; want %v %v", tt.s, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSection(t *testing.T) {
	ok := func(w, d time.Duration, calib, init uint64) sample {
		return sample{ok: true, wallInit: w, wallDone: d, stampCalib: calib, stampInit: init}
	}
	r := &results{want: 2, append_: guestAppend, logs: "out/bench-logs",
		cmds: map[key]string{{direct, wall}: "qemu-direct", {nested, wall}: "qemu-nested", {direct, icount}: "qemu-di", {nested, icount}: "qemu-ni"},
		runs: map[key][]sample{
			{direct, wall}:   {ok(10*time.Second, 12*time.Second, 0, 0), ok(20*time.Second, 22*time.Second, 0, 0)},
			{nested, wall}:   {ok(30*time.Second, 33*time.Second, 0, 0), {reason: "linux-nested-wall-1: triple fault | x"}, ok(30*time.Second, 35*time.Second, 0, 0)},
			{direct, icount}: {ok(0, 0, 1e8, 16e8), ok(0, 0, 1e8, 16e8)},
			{nested, icount}: {ok(0, 0, 1e6, 30.01e8), ok(0, 0, 1e6, 30.01e8)},
		}}
	got := r.section()
	for _, want := range []string{
		"| Wall time, QEMU start to `Run /init as init process` | 15.00 s (10.00–20.00, n=2) | 30.00 s (30.00–30.00, n=2) | 2.00× |",
		"| Wall time, QEMU start to `test: done` | 17.00 s (12.00–22.00, n=2) | 34.00 s (33.00–35.00, n=2) | 2.00× |",
		"from `Calibrating delay loop` to `Run /init` | 1.500 ×10⁹ (1.500–1.500, n=2) | 3.000 ×10⁹ (3.000–3.000, n=2) | 2.00× |",
		"- nested, wall: 1 of 3 runs failed",
		`triple fault \| x`,
		"- direct, icount: `qemu-di`",
		"`" + guestAppend + "`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	empty := (&results{want: 1, runs: map[key][]sample{}, cmds: map[key]string{}}).section()
	if !strings.Contains(empty, "| — | — | — |") || !strings.Contains(empty, "No run failed.") {
		t.Errorf("empty section:\n%s", empty)
	}
}

func TestParseBench(t *testing.T) {
	tests := []struct {
		line string
		op   string
		mbps float64
		ok   bool
	}{
		{"test: bench blk write 33554432 bytes 1000000000 ns", "write", 33.554432, true},
		{"linux: test: bench blk read 1000000 bytes 500000 ns", "read", 2000, true},
		{"test: bench blk read 1000000 bytes 0 ns", "", 0, false},
		{"test: bench blk read 0 bytes 10 ns", "", 0, false},
		{"test: bench blk erase 1 bytes 1 ns", "", 0, false},
		{"hv: test: bench blk read 1 bytes 1 ns", "", 0, false},
	}
	for _, tt := range tests {
		op, mbps, ok := parseBench(tt.line)
		if op != tt.op || math.Abs(mbps-tt.mbps) > 1e-9 || ok != tt.ok {
			t.Errorf("parseBench(%q) = %q, %v, %v; want %q, %v, %v", tt.line, op, mbps, ok, tt.op, tt.mbps, tt.ok)
		}
	}
}

// The guest's command line asks for the measurement the report names.
func TestGuestAppendBench(t *testing.T) {
	if want := " hv.bench=" + strconv.Itoa(benchMiB); !strings.HasSuffix(guestAppend, want) {
		t.Errorf("guestAppend = %q, want it to end in %q", guestAppend, want)
	}
}
