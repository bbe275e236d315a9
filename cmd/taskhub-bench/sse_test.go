//go:build linux

package main

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type parsed struct {
	id    int64
	batch bool
}

// feedAll feeds stream to a new parser in pieces cut at the given offsets.
func feedAll(t *testing.T, stream string, cuts []int) (events []parsed, heads int, finished bool, err error) {
	t.Helper()
	ps := newStreamParser()
	emit := func(id int64, batch bool) { events = append(events, parsed{id, batch}) }
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		head, e := ps.feed([]byte(stream[prev:c]), emit)
		if head {
			heads++
		}
		if e != nil {
			return events, heads, ps.finished, e
		}
		prev = c
	}
	return events, heads, ps.finished, nil
}

// chunk encodes body as HTTP/1.1 chunks of at most n bytes, with a last chunk.
func chunk(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		b.WriteString(strings.ToUpper(strconv.FormatInt(int64(k), 16)) + "\r\n" + body[:k] + "\r\n")
		body = body[k:]
	}
	return b.String()
}

const (
	chunkedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	plainHead   = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	sseBody     = "retry: 3000\n: connected abc\n\n" +
		"id: 7\nevent: task_updated\ndata: {\"seq\":7,\"type\":\"task_updated\",\"task\":{\"title\":\"id: 99\\n\"}}\n\n" +
		": keepalive\n\n" +
		"id: 8\r\nevent: task_created\r\ndata: {\"seq\":8,\"pad\":\"" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "\"}\r\n\r\n" +
		"id: 12\nevent: batch_update\ndata: {\"events\":[]}\n\n" +
		"event: task_deleted\ndata: {}\n\n" + // no id field: the last id stays
		"id: 123456789012\ndata\n\n" +
		"id: 13\nevent: task_updated\n\n" // no data: not dispatched
)

var wantEvents = []parsed{{7, false}, {8, false}, {12, true}, {12, false}, {123456789012, false}}

func TestStreamParser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		done   bool
	}{
		{"chunked", chunkedHead + chunk(sseBody, 37) + "0\r\n\r\n", true},
		{"chunked with extensions", chunkedHead + chunkWithExt(sseBody, 1000) + "0\r\n\r\n", true},
		{"one byte chunks", chunkedHead + chunk(sseBody, 1), false},
		{"not chunked", plainHead + sseBody, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, byte by byte, and in random pieces.
			splits := [][]int{nil, seq(1, len(tc.stream))}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 50 {
				var cuts []int
				for c := rng.IntN(20); c < len(tc.stream); c += 1 + rng.IntN(40) {
					cuts = append(cuts, c)
				}
				splits = append(splits, cuts)
			}
			for _, cuts := range splits {
				got, heads, done, err := feedAll(t, tc.stream, cuts)
				if err != nil {
					t.Fatalf("cuts %v: %v", cuts, err)
				}
				if !slices.Equal(got, wantEvents) {
					t.Fatalf("cuts %v: events %v, want %v", cuts, got, wantEvents)
				}
				if heads != 1 {
					t.Errorf("head reported %d times, want once", heads)
				}
				if done != tc.done {
					t.Errorf("finished %v, want %v", done, tc.done)
				}
			}
		})
	}
}

func chunkWithExt(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		b.WriteString(strconv.FormatInt(int64(k), 16) + ";name=value\r\n" + body[:k] + "\r\n")
		body = body[k:]
	}
	return b.String()
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestStreamParserRefusesOtherResponses(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{}",
		"HTTP/1.1 401 Unauthorized\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n\r\n",
	} {
		if _, _, _, err := feedAll(t, head, nil); err == nil {
			t.Errorf("%q: no error", head)
		}
	}
	if _, _, _, err := feedAll(t, chunkedHead+"zz\r\n", nil); err == nil {
		t.Error("bad chunk size: no error")
	}
}

func TestParseSeq(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "42": 42, "123456789012345678": 123456789012345678,
		"": -1, "-1": -1, "4x": -1, " 4": -1, "1234567890123456789": -1} {
		if got := parseSeq([]byte(in)); got != want {
			t.Errorf("parseSeq(%q) = %d, want %d", in, got, want)
		}
	}
}
