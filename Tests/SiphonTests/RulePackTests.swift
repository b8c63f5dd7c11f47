import Foundation
import Siphon
import Testing

/// The rule pack: the default one on disk equals the built-in defaults, every mistake is reported with its line,
/// and declarative rules fire on the sample as its manifest says they should.
@Suite struct RulePackTests {
    static let geo: GeoDatabase? = try? GeoDatabase()

    @Test func defaultPackStatesTheBuiltInDefaults() throws {
        let pack = try RulePack.load(path: Repo.path("rules"))
        let embedded = try RulePack.embedded()
        let defaults = DetectionConfiguration()
        #expect(pack.home == ["FR"])
        #expect(embedded.home == pack.home)
        #expect(pack.rules.map(\.id) == embedded.rules.map(\.id))
        #expect(pack.rules.count >= 3)
        let c = pack.configuration
        // Every threshold the YAML writes is the one the code uses without a pack (docs/detections.md argues them).
        #expect(c.uploadBytes == defaults.uploadBytes && c.uploadRatio == defaults.uploadRatio)
        #expect(c.uploadRatioMinimumBytes == defaults.uploadRatioMinimumBytes)
        #expect(c.beacons.minimumContacts == defaults.beacons.minimumContacts)
        #expect(c.beacons.minimumInterval == defaults.beacons.minimumInterval)
        #expect(c.beacons.maximumDispersion == defaults.beacons.maximumDispersion)
        #expect(c.beacons.jitter == defaults.beacons.jitter && c.beacons.maximumContacts == defaults.beacons.maximumContacts)
        #expect(c.noDNSExemptPorts == defaults.noDNSExemptPorts)
        #expect(c.cleartextProtocols == defaults.cleartextProtocols && c.cleartextBytes == defaults.cleartextBytes)
        #expect(c.standardPorts == defaults.standardPorts)
        #expect(c.identifiers.kinds == defaults.identifiers.kinds && c.identifiers.scanBytes == defaults.identifiers.scanBytes)
        #expect(c.identifiers.excerptBytes == defaults.identifiers.excerptBytes)
        #expect(c.dnsTunnel.minimumNames == defaults.dnsTunnel.minimumNames)
        #expect(c.dnsTunnel.encodedFraction == defaults.dnsTunnel.encodedFraction)
        #expect(c.dnsTunnel.longSubdomain == defaults.dnsTunnel.longSubdomain && c.dnsTunnel.entropy == defaults.dnsTunnel.entropy)
        #expect(c.dnsTunnel.txtQueries == defaults.dnsTunnel.txtQueries)
        #expect(c.tls.obsoleteVersions == defaults.tls.obsoleteVersions && c.tls.noSNIForeign == defaults.tls.noSNIForeign)
        #expect(c.ttlLimit == defaults.ttlLimit)
        #expect(c.disabled.isEmpty)
    }

