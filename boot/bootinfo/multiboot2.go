package bootinfo

// Multiboot2 boot information layout (Multiboot2 spec §3.6). The structure starts with total_size
// (u32) and a reserved u32, followed by tags, each starting on an 8-byte boundary with type (u32)
// and size (u32, counting the header but not the padding), and ending with a tag of type 0 and
// size 8.
const (
	mb2HeaderSize = 8
	mb2TagHeader  = 8
	mb2Align      = 8

	mb2TagEnd        = 0  // §3.6.2
	mb2TagCmdline    = 1  // §3.6.5
	mb2TagLoaderName = 2  // §3.6.6
	mb2TagModule     = 3  // §3.6.7
	mb2TagMemInfo    = 4  // §3.6.3
	mb2TagMmap       = 6  // §3.6.8
	mb2TagACPIOld    = 14 // §3.6.15: copy of the ACPI 1.0 RSDP
	mb2TagACPINew    = 15 // §3.6.16: copy of the ACPI 2.0+ RSDP

	mb2ModuleMin  = 16 // header, mod_start, mod_end
	mb2MemInfoLen = 16 // header, mem_lower, mem_upper
	mb2MmapHeader = 16 // header, entry_size, entry_version
	// An mmap entry is base_addr (u64), length (u64), type (u32), reserved (u32). entry_size is
	// a multiple of 8 and at least this; larger entries carry later fields that we skip.
	mb2MmapEntryMin = 24

	rsdpV1Len = 20 // ACPI 6.5 §5.2.5.3: the ACPI 1.0 part of the RSDP
)

func parseMultiboot2(mem Memory, addr uint64, in *Info) error {
	if addr%mb2Align != 0 {
		return ErrMisalignedInfo
	}
	hdr, err := read(mem, addr, mb2HeaderSize)
	if err != nil {
		return err
	}
	total := uint64(le32(hdr))
	if total < mb2HeaderSize+mb2TagHeader {
		return ErrMalformed
	}
	buf, err := read(mem, addr, total)
	if err != nil {
		return err
	}
	if err := in.occupy(addr, total); err != nil {
		return err
	}
	haveNewRSDP := false
	for off := uint64(mb2HeaderSize); ; {
		if total-off < mb2TagHeader {
			// Ran off the end without an end tag.
			return ErrMalformed
		}
		typ := le32(buf[off:])
		size := uint64(le32(buf[off+4:]))
		if size < mb2TagHeader || size > total-off {
			return ErrMalformed
		}
		tag := buf[off : off+size]
		body := tag[mb2TagHeader:]
		switch typ {
		case mb2TagEnd:
			return nil
		case mb2TagCmdline:
			n, fit := copyString(in.Cmdline[:], body)
			if !fit {
				return ErrCmdlineTooLong
			}
			in.CmdlineLen = n
		case mb2TagLoaderName:
			in.LoaderNameLen, _ = copyString(in.LoaderName[:], body)
		case mb2TagModule:
			if err := in.mb2Module(tag); err != nil {
				return err
			}
		case mb2TagMemInfo:
			if size < mb2MemInfoLen {
				return ErrMalformed
			}
			in.HasMemSizes = true
			in.MemLowerKiB = uint64(le32(body[0:]))
			in.MemUpperKiB = uint64(le32(body[4:]))
		case mb2TagMmap:
			if err := in.mb2Mmap(tag); err != nil {
				return err
			}
		case mb2TagACPIOld:
			// The 2.0+ copy carries the XSDT address; never let the 1.0 copy replace it.
			if !haveNewRSDP {
				if len(body) < rsdpV1Len {
					return ErrMalformed
				}
				in.RSDPLen = copy(in.RSDP[:], body[:rsdpV1Len])
			}
		case mb2TagACPINew:
			if len(body) < rsdpV1Len {
				return ErrMalformed
			}
			in.RSDPLen = copy(in.RSDP[:], body)
			haveNewRSDP = true
		}
		// Unknown tags are skipped: the size field makes that safe (§3.6.1).
		next := (size + mb2Align - 1) &^ (mb2Align - 1)
		if next > total-off {
			return ErrMalformed
		}
		off += next
	}
}

func (in *Info) mb2Module(tag []byte) error {
	if len(tag) < mb2ModuleMin {
		return ErrMalformed
	}
	if in.NModules == MaxModules {
		return ErrTooManyModules
	}
	m := &in.Modules[in.NModules]
	m.Start, m.End = uint64(le32(tag[8:])), uint64(le32(tag[12:]))
	if m.End < m.Start {
		return ErrBadModule
	}
	n, fit := copyString(m.Cmdline[:], tag[mb2ModuleMin:])
	if !fit {
		return ErrCmdlineTooLong
	}
	m.CmdlineLen = n
	in.NModules++
	return in.occupy(m.Start, m.End-m.Start)
}

// mb2Mmap walks the entries with the stride entry_size. Any entry_version is accepted: the spec
// promises that later versions only append fields (§3.6.8), and the stride skips them.
func (in *Info) mb2Mmap(tag []byte) error {
	if len(tag) < mb2MmapHeader {
		return ErrMalformed
	}
	stride := uint64(le32(tag[8:]))
	if stride < mb2MmapEntryMin || stride%8 != 0 {
		return ErrBadMemoryMapEntry
	}
	entries := tag[mb2MmapHeader:]
	for off := uint64(0); uint64(len(entries))-off >= stride; off += stride {
		e := entries[off:]
		if err := in.addRaw(le64(e[0:]), le64(e[8:]), le32(e[16:])); err != nil {
			return err
		}
	}
	return nil
}
