#!/usr/bin/env python3
"""Writes cellular test-bench captures and their manifests (issue 16):

  captures/gtp/gtp-bench.pcap + gtp-bench.json   the core side of a lab network: GTP-C naming two phones, GTP-U
                                                 carrying their traffic.

Usage: scripts/gen_cellular.py [CAPTURES_DIR]   (default: captures/ in the repository; writes its gtp/ and gsm/).
Deterministic.

Every address outside the phones' own traffic is in documentation ranges (192.0.2.0/24, 2001:db8::/32); the
phones' destinations are real foreign addresses, as in the other scenarios, so that geolocation applies.

gtp-bench.pcap (Ethernet between core nodes):
- Phone A on LTE (S11 GTPv2-C between MME 192.0.2.1 and SGW 192.0.2.2; S1-U GTP-U between eNodeB 192.0.2.3 and
  SGW 192.0.2.2): Create Session Request (IMSI, MSISDN, MEI, APN) and Response (cause accepted, PDN address
  allocation IPv4v6: 10.45.0.2 and 2001:db8:a::2, S1-U SGW F-TEID), Modify Bearer Request/Response (eNodeB F-TEID).
  Its traffic: a DNS lookup over IPv4 and one over IPv6 to the lab resolver, then a beacon: six TCP connections,
  30 s apart (jitter under 1 s), to 120.77.166.21:8443, each sending "HB imei=<IMEI> seq=N" and reading "OK".
  Uplink G-PDUs carry the S and E flags with a PDU session container extension header; downlink ones carry none.
  One upload of 6,000 bytes to the same server, whose 1,460-byte segments make outer IPv4 datagrams over 1,500
  bytes: the outer IP is fragmented (MTU 1,500).
  GTP-U echo request and response between eNodeB and SGW (not user data).
- Phone B on 2G/3G (Gn GTPv1-C between SGSN 192.0.2.5 and GGSN 192.0.2.6; its user plane over IPv6 between
  2001:db8:c0::5 and 2001:db8:c0::6): Create PDP Context Request (IMSI, MSISDN, IMEI(SV), APN) and Response
  (cause accepted, end-user address 10.46.0.7). Its traffic: a DNS lookup of update.example.cn, then an HTTP POST
  to 39.156.66.10:80 whose body holds its IMSI.

The manifest lists each phone's identities, addresses and TEIDs, and the beacon's times.
"""
import json, os, random, struct, sys
from pcapgen import Capture, TCP, ip, is6, pseudo_header
from inet import checksum

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CAPTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "captures")
OUT = os.path.join(CAPTURES, "gtp")
GSM_OUT = os.path.join(CAPTURES, "gsm")
T0 = 1741942800.0

MAC = {name: bytes.fromhex("0200c0000%03d" % i) for i, name in enumerate(["mme", "sgw", "enb", "sgsn", "ggsn"], 1)}
MME, SGW, ENB, SGSN, GGSN = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.5", "192.0.2.6"
SGSN6, GGSN6 = "2001:db8:c0::5", "2001:db8:c0::6"


def luhn(digits):
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return str((10 - total % 10) % 10)


A = {"imsi": "208201234567890", "msisdn": "33612345678", "imei": "35693803564380" + luhn("35693803564380"),
     "imeisv": "3569380356438001", "ipv4": "10.45.0.2", "ipv6": "2001:db8:a::2", "apn": "internet"}
B = {"imsi": "208109876543210", "msisdn": "33698765432", "imei": "35209900176148" + luhn("35209900176148"),
     "imeisv": "3520990017614823", "ipv4": "10.46.0.7", "apn": "web.lab"}


def tbcd(digits):
    """Telephony BCD: two digits a byte, the first in the low nibble; 0xF fills an odd count."""
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


def apn(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))


