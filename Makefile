# TaskHub. `make run` serves on the defaults; `make test` is what CI runs.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCH   ?= .

.PHONY: all build run test bench bench-stream lint clean

all: lint test build

## build: the taskhub binary in bin/, version stamped
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/taskhub ./cmd/taskhub

## run: the server on ./taskhub.db and 127.0.0.1:8080
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/taskhub serve

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...

## bench: the benchmarks (BENCH=regexp to pick some)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem ./...

## bench-stream: the event stream under load, against the built server (Linux)
bench-stream: build
	$(GO) run ./cmd/taskhub-bench --server bin/taskhub --subscribers 1000 --events 1000 --rate 100
	$(GO) run ./cmd/taskhub-bench --server bin/taskhub --subscribers 10000 --events 1 --rate 0
	$(GO) run ./cmd/taskhub-bench --server bin/taskhub --subscribers 1000 --events 5000 --rate 0 --publishers 8

## lint: gofmt, go vet and staticcheck (pinned in go.mod as a tool)
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	rm -rf bin
