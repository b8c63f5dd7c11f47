#!/usr/bin/env python3
"""Writes testdata/geo/: a sample of the geo CSVs the embedded tables were built from (../shared/geo), so that
GeoTests compare the tables with their source on a fresh clone too (the whole CSVs when ../shared is present).

Usage: scripts/geo_sample.py [SHARED_GEO_DIR]   (default ../shared/geo beside the checkout)
Per CSV: every 200th row, IPv4 and IPv6, plus the first 20 rows with a region code (EU, AP) for ip-country.
Deterministic: the same CSVs give the same samples. Licences: testdata/geo/SOURCES.md.
"""
import gzip, os, sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "geo")
OUT = os.path.join(ROOT, "testdata", "geo")
STEP = 200

for name in ("ip-country.csv.gz", "ip-country-rir.csv.gz", "ip-asn-ranges.csv.gz"):
    with gzip.open(os.path.join(SRC, name), "rt") as f:
        header, *rows = f.read().splitlines()
    keep = set(range(0, len(rows), STEP))
    if name == "ip-country.csv.gz":
        regions = [i for i, r in enumerate(rows) if r.rsplit(",", 1)[1] in ("EU", "AP")]
        keep.update(regions[:20])
    out = os.path.join(OUT, name[:-len(".csv.gz")] + ".sample.csv")
    with open(out, "w") as f:
        f.write(header + "\n")
        for i in sorted(keep):
            f.write(rows[i] + "\n")
    print(f"{out}: {len(keep)} of {len(rows)} rows")
