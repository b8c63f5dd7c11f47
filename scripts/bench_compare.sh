#!/usr/bin/env bash
# Two siphon binaries against each other and the preasm floor, alternated in one run: wall and CPU time.
#   scripts/bench_compare.sh BASE_SIPHON NEW_SIPHON [ROUNDS] [ARGS...]
# (BENCH_DIR as scripts/bench.sh: the 1 GB gen_pcap.py capture and the C floors, built there if missing.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SIPHON_SHARED:-$root/../shared}"
dir="${BENCH_DIR:-/tmp/siphon-bench}"
base="$1"; new="$2"; rounds="${3:-5}"; shift 2; [ $# -gt 0 ] && shift
mkdir -p "$dir"
[ -f "$dir/big.pcap" ] || python3 "$shared/bench/gen_pcap.py" -o "$dir/big.pcap" -s 1G --seed 1 --manifest "$dir/big.manifest.jsonl" >&2
[ -x "$dir/preasm" ] || gcc -O2 -o "$dir/preasm" "$shared/bench/c/preasm.c" -lpcap -lcrypto
python3 - "$dir" "$base" "$new" "$rounds" "$@" <<'PY'
import subprocess, sys, time, statistics, resource, os
d, base, new, rounds, extra = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
cap = os.path.join(d, "big.pcap")
cmds = {"preasm": [os.path.join(d, "preasm"), cap],
        "base": [base, "scan", "-q"] + extra + [cap], "new": [new, "scan", "-q"] + extra + [cap]}
wall = {k: [] for k in cmds}; cpu = {k: [] for k in cmds}
for _ in range(rounds):
    for k, c in cmds.items():
        b = resource.getrusage(resource.RUSAGE_CHILDREN); t = time.perf_counter()
        p = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall[k].append(time.perf_counter() - t)
        a = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[k].append(a.ru_utime - b.ru_utime + a.ru_stime - b.ru_stime)
        if p.returncode != 0: sys.exit(f"{k} failed: {p.stderr.decode()[-500:]}")
print(f"{rounds} rounds, medians; extra arguments: {' '.join(extra) or 'none'}")
print("| program | wall s | CPU s | wall / preasm | CPU / preasm |")
print("|---|---|---|---|---|")
m = {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in cmds}
for k in cmds:
    print(f"| {k} | {m[k][0]:.3f} | {m[k][1]:.3f} | {m[k][0]/m['preasm'][0]:.2f} | {m[k][1]/m['preasm'][1]:.2f} |")
print(f"new / base: wall {m['new'][0]/m['base'][0]:.3f}, CPU {m['new'][1]/m['base'][1]:.3f}")
print("CPU per round, base:", " ".join(f"{x:.3f}" for x in cpu["base"]))
print("CPU per round, new: ", " ".join(f"{x:.3f}" for x in cpu["new"]))
PY
