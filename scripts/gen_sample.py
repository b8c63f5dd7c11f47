#!/usr/bin/env python3
"""Writes the sample capture the README's first command scans: a "mini phone" with a backdoor, on a lab Wi-Fi.

Usage: scripts/gen_sample.py [OUT.pcap] [MANIFEST.json]   (defaults: captures/sample/backdoor-phone.pcap, .json)
Deterministic (fixed seed and clock). What the device does, in capture order (all recorded in the manifest):
- DHCP: DISCOVER/OFFER/REQUEST/ACK, hostname "mini-phone-x9", vendor class "android-dhcp-9".
- DNS through the router (192.168.1.1): www.free.fr -> 212.27.48.10 (Free, FR), www.gandi.net -> 217.70.184.38
  (Gandi, FR), update.oportik-cloud.cn -> CNAME edge.oportik-cloud.cn -> 120.77.166.21 (Alibaba, CN).
- Benign HTTPS to the two French servers (TLS 1.2 ClientHello with SNI, a short exchange, FIN).
- A beacon to 120.77.166.21:8080 every 60 s (jitter up to 2 s), 12 times: a small HTTP GET /ping.
- An HTTP POST to update.oportik-cloud.cn:80 /api/v2/report with the device's IMEI, IMSI, phone number and location.
- A hard-coded address (no DNS): 45.77.0.1:5555 (The Constant Company, US), a raw upload of 24 KB.
Addresses outside the lab are real public ones on purpose (the file is only read, never replayed): they give the
geolocation something to find. Nothing here is sent anywhere.
"""
import json, random, struct, sys, os
from inet import checksum

OUT = sys.argv[1] if len(sys.argv) > 1 else "captures/sample/backdoor-phone.pcap"
MANIFEST = sys.argv[2] if len(sys.argv) > 2 else "captures/sample/backdoor-phone.json"
rng = random.Random(2025)
T0 = 1741942800.0  # 2025-03-14T09:00:00Z
PHONE_MAC = bytes.fromhex("02a4c2113302")
ROUTER_MAC = bytes.fromhex("0222334455aa")
PHONE = "192.168.1.23"
ROUTER = "192.168.1.1"
IMEI, IMSI, MSISDN = "356938035643809", "208150123456789", "+33612345678"
packets = []
manifest = {"device": {"mac": "02:a4:c2:11:33:02", "ip": PHONE, "hostname": "mini-phone-x9", "vendor_class": "android-dhcp-9"},
            "dns": [], "tls": [], "beacons": [], "uploads": [], "flows": []}


def ip(a):
    return bytes(int(x) for x in a.split("."))


def ipv4(src, dst, proto, payload, ident=[0]):
    ident[0] += 1
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident[0] & 0xFFFF, 0x4000, 64, proto, 0, ip(src), ip(dst))
    h = h[:10] + struct.pack("!H", checksum(h)) + h[12:]
    return h + payload


def frame(t, src_mac, dst_mac, src, dst, proto, l4):
    packets.append((t, dst_mac + src_mac + b"\x08\x00" + ipv4(src, dst, proto, l4)))


def udp(t, src, sport, dst, dport, payload, from_phone):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, 17, len(u))
    u = u[:6] + struct.pack("!H", checksum(pseudo + u) or 0xFFFF) + u[8:]
    frame(t, PHONE_MAC if from_phone else ROUTER_MAC, ROUTER_MAC if from_phone else PHONE_MAC, src, dst, 17, u)


def tcp_segment(t, src, sport, dst, dport, seq, ack, flags, payload, from_phone):
    if not flags & 0x10:
        ack = 0  # the acknowledgment field is only meaningful with ACK set
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, 6, len(h) + len(payload))
    h = h[:16] + struct.pack("!H", checksum(pseudo + h + payload)) + h[18:]
    frame(t, PHONE_MAC if from_phone else ROUTER_MAC, ROUTER_MAC if from_phone else PHONE_MAC, src, dst, 6, h + payload)


