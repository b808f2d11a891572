package vmx

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Perm is the access a guest-physical mapping allows: bits 2:0 of an EPT
// entry (read, write, execute) plus PermUserExecute, which is bit 10 of the
// entry when mode-based execute control is on (SDM 29.3.2).
type Perm uint8

// Permissions.
const (
	PermRead        Perm = 1 << 0
	PermWrite       Perm = 1 << 1
	PermExecute     Perm = 1 << 2 // supervisor-mode execute under MBEC
	PermUserExecute Perm = 1 << 3
	PermRW               = PermRead | PermWrite
	PermRWX              = PermRead | PermWrite | PermExecute
)

func (p Perm) String() string {
	b := []byte("---")
	if p&PermRead != 0 {
		b[0] = 'r'
	}
	if p&PermWrite != 0 {
		b[1] = 'w'
	}
	if p&PermExecute != 0 {
		b[2] = 'x'
	}
	if p&PermUserExecute != 0 {
		b = append(b, 'u')
	}
	return string(b)
}

// MemType is an EPT or EPTP memory type, SDM 29.3.7 and Vol. 3A 12.3.
type MemType uint8

// Memory types valid in EPT entries (2, 3 and 7 are reserved and cause EPT
// misconfigurations).
const (
	MemUC MemType = 0
	MemWC MemType = 1
	MemWT MemType = 4
	MemWP MemType = 5
	MemWB MemType = 6
)

func (m MemType) valid() bool {
	return m == MemUC || m == MemWC || m == MemWT || m == MemWP || m == MemWB
}

// EPT paging-structure entry bits, SDM 29.3.2 Tables 29-1 to 29-6.
const (
	EPTRead         uint64 = 1 << 0
	EPTWrite        uint64 = 1 << 1
	EPTExecute      uint64 = 1 << 2
	EPTMemTypeShift        = 3 // bits 5:3, leaf entries only
	EPTIgnorePAT    uint64 = 1 << 6
	EPTLargePage    uint64 = 1 << 7 // PDPTE: 1 GiB page; PDE: 2 MiB page
	EPTAccessed     uint64 = 1 << 8
	EPTDirty        uint64 = 1 << 9
	EPTUserExecute  uint64 = 1 << 10
	EPTSuppressVE   uint64 = 1 << 63
	EPTAddrMask     uint64 = 0x000F_FFFF_FFFF_F000 // bits 51:12; bits above MAXPHYADDR must be 0
)

// EPTP fields, SDM 25.6.11 Table 25-9.
const (
	EPTPMemTypeMask   uint64 = 7      // bits 2:0: 0 UC or 6 WB
	EPTPWalkShift            = 3      // bits 5:3: page-walk length minus 1
	EPTPAccessedDirty uint64 = 1 << 6 // enable A/D flags
	EPTPSupShadow     uint64 = 1 << 7 // supervisor shadow-stack access rights
)

// INVEPT types, SDM 31.3 (INVEPT).
const (
	INVEPTSingleContext uint64 = 1
	INVEPTGlobal        uint64 = 2
)

// INVVPID types, SDM 31.3 (INVVPID).
const (
	INVVPIDIndividualAddr          uint64 = 0
	INVVPIDSingleContext           uint64 = 1
	INVVPIDAllContext              uint64 = 2
	INVVPIDSingleContextKeepGlobal uint64 = 3
)

// INVEPTDescriptor is the 128-bit memory operand of INVEPT: the EPTP, then
// 64 reserved bits.
func INVEPTDescriptor(eptp uint64) [2]uint64 { return [2]uint64{eptp, 0} }

// INVVPIDDescriptor is the 128-bit memory operand of INVVPID: VPID in bits
// 15:0 (bits 63:16 reserved), then the linear address.
func INVVPIDDescriptor(vpid uint16, linear uint64) [2]uint64 { return [2]uint64{uint64(vpid), linear} }

