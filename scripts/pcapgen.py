"""Packet builders the capture generators share (gen_sample.py, gen_scenarios.py): Ethernet/IPv4/UDP/TCP frames,
TCP connections (handshake, data, FIN), DNS queries and answers (A, AAAA, CNAME, TXT), DHCP, TLS records
(ClientHello with or without SNI, TLS 1.0-1.3 server flights, Certificate messages with hand-built DER
certificates), HTTP/1.1 and MQTT messages, and the pcap writer.

Everything random comes from the `random.Random` a `Capture` is given, and every time from the caller: the same
calls in the same order write the same bytes.
"""
import hashlib, ipaddress, os, struct
from inet import checksum

DEVICE_MAC = bytes.fromhex("02a4c2113302")
ROUTER_MAC = bytes.fromhex("0222334455aa")


def ip(a):
    """An IPv4 or IPv6 address's bytes."""
    return ipaddress.ip_address(a).packed


def is6(a):
    return ":" in a


def pseudo_header(src, dst, proto, length):
    """The pseudo-header TCP, UDP and ICMPv6 checksums cover (RFC 768/793 for IPv4, RFC 8200 8.1 for IPv6)."""
    if is6(src):
        return ip(src) + ip(dst) + struct.pack("!IxxxB", length, proto)
    return ip(src) + ip(dst) + struct.pack("!BBH", 0, proto, length)


def link_local(mac):
    """The modified EUI-64 link-local address of a MAC (RFC 4291 2.5.1)."""
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + eui))


def solicited_node(address):
    """ff02::1:ffXX:XXXX and its multicast MAC 33:33:ff:XX:XX:XX, for an IPv6 address."""
    tail = ip(address)[-3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + tail)), b"\x33\x33\xff" + tail


