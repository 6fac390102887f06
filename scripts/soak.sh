#!/usr/bin/env bash
# soak: record a bounded, steady mix of HTTP/1.1 (curl), HTTP/2 h2c (h2load)
# and HTTP/1.1 over TLS (curl with OpenSSL) against nginx on 127.0.0.1 with
# `rewind record`, then check that
#   - the capture lost no events,
#   - analyze finds, per kind, as many server-side and client-side exchanges
#     as the clients completed and nginx logged,
#   - the recorder's RSS, sampled every 10 s, stays flat.
# Needs root, nginx, curl, h2load and openssl. Not part of `make test`.
#
#   SOAK_SECONDS=600  how long the load runs (default 10 minutes)
#   SOAK_RATE=20      requests per second of each kind
set -euo pipefail

secs=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-20}
cd "$(dirname "$0")/.."
root=$(pwd)

[ "$(id -u)" = 0 ] || { echo "soak: needs root (eBPF)"; exit 1; }
for tool in nginx curl h2load openssl python3; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is not installed (scripts/test-setup.sh)"; exit 1; }
done

work=$(mktemp -d /tmp/rewind-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

go build -o "$work/rewind" ./cmd/rewind

# Ports: plain HTTP/1.1, h2c, TLS.
p1=18081 p2=18082 p3=18443
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/www"
printf '%s' "$(head -c 512 /dev/zero | tr '\0' 'x')" > "$work/www/index.html"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
user root;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 1024; }
http {
  log_format soak '\$server_port \$status \$server_protocol';
  access_log $work/access.log soak;
  client_body_temp_path $work;
  proxy_temp_path $work;
  fastcgi_temp_path $work;
  uwsgi_temp_path $work;
  scgi_temp_path $work;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$p1;
    listen 127.0.0.1:$p2 http2;
    listen 127.0.0.1:$p3 ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    root $work/www;
    location / { try_files /index.html =404; }
  }
}
EOF
nginx -c "$work/nginx.conf" &
pids+=($!)
up=0
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$p1/" && { up=1; break; }; sleep 0.1; done
[ $up = 1 ] || { echo "soak: nginx did not start"; cat "$work/error.log" 2>/dev/null; exit 1; }
: > "$work/access.log" # the readiness probe is not part of the load

"$work/rewind" record -o "$work/soak.rwd" --port $p1 --port $p2 --port $p3 --no-packets 2> "$work/record.log" &
rpid=$!
pids+=($rpid)
for _ in $(seq 300); do grep -q "rewind: recording" "$work/record.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rewind: recording" "$work/record.log" || { cat "$work/record.log"; exit 1; }
echo "soak: ${secs}s at $rate req/s each of HTTP/1.1, HTTP/2 (h2c) and TLS; recorder pid $rpid; work dir $work"

# Each load loop sends $rate requests a second in one client process, on
# one keep-alive connection, and appends how many succeeded.
load_curl() { # scheme port kind
  local end=$((SECONDS + secs)) i=0
  while [ $SECONDS -lt $end ]; do
    local t0=$(date +%s%N) urls=()
    for _ in $(seq "$rate"); do urls+=(-o /dev/null "$1://127.0.0.1:$2/$3/$((i++))"); done
    curl -sk -w '%{http_code}\n' "${urls[@]}" | grep -c '^200$' >> "$work/$3.count" || true
    local left=$((1000000000 - ($(date +%s%N) - t0)))
    [ $left -gt 0 ] && sleep "0.$(printf '%09d' $left)"
  done
}
load_h2() {
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    local t0=$(date +%s%N)
    h2load -n "$rate" -c 1 -m 4 "http://127.0.0.1:$p2/h2/" 2>/dev/null |
      awk '/^requests:/ {print $8}' >> "$work/h2.count"
    local left=$((1000000000 - ($(date +%s%N) - t0)))
    [ $left -gt 0 ] && sleep "0.$(printf '%09d' $left)"
  done
}
load_curl http $p1 h1 & l1=$!
load_h2 & l2=$!
load_curl https $p3 tls & l3=$!
pids+=($l1 $l2 $l3)

