package emulate

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"hv/vmm/pagewalk"
)

// refFlags computes ADD/SUB results and flags from their definitions in
// Intel SDM vol 1 3.4.3.1 and appendix A with unbounded integers: CF is the
// unsigned result leaving the range, OF the signed one, AF the carry or
// borrow out of the low nibble.
func refFlags(sub bool, a, b, c uint64, size int) (uint64, uint64) {
	n := uint(8 * size)
	mod := new(big.Int).Lsh(big.NewInt(1), n)
	signed := func(v uint64) *big.Int {
		x := new(big.Int).SetUint64(v)
		if v>>(n-1)&1 == 1 {
			x.Sub(x, mod)
		}
		return x
	}
	ua, ub, uc := new(big.Int).SetUint64(a), new(big.Int).SetUint64(b), new(big.Int).SetUint64(c)
	sa, sb := signed(a), signed(b)
	var u, s *big.Int
	var nib int64
	if sub {
		u = new(big.Int).Sub(ua, ub)
		u.Sub(u, uc)
		s = new(big.Int).Sub(sa, sb)
		s.Sub(s, uc)
		nib = int64(a&15) - int64(b&15) - int64(c)
	} else {
		u = new(big.Int).Add(ua, ub)
		u.Add(u, uc)
		s = new(big.Int).Add(sa, sb)
		s.Add(s, uc)
		nib = int64(a&15) + int64(b&15) + int64(c)
	}
	res := new(big.Int).Mod(u, mod).Uint64()
	var f uint64
	if u.Sign() < 0 || u.Cmp(mod) >= 0 {
		f |= FlagCF
	}
	half := new(big.Int).Rsh(mod, 1)
	if s.Cmp(half) >= 0 || s.Cmp(new(big.Int).Neg(half)) < 0 {
		f |= FlagOF
	}
	if nib < 0 || nib > 15 {
		f |= FlagAF
	}
	if res == 0 {
		f |= FlagZF
	}
	if res>>(n-1) == 1 {
		f |= FlagSF
	}
	ones := 0
	for i := 0; i < 8; i++ {
		ones += int(res >> i & 1)
	}
	if ones%2 == 0 {
		f |= FlagPF
	}
	return res, f
}

func TestArithmeticFlags(t *testing.T) {
	check := func(a, b, c uint64, size int) {
		t.Helper()
		gr, gf := addFlags(a, b, c, size)
		wr, wf := refFlags(false, a, b, c, size)
		if gr != wr || gf != wf {
			t.Fatalf("add%d(%#x, %#x, %d) = %#x/%#x, want %#x/%#x", 8*size, a, b, c, gr, gf, wr, wf)
		}
		gr, gf = subFlags(a, b, c, size)
		wr, wf = refFlags(true, a, b, c, size)
		if gr != wr || gf != wf {
			t.Fatalf("sub%d(%#x, %#x, %d) = %#x/%#x, want %#x/%#x", 8*size, a, b, c, gr, gf, wr, wf)
		}
	}
	// Every 8-bit case, with and without carry in.
	for a := uint64(0); a < 256; a++ {
		for b := uint64(0); b < 256; b++ {
			check(a, b, 0, 1)
			check(a, b, 1, 1)
		}
	}
	// Random and edge cases for the wider sizes.
	rng := rand.New(rand.NewPCG(1, 2))
	edges := []uint64{0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
		0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ^uint64(0)}
	for _, size := range []int{2, 4, 8} {
		m := sizeMask(size)
		for _, a := range edges {
			for _, b := range edges {
				check(a&m, b&m, 0, size)
				check(a&m, b&m, 1, size)
			}
		}
		for i := 0; i < 20000; i++ {
			check(rng.Uint64()&m, rng.Uint64()&m, rng.Uint64()&1, size)
		}
	}
}

