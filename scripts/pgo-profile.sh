#!/usr/bin/env bash
# pgo-profile.sh — regenerates cmd/rewind/default.pgo, the CPU profile that
# `go build` optimizes rewind with (profile-guided optimization, Go >= 1.21
# picks it up by itself): `rewind analyze` on the three bench-pcap shapes
# (small HTTP/1, mixed bodies, h2c) and `rewind record` of nginx under wrk
# flat out. Run it after a change that moves the hot paths; commit the new
# profile with the measurement (make bench-pcap, make bench-record).
#
# Needs root (tcpdump, BPF) and what bench-pcap and bench-record need
# (REWIND_SETUP=1 scripts/test-setup.sh; apt-get install wrk nginx-light).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "pgo-profile: needs root" >&2; exit 1; fi
for cmd in wrk tshark h2load; do
  command -v "$cmd" >/dev/null || { echo "pgo-profile: $cmd is missing" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/rewind-pgo.XXXXXX)
ngx_pid="" pcaps=()
cleanup() {
  [ -n "$ngx_pid" ] && kill "$ngx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work" "${pcaps[@]}"
}
trap cleanup EXIT

# Profiles of the analysis: each shape's pcap, analyzed 5 times.
for shape in small mixed h2c; do
  dir=$(RUNS=1 KEEP=1 SHAPE=$shape ./scripts/bench-pcap.sh | sed -n 's/^kept //p')
  pcaps+=("$dir")
  for i in 1 2 3 4 5; do
    bin/rewind analyze "$dir/bench.pcap" --report json -o /dev/null --exchanges /dev/null -q \
      --cpuprofile "$work/analyze-$shape-$i.prof"
  done
done

# A profile of the recorder: nginx flat out under wrk for 10 s.
port=18097
mkdir -p "$work/html" "$work/logs"
head -c 600 /dev/zero | tr '\0' 'x' >"$work/html/index.html"
cat >"$work/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; user root;
error_log $work/logs/error.log; pid $work/nginx.pid;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$port; root $work/html; } }
EOF
/usr/sbin/nginx -c "$work/nginx.conf" -p "$work" &
ngx_pid=$!
sleep 0.5
bin/rewind record -o "$work/r.rwd" --comm nginx --port "$port" --duration 12s \
  --cpuprofile "$work/record.prof" 2>"$work/record.log" &
rec=$!
for _ in $(seq 100); do grep -q "rewind: recording" "$work/record.log" && break; sleep 0.1; done
wrk -t 1 -c 8 -d 10s "http://127.0.0.1:$port/index.html" >/dev/null
wait "$rec"

go tool pprof -proto "$work"/*.prof >cmd/rewind/default.pgo
echo "wrote cmd/rewind/default.pgo ($(stat -c %s cmd/rewind/default.pgo) bytes) from $(ls "$work"/*.prof | wc -l) profiles"
