package emulate

import (
	"math/rand/v2"
	"testing"

	"hv/vmm/pagewalk"
)

// FuzzEmulate feeds random instruction bytes and random vCPU state to the
// emulator. It must never panic, and what it reports must be coherent: an
// exception leaves RIP alone, a completed instruction moves RIP to NextRIP.
func FuzzEmulate(f *testing.F) {
	f.Add([]byte{0x89, 0x03}, uint8(4), uint64(0), uint64(1), uint64(2), uint64(0))
	f.Add([]byte{0xf3, 0xa4}, uint8(4), uint64(0), uint64(3), uint64(4), uint64(5))
	f.Add([]byte{0x67, 0xf3, 0x6d}, uint8(0), uint64(0), uint64(6), uint64(7), uint64(1))
	f.Add([]byte{0x66, 0x0f, 0xbe, 0x0b}, uint8(2), uint64(0xFF), uint64(8), uint64(9), uint64(0))
	f.Add([]byte{0xf0, 0x48, 0x87, 0x03}, uint8(3), uint64(0x1234), uint64(10), uint64(11), uint64(0))

	f.Fuzz(func(t *testing.T, code []byte, mode uint8, ctl, gprSeed, segSeed, fault uint64) {
		c, b := &fakeCPU{}, newFakeBus()
		rng := rand.New(rand.NewPCG(gprSeed, segSeed))
		bit := func(n uint) bool { return ctl>>n&1 == 1 }
		pick := func(n uint, v uint64) uint64 {
			if bit(n) {
				return v
			}
			return 0
		}

		// Control state: mostly coherent modes, sometimes odd combinations.
		switch mode % 6 {
		case 0: // real
		case 1, 2: // protected, maybe paged
			c.cr0 = pagewalk.CR0PE | pick(0, pagewalk.CR0PG)
			c.cr4 = pick(1, pagewalk.CR4PAE) | pick(2, pagewalk.CR4PSE)
		case 3, 4: // long mode
			c.cr0 = pagewalk.CR0PE | pagewalk.CR0PG
			c.cr4 = pagewalk.CR4PAE | pick(3, pagewalk.CR4LA57)
			c.efer = pagewalk.EFERLME | pagewalk.EFERLMA
		default: // anything
			c.cr0, c.cr4, c.efer = rng.Uint64(), rng.Uint64(), rng.Uint64()
		}
		c.cr0 |= pick(4, pagewalk.CR0WP) | pick(5, CR0AM)
		c.cr4 |= pick(6, pagewalk.CR4SMEP) | pick(7, pagewalk.CR4SMAP) | pick(8, pagewalk.CR4PKE)
		c.efer |= pick(9, pagewalk.EFERNXE)
		c.rflags = 2 | pick(10, FlagDF) | pick(11, FlagAC) | pick(12, FlagVM) | pick(13, FlagCF)
		c.cr3 = pml4Addr
		if bit(14) {
			c.cr3 = rng.Uint64()
		}

		// Page tables: 1-GiB identity pages for long mode; PAE and 32-bit
		// paging read whatever these bytes mean to them.
		const pdpt = pml4Addr + 0x1000
		b.put64(pml4Addr, pdpt|pagewalk.PteP|pagewalk.PteRW|pagewalk.PteUS)
		b.put64(pml4Addr+8, rng.Uint64())
		for i := uint64(0); i < 4; i++ {
			flags := pagewalk.PteP | pagewalk.PteRW | pagewalk.PtePS | pick(15, pagewalk.PteUS)
			b.put64(pdpt+8*i, i<<30|flags)
		}
		if bit(16) {
			b.put64(pdpt+8*rng.Uint64N(4), rng.Uint64())
		}

		for s := ES; s < numSegRegs; s++ {
			g := Segment{Selector: uint16(rng.Uint32()), Limit: 0xFFFF_FFFF, Attr: attrData | AttrDB | AttrG}
			switch rng.Uint32N(4) {
			case 0:
				g.Base = D
			case 1:
				g.Base, g.Limit, g.Attr = rng.Uint64(), rng.Uint32(), uint16(rng.Uint32())
			}
			c.seg[s] = g
		}
		switch mode % 6 {
		case 0:
			c.seg[CS].Attr = attrCode
		case 1:
			c.seg[CS].Attr = attrCode | AttrDB
		case 3:
			c.seg[CS].Attr = attrCode | AttrL
		case 4:
			c.seg[CS].Attr = attrCode | AttrDB
		}
		c.seg[CS].Base = 0

		for i := range c.gpr {
			x := rng.Uint64()
			switch rng.Uint32N(4) {
			case 0:
				c.gpr[i] = D + x%0x2000
			case 1:
				c.gpr[i] = dataAddr + x%0x100
			case 2:
				c.gpr[i] = x % 8
			default:
				c.gpr[i] = x
			}
		}
		c.rip = codeAddr
		if bit(17) {
			c.rip = 0x1FF8 + rng.Uint64N(8) // instruction may span pages
		}
		if len(code) > 16 {
			code = code[:16]
		}
		for i, x := range code {
			*b.ram.at(c.rip + uint64(i)) = x
		}
		b.failMMIO = bit(18)

		e := New(c, b, Config{PhysAddrBits: uint8(36 + ctl>>24%17), Page1G: bit(19), MaxRepeat: 8,
			SetAccessedDirty: bit(20), Vendor: pagewalk.Vendor(ctl >> 21 & 1)})
		rip := c.rip
		var res Result
		var err error
		if bit(22) {
			res, err = e.PortIO()
		} else {
			res, err = e.MMIO(D + fault%0x3000)
		}
		if err != nil {
			return
		}
		if res.Len < 0 || res.Len > maxInstLen {
			t.Fatalf("Len = %d", res.Len)
		}
		switch {
		case res.Raised:
			if res.Done || c.rip != rip {
				t.Fatalf("exception %+v but Done=%v, RIP %#x -> %#x", res.Exception, res.Done, rip, c.rip)
			}
		case res.Done:
			if c.rip != res.NextRIP {
				t.Fatalf("done but RIP %#x != NextRIP %#x", c.rip, res.NextRIP)
			}
		default:
			if c.rip != rip {
				t.Fatalf("pending REP moved RIP %#x -> %#x", rip, c.rip)
			}
		}
	})
}
