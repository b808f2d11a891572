package emulate

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/vmm/pagewalk"
)

type cpuMode int

const (
	mReal cpuMode = iota
	mProt16
	mProt32
	mCompat32
	mLong
)

// Register numbers for the tables.
const (
	rax = iota
	rcx
	rdx
	rbx
	rsp
	rbp
	rsi
	rdi
	r8
	r9
	r10
	r11
	r12
)

const (
	attrCode = AttrP | AttrS | AttrCode | AttrWritable | AttrAccessed // execute/read
	attrData = AttrP | AttrS | AttrWritable | AttrAccessed            // read/write
	pdeRW    = pagewalk.PteP | pagewalk.PteRW
)

func setupMode(c *fakeCPU, b *fakeBus, m cpuMode) {
	c.rip = codeAddr
	c.rflags = 0x2
	flat := Segment{Limit: 0xFFFF_FFFF, Attr: attrData | AttrDB | AttrG}
	for s := ES; s < numSegRegs; s++ {
		c.seg[s] = flat
	}
	switch m {
	case mReal:
		for s := ES; s < numSegRegs; s++ {
			c.seg[s] = Segment{Limit: 0xFFFF, Attr: attrData}
		}
		c.seg[CS] = Segment{Limit: 0xFFFF, Attr: attrCode}
	case mProt16:
		c.cr0 = pagewalk.CR0PE
		c.seg[CS] = Segment{Selector: 8, Limit: 0xFFFF, Attr: attrCode}
	case mProt32:
		c.cr0 = pagewalk.CR0PE
		c.seg[CS] = Segment{Selector: 8, Limit: 0xFFFF_FFFF, Attr: attrCode | AttrDB | AttrG}
	case mCompat32, mLong:
		c.cr0 = pagewalk.CR0PE | pagewalk.CR0PG | pagewalk.CR0WP
		c.cr4 = pagewalk.CR4PAE
		c.efer = pagewalk.EFERLME | pagewalk.EFERLMA | pagewalk.EFERNXE
		c.cr3 = pml4Addr
		b.identityMap(pdeRW)
		c.seg[CS] = Segment{Selector: 8, Limit: 0xFFFF_FFFF, Attr: attrCode | AttrDB | AttrG}
		if m == mLong {
			c.seg[CS].Attr = attrCode | AttrL | AttrG
		}
	}
}

type memCheck struct {
	gpa  uint64
	size int
	val  uint64
}

type emuCase struct {
	name   string // optional: what the case is about, beyond the asm
	mode   cpuMode
	asm    string
	code   []byte
	setup  func(c *fakeCPU, b *fakeBus)
	mmio   uint64 // faulting GPA; zero runs PortIO
	maxRep int
	regs   map[int]uint64
	flags  *uint64 // expected value of the six status flags and DF
	mem    []memCheck
	log    []busOp
	exc    *Exception
	err    error
	// pending: a REP instruction stopped at its bound.
	pending bool
}

func fl(f uint64) *uint64 { return &f }

func gp0() *Exception { return &Exception{Vector: VectorGP, HasErrorCode: true} }
func ss0() *Exception { return &Exception{Vector: VectorSS, HasErrorCode: true} }
func ud() *Exception  { return &Exception{Vector: VectorUD} }
func pf(code uint32, cr2 uint64) *Exception {
	return &Exception{Vector: VectorPF, HasErrorCode: true, ErrorCode: code, CR2: cr2}
}

func runEmuCase(t *testing.T, tc emuCase) {
	t.Helper()
	c, b := &fakeCPU{}, newFakeBus()
	setupMode(c, b, tc.mode)
	for i, x := range tc.code {
		*b.ram.at(codeAddr + uint64(i)) = x
	}
	if tc.setup != nil {
		tc.setup(c, b)
	}
	startRIP := c.rip
	e := New(c, b, Config{PhysAddrBits: 40, Page1G: true, MaxRepeat: tc.maxRep})
	var res Result
	var err error
	if tc.mmio != 0 {
		res, err = e.MMIO(tc.mmio)
	} else {
		res, err = e.PortIO()
	}
	if tc.err != nil {
		if !errors.Is(err, tc.err) {
			t.Fatalf("error = %v, want %v", err, tc.err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if res.Len != len(tc.code) {
		t.Errorf("Len = %d, want %d (op %v)", res.Len, len(tc.code), res.Op)
	}
	if tc.exc != nil {
		if !res.Raised {
			t.Fatalf("no exception raised, want %+v (result %+v)", *tc.exc, res)
		}
		if diff := cmp.Diff(*tc.exc, res.Exception); diff != "" {
			t.Errorf("exception mismatch (-want +got):\n%s", diff)
		}
	} else if res.Raised {
		t.Fatalf("unexpected exception %+v", res.Exception)
	}
	wantRIP := startRIP + uint64(len(tc.code))
	if tc.exc != nil || tc.pending {
		wantRIP = startRIP
	}
	if c.rip != wantRIP {
		t.Errorf("RIP = %#x, want %#x", c.rip, wantRIP)
	}
	if wantDone := tc.exc == nil && !tc.pending; res.Done != wantDone {
		t.Errorf("Done = %v, want %v", res.Done, wantDone)
	}
	for r, want := range tc.regs {
		if got := c.gpr[r]; got != want {
			t.Errorf("GPR %d = %#x, want %#x", r, got, want)
		}
	}
	if tc.flags != nil {
		if got := c.rflags & (arithFlags | FlagDF); got != *tc.flags {
			t.Errorf("flags = %#x, want %#x", got, *tc.flags)
		}
	}
	for _, m := range tc.mem {
		if got := b.get(m.gpa, m.size); got != m.val {
			t.Errorf("memory at %#x = %#x, want %#x", m.gpa, got, m.val)
		}
	}
	if diff := cmp.Diff(tc.log, b.log); diff != "" {
		t.Errorf("bus log mismatch (-want +got):\n%s", diff)
	}
}

func caseName(tc emuCase) string {
	n := [...]string{"real", "prot16", "prot32", "compat32", "long"}[tc.mode] + "/" + tc.asm
	if tc.name != "" {
		n += "/" + tc.name
	}
	return n
}

func TestEmulate(t *testing.T) {
	for _, tc := range emuCases {
		t.Run(caseName(tc), func(t *testing.T) { runEmuCase(t, tc) })
	}
}
