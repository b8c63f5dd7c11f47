#!/usr/bin/env python3
"""Writes a generated fleet of bench captures for `siphon batch`: one capture per device, five models, a backdoor
endpoint two models share, an implant in one device, and files a batch must survive.

Usage: scripts/gen_fleet.py OUT_DIR [--per-model N] [--upload-kb K]
  --per-model N   devices per model (default 8: 40 captures)
  --upload-kb K   every device also uploads K KiB over TLS to a home (FR) server, to give the captures weight for
                  the scaling benchmark (default 0)

OUT_DIR receives:
  model-a/a-01.pcap ... one capture per device (model E's third device gzip-compressed: e-03.pcap.gz)
  extra/truncated.pcap   a device of model B's kind cut in the middle of a packet record (damaged)
  extra/corrupt.pcap     2,000 random bytes named like a capture (unreadable)
  extra/notes.txt        a text file (not a capture: skipped)
  devices.csv            capture, label, model, imei, imsi, mac for the 5 x N devices (not the extras)
  MANIFEST.json          what a fleet report over OUT_DIR must find (below)

Models (each device: its own MAC 02:f1:<model>:00:<n>, address 10.<model>.<n/200>.<n%200+10>, IMEI, IMSI; a DHCP lease,
then the model's traffic, times jittered per device):
  A "X9 mini":     HTTP POST to api.x9-update.cn (120.77.166.21, Alibaba CN) with the SHA-1 of the IMEI (found only
                   when --devices gives the IMEI), and a TLS heartbeat to hb.x9-analytics.com (47.88.1.1, Alibaba US)
  B "K2 nano":     home only (Free, Gandi: FR)
  C "M5 lighter":  the same backdoor POST to 120.77.166.21, and TLS to push.m5-cloud.com (45.77.0.1, Vultr US)
  D "P1 micro":    TLS to assets.nimbus-cdn.net (151.101.1.69, Fastly US) and Free; its 5th device (d-05) is the
                   implant: 8 TLS sessions 60 s apart to 95.163.1.1 (RU) on port 8443, no DNS
  E "Z3 mini":     TLS to www.google.com (142.250.179.78, US)
Expected (MANIFEST.json): the shared endpoint 120.77.166.21 contacted by the A and C devices (2N), clusters of
devices with equal foreign endpoint sets (A: N, C: N, D: N-1, E: N), the implant alone with 95.163.1.1, the damaged
and unreadable files, the skipped one.

Deterministic: seeded per device; the same arguments write the same bytes.
"""
import argparse, gzip, hashlib, io, json, os, random, sys, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapgen import Capture, app_data, certificate, client_finish, client_hello, http_request, http_response, \
    server_finish, server_flight, x509_name  # noqa: E402

T0 = 1741942800.0  # 2025-03-14T09:00:00Z
ALIBABA_CN, ALIBABA_US, VULTR, FASTLY, GOOGLE, RU_HOST = \
    "120.77.166.21", "47.88.1.1", "45.77.0.1", "151.101.1.69", "142.250.179.78", "95.163.1.1"
FREE, GANDI = "212.27.48.10", "217.70.184.38"
CA = x509_name("Example Issuing CA R1", "Example Trust Services", "US")
ROOT_CA = x509_name("Example Root CA X1", "Example Trust Services", "US")
MODELS = [("a", "X9 mini"), ("b", "K2 nano"), ("c", "M5 lighter"), ("d", "P1 micro"), ("e", "Z3 mini")]


