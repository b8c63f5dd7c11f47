import Crypto
import Foundation
import Siphon
import Testing

/// Reassembled streams against what Suricata-verify and Arkime expect for their overlap, gap, retransmission and
/// sequence-wrap captures (captures/reassembly/expected.json; README.md there says where each value comes from).
@Suite struct OracleReassemblyTests {
    struct Check: CustomStringConvertible, Sendable {
        var index: Int
        var capture: String
        var policy: OverlapPolicy
        var client: String, cport: Int, server: String, sport: Int
        var direction: String
        var expected: [String: String]
        var conflictsExpected: Bool
        var clientISN: Int?
        var description: String { "#\(index) \(capture) \(policy) \(direction) \(expected.keys.first ?? "")" }
    }

    static let checks: [Check] = {
        guard let list = try? Repo.json("captures/reassembly/expected.json") as? [[String: Any]] else { return [] }
        return list.enumerated().map { i, c in
            let flow = c["flow"] as! [String: Any]
            return Check(
                index: i, capture: c["capture"] as! String, policy: OverlapPolicy(rawValue: c["policy"] as! String)!,
                client: flow["client"] as! String, cport: flow["cport"] as! Int, server: flow["server"] as! String,
                sport: flow["sport"] as! Int, direction: c["direction"] as! String,
                expected: (c["expected"] as! [String: Any]).mapValues { "\($0)" },
                conflictsExpected: c["conflicts_expected"] as? Bool ?? false, clientISN: c["client_isn"] as? Int)
        }
    }()

    @Test func everyFixtureIsUsed() {
        #expect(Self.checks.count == 55)
    }

    @Test(arguments: checks)
    func streamMatchesTheOracle(_ check: Check) throws {
        let dir = temporaryPath("siphon-oracle-\(check.index)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = ScanOptions.likeTheOracles
        options.reassembly.policy = check.policy
        options.streams.extractDirectory = dir
        let (events, _) = scanEvents(Repo.path("captures/reassembly/" + check.capture), options: options)

        let c2s = check.direction == "c2s"
        let name = StreamRecorder.tcpflowName(
            source: IPAddress(c2s ? check.client : check.server)!, sourcePort: UInt16(c2s ? check.cport : check.sport),
            destination: IPAddress(c2s ? check.server : check.client)!, destinationPort: UInt16(c2s ? check.sport : check.cport))
        // A reused 5-tuple: the check names the connection by its client ISN (k-th smallest = k-th connection, they
        // are in ISN order in these captures). Files are numbered in order of first data in that direction, so the
        // file of connection k is preceded by those of earlier connections that carried data that way.
        let candidates = (try FileManager.default.contentsOfDirectory(atPath: dir)).filter {
            $0.hasPrefix(name) && !$0.dropFirst(name.count).hasPrefix("--") || $0.hasPrefix(name + "--")
        }.sorted {
            $0.count != $1.count ? $0.count < $1.count : $0 < $1
        }
        var bytes: [UInt8] = []
        if let isn = check.clientISN {
            let isns = Set(Self.checks.filter { $0.capture == check.capture && $0.cport == check.cport }.compactMap(\.clientISN)).sorted()
            let k = isns.firstIndex(of: isn)!
            let flows = events.filter { $0["event_type"] as? String == "flow" && $0["src_port"] as? Int == check.cport }
                .sorted { ($0["start"] as! String) < ($1["start"] as! String) }
            #expect(flows.count == isns.count, "\(check)")
            let side = c2s ? "client" : "server"
            let carried = flows.map { (($0[side] as! [String: Any])["payload_bytes"] as! Int) > 0 }
            if carried[k] {
                let file = candidates[carried[..<k].filter { $0 }.count]
                bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file)))
            }
        } else {
            let file = try #require(candidates.first, "\(check): no stream file \(name)")
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file)))
        }
        if let sha = check.expected["sha256"] {
            let actual = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            #expect(actual == sha, "\(check): got \(String(decoding: bytes.prefix(64), as: UTF8.self))")
        }
        if let prefix = check.expected["prefix_hex"] {
            let hex = bytes.prefix(prefix.count / 2).map { String(format: "%02x", $0) }.joined()
            #expect(hex == prefix, "\(check)")
        }
        if let needle = check.expected["contains"] {
            #expect(String(decoding: bytes, as: UTF8.self).contains(needle), "\(check)")
        }
        let anomalies = events.filter { $0["event_type"] as? String == "anomaly" && $0["src_port"] as? Int == check.cport }
        #expect(!anomalies.isEmpty == check.conflictsExpected, "\(check): \(anomalies.count) anomalies")
    }
}

/// The overlap policies through the command line (`siphon scan --overlap-policy P --stream-hashes`): each oracle
/// stream's SHA-256 in the flow event equals the oracle's, and under the acknowledgment-gated policies data goes
/// to the parsers when the receiver acknowledges it, not at the end of the capture.
@Suite struct OverlapPolicyCLITests {
    static let byRun: [String: [OracleReassemblyTests.Check]] = Dictionary(
        grouping: OracleReassemblyTests.checks.filter { $0.expected["sha256"] != nil && $0.clientISN == nil },
        by: { "\($0.capture) \($0.policy.rawValue)" })

    @Test func everyPolicyIsCovered() {
        #expect(Set(Self.byRun.values.flatMap { $0.map(\.policy) }) == Set(OverlapPolicy.allCases))
    }

