#!/usr/bin/env python3
"""Derive expected per-flow packet/byte figures from tshark, for Siphon's
differential flow-table test.

Usage:
    scripts/tshark_flows.py [-o OUTDIR] CAPTURE [CAPTURE ...]

For every capture, tshark is run exactly once:

    tshark -r FILE -n -o ip.defragment:TRUE -o ipv6.defragment:TRUE
           -o tcp.desegment_tcp_streams:FALSE -T fields -E separator=/t
           -E occurrence=a -E aggregator=, -e frame.number -e frame.len -e frame.protocols
           -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e tcp.srcport
           -e tcp.dstport -e udp.srcport -e udp.dstport -e ip.flags.mf
           -e ip.frag_offset -e ipv6.fraghdr.more -e ipv6.fraghdr.offset
           -e frame.cb_pen -e ip.fragment -e ipv6.fragment

(WIRESHARK_CONFIG_DIR points at an empty temporary directory, so a personal
preferences / decode-as file cannot change the result.)

Counting rules
--------------
* The outermost network layer is the first ``ip`` or ``ipv6`` entry of the
  colon-separated ``frame.protocols`` list.  IPv6 extension-header entries
  that follow it (every entry starting with ``ipv6.``: ipv6.hopopts,
  ipv6.routing, ipv6.dstopts, ipv6.fraghdr, ...) are skipped.  The next entry
  must be ``tcp`` or ``udp``; otherwise the frame is not counted.  So TCP/UDP
  seen only inside ICMP errors or inside tunnels (GRE, IP-in-IP, ...) does not
  count, while for UDP-based tunnels (GTP-U, VXLAN, Teredo) the outer UDP
  datagram is what counts.
* Addresses and ports are the first occurrence of each field (the outer ones)
  taken from the family of the outermost network layer.
* IP defragmentation is on: the frame that completes a datagram carries the
  transport layer and lists its fragment frames (``ip.fragment`` /
  ``ipv6.fragment``); the flow is credited with every one of those frames, each
  with its own ``frame.len`` (what was on the wire). Fragments of datagrams that
  never complete are not counted (they belong to no flow).
* Flows are bidirectional 5-tuples.  Endpoint A is the smaller of the two
  (packed address as from socket.inet_pton, port) pairs, B the larger; IPv4
  sorts before IPv6.  If both endpoints are equal, packets count as A->B.
* Bytes are ``frame.len`` (original on-the-wire length, not the captured
  length).

Output: OUTDIR/<capture file name>.tshark.json with
    capture, tshark_version, frames_total (every frame tshark read, including
    pcapng Custom Block "frames"), custom_block_frames, non_first_fragments
    (frames whose outermost IPv4/IPv6 header is a fragment with non-zero
    offset), first_fragments_counted (counted frames whose outermost header is
    a first fragment: MF set, offset 0), transport_without_ports (frames whose
    outermost transport is tcp/udp but tshark gave no ports; not counted),
    counted_frames, and flows sorted by (proto, A address [version, packed
    bytes], A port, B address, B port), each
    {"proto", "a_ip", "a_port", "b_ip", "b_port", "a_to_b_packets",
     "a_to_b_bytes", "b_to_a_packets", "b_to_a_bytes"}.

Exit status is 1 if tshark failed (non-zero exit) on any capture; the JSON is
still written, with "tshark_exit_status" and "tshark_stderr" filled in.
"""

import argparse
import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile

FIELDS = [
    "frame.number", "frame.len", "frame.protocols",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
    "ip.flags.mf", "ip.frag_offset", "ipv6.fraghdr.more", "ipv6.fraghdr.offset",
    "frame.cb_pen", "ip.fragment", "ipv6.fragment",
]

PREFS = [
    "ip.defragment:TRUE",
    "ipv6.defragment:TRUE",
    "tcp.desegment_tcp_streams:FALSE",
]


def tshark_command(path):
    cmd = ["tshark", "-r", path, "-n"]
    for p in PREFS:
        cmd += ["-o", p]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    return cmd


def tshark_version(env):
    out = subprocess.run(["tshark", "--version"], capture_output=True,
                         text=True, env=env).stdout
    first = out.splitlines()[0] if out else ""
    prefix = "TShark (Wireshark) "
    first = first.strip().rstrip(".")
    return first[len(prefix):] if first.startswith(prefix) else first


def truthy(v):
    return v.strip().lower() in ("1", "true", "yes")


def to_int(v):
    v = v.strip()
    if not v:
        return 0
    return int(v, 0)


def endpoint_key(version, addr, port):
    fam = socket.AF_INET if version == 4 else socket.AF_INET6
    return (version, socket.inet_pton(fam, addr), port)


