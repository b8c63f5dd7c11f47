#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer with AddressSanitizer: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
# Targets: capture scan decode gtp gsm tcp fragments dns tls http quic dhcp x509 identifiers mmdb ioc rules
# (Sources/SiphonFuzzing/FuzzTargets.swift says what each takes).
#
# Builds Fuzz/SiphonFuzz once into .build-fuzz (SIPHON_FUZZ=1 declares it; libFuzzer supplies main()), seeds the
# working corpus $FUZZ_DIR/TARGET (default /tmp/siphon-fuzz/TARGET) from scripts/fuzz_seeds.py and the committed
# regressions (Tests/fuzz/TARGET), and runs for SECONDS. A crash, leak-free OOM (-rss_limit_mb=2048), timeout
# (-timeout=10) or model mismatch leaves its input in $FUZZ_DIR/TARGET-findings and exits non-zero; copy it into
# Tests/fuzz/TARGET/ once fixed, where FuzzRegressionTests replays it. The last line is a summary for
# docs/robustness.md: target, seconds, executions, corpus size, findings.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]}
seconds=${2:-60}
shift 2 || shift $#
dir=${FUZZ_DIR:-/tmp/siphon-fuzz}
corpus="$dir/$target"
findings="$dir/$target-findings"
mkdir -p "$corpus" "$findings"
if [ -z "${SIPHON_FUZZ_NO_BUILD:-}" ]; then
    SIPHON_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product SiphonFuzz \
        --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer >&2
fi
binary=.build-fuzz/release/SiphonFuzz
if [ -z "$(ls -A "$corpus")" ]; then
    python3 scripts/fuzz_seeds.py "$target" "$corpus" >&2 || true
fi
[ -d "Tests/fuzz/$target" ] && cp -n Tests/fuzz/"$target"/* "$corpus"/ 2>/dev/null || true
log="$dir/$target.log"
set +e
SIPHON_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$findings/" -print_final_stats=1 "$@" "$corpus" >"$log" 2>&1
status=$?
set -e
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
found=$(ls "$findings" | wc -l)
echo "fuzz $target: ${seconds} s, ${runs:-0} executions, $(ls "$corpus" | wc -l) corpus files, $found findings (exit $status, log $log)"
if [ "$status" -ne 0 ]; then tail -40 "$log" >&2; fi
exit "$status"
