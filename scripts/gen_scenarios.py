#!/usr/bin/env python3
"""Writes the detector scenarios: one small capture per behaviour, each with a manifest of the alerts it must raise.

Usage: scripts/gen_scenarios.py [OUT_DIR]   (default: captures/scenarios in the repository)
For each scenario NAME: OUT_DIR/NAME.pcap and OUT_DIR/NAME.json, NAME.identifiers.yaml for those scanned with
`--identifiers`; then ioc-match.ioc.txt (the IOC list two scenarios load) and SOURCES.tsv. captures/scenarios/README.md
(what each scenario is) is written by hand.
Deterministic: every scenario has its own seed (CRC-32 of its name) and starts at 2025-03-14T09:00:00Z; running
it twice writes byte-identical files.

The device is 192.168.1.23 (MAC 02:a4:c2:11:33:02) on 192.168.1.0/24; the router 192.168.1.1 is its gateway and
DNS resolver. Remote addresses are real public ones chosen for their registry country (FR home: Free, Gandi,
Scaleway; foreign: Alibaba CN/US, China Mobile, Vultr, Fastly, Cloudflare, Google, Amazon, Digital Network RU);
host names are fictional, certificates are built by hand (pcapgen.certificate) and signed by nobody.

Manifest (NAME.json): {"capture", "description", "device", "args" (extra `siphon scan` arguments, paths relative
to the repository), "benign", "expect"}: `expect` lists every alert above info the detectors (the eight built-in
ones plus identifier-leak, dns-tunnel and tls-anomaly) must raise, as {category, severity, dest_ip[, evidence]}.
The info-level alerts a scenario raises (foreign-endpoint, no-dns-endpoint with a name, non-standard-port for an
unidentified protocol) are in its description, not in `expect`. Packet builders: scripts/pcapgen.py.
"""
import base64, hashlib, json, os, random, struct, sys, zlib
import name_model
from pcapgen import (Capture, app_data, certificate, checksum, client_finish, client_finish13, client_hello, der, der_oid, http_request,
                     http_response, mqtt_connack, mqtt_connect, mqtt_disconnect, mqtt_publish, server_finish,
                     server_flight, server_hello13, x509_name)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REL = "captures/scenarios"
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, REL)
T0 = 1741942800.0  # 2025-03-14T09:00:00Z
DEVICE = "192.168.1.23"
IMEI, IMSI, PHONE, SERIAL = "356938035643809", "208150123456789", "+33612345678", "X9MINI0042"
ICCID = "893315031900012345"  # + Luhn check digit below

# Remote addresses (registry country checked with `siphon lookup`).
FREE, GANDI, SCALEWAY = "212.27.48.10", "217.70.184.38", "195.154.1.1"                  # FR (home)
ALIBABA_CN, CHINA_MOBILE, ALIBABA_US = "120.77.166.21", "39.156.66.10", "47.88.1.1"    # CN, CN, US
VULTR, FASTLY, CLOUDFLARE, GOOGLE, AMAZON = "45.77.0.1", "151.101.1.69", "104.16.132.229", "142.250.179.78", "52.84.1.1"
RU_HOST, NTP_HOST = "95.163.1.1", "162.159.200.1"                                       # RU, US (Cloudflare time)

CA = x509_name("Example Issuing CA R1", "Example Trust Services", "US")
ROOT_CA = x509_name("Example Root CA X1", "Example Trust Services", "US")


def luhn_digit(digits):
    """The check digit that makes `digits` + it pass the Luhn check."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def luhn_ok(number):
    return luhn_digit(number[:-1]) == number[-1]


def not_luhn(digits14):
    """A 15-digit number that fails the Luhn check."""
    good = luhn_digit(digits14)
    return digits14 + str((int(good) + 5) % 10)


ICCID += luhn_digit(ICCID)
assert luhn_ok(IMEI) and not luhn_ok(IMSI) and luhn_ok(ICCID)


class Scenario:
    """A capture being written: the packet builders, a DNS query id and source port counter, the manifest."""

    def __init__(self, name, description, benign=False, args=()):
        self.name, self.description, self.benign, self.args = name, description, benign, list(args)
        self.rng = random.Random(zlib.crc32(name.encode()))
        self.cap = Capture(self.rng, device=DEVICE)
        self.qid = 0x1000
        self.port = 50000
        self.expect = []
        self.device = DEVICE

    def sport(self):
        self.port += 1
        return self.port

    def resolve(self, t, name, address, cname=None, qtype="A"):
        """A lookup through the router: name (-> cname) -> address."""
        self.qid += 1
        kind = "AAAA" if ":" in address else "A"
        answers = [(name, "CNAME", cname), (cname, kind, address)] if cname else [(name, kind, address)]
        self.cap.dns(t, self.qid, name, answers, qtype=qtype)

    def alert(self, category, severity, dest_ip, **evidence):
        e = {"category": category, "severity": severity, "dest_ip": dest_ip}
        if evidence:
            e["evidence"] = evidence
        self.expect.append(e)

    # Sessions.

    def tls12_open(self, t, server, sni, names=None, port=443, version=0x0303, cipher=0x009C, self_signed=False,
                   issuer=CA, subject=None):
        """A TLS 1.0-1.2 handshake: ClientHello (SNI unless None), the server's certificate (leaf for `names`,
        default [sni], subject CN=names[0] unless `subject` (DER) is given; signed by the example CA, whose
        certificate follows, or self-signed), key exchange. Returns the open connection."""
        rng = self.rng
        names = names if names is not None else [sni]
        serial = zlib.crc32((self.name + (names[0] if names else "")).encode())
        subject = subject or x509_name(names[0])
        if self_signed:
            chain = [certificate(subject, subject, names, serial)]
        else:
            chain = [certificate(subject, issuer, names, serial),
                     certificate(issuer, ROOT_CA, serial=zlib.crc32(issuer), ca=True)]
        c = self.cap.tcp(t, server, self.sport(), port)
        c.send(client_hello(rng, sni))
        c.reply(server_flight(rng, chain, version=version, cipher=cipher))
        c.send(client_finish(rng, version))
        c.reply(server_finish(rng, version))
        return c

    def tls12(self, t, server, sni, names=None, port=443, up=600, down=9000, version=0x0303, cipher=0x009C,
              self_signed=False, issuer=CA):
        """A TLS 1.0-1.2 connection (`tls12_open`), `up` bytes of application data from the device, `down` bytes
        back, close."""
        rng = self.rng
        c = self.tls12_open(t, server, sni, names, port, version, cipher, self_signed, issuer)
        if up:
            c.send(app_data(rng, up, version), ack_every=2)
        if down:
            c.reply(app_data(rng, down, version), ack_every=2)
        return c.close()

    def tls13(self, t, server, sni, up=600, down=9000):
        rng = self.rng
        c = self.cap.tcp(t, server, self.sport(), 443)
        hello = client_hello(rng, sni, tls13=True)
        c.send(hello)
        session_id = hello[44:76]  # record (5) + handshake header (4) + version (2) + random (32) + length (1)
        c.reply(server_hello13(rng, session_id))
        c.send(client_finish13(rng))
        c.send(app_data(rng, up), ack_every=2)
        c.reply(app_data(rng, down), ack_every=2)
        return c.close()

    def http(self, t, server, request, response, port=80):
        c = self.cap.tcp(t, server, self.sport(), port)
        c.send(request)
        c.reply(response)
        return c.close()

    def insertion(self, **fake):
        """DNS www.free.fr, then HTTP whose request line is first sent as GET /admin.html with `fake` (segment
        options: `csum`, `ttl`), then GET /index.html at the same sequence numbers, the answer, close."""
        self.resolve(T0, "www.free.fr", FREE)
        c = self.cap.tcp(T0 + 0.2, FREE, self.sport(), 80)
        c.seg(True, 0x18, b"GET /admin.html HTTP/1.1\r\n", **fake)
        c.send(http_request("GET", "/index.html", "www.free.fr"))
        c.reply(http_response(200, "OK", b"<html><body>Free</body></html>", "text/html"))
        c.close()

    def write(self, out):
        self.cap.write(os.path.join(out, self.name + ".pcap"))
        manifest = {"capture": self.name + ".pcap", "description": self.description, "device": self.device,
                    "args": self.args, "benign": self.benign, "expect": self.expect}
        # Device-identity scenarios: the device's identity, how it is chosen, and every address it used.
        if hasattr(self, "device_id"):
            manifest.update({"device_id": self.device_id, "chosen": self.chosen, "addresses": self.addresses})
        with open(os.path.join(out, self.name + ".json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")


SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


def identifiers_file(name):
    """The device's identifiers, as `--identifiers` reads them."""
    text = ("# The identifiers of the scenario device (mini-phone-x9), for `siphon scan --identifiers`.\n"
            f'imei: ["{IMEI}"]\nimsi: ["{IMSI}"]\nphone: ["{PHONE}"]\nmac: ["02:a4:c2:11:33:02"]\nserial: ["{SERIAL}"]\n')
    return name + ".identifiers.yaml", text


# Alerts: one scenario per category.

@scenario
def foreign_endpoint():
    s = Scenario("foreign-endpoint",
                 "An analytics SDK: DNS sdk.x9-metrics.cn (CNAME to a China Mobile edge, 39.156.66.10, CN), then "
                 "TLS 1.2 with SNI and a certificate naming it, a short exchange. Raises foreign-endpoint (info) "
                 "only: a foreign contact by itself is not suspicious.")
    s.resolve(T0, "sdk.x9-metrics.cn", CHINA_MOBILE, cname="edge-7.x9-metrics.cn")
    s.tls12(T0 + 0.2, CHINA_MOBILE, "sdk.x9-metrics.cn", up=900, down=2400)
    return s


@scenario
def foreign_upload_volume():
    s = Scenario("foreign-upload-volume",
                 "A backup client: DNS upload.cloudvault-sync.com -> 52.84.1.1 (Amazon, US), TLS 1.2 with SNI, "
                 "1,100,000 bytes of application data sent, 3 KB back. Over 1 MiB to one foreign endpoint: "
                 "foreign-upload high (by volume); foreign-endpoint info.")
    s.resolve(T0, "upload.cloudvault-sync.com", AMAZON)
    s.tls12(T0 + 0.2, AMAZON, "upload.cloudvault-sync.com", up=1_100_000, down=3000)
    s.alert("foreign-upload", "high", AMAZON, reason="volume")
    return s


@scenario
def foreign_upload_ratio():
    s = Scenario("foreign-upload-ratio",
                 "A sync client: DNS backup.x9-cloud.cn -> 120.77.166.21 (Alibaba, CN), TLS 1.2 with SNI, two "
                 "connections each sending 40 KB of application data and receiving 1 KB (plus the server's "
                 "certificates, about 2 KB). Over 16 KiB sent and over ten times what came back (from the first "
                 "connection on): foreign-upload medium (by ratio); foreign-endpoint info.")
    s.resolve(T0, "backup.x9-cloud.cn", ALIBABA_CN)
    s.tls12(T0 + 0.2, ALIBABA_CN, "backup.x9-cloud.cn", up=40_000, down=1000)
    s.tls12(T0 + 40, ALIBABA_CN, "backup.x9-cloud.cn", up=40_000, down=1000)
    s.alert("foreign-upload", "medium", ALIBABA_CN, reason="ratio")
    return s


