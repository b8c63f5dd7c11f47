import Foundation
import Siphon
import Testing

/// IOC feeds from testdata/intel (real feeds, SOURCES.md there), with indicator counts by type from an independent
/// reader (scripts/ioc_counts.py, Python's json/yaml/csv modules).
@Suite struct IntelTests {
    static let expected: [String: [String: Int]] =
        ((try? Repo.json("testdata/intel/expected-counts.json")) as? [String: [String: Int]]) ?? [:]

    @Test(arguments: expected.keys.sorted())
    func feedLoadsWithTheExpectedCounts(_ feed: String) throws {
        let set = IndicatorSet()
        let added = try set.load(path: Repo.path("testdata/intel/" + feed))
        let counts = Self.expected[feed]!
        #expect(added == counts.values.reduce(0, +), "\(feed)")
        for kind in Indicator.Kind.allCases {
            #expect(set.count(kind) == counts[kind.rawValue, default: 0], "\(feed) \(kind)")
        }
    }

    /// abuse.ch SSLBL CSVs: certificate SHA-1 and JA3 lists with their header (with or without `#`, columns in any
    /// order); lines that are not fingerprints are counted as skipped; matching ignores case and colons.
    @Test func sslblCertificateAndJA3Lists() throws {
        let set = IndicatorSet()
        let certificates = """
            # abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints)
            #
            # Listingdate,SHA1,Listingreason
            2024-02-23 16:20:22,a6d5e05f8dc855e16c194b3578258f942e1e5537,AsyncRAT C&C
            2024-02-19 10:05:19,7177248707fbfdc635f434c345e625c76f409d27,QuasarRAT C&C
            2024-02-19 10:05:19,not-a-fingerprint,QuasarRAT C&C
            """
        #expect(try set.load(bytes: Array(certificates.utf8), path: "/feeds/sslblacklist.csv") == 2)
        let reordered = "SHA1,ListingReason,ListingDate\n19e664f09401bf648b6ea57719e34ad795f3b6cb,AsyncRAT C&C,12/22/2023 6:58\n"
        #expect(try set.load(bytes: Array(reordered.utf8), path: "copy.csv") == 1)
        let ja3 = "# ja3_md5,Firstseen,Lastseen,Listingreason\nb386946a5a44d1ddcc843bc75336dfce,2017-07-14 18:08:15,2019-07-27 20:42:54,Dridex\n"
        #expect(try set.load(bytes: Array(ja3.utf8), path: "ja3_fingerprints.csv") == 1)
        #expect(set.count(.certificateSHA1) == 3 && set.count(.ja3) == 1 && set.skipped["sslblacklist.csv"] == 1)
        let hit = set.match(fingerprint: "A6:D5:E0:5F:8D:C8:55:E1:6C:19:4B:35:78:25:8F:94:2E:1E:55:37")
        #expect(hit?.tag == "AsyncRAT C&C" && hit?.source == "sslblacklist.csv" && hit?.kind == .certificateSHA1)
        #expect(set.match(fingerprint: "19e664f09401bf648b6ea57719e34ad795f3b6cb")?.tag == "AsyncRAT C&C")
        #expect(set.match(fingerprint: "b386946a5a44d1ddcc843bc75336dfce")?.tag == "Dridex")
        #expect(set.match(fingerprint: "b386946a5a44d1ddcc843bc75336dfcf") == nil && set.match(fingerprint: nil) == nil)
        // Not a network indicator of the other kinds: an address or a name never matches a fingerprint.
        #expect(set.match(domain: "a6d5e05f8dc855e16c194b3578258f942e1e5537") == nil)
    }

    @Test func domainMatchingIsLabelAware() {
        let set = IndicatorSet()
        set.add("evil.com", source: "test")
        #expect(set.match(domain: "evil.com")?.value == "evil.com")
        #expect(set.match(domain: "a.b.evil.com")?.value == "evil.com")
        #expect(set.match(domain: "EVIL.COM.") != nil)
        #expect(set.match(domain: "notevil.com") == nil && set.match(domain: "evil.com.au") == nil)
    }

