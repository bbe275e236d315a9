package main

import (
	"fmt"
	"net"
	"net/http"

	"taskhub/broadcaster"
	"taskhub/tasks"
)

// maxHeaderBytes bounds a request's header: http.Server's limit, which it enforces
// before any handler runs.
const maxHeaderBytes = 1 << 20

// netHTTP431 is the whole response net/http writes by itself, in one write, to a
// request whose header is over maxHeaderBytes. http.Server has no way to change it.
const netHTTP431 = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"

// json431 is the body sent instead: the error shape of every other response.
var json431 = broadcaster.ErrorBody(tasks.EInvalid, "the request's header must be at most 1 MiB", "")

// errorShapeListener hands out connections that send json431 where net/http writes
// netHTTP431.
type errorShapeListener struct{ *net.TCPListener }

// Accept implements net.Listener.
func (l errorShapeListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return errorShapeConn{c}, nil
}

// errorShapeConn is a TCP connection (its other methods, which net/http and the event
// streams use, are the TCPConn's) whose Write turns netHTTP431 into a 431 with json431.
type errorShapeConn struct{ *net.TCPConn }

func (c errorShapeConn) Write(p []byte) (int, error) {
	if len(p) != len(netHTTP431) || string(p) != netHTTP431 {
		return c.TCPConn.Write(p)
	}
	_, err := fmt.Fprintf(c.TCPConn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		http.StatusRequestHeaderFieldsTooLarge, http.StatusText(http.StatusRequestHeaderFieldsTooLarge), len(json431), json431)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
