// This file is not part of taskhub-bench. It is added to package main of
// cmd/taskhub at build time, with go build -overlay, to profile the server without
// editing its code:
//
//	cat > /tmp/overlay.json <<JSON
//	{"Replace": {"$PWD/cmd/taskhub/zz_pprof.go": "$PWD/cmd/taskhub-bench/testdata/pprof_overlay.go"}}
//	JSON
//	go build -overlay /tmp/overlay.json -o /tmp/taskhub-pprof ./cmd/taskhub
//	go run ./cmd/taskhub-bench --server /tmp/taskhub-pprof \
//		--server-env BENCH_PPROF_ADDR=127.0.0.1:6061 --hold 30s ...
//	go tool pprof -top -sample_index=inuse_space http://127.0.0.1:6061/debug/pprof/heap

package main

import (
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
)

func init() {
	if addr := os.Getenv("BENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
