#!/usr/bin/env bash
# The TCP echo benchmark: one load generator (bench/echo/load_generator.cpp) against the
# asyncuv, raw-libuv, Asio, uvloop, asyncio and Node.js echo servers, every server in turn for
# each (message size, connections) row, in one run. See bench/README.md.
#
#   bench/echo/run.sh [--quick] [--seconds D] [--warmup W] [--reps R] [--sizes "1024 16384"]
#                     [--conns "10 50"] [--servers "asyncuv raw_libuv ..."] [--idle N]
#                     [--no-idle] [--no-load] [--pin] [--port-base P]
#   BUILD_DIR=build-bench PYTHON=/usr/bin/python3 NODE=node (defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=5
warmup=1
reps=1
sizes="1024 16384 102400"
conns="10 50"
servers="asyncuv raw_libuv asio uvloop asyncio node"
idle=10000
do_idle=1
do_load=1
pin=0
port_base=18800
while [ $# -gt 0 ]; do
  case $1 in
    --quick) seconds=1; warmup=0.3; sizes=16384; conns=10; idle=1000 ;;
    --seconds) seconds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --reps) reps=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --conns) conns=$2; shift ;;
    --servers) servers=$2; shift ;;
    --idle) idle=$2; shift ;;
    --no-idle) do_idle=0 ;;
    --no-load) do_load=0 ;;
    --pin) pin=1 ;;
    --port-base) port_base=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD_DIR:-build-bench}
python=${PYTHON:-/usr/bin/python3}
node=${NODE:-node}

# Debian packages (as root; otherwise the servers that cannot run are skipped below).
scripts/install-deps libasio-dev nodejs python3-uvloop ||
  echo "note: could not install libasio-dev/nodejs/python3-uvloop; missing servers are skipped"

if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
targets=(bench/echo/load_generator bench/echo/raw_libuv_server bench/echo/asio_server)
if ninja -C "$build" -t targets all 2>/dev/null | grep -q '^bench/echo/asyncuv_server:'; then
  targets+=(bench/echo/asyncuv_server)
fi
if ! log=$(ninja -C "$build" "${targets[@]}" 2>&1); then
  echo "$log" >&2
  exit 1
fi
bin=$build/bench/echo
gen=$bin/load_generator

# Both the servers and the load generator need a descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- the servers -----------------------------------------------------------------------------

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

server_pin=()
gen_pin=()
if [ "$pin" = 1 ]; then
  server_pin=(taskset -c 1)
  gen_pin=(taskset -c 0)
fi

# Why a server cannot run here, or nothing.
unavailable() {
  case $1 in
    asyncuv)
      [ -x "$bin/asyncuv_server" ] ||
        echo "not built: loop.create_server is not in include/asyncuv yet (bench/echo/meson.build)"
      ;;
    raw_libuv | asio) [ -x "$bin/${1}_server" ] || echo "not built" ;;
    uvloop) "$python" -c 'import uvloop' 2>/dev/null || echo "no uvloop for $python" ;;
    asyncio) command -v "$python" >/dev/null || echo "no $python" ;;
    node) command -v "$node" >/dev/null || echo "no node" ;;
    *) echo "unknown server" ;;
  esac
}

# Starts server $1 on port $2 in the background; sets server_pid.
start_server() {
  case $1 in
    asyncuv | raw_libuv | asio) "${server_pin[@]}" "$bin/${1}_server" --port "$2" & ;;
    uvloop) "${server_pin[@]}" "$python" bench/echo/asyncio_server.py --uvloop --port "$2" & ;;
    asyncio) "${server_pin[@]}" "$python" bench/echo/asyncio_server.py --port "$2" & ;;
    node) "${server_pin[@]}" "$node" bench/echo/node_server.js --port "$2" & ;;
  esac
  server_pid=$!
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

port_of() {  # a port per server, so no run waits for the previous server's port
  local i=0 s
  for s in asyncuv raw_libuv asio uvloop asyncio node; do
    [ "$s" = "$1" ] && break
    i=$((i + 1))
  done
  echo $((port_base + i))
}

