# The interface of the project: CI and people call these targets.
.DEFAULT_GOAL := help
GO ?= go
BIN := bin/mssdispatch
# Seconds per fuzz target: make fuzz, and the brief pass at the end of make test.
FUZZTIME ?= 60
TEST_FUZZTIME ?= 5

# The browser tests' driver (playwright-core, from npm; the browser is Debian's chromium).
E2E_MODULES := web/e2e/node_modules/.package-lock.json

.PHONY: help build run test lint bench faults fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/mssdispatch
	$(GO) build -o $(BIN) ./cmd/mssdispatch

run: build ## the demo: private PostgreSQL (port DEMO_PGPORT, default 55432), demo directory and rules, outbox transport
	scripts/demo

test: lint $(E2E_MODULES) ## lint, every test against a real PostgreSQL (see scripts/with-test-db), then each fuzz target briefly
	scripts/with-test-db $(GO) test -race -count=1 -timeout 15m ./...
	GO=$(GO) scripts/with-test-db scripts/fuzz $(TEST_FUZZTIME)

$(E2E_MODULES): web/e2e/package.json web/e2e/package-lock.json
	cd web/e2e && npm ci --no-audit --no-fund

lint: ## vet, gofmt, staticcheck and golangci-lint (.golangci.yml; scripts/lint-tools installs both)
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	@bin=$$(GO=$(GO) scripts/lint-tools) && \
	  echo "staticcheck" && "$$bin/staticcheck" ./... && \
	  echo "golangci-lint run" && "$$bin/golangci-lint" run ./...

bench: ## the load table (baseline, MLLP intake, end to end, RSS) into BENCHMARKS.md, then every Go benchmark
	scripts/with-test-db $(GO) test -count=1 -v -run '^TestLoadTable$$' -timeout 20m ./cmd/mssdispatch -args -load-table=$(CURDIR)/BENCHMARKS.md
	scripts/with-test-db $(GO) test -run '^$$' -bench . -benchmem ./...

faults: ## the fault suite: PostgreSQL restarted, SMTP down for minutes, an instance killed mid-load; each time the emails resume within 10 s (about 3 minutes)
	scripts/with-test-db $(GO) test -count=1 -v -run '^TestFault' -timeout 20m ./cmd/mssdispatch -args -faults

fuzz: ## every fuzz target for FUZZTIME seconds each (default 60), stops at the first failure (FuzzIntake needs PostgreSQL)
	GO=$(GO) scripts/with-test-db scripts/fuzz $(FUZZTIME)

clean: ## remove build outputs and the demo's state (.run/)
	rm -rf bin .run artifacts web/e2e/node_modules