    /// One mistake per line, each reported at its own line and column: loading goes on after the first.
    @Test func everyMistakeIsReportedWithItsLine() throws {
        let yaml = """
            version: 1
            homes: [FR]
            detectors:
              beaconing:
                min_contact: 6
              foreign-upload:
                volume_bytes: lots
              no-such-detector: {}
            rules:
              - id: x.one
                category: beaconing
                severity: severe
                message: "{device} to {nowhere}"
                when:
                  dest_contry: CN
              - id: x.one
                category: Bad Category
                severity: low
                message: ok
                when:
                  all:
                    - sent_bytes: {matches: "a.*"}
                    - names: {approx: x}
                    - dest_ip: not-an-address
              - id: x.three
                severity: low
                message: ok
                when: {app: tls}
            """
        let errors = try #require(throws: RulePackErrors.self) { try RulePack.parse(yaml, file: "bad.yaml") }
        let got = errors.issues.map { ($0.line, $0.message) }
        let expected: [(Int, String)] = [
            (2, "unknown key 'homes'"),
            (5, "unknown key 'min_contact' in detector beaconing"),
            (7, "expected an integer"),
            (8, "unknown key 'no-such-detector'"),
            (12, "unknown severity 'severe'"),
            (13, "unknown field in the message: {nowhere}"),
            (15, "unknown field 'dest_contry'"),
            (16, "rule id 'x.one' is already used at bad.yaml:10"),
            (17, "a category is lower-case letters"),
            (22, "operator matches does not apply to sent_bytes"),
            (23, "unknown operator 'approx'"),
            (24, "dest_ip takes addresses or prefixes"),
            (25, "a rule needs 'category'"),
        ]
        for (line, text) in expected {
            #expect(got.contains { $0.0 == line && $0.1.contains(text) }, "line \(line): \(text)\ngot:\n\(errors)")
        }
        #expect(errors.issues.count == expected.count, "\(errors)")
        #expect(errors.issues.allSatisfy { $0.description.hasPrefix("bad.yaml:\($0.line):") })

        // YAML syntax errors carry the parser's position.
        let syntax = try #require(throws: RulePackErrors.self) { try RulePack.parse("rules:\n  - id: [unclosed\n", file: "s.yaml") }
        #expect(syntax.issues.count == 1 && syntax.issues[0].line >= 2 && syntax.issues[0].message.hasPrefix("YAML:"))
        // A setting made twice in one pack (two files) is an error, not a silent override.
        let dir = temporaryPath("siphon-pack-\(getpid())")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "home: [FR]\n".write(toFile: dir + "/a.yaml", atomically: true, encoding: .utf8)
        try "home: [DE]\n".write(toFile: dir + "/b.yaml", atomically: true, encoding: .utf8)
        let twice = try #require(throws: RulePackErrors.self) { try RulePack.load(path: dir) }
        #expect(twice.issues.map(\.description) == ["\(dir)/b.yaml:1:1: error: home is already set at \(dir)/a.yaml:1"])
    }

    @Test func rulesCheckCommand() throws {
        let ok = try runSiphon(["rules", "check", Repo.path("rules")])
        #expect(ok.status == 0 && ok.out.contains("OK: 1 file, "), "\(ok)")
        let embedded = try runSiphon(["rules", "check"])
        #expect(embedded.status == 0 && embedded.out.contains("home FR"))
        let path = temporaryPath("siphon-bad-\(getpid()).yaml")
        try "detectors:\n  beaconing:\n    min_contacts: two\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try runSiphon(["rules", "check", path])
        #expect(bad.status == 1)
        #expect(bad.out.contains("\(path):3:19: error: expected an integer"), "\(bad)")
        // A scan with a broken pack refuses to start (exit 2) and names the problem.
        let scan = try runSiphon(["scan", "--rules", path, Repo.path("captures/sample/backdoor-phone.pcap")])
        #expect(scan.status == 2 && scan.err.contains("\(path):3:19"))
    }

    private func scan(_ yaml: String, home: Set<String>? = nil) throws -> [[String: Any]] {
        let pack = try RulePack.parse(yaml, file: "test.yaml")
        var options = ScanOptions()
        options.detection = pack.configuration
        options.rules = pack.rules
        options.geo = try #require(Self.geo).with(home: home ?? pack.home ?? ["FR"])
        return scanEvents(Repo.path("captures/sample/backdoor-phone.pcap"), options: options).events
            .filter { $0["event_type"] as? String == "alert" }
    }

    private func rule(_ a: [String: Any]) -> String? { (a["alert"] as? [String: Any])?["rule"] as? String }
    private func category(_ a: [String: Any]) -> String? { (a["alert"] as? [String: Any])?["category"] as? String }

