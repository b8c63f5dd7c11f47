#!/usr/bin/env python3
"""Derive byte-for-byte fixtures for Siphon's ``--extract-streams DIR`` from
tcpflow, keeping only the TCP directions that tcpflow reassembled without a
gap and that an independent reassembly (from tshark) reproduces exactly.

Usage:
    scripts/tcpflow_streams.py [-o OUT.json] [--check] [--report] [CAPTURE ...]

Without CAPTURE arguments the default set is used (paths relative to the
repository root): captures/diff/*.pcap*, captures/arkime/*.pcap and
captures/zeek/*.pcap*.  The default output is
captures/tcpflow/expected.json.  --check regenerates the JSON in memory and
compares it with the file on disk instead of writing it (exit status 1 when
they differ; "tcpflow_version"/"tshark_version" are not compared).
--report prints a human-readable summary (a Markdown table of the captures
and one of every excluded direction with its reason) to stdout.

Needs tcpflow (1.6.1 was used) and tshark on PATH; Python 3 stdlib only.

What is run
-----------
For every capture, tcpflow runs exactly as a user would run it, into a fresh
empty temporary directory (so tcpflow's ``c1``, ``c2``... file suffixes only
come from the capture itself):

    tcpflow -r CAPTURE -o OUTDIR

(no -a, no -F prefixes/binning, default template %A.%a-%B.%b%V%v%C%c).  Its
exit status and stderr tell whether it could read the capture at all
(libpcap refuses pcapng files whose interfaces have different link types or
snap lengths; tcpflow 1.6.1 has no handler for LINKTYPE_IPV4 228,
LINKTYPE_IPV6 229 or LINKTYPE_LINUX_SLL2 276).  OUTDIR/report.xml (DFXML)
lists one <fileobject> per tcpflow flow object: <filename> (absent when the
direction carried no payload, in which case tcpflow writes no file),
<filesize> (tcpflow's highest written offset) and a <tcpflow> element with
src_ipn/dst_ipn/srcport/dstport/packets/len and, when non-zero,
out_of_order_count and violations.  report.xml has no gap/hole indicator:
tcpflow writes each segment at its offset (lseek + write), so a hole inside
a stream reads back as zero bytes (sparse file) and a missing tail simply
makes the file shorter.  Gap-freeness therefore has to be decided from the
packets themselves.

tshark runs once per capture (WIRESHARK_CONFIG_DIR points at an empty
temporary directory so personal preferences cannot change the result;
IPv4/IPv6 defragmentation stays ON, TCP desegmentation is OFF):

    tshark -r CAPTURE -n -o tcp.desegment_tcp_streams:FALSE -T fields
           -E separator=/t -E occurrence=f -e frame.number
           -e frame.protocols -e eth.type -e vlan.priority -e vlan.dei
           -e vlan.id -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst
           -e tcp.stream -e tcp.srcport -e tcp.dstport -e tcp.seq_raw
           -e tcp.len -e tcp.flags -e tcp.payload -e ip.fragment.count
           -e ipv6.fragment.count -e eth.padding -e eth.trailer
           -e vlan.trailer -e eth.fcs -e null.family

Only frames whose outermost network layer (first ip/ipv6 in
frame.protocols, IPv6 extension headers skipped) is directly followed by tcp
are used, so TCP quoted inside ICMP errors or tunnels is ignored.

Independent reassembly and gap-freeness
---------------------------------------
A direction is (tcp.stream, sender endpoint).  For each direction with
payload:

* ISN = tcp.seq_raw of its SYN (or SYN/ACK).  A direction without a SYN, or
  whose SYNs carry different sequence numbers, has no known start and is
  excluded.  Payload carried on a SYN (TCP Fast Open) starts at ISN+1 like
  any other data; tcpflow 1.6.1 keeps it (and counts a "violation" in
  report.xml), and such fixtures are marked "syn_payload": true.
* Every payload segment (tcp.payload, which must have tcp.len bytes, else the
  capture truncated it) is placed at (seq - ISN - 1) mod 2^32; an offset
  >= 2^31 means data before the ISN and excludes the direction.
  Retransmissions simply overlap; if overlapping copies disagree on any byte
  the direction is excluded (tcpflow keeps the last copy written).
* Gap-free means the union of the segments covers every offset from 0 (ISN+1)
  to the highest end offset, and, when a FIN was seen, that highest offset
  reaches the FIN's sequence number (nothing missing before the FIN).
* The tcpflow file of the direction must then be byte-identical to that
  reassembly.  This is what catches tcpflow's own limits: it does not
  reassemble IP fragments (it keeps only the first fragment's bytes), does
  not walk IPv6 extension headers, only accepts DLT_NULL family bytes 2
  and 10 (BSD AF_INET6 values 24/28/30 are dropped), and for IPv4 takes the
  TCP payload length from the captured bytes rather than the IP total
  length, so Ethernet padding of pure ACK/FIN/RST frames is written as zero
  bytes (simsong/tcpflow#249, #261).

Pairing tcpflow files with directions: tcpflow's name is predicted from the
direction (sender %A.%a, receiver %B.%b, IPv4 as %03d octets, IPv6 with
inet_ntop, ports %05d, then "--" + the outermost 802.1Q TCI in decimal when
the outermost Ethernet type is 0x8100, taken from the first packet of the
direction) and files sharing that base name (suffix "" , "c1", "c2", ...)
are paired with the directions of that base name in order of their first
payload frame.  A file whose name no direction predicts, or whose bytes do
not match its paired direction, is excluded (listed with the reason).

Output (JSON object):
    tcpflow_version, tshark_version, command, captures (per capture: path,
    link types, whether tcpflow read it, tcpflow's error if not, number of
    files, whether the capture carries TCP payload), streams (the fixtures:
    capture, file, client_or_src {ip, port} = sender of the bytes in the file
    (%A.%a), dst {ip, port} = receiver (%B.%b), role ("client" when that
    sender sent the SYN, "server" when it sent the SYN/ACK), family, vlan
    (the number tcpflow put after "--", null if none), connection_index (N of
    the cN suffix, 0 without suffix), tshark_stream, length, sha256,
    syn_payload (payload travelled on the SYN), gap_free: true), excluded
    (capture, file or null, tshark_stream or null, src/dst, reason), probes
    (tcpflow's file names and contents for the tiny synthetic captures built
    by run_probes(): naming of IPv4, IPv6, IPv4-mapped IPv6, 802.1Q PCP,
    QinQ, 802.1ad, VLAN change, 4-tuple reuse, holes, missing tail, Ethernet
    padding on IPv4 and IPv6, SYN payload, IPv6 extension header).  Lists are
    sorted by capture then file name, so the output is deterministic.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from inet import checksum

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_OUT = os.path.join("captures", "tcpflow", "expected.json")
DEFAULT_GLOBS = ["captures/diff/*.pcap*", "captures/arkime/*.pcap", "captures/zeek/*.pcap*"]

FIELDS = [
    "frame.number", "frame.protocols", "eth.type",
    "vlan.priority", "vlan.dei", "vlan.id",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.len",
    "tcp.flags", "tcp.payload", "ip.fragment.count", "ipv6.fragment.count",
    "eth.padding", "eth.trailer", "vlan.trailer", "eth.fcs", "null.family",
]
PREFS = ["tcp.desegment_tcp_streams:FALSE"]

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
NAME_RE = re.compile(r"^(?P<base>.+\.\d{5}-.+\.\d{5}(?:--\d+)?)(?:c(?P<n>\d+))?$")

LINKTYPES = {0: "NULL", 1: "EN10MB", 101: "RAW", 113: "LINUX_SLL", 228: "IPV4",
             229: "IPV6", 274: "ETHERNET_MPACKET", 276: "LINUX_SLL2", 12: "RAW(12)", 14: "RAW(14)"}


# --------------------------------------------------------------------------
# capture metadata

def link_types(path):
    """Link types of a pcap or pcapng file (every IDB for pcapng)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return [struct.unpack("<I", data[20:24])[0] & 0x0FFFFFFF]
    if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return [struct.unpack(">I", data[20:24])[0] & 0x0FFFFFFF]
    if magic != b"\x0a\x0d\x0d\x0a":
        return []
    out, off, endian = [], 0, "<"
    while off + 12 <= len(data):
        btype = data[off:off + 4]
        if btype == b"\x0a\x0d\x0d\x0a":
            bom = data[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
        (blen,) = struct.unpack(endian + "I", data[off + 4:off + 8])
        (bt,) = struct.unpack(endian + "I", btype)
        if bt == 1:
            out.append(struct.unpack(endian + "H", data[off + 8:off + 10])[0])
        if blen < 12:
            break
        off += blen
    return out


def link_type_names(types):
    seen = []
    for t in types:
        name = LINKTYPES.get(t, str(t))
        if name not in seen:
            seen.append(name)
    return seen


# --------------------------------------------------------------------------
# tcpflow

def tcpflow_version():
    p = subprocess.run(["tcpflow", "-V"], capture_output=True, text=True)
    return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]