    /// novispy.stix2 puts IP addresses in domain-name patterns: they are IPs.
    @Test func ipsInDomainPatternsAreIPs() throws {
        let set = IndicatorSet()
        try set.load(path: Repo.path("testdata/intel/novispy.stix2"))
        #expect(set.match(address: IPAddress("176.223.111.131")!)?.source == "novispy.stix2")
        #expect(set.match(domain: "176.223.111.131") == nil)
    }

    @Test func plainListsWithCIDRsAndComments() throws {
        let path = temporaryPath("siphon-iocs.txt")
        try "# test feed\n198.51.100.0/24\n2001:db8::/32  # documentation\nbad.example\nhttps://x.example/up\nnot an indicator\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let set = IndicatorSet()
        #expect(try set.load(path: path) == 4)
        #expect(set.match(address: IPAddress("198.51.100.77")!)?.kind == .cidr)
        #expect(set.match(address: IPAddress("2001:db8::42")!) != nil && set.match(address: IPAddress("192.0.2.1")!) == nil)
        #expect(set.match(url: "HTTPS://x.example/up") != nil && set.skipped["siphon-iocs.txt"] == 1)
    }

    @Test func unknownJSONIsAnError() throws {
        let path = temporaryPath("siphon-iocs.json")
        try "{\"hello\": 1}".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: IntelError.self) { try IndicatorSet().load(path: path) }
    }

    /// A stalkerware-indicators YAML whose mapping has a key that is not a scalar (a sequence, a mapping) is an
    /// error naming the line, not a crash (Yams' own `load` traps on it: found by the `ioc` fuzz target,
    /// Tests/fuzz/ioc/regression-yaml-key-not-scalar). The same file with scalar keys loads.
    @Test func yamlKeysThatAreNotScalarsAreAnError() throws {
        for key in ["[1, 2]", "{a: b}"] {
            let text = "- name: Spy\n  c2:\n    ips:\n    - 192.0.2.1\n    ? \(key)\n    : x\n"
            #expect(throws: IntelError.self) { try IndicatorSet().load(bytes: Array(text.utf8), path: "spy.yaml") }
        }
        let good = "- name: Spy\n  c2:\n    ips:\n    - 192.0.2.1\n    domains:\n    - spy.example\n"
        let set = IndicatorSet()
        #expect(try set.load(bytes: Array(good.utf8), path: "spy.yaml") == 2)
        #expect(set.match(address: IPAddress("192.0.2.1")!) != nil)
    }
}

@Suite struct IntelScanTests {
    /// Flow events name the indicator their responder matches, by address or by name (label-aware).
    @Test func flowEventsCarryIOCHits() throws {
        let set = IndicatorSet()
        set.add("wikimedia.org", source: "test-feed", tag: "demo")
        set.add("141.142.2.2", source: "test-feed")
        var options = ScanOptions()
        options.intel = set
        let (events, _) = scanEvents(Repo.path("captures/zeek/wikipedia.pcap"), options: options)
        let flows = events.filter { $0["event_type"] as? String == "flow" }
        // meta.wikimedia.org resolved to 208.80.152.2 before the second connection to it (AppLayerTests).
        let byName = flows.filter { ($0["ioc"] as? [String: Any])?["indicator"] as? String == "wikimedia.org" }
        #expect(!byName.isEmpty && byName.allSatisfy { ($0["names"] as? [String] ?? []).contains { $0.hasSuffix(".wikimedia.org") } })
        let byAddress = flows.filter { $0["dest_ip"] as? String == "141.142.2.2" }
        #expect(!byAddress.isEmpty && byAddress.allSatisfy { ($0["ioc"] as? [String: Any])?["type"] as? String == "ip" })
        #expect(flows.filter { $0["dest_ip"] as? String == "208.80.152.2" }.contains { $0["ioc"] == nil })  // before the DNS answer
    }

    @Test func lookupShowsIOCHits() throws {
        let r = try runSiphon(["lookup", "--json", "--ioc", Repo.path("testdata/intel/novispy.stix2"), "176.223.111.131", "192.0.2.1"])
        #expect(r.status == 0)
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("\"ioc\":{\"indicator\":\"176.223.111.131\"") && !lines[1].contains("ioc"))
        #expect(try runSiphon(["lookup", "--ioc", "/nonexistent.txt", "1.1.1.1"]).status == 2)
    }
}
