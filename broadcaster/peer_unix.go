//go:build unix

package broadcaster

import (
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether the client closed or reset c, without waiting or taking
// any byte: a stream never reads its connection, so without this a client that left
// would only be noticed at the next write.
func peerGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR))
		return true // done: never wait for the socket to become readable
	})
	return gone
}
