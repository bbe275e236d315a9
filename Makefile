# TaskHub. `make run` serves on the defaults; `make test` is what CI runs.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCH   ?= .

.PHONY: all build run test interop-deps bench bench-bin bench-stream bench-storm bench-soak bench-writes bench-cluster lint clean

all: lint test build

## build: the taskhub binary in bin/, version stamped
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/taskhub ./cmd/taskhub

## run: the server on ./taskhub.db and 127.0.0.1:8080
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/taskhub serve

## test: every test, with the race detector; with npm, also the MCP interop test
## against the official TypeScript SDK (installed from mcptools/interop's lock file);
## with TASKHUB_TEST_POSTGRES (a server's URL), also the PostgreSQL store's tests
test: interop-deps
	@[ -n "$$TASKHUB_TEST_POSTGRES" ] || echo "TASKHUB_TEST_POSTGRES not set: the PostgreSQL store's tests will be skipped"
	TASKHUB_INTEROP=$(INTEROP) $(GO) test -race -count=1 ./...

INTEROP_DIR := mcptools/interop
INTEROP     := $(shell command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 && echo 1)

## interop-deps: npm ci in mcptools/interop when its lock file is newer than its install
interop-deps:
ifeq ($(INTEROP),1)
	@if [ ! -f $(INTEROP_DIR)/node_modules/.package-lock.json ] || \
	   [ $(INTEROP_DIR)/package-lock.json -nt $(INTEROP_DIR)/node_modules/.package-lock.json ]; then \
		cd $(INTEROP_DIR) && npm ci --no-audit --no-fund; \
	fi
else
	@echo "node or npm not found: the MCP interop test (mcptools/interop) will be skipped"
endif

## bench: the benchmarks (BENCH=regexp to pick some)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./...

## bench-bin: bin/taskhub and the load generator bin/taskhub-bench (Linux), which the
## bench-* targets run against it
bench-bin: build
	$(GO) build -o bin/taskhub-bench ./cmd/taskhub-bench

## bench-stream: the event stream under load, against the built server (Linux); the
## last run is the floor server (taskhub-bench --floor) under the load of the second
bench-stream: bench-bin
	bin/taskhub-bench --server bin/taskhub --subscribers 1000 --events 1000 --rate 100
	bin/taskhub-bench --server bin/taskhub --subscribers 10000 --events 10 --rate 2 --size 508
	bin/taskhub-bench --server bin/taskhub --subscribers 1000 --events 5000 --rate 0 --publishers 8 --size 200
	bin/taskhub-bench --floor --subscribers 10000 --events 10 --rate 2 --size 508

## bench-storm: the restart storm (Linux): 1,000 events made, then 1,000 subscribers
## reconnecting at once, each with a Last-Event-ID 1,000 events back; then the same
## with the server restarted on its database just before the storm
bench-storm: bench-bin
	bin/taskhub-bench --server bin/taskhub --storm --subscribers 1000 --events 1000
	bin/taskhub-bench --server bin/taskhub --storm --storm-restart --subscribers 1000 --events 1000

## bench-soak: 1,000 subscribers, 100 events/s for SOAK (30m), 5 % of them
## reconnecting every minute; the server's goroutines, open files and RSS each minute
SOAK ?= 30m
bench-soak: bench-bin
	bin/taskhub-bench --server bin/taskhub --soak --subscribers 1000 --rate 100 --duration $(SOAK) \
		--reconnect-every 1m --reconnect-fraction 0.05 --report-every 1m

## bench-writes: the durable write path against the built server (Linux): 32 clients,
## 10 s of creates, then 10 s of updates
bench-writes: bench-bin
	bin/taskhub-bench --server bin/taskhub --writes --publishers 32 --duration 10s

## bench-cluster: three nodes on the empty PostgreSQL database of BENCH_DB (Linux),
## every event written to node 0 at 500 events/s, 10 subscribers a node
bench-cluster: bench-bin
	bin/taskhub-bench --server bin/taskhub --nodes 3 --db '$(BENCH_DB)' --subscribers 10 --events 5000 --rate 500

## lint: gofmt, go vet and staticcheck (pinned in go.mod as a tool)
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	rm -rf bin
