package main

import (
	"errors"
	"syscall"
)

// wsaeaddrinuse is Windows' WSAEADDRINUSE, which package syscall does not name.
const wsaeaddrinuse = syscall.Errno(10048)

// addrInUse reports whether err says that the address to listen on is taken.
func addrInUse(err error) bool { return errors.Is(err, wsaeaddrinuse) }