def luhn(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


class Device:
    def __init__(self, letter, model, n):
        self.letter, self.model, self.n = letter, model, n
        self.label = f"{letter}-{n:02d}"
        self.rng = random.Random(zlib.crc32(self.label.encode()))
        m = "abcde".index(letter) + 1
        self.mac = bytes([0x02, 0xF1, m, 0, n >> 8, n & 0xFF])
        self.ip = f"10.{m}.{n // 200}.{n % 200 + 10}"
        tac = "35693803"
        body = f"{tac}{m:02d}{n:04d}"
        self.imei = body + luhn(body)
        self.imsi = f"20815{m:02d}{n:08d}"
        self.cap = Capture(self.rng, device=self.ip, router=f"10.{m}.0.1", device_mac=self.mac)
        self.qid, self.port = 0x2000, 40000

    def sport(self):
        self.port += 1
        return self.port

    def resolve(self, t, name, address):
        self.qid += 1
        self.cap.dns(t, self.qid, name, [(name, "A", address)])

    def tls(self, t, server, sni, port=443, up=500, down=3000, self_signed=False):
        names = [sni] if sni else ["node"]
        subject = x509_name(names[0])
        chain = [certificate(subject, subject, names, 7)] if self_signed else \
            [certificate(subject, CA, names, zlib.crc32(names[0].encode())), certificate(CA, ROOT_CA, serial=9, ca=True)]
        c = self.cap.tcp(t, server, self.sport(), port)
        c.send(client_hello(self.rng, sni))
        c.reply(server_flight(self.rng, chain))
        c.send(client_finish(self.rng))
        c.reply(server_finish(self.rng))
        c.send(app_data(self.rng, up), ack_every=2)
        c.reply(app_data(self.rng, down), ack_every=2)
        c.close()

    def backdoor(self, t):
        """The shared firmware backdoor: a POST with the SHA-1 of the IMEI (known only through devices.csv)."""
        self.resolve(t, "api.x9-update.cn", ALIBABA_CN)
        did = hashlib.sha1(self.imei.encode()).hexdigest()
        body = json.dumps({"did": did, "fw": "1.0.7", "ev": "boot", "bat": 80 + self.n % 20}).encode()
        c = self.cap.tcp(t + 0.2, ALIBABA_CN, self.sport(), 80)
        c.send(http_request("POST", "/v1/report", "api.x9-update.cn", body))
        c.reply(http_response(200, "OK", b'{"ok":1}'))
        c.close()


def build(letter, model, n, upload_kb):
    d = Device(letter, model, n)
    cap, j = d.cap, d.rng.uniform(0, 30)
    cap.dhcp(T0 - 5 + j, 1, True, hostname=f"phone-{d.label}")
    cap.dhcp(T0 - 4.99 + j, 2, False)
    cap.dhcp(T0 - 4.9 + j, 3, True, hostname=f"phone-{d.label}")
    cap.dhcp(T0 - 4.89 + j, 5, False)
    t = T0 + j
    if letter in "bd":
        d.resolve(t, "www.free.fr", FREE)
        d.tls(t + 0.1, FREE, "www.free.fr")
    if letter == "b":
        d.resolve(t + 20, "www.gandi.net", GANDI)
        d.tls(t + 20.1, GANDI, "www.gandi.net")
    if letter in "ac":
        d.backdoor(t + 5)
    if letter == "a":
        for k in range(6):
            tk = t + 60 + 120 * k + d.rng.uniform(-3, 3)
            d.resolve(tk, "hb.x9-analytics.com", ALIBABA_US)
            d.tls(tk + 0.1, ALIBABA_US, "hb.x9-analytics.com", up=300, down=200)
    if letter == "c":
        d.resolve(t + 40, "push.m5-cloud.com", VULTR)
        d.tls(t + 40.1, VULTR, "push.m5-cloud.com")
    if letter == "d":
        d.resolve(t + 30, "assets.nimbus-cdn.net", FASTLY)
        d.tls(t + 30.1, FASTLY, "assets.nimbus-cdn.net", up=700, down=20000)
        if n == 5:
            for k in range(8):
                d.tls(t + 100 + 60 * k + d.rng.uniform(-1, 1), RU_HOST, None, port=8443, up=900, down=150, self_signed=True)
    if letter == "e":
        d.resolve(t + 10, "www.google.com", GOOGLE)
        d.tls(t + 10.1, GOOGLE, "www.google.com", up=800, down=15000)
    if upload_kb:
        d.resolve(t + 200, "sync.free.fr", FREE)
        d.tls(t + 200.1, FREE, "sync.free.fr", up=upload_kb * 1024, down=4000)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--per-model", type=int, default=8)
    ap.add_argument("--upload-kb", type=int, default=0)
    a = ap.parse_args()
    out, per = a.out, a.per_model
    rows, devices = [], {}
    for letter, model in MODELS:
        for n in range(1, per + 1):
            d = build(letter, model, n, a.upload_kb)
            rel = f"model-{letter}/{d.label}.pcap"
            path = os.path.join(out, rel)
            d.cap.write(path)
            if letter == "e" and n == 3:
                with open(path, "rb") as f:
                    raw = f.read()
                os.remove(path)
                rel += ".gz"
                with open(os.path.join(out, rel), "wb") as f:
                    # mtime 0: the same bytes every time.
                    with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
                        g.write(raw)
            rows.append((rel, d.label, model, d.imei, d.imsi, ":".join(f"{b:02x}" for b in d.mac)))
            devices[d.label] = {"capture": rel, "model": model, "mac": rows[-1][5], "imei": d.imei}
    # The extras: a damaged capture (cut inside a record), an unreadable one, a text file.
    t = build("b", "K2 nano", 99, 0)
    buf = os.path.join(out, "extra", "truncated.pcap")
    t.cap.write(buf)
    with open(buf, "rb") as f:
        raw = f.read()
    cut = len(raw) * 2 // 3
    with open(buf, "wb") as f:
        f.write(raw[:cut])
    rng = random.Random(7)
    with open(os.path.join(out, "extra", "corrupt.pcap"), "wb") as f:
        f.write(b"\x00\x01\x02\x03" + bytes(rng.randrange(256) for _ in range(1996)))
    with open(os.path.join(out, "extra", "notes.txt"), "w") as f:
        f.write("Bench notes: the extras are here to be survived, not analysed.\n")
    with open(os.path.join(out, "devices.csv"), "w") as f:
        f.write("capture,label,model,imei,imsi,mac\n")
        for r in rows:
            f.write(",".join(f'"{x}"' if "," in x else x for x in r) + "\n")
    n = per
    manifest = {
        "per_model": n,
        "files": 5 * n + 5,
        "scanned": 5 * n,
        "models": {model: n for _, model in MODELS},
        "devices": devices,
        "shared_endpoint": {"ip": ALIBABA_CN, "devices": 2 * n, "models": {"X9 mini": n, "M5 lighter": n}},
        "clusters": [
            {"endpoints": sorted([ALIBABA_CN, ALIBABA_US]), "devices": [f"a-{i:02d}" for i in range(1, n + 1)]},
            {"endpoints": sorted([ALIBABA_CN, VULTR]), "devices": [f"c-{i:02d}" for i in range(1, n + 1)]},
            {"endpoints": [FASTLY], "devices": [f"d-{i:02d}" for i in range(1, n + 1) if i != 5]},
            {"endpoints": [GOOGLE], "devices": [f"e-{i:02d}" for i in range(1, n + 1)]},
        ],
        "implant": {"device": "d-05", "unique_endpoint": RU_HOST},
        "home_only": [f"b-{i:02d}" for i in range(1, n + 1)],
        "damaged": "extra/truncated.pcap",
        "damaged_offset": None,
        "unreadable": "extra/corrupt.pcap",
        "skipped": ["devices.csv", "extra/notes.txt", "MANIFEST.json"],
        "hashed_imei_devices": [f"{l}-{i:02d}" for l in "ac" for i in range(1, n + 1)],
    }
    # The damaged file's last whole record ends where the cut record starts: walk the records.
    off = 24
    while off + 16 <= cut:
        caplen = int.from_bytes(raw[off + 8:off + 12], "little")
        if off + 16 + caplen > cut:
            break
        off += 16 + caplen
    manifest["damaged_offset"] = off
    with open(os.path.join(out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{out}: {5 * n} device captures of {len(MODELS)} models, 3 extras")


if __name__ == "__main__":
    main()
