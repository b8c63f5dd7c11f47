#!/usr/bin/env python3
"""Derive expected application-layer results (DNS, TLS hellos, HTTP/1.x) from
tshark, for Siphon's application-parser oracle tests, and compute JA4 vectors.

Usage:
    scripts/tshark_app.py                 regenerate every captures/app/expected/*.json
                                          and captures/app/ja4-vectors.json
    scripts/tshark_app.py --add CAPTURE   (re)generate expected/<name>.json for CAPTURE (a
                                          path inside the repository), adding it to the set;
                                          run without arguments afterwards to refresh the
                                          JA4 vectors
    scripts/tshark_app.py --check         regenerate in memory; exit 1 if any file
                                          on disk differs (nothing is written)
    scripts/tshark_app.py --ja4-only      only rewrite ja4-vectors.json

Only the Python 3 standard library and tshark are used.  WIRESHARK_CONFIG_DIR
points at an empty temporary directory, so personal preferences, decode-as
entries or TLS key logs cannot change the result.

tshark invocation (one run per capture, plus one with -x for the JA4 vectors):

    tshark -r FILE -n -o tcp.reassemble_out_of_order:TRUE
           -Y 'dns or tls.handshake.type or http' -T json
           [-x]

Everything else is tshark's default: IPv4/IPv6 defragmentation on, TCP
desegmentation on (tcp.desegment_tcp_streams:TRUE), TLS record/handshake
reassembly on, HTTP header and body desegmentation and de-chunking on.  QUIC
Initial packets are decrypted by tshark itself (no keys needed), so a QUIC
ClientHello shows up like a TLS one.

Which tshark output counts
--------------------------
Only protocol layers that tshark lists at the top level of a frame are used
("dns", "tls", "http", and the TLS handshake inside a top-level "quic" layer).
A DNS message quoted inside an ICMP error is a child of the "icmp" layer and is
therefore ignored.  mDNS ("mdns"), LLMNR ("llmnr") and SSDP ("ssdp") use their
own layer names and are ignored too.  Tunnelled traffic (Teredo, GRE, GTP...)
counts, because tshark lists the inner layers at the top level.

Output fields of captures/app/expected/<capture file name>.json
---------------------------------------------------------------
capture          path of the capture relative to the repository root
tshark_version   e.g. "4.0.17"
tshark_options   the -o options used (besides the defaults)
dns_queries      sorted unique [qname, qtype] over the question section of every
                 DNS message with dns.flags.response == 0 (any opcode).
dns_answers      sorted unique [rrname, rrtype, rdata] over the ANSWER section of
                 responses, only for A (dotted quad), AAAA (RFC 5952 compressed,
                 lower case) and CNAME (rdata = target name) records.
dns_rcodes       sorted unique [qname, rcode] for responses: one pair per
                 question; [null, rcode] when the response has no question.
                 rcode is the 4-bit header RCODE (the EDNS extended bits are NOT
                 folded in).
                 Names are exactly as tshark prints them (case preserved, no
                 trailing dot); the root name (tshark "<Root>") is written ".".
                 Type names are the IANA mnemonics (TYPE<n> if unassigned);
                 rcode names NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP,
                 REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH, NOTZONE, DSOTYPENI,
                 else RCODE<n>.
tls_client_hellos  one object per handshake message of type 1 that tshark
                 dissects (a retransmitted or QUIC-repeated hello can appear
                 twice), sorted by their canonical JSON text:
                 {"sni": tls.handshake.extensions_server_name (first) or null,
                  "alpn": [tls.handshake.extensions_alpn_str...] in wire order,
                  "ja3": tls.handshake.ja3 or null,
                  "ja3_full": tls.handshake.ja3_full or null,
                  "supported_versions": ["0x....", ...] from
                      tls.handshake.extensions.supported_version, wire order,
                      GREASE values kept; [] when the extension is absent}
sslv2_client_hellos  number of SSLv2-format CLIENT-HELLO records (legacy v2
                 hello, tshark shows tls.record.version 0x0002 and
                 tls.handshake.type 1).  They are NOT in tls_client_hellos.
tls_server_hellos  one object per handshake message of type 2 (a TLS 1.3
                 HelloRetryRequest is also type 2 and is included), sorted:
                 {"ja3s": tls.handshake.ja3s or null,
                  "version": supported_versions value of the ServerHello if
                      present, else tls.handshake.version, as "0x....",
                  "cipher": tls.handshake.ciphersuite as "0x...."}
http_requests    [method, host, uri, user_agent] per HTTP/1.x request, in the
                 order tshark completes them (frame order; within one frame, in
                 order of appearance).  host is the Host header value exactly
                 (may include ":port", may be "" if the header is empty), null
                 if absent; uri is the request-target as sent; user_agent null
                 if absent.
http_responses   [[status code], ...] per HTTP/1.x response, same ordering.
external         hand-copied values from other tools' expected outputs (never
                 written by this script; kept unchanged when a file is
                 rewritten).

captures/app/ja4-vectors.json
-----------------------------
For every ClientHello in the set (over TCP, or the decrypted CRYPTO data of a
QUIC Initial), the JA4 fingerprint computed here from the raw handshake bytes
(tshark's "tls.handshake_raw", i.e. the reassembled handshake message; this
script parses those bytes itself and does not use tshark's TLS fields),
following the FoxIO JA4 specification (technical_details/JA4.md): GREASE
(0x?a?a with equal bytes) ignored everywhere; version from the highest
non-GREASE supported_versions value, else the ClientHello's legacy_version;
"d" if an SNI extension (0x0000) is present, else "i"; 2-digit non-GREASE
cipher and extension counts (capped at 99); first+last character of the first
ALPN value (hex digits instead when either byte is not alphanumeric; "00" if
none); part b = sha256 of the sorted 4-hex cipher list, first 12 hex; part c =
sha256 of the sorted extension list without 0000 and 0010, then "_" and the
signature algorithms in wire order (no "_" if there are none); an empty list
hashes to "000000000000".  The "oracle" member of a vector is hand-copied and
kept on rewrite.
"""