class Bench:
    """Frames between core nodes: Ethernet, IPv4 or IPv6, UDP."""

    def __init__(self):
        self.cap = Capture(random.Random(16))
        self.ident = 0x4000
        self.fragmented = 0  # outer datagrams split by the MTU

    def ipv4(self, src, dst, proto, payload, ident=None):
        if ident is None:
            self.ident += 1
            ident = self.ident
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0, ip(src), ip(dst))
        return h[:10] + struct.pack("!H", checksum(h)) + h[12:] + payload

    def udp(self, t, src, dst, sport, dport, payload, src_mac, dst_mac, mtu=1500):
        u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        u = u[:6] + struct.pack("!H", checksum(pseudo_header(src, dst, 17, len(u)) + u) or 0xFFFF) + u[8:]
        eth = dst_mac + src_mac
        if is6(src):
            packet = struct.pack("!IHBB", 6 << 28, len(u), 17, 64) + ip(src) + ip(dst) + u
            self.cap.packets.append((t, eth + b"\x86\xdd" + packet))
            return
        if 20 + len(u) <= mtu:
            self.cap.packets.append((t, eth + b"\x08\x00" + self.ipv4(src, dst, 17, u)))
            return
        # Outer IPv4 fragmentation (RFC 791): 8-byte multiples, DF clear, one identification.
        self.ident += 1
        self.fragmented += 1
        step = (mtu - 20) // 8 * 8
        for i, offset in enumerate(range(0, len(u), step)):
            piece = u[offset:offset + step]
            more = offset + step < len(u)
            h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(piece), self.ident, (0x2000 if more else 0) | offset // 8,
                            64, 17, 0, ip(src), ip(dst))
            h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
            self.cap.packets.append((t + i * 1e-6, eth + b"\x08\x00" + h + piece))

    # GTP-C.

    def gtpv2(self, t, src, dst, src_mac, dst_mac, msg_type, teid, seq, ies):
        body = b"".join(ies)
        header = struct.pack("!BBHI", 0x48, msg_type, 8 + len(body), teid) + struct.pack("!I", seq << 8)
        self.udp(t, src, dst, 2123, 2123, header + body, src_mac, dst_mac)

    def gtpv1c(self, t, src, dst, src_mac, dst_mac, msg_type, teid, seq, ies):
        body = struct.pack("!HBB", seq, 0, 0) + b"".join(ies)
        self.udp(t, src, dst, 2123, 2123, struct.pack("!BBHI", 0x32, msg_type, len(body), teid) + body, src_mac, dst_mac)

    # GTP-U.

    def gpdu(self, t, src, dst, src_mac, dst_mac, teid, inner, extension=False, seq=0):
        if extension:
            # S and E flags; one PDU session container (type 0x85, one 4-byte unit: UL PDU, QFI 9), then none.
            options = struct.pack("!HBB", seq & 0xFFFF, 0, 0x85) + bytes([1, 0x10, 9, 0])
            payload = options + inner
            header = struct.pack("!BBHI", 0x36, 0xFF, len(payload), teid)
        else:
            payload = inner
            header = struct.pack("!BBHI", 0x30, 0xFF, len(payload), teid)
        self.udp(t, src, dst, 2152, 2152, header + payload, src_mac, dst_mac)


def v2ie(kind, value, instance=0):
    return struct.pack("!BHB", kind, len(value), instance) + value


def fteid(interface, teid, address):
    return bytes([0x80 | interface]) + struct.pack("!I", teid) + ip(address)


class Inner(Capture):
    """A phone's packets as IP datagrams, wrapped into GTP-U by `deliver`."""

    def __init__(self, rng, address, address6=None):
        super().__init__(rng, device=address, router="10.45.0.1")
        self.device6 = address6
        self.datagrams = []

    def frame(self, t, src, dst, proto, l4, from_device, ttl=64, dst_mac=None):
        packet = self.ipv6(src, dst, proto, l4, ttl) if is6(src) else self.ipv4(src, dst, proto, l4, ttl)
        self.datagrams.append((t, packet, from_device))


