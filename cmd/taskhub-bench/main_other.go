//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "taskhub-bench: needs Linux: it reads the subscribers' sockets with epoll and the server's figures from /proc")
	os.Exit(1)
}
