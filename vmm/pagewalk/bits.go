package pagewalk

// Control-register and EFER bits the walker consults.
const (
	// CR0 bits, Intel SDM vol 3A 2.5 "Control Registers"; AMD APM vol 2 3.1.1.
	CR0PE = 1 << 0  // protection enable
	CR0WP = 1 << 16 // supervisor writes honour R/W
	CR0PG = 1 << 31 // paging

	// CR4 bits, Intel SDM vol 3A 2.5; AMD APM vol 2 3.1.3.
	CR4PSE  = 1 << 4  // 4-MiB pages in 32-bit paging
	CR4PAE  = 1 << 5  // physical address extension
	CR4LA57 = 1 << 12 // 5-level paging
	CR4SMEP = 1 << 20 // supervisor-mode execution prevention
	CR4SMAP = 1 << 21 // supervisor-mode access prevention
	CR4PKE  = 1 << 22 // protection keys for user-mode pages

	// IA32_EFER bits, Intel SDM vol 3A 2.2.1 (Table 2-1); AMD APM vol 2 3.1.7.
	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active
	EFERNXE = 1 << 11 // execute-disable bit enabled

	// RFLAGSAC is the alignment-check flag; with CR4.SMAP it lets explicit
	// supervisor accesses reach user pages. Intel SDM vol 3A 4.6.1.
	RFLAGSAC = 1 << 18
)

// Paging-structure entry bits common to all modes.
// Intel SDM vol 3A 4.3 (Tables 4-4..4-6), 4.4.1 (Tables 4-8..4-11),
// 4.5.4 (Tables 4-15..4-20); AMD APM vol 2 5.3, 5.4.
const (
	PteP   = 1 << 0  // present
	PteRW  = 1 << 1  // writes allowed
	PteUS  = 1 << 2  // user-mode accesses allowed
	PtePWT = 1 << 3  // page-level write-through
	PtePCD = 1 << 4  // page-level cache disable
	PteA   = 1 << 5  // accessed
	PteD   = 1 << 6  // dirty (leaf entries only)
	PtePS  = 1 << 7  // page size (maps a page, not a table)
	PteG   = 1 << 8  // global (leaf entries only)
	PteXD  = 1 << 63 // execute-disable (PAE and long mode, EFER.NXE=1)

	// pteLargePAT is the PAT bit of an entry mapping a 2-MiB, 4-MiB or
	// 1-GiB page; it sits where the address would otherwise start.
	pteLargePAT = 1 << 12

	// pkeyShift is the first bit of the 4-bit protection key in a leaf
	// entry under 4- and 5-level paging (bits 62:59). Intel SDM vol 3A 4.6.2.
	pkeyShift = 59
)

// #PF error-code bits, Intel SDM vol 3A 4.7 (Figure 4-12); AMD APM vol 2 8.4.2.
const (
	PFPresent  ErrorCode = 1 << 0 // 0: not present, 1: protection or reserved bit
	PFWrite    ErrorCode = 1 << 1 // the access was a write
	PFUser     ErrorCode = 1 << 2 // the access was a user-mode access
	PFReserved ErrorCode = 1 << 3 // a reserved bit was set in some paging-structure entry
	PFFetch    ErrorCode = 1 << 4 // an instruction fetch, where execute protection exists
	PFProtKey  ErrorCode = 1 << 5 // protection-key violation
)

// Page sizes.
const (
	Size4K = 1 << 12
	Size2M = 1 << 21
	Size4M = 1 << 22
	Size1G = 1 << 30
)

// MaxPhysAddrBits is the architectural ceiling of MAXPHYADDR.
// Intel SDM vol 3A 4.1.4; AMD APM vol 2 5.1.
const MaxPhysAddrBits = 52

// pse36Bits is the physical-address width reachable by a 4-MiB page of
// 32-bit paging with PSE-36: bits 20:13 of the PDE hold address bits 39:32.
// Intel SDM vol 3A 4.3 (Table 4-4).
const pse36Bits = 40

// bits returns a mask of bits hi..lo inclusive; empty when hi < lo.
func bits(hi, lo uint) uint64 {
	if hi < lo {
		return 0
	}
	return (^uint64(0) >> (63 - hi)) &^ (1<<lo - 1)
}
