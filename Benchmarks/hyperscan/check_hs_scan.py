#!/usr/bin/env python3
"""Checks hs_scan's match counts against a Python reference on a planted corpus.

    check_hs_scan.py HS_SCAN [--size 32M] [--seed 1] [--dir /tmp/hs_check]

Writes a patterns file (hex of a few literals: digits, text, bytes with NUL and 0xff, one that overlaps itself) and a
corpus of SIZE random bytes (os.urandom-like, from a seeded generator so a failure reproduces) with each literal and
each generic shape planted a known number of times inside 1460-byte blocks, plus a few copies straddling a block
boundary (which per-block scanning must miss). The reference counts, per block, the end offsets at which each pattern
matches (Hyperscan's semantics without SOM: one match per pattern and end offset), by running the reversed pattern
as a lookahead over the reversed block. Runs hs_scan -v for --chunk 1460, 65536 and the whole file, literals only
and --generic, and compares per-pattern counts.
"""
import argparse
import os
import random
import re
import subprocess
import sys

LITERALS = [
    b"490154203237518",                     # an IMEI (digits: also a generic [0-9]{14,20} candidate)
    b"needle-XYZ",
    b"NDkwMTU0MjAzMjM3NTE4",                # base64 of the IMEI
    b"\x00\xffbin\x00ary",                  # bytes, NUL included
    b"abab",                                # overlaps itself: "ababab" holds 2 matches
    b"0eaed834a1e6f4b2bf0c024e0013dea1",    # MD5 hex
]
GENERIC = [rb"[0-9]{14,20}", rb"\+[0-9]{8,15}", rb"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", rb"-?[0-9]{1,3}\.[0-9]{4,}"]
# The same, reversed (a match ending at e in the block <=> the reversed pattern matches at len-e in the reversed block).
GENERIC_REV = [rb"[0-9]{14,20}", rb"[0-9]{8,15}\+", rb"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}", rb"[0-9]{4,}\.[0-9]{1,3}"]
PLANTED_GENERIC = [b"+33612345678", b"02:a4:c2:11:33:02", b"48.856613,2.352222", b"89330123456789012345"]
PLANT_EACH = 1000
STRADDLE_EACH = 10


def size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hs_scan")
    ap.add_argument("--size", default="32M")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", default="/tmp/hs_check")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    n = size(a.size)
    data = bytearray(rng.randbytes(n))
    block = 1460
    # Plant each string PLANT_EACH times inside a block (in the first half of the corpus, one per 128-byte slot, so
    # they never touch), and STRADDLE_EACH times across a block boundary (in the second half), with a space either
    # side so that digit runs are exactly what was planted.
    things = LITERALS + PLANTED_GENERIC
    half = n // 2
    slots = iter(rng.sample(range(half // 128 - 1), len(things) * PLANT_EACH))
    boundaries = iter(rng.sample(range(half // block + 1, n // block - 1), len(things) * STRADDLE_EACH))
    planted = {}

    def put(off, t):
        data[off - 1] = ord(" ")
        data[off + len(t)] = ord(" ")
        data[off:off + len(t)] = t

    for t in things:
        for _ in range(PLANT_EACH):
            off = next(slots) * 128 + 8
            b = (off + len(t) - 1) // block * block
            put(b + 1 if b > off else off, t)  # crosses the boundary at b: start just after it instead
        for _ in range(STRADDLE_EACH):
            put(next(boundaries) * block - len(t) // 2, t)
        planted[t] = (PLANT_EACH, STRADDLE_EACH)
    corpus = os.path.join(a.dir, "corpus.bin")
    patterns = os.path.join(a.dir, "patterns.hex")
    with open(corpus, "wb") as f:
        f.write(data)
    with open(patterns, "w") as f:
        f.write("# test literals\n" + "\n".join(l.hex() for l in LITERALS) + "\n\n")
    print(f"corpus {corpus}: {n} bytes; each string planted {PLANT_EACH} times inside a 1460-byte block, "
          f"{STRADDLE_EACH} times across a boundary", file=sys.stderr)

    lit_rev = [re.compile(b"(?=" + re.escape(l[::-1]) + b")") for l in LITERALS]
    gen_rev = [re.compile(b"(?=" + g + b")") for g in GENERIC_REV]
    failures = 0
    for chunk in (1460, 65536, n):
        expect = [0] * (len(LITERALS) + len(GENERIC))
        for off in range(0, n, chunk):
            rev = bytes(data[off:off + chunk][::-1])
            for i, r in enumerate(lit_rev + gen_rev):
                expect[i] += sum(1 for _ in r.finditer(rev))
        for generic in (False, True):
            cmd = [a.hs_scan, patterns, corpus, "--chunk", str(chunk), "--repeat", "3", "-v"] + (["--generic"] if generic else [])
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"{' '.join(cmd)} failed: {p.stderr}")
            got = [0] * len(expect)
            for line in p.stderr.splitlines():
                m = re.match(r"hs_scan: id (\d+) .*: (\d+)$", line)
                if m:
                    got[int(m.group(1))] = int(m.group(2))
            want = expect if generic else expect[:len(LITERALS)] + [0] * len(GENERIC)
            total = int(re.search(r"matches=(\d+)", p.stdout).group(1))
            ok = got == want and total == sum(want)
            failures += not ok
            print(f"chunk {chunk:>9} {'generic ' if generic else 'literals'}: {'OK  ' if ok else 'FAIL'} "
                  f"total {total} (reference {sum(want)}) | {p.stdout.strip()}")
            if not ok:
                for i, (g, w) in enumerate(zip(got, want)):
                    if g != w:
                        name = LITERALS[i] if i < len(LITERALS) else GENERIC[i - len(LITERALS)]
                        print(f"    id {i} {name!r}: hs_scan {g}, reference {w}")
        if chunk == 1460:
            # The planted literals must all be found, the straddling ones not (a literal is rare in random bytes).
            for i, l in enumerate(LITERALS):
                inside, straddling = planted[l]
                print(f"    {l!r}: planted {inside} inside blocks, {straddling} across; reference and hs_scan found "
                      f"{expect[i]}" + ("" if expect[i] == inside else "  <-- not the planted count"))
                failures += expect[i] != inside
    print("all counts match the reference" if not failures else f"{failures} mismatches")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
