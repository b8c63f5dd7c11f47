#!/usr/bin/env python3
"""Writes captures/evidence/split-segments.pcap and its manifest split-segments.json: identifiers whose bytes are
carried by packets the test must name exactly (issue 15, packet references).

Usage: scripts/gen_evidence.py [OUT_DIR]   (default: captures/evidence in the repository). Deterministic.

Connections from the device 192.168.1.23 (an unidentified protocol, so the raw stream is scanned):
- "straddle": to 120.77.166.21:5555, the IMEI 356938035643809 cut across two segments: both frames carry it;
- "reordered": to 120.77.166.22:5556, two segments captured out of order: the later-sequenced one, which holds the
  IMEI 490154203237518 whole, arrives first and waits in the reassembler until the earlier one fills the hole: the
  frame that carried the IMEI is the first of the two, not the one that completed the stream.
- "plain": to 39.156.66.10:5557, the IMEI 356938035643809 in one segment after a 2,000-byte preamble split in two.
The manifest gives, per connection, the identifier and the frame numbers (1-based positions in the written file,
computed here from the order of the packets) that carry its bytes.
"""
import json, os, random, sys
from pcapgen import Capture, TCP

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "captures/evidence")
T0 = 1741942800.0


def main():
    cap = Capture(random.Random(15))
    marks = {}

    def mark(name):
        """Remembers the packet just appended (its index before sorting)."""
        marks.setdefault(name, []).append(len(cap.packets) - 1)

    # Straddle: the IMEI cut after its 10th digit.
    c = TCP(cap, T0, "120.77.166.21", 40001, 5555)
    first, second = b"HELLO v2 dev=3569380356", b"43809 battery=81\n"
    c.seg(True, 0x18, first); mark("straddle"); c.cseq += len(first)
    c.seg(True, 0x18, second); mark("straddle"); c.cseq += len(second)
    c.seg(False, 0x10, b"")
    c.reply(b"OK\n")
    c.close()

    # Reordered: segment 2 (holding the IMEI) captured before segment 1.
    c = TCP(cap, T0 + 5, "120.77.166.22", 40002, 5556)
    part1, part2 = b"STATUS report seq=17 ", b"id=490154203237518 ok\n"
    c.seg(True, 0x18, part2, seq=(c.cseq + len(part1)) & 0xFFFFFFFF); mark("reordered")
    c.seg(True, 0x18, part1)
    c.cseq += len(part1) + len(part2)
    c.seg(False, 0x10, b"")
    c.close()

    # Plain: a long preamble, then the IMEI in one segment.
    c = TCP(cap, T0 + 10, "39.156.66.10", 40003, 5557)
    for chunk in (b"x" * 1000, b"y" * 1000):
        c.seg(True, 0x18, chunk); c.cseq += len(chunk)
    body = b" imei:356938035643809;\n"
    c.seg(True, 0x18, body); mark("plain"); c.cseq += len(body)
    c.seg(False, 0x10, b"")
    c.close()

    order = sorted(range(len(cap.packets)), key=lambda i: cap.packets[i][0])
    frame_of = {index: position + 1 for position, index in enumerate(order)}
    cap.write(os.path.join(OUT, "split-segments.pcap"))
    manifest = {
        "capture": "split-segments.pcap",
        "device": cap.device,
        "straddle": {"dest_ip": "120.77.166.21", "value": "356938035643809", "frames": sorted(frame_of[i] for i in marks["straddle"])},
        "reordered": {"dest_ip": "120.77.166.22", "value": "490154203237518", "frames": sorted(frame_of[i] for i in marks["reordered"])},
        "plain": {"dest_ip": "39.156.66.10", "value": "356938035643809", "frames": sorted(frame_of[i] for i in marks["plain"])},
    }
    with open(os.path.join(OUT, "split-segments.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


main()
