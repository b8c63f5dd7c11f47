#!/usr/bin/env python3
"""Community ID v1 flow hash -- small stdlib-only reference for Siphon tests.

Written from the Community ID specification
(https://github.com/corelight/community-id-spec, README "Pseudo code" and
"Technical details"), not copied from any implementation.

Algorithm (version 1)
---------------------
Hash input, all integers big-endian (network byte order):

    seed      uint16   (default 0)
    addr A    4 bytes (IPv4) or 16 bytes (IPv6)
    addr B    same family as addr A
    proto     uint8    IP protocol number (6 TCP, 17 UDP, 132 SCTP, 1 ICMP, 58 ICMPv6, ...)
    pad       uint8    always 0
    port A    uint16   only for TCP, UDP, SCTP, ICMP, ICMPv6
    port B    uint16   (other protocols hash no ports at all)

Endpoint ordering: the (addr, port) pair that is numerically smaller comes
first.  Addresses are compared as big-endian byte strings; if the addresses
are equal the ports decide.  So A->B and B->A give the same ID.

Output: "1:" + base64(SHA-1 digest) (standard alphabet with padding), e.g.
"1:wCb3OG7yAFWelaUydu0D+125CLM=".

ICMP and ICMPv6 ("port" mapping)
--------------------------------
For ICMP/ICMPv6 the spec reuses Zeek's mapping: the "source port" is the
message type of the packet.  If the type has a request/response counterpart,
the "destination port" is that counterpart type and the tuple is treated as
bidirectional (ordered like TCP/UDP, so the request and its reply hash to the
same ID).  Otherwise the "destination port" is the ICMP code and the tuple is
one-way: it is hashed exactly as given, with NO endpoint reordering.

ICMPv4 (protocol 1) counterpart table:

    type                          <-> counterpart
    8   Echo Request              <-> 0   Echo Reply
    13  Timestamp Request         <-> 14  Timestamp Reply
    15  Information Request       <-> 16  Information Reply
    10  Router Solicitation       <-> 9   Router Advertisement
    17  Address Mask Request      <-> 18  Address Mask Reply

    (both directions of each pair: 0->8, 8->0, 9->10, 10->9, 13->14, 14->13,
    15->16, 16->15, 17->18, 18->17)

ICMPv6 (protocol 58) counterpart table:

    128 Echo Request                       <-> 129 Echo Reply
    130 Multicast Listener Query           <-> 131 Multicast Listener Report (MLDv1)
    133 Router Solicitation                <-> 134 Router Advertisement
    135 Neighbor Solicitation              <-> 136 Neighbor Advertisement
    139 Node Information (WRU) Query       <-> 140 Node Information (WRU) Reply
    144 Home Agent Address Discovery Req.  <-> 145 HAAD Reply

    (again both directions of each pair)

Every other type (e.g. ICMPv4 3 Destination Unreachable, 5 Redirect,
11 Time Exceeded; ICMPv6 1..4 errors, 137 Redirect, 143 MLDv2 Report, 146..)
is one-way: ports = (type, code), no reordering.

Example: ICMP echo request 1.2.3.4 -> 5.6.7.8 (type 8 code 0) hashes the tuple
(1.2.3.4, 5.6.7.8, sport 8, dport 0); the echo reply 5.6.7.8 -> 1.2.3.4
(type 0) gives sport 0, dport 8, which after ordering is the same tuple, so
both are 1:crodRHL2FEsHjbv3UkRrfbs4bZ0=.

Usage
-----
    community_id.py [--seed N] PROTO SRC_IP DST_IP [SPORT DPORT]
        PROTO: tcp, udp, sctp, icmp, icmp6/icmpv6, or a protocol number.
        For icmp/icmp6, SPORT DPORT are the ICMP type and code.
    community_id.py --selftest

--selftest checks the spec's published baseline tables
(corelight/community-id-spec baseline/README.md, commit c4ec2bc4: default
seed, seed=1, no-base64), vectors taken from Arkime test outputs
(captures/arkime/expected/*.json in this repo; the ICMP types come from the
first packet of each Arkime session in the pcap) and one Zeek btest baseline
(community-id-logging-flipped).
"""

import argparse
import base64
import hashlib
import ipaddress
import struct
import sys

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58
PROTO_SCTP = 132

PORTED_PROTOS = frozenset((PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMP6, PROTO_SCTP))

