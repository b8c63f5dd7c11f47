import Foundation
import Siphon
import Testing

/// The identifier scanner on crafted payloads. Expected values come from outside the scanner: Luhn validity as
/// computed by a Python reference (490154203237518 is Wikipedia's IMEI example; changing its last digit breaks
/// the check), digests and base64 from coreutils (`printf %s V | md5sum`, `sha1sum`, `sha256sum`, `base64`).
@Suite struct IdentifierTests {
    private func scan(_ text: String, known: [KnownIdentifier] = [], kinds: Set<IdentifierKind>? = nil) -> [IdentifierMatch] {
        var c = IdentifierConfiguration()
        c.known = known
        if let kinds { c.kinds = kinds }
        let scanner = IdentifierScanner(configuration: c)
        var out: [IdentifierMatch] = []
        scanner.scan(Array(text.utf8), into: &out)
        return out
    }

    private func kinds(_ m: [IdentifierMatch]) -> [String] { m.map { "\($0.kind.rawValue)=\($0.value)" } }

    @Test func genericPatternsWithValidityChecks() {
        // IMEI: 15 digits, Luhn-valid, reporting body 49. One digit off fails Luhn; so does a 15-digit order id.
        #expect(kinds(scan("imei=490154203237518&x=1")) == ["imei=490154203237518"])
        #expect(scan("id=490154203237519").isEmpty)
        #expect(scan("order 123456789012345 ok").isEmpty)
        // Inside a longer alphanumeric token it is not an identifier (hashes, base64).
        #expect(scan("a490154203237518").isEmpty && scan("4901542032375180").isEmpty)
        // IMSI: 15 digits with a real MCC (208, France), only where the payload names it.
        #expect(kinds(scan("{\"imsi\":\"208150123456789\"}")) == ["imsi=208150123456789"])
        #expect(kinds(scan("{\"imsi\":\"999150123456789\"}")).isEmpty, "999 is no MCC")
        // ICCID: 89..., 19-20 digits, Luhn-valid.
        #expect(kinds(scan("iccid:89014103211118510720;")) == ["iccid=89014103211118510720"])
        #expect(scan("iccid:89014103211118510721;").isEmpty)
        // Phone numbers: French mobiles in E.164 always; national form or other countries with a keyword.
        #expect(kinds(scan("x=+33612345678")) == ["phone=+33612345678"])
        #expect(kinds(scan("msisdn=+14155550123")) == ["phone=+14155550123"])
        #expect(scan("v=+14155550123").isEmpty)
        #expect(kinds(scan("tel: 0612345678")) == ["phone=0612345678"])
        #expect(scan("id 0612345678").isEmpty)
        // MAC addresses, not broadcast or multicast ones.
        #expect(kinds(scan("wifi=02:A4:C2:11:33:02;")) == ["mac=02:a4:c2:11:33:02"])
        #expect(kinds(scan("m 00-1a-2b-3c-4d-5e")) == ["mac=00:1a:2b:3c:4d:5e"])
        #expect(scan("ff:ff:ff:ff:ff:ff 01:00:5e:00:00:fb bssid=02:00:00:00:00:00").isEmpty)
        // Coordinates: with a keyword, or a bare pair of 5+ decimals; not version numbers or lone decimals.
        #expect(kinds(scan("{\"lat\": 48.8566, \"lon\": 2.3522}")) == ["location=48.8566,2.3522"])
        #expect(kinds(scan("pos=48.85661,-2.35222")) == ["location=48.85661,-2.35222"])
        #expect(scan("v1.2345,2.3456 build").isEmpty)
        #expect(scan("ratio 0.12345 and 0.54321").isEmpty)
        #expect(scan("lat=95.1234,lon=2.1234").isEmpty, "latitude beyond 90")
        // Kinds can be turned off.
        #expect(scan("imei=490154203237518", kinds: [.mac]).isEmpty)
    }