// INVEPTType picks the narrowest INVEPT type the CPU supports.
func (c EPTVPIDCap) INVEPTType() (uint64, bool) {
	switch {
	case !c.Has(EPTCapINVEPT):
		return 0, false
	case c.Has(EPTCapINVEPTSingle):
		return INVEPTSingleContext, true
	case c.Has(EPTCapINVEPTAll):
		return INVEPTGlobal, true
	}
	return 0, false
}

// INVVPIDType picks the narrowest context-wide INVVPID type supported.
func (c EPTVPIDCap) INVVPIDType() (uint64, bool) {
	switch {
	case !c.Has(VPIDCapINVVPID):
		return 0, false
	case c.Has(VPIDCapSingleContext):
		return INVVPIDSingleContext, true
	case c.Has(VPIDCapAllContext):
		return INVVPIDAllContext, true
	}
	return 0, false
}

// MakeEPTP builds an EPT pointer and checks it against the CPU's
// capabilities (the checks VM entry makes, SDM 27.2.1.1).
func MakeEPTP(root uint64, levels int, mt MemType, accessedDirty bool, caps EPTVPIDCap) (uint64, error) {
	if root&0xFFF != 0 || root&^EPTAddrMask != 0 {
		return 0, fmt.Errorf("vmx: EPTP root %#x not a 4 KiB-aligned physical address", root)
	}
	switch {
	case levels == 4 && caps.Has(EPTCapWalk4), levels == 5 && caps.Has(EPTCapWalk5):
	default:
		return 0, fmt.Errorf("vmx: EPT page-walk length %d not supported (EPT_VPID_CAP %#x)", levels, uint64(caps))
	}
	switch {
	case mt == MemWB && caps.Has(EPTCapWB), mt == MemUC && caps.Has(EPTCapUC):
	default:
		return 0, fmt.Errorf("vmx: EPT paging-structure memory type %d not supported (EPT_VPID_CAP %#x)", mt, uint64(caps))
	}
	if accessedDirty && !caps.Has(EPTCapAccessedDirty) {
		return 0, fmt.Errorf("vmx: EPT accessed/dirty flags not supported (EPT_VPID_CAP %#x)", uint64(caps))
	}
	p := root | uint64(mt) | uint64(levels-1)<<EPTPWalkShift
	if accessedDirty {
		p |= EPTPAccessedDirty
	}
	return p, nil
}

// TableMemory is where EPT paging structures live: 4 KiB frames of 512
// entries, addressed by host-physical address. The hypervisor backs it with
// its frame allocator and direct map; tests with a map of arrays.
type TableMemory interface {
	// AllocTable returns the address of a zeroed, 4 KiB-aligned frame.
	AllocTable() (uint64, error)
	// Table returns the entries of the frame at pa.
	Table(pa uint64) (*[512]uint64, error)
}

// EPT errors callers branch on.
var (
	ErrEPTMapped    = errors.New("vmx: EPT range already mapped")
	ErrEPTAlignment = errors.New("vmx: EPT address or size not 4 KiB aligned")
	ErrEPTRange     = errors.New("vmx: EPT address out of range")
)

// EPTConfig chooses the shape of an EPT hierarchy.
type EPTConfig struct {
	Levels       int  // 4, or 5 if the CPU supports it; 0 means 4
	PhysAddrBits uint // host MAXPHYADDR (CPUID 0x80000008 EAX[7:0]); 0 means 52
	AllowLarge   bool // use 2 MiB / 1 GiB pages where alignment and the CPU allow
	ModeBased    bool // mode-based execute control will be on: honour PermUserExecute
}

// EPT is one EPT hierarchy. Its methods are not safe for concurrent use:
// the owning VM serialises changes. Entries are stored atomically so that
// CPUs walking the tables never see a torn entry; after Unmap (or anything
// that reduces access) the caller must INVEPT before relying on the change.
type EPT struct {
	mem       TableMemory
	root      uint64
	levels    int
	maxPhys   uint64
	large2M   bool
	large1G   bool
	execOnly  bool
	modeBased bool
}