def run_tcpflow(rel, outdir):
    p = subprocess.run(["tcpflow", "-r", rel, "-o", outdir], cwd=ROOT,
                       capture_output=True, text=True, errors="replace")
    return p.returncode, p.stderr


def parse_report(outdir):
    """fileobjects of report.xml that name a file: {basename: attrs}."""
    rp = os.path.join(outdir, "report.xml")
    res = {}
    if not os.path.exists(rp):
        return res
    try:
        tree = ET.parse(rp)
    except ET.ParseError:
        return res
    for fo in tree.iter():
        if not fo.tag.endswith("fileobject"):
            continue
        fn = size = None
        attrs = {}
        for ch in fo:
            tag = ch.tag.split("}")[-1]
            if tag == "filename":
                fn = ch.text
            elif tag == "filesize":
                size = int(ch.text)
            elif tag == "tcpflow":
                attrs = dict(ch.attrib)
        if fn:
            attrs["filesize"] = size
            res[os.path.basename(fn)] = attrs
    return res


# --------------------------------------------------------------------------
# tshark

def tshark_env(tmp):
    env = dict(os.environ)
    cfg = os.path.join(tmp, "wireshark-config")
    os.makedirs(cfg, exist_ok=True)
    env["WIRESHARK_CONFIG_DIR"] = cfg
    return env