    @Test func knownIdentifiersInTheirEncodings() {
        let known = [
            KnownIdentifier(kind: .imei, value: "490154203237518"),
            KnownIdentifier(kind: .phone, value: "+33612345678"),
            KnownIdentifier(kind: .mac, value: "02:a4:c2:11:33:02"),
            KnownIdentifier(kind: .serial, value: "X9MINI0042"),
        ]
        let cases: [(String, String, String)] = [
            ("h=0eaed834a1e6f4b2bf0c024e0013dea1", "490154203237518", "md5"),
            ("h=97A2105232ECC8756F03A029A839B97DED59207D", "490154203237518", "sha1"),
            ("h=1f0b62b5f05f305e9251c88be27c9e519449e8e34a00a59ec0a534d85ecfaf08", "490154203237518", "sha256"),
            ("d=343930313534323033323337353138", "490154203237518", "hex"),
            ("d=NDkwMTU0MjAzMjM3NTE4", "490154203237518", "base64"),
            // The IMEI inside a base64 JSON blob, at each of the three alignments ({"id":"...} with 0, 1, 2 bytes before).
            ("b=eyJpZCI6IjQ5MDE1NDIwMzIzNzUxOCJ9", "490154203237518", "base64"),
            ("b=eHsiaWQiOiI0OTAxNTQyMDMyMzc1MTgifQ==", "490154203237518", "base64"),
            ("b=eHl7ImlkIjoiNDkwMTU0MjAzMjM3NTE4In0=", "490154203237518", "base64"),
            ("p=KzMzNjEyMzQ1Njc4", "+33612345678", "base64"),
            ("p=60dd761f55cb17f0532c9fb1679e8ddd", "+33612345678", "md5"),
            ("n=0612345678&", "+33612345678", "national"),
            ("n=%2B33612345678&", "+33612345678", "url"),
            ("m=02a4c2113302", "02:a4:c2:11:33:02", "plain"),
            ("m=d21848ba32d81c8463503bc5431b83ff", "02:a4:c2:11:33:02", "md5"),
            ("s=x9mini0042;", "X9MINI0042", "plain"),
        ]
        for (payload, value, encoding) in cases {
            let got = scan(payload, known: known)
            #expect(got.contains { $0.known && $0.value == value && $0.encoding == encoding }, "\(payload): \(got)")
        }
        // Offsets and excerpts point at the bytes.
        let m = scan("abc h=0eaed834a1e6f4b2bf0c024e0013dea1 xyz", known: known).first { $0.encoding == "md5" }
        #expect(m?.offset == 6 && m?.length == 32)
        #expect(m?.excerpt == "abc h=0eaed834a1e6f4b2bf0c024e0013dea1 xyz")
        // A digest inside a longer hex string is not a match; neither is a near miss.
        #expect(!scan("h=00eaed834a1e6f4b2bf0c024e0013dea1", known: known).contains { $0.encoding == "md5" })
        #expect(scan("x=0eaed834a1e6f4b2bf0c024e0013dea2", known: known).isEmpty)
    }

    @Test func identifiersFile() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let good = dir + "/ids-\(getpid()).yaml"
        try "imei: [\"490154203237518\"]\nphone: \"+33612345678\"\nserial: [X9MINI0042]\n".write(toFile: good, atomically: true, encoding: .utf8)
        let ids = try KnownIdentifier.load(path: good)
        #expect(ids == [KnownIdentifier(kind: .imei, value: "490154203237518"), KnownIdentifier(kind: .phone, value: "+33612345678"),
                        KnownIdentifier(kind: .serial, value: "X9MINI0042")])
        let bad = dir + "/ids-bad-\(getpid()).yaml"
        try "imei: [\"490154203237518\"]\nimeii: [\"1\"]\nserial: [abc]\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let errors = try #require(throws: RulePackErrors.self) { try KnownIdentifier.load(path: bad) }
        #expect(errors.issues.map(\.line) == [2, 3], "\(errors)")
    }

    @Test func publicSuffixList() {
        let psl = PublicSuffixList.shared
        #expect(psl.ruleCount > 9000)
        // Cases from the list's own test file (publicsuffix.org/list/test/, checkPublicSuffix).
        #expect(psl.registeredDomain("www.example.com") == "example.com")
        #expect(psl.registeredDomain("a.b.example.uk.com") == "example.uk.com")
        #expect(psl.registeredDomain("b.test.ac") == "test.ac")
        #expect(psl.registeredDomain("a.b.c.kobe.jp") == "b.c.kobe.jp")  // *.kobe.jp
        #expect(psl.registeredDomain("www.city.kobe.jp") == "city.kobe.jp")  // !city.kobe.jp
        #expect(psl.registeredDomain("a.b.test.ck") == "b.test.ck")  // *.ck
        #expect(psl.registeredDomain("www.www.ck") == "www.ck")  // !www.ck
        #expect(psl.registeredDomain("us.com") == nil && psl.registeredDomain("com") == nil)
        #expect(psl.registeredDomain("a.b.example.local") == "example.local")  // the default * rule
        #expect(psl.registeredDomain("WWW.Example.CO.UK.") == "example.co.uk")
    }
}

/// Bad input never crashes: the scanner on random bytes from an alphabet that hits every pattern's paths (digits,
/// hex letters, separators, '+', '.', '-', keywords), with known identifiers, in a debug build where every buffer
/// access is bounds-checked; and the rule-pack loader on mutations of the default pack.
@Suite struct RobustnessTests {
    typealias Rng = SplitMix

