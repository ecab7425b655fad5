#!/usr/bin/env bash
# The TLS echo benchmark: one TLS load generator (bench/tls/tls_load_generator.cpp) against the
# asyncuv, Asio (asio::ssl::stream), uvloop and asyncio TLS echo servers (ssl=), every server in
# turn for each (message size, connections) row, in one run. Targets: >= 2x uvloop, >= Asio.
#
#   bench/tls/run.sh [--seconds D] [--warmup W] [--sizes "1024 16384"] [--conns "10"]
#                    [--servers "asyncuv asio uvloop asyncio"] [--port-base P]
#   BUILD_DIR=build-bench PYTHON=/usr/bin/python3 (defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=5
warmup=1
sizes="1024 16384"
conns="10"
servers="asyncuv asio uvloop asyncio"
port_base=18900
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --conns) conns=$2; shift ;;
    --servers) servers=$2; shift ;;
    --port-base) port_base=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD_DIR:-build-bench}
python=${PYTHON:-/usr/bin/python3}
scripts/install-deps libasio-dev python3-uvloop ||
  echo "note: could not install libasio-dev/python3-uvloop; what is missing is skipped"
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
if ! log=$(ninja -C "$build" bench/tls/tls_load_generator bench/tls/asyncuv_tls_server \
  bench/tls/asio_tls_server 2>&1); then
  echo "$log" >&2
  exit 1
fi
bin=$build/bench/tls
gen=$bin/tls_load_generator

certs=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$certs"
}
trap cleanup EXIT
"$gen" --make-cert "$certs"
tls=(--cert "$certs/cert.pem" --key "$certs/key.pem")

unavailable() {
  case $1 in
    asyncuv | asio) [ -x "$bin/${1}_tls_server" ] || echo "not built" ;;
    uvloop) "$python" -c 'import uvloop' 2>/dev/null || echo "no uvloop for $python" ;;
    asyncio) command -v "$python" >/dev/null || echo "no $python" ;;
    *) echo "unknown server" ;;
  esac
}

start_server() {
  case $1 in
    asyncuv | asio) "$bin/${1}_tls_server" --port "$2" "${tls[@]}" & ;;
    uvloop) "$python" bench/tls/asyncio_tls_server.py --uvloop --port "$2" "${tls[@]}" & ;;
    asyncio) "$python" bench/tls/asyncio_tls_server.py --port "$2" "${tls[@]}" & ;;
  esac
  server_pid=$!
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'
}

available=()
for s in $servers; do
  why=$(unavailable "$s")
  if [ -n "$why" ]; then echo "skipping $s: $why"; else available+=("$s"); fi
done

printf '\n# TLS echo (TLS 1.3), %s s per measurement after %s s warm-up; %s CPUs, load %s\n' \
  "$seconds" "$warmup" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n| message | conns | server | req/s | req/s vs asyncuv | server CPU µs/req | p99 ms |\n'
printf '|---|---:|---|---:|---:|---:|---:|\n'
declare -A rps cpu
i=0
for size in $sizes; do
  for c in $conns; do
    for s in "${available[@]}"; do
      port=$((port_base + i))
      i=$((i + 1))
      start_server "$s" "$port"
      line=$("$gen" --port "$port" --server-pid "$server_pid" --connections "$c" --size "$size" \
        --seconds "$seconds" --warmup "$warmup" | grep '^RESULT' || true)
      stop_server
      rps[$s,$size,$c]=$(field rps "$line")
      cpu[$s,$size,$c]=$(field server_cpu_us_per_req "$line")
      printf '| %s B | %s | %s | %s | %s | %s | %s |\n' "$size" "$c" "$s" "${rps[$s,$size,$c]:--}" \
        "$(ratio "${rps[$s,$size,$c]:-}" "${rps[asyncuv,$size,$c]:-}")" "${cpu[$s,$size,$c]:--}" \
        "$(awk -v v="$(field p99_us "$line")" 'BEGIN { if (v == "") print "-"; else printf "%.2f", v / 1000 }')"
    done
  done
done

printf '\nTargets (asyncuv / peer, req/s; then server CPU per request, inverted):\n'
for size in $sizes; do
  for c in $conns; do
    for peer in uvloop asio; do
      want=1.00
      [ "$peer" = uvloop ] && want=2.00
      r=$(ratio "${rps[asyncuv,$size,$c]:-}" "${rps[$peer,$size,$c]:-}")
      q=$(ratio "${cpu[$peer,$size,$c]:-}" "${cpu[asyncuv,$size,$c]:-}")
      printf '  vs %-7s %6s B x %s: req/s %5s  cpu %5s  (>= %s)\n' "$peer" "$size" "$c" "$r" "$q" "$want"
    done
  done
done
