#!/usr/bin/env python3
"""Independent counts of the network indicators in the IOC feeds of testdata/intel, for Siphon's feed tests.

Usage: scripts/ioc_counts.py [--check]   writes testdata/intel/expected-counts.json
Rules (as a reader of each format would apply them): values are lower-cased and de-duplicated per feed; a value is
an ip if it parses as an IP address, a cidr if it is address/prefix, a url if it starts with http:// or https://,
else a domain (a leading "*." and a trailing dot removed) when it has a dot.
- STIX 2.1 bundles: the values of domain-name, ipv4-addr, ipv6-addr and url observables in indicator patterns.
- MISP event: attributes of type domain, hostname, ip-dst, ip-src, url (and the first half of domain|ip, ip-dst|port).
- TinyCheck: iocs of type domain, ip4, ip6, cidr, freedns, url, ip.
- stalkerware YAML: c2.ips, c2.domains and websites of each family.
- network.csv: the indicator column.
"""
import csv, ipaddress, json, re, sys, yaml

FEEDS = ["ioc.yaml", "watchware.yaml", "network.csv", "indicators-for-tinycheck.json", "misp_event.json",
         "pegasus.stix2", "cytrox.stix2", "wintego_helios.stix2", "novispy.stix2"]


def kind(v):
    v = v.strip().lower()
    try:
        ipaddress.ip_address(v)
        return "ip", v
    except ValueError:
        pass
    if "/" in v:
        try:
            ipaddress.ip_network(v, strict=False)
            return "cidr", v
        except ValueError:
            pass
    if v.startswith(("http://", "https://")):
        return "url", v
    v = v[:-1] if v.endswith(".") else v
    v = v[2:] if v.startswith("*.") else v
    if "." in v and re.fullmatch(r"[\w.\-*]+", v):
        return "domain", v
    return None, v


def values(path):
    text = open(path, encoding="utf-8").read()
    if path.endswith(".stix2"):
        for o in json.loads(text)["objects"]:
            if o["type"] == "indicator":
                for k, v in re.findall(r"\[(domain-name|ipv4-addr|ipv6-addr|url):value\s*=\s*'([^']*)'\]", o["pattern"]):
                    yield v
    elif path.endswith("misp_event.json"):
        d = json.loads(text)
        e = d.get("Event", d)
        attrs = list(e.get("Attribute", []))
        for o in e.get("Object", []):
            attrs += o.get("Attribute", [])
        for a in attrs:
            if a["type"] in ("domain", "hostname", "ip-dst", "ip-src", "url"):
                yield a["value"]
            elif a["type"] in ("domain|ip", "ip-dst|port"):
                yield a["value"].split("|")[0]
    elif path.endswith(".json"):
        for i in json.loads(text)["iocs"]:
            if i["type"] in ("domain", "ip4", "ip6", "cidr", "freedns", "url", "ip"):
                yield i["value"]
    elif path.endswith(".yaml"):
        for app in yaml.safe_load(text):
            for v in (app.get("c2") or {}).get("ips") or []:
                yield str(v)
            for v in (app.get("c2") or {}).get("domains") or []:
                yield str(v)
            for v in app.get("websites") or []:
                yield str(v)
    elif path.endswith(".csv"):
        for row in csv.DictReader(open(path, encoding="utf-8")):
            yield row["indicator"]


def counts(path):
    seen = {}
    for v in values(path):
        k, norm = kind(v)
        if k:
            seen.setdefault(k, set()).add(norm)
    return {k: len(v) for k, v in sorted(seen.items())}


def main():
    data = {f: counts("testdata/intel/" + f) for f in FEEDS}
    out = "testdata/intel/expected-counts.json"
    if "--check" in sys.argv:
        ok = json.load(open(out)) == data
        print(f"{out} {'reproduced' if ok else 'DIFFERS'}")
        sys.exit(0 if ok else 1)
    json.dump(data, open(out, "w"), indent=1, sort_keys=True)
    print(json.dumps(data))


if __name__ == "__main__":
    main()
