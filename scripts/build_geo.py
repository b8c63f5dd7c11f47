#!/usr/bin/env python3
"""Builds Siphon's embedded geolocation tables from ../shared/geo (see Sources/SiphonGeo/data/SOURCES.md).

Usage: scripts/build_geo.py [GEO_DIR] [OUT_DIR]     (defaults: ../shared/geo, Sources/SiphonGeo/data)

The three range tables (located country, registered country, ASN) are merged per address family into one
little-endian file of sorted range starts (the union of the three tables' boundaries) and one 8-byte value per
range, so that a lookup is one search; a range runs to the byte before the next start. Holes become "no data" (0).
  geo-v4.bin, geo-v6.bin: value = located country (UInt16: 2 ASCII letters, first in the low byte)
      | registered country << 16 | ASN << 32
  asn-names.bin: sorted (asn UInt32, offset UInt32) pairs, then the UTF-8 names, each ended by a zero byte
File layout: magic "SGEO", version UInt32 = 2, family UInt32 (4 or 6), value size UInt32 = 8, count UInt32, then
count starts (UInt32 for IPv4; two UInt64 high, low for IPv6), then count values.
"""
import csv, gzip, ipaddress, io, os, struct, sys

geo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "geo")
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "Sources", "SiphonGeo", "data")


def rows(name):
    with gzip.open(os.path.join(geo, name), "rt", newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            yield row


def table(name, value, family):
    starts, values = [], []
    previous_end = None
    for start, end, v in rows(name):
        a, b = ipaddress.ip_address(start), ipaddress.ip_address(end)
        if a.version != family:
            continue
        a, b = int(a), int(b)
        if previous_end is not None and a > previous_end + 1:
            starts.append(previous_end + 1)
            values.append(0)
        elif previous_end is None and a > 0:
            starts.append(0)
            values.append(0)
        starts.append(a)
        values.append(value(v))
        previous_end = b
    top = (1 << (32 if family == 4 else 128)) - 1
    if previous_end is not None and previous_end < top:
        starts.append(previous_end + 1)
        values.append(0)
    return starts, values


def country(code):
    code = code.strip()
    return (ord(code[0]) | ord(code[1]) << 8) if len(code) == 2 else 0


def merge(tables):
    """One table from several: the union of their range starts, each range carrying every table's value."""
    starts = sorted(set().union(*(t[0] for t in tables)))
    values = []
    cursors = [0] * len(tables)
    for s in starts:
        row = []
        for k, (ts, vs) in enumerate(tables):
            while cursors[k] + 1 < len(ts) and ts[cursors[k] + 1] <= s:
                cursors[k] += 1
            row.append(vs[cursors[k]])
        values.append(row)
    return starts, values


def main():
    os.makedirs(out, exist_ok=True)
    for family in (4, 6):
        located = table("ip-country.csv.gz", country, family)
        registered = table("ip-country-rir.csv.gz", country, family)
        asn = table("ip-asn-ranges.csv.gz", int, family)
        starts, merged = merge([located, registered, asn])
        # value = located country (UInt16) | registered country (UInt16) << 16 | ASN << 32, as one UInt64
        values = [r[0] | r[1] << 16 | r[2] << 32 for r in merged]
        path = os.path.join(out, f"geo-v{family}.bin")
        with open(path, "wb") as f:
            f.write(b"SGEO" + struct.pack("<IIII", 2, family, 8, len(starts)))
            if family == 4:
                f.write(struct.pack("<%dI" % len(starts), *starts))
            else:
                buf = bytearray()
                for s in starts:
                    buf += struct.pack("<QQ", s >> 64, s & ((1 << 64) - 1))
                f.write(buf)
            f.write(struct.pack("<%dQ" % len(values), *values))
        print(f"geo-v{family}.bin: {len(starts)} ranges")
    names = sorted((int(a), n) for a, n in rows("asn-names.csv.gz"))
    blob = bytearray()
    index = bytearray()
    for asn, name in names:
        index += struct.pack("<II", asn, len(blob))
        blob += name.encode() + b"\0"
    with open(os.path.join(out, "asn-names.bin"), "wb") as f:
        f.write(b"SASN" + struct.pack("<II", 1, len(names)) + index + blob)
    print(f"asn-names.bin: {len(names)} names")


if __name__ == "__main__":
    main()
