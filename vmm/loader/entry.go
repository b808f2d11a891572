package loader

// Regs are the general registers, RIP and RFLAGS at entry, in vmm.Regs's
// layout (convert with vmm.Regs(st.Regs)).
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is a segment register with its hidden part, in vmm.Segment's
// layout. Attrib uses the VMCB's 12-bit packing (AMD APM vol. 2 section
// 15.5.1, "VMCB State Save Area" segment attributes): bits 3:0 type, 4 S,
// 6:5 DPL, 7 P, 8 AVL, 9 L, 10 D/B, 11 G. Limit is the byte-granular
// limit (already scaled by G).
type Segment struct {
	Selector uint16
	Attrib   uint16
	Limit    uint32
	Base     uint64
}

// DTable is a descriptor-table register, in vmm.DTable's layout.
type DTable struct {
	Base  uint64
	Limit uint16
}

// EntryState is the state of the first vCPU when the guest starts. The
// VMM applies Regs with SetRegs and the rest with SetSRegs; fields not
// named here (CR2, FS/GS bases, the IDT) are zero, interrupts are off.
type EntryState struct {
	Regs                             Regs
	CS, DS, ES, FS, GS, SS, TR, LDTR Segment
	GDT, IDT                         DTable
	CR0, CR3, CR4, EFER              uint64
}

// Control register and EFER bits (Intel SDM vol. 3A sections 2.5 and 2.2.1;
// AMD APM vol. 2 sections 3.1.1, 3.1.3 and 3.1.7).
const (
	CR0PE = 1 << 0  // protection enable
	CR0ET = 1 << 4  // extension type: always 1 on processors since the 486
	CR0NE = 1 << 5  // native x87 error reporting; VMX requires it set
	CR0PG = 1 << 31 // paging

	CR4PAE = 1 << 5 // physical address extension: required for long mode

	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active (set by the CPU when CR0.PG turns on)

	// RFLAGSFixed is RFLAGS bit 1, which always reads as 1 (SDM vol. 1
	// section 3.4.3); IF (bit 9) is clear, so interrupts are off.
	RFLAGSFixed = 1 << 1
)

// Segment attribute bits in the VMCB packing (APM vol. 2 section 15.5.1),
// the descriptor's bits 40-47 and 52-55 squeezed together.
const (
	attrTypeCodeRA = 0xB // code, execute/read, accessed (SDM vol. 3A table 3-1)
	attrTypeDataWA = 0x3 // data, read/write, accessed
	attrTypeTSS64B = 0xB // system: 64-bit TSS (busy) (SDM vol. 3A table 3-2)
	attrTypeLDT    = 0x2 // system: LDT
	attrS          = 1 << 4
	attrP          = 1 << 7
	attrL          = 1 << 9
	attrDB         = 1 << 10
	attrG          = 1 << 11
)

// Selectors of the loader's GDT. The Linux 64-bit boot protocol
// (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol") requires
// __BOOT_CS = 0x10 to be a flat execute/read code segment and __BOOT_DS =
// 0x18 a flat read/write data segment; 0x08 adds a 32-bit code segment for
// protected-mode entry, so one GDT serves every kind of guest.
const (
	SelectorCode32 = 0x08
	SelectorCode64 = 0x10 // __BOOT_CS
	SelectorData   = 0x18 // __BOOT_DS
)

// Attributes of the loader's segments.
const (
	AttribCode64 = attrG | attrL | attrP | attrS | attrTypeCodeRA  // 0xA9B
	AttribCode32 = attrG | attrDB | attrP | attrS | attrTypeCodeRA // 0xC9B
	AttribData   = attrG | attrDB | attrP | attrS | attrTypeDataWA // 0xC93
	AttribTSS    = attrP | attrTypeTSS64B                          // 0x08B
	AttribLDT    = attrP | attrTypeLDT                             // 0x082
)

// descriptor encodes a flat (base 0, limit 4 GiB with G=1) GDT entry with
// the given attributes (SDM vol. 3A section 3.4.5, figure 3-8): limit
// 15:0 and base 23:0 in the low bytes, type/S/DPL/P in byte 5, limit
// 19:16 and AVL/L/D/G in byte 6, base 31:24 in byte 7.
func descriptor(attrib uint16) uint64 {
	const limit = 0xFFFFF
	return limit&0xFFFF |
		uint64(attrib&0xFF)<<40 |
		uint64(limit>>16)<<48 |
		uint64(attrib>>8&0xF)<<52
}

// gdtBytes is the loader's GDT: null, code32, code64, data.
func gdtBytes() []byte {
	b := make([]byte, 32)
	le.PutUint64(b[SelectorCode32:], descriptor(AttribCode32))
	le.PutUint64(b[SelectorCode64:], descriptor(AttribCode64))
	le.PutUint64(b[SelectorData:], descriptor(AttribData))
	return b
}

// Page-table entry bits (SDM vol. 3A section 4.5, tables 4-15 to 4-20).
const (
	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	ptePS      = 1 << 7 // in a page-directory entry: maps a 2 MiB page
)

