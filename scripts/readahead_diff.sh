#!/usr/bin/env bash
# Scans every capture under a folder (default ../shared/captures) twice, with and without the read-ahead thread,
# and reports the captures whose JSON Lines or exit status differ (there should be none).
#   scripts/readahead_diff.sh [FOLDER] [SIPHON]
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
folder="${1:-$root/../shared/captures}"
siphon="${2:-$root/.build/release/siphon}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=0; d=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    "$siphon" scan -q --json "$tmp/a.json" "$f" >/dev/null 2>&1; ra=$?
    "$siphon" scan -q --no-read-ahead --json "$tmp/b.json" "$f" >/dev/null 2>&1; rb=$?
    if [ "$ra" != "$rb" ] || ! cmp -s "$tmp/a.json" "$tmp/b.json"; then d=$((d + 1)); echo "differs: $f (exit $ra / $rb)"; fi
done < <(find "$folder" \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) -print0 | sort -z)
echo "$n captures, $d differ"
[ "$d" = 0 ]
