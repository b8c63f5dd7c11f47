#!/usr/bin/env python3
"""DHCP fixtures from tshark for Siphon's DHCP parser.

Usage: scripts/tshark_dhcp.py [--check] CAPTURE...
Writes captures/app/expected-dhcp.json: per capture, the DHCP messages tshark 4.0 decodes, in frame order, with
   tshark -r F -Y dhcp -T fields -E separator=/t -E occurrence=f -e dhcp.type -e dhcp.id -e dhcp.hw.mac_addr -e dhcp.option.dhcp
          -e dhcp.option.hostname -e dhcp.option.vendor_class_id -e dhcp.ip.your -e dhcp.option.dhcp_server_id
          -e dhcp.option.ip_address_lease_time
(dhcp.type 1 = request, 2 = reply; dhcp.option.dhcp is the message type number).
--check regenerates into memory and exits 1 when the committed file differs.
"""
import json, subprocess, sys

FIELDS = ["dhcp.type", "dhcp.id", "dhcp.hw.mac_addr", "dhcp.option.dhcp", "dhcp.option.hostname",
          "dhcp.option.vendor_class_id", "dhcp.ip.your", "dhcp.option.dhcp_server_id",
          "dhcp.option.ip_address_lease_time"]
OUT = "captures/app/expected-dhcp.json"


def messages(path):
    cmd = ["tshark", "-r", path, "-n", "-Y", "dhcp", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    result = []
    for line in out.splitlines():
        cols = (line.split("\t") + [""] * len(FIELDS))[:len(FIELDS)]
        r = dict(zip(FIELDS, cols))
        result.append({
            "type": "request" if r["dhcp.type"] == "1" else "reply",
            "id": int(r["dhcp.id"], 16),
            "client_mac": r["dhcp.hw.mac_addr"] or None,
            "message_type": int(r["dhcp.option.dhcp"]) if r["dhcp.option.dhcp"] else None,
            "hostname": r["dhcp.option.hostname"] or None,
            "vendor_class": r["dhcp.option.vendor_class_id"] or None,
            "your_ip": r["dhcp.ip.your"] or None,
            "server_id": r["dhcp.option.dhcp_server_id"] or None,
            "lease_time": int(r["dhcp.option.ip_address_lease_time"]) if r["dhcp.option.ip_address_lease_time"] else None,
        })
    return result


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    data = {"fields": FIELDS, "captures": {p: messages(p) for p in args}}
    if "--check" in sys.argv:
        ok = json.load(open(OUT)) == data
        print(f"{OUT} {'reproduced' if ok else 'DIFFERS from a fresh tshark run'}")
        sys.exit(0 if ok else 1)
    json.dump(data, open(OUT, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
