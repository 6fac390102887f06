#!/usr/bin/env bash
# fuzz: run every Go fuzz target in the module for a bounded time each
# (default 30s). Any crasher fails the run; go test writes it under the
# package's testdata/fuzz so it becomes a regression test.
set -euo pipefail
fuzztime=${1:-30s}
cd "$(dirname "$0")/.."
fail=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    echo "fuzz: $pkg $target ($fuzztime)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" > /tmp/rewind-fuzz.log 2>&1; then
      cat /tmp/rewind-fuzz.log
      fail=1
    else
      grep -E 'elapsed|^ok' /tmp/rewind-fuzz.log | tail -2 | sed 's/^/    /'
    fi
  done
done
exit $fail