@scenario
def foreign_upload_share():
    s = Scenario("foreign-upload-share",
                 "A quiet device that sends one report: DNS collect.x9-stats.cn -> 120.77.166.21 (Alibaba, CN), "
                 "TLS 1.2 with SNI, 7,000 bytes of application data sent and 300 back (plus the server's "
                 "certificates, about 2 KB); besides, only its DNS queries. Under the volume (1 MiB) and ratio "
                 "(16 KiB sent) floors, but that endpoint got most of all the device sent (over 90 %) and sent back "
                 "under half of it: foreign-upload low (by share, judged at the end of the capture); "
                 "foreign-endpoint info.")
    s.resolve(T0, "collect.x9-stats.cn", ALIBABA_CN)
    s.tls12(T0 + 0.2, ALIBABA_CN, "collect.x9-stats.cn", up=7000, down=300)
    s.alert("foreign-upload", "low", ALIBABA_CN, reason="share")
    return s


@scenario
def benign_upload_small_share():
    s = Scenario("benign-upload-small-share",
                 "The same report as foreign-upload-share (7,000 bytes to 120.77.166.21, CN), from a device that "
                 "also posts 20,000 bytes of form data to a French site (HTTPS to www.gandi.net, 217.70.184.38) "
                 "and gets pages back: the foreign endpoint got a quarter of what the device sent, not most of it. "
                 "Nothing above info (foreign-endpoint info).",
                 benign=True)
    s.resolve(T0, "collect.x9-stats.cn", ALIBABA_CN)
    s.tls12(T0 + 0.2, ALIBABA_CN, "collect.x9-stats.cn", up=7000, down=300)
    s.resolve(T0 + 5, "www.gandi.net", GANDI)
    s.tls12(T0 + 5.2, GANDI, "www.gandi.net", up=20000, down=60000)
    return s


@scenario
def beaconing():
    s = Scenario("beaconing",
                 "A heartbeat: every 300 s (uniform jitter of +/-5 %), 10 times, DNS hb.x9-analytics.com -> "
                 "47.88.1.1 (Alibaba, US) and a TLS 1.2 connection with SNI exchanging a few hundred bytes. "
                 "beaconing medium (fires at the 6th contact; address and name series are the same flows, one "
                 "alert); foreign-endpoint info.")
    for k in range(10):
        t = T0 + 300 * k + s.rng.uniform(-15, 15)
        s.resolve(t, "hb.x9-analytics.com", ALIBABA_US)
        s.tls12(t + 0.1, ALIBABA_US, "hb.x9-analytics.com", up=300, down=200)
    s.alert("beaconing", "medium", ALIBABA_US)
    return s


@scenario
def beaconing_ja4_rotation():
    s = Scenario("beaconing-ja4-rotation",
                 "An implant that rotates servers: every 240 s (uniform jitter of +/-5 %), 8 times, a TLS 1.2 "
                 "connection with the same ClientHello (so the same JA4) to the next of four foreign endpoints "
                 "(47.88.1.1, 45.77.0.1, 52.84.1.1, 104.16.132.229, each resolved from its own name just before). "
                 "No address or name is contacted more than twice, so only the JA4 series is regular: beaconing "
                 "medium at its 6th contact (45.77.0.1, the second endpoint of the rotation); foreign-endpoint info "
                 "for each endpoint.")
    rotation = [ALIBABA_US, VULTR, AMAZON, CLOUDFLARE]
    for k in range(8):
        t = T0 + 240 * k + s.rng.uniform(-12, 12)
        server = rotation[k % 4]
        name = f"n{k % 4}.x9-rotate.net"
        s.resolve(t, name, server)
        s.tls12(t + 0.1, server, name, up=300, down=200)
    s.alert("beaconing", "medium", rotation[5 % 4])
    return s


def heartbeat(s, c, period, count, up, down, jitter=0.05, size_jitter=4):
    """`count` exchanges inside the open connection `c`, every `period` s (uniform jitter of +/-`jitter`): `up`
    bytes of TLS application data from the device (+/- `size_jitter`), `down` back."""
    for _ in range(count):
        c.wait(period * (1 + s.rng.uniform(-jitter, jitter)))
        c.send(app_data(s.rng, up + s.rng.randint(-size_jitter, size_jitter)))
        c.reply(app_data(s.rng, down + s.rng.randint(-size_jitter, size_jitter)))


@scenario
def beaconing_in_flow():
    s = Scenario("beaconing-in-flow",
                 "A heartbeat inside one connection, as RATs keep one (AsyncRAT, QuasarRAT): DNS "
                 "sync.x9-analytics.com -> 47.88.1.1 (Alibaba, US), one TLS 1.2 connection on 443 with a valid "
                 "chain, then every 15 s (+/-5 %) 12 times the device sends ~90 bytes and the server answers ~40, "
                 "then close. One flow, so no contact series: beaconing medium (kind in-flow, at the 6th exchange); "
                 "foreign-endpoint info.")
    s.resolve(T0, "sync.x9-analytics.com", ALIBABA_US)
    c = s.tls12_open(T0 + 0.1, ALIBABA_US, "sync.x9-analytics.com")
    heartbeat(s, c, 15, 12, 90, 40)
    c.close()
    s.alert("beaconing", "medium", ALIBABA_US, kind="in-flow", contacts=6)
    return s


@scenario
def implant_rat():
    s = Scenario("implant-rat",
                 "What the issue calls an implant, as AsyncRAT's defaults make it: a hard-coded address (95.163.1.1, "
                 "RU, no DNS lookup), TLS 1.2 on port 6606 without SNI, the server's self-signed certificate "
                 "CN=AsyncRAT Server (no SAN), then a heartbeat every 10 s (+/-5 %) 12 times (~60 bytes up, ~40 "
                 "down) in that one connection. ioc-match high (the pack's rat-default-certificate rule), "
                 "tls-anomaly medium (self-signed) and low (no SNI), beaconing medium (in-flow), no-dns-endpoint "
                 "low; non-standard-port info (TLS on 6606), foreign-endpoint info. Verdict: critical (heartbeat 2 + "
                 "TLS 2 + no DNS 1 + port 1 = 6 points with a behaviour).")
    c = s.tls12_open(T0, RU_HOST, None, names=[], port=6606, self_signed=True, subject=x509_name("AsyncRAT Server"))
    heartbeat(s, c, 10, 12, 60, 40)
    c.close()
    s.alert("ioc-match", "high", RU_HOST, cert_subject="CN=AsyncRAT Server")
    s.alert("tls-anomaly", "medium", RU_HOST, anomaly="self-signed")
    s.alert("tls-anomaly", "low", RU_HOST, anomaly="no-sni")
    s.alert("beaconing", "medium", RU_HOST, kind="in-flow")
    s.alert("no-dns-endpoint", "low", RU_HOST)
    return s


@scenario
def dga_nxdomain():
    s = Scenario("dga-nxdomain",
                 "A domain generation algorithm at work: every 2 s the device asks the router for the next of 32 "
                 "generated .com names (12 to 18 random letters); the first 31 do not exist (NXDOMAIN), the 32nd "
                 "resolves to 95.163.1.1 (RU) and the device opens TLS to it. After every fifth generated name, one "
                 "of 6 everyday lookups that resolve. dga medium at the resolver 192.168.1.1, raised once 8 of the "
                 "missing names look generated to the label model (scripts/name_model.py, which trains the table "
                 "Siphon ships): at the 10th NXDOMAIN (two of the first ten random names score above the threshold, as "
                 "about 6 % of random labels do), 10 of the 11 registered domains answered by then; foreign-endpoint "
                 "info.")
    is_random = name_model.is_random_function()
    t = T0
    letters = "abcdefghijklmnopqrstuvwxyz"
    everyday = ["www.google.com", "www.wikipedia.org", "api.weather.com", "www.lemonde.fr", "graph.facebook.com",
                "www.bbc.co.uk"]
    missing = answered = random_missing = 0
    raised = None
    for k in range(32):
        name = "".join(s.rng.choice(letters) for _ in range(s.rng.randint(12, 18))) + ".com"
        s.qid += 1
        if k == 31:
            s.cap.dns(t, s.qid, name, [(name, "A", RU_HOST)])
            s.tls12(t + 0.1, RU_HOST, name, up=400, down=300)
        else:
            s.cap.dns(t, s.qid, name, [], rcode=3)
            missing, answered = missing + 1, answered + 1
            random_missing += is_random(name.split(".")[0])
            if raised is None and (missing >= 20 and missing >= 0.5 * answered or random_missing >= 8):
                raised = (missing, answered, random_missing)
        if k % 5 == 4 and everyday:
            s.resolve(t + 1, everyday.pop(0), GOOGLE)
            answered += 1
        t += 2
    assert raised == (10, 11, 8), raised  # as the description says
    s.alert("dga", "medium", "192.168.1.1", nxdomain_domains=raised[0], answered_domains=raised[1], random_domains=raised[2])
    return s


@scenario
def benign_nxdomain_words():
    s = Scenario("benign-nxdomain-words",
                 "Lookups that fail the way people's and apps' do: 12 NXDOMAIN answers for registered domains made "
                 "of words (a mistyped address, retired campaign sites, a dead tracker: wikipedai.org, "
                 "lemondeinformatique.com...), each after two lookups that resolve. None looks generated to the label "
                 "model and 12 of 36 is a third: no dga; nothing above info.", benign=True)
    is_random = name_model.is_random_function()
    dead = ["wikipedai.org", "lemondeinformatique.com", "summersales2019.com", "weatherwidget.net", "photoprinting.fr",
            "traveldeals.co.uk", "musicplayer.app", "quickrecipes.net", "footballscores.info", "gardeningtips.org",
            "cheapflights.travel", "newsletter-archive.com"]
    everyday = ["www.google.com", "www.wikipedia.org", "api.weather.com", "www.lemonde.fr", "graph.facebook.com",
                "www.bbc.co.uk", "www.amazon.fr", "www.youtube.com", "www.leboncoin.fr", "www.orange.fr", "www.sncf-connect.com",
                "www.doctolib.fr"]
    assert not any(is_random(d.split(".")[0]) for d in dead)
    t = T0
    for k, d in enumerate(dead):
        s.resolve(t, everyday[k], GOOGLE)
        s.resolve(t + 0.5, "mail." + everyday[k].split(".", 1)[1], GOOGLE)
        s.qid += 1
        s.cap.dns(t + 1, s.qid, d, [], rcode=3)
        t += 5
    return s


@scenario
def beaconing_spray():
    s = Scenario("beaconing-spray",
                 "A one-shot spray, as Cerber sent its statistics to a whole range: one 32-byte UDP datagram each to "
                 "45.77.0.1 ... 45.77.0.20 (one foreign /24, Vultr US) on port 6892, 0.05 s apart, no DNS lookup, "
                 "never answered. beaconing medium (kind spray, 45.77.0.0/24) at the 16th address; foreign-endpoint "
                 "info for each address.")
    for k in range(20):
        payload = bytes(s.rng.randrange(256) for _ in range(32))
        s.cap.udp(T0 + 0.05 * k, DEVICE, 50100 + k, f"45.77.0.{k + 1}", 6892, payload, True)
    s.alert("beaconing", "medium", "45.77.0.16", kind="spray", target="45.77.0.0/24", addresses=16)
    return s


def echo(s, t, server, ident, seq, data, reply=True):
    """An ICMP echo request from the device carrying `data` (after identifier and sequence), and its reply."""
    for kind, src, dst, from_device in ((8, DEVICE, server, True), (0, server, DEVICE, False))[:2 if reply else 1]:
        m = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + data
        m = m[:2] + struct.pack("!H", checksum(m)) + m[4:]
        s.cap.frame(t + (0 if from_device else 0.04), src, dst, 1, m, from_device)


