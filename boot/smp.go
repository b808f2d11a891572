package boot

import (
	"sync/atomic"

	"hv/boot/acpi"
)

// Application processors start in real mode at a 4 KiB-aligned page below
// 1 MiB (Intel SDM vol. 3A 9.4.4, the INIT-SIPI-SIPI sequence). The
// trampoline below takes them through 32-bit protected mode into long mode on
// the kernel page tables and jumps to apEntry64. APs are started one at a
// time, so the hand-over variables can be plain globals.

const trampolineBase = 0x8000 // SIPI vector 0x08

// trampoline is hand-assembled; offsets are relative to trampolineBase
// (CS = 0x0800 in real mode, base 0 afterwards). Patched fields are zero
// here and filled by startAPs. The test checks the encodings with objdump.
var trampoline = [0xB0]byte{
	// 0x00, 16-bit real mode
	0xFA,                               // cli
	0x2E, 0x0F, 0x01, 0x16, 0xA0, 0x00, // lgdt cs:[0xA0]
	0x0F, 0x20, 0xC0, // mov eax, cr0
	0x66, 0x83, 0xC8, 0x01, // or eax, 1 (PE)
	0x0F, 0x22, 0xC0, // mov cr0, eax
	0x66, 0xEA, 0x20, 0x80, 0x00, 0x00, 0x18, 0x00, // jmp far 0x18:0x8020 (32-bit offset)
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
	// 0x20, 32-bit protected mode
	0x66, 0xB8, 0x10, 0x00, // mov ax, 0x10
	0x8E, 0xD8, // mov ds, ax
	0x8E, 0xC0, // mov es, ax
	0x8E, 0xD0, // mov ss, ax
	0x0F, 0x20, 0xE0, // mov eax, cr4
	0x83, 0xC8, 0x20, // or eax, 0x20 (PAE)
	0x0F, 0x22, 0xE0, // mov cr4, eax
	0xA1, 0xA8, 0x80, 0x00, 0x00, // mov eax, [0x80A8] (CR3)
	0x0F, 0x22, 0xD8, // mov cr3, eax
	0xB9, 0x80, 0x00, 0x00, 0xC0, // mov ecx, IA32_EFER
	0x0F, 0x32, // rdmsr
	0x0B, 0x05, 0xAC, 0x80, 0x00, 0x00, // or eax, [0x80AC] (EFER bits)
	0x0F, 0x30, // wrmsr
	0x0F, 0x20, 0xC0, // mov eax, cr0
	0x0D, 0x00, 0x00, 0x01, 0x80, // or eax, PG|WP
	0x0F, 0x22, 0xC0, // mov cr0, eax
	0xEA, 0x60, 0x80, 0x00, 0x00, 0x08, 0x00, // jmp far 0x08:0x8060
	0x90, 0x90, 0x90, 0x90,
	// 0x60, 64-bit mode
	0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, // mov rax, apEntry64 (patched at 0x62)
	0xFF, 0xE0, // jmp rax
	0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
	// 0x80, GDT: null, 0x08 64-bit code, 0x10 data, 0x18 32-bit code
	0, 0, 0, 0, 0, 0, 0, 0,
	0xFF, 0xFF, 0, 0, 0, 0x9A, 0xAF, 0,
	0xFF, 0xFF, 0, 0, 0, 0x92, 0xCF, 0,
	0xFF, 0xFF, 0, 0, 0, 0x9A, 0xCF, 0,
	// 0xA0, GDTR: limit 31, base 0x8080
	0x1F, 0x00, 0x80, 0x80, 0x00, 0x00, 0, 0,
	// 0xA8, CR3 (patched); 0xAC, EFER bits to set (patched)
}

const (
	trampEntryOff = 0x62
	trampCR3Off   = 0xA8
	trampEFEROff  = 0xAC
)

// Hand-over to the AP being started; the stack and TLS are read by
// trap_amd64.s.
var (
	//lint:ignore U1000 read by trap_amd64.s
	apBootStack uint64
	//lint:ignore U1000 read by trap_amd64.s
	apBootTLS uint64
	apBootID  int32
	apOnline  atomic.Uint32
)

func addrOfAPEntry64() uint64

// startAPs starts every enabled processor of the MADT other than this one.
func startAPs() {
	if !haveMADT {
		return
	}
	b := physBytes(trampolineBase, uint64(len(trampoline)))
	copy(b, trampoline[:])
	le64put(b[trampEntryOff:], addrOfAPEntry64())
	le32put(b[trampCR3Off:], uint32(kernelCR3))
	efer := uint32(1<<8 | eferSCE) // LME, SCE
	if nxSupported {
		efer |= eferNXE
	}
	le32put(b[trampEFEROff:], efer)

	self := cpus[0].apicID
	for _, p := range madt.CPUList() {
		if !p.Enabled() && p.Flags&acpi.CPUOnlineCapable == 0 || p.APICID == self {
			continue
		}
		id := int(ncpu.Load())
		if id >= maxCPUs {
			kputs("hv: more CPUs than the platform supports; the rest stay off")
			break
		}
		if !startAP(id, p.APICID) {
			var l line
			l.s("hv: cpu with APIC ID ").dec(uint64(p.APICID)).s(" did not start").print()
			continue
		}
		ncpu.Store(int32(id + 1))
	}
}

func startAP(id int, apicID uint32) bool {
	prepareCPU(id)
	cpus[id].apicID = apicID
	makeIdleThread(id)
	apBootID = int32(id)
	apBootStack = cpus[id].kstackTop
	apBootTLS = cpus[id].ktls
	apOnline.Store(0)

	lapicWaitICR()
	lapicWrite(lapicICRHigh, apicID<<24)
	lapicWrite(lapicICRLow, 0x4500) // INIT, level assert
	spin(10e6)
	for i := 0; i < 2; i++ {
		lapicWaitICR()
		lapicWrite(lapicICRHigh, apicID<<24)
		lapicWrite(lapicICRLow, 0x4600|trampolineBase>>12) // STARTUP
		spin(200e3)
		if apOnline.Load() != 0 {
			break
		}
	}
	deadline := nanotime() + 2e9
	for apOnline.Load() == 0 && nanotime() < deadline {
		pause()
	}
	return apOnline.Load() != 0
}

func spin(ns int64) {
	end := nanotime() + ns
	for nanotime() < end {
		pause()
	}
}

// apMain runs on a new AP on its kernel stack with its fake g.
//
//lint:ignore U1000 called from trap_amd64.s
func apMain() {
	id := int(apBootID)
	loadCPU(id)
	lapicInit()
	c := &cpus[id]
	c.online = 1
	c.runHead, c.runTail = -1, -1
	idle := &threads[c.idleTid]
	idle.state = threadRunning
	apOnline.Store(1)
	startFirstThread(addrOf(idle))
}
