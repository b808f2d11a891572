package main

import (
	"fmt"
	"regexp"
	"strconv"
)

// tscRE finds a raw TSC value anywhere on a marker line. Under QEMU
// -icount shift=0 the guest TSC advances once per guest instruction, so
// the value counts instructions since reset.
var tscRE = regexp.MustCompile(`(?:^|\s)tsc=(\d{1,20})(?:\s|$)`)

// parseTSC returns the tsc= value on line.
func parseTSC(line string) (uint64, bool) {
	m := tscRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// benchResult is one "bench: <name> <value> <unit>" line of the kernel.
type benchResult struct {
	Name  string
	Value float64
	Unit  string
}

// Names and units are restricted to characters that need no escaping in a
// Markdown table: the doc is generated from guest output.
var benchRE = regexp.MustCompile(`^bench: ([A-Za-z0-9_.:/-]{1,64}) (\S{1,32}) ([A-Za-z0-9_./%-]{1,16})$`)

// parseBench parses a kernel benchmark line. It returns ok=false for lines
// that are not benchmark results ("bench: done", other output) and an error
// for a result line with a malformed value.
func parseBench(line string) (benchResult, bool, error) {
	m := benchRE.FindStringSubmatch(line)
	if m == nil || m[1] == "done" {
		return benchResult{}, false, nil
	}
	v, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		return benchResult{}, false, fmt.Errorf("hvbench: bad value in %q: %w", line, err)
	}
	return benchResult{Name: m[1], Value: v, Unit: m[3]}, true, nil
}
