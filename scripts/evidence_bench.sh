#!/usr/bin/env bash
# Cost of issue 15's evidence work (frame references, provenance hashing, spooled JSON) on big.pcap: the same
# commands with two siphon executables, alternated for ROUNDS rounds, with preasm (the C reassembly floor) in the
# same run; CPU time (user + system, all threads) and peak RSS of each process, medians.
#   scripts/evidence_bench.sh BEFORE_SIPHON AFTER_SIPHON [ROUNDS]   (default 5; BENCH_DIR=/tmp/siphon-bench)
# BEFORE_SIPHON: a release build of the commit before (git worktree add /tmp/before 053060b; swift build -c release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SIPHON_SHARED:-$root/../shared}"
dir="${BENCH_DIR:-/tmp/siphon-bench}"
before="$1"; after="$2"; rounds="${3:-5}"
mkdir -p "$dir"
[ -f "$dir/big.pcap" ] || python3 "$shared/bench/gen_pcap.py" -o "$dir/big.pcap" -s 1G --seed 1 --manifest "$dir/big.manifest.jsonl" >&2
[ -x "$dir/preasm" ] || gcc -O2 -o "$dir/preasm" "$shared/bench/c/preasm.c" -lpcap -lcrypto
python3 - "$dir" "$before" "$after" "$rounds" <<'PY'
import subprocess, sys, statistics, os, shutil, tempfile
d, before, after, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cap = os.path.join(d, "big.pcap")
case_dir = os.path.join(d, "evidence-case")
cmds = {
    "preasm": [os.path.join(d, "preasm"), cap],
    "before: scan": [before, "scan", "-q", cap],
    "after: scan": [after, "scan", "-q", cap],
    "before: scan --json": [before, "scan", "-q", "--json", "/dev/null", cap],
    "after: scan --json": [after, "scan", "-q", "--json", "/dev/null", cap],
    "after: scan --case": [after, "scan", "-q", "--case", case_dir, cap],
    # Standard input is not hashed: the cost of frame references and provenance without the capture's SHA-256.
    "before: scan --json - <big": [before, "scan", "-q", "--json", "/dev/null", "-"],
    "after: scan --json - <big": [after, "scan", "-q", "--json", "/dev/null", "-"],
}
wall = {k: [] for k in cmds}; cpu = {k: [] for k in cmds}; rss = {k: [] for k in cmds}
for _ in range(rounds):
    for name, cmd in cmds.items():
        shutil.rmtree(case_dir, ignore_errors=True)
        with open(cap, "rb") as stdin:
            r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M"] + cmd, stdin=stdin if cmd[-1] == "-" else subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        e, u, s, m = r.stderr.strip().split("\n")[-1].split()
        wall[name].append(float(e)); cpu[name].append(float(u) + float(s)); rss[name].append(int(m) / 1024)
shutil.rmtree(case_dir, ignore_errors=True)
pre = statistics.median(cpu["preasm"])
print(f"big.pcap {os.path.getsize(cap)/1e6:.0f} MB, {rounds} rounds, medians")
print(f"{'command':28} {'wall s':>8} {'cpu s':>8} {'cpu/preasm':>10} {'peak MiB':>9}")
for k in cmds:
    print(f"{k:28} {statistics.median(wall[k]):8.3f} {statistics.median(cpu[k]):8.3f} {statistics.median(cpu[k])/pre:10.2f} {statistics.median(rss[k]):9.1f}")
for a, b in [("before: scan", "after: scan"), ("before: scan --json", "after: scan --json"), ("before: scan --json - <big", "after: scan --json - <big")]:
    print(f"{b} / {a}: cpu {statistics.median(cpu[b])/statistics.median(cpu[a]):.3f}, peak memory {statistics.median(rss[b])/statistics.median(rss[a]):.3f}")
PY
