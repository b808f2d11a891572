package boot

// File descriptors: the Go runtime needs exactly two kinds, an epoll
// instance for its network poller and an eventfd to wake it (netpollBreak),
// plus the console on 1 and 2. Device interrupts for host drivers become
// eventfd wake-ups later.

const (
	fdNone = iota
	fdEpoll
	fdEventfd
	maxFDs  = 32
	firstFD = 3

	epollIn     = 0x001
	epollCtlAdd = 1
	epollCtlDel = 2
	epollCtlMod = 3
)

type fdObject struct {
	kind    int32
	counter uint64 // eventfd
	// epoll: the registered file descriptors with their event masks and
	// user data.
	watch [4]epollWatch
}

type epollWatch struct {
	fd     int64
	events uint32
	data   uint64
}

var fds [maxFDs]fdObject

func newFD(kind int32) int64 {
	for i := firstFD; i < maxFDs; i++ {
		if fds[i].kind == fdNone {
			fds[i] = fdObject{kind: kind}
			for j := range fds[i].watch {
				fds[i].watch[j].fd = -1
			}
			return int64(i)
		}
	}
	return -24 // EMFILE
}

func fdOf(fd int64, kind int32) *fdObject {
	if fd < firstFD || fd >= maxFDs || fds[fd].kind != kind {
		return nil
	}
	return &fds[fd]
}

func sysWriteFD(fd int64, buf, n uint64) int64 {
	if n > 1<<20 {
		n = 1 << 20
	}
	b, ok := userBytes(buf, n)
	if !ok {
		return -_EFAULT
	}
	switch {
	case fd == 1 || fd == 2:
		consoleWrite(b)
		return int64(n)
	case fdOf(fd, fdEventfd) != nil:
		if n < 8 {
			return -_EINVAL
		}
		fdOf(fd, fdEventfd).counter += le64(b)
		wakeEpollWaiters()
		return 8
	}
	return -_EBADF
}

func sysReadFD(fd int64, buf, n uint64) int64 {
	e := fdOf(fd, fdEventfd)
	if e == nil {
		return -_EBADF
	}
	if n < 8 {
		return -_EINVAL
	}
	if e.counter == 0 {
		return -_EAGAIN // the runtime opens it non-blocking
	}
	b, ok := userBytes(buf, 8)
	if !ok {
		return -_EFAULT
	}
	le64put(b, e.counter)
	e.counter = 0
	return 8
}

func sysEpollCtlCall(epfd int64, op uint64, fd int64, ev uint64) int64 {
	ep := fdOf(epfd, fdEpoll)
	if ep == nil {
		return -_EBADF
	}
	if fdOf(fd, fdEventfd) == nil {
		return -_EBADF // only eventfds can be watched
	}
	slot := -1
	for i := range ep.watch {
		if ep.watch[i].fd == fd {
			slot = i
		}
	}
	switch op {
	case epollCtlAdd, epollCtlMod:
		b, ok := userBytes(ev, 12)
		if !ok {
			return -_EFAULT
		}
		if slot < 0 {
			if op == epollCtlMod {
				return -_ENOENT
			}
			for i := range ep.watch {
				if ep.watch[i].fd < 0 {
					slot = i
					break
				}
			}
			if slot < 0 {
				return -_ENOMEM
			}
		}
		ep.watch[slot] = epollWatch{
			fd:     fd,
			events: uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24,
			data:   le64(b[4:12]),
		}
	case epollCtlDel:
		if slot < 0 {
			return -_ENOENT
		}
		ep.watch[slot].fd = -1
	default:
		return -_EINVAL
	}
	return 0
}

// epollCollect writes the ready events of ep into the user buffer and
// returns how many.
func epollCollect(ep *fdObject, buf uint64, max int64) int64 {
	n := int64(0)
	for i := range ep.watch {
		w := &ep.watch[i]
		if n >= max || w.fd < 0 {
			continue
		}
		e := fdOf(w.fd, fdEventfd)
		if e == nil || e.counter == 0 || w.events&epollIn == 0 {
			continue
		}
		b, ok := userBytes(buf+uint64(n)*12, 12)
		if !ok {
			return -_EFAULT
		}
		b[0], b[1], b[2], b[3] = epollIn, 0, 0, 0
		le64put(b[4:], w.data)
		n++
	}
	return n
}

func sysEpollWaitCall(t *thread, epfd int64, buf uint64, max int64, timeoutMs int64) int64 {
	ep := fdOf(epfd, fdEpoll)
	if ep == nil {
		return -_EBADF
	}
	if max <= 0 {
		return -_EINVAL
	}
	if n := epollCollect(ep, buf, max); n != 0 || timeoutMs == 0 {
		return n
	}
	var deadline int64
	if timeoutMs > 0 {
		deadline = nanotime() + timeoutMs*1e6
	}
	block(t, waitEpoll, uint64(epfd), deadline)
	return 0
}

// wakeEpollWaiters completes the epoll waits that now have events.
func wakeEpollWaiters() {
	for i := range threads[:threadHigh] {
		w := &threads[i]
		if w.state != threadBlocked || w.waitKind != waitEpoll {
			continue
		}
		ep := fdOf(int64(w.waitAddr), fdEpoll)
		if ep == nil {
			wake(w, -_EBADF)
			continue
		}
		if n := epollCollect(ep, w.f.rsi, int64(w.f.rdx)); n != 0 {
			wake(w, n)
		}
	}
}