    @Test func identifierScannerOnRandomBytes() {
        var c = IdentifierConfiguration()
        c.known = [KnownIdentifier(kind: .imei, value: "490154203237518"), KnownIdentifier(kind: .phone, value: "+33612345678"),
                   KnownIdentifier(kind: .mac, value: "02:a4:c2:11:33:02")]
        let scanner = IdentifierScanner(configuration: c)
        let pieces: [[UInt8]] = ["0", "1", "4", "5", "8", "9", "a", "f", ":", "-", ".", ",", "+", " ", "=", "imei", "imsi", "tel",
                                 "lat", "lon", "%2B", "89", "35", "208", "490154203237518", "02:a4", "NDkw", "\u{0}", "\u{FF}"]
            .map { Array($0.utf8) }
        var rng = Rng(seed: 2026)
        var found = 0
        for _ in 0..<3000 {
            var bytes: [UInt8] = []
            for _ in 0..<rng.below(60) { bytes += pieces[rng.below(pieces.count)] }
            var out: [IdentifierMatch] = []
            scanner.scan(bytes, into: &out)
            for m in out {
                #expect(m.offset >= 0 && m.length > 0 && m.offset + m.length <= bytes.count)
            }
            found += out.count
        }
        #expect(found > 0, "the alphabet reaches the patterns")
    }

    @Test func rulePackLoaderOnMutations() throws {
        let original = Array(try String(contentsOfFile: Repo.path("rules/siphon.yaml"), encoding: .utf8).utf8)
        let inserts: [UInt8] = Array(":-[]{}'\"#&*!|>%@ \n\tax9".utf8)
        var rng = Rng(seed: 7)
        var accepted = 0, refused = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<(1 + rng.below(4)) {
                let i = rng.below(bytes.count)
                switch rng.below(3) {
                case 0: bytes.remove(at: i)
                case 1: bytes.insert(inserts[rng.below(inserts.count)], at: i)
                default: bytes[i] = inserts[rng.below(inserts.count)]
                }
            }
            do {
                _ = try RulePack.parse(String(decoding: bytes, as: UTF8.self), file: "m.yaml")
                accepted += 1
            } catch {
                refused += 1
                #expect(error.issues.allSatisfy { $0.file == "m.yaml" && !$0.message.isEmpty })
            }
        }
        #expect(accepted > 0 && refused > 0)
    }
}

extension RobustnessTests {
    /// The JSON writer's string escaping (eight bytes at a time, escapes at every position of a word) reads back
    /// through Foundation's JSON parser as the same string, for strings of control characters, quotes, backslashes,
    /// non-ASCII text and plain runs of every length.
    @Test func jsonStringsRoundTrip() throws {
        let pieces = ["a", "bcdefgh", "\"", "\\", "\n", "\t", "\u{1}", "\u{1F}", " ", "é", "日本", "🙂", "0123456789", "\u{7F}"]
        var rng = Rng(seed: 99)
        for _ in 0..<2000 {
            var s = ""
            for _ in 0..<rng.below(24) { s += pieces[rng.below(pieces.count)] }
            var w = JSONObjectWriter()
            w.beginObject()
            w.field("k", s)
            w.endObject()
            let parsed = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: String]
            #expect(parsed?["k"] == s, "\(s.debugDescription)")
        }
    }

    /// Addresses written straight into an event (IPv4 digits without a `String`) read back as `inet_ntop` writes
    /// them: the extremes, one- two- and three-digit bytes at every position, random addresses, and IPv6 (through
    /// its description).
    @Test func jsonAddressesMatchInetNtop() throws {
        var rng = Rng(seed: 7)
        var v4: [UInt32] = [0, 0xFFFF_FFFF, 0x0A00_0001, 0x0114_6409, 0xC000_0201, 0x6464_6464, 0x0909_0909]
        for _ in 0..<2000 { v4.append(UInt32(truncatingIfNeeded: rng.next())) }
        var addresses = v4.map { IPAddress(ipv4: $0) }
        addresses += ["::", "::1", "2001:db8::1", "fe80::1:2:3:4", "::ffff:192.0.2.1", "2001:db8:0:0:1:0:0:1"].map { IPAddress($0)! }
        for a in addresses {
            var raw = a.isIPv6 ? [UInt8](repeating: 0, count: 16) : [UInt8](repeating: 0, count: 4)
            if a.isIPv6 {
                withUnsafeBytes(of: a.high.bigEndian) { raw.replaceSubrange(0..<8, with: $0) }
                withUnsafeBytes(of: a.low.bigEndian) { raw.replaceSubrange(8..<16, with: $0) }
            } else {
                withUnsafeBytes(of: UInt32(truncatingIfNeeded: a.low).bigEndian) { raw = Array($0) }
            }
            var text = [CChar](repeating: 0, count: 64)
            #expect(inet_ntop(a.isIPv6 ? AF_INET6 : AF_INET, raw, &text, 64) != nil)
            let expected = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var w = JSONObjectWriter()
            w.beginObject()
            w.field("ip", a)
            w.field("next", 1)
            w.endObject()
            let parsed = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: Any]
            #expect(parsed?["ip"] as? String == expected && parsed?["next"] as? Int == 1, "\(expected)")
        }
    }

    /// The last partial word (read padded, or as the string's last eight bytes) and the words before it: one
    /// special byte at every position of plain strings of 0 to 17 bytes, as key and as value, with a second
    /// field after them, read back by Foundation's parser.
    @Test func jsonTailsRoundTrip() throws {
        for length in 0...17 {
            for position in -1..<length {
                for special: UInt8 in [0x00, 0x01, 0x0A, 0x1F, 0x20, 0x22, 0x41, 0x5C, 0x7F] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                    if position >= 0 { bytes[position] = special }
                    let s = String(decoding: bytes, as: UTF8.self)
                    var w = JSONObjectWriter()
                    w.beginObject()
                    w.field(JSONKey(s), s)
                    w.field("after", "é" + s)
                    w.endObject()
                    let parsed = try JSONSerialization.jsonObject(with: Data(w.bytes)) as? [String: String]
                    #expect(parsed?[s] == s && parsed?["after"] == "é" + s, "\(s.debugDescription)")
                }
            }
        }
    }
}