def tshark_version(env):
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True, env=env).stdout
    first = out.splitlines()[0].strip().rstrip(".") if out else ""
    prefix = "TShark (Wireshark) "
    return first[len(prefix):] if first.startswith(prefix) else first


def tshark_packets(path, env):
    cmd = ["tshark", "-r", path, "-n"]
    for p in PREFS:
        cmd += ["-o", p]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, errors="replace")
    pkts = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        rec = dict(zip(FIELDS, [c.strip() for c in cols]))
        protos = rec["frame.protocols"].split(":")
        idx = next((i for i, p in enumerate(protos) if p in ("ip", "ipv6")), None)
        if idx is None:
            continue
        version = 4 if protos[idx] == "ip" else 6
        j = idx + 1
        while version == 6 and j < len(protos) and protos[j].startswith("ipv6."):
            j += 1
        if j >= len(protos) or protos[j] != "tcp":
            continue
        if not rec["tcp.stream"] or not rec["tcp.seq_raw"]:
            continue
        src = rec["ip.src"] if version == 4 else rec["ipv6.src"]
        dst = rec["ip.dst"] if version == 4 else rec["ipv6.dst"]
        tci = None
        if rec["eth.type"].lower() == "0x8100" and rec["vlan.id"]:
            tci = (int(rec["vlan.priority"] or 0) << 13) | (int(rec["vlan.dei"] or 0) << 12) | int(rec["vlan.id"])
        payload = bytes.fromhex(rec["tcp.payload"].replace(":", "")) if rec["tcp.payload"] else b""
        pkts.append({
            "frame": int(rec["frame.number"]),
            "family": version,
            "src": src, "dst": dst,
            "sport": int(rec["tcp.srcport"]), "dport": int(rec["tcp.dstport"]),
            "stream": int(rec["tcp.stream"]),
            "seq": int(rec["tcp.seq_raw"]),
            "len": int(rec["tcp.len"] or 0),
            "flags": int(rec["tcp.flags"], 16) if rec["tcp.flags"] else 0,
            "payload": payload,
            "fragmented": bool(rec["ip.fragment.count"] or rec["ipv6.fragment.count"]),
            "ipv6_ext": version == 6 and j > idx + 1,
            "tci": tci,
            "padded": version == 4 and bool(rec["eth.padding"] or rec["eth.trailer"]
                                            or rec["vlan.trailer"] or rec["eth.fcs"]),
            "null_family": int(rec["null.family"]) if rec["null.family"] else None,
        })
    return pkts, proc.returncode, proc.stderr


# --------------------------------------------------------------------------
# naming

def ip_text(family, addr):
    """Address as tcpflow prints it (%03d octets for IPv4, inet_ntop for IPv6)."""
    if family == 4:
        return ".".join("%03d" % b for b in socket.inet_pton(socket.AF_INET, addr))
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, addr))


def canonical_ip(family, addr):
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    return socket.inet_ntop(fam, socket.inet_pton(fam, addr))


def tcpflow_base_name(family, src, sport, dst, dport, tci):
    name = "%s.%05d-%s.%05d" % (ip_text(family, src), sport, ip_text(family, dst), dport)
    if tci is not None:
        name += "--%d" % tci
    return name


# --------------------------------------------------------------------------
# reassembly of one direction