import argparse
import atexit
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP_DIR = os.path.join(REPO, "captures", "app")
EXPECTED_DIR = os.path.join(APP_DIR, "expected")
JA4_FILE = os.path.join(APP_DIR, "ja4-vectors.json")

PREFS = ["tcp.reassemble_out_of_order:TRUE"]
DISPLAY_FILTER = "dns or tls.handshake.type or http"

DNS_TYPES = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG",
    9: "MR", 10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO",
    15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN",
    21: "RT", 22: "NSAP", 23: "NSAP-PTR", 24: "SIG", 25: "KEY", 26: "PX",
    27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC",
    33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6",
    39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP",
    45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID",
    50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 55: "HIP",
    56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY",
    61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS",
    99: "SPF", 100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC",
    104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48", 109: "EUI64",
    249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB",
    254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 258: "AVC", 259: "DOA",
    260: "AMTRELAY", 32768: "TA", 32769: "DLV",
}

DNS_RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
    5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
    10: "NOTZONE", 11: "DSOTYPENI",
}


# --------------------------------------------------------------------------
# tshark JSON with duplicate keys preserved

class Obj(list):
    """A JSON object as an ordered list of (key, value) pairs (keys repeat)."""

    def get(self, key, default=None):
        for k, v in self:
            if k == key:
                return v
        return default

    def all(self, key):
        return [v for k, v in self if k == key]


def leaves(node):
    """All (key, scalar value) pairs below node, depth first, in order."""
    out = []
    if isinstance(node, Obj):
        for k, v in node:
            if isinstance(v, (Obj, list)):
                out.extend(leaves(v))
            else:
                out.append((k, v))
    elif isinstance(node, list):
        for v in node:
            out.extend(leaves(v))
    return out


def first_leaf(node, key):
    for k, v in leaves(node):
        if k == key:
            return v
    return None


def all_leaves(node, key):
    return [v for k, v in leaves(node) if k == key]


def find_objs(node, pred):
    """Every Obj below (and including) node for which pred(obj) holds; does
    not descend into a matching Obj."""
    out = []
    if isinstance(node, Obj):
        if pred(node):
            return [node]
        for _, v in node:
            out.extend(find_objs(v, pred))
    elif isinstance(node, list):
        for v in node:
            out.extend(find_objs(v, pred))
    return out


def tshark_env():
    env = dict(os.environ)
    cfg = tempfile.mkdtemp(prefix="siphon-ws-")
    atexit.register(shutil.rmtree, cfg, True)
    env["WIRESHARK_CONFIG_DIR"] = cfg
    env["LC_ALL"] = "C"
    return env