    /// Counts from the sample's manifest: 13 flows to the Chinese server (12 beacons on 8080 and the POST on 80).
    @Test func declarativeRulesFireAsTheManifestSays() throws {
        let manifest = try #require(try Repo.json("captures/sample/backdoor-phone.json") as? [String: Any])
        let flows = try #require(manifest["flows"] as? [[String: Any]])
        let cnServer = try #require((manifest["uploads"] as? [[String: Any]])?.first?["server"] as? String)
        let toCN = flows.filter { $0["server"] as? String == cnServer }
        let beaconPort = try #require((manifest["beacons"] as? [[String: Any]])?.first?["port"] as? Int)
        let yaml = """
            rules:
              - id: t.per-flow
                category: custom-cn
                severity: low
                per: flow
                message: "{device} -> {dest_ip}:{dest_port} {dest_country} sent {sent_bytes}"
                when: {all: [{dest_country: CN}, {dest_port: \(beaconPort)}]}
              - id: t.per-endpoint
                category: foreign-upload
                severity: medium
                message: "{dest_ip} total {total_sent_bytes}"
                when: {any: [{dest_country: [CN, RU]}, {dest_ip: 203.0.113.0/24}]}
              - id: t.not-resolved
                category: no-dns-endpoint
                severity: high
                message: "hard-coded {dest_ip}"
                when: {all: [{not: {resolved: true}}, {sent_bytes: {ge: 16384}}, {dest_scope: foreign}]}
              - id: t.never
                category: beaconing
                severity: critical
                message: never
                when: {names: {suffix: oportik-cloud.cn.example}}
            """
        let got = try scan(yaml)
        let perFlow = got.filter { rule($0) == "t.per-flow" }
        #expect(perFlow.count == toCN.filter { $0["port"] as? Int == beaconPort }.count)
        #expect(perFlow.allSatisfy { category($0) == "custom-cn" && ($0["alert"] as? [String: Any])?["severity"] as? String == "low" })
        let first = try #require(perFlow.first)
        let sent = toCN.first { $0["port"] as? Int == beaconPort }?["sent"] as? Int
        #expect((first["alert"] as? [String: Any])?["message"] as? String
                == "\(manifest["device"].flatMap { ($0 as? [String: Any])?["ip"] as? String } ?? "") -> \(cnServer):\(beaconPort) CN sent \(sent ?? -1)")
        #expect((first["evidence"] as? [String: Any])?["dest_country"] as? String == "CN")
        #expect((first["evidence"] as? [String: Any])?["rule_location"] as? String == "test.yaml:2")
        // Once per device x endpoint by default: one alert for the CN server although 13 flows match.
        #expect(got.filter { rule($0) == "t.per-endpoint" }.map { $0["dest_ip"] as? String } == [cnServer])
        // The hard-coded upload server (no DNS), and only it.
        let hardCoded = flows.filter { f in
            let answers = ((manifest["dns"] as? [[String: Any]]) ?? []).flatMap { $0["answers"] as? [[String]] ?? [] }
            return (f["sent"] as? Int ?? 0) >= 16_384 && !answers.contains { $0.last == f["server"] as? String }
        }.compactMap { $0["server"] as? String }
        #expect(!hardCoded.isEmpty)
        #expect(got.filter { rule($0) == "t.not-resolved" }.compactMap { $0["dest_ip"] as? String } == hardCoded)
        #expect(!got.contains { rule($0) == "t.never" })
    }

    @Test func homeAndDetectorSwitchesFromThePack() throws {
        let defaults = try scan("version: 1\n")
        #expect(defaults.contains { category($0) == "beaconing" })
        let off = try scan("detectors:\n  beaconing: {enabled: false}\n  foreign-endpoint: {enabled: false}\n")
        #expect(!off.contains { category($0) == "beaconing" || category($0) == "foreign-endpoint" })
        #expect(off.contains { category($0) == "foreign-upload" })
        // With China at home, its server is no longer foreign; the French ones are.
        let cn = try scan("home: [CN]\n")
        let foreign = Set(cn.filter { category($0) == "foreign-endpoint" }.compactMap { $0["dest_ip"] as? String })
        let geo = try #require(Self.geo)
        #expect(!foreign.isEmpty)
        #expect(foreign.allSatisfy { geo.lookup(IPAddress($0)!).country != "CN" })
        #expect(foreign.contains { geo.lookup(IPAddress($0)!).country == "FR" })
        // --home on the command line wins over the pack's.
        let path = temporaryPath("siphon-home-\(getpid()).yaml")
        try "home: [CN]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let sample = Repo.path("captures/sample/backdoor-phone.pcap")
        let fromPack = try runSiphon(["scan", "-q", "--rules", path, "--json", "-", sample])
        let overridden = try runSiphon(["scan", "-q", "--rules", path, "--home", "FR", "--json", "-", sample])
        #expect(fromPack.out.contains("\"scope\":\"home\"") && fromPack.out.contains("\"country\":\"CN\",\"registered_country\":\"CN\""))
        #expect(!fromPack.out.contains("\"category\":\"beaconing\",\"rule\":\"siphon.beaconing\",\"severity\":\"medium\""))
        #expect(overridden.out.contains("\"category\":\"beaconing\",\"rule\":\"siphon.beaconing\",\"severity\":\"medium\""))
    }
}

