#!/usr/bin/env bash
# bench-record.sh — what recording costs: a bounded loopback HTTP load (wrk
# against nginx on 127.0.0.1) run without, then with `rewind record`, in one
# run. Prints both throughputs and their ratio, the recorder's CPU during the
# load, events/s and lost events. Needs root (the recorder) and nginx; wrk is
# installed with apt-get when missing.
#
#   scripts/bench-record.sh [DURATION_S] [CONNECTIONS]
#   RATE=10000 scripts/bench-record.sh      # paced load: about RATE requests/s
#   REWIND_BIN=/tmp/old/rewind scripts/bench-record.sh   # record with that binary
#
# Without RATE, wrk runs flat out: the ratio is then the worst case on a host
# whose CPUs are shared by wrk, nginx and the recorder. With RATE, each of
# RATE/400 connections sends one request every 2 ms plus its latency (a wrk Lua delay), which
# is the target's shape: the recorded run should keep the same rate.
#
# Target: >= 95% of the unrecorded throughput and 0 lost events at 10,000
# requests/s.
set -euo pipefail

DURATION=${1:-10}
CONNS=${2:-8}
THREADS=${THREADS:-1}
NGINX=${NGINX:-/usr/sbin/nginx}

if [ "$(id -u)" != 0 ]; then echo "bench-record: needs root (the recorder loads BPF programs)" >&2; exit 1; fi
if ! command -v wrk >/dev/null; then
	echo "bench-record: installing wrk" >&2
	apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi
[ -x "$NGINX" ] || { echo "bench-record: nginx not found at $NGINX" >&2; exit 1; }

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# REWIND_BIN compares another build (A/B runs of two versions).
if [ -n "${REWIND_BIN:-}" ]; then cp "$REWIND_BIN" "$tmp/rewind"; else go build -o "$tmp/rewind" ./cmd/rewind; fi

port=$((20000 + RANDOM % 20000))
head -c 1024 /dev/urandom | base64 > "$tmp/index.html"
cat > "$tmp/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; user root;
pid $tmp/nginx.pid; error_log $tmp/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
  uwsgi_temp_path $tmp; scgi_temp_path $tmp;
  server { listen 127.0.0.1:$port; root $tmp; keepalive_requests 1000000; } }
EOF
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done

url="http://127.0.0.1:$port/index.html"
wrkargs=()
if [ -n "${RATE:-}" ]; then
	CONNS=$(( (RATE + 399) / 400 ))
	echo 'function delay() return 2 end' > "$tmp/pace.lua"
	wrkargs=(-s "$tmp/pace.lua")
	THREADS=$(( CONNS < 2 ? 1 : 2 ))
fi
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "bench-record: wrk -t$THREADS -c$CONNS -d${DURATION}s $url (1.4 KiB responses)"
wrk -t"$THREADS" -c"$CONNS" -d2s "${wrkargs[@]}" "$url" >/dev/null # warm-up
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${wrkargs[@]}" "$url" > "$tmp/base.txt"

"$tmp/rewind" record -o "$tmp/bench.rwd" --comm nginx --port "$port" 2> "$tmp/record.log" &
rec=$!
pids+=($rec)
for _ in $(seq 600); do grep -q "rewind: recording" "$tmp/record.log" && break; sleep 0.1; done
grep -q "rewind: recording" "$tmp/record.log" || { cat "$tmp/record.log" >&2; exit 1; }
t0=$(ticks $rec)
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${wrkargs[@]}" "$url" > "$tmp/rec.txt"
t1=$(ticks $rec)
kill -INT $rec
wait $rec || true
pids=("${pids[@]:0:1}")

base=$(rps "$tmp/base.txt")
with=$(rps "$tmp/rec.txt")
events=$(sed -n 's/.*: \([0-9]*\) events,.*/\1/p' "$tmp/record.log" | tail -1)
lost=$(sed -n 's/.*, \([0-9]*\) lost (stopped.*/\1/p' "$tmp/record.log" | tail -1)
awk -v b="$base" -v w="$with" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v d="$DURATION" -v ev="$events" -v lost="$lost" 'BEGIN {
	printf "without recording  %10.0f req/s\n", b
	printf "with recording     %10.0f req/s\n", w
	printf "throughput ratio   %10.1f %%\n", 100 * w / b
	printf "recorder CPU       %10.1f %% of one core (during the load)\n", 100 * (t1 - t0) / hz / d
	printf "events             %10d (%.0f/s)\n", ev, ev / d
	printf "lost events        %10d\n", lost
}'
tail -2 "$tmp/record.log" | sed 's/^/  /'