def tshark_version(env):
    out = subprocess.run(["tshark", "--version"], capture_output=True,
                         text=True, env=env).stdout
    first = out.splitlines()[0].strip().rstrip(".") if out else ""
    prefix = "TShark (Wireshark) "
    if first.startswith(prefix):
        first = first[len(prefix):]
    return first.split(" ")[0]


def run_tshark(path, env, display_filter, raw=False):
    cmd = ["tshark", "-r", path, "-n"]
    for p in PREFS:
        cmd += ["-o", p]
    cmd += ["-Y", display_filter, "-T", "json"]
    if raw:
        cmd.append("-x")
    proc = subprocess.run(cmd, capture_output=True, env=env)
    text = proc.stdout.decode("utf-8", errors="replace").strip()
    if proc.returncode != 0:
        sys.stderr.write("tshark exit %d on %s: %s\n" % (
            proc.returncode, path, proc.stderr.decode(errors="replace")[-500:]))
    if not text:
        return [], proc.returncode
    packets = json.loads(text, object_pairs_hook=Obj)
    return packets, proc.returncode


def layers_of(pkt):
    return pkt.get("_source").get("layers")


# --------------------------------------------------------------------------
# DNS

def dns_name(n):
    if n is None:
        return None
    return "." if n == "<Root>" else n


def type_name(t):
    t = int(t, 0)
    return DNS_TYPES.get(t, "TYPE%d" % t)


def rcode_name(r):
    r = int(r, 0)
    return DNS_RCODES.get(r, "RCODE%d" % r)


def section(dns, title):
    """Record objects of one section ('Queries', 'Answers', ...)."""
    out = []
    for sec in dns.all(title):
        if isinstance(sec, Obj):
            out.extend(v for _, v in sec if isinstance(v, Obj))
    return out


def extract_dns(dns, queries, answers, rcodes):
    flags = dns.get("dns.flags_tree") or Obj()
    resp = flags.get("dns.flags.response")
    if resp is None:
        return
    qs = []
    for q in section(dns, "Queries"):
        name, qtype = q.get("dns.qry.name"), q.get("dns.qry.type")
        if name is None or qtype is None:
            continue
        qs.append((dns_name(name), type_name(qtype)))
    if resp == "0":
        queries.update(qs)
        return
    rcode = flags.get("dns.flags.rcode")
    if rcode is not None:
        rc = rcode_name(rcode)
        if qs:
            for name, _ in qs:
                rcodes.add((name, rc))
        else:
            rcodes.add((None, rc))
    for rr in section(dns, "Answers"):
        rtype = rr.get("dns.resp.type")
        name = dns_name(rr.get("dns.resp.name"))
        if rtype is None or name is None:
            continue
        t = int(rtype, 0)
        if t == 1 and rr.get("dns.a") is not None:
            answers.add((name, "A", rr.get("dns.a")))
        elif t == 28 and rr.get("dns.aaaa") is not None:
            answers.add((name, "AAAA", str(ipaddress.IPv6Address(rr.get("dns.aaaa")))))
        elif t == 5 and rr.get("dns.cname") is not None:
            answers.add((name, "CNAME", dns_name(rr.get("dns.cname"))))


# --------------------------------------------------------------------------
# TLS

def hex16(v):
    return "0x%04x" % int(v, 0)


def handshakes(layers):
    """(handshake Obj, transport) for every TLS handshake message in the
    top-level 'tls' layers and inside top-level 'quic' layers."""
    out = []
    is_hs = lambda o: o.get("tls.handshake.type") is not None
    for k, v in layers:
        if k == "tls":
            out.extend((h, "tcp") for h in find_objs(v, is_hs))
        elif k == "quic":
            out.extend((h, "quic") for h in find_objs(v, is_hs))
    return out


def client_hello_record(h):
    sni = first_leaf(h, "tls.handshake.extensions_server_name")
    return {
        "sni": sni,
        "alpn": all_leaves(h, "tls.handshake.extensions_alpn_str"),
        "ja3": h.get("tls.handshake.ja3"),
        "ja3_full": h.get("tls.handshake.ja3_full"),
        "supported_versions": [hex16(v) for v in all_leaves(h, "tls.handshake.extensions.supported_version")],
    }


