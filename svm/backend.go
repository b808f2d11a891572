package svm

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"hv/vmm"
)

// Backend is the AMD SVM implementation of vmm.Backend.
type Backend struct {
	host  vmm.Host
	info  SVMInfo
	nrips bool

	mu    sync.Mutex
	hsave map[int]uint64 // per CPU: VM_HSAVE_PA page

	asids atomic.Uint32
}

// ErrNoSVM is returned by New on a CPU without SVM or nested paging.
var ErrNoSVM = errors.New("svm: no AMD-V with nested paging")

// New probes the CPU (through cpuid) and returns the backend.
func New(host vmm.Host, cpuid func(leaf, sub uint32) (a, b, c, d uint32)) (*Backend, error) {
	maxExt, _, _, _ := cpuid(0x80000000, 0)
	if maxExt < 0x8000000A {
		return nil, ErrNoSVM
	}
	if _, _, c, _ := cpuid(0x80000001, 0); c&(1<<2) == 0 {
		return nil, ErrNoSVM
	}
	info := DecodeSVMInfo(cpuid(0x8000000A, 0))
	if !info.Has(FeatureNP) {
		return nil, fmt.Errorf("%w: CPUID 8000_000Ah reports no nested paging", ErrNoSVM)
	}
	if info.MaxASID() == 0 {
		return nil, fmt.Errorf("%w: no guest ASIDs", ErrNoSVM)
	}
	return &Backend{host: host, info: info, nrips: info.Has(FeatureNRIPS), hsave: map[int]uint64{}}, nil
}

// Name implements vmm.Backend.
func (b *Backend) Name() string { return "svm" }

// Info returns what CPUID said about SVM.
func (b *Backend) Info() SVMInfo { return b.info }

// readVMCR reads VM_CR, which Bochs does not implement (#GP): that reads
// as "not disabled, not locked".
func readVMCR() (v uint64, ok bool) {
	// #GP reaches the runtime as SIGSEGV with SI_KERNEL: fatal unless the
	// goroutine asked to panic on faults.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			v, ok = 0, false
		}
	}()
	return rdmsr(MSRVMCR), true
}

// EnableCPU sets EFER.SVME and the host save area on the calling CPU, to
// which the caller must be pinned.
func (b *Backend) EnableCPU(cpu int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if vmcr, ok := readVMCR(); ok && vmcr&VMCRSVMDis != 0 {
		if vmcr&VMCRLock != 0 {
			return fmt.Errorf("svm: cpu %d: %w", cpu, ErrSVMDisabledLocked)
		}
		return fmt.Errorf("svm: cpu %d: %w", cpu, ErrSVMDisabled)
	}
	pa, ok := b.hsave[cpu]
	if !ok {
		var err error
		if pa, err = b.host.AllocFrames(1, 1); err != nil {
			return fmt.Errorf("svm: cpu %d host save area: %w", cpu, err)
		}
		b.hsave[cpu] = pa
	}
	wrmsr(MSREFER, rdmsr(MSREFER)|EFERSVME)
	wrmsr(MSRVMHsavePA, pa)
	return nil
}

// tables adapts the host to NPT's TableMemory.
type tables struct{ host vmm.Host }

func (t tables) AllocTable() (uint64, error) { return t.host.AllocFrames(1, 1) }
func (t tables) FreeTable(pa uint64)         { _ = t.host.FreeFrames(pa, 1) }
func (t tables) Table(pa uint64) *[512]uint64 {
	return (*[512]uint64)(unsafe.Pointer(&t.host.Bytes(pa, 4096)[0]))
}
