#!/usr/bin/env bash
# Builds the benchmark (release) and prints one table: asyncuv against a plain-libuv floor,
# Asio, CPython asyncio and uvloop.
#
#   bench/run.sh [call_soon_bench options, e.g. --reps 9 --n 2000000]
#   bench/run.sh --callgrind     instructions per callback (floor / asyncuv / asio), N=100000
set -euo pipefail
cd "$(dirname "$0")/.."

build="build-bench"
if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dtests=false -Dsamples=false >/dev/null
fi
if ! log=$(ninja -C "$build" bench/call_soon_bench bench/task_bench 2>&1); then
  echo "$log" >&2
  exit 1
fi
bin=$build/bench/call_soon_bench
python=${PYTHON:-/usr/bin/python3}

if [ "${1:-}" != --callgrind ]; then
  "$bin" --python "$python" --script bench/asyncio_bench.py "$@"
  exec "$build/bench/task_bench" --python "$python" --script bench/asyncio_task_bench.py
fi

# Instruction counts: only bench_measured (the timed part) is counted, so loop construction
# and process start-up are excluded. Batch runs one round of N.
n=${N:-100000}
out=$build/callgrind
mkdir -p "$out"
per_callback() {  # workload impl -> instructions per callback
  local f=$out/$1.$2.out
  valgrind --tool=callgrind --toggle-collect=bench_measured --callgrind-out-file="$f" \
    "$bin" --workload "$1" --impl "$2" --n "$n" --reps 1 --rounds 1 >/dev/null 2>"$out/$1.$2.log"
  awk -v n="$n" '/^(summary|totals):/ { printf "%.1f", $2 / n; exit }' "$f"
}
printf '\ninstructions per callback (callgrind, N=%d)\n\n' "$n"
printf '%-18s %10s %10s %10s | %9s\n' workload floor asyncuv asio uv/floor
for w in chained batch timer; do
  floor=$(per_callback "$w" floor)
  note=""
  if [ "$w" = timer ]; then
    many=$(per_callback timer floor-many)
    note="  (floor: one uv_timer_t $floor, N uv_timer_t $many; the cheaper is used)"
    floor=$(awk -v a="$floor" -v b="$many" 'BEGIN { print (b < a ? b : a) }')
  fi
  uv=$(per_callback "$w" asyncuv)
  asio=$(per_callback "$w" asio)
  label=$w
  case $w in
    chained) label="chained call_soon" ;;
    batch) label="batch call_soon" ;;
    timer) label="call_later+cancel" ;;
  esac
  printf '%-18s %10s %10s %10s | %8.2fx%s\n' "$label" "$floor" "$uv" "$asio" \
    "$(awk -v a="$uv" -v b="$floor" 'BEGIN { print a / b }')" "$note"
done
printf '\ncallgrind files: %s/*.out (callgrind_annotate %s/<workload>.asyncuv.out)\n' "$out" "$out"
