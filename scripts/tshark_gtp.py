#!/usr/bin/env python3
"""What tshark sees inside GTP, for Siphon's tunnel tests (issue 16).

Usage: scripts/tshark_gtp.py CAPTURE  -> JSON on standard output:

  {"flows": [...], "tunnels": [...], "gtpc": [...], "gpdus": N}

tshark runs twice with IP defragmentation on and TCP desegmentation off, and WIRESHARK_CONFIG_DIR pointing at an
empty directory (no personal preferences or decode-as can change the result):
1. every frame's number and frame.len (to credit a datagram rebuilt from fragments with each fragment's bytes);
2. every GTP frame's fields with all occurrences (-E occurrence=a).

Counting rules:
- A G-PDU is a frame whose frame.protocols has "gtp" right after a "udp" whose source or destination port is
  2152, followed by an "ip" or "ipv6" entry (the inner packet). Echo, error indication and GTP on other ports
  (GTPv0 and GTP' on 3386) are not G-PDUs.
- The inner transport is the first tcp/udp/icmp/icmpv6 entry after the inner network entry (IPv6 extension
  entries "ipv6.*" skipped). Its addresses are the occurrence of ip.src/ip.dst (or ipv6.*) whose index is the
  number of entries of that protocol before it in frame.protocols; ports likewise.
- Flows are bidirectional: endpoint a is the smaller (version, packed address, port) pair. ICMP flows are keyed by
  addresses only (port 0 both sides). Packets and bytes are counted per direction; a frame that completed an outer
  datagram counts its fragment frames (ip.fragment), each with its own frame.len.
- Tunnels are keyed by the unordered pair of outer addresses: packets each way (from the smaller address "a").
- gtpc: one entry per GTPv1-C/GTPv2-C frame on port 2123: frame, version, message type, teid, sequence, IMSI,
  MSISDN, IMEI(SV), end-user addresses, data TEIDs.
"""
import ipaddress, json, os, subprocess, sys, tempfile

PREFS = ["ip.defragment:TRUE", "ipv6.defragment:TRUE", "tcp.desegment_tcp_streams:FALSE"]
FIELDS = ["frame.number", "frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "udp.srcport", "udp.dstport", "ip.fragment", "ipv6.fragment", "gtp.teid", "gtp.message", "gtpv2.message_type",
          "gtpv2.teid", "gtp.seq_number", "gtpv2.seq", "e212.imsi", "e164.msisdn", "gtp.ext_imeisv",
          "gtpv2.mei", "gtp.user_ipv4", "gtp.user_ipv6", "gtpv2.pdn_addr_and_prefix.ipv4", "gtpv2.pdn_addr_and_prefix.ipv6",
          "gtp.teid_data", "gtpv2.f_teid_gre_key"]


def tshark(path, args):
    with tempfile.TemporaryDirectory() as conf:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=conf)
        cmd = ["tshark", "-r", path, "-n"]
        for p in PREFS:
            cmd += ["-o", p]
        out = subprocess.run(cmd + args, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"tshark failed on {path}: {out.stderr.strip()}")
        return [l for l in out.stdout.split("\n") if l]


def key(address, port):
    a = ipaddress.ip_address(address)
    return (a.version, a.packed, port)


