package boot

import "unsafe"

// Signals exist here for one purpose: a fault in Go code (a nil
// dereference, an illegal instruction) must reach the runtime's handler so it
// becomes an ordinary Go panic. Delivery follows the Linux x86-64 ABI
// (arch/x86/kernel/signal_64.c): an rt_sigframe with siginfo and ucontext on
// the thread's alternate stack, the handler called with (sig, info, uctx),
// and rt_sigreturn restoring the (possibly edited) context.

const (
	sigILL  = 4
	sigTRAP = 5
	sigBUS  = 7
	sigFPE  = 8
	sigKILL = 9
	sigSEGV = 11
	sigURG  = 23
	nsig    = 65

	saSiginfo   = 0x4
	saOnstack   = 0x08000000
	saRestorer  = 0x04000000
	saNodefer   = 0x40000000
	saResethand = 0x80000000

	ssOnstack = 1
	ssDisable = 2

	segvMaperr = 1
	segvAccerr = 2
	siKernel   = 0x80
	illIllopn  = 2
	fpeIntdiv  = 1
	trapBrkpt  = 1
)

type sigactionK struct {
	handler  uint64
	flags    uint64
	restorer uint64
	mask     uint64
}

var sigactions [nsig]sigactionK

func sysSigaction(sig, act, oact, size uint64) int64 {
	if sig == 0 || sig >= nsig || size != 8 {
		return -_EINVAL
	}
	if oact != 0 {
		b, ok := userBytes(oact, 32)
		if !ok {
			return -_EFAULT
		}
		a := sigactions[sig]
		le64put(b[0:], a.handler)
		le64put(b[8:], a.flags)
		le64put(b[16:], a.restorer)
		le64put(b[24:], a.mask)
	}
	if act != 0 {
		if sig == sigKILL || sig == 19 {
			return -_EINVAL
		}
		b, ok := userBytes(act, 32)
		if !ok {
			return -_EFAULT
		}
		sigactions[sig] = sigactionK{le64(b[0:]), le64(b[8:]), le64(b[16:]), le64(b[24:])}
	}
	return 0
}

func sysSigprocmask(t *thread, how, set, oset, size uint64) int64 {
	if size != 8 {
		return -_EINVAL
	}
	if oset != 0 {
		if r := putUser64(oset, t.sigmask); r != 0 {
			return r
		}
	}
	if set != 0 {
		m, ok := getUser64(set)
		if !ok {
			return -_EFAULT
		}
		switch how {
		case 0: // SIG_BLOCK
			t.sigmask |= m
		case 1: // SIG_UNBLOCK
			t.sigmask &^= m
		case 2: // SIG_SETMASK
			t.sigmask = m
		default:
			return -_EINVAL
		}
	}
	return 0
}

func onAltStack(t *thread, sp uint64) bool {
	return t.altSize != 0 && sp > t.altSP && sp <= t.altSP+t.altSize
}

func sysSigaltstackCall(t *thread, ss, oss uint64) int64 {
	if oss != 0 {
		b, ok := userBytes(oss, 24)
		if !ok {
			return -_EFAULT
		}
		flags := uint64(0)
		if t.altSize == 0 {
			flags = ssDisable
		} else if onAltStack(t, t.f.rsp) {
			flags = ssOnstack
		}
		le64put(b[0:], t.altSP)
		le64put(b[8:], flags)
		le64put(b[16:], t.altSize)
	}
	if ss != 0 {
		b, ok := userBytes(ss, 24)
		if !ok {
			return -_EFAULT
		}
		if onAltStack(t, t.f.rsp) {
			return -_EPERM
		}
		flags := le64(b[8:]) & 0xFFFFFFFF
		switch {
		case flags&ssDisable != 0:
			t.altSP, t.altSize = 0, 0
		case flags == 0:
			sp, size := le64(b[0:]), le64(b[16:])
			if size < 2048 {
				return -12 // ENOMEM: below MINSIGSTKSZ
			}
			t.altSP, t.altSize = sp, size
		default:
			return -_EINVAL
		}
	}
	return 0
}