class Capture:
    """Packets of one capture: a device behind a router (its gateway and DNS resolver) on an Ethernet LAN."""

    def __init__(self, rng, device="192.168.1.23", router="192.168.1.1", device_mac=DEVICE_MAC, router_mac=ROUTER_MAC):
        self.rng = rng
        self.device, self.router = device, router
        self.device_mac, self.router_mac = device_mac, router_mac
        self.packets = []
        self.device6 = None  # the IPv6 address the device uses now (dual-stack scenarios)
        self.ident = 0
        self.dns_log = []    # {"name", "answers", "time"} per DNS exchange
        self.flow_log = []   # {"server", "port", "client_port", "sent", "received"} per closed TCP connection
        self.payloads = []   # (proto, server, port, bytes) the device sent: for the generators' own checks

    # Layers 2-4.

    def ipv6(self, src, dst, proto, payload, hop_limit=64):
        return struct.pack("!IHBB", 6 << 28, len(payload), proto, hop_limit) + ip(src) + ip(dst) + payload

    def ipv4(self, src, dst, proto, payload, ttl=64):
        self.ident += 1
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ident & 0xFFFF, 0x4000, ttl, proto, 0,
                        ip(src), ip(dst))
        h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
        return h + payload

    def frame(self, t, src, dst, proto, l4, from_device, ttl=64, dst_mac=None):
        """An Ethernet frame between the device and the router (IPv4 or IPv6, by the addresses); `dst_mac`
        overrides the receiver's MAC (multicast)."""
        src_mac, to_mac = (self.device_mac, self.router_mac) if from_device else (self.router_mac, self.device_mac)
        if is6(src):
            self.packets.append((t, (dst_mac or to_mac) + src_mac + b"\x86\xdd" + self.ipv6(src, dst, proto, l4, ttl)))
        else:
            self.packets.append((t, (dst_mac or to_mac) + src_mac + b"\x08\x00" + self.ipv4(src, dst, proto, l4, ttl)))

    def udp(self, t, src, sport, dst, dport, payload, from_device):
        u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        pseudo = pseudo_header(src, dst, 17, len(u))
        u = u[:6] + struct.pack("!H", checksum(pseudo + u) or 0xFFFF) + u[8:]
        self.frame(t, src, dst, 17, u, from_device)

    def udp_exchange(self, t, server, sport, dport, request, reply=None, delay=0.03):
        """A UDP datagram from the device and, when `reply` is given, the server's answer."""
        self.udp(t, self.device, sport, server, dport, request, True)
        self.payloads.append(("udp", server, dport, request))
        if reply is not None:
            self.udp(t + delay, server, dport, self.device, sport, reply, False)

    # IPv6 neighbour discovery (RFC 4861, 4862).

    def icmpv6(self, t, src, dst, body, from_device, dst_mac):
        pseudo = pseudo_header(src, dst, 58, len(body))
        body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
        self.frame(t, src, dst, 58, body, from_device, ttl=255, dst_mac=dst_mac)

    def router_advertisement(self, t, prefix, prefix_length=64):
        """The router's advertisement to all nodes: itself as default router, `prefix` on-link and for SLAAC."""
        body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
        body += bytes([1, 1]) + self.router_mac  # source link-layer address
        body += struct.pack("!BBBBIII", 3, 4, prefix_length, 0xC0, 86400, 14400, 0) + ip(prefix)
        self.icmpv6(t, link_local(self.router_mac), "ff02::1", body, False, b"\x33\x33\x00\x00\x00\x01")

    def duplicate_address_detection(self, t, address):
        """The device's neighbour solicitation from :: for an address it is configuring (RFC 4862 5.4)."""
        group, group_mac = solicited_node(address)
        self.icmpv6(t, "::", group, struct.pack("!BBHI", 135, 0, 0, 0) + ip(address), True, group_mac)

    def router_solicitation(self, t):
        body = struct.pack("!BBHI", 133, 0, 0, 0) + bytes([1, 1]) + self.device_mac
        self.icmpv6(t, link_local(self.device_mac), "ff02::2", body, True, b"\x33\x33\x00\x00\x00\x02")

    def tcp_segment(self, t, src, sport, dst, dport, seq, ack, flags, payload, from_device, ttl=64, csum="good"):
        # (IPv4 or IPv6, by the addresses.)
        """`csum`: "good"; "bad" (the right one plus 0x1111: a receiver drops the segment); "offload" (the folded
        pseudo-header sum, what Linux leaves for the NIC to complete when the capture is taken on the sender);
        "zero" (0, what some offloading stacks leave, and the cheapest forgery)."""
        if not flags & 0x10:
            ack = 0  # the acknowledgment field is only meaningful with ACK set
        h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
        pseudo = pseudo_header(src, dst, 6, len(h) + len(payload))
        value = checksum(pseudo + h + payload)
        if csum == "bad":
            value = (value + 0x1111) & 0xFFFF
        elif csum == "offload":
            value = 0xFFFF - checksum(pseudo)  # checksum() complements: undo it to get the folded sum
        elif csum == "zero":
            value = 0
        h = h[:16] + struct.pack("!H", value) + h[18:]
        self.frame(t, src, dst, 6, h + payload, from_device, ttl)

    def tcp(self, t, server, sport, dport, **options):
        return TCP(self, t, server, sport, dport, **options)

    def unanswered_syn(self, t, server, sport, dport, retries=(1.0, 3.0)):
        """A SYN nobody answers, and its retransmissions `retries` seconds after it."""
        seq = self.rng.randrange(1 << 31)
        for dt in (0.0,) + tuple(retries):
            self.tcp_segment(t + dt, self.device, sport, server, dport, seq, 0, 0x02, b"", True)

    # DNS and DHCP.

    def dns(self, t, qid, name, answers, qtype="A", rcode=0, server=None, sport=None):
        """A query and its answer; answers: [(owner, type, value)], type A, AAAA, CNAME or TXT."""
        server = server or self.router
        sport = sport or 40000 + qid % 20000
        q = dns_query(qid, name, qtype)
        device = self.device if is6(server) == is6(self.device) else self.device6
        self.udp(t, device, sport, server, 53, q, True)
        self.payloads.append(("dns", server, 53, q))
        self.udp(t + 0.015, server, 53, device, sport, dns_response(qid, name, qtype, answers, rcode), False)
        self.dns_log.append({"name": name, "answers": [list(a) for a in answers], "time": t})

    def dhcp(self, t, msg_type, from_device, hostname="mini-phone-x9", vendor_class="android-dhcp-9", xid=0x5EED1234):
        b = struct.pack("!BBBBIHH4s4s4s4s", 1 if from_device else 2, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                        ip(self.device) if not from_device else b"\0" * 4, b"\0" * 4, b"\0" * 4)
        b += self.device_mac + b"\0" * 10 + b"\0" * 192 + bytes.fromhex("63825363")
        opts = bytes([53, 1, msg_type])
        if from_device:
            opts += bytes([12, len(hostname)]) + hostname.encode() + bytes([60, len(vendor_class)]) + vendor_class.encode()
            opts += bytes([55, 4, 1, 3, 6, 15])
            if msg_type == 3:
                opts += bytes([50, 4]) + ip(self.device) + bytes([54, 4]) + ip(self.router)
        else:
            opts += bytes([54, 4]) + ip(self.router) + bytes([51, 4]) + struct.pack("!I", 86400)
            opts += bytes([1, 4]) + ip("255.255.255.0") + bytes([3, 4]) + ip(self.router) + bytes([6, 4]) + ip(self.router)
        b += opts + bytes([255])
        if from_device:
            u = struct.pack("!HHHH", 68, 67, 8 + len(b), 0) + b
            pseudo = ip("0.0.0.0") + ip("255.255.255.255") + struct.pack("!BBH", 0, 17, len(u))
            u = u[:6] + struct.pack("!H", checksum(pseudo + u) or 0xFFFF) + u[8:]
            packet = self.ipv4("0.0.0.0", "255.255.255.255", 17, u)
            self.packets.append((t, b"\xff" * 6 + self.device_mac + b"\x08\x00" + packet))
        else:
            self.udp(t, self.router, 67, self.device, 68, b, False)

    # Output.

    def write(self, path, linktype=1, strip=0):
        """Writes the packets, in time order (stable for equal times), as a pcap file (microseconds): Ethernet by
        default, or another `linktype` with the first `strip` bytes of every packet left out."""
        self.packets.sort(key=lambda p: p[0])
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
            for ts, data in self.packets:
                data = data[strip:]
                sec = int(ts)
                usec = int(round((ts - sec) * 1e6))
                if usec == 1_000_000:
                    sec, usec = sec + 1, 0
                f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        return len(self.packets)


