// Command taskhub-bench is a load generator for TaskHub's event stream. It opens N
// SSE subscribers on GET /events/stream, publishes M events at a rate through
// PATCH /api/tasks/{id}, and prints delivered/expected, the p50/p99/max latency from
// each PATCH being sent to each subscriber parsing its event, the server's RSS per
// subscriber and the server's CPU seconds while publishing.
//
// By default it starts the server itself (--server, a built taskhub binary) on
// 127.0.0.1:0 with a new database in a temp dir, and stops it at the end. With --url
// it uses a running server on a loopback address instead; RSS and CPU then come from
// --pid, if given. Every run is bounded by --timeout and talks to 127.0.0.1 only.
//
// How it measures:
//   - The subscribers are raw sockets read by --readers epoll threads; a parser of a
//     few dozen bytes per subscriber undoes chunked encoding and keeps only each
//     event's id, so a delivery costs the bench one read(2), never a JSON decode.
//   - One more subscriber, the recorder, decodes each event once to learn which PATCH
//     (task id and version) made each seq, and the event's size.
//   - Latency is from the bench's clock just before the PATCH was written to the read
//     that completed the event at a subscriber; the summary also gives it from the
//     event's "time" field, which the server sets before committing.
//   - Server RSS is VmRSS of /proc/PID/status before the subscribers connect and once
//     they all have; CPU is utime+stime of /proc/PID/stat over the publish phase, from
//     the first PATCH until every delivery arrived (or --drain after the last PATCH).
//
// Examples (go build -o bin/taskhub ./cmd/taskhub first):
//
//	go run ./cmd/taskhub-bench --subscribers 1000 --events 1000 --rate 100
//	go run ./cmd/taskhub-bench --subscribers 10000 --events 1 --rate 0
//	go run ./cmd/taskhub-bench --subscribers 1000 --events 5000 --rate 0 --size 200 --publishers 8
//
// With --floor it starts, instead of taskhub, a floor server (floor.go) that does the
// least a server can to deliver the same events, so that one run beside another tells
// how much of a figure is taskhub's and how much the machine's:
//
//	go run ./cmd/taskhub-bench --floor --subscribers 10000 --events 12 --rate 2 --size 508
//
// Four more runs are modes of their own:
//
//   - --storm, the restart storm: it makes --events events (1000 unless given), then
//     connects --subscribers (1000 unless given) at once (--dialers at a time), each
//     with Last-Event-ID that many events back, and reports the time until every one
//     has every event up to the last, the server's CPU over that, and replayed events
//     per server CPU-second. With --storm-restart it restarts the server on its
//     database between the two, as a real restart does.
//   - --soak: --subscribers (1000 unless given), each from the log's end, follow
//     --rate events a second for --duration (30m unless given), each checking that
//     every event comes once and in order; every --reconnect-every, the next
//     --reconnect-fraction of them reconnect with Last-Event-ID. Every --report-every
//     it prints a soak_sample line: the server's goroutines (go_goroutines of
//     /metrics), open files (/proc/PID/fd) and RSS, and the deliveries so far.
//   - --writes, the durable write path: --publishers clients (32 unless given), one
//     connection each, create tasks for --duration (10s unless given), then update
//     them for as long; it reports creates/s and updates/s, their latency, and the
//     server's CPU. No subscribers.
//   - --nodes N --db postgres://…: N servers on one PostgreSQL database, which must
//     have no task and no event; --subscribers on each node, --events at --rate
//     written to node 0 only (16 publishers unless given). Per node it reports
//     deliveries (missing, duplicate, out of order), the latency from node 0's answer
//     to each PATCH (and from its send) to each subscriber parsing the event, and the
//     server's CPU.
//
// Each stops by itself, and fails when a subscriber misses an event, gets one twice,
// or is closed by the server:
//
//	go run ./cmd/taskhub-bench --storm
//	go run ./cmd/taskhub-bench --storm --storm-restart
//	go run ./cmd/taskhub-bench --soak --duration 30m
//	go run ./cmd/taskhub-bench --writes
//	go run ./cmd/taskhub-bench --nodes 3 --db postgres://127.0.0.1/empty --subscribers 1000
//
// Linux only: it reads /proc and reads the subscribers' sockets with epoll; built for
// another system, it says so and exits. To profile the server, see
// testdata/pprof_overlay.go, or pass --perf FILE.
package main
