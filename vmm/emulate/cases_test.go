package emulate

import "hv/vmm/pagewalk"

// The instruction bytes in this table were produced by GNU as from the asm
// text (Intel syntax) and are re-checked against it by
// TestEncodingsMatchAssembler when binutils is installed.

type setupFn = func(c *fakeCPU, b *fakeBus)

// set assigns registers: set(rbx, 1, rax, 2).
func set(kv ...uint64) setupFn {
	return func(c *fakeCPU, b *fakeBus) {
		for i := 0; i+1 < len(kv); i += 2 {
			c.gpr[kv[i]] = kv[i+1]
		}
	}
}

func regs(kv ...uint64) map[int]uint64 {
	m := map[int]uint64{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[int(kv[i])] = kv[i+1]
	}
	return m
}

func all(fs ...setupFn) setupFn {
	return func(c *fakeCPU, b *fakeBus) {
		for _, f := range fs {
			f(c, b)
		}
	}
}

func putMem(gpa uint64, size int, v uint64) setupFn {
	return func(c *fakeCPU, b *fakeBus) { b.put(gpa, size, v) }
}

func seg(s SegReg, g Segment) setupFn {
	return func(c *fakeCPU, b *fakeBus) { c.seg[s] = g }
}

func flags(f uint64) setupFn {
	return func(c *fakeCPU, b *fakeBus) { c.rflags = 2 | f }
}

const (
	D  = devMMIO
	V  = vgaMMIO
	qv = 0x1122_3344_5566_7788
)

func w(a uint64, size int, v uint64) busOp { return busOp{"w", a, size, v} }
func r(a uint64, size int, v uint64) busOp { return busOp{"r", a, size, v} }
func out(p uint64, size int, v uint64) busOp {
	return busOp{"out", p, size, v}
}
func in(p uint64, size int, v uint64) busOp { return busOp{"in", p, size, v} }