// NewEPT allocates the root table of an empty hierarchy.
func NewEPT(mem TableMemory, caps EPTVPIDCap, cfg EPTConfig) (*EPT, error) {
	if cfg.Levels == 0 {
		cfg.Levels = 4
	}
	if !(cfg.Levels == 4 && caps.Has(EPTCapWalk4)) && !(cfg.Levels == 5 && caps.Has(EPTCapWalk5)) {
		return nil, fmt.Errorf("vmx: EPT with %d levels not supported (EPT_VPID_CAP %#x)", cfg.Levels, uint64(caps))
	}
	if cfg.PhysAddrBits == 0 {
		cfg.PhysAddrBits = 52
	}
	if cfg.PhysAddrBits < 32 || cfg.PhysAddrBits > 52 {
		return nil, fmt.Errorf("vmx: EPT physical-address width %d outside 32..52", cfg.PhysAddrBits)
	}
	root, err := mem.AllocTable()
	if err != nil {
		return nil, fmt.Errorf("vmx: allocate EPT root: %w", err)
	}
	return &EPT{
		mem: mem, root: root, levels: cfg.Levels, maxPhys: 1 << cfg.PhysAddrBits,
		large2M: cfg.AllowLarge && caps.Has(EPTCap2MB), large1G: cfg.AllowLarge && caps.Has(EPTCap1GB),
		execOnly: caps.Has(EPTCapExecuteOnly), modeBased: cfg.ModeBased,
	}, nil
}

// Root returns the address of the top-level table, for MakeEPTP.
func (e *EPT) Root() uint64 { return e.root }

// Levels returns the page-walk length.
func (e *EPT) Levels() int { return e.levels }

// levelShift is the address bit where the region mapped by one entry at
// level l begins: 12 for a PTE (level 1), 21 for a PDE, 30 for a PDPTE...
func levelShift(l int) uint { return uint(12 + 9*(l-1)) }

func present(ent uint64) bool { return ent&(EPTRead|EPTWrite|EPTExecute) != 0 }

// leafEntry encodes a mapping, rejecting combinations the CPU would treat as
// an EPT misconfiguration (SDM 29.3.3.1).
func (e *EPT) leafEntry(hpa uint64, perm Perm, mt MemType, level int) (uint64, error) {
	if perm&PermWrite != 0 && perm&PermRead == 0 {
		return 0, fmt.Errorf("vmx: EPT permission %v: write without read is a misconfiguration", perm)
	}
	if perm&(PermRead|PermWrite) == 0 && perm&PermExecute != 0 && !e.execOnly {
		return 0, fmt.Errorf("vmx: EPT permission %v: execute-only not supported", perm)
	}
	if perm&(PermRead|PermWrite|PermExecute) == 0 {
		return 0, fmt.Errorf("vmx: EPT permission %v grants no access; use Unmap", perm)
	}
	if perm&PermUserExecute != 0 && !e.modeBased {
		return 0, fmt.Errorf("vmx: EPT permission %v: user-execute needs mode-based execute control", perm)
	}
	if !mt.valid() {
		return 0, fmt.Errorf("vmx: EPT memory type %d is reserved", mt)
	}
	ent := hpa | uint64(perm&PermRWX) | uint64(mt)<<EPTMemTypeShift
	if perm&PermUserExecute != 0 {
		ent |= EPTUserExecute
	}
	if level > 1 {
		ent |= EPTLargePage
	}
	return ent, nil
}

// nonLeaf is the entry pointing to a lower table: full access, so the leaf
// alone decides (the effective permission is the AND over the walk).
func (e *EPT) nonLeaf(table uint64) uint64 {
	ent := table | EPTRead | EPTWrite | EPTExecute
	if e.modeBased {
		ent |= EPTUserExecute
	}
	return ent
}