class TCP:
    """One connection from the phone: handshake, exchanges, close; times advance a few ms per packet."""
    def __init__(self, t, server, sport, dport):
        self.t, self.server, self.sport, self.dport = t, server, sport, dport
        self.cseq, self.sseq = rng.randrange(1 << 31), rng.randrange(1 << 31)
        self.sent = self.received = 0
        self.seg(True, 0x02, b"")
        self.cseq += 1
        self.seg(False, 0x12, b"")
        self.sseq += 1
        self.seg(True, 0x10, b"")

    def seg(self, from_phone, flags, payload):
        self.t += 0.002 + rng.random() * 0.01
        if from_phone:
            tcp_segment(self.t, PHONE, self.sport, self.server, self.dport, self.cseq, self.sseq, flags, payload, True)
        else:
            tcp_segment(self.t, self.server, self.dport, PHONE, self.sport, self.sseq, self.cseq, flags, payload, False)

    def send(self, data, mss=1400):
        self.push(True, data, mss)

    def reply(self, data, mss=1400):
        self.push(False, data, mss)

    def push(self, from_phone, data, mss):
        """`data` in segments of at most `mss` bytes, then the peer's ACK."""
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            self.seg(from_phone, 0x18, chunk)
            if from_phone:
                self.cseq += len(chunk)
                self.sent += len(chunk)
            else:
                self.sseq += len(chunk)
                self.received += len(chunk)
        self.seg(not from_phone, 0x10, b"")

    def close(self):
        self.seg(True, 0x11, b"")
        self.cseq += 1
        self.seg(False, 0x11, b"")
        self.sseq += 1
        self.seg(True, 0x10, b"")
        manifest["flows"].append({"server": self.server, "port": self.dport, "client_port": self.sport,
                                  "sent": self.sent, "received": self.received})
        return self.t


def dns_name(n):
    return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".")) + b"\0"