def reassemble(pkts):
    """Independent reassembly of one direction's packets (in capture order).

    Returns dict with: data (bytes, zero-filled holes) or None, problems
    (list of reasons; empty = gap-free and unambiguous), role, first_data_frame.
    """
    problems = []
    syns = [p for p in pkts if p["flags"] & SYN]
    role = None
    if syns:
        role = "server" if syns[0]["flags"] & ACK else "client"
    data_pkts = [p for p in pkts if p["len"] > 0]
    first_data = data_pkts[0]["frame"] if data_pkts else None
    if not syns:
        problems.append("no SYN in this direction: stream start (ISN) unknown")
        return {"data": None, "problems": problems, "role": role, "first_data_frame": first_data}
    isns = sorted({p["seq"] for p in syns})
    if len(isns) > 1:
        problems.append("SYNs with different sequence numbers %s" % isns)
        return {"data": None, "problems": problems, "role": role, "first_data_frame": first_data}
    isn = isns[0]
    segs = []
    fin_end = None
    truncated = []
    for p in pkts:
        start_seq = p["seq"] + (1 if p["flags"] & SYN else 0)
        rel = (start_seq - isn - 1) & 0xFFFFFFFF
        if p["flags"] & FIN:
            end = (rel + p["len"]) & 0xFFFFFFFF
            if end < 0x80000000:
                fin_end = end if fin_end is None else min(fin_end, end)
        if p["len"] == 0:
            continue
        if rel >= 0x80000000:
            problems.append("frame %d carries data before ISN+1" % p["frame"])
            continue
        if len(p["payload"]) != p["len"]:
            truncated.append(p["frame"])
            continue
        segs.append((rel, p["payload"], p["frame"], bool(p["flags"] & SYN)))
    if truncated:
        problems.append("%d segment(s) with payload not fully captured (snap length), first in frame %d"
                        % (len(truncated), truncated[0]))
    if not segs:
        return {"data": None, "problems": problems, "role": role, "first_data_frame": first_data}
    end = max(r + len(b) for r, b, _, _ in segs)
    first = bytearray(end)
    last = bytearray(end)
    have = bytearray(end)
    conflict = []
    for rel, b, fr, on_syn in segs:
        for i, byte in enumerate(b):
            k = rel + i
            if have[k]:
                if first[k] != byte and fr not in conflict:
                    conflict.append(fr)
            else:
                first[k] = byte
                have[k] = 1
            last[k] = byte
    if conflict:
        problems.append("overlapping retransmission with different bytes (frames %s)" % conflict[:5])
    syn_payload = any(on_syn for _, _, _, on_syn in segs)
    holes = []
    k = 0
    while k < end:
        if not have[k]:
            s = k
            while k < end and not have[k]:
                k += 1
            holes.append((s, k))
        else:
            k += 1
    if holes:
        problems.append("sequence gap(s) at stream offsets %s" % ", ".join("%d-%d" % h for h in holes[:5]))
    if fin_end is not None and fin_end > end:
        problems.append("bytes %d-%d before the FIN never captured" % (end, fin_end))
    return {"data": bytes(last), "data_first": bytes(first), "problems": problems, "role": role,
            "first_data_frame": first_data, "holes": holes, "syn_payload": syn_payload}


# --------------------------------------------------------------------------

