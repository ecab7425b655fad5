#!/usr/bin/env bash
# The soak benchmark (not a test): thousands of TCP connections echoing through the asyncuv echo
# server (bench/echo/asyncuv_server.cpp) for a set time, every echoed byte checked by the load
# generator (bench/echo/load_generator.cpp), printing the server's RSS over time, the
# throughput and the errors. Any wrong, missing or extra byte, or a connection closed by the
# server, stops the run with exit status 3.
#
#   bench/soak.sh [--connections N] [--seconds D] [--size BYTES] [--every S] [--port P]
#   defaults: 5000 connections, 60 s, 128-byte messages, an RSS sample every 5 s
#
# Load generator and server share the machine's cores: read the RSS line (flat after warm-up
# means no growth per request) and the errors, not the absolute requests per second.
set -euo pipefail
cd "$(dirname "$0")/.."

connections=5000
seconds=60
size=128
every=5
port=18990
while [ $# -gt 0 ]; do
  case $1 in
    --connections) connections=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --size) size=$2; shift ;;
    --every) every=$2; shift ;;
    --port) port=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD_DIR:-build-bench}
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
ninja -C "$build" bench/echo/load_generator bench/echo/asyncuv_server >/dev/null

# The server needs a descriptor per connection too.
ulimit -n "$(ulimit -Hn)"
"$build/bench/echo/asyncuv_server" --host 127.0.0.1 --port "$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

echo "soak: $connections connections, ${size}-byte messages, ${seconds} s, asyncuv echo server"
status=0
"$build/bench/echo/load_generator" --port "$port" --connections "$connections" --size "$size" \
  --seconds "$seconds" --warmup 2 --wait 10 --timeout 30 --server-pid "$server" \
  --rss-every "$every" || status=$?
if [ "$status" -eq 0 ]; then
  echo "soak: errors=0 (every echoed byte checked)"
else
  echo "soak: FAILED (load_generator exit $status)"
fi
exit "$status"
