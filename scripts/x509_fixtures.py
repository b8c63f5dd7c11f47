#!/usr/bin/env python3
"""Certificate fixtures for Siphon's X.509 reader: leaf certificates taken from TLS Certificate messages by
tshark, described by OpenSSL (an independent parser).

Usage: scripts/x509_fixtures.py [--check]
For each capture below: tshark -r F -Y 'tls.handshake.type==11' -T fields -E occurrence=f
-e tls.handshake.certificate gives the first (leaf) certificate of each Certificate message; then
openssl x509 -inform DER -noout -subject -issuer -serial -startdate -enddate -fingerprint -sha1 -ext subjectAltName
-nameopt sep_comma_plus_space,sname,utf8,-esc_msb, and -fingerprint -sha256.
Writes captures/app/expected-x509.json; --check exits 1 when a fresh run differs.
"""
import datetime, json, subprocess, sys

CAPTURES = ["captures/diff/eth-sv-tls-3whs-data.pcap", "captures/app/sv-tls12-sel-empty-sack.pcap",
            "captures/app/zeek-pppoe-qinq-tls.pcap", "captures/app/ark-pppoe-sslv2-hello.pcap",
            "captures/app/sv-http-connect-tls.pcap"]
OUT = "captures/app/expected-x509.json"


def describe(der):
    def run(*extra):
        return subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", *extra], input=der,
                              capture_output=True).stdout.decode()
    out = run("-subject", "-issuer", "-serial", "-startdate", "-enddate", "-fingerprint", "-sha1", "-ext",
              "subjectAltName", "-nameopt", "sep_comma_plus_space,sname,utf8,-esc_msb")
    f = {}
    sans = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith(" "):
            k, v = line.split("=", 1)
            f[k] = v
        if line.strip().startswith("DNS:") or "DNS:" in line and line.startswith("    "):
            sans += [p.strip()[4:] for p in line.split(",") if p.strip().startswith("DNS:")]
    sha256 = run("-fingerprint", "-sha256").split("=", 1)[1].strip().replace(":", "").lower()

    def when(s):
        return datetime.datetime.strptime(s.replace("GMT", "").strip(), "%b %d %H:%M:%S %Y").strftime("%Y-%m-%dT%H:%M:%S")
    return {"subject": f["subject"], "issuer": f["issuer"], "serial": f["serial"],
            "not_before": when(f["notBefore"]), "not_after": when(f["notAfter"]),
            "sha1": f["sha1 Fingerprint"].lower(), "sha256": sha256, "dns_names": sans,
            "self_issued": f["subject"] == f["issuer"]}


def main():
    data = {}
    for c in CAPTURES:
        out = subprocess.run(["tshark", "-r", c, "-Y", "tls.handshake.type==11", "-T", "fields", "-E", "occurrence=f",
                              "-e", "tls.handshake.certificate"], capture_output=True, text=True).stdout
        data[c] = [describe(bytes.fromhex(h.strip())) for h in out.splitlines() if h.strip()]
    if "--check" in sys.argv:
        ok = json.load(open(OUT)) == data
        print(f"{OUT} {'reproduced' if ok else 'DIFFERS from a fresh tshark/openssl run'}")
        sys.exit(0 if ok else 1)
    json.dump(data, open(OUT, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
