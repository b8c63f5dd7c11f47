import Foundation
import GRDB
import Siphon
import SiphonFleet
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A generated fleet (scripts/gen_fleet.py: 40 captures of 5 models, one gzip-compressed, plus a truncated, a
/// corrupt and a text file) and one uninterrupted batch over it, made once for the suite.
final class FleetFixture: @unchecked Sendable {
    let root: String
    let fleet: String
    let manifest: [String: Any]
    /// The uninterrupted batch (with --devices) and how it ended.
    let reference: String
    let status: Int32
    let err: String

    static let shared = FleetFixture()

    private init() {
        root = temporaryPath("siphon-fleet-\(getpid())")
        fleet = root + "/fleet"
        reference = root + "/reference"
        try? FileManager.default.removeItem(atPath: root)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let gen = shell("python3 '\(Repo.path("scripts/gen_fleet.py"))' '\(fleet)'")
        precondition(gen.status == 0, "gen_fleet.py failed: \(gen.out)")
        manifest = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fleet + "/MANIFEST.json")))) as? [String: Any] ?? [:]
        let r = try? runSiphon(["batch", fleet, "--out", reference, "--devices", fleet + "/devices.csv", "-j", "2", "--reproducible"])
        status = r?.status ?? -1
        err = r?.err ?? ""
    }

    func report(_ dir: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/fleet.json"))) as? [String: Any])
    }

    /// Starts a one-job batch of the fleet into `out` (emptied first) and returns once `folders` capture folders are
    /// there (or it ended), with its standard error.
    func startBatch(into out: String, waitingFor folders: Int) throws -> (Process, Pipe) {
        try? FileManager.default.removeItem(atPath: out)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Repo.siphonExecutable)
        p.arguments = ["batch", fleet, "--out", out, "--devices", fleet + "/devices.csv", "-j", "1", "-q", "--reproducible"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if ((try? FileManager.default.contentsOfDirectory(atPath: out + "/captures")) ?? []).count >= folders || !p.isRunning { break }
            usleep(1000)
        }
        return (p, err)
    }
}

@Suite(.serialized) struct FleetTests {
    let f = FleetFixture.shared