class TCP:
    """One connection from the device: handshake, exchanges, close; times advance a few ms per packet."""

    def __init__(self, cap, t, server, sport, dport, server_ttl=64, device_csum="good", synack_ttl=None):
        self.cap = cap
        # The device's address of the server's family (its current IPv6 address for an IPv6 server).
        self.device = cap.device if is6(server) == is6(cap.device) else cap.device6
        self.t, self.server, self.sport, self.dport = t, server, sport, dport
        self.server_ttl, self.device_csum = server_ttl, device_csum
        self.cseq, self.sseq = cap.rng.randrange(1 << 31), cap.rng.randrange(1 << 31)
        self.sent = self.received = 0
        self.seg(True, 0x02, b"")
        self.cseq += 1
        self.seg(False, 0x12, b"", ttl=synack_ttl)
        self.sseq += 1
        self.seg(True, 0x10, b"")

    def seg(self, from_device, flags, payload, seq=None, ttl=None, csum=None):
        """One segment; `seq` (default: the next byte) only for retransmissions and overlaps; `ttl` and `csum`
        override the connection's (64 from the device, `server_ttl` from the server; `device_csum`, else good)."""
        self.t += 0.002 + self.cap.rng.random() * 0.01
        d = self.device
        if from_device:
            self.cap.tcp_segment(self.t, d, self.sport, self.server, self.dport, self.cseq if seq is None else seq,
                                 self.sseq, flags, payload, True, ttl or 64, csum or self.device_csum)
        else:
            self.cap.tcp_segment(self.t, self.server, self.dport, d, self.sport, self.sseq if seq is None else seq,
                                 self.cseq, flags, payload, False, ttl or self.server_ttl, csum or "good")

    def wait(self, seconds):
        self.t += seconds

    def send(self, data, mss=1400, ack_every=0):
        self.push(True, data, mss, ack_every)

    def reply(self, data, mss=1400, ack_every=0):
        self.push(False, data, mss, ack_every)

    def push(self, from_device, data, mss, ack_every=0):
        """`data` in segments of at most `mss` bytes, then the peer's ACK (also every `ack_every` segments)."""
        if from_device:
            self.cap.payloads.append(("tcp", self.server, self.dport, data))
        n = 0
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.seg(from_device, 0x18, chunk)
            if from_device:
                self.cseq += len(chunk)
                self.sent += len(chunk)
            else:
                self.sseq += len(chunk)
                self.received += len(chunk)
            n += 1
            if ack_every and n % ack_every == 0 and i + mss < len(data):
                self.seg(not from_device, 0x10, b"")
        self.seg(not from_device, 0x10, b"")

    def resend(self, from_device, offset, data):
        """A segment of the device's (or the server's) stream sent again, `offset` bytes before the next byte."""
        base = self.cseq if from_device else self.sseq
        self.seg(from_device, 0x18, data, seq=(base - offset) & 0xFFFFFFFF)

    def close(self):
        self.seg(True, 0x11, b"")
        self.cseq += 1
        self.seg(False, 0x11, b"")
        self.sseq += 1
        self.seg(True, 0x10, b"")
        self.cap.flow_log.append({"server": self.server, "port": self.dport, "client_port": self.sport,
                                  "sent": self.sent, "received": self.received})
        return self.t


