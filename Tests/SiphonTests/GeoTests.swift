import Foundation
import Siphon
import Testing

/// The embedded tables against the CSVs they were built from (../shared/geo, when present) and the spot checks of
/// ../shared/geo/README.md.
@Suite(.serialized) struct GeoTests {
    static let database: GeoDatabase? = try? GeoDatabase()

    @Test func spotChecksFromTheGeoReadme() throws {
        let geo = try #require(Self.database)
        func check(_ a: String, _ located: String?, _ registered: String?, _ asn: UInt32?, _ org: String?) {
            let g = geo.lookup(IPAddress(a)!)
            #expect(g.country == located && g.registeredCountry == registered, "\(a): \(g)")
            if let asn { #expect(g.asn == asn, "\(a)") }
            if let org { #expect(g.asOrganization == org, "\(a)") }
        }
        check("8.8.8.8", "US", "US", nil, nil)
        check("1.1.1.1", "AU", "AU", nil, nil)
        check("137.74.1.1", "PL", "FR", 16276, "OVH SAS")  // registered FR, located PL
        check("119.29.29.29", "SG", "CN", nil, nil)  // registered CN, located SG
        #expect(geo.asName(3215) == "Orange S.A." && geo.asName(12322) == "Free SAS" && geo.asName(16276) == "OVH SAS")
        #expect(geo.lookup(IPAddress("137.74.1.1")!).scope == .foreign)
        #expect(geo.with(home: ["PL"]).lookup(IPAddress("137.74.1.1")!).scope == .home)
    }

    @Test(arguments: ["10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1", "224.0.0.251",
                      "255.255.255.255", "192.0.2.7", "198.51.100.1", "203.0.113.9", "0.0.0.0", "::1", "fe80::1",
                      "fd00::1", "ff02::fb", "2001:db8::1", "::ffff:192.168.0.1"])
    func specialRangesAreLocal(_ text: String) throws {
        let geo = try #require(Self.database)
        #expect(geo.lookup(IPAddress(text)!).scope == .local, "\(text)")
    }

    @Test func regionCodesAreUnknownNeverForeign() throws {
        // ../shared/geo/README.md: IPFire marks some ranges EU or AP (the committed sample keeps at least 20 of them).
        let geo = try #require(Self.database)
        let regions = try Self.sample("ip-country").filter { $0.2 == "EU" || $0.2 == "AP" }
        #expect(regions.count >= 20)
        for r in regions { #expect(geo.lookup(r.0).scope == .unknown, "\(r.0)") }
    }

    /// The committed sample (testdata/geo: every 200th row of each source CSV, scripts/geo_sample.py): each row's
    /// first, last and middle address give the row's value.
    @Test(arguments: [("ip-country", 0), ("ip-country-rir", 1), ("ip-asn-ranges", 2)])
    func lookupsEqualTheCommittedSample(_ name: String, _ kind: Int) throws {
        let geo = try #require(Self.database)
        let rows = try Self.sample(name)
        #expect(rows.count > 1000)
        var mismatches: [String] = []
        for (a, b, expected) in rows {
            let middle = a.isIPv6 ? IPAddress(ipv6High: a.high / 2 + b.high / 2, low: 0) : IPAddress(ipv4: UInt32((a.low + b.low) / 2))
            for probe in [a, b] + (a < middle && middle < b ? [middle] : []) where Self.value(geo, probe, kind) != expected {
                mismatches.append("\(probe): \(Self.value(geo, probe, kind)) for \(expected)")
            }
        }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.prefix(5))")
    }

    static func value(_ geo: GeoDatabase, _ a: IPAddress, _ kind: Int) -> String {
        let g = geo.lookup(a)
        switch kind {
        case 0: return g.country ?? ""
        case 1: return g.registeredCountry ?? ""
        default: return g.asn.map(String.init) ?? ""
        }
    }

    /// Rows of a committed sample CSV (start, end, value).
    static func sample(_ name: String) throws -> [(IPAddress, IPAddress, String)] {
        try parse(String(contentsOfFile: Repo.path("testdata/geo/\(name).sample.csv"), encoding: .utf8))
    }

    static func parse(_ text: String) -> [(IPAddress, IPAddress, String)] {
        var out: [(IPAddress, IPAddress, String)] = []
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", maxSplits: 2)
            guard f.count == 3, let a = IPAddress(String(f[0])), let b = IPAddress(String(f[1])) else { continue }
            out.append((a, b, String(f[2])))
        }
        return out
    }

    static let sharedGeo = FileManager.default.fileExists(atPath: Repo.path("../shared/geo/ip-country.csv.gz"))

    /// Reads one of the gzipped CSVs (start, end, value) with gzip(1).
    static func csv(_ name: String) throws -> [(IPAddress, IPAddress, String)] {
        let path = Repo.path("../shared/geo/" + name)
        guard FileManager.default.fileExists(atPath: path) else { throw CSVMissing() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-dc", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return parse(String(decoding: data, as: UTF8.self))
    }

    struct CSVMissing: Error {}

    /// Every range boundary (start, end, and the address after the end) and 20,000 random addresses, looked up in the
    /// embedded tables and by a linear walk of the whole CSVs of ../shared/geo (the addresses sorted, the rows read
    /// once). Without ../shared beside the checkout this run is skipped (the committed sample is still compared).
    @Test(.enabled(if: sharedGeo, "../shared/geo not found: the whole-CSV comparison is skipped"),
          arguments: [("ip-country.csv.gz", 0), ("ip-country-rir.csv.gz", 1), ("ip-asn-ranges.csv.gz", 2)])
    func lookupsEqualALinearScanOfTheCSV(_ name: String, _ kind: Int) throws {
        let geo = try #require(Self.database)
        let rows = try Self.csv(name)
        #expect(rows.count > 100_000)
        func value(_ a: IPAddress) -> String {
            let g = geo.lookup(a)
            switch kind {
            case 0: return g.country ?? ""
            case 1: return g.registeredCountry ?? ""
            default: return g.asn.map(String.init) ?? ""
            }
        }
        var rng = SplitMix(seed: 2026)
        var probes: [IPAddress] = []
        for _ in 0..<10_000 { probes.append(IPAddress(ipv4: UInt32(truncatingIfNeeded: rng.next()))) }
        for _ in 0..<10_000 {
            // Random addresses inside 2000::/3, where the v6 data is.
            probes.append(IPAddress(ipv6High: 0x2000_0000_0000_0000 | rng.next() >> 3, low: rng.next()))
        }
        probes.sort()
        // Linear walk: the rows are sorted and disjoint; an address between rows has no value.
        var i = 0
        var mismatches = 0
        for a in probes {
            while i < rows.count && (rows[i].1 < a) { i += 1 }
            let expected = i < rows.count && !(a < rows[i].0) ? rows[i].2 : ""
            if value(a) != expected { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(name): \(mismatches) random addresses differ")
        var boundaryMismatches = 0
        for (k, r) in rows.enumerated() {
            if value(r.0) != r.2 || value(r.1) != r.2 { boundaryMismatches += 1 }
            // The address after the range: the next row's value if adjacent, else none.
            if let after = Self.next(r.1) {
                let expected = k + 1 < rows.count && rows[k + 1].0 == after ? rows[k + 1].2 : ""
                if value(after) != expected { boundaryMismatches += 1 }
            }
        }
        #expect(boundaryMismatches == 0, "\(name): \(boundaryMismatches) boundaries differ")
    }

    static func next(_ a: IPAddress) -> IPAddress? {
        if !a.isIPv6 { return a.low == 0xFFFF_FFFF ? nil : IPAddress(ipv4: UInt32(a.low + 1)) }
        if a.low == .max { return a.high == .max ? nil : IPAddress(ipv6High: a.high + 1, low: 0) }
        return IPAddress(ipv6High: a.high, low: a.low + 1)
    }

    /// Flow events carry dest_geo for non-local destinations.
    @Test func flowEventsCarryDestGeo() throws {
        var options = ScanOptions()
        options.geo = Self.database
        let (events, _) = scanEvents(Repo.path("captures/zeek/wikipedia.pcap"), options: options)
        let flows = events.filter { $0["event_type"] as? String == "flow" }
        // 208.80.152.2 (Wikimedia, US) is foreign from France; 141.142.2.2 (NCSA, US) too; multicast has no dest_geo.
        let wiki = try #require(flows.first { $0["dest_ip"] as? String == "208.80.152.2" })
        let g = try #require(wiki["dest_geo"] as? [String: Any])
        #expect(g["country"] as? String == Self.database?.lookup(IPAddress("208.80.152.2")!).country && g["scope"] as? String == "foreign")
        #expect(flows.filter { $0["dest_ip"] as? String == "224.0.0.251" }.allSatisfy { $0["dest_geo"] == nil })
    }
}
