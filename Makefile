# statelab — the Makefile targets are the user interface; `make help` lists them.

GO      ?= go
BIN     := bin/statelab
PKGS    := ./...
# How long each fuzz target runs in `make test` (longer: make fuzz FUZZTIME=1m).
FUZZTIME ?= 3s

.PHONY: help build test unit fuzz bench perf lint run-stateful run-stateless demo clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-14s %s\n", $$1, $$2}'

build: ## build bin/statelab
	$(GO) build -o $(BIN) ./cmd/statelab

test: lint unit fuzz ## everything CI runs: lint, the race-enabled tests, a short fuzz of each target

unit:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

fuzz: ## run each fuzz target for FUZZTIME
	@$(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/{f=f" "$$1} /^ok/{if(f!="")print $$2 f; f=""}' | \
	while read -r pkg targets; do \
		for f in $$targets; do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

bench: ## run the benchmarks (numbers quoted in docs/COSTS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

perf: build ## what a request costs with each strategy against a bare net/http server, one CPU each for servers and load (under 2 minutes; PERFFLAGS="--rounds 5")
	$(BIN) perf $(PERFFLAGS)

lint: ## gofmt, go vet, staticcheck (a Go tool of this module: go tool staticcheck), and the build and vet for macOS and Windows
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	@$(MAKE) --no-print-directory cross

# The lab runs on macOS and Windows too (README: where it runs): the binary
# links there, and vet type-checks every package and its tests for each.
# With a warm build cache this takes seconds; a cold one compiles every
# dependency once per OS (minutes, the SQLite driver most of it).
CROSS_OS ?= darwin windows
.PHONY: cross
cross: ## build bin/statelab for macOS and Windows and go vet every package for them
	@for os in $(CROSS_OS); do \
		echo "GOOS=$$os go build ./cmd/statelab && GOOS=$$os go vet $(PKGS)"; \
		GOOS=$$os $(GO) build -o /dev/null ./cmd/statelab && GOOS=$$os $(GO) vet $(PKGS) || exit 1; \
	done

run-stateful: build ## run the stateful server on 127.0.0.1:5001
	$(BIN) stateful

run-stateless: build ## run the stateless server on 127.0.0.1:5002
	$(BIN) stateless

demo: build ## run the lab: replicas of both servers, balancers, simulated users, the default scenario; stays up until Ctrl-C
	@echo "statelab demo: open http://127.0.0.1:8080/ (feed and controls); the report is written when the timeline ends."
	$(BIN) compare --hold $(DEMOFLAGS)

.PHONY: matrix
matrix: build ## every strategy against every fault on real processes: one table, about 5 minutes (MATRIXFLAGS="--quick" for 90 s)
	$(BIN) matrix $(MATRIXFLAGS)

.PHONY: capacity
capacity: build ## scalability, measured: replicas under a kernel-enforced CPU limit (needs root), an open-loop rate calibrated to 1.5x what two carry, a scale-out from 2 to 4; stays up until Ctrl-C
	@echo "statelab capacity: open http://127.0.0.1:8080/ ; the report is written when the timeline ends."
	$(BIN) compare --scenario capacity --hold $(CAPACITYFLAGS)

# The report shipped for machines that cannot enforce a CPU limit (macOS,
# Windows, Linux without root): written only from a run where the kernel
# enforced it, so a run that could not keeps the old one.
CAPACITY_RUN := bin/capacity-report
.PHONY: capacity-report
capacity-report: build ## run the capacity scenario (Linux, root; about a minute) and ship its report.html and report.json in docs/capacity/
	rm -rf $(CAPACITY_RUN)
	$(BIN) compare --scenario capacity --report $(CAPACITY_RUN) --addr 127.0.0.1:0 --left-addr 127.0.0.1:0 --right-addr 127.0.0.1:0 --file-sd= $(CAPACITYFLAGS)
	@grep -Eq '"enforced": *true' $(CAPACITY_RUN)/report.json || { echo "capacity-report: the CPU limit was not enforced (run it on Linux as root); docs/capacity/ keeps its report"; exit 1; }
	mkdir -p docs/capacity
	cp $(CAPACITY_RUN)/report.html $(CAPACITY_RUN)/report.json docs/capacity/

.PHONY: screenshot
screenshot: ## refresh docs/dashboard.png and docs/dashboard-projector.png: headless Chromium on the default demo, about a minute
	STATELAB_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test -run '^TestScreenshot$$' -count=1 -timeout 5m -v ./web/

.PHONY: walkthrough
walkthrough: build ## the classroom walkthrough: every HTTP exchange, predictions, step by step (WALKFLAGS="--auto --step N --no-color")
	$(BIN) walkthrough $(WALKFLAGS)

.PHONY: prometheus
prometheus: ## run Prometheus on 127.0.0.1:9090 against the running lab (make demo in another terminal); installs Debian's prometheus when missing
	scripts/prometheus.sh $(PROMFLAGS)

clean: ## remove the binary, the demo database and reports
	rm -rf bin data reports
