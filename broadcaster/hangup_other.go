//go:build !linux

package broadcaster

import "errors"

// hangups is Linux's: elsewhere a client that left is noticed by the keepalive's look
// at each connection (peerGone), or at the next write.
type hangups struct{}

func newHangups() (*hangups, error) { return nil, errors.New("not on this system") }

func (*hangups) add(*subscriber)      {}
func (*hangups) remove(*subscriber)   {}
func (*hangups) run()                 {}
func (*hangups) stop(<-chan struct{}) {}
