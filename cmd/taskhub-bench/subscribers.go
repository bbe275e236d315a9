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
	loop   *loop
	parser *streamParser
	recv   []int64 // unix nanoseconds each measured event was parsed at, by seq-base-1; 0 = not yet
	last   int64   // the highest measured seq seen; following, the last seq seen
	emit   func(id int64, batch bool)
	now    int64 // unix nanoseconds the read being parsed returned at
	headAt int64 // unix nanoseconds its (last) response head was read at

	dup, outOfOrder, foreign int64
	closed                   bool
	closeErr                 error
}

// fleetConfig is what a fleet opens and how it counts.
type fleetConfig struct {
	subscribers int
	events      int // events measured: each subscriber keeps when it parsed each (not when following)
	loops       int
	port        int    // on 127.0.0.1
	host, path  string // of the stream's request
	// lastEventID is the Last-Event-ID of every subscriber's first request; -1: none.
	lastEventID int64
	// follow, for a long run: instead of keeping when it parsed each event, each
	// subscriber checks that each event is the one after the last it saw, from
	// lastEventID on, and reconnects from its last one when asked to.
	follow bool
}

// fleet is every subscriber and the loops reading them.
type fleet struct {
	fleetConfig
	subs  []*subscriber
	loops []*loop
	base  atomic.Int64 // measured seqs are base+1 … base+events; -1: measuring nothing yet
	n     int64        // events measured

	ready      atomic.Int64 // response heads read (reconnections' too)
	delivered  atomic.Int64 // measured deliveries so far; following, events that came in order
	closed     atomic.Int64 // subscribers whose connection ended
	firstClose atomic.Pointer[error]
	gaps       atomic.Int64 // following: events missing where the next one came
	dups       atomic.Int64 // following: events that came again, or out of order
	redials    atomic.Int64 // following: reconnections made
	stop       atomic.Bool
	wg         sync.WaitGroup
}

// loop is one epoll instance and the thread that waits on it.
type loop struct {
	f      *fleet
	epfd   int
	buf    []byte
	bytes  int64       // read from its streams, response heads and framing included
	asked  atomic.Bool // redial holds subscribers
	mu     sync.Mutex
	redial []int // subscribers to reconnect, by index
}

func newFleet(cfg fleetConfig) (*fleet, error) {
	f := &fleet{fleetConfig: cfg, subs: make([]*subscriber, cfg.subscribers), n: int64(cfg.events)}
	f.base.Store(-1)
	for range cfg.loops {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		l := &loop{f: f, epfd: epfd, buf: make([]byte, 256<<10)}
		f.loops = append(f.loops, l)
	}
	for i := range f.subs {
		s := &subscriber{fd: -1, loop: f.loops[i%len(f.loops)], parser: newStreamParser()}
		if cfg.follow {
			s.last = cfg.lastEventID
			s.emit = func(id int64, _ bool) { f.next(s, id) }
		} else {
			s.recv = make([]int64, cfg.events)
			s.emit = func(id int64, batch bool) { f.deliver(s, id, batch) }
		}
		f.subs[i] = s
	}
	for _, l := range f.loops {
		f.wg.Add(1)
		go l.run()
	}
	return f, nil
}

// request is the stream's request, from lastEventID on (-1: from now).
func (f *fleet) request(lastEventID int64) []byte {
	b := []byte("GET " + f.path + " HTTP/1.1\r\nHost: " + f.host + "\r\nUser-Agent: taskhub-bench\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n")
	if lastEventID >= 0 {
		b = fmt.Appendf(b, "Last-Event-ID: %d\r\n", lastEventID)
	}
	return append(b, "\r\n"...)
}

// next records, following, that s parsed the event id: the one after the last it
// saw, or else a gap or a duplicate. Called only from s's loop.
func (f *fleet) next(s *subscriber, id int64) {
	if id <= s.last {
		f.dups.Add(1)
		return
	}
	if missed := id - s.last - 1; missed > 0 {
		f.gaps.Add(missed)
	}
	s.last = id
	f.delivered.Add(1)
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

// connect opens the subscribers, conc at a time, and registers each with its loop.
// It returns when all are connected or one fails.
func (f *fleet) connect(ctx context.Context, conc int) error {
	request := f.request(f.lastEventID)
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
				if err := f.dial(f.subs[i], int32(i), request); err != nil {
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

// open connects every subscriber, conc at a time, and waits until each has read its
// response head. It fails if one could not connect or its connection ended, and
// returns how long it took.
func (f *fleet) open(ctx context.Context, conc int) (time.Duration, error) {
	start := time.Now()
	if err := f.connect(ctx, conc); err != nil {
		return 0, err
	}
	for f.ready.Load()+f.closed.Load() < int64(len(f.subs)) {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("%d of %d subscribers got a response: %w", f.ready.Load(), len(f.subs), ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if c := f.closed.Load(); c > 0 {
		return took, fmt.Errorf("%d subscribers failed while connecting: %v", c, f.firstCloseErr())
	}
	return took, nil
}

// firstCloseErr is why the first subscriber to be closed was.
func (f *fleet) firstCloseErr() error {
	if p := f.firstClose.Load(); p != nil {
		return *p
	}
	return nil
}

// closeSub marks s closed because of err. Called only from s's loop.
func (f *fleet) closeSub(s *subscriber, err error) {
	s.closed, s.closeErr = true, err
	f.firstClose.CompareAndSwap(nil, &err)
	f.closed.Add(1)
}

// dial connects one subscriber with a blocking connect and write (bounded by
// SO_SNDTIMEO), then hands the socket, non-blocking, to its loop.
func (f *fleet) dial(s *subscriber, idx int32, request []byte) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w (open-files limit?)", err)
	}
	tv := syscall.NsecToTimeval(int64(10 * time.Second))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	if err := connect(fd, f.port); err != nil {
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
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd), Pad: idx}
	if err := syscall.EpollCtl(s.loop.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	s.fd = fd // its loop reads the fd of each event, not this
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
		if l.asked.Load() {
			l.redialAsked()
		}
	}
}

// reconnect asks subscriber i's loop to close its connection and open a new one from
// the last event it saw, with Last-Event-ID. Following only.
func (f *fleet) reconnect(i int) {
	l := f.subs[i].loop
	l.mu.Lock()
	l.redial = append(l.redial, i)
	l.mu.Unlock()
	l.asked.Store(true)
}

// redialAsked reconnects the subscribers reconnect asked for. A subscriber whose
// connection has ended stays closed; one that cannot connect again is closed.
func (l *loop) redialAsked() {
	l.asked.Store(false)
	l.mu.Lock()
	asked := l.redial
	l.redial = nil
	l.mu.Unlock()
	for _, i := range asked {
		s := l.f.subs[i]
		if s.closed {
			continue
		}
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
		syscall.Close(s.fd)
		s.fd = -1
		s.parser = newStreamParser()
		if err := l.f.dial(s, int32(i), l.f.request(s.last)); err != nil {
			l.f.closeSub(s, fmt.Errorf("reconnect: %w", err))
			continue
		}
		l.f.redials.Add(1)
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
		l.bytes += int64(n)
		var headDone bool
		headDone, err = s.parser.feed(l.buf[:n], s.emit)
		if headDone {
			s.headAt = s.now
			l.f.ready.Add(1)
		}
	}
	if err != nil {
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
		l.f.closeSub(s, err)
	}
}

// bytesRead is what the subscribers have read, once the fleet is closed.
func (f *fleet) bytesRead() int64 {
	var n int64
	for _, l := range f.loops {
		n += l.bytes
	}
	return n
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
