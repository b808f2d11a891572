package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTSC(t *testing.T) {
	tests := []struct {
		line string
		want uint64
		ok   bool
	}{
		{"selftest: first tsc=123456", 123456, true},
		{"selftest: done 7/7 tsc=9876543210", 9876543210, true},
		{"selftest: done tsc=1 7/7", 1, true},
		{"selftest: done 7/7", 0, false},
		{"selftest: done 7/7 tsc=", 0, false},
		{"selftest: done 7/7 tsc=12x", 0, false},
		{"selftest: done 7/7 mytsc=5", 0, false},
		{"tsc=99999999999999999999999", 0, false}, // overflows uint64
	}
	for _, tt := range tests {
		got, ok := parseTSC(tt.line)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTSC(%q) = %d, %v; want %d, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseBench(t *testing.T) {
	tests := []struct {
		line    string
		want    benchResult
		ok, err bool
	}{
		{line: "bench: futex-wake 1234 ns", want: benchResult{"futex-wake", 1234, "ns"}, ok: true},
		{line: "bench: goroutine-switch-xcpu 5.5e3 cycles", want: benchResult{"goroutine-switch-xcpu", 5500, "cycles"}, ok: true},
		{line: "bench: done"},
		{line: "bench: futex-wake fast ns", err: true},
		{line: "bench: a|b 1 ns"}, // would break the Markdown table
		{line: "selftest: PASS x"},
		{line: "bench: x 1 ns extra"},
	}
	for _, tt := range tests {
		got, ok, err := parseBench(tt.line)
		if (err != nil) != tt.err || ok != tt.ok {
			t.Errorf("parseBench(%q) ok=%v err=%v; want ok=%v err=%v", tt.line, ok, err, tt.ok, tt.err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); ok && diff != "" {
			t.Errorf("parseBench(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestSection(t *testing.T) {
	m := &measurements{
		imageSize: 2 << 20,
		firstTSC:  []uint64{1000, 900, 1100}, doneTSC: []uint64{5000, 5100, 4000},
		firstWall: []time.Duration{1500 * time.Millisecond}, doneWall: []time.Duration{3 * time.Second},
		bench:     []benchResult{{"futex-wake", 800, "ns"}, {"switch", 3409868.5, "ns"}},
		icountCmd: "qemu A", wallCmd: "qemu B", benchCmd: "qemu C",
		warnings: []string{"wall-clock run 1: a | b"},
	}
	got := m.section("out/hv")
	for _, want := range []string{
		"| Image size | 2097152 bytes (2.00 MiB) |",
		"| Guest instructions from reset to the self-test's first line | 1000 (median; 900 to 1100 over 3 runs) | `qemu A` |",
		"| Guest instructions from reset to the self-test's end (last `tsc=` up to `selftest: done`) | 5000 (median; 4000 to 5100 over 3 runs) | same |",
		"| Wall time from QEMU's start to the self-test's first line | 1.50 s (1 run) | `qemu B` |",
		"| Wall time from QEMU's start to `selftest: done` | 3.00 s (1 run) | same |",
		"Reproduce: `qemu C`",
		"| futex-wake | 800 | ns |",
		"| switch | 3409868.5 | ns |",
		`- wall-clock run 1: a \| b`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	empty := (&measurements{icountCmd: "qemu A"}).section("out/hv")
	if !strings.Contains(empty, "| Guest instructions from reset to the self-test's first line | not measured") {
		t.Errorf("missing figures not marked:\n%s", empty)
	}
}
