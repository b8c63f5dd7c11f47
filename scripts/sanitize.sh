#!/usr/bin/env bash
# Runs the test suite under a sanitizer (issue 17): scripts/sanitize.sh address|thread [FILTER]
#   address: AddressSanitizer, the whole suite by default (build in .build-asan). LeakSanitizer is off
#            (detect_leaks=0: it reports allocations the Swift runtime and Foundation keep for the process's life).
#   thread:  ThreadSanitizer (build in .build-tsan), by default the suites that run threads: the read-ahead reader,
#            batch workers, live capture and its packet sources, the fleet.
# FILTER is `swift test --filter`'s regular expression. The `siphon` executable the tests start is the one built
# with the same sanitizer (Repo.siphonExecutable looks beside the test bundle), so whole scans run instrumented
# too: a report makes the child exit non-zero (ASan aborts; TSan's exitcode=66), which fails its test.
# A sanitizer report in the test process itself fails the run. Prints the time taken; exit status is swift test's.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread [FILTER]}
case "$kind" in
    address) scratch=.build-asan; filter=${2:-}
             export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:${ASAN_OPTIONS:-}" ;;
    thread)  scratch=.build-tsan; filter=${2:-'ReadAheadTests|FleetTests|BatchInputTests|LiveTests|PacketSourceTests|OpenFlowTests|CaseTests'}
             export TSAN_OPTIONS="halt_on_error=1:exitcode=66:${TSAN_OPTIONS:-}" ;;
    *) echo "scripts/sanitize.sh: unknown sanitizer '$kind' (address or thread)" >&2; exit 2 ;;
esac
export SWIFT_BACKTRACE=enable=no
# The tests stretch their waits and time bounds, and leave peak-memory bounds unchecked (saying so), under it.
export SIPHON_SANITIZER="$kind"
start=$(date +%s)
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch"
built=$(date +%s)
args=(--sanitize="$kind" --scratch-path "$scratch" --skip-build --parallel)
[ -n "$filter" ] && args+=(--filter "$filter")
set +e
swift test "${args[@]}"
status=$?
set -e
echo "sanitize $kind: build $((built - start)) s, tests $(( $(date +%s) - built )) s, exit $status${filter:+ (filter: $filter)}"
exit $status
