# Sourced by scripts/test and the stage scripts it sources (scripts/test-compilers,
# scripts/test-tsan): run_suite builds a build directory and runs the Catch2 suite in it,
# adding to the `passed` / `failed` counters.
#
#   run_suite DIR [meson setup options...]
#
# DIR is configured once with the options (and the CXX / PKG_CONFIG_PATH of the call; meson
# remembers them). SUITE_FILTER, when set, is a Catch2 test spec that selects the tests to run
# (default: all). A failed test, a sanitizer report, a leak or a crash counts as a failure.
: "${passed:=0}"
: "${failed:=0}"
# One line per stage (and per failing test case), printed again at the very end by
# scripts/test, so that the tail of a long log says what failed.
summaries=("${summaries[@]}")

run_suite() {
  local dir=$1
  shift
  [ -d "$dir" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir"
  echo "== $dir: asyncuv_tests ${SUITE_FILTER:-} =="
  local junit="$dir/test-results.xml" rc=0
  local -a spec=()
  [ -z "${SUITE_FILTER:-}" ] || spec=("$SUITE_FILTER")
  "./$dir/test/asyncuv_tests" "${spec[@]}" --reporter junit --out "$junit" || rc=$?
  # Catch2's JUnit report: <testsuite ... tests="N" failures="F" errors="E" ...>
  local tests failures errors
  tests=$(grep -o '<testsuite [^>]*' "$junit" | grep -o ' tests="[0-9]*"' | grep -o '[0-9]*' || echo 0)
  failures=$(grep -o '<testsuite [^>]*' "$junit" | grep -o ' failures="[0-9]*"' | grep -o '[0-9]*' || echo 0)
  errors=$(grep -o '<testsuite [^>]*' "$junit" | grep -o ' errors="[0-9]*"' | grep -o '[0-9]*' || echo 0)
  local bad=$((failures + errors))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    bad=1  # a sanitizer report, a leak or a crash: the run itself failed
    echo "$dir: test binary exited with $rc (sanitizer report, leak or crash)"
  fi
  if [ "$bad" -ne 0 ]; then
    grep -B2 -A12 '<failure\|<error' "$junit" | head -n 200 || true
  fi
  passed=$((passed + tests - failures - errors))
  failed=$((failed + bad))
  echo "$dir: $((tests - failures - errors)) passed, $bad failed"
  summaries+=("$dir: $((tests - failures - errors)) passed, $bad failed")
  if [ "$bad" -ne 0 ]; then
    # The test cases (and sections) that hold a <failure> or <error>.
    local name
    while IFS= read -r name; do
      summaries+=("  failed in $dir: $name")
    done < <(awk '/<testcase /{ match($0, / name="[^"]*"/); n = substr($0, RSTART + 7, RLENGTH - 8) }
                  /<failure|<error/ { if (!seen[n]++) print n }' "$junit" | head -n 20)
  fi
}