var errTableInTheWay = errors.New("table in the way")

// mapOne installs one leaf at level, creating tables on the way.
func (e *EPT) mapOne(gpa, leaf uint64, level int) error {
	table := e.root
	for l := e.levels; l > level; l-- {
		t, err := e.mem.Table(table)
		if err != nil {
			return fmt.Errorf("vmx: EPT table %#x: %w", table, err)
		}
		slot := &t[gpa>>levelShift(l)&511]
		ent := atomic.LoadUint64(slot)
		switch {
		case !present(ent):
			next, err := e.mem.AllocTable()
			if err != nil {
				return fmt.Errorf("vmx: allocate EPT table: %w", err)
			}
			atomic.StoreUint64(slot, e.nonLeaf(next))
			table = next
		case ent&EPTLargePage != 0:
			return fmt.Errorf("%w: gpa %#x inside a %d KiB page", ErrEPTMapped, gpa, 1<<(levelShift(l)-10))
		default:
			table = ent & EPTAddrMask
		}
	}
	t, err := e.mem.Table(table)
	if err != nil {
		return fmt.Errorf("vmx: EPT table %#x: %w", table, err)
	}
	slot := &t[gpa>>levelShift(level)&511]
	ent := atomic.LoadUint64(slot)
	if present(ent) {
		if level > 1 && ent&EPTLargePage == 0 {
			return errTableInTheWay
		}
		return fmt.Errorf("%w: gpa %#x", ErrEPTMapped, gpa)
	}
	atomic.StoreUint64(slot, leaf)
	return nil
}

func (e *EPT) checkRange(gpa, hpa, size uint64) error {
	if gpa&0xFFF != 0 || hpa&0xFFF != 0 || size&0xFFF != 0 || size == 0 {
		return fmt.Errorf("%w: gpa %#x hpa %#x size %#x", ErrEPTAlignment, gpa, hpa, size)
	}
	limit := uint64(1) << levelShift(e.levels+1)
	if gpa+size < gpa || gpa+size > limit {
		return fmt.Errorf("%w: gpa %#x+%#x beyond %d-level EPT", ErrEPTRange, gpa, size, e.levels)
	}
	if hpa+size < hpa || hpa+size > e.maxPhys {
		return fmt.Errorf("%w: hpa %#x+%#x beyond MAXPHYADDR", ErrEPTRange, hpa, size)
	}
	return nil
}