# DNS messages.

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "NULL": 10, "TXT": 16, "AAAA": 28}


def dns_name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\0"


def dns_query(qid, name, qtype="A"):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", QTYPES[qtype], 1)


def dns_response(qid, name, qtype, answers, rcode=0):
    body = b""
    for owner, typ, value in answers:
        if typ == "A":
            rdata = ip(value)
        elif typ == "AAAA":
            rdata = ip(value) if ":" in value else bytes.fromhex(value)
        elif typ == "TXT":
            strings = value if isinstance(value, list) else [value]
            rdata = b"".join(bytes([len(s)]) + s.encode() for s in strings)
        else:
            rdata = dns_name(value)
        body += dns_name(owner) + struct.pack("!HHIH", QTYPES[typ], 1, 300, len(rdata)) + rdata
    return (struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0) + dns_name(name)
            + struct.pack("!HH", QTYPES[qtype], 1) + body)


# TLS.

def record(content_type, version, payload):
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type, body):
    return bytes([msg_type]) + struct.pack("!I", len(body))[1:] + body


def client_hello(rng, sni, ciphers=(0xC02F, 0xC030, 0xC02B, 0x009C, 0x002F), tls13=False, alpn=True):
    """A ClientHello (legacy version TLS 1.2, record version TLS 1.0); no server_name extension when `sni` is None.
    With `tls13`, a 32-byte session id, TLS 1.3 suites first, supported_versions, key_share (x25519) and
    psk_key_exchange_modes."""
    ext = b""
    if sni is not None:
        name = sni.encode()
        ext += struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    ext += struct.pack("!HHH", 10, 6, 4) + struct.pack("!HH", 29, 23)
    ext += struct.pack("!HHB", 11, 2, 1) + b"\0"
    ext += struct.pack("!HHH", 13, 6, 4) + struct.pack("!HH", 0x0403, 0x0804)
    if alpn:
        a = b"\x02h2\x08http/1.1"
        ext += struct.pack("!HHH", 16, len(a) + 2, len(a)) + a
    if tls13:
        ciphers = (0x1301, 0x1302, 0x1303) + tuple(ciphers)
    body = struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32))
    if tls13:
        body += b"\x20" + bytes(rng.randrange(256) for _ in range(32))
        ext += struct.pack("!HHB", 43, 5, 4) + struct.pack("!HH", 0x0304, 0x0303)
        key = bytes(rng.randrange(256) for _ in range(32))
        ext += struct.pack("!HHHHH", 51, 38, 36, 29, 32) + key
        ext += struct.pack("!HHBB", 45, 2, 1, 1)
    else:
        body += b"\0"
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers) + b"\x01\x00"
    body += struct.pack("!H", len(ext)) + ext
    return record(22, 0x0301, handshake(1, body))


