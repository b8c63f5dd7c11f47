import Foundation
import Siphon
import SiphonFleet
import Testing

/// JSON Lines into dictionaries.
func jsonLines(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
}

/// A fresh temporary folder, removed when the test process exits (see `TemporaryFiles`).
func temporaryFolder(_ name: String) throws -> String {
    let dir = temporaryPath("siphon-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A path in the temporary directory, removed (file or folder) when the test process exits.
func temporaryPath(_ name: String) -> String {
    let path = NSTemporaryDirectory() + name
    TemporaryFiles.shared.add(path)
    return path
}

/// What the tests wrote in the temporary directory, removed at the process's exit: the hostile captures alone are
/// ~30 MB a run, and a test that fails (or a suite that is interrupted) before its own cleanup left them behind.
/// A run that ends with failed tests was seen to leave a file behind (its exit may skip `atexit`): tests that can
/// also remove their files themselves.
final class TemporaryFiles: @unchecked Sendable {
    static let shared = TemporaryFiles()
    private let lock = NSLock()
    private var paths: [String] = []

    private init() {
        atexit { TemporaryFiles.shared.removeAll() }
    }

    func add(_ path: String) {
        lock.withLock { paths.append(path) }
    }

    func removeAll() {
        let all = lock.withLock { () -> [String] in defer { paths = [] }; return paths }
        for p in all { try? FileManager.default.removeItem(atPath: p) }
    }
}

/// Seconds since 1970 of an RFC 3339 time with microseconds.
func epoch(_ rfc3339: String) -> Double? {
    // ISO8601DateFormatter keeps milliseconds only: the fraction is read apart.
    let parts = rfc3339.dropLast().split(separator: ".")
    guard parts.count == 2, let fraction = Double("0." + parts[1]) else { return nil }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: parts[0] + "Z").map { $0.timeIntervalSince1970 + fraction }
}

/// Issue 15: what produced a report, and how much of the capture it saw.
@Suite("Provenance")
struct ProvenanceTests {
    /// The first event is the provenance: the capture's SHA-256 and size (sha256sum, stat), its first and last
    /// packets and packet count (tshark), the rule pack's SHA-256 (sha256sum of the file given), the IOC feed's,
    /// the options, and who ran it.
    @Test func provenanceComesFirstAndNamesWhatProducedTheReport() throws {
        let capture = Repo.path("captures/sample/backdoor-phone.pcap")
        let rules = Repo.path("Sources/SiphonDetect/rules/siphon.yaml")
        let ioc = Repo.path("captures/scenarios/ioc-match.ioc.txt")
        let r = try runSiphon(["scan", "-q", "--json", "-", "--rules", rules, "--ioc", ioc, "--filter", "ip or ip6", capture])
        #expect(r.status == 0, "\(r.err)")
        let events = jsonLines(r.out)
        let first = try #require(events.first)
        #expect(first["event_type"] as? String == "provenance")
        #expect(events.dropFirst().allSatisfy { $0["event_type"] as? String != "provenance" })
        let p = try #require(first["provenance"] as? [String: Any])
        let input = try #require(p["input"] as? [String: Any])
        let sum = shell("sha256sum '\(capture)'").out.split(separator: " ").first.map(String.init)
        #expect(input["sha256"] as? String == sum)
        let size = try FileManager.default.attributesOfItem(atPath: capture)[.size] as? Int
        #expect(input["size"] as? Int == size)
        #expect(input["format"] as? String == "pcap")
        let times = shell("(tshark -r '\(capture)' -T fields -e frame.time_epoch) 2>/dev/null").out
            .split(separator: "\n").compactMap { Double($0) }
        #expect(input["packets"] as? Int == times.count)
        #expect(abs((epoch(input["first_packet"] as? String ?? "") ?? 0) - (times.first ?? -1)) < 1e-6)
        // The span: the first packet's time, the latest time (packets may come slightly out of time order).
        #expect(abs((epoch(input["last_packet"] as? String ?? "") ?? 0) - (times.max() ?? -1)) < 1e-6)
        let data = try #require(p["data"] as? [[String: Any]])
        let rulesEntry = try #require(data.first { $0["role"] as? String == "rules" })
        #expect(rulesEntry["sha256"] as? String == shell("sha256sum '\(rules)'").out.split(separator: " ").first.map(String.init))
        let iocEntry = try #require(data.first { $0["role"] as? String == "ioc" })
        #expect(iocEntry["sha256"] as? String == shell("sha256sum '\(ioc)'").out.split(separator: " ").first.map(String.init))
        let options = try #require(p["options"] as? [String: String])
        #expect(options["filter"] == "ip or ip6" && options["overlap-policy"] == "first")
        let tool = try #require(p["tool"] as? [String: Any])
        #expect(tool["version"] as? String == "0.1.0" && (tool["build_id"] as? String)?.count == 40)
        let analysis = try #require(p["analysis"] as? [String: Any])
        #expect(analysis["host"] as? String == ProcessInfo.processInfo.hostName || analysis["host"] as? String != nil)
        let coverage = try #require(p["coverage"] as? [String: Any])
        #expect(coverage["complete"] as? Bool == true && (coverage["incomplete"] as? [String])?.isEmpty == true)
        // The terminal says the same.
        let terminal = try runSiphon(["scan", capture])
        #expect(terminal.err.contains("sha256: \(sum ?? "?")") && terminal.err.contains("coverage: complete"))
    }

    /// A capture with a segment taken out (editcap -d) and one cut to 80 bytes a packet (editcap -s): the coverage
    /// and the verdicts say what is missing, with the figures the edits imply (the segment's 22 bytes; the packets
    /// tshark finds cut).
    @Test func incompleteCapturesSaySo() throws {
        let dir = try temporaryFolder("coverage")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = Repo.path("captures/evidence/split-segments.pcap")
        let holed = dir + "/holed.pcap", cut = dir + "/cut.pcap"
        // Frame 15 is the 22-byte segment holding the second IMEI (scripts/gen_evidence.py).
        #expect(shell("editcap '\(source)' '\(holed)' 15").status == 0)
        #expect(shell("editcap -s 80 '\(source)' '\(cut)'").status == 0)
        let holedEvents = jsonLines(try runSiphon(["scan", "-q", "--json", "-", holed]).out)
        let c1 = try #require((holedEvents.first?["provenance"] as? [String: Any])?["coverage"] as? [String: Any])
        #expect(c1["complete"] as? Bool == false && c1["gap_bytes"] as? Int == 22)
        #expect((c1["incomplete"] as? [String])?.contains { $0.hasPrefix("22 bytes missing in TCP gaps") } == true, "\(c1)")
        let verdict = try #require(holedEvents.first { $0["event_type"] as? String == "verdict" })
        #expect((verdict["incomplete"] as? String)?.contains("22 bytes missing in TCP gaps") == true)
        let cutEvents = jsonLines(try runSiphon(["scan", "-q", "--json", "-", cut]).out)
        let c2 = try #require((cutEvents.first?["provenance"] as? [String: Any])?["coverage"] as? [String: Any])
        let cutCount = shell("(tshark -r '\(cut)' -Y 'frame.len > frame.cap_len' -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'")
            .out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(c2["truncated_by_snaplen"] as? Int == Int(cutCount) && (Int(cutCount) ?? 0) > 0)
        #expect((c2["incomplete"] as? [String])?.contains("\(cutCount) packets cut by the snapshot length") == true, "\(c2)")
        // Checksums not verified: a note, not a loss.
        let off = jsonLines(try runSiphon(["scan", "-q", "--json", "-", "--checksums", "off", source]).out)
        let c3 = try #require((off.first?["provenance"] as? [String: Any])?["coverage"] as? [String: Any])
        #expect(c3["complete"] as? Bool == true && (c3["notes"] as? [String]) == ["checksums not verified (--checksums off)"])
    }
}

/// Issue 15: the same inputs give the same bytes.
@Suite("Determinism")
struct DeterminismTests {
    /// Two scans of the same captures (each process hashes with its own random seed) write byte-identical JSON and
    /// HTML with --reproducible, and without it differ only in the provenance's `analysis` object.
    @Test func twoRunsWriteIdenticalReports() throws {
        let dir = try temporaryFolder("determinism")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let captures = [Repo.path("captures/sample/backdoor-phone.pcap"), Repo.path("captures/scenarios/beaconing.pcap"),
                        Repo.path("captures/scenarios/dns-tunnel.pcap")]
        for run in ["a", "b"] {
            let r = try runSiphon(["scan", "-q", "--reproducible", "--stream-hashes", "--json", "\(dir)/\(run).jsonl", "--html", "\(dir)/\(run).html"] + captures)
            #expect(r.status == 0, "\(r.err)")
            let plain = try runSiphon(["scan", "-q", "--json", "\(dir)/\(run)-plain.jsonl"] + captures)
            #expect(plain.status == 0)
        }
        #expect(shell("cmp '\(dir)/a.jsonl' '\(dir)/b.jsonl'").status == 0)
        #expect(shell("cmp '\(dir)/a.html' '\(dir)/b.html'").status == 0)
        let a = try String(contentsOfFile: dir + "/a.jsonl", encoding: .utf8)
        #expect(a.split(separator: "\n").count > 100 && !a.contains("\"analysis\""))
        // Without --reproducible: the analysis objects differ (their times), nothing else.
        let stripped = try ["a", "b"].map { run in
            try String(contentsOfFile: "\(dir)/\(run)-plain.jsonl", encoding: .utf8)
                .replacingOccurrences(of: #","analysis":\{[^}]*\}"#, with: "", options: .regularExpression)
        }
        #expect(stripped[0] == stripped[1])
        #expect(stripped[0].replacingOccurrences(of: #""stream-hashes":"false""#, with: "", options: .regularExpression)
            .split(separator: "\n").count == a.split(separator: "\n").count)
    }
}

/// Issue 15: the packets behind a finding, for another lab.
@Suite("Extraction")
struct ExtractTests {
    /// Each identifier leak of the split-segment capture, extracted: the file holds its flow, the packets it rests
    /// on carry a comment naming the alert and their original frame numbers (as tshark reads them), and scanning
    /// the file raises the same leak.
    @Test func extractedAlertsRescanToTheSameAlert() throws {
        let dir = try temporaryFolder("extract")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.path("captures/evidence/split-segments.pcap")
        let scan = jsonLines(try runSiphon(["scan", "-q", "--json", "-", capture]).out)
        let leaks = scan.filter { ($0["alert"] as? [String: Any])?["category"] as? String == "identifier-leak" }
        #expect(leaks.count == 3)
        for leak in leaks {
            let id = try #require(leak["alert_id"] as? Int)
            let out = "\(dir)/alert-\(id).pcapng"
            let r = try runSiphon(["extract", capture, "--alert", "\(id)", "-o", out])
            #expect(r.status == 0, "\(r.err)")
            // Its packets: the flow's, as tshark counts them in the original.
            let flowPackets = (leak["dest_ip"] as? String).map {
                shell("(tshark -r '\(capture)' -Y 'ip.addr == \($0)' -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'").out
            }?.trimmingCharacters(in: .whitespacesAndNewlines)
            let written = shell("(tshark -r '\(out)' -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'").out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(written == flowPackets)
            // The comments: the alert on each frame it rests on, with the original number.
            let frames = ((leak["frames"] as? [[String: Any]]) ?? []).compactMap { $0["frame"] as? Int }
            let commented = shell("(tshark -r '\(out)' -Y 'frame.comment contains \"siphon alert \(id): identifier-leak\"' -T fields -e frame.comment) 2>/dev/null")
                .out.split(separator: "\n").filter { $0.hasPrefix("original frame") }
            #expect(commented.compactMap { Int($0.dropFirst("original frame ".count).prefix { $0.isNumber }) } == frames, "\(commented)")
            let again = jsonLines(try runSiphon(["scan", "-q", "--json", "-", out]).out)
            let value = (leak["evidence"] as? [String: Any])?["value"] as? String
            #expect(again.contains {
                ($0["alert"] as? [String: Any])?["category"] as? String == "identifier-leak"
                    && ($0["evidence"] as? [String: Any])?["value"] as? String == value && $0["dest_ip"] as? String == leak["dest_ip"] as? String
            })
        }
        // The file's own comment names the capture and its SHA-256.
        let sum = shell("sha256sum '\(capture)'").out.prefix(64)
        #expect(shell("capinfos '\(dir)/alert-\(leaks[0]["alert_id"] as? Int ?? 0).pcapng'").out.contains(String(sum)))
    }

    /// The frame log keeps a window of frames in memory and the rest in a temporary file: against a dictionary
    /// model, frames recorded in order with gaps and with late updates of earlier frames (fragments whose datagram
    /// completed later) read back the same by `flow(of:)` and `forEachFrame`, for windows of 1 to 64 frames and the
    /// default one, and with no temporary file to be had (kept in memory, the reason said); and a whole scan's
    /// frames per flow are the same with a 3-frame window as with the default.
    @Test func frameLogSpillsToAFileAndReadsBack() throws {
        var generator = SystemRandomNumberGenerator()
        let cases: [(Int, String?)] = [(1, nil), (2, nil), (7, nil), (64, nil), (1 << 20, nil), (7, "/nonexistent/siphon-test")]
        for (window, directory) in cases {
            let log = FrameFlowLog(windowFrames: window, temporaryDirectory: directory)
            var model: [UInt64: UInt64] = [:]
            var frame: UInt64 = 0
            for _ in 0..<2_000 {
                frame += UInt64.random(in: 1...3, using: &generator)  // frames that go to no flow in between
                let flow = UInt64.random(in: 1...50, using: &generator)
                log.record(frame: frame, flow: flow)
                model[frame] = flow
                if Bool.random(using: &generator), frame > 10 {
                    let earlier = UInt64.random(in: 1..<frame, using: &generator)
                    let late = UInt64.random(in: 1...50, using: &generator)
                    log.record(frame: earlier, flow: late)
                    model[earlier] = late
                }
            }
            #expect((log.spillError != nil) == (directory != nil), "window \(window)")
            #expect((log.spilledBytes > 0) == (window < 2_000 && directory == nil), "window \(window)")
            #expect(log.frameCount == Int(frame))
            for f in 0...(frame + 2) { #expect(log.flow(of: f) == (model[f] ?? 0), "window \(window) frame \(f)") }
            var seen: [(UInt64, UInt64)] = []
            log.forEachFrame { seen.append(($0, $1)) }
            #expect(seen.map(\.0) == model.keys.sorted() && seen.allSatisfy { model[$0.0] == $0.1 }, "window \(window)")
        }
        let capture = Repo.path("captures/evidence/split-segments.pcap")
        let small = FrameFlowLog(windowFrames: 3), whole = FrameFlowLog()
        let a = CaptureScanner.scan(path: capture, output: nil, frameLog: small)
        _ = CaptureScanner.scan(path: capture, output: nil, frameLog: whole)
        let flows = Set(a.alerts.map(\.flow.id))
        #expect(!flows.isEmpty && small.spilledBytes > 0 && whole.spilledBytes == 0)
        #expect(Evidence.framesByFlow(flows, log: small) == Evidence.framesByFlow(flows, log: whole))
    }

    /// Evidence files written in several passes over the capture (two files open at a time) are the files one pass
    /// writes, byte for byte.
    @Test func evidenceIsTheSameInOneOrSeveralPasses() throws {
        let capture = Repo.path("captures/evidence/split-segments.pcap")
        let log = FrameFlowLog()
        let result = CaptureScanner.scan(path: capture, output: nil, frameLog: log)
        let dir = try temporaryFolder("passes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var written: [[Int]] = []
        for (folder, limit) in [("one", nil), ("two", 2)] as [(String, Int?)] {
            try FileManager.default.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true)
            let files = Evidence.alertFiles(
                result: result, log: log, capture: capture, sha256: nil, severity: .info, folder: dir + "/" + folder, name: { "alert-\($0.id).pcapng" })
            #expect(files.count == result.alerts.count && files.count >= 5)
            written.append(try Evidence.write(files, from: [capture], openFiles: limit))
        }
        #expect(written[0] == written[1] && written[0].allSatisfy { $0 > 0 })
        for a in result.alerts {
            let one = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/one/alert-\(a.id).pcapng"))
            #expect(one == (try Data(contentsOf: URL(fileURLWithPath: "\(dir)/two/alert-\(a.id).pcapng"))))
        }
    }

    /// A capture cut inside a record: the alerts found before the damage still get their packets (tshark reads the
    /// same packets of the flow before the cut), in `extract` and in a batch case (the capture stays `damaged`,
    /// with its results).
    @Test func damagedCapturesStillGiveTheirEvidence() throws {
        let dir = try temporaryFolder("extract-damaged")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/evidence/split-segments.pcap")))
        let cut = dir + "/in/cut.pcap"
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: cut))
        let r = try runSiphon(["extract", cut, "--alert", "1", "-o", dir + "/a.pcapng"])
        #expect(r.status == 0, "\(r.err)")
        let written = shell("(tshark -r '\(dir)/a.pcapng' -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'").out.trimmingCharacters(in: .whitespacesAndNewlines)
        let expected = shell("(tshark -r '\(cut)' -Y 'ip.addr == 120.77.166.21' -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'").out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(written == expected && written != "0")
        let b = try runSiphon(["batch", dir + "/in", "--case", dir + "/case", "-q"])
        #expect(b.status == 2)  // a damaged capture
        let record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/case/fleet.json"))) as? [String: Any])
        let capture = try #require((record["captures"] as? [[String: Any]])?.first)
        #expect(capture["status"] as? String == "damaged" && (capture["alerts"] as? Int ?? 0) >= 3)
        #expect(shell("find '\(dir)/case/captures' -name 'alert-*-identifier-leak.pcapng' | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines) == "3")
        #expect(try runSiphon(["verify", dir + "/case"]).status == 0)
    }

    /// --endpoint and --device-id take every flow of the address or device: tshark counts the same packets in the
    /// original; --flow with --payload writes each direction's bytes as tcpflow writes them.
    @Test func endpointDeviceFlowAndPayload() throws {
        let dir = try temporaryFolder("extract-more")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let capture = Repo.path("captures/sample/backdoor-phone.pcap")
        func count(_ file: String, _ filter: String = "") -> String {
            shell("(tshark -r '\(file)' \(filter.isEmpty ? "" : "-Y '\(filter)'") -T fields -e frame.number) 2>/dev/null | grep -c '^[0-9]'")
                .out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try runSiphon(["extract", capture, "--endpoint", "120.77.166.21", "-o", dir + "/e.pcapng"]).status == 0)
        #expect(count(dir + "/e.pcapng") == count(capture, "ip.addr == 120.77.166.21 && (tcp || udp)"))
        let scan = jsonLines(try runSiphon(["scan", "-q", "--json", "-", capture]).out)
        let device = try #require(scan.first { $0["event_type"] as? String == "verdict" }?["device_id"] as? String)
        #expect(try runSiphon(["extract", capture, "--device-id", device, "-o", dir + "/d.pcapng"]).status == 0)
        #expect(count(dir + "/d.pcapng") == count(capture, "eth.addr == \(device) && (tcp || udp)"))
        // The largest TCP flow's payload, and tcpflow's files for it.
        let flows = scan.filter { $0["event_type"] as? String == "flow" && $0["proto"] as? String == "TCP" }
        let big = try #require(flows.max { (($0["client"] as? [String: Any])?["payload_bytes"] as? Int ?? 0) < (($1["client"] as? [String: Any])?["payload_bytes"] as? Int ?? 0) })
        let id = try #require(big["flow_id"] as? Int)
        #expect(try runSiphon(["extract", capture, "--flow", "\(id)", "--payload", "-o", dir + "/p.bin"]).status == 0)
        #expect(shell("cd '\(dir)' && mkdir tf && tcpflow -r '\(capture)' -o tf >/dev/null").status == 0)
        func pad(_ a: String) -> String { a.split(separator: ".").map { String(repeating: "0", count: 3 - $0.count) + $0 }.joined(separator: ".") }
        func port(_ p: Any?) -> String { let s = "\(p as? Int ?? 0)"; return String(repeating: "0", count: 5 - s.count) + s }
        let s = pad(big["src_ip"] as? String ?? ""), d = pad(big["dest_ip"] as? String ?? "")
        let request = "\(dir)/tf/\(s).\(port(big["src_port"]))-\(d).\(port(big["dest_port"]))"
        let response = "\(dir)/tf/\(d).\(port(big["dest_port"]))-\(s).\(port(big["src_port"]))"
        #expect(shell("cmp '\(dir)/p.bin' '\(request)'").status == 0)
        #expect(shell("cmp '\(dir)/p.bin.response' '\(response)'").status == 0)
        #expect((try? Data(contentsOf: URL(fileURLWithPath: dir + "/p.bin")))?.count ?? 0 > 1000)
    }
}