def main():
    path = sys.argv[1]
    lengths = {}
    for line in tshark(path, ["-T", "fields", "-e", "frame.number", "-e", "frame.len"]):
        n, length = line.split("\t")
        lengths[int(n)] = int(length)
    args = ["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        args += ["-e", f]
    flows, tunnels, gtpc, gpdus = {}, {}, [], 0
    for line in tshark(path, args + ["-Y", "gtp || gtpv2"]):
        v = dict(zip(FIELDS, (line.split("\t") + [""] * len(FIELDS))[:len(FIELDS)]))
        lst = lambda f: [x for x in v[f].split(",") if x != ""]
        protos = v["frame.protocols"].split(":")
        frame = int(v["frame.number"])
        if "gtp" not in protos and "gtpv2" not in protos:
            continue
        g = protos.index("gtp") if "gtp" in protos else protos.index("gtpv2")
        udp_before = protos[:g].count("udp") - 1
        sports, dports = lst("udp.srcport"), lst("udp.dstport")
        outer_ports = (int(sports[udp_before]), int(dports[udp_before]))
        if 2123 in outer_ports and ("gtpv2" in protos or v["gtp.message"]):
            entry = {"frame": frame, "version": 2 if "gtpv2" in protos else 1}
            entry["message_type"] = int((lst("gtpv2.message_type") or lst("gtp.message"))[0], 0)
            for name, fields in [("imsi", ["e212.imsi"]), ("msisdn", ["e164.msisdn"]),
                                 ("imei", ["gtp.ext_imeisv", "gtpv2.mei"])]:
                for f in fields:
                    if lst(f):
                        entry[name] = lst(f)[0]
                        break
            addresses = lst("gtp.user_ipv4") + lst("gtp.user_ipv6") + lst("gtpv2.pdn_addr_and_prefix.ipv4") + lst("gtpv2.pdn_addr_and_prefix.ipv6")
            if addresses:
                entry["end_user_addresses"] = addresses
            teids = [int(x, 0) for x in lst("gtp.teid_data") + lst("gtpv2.f_teid_gre_key")]
            if teids:
                entry["teids"] = teids
            seq = lst("gtp.seq_number") or lst("gtpv2.seq")
            if seq:
                entry["sequence"] = int(seq[0], 0)
            gtpc.append(entry)
            continue
        if 2152 not in outer_ports or g + 1 >= len(protos) or protos[g + 1] not in ("ip", "ipv6"):
            continue
        gpdus += 1
        inner = g + 1
        t = inner + 1
        while t < len(protos) and protos[t].startswith("ipv6."):
            t += 1
        transport = protos[t] if t < len(protos) else ""
        fam = protos[inner]
        idx = protos[:inner].count(fam)
        src = lst(fam + ".src")[idx]
        dst = lst(fam + ".dst")[idx]
        outer_fam = protos[g - 2] if protos[g - 1] == "udp" else "ip"
        osrc, odst = lst(outer_fam + ".src")[0], lst(outer_fam + ".dst")[0]
        frames = [int(x) for x in lst("ip.fragment") + lst("ipv6.fragment")] or [frame]
        # Fragments listed are the outer datagram's when the outer header was fragmented.
        packets, size = len(frames), sum(lengths[f] for f in frames)
        if transport in ("tcp", "udp"):
            i = protos[:t].count(transport)
            sp, dp = int(lst(transport + ".srcport")[i]), int(lst(transport + ".dstport")[i])
            proto = transport.upper()
        elif transport in ("icmp", "icmpv6"):
            sp = dp = 0
            proto = "ICMP" if transport == "icmp" else "IPv6-ICMP"
        else:
            continue
        a, b = key(src, sp), key(dst, dp)
        forward = a <= b
        k = (proto,) + ((src, sp, dst, dp) if forward else (dst, dp, src, sp))
        f = flows.setdefault(k, [0, 0, 0, 0])
        f[0 if forward else 2] += packets
        f[1 if forward else 3] += size
        ta, tb = sorted([osrc, odst], key=lambda x: key(x, 0))
        tk = (ta, tb)
        tu = tunnels.setdefault(tk, [0, 0])
        tu[0 if osrc == ta else 1] += packets
    out = {
        "capture": os.path.basename(path),
        "gpdus": gpdus,
        "flows": [{"proto": k[0], "a_ip": k[1], "a_port": k[2], "b_ip": k[3], "b_port": k[4],
                   "a_to_b_packets": f[0], "a_to_b_bytes": f[1], "b_to_a_packets": f[2], "b_to_a_bytes": f[3]}
                  for k, f in sorted(flows.items())],
        "tunnels": [{"a_ip": k[0], "b_ip": k[1], "a_to_b_packets": t[0], "b_to_a_packets": t[1]} for k, t in sorted(tunnels.items())],
        "gtpc": gtpc,
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