def server_hello(rng):
    """A TLS 1.2 ServerHello and ServerHelloDone, then ChangeCipherSpec (the short form gen_sample.py uses)."""
    body = struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32)) + b"\0" + struct.pack("!H", 0xC02F) + b"\0"
    body += struct.pack("!H", 0)
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    done = b"\x0e\x00\x00\x00"
    return b"\x16\x03\x03" + struct.pack("!H", len(hs) + 4) + hs + done + b"\x14\x03\x03\x00\x01\x01"


def server_flight(rng, certificates, version=0x0303, cipher=0x009C):
    """A TLS 1.0-1.2 server's first flight, one record: ServerHello, Certificate (DER certificates, leaf first),
    ServerHelloDone. RSA key exchange suites (no ServerKeyExchange)."""
    sh = struct.pack("!H", version) + bytes(rng.randrange(256) for _ in range(32)) + b"\0" + struct.pack("!H", cipher)
    sh += b"\0" + struct.pack("!HHHB", 5, 0xFF01, 1, 0)  # renegotiation_info
    chain = b"".join(struct.pack("!I", len(c))[1:] + c for c in certificates)
    msgs = handshake(2, sh) + handshake(11, struct.pack("!I", len(chain))[1:] + chain) + handshake(14, b"")
    return record(22, version, msgs)


def client_finish(rng, version=0x0303):
    """ClientKeyExchange (RSA, 256 bytes), ChangeCipherSpec and the encrypted Finished."""
    cke = handshake(16, struct.pack("!H", 256) + bytes(rng.randrange(256) for _ in range(256)))
    return (record(22, version, cke) + record(20, version, b"\x01")
            + record(22, version, bytes(rng.randrange(256) for _ in range(40 if version >= 0x0302 else 48))))


def server_finish(rng, version=0x0303):
    """The server's ChangeCipherSpec and encrypted Finished."""
    finished = bytes(rng.randrange(256) for _ in range(40 if version >= 0x0302 else 48))
    return record(20, version, b"\x01") + record(22, version, finished)


def server_hello13(rng, session_id):
    """A TLS 1.3 ServerHello (TLS_AES_128_GCM_SHA256, x25519), the compatibility ChangeCipherSpec and the encrypted
    rest of the server's flight (EncryptedExtensions, Certificate, CertificateVerify, Finished) as opaque records."""
    key = bytes(rng.randrange(256) for _ in range(32))
    ext = struct.pack("!HHH", 43, 2, 0x0304) + struct.pack("!HHHH", 51, 36, 29, 32) + key
    sh = struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32)) + bytes([len(session_id)]) + session_id
    sh += struct.pack("!HB", 0x1301, 0) + struct.pack("!H", len(ext)) + ext
    out = record(22, 0x0303, handshake(2, sh)) + record(20, 0x0303, b"\x01")
    for n in (2400, 280, 69):
        out += record(23, 0x0303, bytes(rng.randrange(256) for _ in range(n)))
    return out


def client_finish13(rng):
    """The client's compatibility ChangeCipherSpec and its encrypted Finished."""
    return record(20, 0x0303, b"\x01") + record(23, 0x0303, bytes(rng.randrange(256) for _ in range(53)))


def app_data(rng, total, version=0x0303):
    """`total` bytes of TLS application_data records (opaque ciphertext), at most 4,096 bytes of payload each."""
    out = b""
    while len(out) < total:
        n = min(4096, total - len(out) - 5)
        out += b"\x17" + struct.pack("!H", version) + struct.pack("!H", n) + bytes(rng.randrange(256) for _ in range(n))
    return out