def analyse_capture(rel, tmp, env):
    path = os.path.join(ROOT, rel)
    outdir = tempfile.mkdtemp(prefix="tcpflow-", dir=tmp)
    rc, err = run_tcpflow(rel, outdir)
    err_lines = [l for l in err.splitlines() if l.strip() and not l.startswith("reportfilename:")]
    report = parse_report(outdir)
    files = sorted(f for f in os.listdir(outdir) if f != "report.xml")
    pkts, trc, terr = tshark_packets(path, env)

    cap = {
        "capture": rel,
        "link_types": link_type_names(link_types(path)),
        "tcp_payload": any(p["len"] > 0 for p in pkts),
        "tcpflow_read": rc == 0,
        "tcpflow_exit_status": rc,
        "tcpflow_files": len(files),
    }
    if rc != 0:
        cap["tcpflow_error"] = "; ".join(err_lines)[:300]
    if trc != 0:
        cap["tshark_exit_status"] = trc
    streams, excluded, notes = [], [], []

    # directions (tshark stream + sender)
    dirs = {}
    for p in pkts:
        dirs.setdefault((p["stream"], p["family"], p["src"], p["sport"], p["dst"], p["dport"]), []).append(p)
    by_base, nodata_by_base = {}, {}
    for key, dp in dirs.items():
        stream, fam, src, sport, dst, dport = key
        base = tcpflow_base_name(fam, src, sport, dst, dport, dp[0]["tci"])
        nulls = sorted({p["null_family"] for p in dp if p["null_family"] is not None})
        info = {"key": key, "base": base, "tci": dp[0]["tci"],
                "fragmented": any(p["fragmented"] for p in dp),
                "ipv6_ext": any(p["ipv6_ext"] for p in dp),
                "padded": any(p["padded"] for p in dp),
                "bad_null_family": [f for f in nulls if f not in (2, 10)]}
        if not any(p["len"] > 0 for p in dp):
            nodata_by_base.setdefault(base, []).append(info)
            continue
        info.update(reassemble(dp))
        by_base.setdefault(base, []).append(info)
    for lst in by_base.values():
        lst.sort(key=lambda d: d["first_data_frame"])

    # tcpflow files, grouped by name without the cN suffix
    files_by_base = {}
    for f in files:
        m = NAME_RE.match(f)
        if not m:
            excluded.append({"capture": rel, "file": f, "tshark_stream": None,
                             "reason": "file name not in tcpflow's default form"})
            continue
        files_by_base.setdefault(m.group("base"), []).append((int(m.group("n") or 0), f))
    for lst in files_by_base.values():
        lst.sort()

    def ep(family, addr, port):
        return {"ip": canonical_ip(family, addr), "port": port}

    def excl(f, d, reason):
        e = {"capture": rel, "file": f, "tshark_stream": d["key"][0] if d else None, "reason": reason}
        if d:
            _, fam, src, sport, dst, dport = d["key"]
            e["src"] = ep(fam, src, sport)
            e["dst"] = ep(fam, dst, dport)
        excluded.append(e)

    PAD = ("IPv4 segments with Ethernet padding/trailer: tcpflow 1.6.1 takes the TCP payload length from "
           "the captured bytes instead of the IP total length and writes the padding as data "
           "(simsong/tcpflow#249, #261)")

    for base in sorted(set(by_base) | set(files_by_base)):
        dlist = by_base.get(base, [])
        flist = files_by_base.get(base, [])
        if not dlist:
            nd = nodata_by_base.get(base, [])
            for _, f in flist:
                if nd and any(d["padded"] for d in nd):
                    excl(f, nd[0], "direction has no TCP payload; spurious file from " + PAD)
                elif nd:
                    excl(f, nd[0], "direction has no TCP payload in tshark; tcpflow wrote a file anyway")
                else:
                    excl(f, None, "no tshark TCP direction has this name "
                                  "(tcpflow decoded a packet that tshark does not decode as this flow)")
            continue
        for i, d in enumerate(dlist):
            if rc != 0:
                excl(None, d, "tcpflow cannot read this capture")
                continue
            if i >= len(flist):
                why = "tcpflow wrote no file for this direction"
                if d["bad_null_family"]:
                    why += (" (DLT_NULL address family %s; tcpflow 1.6.1 only accepts 2 (AF_INET) and "
                            "10 (Linux AF_INET6), so BSD/macOS IPv6 loopback is dropped)" % d["bad_null_family"])
                elif d["fragmented"]:
                    why += " (segments are IP fragments; tcpflow does not reassemble fragments)"
                elif d["ipv6_ext"]:
                    why += " (IPv6 extension headers; tcpflow 1.6.1 only parses TCP directly after the IPv6 header)"
                elif any("not fully captured" in x for x in d["problems"]):
                    why += " (payload cut off by the capture's snap length)"
                if d["problems"]:
                    why += "; also " + "; ".join(d["problems"])
                excl(None, d, why)
                continue
            n, f = flist[i]
            with open(os.path.join(outdir, f), "rb") as fh:
                content = fh.read()
            if d["problems"]:
                reason = "; ".join(d["problems"])
                if d["data"] is not None and d.get("holes") and content == d["data"]:
                    reason += " [tcpflow file equals the reassembly with holes zero-filled]"
                elif d["data"] is not None and d.get("holes") and content == d["data"][:len(content)]:
                    reason += " [tcpflow file is a prefix of the zero-filled reassembly]"
                if d["padded"] and content != d["data"]:
                    reason += "; " + PAD
                excl(f, d, reason)
                continue
            if content != d["data"]:
                why = "gap-free, but the tcpflow file (%d bytes) differs from the reassembled stream (%d bytes)" % (
                    len(content), len(d["data"]))
                if d["fragmented"]:
                    why += "; segments are IP fragments, tcpflow keeps only the first fragment's bytes"
                elif d["ipv6_ext"]:
                    why += "; IPv6 extension headers, tcpflow skips those packets"
                elif d["padded"]:
                    if content[:len(d["data"])] == d["data"] and not content[len(d["data"]):].strip(b"\0"):
                        why += " (the extra bytes are zeros at the end)"
                    why += "; " + PAD
                excl(f, d, why)
                continue
            stream, fam, src, sport, dst, dport = d["key"]
            rep = report.get(f, {})
            if rep and rep.get("filesize") is not None and rep["filesize"] != len(content):
                notes.append("%s: report.xml filesize %s != %d" % (f, rep["filesize"], len(content)))
            streams.append({
                "capture": rel,
                "file": f,
                "client_or_src": ep(fam, src, sport),
                "dst": ep(fam, dst, dport),
                "role": d["role"],
                "family": fam,
                "vlan": d["tci"],
                "connection_index": n,
                "tshark_stream": stream,
                "length": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "syn_payload": d["syn_payload"],
                "gap_free": True,
            })
        for n, f in flist[len(dlist):]:
            why = ("more tcpflow files with this name than tshark directions with payload "
                   "(tcpflow started a new flow object, hence the c%d suffix)" % n)
            if any(d["padded"] for d in dlist):
                why += "; " + PAD
            excl(f, None, why)
    return cap, streams, excluded, notes


