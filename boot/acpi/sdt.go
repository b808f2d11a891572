package acpi

// MaxTables is how many tables Tables holds. Real firmware lists a few dozen.
const MaxTables = 128

// TableRef is one table listed by the RSDT or XSDT.
type TableRef struct {
	Signature [4]byte
	Addr      uint64
	Length    uint32
}

// Tables lists the tables the root table points to, in its order.
type Tables struct {
	Refs [MaxTables]TableRef
	N    int
	// FromXSDT says whether the list came from the XSDT (64-bit pointers) or the RSDT.
	FromXSDT bool
	// Dropped counts entries beyond MaxTables and entries whose header could not be read.
	Dropped int
}

// ReadRoot fills out from the XSDT when the RSDP has one (its 64-bit pointers reach all of
// memory, and §5.2.8 says an OS must use it when present), falling back to the RSDT when the
// XSDT is unreadable or corrupt.
func ReadRoot(mem Memory, rsdp RSDP, out *Tables) error {
	*out = Tables{}
	var err error = ErrNoRoot
	if rsdp.Revision >= 2 && rsdp.XSDTAddr != 0 {
		var b []byte
		if b, err = Load(mem, rsdp.XSDTAddr, SigXSDT); err == nil {
			out.FromXSDT = true
			out.fill(mem, b[HeaderSize:], 8)
			return nil
		}
	}
	if rsdp.RSDTAddr != 0 {
		var b []byte
		if b, err = Load(mem, rsdp.RSDTAddr, SigRSDT); err == nil {
			out.fill(mem, b[HeaderSize:], 4)
			return nil
		}
	}
	return err
}

// fill reads the entries of width w (4 for the RSDT, 8 for the XSDT; §5.2.7, §5.2.8). A
// trailing partial entry is ignored.
func (t *Tables) fill(mem Memory, entries []byte, w int) {
	for off := 0; off+w <= len(entries); off += w {
		var addr uint64
		if w == 8 {
			addr = le64(entries[off:])
		} else {
			addr = uint64(le32(entries[off:]))
		}
		if addr == 0 {
			continue
		}
		hdr, err := read(mem, addr, 8)
		if err != nil || t.N == len(t.Refs) {
			t.Dropped++
			continue
		}
		r := &t.Refs[t.N]
		copy(r.Signature[:], hdr[:4])
		r.Addr = addr
		r.Length = le32(hdr[headerLength:])
		t.N++
	}
}

// List returns the table references.
func (t *Tables) List() []TableRef { return t.Refs[:t.N] }

// Find returns the address of the instance-th (from 0) table with signature sig.
func (t *Tables) Find(sig string, instance int) (uint64, bool) {
	for _, r := range t.Refs[:t.N] {
		if sigIs(r.Signature[:], sig) {
			if instance == 0 {
				return r.Addr, true
			}
			instance--
		}
	}
	return 0, false
}