extension RobustnessTests {
    /// A spool (`EventOutput.spool`) gives back exactly the lines written to it, in order, whether they stayed in
    /// memory, moved to a temporary file partway (events larger than the limit, a limit of 0, the limit crossed by
    /// raw appends) or could not move because the directory does not exist (kept in memory, `spillError` set).
    /// The reference is the same events written to a plain in-memory output. A spool that moved leaves no file
    /// in its directory (unlinked at once).
    @Test func spoolGivesBackWhatWasWritten() throws {
        var rng = Rng(seed: 41)
        var events: [JSONObjectWriter] = []
        for i in 0..<400 {
            var w = JSONObjectWriter()
            w.beginObject()
            w.field("i", i)
            w.field("pad", String(repeating: "x", count: rng.below(i % 50 == 0 ? 9000 : 300)))
            w.endObject()
            events.append(w)
        }
        let reference = EventOutput()
        for e in events { reference.write(e) }
        let total = reference.memory.count
        let dir = try temporaryFolder("spool")
        for (limit, directory) in [(0, dir), (1, dir), (4096, dir), (total / 2, dir), (total, dir), (1 << 30, dir),
                                   (4096, dir + "/missing")] {
            let spool = EventOutput.spool(memoryLimit: limit, directory: directory)
            for e in events { spool.write(e) }
            // The same events reaching a spool as whole lines (`copy(to:)` from another spool).
            let whole = EventOutput.spool(memoryLimit: 1 << 30, directory: directory)
            for e in events { whole.write(e) }
            let chained = EventOutput.spool(memoryLimit: limit, directory: directory)
            whole.copy(to: chained)
            let missing = directory.hasSuffix("/missing")
            for s in [spool, chained] {
                let out = EventOutput()
                s.copy(to: out)
                #expect(out.memory == reference.memory && out.eventsWritten == events.count, "limit \(limit) in \(directory)")
                #expect(s.spilled == (!missing && total > limit), "limit \(limit)")
                #expect((s.spillError != nil) == (missing && total > limit), "limit \(limit)")
            }
            #expect(!whole.spilled)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "limit \(limit)")
        }
    }
}

extension IdentifierTests {
    /// The eight-byte skip never hides a byte that can start a pattern: every byte value at every position of a
    /// word of filler bytes.
    @Test func wordSkipTestIsExact() {
        for filler in [UInt8(ascii: "x"), 0x00, 0xFF, 0x80, 0x2C, 0x3B] {
            for position in 0..<8 {
                for b in 0...255 {
                    var bytes = [UInt8](repeating: filler, count: 8)
                    bytes[position] = UInt8(b)
                    let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    #expect(IdentifierScanner.mayStartPattern(w) == (0x2D...0x3A).contains(b), "byte \(b) at \(position), filler \(filler)")
                }
            }
        }
    }
}
