package vmm

// CPUID policy: what every guest sees, defined here and nowhere else.
//
//   - Leaves pass through from the host CPU, except:
//   - leaf 1: ECX.VMX (5) and ECX.XSAVE/OSXSAVE (26, 27), ECX.AVX (28) are
//     cleared (no nested VMX yet; the VMM does not switch extended XSAVE
//     state, so the guest runs with x87/SSE only), ECX.hypervisor (31) is
//     set, EBX[31:24] (initial APIC ID) is the vCPU index; the thermal and
//     power-management features a VM has no sensors or P-states for are
//     cleared: EDX.ACPI (22, thermal monitor and clock control MSRs),
//     EDX.TM (29), EDX.PBE (31), ECX.EIST (7), ECX.TM2 (8). Linux reads
//     their MSRs (IA32_THERM_INTERRUPT, ...) without a #GP fixup when
//     CPUID announces them; the performance-monitoring features are
//     cleared too, since the guest has no PMU (the VMM samples the host's
//     for cachemon): ECX.PDCM (15), ECX.DTES64 (2), ECX.DS-CPL (4),
//     EDX.DS (21);
//     ECX.MONITOR (3) is cleared and leaf 5 returns zeros: the VMM
//     intercepts MONITOR and MWAIT and answers #UD, since a guest waiting
//     in MWAIT would hold its host CPU;
//   - topology (one package, one thread per core, a core per vCPU; the
//     initial APIC ID is the vCPU index, and the core ID field is
//     CoreIDBits(ncpu) wide): leaf 1 EBX[23:16] (addressable IDs) and
//     EDX.HTT (28, set when ncpu > 1); leaf 4 EAX[31:26] (cores per
//     package - 1) and, for the shared last-level cache (level 3),
//     EAX[25:14] (threads sharing it - 1); leaves 0xB and 0x1F (SMT level
//     of 1 thread, core level of ncpu, EDX the x2APIC ID) per SDM vol. 2A
//     CPUID; 0x8000_0008 ECX NC (7:0) and ApicIdCoreIdSize (15:12), and
//     0x8000_001E (extended APIC ID, core ID, one thread per core, node 0)
//     per AMD APM vol. 3 appendix E.4;
//   - leaf 0xA (architectural performance monitoring) returns zeros;
//   - leaf 6 (thermal and power management) keeps only EAX.ARAT (2): the
//     local APIC timer of the VM runs in every guest idle state; digital
//     sensors, HWP, package thermal and the APERF/MPERF counters are not
//     there;
//   - leaf 7: AVX2/AVX-512 and other XSAVE-managed features are cleared;
//   - leaf 0x8000_0001: ECX.SVM (2), ECX.OSVW (9, whose MSRs are not
//     modelled) and ECX.MONITORX (29, refused like MONITOR) are cleared;
//   - leaf 0x8000_0008: EBX.IRPERF (1) is cleared (HWCR models no
//     IRPERF_EN and there is no instructions-retired counter);
//   - leaf 0x8000_000A (SVM features) returns zeros;
//   - leaf 0x8000_001F (SME/SEV) returns zeros: guest memory is never
//     encrypted, and Linux's decompressor reads MSR 0xC0010131 (SEV status)
//     without a #GP fixup when this leaf announces SEV;
//   - leaves 0x4000_0000-0x4000_00FF are ours: 0x4000_0000 gives the highest
//     hypervisor leaf and the signature "HVGoHVGoHVGo"; 0x4000_0001 is
//     reserved and returns zeros.

// HypervisorSignature is returned in EBX, ECX, EDX of leaf 0x4000_0000.
const HypervisorSignature = "HVGoHVGoHVGo"

// Hypervisor leaves.
const (
	LeafHypervisor    = 0x40000000
	LeafHypervisorMax = 0x40000001
)

// CPUIDFunc executes CPUID on the host.
type CPUIDFunc func(leaf, sub uint32) (a, b, c, d uint32)

// CoreIDBits is the width of the core ID in an APIC ID for ncpu vCPUs:
// the bits needed to number them (SDM vol. 3A 9.9.1).
func CoreIDBits(ncpu int) uint32 {
	n := uint32(0)
	for 1<<n < ncpu {
		n++
	}
	return n
}

