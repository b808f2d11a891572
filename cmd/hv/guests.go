package main

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"hv/boot"
	"hv/svm"
	"hv/vmm"
	"hv/vmm/testpc"
	"hv/vmx"
)

// smokeImage is the smallest guest: in real mode it prints "hello" on the
// debug console, executes CPUID and writes 0 to the exit port.
var smokeImage = []byte{
	0xBA, 0xE9, 0x00, // mov dx, 0xE9
	0xB0, 'h', 0xEE, // mov al, 'h'; out dx, al
	0xB0, 'i', 0xEE, // mov al, 'i'; out dx, al
	0xB0, '\n', 0xEE, // mov al, '\n'; out dx, al
	0x66, 0x31, 0xC0, // xor eax, eax
	0x0F, 0xA2, // cpuid
	0x66, 0x31, 0xC0, // xor eax, eax
	0xBA, 0xF4, 0x00, // mov dx, 0xF4
	0x66, 0xEF, // out dx, eax
	0xF4,       // hlt
	0xEB, 0xFE, // jmp $
}

// guestSpecs lists every runnable test guest by name.
func guestSpecs() map[string]testpc.Spec {
	specs := map[string]testpc.Spec{
		"smoke":        {Name: "smoke", Image: smokeImage, Timeout: 20 * time.Second},
		"smoke-loop":   {Name: "smoke-loop", Image: []byte{0xEB, 0xFE}, Timeout: 2 * time.Second, WantStop: "watchdog"},
		"invalid-vmcb": {Name: "invalid-vmcb", Image: smokeImage, Timeout: 20 * time.Second, WantStop: "invalid state", Corrupt: corruptState},
		"snapshot":     {Name: "snapshot", Image: smokeImage, Timeout: 20 * time.Second, StopAfter: 2},
	}
	for _, g := range extraGuests() {
		specs[g.Name] = g
	}
	return specs
}

// corruptState makes the initial state one that VM entry must refuse:
// CR0.NW set with CR0.CD clear (APM vol. 2 15.5.1, Intel SDM 27.3.1.1).
func corruptState(c vmm.VCPU) {
	s := c.SRegs()
	s.CR0 = s.CR0&^(1<<30) | 1<<29
	c.SetSRegs(s)
}

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
	specs := guestSpecs()
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
	if len(names) == 1 && names[0] == "all" {
		names = names[:0]
		for n := range specs {
			names = append(names, n)
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
