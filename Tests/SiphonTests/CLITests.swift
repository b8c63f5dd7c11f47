import Foundation
import Siphon
import Testing

/// Runs the built `siphon` executable: exit status, standard output, standard error.
func runSiphon(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
    try runProgram(Repo.siphonExecutable, arguments, stdin: stdin)
}

/// Runs a program: exit status, standard output, standard error.
func runProgram(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    if let stdin { process.standardInput = FileHandle(forReadingAtPath: stdin) }
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite(.serialized) struct CLITests {
    @Test func scanWritesFlowAndStatsEvents() throws {
        let capture = Repo.path("captures/diff/eth-zeek-http-get.pcap")
        let r = try runSiphon(["scan", capture, "--json", "-"])
        #expect(r.status == 0)
        let lines = r.out.split(separator: "\n")
        #expect(lines.last?.contains("\"event_type\":\"stats\"") == true)
        // Flow-scoped events carry the Community ID; the verdict (the one host that initiated, by its MAC) does not.
        let verdicts = lines.filter { $0.contains("\"event_type\":\"verdict\"") }
        #expect(verdicts.count == 1 && verdicts.allSatisfy { $0.contains("\"chosen\":\"inferred\"") })
        #expect(lines.first?.contains("\"event_type\":\"provenance\"") == true)
        #expect(lines.dropFirst().dropLast().filter { !$0.contains("\"event_type\":\"verdict\"") }.allSatisfy { $0.contains("\"community_id\":\"1:") })
        #expect(lines.filter { $0.contains("\"event_type\":\"flow\"") }.count == 1)
        #expect(lines.filter { $0.contains("\"event_type\":\"http\"") }.count == 1)
        #expect(r.err.contains("packets") && r.err.contains("top talkers"))
    }

    /// Standard input gives the same events as the file, for pcap (through libpcap) and pcapng (native).
    @Test(arguments: ["captures/diff/eth-zeek-wikipedia.pcap", "captures/diff/ng-be-test202.pcapng"])
    func standardInputEqualsFile(_ relative: String) throws {
        let path = Repo.path(relative)
        let fromFile = try runSiphon(["scan", "-q", path, "--json", "-"])
        let fromStdin = try runSiphon(["scan", "-q", "-", "--json", "-"], stdin: path)
        #expect(fromFile.status == 0 && fromStdin.status == 0)
        let normalize = { (s: String) in s.replacingOccurrences(of: "\"capture\":\"\(path)\"", with: "\"capture\":\"-\"") }
        // Past the provenance (which says where the bytes came from, and hashes only the file): the same events.
        let rest = { (s: String) in s.split(separator: "\n").dropFirst().joined(separator: "\n") }
        #expect(rest(normalize(fromFile.out)) == rest(fromStdin.out) && !fromStdin.out.isEmpty)
        #expect(fromStdin.out.prefix { $0 != "\n" }.contains("\"kind\":\"stdin\"") && fromFile.out.prefix { $0 != "\n" }.contains("\"sha256\""))
    }

    /// The CLI reads ahead on a second thread by default; `--no-read-ahead` reads in one. Same events, same
    /// summary, same exit status, on a whole capture and on a damaged one (its error at the same offset).
    @Test func readAheadChangesNothing() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/diff/eth-zeek-wikipedia.pcap")))
        let cut = temporaryPath("siphon-cli-cut-ra.pcap")
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: cut))
        defer { try? FileManager.default.removeItem(atPath: cut) }
        for path in [Repo.path("captures/sample/backdoor-phone.pcap"), cut] {
            let ahead = try runSiphon(["scan", path, "--json", "-", "--reproducible"])
            let one = try runSiphon(["scan", path, "--json", "-", "--no-read-ahead", "--reproducible"])
            #expect(ahead.status == one.status && ahead.out == one.out && ahead.err == one.err, "\(path)")
            #expect(ahead.out.contains("\"event_type\":\"stats\""))
        }
    }

    @Test func missingFileExitsTwoNamingIt() throws {
        let r = try runSiphon(["scan", "/nonexistent/capture.pcap"])
        #expect(r.status == 2 && r.err.contains("/nonexistent/capture.pcap"))
    }

    @Test func badUsageExitsTwo() throws {
        #expect(try runSiphon(["scan", "--tcp-timeout", "-5", "x.pcap"]).status == 2)
        #expect(try runSiphon(["scan"]).status == 2)
        #expect(try runSiphon(["scan", "--bogus", "x.pcap"]).status == 2)
    }

    @Test func notACaptureExitsTwo() throws {
        let r = try runSiphon(["scan", Repo.path("README.md")])
        #expect(r.status == 2 && r.err.contains("README.md"))
    }

    @Test func damagedCaptureExitsTwoAfterItsEvents() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/diff/eth-zeek-wikipedia.pcap")))
        let path = temporaryPath("siphon-cli-cut.pcap")
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try runSiphon(["scan", path, "--json", "-"])
        #expect(r.status == 2)
        #expect(r.out.contains("\"event_type\":\"flow\"") && r.out.contains("\"error_offset\""))
        #expect(r.err.contains(path) && r.err.contains("offset"))
    }

    @Test func extractStreamsHashesAndAnomalies() throws {
        let dir = temporaryPath("siphon-cli-extract")
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runSiphon(["scan", "-q", "--stream-hashes", "--extract-streams", dir, "--json", "-",
                               Repo.path("captures/reassembly/sv-tcp-overlap.pcap")])
        #expect(r.status == 0)
        // The client sent GOOD, then EVIL for the same bytes: the first copy is kept, the conflict reported.
        let file = dir + "/001.001.001.001.12345-002.002.002.002.08080--6"  // 802.1Q tag 6: tcpflow adds --6
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "GOOD")
        #expect(r.out.contains("\"event\":\"overlap-different-data\"") && r.out.contains("\"discarded\":\"4556494c\""))
        // printf GOOD | sha256sum
        #expect(r.out.contains("\"sha256\":\"278f14e96cc67489e5c0d6cebec8a2718fb158ec656fd41fed7ecd031cd472b2\""))
        #expect(try runSiphon(["scan", "--overlap-policy", "sideways", "x.pcap"]).status == 2)
    }

    @Test func filterOption() throws {
        let r = try runSiphon(["scan", "-q", "-f", "udp port 53", Repo.path("captures/diff/eth-zeek-wikipedia.pcap"), "--json", "-"])
        #expect(r.status == 0)
        let flows = r.out.split(separator: "\n").filter { $0.contains("\"event_type\":\"flow\"") }
        #expect(!flows.isEmpty && flows.allSatisfy { $0.contains("\"dest_port\":53") })
        #expect(try runSiphon(["scan", "-q", "-f", "tcp port", Repo.path("captures/diff/eth-zeek-wikipedia.pcap")]).status == 2)
    }

    /// `--fail-on`: exit 1 exactly when an alert at or above the level was written, 0 otherwise.
    @Test func failOnSeverity() throws {
        let levels = ["info", "low", "medium", "high", "critical"]
        let sample = Repo.path("captures/sample/backdoor-phone.pcap")
        for (rank, level) in levels.enumerated() {
            let r = try runSiphon(["scan", "-q", "--fail-on", level, "--json", "-", sample])
            let severities = r.out.split(separator: "\n").compactMap { line -> Int? in
                let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return ((event?["alert"] as? [String: Any])?["severity"] as? String).flatMap { levels.firstIndex(of: $0) }
            }
            #expect(!severities.isEmpty)
            #expect(r.status == (severities.contains { $0 >= rank } ? 1 : 0), "--fail-on \(level)")
        }
        #expect(try runSiphon(["scan", "-q", "--fail-on", "loud", sample]).status == 2)
    }

    /// The terminal summary fits an 80-column terminal (the first line names the capture, whatever its path) and
    /// lists the alerts the JSON output has.
    @Test func summaryFitsEightyColumns() throws {
        let r = try runSiphon(["scan", "--json", "-", Repo.path("captures/sample/backdoor-phone.pcap")])
        let lines = r.err.split(separator: "\n")
        #expect(lines.count > 10)
        for line in lines.dropFirst() { #expect(line.count <= 80, "\(line)") }
        let categories = Set(r.out.split(separator: "\n").compactMap { line -> String? in
            let event = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (event?["alert"] as? [String: Any])?["category"] as? String
        })
        #expect(!categories.isEmpty)
        for c in categories { #expect(r.err.contains(" \(c) "), "\(c)") }
    }
}
