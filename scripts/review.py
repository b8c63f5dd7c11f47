#!/usr/bin/env python3
"""Runs siphon over a set of captures and tallies the alerts: the review behind docs/detections.md.

Usage: scripts/review.py [--siphon PATH] [--min SEVERITY] [--extra ARG]... GLOB...
  e.g. scripts/review.py '../shared/captures/benign/**/*.pcap*'
Prints per capture the alerts at or above --min (default medium), then totals by category and severity.
"""
import argparse, collections, glob, json, subprocess, sys

SEVERITIES = ["info", "low", "medium", "high", "critical"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--siphon", default=".build/release/siphon")
    ap.add_argument("--min", default="medium", choices=SEVERITIES)
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("patterns", nargs="+")
    a = ap.parse_args()
    files = sorted({f for p in a.patterns for f in glob.glob(p, recursive=True)
                    if f.endswith((".pcap", ".pcapng", ".cap", ".pcap.gz")) or ".pcap" in f.rsplit("/", 1)[-1]})
    totals = collections.Counter()
    by_cat = collections.Counter()
    floor = SEVERITIES.index(a.min)
    for f in files:
        out = subprocess.run([a.siphon, "scan", "-q", "--json", "-", *a.extra, f], capture_output=True, text=True).stdout
        shown = []
        for line in out.splitlines():
            e = json.loads(line)
            if e.get("event_type") != "alert":
                continue
            al = e["alert"]
            totals[al["severity"]] += 1
            by_cat[(al["category"], al["severity"])] += 1
            if SEVERITIES.index(al["severity"]) >= floor:
                shown.append(f"  {al['severity']:<8} {al['category']:<18} {al['message'][:150]}")
        if shown:
            print(f)
            print("\n".join(shown))
    print(f"\n{len(files)} captures: " + ", ".join(f"{totals[s]} {s}" for s in SEVERITIES))
    for (c, s), n in sorted(by_cat.items()):
        print(f"  {c:<20} {s:<8} {n}")


if __name__ == "__main__":
    sys.exit(main())
