#!/usr/bin/env bash
# bench-pcap: record a loopback pcap of many keep-alive exchanges (nginx +
# h2load, captured by tcpdump), then time `rewind analyze` and tshark on the
# same file and compare what each found. SHAPE chooses the traffic:
#   small  HTTP/1.1, one 600-byte page (default; N 120000)
#   mixed  HTTP/1.1, 100 B to 1 MiB bodies and 404s (N 8000: ~0.9 GB)
#   h2c    HTTP/2 with prior knowledge, the same mix (N 10000: ~1.2 GB)
#
# Needs root (tcpdump), nginx, h2load, tcpdump, tshark and GNU time
# (scripts/test-setup.sh installs them). Environment: SHAPE, N (requests),
# CONNS (default 8), PORT (default 18089), RUNS (timed runs of each tool,
# default 5), KEEP=1 keeps the pcap.
set -euo pipefail

SHAPE=${SHAPE:-small}
case "$SHAPE" in
  small) N=${N:-120000} ;;
  mixed) N=${N:-8000} ;;
  h2c) N=${N:-10000} ;;
  *) echo "bench-pcap: SHAPE must be small, mixed or h2c, not $SHAPE" >&2; exit 2 ;;
esac
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
# The mix of the other shapes: bodies of 100 B to 1 MiB and a missing page.
for n in 100 1000 10000 100000 1048576; do head -c "$n" /dev/urandom >"$tmp/html/b$n.bin"; done
: >"$tmp/uris.txt"
for u in b100.bin b1000.bin b100.bin b10000.bin b1000.bin b100000.bin b100.bin nope b1048576.bin b1000.bin; do
  echo "http://127.0.0.1:$PORT/$u" >>"$tmp/uris.txt"
done
listen="127.0.0.1:$PORT"
[ "$SHAPE" = h2c ] && listen="$listen http2"
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
    listen $listen;
    root $tmp/html;
  }
}
CONF
# A capture the kernel dropped packets from cannot match the server's log:
# it is made again (up to three times) rather than timed.
for attempt in 1 2 3; do
  rm -f "$tmp/logs/access.log"
  nginx -p "$tmp" -c "$tmp/nginx.conf" &
  ngx_pid=$!

  rm -f "$tmp/tcpdump.err" # a retry waits for the new tcpdump's "listening"
  tcpdump -i lo -s 0 -B 262144 -U --immediate-mode -w "$tmp/bench.pcap" "tcp port $PORT" 2>"$tmp/tcpdump.err" &
  dump_pid=$!
  for _ in $(seq 50); do
    grep -q listening "$tmp/tcpdump.err" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5

  echo "generating $N $SHAPE requests over $CONNS keep-alive connections"
  case "$SHAPE" in
    small) load=(--h1 "http://127.0.0.1:$PORT/index.html") ;;
    mixed) load=(--h1 -i "$tmp/uris.txt") ;;
    h2c) load=(-i "$tmp/uris.txt") ;;
  esac
  timeout 600 h2load -n "$N" -c "$CONNS" -m 1 "${load[@]}" | grep -E '^(finished|requests|status codes)'
  sleep 1
  kill -INT "$dump_pid"; wait "$dump_pid" || true; dump_pid=""
  grep -E 'captured|dropped' "$tmp/tcpdump.err" || true
  kill "$ngx_pid"; wait "$ngx_pid" || true; ngx_pid=""
  server=$(wc -l <"$tmp/logs/access.log")
  size=$(du -h "$tmp/bench.pcap" | cut -f1)
  echo "pcap: $size, server logged $server requests"
  dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$tmp/tcpdump.err")
  [ "${dropped:-0}" = 0 ] && break
  if [ "$attempt" = 3 ]; then
    echo "bench-pcap: tcpdump dropped $dropped packets in each of 3 captures; the machine is too busy to capture $SHAPE" >&2
    exit 1
  fi
  echo "tcpdump dropped $dropped packets: capturing again"
done

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
: >"$tmp/rewind.cpu"
: >"$tmp/tshark.times"
rewind_cmd=(bin/rewind analyze "$tmp/bench.pcap" --report json -o "$tmp/report.json" --exchanges /dev/null -q)
if [ "$SHAPE" = h2c ]; then
  # HTTP/2 on a port Wireshark does not know: decoded as HTTP/2; one
  # status per response HEADERS (several may share a packet).
  tshark_cmd=(tshark -r "$tmp/bench.pcap" -d "tcp.port==$PORT,http2" -Y http2.headers.status -T fields -E occurrence=a -e http2.headers.status)
else
  tshark_cmd=(tshark -r "$tmp/bench.pcap" -Y http.response -T fields -e http.response.code -e http.response_for.uri)
fi
# now_s prints the time in seconds with ns digits (GNU time's %e has only
# centiseconds: 5 % of rewind's time).
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rss_kb=0
for i in $(seq "$RUNS"); do
  "${rewind_cmd[@]}"
  t0=$(now_s)
  /usr/bin/time -f "%M %U %S" -o "$tmp/rss.txt" "${rewind_cmd[@]}"
  rw=$(elapsed "$t0" "$(now_s)")
  echo "$rw" >>"$tmp/rewind.times"
  read -r kb usr sys <"$tmp/rss.txt"
  awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.3f\n", u + s }' >>"$tmp/rewind.cpu"
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
if [ "$SHAPE" = h2c ]; then
  tshark_n=$(tr , '\n' <"$tmp/tshark.txt" | grep -c '[0-9]')
else
  tshark_n=$(wc -l <"$tmp/tshark.txt")
fi
bytes=$(stat -c %s "$tmp/bench.pcap")
awk -v r="$(median "$tmp/rewind.times")" -v t="$(median "$tmp/tshark.times")" -v cpu="$(median "$tmp/rewind.cpu")" \
  -v rn="$rewind_n" -v tn="$tshark_n" -v sn="$server" -v rss="$rss_kb" -v runs="$RUNS" -v shape="$SHAPE" -v bytes="$bytes" 'BEGIN {
  printf "shape:        %s, pcap %.1f MB\n", shape, bytes/1e6
  printf "server log:   %d requests\n", sn
  printf "rewind:       %d exchanges in %.3fs wall, %.3fs CPU (medians of %d), peak RSS %.1f MiB\n", rn, r, cpu, runs, rss/1024
  printf "tshark:       %d responses in %.2fs (median of %d)\n", tn, t, runs
  printf "speed ratio:  rewind %.1fx faster than tshark; %.0f exchanges per CPU-second; %.2f GB of pcap per wall second\n", t/r, rn/cpu, bytes/1e9/r
  same = (rn == tn && rn == sn)
  if (shape == "small") { ok = same && t/r >= 30 && rss/1024 <= 100; goal = ">=30x, <=100 MiB" }
  else if (shape == "h2c") { ok = same && t/r >= 30 && rss/1024 <= 64; goal = ">=30x, <=64 MiB" }
  else { ok = same && bytes/1e9/r >= 1; goal = ">=1 GB/s" }
  printf "targets (same count as tshark and server, %s): %s\n", goal, ok ? "met" : "NOT met"
}'