    @Test func fleetReportFindsTheSharedEndpointTheClustersAndTheBadFiles() throws {
        // Exit 2: one capture damaged, one unreadable; the batch still scanned every other one.
        #expect(f.status == 2, "\(f.err)")
        let report = try f.report(f.reference)
        let totals = try #require(report["totals"] as? [String: Any])
        let n = f.manifest["per_model"] as! Int
        #expect(totals["files"] as? Int == f.manifest["files"] as? Int)
        #expect(totals["scanned"] as? Int == 5 * n)
        #expect(totals["damaged"] as? Int == 1 && totals["unreadable"] as? Int == 1 && totals["skipped"] as? Int == 3)
        // Every device: the 5 x N of devices.csv and the truncated capture's.
        #expect(totals["devices"] as? Int == 5 * n + 1)

        // Bad files, each with its error.
        let captures = try #require(report["captures"] as? [[String: Any]])
        func entry(_ suffix: String) -> [String: Any]? { captures.first { ($0["capture"] as? String)?.hasSuffix("/" + suffix) == true } }
        let damaged = try #require(entry(f.manifest["damaged"] as! String))
        #expect(damaged["status"] as? String == "damaged")
        #expect(damaged["error_offset"] as? Int == f.manifest["damaged_offset"] as? Int)
        #expect((damaged["error"] as? String)?.contains("truncated") == true)
        let unreadable = try #require(entry(f.manifest["unreadable"] as! String))
        #expect(unreadable["status"] as? String == "unreadable")
        #expect((unreadable["error"] as? String)?.contains("not a readable capture") == true)
        // Their content hashes cover the whole file, though the reader stopped early (sha256sum's).
        for e in [damaged, unreadable] {
            let path = e["capture"] as! String
            #expect(e["sha256"] as? String == String(shell("sha256sum '\(path)'").out.prefix(64)), "\(path)")
        }
        for name in f.manifest["skipped"] as! [String] {
            #expect(entry(name)?["status"] as? String == "skipped", "\(name)")
        }
        #expect(f.err.contains("unreadable: \(f.fleet)/extra/corrupt.pcap"))

        // The shared backdoor endpoint comes first, with its two models.
        let endpoints = try #require(report["endpoints"] as? [[String: Any]])
        let shared = try #require(f.manifest["shared_endpoint"] as? [String: Any])
        let top = try #require(endpoints.first)
        #expect(top["ip"] as? String == shared["ip"] as? String)
        #expect(top["devices"] as? Int == shared["devices"] as? Int)
        let models = (top["models"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) { $0[$1["name"] as! String] = $1["devices"] as? Int }
        #expect(models == shared["models"] as? [String: Int])
        #expect(top["country"] as? String == "CN" && (top["names"] as? [String])?.contains("api.x9-update.cn") == true)

        // Clusters: the manifest's sets of devices with their foreign endpoints, nothing else.
        let clusters = try #require(report["clusters"] as? [[String: Any]])
        let found = Set(clusters.map { c in (c["endpoints"] as! [String]).joined(separator: ",") + "|" + (c["devices"] as! [String]).sorted().joined(separator: ",") })
        let expected = Set((f.manifest["clusters"] as! [[String: Any]]).map { c in
            (c["endpoints"] as! [String]).joined(separator: ",") + "|" + (c["devices"] as! [String]).sorted().joined(separator: ",")
        })
        #expect(found == expected)

        // The implant stands out: alone with its endpoint, in no cluster, first by verdict.
        let devices = try #require(report["devices"] as? [[String: Any]])
        let implant = try #require(f.manifest["implant"] as? [String: String])
        let d05 = try #require(devices.first { $0["label"] as? String == implant["device"] })
        #expect(d05["unique_endpoints"] as? [String] == [implant["unique_endpoint"]!])
        #expect(d05["cluster"] == nil)
        #expect(devices.first?["label"] as? String == implant["device"])
        #expect(devices.filter { ($0["unique_endpoints"] as? [String])?.isEmpty == false }.count == 1)
        // Home-only devices: nothing abroad.
        for name in f.manifest["home_only"] as! [String] {
            #expect(devices.first { $0["label"] as? String == name }?["foreign_endpoints"] as? Int == 0, "\(name)")
        }
        // devices.csv feeds identifier-leak: the SHA-1 of each A and C device's own IMEI is found.
        for name in f.manifest["hashed_imei_devices"] as! [String] {
            let d = devices.first { $0["label"] as? String == name }
            #expect((d?["categories"] as? [String])?.contains("identifier-leak") == true, "\(name)")
            #expect(d?["model"] as? String != nil)
        }
    }

    @Test func devicesFileIsWhatFindsTheHashedIdentifiers() throws {
        // Without --devices nothing names the IMEIs: the hashed ones are not found.
        let out = f.root + "/no-devices"
        let r = try runSiphon(["batch", f.fleet + "/model-a", "--out", out, "-j", "1", "--progress", "bar"])
        #expect(r.status == 0, "\(r.err)")
        // The progress bar, redrawn in place, ends with every file done, then is erased for the summary.
        let n = f.manifest["per_model"] as! Int
        #expect(r.err.contains("\r\u{1B}[K[\(String(repeating: "#", count: 24))] \(n)/\(n) files") && r.err.contains("done  alerts"), "\(r.err.prefix(300))")
        let devices = try #require(try f.report(out)["devices"] as? [[String: Any]])
        #expect(devices.count == f.manifest["per_model"] as? Int)
        #expect(devices.allSatisfy { ($0["categories"] as? [String])?.contains("identifier-leak") == false })
    }

    @Test func gzipCaptureReadsAsTshark() throws {
        // model-e/e-03.pcap.gz: tshark (which reads gzip) and Siphon count the same packets; the record says so.
        let gz = f.fleet + "/model-e/e-03.pcap.gz"
        let tshark = shell("tshark -r '\(gz)' -T fields -e frame.number 2>/dev/null | wc -l")
        let expected = try #require(Int(tshark.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(expected > 10)
        let record = try FleetBuilder.readRecord(f.reference + "/captures/" + CaptureFinder.slot(for: gz))
        // The content hash (taken while the capture is read) is the file's, as sha256sum gives it.
        #expect(record.sha256 == String(shell("sha256sum '\(gz)'").out.prefix(64)))
        #expect(record.status == .scanned && record.packets == UInt64(expected))
        #expect(record.devices.count == 1 && record.label == "e-03")
    }

    @Test func databaseAnswersTheSameCountsAsTheJSON() throws {
        let report = try f.report(f.reference)
        let totals = try #require(report["totals"] as? [String: Any])
        let db = try DatabaseQueue(path: f.reference + "/siphon.db")
        try db.read { db in
            for status in ["scanned", "damaged", "unreadable", "skipped"] {
                let n = try Int.fetchOne(db, sql: "SELECT count(*) FROM captures WHERE status = ?", arguments: [status])
                #expect(n == totals[status] as? Int, "\(status)")
            }
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM devices") == totals["devices"] as? Int)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM verdicts") == totals["devices"] as? Int)
            let alerts = (report["captures"] as! [[String: Any]]).reduce(0) { $0 + ($1["alerts"] as! Int) }
            #expect(alerts > 0)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM alerts") == alerts)
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM alerts WHERE device IS NULL") == 0)
            let endpoints = report["endpoints"] as! [[String: Any]]
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM endpoints WHERE scope = 'foreign'") == endpoints.count)
            let top = try #require(try Row.fetchOne(db, sql: "SELECT ip, devices, models FROM shared_endpoints"))
            #expect(top["ip"] as String == endpoints[0]["ip"] as? String)
            #expect(top["devices"] as Int == endpoints[0]["devices"] as? Int)
            #expect(top["models"] as Int == 2)
            // The evidence is in each alert's event.
            let kinds = try String.fetchAll(db, sql: "SELECT DISTINCT json_extract(event, '$.evidence.kind') FROM alerts WHERE category = 'identifier-leak'")
            #expect(kinds.contains("imei"))
        }
    }

    @Test func rerunsReuseResultsAndNeverDuplicateRows() throws {
        let out = f.root + "/rerun"
        let copy = f.root + "/rerun-fleet"
        #expect(shell("rm -rf '\(out)' '\(copy)' && cp -r '\(f.fleet)' '\(copy)'").status == 0)
        let first = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv", "-j", "2", "--progress", "lines"])
        #expect(first.status == 2)
        func counts() throws -> [Int] {
            try DatabaseQueue(path: out + "/siphon.db").read { db in
                try ["captures", "devices", "endpoints", "contacts", "alerts"].map { try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0)") ?? -1 }
            }
        }
        let before = try counts()
        let fleetBefore = try Data(contentsOf: URL(fileURLWithPath: out + "/fleet.json"))
        // Same inputs: every capture reused, nothing rescanned, the same report and rows.
        let second = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv", "--progress", "lines"])
        #expect(second.err.contains("0 scanned now"))
        #expect(second.err.components(separatedBy: "reused (same inputs)").count - 1 == 5 * (f.manifest["per_model"] as! Int) + 2)
        #expect(try counts() == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/fleet.json")) == fleetBefore)
        // A capture touched (new modification time, same bytes) is hashed again and reused; one whose bytes
        // changed at the same size is scanned again.
        #expect(shell("touch '\(copy)/model-e/e-01.pcap'").status == 0)
        let touched = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv"])
        #expect(touched.err.contains(": 0 scanned now"), "\(touched.err)")
        let e02 = copy + "/model-e/e-02.pcap"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: e02)[.size] as? Int)
        #expect(shell("printf 'Z' | dd of='\(e02)' bs=1 seek=\(size - 1) conv=notrunc 2>/dev/null").status == 0)
        let changed = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv"])
        #expect(changed.err.contains(": 1 scanned now"), "\(changed.err)")
        let e02record = try FleetBuilder.readRecord(out + "/captures/" + CaptureFinder.slot(for: e02))
        let sha = shell("sha256sum '\(e02)'").out.prefix(64)
        #expect(e02record.sha256 == String(sha) && e02record.size == Int64(size))
        #expect(try counts() == before)
        // A changed devices row rescans its capture only; the database updates that row, adds none.
        var csv = try String(contentsOfFile: copy + "/devices.csv", encoding: .utf8)
        csv = csv.replacingOccurrences(of: "model-b/b-02.pcap,b-02,", with: "model-b/b-02.pcap,b-02-relabelled,")
        try csv.write(toFile: copy + "/devices.csv", atomically: true, encoding: .utf8)
        let third = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv"])
        #expect(third.err.contains(": 1 scanned now"), "\(third.err)")
        #expect(try counts() == before)
        let label = try DatabaseQueue(path: out + "/siphon.db").read { db in
            try String.fetchOne(db, sql: "SELECT d.label FROM devices d JOIN captures c ON c.id = d.capture_id WHERE c.path LIKE '%/b-02.pcap'")
        }
        #expect(label == "b-02-relabelled")
        // --force rescans everything, and still no duplicate.
        let forced = try runSiphon(["batch", copy, "--out", out, "--devices", copy + "/devices.csv", "--force"])
        #expect(forced.err.contains("\(5 * (f.manifest["per_model"] as! Int) + 2) scanned now"))
        #expect(try counts() == before)
    }

    @Test func killedBatchResumesToTheSameOutputs() throws {
        let out = f.root + "/killed"
        // Stop it once a few captures are done, then kill it: whatever it was writing is left half-written.
        let total = f.manifest["files"] as! Int
        let (p, _) = try f.startBatch(into: out, waitingFor: 8)
        kill(p.processIdentifier, SIGSTOP)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let left = (try? FileManager.default.contentsOfDirectory(atPath: out + "/captures")) ?? []
        #expect(left.count >= 8 && left.count < total, "the batch was to be killed midway: \(left.count) of \(total) done")
        #expect(!FileManager.default.fileExists(atPath: out + "/fleet.json"))
        // Every capture folder in place is whole.
        for slot in left { #expect(FileManager.default.fileExists(atPath: out + "/captures/\(slot)/verdicts.json"), "\(slot)") }
        let rerun = try runSiphon(["batch", f.fleet, "--out", out, "--devices", f.fleet + "/devices.csv", "--progress", "lines", "--reproducible"])
        #expect(rerun.status == 2)
        #expect(rerun.err.contains("reused (same inputs)"))
        // The same fleet report, byte for byte, and the same per-capture files.
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/fleet.json")) == Data(contentsOf: URL(fileURLWithPath: f.reference + "/fleet.json")))
        let diff = shell("diff -r '\(f.reference)/captures' '\(out)/captures'")
        #expect(diff.status == 0, "\(diff.out.prefix(2000))")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: out + "/.partial")) ?? ["?"]).isEmpty)
    }

    @Test func interruptedBatchReportsWhatIsDoneAndResumes() throws {
        let out = f.root + "/interrupted"
        let total = f.manifest["files"] as! Int
        let (p, err) = try f.startBatch(into: out, waitingFor: 8)
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // Stopped: 128 + SIGINT, the captures started were finished, the fleet report covers them.
        #expect(p.terminationStatus == 130, "\(text)")
        #expect(text.contains("stopped by SIGINT"), "\(text)")
        let done = try FileManager.default.contentsOfDirectory(atPath: out + "/captures").count
        #expect(done >= 8 && done < total)
        let report = try f.report(out)
        #expect((report["totals"] as? [String: Any])?["files"] as? Int == done)
        // The same command again finishes the batch, with the uninterrupted run's fleet report.
        let rerun = try runSiphon(["batch", f.fleet, "--out", out, "--devices", f.fleet + "/devices.csv", "-q", "--reproducible"])
        #expect(rerun.status == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/fleet.json")) == Data(contentsOf: URL(fileURLWithPath: f.reference + "/fleet.json")))
    }

    @Test func shardsMergeIntoTheUnshardedFleet() throws {
        let s1 = f.root + "/shard1", s2 = f.root + "/shard2", merged = f.root + "/merged"
        for d in [s1, s2, merged] { try? FileManager.default.removeItem(atPath: d) }
        let a = try runSiphon(["batch", f.fleet, "--out", s1, "--devices", f.fleet + "/devices.csv", "--shard", "1/2", "-q"])
        let b = try runSiphon(["batch", f.fleet, "--out", s2, "--devices", f.fleet + "/devices.csv", "--shard", "2/2", "-q"])
        #expect([a.status, b.status].allSatisfy { $0 == 0 || $0 == 2 }, "\(a.err) \(b.err)")
        let one = Set(try FileManager.default.contentsOfDirectory(atPath: s1 + "/captures"))
        let two = Set(try FileManager.default.contentsOfDirectory(atPath: s2 + "/captures"))
        #expect(!one.isEmpty && !two.isEmpty && one.isDisjoint(with: two))
        #expect(one.count + two.count == f.manifest["files"] as? Int)
        let m = try runSiphon(["fleet", "merge", s1, s2, "--out", merged])
        #expect(m.status == 2, "\(m.err)")  // the fleet holds the damaged and the unreadable capture
        #expect(try Data(contentsOf: URL(fileURLWithPath: merged + "/fleet.json")) == Data(contentsOf: URL(fileURLWithPath: f.reference + "/fleet.json")))
        let rows = { (path: String) throws -> [Int] in
            try DatabaseQueue(path: path).read { db in
                try ["captures", "devices", "endpoints", "contacts", "alerts"].map { try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0)") ?? -1 }
            }
        }
        #expect(try rows(merged + "/siphon.db") == rows(f.reference + "/siphon.db"))
    }

    @Test func fleetPageRendersInHeadlessChromium() throws {
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(browser, "no Chromium: scripts/test.sh installs the Debian package chromium")
        let page = f.reference + "/fleet.html"
        let html = try String(contentsOfFile: page, encoding: .utf8)
        // Self-contained: no resource from elsewhere.
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("@import") && !html.contains("url("))
        let r = shell("'\(path)' --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir='\(f.root)/chromium' --dump-dom 'file://\(page)' 2>/dev/null")
        #expect(r.status == 0)
        let n = 5 * (f.manifest["per_model"] as! Int) + 1
        // The script ran (it writes the count of shown devices), and the tables are there.
        #expect(r.out.contains("<span id=\"shown\">\(n) of \(n) devices</span>"), "\(r.out.prefix(500))")
        let shared = (f.manifest["shared_endpoint"] as! [String: Any])["ip"] as! String
        #expect(r.out.contains("<td>\(shared)</td>"))
        #expect(r.out.contains("id=\"clusters\"") && r.out.contains("extra/corrupt.pcap"))
    }
}

