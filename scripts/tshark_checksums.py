#!/usr/bin/env python3
"""Checksum fixtures from tshark for Siphon's checksum validation.

Usage: scripts/tshark_checksums.py [--check] [-o FILE] CAPTURE...
Writes captures/diff/expected-checksums.json (or FILE): per capture, how many outermost IPv4 headers, TCP segments,
UDP datagrams and ICMP/ICMPv6 messages tshark 4.0 finds good and bad, from
   tshark -r F -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -T fields
          -e frame.protocols -e ip.checksum -e ip.checksum.status -e tcp.checksum.status -e udp.checksum.status
          -e icmp.checksum.status -e icmpv6.checksum.status   (tshark always verifies ICMP checksums)
(status 0 = bad, 1 = good, 2 = not verified). Only the outermost IP layer and the transport right above it count:
a tunnel's or an ICMP error's inner headers are not what Siphon judges. A segment whose IPv4 header checksum is bad (and
not zero, which an offloading sender leaves) is left out of the TCP/UDP/ICMP counts: Siphon drops the whole packet;
so is one whose IPv4 total length exceeds its frame (tshark's expert note), which Siphon does not judge.
--check regenerates into memory and exits 1 when the committed file differs.
"""
import json, subprocess, sys

OUT = "captures/diff/expected-checksums.json"
NETWORK = {"ip", "ipv6"}
TRANSPORT = {"tcp", "udp", "icmp", "icmpv6", "igmp", "gre", "esp", "ah", "sctp", "data", "ipv6", "ip"}


def counts(path):
    cmd = ["tshark", "-r", path, "-n", "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
           "-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=\t",
           "-e", "frame.protocols", "-e", "ip.checksum", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status",
           "-e", "icmp.checksum.status", "-e", "icmpv6.checksum.status", "-e", "_ws.expert.message"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    c = {layer: {"good": 0, "bad": 0} for layer in ("ipv4", "tcp", "udp", "icmp")}
    for line in out.splitlines():
        protocols, ip_field, ip, tcp, udp, icmp, icmpv6, expert = (line.split("\t") + [""] * 8)[:8]
        layers = protocols.split(":")
        outer = next((i for i, p in enumerate(layers) if p in NETWORK), None)
        if outer is None:
            continue
        first = lambda v: v.split(",")[0]
        ip_bad = False
        if layers[outer] == "ip" and first(ip) in ("0", "1"):
            c["ipv4"]["bad" if first(ip) == "0" else "good"] += 1
            # A zero field is what a sender's offload leaves: Siphon keeps those packets.
            ip_bad = first(ip) == "0" and int(first(ip_field), 16) != 0
        # A datagram its frame cuts short (not by the snapshot length: the IPv4 total length lies) is summed by tshark
        # over what is there; Siphon does not judge a message it does not have whole.
        if ip_bad or "IPv4 total length exceeds packet length" in expert:
            continue
        # The transport right above the outermost IP (IPv6 extension headers show as ipv6.* names).
        above = next((p for p in layers[outer + 1:] if not p.startswith("ipv6.")), None)
        status = {"tcp": tcp, "udp": udp, "icmp": icmp, "icmpv6": icmpv6}.get(above)
        if status is not None and first(status) in ("0", "1"):
            c["icmp" if above == "icmpv6" else above]["bad" if first(status) == "0" else "good"] += 1
    return c


def main(argv):
    check = "--check" in argv
    argv = [a for a in argv if a != "--check"]
    out = OUT
    if "-o" in argv:
        i = argv.index("-o")
        out = argv[i + 1]
        del argv[i:i + 2]
    result = {"tshark_version": subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}
    for path in sorted(argv):
        result[path] = counts(path)
    if check:
        committed = json.load(open(out))
        committed.pop("tshark_version", None)
        result.pop("tshark_version", None)
        if committed != result:
            print(f"{out} differs from a fresh tshark run", file=sys.stderr)
            return 1
        print(f"checksum fixtures: {len(result)} captures reproduced by the installed tshark")
        return 0
    json.dump(result, open(out, "w"), indent=1, sort_keys=True)
    open(out, "a").write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
