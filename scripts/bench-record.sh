#!/usr/bin/env bash
# bench-record.sh — what recording costs the programs it records: every
# scenario of issue #17 (paced 10k and 20k req/s, flat out, HTTPS, whole-host
# and --port recording beside a 1 GiB loopback copy, a forced overload), run
# untraced and traced alternately, one table of medians. The measuring is in
# scripts/benchrecord (Go); this installs what it needs. Needs root.
#
#   scripts/bench-record.sh [-pairs 3] [-duration 8s] [-only flat,paced-20k]
#   REWIND_BIN=/tmp/old/rewind scripts/bench-record.sh   # record with that binary
set -euo pipefail

if [ "$(id -u)" != 0 ]; then echo "bench-record: needs root (the recorder loads BPF programs)" >&2; exit 1; fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v socat >/dev/null || missing+=(socat)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench-record: installing ${missing[*]}" >&2
	apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cd "$(dirname "$0")/.."
exec go run ./scripts/benchrecord "$@"
