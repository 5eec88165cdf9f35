# lbctl: the two set-up commands are `make demo` and `make test`; both install
# the Debian packages they need when missing (CI and new machines start bare).

GO        ?= go
BIN       := bin/lbctl
# The sandbox (make demo, the benchmarks, test/e2e): a program of its own, so
# the lbctl shipped to nodes (and the .deb, which packs $(BIN) only) carries
# no test harness.
TESTBED   := bin/lbctl-testbed
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Debian packages the tests and the demo need at run time.
DEB_PKGS  := haproxy bird2 nftables iproute2 minisign systemd openssl patch icinga2-bin curl lintian
# Extra packages only the tests need (the status page is checked in a real
# headless browser; shell completion is loaded in real zsh and fish; the
# Ansible role is run with Debian's ansible-playbook against the sandbox,
# test/e2e TestAnsibleRollout).
TEST_PKGS := chromium zsh fish groff-base ansible-core
# Extra packages only for regenerating eBPF objects.
GEN_PKGS  := clang llvm libbpf-dev bpftool

export CGO_ENABLED ?= 0

.PHONY: all build test test-short vet fmt-check deps demo bench bench-scale generate fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/lbctl
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(TESTBED) ./test/cmd/lbctl-testbed

# deps installs missing Debian packages (root only; others are told what is missing).
deps:
	@./scripts/deps.sh $(DEB_PKGS)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_bpfel.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: deps build vet fmt-check
	@./scripts/deps.sh $(TEST_PKGS)
	$(GO) test -p 2 -timeout 15m -count=1 ./...

test-short: build
	$(GO) test -short -count=1 ./...

demo: deps build
	@./scripts/demo.sh

bench: deps build
	@./scripts/bench.sh

# bench-scale: the scale benchmark on the sandbox (root; SIZES=8,50 selects
# sizes, WRITE=1 updates docs/BENCHMARKS.md). CI never runs it.
bench-scale: deps build
	@./scripts/bench-scale.sh

generate:
	@./scripts/deps.sh $(GEN_PKGS)
	$(GO) generate ./bpf/...

# deb builds dist/lbctl_<version>_amd64.deb with nfpm (packaging/README.md).
.PHONY: deb
deb: build
	$(GO) run ./packaging/cmd/mkdeb -bin $(BIN) -out dist -describe $(VERSION)

clean:
	rm -rf bin dist