field() {  # field NAME "RESULT a=1 b=2" -> value
  tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

median() {  # median of the arguments (numbers); "-" if none
  printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
                             else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

available=()
for s in $servers; do
  why=$(unavailable "$s")
  if [ -n "$why" ]; then
    echo "skipping $s: $why"
  else
    available+=("$s")
  fi
done
ref=asyncuv
if [[ " ${available[*]} " != *" asyncuv "* ]]; then
  ref=${available[0]:-}
  echo "note: asyncuv is not measured; ratios are to $ref instead"
fi

printf '\n# TCP echo, %s s per measurement after %s s warm-up, median of %s; %s\n' \
  "$seconds" "$warmup" "$reps" \
  "$([ "$pin" = 1 ] && echo "server on CPU 1, load generator on CPU 0" || echo "not pinned")"
printf '%s, %s\n' "$(nproc) CPUs" "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- request/response rows -------------------------------------------------------------------

declare -A rps cpu p99
failures=0
if [ "$do_load" = 1 ]; then
  for size in $sizes; do
    for c in $conns; do
      declare -A runs_rps=() runs_cpu=() runs_p99=()
      for ((r = 0; r < reps; r++)); do
        for s in "${available[@]}"; do
          port=$(port_of "$s")
          start_server "$s" "$port"
          if line=$("${gen_pin[@]}" "$gen" --port "$port" --server-pid "$server_pid" \
            --connections "$c" --size "$size" --seconds "$seconds" --warmup "$warmup" |
            grep '^RESULT'); then
            runs_rps[$s]+=" $(field rps "$line")"
            runs_cpu[$s]+=" $(field server_cpu_us_per_req "$line")"
            runs_p99[$s]+=" $(field p99_us "$line")"
          else
            echo "FAILED: $s, $size bytes, $c connections (load_generator output above)" >&2
            failures=$((failures + 1))
          fi
          stop_server
        done
      done
      for s in "${available[@]}"; do
        # shellcheck disable=SC2086  # the values are space-separated numbers
        rps[$s,$size,$c]=$(median ${runs_rps[$s]:-})
        # shellcheck disable=SC2086
        cpu[$s,$size,$c]=$(median ${runs_cpu[$s]:-})
        # shellcheck disable=SC2086
        p99[$s,$size,$c]=$(median ${runs_p99[$s]:-})
      done
      unset runs_rps runs_cpu runs_p99
    done
  done

  ratio() {  # ratio A B -> A/B with 2 decimals, "-" if either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
                                     else printf "%.2f", a / b }'
  }
  human_size() {
    awk -v s="$1" 'BEGIN { if (s % 1024 == 0) printf "%d KiB", s / 1024; else printf "%d B", s }'
  }

  printf '\n| message | conns | server | req/s | req/s vs %s | server CPU µs/req | CPU vs %s | p99 ms |\n' \
    "$ref" "$ref"
  printf '|---|---:|---|---:|---:|---:|---:|---:|\n'
  for size in $sizes; do
    for c in $conns; do
      for s in "${available[@]}"; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(human_size "$size")" "$c" "$s" \
          "$(awk -v v="${rps[$s,$size,$c]}" 'BEGIN { if (v == "-") print v; else printf "%.0f", v }')" \
          "$(ratio "${rps[$s,$size,$c]}" "${rps[$ref,$size,$c]}")" \
          "$(awk -v v="${cpu[$s,$size,$c]}" 'BEGIN { if (v == "-") print v; else printf "%.1f", v }')" \
          "$(ratio "${cpu[$s,$size,$c]}" "${cpu[$ref,$size,$c]}")" \
          "$(awk -v v="${p99[$s,$size,$c]}" 'BEGIN { if (v == "-") print v; else printf "%.2f", v / 1000 }')"
      done
    done
  done

  # The targets, judged on req/s and, because req/s moves with machine load, on server CPU time
  # per request too.
  if [ "$ref" = asyncuv ]; then
    printf '\nTargets (asyncuv / peer; req/s, then the same for CPU per request, inverted):\n'
    check() {  # check PEER SIZE CONNS MIN LABEL
      local r_rps r_cpu verdict
      r_rps=$(ratio "${rps[asyncuv,$2,$3]}" "${rps[$1,$2,$3]:--}")
      r_cpu=$(ratio "${cpu[$1,$2,$3]:--}" "${cpu[asyncuv,$2,$3]}")
      verdict=$(awk -v a="$r_rps" -v b="$r_cpu" -v m="$4" 'BEGIN {
        print (a == "-" ? "-" : (a >= m ? "PASS" : "FAIL")) "/" (b == "-" ? "-" : (b >= m ? "PASS" : "FAIL")) }')
      printf '  %-28s %-14s req/s %5s  cpu %5s  (>= %s)  %s\n' "$5" "$(human_size "$2") x $3" \
        "$r_rps" "$r_cpu" "$4" "$verdict"
    }
    for size in $sizes; do
      for c in $conns; do
        [[ " ${available[*]} " == *" raw_libuv "* ]] && check raw_libuv "$size" "$c" 0.95 "vs raw libuv"
        [[ " ${available[*]} " == *" asio "* ]] && check asio "$size" "$c" 1.00 "vs Asio"
        if [ "$size" = 16384 ] && [[ " ${available[*]} " == *" uvloop "* ]]; then
          check uvloop "$size" "$c" 2.00 "vs uvloop"
        fi
      done
    done
  fi
fi

# ---- memory per idle connection --------------------------------------------------------------

if [ "$do_idle" = 1 ]; then
  limit=$(ulimit -n)
  if [ "$limit" != unlimited ] && [ "$idle" -gt $((limit - 64)) ]; then
    echo "note: RLIMIT_NOFILE is $limit here; measuring $((limit - 64)) idle connections, not $idle"
    idle=$((limit - 64))
  fi
  printf '\n| server | idle connections | RSS before (MiB) | RSS after (MiB) | bytes per connection |\n'
  printf '|---|---:|---:|---:|---:|\n'
  for s in "${available[@]}"; do
    port=$(port_of "$s")
    start_server "$s" "$port"
    if line=$("$gen" --idle "$idle" --port "$port" --server-pid "$server_pid" | grep '^RESULT');
    then
      printf '| %s | %s | %.1f | %.1f | %s |\n' "$s" "$idle" \
        "$(awk -v k="$(field rss_before_kib "$line")" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$(field rss_after_kib "$line")" 'BEGIN { print k / 1024 }')" \
        "$(field bytes_per_conn "$line")"
    else
      echo "FAILED: $s, $idle idle connections" >&2
      failures=$((failures + 1))
    fi
    stop_server
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures measurement(s) failed" >&2
  exit 3
fi
