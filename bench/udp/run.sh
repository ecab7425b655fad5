#!/usr/bin/env bash
# The UDP echo benchmark: one load generator (bench/udp/load_generator.cpp) against the
# asyncuv, raw-libuv, uvloop and asyncio UDP echo servers, every server in turn for each
# (datagram size, datagrams in flight) row, in one run. With --callgrind, also the user-space
# instructions per round trip of the asyncuv and raw-libuv servers (valgrind's callgrind: a
# figure that does not move with machine load). See bench/README.md.
#
#   bench/udp/run.sh [--quick] [--seconds D] [--warmup W] [--reps R] [--sizes "64 1024"]
#                    [--outstanding "1 32"] [--servers "asyncuv raw_libuv uvloop asyncio"]
#                    [--pin] [--port-base P] [--callgrind] [--callgrind-datagrams N]
#   BUILD_DIR=build-bench PYTHON=/usr/bin/python3 (defaults)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=5
warmup=1
reps=1
sizes="64 1024"
outstanding="1 32"
servers="asyncuv raw_libuv uvloop asyncio"
pin=0
port_base=18950
callgrind=0
cg_datagrams=20000
while [ $# -gt 0 ]; do
  case $1 in
    --quick) seconds=1; warmup=0.3; sizes=64; outstanding=32 ;;
    --seconds) seconds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --reps) reps=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --outstanding) outstanding=$2; shift ;;
    --servers) servers=$2; shift ;;
    --pin) pin=1 ;;
    --port-base) port_base=$2; shift ;;
    --callgrind) callgrind=1 ;;
    --callgrind-datagrams) cg_datagrams=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

build=${BUILD_DIR:-build-bench}
python=${PYTHON:-/usr/bin/python3}

scripts/install-deps python3-uvloop ||
  echo "note: could not install python3-uvloop; the uvloop server is skipped if missing"
if [ "$callgrind" = 1 ]; then
  scripts/install-deps valgrind || echo "note: could not install valgrind"
fi

if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
if ! log=$(ninja -C "$build" bench/udp/udp_load_generator bench/udp/udp_raw_libuv_server \
  bench/udp/udp_asyncuv_server 2>&1); then
  echo "$log" >&2
  exit 1
fi
bin=$build/bench/udp
gen=$bin/udp_load_generator

server_pid=""
work=$(mktemp -d)
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
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
    asyncuv | raw_libuv) [ -x "$bin/udp_${1}_server" ] || echo "not built" ;;
    uvloop) "$python" -c 'import uvloop' 2>/dev/null || echo "no uvloop for $python" ;;
    asyncio) command -v "$python" >/dev/null || echo "no $python" ;;
    *) echo "unknown server" ;;
  esac
}

# Starts server $1 on port $2 in the background (its output in $work/server.log); sets
# server_pid. $3, if given, is a command to run the server under (valgrind ...).
start_server() {
  local wrap=("${server_pin[@]}")
  [ -n "${3:-}" ] && read -r -a wrap <<<"$3"
  case $1 in
    asyncuv | raw_libuv) "${wrap[@]}" "$bin/udp_${1}_server" --port "$2" >"$work/server.log" & ;;
    uvloop) "${wrap[@]}" "$python" bench/udp/asyncio_server.py --uvloop --port "$2" \
      >"$work/server.log" & ;;
    asyncio) "${wrap[@]}" "$python" bench/udp/asyncio_server.py --port "$2" \
      >"$work/server.log" & ;;
  esac
  server_pid=$!
  for _ in $(seq 600); do
    grep -q '^Serving on' "$work/server.log" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server $1 did not start" >&2
  return 1
}

