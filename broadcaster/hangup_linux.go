package broadcaster

import (
	"fmt"
	"sync"
	"syscall"
)

// hangups notices at once when a client closes its stream's connection, with one
// epoll set for every stream and one goroutine waiting on it: a stream never reads its
// connection, and a goroutine per stream to read it would double what an idle
// subscriber costs.
type hangups struct {
	epfd int
	wake [2]int // a pipe: a byte on it ends run

	mu   sync.Mutex
	next int32
	subs map[int32]*subscriber // by the token registered with the fd, never the fd itself, which the kernel gives again once closed
}

func newHangups() (*hangups, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &hangups{epfd: epfd, subs: map[int32]*subscriber{}}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		w.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return w, nil
}

// add watches s's connection for the client's hang-up. A connection that is not a
// socket is left to the next write to notice.
func (w *hangups) add(s *subscriber) {
	sc, ok := s.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	token := w.next & 0x7fffffff
	_ = raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: token}
		if syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) == nil {
			s.hangupToken, s.hangupFD = token, int(fd)
			w.subs[token] = s
		}
	})
}

// remove stops watching s. It must come before s's connection closes.
func (w *hangups) remove(s *subscriber) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.subs[s.hangupToken]; ok && s.hangupToken != 0 {
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, s.hangupFD, nil)
		delete(w.subs, s.hangupToken)
	}
}

// run tells each subscriber whose client hung up, until stop.
func (w *hangups) run() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == -1 {
				return
			}
			w.mu.Lock()
			s := w.subs[ev.Fd]
			w.mu.Unlock()
			if s != nil {
				s.peerGone.Store(true)
				s.signal()
			}
		}
	}
}

// stop ends run, which must have been started, and waits for it through done.
func (w *hangups) stop(done <-chan struct{}) {
	_, _ = syscall.Write(w.wake[1], []byte{0})
	<-done
	w.closeFDs()
}

func (w *hangups) closeFDs() {
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
	syscall.Close(w.epfd)
}
