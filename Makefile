# dso — secret operator for plain Docker hosts.
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG        := github.com/dso-dev/dso
LDFLAGS    := -s -w -X $(PKG)/internal/version.Version=$(VERSION) \
              -X $(PKG)/internal/version.Commit=$(COMMIT) \
              -X $(PKG)/internal/version.BuildDate=$(BUILD_DATE)

BIN        := $(CURDIR)/bin
DSO        := $(BIN)/dso
# Installation: by default for the current user; PREFIX=/usr/local installs
# /usr/local/bin/dso and /usr/local/lib/docker/cli-plugins/docker-dso.
PREFIX     ?=
ifeq ($(PREFIX),)
INSTALL_BIN    := $(HOME)/.local/bin
INSTALL_PLUGIN := $(HOME)/.docker/cli-plugins
else
INSTALL_BIN    := $(PREFIX)/bin
INSTALL_PLUGIN := $(PREFIX)/lib/docker/cli-plugins
endif

CONTROLLER_GEN_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION  ?= v2.15.0
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT  := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)

FUZZTIME ?= 20s
TESTIMAGE ?= dso-testapp:dev
SYSTEMD_IMAGE ?= dso-systemd:dev

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy code (controller-gen) and docs/cli.md.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: verify-generate
verify-generate: generate ## Fail if generated code is not current.
	@git diff --exit-code -- api/ || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }

.PHONY: docs
docs: ## Regenerate docs/cli.md from the cobra tree.
	go run ./hack/gendocs -o docs/cli.md

.PHONY: verify-docs
verify-docs: ## Fail if docs/cli.md is not what the command tree generates.
	go run ./hack/gendocs -check docs/cli.md

.PHONY: fmt
fmt: ## Run gofmt on the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run gofmt check, go vet and golangci-lint.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(GOLANGCI_LINT) run ./...

##@ Build

.PHONY: build
build: ## Build bin/dso (also works as the docker-dso plugin).
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(DSO) ./cmd/docker-dso

.PHONY: build-fault
build-fault: ## Build bin/dso-fault: the agent with crash points (-tags faultinject) for the e2e crash matrix.
	CGO_ENABLED=0 go build -trimpath -tags faultinject -ldflags '$(LDFLAGS)' -o $(BIN)/dso-fault ./cmd/docker-dso

.PHONY: install
install: build ## Install dso and the docker CLI plugin (PREFIX=/usr/local for system-wide).
	install -d $(INSTALL_BIN) $(INSTALL_PLUGIN)
	install -m 0755 $(DSO) $(INSTALL_BIN)/dso
	install -m 0755 $(DSO) $(INSTALL_PLUGIN)/docker-dso
	@echo "installed $(INSTALL_BIN)/dso and $(INSTALL_PLUGIN)/docker-dso"

.PHONY: testimage
testimage: ## Build the dso-testapp:dev image (FROM scratch, no registry needed).
	hack/build-testimage.sh $(TESTIMAGE)

.PHONY: systemd-image
systemd-image: ## Build the dso-systemd:dev image (Debian + systemd as PID 1, debootstrap, no registry; cached).
	hack/build-systemd-image.sh $(SYSTEMD_IMAGE)

.PHONY: vaultdev
vaultdev: ## Build bin/vaultdev, a real in-process Vault dev server for tests (slow when cold).
	cd hack/vaultdev && CGO_ENABLED=0 go build -o $(BIN)/vaultdev .

.PHONY: run
run: build ## Build and run the agent on the quickstart sample (local encrypted store).
	hack/run-quickstart.sh $(DSO)

##@ Test

.PHONY: test
test: verify-generate lint test-unit fuzz test-e2e test-systemd ## Everything CI runs: generate check, lint, unit, fuzz, e2e, systemd.

.PHONY: test-unit
test-unit: vaultdev ## Unit and integration tests (real Vault dev server, wire fakes for AWS/Azure).
	DSO_VAULTDEV_BIN=$(BIN)/vaultdev DSO_STRICT=1 go test -race -count=1 ./...

# The older-schema converter is a smaller surface than the loader: half the time.
FUZZTIME_LEGACY ?= 10s

.PHONY: fuzz
fuzz: ## Run each fuzz target: FuzzLoad for FUZZTIME (default 20s), FuzzLegacy for FUZZTIME_LEGACY (10s).
	go test ./internal/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	go test ./internal/config -run '^$$' -fuzz '^FuzzLegacy$$' -fuzztime $(FUZZTIME_LEGACY)

.PHONY: test-e2e
test-e2e: testimage build build-fault ## Black-box tests against the real Docker engine (fail, not skip, without one).
	DSO_STRICT=1 DSO_BIN=$(DSO) DSO_FAULT_BIN=$(BIN)/dso-fault DSO_TESTIMAGE=$(TESTIMAGE) go test -count=1 -tags e2e -timeout 20m ./test/e2e/...

.PHONY: test-systemd
test-systemd: systemd-image build ## system enable/status/logs/restart/disable in a container whose PID 1 is systemd (fail, not skip, without one).
	DSO_STRICT=1 DSO_BIN=$(DSO) DSO_SYSTEMD_IMAGE=$(SYSTEMD_IMAGE) go test -count=1 -tags systemd -timeout 15m ./test/systemd/...

.PHONY: bench
bench: vaultdev ## Run benchmarks (numbers go into docs/benchmarks.md).
	DSO_VAULTDEV_BIN=$(BIN)/vaultdev go test -run '^$$' -bench . -benchmem ./...

##@ Tools

$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(BIN)/controller-gen $@

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(BIN)/golangci-lint $@
