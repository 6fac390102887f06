#!/usr/bin/env bash
# test-setup: install the system packages the test tiers use (live servers and
# clients, tshark, a browser). It runs for real in CI (CI=true) and when
# REWIND_SETUP=1; otherwise it only lists what is missing, and the tests that
# need it skip with that reason.
set -euo pipefail

# command -> Debian package
declare -A want=(
  [nginx]=nginx-light
  [curl]=curl
  [tshark]=tshark
  [tcpdump]=tcpdump
  [h2load]=nghttp2-client
  [nghttp]=nghttp2-client
  [gnutls-cli]=gnutls-bin
  [openssl]=openssl
  # unpacking Debian 13's OpenSSL for the second-OpenSSL live test
  [xz]=xz-utils
  # the container tests: network namespaces (ip netns) and python3 servers
  [ip]=iproute2
  [python3]=python3
  # a real container runtime: podman with runc (crun refuses this host's
  # cgroup v1/v2 hybrid) and its network backend
  [podman]=podman
  [runc]=runc
  [/usr/lib/podman/netavark]=netavark
  [/usr/lib/podman/aardvark-dns]=aardvark-dns
  [catatonit]=catatonit
  [chromium]=chromium
  # DuckDB reads the Parquet output through its node bindings (npm, below)
  [node]=nodejs
  [npm]=npm
  # completion scripts are run in each shell
  [zsh]=zsh
  [fish]=fish
  # cross-platform output test: the windows/amd64 binary runs under wine64
  # (a small ProcessPrng DLL built with mingw-w64 stands in for what wine 8
  # lacks), the linux/arm64 one under qemu-user.
  [/usr/lib/wine/wine64]=wine64
  [qemu-aarch64-static]=qemu-user-static
  [x86_64-w64-mingw32-gcc]=gcc-mingw-w64-x86-64-win32
)

missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "$cmd" ]; then
    missing+=("${want[$cmd]}")
  fi
done
# The early-answer live test drives uploads with Python's requests library:
# the machine's python3 may have it; Debian's python3-requests gives it to
# /usr/bin/python3 otherwise.
if ! python3 -c 'import requests' >/dev/null 2>&1 && ! /usr/bin/python3 -c 'import requests' >/dev/null 2>&1; then
  missing+=(python3-requests)
fi
# unique, sorted
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi

# duckdb_setup installs DuckDB's node bindings (pinned in
# scripts/duckdb/package.json and its lock file) for format/parquet's tests.
duckdb_setup() {
  local dir
  dir="$(dirname "$0")/duckdb"
  [ -d "$dir/node_modules/@duckdb/node-api" ] && return 0
  if [ "${CI:-}" != "true" ] && [ "${REWIND_SETUP:-}" != "1" ]; then
    echo "test-setup: DuckDB for node missing (REWIND_SETUP=1 make test installs it)"
    return 0
  fi
  echo "test-setup: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# trixie_setup unpacks Debian 13's libssl (OpenSSL 3.5: functions that
# begin with endbr64, SSL_write_ex handing over to SSL_write_ex2) and the C
# library it needs into .cache/trixie, for the live test that records
# Python's ssl module over a second OpenSSL build (cmd/rewind,
# TestLiveTLSPythonOpenSSL35). Only bytes are unpacked: nothing is installed.
trixie_setup() {
  local dir tmp pkg f
  dir="$(dirname "$0")/../.cache/trixie"
  [ -f "$dir/ok" ] && return 0
  [ "$(uname -m)" = x86_64 ] || return 0
  if [ "${CI:-}" != "true" ] && [ "${REWIND_SETUP:-}" != "1" ]; then
    echo "test-setup: Debian 13's OpenSSL missing (REWIND_SETUP=1 make test fetches it)"
    return 0
  fi
  echo "test-setup: unpacking Debian 13's libssl3t64 and libc6 into $dir"
  tmp=$(mktemp -d)
  mkdir -p "$dir"
  curl -fsS -m 300 -o "$tmp/Packages.xz" http://deb.debian.org/debian/dists/trixie/main/binary-amd64/Packages.xz
  for pkg in libssl3t64 libc6; do
    f=$(xz -dc "$tmp/Packages.xz" | awk -v p="$pkg" '$1 == "Package:" { cur = $2 } cur == p && $1 == "Filename:" && !done { print $2; done = 1 }')
    if [ -z "$f" ]; then
      echo "test-setup: no $pkg in Debian 13's package index" >&2
      rm -rf "$tmp"
      return 1
    fi
    curl -fsS -m 300 -o "$tmp/$pkg.deb" "http://deb.debian.org/debian/$f"
    dpkg-deb -x "$tmp/$pkg.deb" "$dir"
  done
  rm -rf "$tmp"
  touch "$dir/ok"
}

if [ ${#missing[@]} -eq 0 ]; then
  duckdb_setup
  trixie_setup
  echo "test-setup: all test tools present"
  exit 0
fi

if [ "${CI:-}" != "true" ] && [ "${REWIND_SETUP:-}" != "1" ]; then
  echo "test-setup: missing ${missing[*]} (tests that need them skip; REWIND_SETUP=1 make test installs them)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "test-setup: need root to install ${missing[*]}" >&2
  exit 1
fi

echo "test-setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# nginx must not hold ports: tests start their own instances.
systemctl stop nginx >/dev/null 2>&1 || true
service nginx stop >/dev/null 2>&1 || true
duckdb_setup
trixie_setup
echo "test-setup: done"