@Suite struct BatchInputTests {
    @Test func devicesCSVParsesQuotesAndMatchesCaptures() throws {
        let text = "\u{FEFF}Capture,Label,Model,IMEI,MAC,notes\n# a comment\n\"lab/a 1.pcap\",\"A, one\",X9,356938035643809;356938035643817,02:f1:01:00:00:01,\"said \"\"hi\"\"\"\nb.pcap,B,K2,,,\n\n"
        let table = try DeviceTable.parse(text, path: "d.csv")
        #expect(table.rows.count == 2)
        let a = table.rows[0]
        #expect(a.line == 3 && a.capture == "lab/a 1.pcap" && a.label == "A, one" && a.model == "X9")
        #expect(a.identifiers.map(\.value) == ["356938035643809", "356938035643817", "02:f1:01:00:00:01"])
        #expect(a.devices.count == 1 && a.attributes == ["notes": "said \"hi\""])
        let (rows, unmatched) = try table.assign(to: ["/data/lab/a 1.pcap", "/data/x/b.pcap", "/data/c.pcap"])
        #expect(rows["/data/lab/a 1.pcap"]?.label == "A, one" && rows["/data/x/b.pcap"]?.label == "B" && unmatched.isEmpty)
        // A file name that two captures share is refused; a short identifier too.
        #expect(throws: BatchError.self) { try table.assign(to: ["/1/b.pcap", "/2/b.pcap", "/lab/a 1.pcap"]) }
        #expect(throws: BatchError.self) { try DeviceTable.parse("capture,imei\nx.pcap,123\n", path: "d.csv") }
        #expect(throws: BatchError.self) { try DeviceTable.parse("label,imei\nx,123456789\n", path: "d.csv") }
        // A quote never closed is an error, not the rest of the file in one field; a comment's quotes are inert;
        // quoted fields keep their spaces and may start with '#'.
        #expect(throws: BatchError.self) { try DeviceTable.parse("capture,label\na.pcap,\"Pixel 7,model-a\nb.pcap,B\n", path: "d.csv") }
        let t2 = try DeviceTable.parse("capture,label\n# note: \"a, quote\na.pcap,\" #12 \"\n\"#b.pcap\",B\n", path: "d.csv")
        #expect(t2.rows.map(\.capture) == ["a.pcap", "#b.pcap"] && t2.rows.first?.label == " #12 " && t2.rows.first?.line == 3)
    }

