package svm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"hv/boot"
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

// EnableCPU sets EFER.SVME and the host save area on the calling CPU, to
// which the caller must be pinned.
func (b *Backend) EnableCPU(cpu int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Bochs does not implement VM_CR (#GP): that reads as "not disabled".
	if vmcr, err := boot.ReadMSR(MSRVMCR); err == nil && vmcr&VMCRSVMDis != 0 {
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
	efer, err := boot.ReadMSR(MSREFER)
	if err == nil {
		err = boot.WriteMSR(MSREFER, efer|EFERSVME)
	}
	if err == nil {
		err = boot.WriteMSR(MSRVMHsavePA, pa)
	}
	if err != nil {
		return fmt.Errorf("svm: cpu %d: enable: %w", cpu, err)
	}
	return nil
}

// tables adapts the host to NPT's TableMemory.
type tables struct{ host vmm.Host }

func (t tables) AllocTable() (uint64, error) { return t.host.AllocFrames(1, 1) }
func (t tables) FreeTable(pa uint64)         { _ = t.host.FreeFrames(pa, 1) }
func (t tables) Table(pa uint64) *[512]uint64 {
	return (*[512]uint64)(unsafe.Pointer(&t.host.Bytes(pa, 4096)[0]))
}
