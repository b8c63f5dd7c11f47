#!/usr/bin/env python3
"""Writes a capture of many TCP and UDP flows with known streams, for the reassembly tests (GeneratedCaptureTests).

Usage: scripts/gen_streams.py -o OUT.pcap --manifest OUT.jsonl [-c FLOWS] [--seed N] [--ooo P] [--retx P]
                              [--gap P] [--v6 P]
Flows between clients of 10.0.0.0/16 (fd12:3456:789a::/64 with --v6) and servers of 10.1.0.0/16 and public
ranges (2001:db8:1::/64): TLS (a ClientHello with SNI, or none in 1 of 20; one in five sent with a small MSS so
that it spans two segments), HTTP/1.1 (GET or POST with Host), opaque TCP, and DNS over UDP. TCP connections have
a handshake, data both ways in MSS-sized segments (ISNs near 2^32 in one of four: sequence numbers wrap), and FIN
or RST. Per data segment, with the given probabilities: swapped with the next one (out of order), sent again
later (a third of those re-cut to overlap two originals), or left out of the capture (a gap). Flows overlap in
time.

Manifest: one JSON object per flow: kind (tls, http, tcp, dns), l4, client, cport, server, sport, name (SNI, Host,
DNS question; null for a TLS hello without SNI), big_ch (a ClientHello over two segments), complete (handshake and
close captured), and per direction (c2s, s2c) the stream's length and SHA-256 (what reassembly must give; with
gaps, what was sent), and the counts of perturbations. Deterministic: one random.Random(seed) drives everything.
Packet builders: scripts/pcapgen.py.
"""
import argparse, hashlib, json, random
from pcapgen import Capture, app_data, client_hello, dns_query, dns_response, http_request, http_response, server_flight, \
    certificate, x509_name

T0 = 1741942800.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("-c", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ooo", type=float, default=0.0)
    ap.add_argument("--retx", type=float, default=0.0)
    ap.add_argument("--gap", type=float, default=0.0)
    ap.add_argument("--v6", type=float, default=0.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cap = Capture(rng)
    flows = []
    chain = [certificate(x509_name("stream.example"), x509_name("Example CA"), ["stream.example"], 7)]
    for n in range(a.c):
        t = T0 + n * 0.05 + rng.random() * 0.5
        v6 = rng.random() < a.v6
        if v6:
            client = "fd12:3456:789a::%x" % rng.randrange(1, 0xFFFF)
            server = "2001:db8:1::%x" % rng.randrange(1, 0xFFFF)
        else:
            client = "10.0.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
            server = "10.1.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
        cport = 20000 + n
        kind = rng.choice(["tls", "tls", "http", "http", "tcp", "dns"])
        if kind == "dns":
            name = "host%d.example.net" % n
            q = dns_query(n & 0xFFFF, name)
            cap.udp(t, client, cport, server, 53, q, True)
            answer = "192.0.2.%d" % (n % 250 + 1)
            cap.udp(t + 0.01, server, 53, client, cport, dns_response(n & 0xFFFF, name, "A", [(name, "A", answer)]), False)
            flows.append({"kind": "dns", "l4": "udp", "client": client, "cport": cport, "server": server, "sport": 53,
                          "name": name, "complete": True})
            continue
        sport, name, big = 443, None, False
        if kind == "tls":
            name = None if rng.random() < 0.05 else "s%d.stream.example" % n
            big = rng.random() < 0.2
            c2s = [(client_hello(rng, name), 600 if big else 1400)]
            s2c = [(server_flight(rng, chain), 1400), (app_data(rng, rng.randrange(200, 20000)), 1400)]
            c2s.append((app_data(rng, rng.randrange(100, 8000)), 1400))
        elif kind == "http":
            sport = 80
            name = "www%d.example.org" % n
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000))) if rng.random() < 0.5 else b""
            c2s = [(http_request("POST" if body else "GET", "/p/%d" % n, name, body), 1400)]
            s2c = [(http_response(200, "OK", bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9000)))), 1400)]
        else:
            sport = rng.choice([5222, 8883, 9000])
            c2s = [(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6000))), 1400)]
            s2c = [(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6000))), 1400)]
        m = {"kind": kind, "l4": "tcp", "client": client, "cport": cport, "server": server, "sport": sport,
             "name": name, "big_ch": big and name is not None, "complete": True, "ooo": 0, "retx": 0, "gaps": 0}
        connection(cap, rng, t, client, cport, server, sport, c2s, s2c, a, m)
        flows.append(m)
    cap.write(a.o)
    with open(a.manifest, "w") as f:
        for m in flows:
            f.write(json.dumps(m) + "\n")


