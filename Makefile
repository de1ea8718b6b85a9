# ragnode build targets. CGO is needed by go-nvml; the flag silences its
# deprecation warnings.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
GO ?= go
BIN ?= bin/ragnode

.PHONY: build test vet scenarios bench fuzz demo clean

build:
	$(GO) build -o $(BIN) .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

# The whole suite, race detector on; multi-node tests run real Raft, Serf and
# HTTP on loopback. Scenarios run their short profile here (leader-kill once,
# worker-kill, rolling-restart of 3 nodes; see SCENARIOS.md);
# RAGNODE_SCENARIOS=off skips them.
test: vet
	RAGNODE_SCENARIOS=$${RAGNODE_SCENARIOS:-short} $(GO) test -race -count=1 -timeout 30m ./...

# Every scenario (multi-process clusters under faults); RAGNODE_SEED=N
# replays the random one.
scenarios: build
	RAGNODE_SCENARIOS=full RAGNODE_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 60m -v ./scenarios/

# The scheduling bench runs Dask distributed beside ragnode (Debian's
# python3-distributed, installed here when missing and root on Debian; the
# table says "unavailable" otherwise).
bench:
	@/usr/bin/python3 -c 'import distributed' 2>/dev/null || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-distributed >/dev/null; } || \
		echo "bench: python3-distributed not installed; the Dask rows will say so"
	$(GO) run ./scenarios/bench -out BENCHMARKS.md

# Each fuzz target for FUZZTIME (go test -fuzz takes one target at a time).
# Their seed corpora, and any crasher saved under testdata/fuzz, also run in
# plain go test.
FUZZTIME ?= 60s
FUZZ_TARGETS = ./indexer/chunk:FuzzSplit ./indexer/chunk:FuzzCount ./fsm:FuzzApply ./indexer/store/filter:FuzzParse ./indexer/loader:FuzzLoadBounded ./transport:FuzzCompatMetadata ./transport:FuzzCompatUpload

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

demo: build
	./scripts/demo.sh

clean:
	rm -rf bin
