#!/usr/bin/env bash
# Runs Siphon's test suite: installs libpcap-dev, zlib1g-dev, libsqlite3-dev, tshark, tcpflow, tcpreplay, openssl, zzuf and chromium when missing (Debian/Ubuntu, as root or with sudo),
# checks the committed tshark fixtures still match the installed tshark, builds, and runs `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
# zlib (gzip-compressed captures) and SQLite (the batch case database, through GRDB) headers.
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
# The fleet report's HTML page is checked in headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v tcpflow >/dev/null 2>&1 || need+=(tcpflow)
# The live-capture tests (root only: they make their own network namespaces) replay a rewritten capture.
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# A signed case's signature is also checked with OpenSSL; editcap, mergecap and capinfos come with tshark.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# zzuf: the bounded mutation campaign after the tests (scripts/mutate.sh).
command -v zzuf >/dev/null 2>&1 || need+=(zzuf)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The differential fixtures come from tshark: regenerate them and compare, so a fixture cannot drift from its oracle.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 scripts/tshark_flows.py -o "$tmp" captures/diff/*.pcap captures/diff/*.pcapng >/dev/null
python3 - "$tmp" <<'PY'
import json, sys, glob, os
bad = 0
for path in sorted(glob.glob("captures/diff/expected/*.tshark.json")):
    fresh = os.path.join(sys.argv[1], os.path.basename(path))
    a, b = json.load(open(path)), json.load(open(fresh))
    a.pop("tshark_version", None); b.pop("tshark_version", None)
    if a != b:
        bad += 1
        print("tshark fixture differs from a fresh tshark run:", path)
n = len(glob.glob("captures/diff/expected/*.tshark.json"))
print(f"tshark fixtures: {n - bad} of {n} reproduced by the installed tshark")
sys.exit(1 if bad else 0)
PY
# The application-layer fixtures come from tshark too.
python3 scripts/tshark_app.py --check
python3 scripts/tshark_dhcp.py --check captures/diff/ng-*test*.pcapng
python3 scripts/x509_fixtures.py --check
python3 -c "import yaml" 2>/dev/null || pip install -q pyyaml
python3 scripts/ioc_counts.py --check
# The extraction fixtures come from tcpflow: check the installed tcpflow still writes exactly those streams.
python3 scripts/tcpflow_streams.py --check
# The quick-start sample: the generator still writes exactly the committed capture and manifest, and tshark reads
# the capture without warnings or errors.
python3 scripts/gen_sample.py "$tmp/sample.pcap" "$tmp/sample.json" >/dev/null
cmp captures/sample/backdoor-phone.pcap "$tmp/sample.pcap" && cmp captures/sample/backdoor-phone.json "$tmp/sample.json"
if tshark -r captures/sample/backdoor-phone.pcap -q -z expert 2>/dev/null | grep -qE '^(Errors|Warns) '; then
    echo "tshark reports warnings or errors on captures/sample/backdoor-phone.pcap" >&2; exit 1
fi
# The detection scenarios: the generator still writes exactly the committed captures and manifests, and tshark
# reads each without warnings or errors (the evasion scenarios may draw TCP sequence warnings: they are the trick).
python3 scripts/gen_scenarios.py "$tmp/scenarios" >/dev/null
for f in captures/scenarios/*.pcap captures/scenarios/*.json; do cmp "$f" "$tmp/scenarios/$(basename "$f")"; done
for f in captures/scenarios/*.pcap; do
    expert=$(tshark -r "$f" -q -z expert 2>/dev/null)
    case "$(basename "$f")" in
        evasion*) bad=$(echo "$expert" | sed -n '/^Warns/,/^$/p' | grep -E '^ +[0-9]+ ' | grep -vE ' Sequence +TCP ' || true)
                  echo "$expert" | grep -qE '^Errors ' && bad="errors" ;;
        *) bad=$(echo "$expert" | grep -E '^(Errors|Warns) ' || true) ;;
    esac
    if [ -n "$bad" ]; then echo "tshark reports warnings or errors on $f: $bad" >&2; exit 1; fi
done
# Checksum validation against tshark's on the committed captures it covers.
python3 scripts/tshark_checksums.py --check $(grep -v "^#" captures/diff/checksum-captures.txt)
swift build --build-tests
swift test --parallel
# A bounded mutation campaign: zzuf-mutated copies of the committed captures, each scanned by the debug build with a
# timeout (the same mutants every run; scripts/mutate.sh at length by hand, docs/robustness.md).
SIPHON=.build/debug/siphon MUTATE_DIR="$tmp/mutate" scripts/mutate.sh "${SIPHON_MUTATE_SECONDS:-120}" 0.01
