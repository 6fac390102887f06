# rewind — build, test and generate. `make help` lists the targets.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Release targets of `make dist`; `make lint` cross-builds and vets each.
DIST_TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
GO      ?= go
# The BPF objects are generated with a pinned clang from Debian (bookworm:
# clang-16); `make generate` needs it, `go build` does not.
CLANG   ?= clang-16
STRIP   ?= llvm-strip-16
export BPF_CLANG := $(CLANG)
export BPF_STRIP := $(STRIP)
export BPF_CFLAGS := -O2 -g -Wall -Werror

.PHONY: all build dist man test test-unit test-setup generate bench bench-record bench-pcap lint demo fuzz soak help clean

all: build

help:
	@echo "make build      build bin/rewind"
	@echo "make man        the man page, generated from the command definitions, into man/rewind.1"
	@echo "make dist       stripped release binaries for $(DIST_TARGETS) into dist/, with SHA256SUMS"
	@echo "make demo       analyze the bundled sample capture (records a demo workload first when root)"
	@echo "make test       install test dependencies (CI), then run every test tier"
	@echo "make test-unit  unprivileged tests only, no set-up"
	@echo "make generate   regenerate the BPF objects (needs $(CLANG))"
	@echo "make bench      run the Go benchmarks"
	@echo "make bench-record  throughput with and without recording (root)"
	@echo "make fuzz       run each fuzz target briefly"
	@echo "make soak       record 10 min of mixed HTTP/1, HTTP/2, TLS load and check it (root; SOAK_SECONDS)"
	@echo "make lint       gofmt, staticcheck, the layering rule, build and vet for every release target"

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rewind ./cmd/rewind

# test: set up what the tiers need (system packages in CI or as root), lint,
# then run all tests, then the replay pipeline's (packet decoding, parsing
# and sinks on goroutines of their own) under the race detector, then a
# short bounded fuzz pass.
test: test-setup lint
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) test -race -count=1 -timeout 20m ./analyze/... ./capture/... ./format/...
	$(MAKE) fuzz FUZZTIME=10s

# dist: one static, stripped (-s -w), -trimpath binary per release target,
# named rewind-VERSION-OS-ARCH[.exe], and their SHA-256 sums.
dist:
	rm -rf dist && mkdir -p dist
	@set -e; for t in $(DIST_TARGETS); do \
	  os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=dist/rewind-$(VERSION)-$$os-$$arch$$ext; \
	  echo "dist: $$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out ./cmd/rewind; \
	done
	cd dist && sha256sum rewind-* > SHA256SUMS && cat SHA256SUMS

# man: the page comes from the same definitions as --help (`rewind man`,
# hidden); `man -l man/rewind.1` reads it.
man:
	mkdir -p man
	$(GO) run ./cmd/rewind man > man/rewind.1

test-setup:
	@./scripts/test-setup.sh

test-unit:
	$(GO) test -count=1 ./...

generate:
	$(GO) generate ./bpf/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-record: loopback HTTP load without and with `rewind record` (root).
bench-record:
	@./scripts/bench-record.sh $(BENCH_RECORD_ARGS)

# bench-pcap: rewind analyze vs tshark on loopback pcaps of three shapes
# (small HTTP/1, mixed bodies, h2c; BENCH_PCAP_SHAPES to choose) (root).
BENCH_PCAP_SHAPES ?= small mixed h2c
bench-pcap:
	@set -e; for s in $(BENCH_PCAP_SHAPES); do SHAPE=$$s ./scripts/bench-pcap.sh; done

FUZZTIME ?= 30s
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

# soak: bounded recording soak (root; not part of `make test`).
soak:
	@./scripts/soak.sh

# lint: see scripts/lint.sh for what it checks and why.
lint:
	@GO=$(GO) ./scripts/lint.sh

# demo: as root, record the built-in workload with eBPF and analyze it;
# otherwise analyze the bundled sample capture (testdata/sample.rwd).
demo: build
	./bin/rewind demo

clean:
	rm -rf bin dist
