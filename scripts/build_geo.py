#!/usr/bin/env python3
"""Builds Siphon's embedded geolocation tables from ../shared/geo (see Sources/SiphonGeo/data/SOURCES.md).

Usage: scripts/build_geo.py [GEO_DIR] [OUT_DIR]     (defaults: ../shared/geo, Sources/SiphonGeo/data)

Each range table becomes one little-endian file of sorted range starts plus one value per range; a range runs to
the byte before the next start. Holes between the CSV's ranges become ranges with the value 0 ("no data").
  country-v4.bin, country-v6.bin, registered-v4.bin, registered-v6.bin: value = 2 ASCII letters (UInt16, first
      letter in the low byte)
  asn-v4.bin, asn-v6.bin: value = ASN (UInt32)
  asn-names.bin: sorted (asn UInt32, offset UInt32) pairs, then the UTF-8 names, each ended by a zero byte
File layout: magic (4 bytes), version UInt32 = 1, family UInt32 (4 or 6), value size UInt32, count UInt32, then
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


def write(path, magic, family, value_size, starts, values):
    with open(path, "wb") as f:
        f.write(magic + struct.pack("<IIII", 1, family, value_size, len(starts)))
        if family == 4:
            f.write(struct.pack("<%dI" % len(starts), *starts))
        else:
            buf = bytearray()
            for s in starts:
                buf += struct.pack("<QQ", s >> 64, s & ((1 << 64) - 1))
            f.write(buf)
        f.write(struct.pack("<%d%s" % (len(values), "H" if value_size == 2 else "I"), *values))


def main():
    os.makedirs(out, exist_ok=True)
    for name, prefix, value, size in [("ip-country.csv.gz", "country", country, 2),
                                      ("ip-country-rir.csv.gz", "registered", country, 2),
                                      ("ip-asn-ranges.csv.gz", "asn", int, 4)]:
        for family in (4, 6):
            starts, values = table(name, value, family)
            write(os.path.join(out, f"{prefix}-v{family}.bin"), b"SGEO", family, size, starts, values)
            print(f"{prefix}-v{family}.bin: {len(starts)} ranges")
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
