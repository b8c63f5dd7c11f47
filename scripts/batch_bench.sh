#!/usr/bin/env bash
# Batch scaling benchmark: `siphon batch` with 1 job and with 2 over ~200 captures, beside the C floor (preasm over
# the same captures one after another), wall and CPU time (user + system, all threads) and peak memory; then peak
# memory against the number of files (100, 500, 1,000 small captures).
#   scripts/batch_bench.sh [ROUNDS]    (default 3; BENCH_DIR=/tmp/siphon-bench keeps the generated fleets)
# The weighted fleet: scripts/gen_fleet.py --per-model 40 --upload-kb 2000 (200 device captures, ~2 MB each, plus
# the 3 extras; generating it takes ~6 minutes of Python the first time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SIPHON_SHARED:-$root/../shared}"
dir="${BENCH_DIR:-/tmp/siphon-bench}"
rounds="${1:-3}"
mkdir -p "$dir"
[ -f "$dir/fleet200/MANIFEST.json" ] || python3 "$root/scripts/gen_fleet.py" "$dir/fleet200" --per-model 40 --upload-kb 2000 >&2
for n in 20 100 200; do
    [ -f "$dir/fleet-small-$n/MANIFEST.json" ] || python3 "$root/scripts/gen_fleet.py" "$dir/fleet-small-$n" --per-model $n >&2
done
[ -x "$dir/preasm" ] || gcc -O2 -o "$dir/preasm" "$shared/bench/c/preasm.c" -lpcap -lcrypto
swift build -c release --package-path "$root" --product siphon >&2
python3 - "$dir" "$root/.build/release/siphon" "$rounds" <<'PY'
import glob, os, shutil, statistics, subprocess, sys, time
d, siphon, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
fleet = os.path.join(d, "fleet200")
captures = sorted(p for p in glob.glob(fleet + "/model-*/*") if p.endswith(".pcap"))

def run(cmd, quiet=True):
    """Wall seconds, CPU seconds (user + system of the child, all threads), peak RSS (MiB) of one command."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, code

def floor():
    """preasm (the C floor: decode, flows, TCP reassembly) over every capture, one after another."""
    w = c = m = 0
    for cap in captures:
        a, b, r, _ = run([os.path.join(d, "preasm"), cap])
        w, c, m = w + a, c + b, max(m, r)
    return w, c, m, 0

def floor2():
    """The same, two at a time (xargs -P 2): how far this machine lets two processes scale."""
    lst = os.path.join(d, "captures.txt")
    with open(lst, "w") as f:
        f.write("\n".join(captures) + "\n")
    return run(["sh", "-c", f"xargs -P 2 -n 1 '{os.path.join(d, 'preasm')}' < '{lst}' > /dev/null"])

def batch(jobs, *extra):
    out = os.path.join(d, f"batch-out-j{jobs}")
    shutil.rmtree(out, ignore_errors=True)
    return run([siphon, "batch", fleet, "--out", out, "-j", str(jobs), "-q", *extra])

size = sum(os.path.getsize(p) for p in glob.glob(fleet + "/**/*", recursive=True) if os.path.isfile(p))
print(f"fleet: {len(glob.glob(fleet + '/**/*', recursive=True))} entries, {len(captures)} plain pcap captures, {size / 1e6:.0f} MB; {os.cpu_count()} processors; {rounds} rounds, medians")
results = {"preasm (C floor, each capture in turn)": [], "preasm, two at a time (xargs -P 2)": [],
           "siphon batch -j 1 --read-ahead off": [],
           "siphon batch -j 1 (read-ahead: auto = on)": [], "siphon batch -j 2 (read-ahead: auto = off)": []}
for _ in range(rounds):
    results["preasm (C floor, each capture in turn)"].append(floor())
    results["preasm, two at a time (xargs -P 2)"].append(floor2())
    results["siphon batch -j 1 --read-ahead off"].append(batch(1, "--read-ahead", "off"))
    results["siphon batch -j 1 (read-ahead: auto = on)"].append(batch(1))
    results["siphon batch -j 2 (read-ahead: auto = off)"].append(batch(2))
med = {}
for name, rs in results.items():
    w = statistics.median(r[0] for r in rs); c = statistics.median(r[1] for r in rs); m = max(r[2] for r in rs)
    med[name] = (w, c, m)
    codes = sorted(set(r[3] for r in rs))
    print(f"{name:44s} wall {w:7.2f} s  CPU {c:7.2f} s  peak RSS {m:6.0f} MiB  {size / 1e6 / w:7.1f} MB/s  exit {codes}")
fw, fc, _ = med["preasm (C floor, each capture in turn)"]
f2w, f2c, _ = med["preasm, two at a time (xargs -P 2)"]
print(f"the C floor's own scaling, 2 processes / 1: {fw / f2w:.2f}x (wall); CPU {f2c / fc:.2f}x")
w0, c0, _ = med["siphon batch -j 1 --read-ahead off"]
w1, c1, _ = med["siphon batch -j 1 (read-ahead: auto = on)"]
w2, c2, _ = med["siphon batch -j 2 (read-ahead: auto = off)"]
print(f"throughput -j 2 / -j 1 (one thread): {w0 / w2:.2f}x; -j 2 / -j 1 with read-ahead: {w1 / w2:.2f}x; CPU -j 2 / -j 1 (one thread): {c2 / c0:.2f}x")
print(f"siphon batch -j 1 (one thread) / C floor: wall {w0 / fw:.2f}x, CPU {c0 / fc:.2f}x; -j 2 CPU / C floor: {c2 / fc:.2f}x")
print("peak memory against the number of files (siphon batch -j 2, small captures):")
for n in (20, 100, 200):
    f = os.path.join(d, f"fleet-small-{n}")
    out = os.path.join(d, f"batch-small-{n}")
    shutil.rmtree(out, ignore_errors=True)
    files = len([p for p in glob.glob(f + "/**/*", recursive=True) if os.path.isfile(p)])
    w, c, m, code = run([siphon, "batch", f, "--out", out, "-j", "2", "-q"])
    print(f"  {files:5d} files: wall {w:6.2f} s  CPU {c:6.2f} s  peak RSS {m:5.0f} MiB  exit {code}")
PY
