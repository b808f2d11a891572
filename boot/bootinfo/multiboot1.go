package bootinfo

// Multiboot-1 information structure layout (Multiboot 0.6.96 §3.3, "Boot information format").
const (
	mb1Flags          = 0
	mb1MemLower       = 4
	mb1MemUpper       = 8
	mb1Cmdline        = 16
	mb1ModsCount      = 20
	mb1ModsAddr       = 24
	mb1MmapLength     = 44
	mb1MmapAddr       = 48
	mb1BootLoaderName = 64
	mb1ReadSize       = 68  // bytes Parse reads: through boot_loader_name
	mb1InfoSize       = 116 // whole structure through the framebuffer fields, reserved as used

	mb1FlagMem        = 1 << 0
	mb1FlagCmdline    = 1 << 2
	mb1FlagMods       = 1 << 3
	mb1FlagMmap       = 1 << 6
	mb1FlagLoaderName = 1 << 9

	mb1ModSize = 16 // mod_start, mod_end, string, reserved

	// An mmap entry is size (u32, not counting itself), base_addr (u64), length (u64), type (u32).
	mb1MmapEntryMin = 20 // the size field of the smallest entry the spec defines
)

func parseMultiboot1(mem Memory, addr uint64, in *Info) error {
	hdr, err := read(mem, addr, mb1ReadSize)
	if err != nil {
		return err
	}
	if err := in.occupy(addr, mb1InfoSize); err != nil {
		return err
	}
	flags := le32(hdr[mb1Flags:])
	if flags&mb1FlagMem != 0 {
		in.HasMemSizes = true
		in.MemLowerKiB = uint64(le32(hdr[mb1MemLower:]))
		in.MemUpperKiB = uint64(le32(hdr[mb1MemUpper:]))
	}
	if flags&mb1FlagCmdline != 0 {
		p := uint64(le32(hdr[mb1Cmdline:]))
		n, span, err := readCString(mem, p, in.Cmdline[:], false)
		if err != nil {
			return err
		}
		in.CmdlineLen = n
		if err := in.occupy(p, span); err != nil {
			return err
		}
	}
	if flags&mb1FlagMods != 0 {
		if err := in.mb1Modules(mem, uint64(le32(hdr[mb1ModsAddr:])), uint64(le32(hdr[mb1ModsCount:]))); err != nil {
			return err
		}
	}
	if flags&mb1FlagMmap != 0 {
		if err := in.mb1Mmap(mem, uint64(le32(hdr[mb1MmapAddr:])), uint64(le32(hdr[mb1MmapLength:]))); err != nil {
			return err
		}
	}
	if flags&mb1FlagLoaderName != 0 {
		p := uint64(le32(hdr[mb1BootLoaderName:]))
		n, span, err := readCString(mem, p, in.LoaderName[:], true)
		if err != nil {
			return err
		}
		in.LoaderNameLen = n
		if err := in.occupy(p, span); err != nil {
			return err
		}
	}
	return nil
}

func (in *Info) mb1Modules(mem Memory, addr, count uint64) error {
	if count > MaxModules {
		return ErrTooManyModules
	}
	table, err := read(mem, addr, count*mb1ModSize)
	if err != nil {
		return err
	}
	if err := in.occupy(addr, count*mb1ModSize); err != nil {
		return err
	}
	for i := uint64(0); i < count; i++ {
		e := table[i*mb1ModSize:]
		m := &in.Modules[i]
		// mod_end is exclusive: GRUB and QEMU both pass start+size.
		m.Start, m.End = uint64(le32(e[0:])), uint64(le32(e[4:]))
		if m.End < m.Start {
			return ErrBadModule
		}
		if err := in.occupy(m.Start, m.End-m.Start); err != nil {
			return err
		}
		if s := uint64(le32(e[8:])); s != 0 {
			n, span, err := readCString(mem, s, m.Cmdline[:], false)
			if err != nil {
				return err
			}
			m.CmdlineLen = n
			if err := in.occupy(s, span); err != nil {
				return err
			}
		}
		in.NModules++
	}
	return nil
}

// mb1Mmap walks the loader memory map honouring each entry's size field, which lets a loader
// append fields to entries (Multiboot §3.3: "size ... may be larger than 20").
func (in *Info) mb1Mmap(mem Memory, addr, length uint64) error {
	buf, err := read(mem, addr, length)
	if err != nil {
		return err
	}
	if err := in.occupy(addr, length); err != nil {
		return err
	}
	for off := uint64(0); off < length; {
		if length-off < 4 {
			return ErrMalformed
		}
		size := uint64(le32(buf[off:]))
		if size < mb1MmapEntryMin {
			return ErrBadMemoryMapEntry
		}
		if length-off-4 < size {
			return ErrMalformed
		}
		e := buf[off+4:]
		if err := in.addRaw(le64(e[0:]), le64(e[8:]), le32(e[16:])); err != nil {
			return err
		}
		off += 4 + size
	}
	return nil
}