    @Test func shardsPartitionThePaths() throws {
        let paths = (0..<1000).map { "captures/device-\($0).pcap" }
        var seen = Set<String>()
        var sizes: [Int] = []
        for k in 1...4 {
            let s = try #require(Shard("\(k)/4"))
            let share = paths.filter { s.contains($0) }
            #expect(seen.isDisjoint(with: share))
            seen.formUnion(share)
            sizes.append(share.count)
        }
        #expect(seen.count == paths.count)
        // Even enough: each share within 20 % of a quarter.
        #expect(sizes.allSatisfy { abs($0 - 250) < 50 }, "\(sizes)")
        #expect(Shard("0/4") == nil && Shard("5/4") == nil && Shard("1/0") == nil && Shard("x") == nil)
    }

    /// docs/batch.md shows the database schema the code creates, line for line.
    @Test func documentedSchemaIsTheSchema() throws {
        let doc = try String(contentsOfFile: Repo.path("docs/batch.md"), encoding: .utf8)
        let lines = CaseDatabase.schema.split(separator: "\n")
        #expect(lines.count > 40)
        for line in lines { #expect(doc.contains(String(line)), "docs/batch.md lacks: \(line)") }
    }

    @Test func slotsAreSafeAndDistinct() {
        let a = CaptureFinder.slot(for: "../caps/a b/x.pcap"), b = CaptureFinder.slot(for: "../caps/a_b/x.pcap")
        #expect(a != b)
        #expect(a.allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) })
        #expect(a.hasPrefix("caps_a_b_x.pcap-"))
        // A long path cut to its last 60 characters never starts a hidden name.
        let long = CaptureFinder.slot(for: "/cases/lab.v2/model-a/pixel7-0001/2024-06-01-session-wifi-xxxxxxx.pcap")
        #expect(!long.hasPrefix(".") && !long.hasPrefix("_") && long.count <= 60 + 13)
    }
}

@Suite struct GzipCaptureTests {
    /// A capture compressed with gzip(1) reads as the capture itself; a cut or damaged .gz says what is wrong and
    /// where, with the packets before it.
    @Test func gzipReadsLikeTheCaptureAndReportsDamage() throws {
        let dir = temporaryPath("siphon-gz-\(getpid())")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for source in ["captures/sample/backdoor-phone.pcap", "captures/diff/eth-zeek-http-get.pcap"] + Repo.files(in: "captures/diff", extensions: ["pcapng"]).prefix(1).map({ String($0.dropFirst(Repo.root.path.count + 1)) }) {
            let plain = Repo.path(source)
            let gz = dir + "/" + (source as NSString).lastPathComponent + ".gz"
            #expect(shell("gzip -c '\(plain)' > '\(gz)'").status == 0)
            let a = scanEvents(plain), b = scanEvents(gz)
            #expect(b.result.error == nil, "\(source): \(String(describing: b.result.error))")
            #expect(a.result.statistics.packets == b.result.statistics.packets && a.result.statistics.packets > 0)
            #expect(a.events.count == b.events.count)
            // Two gzip members one after the other (cat a.gz b.gz) read as one stream: here the file twice over
            // would be a second header mid-file, so compare with a split of the bytes instead.
            let size = try #require(try FileManager.default.attributesOfItem(atPath: plain)[.size] as? Int)
            let split = dir + "/split.gz"
            #expect(shell("head -c \(size / 2) '\(plain)' | gzip -c > '\(split)'; tail -c +\(size / 2 + 1) '\(plain)' | gzip -c >> '\(split)'").status == 0)
            #expect(scanEvents(split).result.statistics.packets == a.result.statistics.packets)
        }
        // Cut: the packets before the cut, and the reason.
        let plain = Repo.path("captures/sample/backdoor-phone.pcap")
        let cut = dir + "/cut.pcap.gz"
        #expect(shell("gzip -c '\(plain)' | head -c 3000 > '\(cut)'").status == 0)
        let r = scanEvents(cut).result
        let error = try #require(r.error)
        #expect(error.offset != nil && r.statistics.packets > 0)
        #expect(error.description.contains("gzip: the compressed data ends inside a member"), "\(error)")
        // The same through `siphon scan` (read-ahead on: the damage is found on the reader thread).
        let viaCLI = try runSiphon(["scan", cut, "-q"])
        #expect(viaCLI.status == 2 && viaCLI.err.contains("gzip: the compressed data ends inside a member"), "\(viaCLI.err)")
        // Only the trailer (CRC and length) missing: every packet read, and still reported as damaged.
        let noTrailer = dir + "/notrailer.pcap.gz"
        #expect(shell("gzip -c '\(plain)' > '\(dir)/full.gz' && head -c $(( $(stat -c %s '\(dir)/full.gz') - 8 )) '\(dir)/full.gz' > '\(noTrailer)'").status == 0)
        let t = scanEvents(noTrailer).result
        #expect(t.statistics.packets == scanEvents(plain).result.statistics.packets)
        #expect(t.error?.description.contains("gzip: the compressed data ends inside a member") == true, "\(String(describing: t.error))")
        // Damaged compressed bytes: inflated to garbage (the CRC would only tell at the member's end), the reader
        // stops where the garbage stops making sense, after the packets before it.
        let bad = dir + "/bad.pcap.gz"
        #expect(shell("gzip -c '\(plain)' > '\(bad)' && printf 'XXXXXXXXXXXXXXXX' | dd of='\(bad)' bs=1 seek=2000 conv=notrunc 2>/dev/null").status == 0)
        let damaged = scanEvents(bad).result
        let e2 = try #require(damaged.error)
        #expect(e2.offset != nil && damaged.statistics.packets > 0 && e2.description.contains("decompressed capture"), "\(e2)")
        // Bytes after the last member that are no gzip member: zlib's reason.
        let tail = dir + "/tail.pcap.gz"
        #expect(shell("gzip -c '\(plain)' > '\(tail)' && printf 'not gzip at all' >> '\(tail)'").status == 0)
        let e3 = try #require(scanEvents(tail).result.error)
        #expect(e3.description.contains("gzip: incorrect header check"), "\(e3)")
    }
}
