#!/usr/bin/env bash
# lint: formatting, static checks, the layering rule and cross-builds.
#
#  1. gofmt on every tracked Go file.
#  2. staticcheck (pinned in go.mod as a tool) on the Linux build.
#  3. The layering rule: the capture file format, the replay and the output
#     formats never depend on the recorder. `go list -deps` of capture,
#     analyze and format (tests included) must name none of the BPF loader,
#     the recorder package, cilium/ebpf or golang.org/x/sys/unix, on macOS
#     and Windows, and none of the first three on Linux (where gopacket's
#     pcap reader uses x/sys/unix for its own reasons).
#  4. `go build` and `go vet` (which type-checks test files too) for each of
#     the six release targets.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
fail=0

out=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$out" ]; then
  echo "lint: gofmt needed:"; echo "$out"; fail=1
fi

echo "lint: staticcheck"
$GO tool staticcheck ./... || fail=1

# Packages that must stay portable and recorder-free, and what they may not reach.
portable=(./capture ./capture/redact ./capture/capturetest ./analyze/... ./format/...)
module=$($GO list -m)
recorder_deps="^($module/bpf|$module/bpf/.*|$module/capture/record|github.com/cilium/ebpf(/.*)?)$"
for goos in linux darwin windows; do
  forbidden=$recorder_deps
  if [ "$goos" != linux ]; then
    forbidden="$forbidden|^golang.org/x/sys/unix$"
  fi
  # -test adds test-only imports; bpf/bpftest is a pure helper (no BPF) that
  # replay tests use to fail rather than skip in CI, so it is allowed.
  bad=$(GOOS=$goos GOARCH=amd64 $GO list -deps -test "${portable[@]}" \
    | grep -Ev "^$module/bpf/bpftest$" | grep -E "$forbidden" || true)
  if [ -n "$bad" ]; then
    echo "lint: on $goos, capture, analyze or format depend on the recorder:"
    echo "$bad" | head -n 12 | sed 's/^/  /'
    for dep in $(echo "$bad" | grep -E "^($module/|github.com/cilium/ebpf$|golang.org/x/sys/unix$)"); do
      echo "  who imports $dep:"
      GOOS=$goos GOARCH=amd64 $GO list -deps -test -f '{{.ImportPath}}: {{join .Imports " "}}' "${portable[@]}" \
        | grep -E " $dep( |$)" | cut -d: -f1 | grep "^$module" | sort -u | sed 's/^/    /'
    done
    fail=1
  fi
done
echo "lint: layering rule checked on linux, darwin, windows"

for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  goos=${target%/*} goarch=${target#*/}
  if ! GOOS=$goos GOARCH=$goarch CGO_ENABLED=0 $GO build -o /dev/null ./cmd/rewind; then
    echo "lint: go build for $target failed"; fail=1
  fi
  if ! GOOS=$goos GOARCH=$goarch CGO_ENABLED=0 $GO vet ./...; then
    echo "lint: go vet for $target failed"; fail=1
  fi
done
echo "lint: built and vetted for linux, darwin and windows on amd64 and arm64"

if [ $fail -ne 0 ]; then
  echo "lint: FAILED" >&2
  exit 1
fi
