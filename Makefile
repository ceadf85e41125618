# Two commands do everything: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false

.PHONY: demo test unit integration tools build bench lint clean loadtest

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/dreamdata/destination-aws-s3/internal/buildinfo.version=$(VERSION) -X github.com/dreamdata/destination-aws-s3/internal/buildinfo.revision=$(REVISION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/worker ./worker
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/starter ./starter

## tools: build Temporal CLI, MinIO and the BigQuery emulator (cached; cold: 15-25 min)
tools:
	bash .ci/install-tools.sh

## demo: one account's dump end to end on the local stack, checked against the source.
## DEMO_HOLD=0 exits when done; otherwise the Web UI stays up until Ctrl-C.
demo: tools build
	$(GO) run ./internal/devstack/cmd/demo --bin bin

## test: unit tests, integration tests on the real local stack, then the chaos campaign
test: tools unit integration chaos

unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	cd internal/devstack/bqemu && $(GO) vet ./... && $(GO) test -count=1 ./...

## integration: the real stack (e2e, recipes, CLI), MinIO checksums, the worker binary over
## mTLS, and schedule sync at scale (a small fleet here; SCHEDULES_SYNC_ACCOUNTS=10000 for the
## fleet figure, see README)
SCHEDULES_SYNC_ACCOUNTS ?= 300
integration: build
	SCHEDULES_SYNC_ACCOUNTS=$(SCHEDULES_SYNC_ACCOUNTS) $(GO) test -tags integration -count=1 -timeout 40m -parallel 8 -v ./internal/e2e/ ./internal/e2e/longtable/ ./internal/s3dest/ ./worker/ ./internal/schedules/

bench:
	$(GO) run ./internal/bench/cmd/bench $(BENCH_ARGS)

clean:
	rm -rf bin

## chaos: fault campaign on the local stack (S3 errors, Storage Read faults, worker SIGKILLs,
## a Temporal restart, rerun/retry updates), every dump checked; CHAOS_SEED=n replays a seed
## It includes zombies: workers frozen past their heartbeat timeout and woken after a
## successor (or a rerun) took their tables over; their writes are fenced by the heartbeat
## lease. CHAOS_ARGS passes flags (go run ./internal/chaos/cmd/chaos -h).
CHAOS_ARGS ?=
.PHONY: chaos
chaos: tools
	$(GO) run ./internal/chaos/cmd/chaos $(CHAOS_ARGS)

## loadtest: the fleet's 04:00 peak on the local stack (not in `make test`/CI). LOADTEST_ARGS
## passes flags (go run ./internal/loadtest/cmd/loadtest -h), e.g. LOADTEST_ARGS="--accounts 10".
loadtest: tools build
	$(GO) run ./internal/loadtest/cmd/loadtest --worker bin/worker $(LOADTEST_ARGS)