def server_hello_record(h):
    sv = all_leaves(h, "tls.handshake.extensions.supported_version")
    version = sv[0] if sv else h.get("tls.handshake.version")
    cipher = h.get("tls.handshake.ciphersuite")
    return {
        "ja3s": h.get("tls.handshake.ja3s"),
        "version": hex16(version) if version is not None else None,
        "cipher": hex16(cipher) if cipher is not None else None,
    }


# --------------------------------------------------------------------------
# HTTP

def extract_http(http, requests, responses):
    req = find_objs(http, lambda o: o.get("http.request.method") is not None)
    if req:
        r = req[0]
        requests.append([r.get("http.request.method"), http.get("http.host"),
                         r.get("http.request.uri"), http.get("http.user_agent")])
        return
    resp = find_objs(http, lambda o: o.get("http.response.code") is not None)
    if resp:
        responses.append([int(resp[0].get("http.response.code"))])


# --------------------------------------------------------------------------

def canon(o):
    return json.dumps(o, sort_keys=True)


def sort_key_tuple(t):
    return tuple("" if x is None else x for x in t)


def analyse(rel, env, version):
    path = os.path.join(REPO, rel)
    packets, rc = run_tshark(path, env, DISPLAY_FILTER)
    queries, answers, rcodes = set(), set(), set()
    chs, shs, reqs, resps = [], [], [], []
    sslv2 = 0
    for pkt in packets:
        layers = layers_of(pkt)
        for k, v in layers:
            if k == "dns" and isinstance(v, Obj):
                extract_dns(v, queries, answers, rcodes)
            elif k == "http" and isinstance(v, Obj):
                extract_http(v, reqs, resps)
        for h, _ in handshakes(layers):
            t = h.get("tls.handshake.type")
            if h.get("tls.record.version") == "0x0002":
                # SSLv2-format record (legacy v2 CLIENT-HELLO, message type 1):
                # not a TLS handshake message, no extensions, no JA3/JA4.
                if t == "1":
                    sslv2 += 1
                continue
            if t == "1":
                chs.append(client_hello_record(h))
            elif t == "2":
                shs.append(server_hello_record(h))
    result = {
        "capture": rel,
        "tshark_version": version,
        "tshark_options": ["-n"] + ["-o " + p for p in PREFS],
        "dns_queries": [list(x) for x in sorted(queries, key=sort_key_tuple)],
        "dns_answers": [list(x) for x in sorted(answers, key=sort_key_tuple)],
        "dns_rcodes": [list(x) for x in sorted(rcodes, key=sort_key_tuple)],
        "tls_client_hellos": sorted(chs, key=canon),
        "tls_server_hellos": sorted(shs, key=canon),
        "sslv2_client_hellos": sslv2,
        "http_requests": reqs,
        "http_responses": resps,
    }
    if rc != 0:
        result["tshark_exit_status"] = rc
    return result


# --------------------------------------------------------------------------
# JA4 from raw ClientHello bytes

def is_grease(v):
    return (v & 0x0f0f) == 0x0a0a and (v >> 8) == (v & 0xff)


JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10",
                0x0300: "s3", 0x0002: "s2", 0xfeff: "d1", 0xfefd: "d2",
                0xfefc: "d3"}


def u16(b, i):
    return (b[i] << 8) | b[i + 1]


def parse_client_hello(msg):
    """Parse a handshake message (type, 3-byte length, body) holding a
    ClientHello.  Returns a dict of the raw lists JA4 needs."""
    if len(msg) < 4 or msg[0] != 1:
        raise ValueError("not a ClientHello")
    length = int.from_bytes(msg[1:4], "big")
    body = msg[4:4 + length]
    if len(body) < length:
        raise ValueError("truncated ClientHello")
    i = 0
    legacy_version = u16(body, i); i += 2
    i += 32                                   # random
    sid_len = body[i]; i += 1 + sid_len
    cs_len = u16(body, i); i += 2
    ciphers = [u16(body, i + j) for j in range(0, cs_len, 2)]; i += cs_len
    comp_len = body[i]; i += 1 + comp_len
    exts = []
    if i + 2 <= len(body):
        ext_total = u16(body, i); i += 2
        end = i + ext_total
        while i + 4 <= end:
            et, el = u16(body, i), u16(body, i + 2)
            exts.append((et, body[i + 4:i + 4 + el]))
            i += 4 + el
    sni_present = any(t == 0 for t, _ in exts)
    sni = None
    alpn = []
    sigalgs = []
    versions = []
    for t, d in exts:
        if t == 0 and len(d) >= 5 and d[2] == 0:
            n = u16(d, 3)
            sni = d[5:5 + n].decode("ascii", errors="replace")
        elif t == 16 and len(d) >= 2:
            j, end = 2, 2 + u16(d, 0)
            while j < end and j < len(d):
                n = d[j]
                alpn.append(d[j + 1:j + 1 + n])
                j += 1 + n
        elif t == 13 and len(d) >= 2:
            n = u16(d, 0)
            sigalgs = [u16(d, 2 + j) for j in range(0, n - 1, 2)]
        elif t == 43 and len(d) >= 1:
            n = d[0]
            versions = [u16(d, 1 + j) for j in range(0, n - 1, 2)]
    return {"legacy_version": legacy_version, "ciphers": ciphers,
            "extensions": [t for t, _ in exts], "sni_present": sni_present,
            "sni": sni, "alpn": alpn, "sigalgs": sigalgs,
            "supported_versions": versions}