/// Issue 15: a case folder that shows any change to it.
@Suite("Case files")
struct CaseFileTests {
    /// A signed case of a scan: intact, its signature checks with OpenSSL too; one byte changed, a file added, a
    /// file removed, the manifest edited, the wrong key: each fails `siphon verify`, naming what changed.
    @Test func tamperedCasesFailVerifyNamingTheChange() throws {
        let dir = try temporaryFolder("case")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = dir + "/lab.pem", other = dir + "/other.pem", folder = dir + "/case"
        #expect(try runSiphon(["keygen", "-o", key]).status == 0)
        #expect(try runSiphon(["keygen", "-o", other]).status == 0)
        #expect(try runSiphon(["keygen", "-o", key]).status == 2)  // never overwrites a key
        let capture = Repo.path("captures/evidence/split-segments.pcap")
        let scan = try runSiphon(["scan", "-q", capture, Repo.path("captures/scenarios/leak-imei-http-post.pcap"), "--case", folder, "--sign", key, "--case-severity", "high"])
        #expect(scan.status == 0, "\(scan.err)")
        // An evidence file per high alert: the three leaks of one capture, the one of the other.
        let evidence = shell("cd '\(folder)' && find evidence -name '*.pcapng' | sort").out.split(separator: "\n").map(String.init)
        #expect(evidence.count == 4 && evidence.allSatisfy { $0.contains("identifier-leak") }, "\(evidence)")
        let intact = try runSiphon(["verify", folder, "--key", key + ".pub"])
        #expect(intact.status == 0 && intact.out.contains("signature: valid") && intact.out.contains("intact"), "\(intact.out)")
        #expect(shell("openssl pkeyutl -verify -pubin -inkey '\(key).pub' -rawin -in '\(folder)/manifest.json' -sigfile '\(folder)/manifest.sig'").out.contains("Signature Verified Successfully"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/manifest.json"))) as? [String: Any])
        let listed = ((manifest["files"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
        #expect(Set(listed) == Set(["events.jsonl", "report.html", "summary.txt"] + evidence))
        for entry in (manifest["files"] as? [[String: Any]]) ?? [] {
            let path = folder + "/" + (entry["path"] as? String ?? "")
            #expect(entry["sha256"] as? String == shell("sha256sum '\(path)'").out.split(separator: " ").first.map(String.init))
        }

        // One byte of one evidence file.
        let target = folder + "/" + evidence[0]
        let original = try Data(contentsOf: URL(fileURLWithPath: target))
        var flipped = original
        flipped[flipped.count / 2] ^= 0x01
        try flipped.write(to: URL(fileURLWithPath: target))
        var v = try runSiphon(["verify", folder, "--key", key + ".pub"])
        #expect(v.status == 1 && v.out.contains("changed: \(evidence[0])") && v.out.contains("signature: valid"), "\(v.out)")
        try original.write(to: URL(fileURLWithPath: target))
        // A file added.
        try "x".write(toFile: folder + "/evidence/note.txt", atomically: true, encoding: .utf8)
        v = try runSiphon(["verify", folder])
        #expect(v.status == 1 && v.out.contains("added: evidence/note.txt"), "\(v.out)")
        try FileManager.default.removeItem(atPath: folder + "/evidence/note.txt")
        // A file removed.
        let summary = try Data(contentsOf: URL(fileURLWithPath: folder + "/summary.txt"))
        try FileManager.default.removeItem(atPath: folder + "/summary.txt")
        v = try runSiphon(["verify", folder])
        #expect(v.status == 1 && v.out.contains("missing: summary.txt"), "\(v.out)")
        try summary.write(to: URL(fileURLWithPath: folder + "/summary.txt"))
        #expect(try runSiphon(["verify", folder, "--key", key + ".pub"]).status == 0)
        // The manifest edited to match a changed file: the signature no longer holds.
        let text = try String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)
        try text.replacingOccurrences(of: "\"evidence_severity\" : \"high\"", with: "\"evidence_severity\" : \"low\"")
            .write(toFile: folder + "/manifest.json", atomically: true, encoding: .utf8)
        v = try runSiphon(["verify", folder, "--key", key + ".pub"])
        #expect(v.status == 1 && v.out.contains("signature: INVALID"), "\(v.out)")
        try text.write(toFile: folder + "/manifest.json", atomically: true, encoding: .utf8)
        // Another lab's key.
        v = try runSiphon(["verify", folder, "--key", other + ".pub"])
        #expect(v.status == 1 && v.out.contains("signature: INVALID"), "\(v.out)")
        // A case folder is never written over.
        #expect(try runSiphon(["scan", "-q", capture, "--case", folder]).status == 2)
    }

    /// A batch as a case: every capture's alerts at or above the severity have their evidence file in its folder,
    /// the manifest covers the whole folder, and a rerun (every capture reused) seals it again, intact.
    @Test func batchCaseHoldsEveryAlertsEvidence() throws {
        let dir = try temporaryFolder("batch-case")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/case"
        let inputs = dir + "/in"
        try FileManager.default.createDirectory(atPath: inputs, withIntermediateDirectories: true)
        for name in ["leak-imei-http-post", "beaconing", "dns-tunnel", "benign-dns"] {
            try FileManager.default.copyItem(atPath: Repo.path("captures/scenarios/\(name).pcap"), toPath: "\(inputs)/\(name).pcap")
        }
        #expect(try runSiphon(["batch", inputs, "--case", folder, "-q", "--case-severity", "medium"]).status == 0)
        var expected = 0
        for slot in try FileManager.default.contentsOfDirectory(atPath: folder + "/captures") {
            let events = jsonLines(try String(contentsOfFile: "\(folder)/captures/\(slot)/events.jsonl", encoding: .utf8))
            #expect(events.first?["event_type"] as? String == "provenance")
            let medium = events.filter { ["medium", "high", "critical"].contains(($0["alert"] as? [String: Any])?["severity"] as? String ?? "") }
            expected += medium.count
            let files = (try? FileManager.default.contentsOfDirectory(atPath: "\(folder)/captures/\(slot)/evidence")) ?? []
            #expect(Set(files) == Set(medium.map { e in
                let id = e["alert_id"] as? Int ?? 0
                return "alert-" + String(format: "%04d", id) + "-" + (((e["alert"] as? [String: Any])?["category"] as? String) ?? "") + ".pcapng"
            }))
        }
        #expect(expected >= 3)
        #expect(try runSiphon(["verify", folder]).status == 0)
        let again = try runSiphon(["batch", inputs, "--case", folder, "--progress", "lines", "--case-severity", "medium"])
        #expect(again.status == 0 && again.err.contains("4 reused"), "\(again.err)")
        #expect(try runSiphon(["verify", folder]).out.contains("intact"))
    }
}