    @Test(arguments: byRun.keys.sorted())
    func streamHashesEqualTheOracle(_ run: String) throws {
        let checks = try #require(Self.byRun[run])
        let first = try #require(checks.first)
        let r = try runSiphon(["scan", "-q", "--checksums", "off", "--overlap-policy", first.policy.rawValue, "--stream-hashes",
                               "--json", "-", Repo.path("captures/reassembly/" + first.capture)])
        #expect(r.status == 0)
        let flows = r.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { $0["event_type"] as? String == "flow" }
        for c in checks {
            let flow = flows.first {
                $0["src_port"] as? Int == c.cport && $0["dest_port"] as? Int == c.sport
                    && normalized($0["src_ip"] as? String ?? "") == normalized(c.client)
            }
            let side = try #require(flow?[c.direction == "c2s" ? "client" : "server"] as? [String: Any], "\(c)")
            #expect(side["sha256"] as? String == c.expected["sha256"], "\(c)")
        }
    }

    /// captures/scenarios/evasion-late-retransmission.pcap (scripts/gen_scenarios.py): 60 ms after the third
    /// segment of a 5,600-byte POST, that segment again with request bytes 3,000-3,002 and 3,500-3,501 flipped
    /// (the generator XORs them with 0x20): one anomaly per run of differing bytes, at exactly those offsets, with
    /// the delivered and the offered bytes; under every policy (delivered bytes are final).
    @Test(arguments: OverlapPolicy.allCases)
    func lateRetransmissionReportsEveryDifferingRange(_ policy: OverlapPolicy) throws {
        let r = try runSiphon(["scan", "-q", "--overlap-policy", policy.rawValue, "--json", "-",
                               Repo.path("captures/scenarios/evasion-late-retransmission.pcap")])
        let events = r.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let anomalies = events.compactMap { $0["event_type"] as? String == "anomaly" ? $0["anomaly"] as? [String: Any] : nil }
        #expect(anomalies.map { [$0["offset"] as? Int ?? -1, $0["length"] as? Int ?? -1] } == [[3000, 3], [3500, 2]], "\(policy)")
        for a in anomalies {
            let kept = [UInt8](hex: a["kept"] as? String ?? ""), discarded = [UInt8](hex: a["discarded"] as? String ?? "")
            #expect(kept.count == discarded.count && !kept.isEmpty && zip(kept, discarded).allSatisfy { $0 ^ $1 == 0x20 }, "\(policy)")
        }
        let stats = try #require(events.last?["stats"] as? [String: Any])
        #expect((stats["tcp_reassembly"] as? [String: Any])?["unverified_retransmitted_bytes"] as? Int == 0)
    }

    /// The sample's HTTP transactions come out at the same capture times (within the 40 ms of an acknowledgment)
    /// under every policy: held data is released by the peer's ACKs. Released against nothing, it waited for the
    /// end of its flow, a minute later.
    @Test func heldDataIsReleasedByAcknowledgments() throws {
        func httpTimes(_ policy: OverlapPolicy) throws -> [Double] {
            let r = try runSiphon(["scan", "-q", "--overlap-policy", policy.rawValue, "--json", "-", Repo.path("captures/sample/backdoor-phone.pcap")])
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return r.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
                .filter { $0["event_type"] as? String == "http" }
                .compactMap { ($0["timestamp"] as? String).flatMap { f.date(from: $0)?.timeIntervalSince1970 } }
        }
        let reference = try httpTimes(.first)
        #expect(reference.count >= 4)
        for policy in OverlapPolicy.allCases where policy != .first {
            let times = try httpTimes(policy)
            #expect(times.count == reference.count, "\(policy)")
            for (a, b) in zip(times, reference) { #expect(abs(a - b) < 0.04, "\(policy): \(a) vs \(b)") }
        }
    }
}

extension Array where Element == UInt8 {
    /// Bytes from hex digits (two a byte).
    init(hex: String) {
        let digits = Array(hex.utf8)
        self = stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }
}

/// `--extract-streams` against tcpflow 1.6.1 on every stream tcpflow reassembles without gaps
/// (captures/tcpflow/expected.json, made by scripts/tcpflow_streams.py): same file name, same bytes.
@Suite struct TcpflowTests {
    nonisolated(unsafe) static let streams: [[String: Any]] = ((try? Repo.json("captures/tcpflow/expected.json") as? [String: Any])?["streams"]
        as? [[String: Any]]) ?? []

    @Test func fixturesArePresent() { #expect(Self.streams.count >= 100) }

    @Test(arguments: Set(streams.map { $0["capture"] as! String }).sorted())
    func extractedStreamsEqualTcpflow(_ capture: String) throws {
        let dir = temporaryPath("siphon-tcpflow-" + (capture as NSString).lastPathComponent)
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = ScanOptions.likeTheOracles
        options.streams.extractDirectory = dir
        _ = scanEvents(Repo.path(capture), options: options)
        for s in Self.streams where s["capture"] as? String == capture {
            let name = s["file"] as! String
            let data = FileManager.default.contents(atPath: dir + "/" + name)
            let found = try #require(data, "\(capture): no file \(name); have \((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])")
            #expect(found.count == s["length"] as! Int, "\(capture) \(name)")
            let sha = SHA256.hash(data: found).map { String(format: "%02x", $0) }.joined()
            #expect(sha == s["sha256"] as! String, "\(capture) \(name)")
        }
    }
}