// TestEncodingsMatchAssembler re-assembles every table entry with GNU as
// and checks that the committed bytes are what the asm text means.
func TestEncodingsMatchAssembler(t *testing.T) {
	asPath, err1 := exec.LookPath("as")
	objcopy, err2 := exec.LookPath("objcopy")
	if err1 != nil || err2 != nil || testing.Short() {
		t.Skip("binutils not installed (or -short)")
	}
	dirs := map[cpuMode]string{mLong: ".code64", mCompat32: ".code32", mProt32: ".code32", mProt16: ".code16", mReal: ".code16"}
	dir := t.TempDir()
	for i, tc := range emuCases {
		src := filepath.Join(dir, "a.s")
		text := ".intel_syntax noprefix\n" + dirs[tc.mode] + "\n" + tc.asm + "\n"
		if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		obj, bin := filepath.Join(dir, "a.o"), filepath.Join(dir, "a.bin")
		if out, err := exec.Command(asPath, "-o", obj, src).CombinedOutput(); err != nil {
			t.Fatalf("case %d %q: as: %v\n%s", i, tc.asm, err, out)
		}
		if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
			t.Fatalf("objcopy: %v\n%s", err, out)
		}
		got, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, tc.code); diff != "" {
			t.Errorf("case %d %q: committed bytes differ from as (-as +table):\n%s", i, tc.asm, diff)
		}
	}
}

// TestRepResumes runs a bounded REP to completion across calls, as the
// guest re-executing the instruction would.
func TestRepResumes(t *testing.T) {
	c, b := &fakeCPU{}, newFakeBus()
	setupMode(c, b, mLong)
	code := []byte{0xf3, 0xaa} // rep stosb
	for i, x := range code {
		*b.ram.at(codeAddr + uint64(i)) = x
	}
	c.gpr[rdi], c.gpr[rcx], c.gpr[rax] = D, 10, 0x77
	e := New(c, b, Config{MaxRepeat: 4})
	var calls int
	for {
		calls++
		res, err := e.MMIO(D)
		if err != nil || res.Raised {
			t.Fatalf("call %d: %+v, %v", calls, res, err)
		}
		if res.Done {
			break
		}
		if c.rip != codeAddr {
			t.Fatalf("call %d: RIP moved to %#x before completion", calls, c.rip)
		}
	}
	if calls != 3 || c.gpr[rcx] != 0 || c.gpr[rdi] != D+10 || c.rip != codeAddr+2 || len(b.log) != 10 {
		t.Errorf("calls=%d rcx=%d rdi=%#x rip=%#x accesses=%d; want 3, 0, %#x, %#x, 10",
			calls, c.gpr[rcx], c.gpr[rdi], c.rip, len(b.log), uint64(D+10), uint64(codeAddr+2))
	}
}