def alpn_chars(alpn):
    if not alpn or len(alpn[0]) == 0:
        return "00"
    v = alpn[0]
    alnum = lambda c: (0x30 <= c <= 0x39) or (0x41 <= c <= 0x5a) or (0x61 <= c <= 0x7a)
    if alnum(v[0]) and alnum(v[-1]):
        return chr(v[0]) + chr(v[-1])
    h = v.hex()
    return h[0] + h[-1]


def sha12(s):
    return hashlib.sha256(s.encode("ascii")).hexdigest()[:12] if s else "000000000000"


def ja4(ch, proto):
    sv = [v for v in ch["supported_versions"] if not is_grease(v)]
    ver = max(sv) if sv else ch["legacy_version"]
    ciphers = [c for c in ch["ciphers"] if not is_grease(c)]
    exts = [e for e in ch["extensions"] if not is_grease(e)]
    sigalgs = [s for s in ch["sigalgs"] if not is_grease(s)]
    a = "%s%s%s%02d%02d%s" % (proto, JA4_VERSIONS.get(ver, "00"),
                              "d" if ch["sni_present"] else "i",
                              min(len(ciphers), 99), min(len(exts), 99),
                              alpn_chars(ch["alpn"]))
    cipher_str = ",".join(sorted("%04x" % c for c in ciphers))
    ext_str = ",".join(sorted("%04x" % e for e in exts if e not in (0x0000, 0x0010)))
    sig_str = ",".join("%04x" % s for s in sigalgs)
    c_input = ext_str + ("_" + sig_str if sig_str else "") if ext_str else ""
    b_hash = sha12(cipher_str)
    c_hash = sha12(c_input)
    orig_c = ",".join("%04x" % c for c in ciphers)
    orig_e = ",".join("%04x" % e for e in exts)
    return {
        "ja4": "%s_%s_%s" % (a, b_hash, c_hash),
        "ja4_a": a,
        "ja4_b_input": cipher_str,
        "ja4_c_input": c_input,
        "ja4_r": "%s_%s_%s" % (a, cipher_str, c_input),
        "ja4_ro": "%s_%s_%s%s" % (a, orig_c, orig_e, ("_" + sig_str) if sig_str else ""),
        "tls_version_used": "0x%04x" % ver,
        "version_source": "supported_versions" if sv else "client_hello.legacy_version",
    }


def ja4_vectors(rels, env):
    vectors = []
    for rel in rels:
        packets, _ = run_tshark(os.path.join(REPO, rel), env, "tls.handshake.type == 1", raw=True)
        for pkt in packets:
            layers = layers_of(pkt)
            frame_no = int(first_leaf(layers.get("frame"), "frame.number"))
            # the raw bytes sit beside the dissected handshake: "tls.handshake_raw"
            for k, v in layers:
                if k not in ("tls", "quic"):
                    continue
                proto = "t" if k == "tls" else "q"
                holders = find_objs(v, lambda o: o.get("tls.handshake_raw") is not None)
                for holder in holders:
                    raws = holder.all("tls.handshake_raw")
                    hss = holder.all("tls.handshake")
                    for raw, hs in zip(raws, hss):
                        if not isinstance(hs, Obj) or hs.get("tls.handshake.type") != "1":
                            continue
                        if holder.get("tls.record.version") == "0x0002":
                            continue
                        msg = bytes.fromhex(raw[0])
                        try:
                            ch = parse_client_hello(msg)
                        except (ValueError, IndexError) as e:
                            sys.stderr.write("%s frame %d: ClientHello not parsed (%s)\n" % (rel, frame_no, e))
                            continue
                        vec = {"capture": rel, "frame": frame_no, "transport": "quic" if proto == "q" else "tcp",
                               "sni": ch["sni"]}
                        vec.update(ja4(ch, proto))
                        vec["client_hello"] = {
                            "legacy_version": "0x%04x" % ch["legacy_version"],
                            "supported_versions": ["0x%04x" % x for x in ch["supported_versions"]],
                            "ciphers": ["0x%04x" % x for x in ch["ciphers"]],
                            "extensions": ["0x%04x" % x for x in ch["extensions"]],
                            "signature_algorithms": ["0x%04x" % x for x in ch["sigalgs"]],
                            "alpn": [a.decode("latin-1") for a in ch["alpn"]],
                            "handshake_hex": raw[0],
                        }
                        vectors.append(vec)
    return vectors