# type -> counterpart type (request/response pairs), see module docstring.
ICMP4_COUNTERPART = {
    8: 0, 0: 8,      # echo request / echo reply
    13: 14, 14: 13,  # timestamp request / reply
    15: 16, 16: 15,  # information request / reply
    10: 9, 9: 10,    # router solicitation / advertisement
    17: 18, 18: 17,  # address mask request / reply
}
ICMP6_COUNTERPART = {
    128: 129, 129: 128,  # echo request / reply
    130: 131, 131: 130,  # multicast listener query / report
    133: 134, 134: 133,  # router solicitation / advertisement
    135: 136, 136: 135,  # neighbor solicitation / advertisement
    139: 140, 140: 139,  # node information (who-are-you) query / reply
    144: 145, 145: 144,  # home agent address discovery request / reply
}

PROTO_NAMES = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "sctp": PROTO_SCTP,
               "icmp": PROTO_ICMP, "icmp6": PROTO_ICMP6, "icmpv6": PROTO_ICMP6}


def icmp_ports(proto, icmp_type, icmp_code):
    """Map ICMP(v6) type/code to (sport, dport, one_way)."""
    table = ICMP4_COUNTERPART if proto == PROTO_ICMP else ICMP6_COUNTERPART
    if icmp_type in table:
        return icmp_type, table[icmp_type], False
    return icmp_type, icmp_code, True


def community_id_v1(proto, src, dst, sport=None, dport=None, seed=0, b64=True):
    """Community ID v1 of one packet / flow tuple.

    proto: IP protocol number.  src/dst: address strings or ipaddress objects.
    For ICMP/ICMPv6 pass the ICMP type as sport and code as dport.
    Ports are ignored (and may be None) for protocols other than
    TCP/UDP/SCTP/ICMP/ICMPv6.
    """
    a = ipaddress.ip_address(src).packed
    b = ipaddress.ip_address(dst).packed
    if len(a) != len(b):
        raise ValueError("address families differ")
    has_ports = proto in PORTED_PROTOS
    one_way = False
    if has_ports:
        if sport is None or dport is None:
            raise ValueError("protocol %d needs ports (or ICMP type/code)" % proto)
        sport, dport = int(sport), int(dport)
        if proto in (PROTO_ICMP, PROTO_ICMP6):
            sport, dport, one_way = icmp_ports(proto, sport, dport)
        if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
            raise ValueError("port out of range")
    if not one_way:
        # Put the smaller (addr, port) endpoint first.
        if has_ports:
            swap = (b, dport) < (a, sport)
        else:
            swap = b < a
        if swap:
            a, b = b, a
            sport, dport = dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sport, dport)
    digest = hashlib.sha1(data).digest()
    if b64:
        return "1:" + base64.b64encode(digest).decode("ascii")
    return "1:" + digest.hex()