rss() { awk '/^VmRSS/ {print $2}' "/proc/$rpid/status"; }
rss_samples=()
start=$SECONDS
while kill -0 $l1 2>/dev/null || kill -0 $l2 2>/dev/null || kill -0 $l3 2>/dev/null; do
  sleep 10
  kill -0 $rpid 2>/dev/null || { echo "soak: the recorder exited early"; cat "$work/record.log"; exit 1; }
  r=$(rss)
  rss_samples+=("$r")
  echo "soak: t=$((SECONDS - start))s recorder RSS ${r} kB"
done
wait $l1 $l2 $l3 || true
sleep 1
kill -INT $rpid
wait $rpid || { echo "soak: record failed"; cat "$work/record.log"; exit 1; }
grep -v "rewind: recording" "$work/record.log" | sed 's/^/  /'

sum() { awk '{s += $1} END {print s + 0}' "$1" 2>/dev/null || echo 0; }
c_h1=$(sum "$work/h1.count") c_h2=$(sum "$work/h2.count") c_tls=$(sum "$work/tls.count")
n_h1=$(awk -v p=$p1 '$1 == p && $2 == 200' "$work/access.log" | wc -l)
n_h2=$(awk -v p=$p2 '$1 == p && $2 == 200' "$work/access.log" | wc -l)
n_tls=$(awk -v p=$p3 '$1 == p && $2 == 200' "$work/access.log" | wc -l)

lost=$("$work/rewind" info --json "$work/soak.rwd" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lost_events"])')
"$work/rewind" analyze "$work/soak.rwd" --exchanges "$work/exchanges.jsonl" --report text -o "$work/report.txt" 2> "$work/analyze.err"
cat > "$work/count.py" <<'EOF'
import json, sys
n = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("status") != 200 or "incomplete" in (e.get("flags") or []):
        kind = "other"
    elif e.get("tls", "none") != "none":
        kind = "tls"
    elif e.get("proto") == "HTTP/2":
        kind = "h2"
    else:
        kind = "h1"
    key = (e.get("role"), kind) if kind != "other" else "other"
    n[key] = n.get(key, 0) + 1
print(*(n.get((r, k), 0) for r in ("server", "client") for k in ("h1", "h2", "tls")), n.get("other", 0))
EOF
read -r s_h1 s_h2 s_tls k_h1 k_h2 k_tls other < <(python3 "$work/count.py" "$work/exchanges.jsonl")

printf '\nsoak: %-8s %10s %10s %10s %10s\n' kind clients nginx server client
printf 'soak: %-8s %10d %10d %10d %10d\n' HTTP/1.1 "$c_h1" "$n_h1" "$s_h1" "$k_h1"
printf 'soak: %-8s %10d %10d %10d %10d\n' HTTP/2 "$c_h2" "$n_h2" "$s_h2" "$k_h2"
printf 'soak: %-8s %10d %10d %10d %10d\n' TLS "$c_tls" "$n_tls" "$s_tls" "$k_tls"
echo "soak: other exchanges (not 200 or incomplete): $other; lost events: $lost"
echo "soak: recorder RSS (kB, every 10 s): ${rss_samples[*]}"
sed 's/^/soak: analyze: /' "$work/analyze.err"

fail=0
for k in h1 h2 tls; do
  c=c_$k n=n_$k s=s_$k cl=k_$k
  if [ "${!c}" != "${!n}" ] || [ "${!c}" != "${!s}" ] || [ "${!c}" != "${!cl}" ]; then
    echo "soak: FAIL $k: clients ${!c}, nginx ${!n}, server exchanges ${!s}, client exchanges ${!cl}"
    fail=1
  fi
done
[ "$lost" = 0 ] || { echo "soak: FAIL $lost events lost"; fail=1; }
# Flat RSS: the last third's peak within 25% (and 8 MiB) of the first third's.
if [ ${#rss_samples[@]} -ge 3 ]; then
  python3 - "${rss_samples[@]}" <<'EOF' || fail=1
import sys
s = [int(x) for x in sys.argv[1:]]
k = max(1, len(s) // 3)
first, last = max(s[:k]), max(s[-k:])
ok = last <= max(first * 1.25, first + 8192)
print("soak: RSS %s: first third peak %d kB, last third peak %d kB" % ("flat" if ok else "GROWING (FAIL)", first, last))
sys.exit(0 if ok else 1)
EOF
fi
[ $fail = 0 ] && echo "soak: PASS" || echo "soak: FAIL (work dir kept: $work)"
[ $fail = 0 ] && rm -rf "$work"
exit $fail
