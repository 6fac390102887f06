#!/usr/bin/env bash
# record-testdata: re-record the fixed captures in testdata/ from real
# programs with `rewind record` (root), then regenerate the goldens:
#
#   sudo scripts/record-testdata.sh && REWIND_UPDATE=1 go test ./cmd/rewind -run TestGolden
#
# Captures:
#   sample.rwd            the built-in demo workload: Go net/http client and server,
#                         keep-alive and fresh connections, chunked responses, 404s and 503s
#   curl-nginx.rwd        curl against nginx: keep-alive, a 404, a 1 MiB body (truncated at
#                         the 16 KiB snaplen), a gzip-compressed chunked response
#   pipelining-nginx.rwd  python3 writing three pipelined requests to nginx in one send
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "record-testdata: needs root" >&2; exit 1; }
go build -o bin/rewind ./cmd/rewind
rw=$PWD/bin/rewind
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run unprivileged
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# 1. the demo workload
$rw demo --requests 120 -o testdata/sample.rwd > /dev/null
cp testdata/sample.rwd cmd/rewind/sample.rwd

# nginx on a fixed-for-this-run port, files to serve
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/www"
head -c 100 /dev/zero | tr '\0' 's' > "$work/www/small.txt"
python3 -c 'import sys; sys.stdout.write("".join(chr(97+i%26) for i in range(1<<20)))' > "$work/www/big.txt"
python3 -c 'import sys; sys.stdout.write("rewind compresses well. " * 400)' > "$work/www/text.txt"
cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:$port;
    root $work/www;
    location = /text.txt { gzip on; gzip_types text/plain; gzip_min_length 0; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" -e "$work/error.log" &
sleep 0.5

record() { # record OUT -- workload...
  local out=$1; shift; shift
  "$rw" record --force -o "$out" --port "$port" --comm nginx --comm curl --comm python3 2> "$work/rec.log" &
  local rpid=$!
  for _ in $(seq 100); do grep -q 'recording' "$work/rec.log" && break; sleep 0.1; done
  "$@"
  sleep 0.3
  kill -INT $rpid; wait $rpid || true
}

base=http://127.0.0.1:$port
# 2. curl keep-alive
record testdata/curl-nginx.rwd -- curl -sS -o /dev/null "$base/small.txt" -o /dev/null "$base/missing" \
  -o /dev/null "$base/big.txt" --compressed -o /dev/null "$base/text.txt" -o /dev/null "$base/small.txt?again=1"

# 3. pipelining: three requests in one write, read the answers
pipeline() {
  python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: pipe\r\n\r\n"
          b"HEAD /text.txt HTTP/1.1\r\nHost: pipe\r\n\r\n"
          b"GET /nope HTTP/1.1\r\nHost: pipe\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
s.close()
PY
}
record testdata/pipelining-nginx.rwd -- pipeline

ls -l testdata/*.rwd
