# The interface of the project: CI and people call these targets.
.DEFAULT_GOAL := help
GO ?= go
BIN := bin/mssdispatch

.PHONY: help build run test lint bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/mssdispatch
	$(GO) build -o $(BIN) ./cmd/mssdispatch

run: build ## the demo: private PostgreSQL, demo directory, outbox transport
	scripts/demo

test: lint ## lint, then every test against a real PostgreSQL (see scripts/with-test-db)
	scripts/with-test-db $(GO) test -race -count=1 -timeout 15m ./...

lint: ## vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

bench: ## benchmarks
	scripts/with-test-db $(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## each fuzz target for FUZZTIME (default 30s)
	@for t in $$(grep -rhoE 'func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "func $$t\(" --include='*_test.go' . | head -1 | xargs dirname); \
		echo "== $$t ($$pkg)"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-30s} $$pkg || exit 1; \
	done

clean: ## remove build outputs and the demo's state (.run/)
	rm -rf bin .run