extension RulePackTests {
    /// The compiled conditions (with their specialised shapes) decide exactly as the condition tree does, on every
    /// combination of app, port, bytes and names below; a few decisions checked by hand.
    @Test func compiledRulesAgreeWithTheTree() throws {
        let yaml = """
            rules:
              - {id: a, category: x, severity: low, message: m, when: {app: tls}}
              - {id: b, category: x, severity: low, message: m, when: {app: [tls, http]}}
              - {id: c, category: x, severity: low, message: m, when: {dest_port: [443, 80]}}
              - {id: d, category: x, severity: low, message: m, when: {sent_bytes: {gt: 100}}}
              - {id: e, category: x, severity: low, message: m, when: {names: {suffix: [example.com, evil.org]}}}
              - {id: f, category: x, severity: low, message: m, when: {all: [{app: {ne: dns}}, {not: {dest_port: {le: 80}}}]}}
              - {id: g, category: x, severity: low, message: m, when: {any: [{names: {contains: xam}}, {sent_bytes: {in: [0]}}]}}
            """
        let rules = try RulePack.parse(yaml, file: "t.yaml").rules
        var hits: [String: Int] = [:]
        for app in ["tls", "http", "dns", "TLS"] {
            for port: UInt16 in [443, 80, 22] {
                for sent in [0, 100, 101] {
                    for names in [[], ["a.example.com"], ["EVIL.ORG"], ["notexample.com"], ["x.y", "example.com"]] {
                        let key = FlowKey(a: IPAddress("192.0.2.1")!, portA: 50000, b: IPAddress("198.51.100.7")!, portB: port, ipProtocol: 6, vlan: 0)
                        let flow = Flow(key: key, id: 1, initiatorIsA: true, start: .zero)
                        let ended = EndedFlow(flow: flow, sent: sent, received: 10, resolvedNames: [], names: names, destination: nil, app: app)
                        let c = RuleContext(flow: ended, totals: nil, facts: FlowFacts())
                        for r in rules {
                            #expect(r.matches(c) == r.condition.evaluate(c), "\(r.id) \(app) \(port) \(sent) \(names)")
                            if r.matches(c) { hits[r.id, default: 0] += 1 }
                        }
                        let e = try #require(rules.first { $0.id == "e" })
                        #expect(e.matches(c) == names.contains { $0.lowercased() == "evil.org" || $0.hasSuffix(".example.com") || $0 == "example.com" })
                    }
                }
            }
        }
        // 4 apps x 3 ports x 3 byte counts x 5 name lists = 180 contexts.
        #expect(hits["a"] == 2 * 45)  // "tls" and "TLS" (text compares without case)
        #expect(hits["c"] == 2 * 60)
        #expect(hits["d"] == 60)  // only 101 of 0, 100, 101
    }
}