// Topology leaf fields (SDM vol. 2A CPUID leaves 0BH/1FH: level type in
// ECX[15:8]; AMD APM vol. 3 E.4.7, E.4.15).
const (
	levelTypeSMT  = 1
	levelTypeCore = 2
	cpuidHTT      = 1 << 28 // leaf 1 EDX
)

// GuestCPUID computes the guest's view of CPUID(leaf, sub) for vCPU index
// vcpu of a VM with ncpu vCPUs.
func GuestCPUID(host CPUIDFunc, vcpu, ncpu int, leaf, sub uint32) (a, b, c, d uint32) {
	ncpu = max(ncpu, 1)
	bits := CoreIDBits(ncpu)
	id := uint32(vcpu)
	if leaf >= LeafHypervisor && leaf <= 0x400000FF {
		if leaf == LeafHypervisor {
			s := HypervisorSignature
			le := func(i int) uint32 {
				return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
			}
			return LeafHypervisorMax, le(0), le(4), le(8)
		}
		return 0, 0, 0, 0
	}
	a, b, c, d = host(leaf, sub)
	switch leaf {
	case 1:
		c &^= 1<<5 | 1<<26 | 1<<27 | 1<<28 | 1<<29 | 1<<12 // VMX, XSAVE, OSXSAVE, AVX, F16C, FMA
		c |= 1 << 31
		c &^= 1<<7 | 1<<8 | 1<<3            // EIST, TM2, MONITOR (refused: #UD)
		c &^= 1<<15 | 1<<2 | 1<<4           // PDCM, DTES64, DS-CPL
		d &^= 1<<22 | 1<<29 | 1<<31 | 1<<21 // ACPI, TM, PBE, DS
		b = b&0x0000FFFF | id<<24 | (uint32(1)<<bits)<<16
		d &^= cpuidHTT
		if ncpu > 1 {
			d |= cpuidHTT
		}
	case 4:
		if a&0x1F != 0 { // a cache (type in 4:0)
			a = a&^(0x3F<<26) | ((uint32(1)<<bits)-1)<<26
			a &^= 0xFFF << 14
			if a>>5&7 >= 3 { // level: the last-level cache is shared
				a |= ((uint32(1) << bits) - 1) << 14
			}
		}
	case 0xB, 0x1F:
		switch sub {
		case 0:
			a, b, c = 0, 1, levelTypeSMT<<8
		case 1:
			a, b, c = bits, uint32(ncpu), levelTypeCore<<8|1
		default:
			a, b, c = 0, 0, sub&0xFF
		}
		d = id
	case 0x8000001E:
		a, b, c, d = id, id&0xFF, 0, 0 // one thread per core, one node
	case 5:
		a, b, c, d = 0, 0, 0, 0 // no MONITOR/MWAIT
	case 6:
		a, b, c, d = a&(1<<2), 0, 0, 0 // ARAT only
	case 7:
		if sub == 0 {
			b &^= 1<<5 | 1<<16 | 1<<17 | 1<<21 | 1<<26 | 1<<27 | 1<<28 | 1<<30 | 1<<31 // AVX2, AVX-512*
			c &^= 1 << 1                                                               // AVX512_VBMI
			d &^= 1<<2 | 1<<3 | 1<<8 | 1<<22 | 1<<24 | 1<<25                           // AVX512 4VNNIW/4FMAPS/VP2INTERSECT, AMX
		}
	case 0xA:
		a, b, c, d = 0, 0, 0, 0 // no PMU
	case 0xD:
		a, b, c, d = 0, 0, 0, 0 // no XSAVE
	case 0x80000001:
		c &^= 1<<2 | 1<<9 | 1<<29 // SVM, OSVW (no OS-visible workaround MSRs), MONITORX (refused like MONITOR)
	case 0x8000000A:
		a, b, c, d = 0, 0, 0, 0
	case 0x80000008:
		b &^= 1 << 1 // IRPERF: HWCR.IRPERF_EN and its counter are not modelled
		c = c&^0xF0FF | bits<<12 | uint32(ncpu-1)
	case 0x8000001F:
		a, b, c, d = 0, 0, 0, 0 // no SME/SEV: guest memory is not encrypted
	}
	return a, b, c, d
}
