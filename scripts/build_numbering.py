#!/usr/bin/env python3
"""Builds Sources/SiphonGeo/data/numbering.tsv, the phone-number plan Siphon classifies numbers with (issue 16),
from libphonenumber's metadata (Apache-2.0):

Usage: scripts/build_numbering.py PhoneNumberMetadata.xml ShortNumberMetadata.xml [OUT]

(github.com/google/libphonenumber, resources/; the revision used is recorded in data/SOURCES.md.)

One line per territory, tab-separated, patterns with their whitespace removed (they are ICU regular expressions
matched against the whole national significant number):

  region  calling_code  main  leading_digits  national_prefix  general  fixed_line  mobile  premium_rate
  toll_free  shared_cost  voip  short_general  short_premium

- region: ISO 3166-1 alpha-2, or 001 for non-geographic entities (+800, +808, +870, +881, +882, +883, +888, +979);
- main: 1 for the main country of a calling code shared by several (US for +1, RU for +7, GB for +44, ...);
- leading_digits: a territory's leading-digits pattern when its metadata gives one (Caribbean NANP members...);
- short_general and short_premium: the territory's short numbers and premium-rate short numbers
  (ShortNumberMetadata.xml), for numbers dialled without a calling code.
An empty field is "-". Lines starting with # are comments (the source revision).
"""
import os, re, sys
import xml.etree.ElementTree as ET

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def pattern(territory, kind):
    node = territory.find(kind)
    if node is None:
        return "-"
    p = node.find("nationalNumberPattern")
    if p is None or p.text is None:
        return "-"
    return re.sub(r"\s+", "", p.text)


def main():
    long_xml, short_xml = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "Sources/SiphonGeo/data/numbering.tsv")
    short = {}
    for t in ET.parse(short_xml).getroot().iter("territory"):
        short[t.get("id")] = (pattern(t, "generalDesc"), pattern(t, "premiumRate"))
    lines = ["# built by scripts/build_numbering.py from libphonenumber resources/PhoneNumberMetadata.xml and "
             "ShortNumberMetadata.xml (Apache-2.0); fields: region calling_code main leading_digits national_prefix "
             "general fixed_line mobile premium_rate toll_free shared_cost voip short_general short_premium"]
    rows = []
    for t in ET.parse(long_xml).getroot().iter("territory"):
        region, code = t.get("id"), t.get("countryCode")
        leading = t.get("leadingDigits") or "-"
        fields = [region, code, "1" if t.get("mainCountryForCode") == "true" else "0", re.sub(r"\s+", "", leading),
                  t.get("nationalPrefix") or "-"]
        fields += [pattern(t, k) for k in ("generalDesc", "fixedLine", "mobile", "premiumRate", "tollFree", "sharedCost", "voip")]
        fields += list(short.get(region, ("-", "-")))
        rows.append(fields)
    rows.sort(key=lambda r: (int(r[1]), r[2] != "1", r[0]))
    lines += ["\t".join(r) for r in rows]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(rows)} territories, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