var emuCases = []emuCase{
	// MOV stores, every operand size, 64-bit mode.
	{mode: mLong, asm: "mov byte ptr [rbx], al", code: []byte{0x88, 0x03}, mmio: D, setup: set(rbx, D, rax, qv),
		log: []busOp{w(D, 1, 0x88)}},
	{mode: mLong, asm: "mov byte ptr [rbx+1], ah", code: []byte{0x88, 0x63, 0x01}, mmio: D, setup: set(rbx, D, rax, qv),
		log: []busOp{w(D+1, 1, 0x77)}},
	{mode: mLong, asm: "mov byte ptr [rbx], sil", code: []byte{0x40, 0x88, 0x33}, mmio: D, setup: set(rbx, D, rsi, 0xAB),
		log: []busOp{w(D, 1, 0xAB)}},
	{mode: mLong, asm: "mov word ptr [rbx+2], ax", code: []byte{0x66, 0x89, 0x43, 0x02}, mmio: D, setup: set(rbx, D, rax, qv),
		log: []busOp{w(D+2, 2, 0x7788)}},
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: D, setup: set(rbx, D, rax, qv),
		log: []busOp{w(D, 4, 0x55667788)}},
	{mode: mLong, asm: "mov qword ptr [rbx+8], rax", code: []byte{0x48, 0x89, 0x43, 0x08}, mmio: D, setup: set(rbx, D, rax, qv),
		log: []busOp{w(D+8, 8, qv)}},
	{mode: mLong, asm: "mov dword ptr [r8+r12*4+0x10], r15d", code: []byte{0x47, 0x89, 0x7c, 0xa0, 0x10}, mmio: D, setup: set(r8, D-0x10, r12, 4, 15, 0xCAFEF00D),
		log: []busOp{w(D+0x10, 4, 0xCAFEF00D)}},
	{mode: mLong, asm: "mov byte ptr [rbx], 0x80", code: []byte{0xc6, 0x03, 0x80}, mmio: D, setup: set(rbx, D),
		log: []busOp{w(D, 1, 0x80)}},
	{mode: mLong, asm: "mov word ptr [rbx], 0x1234", code: []byte{0x66, 0xc7, 0x03, 0x34, 0x12}, mmio: D, setup: set(rbx, D),
		log: []busOp{w(D, 2, 0x1234)}},
	{mode: mLong, asm: "mov dword ptr [rbx], 0x12345678", code: []byte{0xc7, 0x03, 0x78, 0x56, 0x34, 0x12}, mmio: D, setup: set(rbx, D),
		log: []busOp{w(D, 4, 0x12345678)}},
	{mode: mLong, asm: "mov qword ptr [rbx], -2", code: []byte{0x48, 0xc7, 0x03, 0xfe, 0xff, 0xff, 0xff}, mmio: D, setup: set(rbx, D),
		name: "imm32 sign-extended to 64", log: []busOp{w(D, 8, 0xFFFF_FFFF_FFFF_FFFE)}},
	{mode: mLong, asm: "mov dword ptr [rip+0x9effa], eax", code: []byte{0x89, 0x05, 0xfa, 0xef, 0x09, 0x00}, mmio: V, setup: set(rax, 0x01020304),
		name: "RIP-relative from the next instruction", log: []busOp{w(0x1006+0x9effa, 4, 0x01020304)}},
	{mode: mLong, asm: "mov dword ptr fs:[0x10], eax", code: []byte{0x64, 0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00}, mmio: D,
		setup: all(set(rax, 7), seg(FS, Segment{Base: D})), log: []busOp{w(D+0x10, 4, 7)}},
	{mode: mLong, asm: "mov qword ptr gs:[rbx], rcx", code: []byte{0x65, 0x48, 0x89, 0x0b}, mmio: D,
		setup: all(set(rbx, 0x20, rcx, 9), seg(GS, Segment{Base: D})), log: []busOp{w(D+0x20, 8, 9)}},
	{mode: mLong, asm: "mov dword ptr ds:[rbx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "DS base ignored in 64-bit mode",
		setup: all(set(rbx, D, rax, 1), seg(DS, Segment{Base: 0x10000, Limit: 0, Attr: 0})), log: []busOp{w(D, 4, 1)}},
	{mode: mLong, asm: "mov dword ptr [ebx], eax", code: []byte{0x67, 0x89, 0x03}, mmio: D, name: "addr32 truncates the address",
		setup: set(rbx, 0xFFFF_FFFF_0000_0000|D, rax, 3), log: []busOp{w(D, 4, 3)}},

	// MOV loads.
	{mode: mLong, asm: "mov eax, dword ptr [rdi-0xa03000]", code: []byte{0x8b, 0x87, 0x00, 0xd0, 0x5f, 0xff}, mmio: D,
		name:  "disp32 sign-extended to 64 (Linux's fixmap APIC read)",
		setup: all(set(rdi, D+0xa03000+0x20), putMem(D+0x20, 4, 0x14)), regs: regs(rax, 0x14), log: []busOp{r(D+0x20, 4, 0x14)}},
	{mode: mLong, asm: "mov al, byte ptr [rbx]", code: []byte{0x8a, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, qv), putMem(D, 1, 0xEE)),
		regs:  regs(rax, 0x1122_3344_5566_77EE), log: []busOp{r(D, 1, 0xEE)}},
	{mode: mLong, asm: "mov bh, byte ptr [rbx]", code: []byte{0x8a, 0x3b}, mmio: D, name: "high byte of the base register",
		setup: all(set(rbx, D), putMem(D, 1, 0x5A)),
		regs:  regs(rbx, D|0x5A00), log: []busOp{r(D, 1, 0x5A)}},
	{mode: mLong, asm: "mov r10w, word ptr [rbx]", code: []byte{0x66, 0x44, 0x8b, 0x13}, mmio: D,
		setup: all(set(rbx, D, r10, qv), putMem(D, 2, 0xBEEF)),
		regs:  regs(r10, 0x1122_3344_5566_BEEF), log: []busOp{r(D, 2, 0xBEEF)}},
	{mode: mLong, asm: "mov r9d, dword ptr [rbx]", code: []byte{0x44, 0x8b, 0x0b}, mmio: D, name: "32-bit load zero-extends",
		setup: all(set(rbx, D, r9, ^uint64(0)), putMem(D, 4, 0x89ABCDEF)),
		regs:  regs(r9, 0x89ABCDEF), log: []busOp{r(D, 4, 0x89ABCDEF)}},
	{mode: mLong, asm: "mov rdx, qword ptr [rbx+rcx*8]", code: []byte{0x48, 0x8b, 0x14, 0xcb}, mmio: D,
		setup: all(set(rbx, D, rcx, 2), putMem(D+16, 8, qv)),
		regs:  regs(rdx, qv), log: []busOp{r(D+16, 8, qv)}},

	// moffs forms A0-A3.
	{mode: mLong, asm: "movabs al, byte ptr ds:0xE0000040", code: []byte{0xa0, 0x40, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00}, mmio: D,
		setup: putMem(D+0x40, 1, 0x42), regs: regs(rax, 0x42), log: []busOp{r(D+0x40, 1, 0x42)}},
	{mode: mLong, asm: "movabs eax, dword ptr ds:0xE0000040", code: []byte{0xa1, 0x40, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00}, mmio: D,
		setup: all(set(rax, ^uint64(0)), putMem(D+0x40, 4, 0xDEADBEEF)), regs: regs(rax, 0xDEADBEEF),
		log: []busOp{r(D+0x40, 4, 0xDEADBEEF)}},
	{mode: mLong, asm: "movabs word ptr ds:0xE0000040, ax", code: []byte{0x66, 0xa3, 0x40, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00}, mmio: D,
		setup: set(rax, qv), log: []busOp{w(D+0x40, 2, 0x7788)}},
	{mode: mLong, asm: "movabs qword ptr ds:0xE0000040, rax", code: []byte{0x48, 0xa3, 0x40, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00}, mmio: D,
		setup: set(rax, qv), log: []busOp{w(D+0x40, 8, qv)}},

	// MOVZX, MOVSX, MOVSXD.
	{mode: mLong, asm: "movzx eax, byte ptr [rbx]", code: []byte{0x0f, 0xb6, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, qv), putMem(D, 1, 0x80)), regs: regs(rax, 0x80), log: []busOp{r(D, 1, 0x80)}},
	{mode: mLong, asm: "movzx rax, word ptr [rbx]", code: []byte{0x48, 0x0f, 0xb7, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, qv), putMem(D, 2, 0x8001)), regs: regs(rax, 0x8001), log: []busOp{r(D, 2, 0x8001)}},
	{mode: mLong, asm: "movzx cx, byte ptr [rbx]", code: []byte{0x66, 0x0f, 0xb6, 0x0b}, mmio: D,
		setup: all(set(rbx, D, rcx, qv), putMem(D, 1, 0xF0)), regs: regs(rcx, 0x1122_3344_5566_00F0), log: []busOp{r(D, 1, 0xF0)}},
	{mode: mLong, asm: "movsx ecx, byte ptr [rbx]", code: []byte{0x0f, 0xbe, 0x0b}, mmio: D,
		setup: all(set(rbx, D, rcx, qv), putMem(D, 1, 0x80)), regs: regs(rcx, 0xFFFF_FF80), log: []busOp{r(D, 1, 0x80)}},
	{mode: mLong, asm: "movsx rcx, word ptr [rbx]", code: []byte{0x48, 0x0f, 0xbf, 0x0b}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 2, 0x8000)), regs: regs(rcx, 0xFFFF_FFFF_FFFF_8000), log: []busOp{r(D, 2, 0x8000)}},
	{mode: mLong, asm: "movsxd rdx, dword ptr [rbx]", code: []byte{0x48, 0x63, 0x13}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 4, 0x8000_0000)), regs: regs(rdx, 0xFFFF_FFFF_8000_0000), log: []busOp{r(D, 4, 0x8000_0000)}},

	// ALU with a memory operand; flags exact.
	{mode: mLong, asm: "add dword ptr [rbx], eax", code: []byte{0x01, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, 1), putMem(D, 4, 0x7FFF_FFFF)),
		flags: fl(FlagOF | FlagSF | FlagAF | FlagPF),
		log:   []busOp{r(D, 4, 0x7FFF_FFFF), w(D, 4, 0x8000_0000)}},
	{mode: mLong, asm: "add byte ptr [rbx], 1", code: []byte{0x80, 0x03, 0x01}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 1, 0xFF)),
		flags: fl(FlagCF | FlagZF | FlagAF | FlagPF),
		log:   []busOp{r(D, 1, 0xFF), w(D, 1, 0)}},
	{mode: mLong, asm: "add rax, qword ptr [rbx]", code: []byte{0x48, 0x03, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, 0x8000_0000_0000_0000), putMem(D, 8, 0x8000_0000_0000_0000)),
		regs:  regs(rax, 0), flags: fl(FlagCF | FlagZF | FlagOF | FlagPF),
		log: []busOp{r(D, 8, 0x8000_0000_0000_0000)}},
	{mode: mLong, asm: "adc word ptr [rbx], 0x10", code: []byte{0x66, 0x83, 0x13, 0x10}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 2, 0xFFEF), flags(FlagCF)),
		flags: fl(FlagCF | FlagZF | FlagAF | FlagPF),
		log:   []busOp{r(D, 2, 0xFFEF), w(D, 2, 0)}},
	{mode: mLong, asm: "sub dword ptr [rbx], 1", code: []byte{0x83, 0x2b, 0x01}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 4, 0)),
		flags: fl(FlagCF | FlagSF | FlagAF | FlagPF),
		log:   []busOp{r(D, 4, 0), w(D, 4, 0xFFFF_FFFF)}},
	{mode: mLong, asm: "sbb qword ptr [rbx], rcx", code: []byte{0x48, 0x19, 0x0b}, mmio: D,
		setup: all(set(rbx, D, rcx, 0x7FFF_FFFF_FFFF_FFFF), putMem(D, 8, 0x8000_0000_0000_0000), flags(FlagCF)),
		flags: fl(FlagOF | FlagAF | FlagZF | FlagPF),
		log:   []busOp{r(D, 8, 0x8000_0000_0000_0000), w(D, 8, 0)}},
	{mode: mLong, asm: "cmp dword ptr [rbx], 5", code: []byte{0x83, 0x3b, 0x05}, mmio: D, name: "compare writes nothing",
		setup: all(set(rbx, D), putMem(D, 4, 5), flags(FlagCF|FlagSF|FlagDF)),
		flags: fl(FlagZF | FlagPF | FlagDF), log: []busOp{r(D, 4, 5)}},
	{mode: mLong, asm: "cmp eax, dword ptr [rbx]", code: []byte{0x3b, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, 3), putMem(D, 4, 4)),
		regs:  regs(rax, 3), flags: fl(FlagCF | FlagSF | FlagAF | FlagPF), log: []busOp{r(D, 4, 4)}},
	{mode: mLong, asm: "test byte ptr [rbx], 0x80", code: []byte{0xf6, 0x03, 0x80}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 1, 0x81), flags(FlagCF|FlagOF)),
		flags: fl(FlagSF), log: []busOp{r(D, 1, 0x81)}},
	{mode: mLong, asm: "test dword ptr [rbx], eax", code: []byte{0x85, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, 0xF0), putMem(D, 4, 0x0F)),
		flags: fl(FlagZF | FlagPF), log: []busOp{r(D, 4, 0x0F)}},
	{mode: mLong, asm: "and qword ptr [rbx], -16", code: []byte{0x48, 0x83, 0x23, 0xf0}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 8, 0x1234_5678_9ABC_DEFF)),
		flags: fl(FlagPF), log: []busOp{r(D, 8, 0x1234_5678_9ABC_DEFF), w(D, 8, 0x1234_5678_9ABC_DEF0)}},
	{mode: mLong, asm: "or word ptr [rbx], 0x8000", code: []byte{0x66, 0x81, 0x0b, 0x00, 0x80}, mmio: D,
		setup: all(set(rbx, D), putMem(D, 2, 1)),
		flags: fl(FlagSF), log: []busOp{r(D, 2, 1), w(D, 2, 0x8001)}},
	{mode: mLong, asm: "xor dword ptr [rbx], ecx", code: []byte{0x31, 0x0b}, mmio: D,
		setup: all(set(rbx, D, rcx, 0xFF), putMem(D, 4, 0xFF)),
		flags: fl(FlagZF | FlagPF), log: []busOp{r(D, 4, 0xFF), w(D, 4, 0)}},
	{mode: mLong, asm: "or r8b, byte ptr [rbx]", code: []byte{0x44, 0x0a, 0x03}, mmio: D,
		setup: all(set(rbx, D, r8, 0x100), putMem(D, 1, 3)),
		regs:  regs(r8, 0x103), flags: fl(FlagPF), log: []busOp{r(D, 1, 3)}},
	{mode: mLong, asm: "lock or dword ptr [rbx], 1", code: []byte{0xf0, 0x83, 0x0b, 0x01}, mmio: D, name: "LOCK allowed on a memory destination",
		setup: all(set(rbx, D), putMem(D, 4, 0x10)), flags: fl(FlagPF),
		log: []busOp{r(D, 4, 0x10), w(D, 4, 0x11)}},

	// XCHG.
	{mode: mLong, asm: "xchg dword ptr [rbx], ecx", code: []byte{0x87, 0x0b}, mmio: D,
		setup: all(set(rbx, D, rcx, 0xAAAA_0000_1111_2222), putMem(D, 4, 0x3333_4444)),
		regs:  regs(rcx, 0x3333_4444), log: []busOp{r(D, 4, 0x3333_4444), w(D, 4, 0x1111_2222)}},
	{mode: mLong, asm: "xchg qword ptr [rbx], rax", code: []byte{0x48, 0x87, 0x03}, mmio: D,
		setup: all(set(rbx, D, rax, 1), putMem(D, 8, 2)),
		regs:  regs(rax, 2), log: []busOp{r(D, 8, 2), w(D, 8, 1)}},

	// Invalid LOCK, unsupported instructions.
	{mode: mLong, asm: ".byte 0xf0; mov dword ptr [rbx], eax", code: []byte{0xf0, 0x89, 0x03}, mmio: D, setup: set(rbx, D), exc: ud()},
	{mode: mLong, asm: ".byte 0xf0; cmp dword ptr [rbx], eax", code: []byte{0xf0, 0x39, 0x03}, mmio: D, setup: set(rbx, D), exc: ud()},
	{mode: mLong, asm: "push qword ptr [rbx]", code: []byte{0xff, 0x33}, mmio: D, setup: set(rbx, D), err: ErrUnsupported},
	{mode: mLong, asm: "cmpsb", code: []byte{0xa6}, mmio: D, err: ErrUnsupported},
	{mode: mLong, asm: "movdqa xmm0, xmmword ptr [rbx]", code: []byte{0x66, 0x0f, 0x6f, 0x03}, mmio: D, err: ErrUnsupported},
	{mode: mLong, asm: "mov ds, word ptr [rbx]", code: []byte{0x8e, 0x1b}, mmio: D, err: ErrUnsupported},
	{mode: mLong, asm: "add eax, ecx", code: []byte{0x01, 0xc8}, mmio: D, name: "no memory operand", err: ErrUnsupported},

	// String instructions to and from MMIO.
	{mode: mLong, asm: "rep movsb", code: []byte{0xf3, 0xa4}, mmio: D,
		setup: all(set(rsi, dataAddr, rdi, D, rcx, 3), putMem(dataAddr, 4, 0x44332211)),
		regs:  regs(rsi, dataAddr+3, rdi, D+3, rcx, 0),
		log:   []busOp{w(D, 1, 0x11), w(D+1, 1, 0x22), w(D+2, 1, 0x33)}},
	{mode: mLong, asm: "rep movsd", code: []byte{0xf3, 0xa5}, mmio: D, name: "MMIO to RAM",
		setup: all(set(rsi, D, rdi, dataAddr, rcx, 2), putMem(D, 8, qv)),
		regs:  regs(rsi, D+8, rdi, dataAddr+8, rcx, 0), mem: []memCheck{{dataAddr, 8, qv}},
		log: []busOp{r(D, 4, 0x55667788), r(D+4, 4, 0x11223344)}},
	{mode: mLong, asm: "movsq", code: []byte{0x48, 0xa5}, mmio: D,
		setup: all(set(rsi, dataAddr, rdi, D, rcx, 5), putMem(dataAddr, 8, qv)),
		regs:  regs(rsi, dataAddr+8, rdi, D+8, rcx, 5), log: []busOp{w(D, 8, qv)}},
	{mode: mLong, asm: "rep movsw", code: []byte{0x66, 0xf3, 0xa5}, mmio: D, name: "DF=1 walks down",
		setup: all(set(rsi, dataAddr+2, rdi, D+2, rcx, 2), putMem(dataAddr, 4, 0xBBBBAAAA), flags(FlagDF)),
		regs:  regs(rsi, dataAddr-2, rdi, D-2, rcx, 0),
		log:   []busOp{w(D+2, 2, 0xBBBB), w(D, 2, 0xAAAA)}},
	{mode: mLong, asm: "rep movsb", code: []byte{0xf3, 0xa4}, mmio: D, name: "bounded iterations", maxRep: 2, pending: true,
		setup: all(set(rsi, dataAddr, rdi, D, rcx, 5), putMem(dataAddr, 4, 0x44332211)),
		regs:  regs(rsi, dataAddr+2, rdi, D+2, rcx, 3),
		log:   []busOp{w(D, 1, 0x11), w(D+1, 1, 0x22)}},
	{mode: mLong, asm: "rep movsb", code: []byte{0xf3, 0xa4}, mmio: D, name: "zero count does nothing",
		setup: set(rsi, dataAddr, rdi, D, rcx, 0), regs: regs(rsi, dataAddr, rdi, D, rcx, 0)},
	{mode: mLong, asm: "rep movsb byte ptr es:[edi], byte ptr fs:[esi]", code: []byte{0x64, 0x67, 0xf3, 0xa4}, mmio: D, name: "addr32 and FS source",
		setup: all(set(rsi, 0xFFFF_0000_0000_0010, rdi, 0xAAAA_0000_0000_0000|D, rcx, 0xFFFF_FFFF_0000_0001),
			seg(FS, Segment{Base: dataAddr}), putMem(dataAddr+0x10, 1, 0x5C)),
		regs: regs(rsi, 0x11, rdi, D+1, rcx, 0),
		log:  []busOp{w(D, 1, 0x5C)}},
	{mode: mLong, asm: "rep stosd", code: []byte{0xf3, 0xab}, mmio: D,
		setup: set(rdi, D, rcx, 2, rax, qv), regs: regs(rdi, D+8, rcx, 0),
		log: []busOp{w(D, 4, 0x55667788), w(D+4, 4, 0x55667788)}},
	{mode: mLong, asm: "stosq", code: []byte{0x48, 0xab}, mmio: D,
		setup: set(rdi, D, rax, qv), regs: regs(rdi, D+8), log: []busOp{w(D, 8, qv)}},
	{mode: mLong, asm: "lodsb", code: []byte{0xac}, mmio: D,
		setup: all(set(rsi, D, rax, qv), putMem(D, 1, 0x99)), regs: regs(rsi, D+1, rax, 0x1122_3344_5566_7799),
		log: []busOp{r(D, 1, 0x99)}},
	{mode: mLong, asm: "rep lodsd", code: []byte{0xf3, 0xad}, mmio: D,
		setup: all(set(rsi, D, rcx, 2, rax, qv), putMem(D, 8, 0x0000_0002_0000_0001)),
		regs:  regs(rsi, D+8, rcx, 0, rax, 2), log: []busOp{r(D, 4, 1), r(D+4, 4, 2)}},

	// Port I/O.
	{mode: mLong, asm: "rep outsb", code: []byte{0xf3, 0x6e},
		setup: all(set(rsi, dataAddr, rdx, 0x3F8, rcx, 2), putMem(dataAddr, 2, 0x6968)),
		regs:  regs(rsi, dataAddr+2, rcx, 0), log: []busOp{out(0x3F8, 1, 0x68), out(0x3F8, 1, 0x69)}},
	{mode: mLong, asm: "rep insw", code: []byte{0x66, 0xf3, 0x6d},
		setup: set(rdi, dataAddr, rdx, 0x1F0, rcx, 2),
		regs:  regs(rdi, dataAddr+4, rcx, 0), mem: []memCheck{{dataAddr, 4, 0x3345_3344}},
		log: []busOp{in(0x1F0, 2, 0x3344), in(0x1F0, 2, 0x3345)}},
	{mode: mLong, asm: "insd", code: []byte{0x6d}, name: "INS into MMIO",
		setup: set(rdi, D, rdx, 0x1F0), regs: regs(rdi, D+4),
		log: []busOp{in(0x1F0, 4, 0x11223344), w(D, 4, 0x11223344)}},
	{mode: mLong, asm: "outs dx, dword ptr fs:[rsi]", code: []byte{0x64, 0x6f},
		setup: all(set(rsi, 0x10, rdx, 0xCF8), seg(FS, Segment{Base: dataAddr}), putMem(dataAddr+0x10, 4, 0x8000_0000)),
		regs:  regs(rsi, 0x14), log: []busOp{out(0xCF8, 4, 0x8000_0000)}},
	{mode: mLong, asm: "in al, 0x60", code: []byte{0xe4, 0x60}, setup: set(rax, qv),
		regs: regs(rax, 0x1122_3344_5566_7744), log: []busOp{in(0x60, 1, 0x44)}},
	{mode: mLong, asm: "in eax, dx", code: []byte{0xed}, setup: set(rax, qv, rdx, 0xCFC),
		regs: regs(rax, 0x11223344), log: []busOp{in(0xCFC, 4, 0x11223344)}},
	{mode: mLong, asm: "out dx, ax", code: []byte{0x66, 0xef}, setup: set(rax, qv, rdx, 0x1234_0064),
		log: []busOp{out(0x64, 2, 0x7788)}},
	{mode: mLong, asm: "out 0x80, al", code: []byte{0xe6, 0x80}, setup: set(rax, 0x55), log: []busOp{out(0x80, 1, 0x55)}},
	{mode: mLong, asm: "in al, dx", code: []byte{0xec}, setup: set(rdx, 0xDEAD), name: "device error", err: errPortFake},

	// Faults in 64-bit mode.
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "non-canonical",
		setup: set(rbx, 0x0000_8000_0000_0000), exc: gp0()},
	{mode: mLong, asm: "mov dword ptr [rbp], eax", code: []byte{0x89, 0x45, 0x00}, mmio: D, name: "non-canonical through SS",
		setup: set(rbp, 0x0000_8000_0000_0000), exc: ss0()},
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "user access to a supervisor page",
		setup: all(set(rbx, D), seg(SS, Segment{Attr: attrData | 3<<AttrDPLShift}), func(c *fakeCPU, b *fakeBus) {
			b.identityMap(pdeRW | pagewalk.PteUS)
			b.setPDE(D, D|pagewalk.PtePS|pdeRW)
		}),
		exc: pf(0x7, D)},
	{mode: mLong, asm: "mov eax, dword ptr [rbx]", code: []byte{0x8b, 0x03}, mmio: D, name: "not present",
		setup: all(set(rbx, D), func(c *fakeCPU, b *fakeBus) { b.setPDE(D, 0) }), exc: pf(0x0, D)},
	{mode: mLong, asm: "mov eax, dword ptr [rbx]", code: []byte{0x8b, 0x03}, mmio: D, name: "alignment check",
		setup: all(set(rbx, D+1), flags(FlagAC), seg(SS, Segment{Attr: attrData | 3<<AttrDPLShift}),
			func(c *fakeCPU, b *fakeBus) {
				c.cr0 |= CR0AM
				b.identityMap(pdeRW | pagewalk.PteUS)
			}),
		exc: &Exception{Vector: VectorAC, HasErrorCode: true}},
	{mode: mLong, asm: "rep movsb", code: []byte{0xf3, 0xa4}, mmio: D, name: "fault mid-REP keeps progress",
		setup: all(set(rsi, 0x3F_FFFE, rdi, D, rcx, 4), func(c *fakeCPU, b *fakeBus) {
			b.setPDE(0x40_0000, 0)
			b.put(0x3F_FFFE, 2, 0xBBAA)
		}),
		regs: regs(rsi, 0x40_0000, rdi, D+2, rcx, 2), exc: pf(0x0, 0x40_0000),
		log: []busOp{w(D, 1, 0xAA), w(D+1, 1, 0xBB)}},
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "split across pages, both MMIO",
		setup: set(rbx, D+0xFFE, rax, 0xAABBCCDD),
		log:   []busOp{w(D+0xFFE, 2, 0xCCDD), w(D+0x1000, 2, 0xAABB)}},
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "3+1 split MMIO",
		setup: set(rbx, D+0xFFD), err: ErrUnsupported},
	{mode: mLong, asm: "mov dword ptr [rbx], eax", code: []byte{0x89, 0x03}, mmio: 0xF000_0000, name: "neither RAM nor MMIO",
		setup: set(rbx, 0xF000_0000), err: errNoDevice},

	// Compatibility mode: segment bases apply again.
	{mode: mCompat32, asm: "mov dword ptr [ebx], eax", code: []byte{0x89, 0x03}, mmio: D,
		setup: all(set(rbx, 0x100, rax, 0x12345678), seg(DS, Segment{Base: D, Limit: 0xFFFF_FFFF, Attr: attrData | AttrDB | AttrG})),
		log:   []busOp{w(D+0x100, 4, 0x12345678)}},
	{mode: mCompat32, asm: "rep stosw", code: []byte{0x66, 0xf3, 0xab}, mmio: D,
		setup: set(rdi, D, rcx, 0xFFFF_FFFF_0000_0002, rax, 0xABCD),
		regs:  regs(rdi, D+4, rcx, 0), log: []busOp{w(D, 2, 0xABCD), w(D+2, 2, 0xABCD)}},

	// 32-bit protected mode, paging off.
	{mode: mProt32, asm: "mov dword ptr [ebx], eax", code: []byte{0x89, 0x03}, mmio: D, setup: set(rbx, D, rax, 0xFEEDFACE),
		log: []busOp{w(D, 4, 0xFEEDFACE)}},
	{mode: mProt32, asm: "mov ax, word ptr [ebx+esi*2-4]", code: []byte{0x66, 0x8b, 0x44, 0x73, 0xfc}, mmio: D,
		setup: all(set(rbx, D, rsi, 2, rax, 0xFFFF_FFFF), putMem(D, 2, 0x1234)),
		regs:  regs(rax, 0xFFFF_1234), log: []busOp{r(D, 2, 0x1234)}},
	{mode: mProt32, asm: "mov byte ptr es:[edi], 0x7F", code: []byte{0x26, 0xc6, 0x07, 0x7f}, mmio: D,
		setup: all(set(rdi, 0x10), seg(ES, Segment{Base: D, Limit: 0xFF, Attr: attrData})),
		log:   []busOp{w(D+0x10, 1, 0x7F)}},
	{mode: mProt32, asm: "mov eax, dword ptr cs:[ebx]", code: []byte{0x2e, 0x8b, 0x03}, mmio: D, name: "readable code segment",
		setup: all(set(rbx, D), putMem(D, 4, 9)), regs: regs(rax, 9), log: []busOp{r(D, 4, 9)}},
	{mode: mProt32, asm: "mov dword ptr cs:[ebx], eax", code: []byte{0x2e, 0x89, 0x03}, mmio: D, name: "code segments are not writable",
		setup: set(rbx, D), exc: gp0()},
	{mode: mProt32, asm: "mov dword ptr [ebx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "read-only data segment",
		setup: all(set(rbx, D), seg(DS, Segment{Limit: 0xFFFF_FFFF, Attr: AttrP | AttrS | AttrDB | AttrG})), exc: gp0()},
	{mode: mProt32, asm: "mov dword ptr [ebx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "null DS",
		setup: all(set(rbx, D), seg(DS, Segment{})), exc: gp0()},
	{mode: mProt32, asm: "mov dword ptr [ebx], eax", code: []byte{0x89, 0x03}, mmio: D, name: "limit",
		setup: all(set(rbx, 0xFFD), seg(DS, Segment{Base: D, Limit: 0xFFF, Attr: attrData})), exc: gp0()},
	{mode: mProt32, asm: "mov eax, dword ptr [ebp]", code: []byte{0x8b, 0x45, 0x00}, mmio: D, name: "SS limit gives #SS",
		setup: all(set(rbp, 0x1000), seg(SS, Segment{Base: D, Limit: 0xFFF, Attr: attrData})), exc: ss0()},
	{mode: mProt32, asm: "mov eax, dword ptr [ebx]", code: []byte{0x8b, 0x03}, mmio: D, name: "expand-down in range",
		setup: all(set(rbx, 0x1000), seg(DS, Segment{Base: D - 0x1000, Limit: 0xFFF, Attr: attrData | AttrExpDown | AttrDB}),
			putMem(D, 4, 1)),
		regs: regs(rax, 1), log: []busOp{r(D, 4, 1)}},
	{mode: mProt32, asm: "mov eax, dword ptr [ebx]", code: []byte{0x8b, 0x03}, mmio: D, name: "expand-down below the limit",
		setup: all(set(rbx, 0xFFF), seg(DS, Segment{Base: D - 0x1000, Limit: 0xFFF, Attr: attrData | AttrExpDown | AttrDB})),
		exc:   gp0()},
	{mode: mProt32, asm: "rep movsb byte ptr es:[di], byte ptr [si]", code: []byte{0x67, 0xf3, 0xa4}, mmio: D, name: "addr16 wraps SI",
		setup: all(set(rsi, 0xAAAA_FFFF, rdi, 0x10, rcx, 0xAAAA_0002),
			seg(ES, Segment{Base: D, Limit: 0xFFFF_FFFF, Attr: attrData | AttrDB | AttrG}),
			putMem(0xFFFF, 1, 0x01), putMem(0, 1, 0x02)),
		regs: regs(rsi, 0xAAAA_0001, rdi, 0x12, rcx, 0xAAAA_0000),
		log:  []busOp{w(D+0x10, 1, 1), w(D+0x11, 1, 2)}},
	{mode: mProt32, asm: "rep stosb", code: []byte{0xf3, 0xaa}, mmio: D, name: "PAE paging, destination not present",
		setup: func(c *fakeCPU, b *fakeBus) {
			c.cr0 |= pagewalk.CR0PG
			c.cr4 = pagewalk.CR4PAE
			c.cr3 = pml4Addr + 0x1000 // reuse the identity PDPT as a PAE PDPT
			b.identityMap(pdeRW)
			b.put64(pml4Addr+0x1000+8*3, (pml4Addr+0x2000+3*0x1000)|pagewalk.PteP)
			for i := uint64(0); i < 3; i++ {
				b.put64(pml4Addr+0x1000+8*i, (pml4Addr+0x2000+i*0x1000)|pagewalk.PteP)
			}
			b.setPDE(D+0x200000, 0)
			c.gpr[rdi], c.gpr[rcx], c.gpr[rax] = D+0x1FFFFF, 3, 0x5A
		},
		regs: regs(rdi, D+0x200000, rcx, 2), exc: pf(0x2, D+0x200000), log: []busOp{w(D+0x1FFFFF, 1, 0x5A)}},

	// 16-bit protected mode.
	{mode: mProt16, asm: "mov word ptr [bx+si+4], ax", code: []byte{0x89, 0x40, 0x04}, mmio: D,
		setup: all(set(rbx, 0x10, rsi, 0x20, rax, 0xBEEF), seg(DS, Segment{Base: D, Limit: 0xFFFF, Attr: attrData})),
		log:   []busOp{w(D+0x34, 2, 0xBEEF)}},
	{mode: mProt16, asm: "mov dword ptr [bx], eax", code: []byte{0x66, 0x89, 0x07}, mmio: D, name: "operand-size prefix",
		setup: all(set(rbx, 0x10, rax, 0xCAFEBABE), seg(DS, Segment{Base: D, Limit: 0xFFFF, Attr: attrData})),
		log:   []busOp{w(D+0x10, 4, 0xCAFEBABE)}},

	// Real mode.
	{mode: mReal, asm: "mov word ptr [bx+si+4], ax", code: []byte{0x89, 0x40, 0x04}, mmio: V,
		setup: all(set(rbx, 0x10, rsi, 0x20, rax, 0xBEEF), seg(DS, Segment{Selector: 0xA000, Base: V, Limit: 0xFFFF, Attr: attrData})),
		log:   []busOp{w(V+0x34, 2, 0xBEEF)}},
	{mode: mReal, asm: "mov al, byte ptr [bp+2]", code: []byte{0x8a, 0x46, 0x02}, mmio: V, name: "BP defaults to SS",
		setup: all(set(rbp, 0x10), seg(SS, Segment{Selector: 0xB000, Base: 0xB0000, Limit: 0xFFFF, Attr: attrData}),
			putMem(0xB0012, 1, 0x3C)),
		regs: regs(rax, 0x3C), log: []busOp{r(0xB0012, 1, 0x3C)}},
	{mode: mReal, asm: "mov ax, word ptr es:0x10", code: []byte{0x26, 0xa1, 0x10, 0x00}, mmio: V, name: "moffs16 with ES",
		setup: all(seg(ES, Segment{Selector: 0xA000, Base: V, Limit: 0xFFFF, Attr: attrData}), putMem(V+0x10, 2, 0x4321)),
		regs:  regs(rax, 0x4321), log: []busOp{r(V+0x10, 2, 0x4321)}},
	{mode: mReal, asm: "mov dword ptr [ebx+0x10], eax", code: []byte{0x67, 0x66, 0x89, 0x43, 0x10}, mmio: V, name: "unreal-mode limit, both size prefixes",
		setup: all(set(rbx, V, rax, 0x01020304), seg(DS, Segment{Limit: 0xFFFF_FFFF, Attr: attrData})),
		log:   []busOp{w(V+0x10, 4, 0x01020304)}},
	{mode: mReal, asm: "mov word ptr [bx], ax", code: []byte{0x89, 0x07}, mmio: V, name: "offset past the 64 KiB limit",
		setup: all(set(rbx, 0xFFFF), seg(DS, Segment{Selector: 0xA000, Base: V, Limit: 0xFFFF, Attr: attrData})), exc: gp0()},
	{mode: mReal, asm: "rep insw", code: []byte{0xf3, 0x6d}, name: "DI wraps at 64 KiB",
		setup: all(set(rdi, 0xFFFE, rdx, 0x1F0, rcx, 2), seg(ES, Segment{Selector: 0x1000, Base: 0x10000, Limit: 0xFFFF, Attr: attrData})),
		regs:  regs(rdi, 0x0002, rcx, 0), mem: []memCheck{{0x1FFFE, 2, 0x3344}, {0x10000, 2, 0x3345}},
		log: []busOp{in(0x1F0, 2, 0x3344), in(0x1F0, 2, 0x3345)}},
	{mode: mReal, asm: "rep outs dx, byte ptr ss:[si]", code: []byte{0x36, 0xf3, 0x6e}, name: "SS override on the source",
		setup: all(set(rsi, 0x5, rdx, 0xE9, rcx, 1), seg(SS, Segment{Base: 0x20000, Limit: 0xFFFF, Attr: attrData}),
			putMem(0x20005, 1, 0x41)),
		regs: regs(rsi, 6, rcx, 0), log: []busOp{out(0xE9, 1, 0x41)}},
}
