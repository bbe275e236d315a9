//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
)

// streamParser decodes one HTTP/1.1 response that carries an SSE stream, fed in
// whatever pieces the socket returns. It keeps a few dozen bytes of state, never the
// stream itself, so ten thousand of them cost nothing: it reads the status line and
// skips the headers, undoes chunked transfer encoding, and of the SSE fields keeps
// only what a load test needs, the id and whether the event is a batch_update. It never
// looks inside data.
type streamParser struct {
	state     parseState
	head      []byte // the response head until it is complete
	chunkLeft int64  // bytes left in the current chunk
	chunkSize int64  // the chunk size being read
	chunkExt  bool   // in a chunk extension: skip to the end of the line

	// SSE, per the event-stream interpretation of the HTML standard: fields end with
	// LF (CRLF is accepted; a lone CR is not, the server never sends one).
	line     [lineKeep]byte // the first bytes of the current line
	lineLen  int            // bytes of the line seen so far, also past lineKeep
	lastID   int64          // the last event ID, -1 when unset or not a number
	hasData  bool           // the event being read has a data field
	isBatch  bool           // its type is batch_update
	finished bool           // the response ended (last chunk)
}

// lineKeep is how much of a line the parser keeps: enough for "id: " and any int64,
// and for "event: batch_update".
const lineKeep = 32

type parseState uint8

const (
	stateHead parseState = iota
	stateChunkSize
	stateChunkData
	stateChunkEnd
	stateBody // not chunked: the body runs to the end of the connection
	stateDone
)

// maxHead bounds the response head.
const maxHead = 16 << 10

func newStreamParser() *streamParser { return &streamParser{lastID: -1} }

// errNotStream is a response that is not 200 OK.
var errNotStream = errors.New("not an event stream")

// feed parses p. For each dispatched event it calls emit with the event's id (the
// last event ID, -1 when unset) and whether it is a batch_update. headDone reports the
// moment the response head has been read and accepted.
func (ps *streamParser) feed(p []byte, emit func(id int64, batch bool)) (headDone bool, err error) {
	for len(p) > 0 {
		switch ps.state {
		case stateHead:
			ps.head = append(ps.head, p...)
			end := bytes.Index(ps.head, []byte("\r\n\r\n"))
			if end < 0 {
				if len(ps.head) > maxHead {
					return false, fmt.Errorf("response head over %d bytes", maxHead)
				}
				return false, nil
			}
			rest := ps.head[end+4:]
			chunked, err := parseHead(ps.head[:end])
			if err != nil {
				return false, err
			}
			headDone = true
			ps.state = stateBody
			if chunked {
				ps.state = stateChunkSize
			}
			p = append([]byte(nil), rest...)
			ps.head = nil
		case stateChunkSize:
			i := 0
			for ; i < len(p) && p[i] != '\n'; i++ {
				c := p[i]
				switch {
				case ps.chunkExt || c == '\r' || c == ' ' || c == '\t':
				case c == ';':
					ps.chunkExt = true
				default:
					v := unhex(c)
					if v < 0 || ps.chunkSize > 1<<40 {
						return headDone, fmt.Errorf("bad chunk size byte %q", c)
					}
					ps.chunkSize = ps.chunkSize<<4 | int64(v)
				}
			}
			if i == len(p) {
				return headDone, nil
			}
			p = p[i+1:]
			ps.chunkLeft, ps.chunkSize, ps.chunkExt = ps.chunkSize, 0, false
			if ps.chunkLeft == 0 {
				ps.state, ps.finished = stateDone, true
			} else {
				ps.state = stateChunkData
			}
		case stateChunkData:
			n := min(int64(len(p)), ps.chunkLeft)
			ps.sse(p[:n], emit)
			p = p[n:]
			if ps.chunkLeft -= n; ps.chunkLeft == 0 {
				ps.state = stateChunkEnd
			}
		case stateChunkEnd: // the CRLF after a chunk's data
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return headDone, nil
			}
			p = p[i+1:]
			ps.state = stateChunkSize
		case stateBody:
			ps.sse(p, emit)
			p = nil
		case stateDone:
			return headDone, nil
		}
	}
	return headDone, nil
}

// parseHead checks the status line and reports whether the body is chunked.
func parseHead(head []byte) (chunked bool, err error) {
	lines := bytes.Split(head, []byte("\r\n"))
	status := lines[0]
	if !bytes.HasPrefix(status, []byte("HTTP/1.")) || len(status) < 12 || string(status[9:12]) != "200" {
		return false, fmt.Errorf("%w: %q", errNotStream, status)
	}
	for _, l := range lines[1:] {
		name, value, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Transfer-Encoding")) {
			chunked = bytes.EqualFold(bytes.TrimSpace(value), []byte("chunked"))
		}
	}
	return chunked, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// sse parses stream bytes: it keeps the start of each line and skips the rest with
// IndexByte, so a long data line costs a memchr, not a loop in Go.
func (ps *streamParser) sse(p []byte, emit func(id int64, batch bool)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if ps.lineLen < lineKeep {
			copy(ps.line[ps.lineLen:], part)
		}
		ps.lineLen += len(part)
		if i < 0 {
			return
		}
		p = p[i+1:]
		ps.endLine(emit)
	}
}

// endLine interprets the line just ended.
func (ps *streamParser) endLine(emit func(id int64, batch bool)) {
	n := ps.lineLen
	ps.lineLen = 0
	kept := ps.line[:min(n, lineKeep)]
	if n > 0 && n <= lineKeep && kept[n-1] == '\r' {
		kept, n = kept[:n-1], n-1
	}
	if n == 0 { // blank line: dispatch
		if ps.hasData {
			emit(ps.lastID, ps.isBatch)
		}
		ps.hasData, ps.isBatch = false, false
		return
	}
	if kept[0] == ':' { // comment
		return
	}
	name, value, _ := bytes.Cut(kept, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "data":
		ps.hasData = true
	case "id":
		ps.lastID = -1
		if n <= lineKeep {
			ps.lastID = parseSeq(value)
		}
	case "event":
		ps.isBatch = n <= lineKeep && string(value) == "batch_update"
	}
}

// parseSeq parses a decimal seq without allocating; -1 if b is not one.
func parseSeq(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int64(c-'0')
	}
	return v
}
