#!/usr/bin/env bash
# bench-pcap: record a loopback pcap of many keep-alive HTTP/1.1 exchanges
# (nginx + h2load --h1, captured by tcpdump), then time `rewind analyze` and
# tshark on the same file and compare what each found.
#
# Needs root (tcpdump), nginx, h2load, tcpdump, tshark and GNU time
# (scripts/test-setup.sh installs them). Environment: N (requests, default
# 120000), CONNS (default 8), PORT (default 18089), RUNS (timed runs of each
# tool, default 5), KEEP=1 keeps the pcap.
set -euo pipefail

N=${N:-120000}
CONNS=${CONNS:-8}
PORT=${PORT:-18089}
cd "$(dirname "$0")/.."

for cmd in nginx h2load tcpdump tshark /usr/bin/time; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    echo "bench-pcap: $cmd is missing (REWIND_SETUP=1 scripts/test-setup.sh installs it)" >&2
    exit 1
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "bench-pcap: tcpdump needs root" >&2
  exit 1
fi

tmp=$(mktemp -d /tmp/rewind-bench-pcap.XXXXXX)
chmod 755 "$tmp"
ngx_pid="" dump_pid=""
cleanup() {
  [ -n "$dump_pid" ] && kill "$dump_pid" 2>/dev/null || true
  [ -n "$ngx_pid" ] && kill "$ngx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

echo "building rewind"
go build -o bin/rewind ./cmd/rewind

mkdir -p "$tmp/html" "$tmp/logs"
head -c 600 /dev/zero | tr '\0' 'x' >"$tmp/html/index.html"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 1024; }
http {
  access_log $tmp/logs/access.log;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PORT;
    root $tmp/html;
  }
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" &
ngx_pid=$!

tcpdump -i lo -s 0 -B 262144 -U --immediate-mode -w "$tmp/bench.pcap" "tcp port $PORT" 2>"$tmp/tcpdump.err" &
dump_pid=$!
for _ in $(seq 50); do
  grep -q listening "$tmp/tcpdump.err" 2>/dev/null && break
  sleep 0.1
done
sleep 0.5

echo "generating $N requests over $CONNS keep-alive connections"
timeout 300 h2load --h1 -n "$N" -c "$CONNS" -m 1 "http://127.0.0.1:$PORT/index.html" | grep -E '^(finished|requests|status codes)'
sleep 1
kill -INT "$dump_pid"; wait "$dump_pid" || true; dump_pid=""
grep -E 'captured|dropped' "$tmp/tcpdump.err" || true
kill "$ngx_pid"; wait "$ngx_pid" || true; ngx_pid=""
server=$(wc -l <"$tmp/logs/access.log")
size=$(du -h "$tmp/bench.pcap" | cut -f1)
echo "pcap: $size, server logged $server requests"

# Timing: both tools read the same file from the page cache, in RUNS rounds
# that alternate the tools (so a change in the machine's load hits both).
# Each timed run follows an untimed warm-up run of the same tool, as
# hyperfine's --warmup does: on a shared VM a short process started after
# an idle pause runs measurably slower (idle vCPUs are descheduled and their
# caches go cold), which would penalise the 0.2 s tool far more than the
# 5 s one. Each tool's median is compared; peak RSS is the largest of
# rewind's runs.
RUNS=${RUNS:-5}
cat "$tmp/bench.pcap" >/dev/null
: >"$tmp/rewind.times"
: >"$tmp/tshark.times"
rewind_cmd=(bin/rewind analyze "$tmp/bench.pcap" --report json -o "$tmp/report.json" --exchanges /dev/null -q)
tshark_cmd=(tshark -r "$tmp/bench.pcap" -Y http.response -T fields -e http.response.code -e http.response_for.uri)
# now_s prints the time in seconds with ns digits (GNU time's %e has only
# centiseconds: 5 % of rewind's time).
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rss_kb=0
for i in $(seq "$RUNS"); do
  "${rewind_cmd[@]}"
  t0=$(now_s)
  /usr/bin/time -f "%M" -o "$tmp/rss.txt" "${rewind_cmd[@]}"
  rw=$(elapsed "$t0" "$(now_s)")
  echo "$rw" >>"$tmp/rewind.times"
  kb=$(cat "$tmp/rss.txt")
  [ "$kb" -gt "$rss_kb" ] && rss_kb=$kb
  "${tshark_cmd[@]}" >"$tmp/tshark.txt" 2>"$tmp/tshark.err"
  t0=$(now_s)
  "${tshark_cmd[@]}" >"$tmp/tshark.txt" 2>"$tmp/tshark.err"
  ts=$(elapsed "$t0" "$(now_s)")
  echo "$ts" >>"$tmp/tshark.times"
  echo "run $i: rewind $rw s, tshark $ts s"
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

rewind_n=$(grep -o '"exchanges": *[0-9]*' "$tmp/report.json" | head -1 | grep -o '[0-9]*$')
tshark_n=$(wc -l <"$tmp/tshark.txt")
awk -v r="$(median "$tmp/rewind.times")" -v t="$(median "$tmp/tshark.times")" \
  -v rn="$rewind_n" -v tn="$tshark_n" -v sn="$server" -v rss="$rss_kb" -v runs="$RUNS" 'BEGIN {
  printf "server log:   %d requests\n", sn
  printf "rewind:       %d exchanges in %.3fs (median of %d), peak RSS %.1f MiB\n", rn, r, runs, rss/1024
  printf "tshark:       %d responses in %.2fs (median of %d)\n", tn, t, runs
  printf "speed ratio:  rewind %.1fx faster than tshark\n", t/r
  ok = (rn == tn && rn == sn && t/r >= 30 && rss/1024 <= 100)
  printf "targets (same count as tshark and server, >=30x, <=100 MiB): %s\n", ok ? "met" : "NOT met"
}'