def main():
    bench = Bench()
    manifest = {"phones": []}

    # Phone A: LTE attach (S11, GTPv2-C), then its traffic over S1-U.
    mme_teid, sgw_s11_teid, sgw_s1u_teid, enb_s1u_teid, pgw_s5_teid = 0x0000A001, 0x5A000001, 0x00A00001, 0x00E00001, 0x7B000001
    t = T0
    bench.gtpv2(t, MME, SGW, MAC["mme"], MAC["sgw"], 32, 0, 0x000101, [
        v2ie(1, tbcd(A["imsi"])), v2ie(76, tbcd(A["msisdn"])), v2ie(75, tbcd(A["imeisv"])),
        v2ie(82, bytes([6])), v2ie(87, fteid(10, mme_teid, MME)), v2ie(71, apn(A["apn"])),
        v2ie(79, bytes([3]) + bytes(21)), v2ie(93, v2ie(73, bytes([5])))])
    bench.gtpv2(t + 0.012, SGW, MME, MAC["sgw"], MAC["mme"], 33, mme_teid, 0x000101, [
        v2ie(2, bytes([16, 0])), v2ie(87, fteid(11, sgw_s11_teid, SGW)), v2ie(87, fteid(7, pgw_s5_teid, SGW), instance=1),
        v2ie(79, bytes([3, 64]) + ip(A["ipv6"]) + ip(A["ipv4"])),
        v2ie(93, v2ie(73, bytes([5])) + v2ie(2, bytes([16, 0])) + v2ie(87, fteid(1, sgw_s1u_teid, SGW)))])
    bench.gtpv2(t + 0.050, MME, SGW, MAC["mme"], MAC["sgw"], 34, sgw_s11_teid, 0x000102, [
        v2ie(93, v2ie(73, bytes([5])) + v2ie(87, fteid(0, enb_s1u_teid, ENB)))])
    bench.gtpv2(t + 0.058, SGW, MME, MAC["sgw"], MAC["mme"], 35, mme_teid, 0x000102, [
        v2ie(2, bytes([16, 0])), v2ie(93, v2ie(73, bytes([5])) + v2ie(2, bytes([16, 0])) + v2ie(87, fteid(1, sgw_s1u_teid, SGW)))])

    # GTP-U echo on S1-U: path management, not user data.
    bench.udp(t + 0.5, ENB, SGW, 2152, 2152, struct.pack("!BBHIHBB", 0x32, 1, 4, 0, 1, 0, 0), MAC["enb"], MAC["sgw"])
    bench.udp(t + 0.501, SGW, ENB, 2152, 2152, struct.pack("!BBHIHBB", 0x32, 2, 6, 0, 1, 0, 0) + bytes([14, 0]), MAC["sgw"], MAC["enb"])

    a = Inner(random.Random(161), A["ipv4"], A["ipv6"])
    a.dns(t + 1.0, 0x1601, "hb.example.cn", [("hb.example.cn", "A", "120.77.166.21")])
    a.dns(t + 1.2, 0x1602, "hb.example.cn", [("hb.example.cn", "AAAA", "2001:db8:ffff::21")], qtype="AAAA", server="2001:db8:a::1")
    rng = random.Random(1616)
    beats = []
    for i in range(6):
        start = t + 2.0 + 30 * i + rng.uniform(-0.4, 0.4)
        beats.append(round(start, 6))
        c = TCP(a, start, "120.77.166.21", 41000 + i, 8443)
        c.send(f"HB imei={A['imei']} seq={i}\n".encode())
        c.reply(b"OK\n")
        c.close()
    up = TCP(a, t + 200.0, "120.77.166.21", 41100, 8443)
    up.send(b"UPLOAD " + bytes(rng.randrange(256) for _ in range(6000)), mss=1460)
    up.reply(b"OK\n")
    up.close()
    seq = 0
    for when, packet, from_phone in a.datagrams:
        if from_phone:
            seq += 1
            bench.gpdu(when, ENB, SGW, MAC["enb"], MAC["sgw"], sgw_s1u_teid, packet, extension=True, seq=seq)
        else:
            bench.gpdu(when, SGW, ENB, MAC["sgw"], MAC["enb"], enb_s1u_teid, packet)
    manifest["phones"].append(dict(A, device_id="imsi:" + A["imsi"], teids=[sgw_s1u_teid, enb_s1u_teid],
                                   outer=[ENB, SGW], beacon={"server": "120.77.166.21", "port": 8443, "starts": beats},
                                   upload_bytes=6007))

    # Phone B: Gn (GTPv1-C), user plane over IPv6.
    sgsn_teid_c, sgsn_teid_d, ggsn_teid_c, ggsn_teid_d = 0x0B000001, 0x0B000002, 0x0C000001, 0x0C000002
    tb = T0 + 300.0
    bench.gtpv1c(tb, SGSN, GGSN, MAC["sgsn"], MAC["ggsn"], 16, 0, 0x2001, [
        bytes([2]) + tbcd(B["imsi"]), bytes([14, 7]), bytes([15, 1]), bytes([16]) + struct.pack("!I", sgsn_teid_d),
        bytes([17]) + struct.pack("!I", sgsn_teid_c), bytes([20, 5]),
        bytes([128]) + struct.pack("!H", 2) + bytes([0xF1, 0x21]),
        bytes([131]) + struct.pack("!H", len(apn(B["apn"]))) + apn(B["apn"]),
        bytes([133]) + struct.pack("!H", 4) + ip(SGSN), bytes([133]) + struct.pack("!H", 16) + ip(SGSN6),
        bytes([134]) + struct.pack("!H", 1 + len(tbcd(B["msisdn"]))) + bytes([0x91]) + tbcd(B["msisdn"]),
        bytes([135]) + struct.pack("!H", 4) + bytes([0x02, 0x23, 0x72, 0x1F]),
        bytes([154]) + struct.pack("!H", 8) + tbcd(B["imeisv"])])
    bench.gtpv1c(tb + 0.020, GGSN, SGSN, MAC["ggsn"], MAC["sgsn"], 17, sgsn_teid_c, 0x2001, [
        bytes([1, 128]), bytes([8, 0xFE]), bytes([14, 3]), bytes([16]) + struct.pack("!I", ggsn_teid_d),
        bytes([17]) + struct.pack("!I", ggsn_teid_c), bytes([127]) + struct.pack("!I", 0x00C0FFEE),
        bytes([128]) + struct.pack("!H", 6) + bytes([0xF1, 0x21]) + ip(B["ipv4"]),
        bytes([133]) + struct.pack("!H", 4) + ip(GGSN), bytes([133]) + struct.pack("!H", 16) + ip(GGSN6),
        bytes([135]) + struct.pack("!H", 4) + bytes([0x02, 0x23, 0x72, 0x1F])])
    b = Inner(random.Random(162), B["ipv4"])
    b.router = "10.46.0.1"
    b.dns(tb + 1.0, 0x1701, "update.example.cn", [("update.example.cn", "A", "39.156.66.10")])
    c = TCP(b, tb + 1.1, "39.156.66.10", 52000, 80)
    body = f"imsi={B['imsi']}&model=mini-x1&contacts=42".encode()
    c.send(b"POST /u HTTP/1.1\r\nHost: update.example.cn\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    c.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
    for when, packet, from_phone in b.datagrams:
        if from_phone:
            bench.gpdu(when, SGSN6, GGSN6, MAC["sgsn"], MAC["ggsn"], ggsn_teid_d, packet)
        else:
            bench.gpdu(when, GGSN6, SGSN6, MAC["ggsn"], MAC["sgsn"], sgsn_teid_d, packet)
    manifest["phones"].append(dict(B, device_id="imsi:" + B["imsi"], teids=[ggsn_teid_d, sgsn_teid_d], outer=[SGSN6, GGSN6],
                                   post={"server": "39.156.66.10", "port": 80}))

    path = os.path.join(OUT, "gtp-bench.pcap")
    count = bench.cap.write(path)
    manifest["packets"] = count
    manifest["outer_fragmented_datagrams"] = bench.fragmented
    with open(os.path.join(OUT, "gtp-bench.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{path}: {count} packets")


# --- GSM air interface (GSMTAP) --------------------------------------------------------------------------------

GSM7 = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
        "¿abcdefghijklmnopqrstuvwxyzäöñüà")
assert len(GSM7) == 128


def septets(text):
    return [GSM7.index(c) for c in text]


def pack7(values, fill_bits=0):
    """Packs septets LSB first, after `fill_bits` zero bits (the fill after a user data header)."""
    bits, n, out = 0, fill_bits, bytearray()
    for v in values:
        bits |= v << n
        n += 7
        while n >= 8:
            out.append(bits & 0xFF)
            bits >>= 8
            n -= 8
    if n:
        out.append(bits & 0xFF)
    return bytes(out)


def address(number):
    """A TP or RP address: international type, BCD digits."""
    return bytes([0x91]) + tbcd(number)


def mobile_identity(kind, digits):
    """TS 24.008 10.5.1.4: first digit and odd flag with the type, then BCD; TMSI: 0xF4 and 4 bytes."""
    if kind == "tmsi":
        return bytes([0xF4]) + bytes.fromhex(digits)
    t = {"imsi": 1, "imei": 2, "imeisv": 3}[kind]
    first = int(digits[0]) << 4 | (0x08 if len(digits) % 2 else 0) | t
    return bytes([first]) + tbcd(digits[1:])


def submit(mr, number, text, encoding="gsm7", concat=None):
    """An SMS-SUBMIT TPDU (TS 23.040 9.2.2.2), no validity period."""
    header = b""
    if concat:
        header = bytes([5, 0, 3]) + bytes(concat)  # UDHL 5: IE 0 (8-bit reference), reference, parts, part
    first = 0x01 | (0x40 if header else 0)
    da = bytes([len(number)]) + address(number)
    if encoding == "gsm7":
        fill = (7 - len(header) * 8 % 7) % 7
        body = pack7(septets(text), fill)
        udl = (len(header) * 8 + fill) // 7 + len(text)
        dcs = 0x00
        ud = header + body
    else:
        ud = header + text.encode("utf-16-be")
        udl = len(ud)
        dcs = 0x08
    return bytes([first, mr]) + da + bytes([0x00, dcs, udl]) + ud


def deliver(number, text):
    """An SMS-DELIVER TPDU (TS 23.040 9.2.2.1), 7-bit."""
    oa = bytes([len(number)]) + address(number)
    scts = bytes([0x52, 0x30, 0x41, 0x90, 0x00, 0x00, 0x40])  # 2025-03-14 09:00:00 +01:00 (semi-octets)
    return bytes([0x04]) + oa + bytes([0x00, 0x00]) + scts + bytes([len(text)]) + pack7(septets(text))


def cp_data(ti_flag, rp):
    return bytes([(0x80 if ti_flag else 0) | 0x09, 0x01, len(rp)]) + rp


def ussd_component(invoke, text):
    """A MAP processUnstructuredSS-Request invoke (A1) or its return result (A2), USSD string 7-bit packed (a
    carriage return fills a last octet's 7 spare bits, TS 23.038 6.1.2.3.1)."""
    values = septets(text)
    if len(values) * 7 % 8 == 1:
        values.append(0x0D)
    s = pack7(values)
    param = bytes([0x30, 3 + 2 + len(s), 0x04, 0x01, 0x0F, 0x04, len(s)]) + s
    if invoke:
        body = bytes([0x02, 0x01, 0x01, 0x02, 0x01, 0x3B]) + param
        return bytes([0xA1, len(body)]) + body
    result = bytes([0x30, 3 + len(param), 0x02, 0x01, 0x3B]) + param
    body = bytes([0x02, 0x01, 0x01]) + result
    return bytes([0xA2, len(body)]) + body


class Um:
    """GSMTAP (UDP 4729) from a lab BTS: LAPDm frames on SDCCH/8 sub-channels, segmented at 20 bytes."""

    def __init__(self, bench):
        self.bench = bench
        self.fn = 1000
        self.seq = {}  # (subslot, uplink, sapi) -> next N(S)

    def frame(self, t, subslot, uplink, sapi, control, info=b"", more=False):
        cr = 0 if uplink else 1
        lapdm = bytes([(sapi << 2) | (cr << 1) | 1, control, (len(info) << 2) | (2 if more else 0) | 1]) + info
        lapdm += b"\x2b" * (23 - len(lapdm))
        self.fn += 51
        arfcn = 871 | (0x4000 if uplink else 0)
        gsmtap = struct.pack("!BBBBHbbIBBBB", 2, 4, 1, 1, arfcn, -60, 0, self.fn, 8, 0, subslot, 0)
        self.bench.udp(t, "192.0.2.20", "192.0.2.21", 33000, 4729, gsmtap + lapdm, MAC["bts"], MAC["collector"])

    def sabm(self, t, subslot, sapi, info=b""):
        self.seq[(subslot, True, sapi)] = 0
        self.seq[(subslot, False, sapi)] = 0
        self.frame(t, subslot, True, sapi, 0x3F, info)
        self.frame(t + 0.01, subslot, False, sapi, 0x73)

    def send(self, t, subslot, uplink, sapi, l3):
        """An L3 message in I-frames of at most 20 bytes (M bit on all but the last)."""
        pieces = [l3[i:i + 20] for i in range(0, len(l3), 20)] or [b""]
        for k, piece in enumerate(pieces):
            key = (subslot, uplink, sapi)
            ns = self.seq.get(key, 0)
            self.seq[key] = (ns + 1) % 8
            nr = self.seq.get((subslot, not uplink, sapi), 0)
            self.frame(t + k * 0.235, subslot, uplink, sapi, (nr << 5) | (ns << 1), piece, more=k < len(pieces) - 1)
        return t + len(pieces) * 0.235

    def release(self, t, subslot):
        self.send(t, subslot, False, 0, bytes([0x06, 0x0D, 0x00]))


def gsm(out_dir):
    MAC["bts"] = bytes.fromhex("0200c0000020")
    MAC["collector"] = bytes.fromhex("0200c0000021")
    bench = Bench()
    um = Um(bench)
    X = {"imsi": "208101112223334", "imeisv": "4901542032375101", "tmsi": "1a2b3c4d", "smsc": "33689004000"}
    X["imei"] = "49015420323751" + luhn("49015420323751")
    lai = bytes([0x02, 0xF8, 0x01, 0x00, 0x17])  # MCC 208, MNC 10, LAC 23
    classmark2 = bytes([0x03, 0x57, 0x19, 0x81])
    t = T0
    messages = []

    # Location update: IMSI, identity request for the IMEISV, a new TMSI.
    um.sabm(t, 2, 0, bytes([0x05, 0x08, 0x70]) + lai + bytes([0x57, 8]) + mobile_identity("imsi", X["imsi"]))
    um.send(t + 0.1, 2, False, 0, bytes([0x05, 0x18, 0x03]))
    um.send(t + 0.3, 2, True, 0, bytes([0x05, 0x19, 9]) + mobile_identity("imeisv", X["imeisv"]))
    um.send(t + 0.5, 2, False, 0, bytes([0x05, 0x02]) + lai + bytes([0x17, 5]) + mobile_identity("tmsi", X["tmsi"]))
    um.send(t + 0.7, 2, True, 0, bytes([0x05, 0x1B]))
    um.release(t + 0.9, 2)

    def service(t, subslot, kind):
        """CM service request with the TMSI (4: SMS, 8: supplementary services, 1: call), then accept."""
        um.sabm(t, subslot, 0, bytes([0x05, 0x24, 0x70 | kind]) + classmark2 + bytes([5]) + mobile_identity("tmsi", X["tmsi"]))
        um.send(t + 0.1, subslot, False, 0, bytes([0x05, 0x21]))

    def sms(t, subslot, ref, tpdu, note):
        service(t, subslot, 4)
        um.sabm(t + 0.3, subslot, 3)
        rp = bytes([0x00, ref, 0x00]) + bytes([len(address(X["smsc"]))]) + address(X["smsc"]) + bytes([len(tpdu)]) + tpdu
        end = um.send(t + 0.5, subslot, True, 3, cp_data(False, rp))
        um.send(end + 0.1, subslot, False, 3, bytes([0x89, 0x04]))
        um.send(end + 0.3, subslot, False, 3, cp_data(True, bytes([0x03, ref])))
        um.send(end + 0.5, subslot, True, 3, bytes([0x09, 0x04]))
        um.release(end + 0.7, subslot)
        messages.append(dict(note, time=round(t, 6)))

    text1 = f"IMEI {X['imei']} loc 48.8566,2.3522"
    sms(T0 + 60, 3, 1, submit(1, "8613800138000", text1), {"kind": "sms", "number": "+8613800138000", "text": text1, "encoding": "gsm7"})
    text2 = f"Привет {X['imei']}"
    sms(T0 + 120, 3, 2, submit(2, "79161234567", text2, "ucs2"), {"kind": "sms", "number": "+79161234567", "text": text2, "encoding": "ucs2"})
    long_text = "Rapport complet: abonne " + X["imsi"] + " cellule 23 batterie 81 pct, contacts 42, fin."
    cut = long_text.index(X["imsi"]) + 7  # the IMSI straddles the two parts
    parts = [long_text[:cut], long_text[cut:]]
    for k, part in enumerate(parts):
        sms(T0 + 180 + 20 * k, 3, 3 + k, submit(3 + k, "8613800138000", part, concat=(0x42, 2, k + 1)),
            {"kind": "sms", "number": "+8613800138000", "text": part, "encoding": "gsm7", "concat": [0x42, 2, k + 1]})

    # USSD balance query.
    service(T0 + 240, 4, 8)
    register = bytes([0x0B, 0x3B]) + bytes([0x1C, len(ussd_component(True, "*100#"))]) + ussd_component(True, "*100#") + bytes([0x7F, 0x01, 0x00])
    end = um.send(T0 + 240.3, 4, True, 0, register)
    reply = bytes([0x8B, 0x2A]) + bytes([0x1C, len(ussd_component(False, "Solde: 5.00 EUR"))]) + ussd_component(False, "Solde: 5.00 EUR")
    um.send(end + 0.4, 4, False, 0, reply)
    um.release(end + 0.8, 4)
    messages.append({"kind": "ussd", "request": "*100#", "reply": "Solde: 5.00 EUR", "time": T0 + 240})

    # A benign SMS home.
    text3 = "On arrive dans 10 min"
    sms(T0 + 300, 3, 6, submit(6, "33612345678", text3), {"kind": "sms", "number": "+33612345678", "text": text3, "encoding": "gsm7"})

    # A call abroad: SETUP with the called party's number.
    service(T0 + 360, 5, 1)
    called = bytes([0x91]) + tbcd("861012345678")
    um.send(T0 + 360.3, 5, True, 0, bytes([0x03, 0x05, 0x04, 0x01, 0xA0, 0x5E, len(called)]) + called)
    um.release(T0 + 362, 5)
    messages.append({"kind": "call", "number": "+861012345678", "time": T0 + 360})

    # A mobile-terminated SMS from home (paging, then the SMS down).
    um.sabm(T0 + 420, 6, 0, bytes([0x06, 0x27, 0x07]) + classmark2 + bytes([5]) + mobile_identity("tmsi", X["tmsi"]))
    um.sabm(T0 + 420.3, 6, 3)
    rp = bytes([0x01, 0x10, len(address(X["smsc"]))]) + address(X["smsc"]) + bytes([0x00])
    tpdu = deliver("33698765432", "Rdv demain 9h")
    end = um.send(T0 + 420.5, 6, False, 3, cp_data(False, rp + bytes([len(tpdu)]) + tpdu))
    um.send(end + 0.2, 6, True, 3, bytes([0x89, 0x04]))
    um.release(end + 0.5, 6)
    messages.append({"kind": "sms-deliver", "number": "+33698765432", "text": "Rdv demain 9h", "time": T0 + 420})

    # A heartbeat: an SMS every 15 min (jitter under 20 s) to another number abroad.
    rng = random.Random(1617)
    beats = []
    for i in range(6):
        when = T0 + 900 + 900 * i + rng.uniform(-20, 20)
        beats.append(round(when, 6))
        sms(when, 7, 20 + i, submit(20 + i, "8613900139000", f"HB {i} ok"),
            {"kind": "sms", "number": "+8613900139000", "text": f"HB {i} ok", "encoding": "gsm7"})

    path = os.path.join(out_dir, "gsm-bench.pcap")
    count = bench.cap.write(path)
    # The same GSMTAP packets without Ethernet, IP and UDP: LINKTYPE_GSMTAP_UM (217).
    bench.cap.write(os.path.join(out_dir, "gsm-bench-linktype.pcap"), linktype=217, strip=14 + 20 + 8)
    manifest = {"phone": X, "messages": messages, "heartbeat": {"number": "+8613900139000", "times": beats}, "packets": count}
    with open(os.path.join(out_dir, "gsm-bench.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: {count} packets")


if __name__ == "__main__":
    main()
    gsm(GSM_OUT)