def analyse(path, env):
    """Run tshark once on path and return (result dict, exit status)."""
    proc = subprocess.run(tshark_command(path), capture_output=True,
                          text=True, env=env, errors="replace")
    frames_total = 0
    custom_blocks = 0
    non_first = 0
    first_counted = 0
    no_ports = 0
    counted = 0
    flows = {}
    frame_length = {}
    records = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        rec = dict(zip(FIELDS, cols))
        # Every field but the fragment lists keeps its first (outermost) occurrence.
        fragments = [int(x) for f in ("ip.fragment", "ipv6.fragment") for x in rec[f].split(",") if x.strip()]
        rec = {k: (v.split(",")[0] if k not in ("frame.protocols",) else v) for k, v in rec.items()}
        rec["fragments"] = fragments
        frame_length[int(rec["frame.number"])] = int(rec["frame.len"])
        records.append(rec)

    for rec in records:
        frames_total += 1
        if rec["frame.cb_pen"].strip():
            custom_blocks += 1
        protos = rec["frame.protocols"].split(":")

        # Outermost network layer.
        idx = None
        for i, p in enumerate(protos):
            if p in ("ip", "ipv6"):
                idx = i
                break
        if idx is None:
            continue
        version = 4 if protos[idx] == "ip" else 6

        j = idx + 1
        ext = []
        if version == 6:
            while j < len(protos) and protos[j].startswith("ipv6."):
                ext.append(protos[j])
                j += 1
        transport = protos[j] if j < len(protos) else None

        # Fragment status of the outermost header.
        is_frag_nonfirst = False
        is_frag_first = False
        if version == 4:
            off = to_int(rec["ip.frag_offset"])
            mf = truthy(rec["ip.flags.mf"])
            is_frag_nonfirst = off != 0
            is_frag_first = off == 0 and mf
        elif "ipv6.fraghdr" in ext:
            off = to_int(rec["ipv6.fraghdr.offset"])
            mf = truthy(rec["ipv6.fraghdr.more"])
            is_frag_nonfirst = off != 0
            is_frag_first = off == 0 and mf
        if is_frag_nonfirst:
            non_first += 1

        if transport not in ("tcp", "udp"):
            continue
        if version == 4:
            src, dst = rec["ip.src"].strip(), rec["ip.dst"].strip()
        else:
            src, dst = rec["ipv6.src"].strip(), rec["ipv6.dst"].strip()
        sport = rec[transport + ".srcport"].strip()
        dport = rec[transport + ".dstport"].strip()
        if not (src and dst and sport and dport):
            no_ports += 1
            continue
        src = str(ipaddress.ip_address(src))
        dst = str(ipaddress.ip_address(dst))
        s = endpoint_key(version, src, int(sport))
        d = endpoint_key(version, dst, int(dport))
        if s <= d:
            a, b, fwd = (s, src), (d, dst), True
        else:
            a, b, fwd = (d, dst), (s, src), False
        key = (transport.upper(), a[0], b[0])
        fl = flows.get(key)
        if fl is None:
            fl = flows[key] = {
                "proto": transport.upper(),
                "a_ip": a[1], "a_port": a[0][2],
                "b_ip": b[1], "b_port": b[0][2],
                "a_to_b_packets": 0, "a_to_b_bytes": 0,
                "b_to_a_packets": 0, "b_to_a_bytes": 0,
            }
        # A reassembled datagram counts every fragment frame it was rebuilt from, each with its own length.
        frames = rec["fragments"] or [int(rec["frame.number"])]
        packets = len(frames)
        length = sum(frame_length.get(f, 0) for f in frames)
        if fwd:
            fl["a_to_b_packets"] += packets
            fl["a_to_b_bytes"] += length
        else:
            fl["b_to_a_packets"] += packets
            fl["b_to_a_bytes"] += length
        counted += 1
        if is_frag_first:
            first_counted += 1

    result = {
        "capture": os.path.basename(path),
        "tshark_version": None,
        "frames_total": frames_total,
        "custom_block_frames": custom_blocks,
        "counted_frames": counted,
        "non_first_fragments": non_first,
        "first_fragments_counted": first_counted,
        "transport_without_ports": no_ports,
        "flows": [flows[k] for k in sorted(flows)],
    }
    if proc.returncode != 0:
        result["tshark_exit_status"] = proc.returncode
        result["tshark_stderr"] = "\n".join(
            l for l in proc.stderr.splitlines()
            if not l.startswith("Running as user"))
    return result, proc.returncode


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--outdir", default=".",
                    help="directory for <capture>.tshark.json (default .)")
    ap.add_argument("captures", nargs="+")
    args = ap.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    status = 0
    with tempfile.TemporaryDirectory(prefix="tshark-cfg-") as cfg:
        env = dict(os.environ)
        env["WIRESHARK_CONFIG_DIR"] = cfg
        version = tshark_version(env)
        for path in args.captures:
            res, rc = analyse(path, env)
            res["tshark_version"] = version
            out = os.path.join(args.outdir,
                               os.path.basename(path) + ".tshark.json")
            with open(out, "w") as fh:
                json.dump(res, fh, indent=1)
                fh.write("\n")
            if rc != 0:
                status = 1
                print("warning: tshark exit %d on %s" % (rc, path),
                      file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
