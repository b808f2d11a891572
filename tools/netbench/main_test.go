package main

import (
	"errors"
	"strings"
	"testing"
)

func TestSection(t *testing.T) {
	res := map[variant][]sample{
		direct: {{tx: 2, rx: 8}, {tx: 4, rx: 6}, {tx: 3, rx: 7}},
		nested: {{tx: 0.5, rx: 1}, {err: errors.New("triple fault")}, {tx: 0.3, rx: 1.4}},
	}
	got := section(res, map[variant]string{direct: "qemu A", nested: "qemu B"}, 4)
	for _, want := range []string{
		"| direct | 3.00 (2.00 to 4.00) | 7.00 (6.00 to 8.00) | 3 | `qemu A` |",
		"| hv | 0.50 (0.30 to 0.50) | 1.40 (1.00 to 1.40) | 2 (1 failed) | `qemu B` |",
		"Ratio hv / direct (medians): tx 0.17, rx 0.20.",
		"4 MiB each way",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	none := section(map[variant][]sample{direct: {{tx: 1, rx: 1}}, nested: {{err: errors.New("x")}}}, nil, 4)
	if !strings.Contains(none, "No ratio") || !strings.Contains(none, "| hv | - | - | 0 (1 failed)") {
		t.Errorf("section without hv runs:\n%s", none)
	}
}