def dns(t, qid, name, answers):
    """A query and its answer; answers: [(owner, type, value)] with type 'A' or 'CNAME'."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack("!HH", 1, 1)
    sport = 40000 + qid % 20000
    udp(t, PHONE, sport, ROUTER, 53, q, True)
    body = b""
    for owner, typ, value in answers:
        rdata = ip(value) if typ == "A" else dns_name(value)
        body += dns_name(owner) + struct.pack("!HHIH", 1 if typ == "A" else 5, 1, 300, len(rdata)) + rdata
    r = struct.pack("!HHHHHH", qid, 0x8180, 1, len(answers), 0, 0) + dns_name(name) + struct.pack("!HH", 1, 1) + body
    udp(t + 0.015, ROUTER, 53, PHONE, sport, r, False)
    manifest["dns"].append({"name": name, "answers": [list(a) for a in answers], "time": t})


def dhcp(t, msg_type, from_phone):
    xid = 0x5EED1234
    b = struct.pack("!BBBBIHH4s4s4s4s", 1 if from_phone else 2, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                    ip(PHONE) if not from_phone else b"\0" * 4, b"\0" * 4, b"\0" * 4)
    b += PHONE_MAC + b"\0" * 10 + b"\0" * 192 + bytes.fromhex("63825363")
    opts = bytes([53, 1, msg_type])
    if from_phone:
        opts += bytes([12, 13]) + b"mini-phone-x9" + bytes([60, 14]) + b"android-dhcp-9" + bytes([55, 4, 1, 3, 6, 15])
        if msg_type == 3:
            opts += bytes([50, 4]) + ip(PHONE) + bytes([54, 4]) + ip(ROUTER)
    else:
        opts += bytes([54, 4]) + ip(ROUTER) + bytes([51, 4]) + struct.pack("!I", 86400) + bytes([1, 4]) + ip("255.255.255.0")
        opts += bytes([3, 4]) + ip(ROUTER) + bytes([6, 4]) + ip(ROUTER)
    b += opts + bytes([255])
    if from_phone:
        u = struct.pack("!HHHH", 68, 67, 8 + len(b), 0) + b
        pseudo = ip("0.0.0.0") + ip("255.255.255.255") + struct.pack("!BBH", 0, 17, len(u))
        u = u[:6] + struct.pack("!H", checksum(pseudo + u) or 0xFFFF) + u[8:]
        packets.append((t, b"\xff" * 6 + PHONE_MAC + b"\x08\x00" + ipv4("0.0.0.0", "255.255.255.255", 17, u)))
    else:
        udp(t, ROUTER, 67, PHONE, 68, b, False)


def client_hello(sni):
    ext = b""
    name = sni.encode()
    ext += struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    ext += struct.pack("!HHH", 10, 6, 4) + struct.pack("!HH", 29, 23)
    ext += struct.pack("!HHB", 11, 2, 1) + b"\0"
    ext += struct.pack("!HHH", 13, 6, 4) + struct.pack("!HH", 0x0403, 0x0804)
    alpn = b"\x02h2\x08http/1.1"
    ext += struct.pack("!HHH", 16, len(alpn) + 2, len(alpn)) + alpn
    ciphers = [0xC02F, 0xC030, 0xC02B, 0x009C, 0x002F]
    body = struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32)) + b"\0"
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers) + b"\x01\x00"
    body += struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def server_hello():
    body = struct.pack("!H", 0x0303) + bytes(rng.randrange(256) for _ in range(32)) + b"\0" + struct.pack("!H", 0xC02F) + b"\0"
    body += struct.pack("!H", 0)
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    done = b"\x0e\x00\x00\x00"
    return b"\x16\x03\x03" + struct.pack("!H", len(hs) + 4) + hs + done + b"\x14\x03\x03\x00\x01\x01"


def app_data(total):
    """`total` bytes of TLS application_data records (opaque ciphertext), at most 4,096 bytes of payload each."""
    out = b""
    while len(out) < total:
        n = min(4096, total - len(out) - 5)
        out += b"\x17\x03\x03" + struct.pack("!H", n) + bytes(rng.randrange(256) for _ in range(n))
    return out


def main():
    t = T0
    for k, (typ, phone) in enumerate([(1, True), (2, False), (3, True), (5, False)]):
        dhcp(t + k * 0.05, typ, phone)
    t += 1
    dns(t, 101, "www.free.fr", [("www.free.fr", "A", "212.27.48.10")])
    dns(t + 0.2, 102, "www.gandi.net", [("www.gandi.net", "A", "217.70.184.38")])
    dns(t + 0.4, 103, "update.oportik-cloud.cn", [("update.oportik-cloud.cn", "CNAME", "edge.oportik-cloud.cn"),
                                                  ("edge.oportik-cloud.cn", "A", "120.77.166.21")])
    for k, (server, sni) in enumerate([("212.27.48.10", "www.free.fr"), ("217.70.184.38", "www.gandi.net")]):
        c = TCP(t + 1 + k, server, 50100 + k, 443)
        c.send(client_hello(sni))
        c.reply(server_hello())
        c.send(app_data(600))
        c.reply(app_data(9000))
        c.close()
        manifest["tls"].append({"server": server, "sni": sni})
    # Beacons: a GET every 60 s (+/- 2 s) to the foreign host, on a non-standard port.
    start = t + 10
    for k in range(12):
        bt = start + 60 * k + rng.uniform(-2, 2)
        c = TCP(bt, "120.77.166.21", 51000 + k, 8080)
        c.send(b"GET /ping?id=x9 HTTP/1.1\r\nHost: edge.oportik-cloud.cn:8080\r\nUser-Agent: okhttp/3.12.1\r\n\r\n")
        c.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.close()
        manifest["beacons"].append({"time": bt, "server": "120.77.166.21", "port": 8080})
    # The identifier upload.
    body = json.dumps({"imei": IMEI, "imsi": IMSI, "msisdn": MSISDN, "lat": 48.8566, "lon": 2.3522,
                       "contacts": ["+33698765432", "+33145678901"], "sms_count": 214}).encode()
    c = TCP(start + 125, "120.77.166.21", 52000, 80)
    c.send(b"POST /api/v2/report HTTP/1.1\r\nHost: update.oportik-cloud.cn\r\nUser-Agent: okhttp/3.12.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    c.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
    c.close()
    manifest["uploads"].append({"time": start + 125, "server": "120.77.166.21", "host": "update.oportik-cloud.cn",
                                "path": "/api/v2/report",
                                "identifiers": {"imei": IMEI, "imsi": IMSI, "msisdn": MSISDN}, "body_bytes": len(body)})
    # A hard-coded address, no DNS: a raw 24 KB upload.
    c = TCP(start + 300, "45.77.0.1", 53000, 5555)
    c.send(bytes(rng.randrange(256) for _ in range(24_000)))
    c.reply(b"\x00\x01")
    c.close()
    packets.sort(key=lambda p: p[0])
    os.makedirs(os.path.dirname(OUT) or ".", exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in packets:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec == 1_000_000:
                sec, usec = sec + 1, 0
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    manifest["packets"] = len(packets)
    json.dump(manifest, open(MANIFEST, "w"), indent=1)
    print(f"{OUT}: {len(packets)} packets, {len(manifest['flows'])} TCP connections")


if __name__ == "__main__":
    main()