// Map maps [gpa, gpa+size) to [hpa, hpa+size) with the given access and
// memory type, using 1 GiB and 2 MiB pages where both addresses are aligned
// and the CPU and config allow. It fails with ErrEPTMapped, leaving what it
// mapped before the conflict in place, if any page of the range is mapped.
func (e *EPT) Map(gpa, hpa, size uint64, perm Perm, mt MemType) error {
	if err := e.checkRange(gpa, hpa, size); err != nil {
		return err
	}
	for size > 0 {
		level := 1
		for _, l := range []struct {
			level int
			ok    bool
		}{{3, e.large1G}, {2, e.large2M}} {
			s := uint64(1) << levelShift(l.level)
			if l.ok && gpa&(s-1) == 0 && hpa&(s-1) == 0 && size >= s {
				level = l.level
				break
			}
		}
		for {
			leaf, err := e.leafEntry(hpa, perm, mt, level)
			if err != nil {
				return err
			}
			err = e.mapOne(gpa, leaf, level)
			if err == errTableInTheWay {
				level--
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		s := uint64(1) << levelShift(level)
		gpa, hpa, size = gpa+s, hpa+s, size-s
	}
	return nil
}

// Mapping is what Lookup finds for a guest-physical address.
type Mapping struct {
	HPA      uint64 // host-physical address of the byte at gpa
	Perm     Perm
	MemType  MemType
	PageSize uint64
}

// Lookup translates gpa. ok is false if it is not mapped.
func (e *EPT) Lookup(gpa uint64) (m Mapping, ok bool, err error) {
	if gpa >= uint64(1)<<levelShift(e.levels+1) {
		return Mapping{}, false, nil
	}
	table := e.root
	for l := e.levels; l >= 1; l-- {
		t, err := e.mem.Table(table)
		if err != nil {
			return Mapping{}, false, fmt.Errorf("vmx: EPT table %#x: %w", table, err)
		}
		ent := atomic.LoadUint64(&t[gpa>>levelShift(l)&511])
		if !present(ent) {
			return Mapping{}, false, nil
		}
		if l == 1 || ent&EPTLargePage != 0 {
			size := uint64(1) << levelShift(l)
			perm := Perm(ent & 7)
			if ent&EPTUserExecute != 0 {
				perm |= PermUserExecute
			}
			return Mapping{
				HPA:      ent&EPTAddrMask&^(size-1) | gpa&(size-1),
				Perm:     perm,
				MemType:  MemType(ent >> EPTMemTypeShift & 7),
				PageSize: size,
			}, true, nil
		}
		table = ent & EPTAddrMask
	}
	return Mapping{}, false, nil
}

// Unmap removes every mapping in [gpa, gpa+size). A large page only partly
// inside the range is split into smaller pages first. Unmapped holes are
// skipped. Page tables emptied by Unmap are kept for reuse.
func (e *EPT) Unmap(gpa, size uint64) error {
	if err := e.checkRange(gpa, 0, size); err != nil {
		return err
	}
	end := gpa + size
	for gpa < end {
		step, err := e.unmapOne(gpa, end)
		if err != nil {
			return err
		}
		gpa += step
	}
	return nil
}

// unmapOne clears the entry covering gpa if the whole entry lies before
// end, splitting a large page otherwise; it returns how far to advance.
func (e *EPT) unmapOne(gpa, end uint64) (uint64, error) {
	table := e.root
	for l := e.levels; l >= 1; l-- {
		t, err := e.mem.Table(table)
		if err != nil {
			return 0, fmt.Errorf("vmx: EPT table %#x: %w", table, err)
		}
		size := uint64(1) << levelShift(l)
		slot := &t[gpa>>levelShift(l)&511]
		ent := atomic.LoadUint64(slot)
		next := (gpa | (size - 1)) + 1 // start of the next entry at this level
		if !present(ent) {
			return next - gpa, nil
		}
		if l > 1 && ent&EPTLargePage == 0 {
			table = ent & EPTAddrMask
			continue
		}
		if gpa&(size-1) == 0 && next <= end {
			atomic.StoreUint64(slot, 0)
			return size, nil
		}
		// A large page partly inside the range: replace it by a table of
		// pages one level down with the same attributes, then go on.
		sub, err := e.split(ent, l)
		if err != nil {
			return 0, err
		}
		atomic.StoreUint64(slot, e.nonLeaf(sub))
		table = sub
	}
	return 0, fmt.Errorf("vmx: EPT walk for %#x ended without a leaf", gpa)
}

func (e *EPT) split(ent uint64, level int) (uint64, error) {
	sub, err := e.mem.AllocTable()
	if err != nil {
		return 0, fmt.Errorf("vmx: allocate EPT table for split: %w", err)
	}
	t, err := e.mem.Table(sub)
	if err != nil {
		return 0, fmt.Errorf("vmx: EPT table %#x: %w", sub, err)
	}
	childSize := uint64(1) << levelShift(level-1)
	base := ent & EPTAddrMask &^ (uint64(1)<<levelShift(level) - 1)
	attrs := ent &^ EPTAddrMask &^ EPTLargePage
	if level-1 > 1 {
		attrs |= EPTLargePage
	}
	for i := range t {
		atomic.StoreUint64(&t[i], base+uint64(i)*childSize|attrs)
	}
	return sub, nil
}
