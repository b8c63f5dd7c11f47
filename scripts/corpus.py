#!/usr/bin/env python3
"""Verdicts of the labelled corpus (docs/corpus-labels.tsv): the table of docs/detections.md.

Usage: scripts/corpus.py [--siphon PATH] [--shared DIR] [--markdown] [--extra ARG]...
Scans every capture of the label file (paths relative to ../shared/captures) with the embedded defaults (and
`--checksums off` where the capture's Suricata-verify test runs Suricata with `-k none`), takes the
worst device verdict of each, and prints per capture its label, verdict and the signals of the endpoint that set
it, then the table of verdicts by label and the two targets: >= 85 % of `c2` captures at high or critical, no
`benign` capture above medium. Exit status 1 when a target is missed.
"""
import argparse, collections, csv, json, os, subprocess, sys

SEVERITIES = ["none", "info", "low", "medium", "high", "critical"]
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def suite_args(path):
    """How the capture's own test suite says it must be read: a Suricata-verify test run with `-k none` (checksums
    not validated: the file was captured with offloaded or rewritten checksums) is scanned with `--checksums off`."""
    test = os.path.join(os.path.dirname(path), "test.yaml")
    if "suricata-verify" in path and os.path.exists(test):
        if any(line.strip() in ("- -k none", "- -k  none") for line in open(test)):
            return ["--checksums", "off"]
    return []


def verdict(siphon, path, extra):
    """The worst device verdict of a capture, and why: the score and signals of its worst endpoint, else its alerts."""
    out = subprocess.run([siphon, "scan", "-q", "--json", "-", *suite_args(path), *extra, path],
                         capture_output=True, text=True).stdout
    verdicts = [e for e in map(json.loads, out.splitlines()) if e.get("event_type") == "verdict"]
    if not verdicts:
        return "none", ""
    v = max(verdicts, key=lambda e: (SEVERITIES.index(e.get("severity", "none")), e.get("score", 0)))
    top = max(v.get("endpoints", []), key=lambda x: x.get("score", 0), default={})
    if top.get("score"):
        return v["severity"], f"score {top['score']} at {top['ip']}: {', '.join(top.get('signals', []))}"
    alerts = v.get("alerts", {})
    return v.get("severity", "none"), f"{alerts.get('high', 0)} high, {alerts.get('medium', 0)} medium alerts"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--siphon", default=os.path.join(ROOT, ".build/release/siphon"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "../shared/captures"))
    ap.add_argument("--labels", default=os.path.join(ROOT, "docs/corpus-labels.tsv"))
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--extra", action="append", default=[])
    a = ap.parse_args()
    rows = [r for r in csv.reader(open(a.labels), delimiter="\t") if r and not r[0].startswith("#") and r[0] != "path"]
    table = collections.defaultdict(collections.Counter)
    missed = []
    for path, label, *_ in rows:
        full = os.path.join(a.shared, path)
        if not os.path.exists(full):
            print(f"missing: {full}", file=sys.stderr)
            continue
        worst, why = verdict(a.siphon, full, a.extra)
        table[label][worst] += 1
        if (label == "c2" and SEVERITIES.index(worst) < SEVERITIES.index("high")) or \
           (label == "benign" and SEVERITIES.index(worst) > SEVERITIES.index("medium")):
            missed.append(path)
        if a.markdown:
            print(f"| `{path}` | {label} | {worst} | {why} |")
        else:
            print(f"{label:<16} {worst:<9} {path}  [{why}]")
    print()
    print("| label | captures | " + " | ".join(SEVERITIES) + " |")
    print("|---|---|" + "---|" * len(SEVERITIES))
    for label in sorted(table):
        c = table[label]
        print(f"| {label} | {sum(c.values())} | " + " | ".join(str(c[s]) for s in SEVERITIES) + " |")
    c2 = table.get("c2", collections.Counter())
    n = sum(c2.values())
    top = c2["high"] + c2["critical"]
    benign_over = sum(v for s, v in table.get("benign", {}).items() if SEVERITIES.index(s) > SEVERITIES.index("medium"))
    print(f"\nc2 at high or critical: {top} of {n} ({100 * top / max(n, 1):.0f} %, target 85 %); "
          f"benign above medium: {benign_over} (target 0)")
    if missed:
        print("off target: " + ", ".join(missed))
    return 1 if (n and top < 0.85 * n) or benign_over else 0


if __name__ == "__main__":
    sys.exit(main())
