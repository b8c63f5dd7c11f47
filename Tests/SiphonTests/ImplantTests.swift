import Crypto
import Foundation
import Siphon
import Testing

/// Issue 18: the verdict's score (arithmetic of docs/detections.md's table), credentials found on a real capture
/// against tshark, in-flow beaconing on Zeek's Merlin C2 trace, and the labelled corpus of ../shared.
@Suite struct ImplantTests {
    static let shared = Repo.path("../shared/captures")

    /// tshark's fields for `filter` on `path` (nil, with an issue recorded, when tshark is not installed:
    /// scripts/test.sh installs it).
    static func tshark(_ path: String, _ filter: String, _ fields: [String]) throws -> String? {
        guard let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: FileManager.default.isExecutableFile) else {
            Issue.record("tshark is not installed: scripts/test.sh installs it")
            return nil
        }
        let run = try runProgram(tshark, ["-r", path, "-Y", filter, "-T", "fields"] + fields.flatMap { ["-e", $0] })
        #expect(run.status == 0, "\(run.err)")
        return run.out
    }

    private func alert(_ category: AlertCategory, _ severity: Severity, anomaly: String? = nil) -> Alert {
        var f = Flow(key: FlowKey(a: IPAddress("192.0.2.1")!, portA: 50000, b: IPAddress("198.51.100.7")!, portB: 443, ipProtocol: 6, vlan: 0),
                     id: 1, initiatorIsA: true, start: Timestamp(seconds: 0))
        f.end = f.start
        return Alert(category: category, rule: "test", severity: severity, message: "", timestamp: f.start, flow: f,
                     device: f.clientAddress, destination: nil, evidence: anomaly.map { [("anomaly", .string($0))] } ?? [])
    }

    /// Points per kind, TLS findings capped at 2, a behaviour needed to raise the verdict.
    @Test func endpointScoreArithmetic() {
        // The issue's implant: heartbeat (2) + self-signed (2) + non-standard port (1, info counts) + no DNS (1) = 6.
        let implant = EndpointScore([
            alert(.beaconing, .medium), alert(.tlsAnomaly, .medium, anomaly: "self-signed"),
            alert(.nonStandardPort, .info), alert(.noDNSEndpoint, .low),
        ])
        #expect(implant.points == 6 && implant.behaviour && implant.severity == .critical)
        // KakaoTalk's LOCO (nDPI's benign capture): self-signed, no SNI, TLS 1.0 (TLS capped at 2), no DNS, port
        // 9001: 2 + 1 + 1 = 4 points and no behaviour: raises nothing.
        let loco = EndpointScore([
            alert(.tlsAnomaly, .medium, anomaly: "self-signed"), alert(.tlsAnomaly, .low, anomaly: "no-sni"),
            alert(.tlsAnomaly, .low, anomaly: "obsolete-version"), alert(.noDNSEndpoint, .low), alert(.nonStandardPort, .info),
        ])
        #expect(loco.points == 4 && !loco.behaviour && loco.severity == nil)
        // A heartbeat to a cloud with DNS and a valid certificate: 2 points, stays at the alert's medium.
        #expect(EndpointScore([alert(.beaconing, .medium)]).severity == nil)
        // Beacon + no DNS + no SNI = 4 with a behaviour: high (Merlin's QUIC C2).
        #expect(EndpointScore([alert(.beaconing, .medium), alert(.noDNSEndpoint, .low), alert(.tlsAnomaly, .low, anomaly: "no-sni")]).severity == .high)
        // A high finding (identifiers) with a beacon and cleartext (3 points): critical (the sample backdoor phone).
        let corroborated = EndpointScore([alert(.identifierLeak, .high), alert(.cleartext, .medium), alert(.beaconing, .medium)])
        #expect(corroborated.high && corroborated.points == 3 && corroborated.severity == .critical)
        // The same without the beacon: no behaviour, no raise (the verdict stays the alert's high).
        #expect(EndpointScore([alert(.identifierLeak, .high), alert(.cleartext, .medium), alert(.noDNSEndpoint, .low)]).severity == nil)
        // Each kind once: two beacons are 2 points.
        #expect(EndpointScore([alert(.beaconing, .medium), alert(.beaconing, .low)]).points == 2)
    }

    /// Suricata-verify's pop3 capture (TLPW1): the USER and PASS tshark reads are the credential found, masked in
    /// the message, whole in the evidence.
    @Test func pop3CredentialsMatchTshark() throws {
        let path = Self.shared + "/malware/suricata-verify/pop3/input.pcap"
        guard FileManager.default.fileExists(atPath: path) else {
            print("ImplantTests: ../shared not present, pop3 credential check not run")
            return
        }
        guard let tshark = try Self.tshark(path, "pop.request.command == \"USER\" || pop.request.command == \"PASS\"",
                                           ["ip.dst", "pop.request.command", "pop.request.parameter"])
        else { return }
        let rows = tshark.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }.filter { $0.count == 3 }
        let user = try #require(rows.first { $0[1] == "USER" }), pass = try #require(rows.first { $0[1] == "PASS" })
        let run = try runSiphon(["scan", "-q", "--json", "-", path])
        let alerts = run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { ($0["alert"] as? [String: Any])?["rule"] as? String == "siphon.identifier-leak.credential" }
        let a = try #require(alerts.first)
        let evidence = try #require(a["evidence"] as? [String: Any])
        #expect(a["dest_ip"] as? String == user[0])
        #expect(evidence["user"] as? String == user[2] && evidence["secret"] as? String == pass[2] && evidence["mechanism"] as? String == "USER/PASS")
        let message = (a["alert"] as? [String: Any])?["message"] as? String ?? ""
        // Masked: first and last characters, the rest as asterisks (at most 12).
        let p = Array(pass[2])
        let masked = String(p[0]) + String(repeating: "*", count: min(p.count - 2, 12)) + String(p[p.count - 1])
        #expect(message.contains("(POP3 USER/PASS, \(masked))") && message.contains(user[2]))
        // The pop3 event carries the same.
        let events = run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { $0["event_type"] as? String == "pop3" }
        #expect((events.first?["pop3"] as? [String: Any])?["password"] as? String == pass[2])
    }

    /// Zeek's Merlin C2 trace: the agent checks in over one QUIC connection; the exchanges' start times tshark
    /// gives (payload after a second of silence) are the heartbeat's, and the verdict is high.
    @Test func merlinHeartbeatInOneQUICConnection() throws {
        let path = Self.shared + "/malware/zeek/quic__merlinc2_Zeek_example/merlinc2_Zeek_example.pcapng"
        guard FileManager.default.fileExists(atPath: path) else {
            print("ImplantTests: ../shared not present, Merlin check not run")
            return
        }
        guard let tshark = try Self.tshark(path, "udp.port == 443", ["frame.time_epoch", "udp.length"]) else { return }
        // Exchanges by the definition (1 s of silence either way), from tshark's times.
        var starts: [Double] = [], last = -1e18
        for row in tshark.split(separator: "\n") {
            let cols = row.split(separator: "\t")
            guard cols.count == 2, let t = Double(cols[0]), let length = Int(cols[1]), length > 8 else { continue }
            if t - last >= 1 { starts.append(t) }
            last = t
        }
        let run = try runSiphon(["scan", "-q", "--json", "-", path])
        let events = run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let beacon = try #require(events.first { ($0["alert"] as? [String: Any])?["rule"] as? String == "siphon.beaconing.in-flow" })
        let evidence = try #require(beacon["evidence"] as? [String: Any])
        let contacts = try #require(evidence["contacts"] as? Int)
        let median = try #require(evidence["median_interval_s"] as? Double)
        // Judged at the 6th exchange: the median of the first five intervals.
        #expect(contacts == 6 && starts.count >= 6)
        let first = zip(starts.dropFirst().prefix(5), starts.prefix(5)).map { $0 - $1 }.sorted()
        #expect(abs(median - first[2]) < 0.001, "median \(median), tshark \(first)")
        let verdict = try #require(events.first { $0["event_type"] as? String == "verdict" })
        #expect(verdict["severity"] as? String == "high")
        #expect(verdict["corroborated_by"] as? String == beacon["dest_ip"] as? String)
    }

    /// abuse.ch SSLBL feeds given to `--ioc`: the certificate's SHA-1 (of the DER tshark extracts, hashed here) and
    /// the ClientHello's JA3 (tshark's) of the tls-self-signed scenario make an ioc-match with the listing reason.
    @Test func sslblCertificateAndJA3Feeds() throws {
        let capture = Repo.path("captures/scenarios/tls-self-signed.pcap")
        guard let certificate = try Self.tshark(capture, "tls.handshake.certificate", ["tls.handshake.certificate"]),
              let ja3 = try Self.tshark(capture, "tls.handshake.type == 1", ["tls.handshake.ja3"])
        else { return }
        let der = try #require(certificate.split(separator: "\n").first.map { String($0.split(separator: ",")[0]).replacingOccurrences(of: ":", with: "") })
        let bytes = stride(from: 0, to: der.count, by: 2).compactMap { i -> UInt8? in
            let start = der.index(der.startIndex, offsetBy: i)
            return UInt8(der[start..<der.index(start, offsetBy: 2)], radix: 16)
        }
        #expect(bytes.count > 100)
        let sha1 = Insecure.SHA1.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let md5 = try #require(ja3.split(separator: "\n").first.map(String.init))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("siphon-sslbl-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let feeds = [
            ("sslblacklist.csv", "cert_sha1", sha1, "AsyncRAT C&C", """
            ################################################################
            # abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #
            ################################################################
            #
            # Listingdate,SHA1,Listingreason
            2024-01-02 09:25:00,fcf3979d565feb03e2f8a36f743379022a44a923,OrcusRAT C&C
            2025-03-14 09:00:00,\(sha1),AsyncRAT C&C

            """),
            ("ja3_fingerprints.csv", "ja3", md5, "Tofsee", """
            # abuse.ch SSLBL JA3 Fingerprint Blacklist
            # ja3_md5,Firstseen,Lastseen,Listingreason
            \(md5),2025-01-01 00:00:00,2025-03-01 00:00:00,Tofsee

            """),
        ]
        for (name, type, value, reason, text) in feeds {
            let path = dir.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let run = try runSiphon(["scan", "-q", "--json", "-", "--ioc", path, capture])
            let hits = run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
                .filter { ($0["alert"] as? [String: Any])?["category"] as? String == "ioc-match" }
            #expect(hits.count == 1, "\(name): \(run.err)")
            let evidence = try #require(hits.first?["evidence"] as? [String: Any])
            #expect(evidence["indicator"] as? String == value && evidence["indicator_type"] as? String == type, "\(name)")
            #expect(evidence["tag"] as? String == reason && evidence["source"] as? String == name)
            #expect((hits.first?["alert"] as? [String: Any])?["severity"] as? String == "high")
        }
    }

    /// The issue's implant (captures/scenarios/implant-rat: AsyncRAT's default certificate, a heartbeat, no DNS, port
    /// 6606): its alerts are the scenario's (ScenarioTests); here, the verdict: critical, 6 points at its server.
    @Test func implantScenarioIsCritical() throws {
        let run = try runSiphon(["scan", "-q", "--json", "-", Repo.path("captures/scenarios/implant-rat.pcap")])
        let verdict = try #require(run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .first { $0["event_type"] as? String == "verdict" })
        #expect(verdict["severity"] as? String == "critical" && verdict["corroborated_by"] as? String == "95.163.1.1")
        let endpoint = try #require((verdict["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["score"] as? Int == 6 && verdict["score"] as? Int == 6)
        #expect(Set(endpoint["signals"] as? [String] ?? []) == ["beaconing", "tls-anomaly:self-signed", "no-dns-endpoint", "non-standard-port"])
    }

    /// The labelled corpus (docs/corpus-labels.tsv over ../shared/captures): no benign capture above medium; the
    /// share of C2 captures at high or critical is printed (the issue's target, 85 %, is not met yet: see the table
    /// in docs/detections.md) and may not fall below what it is.
    @Test func labelledCorpus() throws {
        guard FileManager.default.fileExists(atPath: Self.shared + "/MANIFEST.tsv") else {
            print("ImplantTests: ../shared not present, corpus not scanned")
            return
        }
        let rows = try String(contentsOfFile: Repo.path("docs/corpus-labels.tsv"), encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count >= 2 && $0[0] != "path" }
        #expect(rows.count >= 70)
        let order = ["none", "info", "low", "medium", "high", "critical"]
        var c2 = 0, c2High = 0, benignOver: [String] = []
        for r in rows where r[1] == "c2" || r[1] == "benign" {
            // As the capture's own suite reads it: Suricata-verify tests run with `-k none` are read without
            // checksum validation (their files carry offloaded or rewritten checksums).
            let test = Self.shared + "/" + (r[0] as NSString).deletingLastPathComponent + "/test.yaml"
            let noChecksums = r[0].contains("suricata-verify")
                && ((try? String(contentsOfFile: test, encoding: .utf8))?.contains("- -k none") ?? false)
            let run = try runSiphon(["scan", "-q", "--json", "-"] + (noChecksums ? ["--checksums", "off"] : []) + [Self.shared + "/" + r[0]])
            let events = run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            let worst = events.filter { $0["event_type"] as? String == "verdict" }
                .map { order.firstIndex(of: $0["severity"] as? String ?? "none") ?? 0 }.max() ?? 0
            if r[1] == "c2" {
                c2 += 1
                if worst >= 4 { c2High += 1 }
            } else if worst > 3 {
                benignOver.append(r[0])
            }
        }
        print("ImplantTests: c2 captures at high or critical: \(c2High) of \(c2); benign above medium: \(benignOver.count)")
        #expect(benignOver.isEmpty, "\(benignOver)")
        #expect(c2 == 19 && c2High >= 13)
    }
}
