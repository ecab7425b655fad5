# Sourced by scripts/fuzz and scripts/test-fuzz: builds the libFuzzer targets of test/fuzz
# (build-fuzz: clang 16, -Dfuzz=true, ASan + UBSan + coverage) and runs each for a time
# budget, adding one pass or one fail per target to the `passed` / `failed` counters.
#
#   fuzz_build
#   fuzz_run_all SECONDS
#
# A target fails on a crash, a sanitizer report, a leak, an input slower than 10 s or a run
# that exits non-zero for any other reason. libFuzzer then leaves the input that did it in
# fuzz-findings/<target>/ (crash-*, leak-*, timeout-*, oom-*): reproduce it with
# `build-fuzz/test/fuzz/fuzz_<target> fuzz-findings/<target>/crash-...`. The seeds are
# test/fuzz/corpus/<target>/ (read only); what the fuzzer finds interesting is kept between
# runs in build-fuzz/corpus/<target>/.
: "${passed:=0}"
: "${failed:=0}"
summaries=("${summaries[@]}")

fuzz_targets=(stream_reader tls_server tls_client datagram)

fuzz_build() {
  if ! command -v clang++-16 >/dev/null ||
    ! ls /usr/lib/llvm-16/lib/clang/16/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    scripts/install-deps clang-16 libclang-rt-16-dev
  fi
  # -O1: most of the speed of -O2 for the fuzzing, at a lower build time.
  [ -d build-fuzz ] || CXX=clang++-16 meson setup build-fuzz -Ddebug=true -Doptimization=1 \
    -Dfuzz=true -Dtests=false -Dsamples=false -Ddefault_library=static >/dev/null
  ninja -C build-fuzz
}

fuzz_run_all() {
  local seconds=$1 target rc log
  for target in "${fuzz_targets[@]}"; do
    mkdir -p "build-fuzz/corpus/$target" "fuzz-findings/$target"
    log="build-fuzz/fuzz-$target.log"
    echo "== fuzz_$target: ${seconds}s =="
    rc=0
    # The first corpus directory receives the new inputs; the seeds stay untouched.
    ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
      "./build-fuzz/test/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="fuzz-findings/$target/" \
      "build-fuzz/corpus/$target" "test/fuzz/corpus/$target" >"$log" 2>&1 || rc=$?
    grep -a '^Done\|stat::number_of_executed_units\|stat::new_units_added' "$log" || true
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
      echo "fuzz_$target: passed"
      summaries+=("fuzz_$target: passed")
      rmdir "fuzz-findings/$target" 2>/dev/null || true
    else
      failed=$((failed + 1))
      grep -a -A30 'ERROR: \|==ERROR\|runtime error\|Test unit written' "$log" | head -n 60 || true
      echo "fuzz_$target: FAILED (exit $rc; reproducer in fuzz-findings/$target/, log $log)"
      summaries+=("fuzz_$target: FAILED (exit $rc)")
    fi
  done
  rmdir fuzz-findings 2>/dev/null || true
}
