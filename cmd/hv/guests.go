package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"hv/boot"
	"hv/svm"
	"hv/vmm"
	"hv/vmm/testpc"
	"hv/vmx"
)

func newBackend() (vmm.Backend, error) {
	switch boot.Virtualization() {
	case "svm":
		return svm.New(platform{}, boot.CPUID)
	case "vmx":
		return vmx.New(platform{}, boot.CPUID)
	}
	return nil, fmt.Errorf("this CPU has neither SVM nor VMX")
}

// runGuests runs the named test guests, at most one per CPU at a time, and
// prints a verdict line for each. It returns the number of failures.
func runGuests(names []string) int {
	specs := testpc.Catalog()
	if len(names) == 1 && names[0] == "list" {
		var all []string
		for n := range specs {
			all = append(all, n)
		}
		sort.Strings(all)
		for _, n := range all {
			fmt.Println(n)
		}
		return 0
	}
	if len(names) > 0 && names[0] == "all" {
		// guest=all,-a,-b runs every guest but a and b.
		skip := map[string]bool{}
		for _, n := range names[1:] {
			if !strings.HasPrefix(n, "-") {
				fmt.Printf("hv: error: guest=all takes only exclusions (-name), not %q\n", n)
				return 1
			}
			if _, ok := specs[n[1:]]; !ok {
				fmt.Printf("hv: error: unknown test guest %q in exclusion (guest=list lists them)\n", n[1:])
				return 1
			}
			skip[n[1:]] = true
		}
		names = nil
		for n := range specs {
			if !skip[n] {
				names = append(names, n)
			}
		}
		sort.Strings(names)
	}
	for _, n := range names {
		if _, ok := specs[n]; !ok {
			fmt.Printf("hv: error: unknown test guest %q (guest=list lists them)\n", n)
			return 1
		}
	}
	b, err := newBackend()
	if err != nil {
		fmt.Printf("hv: error: cannot run guests: %v\n", err)
		return 1
	}
	ncpu := boot.CPUCount()
	work := make(chan string)
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	for cpu := 0; cpu < ncpu; cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				spec := specs[n]
				start := time.Now()
				v := testpc.Run(spec, b, platform{}, cpu, os.Stdout)
				mu.Lock()
				if v.Stop != "" {
					fmt.Println(v.Stop)
				}
				if v.Pass {
					fmt.Printf("guest %s: PASS\n", n)
				} else {
					failed++
					fmt.Printf("guest %s: FAIL %s\n", n, v.Reason)
				}
				fmt.Printf("hv: guest %s ran on cpu %d: %d exits in %v\n", n, cpu, v.Exits, time.Since(start).Round(time.Millisecond))
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	return failed
}
