package main

import (
	"strings"
	"testing"
)

func TestExitBenchLines(t *testing.T) {
	r := exitRun{Label: "x", Results: map[string]float64{}}
	for _, l := range []string{
		"bench: svm_cpuid_exit 1234 tsc",
		"bench: vmx_pio_exit 99 tsc",
		"bench: futex_wake 5 ns",
		"bench: svm_exits_per_second 2000 exits/s",
	} {
		if m := exitBenchRE.FindStringSubmatch(l); m != nil {
			r.Results[m[2]] = map[string]float64{"1234": 1234, "99": 99, "2000": 2000}[m[3]]
		}
	}
	if len(r.Results) != 3 || r.Results["cpuid_exit"] != 1234 || r.Results["pio_exit"] != 99 {
		t.Fatalf("parsed %v", r.Results)
	}
	s := exitSection([]exitRun{r, {Label: "broken", Results: map[string]float64{}, Err: "timeout | log"}})
	for _, want := range []string{"| x | 1234 | 99 | n/a | 2000 |", "broken: timeout \\| log"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
}
