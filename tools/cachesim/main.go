// Command cachesim is cachemon's host-side ground truth: it turns real
// programs' memory traces into compact line-reference traces (gen), and
// runs the validation of cachemon's occupancy model, online miss-ratio
// curves and placement advice against a simulated shared LLC (bench),
// writing docs/cachemon.md and its SVG plots.
//
// Usage:
//
//	cachesim gen   [-dir DIR] [-only NAME] [-j N]
//	cachesim bench [-traces DIR] [-doc FILE] [-svg DIR] [-mix NAME]
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cachesim gen|bench [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = cmdGen(os.Args[2:])
	case "bench":
		err = cmdBench(os.Args[2:])
	default:
		err = fmt.Errorf("cachesim: unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
