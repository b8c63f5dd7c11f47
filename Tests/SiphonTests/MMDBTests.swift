import Foundation
import Siphon
import Testing

/// The MaxMind DB reader against MaxMind's test databases (testdata/mmdb, from github.com/maxmind/MaxMind-DB; the
/// expected lookups are those of VERIFIED-LOOKUPS.txt there, checked with two independent readers).
@Suite struct MMDBTests {
    static func db(_ name: String) throws -> MMDBReader { try MMDBReader(path: Repo.path("testdata/mmdb/test-data/\(name).mmdb")) }

    @Test func countryDatabase() throws {
        let db = try Self.db("GeoIP2-Country-Test")
        #expect(db.databaseType == "GeoIP2-Country" && db.ipVersion == 6 && db.recordSize == 28 && db.nodeCount == 1704)
        let cases: [(String, String?, String?)] = [
            ("81.2.69.160", "GB", "US"), ("2.125.160.216", "GB", "FR"), ("89.160.20.112", "SE", "DE"),
            ("216.160.83.56", "US", "GB"), ("2001:218::1", "JP", "JP"), ("2a02:d300::1", "UA", "UA"),
            ("1.1.1.1", nil, nil), ("::81.2.69.160", "GB", "US"),
        ]
        for (address, country, registered) in cases {
            let g = try db.geo(IPAddress(address)!)
            #expect(g.country == country && g.registered == registered, "\(address): \(g)")
        }
    }

    @Test func asnDatabase() throws {
        let db = try Self.db("GeoLite2-ASN-Test")
        let cases: [(String, UInt32?, String?)] = [
            ("1.128.0.0", 1221, "Telstra Pty Ltd"), ("12.81.92.0", 7018, "AT&T Services"),
            ("149.101.100.0", 6167, "CELLCO-PART"), ("2600:6000::1", 237, "Merit Network Inc."),
            ("2c0f:ff80::1", 237, "Merit Network Inc."), ("8.8.8.8", nil, nil),
        ]
        for (address, asn, org) in cases {
            let g = try db.geo(IPAddress(address)!)
            #expect(g.asn == asn && g.org == org, "\(address): \(g)")
        }
    }

    @Test(arguments: ["MaxMind-DB-test-ipv4-24", "MaxMind-DB-test-ipv4-28", "MaxMind-DB-test-ipv4-32"])
    func recordSizes(_ name: String) throws {
        let db = try Self.db(name)
        #expect(try db.lookup(IPAddress("1.1.1.1")!)?["ip"]?.string == "1.1.1.1")
        #expect(try db.lookup(IPAddress("1.1.1.3")!)?["ip"]?.string == "1.1.1.2")
        #expect(try db.lookup(IPAddress("1.1.1.32")!)?["ip"]?.string == "1.1.1.32")
    }

    @Test func decoderTypes() throws {
        let v = try #require(try Self.db("MaxMind-DB-test-decoder").lookup(IPAddress("::1.1.1.0")!))
        #expect(v["array"] == .array([.unsigned(1), .unsigned(2), .unsigned(3)]))
        #expect(v["boolean"] == .bool(true) && v["bytes"] == .bytes([0, 0, 0, 0x2A]))
        #expect(v["double"] == .double(42.123456) && v["float"] == .float(1.1))
        #expect(v["int32"] == .signed(-268_435_456) && v["uint16"] == .unsigned(100) && v["uint32"] == .unsigned(268_435_456))
        #expect(v["uint64"] == .unsigned(1_152_921_504_606_846_976))
        #expect(v["uint128"] == .unsigned128(high: 0x0100_0000_0000_0000, low: 0))  // 2^120
        #expect(v["map"]?["mapX"]?["utf8_stringX"]?.string == "hello")
        #expect(v["map"]?["mapX"]?["arrayX"] == .array([.unsigned(7), .unsigned(8), .unsigned(9)]))
    }

    @Test func brokenFilesAreErrorsNotCrashes() throws {
        // VERIFIED-LOOKUPS.txt: broken pointers fail on lookup of 1.1.1.16 (Siphon's open-time check of every
        // record already refuses the file); an invalid node count fails on open.
        #expect(throws: MMDBError.self) { try Self.db("MaxMind-DB-test-broken-pointers-24").lookup(IPAddress("1.1.1.16")!) }
        #expect(throws: MMDBError.self) { try Self.db("GeoIP2-City-Test-Invalid-Node-Count") }
        // Every file of bad-data/ is refused at open or on lookup, and never crashes.
        let dir = Repo.path("testdata/mmdb/bad-data")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".mmdb") }
        #expect(files.count >= 10)
        for file in files {
            do {
                let db = try MMDBReader(path: dir + "/" + file)
                var failures = 0
                for a in ["1.1.1.1", "1.1.1.16", "::1.1.1.0", "2001:db8::1", "81.2.69.160", "0.0.0.0", "255.255.255.255"] {
                    do { _ = try db.lookup(IPAddress(a)!) } catch { failures += 1 }
                }
                #expect(failures > 0 || file.contains("epoch") || file.contains("metadata") || file.contains("separator"),
                        "\(file) opened and answered every lookup")
            } catch {
                continue  // refused at open: fine
            }
        }
    }

    /// Every other test database opens; the three broken ones are refused at open with the reason.
    @Test func testDatabasesOpenAndBrokenOnesAreRefused() throws {
        let dir = Repo.path("testdata/mmdb/test-data")
        let broken = ["GeoIP2-City-Test-Invalid-Node-Count.mmdb", "MaxMind-DB-test-broken-pointers-24.mmdb",
                      "MaxMind-DB-test-broken-search-tree-24.mmdb"]
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".mmdb") }
        #expect(files.count >= 20)
        for file in files {
            do {
                _ = try MMDBReader(path: dir + "/" + file)
                #expect(!broken.contains(file), "\(file) opened")
            } catch {
                #expect(broken.contains(file), "\(file): \(error)")
                #expect(error.description.contains(file))
            }
        }
    }

    @Test func givenDatabasesComeBeforeTheEmbeddedData() throws {
        let geo = try GeoDatabase(databases: [try Self.db("GeoIP2-Country-Test")])
        // The test database places 2.125.160.216 in GB (registered FR); the embedded tables may say otherwise.
        let g = geo.lookup(IPAddress("2.125.160.216")!)
        #expect(g.country == "GB" && g.registeredCountry == "FR" && g.scope == .foreign)
    }
}
