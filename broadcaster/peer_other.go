//go:build !unix

package broadcaster

import "net"

// peerGone cannot tell without reading: a client that left is noticed at the next write.
func peerGone(net.Conn) bool { return false }
