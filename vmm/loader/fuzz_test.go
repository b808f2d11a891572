package loader

import (
	"testing"
)

// checkLoaded is what must hold after any successful load of any input:
// the entry point and everything the loader reports is inside guest RAM.
// (Writes outside RAM are impossible to miss: the fake rejects them and
// the loader must turn that into an error, which is also fine.)
func checkLoaded(t *testing.T, mem *fakeMemory, r *Result) {
	t.Helper()
	if r.Entry.Regs.RIP >= mem.size || r.Kernel.End > mem.size || r.Info.End > mem.size || r.Initrd.End > mem.size {
		t.Fatalf("result outside %#x bytes of RAM: %+v", mem.size, r)
	}
}

// fuzzMem is small so a fuzzed bss cannot make one run clear gigabytes.
const fuzzMem = 32 << 20

func FuzzParseSetupHeader(f *testing.F) {
	f.Add(makeBzImage(defaultBz()))
	o := defaultBz()
	o.setupSects, o.pref, o.initSize = 0, 0x200000, 0x20000
	f.Add(makeBzImage(o))
	f.Fuzz(func(t *testing.T, img []byte) {
		h, err := ParseSetupHeader(img)
		if err != nil {
			return
		}
		if h.SetupSize() > len(img) || h.HeaderEnd > h.SetupSize() {
			t.Fatalf("accepted header with setup %d, end %#x in %d bytes", h.SetupSize(), h.HeaderEnd, len(img))
		}
		mem := newFakeMemory(fuzzMem)
		if r, err := LoadLinux(mem, img, Config{Cmdline: "console=ttyS0", Initrd: []byte("initrd")}); err == nil {
			checkLoaded(t, mem, r)
		}
	})
}

func FuzzParseELF(f *testing.F) {
	f.Add(makeELF(64, 0x100000, []elfSeg{{vaddr: 0x100000, paddr: 0x100000, data: pattern(64, 1), memsz: 0x1000}}))
	f.Add(makeELF(32, 0xC0100000, []elfSeg{{vaddr: 0xC0100000, paddr: 0x100000, data: pattern(64, 1)}, {ptype: 4, data: []byte("n")}}))
	f.Fuzz(func(t *testing.T, img []byte) {
		e, err := ParseELF(img)
		if err != nil {
			return
		}
		for _, s := range e.Segments {
			if s.Offset+s.Filesz > uint64(len(img)) || s.Filesz > s.Memsz {
				t.Fatalf("accepted segment %+v in %d bytes", s, len(img))
			}
		}
		mem := newFakeMemory(fuzzMem)
		if r, err := LoadELF(mem, img, Config{}); err == nil {
			checkLoaded(t, mem, r)
		}
	})
}

func FuzzFindMultibootHeader(f *testing.F) {
	f.Add(aoutImage(0x1000, 0, 0x102000, 0x100010))
	f.Add(kludge(0x100040, 0x100000, 0x100800, 0x100400, 0x100000))
	text := pattern(0x100, 7)
	copy(text, mbHeader(MultibootMemInfo|MultibootPageAlign))
	f.Add(makeELF(32, 0x100000, []elfSeg{{vaddr: 0x100000, paddr: 0x100000, data: text}}))
	f.Fuzz(func(t *testing.T, img []byte) {
		h, err := FindMultibootHeader(img)
		if err != nil {
			return
		}
		if h.Offset%4 != 0 || h.Offset+12 > min(len(img), MultibootSearch) {
			t.Fatalf("header at %#x in %d bytes", h.Offset, len(img))
		}
		mem := newFakeMemory(fuzzMem)
		cfg := Config{Cmdline: "x", Modules: []Module{{Data: []byte("m"), Cmdline: "m"}}}
		if r, err := LoadMultiboot(mem, img, cfg); err == nil {
			checkLoaded(t, mem, r)
			if r.Entry.Regs.RAX != MultibootBootloaderMagic {
				t.Fatalf("EAX = %#x", r.Entry.Regs.RAX)
			}
		}
	})
}