# --------------------------------------------------------------------------
# naming / behaviour probes on tiny synthetic captures

def _frame(src, dst, sport, dport, seq, ack, flags, payload=b"", tags=(), pad=0, hbh=False):
    """One Ethernet frame; tags = [(TPID, TCI), ...] outermost first."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0) + payload
    if ":" in src:
        nxt, body = 6, tcp
        if hbh:  # hop-by-hop options header (8 bytes, PadN) in front of TCP
            nxt, body = 0, bytes([6, 0, 1, 4, 0, 0, 0, 0]) + tcp
        ip = (struct.pack("!IHBB", 6 << 28, len(body), nxt, 64) + socket.inet_pton(socket.AF_INET6, src)
              + socket.inet_pton(socket.AF_INET6, dst) + body)
        et = 0x86DD
    else:
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
                        socket.inet_aton(src), socket.inet_aton(dst))
        ip = h[:10] + struct.pack("!H", checksum(h)) + h[12:] + tcp
        et = 0x0800
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb"
    for tpid, tci in tags:
        eth += struct.pack("!HH", tpid, tci)
    return eth + struct.pack("!H", et) + ip + b"\0" * pad


def _conn(c, s, cisn, sisn, cdata, sdata, tags=(), ctags=None, cp=1234, sp=80, fin=True):
    """SYN, SYN/ACK, ACK, client data, server data, FINs (client SYN may use other tags)."""
    f = [_frame(c, s, cp, sp, cisn, 0, 0x02, tags=ctags if ctags is not None else tags),
         _frame(s, c, sp, cp, sisn, cisn + 1, 0x12, tags=tags),
         _frame(c, s, cp, sp, cisn + 1, sisn + 1, 0x10, tags=tags)]
    if cdata:
        f.append(_frame(c, s, cp, sp, cisn + 1, sisn + 1, 0x18, cdata, tags=tags))
    if sdata:
        f.append(_frame(s, c, sp, cp, sisn + 1, cisn + 1 + len(cdata), 0x18, sdata, tags=tags))
    if fin:
        f.append(_frame(c, s, cp, sp, cisn + 1 + len(cdata), sisn + 1 + len(sdata), 0x11, tags=tags))
        f.append(_frame(s, c, sp, cp, sisn + 1 + len(sdata), cisn + 2 + len(cdata), 0x11, tags=tags))
        f.append(_frame(c, s, cp, sp, cisn + 2 + len(cdata), sisn + 2 + len(sdata), 0x10, tags=tags))
    return f


C4, S4 = "192.168.1.2", "10.0.0.1"

PROBES = [
    ("ipv4", "IPv4 192.168.1.2:1234 <-> 10.0.0.1:80",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"world")),
    ("ipv6", "IPv6 2001:db8:0:0:1::1 <-> 2001:db8::1:0:0:2 (two equal zero runs)",
     lambda: _conn("2001:db8:0:0:1::1", "2001:db8::1:0:0:2", 1000, 5000, b"hello", b"world")),
    ("ipv6-v4mapped", "IPv6 ::ffff:192.0.2.7 <-> fe80::1",
     lambda: _conn("::ffff:192.0.2.7", "fe80::1", 1000, 5000, b"hello", b"world")),
    ("vlan-pcp", "802.1Q tag PCP=3 VID=100 (TCI 0x6064)",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"world", tags=[(0x8100, (3 << 13) | 100)])),
    ("qinq-8100", "two 802.1Q tags, outer VID 201, inner PCP=4 VID 200",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"world", tags=[(0x8100, 201), (0x8100, (4 << 13) | 200)])),
    ("dot1ad-outer", "802.1ad outer tag (TPID 0x88a8, VID 300) + 802.1Q inner VID 100",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"world", tags=[(0x88A8, 300), (0x8100, 100)])),
    ("vlan-change", "client SYN on VLAN 10, every later packet on VLAN 20",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"world", tags=[(0x8100, 20)], ctags=[(0x8100, 10)])),
    ("reuse-3", "same 4-tuple three times (FIN-closed); first server sends nothing",
     lambda: _conn(C4, S4, 1000, 5000, b"first", b"") + _conn(C4, S4, 900000000, 7000, b"second", b"reply2")
     + _conn(C4, S4, 1900000000, 9000, b"third", b"reply3")),
    ("reuse-vlan", "same 4-tuple twice, on VLAN 10 then VLAN 20",
     lambda: _conn(C4, S4, 1000, 5000, b"first", b"r1", tags=[(0x8100, 10)])
     + _conn(C4, S4, 900000000, 7000, b"second", b"r2", tags=[(0x8100, 20)])),
    ("reuse-same-vlan", "same 4-tuple twice on VLAN 10 (FIN-closed)",
     lambda: _conn(C4, S4, 1000, 5000, b"first", b"r1", tags=[(0x8100, 10)])
     + _conn(C4, S4, 900000000, 7000, b"second", b"r2", tags=[(0x8100, 10)])),
    ("reuse-close-isn", "same 4-tuple twice, FIN-closed, new ISNs only 1000 apart",
     lambda: _conn(C4, S4, 1000, 5000, b"first", b"r1") + _conn(C4, S4, 2000, 6000, b"second", b"r2")),
    ("reuse-no-fin", "same 4-tuple twice, first never closed; client ISN jumps 900000000, server ISN 2000",
     lambda: _conn(C4, S4, 1000, 5000, b"first", b"r1", fin=False)
     + _conn(C4, S4, 900000000, 7000, b"second", b"r2")),
    ("hole", "client segments at offsets 0 and 8 (bytes 4-7 never sent), then a FIN at offset 12",
     lambda: _conn(C4, S4, 1000, 5000, b"", b"", fin=False)
     + [_frame(C4, S4, 1234, 80, 1001, 5001, 0x18, b"AAAA"), _frame(C4, S4, 1234, 80, 1009, 5001, 0x18, b"CCCC"),
        _frame(C4, S4, 1234, 80, 1013, 5001, 0x11)]),
    ("missing-tail", "client sends 4 bytes, the next 4 are lost, FIN at offset 8",
     lambda: _conn(C4, S4, 1000, 5000, b"", b"", fin=False)
     + [_frame(C4, S4, 1234, 80, 1001, 5001, 0x18, b"AAAA"), _frame(C4, S4, 1234, 80, 1009, 5001, 0x11)]),
    ("padding", "IPv4 pure ACK / FIN frames padded with 6 zero bytes (60-byte Ethernet minimum)",
     lambda: _conn(C4, S4, 1000, 5000, b"hello", b"", fin=False)
     + [_frame(S4, C4, 80, 1234, 5001, 1006, 0x10, pad=6), _frame(S4, C4, 80, 1234, 5001, 1006, 0x11, pad=6)]),
    ("padding-ipv6", "IPv6 pure ACK with 6 trailing bytes after the IPv6 payload",
     lambda: _conn("2001:db8::1", "2001:db8::2", 1000, 5000, b"hello", b"", fin=False)
     + [_frame("2001:db8::2", "2001:db8::1", 80, 1234, 5001, 1006, 0x10, pad=6)]),
    ("syn-data", "payload on the client SYN (TCP Fast Open), never retransmitted",
     lambda: [_frame(C4, S4, 1234, 80, 1000, 0, 0x02, b"early"), _frame(S4, C4, 80, 1234, 5000, 1006, 0x12),
              _frame(C4, S4, 1234, 80, 1006, 5001, 0x18, b"late")]),
    ("ipv6-hbh", "IPv6 with a hop-by-hop header before TCP on the client's packets",
     lambda: [_frame("2001:db8::1", "2001:db8::2", 1234, 80, 1000, 0, 0x02, hbh=True),
              _frame("2001:db8::2", "2001:db8::1", 80, 1234, 5000, 1001, 0x12),
              _frame("2001:db8::1", "2001:db8::2", 1234, 80, 1001, 5001, 0x18, b"hello", hbh=True),
              _frame("2001:db8::2", "2001:db8::1", 80, 1234, 5001, 1006, 0x18, b"world")]),
]


def run_probes(tmp):
    """Run tcpflow on each synthetic capture; return [{probe, description, files}]."""
    out = []
    for name, desc, make in PROBES:
        d = tempfile.mkdtemp(prefix="probe-", dir=tmp)
        path = os.path.join(d, name + ".pcap")
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for i, fr in enumerate(make()):
                f.write(struct.pack("<IIII", 1000 + i, 0, len(fr), len(fr)) + fr)
        od = os.path.join(d, "out")
        os.mkdir(od)
        subprocess.run(["tcpflow", "-r", path, "-o", od], capture_output=True)
        files = []
        for fn in sorted(os.listdir(od)):
            if fn == "report.xml":
                continue
            with open(os.path.join(od, fn), "rb") as fh:
                b = fh.read()
            e = {"file": fn, "length": len(b)}
            if len(b) <= 32:
                e["hex"] = b.hex()
            else:
                e["sha256"] = hashlib.sha256(b).hexdigest()
                e["nonzero_prefix_hex"] = b.rstrip(b"\0")[:16].hex()
            files.append(e)
        out.append({"probe": name, "description": desc, "files": files})
    return out


def default_captures():
    out = []
    for g in DEFAULT_GLOBS:
        out += sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, g)))
    return out


def build(captures):
    with tempfile.TemporaryDirectory(prefix="tcpflow-streams-") as tmp:
        env = tshark_env(tmp)
        result = {
            "tcpflow_version": tcpflow_version(),
            "tshark_version": tshark_version(env),
            "command": "tcpflow -r CAPTURE -o EMPTY_OUTDIR",
            "captures": [], "streams": [], "excluded": [],
            "probes": run_probes(tmp),
        }
        notes = []
        for rel in captures:
            cap, st, ex, nt = analyse_capture(rel, tmp, env)
            result["captures"].append(cap)
            result["streams"] += st
            result["excluded"] += ex
            notes += nt
    key = lambda e: (e["capture"], e.get("file") or "", e.get("tshark_stream") if e.get("tshark_stream") is not None else -1,
                     json.dumps(e.get("src")))
    result["streams"].sort(key=key)
    result["excluded"].sort(key=key)
    return result, notes


def report_text(result, notes):
    lines = []
    caps = result["captures"]
    lines.append("tcpflow: %s   tshark: %s" % (result["tcpflow_version"], result["tshark_version"]))
    lines.append("captures: %d, with TCP payload: %d, unreadable by tcpflow: %d" % (
        len(caps), sum(c["tcp_payload"] for c in caps), sum(not c["tcpflow_read"] for c in caps)))
    lines.append("gap-free fixture streams: %d, excluded: %d" % (len(result["streams"]), len(result["excluded"])))
    lines.append("")
    lines.append("| capture | link types | TCP payload | tcpflow read | files | fixtures |")
    lines.append("|---|---|---|---|---|---|")
    for c in caps:
        nfix = sum(1 for s in result["streams"] if s["capture"] == c["capture"])
        lines.append("| %s | %s | %s | %s | %d | %d |" % (
            c["capture"], ",".join(c["link_types"]), "yes" if c["tcp_payload"] else "no",
            "yes" if c["tcpflow_read"] else "NO: " + c.get("tcpflow_error", ""), c["tcpflow_files"], nfix))
    lines.append("")
    lines.append("| capture | tcpflow file | tshark stream | src -> dst | reason |")
    lines.append("|---|---|---|---|---|")
    for e in result["excluded"]:
        sd = ""
        if e.get("src"):
            sd = "%s:%d -> %s:%d" % (e["src"]["ip"], e["src"]["port"], e["dst"]["ip"], e["dst"]["port"])
        lines.append("| %s | %s | %s | %s | %s |" % (
            e["capture"], ("`%s`" % e["file"]) if e.get("file") else "-",
            "" if e.get("tshark_stream") is None else e["tshark_stream"], sd, e["reason"].replace("|", "/")))
    for n in notes:
        lines.append("note: " + n)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUT, help="JSON file (relative to the repository root)")
    ap.add_argument("--check", action="store_true", help="compare with the existing JSON instead of writing it")
    ap.add_argument("--report", action="store_true", help="print a summary and the exclusion list")
    ap.add_argument("captures", nargs="*", help="captures, relative to the repository root")
    args = ap.parse_args()
    for tool in ("tcpflow", "tshark"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("%s not found on PATH" % tool, file=sys.stderr)
            return 2
    captures = [os.path.relpath(os.path.abspath(c), ROOT) for c in args.captures] or default_captures()
    result, notes = build(captures)
    out = os.path.join(ROOT, args.output)
    text = json.dumps(result, indent=1, sort_keys=False) + "\n"
    if args.report:
        print(report_text(result, notes))
    if args.check:
        with open(out) as f:
            old = json.load(f)
        new = json.loads(text)
        for k in ("tcpflow_version", "tshark_version"):
            old.pop(k, None)
            new.pop(k, None)
        if old != new:
            olds = {(s["capture"], s["file"]): s for s in old.get("streams", [])}
            news = {(s["capture"], s["file"]): s for s in new.get("streams", [])}
            for k in sorted(set(olds) | set(news)):
                if olds.get(k) != news.get(k):
                    print("differs: %s %s" % k, file=sys.stderr)
            print("%s does not match a fresh run" % args.output, file=sys.stderr)
            return 1
        print("%s reproduced: %d streams" % (args.output, len(new["streams"])))
        return 0
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    if not args.report:
        print("wrote %s: %d gap-free streams, %d excluded" % (args.output, len(result["streams"]), len(result["excluded"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
