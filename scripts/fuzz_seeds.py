#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (scripts/fuzz.sh), taken from the committed captures and data.

Usage: fuzz_seeds.py TARGET DIR [--max N]

Writes at most N (default 40) files of at most 16 KiB each into DIR: whole small captures for `capture`/`scan`;
frames with their link-type selector for `decode`; UDP/TCP payloads (through tshark) for the protocol parsers; the
rule pack, IOC feeds and MaxMind test databases for the loaders. `tcp` and `fragments` start from a few hand-made
inputs (their input formats are described in Sources/SiphonFuzzing/ReassemblyModels.swift).
"""
import glob, os, subprocess, sys, hashlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared")
LIMIT = 16384
LINKS = {1: 0, 101: 1, 228: 2, 229: 3, 0: 4, 108: 5, 113: 6, 276: 7, 239: 8, 9: 9, 50: 10, 217: 11}


def captures(limit=65536):
    files = sorted(glob.glob(os.path.join(ROOT, "captures", "*", "*.pcap*")))
    return [f for f in files if os.path.getsize(f) <= limit and not f.endswith(".json")]


def tshark(path, fields, display=None):
    cmd = ["tshark", "-r", path, "-T", "fields", "-E", "separator=|"]
    if display:
        cmd += ["-Y", display]
    for f in fields:
        cmd += ["-e", f]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split("|") for line in out.splitlines() if line]


def payloads(display, field, limit):
    seen = []
    for path in captures(1 << 20):
        for row in tshark(path, [field], display):
            h = row[0].replace(":", "").split(",")[0]
            if h:
                seen.append(bytes.fromhex(h))
            if len(seen) >= limit:
                return seen
    return seen


def streams(port, limit):
    """Client-side TCP payloads of the first streams to `port`, concatenated per stream."""
    out = []
    for path in captures(1 << 20):
        rows = tshark(path, ["tcp.stream", "tcp.payload"], f"tcp.dstport=={port} && tcp.len>0")
        by = {}
        for s, p in rows:
            by.setdefault(s, b"")
            by[s] += bytes.fromhex(p.replace(":", ""))
        out += list(by.values())
        if len(out) >= limit:
            break
    return out[:limit]


def frames(limit):
    out = []
    for path in captures(1 << 20):
        rows = tshark(path, ["frame.encap_type", "frame.protocols"])
        if not rows:
            continue
        # The link type from capinfos-free means: the raw frame bytes through tshark's -x is costly; read pcap directly.
        out += raw_frames(path, 3)
        if len(out) >= limit:
            break
    return out[:limit]


def raw_frames(path, n):
    import struct
    data = open(path, "rb").read()
    if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return []
    link = struct.unpack("<I", data[20:24])[0]
    if link not in LINKS:
        return []
    o, out = 24, []
    while o + 16 <= len(data) and len(out) < n:
        incl = struct.unpack("<I", data[o + 8:o + 12])[0]
        out.append(bytes([LINKS[link]]) + data[o + 16:o + 16 + incl])
        o += 16 + incl
    return out


def main():
    target, folder = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[sys.argv.index("--max") + 1]) if "--max" in sys.argv else 40
    os.makedirs(folder, exist_ok=True)
    seeds = []
    if target in ("capture", "scan"):
        seeds = [open(f, "rb").read() for f in captures(LIMIT)]
    elif target == "decode":
        seeds = frames(limit)
    elif target == "dns":
        seeds = payloads("dns && udp", "udp.payload", limit)
    elif target == "dhcp":
        seeds = payloads("dhcp", "udp.payload", limit)
    elif target == "gtp":
        seeds = payloads("udp.port==2152 || udp.port==2123", "udp.payload", limit)
    elif target == "gsm":
        import struct
        parts = payloads("udp.port==4729", "udp.payload", 400)
        for i in range(0, len(parts), 20):
            seeds.append(b"".join(struct.pack(">H", len(p)) + p for p in parts[i:i + 20]))
    elif target == "quic":
        seeds = payloads("quic", "udp.payload", limit)
    elif target == "tls":
        seeds = streams(443, limit)
    elif target == "x509":
        seeds = [bytes.fromhex(r[0].replace(":", "").split(",")[0])
                 for p in captures(1 << 20) for r in tshark(p, ["tls.handshake.certificate"], "tls.handshake.certificate")][:limit]
    elif target == "http":
        seeds = streams(80, limit)
    elif target == "identifiers":
        seeds = [open(f, "rb").read()[:LIMIT] for f in sorted(glob.glob(os.path.join(ROOT, "captures", "sample", "*.pcap")))]
        seeds += [b"imei=490154203237518&imsi=208101112223334&tel=+33612345678&lat=48.8566&lon=2.3522"]
    elif target == "mmdb":
        files = sorted(glob.glob(os.path.join(ROOT, "testdata", "mmdb", "**", "*.mmdb"), recursive=True))
        files += sorted(glob.glob(os.path.join(SHARED, "geo", "mmdb-test", "**", "*.mmdb"), recursive=True))
        seeds = [open(f, "rb").read() for f in files if os.path.getsize(f) <= LIMIT * 4]
    elif target == "ioc":
        files = sorted(glob.glob(os.path.join(ROOT, "testdata", "intel", "*")))
        files += sorted(glob.glob(os.path.join(SHARED, "intel", "**", "*"), recursive=True))
        seeds = [open(f, "rb").read()[:LIMIT] for f in files if os.path.isfile(f) and f.rsplit(".", 1)[-1]
                 in ("txt", "csv", "json", "yaml", "yml", "stix2", "ioc") and "expected" not in f][:limit]
        seeds += [b"1.2.3.4\n10.0.0.0/8\nexample.com\nhttp://example.com/x # c2\n", b"type,value,tag\nip,1.2.3.4,x\n"]
    elif target == "rules":
        seeds = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(ROOT, "Sources", "SiphonDetect", "rules", "*.yaml")))]
    elif target == "tcp":
        seeds = [bytes([0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 1]) + bytes([0, 0, 10, 1, 0, 0, 0, 40, 10, 1, 0, 0, 0, 20, 10, 2, 0, 0, 0x80, 0, 3, 1, 1, 0]),
                 bytes([1, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]) + bytes([0, 8, 4, 1, 0, 0, 0, 0, 4, 2, 0, 0, 0, 4, 4, 3, 1, 0]),
                 bytes([8, 1, 2, 3, 4, 5, 6, 7, 8]) + bytes(range(60))]
    elif target == "fragments":
        seeds = [bytes([0, 2, 1, 1, 2, 2, 0, 1]), bytes([1, 1, 1, 1, 0, 2, 1, 2, 1, 1, 0, 3]), bytes([4, 4, 3, 9, 0, 4, 3, 8, 4, 1, 2, 7])]
    else:
        sys.exit(f"fuzz_seeds.py: no seeds for target {target}")
    written = 0
    for s in seeds[:limit]:
        s = s[:LIMIT * 4 if target == "mmdb" else LIMIT]
        name = hashlib.sha1(s).hexdigest()
        with open(os.path.join(folder, name), "wb") as f:
            f.write(s)
        written += 1
    print(f"{target}: {written} seeds in {folder}")


if __name__ == "__main__":
    main()