// TestFetch covers instruction fetch: across pages, faults on the second
// page only when needed, CS limits, and code outside RAM.
func TestFetch(t *testing.T) {
	// mov dword ptr [rbx], 0x12345678: c7 03 78 56 34 12 (6 bytes).
	movImm := []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12}
	for _, tc := range []struct {
		name    string
		mode    cpuMode
		rip     uint64
		setup   func(c *fakeCPU, b *fakeBus)
		wantLog []busOp
		wantExc *Exception
		wantErr error
	}{
		{name: "instruction spans two pages", mode: mLong, rip: 0x1FFD,
			wantLog: []busOp{w(D, 4, 0x12345678)}},
		{name: "second page not present", mode: mLong, rip: 0x1F_FFFD,
			setup:   func(c *fakeCPU, b *fakeBus) { b.setPDE(0x20_0000, 0) },
			wantExc: pf(uint32(pagewalk.PFFetch), 0x20_0000)},
		{name: "second page not needed", mode: mLong, rip: 0x1F_FFFA,
			setup:   func(c *fakeCPU, b *fakeBus) { b.setPDE(0x20_0000, 0) },
			wantLog: []busOp{w(D, 4, 0x12345678)}},
		{name: "first page not executable", mode: mLong, rip: 0x1000,
			setup: func(c *fakeCPU, b *fakeBus) {
				b.setPDE(0, pagewalk.PteP|pagewalk.PteRW|pagewalk.PtePS|pagewalk.PteXD)
			},
			wantExc: pf(uint32(pagewalk.PFPresent|pagewalk.PFFetch), 0x1000)},
		{name: "non-canonical RIP", mode: mLong, rip: 0x0000_8000_0000_0000, wantExc: gp0()},
		{name: "CS limit cuts the instruction", mode: mProt32, rip: 0x1000,
			setup:   func(c *fakeCPU, b *fakeBus) { c.seg[CS].Limit = 0x1003 },
			wantExc: gp0()},
		{name: "IP beyond CS limit", mode: mReal, rip: 0x1000,
			setup:   func(c *fakeCPU, b *fakeBus) { c.seg[CS].Limit = 0xFFF },
			wantExc: gp0()},
		{name: "code in MMIO", mode: mProt32, rip: 0x1000,
			setup:   func(c *fakeCPU, b *fakeBus) { c.seg[CS].Base = D },
			wantErr: ErrFetch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, b := &fakeCPU{}, newFakeBus()
			setupMode(c, b, tc.mode)
			c.rip = tc.rip
			code := movImm
			if tc.mode != mLong {
				code = []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12} // same bytes: [ebx] in 32-bit mode
			}
			for i, x := range code {
				*b.ram.at(tc.rip + uint64(i)) = x
			}
			c.gpr[rbx] = D
			if tc.setup != nil {
				tc.setup(c, b)
			}
			res, err := New(c, b, Config{}).MMIO(D)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantExc != nil {
				if diff := cmp.Diff(*tc.wantExc, res.Exception); !res.Raised || diff != "" {
					t.Fatalf("raised=%v, exception mismatch (-want +got):\n%s", res.Raised, diff)
				}
				return
			}
			if res.Raised || !res.Done {
				t.Fatalf("result %+v", res)
			}
			if diff := cmp.Diff(tc.wantLog, b.log); diff != "" {
				t.Errorf("bus log (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPDPTEsFromCPU checks that a CPU that holds PAE PDPTEs is asked for
// them instead of memory.
func TestPDPTEsFromCPU(t *testing.T) {
	c, b := &fakeCPU{}, newFakeBus()
	setupMode(c, b, mProt32)
	b.identityMap(pdeRW)
	c.cr0 |= pagewalk.CR0PG
	c.cr4 = pagewalk.CR4PAE
	c.cr3 = 0x7_0000 // nothing there: the PDPTEs must come from the CPU
	var pd [4]uint64
	for i := range pd {
		pd[i] = (pml4Addr + 0x2000 + uint64(i)*0x1000) | pagewalk.PteP
	}
	cpu := &pdpteCPU{fakeCPU: c, pdptes: pd}
	copy(b.ramSlice(codeAddr, 2), []byte{0x89, 0x03}) // mov [ebx], eax
	c.gpr[rbx], c.gpr[rax] = D, 5
	res, err := New(cpu, b, Config{}).MMIO(D)
	if err != nil || !res.Done {
		t.Fatalf("%+v, %v", res, err)
	}
	if diff := cmp.Diff([]busOp{w(D, 4, 5)}, b.log); diff != "" {
		t.Errorf("bus log (-want +got):\n%s", diff)
	}
}

type pdpteCPU struct {
	*fakeCPU
	pdptes [4]uint64
}

func (c *pdpteCPU) PDPTEs() *[4]uint64 { return &c.pdptes }

func (b *fakeBus) ramSlice(gpa uint64, n int) []byte {
	b.ram.at(gpa) // creates the page
	return b.ram[gpa>>12][gpa&0xFFF : gpa&0xFFF+uint64(n)]
}

func benchSetup() (*Emulator, *fakeCPU) {
	c, b := &fakeCPU{}, newFakeBus()
	setupMode(c, b, mLong)
	copy(b.ramSlice(codeAddr, 2), []byte{0x89, 0x03}) // mov dword ptr [rbx], eax
	c.gpr[rbx] = D
	b.log = make([]busOp, 0, 16)
	return New(c, b, Config{}), c
}

func TestMMIOAllocations(t *testing.T) {
	e, c := benchSetup()
	allocs := testing.AllocsPerRun(200, func() {
		c.rip = codeAddr
		e.bus.(*fakeBus).log = e.bus.(*fakeBus).log[:0]
		if _, err := e.MMIO(D); err != nil {
			t.Fatal(err)
		}
	})
	// x86asm.Decode boxes each memory operand (an x86asm.Mem) into the
	// Args interface array: one allocation per instruction that the
	// emulator cannot avoid without its own decoder. Everything else is
	// allocation-free.
	if allocs > 1 {
		t.Errorf("MMIO store allocates %v times, want at most 1 (the decoder's)", allocs)
	}
}

func BenchmarkMMIOStore(b *testing.B) {
	e, c := benchSetup()
	bus := e.bus.(*fakeBus)
	b.ReportAllocs()
	for b.Loop() {
		c.rip = codeAddr
		bus.log = bus.log[:0]
		if _, err := e.MMIO(D); err != nil {
			b.Fatal(err)
		}
	}
}
