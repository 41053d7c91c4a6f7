# healthlake-cdc — every target installs what it needs; see README.md.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION := v0.8.2
# -race needs cgo; the machine has gcc.
export CGO_ENABLED := 1

.PHONY: help demo test soak unit bench lint fmt-check tidy-check vet staticcheck build image up down status fuzz deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

demo: deps ## start the local stack and run the whole pipeline on it
	@deploy/local/with-stack.sh deploy/local/demo.sh

test: deps lint ## lint, then unit + integration tests with -race on the local stack
	@deploy/local/with-stack.sh $(GO) test -race -count=1 -timeout 20m ./...

soak: deps ## KCL soak: 3 worker processes, 8 shards, split+merge, SIGKILL+SIGTERM, SOAK_DURATION (default 5m)
	@KCL_SOAK=1 SOAK_DURATION=$${SOAK_DURATION:-5m} deploy/local/with-stack.sh $(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./pkg/kcl

unit: ## the tests that need no server (-short: the others skip when the stack is down)
	$(GO) test -race -count=1 -short ./...

bench: deps ## benchmarks (on the local stack); see README for the figures
	@deploy/local/with-stack.sh $(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

fuzz: ## run the CloudTrail decoder fuzzer for FUZZTIME (default 60s)
	$(GO) test -run '^$$' -fuzz FuzzDecide -fuzztime $${FUZZTIME:-60s} ./pkg/cloudtrail

lint: fmt-check vet tidy-check staticcheck ## gofmt, go vet, go mod tidy, staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy-check:
	@$(GO) mod tidy -diff || { echo "go mod tidy would change go.mod/go.sum (diff above)"; exit 1; }

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

build: ## build the programs into bin/, stamped with VERSION (as the image is)
	$(GO) build -ldflags="-X main.version=$(VERSION)" -o bin/ ./consumer ./producer

IMAGE ?= healthlake-cdc
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
image: ## build the container image IMAGE:VERSION from deploy/Dockerfile (needs Docker)
	@command -v docker >/dev/null 2>&1 || { echo "make image needs Docker: no docker command on this machine"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image needs Docker: the docker command cannot reach a Docker daemon"; exit 1; }
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

up: deps ## start the local stack (installs what is missing; safe to run twice)
	@deploy/local/stack.sh up

down: ## stop the local stack processes started by `make up`
	@deploy/local/stack.sh down

status: ## show what runs where
	@deploy/local/stack.sh status

deps:
	@$(GO) mod download

clean: down
	rm -rf bin .local
