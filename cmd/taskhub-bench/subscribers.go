//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The subscribers are plain sockets read by a few epoll loops, one locked OS thread
// each, into one shared buffer per loop. A delivery costs one read(2) and a memchr or
// two: no goroutine per subscriber, no buffer per subscriber, no JSON. So the load
// generator's CPU stays a small part of the machine's and the server's figures are
// its own.

// subscriber is one SSE connection. Only its loop touches it once it is registered.
type subscriber struct {
	fd     int
	parser *streamParser
	recv   []int64 // unix nanoseconds each measured event was parsed at, by seq-base-1; 0 = not yet
	last   int64   // the highest measured seq seen
	emit   func(id int64, batch bool)
	now    int64 // unix nanoseconds the read being parsed returned at

	dup, outOfOrder, foreign int64
	closed                   bool
	closeErr                 error
}

// fleet is every subscriber and the loops reading them.
type fleet struct {
	subs  []*subscriber
	loops []*loop
	base  atomic.Int64 // measured seqs are base+1 … base+events; -1: measuring nothing yet
	n     int64        // events measured

	ready     atomic.Int64 // subscribers whose response head arrived
	delivered atomic.Int64 // measured deliveries so far
	closed    atomic.Int64 // subscribers whose connection ended
	stop      atomic.Bool
	wg        sync.WaitGroup
}

// loop is one epoll instance and the thread that waits on it.
type loop struct {
	f    *fleet
	epfd int
	buf  []byte
}

func newFleet(subscribers, events, loops int) (*fleet, error) {
	f := &fleet{subs: make([]*subscriber, subscribers), n: int64(events)}
	f.base.Store(-1)
	for i := range f.subs {
		s := &subscriber{fd: -1, parser: newStreamParser(), recv: make([]int64, events)}
		f.subs[i] = s
	}
	for range loops {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		l := &loop{f: f, epfd: epfd, buf: make([]byte, 256<<10)}
		f.loops = append(f.loops, l)
	}
	for _, s := range f.subs {
		s.emit = func(id int64, batch bool) { f.deliver(s, id, batch) }
	}
	for _, l := range f.loops {
		f.wg.Add(1)
		go l.run()
	}
	return f, nil
}

// deliver records that s parsed the event id (a batch_update: every event after the
// last one it saw, up to id, since its filter matches everything) at its loop's now.
// Called only from s's loop.
func (f *fleet) deliver(s *subscriber, id int64, batch bool) {
	base := f.base.Load()
	if base < 0 || id <= base {
		return // before the measured events: setup
	}
	if id > base+f.n {
		s.foreign++
		return
	}
	from := id
	if batch && s.last > base {
		from = s.last + 1
	} else if batch {
		from = base + 1
	}
	if id <= s.last {
		s.outOfOrder++
		return
	}
	now := s.now
	var got int64
	for seq := from; seq <= id; seq++ {
		i := seq - base - 1
		if s.recv[i] != 0 {
			s.dup++
			continue
		}
		s.recv[i] = now
		got++
	}
	s.last = id
	f.delivered.Add(got)
}

// connect opens the subscribers against 127.0.0.1:port with request, conc at a time,
// and registers each with a loop. It returns when all are connected or one fails.
func (f *fleet) connect(ctx context.Context, port int, request []byte, conc int) error {
	next := atomic.Int64{}
	errs := make(chan error, conc)
	for range conc {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(f.subs)) || ctx.Err() != nil {
					errs <- ctx.Err()
					return
				}
				if err := f.dial(f.subs[i], int32(i), port, request); err != nil {
					next.Store(int64(len(f.subs))) // stop the others
					errs <- fmt.Errorf("subscriber %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
	for range conc {
		err = errors.Join(err, <-errs)
	}
	return err
}

// dial connects one subscriber with a blocking connect and write (bounded by
// SO_SNDTIMEO), then hands the socket, non-blocking, to the loop fd%loops.
func (f *fleet) dial(s *subscriber, idx int32, port int, request []byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w (open-files limit?)", err)
	}
	tv := syscall.NsecToTimeval(int64(10 * time.Second))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	if err := connect(fd, port); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("connect: %w", err)
	}
	for b := request; len(b) > 0; {
		n, err := syscall.Write(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			syscall.Close(fd)
			return fmt.Errorf("write request: %w", err)
		}
		b = b[n:]
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	s.fd = fd
	l := f.loops[fd%len(f.loops)]
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd), Pad: idx}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// connect connects the blocking socket fd to 127.0.0.1:port. A signal (the Go
// runtime preempts with SIGURG) can interrupt connect(2) while the kernel goes on
// connecting: then it asks again until the answer is "connected".
func connect(fd, port int) error {
	sa := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	err := syscall.Connect(fd, sa)
	deadline := time.Now().Add(10 * time.Second)
	for errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EALREADY) || errors.Is(err, syscall.EINPROGRESS) {
		if time.Now().After(deadline) {
			return fmt.Errorf("not connected after 10s: %w", err)
		}
		time.Sleep(time.Millisecond)
		if err = syscall.Connect(fd, sa); errors.Is(err, syscall.EISCONN) {
			err = nil
		}
	}
	return err
}

// run reads every ready subscriber of l until the fleet stops.
func (l *loop) run() {
	defer l.f.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]syscall.EpollEvent, 1024)
	for !l.f.stop.Load() {
		n, err := epollWait(l.epfd, events, 50)
		if err != 0 {
			if err == syscall.EINTR {
				continue
			}
			panic(fmt.Sprintf("epoll_wait: %v", err)) // a bug: bad epfd or events
		}
		for _, ev := range events[:n] {
			l.read(l.f.subs[ev.Pad], int(ev.Fd))
		}
	}
}

// epollWait is epoll_wait(2) as a raw system call, which the Go scheduler does not
// see: a loop keeps its thread and its P throughout (the bench adds a P for each loop
// to GOMAXPROCS), instead of the runtime handing the P off and back around every
// wait, which cost the bench more CPU than its reads. A signal (the runtime's
// preemption) ends a wait early with EINTR, so a loop still stops for the collector.
func epollWait(epfd int, events []syscall.EpollEvent, msec int) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	return int(n), errno
}

// read is read(2) as a raw system call, for the same reason: fd is non-blocking.
func read(fd int, b []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}

// read takes what fd holds, once: level-triggered epoll reports it again if more
// is left.
func (l *loop) read(s *subscriber, fd int) {
	if s.closed {
		return
	}
	n, errno := read(fd, l.buf)
	if errno == syscall.EAGAIN || errno == syscall.EINTR {
		return
	}
	s.now = time.Now().UnixNano()
	var err error
	switch {
	case errno != 0:
		err = errno
	case n == 0:
		err = errors.New("server closed the connection")
	}
	if err == nil {
		var headDone bool
		headDone, err = s.parser.feed(l.buf[:n], s.emit)
		if headDone {
			l.f.ready.Add(1)
		}
	}
	if err != nil {
		s.closed, s.closeErr = true, err
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
		l.f.closed.Add(1)
	}
}

// close stops the loops and closes every socket.
func (f *fleet) close() {
	f.stop.Store(true)
	f.wg.Wait()
	for _, s := range f.subs {
		if s.fd >= 0 {
			syscall.Close(s.fd)
		}
	}
	for _, l := range f.loops {
		syscall.Close(l.epfd)
	}
}
