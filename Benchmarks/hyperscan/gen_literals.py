#!/usr/bin/env python3
"""The literals Siphon's IdentifierScanner searches for, one hex line each, from an identifiers file.

    gen_literals.py IDS.yaml [--text]

A port of IdentifierScanner.forms(of:) and .encodings(_:encoding:) (Sources/SiphonDetect/Identifiers.swift): each
identifier's written forms (phone: national, e164 without '+', '00' prefix; MAC: ':', '-' and bare hex), and for
each plain/national/e164 form its lower/upper case, hex (both cases), the base64 characters it determines at each
of the 3 alignments (and their URL-safe variant), its percent-encoding, and the MD5, SHA-1 and SHA-256 of it in hex
(both cases); literals shorter than 4 bytes dropped, duplicates dropped.
scripts/bench_identifiers.sh uses it when SiphonBench has no --dump-patterns, and otherwise to cross-check the dump.
--text prints the literals themselves with their encoding instead of hex.
"""
import base64
import hashlib
import sys
import urllib.parse

KINDS = {"imei", "imsi", "iccid", "phone", "mac", "serial", "other"}


def load(path):
    """The identifiers file: a mapping kind -> value or list of values (PyYAML when there, else a small reader
    for the flow/block forms used in ids.yaml)."""
    text = open(path, encoding="utf-8").read()
    try:
        import yaml
        doc = yaml.safe_load(text) or {}
    except ImportError:
        doc, key, flow = {}, None, ""
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith(("'", '"')) else raw.rstrip()
            if not line.strip():
                continue
            if flow:
                flow += " " + line.strip()
            elif not line[0].isspace() and ":" in line:
                key, rest = line.split(":", 1)
                key, rest = key.strip(), rest.strip()
                doc[key] = []
                if rest.startswith("["):
                    flow = rest
                elif rest:
                    doc[key] = rest.strip("'\"")
            elif line.strip().startswith("- ") and key:
                doc[key].append(line.strip()[2:].strip().strip("'\""))
            if flow and flow.endswith("]"):
                doc[key] = [v.strip().strip("'\"") for v in flow[1:-1].split(",") if v.strip()]
                flow = ""
    out = []
    for kind, values in doc.items():
        if kind not in KINDS:
            sys.exit(f"{path}: unknown kind {kind!r}")
        for v in values if isinstance(values, list) else [values]:
            v = str(v).strip()
            if len(v) < 6:
                sys.exit(f"{path}: {v!r} is too short (6 characters at least)")
            out.append((kind, v))
    return out


def forms(kind, value):
    out = [(value, "plain")]
    if kind == "phone":
        digits = "".join(c for c in value if c.isdigit())
        if value.startswith("+33") and len(digits) == 11:
            out += [("0" + digits[2:], "national"), (digits, "e164-no-plus"), ("00" + digits, "e164-00")]
        elif value.startswith("+"):
            out += [(digits, "e164-no-plus"), ("00" + digits, "e164-00")]
        elif len(digits) == 10 and digits.startswith("0"):
            out += [("+33" + digits[1:], "e164"), ("33" + digits[1:], "e164-no-plus")]
    elif kind == "mac":
        hx = "".join(c for c in value.lower() if c in "0123456789abcdef")
        if len(hx) == 12:
            pairs = [hx[i:i + 2] for i in range(0, 12, 2)]
            out = [(":".join(pairs), "plain"), ("-".join(pairs), "plain"), (hx, "plain")]
    return out


def encodings(value, encoding):
    v = value.encode()
    out = [(v, encoding)]
    if value.lower() != value or value.upper() != value:
        out += [(value.lower().encode(), encoding), (value.upper().encode(), encoding)]
    if encoding not in ("plain", "national", "e164"):
        return out
    out += [(v.hex().encode(), "hex"), (v.hex().upper().encode(), "hex")]
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + v)
        first, last = (8 * k + 5) // 6, (8 * (k + len(v))) // 6
        if last - first >= 4:
            part = encoded[first:last]
            out.append((part, "base64"))
            url_safe = part.replace(b"+", b"-").replace(b"/", b"_")
            if url_safe != part:
                out.append((url_safe, "base64url"))
    escaped = urllib.parse.quote(value, safe="-._~")
    if escaped != value:
        out.append((escaped.encode(), "url"))
    for name in ("md5", "sha1", "sha256"):
        h = hashlib.new(name, v).hexdigest()
        out += [(h.encode(), name), (h.upper().encode(), name)]
    return out


def literals(ids):
    seen, out = set(), []
    for kind, value in ids:
        for form, enc in forms(kind, value):
            for b, e in encodings(form, enc):
                if len(b) >= 4 and b not in seen:
                    seen.add(b)
                    out.append((b, kind, value, e))
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    for b, kind, value, enc in literals(load(args[0])):
        print(f"{kind}\t{value}\t{enc}\t{b.decode('latin-1')}" if "--text" in sys.argv else b.hex())


if __name__ == "__main__":
    main()