@scenario
def icmp_tunnel():
    s = Scenario("icmp-tunnel",
                 "IP over ICMP, as icmptunnel or hans carry it: 40 echo requests to 95.163.1.1 (RU), one every 0.5 s, "
                 "identifier 0xFEFF, each carrying a whole IPv4/UDP packet (10.95.1.1 -> 10.95.1.2, valid header "
                 "checksum) of 76 to 156 bytes, each answered. icmp-tunnel medium at the 3rd request (3 inner "
                 "packets), then high once the requests carried 4,096 bytes; no-dns-endpoint low (an address never resolved); "
                 "foreign-endpoint info.")
    sent = 0
    for k in range(40):
        body = bytes(s.rng.randrange(256) for _ in range(s.rng.randint(48, 128)))
        inner = s.cap.ipv4("10.95.1.1", "10.95.1.2", 17, struct.pack("!HHHH", 5353, 53, 8 + len(body), 0) + body)
        echo(s, T0 + 0.5 * k, RU_HOST, 0xFEFF, k, inner)
        sent += len(inner)
    assert sent >= 4096
    s.alert("icmp-tunnel", "medium", RU_HOST, reason="inner-ip-packets", inner_ip_packets=3)
    s.alert("icmp-tunnel", "high", RU_HOST, reason="inner-ip-packets")
    s.alert("no-dns-endpoint", "low", RU_HOST)
    return s


@scenario
def benign_ping():
    s = Scenario("benign-ping",
                 "Ordinary pings: DNS www.google.com -> 142.250.179.78 (Google, US), then 60 echo requests to it, one a "
                 "second, 56 data bytes each "
                 "(Linux ping's timestamp and 0x10.. pattern, 3.4 kB in all), answered; and 5 of 1,472 bytes (a path "
                 "MTU probe, one size). Nothing above info.", benign=True)
    s.resolve(T0 - 1, "www.google.com", GOOGLE)
    for k in range(60):
        data = struct.pack("!II", int(T0) + k, 0) + bytes(range(0x10, 0x38))
        echo(s, T0 + k, GOOGLE, 0x1234, k + 1, data)
    for k in range(5):
        echo(s, T0 + 61 + k, GOOGLE, 0x1235, k + 1, bytes(1472))
    return s


@scenario
def emotet_checkin():
    s = Scenario("emotet-checkin",
                 "Emotet's check-in of 2018-2019: no DNS lookup, HTTP on 8080 to 45.77.0.1 (Vultr, US) named by its "
                 "address in the Host header, GET / with an MSIE 7 User-Agent and a Cookie of a random numeric name "
                 "and 472 base64 characters (the encrypted report), answered with 2 kB. c2-checkin high (the pack's "
                 "emotet-cookie-checkin rule), no-dns-endpoint low (an address in Host is no name); "
                 "foreign-endpoint info.")
    cookie = base64.b64encode(bytes(s.rng.randrange(256) for _ in range(354))).decode()
    request = ("GET / HTTP/1.1\r\nCookie: 62133=" + cookie + "\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; "
               "WOW64; Trident/7.0)\r\nHost: 45.77.0.1:8080\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n").encode()
    s.http(T0, VULTR, request, http_response(200, "OK", bytes(s.rng.randrange(256) for _ in range(2048)), "text/html"), port=8080)
    s.alert("c2-checkin", "high", VULTR, http_cookie_bytes=len("62133=" + cookie))
    s.alert("no-dns-endpoint", "low", VULTR)
    return s