// threadException turns a CPU exception raised by a thread into a signal.
func threadException(c *percpu, t *thread) {
	var sig, code int32
	var addr uint64
	switch t.f.vector {
	case 14: // #PF
		sig, addr = sigSEGV, readCR2()
		code = segvMaperr
		if t.f.errcode&1 != 0 {
			code = segvAccerr
		}
	case 13, 12, 11, 10: // #GP, #SS, #NP, #TS
		sig, code = sigSEGV, siKernel
	case 17: // #AC
		sig, code = sigBUS, siKernel
	case 6: // #UD
		sig, code, addr = sigILL, illIllopn, t.f.rip
	case 0, 16, 19: // #DE, #MF, #XM
		sig, code, addr = sigFPE, fpeIntdiv, t.f.rip
	case 1, 3: // #DB, #BP
		sig, code, addr = sigTRAP, trapBrkpt, t.f.rip
	default:
		fatalThread(t, "unexpected exception")
		return
	}
	deliverSignal(t, sig, code, addr)
}

// Offsets in the Linux rt_sigframe (arch/x86/include/asm/sigframe.h,
// uapi/asm/sigcontext.h, uapi/asm-generic/ucontext.h).
const (
	sfPretcode = 0
	sfUC       = 8
	ucFlags    = 0
	ucLink     = 8
	ucStack    = 16 // stack_t: sp, flags, size
	ucMcontext = 40 // struct sigcontext, 256 bytes
	ucSigmask  = 296
	ucSize     = 304
	sfInfo     = sfUC + ucSize // siginfo, 128 bytes
	sfFP       = sfInfo + 128  // FXSAVE image (16-aligned by construction)
	sfSize     = sfFP + 512
)

// sigcontext register order.
var mcontextOrder = [...]int{8, 9, 10, 11, 12, 13, 14, 15, 'i', 's', 'p', 'b', 'd', 'a', 'c', 'S', 'r', 'f'}

func deliverSignal(t *thread, sig, code int32, addr uint64) {
	act := &sigactions[sig]
	if act.handler <= 1 || act.flags&saRestorer == 0 {
		fatalThread(t, "fault with no handler")
		return
	}
	if t.sigmask&(1<<(sig-1)) != 0 {
		fatalThread(t, "fault while the signal is blocked (fault inside the handler)")
		return
	}
	sp := t.f.rsp - 128 // skip the red zone
	if act.flags&saOnstack != 0 && t.altSize != 0 && !onAltStack(t, t.f.rsp) {
		sp = t.altSP + t.altSize
	}
	sp = (sp-sfSize)&^15 - 8
	b, ok := userBytes(sp, sfSize)
	if !ok {
		fatalThread(t, "signal frame does not fit on the stack")
		return
	}
	clear(b)
	le64put(b[sfPretcode:], act.restorer)
	uc := b[sfUC:]
	le64put(uc[ucStack:], t.altSP)
	stFlags := uint64(0)
	if t.altSize == 0 {
		stFlags = ssDisable
	} else if onAltStack(t, t.f.rsp) {
		stFlags = ssOnstack
	}
	le64put(uc[ucStack+8:], stFlags)
	le64put(uc[ucStack+16:], t.altSize)
	mc := uc[ucMcontext:]
	for i, r := range mcontextOrder {
		le64put(mc[i*8:], *frameReg(&t.f, r))
	}
	// cs, gs, fs, ss as four u16s
	mc[144], mc[145] = byte(t.f.cs), byte(t.f.cs>>8)
	mc[150], mc[151] = byte(t.f.ss), byte(t.f.ss>>8)
	le64put(mc[152:], t.f.errcode)
	le64put(mc[160:], t.f.vector)
	le64put(mc[168:], t.sigmask)
	le64put(mc[176:], addr) // cr2
	le64put(mc[184:], sp+sfFP)
	le64put(uc[ucSigmask:], t.sigmask)
	info := b[sfInfo:]
	le32put(info[0:], uint32(sig))
	le32put(info[8:], uint32(code))
	le64put(info[16:], addr)
	copy(b[sfFP:sfFP+512], t.fxArea[fxOffset(t):fxOffset(t)+512])

	if act.flags&saNodefer == 0 {
		t.sigmask |= 1 << (sig - 1)
	}
	t.sigmask |= act.mask
	t.f.rsp = sp
	t.f.rip = act.handler
	t.f.rdi = uint64(sig)
	t.f.rsi = sp + sfInfo
	t.f.rdx = sp + sfUC
	t.f.rax = 0
	t.f.rflags &^= 0x100 | 0x400 // TF, DF
}

