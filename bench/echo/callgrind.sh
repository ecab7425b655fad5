#!/usr/bin/env bash
# User-space instructions per echo request of the C++ echo servers (asyncuv, raw libuv, Asio),
# counted by valgrind's callgrind: a figure that does not move with machine load, unlike the
# timings of bench/echo/run.sh. Kernel time (the socket reads and writes, the bulk of a request)
# is not counted; this measures only what each server adds on top of the same syscalls.
#
# Each server runs twice under callgrind, driven by the load generator for --short and --long
# seconds; (Ir_long - Ir_short) / (requests_long - requests_short) cancels start-up and
# shutdown, leaving the cost of one request.
#
#   bench/echo/callgrind.sh [--sizes "1024 16384 102400"] [--conns "10 50"]
#                           [--servers "asyncuv raw_libuv asio"] [--short 2] [--long 4]
#   BUILD_DIR=build-bench (default)
set -euo pipefail
cd "$(dirname "$0")/../.."

sizes="1024 16384 102400"
conns="10 50"
servers="asyncuv raw_libuv asio"
short=2
long=4
port=18900
while [ $# -gt 0 ]; do
  case $1 in
    --sizes) sizes=$2; shift ;;
    --conns) conns=$2; shift ;;
    --servers) servers=$2; shift ;;
    --short) short=$2; shift ;;
    --long) long=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "callgrind.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD_DIR:-build-bench}
scripts/install-deps valgrind libasio-dev
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
if ! log=$(ninja -C "$build" bench/echo/load_generator bench/echo/raw_libuv_server \
  bench/echo/asio_server bench/echo/asyncuv_server 2>&1); then
  echo "$log" >&2
  exit 1
fi
bin=$build/bench/echo
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# measure SERVER SIZE CONNS SECONDS: sets ir (instructions) and requests. (Not run in a $(...)
# subshell, which would run the EXIT trap and remove $work.)
measure() {
  local out="$work/cg.out" result
  rm -f "$out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/${1}_server" --port "$port" \
    2>"$work/valgrind.log" &
  server_pid=$!
  for _ in $(seq 300); do
    ss -ltn | grep -q ":$port " && break
    sleep 0.1
  done
  result=$("$bin/load_generator" --port "$port" --connections "$3" --size "$2" \
    --seconds "$4" --warmup 0 | grep '^RESULT')
  kill -TERM "$server_pid"  # (SIGINT is ignored by background jobs of a script)
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  requests=$(tr ' ' '\n' <<<"$result" | sed -n 's/^requests=//p')
  ir=$(sed -n 's/^summary: //p' "$out")
}

printf '\n# User-space instructions per echo request (callgrind; %s s minus %s s runs)\n\n' \
  "$long" "$short"
printf '| message | conns |'
for s in $servers; do printf ' %s |' "$s"; done
printf ' asyncuv / raw_libuv |\n|---|---:|'
for _ in $servers; do printf -- '---:|'; done
printf -- '---:|\n'
for size in $sizes; do
  for c in $conns; do
    declare -A per=()
    for s in $servers; do
      measure "$s" "$size" "$c" "$short"
      ir1=$ir n1=$requests
      measure "$s" "$size" "$c" "$long"
      ir2=$ir n2=$requests
      per[$s]=$(awk -v a="$ir1" -v b="$ir2" -v m="$n1" -v n="$n2" \
        'BEGIN { if (n > m) printf "%.0f", (b - a) / (n - m); else print "-" }')
    done
    printf '| %s | %s |' "$((size / 1024)) KiB" "$c"
    for s in $servers; do printf ' %s |' "${per[$s]}"; done
    awk -v a="${per[asyncuv]:--}" -v b="${per[raw_libuv]:--}" \
      'BEGIN { if (a == "-" || b == "-" || b == 0) print " - |"; else printf " %.2f |\n", a / b }'
    unset per
  done
done