def connection(cap, rng, t, client, cport, server, sport, c2s, s2c, a, m):
    """One TCP connection: handshake, the client's messages then the server's, each cut into segments and
    perturbed, then FIN/FIN (or RST from the client in one of ten)."""
    near_wrap = rng.random() < 0.25
    isn = [(0xFFFFFFFF - rng.randrange(20000)) if near_wrap else rng.randrange(1 << 31), rng.randrange(1 << 31)]
    ends = [(client, cport), (server, sport)]
    seq = [isn[0] + 1, isn[1] + 1]
    sent = [b"", b""]
    clock = [t]

    def send(side, flags, payload, sequence=None, at=None):
        (src, sp), (dst, dp) = ends[side], ends[1 - side]
        when = at if at is not None else clock[0]
        s = seq[side] if sequence is None else sequence
        cap.tcp_segment(when, src, sp, dst, dp, s & 0xFFFFFFFF, seq[1 - side] & 0xFFFFFFFF, flags, payload, side == 0)

    def tick():
        clock[0] += 0.001 + rng.random() * 0.004

    send(0, 0x02, b"", sequence=isn[0])
    tick()
    send(1, 0x12, b"", sequence=isn[1])
    tick()
    send(0, 0x10, b"")
    for side, messages in ((0, c2s), (1, s2c)):
        for data, mss in messages:
            segments = []
            for i in range(0, len(data), mss):
                segments.append((seq[side] + i, data[i:i + mss]))
            order = list(range(len(segments)))
            k = 0
            while k + 1 < len(order):
                if rng.random() < a.ooo:
                    order[k], order[k + 1] = order[k + 1], order[k]
                    m["ooo"] += 1
                    k += 2
                else:
                    k += 1
            later = []
            for k in order:
                s, chunk = segments[k]
                tick()
                if rng.random() < a.gap:
                    m["gaps"] += 1
                    continue
                send(side, 0x18, chunk, sequence=s)
                if rng.random() < a.retx:
                    m["retx"] += 1
                    if k + 1 < len(segments) and rng.random() < 1 / 3:
                        # Re-cut: the second half of this segment and the first half of the next.
                        nxt = segments[k + 1][1]
                        later.append((s + len(chunk) // 2, chunk[len(chunk) // 2:] + nxt[:len(nxt) // 2]))
                    else:
                        later.append((s, chunk))
            for s, chunk in later:
                tick()
                send(side, 0x18, chunk, sequence=s)
            seq[side] += len(data)
            sent[side] += data
            tick()
            send(1 - side, 0x10, b"")
    for direction, side in (("c2s", 0), ("s2c", 1)):
        m[direction + "_len"] = len(sent[side])
        m[direction + "_sha256"] = hashlib.sha256(sent[side]).hexdigest()
    tick()
    # A reset leaves a lost tail unknown to the receiver: only connections without gaps end that way.
    if rng.random() < 0.1 and m["gaps"] == 0:
        send(0, 0x14, b"")
    else:
        send(0, 0x11, b"")
        seq[0] += 1
        tick()
        send(1, 0x11, b"")
        seq[1] += 1
        tick()
        send(0, 0x10, b"")


if __name__ == "__main__":
    main()