# X.509 certificates (DER, by hand: the signatures are deterministic filler, never verified).

def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + body


def der_oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return der(0x06, out)


def der_int(value):
    b = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return der(0x02, b)


def x509_name(cn, o=None, c=None):
    """A Name: C (PrintableString), O and CN (UTF8String), in that order."""
    rdns = []
    if c:
        rdns.append(der(0x31, der(0x30, der_oid("2.5.4.6") + der(0x13, c.encode()))))
    if o:
        rdns.append(der(0x31, der(0x30, der_oid("2.5.4.10") + der(0x0C, o.encode()))))
    rdns.append(der(0x31, der(0x30, der_oid("2.5.4.3") + der(0x0C, cn.encode()))))
    return der(0x30, b"".join(rdns))


def _filler(seed, n):
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return out[:n]


def certificate(subject, issuer, dns_names=(), serial=1, not_before="250101000000Z", not_after="260101000000Z", ca=False):
    """A v3 certificate, sha256WithRSAEncryption, RSA 2048 key. `subject` and `issuer` are Name DER (x509_name);
    `dns_names` go into a subjectAltName extension; `ca` adds basicConstraints cA. Key and signature bytes are
    derived from the subject and serial, so the same arguments give the same bytes."""
    seed = subject.hex() + str(serial)
    sig_alg = der(0x30, der_oid("1.2.840.113549.1.1.11") + b"\x05\x00")
    modulus = bytearray(_filler("n" + seed, 256))
    modulus[0] |= 0x80
    modulus[-1] |= 1
    rsa_key = der(0x30, der(0x02, b"\0" + bytes(modulus)) + der_int(65537))
    spki = der(0x30, der(0x30, der_oid("1.2.840.113549.1.1.1") + b"\x05\x00") + der(0x03, b"\0" + rsa_key))
    exts = b""
    if ca:
        exts += der(0x30, der_oid("2.5.29.19") + der(0x01, b"\xff") + der(0x04, der(0x30, der(0x01, b"\xff"))))
    if dns_names:
        san = der(0x30, b"".join(der(0x82, n.encode()) for n in dns_names))
        exts += der(0x30, der_oid("2.5.29.17") + der(0x04, san))
    tbs = der(0xA0, der_int(2)) + der_int(serial) + sig_alg + issuer
    tbs += der(0x30, der(0x17, not_before.encode()) + der(0x17, not_after.encode())) + subject + spki
    if exts:
        tbs += der(0xA3, der(0x30, exts))
    tbs = der(0x30, tbs)
    return der(0x30, tbs + sig_alg + der(0x03, b"\0" + _filler("s" + seed, 256)))


# HTTP and MQTT.

def http_request(method, path, host, body=b"", content_type="application/json", headers=()):
    h = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: okhttp/3.12.1\r\n"
    for k, v in headers:
        h += f"{k}: {v}\r\n"
    if body or method in ("POST", "PUT"):
        h += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return (h + "\r\n").encode() + body


def http_response(status=200, reason="OK", body=b"", content_type="application/json"):
    h = f"HTTP/1.1 {status} {reason}\r\n"
    if body:
        h += f"Content-Type: {content_type}\r\n"
    h += f"Content-Length: {len(body)}\r\n\r\n"
    return h.encode() + body


def _mqtt(first, body):
    n, length = len(body), b""
    while True:
        b = n & 0x7F
        n >>= 7
        length += bytes([b | (0x80 if n else 0)])
        if not n:
            return bytes([first]) + length + body


def _mqtt_string(s):
    return struct.pack("!H", len(s)) + s


def mqtt_connect(client_id, keepalive=60):
    return _mqtt(0x10, _mqtt_string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _mqtt_string(client_id))


def mqtt_connack():
    return b"\x20\x02\x00\x00"


def mqtt_publish(topic, payload):
    """A PUBLISH at QoS 0."""
    return _mqtt(0x30, _mqtt_string(topic) + payload)


def mqtt_disconnect():
    return b"\xe0\x00"
