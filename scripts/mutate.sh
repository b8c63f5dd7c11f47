#!/usr/bin/env bash
# Mutation campaign (issue 17): bit-flips committed captures with zzuf and scans each mutant with a timeout.
#   scripts/mutate.sh [SECONDS] [RATIO] [CAPTURE...]
# SECONDS: how long to run (default 300); RATIO: zzuf's fraction of bits flipped (default 0.01, each mutant also
# gets a ratio drawn between RATIO/4 and RATIO*4 by zzuf's -r min:max form); captures default to every .pcap and
# .pcapng under captures/ below 1 MB. Every mutant is scanned by the release build with --json /dev/null and a
# 10 s timeout; a crash (signal) or a hang (timeout) keeps the mutant and its standard error in
# $MUTATE_DIR (default /tmp/siphon-mutate) as crash-* / hang-*. Prints the figures; exit 1 if anything crashed or hung.
# SIPHON=path scans with that binary instead (no build: CI uses its debug build); MUTATE_SEED=N starts zzuf's seeds
# after N (default 0: the same mutants every run, so a CI run is reproducible; by hand, pick another range).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-300}"; ratio="${2:-0.01}"; shift $(( $# > 2 ? 2 : $# ))
out="${MUTATE_DIR:-/tmp/siphon-mutate}"
mkdir -p "$out"
command -v zzuf >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq zzuf >/dev/null; }
if [ -n "${SIPHON:-}" ]; then siphon="$SIPHON"; else
    swift build -c release --package-path "$root" --product siphon >&2 || exit 2
    siphon="$root/.build/release/siphon"
fi
if [ $# -gt 0 ]; then captures=("$@"); else
    mapfile -t captures < <(find "$root/captures" -type f \( -name '*.pcap' -o -name '*.pcapng' \) -size -1024k | sort)
fi
[ ${#captures[@]} -gt 0 ] || { echo "no capture" >&2; exit 2; }
low=$(python3 -c "print($ratio/4)"); high=$(python3 -c "print($ratio*4)")
end=$(( $(date +%s) + seconds ))
scans=0; crashes=0; hangs=0; seed=${MUTATE_SEED:-0}
while [ "$(date +%s)" -lt "$end" ]; do
    for cap in "${captures[@]}"; do
        seed=$((seed + 1))
        zzuf -s "$seed" -r "$low:$high" < "$cap" > "$out/mutant" 2>/dev/null
        timeout 10 "$siphon" scan -q --json /dev/null "$out/mutant" >/dev/null 2>"$out/stderr"
        rc=$?
        scans=$((scans + 1))
        name="$(basename "$cap")-seed$seed"
        if [ $rc -eq 124 ]; then hangs=$((hangs + 1)); cp "$out/mutant" "$out/hang-$name"; fi
        if [ $rc -ge 128 ] && [ $rc -ne 124 ]; then
            crashes=$((crashes + 1)); cp "$out/mutant" "$out/crash-$name"; cp "$out/stderr" "$out/crash-$name.txt"
        fi
        [ "$(date +%s)" -ge "$end" ] && break
    done
done
echo "mutate: ${#captures[@]} captures, ratio $low..$high, $scans scans in ${seconds} s, $crashes crashes, $hangs hangs (kept in $out)"
[ $crashes -eq 0 ] && [ $hangs -eq 0 ]
