#!/usr/bin/env bash
# Decode + flow-table benchmark against the C floors, all timed in the same run (wall and CPU time).
#   scripts/bench.sh [ROUNDS]    (default 5; BENCH_DIR=/tmp/siphon-bench keeps the 1 GB capture between runs)
# Generates ../shared/bench/gen_pcap.py -s 1G --seed 1 output, builds pcount/pdecode with gcc -O2 and Siphon in
# release mode, then alternates the programs for ROUNDS rounds and prints medians and ratios. The peers on the same
# file in the same run: tcpflow (stream extraction into $BENCH_DIR/tcpflow-out, emptied between rounds, not timed)
# and nDPI's ndpiReader (Debian: tcpflow, libndpi-bin; installed when missing, left out with a note if that fails).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SIPHON_SHARED:-$root/../shared}"
dir="${BENCH_DIR:-/tmp/siphon-bench}"
rounds="${1:-5}"
mkdir -p "$dir"
[ -f "$dir/big.pcap" ] || python3 "$shared/bench/gen_pcap.py" -o "$dir/big.pcap" -s 1G --seed 1 --manifest "$dir/big.manifest.jsonl" >&2
for floor in pcount pdecode; do
    [ -x "$dir/$floor" ] || gcc -O2 -o "$dir/$floor" "$shared/bench/c/$floor.c" -lpcap
done
[ -x "$dir/preasm" ] || gcc -O2 -o "$dir/preasm" "$shared/bench/c/preasm.c" -lpcap -lcrypto
for tool in tcpflow:tcpflow ndpiReader:libndpi-bin; do
    command -v "${tool%%:*}" >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 || true; }
done
swift build -c release --package-path "$root" --product siphon >&2
swift build -c release --package-path "$root" --product SiphonBench >&2
bin="$root/.build/release"
python3 - "$dir" "$bin" "$rounds" <<'PY'
import subprocess, sys, time, statistics, resource, os, shutil
d, bin, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
cap = os.path.join(d, "big.pcap")
cmds = {
    "pcount": [os.path.join(d, "pcount"), cap],
    "pdecode": [os.path.join(d, "pdecode"), cap],
    "preasm": [os.path.join(d, "preasm"), cap],
    "siphon scan": [os.path.join(bin, "siphon"), "scan", "-q", cap],
    "siphon scan --no-read-ahead": [os.path.join(bin, "siphon"), "scan", "-q", "--no-read-ahead", cap],
    "siphon scan --checksums off": [os.path.join(bin, "siphon"), "scan", "-q", "--checksums", "off", cap],
    "siphon scan --json": [os.path.join(bin, "siphon"), "scan", "-q", "--json", "/dev/null", cap],
    "preasm -s (SHA-256)": [os.path.join(d, "preasm"), "-s", cap],
    "siphon --stream-hashes": [os.path.join(bin, "siphon"), "scan", "-q", "--stream-hashes", "--json", "/dev/null", cap],
}
flowdir = os.path.join(d, "tcpflow-out")
if shutil.which("tcpflow"):
    cmds["tcpflow (streams to files)"] = ["tcpflow", "-r", cap, "-o", flowdir]
else:
    print("tcpflow: not installed, left out")
if shutil.which("ndpiReader"):
    cmds["ndpiReader"] = ["ndpiReader", "-q", "-i", cap]
else:
    print("ndpiReader: not installed (libndpi-bin), left out")
def fresh():
    shutil.rmtree(flowdir, ignore_errors=True)
    os.makedirs(flowdir)
times = {k: [] for k in cmds}
cpu = {k: [] for k in cmds}  # user + system seconds of the child (all its threads)
rss = {}
for _ in range(rounds):
    for name, cmd in cmds.items():
        fresh()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times[name].append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if p.returncode != 0:
            sys.exit(f"{name} failed: {p.stderr.decode()}")
for name, cmd in cmds.items():  # peak RSS, measured once each with /usr/bin/time
    fresh()
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr
    rss[name] = int(out.decode().strip().splitlines()[-1])
inner = subprocess.run([os.path.join(bin, "SiphonBench"), cap], capture_output=True, text=True).stdout.strip()
packets = 1175470
med = {k: statistics.median(v) for k, v in times.items()}
cpumed = {k: statistics.median(v) for k, v in cpu.items()}
print(f"capture: {cap} ({os.path.getsize(cap)/1e6:.0f} MB, {packets} packets), {rounds} rounds, medians")
# Each round runs every program once, one after the other: the ratio within a round compares programs under the
# same load of this host (whose speed drifts by ±15 % between rounds), and its median over the rounds is steadier
# than the ratio of the two medians.
def roundRatio(k, floor):
    return statistics.median(a / b for a, b in zip(cpu[k], cpu[floor]))
print(f"| program | seconds | packets/s | MB/s | ratio to pcount | ratio to pdecode | ratio to preasm | CPU seconds | CPU ratio to preasm | CPU ratio to preasm, median of rounds | peak RSS |")
print(f"|---|---|---|---|---|---|---|---|---|---|---|")
for k in cmds:
    floor = "preasm -s (SHA-256)" if "hash" in k or "SHA" in k else "preasm"
    print(f"| {k} | {med[k]:.3f} | {packets/med[k]/1e6:.2f} M | {os.path.getsize(cap)/med[k]/1e6:.0f} | "
          f"{med[k]/med['pcount']:.2f} | {med[k]/med['pdecode']:.2f} | {med[k]/med[floor]:.2f} | "
          f"{cpumed[k]:.3f} | {cpumed[k]/cpumed[floor]:.2f} | {roundRatio(k, floor):.2f} | {rss[k]/1024:.1f} MiB |")
print("ratio to preasm: SHA-256 runs against `preasm -s`, the others against `preasm` (checksum of every byte)")
print("seconds: wall time; CPU seconds: user + system of all the program's threads (siphon reads ahead on a second")
print("thread unless --no-read-ahead; the C floors have one)")
print("in-process (SiphonBench, excludes start-up):", inner)
shutil.rmtree(flowdir, ignore_errors=True)
PY