// sigreturn restores the context saved by deliverSignal, as edited by the
// handler. RSP points just past the popped pretcode.
func sigreturn(t *thread) {
	sp := t.f.rsp - 8
	b, ok := userBytes(sp, sfSize)
	if !ok {
		fatalThread(t, "rt_sigreturn with a bad frame")
		return
	}
	uc := b[sfUC:]
	mc := uc[ucMcontext:]
	var f frame = t.f
	for i, r := range mcontextOrder {
		*frameReg(&f, r) = le64(mc[i*8:])
	}
	// Only the arithmetic flags and DF/TF/AC may change; IF stays on.
	const userFlags = 0x0DD5 | 0x40000
	f.rflags = (t.f.rflags &^ userFlags) | (f.rflags & userFlags) | 0x200
	f.cs, f.ss = selKernelCode, selKernelData
	if !canonical(f.rip) || !canonical(f.rsp) {
		fatalThread(t, "rt_sigreturn to a non-canonical address")
		return
	}
	t.f = f
	t.f.vector = vecSyscall
	t.sigmask = le64(uc[ucSigmask:])
	if fp := le64(mc[184:]); fp != 0 {
		if src, ok := userBytes(fp, 512); ok {
			copy(t.fxArea[fxOffset(t):fxOffset(t)+512], src)
		}
	}
}

func fxOffset(t *thread) int {
	a := addrOf(&t.fxArea[0])
	return int((a+15)&^15 - a)
}

func frameReg(f *frame, r int) *uint64 {
	switch r {
	case 8:
		return &f.r8
	case 9:
		return &f.r9
	case 10:
		return &f.r10
	case 11:
		return &f.r11
	case 12:
		return &f.r12
	case 13:
		return &f.r13
	case 14:
		return &f.r14
	case 15:
		return &f.r15
	case 'i':
		return &f.rdi
	case 's':
		return &f.rsi
	case 'p':
		return &f.rbp
	case 'b':
		return &f.rbx
	case 'd':
		return &f.rdx
	case 'a':
		return &f.rax
	case 'c':
		return &f.rcx
	case 'S':
		return &f.rsp
	case 'r':
		return &f.rip
	}
	return &f.rflags
}

func le32put(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// sysKill handles tkill/tgkill. The runtime sends itself signals only to die
// (raise of a fatal signal) or to preempt (SIGURG, off here).
func sysKill(t *thread, sig uint64) int64 {
	switch {
	case sig == 0:
		return 0
	case sig >= nsig:
		return -_EINVAL
	case sig == sigURG:
		return 0
	}
	var l line
	l.s("hv: signal ").dec(sig).s(" raised by tid ").dec(uint64(t.tid)).s(": exiting").print()
	exitGroup(2)
	return 0
}

// fatalThread reports a fault that cannot be delivered and ends the run, as
// Linux would kill the process.
func fatalThread(t *thread, why string) {
	var l line
	l.s("hv: fatal: tid ").dec(uint64(t.tid)).s(": ").s(why).s(": vector ").dec(t.f.vector).s(" err=").hex(t.f.errcode).s(" rip=").hex(t.f.rip).s(" rsp=").hex(t.f.rsp).s(" cr2=").hex(readCR2()).print()
	dumpFrame(&t.f)
	exitGroup(2)
}

var _ = unsafe.Pointer(nil)
