# Schakel — see README.md. `make run` and `make test` are the two commands a
# new user needs; the rest serve development and CI.
GO       ?= go
BIN      := bin/schakel
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 10s
# Minimising each new input is the fuzzer's default (up to 60 s); on the
# in-process gateway target every input looks new (background goroutines
# add coverage), so minimising would take all the time.
FUZZMIN  ?= 5s
# The ingest paths: every way data enters, from raw bytes to the store.
INGEST_FUZZ := ./cmd/schakel:FuzzIngestPaths ./gateway/httpapi:FuzzDecodeCanonical \
	./connectors/webhook:FuzzVerify ./mappings/misp:FuzzDecode ./mappings/stix:FuzzDecode \
	./connectors/taxii:FuzzParsePage ./mappings/csaf:FuzzDecode ./connectors/csaf:FuzzParseROLIE \
	./mappings/csv:FuzzDecode ./mappings/csv:FuzzReader ./mappings/mail:FuzzDecode

.PHONY: build run test test-faults bench lint fmt fuzz fuzz-ingest vulncheck vet clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/schakel

run: build
	$(BIN) serve --config examples/schakel.yaml

# All tests with the race detector. Tests use $$REDIS_URL when set (CI: a real
# redis-server, database 15) and an in-process miniredis otherwise.
# -parallel 4: cmd/schakel's acceptance tests run side by side; they mostly
# wait on timers and peers, so four fit on two cores.
test:
	$(GO) test -race -count=1 -parallel 4 -timeout 20m ./...

# Fault suite (Linux): the gateway binary under load while it is killed, Redis
# restarts, fills up or peers misbehave; needs redis-server on PATH (starts its own).
test-faults:
	$(GO) test -tags faults -count=1 -timeout 30m -run TestFault -v ./cmd/schakel/

# Benchmark harness: prints one table and writes bench/results.json.
bench:
	$(GO) run ./cmd/bench -out bench/results.json

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# A short run of every fuzz target (FUZZTIME each).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=./$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMIN) $$pkg; \
		done; \
	done

# A bounded slice of fuzzing over every ingest path (.ci/run: 10 s each);
# the 30-minute run by hand: make fuzz-ingest FUZZTIME=3m.
fuzz-ingest:
	@set -e; for spec in $(INGEST_FUZZ); do \
		pkg=$${spec%%:*}; t=$${spec##*:}; out=$$(mktemp); rc=0; \
		echo "== $$pkg $$t ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMIN) $$pkg >$$out 2>&1 || rc=$$?; \
		cat $$out; \
		if [ $$rc -ne 0 ]; then \
			if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
				echo "fuzz-ingest: $$t stopped on Go 1.26's fuzz-coordinator deadline race (golang/go#75804, fixed in 1.27); no failing input was written, so this is not a finding"; \
			else rm -f $$out; exit $$rc; fi; \
		fi; \
		rm -f $$out; \
	done

# Known vulnerabilities in the code paths we call (needs https://vuln.go.dev).
vulncheck:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 ./...

clean:
	rm -rf bin