# --------------------------------------------------------------------------

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _render(obj, depth):
    """JSON with one-space indentation, but any list or object holding only
    scalars on a single line (keeps [name, type, rdata] tuples readable)."""
    scalar = lambda v: not isinstance(v, (dict, list))
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(obj, list):
        if all(scalar(v) for v in obj):
            return json.dumps(obj, ensure_ascii=False)
        return "[\n" + ",\n".join(inner + _render(v, depth + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        if all(scalar(v) for v in obj.values()) and len(json.dumps(obj)) <= 100:
            return json.dumps(obj, ensure_ascii=False)
        return "{\n" + ",\n".join(inner + json.dumps(k, ensure_ascii=False) + ": " + _render(v, depth + 1)
                                  for k, v in obj.items()) + "\n" + pad + "}"
    return json.dumps(obj, ensure_ascii=False)


def dump(obj):
    return _render(obj, 0) + "\n"


def expected_path(rel):
    return os.path.join(EXPECTED_DIR, os.path.basename(rel) + ".json")


def main():
    ap = argparse.ArgumentParser(description="Derive expected DNS / TLS hello / HTTP results from tshark, and JA4 vectors.")
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    ap.add_argument("--add", nargs="+", metavar="CAPTURE", help="capture paths (relative to the repository)")
    ap.add_argument("--ja4-only", action="store_true")
    args = ap.parse_args()

    env = tshark_env()
    version = tshark_version(env)
    os.makedirs(EXPECTED_DIR, exist_ok=True)

    rels = []
    for name in sorted(os.listdir(EXPECTED_DIR)):
        if name.endswith(".json"):
            old = load_json(os.path.join(EXPECTED_DIR, name))
            if old and "capture" in old:
                rels.append(old["capture"])
    for a in args.add or []:
        rel = os.path.relpath(os.path.abspath(a), REPO)
        if rel not in rels:
            rels.append(rel)

    failed = []
    if not args.ja4_only:
        for rel in rels:
            if args.add and rel not in [os.path.relpath(os.path.abspath(a), REPO) for a in args.add]:
                continue
            out = expected_path(rel)
            old = load_json(out)
            new = analyse(rel, env, version)
            if old and "external" in old:
                new["external"] = old["external"]
            if args.check:
                if old != new:
                    failed.append(out)
                    keys = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k) != new.get(k))
                    sys.stderr.write("DIFFERS: %s (%s)\n" % (os.path.relpath(out, REPO), ", ".join(keys)))
            else:
                with open(out, "w") as f:
                    f.write(dump(new))

    if not args.add or args.ja4_only:
        old = load_json(JA4_FILE) or {}
        oracle = {(v["capture"], v["frame"]): v["oracle"] for v in old.get("vectors", []) if "oracle" in v}
        vecs = ja4_vectors(rels, env)
        for v in vecs:
            if (v["capture"], v["frame"]) in oracle:
                v["oracle"] = oracle[(v["capture"], v["frame"])]
        new = dict(old)
        new["generated_by"] = "scripts/tshark_app.py (JA4 computed from the raw ClientHello bytes, FoxIO JA4 spec)"
        new["tshark_version"] = version
        new["vectors"] = vecs
        if args.check:
            if old != new:
                failed.append(JA4_FILE)
                sys.stderr.write("DIFFERS: %s\n" % os.path.relpath(JA4_FILE, REPO))
        else:
            with open(JA4_FILE, "w") as f:
                f.write(dump(new))

    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