const (
	pageSize = 4096
	// identityMapSize is how much the loader's page tables map, 1:1, with
	// 2 MiB pages. The 64-bit Linux boot protocol needs the kernel, zero
	// page and command line mapped; Linux's decompressor then builds its
	// own tables and maps the rest on demand
	// (arch/x86/boot/compressed/ident_map_64.c), so 4 GiB covers every
	// address this loader uses.
	identityMapSize = 4 << 30
	largePage       = 2 << 20
	// pageTableBytes: one PML4, one PDPT, one page directory per GiB.
	pageTableBytes = (2 + identityMapSize>>30) * pageSize
)

// pageTables builds identity page tables for the first 4 GiB at base
// (page aligned): PML4, PDPT, then the page directories.
func pageTables(base uint64) []byte {
	b := make([]byte, pageTableBytes)
	pdpt, pd := base+pageSize, base+2*pageSize
	le.PutUint64(b[0:], pdpt|ptePresent|pteWrite)
	const gib = identityMapSize >> 30
	for i := range uint64(gib) {
		le.PutUint64(b[pageSize+8*i:], (pd+i*pageSize)|ptePresent|pteWrite)
	}
	for i := range uint64(identityMapSize / largePage) {
		le.PutUint64(b[2*pageSize+8*i:], i*largePage|ptePresent|pteWrite|ptePS)
	}
	return b
}

// flat returns a flat segment with the given selector and attributes.
func flat(sel, attrib uint16) Segment {
	return Segment{Selector: sel, Attrib: attrib, Limit: 0xFFFFFFFF}
}

// commonState fills what 32-bit and 64-bit entries share: the GDT, data
// segments, a TR and LDTR that VMX's guest-state checks accept, and
// RFLAGS with interrupts off.
func commonState(gdt uint64) EntryState {
	ds := flat(SelectorData, AttribData)
	return EntryState{
		Regs: Regs{RFLAGS: RFLAGSFixed},
		DS:   ds, ES: ds, FS: ds, GS: ds, SS: ds,
		TR:   Segment{Attrib: AttribTSS, Limit: 0xFFFF},
		LDTR: Segment{Attrib: AttribLDT, Limit: 0xFFFF},
		GDT:  DTable{Base: gdt, Limit: 32 - 1},
	}
}

// longModeState is 64-bit mode with paging through the tables at cr3.
func longModeState(gdt, cr3 uint64) EntryState {
	st := commonState(gdt)
	st.CS = flat(SelectorCode64, AttribCode64)
	st.CR0 = CR0PE | CR0ET | CR0NE | CR0PG
	st.CR3 = cr3
	st.CR4 = CR4PAE
	st.EFER = EFERLME | EFERLMA
	return st
}

// protectedModeState is 32-bit protected mode with paging off, as the
// Multiboot specification (section 3.2, "Machine state") prescribes.
func protectedModeState(gdt uint64) EntryState {
	st := commonState(gdt)
	st.CS = flat(SelectorCode32, AttribCode32)
	st.CR0 = CR0PE | CR0ET | CR0NE
	return st
}

// lowBase is where the loader starts placing its own structures: page 0
// holds the real-mode IVT and BIOS data area, which Linux reads (and which
// a null-pointer bug should not find valid data in).
const lowBase = 0x1000

// longModeSetup writes a GDT and identity page tables into low memory and
// returns the 64-bit entry state for them.
func (s *space) longModeSetup() (EntryState, error) {
	gdt, err := s.low(pageSize, pageSize, lowBase, 1<<32, "GDT")
	if err != nil {
		return EntryState{}, err
	}
	if err := s.write(gdt.Start, gdtBytes(), "GDT"); err != nil {
		return EntryState{}, err
	}
	pt, err := s.low(pageTableBytes, pageSize, lowBase, 1<<32, "page tables")
	if err != nil {
		return EntryState{}, err
	}
	if err := s.write(pt.Start, pageTables(pt.Start), "page tables"); err != nil {
		return EntryState{}, err
	}
	return longModeState(gdt.Start, pt.Start), nil
}

// protectedModeSetup writes a GDT and returns the 32-bit entry state.
func (s *space) protectedModeSetup() (EntryState, error) {
	gdt, err := s.low(pageSize, pageSize, lowBase, 1<<32, "GDT")
	if err != nil {
		return EntryState{}, err
	}
	if err := s.write(gdt.Start, gdtBytes(), "GDT"); err != nil {
		return EntryState{}, err
	}
	return protectedModeState(gdt.Start), nil
}

// stackSize is the stack the loader gives a guest. No boot protocol asks
// for one (Linux and Multiboot kernels set up their own before using it),
// but a valid RSP costs nothing and makes an early push survivable.
const stackSize = 16 << 10

func (s *space) stack() (uint64, error) {
	r, err := s.low(stackSize, pageSize, lowBase, 1<<32, "stack")
	if err != nil {
		return 0, err
	}
	return r.End, nil
}