@scenario
def emotet_post_checkin():
    s = Scenario("emotet-post-checkin",
                 "Emotet's check-in of 2020: no DNS lookup, HTTP on 7080 to 45.77.0.1 (Vultr, US) named by its "
                 "address, POST /kH3r9Z/Qm2x/ with an MSIE 7 User-Agent, a Referer naming the request itself "
                 "(http://45.77.0.1/kH3r9Z/Qm2x/, the port left out as Emotet wrote it) and a 912-byte urlencoded "
                 "body (one random key, the encrypted report), answered with 4 kB. c2-checkin high (the pack's "
                 "emotet-post-checkin rule), cleartext medium (912 bytes of body in clear abroad), "
                 "non-standard-port low (HTTP on 7080), no-dns-endpoint low; foreign-endpoint info.")
    blob = base64.b64encode(bytes(s.rng.randrange(256) for _ in range(660))).decode()
    body = ("xq7v=" + blob.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")).encode()[:912]
    request = ("POST /kH3r9Z/Qm2x/ HTTP/1.1\r\nReferer: http://45.77.0.1/kH3r9Z/Qm2x/\r\nContent-Type: "
               "application/x-www-form-urlencoded\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; "
               "WOW64; Trident/7.0)\r\nHost: 45.77.0.1:7080\r\nContent-Length: " + str(len(body)) +
               "\r\nConnection: Keep-Alive\r\nCache-Control: no-cache\r\n\r\n").encode() + body
    s.http(T0, VULTR, request, http_response(200, "OK", bytes(s.rng.randrange(256) for _ in range(4096)), "text/html"), port=7080)
    s.alert("c2-checkin", "high", VULTR, http_body_bytes=len(body))
    s.alert("cleartext", "medium", VULTR)
    s.alert("non-standard-port", "low", VULTR)
    s.alert("no-dns-endpoint", "low", VULTR)
    return s


@scenario
def form_post_self_referer():
    s = Scenario("form-post-self-referer",
                 "What the Emotet POST rule must not take: DNS shop.x9-store.fr -> 212.27.48.10 (Free, FR: home), "
                 "a form loaded from /account posted to /account/save with a Referer naming the page "
                 "(http://shop.x9-store.fr/account), 300 bytes of fields; then the same POST to the router "
                 "192.168.1.1 by its address with a Referer naming itself (a router's settings page: local). "
                 "Only cleartext low (296 bytes of form in clear to a home server); no c2-checkin.")
    fields = ("name=Alice+Martin&street=12+rue+des+Lilas&city=Lyon&zip=69003&phone_pref=none&newsletter=0&lang=fr"
              "&theme=dark&notes=" + "x" * 180).encode()[:300]
    s.resolve(T0, "shop.x9-store.fr", FREE)
    s.http(T0 + 0.2, FREE,
           http_request("POST", "/account/save", "shop.x9-store.fr", fields, "application/x-www-form-urlencoded",
                        headers=[("Referer", "http://shop.x9-store.fr/account")]),
           http_response(302, "Found", b"", "text/html"))
    s.http(T0 + 3, "192.168.1.1",
           http_request("POST", "/cgi-bin/wifi", "192.168.1.1", fields, "application/x-www-form-urlencoded",
                        headers=[("Referer", "http://192.168.1.1/cgi-bin/wifi")]),
           http_response(200, "OK", b"<html>saved</html>", "text/html"))
    s.alert("cleartext", "low", FREE)
    return s


@scenario
def trojan_certificate():
    s = Scenario("trojan-certificate",
                 "A banking trojan's command server: no DNS lookup, TLS 1.2 on 443 to 45.77.0.1 (Vultr, US) "
                 "without SNI, the self-signed certificate Emotet, TrickBot, Dridex and QakBot servers presented "
                 "(C=GB, ST=London, L=London, O=Global Security, OU=IT Department, CN=example.com), 2 kB up and "
                 "9 kB down, once. ioc-match high (the pack's trojan-default-certificate rule), tls-anomaly medium "
                 "(self-signed) and low (no SNI), no-dns-endpoint low; foreign-endpoint info.")
    def rdn(oid, tag, value):
        return der(0x31, der(0x30, der_oid(oid) + der(tag, value.encode())))
    subject = der(0x30, rdn("2.5.4.6", 0x13, "GB") + rdn("2.5.4.8", 0x0C, "London") + rdn("2.5.4.7", 0x0C, "London")
                  + rdn("2.5.4.10", 0x0C, "Global Security") + rdn("2.5.4.11", 0x0C, "IT Department")
                  + rdn("2.5.4.3", 0x0C, "example.com"))
    c = s.tls12_open(T0, VULTR, None, names=[], self_signed=True, subject=subject)
    c.send(app_data(s.rng, 2000))
    c.reply(app_data(s.rng, 9000))
    c.close()
    s.alert("ioc-match", "high", VULTR, cert_subject="C=GB, ST=London, L=London, O=Global Security, OU=IT Department, CN=example.com")
    s.alert("tls-anomaly", "medium", VULTR, anomaly="self-signed")
    s.alert("tls-anomaly", "low", VULTR, anomaly="no-sni")
    s.alert("no-dns-endpoint", "low", VULTR)
    return s


@scenario
def irc_bot():
    s = Scenario("irc-bot",
                 "An IRC bot: no DNS lookup, IRC on port 5050 to 95.163.1.1 (RU): NICK [P00|FRA|40712], USER "
                 "x9phone 0 * :X9 mini, the welcome, JOIN #x9bots, the channel topic carrying a command "
                 "(.upload /sdcard/DCIM), the bot's report in a PRIVMSG, PING/PONG. c2-channel high (a bot's "
                 "nickname: tags FRA and a number; port 5050, not IRC's), cleartext medium (the client's 162 "
                 "bytes of IRC in clear), non-standard-port low (IRC on 5050), no-dns-endpoint low; "
                 "foreign-endpoint info.")
    c = s.cap.tcp(T0, RU_HOST, s.sport(), 5050)
    dialogue(c, [("c", "NICK [P00|FRA|40712]"), ("c", "USER x9phone 0 * :X9 mini"),
                 ("s", ":irc.x9.local 001 [P00|FRA|40712] :Welcome to the x9 IRC network [P00|FRA|40712]"),
                 ("c", "JOIN #x9bots"), ("s", ":irc.x9.local 332 [P00|FRA|40712] #x9bots :.upload /sdcard/DCIM"),
                 ("c", "PRIVMSG #x9bots :uploading 312 files from /sdcard/DCIM"), ("s", "PING :irc.x9.local"),
                 ("c", "PONG :irc.x9.local"), ("c", "PRIVMSG #x9bots :done")])
    c.close()
    s.alert("c2-channel", "high", RU_HOST, nick="[P00|FRA|40712]", user="x9phone", server_port=5050)
    s.alert("cleartext", "medium", RU_HOST)
    s.alert("non-standard-port", "low", RU_HOST)
    s.alert("no-dns-endpoint", "low", RU_HOST)
    return s


@scenario
def reverse_shell():
    s = Scenario("reverse-shell",
                 "A reverse shell: no DNS lookup, the device connects to 95.163.1.1:4444 (RU) and answers its "
                 "commands one byte a segment, as an interactive shell writes: `id` -> uid=10123(u0_a123) "
                 "gid=10123(u0_a123) groups=..., `getprop ro.serialno` -> the serial number. c2-channel high "
                 "(the output of id), no-dns-endpoint low; non-standard-port info (an unidentified protocol on "
                 "4444), foreign-endpoint info.")
    c = s.cap.tcp(T0, RU_HOST, s.sport(), 4444)
    c.reply(b"id\n")
    c.wait(0.3)
    c.send(b"uid=10123(u0_a123) gid=10123(u0_a123) groups=10123(u0_a123),3003(inet),9997(everybody)\n", mss=1)
    c.wait(2)
    c.reply(b"getprop ro.serialno\n")
    c.wait(0.2)
    c.send(b"X9M1N1000123\n", mss=1)
    c.close()
    s.alert("c2-channel", "high", RU_HOST, output_kind="id", output="uid=10123(u0_a123) gid=10123(u0_a123) groups=10123(u0_a123),3003(inet),9997(everybody)")
    s.alert("no-dns-endpoint", "low", RU_HOST)
    return s


@scenario
def benign_shell_words():
    s = Scenario("benign-shell-words",
                 "Text that looks like a shell's without being one: DNS sync.x9-analytics.com -> 47.88.1.1 (US), "
                 "an unidentified protocol on 9000 whose client sends `uid=4711;gid=100;name=alice` (key=value, "
                 "no id output), a line beginning `root:` inside a path (`/srv/root:/data`), and `Windows "
                 "PowerShell` without its banner's copyright line. Nothing above info (non-standard-port and "
                 "foreign-endpoint info).", benign=True)
    s.resolve(T0, "sync.x9-analytics.com", ALIBABA_US)
    c = s.cap.tcp(T0 + 0.2, ALIBABA_US, s.sport(), 9000)
    c.send(b"HELLO x9sync/2\nuid=4711;gid=100;name=alice\nmount /srv/root:/data\nagent=Windows PowerShell 5.1\n")
    c.reply(b"OK\n")
    c.close()
    return s


@scenario
def benign_in_flow_chat():
    s = Scenario("benign-in-flow-chat",
                 "A messenger's connection held open for 10 minutes: DNS chat.x9-messenger.com -> 47.88.1.1, one "
                 "TLS 1.2 connection, then 14 exchanges at exponential intervals (mean 40 s) with sizes from 60 "
                 "bytes to 6 kB (typing, messages, a photo). Irregular in time and size: no beaconing; "
                 "foreign-endpoint info only.", benign=True)
    s.resolve(T0, "chat.x9-messenger.com", ALIBABA_US)
    c = s.tls12_open(T0 + 0.1, ALIBABA_US, "chat.x9-messenger.com")
    for _ in range(14):
        c.wait(s.rng.expovariate(1 / 40))
        c.send(app_data(s.rng, s.rng.choice([60, 120, 400, 900, 2500, 6000])))
        c.reply(app_data(s.rng, s.rng.choice([400, 1500, 3000, 8000])))
    c.close()
    return s


def dialogue(c, lines):
    """A line protocol: (who, text) pairs, "c" for the device, "s" for the server, CRLF added."""
    for who, text in lines:
        data = text.encode() + b"\r\n"
        if who == "c":
            c.send(data)
        else:
            c.reply(data)


@scenario
def leak_credentials_smtp():
    b64 = lambda t: base64.b64encode(t.encode()).decode()
    s = Scenario("leak-credentials-smtp",
                 "An infostealer mailing what it took (as Agent Tesla does): DNS mail.x9-relay.ru -> 95.163.1.1 "
                 "(RU), SMTP on 587 in clear: EHLO, AUTH LOGIN as sender@x9-relay.ru with password Str0ngPass!, "
                 "MAIL FROM sender@x9-relay.ru, RCPT TO drop.box.x9@gmail.com, a MIME message with the attachment "
                 "passwords_PC-ALICE.txt, QUIT. identifier-leak high (kind credential: user and secret from the "
                 "base64 lines) and identifier-leak high (kind mail-exfil: an attachment to a free-mail address); "
                 "cleartext medium (the SMTP bytes); foreign-endpoint info.")
    s.resolve(T0, "mail.x9-relay.ru", RU_HOST)
    c = s.cap.tcp(T0 + 0.2, RU_HOST, s.sport(), 587)
    body = ["From: <sender@x9-relay.ru>", "To: <drop.box.x9@gmail.com>", "Subject: PW_alice/PC-ALICE",
            "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="b1"', "", "--b1",
            "Content-Type: text/plain", "", "Time: 2025-03-14 09:00", "--b1",
            'Content-Type: application/octet-stream; name="passwords_PC-ALICE.txt"',
            'Content-Disposition: attachment; filename="passwords_PC-ALICE.txt"', "Content-Transfer-Encoding: base64", "",
            b64("URL: https://mail.example.org\nUser: alice\nPassword: hunter2\n"), "--b1--", "."]
    dialogue(c, [("s", "220 mail.x9-relay.ru ESMTP"), ("c", "EHLO PC-ALICE"), ("s", "250-mail.x9-relay.ru"),
                 ("s", "250 AUTH LOGIN PLAIN"), ("c", "AUTH LOGIN"), ("s", "334 VXNlcm5hbWU6"),
                 ("c", b64("sender@x9-relay.ru")), ("s", "334 UGFzc3dvcmQ6"), ("c", b64("Str0ngPass!")),
                 ("s", "235 2.7.0 Authentication successful"), ("c", "MAIL FROM:<sender@x9-relay.ru>"), ("s", "250 OK"),
                 ("c", "RCPT TO:<drop.box.x9@gmail.com>"), ("s", "250 OK"), ("c", "DATA"),
                 ("s", "354 End data with <CR><LF>.<CR><LF>")] + [("c", l) for l in body] +
             [("s", "250 OK queued"), ("c", "QUIT"), ("s", "221 Bye")])
    c.close()
    s.alert("identifier-leak", "high", RU_HOST, kind="credential", user="sender@x9-relay.ru", secret="Str0ngPass!")
    s.alert("identifier-leak", "high", RU_HOST, kind="mail-exfil", attachments=["passwords_PC-ALICE.txt"])
    s.alert("cleartext", "medium", RU_HOST)
    return s


@scenario
def leak_host_info():
    from urllib.parse import urlencode
    s = Scenario("leak-host-info",
                 "An infostealer's check-in describing the machine: DNS gate.x9-panel.cn -> 120.77.166.21 (Alibaba, "
                 "CN), an HTTP POST of the form hwid, pc_name, user_name, os, av and software (a 177-byte body). "
                 "identifier-leak high (kind host-info: host PC-ALICE, user alice, OS, hardware id, antivirus, "
                 "software) and cleartext medium (the body); foreign-endpoint info.")
    body = urlencode({"hwid": "4C4C4544-0042-3510-8052-B3C04F4A3732", "pc_name": "PC-ALICE", "user_name": "alice",
                      "os": "Windows 10 Pro x64", "av": "Windows Defender",
                      "software": "Chrome 121; Telegram Desktop 4.14; KeePass 2.55"}).encode()
    s.resolve(T0, "gate.x9-panel.cn", ALIBABA_CN)
    s.http(T0 + 0.2, ALIBABA_CN, http_request("POST", "/gate.php", "gate.x9-panel.cn", body, "application/x-www-form-urlencoded"),
           http_response(200, "OK", b"ok", "text/plain"))
    s.alert("identifier-leak", "high", ALIBABA_CN, kind="host-info", host="PC-ALICE", user="alice", antivirus="Windows Defender")
    s.alert("cleartext", "medium", ALIBABA_CN)
    return s


@scenario
def leak_credentials_ftp_http():
    s = Scenario("leak-credentials-ftp-http",
                 "Secrets in clear over FTP and HTTP: DNS files.x9-store.com -> 45.77.0.1 (Vultr, US), FTP on 21: "
                 "USER x9up, PASS ftp-s3cret, STOR hostinfo.zip (the file itself would go on a data connection, "
                 "not captured); DNS login.x9-portal.com -> 47.88.1.1 (US), an HTTP POST of the form "
                 "username=alice&password=hunter2 (33 bytes); DNS router.free.fr -> 212.27.48.10 (FR, home), a GET "
                 "with Authorization: Basic admin:admin. identifier-leak high 45.77.0.1 (credential) and medium "
                 "45.77.0.1 (file-upload), cleartext medium 45.77.0.1 (the pack's ftp-telnet-abroad rule), "
                 "identifier-leak high 47.88.1.1 (credential, form field), identifier-leak medium 212.27.48.10 "
                 "(credential, Basic, at home); foreign-endpoint info.")
    s.resolve(T0, "files.x9-store.com", VULTR)
    c = s.cap.tcp(T0 + 0.2, VULTR, s.sport(), 21)
    dialogue(c, [("s", "220 (vsFTPd 3.0.3)"), ("c", "USER x9up"), ("s", "331 Please specify the password."),
                 ("c", "PASS ftp-s3cret"), ("s", "230 Login successful."), ("c", "TYPE I"), ("s", "200 Binary"),
                 ("c", "PASV"), ("s", "227 Entering Passive Mode (45,77,0,1,117,48)."), ("c", "STOR hostinfo.zip"),
                 ("s", "150 Ok to send data."), ("s", "226 Transfer complete."), ("c", "QUIT"), ("s", "221 Goodbye.")])
    c.close()
    s.resolve(T0 + 5, "login.x9-portal.com", ALIBABA_US)
    s.http(T0 + 5.2, ALIBABA_US,
           http_request("POST", "/session", "login.x9-portal.com", b"username=alice&password=hunter2",
                        "application/x-www-form-urlencoded"),
           http_response(302, "Found", b"", "text/html"))
    s.resolve(T0 + 9, "router.free.fr", FREE)
    s.http(T0 + 9.2, FREE,
           http_request("GET", "/status", "router.free.fr", headers=[("Authorization", "Basic " + base64.b64encode(b"admin:admin").decode())]),
           http_response(200, "OK", b"<html>ok</html>", "text/html"))
    s.alert("identifier-leak", "high", VULTR, kind="credential", user="x9up", secret="ftp-s3cret", mechanism="USER/PASS")
    s.alert("identifier-leak", "medium", VULTR, kind="file-upload", file="hostinfo.zip")
    s.alert("cleartext", "medium", VULTR)
    s.alert("identifier-leak", "high", ALIBABA_US, kind="credential", user="alice", secret="hunter2")
    s.alert("identifier-leak", "medium", FREE, kind="credential", user="admin", secret="admin", mechanism="Basic")
    return s


# The JSON an activation report sends (leak-imei-http-post and its offloaded twin).
ACTIVATION_REPORT = json.dumps({"event": "activation", "imei": IMEI, "model": "X9 mini", "os": "Android 9",
                                "app_version": "4.2.1", "locale": "fr_FR", "carrier_name": "Free",
                                "first_boot": True, "channel": "oportik-store"}).encode()


@scenario
def leak_imei_http_post():
    s = Scenario("leak-imei-http-post",
                 "An activation report: DNS report.oportik-cloud.cn -> 120.77.166.21 (CN), HTTP POST on port 80 "
                 f"with a JSON body holding the IMEI {IMEI} (Luhn-valid, reporting body 35) and nothing else "
                 "identifying, {body} bytes. identifier-leak high (a validated IMEI to a foreign endpoint) and "
                 "cleartext medium (a body of 128 bytes or more in clear to a foreign endpoint); foreign-endpoint info.")
    s.resolve(T0, "report.oportik-cloud.cn", ALIBABA_CN)
    body = ACTIVATION_REPORT
    assert len(body) >= 128
    s.description = s.description.replace("{body}", str(len(body)))
    s.http(T0 + 0.2, ALIBABA_CN, http_request("POST", "/api/v3/activate", "report.oportik-cloud.cn", body),
           http_response(200, "OK", b'{"ok":true}'))
    s.alert("identifier-leak", "high", ALIBABA_CN, kind="imei")
    s.alert("cleartext", "medium", ALIBABA_CN)
    return s


@scenario
def leak_imsi_iccid_uri():
    s = Scenario("leak-imsi-iccid-uri",
                 "A push registration: DNS reg.x9-push.com -> 45.77.0.1 (Vultr, US), HTTP GET on port 80 with "
                 f"imsi={IMSI} (MCC 208, France) and iccid={ICCID} (19 digits, 89 prefix, Luhn-valid) in the URI. "
                 "identifier-leak high for each kind (imsi, iccid); a GET has no body, so no cleartext; "
                 "foreign-endpoint info.")
    s.resolve(T0, "reg.x9-push.com", VULTR)
    s.http(T0 + 0.2, VULTR, http_request("GET", f"/v1/register?imsi={IMSI}&iccid={ICCID}&lang=fr", "reg.x9-push.com"),
           http_response(200, "OK", b'{"token":"f00dcafe"}'))
    s.alert("identifier-leak", "high", VULTR, kind="imsi")
    s.alert("identifier-leak", "high", VULTR, kind="iccid")
    return s


@scenario
def leak_known_hashes():
    name = "leak-known-hashes"
    ids, _ = identifiers_file(name)
    md5, sha1 = hashlib.md5(IMEI.encode()).hexdigest(), hashlib.sha1(IMEI.encode()).hexdigest()
    sha256_serial = hashlib.sha256(SERIAL.encode()).hexdigest()
    s = Scenario(name,
                 "A custom protocol over raw TCP: DNS dev.x9-analytics.com -> 47.88.1.1 (Alibaba, US), port 9000, "
                 f"a hello line with the MD5 ({md5}) and SHA-1 of the IMEI and the SHA-256 of the serial number "
                 f"{SERIAL}, all given in {ids}. Without --identifiers nothing identifies them. identifier-leak "
                 "high for the imei and the serial kinds (known identifiers, hashed, to a foreign endpoint); "
                 "non-standard-port info (an unidentified protocol on 9000) and foreign-endpoint info.",
                 args=["--identifiers", f"{REL}/{ids}"])
    s.resolve(T0, "dev.x9-analytics.com", ALIBABA_US)
    c = s.cap.tcp(T0 + 0.2, ALIBABA_US, s.sport(), 9000)
    c.send(f"HELLO v=2;dev={md5};chk={sha1};sn={sha256_serial};os=android\n".encode())
    c.reply(b"OK session=7f3a\n")
    c.send(b"PING\n")
    c.reply(b"PONG\n")
    c.close()
    s.alert("identifier-leak", "high", ALIBABA_US, kind="imei")
    s.alert("identifier-leak", "high", ALIBABA_US, kind="serial")
    return s


@scenario
def leak_known_phone_base64():
    name = "leak-known-phone-base64"
    ids, _ = identifiers_file(name)
    b64 = base64.b64encode(PHONE.encode()).decode()
    s = Scenario(name,
                 "A registration datagram: DNS u.oportik-cloud.cn -> 120.77.166.21 (CN), UDP to port 7777 with "
                 f"uid={b64}, the base64 of the phone number {PHONE} given in {ids}; the server answers. "
                 "identifier-leak high (a known identifier, encoded, to a foreign endpoint); foreign-endpoint info "
                 "(UDP with an unidentified protocol is not a non-standard-port).",
                 args=["--identifiers", f"{REL}/{ids}"])
    s.resolve(T0, "u.oportik-cloud.cn", ALIBABA_CN)
    s.cap.udp_exchange(T0 + 0.2, ALIBABA_CN, s.sport(), 7777, f"\x01\x00reg;uid={b64};ver=3\n".encode(), b"\x02\x00ack\n")
    s.alert("identifier-leak", "high", ALIBABA_CN, kind="phone")
    return s


@scenario
def leak_location_json():
    s = Scenario("leak-location-json",
                 "A weather widget: DNS geo.weatherly-app.com -> 104.16.132.229 (Cloudflare, US), HTTP POST on port 80 "
                 'with the JSON body {"loc":"48.8566,2.3522","units":"metric"} (coordinates with 4 decimals after a '
                 "location keyword), 41 bytes. identifier-leak medium (a location to a foreign endpoint); the body is "
                 "under 128 bytes, so no cleartext; foreign-endpoint info.")
    s.resolve(T0, "geo.weatherly-app.com", CLOUDFLARE)
    body = b'{"loc":"48.8566,2.3522","units":"metric"}'
    s.http(T0 + 0.2, CLOUDFLARE, http_request("POST", "/v2/forecast", "geo.weatherly-app.com", body),
           http_response(200, "OK", b'{"t":12,"sky":"clear"}'))
    s.alert("identifier-leak", "medium", CLOUDFLARE, kind="location")
    return s


@scenario
def leak_imei_dns():
    s = Scenario("leak-imei-dns",
                 f"The IMEI in a DNS query label: {IMEI}.id.oportik-cloud.cn (A, answered NXDOMAIN) through the "
                 "router. identifier-leak high, dest_ip the resolver 192.168.1.1 (the flow that carried the query): "
                 "a validated IMEI, and a query name leaves the network for whoever serves the domain, wherever the "
                 "resolver is, so it counts as foreign.")
    s.qid += 1
    s.cap.dns(T0, s.qid, f"{IMEI}.id.oportik-cloud.cn", [], rcode=3)
    s.alert("identifier-leak", "high", "192.168.1.1", kind="imei")
    return s


@scenario
def leak_home_mac_phone():
    s = Scenario("leak-home-mac-phone",
                 "Identifiers to a French server: DNS api.meteo-locale.fr -> 217.70.184.38 (Gandi, FR), HTTP GET on "
                 "port 80 with bssid=f4:ca:e5:4d:1a:20 (the access point's MAC, not the device's) and tel=0612345678 "
                 "(a French mobile number after a phone keyword) in the URI. identifier-leak low for each kind "
                 "(mac, phone): neither is a validated hardware identifier and the endpoint is home.")
    s.resolve(T0, "api.meteo-locale.fr", GANDI)
    s.http(T0 + 0.2, GANDI, http_request("GET", "/api/v1/alerts?bssid=f4:ca:e5:4d:1a:20&tel=0612345678&units=metric",
                                         "api.meteo-locale.fr"),
           http_response(200, "OK", b'{"alerts":[]}'))
    s.alert("identifier-leak", "low", GANDI, kind="mac")
    s.alert("identifier-leak", "low", GANDI, kind="phone")
    return s


@scenario
def dns_tunnel():
    s = Scenario("dns-tunnel",
                 "Data out through DNS: 60 TXT queries through the router for <52-character base32 label>."
                 "<n>.t.dnsq-relay.net (all under one registered domain, dnsq-relay.net, each name unique), each "
                 "answered with a short TXT record, one every 2 s. dns-tunnel medium, dest_ip the resolver "
                 "192.168.1.1 (the flows carrying the queries).")
    data = bytes(s.rng.randrange(256) for _ in range(60 * 32))
    for k in range(60):
        label = base64.b32encode(data[32 * k:32 * k + 32]).decode().rstrip("=").lower()
        name = f"{label}.{k}.t.dnsq-relay.net"
        s.qid += 1
        s.cap.dns(T0 + 2 * k, s.qid, name, [(name, "TXT", f"ok{k}")], qtype="TXT")
    s.alert("dns-tunnel", "medium", "192.168.1.1", domain="dnsq-relay.net")
    return s


@scenario
def dns_tunnel_direct():
    s = Scenario("dns-tunnel-direct",
                 "A DNS tunnel in direct mode (as dnscat2 without a domain): 40 CNAME queries through the router for "
                 "dnscat.<hex>.<hex>, names under no public suffix (their last label is hex and changes every "
                 "query, so no registered domain groups them), one every 3 s, each answered. dns-tunnel medium, "
                 "dest_ip the resolver 192.168.1.1, the names counted under the pseudo-domain \"(no public suffix)\"; "
                 "then dns-tunnel high at the 33rd name: each carries 126 encoded bytes (dots left out), 33 x 126 = "
                 "4,158 >= 4,096.")
    for k in range(40):
        data = bytes(s.rng.randrange(256) for _ in range(60)).hex()
        name = f"dnscat.{data[:60]}.{data[60:]}"
        s.qid += 1
        s.cap.dns(T0 + 3 * k, s.qid, name, [(name, "CNAME", f"dnscat.{data[:20]}")], qtype="CNAME")
    s.alert("dns-tunnel", "medium", "192.168.1.1", domain="(no public suffix)")
    s.alert("dns-tunnel", "high", "192.168.1.1", encoded_bytes=4158, unique_names=33)
    return s


@scenario
def cleartext():
    s = Scenario("cleartext",
                 "Telemetry in clear: DNS collect.x9-analytics.com -> 47.88.1.1 (Alibaba, US) and an HTTP POST on "
                 "port 80 with a {body}-byte JSON body (no identifiers); DNS mqtt.oportik-cloud.cn -> 120.77.166.21 "
                 "(CN) and MQTT on 1883: CONNECT, a {publish}-byte PUBLISH, DISCONNECT ({mqtt} bytes in all). "
                 "cleartext medium for each endpoint; foreign-endpoint info for each.")
    s.resolve(T0, "collect.x9-analytics.com", ALIBABA_US)
    body = json.dumps({"event": "heartbeat", "battery": 87, "charging": False, "network": "wifi", "screen": "off",
                       "app_version": "4.2.1", "uptime_s": 86400, "free_storage_mb": 11520,
                       "installed": ["com.x9.launcher", "com.x9.gallery", "com.x9.store", "com.x9.weather"],
                       "crashes": 0, "locale": "fr_FR", "theme": "dark", "brightness": 40}).encode()
    assert len(body) >= 250
    s.http(T0 + 0.2, ALIBABA_US, http_request("POST", "/v1/events", "collect.x9-analytics.com", body),
           http_response(204, "No Content"))
    s.resolve(T0 + 5, "mqtt.oportik-cloud.cn", ALIBABA_CN)
    c = s.cap.tcp(T0 + 5.2, ALIBABA_CN, s.sport(), 1883)
    c.send(mqtt_connect(b"x9-telemetry"))
    c.reply(mqtt_connack())
    payload = json.dumps({"battery": 87, "network": "wifi", "apps_running": ["launcher", "gallery", "store"],
                          "cpu_load": 12, "mem_free_mb": 812, "screen": "off", "volume": 5, "bluetooth": False,
                          "nfc": False, "airplane": False, "ringer": "normal"}).encode()
    c.send(mqtt_publish(b"devices/x9/status", payload))
    c.send(mqtt_disconnect())
    c.close()
    publish = len(mqtt_publish(b"devices/x9/status", payload))
    s.description = s.description.format(body=len(body), publish=publish, mqtt=c.sent)
    s.alert("cleartext", "medium", ALIBABA_US)
    s.alert("cleartext", "medium", ALIBABA_CN)
    return s


@scenario
def non_standard_port():
    s = Scenario("non-standard-port",
                 "An update check over HTTP on port 5555: DNS ota.x9-update.com -> 45.77.0.1 (Vultr, US), GET "
                 "/check?v=4.2.1, a short JSON answer. non-standard-port low (HTTP, a cleartext protocol, off its "
                 "ports, to a foreign endpoint); a GET has no body: no cleartext; foreign-endpoint info.")
    s.resolve(T0, "ota.x9-update.com", VULTR)
    s.http(T0 + 0.2, VULTR, http_request("GET", "/check?v=4.2.1&channel=stable", "ota.x9-update.com:5555"),
           http_response(200, "OK", b'{"update":false}'), port=5555)
    s.alert("non-standard-port", "low", VULTR, dest_port=5555, app="http")
    return s


@scenario
def evasion():
    s = Scenario("evasion",
                 "A request whose bytes change on retransmission: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP "
                 "GET /index.html on port 80, then the same sequence range sent again as GET /admin.html (same "
                 "length, different bytes), then the server's answer. evasion medium (overlap with different "
                 "data, to_server); nothing else: the endpoint is home and a GET has no body.")
    s.resolve(T0, "www.free.fr", FREE)
    c = s.cap.tcp(T0 + 0.2, FREE, s.sport(), 80)
    first = b"GET /index.html HTTP/1.1\r\n"
    rest = b"Host: www.free.fr\r\nUser-Agent: okhttp/3.12.1\r\nAccept: */*\r\n\r\n"
    c.seg(True, 0x18, first)
    c.cseq += len(first)
    c.sent += len(first)
    c.resend(True, len(first), b"GET /admin.html HTTP/1.1\r\n")
    c.seg(True, 0x18, rest)
    c.cseq += len(rest)
    c.sent += len(rest)
    c.seg(False, 0x10, b"")
    c.reply(http_response(200, "OK", b"<html><body>Free</body></html>", "text/html"))
    c.close()
    s.alert("evasion", "medium", FREE, direction="to_server")
    return s


@scenario
def evasion_late_retransmission():
    s = Scenario("evasion-late-retransmission",
                 "A retransmission that rewrites delivered bytes: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP "
                 "POST on port 80, 5,600 bytes in four 1,400-byte segments, all acknowledged; then, 60 ms after "
                 "the third segment was first sent (1.5 round trips of 40 ms), that segment again with bytes "
                 "3,000-3,002 and 3,500-3,501 of the request (stream offsets) changed. Both ranges are compared with the bytes "
                 "delivered before: two overlap anomalies (offset 3000 length 3, offset 3500 length 2) and evasion "
                 "medium (the first range's offset and length); cleartext low (a body in clear to a home "
                 "endpoint).")
    s.resolve(T0, "www.free.fr", FREE)
    c = s.cap.tcp(T0 + 0.2, FREE, s.sport(), 80)
    head = b"POST /upload HTTP/1.1\r\nHost: www.free.fr\r\nContent-Length: %d\r\n\r\n"
    size = 5600 - len(head % 1000)  # the body's length has four digits
    body = b"".join(b"field%04d=vvvv&" % i for i in range(400))[:size]
    request = (head % size) + body
    assert len(request) == 5600
    rtt = 0.040
    times = []
    for i in range(0, len(request), 1400):
        c.t += rtt / 4
        times.append(c.t + 0.002)
        c.seg(True, 0x18, request[i:i + 1400])
        c.cseq += 1400
        c.sent += 1400
    s.cap.payloads.append(("tcp", FREE, 80, request))
    c.seg(False, 0x10, b"")
    changed = bytearray(request[2800:4200])
    for k in (3000, 3001, 3002, 3500, 3501):
        changed[k - 2800] ^= 0x20
    c.t = times[2] + 1.5 * rtt
    c.resend(True, len(request) - 2800, bytes(changed))
    c.reply(http_response(200, "OK", b"{}", "application/json"))
    c.close()
    s.alert("evasion", "medium", FREE, anomaly="overlap-different-data", direction="to_server", offset=3000, length=3)
    s.alert("cleartext", "low", FREE)
    return s


@scenario
def evasion_bad_checksum():
    s = Scenario("evasion-bad-checksum",
                 "An insertion attack: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP on port 80 whose first "
                 "request segment GET /admin.html carries a bad TCP checksum (the server drops it), then the same "
                 "sequence range as GET /index.html with a good one, the rest of the request and the answer. "
                 "evasion medium (bad checksum on a segment with data, to_server); the HTTP request is GET "
                 "/index.html, as the server saw it; nothing else: the endpoint is home and a GET has no body.")
    s.insertion(csum="bad")
    s.alert("evasion", "medium", FREE, anomaly="bad-checksum", to_server_packets=1, to_client_packets=0)
    return s


@scenario
def evasion_zero_checksum():
    s = Scenario("evasion-zero-checksum",
                 "A checksum of 0 among good ones: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP on port 80 whose "
                 "first request segment GET /admin.html carries a TCP checksum of 0 (wrong on the wire, but the "
                 "shape some offloading stacks leave in a capture taken on the sender), then GET /index.html at "
                 "the same sequence numbers with a good checksum, and every other device segment good. evasion "
                 "medium (overlap with different data: the zero-checksum copy was kept as offloaded, the receiver "
                 "dropped it); nothing else. A checksum of 0 among verified ones is not raised by itself: real "
                 "captures mix the two (docs/detections.md).")
    s.insertion(csum="zero")
    s.alert("evasion", "medium", FREE, anomaly="overlap-different-data", direction="to_server")
    return s


@scenario
def evasion_ttl_reset():
    s = Scenario("evasion-ttl-reset",
                 "A forged reset: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP on port 80 where the server's "
                 "packets come with TTL 56; after the request a RST in the server's name arrives with TTL 120 (an "
                 "injector one hop away), and the real answer follows. evasion medium (a TTL outlier that is a "
                 "reset, to_client); nothing else: the endpoint is home and a GET has no body.")
    s.resolve(T0, "www.free.fr", FREE)
    c = s.cap.tcp(T0 + 0.2, FREE, s.sport(), 80, server_ttl=56)
    c.send(http_request("GET", "/", "www.free.fr"))
    c.seg(False, 0x04, b"", ttl=120)
    c.reply(http_response(200, "OK", b"<html><body>Free</body></html>", "text/html"))
    c.close()
    s.alert("evasion", "medium", FREE, anomaly="ttl-outlier", direction="to_client", first_ttl=56, outlier_ttl=120,
            resets=1)
    return s


@scenario
def leak_imei_offloaded():
    s = Scenario("leak-imei-offloaded",
                 "The activation report of leak-imei-http-post captured on the device itself: every segment the "
                 "device sends carries the partial checksum Linux leaves for the NIC (the folded pseudo-header sum), "
                 f"which is wrong in the capture and right on the wire. The POST body holds the IMEI {IMEI}. "
                 "identifier-leak high and cleartext medium as there, foreign-endpoint info; no evasion: offloaded "
                 "checksums are recognised and the packets kept.")
    s.resolve(T0, "report.oportik-cloud.cn", ALIBABA_CN)
    body = ACTIVATION_REPORT
    c = s.cap.tcp(T0 + 0.2, ALIBABA_CN, s.sport(), 80, server_ttl=52, device_csum="offload")
    c.send(http_request("POST", "/api/v3/activate", "report.oportik-cloud.cn", body))
    c.reply(http_response(200, "OK", b'{"ok":true}'))
    c.close()
    s.alert("identifier-leak", "high", ALIBABA_CN, kind="imei")
    s.alert("cleartext", "medium", ALIBABA_CN)
    return s


@scenario
def ioc_match():
    s = Scenario("ioc-match",
                 "A contact with a listed domain: DNS api.evil.com -> 195.154.1.1 (Scaleway, FR), TLS 1.2 with SNI "
                 "api.evil.com, a short exchange; ioc-match.ioc.txt lists evil.com (label-aware: it covers "
                 "api.evil.com). ioc-match high, although the endpoint is home.",
                 args=["--ioc", f"{REL}/ioc-match.ioc.txt"])
    s.resolve(T0, "api.evil.com", SCALEWAY)
    s.tls12(T0 + 0.2, SCALEWAY, "api.evil.com", up=700, down=1500)
    s.alert("ioc-match", "high", SCALEWAY, indicator="evil.com")
    return s


@scenario
def tls_self_signed():
    s = Scenario("tls-self-signed",
                 "A self-signed certificate from a foreign server: DNS sync.x9-telemetry.cn -> 39.156.66.10 (China "
                 "Mobile, CN), TLS 1.2 with SNI; the only certificate has subject = issuer = CN=sync.x9-telemetry.cn "
                 "and a SAN naming it (so only self-signed, no mismatch). tls-anomaly medium; foreign-endpoint info.")
    s.resolve(T0, "sync.x9-telemetry.cn", CHINA_MOBILE)
    s.tls12(T0 + 0.2, CHINA_MOBILE, "sync.x9-telemetry.cn", self_signed=True, up=800, down=1200)
    s.alert("tls-anomaly", "medium", CHINA_MOBILE, anomaly="self-signed")
    return s


@scenario
def tls_name_mismatch():
    s = Scenario("tls-name-mismatch",
                 "A certificate that does not name the server: DNS api.weatherly-app.com -> 104.16.132.229 "
                 "(Cloudflare, US), TLS 1.2 with SNI api.weatherly-app.com; the leaf (CA-issued) names "
                 "*.cdn-parking.net and cdn-parking.net only. tls-anomaly medium; foreign-endpoint info.")
    s.resolve(T0, "api.weatherly-app.com", CLOUDFLARE)
    s.tls12(T0 + 0.2, CLOUDFLARE, "api.weatherly-app.com", names=["*.cdn-parking.net", "cdn-parking.net"],
            up=800, down=1200)
    s.alert("tls-anomaly", "medium", CLOUDFLARE, anomaly="name-mismatch")
    return s


@scenario
def tls_no_sni():
    s = Scenario("tls-no-sni",
                 "TLS to a hard-coded foreign address without SNI: no DNS, 45.77.0.1:443 (Vultr, US), a TLS 1.2 "
                 "ClientHello without server_name, a CA-issued certificate for gw.vultr-guest.net. tls-anomaly low "
                 "(no SNI to a foreign address) and no-dns-endpoint low (foreign, no name in the flow); "
                 "foreign-endpoint info.")
    s.tls12(T0, VULTR, None, names=["gw.vultr-guest.net"], up=800, down=1200)
    s.alert("tls-anomaly", "low", VULTR, anomaly="no-sni")
    s.alert("no-dns-endpoint", "low", VULTR)
    return s


@scenario
def tls_old_version():
    s = Scenario("tls-old-version",
                 "An obsolete protocol version: DNS legacy.x9-ota.com -> 47.88.1.1 (Alibaba, US); the ClientHello "
                 "offers TLS 1.2, the server answers TLS 1.0 (TLS_RSA_WITH_AES_128_CBC_SHA) with a CA-issued "
                 "certificate naming the host. tls-anomaly low (negotiated TLS 1.0); foreign-endpoint info.")
    s.resolve(T0, "legacy.x9-ota.com", ALIBABA_US)
    s.tls12(T0 + 0.2, ALIBABA_US, "legacy.x9-ota.com", version=0x0301, cipher=0x002F, up=800, down=1200)
    s.alert("tls-anomaly", "low", ALIBABA_US, anomaly="obsolete-version")
    return s


@scenario
def no_dns_endpoint():
    s = Scenario("no-dns-endpoint",
                 "Hard-coded addresses, no DNS at all: a binary protocol (not TLS) to 120.77.166.21:443 (Alibaba, CN) "
                 "with data both ways -> no-dns-endpoint low (foreign, no name in the flow; an unidentified protocol "
                 "under port 1024 is not a non-standard-port). Also, all info or nothing: HTTPS with SNI to "
                 "212.27.48.10 (FR; no-dns-endpoint info), HTTPS with SNI img.nimbus-cdn.net to 151.101.1.69 "
                 "(Fastly, US; no-dns-endpoint info, foreign-endpoint info), NTP to 162.159.200.1:123 and a DNS "
                 "query straight to 8.8.8.8 (exempt ports; foreign-endpoint info).")
    c = s.cap.tcp(T0, ALIBABA_CN, s.sport(), 443)
    c.send(b"\x7fX9C\x00\x01\x00\x40" + bytes(s.rng.randrange(256) for _ in range(64)))
    c.reply(b"\x7fX9C\x00\x02\x00\x10" + bytes(s.rng.randrange(256) for _ in range(16)))
    c.close()
    s.tls12(T0 + 2, FREE, "www.free.fr", up=600, down=3000)
    s.tls12(T0 + 4, FASTLY, "img.nimbus-cdn.net", names=["*.nimbus-cdn.net", "nimbus-cdn.net"], up=600, down=3000)
    ntp = bytes([0x23, 0, 6, 0x20]) + bytes(44)
    answer = bytes([0x24, 2, 6, 0xE9]) + bytes(s.rng.randrange(256) for _ in range(44))
    s.cap.udp_exchange(T0 + 6, NTP_HOST, 123, 123, ntp, answer)
    s.qid += 1
    s.cap.dns(T0 + 8, s.qid, "time.android.com", [("time.android.com", "A", "216.239.35.0")], server="8.8.8.8")
    s.alert("no-dns-endpoint", "low", ALIBABA_CN)
    return s


# Benign variants: nothing above info.

@scenario
def benign_french_browsing():
    s = Scenario("benign-french-browsing",
                 "Browsing French sites: DNS and TLS 1.2 (SNI, certificates naming the hosts) to www.free.fr "
                 "(212.27.48.10), www.gandi.net (217.70.184.38) and www.scaleway.com (195.154.1.1), two pages each, "
                 "and an HTTP GET to www.free.fr answered 301. All home: no alert at all.", benign=True)
    sites = [("www.free.fr", FREE), ("www.gandi.net", GANDI), ("www.scaleway.com", SCALEWAY)]
    t = T0
    for name, address in sites:
        s.resolve(t, name, address)
        s.tls12(t + 0.2, address, name, names=[name, name[4:]], up=900, down=40_000)
        s.tls12(t + 7.5, address, name, names=[name, name[4:]], up=700, down=25_000)
        t += 20
    s.http(t, FREE, http_request("GET", "/", "www.free.fr", headers=[("Accept", "text/html")]),
           http_response(301, "Moved Permanently", b"<html>moved</html>", "text/html"))
    return s


@scenario
def benign_foreign_cdn():
    s = Scenario("benign-foreign-cdn",
                 "A foreign CDN used normally: DNS img.nimbus-cdn.net (CNAME nimbus.global-edge.net) -> 151.101.1.69 "
                 "(Fastly, US), TLS 1.2 with SNI and a CA-issued certificate whose SAN *.nimbus-cdn.net covers it, "
                 "two downloads (300 KB and 120 KB) for about 3 KB sent. foreign-endpoint info only.", benign=True)
    s.resolve(T0, "img.nimbus-cdn.net", FASTLY, cname="nimbus.global-edge.net")
    cdn = ["*.nimbus-cdn.net", "nimbus-cdn.net"]
    s.tls12(T0 + 0.2, FASTLY, "img.nimbus-cdn.net", names=cdn, up=1200, down=300_000)
    s.tls12(T0 + 9, FASTLY, "img.nimbus-cdn.net", names=cdn, up=800, down=120_000)
    return s


@scenario
def benign_short_foreign():
    s = Scenario("benign-short-foreign",
                 "Short foreign flows: Android's connectivity check (DNS connectivitycheck.gstatic.com -> "
                 "142.250.179.78, HTTP GET /generate_204 answered 204) and a brief TLS 1.2 exchange with SNI to "
                 "push.nimbus-cdn.net (151.101.1.69). foreign-endpoint info for each, nothing else.", benign=True)
    s.resolve(T0, "connectivitycheck.gstatic.com", GOOGLE)
    s.http(T0 + 0.2, GOOGLE, http_request("GET", "/generate_204", "connectivitycheck.gstatic.com"),
           http_response(204, "No Content"))
    s.resolve(T0 + 3, "push.nimbus-cdn.net", FASTLY)
    s.tls12(T0 + 3.2, FASTLY, "push.nimbus-cdn.net", names=["*.nimbus-cdn.net"], up=200, down=300)
    return s


def beacon_score(times):
    """Median interval and MAD, as Sources/SiphonDetect/Beaconing.swift computes them."""
    times = sorted(times)
    iv = [b - a for a, b in zip(times, times[1:])]

    def median(v):
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    m = median(iv)
    return m, median([abs(x - m) for x in iv])


@scenario
def benign_irregular_contacts():
    s = Scenario("benign-irregular-contacts",
                 "Irregular contacts: 12 connections to one foreign host, DNS sync.notes-cloud.com -> 52.84.1.1 "
                 "(Amazon, US) and TLS 1.2 with SNI each time, at exponentially distributed intervals (mean 240 s): "
                 "the median absolute deviation stays above 0.2 x the median at every contact from the 6th on, so "
                 "no beaconing; foreign-endpoint info.", benign=True)
    # Intervals drawn until every series from the 6th contact on is clearly irregular (MAD over 0.3 x median, the
    # detector's bound being 0.2): deterministic, the draws come from the scenario's seeded generator.
    while True:
        times = [T0]
        for _ in range(11):
            times.append(times[-1] + s.rng.expovariate(1 / 240))
        if all(mad > 0.3 * m for m, mad in (beacon_score(times[:n]) for n in range(6, 13))):
            break
    for t in times:
        s.resolve(t, "sync.notes-cloud.com", AMAZON)
        s.tls12(t + 0.1, AMAZON, "sync.notes-cloud.com", up=400, down=1500)
    return s


@scenario
def benign_unanswered_syns():
    s = Scenario("benign-unanswered-syns",
                 "Periodic SYNs nobody answers: every 60 s, 10 times, a connection attempt to the hard-coded "
                 "95.163.1.1:443 (RU), each SYN retransmitted after 1 s and 3 s, never answered. Failed handshakes "
                 "are not contacts (no beaconing) and not connections (no no-dns-endpoint); foreign-endpoint info.",
                 benign=True)
    for k in range(10):
        s.cap.unanswered_syn(T0 + 60 * k, RU_HOST, s.sport(), 443)
    return s


@scenario
def benign_numbers_home():
    order = not_luhn("17419428001234")
    order2 = not_luhn("18395027461928")
    session = not_luhn("17419428009876")
    s = Scenario("benign-numbers-home",
                 "Long numbers that are not identifiers, to French servers: an HTTP POST (body under 128 bytes) to "
                 f"shop.boutique-exemple.fr (212.27.48.10) with order id {order} (15 digits, fails Luhn) and a "
                 f"13-digit millisecond timestamp; an HTTP GET to api.suivi-colis.fr (217.70.184.38) with order={order2} "
                 f"(fails Luhn) and sim_session={session} (after an IMSI keyword, but MCC 174 does not exist, and "
                 "fails Luhn). No alert at all.", benign=True)
    for n in (order, order2, session):
        assert not luhn_ok(n) and n[0] == "1"
    s.resolve(T0, "shop.boutique-exemple.fr", FREE)
    body = json.dumps({"order_id": order, "qty": 2, "ts": 1741942800123}).encode()
    assert len(body) < 128
    s.http(T0 + 0.2, FREE, http_request("POST", "/api/orders", "shop.boutique-exemple.fr", body),
           http_response(201, "Created", b'{"status":"accepted"}'))
    s.resolve(T0 + 5, "api.suivi-colis.fr", GANDI)
    s.http(T0 + 5.2, GANDI, http_request("GET", f"/track?order={order2}&ts=1741942805456&sim_session={session}",
                                         "api.suivi-colis.fr"),
           http_response(200, "OK", b'{"state":"in transit"}'))
    return s


@scenario
def benign_dns():
    s = Scenario("benign-dns",
                 "Ordinary DNS through the router: 36 A lookups of everyday names, long CDN names among them "
                 "(akamaiedge.net, cloudfront.net, googlevideo.com, fbcdn.net...; some through CNAME chains), and two "
                 "TXT lookups (an SPF record, a site verification). No registered domain gets more than a few names: "
                 "no dns-tunnel, no alert at all.", benign=True)
    lookups = [
        ("www.google.com", None), ("fonts.gstatic.com", None), ("i.ytimg.com", "ytimg.l.google.com"),
        ("r4---sn-25ge7nsk.googlevideo.com", None), ("r2---sn-4g5edns7.googlevideo.com", None),
        ("rr1---sn-hgn7rn7r.googlevideo.com", None), ("www.lemonde.fr", "lemonde.map.fastly.net"),
        ("img.lemde.fr", None), ("d3c33hcgiwev3.cloudfront.net", None), ("d1xfwzu3hyvzpq.cloudfront.net", None),
        ("e6858.dsce9.akamaiedge.net", None), ("a1916.dscg2.akamai.net", None),
        ("www.apple.com", "www.apple.com.edgekey.net"), ("scontent-cdg4-2.xx.fbcdn.net", None),
        ("static.xx.fbcdn.net", None), ("graph.facebook.com", "star.c10r.facebook.com"),
        ("api.twitter.com", None), ("pbs.twimg.com", "cs196.wac.edgecastcdn.net"),
        ("firebaseinstallations.googleapis.com", None), ("android.clients.google.com", None),
        ("play.googleapis.com", None), ("mtalk.google.com", "mobile-gtalk.l.google.com"),
        ("www.wikipedia.org", "dyna.wikimedia.org"), ("upload.wikimedia.org", None),
        ("cdn.jsdelivr.net", "jsdelivr.map.fastly.net"), ("ajax.googleapis.com", None),
        ("www.leboncoin.fr", None), ("static.leboncoin.fr", None), ("www.free.fr", None),
        ("www.meteofrance.com", None), ("login.microsoftonline.com", "login.mso.msidentity.com"),
        ("outlook.office365.com", "outlook.ha.office365.com"),
        ("a.nel.cloudflare.com", None), ("app-measurement.com", None),
        ("weather-data.apple.com", "weather-data.apple.com.akadns.net"), ("www.gandi.net", None),
    ]
    t = T0
    for k, (name, cname) in enumerate(lookups):
        address = f"203.0.113.{10 + k}"  # documentation range: the answers are never connected to
        s.resolve(t, name, address, cname=cname)
        t += 0.5 + s.rng.random() * 20
    for name, text in [("free.fr", "v=spf1 include:_spf.free.fr ~all"),
                       ("gandi.net", "google-site-verification=Xk2fGq8rTbWvZ0pLm3N7yHcJd9sAeR4uVoI1KwQ5E6M")]:
        s.qid += 1
        s.cap.dns(t, s.qid, name, [(name, "TXT", text)], qtype="TXT")
        t += 3
    return s


@scenario
def benign_ttl_route_change():
    s = Scenario("benign-ttl-route-change",
                 "A route change during a download: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP on port 80 "
                 "where the server's first packets come with TTL 52 and, from the middle of the 20 KB answer on, "
                 "with TTL 49 (three hops more: within the limit of 5); then a second GET whose SYN-ACK comes from a "
                 "SYN proxy with TTL 240 and the rest of the server's packets with TTL 52. No evasion, nothing else.",
                 benign=True)
    s.resolve(T0, "www.free.fr", FREE)
    c = s.cap.tcp(T0 + 0.2, FREE, s.sport(), 80, server_ttl=52)
    c.send(http_request("GET", "/video.mp4", "www.free.fr"))
    answer = http_response(200, "OK", bytes(i % 251 for i in range(20_000)), "video/mp4")
    c.reply(answer[:10_000], ack_every=2)
    c.server_ttl = 49
    c.reply(answer[10_000:], ack_every=2)
    c.close()
    c = s.cap.tcp(T0 + 3, FREE, s.sport(), 80, server_ttl=52, synack_ttl=240)
    c.send(http_request("GET", "/", "www.free.fr"))
    c.reply(http_response(200, "OK", b"<html><body>Free</body></html>", "text/html"))
    c.close()
    return s


@scenario
def evasion_ttl_insertion():
    s = Scenario("evasion-ttl-insertion",
                 "An insertion by TTL: DNS www.free.fr -> 212.27.48.10 (Free, FR), HTTP on port 80 where the device "
                 "first sends GET /admin.html with TTL 3 (it expires on the way: the server never gets it), then "
                 "GET /index.html at the same sequence numbers with TTL 64, the rest of the request and the answer. "
                 "evasion medium (overlap with different data, to_server) and evasion low (a TTL outlier in a "
                 "direction that also sent data twice); nothing else.")
    s.insertion(ttl=3)
    s.alert("evasion", "medium", FREE, anomaly="overlap-different-data", direction="to_server")
    s.alert("evasion", "low", FREE, anomaly="ttl-outlier", direction="to_server", first_ttl=64, outlier_ttl=3)
    return s


@scenario
def benign_retransmissions():
    s = Scenario("benign-retransmissions",
                 "Retransmissions with identical bytes: an HTTP GET to www.free.fr (212.27.48.10) whose request "
                 "segment is sent twice, and a TLS 1.2 download from img.nimbus-cdn.net (151.101.1.69, US) where "
                 "one server segment is sent again whole and another again re-cut (overlapping, same bytes). No "
                 "evasion; foreign-endpoint info for the CDN.", benign=True)
    s.resolve(T0, "www.free.fr", FREE)
    c = s.cap.tcp(T0 + 0.2, FREE, s.sport(), 80)
    req = http_request("GET", "/", "www.free.fr", headers=[("Accept", "text/html")])
    c.send(req)
    c.wait(0.3)
    c.resend(True, len(req), req)
    c.seg(False, 0x10, b"")
    c.reply(http_response(200, "OK", b"<html><body>Free</body></html>", "text/html"))
    c.close()
    s.resolve(T0 + 2, "img.nimbus-cdn.net", FASTLY)
    rng = s.rng
    names = ["*.nimbus-cdn.net", "nimbus-cdn.net"]
    chain = [certificate(x509_name(names[0]), CA, names, 77), certificate(CA, ROOT_CA, serial=zlib.crc32(CA), ca=True)]
    c = s.cap.tcp(T0 + 2.2, FASTLY, s.sport(), 443)
    c.send(client_hello(rng, "img.nimbus-cdn.net"))
    c.reply(server_flight(rng, chain))
    c.send(client_finish(rng))
    c.reply(server_finish(rng))
    c.send(app_data(rng, 500))
    data = app_data(rng, 14_000)
    c.reply(data[:7000], ack_every=2)
    c.wait(0.2)
    c.resend(False, 1400, data[5600:7000])          # the last segment again, whole
    c.resend(False, 2100, data[4900:5600])          # part of two segments again, re-cut
    c.seg(True, 0x10, b"")
    c.reply(data[7000:], ack_every=2)
    c.close()
    return s


@scenario
def benign_ioc_lookalike():
    s = Scenario("benign-ioc-lookalike",
                 "A name that only resembles a listed one: with ioc-match.ioc.txt (evil.com) loaded, DNS "
                 "www.notevil.com -> 217.70.184.38 (Gandi, FR) and TLS 1.2 with SNI www.notevil.com. notevil.com is "
                 "not evil.com nor under it: no ioc-match, no alert at all.", benign=True,
                 args=["--ioc", f"{REL}/ioc-match.ioc.txt"])
    s.resolve(T0, "www.notevil.com", GANDI)
    s.tls12(T0 + 0.2, GANDI, "www.notevil.com", names=["www.notevil.com", "notevil.com"], up=700, down=5000)
    return s


@scenario
def benign_tls13_cdn():
    s = Scenario("benign-tls13-cdn",
                 "TLS 1.3 to a foreign CDN: DNS assets.nimbus-cdn.net -> 151.101.1.69 (Fastly, US), ClientHello "
                 "with SNI and supported_versions, ServerHello selecting TLS 1.3 (certificates encrypted, so "
                 "nothing to check), 60 KB down. foreign-endpoint info only.", benign=True)
    s.resolve(T0, "assets.nimbus-cdn.net", FASTLY)
    s.tls13(T0 + 0.2, FASTLY, "assets.nimbus-cdn.net", up=900, down=60_000)
    return s


# The same phone three ways (device identity): each variant beacons to one name every 300 s, 10 times, and uploads
# 1.2 MB to another in two connections of 600 KB (100 KB back, so under the ratio threshold): neither connection
# alone reaches the 1 MiB of a volume upload, both together do. Every variant raises beaconing medium and
# foreign-upload high (volume), for one device: its MAC, with every address it used.
PHONE_V6_PREFIX = "2a01:e0a:1f2:3b40::"                                                   # Free SAS, FR (home)
PHONE_SLAAC = "2a01:e0a:1f2:3b40:a4:c2ff:fe11:3302"                                       # EUI-64 of the MAC
PHONE_TEMP1, PHONE_TEMP2 = "2a01:e0a:1f2:3b40:5d2e:81f0:c4a7:1b93", "2a01:e0a:1f2:3b40:e81c:2b6d:93f4:70a2"
ALIBABA_CN6, AMAZON6 = "2400:3200::1", "2600:1f18:4000::10"                                # CN, US
PUBLIC_PHONE, PUBLIC_ROUTER = "88.160.12.34", "88.160.12.1"                                # Free SAS, FR (home)


def identity_scenario(name, description, device=DEVICE, router="192.168.1.1", dual_stack=False):
    s = Scenario(name, description)
    s.cap.device, s.cap.router = device, router
    s.device = device
    s.device_id = "02:a4:c2:11:33:02"
    s.chosen = "dhcp"
    s.cap.dhcp(T0 - 5, 1, True)
    s.cap.dhcp(T0 - 4.99, 2, False)
    s.cap.dhcp(T0 - 4.9, 3, True)
    s.cap.dhcp(T0 - 4.89, 5, False)
    s.addresses = [device]
    beacon, upload = (ALIBABA_CN6, AMAZON6) if dual_stack else (ALIBABA_US, AMAZON)
    qtype = "AAAA" if dual_stack else "A"
    if dual_stack:
        # SLAAC (RFC 4862): the link-local address's router solicitation, the router's advertisement of the
        # home prefix, then duplicate address detection for the EUI-64 address and the first temporary one.
        s.cap.router_solicitation(T0 - 4)
        s.cap.router_advertisement(T0 - 3.99, PHONE_V6_PREFIX)
        s.cap.duplicate_address_detection(T0 - 3.5, PHONE_SLAAC)
        s.cap.duplicate_address_detection(T0 - 3.4, PHONE_TEMP1)
        s.cap.device6 = PHONE_TEMP1
        from pcapgen import link_local, DEVICE_MAC
        s.addresses += [link_local(DEVICE_MAC), PHONE_SLAAC, PHONE_TEMP1]
    for k in range(10):
        t = T0 + 300 * k + s.rng.uniform(-15, 15)
        if dual_stack and k == 5:
            # The temporary address is replaced (RFC 8981) halfway: the beacon goes on from the new one.
            s.cap.duplicate_address_detection(t - 20, PHONE_TEMP2)
            s.cap.device6 = PHONE_TEMP2
            s.addresses.append(PHONE_TEMP2)
        s.resolve(t, "hb.x9-analytics.com", beacon, qtype=qtype)
        s.tls12(t + 0.1, beacon, "hb.x9-analytics.com", up=300, down=200)
    t = T0 + 3100
    # Dual-stack: the first connection over IPv4, the second over IPv6, to the same name.
    s.resolve(t, "upload.cloudvault-sync.com", AMAZON)
    s.tls12(t + 0.2, AMAZON if dual_stack else upload, "upload.cloudvault-sync.com", up=600_000, down=100_000)
    s.resolve(t + 60, "upload.cloudvault-sync.com", upload, qtype=qtype)
    s.tls12(t + 60.2, upload, "upload.cloudvault-sync.com", up=600_000, down=100_000)
    s.alert("beaconing", "medium", beacon)
    s.alert("foreign-upload", "high", upload, reason="volume")
    return s


@scenario
def device_private():
    return identity_scenario(
        "device-private",
        "Device identity, private address: the phone takes 192.168.1.23 by DHCP, beacons to hb.x9-analytics.com "
        "(47.88.1.1, Alibaba US) every 300 s 10 times, then uploads 600 KB twice to upload.cloudvault-sync.com "
        "(52.84.1.1, Amazon US), 100 KB back each. beaconing medium; foreign-upload high (volume, at the second "
        "connection); foreign-endpoint info for both. One device, 02:a4:c2:11:33:02, chosen by DHCP.")


@scenario
def device_public_home():
    return identity_scenario(
        "device-public-home",
        "Device identity, public home-country address: the same phone and traffic as device-private, on a bench "
        "that hands out public addresses: 88.160.12.34 (Free SAS, FR) by DHCP from 88.160.12.1, also its resolver. "
        "The same alerts: beaconing medium (47.88.1.1), foreign-upload high (52.84.1.1); one device, its MAC.",
        device=PUBLIC_PHONE, router=PUBLIC_ROUTER)


@scenario
def device_dual_stack():
    return identity_scenario(
        "device-dual-stack",
        "Device identity, dual stack: the phone takes 192.168.1.23 by DHCP and configures IPv6 by SLAAC from the "
        "router's advertisement of 2a01:e0a:1f2:3b40::/64 (Free SAS, FR): link-local, EUI-64 and a temporary "
        "address (duplicate address detection for each). It beacons over IPv6 to hb.x9-analytics.com "
        "(2400:3200::1, Alibaba CN; AAAA over the IPv4 resolver) every 300 s 10 times; halfway the temporary "
        "address is replaced, and the last five beacons come from the new one. Then 600 KB to "
        "upload.cloudvault-sync.com over IPv4 (52.84.1.1) and 600 KB over IPv6 (2600:1f18:4000::10): no flow "
        "and no address reaches 1 MiB, the name does. beaconing medium (2400:3200::1, series kept across the "
        "address change), foreign-upload high (volume, 2600:1f18:4000::10); one device with five addresses.",
        dual_stack=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for fn in SCENARIOS:
        s = fn()
        s.write(OUT)
        rows.append(s.name + ".pcap")
        rows.append(s.name + ".json")
        for i, arg in enumerate(s.args):
            if arg == "--identifiers":
                ids, text = identifiers_file(s.name)
                with open(os.path.join(OUT, ids), "w") as f:
                    f.write(text)
                rows.append(ids)
        expect = [(e['category'], e['severity'], e['dest_ip']) for e in s.expect]
        print(f"{s.name}: {len(s.cap.packets)} packets, expect {expect}")
    with open(os.path.join(OUT, "ioc-match.ioc.txt"), "w") as f:
        f.write("# Plain IOC list for the ioc-match and benign-ioc-lookalike scenarios (one indicator a line).\n"
                "evil.com\n")
    rows.append("ioc-match.ioc.txt")
    with open(os.path.join(OUT, "SOURCES.tsv"), "w") as f:
        f.write("file\tsource_repo\tsource_path\tcommit\tlicense\n")
        for r in sorted(rows):
            f.write(f"{r}\tsiphon (this repository)\tscripts/gen_scenarios.py\tgenerated (seeded, reproducible)\t"
                    "same as this repository; synthetic traffic: public addresses chosen for their registry country, "
                    "fictional exchanges, no packet was ever sent\n")


if __name__ == "__main__":
    main()