stop_server() {
  kill -INT "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

port_of() {  # a port per server, so no run waits for the previous server's port
  local i=0 s
  for s in asyncuv raw_libuv uvloop asyncio; do
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

ratio() {  # ratio A B -> A/B with 2 decimals, "-" if either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
                                   else printf "%.2f", a / b }'
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

printf '\n# UDP echo, %s s per measurement after %s s warm-up, median of %s; %s\n' \
  "$seconds" "$warmup" "$reps" \
  "$([ "$pin" = 1 ] && echo "server on CPU 1, load generator on CPU 0" || echo "not pinned")"
printf '%s, %s\n' "$(nproc) CPUs" "load average $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A rps cpu p99 lost
failures=0
for size in $sizes; do
  for n in $outstanding; do
    declare -A runs_rps=() runs_cpu=() runs_p99=() runs_lost=()
    for ((r = 0; r < reps; r++)); do
      for s in "${available[@]}"; do
        port=$(port_of "$s")
        if start_server "$s" "$port" &&
          line=$("${gen_pin[@]}" "$gen" --port "$port" --server-pid "$server_pid" \
            --outstanding "$n" --size "$size" --seconds "$seconds" --warmup "$warmup" |
            grep '^RESULT'); then
          runs_rps[$s]+=" $(field rps "$line")"
          runs_cpu[$s]+=" $(field server_cpu_us_per_rt "$line")"
          runs_p99[$s]+=" $(field p99_us "$line")"
          runs_lost[$s]+=" $(field lost "$line")"
        else
          echo "FAILED: $s, $size bytes, $n in flight" >&2
          failures=$((failures + 1))
        fi
        stop_server
      done
    done
    for s in "${available[@]}"; do
      # shellcheck disable=SC2086  # the values are space-separated numbers
      rps[$s,$size,$n]=$(median ${runs_rps[$s]:-})
      # shellcheck disable=SC2086
      cpu[$s,$size,$n]=$(median ${runs_cpu[$s]:-})
      # shellcheck disable=SC2086
      p99[$s,$size,$n]=$(median ${runs_p99[$s]:-})
      # shellcheck disable=SC2086
      lost[$s,$size,$n]=$(median ${runs_lost[$s]:-})
    done
    unset runs_rps runs_cpu runs_p99 runs_lost
  done
done

printf '\n| datagram | in flight | server | round trips/s | vs %s | server CPU µs/rt | CPU vs %s | p99 ms | lost |\n' \
  "$ref" "$ref"
printf '|---:|---:|---|---:|---:|---:|---:|---:|---:|\n'
for size in $sizes; do
  for n in $outstanding; do
    for s in "${available[@]}"; do
      printf '| %s B | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$n" "$s" \
        "$(awk -v v="${rps[$s,$size,$n]}" 'BEGIN { if (v == "-") print v; else printf "%.0f", v }')" \
        "$(ratio "${rps[$s,$size,$n]}" "${rps[$ref,$size,$n]}")" \
        "$(awk -v v="${cpu[$s,$size,$n]}" 'BEGIN { if (v == "-") print v; else printf "%.2f", v }')" \
        "$(ratio "${cpu[$s,$size,$n]}" "${cpu[$ref,$size,$n]}")" \
        "$(awk -v v="${p99[$s,$size,$n]}" 'BEGIN { if (v == "-") print v; else printf "%.2f", v / 1000 }')" \
        "${lost[$s,$size,$n]}"
    done
  done
done

# The targets, judged on round trips/s and, because that moves with machine load, on server
# CPU time per round trip too.
if [ "$ref" = asyncuv ]; then
  printf '\nTargets (asyncuv / peer; round trips/s, then the same for CPU per round trip, inverted):\n'
  check() {  # check PEER SIZE N MIN LABEL
    local r_rps r_cpu verdict
    r_rps=$(ratio "${rps[asyncuv,$2,$3]}" "${rps[$1,$2,$3]:--}")
    r_cpu=$(ratio "${cpu[$1,$2,$3]:--}" "${cpu[asyncuv,$2,$3]}")
    verdict=$(awk -v a="$r_rps" -v b="$r_cpu" -v m="$4" 'BEGIN {
      print (a == "-" ? "-" : (a >= m ? "PASS" : "FAIL")) "/" (b == "-" ? "-" : (b >= m ? "PASS" : "FAIL")) }')
    printf '  %-16s %5s B x %-3s  rt/s %5s  cpu %5s  (>= %s)  %s\n' "$5" "$2" "$3" \
      "$r_rps" "$r_cpu" "$4" "$verdict"
  }
  for size in $sizes; do
    for n in $outstanding; do
      [[ " ${available[*]} " == *" raw_libuv "* ]] && check raw_libuv "$size" "$n" 0.95 "vs raw libuv"
      [[ " ${available[*]} " == *" uvloop "* ]] && check uvloop "$size" "$n" 2.00 "vs uvloop"
    done
  done
fi

# ---- user-space instructions per round trip (callgrind) ----------------------------------------

if [ "$callgrind" = 1 ] && command -v valgrind >/dev/null; then
  # Two runs per server, of N and 2N round trips: (Ir_2N - Ir_N) / N cancels start-up and
  # shutdown. Kernel time (recvmsg/sendmsg, the bulk of a round trip) is not counted.
  measure_ir() {  # measure_ir SERVER SIZE DATAGRAMS -> "instructions round_trips"
    local out="$work/cg.out" line
    rm -f "$out"
    start_server "$1" "$((port_base + 10))" \
      "valgrind --tool=callgrind --callgrind-out-file=$out" 2>>"$work/valgrind.log"
    line=$("$gen" --port "$((port_base + 10))" --outstanding 16 --size "$2" --warmup 0 --resend 2 \
      --seconds 600 --datagrams "$3" | grep '^RESULT')
    stop_server
    echo "$(sed -n 's/^summary: //p' "$out") $(field round_trips "$line")"
  }
  printf '\n# User-space instructions per round trip (callgrind, 16 in flight)\n\n'
  printf '| datagram | asyncuv | raw_libuv | asyncuv / raw_libuv |\n|---:|---:|---:|---:|\n'
  for size in $sizes; do
    declare -A per=()
    for s in asyncuv raw_libuv; do
      read -r ir1 n1 <<<"$(measure_ir "$s" "$size" "$cg_datagrams")"
      read -r ir2 n2 <<<"$(measure_ir "$s" "$size" "$((2 * cg_datagrams))")"
      per[$s]=$(awk -v a="$ir1" -v b="$ir2" -v m="$n1" -v n="$n2" \
        'BEGIN { if (n > m) printf "%.0f", (b - a) / (n - m); else print "-" }')
    done
    printf '| %s B | %s | %s | %s |\n' "$size" "${per[asyncuv]}" "${per[raw_libuv]}" \
      "$(ratio "${per[asyncuv]}" "${per[raw_libuv]}")"
    unset per
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures measurement(s) failed" >&2
  exit 3
fi
