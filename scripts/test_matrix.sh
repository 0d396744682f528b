#!/usr/bin/env bash
# `make test-matrix`: the test suite against each server of the matrix, then a table.
#   MATRIX_SERVERS  vendored servers to build and test (see scripts/build_server.sh)
#   SMOKE=1         the smoke subset (core, transparent, formats, the examples with the original
#                   demo, freshness, cluster, security, inline loads, MongoDB faults, permissions,
#                   secrets, mappings, many) on the vendored servers only: CI runs it after the
#                   full suite on the default server
# Debian's redis-server (the default of `make test`) is tested first unless SMOKE=1.
set -uo pipefail
cd "$(dirname "$0")/.."
servers=${MATRIX_SERVERS:-redis-7.2.6 redis-7.4.1 valkey-8.0.1}
smoke=${SMOKE:-}
tests=()
[ -n "$smoke" ] && tests=(--test read_through --test transparent --test formats --test examples --test freshness --test cluster --test security --test inline_loads --test mongodb_faults --test permissions --test secrets --test mappings --test many)
logs=target/test-matrix
mkdir -p "$logs"
: >"$logs/why-failed.txt"

rows=()
total_passed=0 total_failed=0 total_skipped=0
run() { # label binary
  local label=$1 bin=$2 log=$logs/$1.log
  local version
  version=$("$bin" --version | sed -E 's/.* v=([^ ]+).*/\1/')
  echo "== $label ($bin, $version)${smoke:+: smoke subset}"
  READTHROUGH_TEST_SERVER=$bin cargo test --release --no-fail-fast "${tests[@]}" \
    -- --test-threads=4 --show-output >"$log" 2>&1
  local passed failed skipped
  passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
  failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
  skipped=$(grep -c '^skipped: ' "$log")
  grep -E '^test .* FAILED$' "$log" | sed 's/^/   /'
  # Why each test failed: its name and panic message (the output of a binary's failures comes
  # between the first and second "failures:" line of its summary). Printed again at the end,
  # where a CI log that keeps only the tail still shows it.
  awk -v server="$label" '/^failures:$/ {n++; next}
    n % 2 == 1 && /^---- .* stdout ----$/ {print server ": " $2; k = 0}
    n % 2 == 1 && /panicked at/ {k = 5}
    n % 2 == 1 && k > 0 && !/^$/ {print "    " $0; k--}' "$log" >>"$logs/why-failed.txt"
  # The JSON module the format=json tests loaded (tests/common: json_module).
  local json="RedisJSON 2.4.19"
  case $label in valkey-*) json="valkey-json 1.0.2" ;; esac
  rows+=("| $label | $version | $json | $passed | $failed | $skipped |")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
}

[ -z "$smoke" ] && run debian-redis "$(command -v redis-server)"
for name in $servers; do
  if bin=$(scripts/build_server.sh "$name"); then
    run "$name" "$bin"
  else
    rows+=("| $name | (not built: see above) | | | | |")
    total_failed=$((total_failed + 1))
  fi
done

echo
echo "| server | version | JSON module | passed | failed | skipped (said why) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "logs: $logs/"
if [ -s "$logs/why-failed.txt" ]; then
  echo
  echo "why they failed:"
  head -40 "$logs/why-failed.txt"
fi
echo
echo "matrix: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