# ---------------------------------------------------------------------------
# Self-test vectors
# (proto, src, dst, sport, dport) -> expected ID
# Source 1: community-id-spec baseline/README.md tables (commit c4ec2bc40d65).
V6A = "fe80:0001:0203:0405:0607:0809:0A0B:0C0D"
V6B = "fe80:1011:1213:1415:1617:1819:1A1B:1C1D"
SPEC_DEFAULT = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
    (6, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM="),
    (17, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
    (17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
    (132, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="),
    (1, "1.2.3.4", "5.6.7.8", 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0="),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk="),
    (58, V6A, V6B, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
    (58, V6B, V6A, 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo="),
    (58, V6A, V6B, 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10="),
    (46, "1.2.3.4", "5.6.7.8", None, None, "1:ikv3kmf89luf73WPz1jOs49S768="),
    (46, "5.6.7.8", "1.2.3.4", None, None, "1:ikv3kmf89luf73WPz1jOs49S768="),
    (46, V6A, V6B, None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="),
    (46, V6B, V6A, None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="),
]
SPEC_SEED1 = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    (17, "5.6.7.8", "1.2.3.4", 3344, 1122, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, "1:1DD7cWGC/Yg91YGsQeni8du3pIA="),
    (58, V6B, V6A, 129, 0, "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (58, V6A, V6B, 146, 0, "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="),
    (46, "5.6.7.8", "1.2.3.4", None, None, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
    (46, V6A, V6B, None, None, "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
]
SPEC_NOB64 = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "1:c026f7386ef200559e95a53276ed03fb5db908b3"),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, "1:7ff6224b25aa733ad381f5026650549ef1d170f9"),
    (58, V6A, V6B, 128, 0, "1:d1b7fb872309530b777cc103ef3f0b21f46905ea"),
    (46, V6B, V6A, None, None, "1:c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
]
# Source 2: Arkime tests/pcap/*.test outputs (arkime/arkime commit 2d2f3678),
# packet tuples/ICMP types read from the matching pcaps.
ARKIME = [
    (6, "192.0.2.1", "192.0.2.2", 36698, 5555, "1:i2q2V53+q/dCq0iyZnCCpzQzp3k="),        # adb
    (6, "192.168.1.111", "31.13.74.1", 39584, 443, "1:Z3Q5W24QYzkDoI1VGO+4YY2G3BI="),    # fbzero-android
    (17, "255.255.255.255", "0.0.0.0", 50759, 3207, "1:5FiTtQTB77W0ppTD7FnGnh8EjJE="),   # ip-boundaries
    (17, "2001:4998:ef5e:35::1044", "2607:f8b0:4005:80e::2003", 53730, 443,
     "1:d2rGNvXfXw913qgIRkILZdmLVQM="),                                                 # quicietfooo
    (6, "30.0.0.0", "0.0.3.0", 0, 0, "1:HfgT3B9kE6EV4oV1z3DhWA08aw4="),                  # tcpseq_synthetic (ports 0)
    (1, "47.245.159.156", "92.104.109.0", 8, 0, "1:yz8cAvyz8bjFgU4IVBUues5SuoQ="),      # dot1ad echo request
    (1, "92.104.109.0", "47.245.159.156", 0, 0, "1:yz8cAvyz8bjFgU4IVBUues5SuoQ="),      # dot1ad echo reply
    (58, "fe80::211:25ff:fe82:95b5", "ff02::1:ff82:95b5", 135, 0,
     "1:0fx8iuIOVuN5EqSAPlk7AsecuJg="),                                                 # v6-http neighbor solicit
    (58, "fe80::2d0:9ff:fee3:e8de", "ff02::16", 143, 0, "1:N1pYzX56SZ4pCJrRuglkQ+2ylvE="),  # v6-http MLDv2 report (one-way)
    (58, "::", "ff02::1:ff98:6e1", 135, 0, "1:eilndz0cTfzOL/w14PcBW0lsMzo="),            # v6-http DAD neighbor solicit
    (58, "fe80::211:25ff:fe82:95b5", "ff02::1", 134, 0, "1:0MCR19cydrs2qJRBo+L/DglvPSE="),  # v6-http router advert
]
# Source 3: Zeek btest baseline
# scripts.policy.protocols.conn.community-id-logging-flipped/conn.log.cut
# (zeek/zeek commit a13de64f, trace tcp/handshake-reorder.pcap).
ZEEK = [
    (6, "141.142.228.5", "192.150.187.43", 59856, 80, "1:yvyB8h+3dnggTZW0UEITWCst97w="),
    (6, "192.150.187.43", "141.142.228.5", 80, 59856, "1:yvyB8h+3dnggTZW0UEITWCst97w="),
]


def selftest():
    failures = 0
    total = 0
    groups = [("spec default", SPEC_DEFAULT, 0, True), ("spec seed=1", SPEC_SEED1, 1, True),
              ("spec no-base64", SPEC_NOB64, 0, False), ("arkime", ARKIME, 0, True),
              ("zeek", ZEEK, 0, True)]
    for name, vectors, seed, b64 in groups:
        for proto, src, dst, sp, dp, want in vectors:
            total += 1
            got = community_id_v1(proto, src, dst, sp, dp, seed=seed, b64=b64)
            if got != want:
                failures += 1
                print("FAIL %s: proto=%s %s:%s -> %s:%s got %s want %s"
                      % (name, proto, src, sp, dst, dp, got, want))
    print("%d/%d vectors ok" % (total - failures, total))
    return 1 if failures else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Community ID v1 reference (stdlib only)")
    ap.add_argument("--selftest", action="store_true", help="run built-in test vectors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-base64", action="store_true", help="print hex digest instead")
    ap.add_argument("proto", nargs="?")
    ap.add_argument("src", nargs="?")
    ap.add_argument("dst", nargs="?")
    ap.add_argument("sport", nargs="?", type=int)
    ap.add_argument("dport", nargs="?", type=int)
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if not (args.proto and args.src and args.dst):
        ap.error("need PROTO SRC DST [SPORT DPORT] or --selftest")
    proto = PROTO_NAMES.get(args.proto.lower())
    if proto is None:
        proto = int(args.proto)
    print(community_id_v1(proto, args.src, args.dst, args.sport, args.dport,
                          seed=args.seed, b64=not args.no_base64))
    return 0


if __name__ == "__main__":
    sys.exit(main())
