#!/usr/bin/env bash
# Sustained live-capture rate: tcpreplay sends a capture (rewritten into documentation ranges) over a veth pair
# between two network namespaces made here; `siphon live` (release build, every detector on) listens on the other
# end, then `tcpdump -w /dev/null` (the anchor) on the same replay. For each offered rate it prints what was sent,
# what each tool captured, the kernel's drops, and each tool's CPU time (user + system, all threads).
#   sudo scripts/live_bench.sh [RATES] [LOOPS]
#     RATES: comma-separated packets/s, or "top" (tcpreplay --topspeed); default "top,25000,50000,100000,200000"
#     LOOPS: times the capture is sent per run (default 1: the bench capture alone is 118,000 packets, a sustained
#            rate, not a burst the kernel buffer absorbs; a loop replays the same flows again)
# Root only. Nothing leaves the namespaces; they are deleted at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rates="${1:-top,25000,50000,100000,200000}"
loops="${2:-1}"
dir="${BENCH_DIR:-/tmp/siphon-live-bench}"
mkdir -p "$dir"
for tool in tcpreplay tcprewrite tcpdump ip; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
swift build -c release --package-path "$root" --product siphon >&2
siphon="$root/.build/release/siphon"
# The bench's 100 MB capture (../shared/bench/gen_pcap.py -s 100M --seed 1: 118,000 packets of TCP and UDP flows)
# when ../shared is there, else 1,000 flows of scripts/gen_streams.py (14,000 packets; use LOOPS); then every
# address moved into documentation ranges.
shared="${SIPHON_SHARED:-$root/../shared}"
if [ ! -f "$dir/replay.pcap" ]; then
    if [ -f "$shared/bench/gen_pcap.py" ]; then
        python3 "$shared/bench/gen_pcap.py" -o "$dir/source.pcap" -s 100M --seed 1 --manifest "$dir/source.jsonl" >&2
    else
        python3 "$root/scripts/gen_streams.py" -o "$dir/source.pcap" --manifest "$dir/source.jsonl" -c 1000 --seed 1 >&2
    fi
    tcprewrite --pnat=10.0.0.0/16:192.0.2.128/25,0.0.0.0/0:198.51.100.0/24 -C -i "$dir/source.pcap" -o "$dir/replay.pcap"
fi
packets=$(tcpdump -r "$dir/replay.pcap" -nn 2>/dev/null | wc -l)
tag=$$
A=siphonbenchA$tag B=siphonbenchB$tag
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT
ip netns add $A; ip netns add $B
for n in $A $B; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip link add bA$tag type veth peer name bB$tag
ip link set bA$tag netns $A; ip link set bB$tag netns $B
ip -n $A addr add 192.0.2.1/24 dev bA$tag; ip -n $B addr add 192.0.2.2/24 dev bB$tag
ip -n $A link set bA$tag up; ip -n $B link set bB$tag up
echo "capture: $dir/replay.pcap, $packets packets sent $loops times per run; $(nproc) processors"
printf '%-8s %-10s %12s %10s %10s %10s %8s\n' tool offered "sent pps" sent captured dropped "cpu s"
run() {  # run TOOL RATE
    local tool=$1 rate=$2 log="$dir/$1.log" json="$dir/live.json"
    rm -f "$log" "$json"
    if [ "$tool" = siphon ]; then
        ip netns exec $B /usr/bin/time -f "cpu %U %S" -o "$dir/time.txt" "$siphon" live -i bB$tag -q --json "$json" ${SIPHON_ARGS:-} 2>"$log" &
    else
        ip netns exec $B /usr/bin/time -f "cpu %U %S" -o "$dir/time.txt" tcpdump -i bB$tag -w /dev/null 2>"$log" &
    fi
    sleep 2
    local speed="--topspeed"; [ "$rate" = top ] || speed="--pps=$rate"
    local out; out=$(ip netns exec $A tcpreplay $speed --loop=$loops -i bA$tag "$dir/replay.pcap" 2>&1)
    sleep 1
    if [ "$tool" = siphon ]; then pkill -INT -f "siphon live -i bB$tag" || true; else pkill -INT -f "tcpdump -i bB$tag" || true; fi
    wait
    local sent pps captured dropped cpu
    sent=$(echo "$out" | sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p')
    pps=$(echo "$out" | sed -n 's/.*Rated: .*, \([0-9.]*\) pps.*/\1/p')
    if [ "$tool" = siphon ]; then
        read -r captured dropped < <(python3 -c "
import json,sys
s=[json.loads(l) for l in open('$json')][-1]['stats']
print(s['packets'], s.get('kernel_drops',0)+s.get('interface_drops',0))")
    else
        captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$log")
        dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log")
    fi
    cpu=$(awk '/^cpu/{printf "%.2f", $2+$3}' "$dir/time.txt")
    printf '%-8s %-10s %12s %10s %10s %10s %8s\n' "$tool" "$rate" "$pps" "$sent" "$captured" "$dropped" "$cpu"
}
for rate in ${rates//,/ }; do
    run tcpdump "$rate"
    run siphon "$rate"
done
