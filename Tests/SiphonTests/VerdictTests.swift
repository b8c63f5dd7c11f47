import Foundation
import Siphon
import Testing

/// The per-device verdict, its JSON event, the terminal rendering and the HTML report, on the sample capture; every
/// figure is compared with the generator's manifest.
@Suite struct VerdictTests {
    static let geo: GeoDatabase? = try? GeoDatabase()
    let manifest: [String: Any]

    init() throws {
        manifest = try #require(try Repo.json("captures/sample/backdoor-phone.json") as? [String: Any])
    }

    private var device: [String: Any] { manifest["device"] as? [String: Any] ?? [:] }

    private func scan() throws -> (events: [[String: Any]], result: CaptureScanner.Result) {
        var options = ScanOptions()
        options.geo = try #require(Self.geo as GeoDatabase?) as GeoDatabase
        return scanEvents(Repo.path("captures/sample/backdoor-phone.pcap"), options: options)
    }

    /// The verdict's words say "abroad" only when what raised it went abroad: a reverse shell to a Russian listener
    /// (home FR) and an IMEI in a DNS name do; the same shell with Russia as home does not. Expected from the
    /// scenario manifests (the listener's address, located by the shipped geo data) and the home set.
    @Test func verdictWordsSayAbroadOnlyWhenItIs() throws {
        func verdict(_ name: String, home: Set<String>) throws -> (severity: String, words: String) {
            var options = ScanOptions()
            options.geo = try GeoDatabase(home: home)
            let (events, _) = scanEvents(Repo.path("captures/scenarios/\(name).pcap"), options: options)
            let v = try #require(events.first { $0["event_type"] as? String == "verdict" })
            return (v["severity"] as? String ?? "", v["verdict"] as? String ?? "")
        }
        let shell = try #require(try Repo.json("captures/scenarios/reverse-shell.json") as? [String: Any])
        let listener = try #require((shell["expect"] as? [[String: Any]])?.first { $0["category"] as? String == "c2-channel" }?["dest_ip"] as? String)
        let country = try #require(try GeoDatabase().lookup(IPAddress(listener)!).country)
        #expect(country != "FR")
        let abroad = try verdict("reverse-shell", home: ["FR"])
        #expect(abroad.severity == "critical" && abroad.words == DeviceVerdict.label(.critical, abroad: true))
        #expect(abroad.words.contains("abroad"))
        let home = try verdict("reverse-shell", home: ["FR", country])
        #expect(home.severity == "high" && home.words == DeviceVerdict.label(.high, abroad: false))
        #expect(!home.words.contains("abroad") && home.words.contains("no foreign endpoint seen"))
        let dns = try verdict("leak-imei-dns", home: ["FR"])
        #expect(dns.severity == "high" && dns.words == DeviceVerdict.label(.high, abroad: true))
    }

    @Test func verdictEventMatchesTheManifest() throws {
        let (events, result) = try scan()
        let verdicts = events.filter { $0["event_type"] as? String == "verdict" }
        #expect(verdicts.count == 1 && result.verdicts.count == 1)
        let v = try #require(verdicts.first)
        #expect(v["device"] as? String == device["ip"] as? String)
        #expect(v["mac"] as? String == device["mac"] as? String)
        #expect(v["hostname"] as? String == device["hostname"] as? String)
        #expect(v["vendor_class"] as? String == device["vendor_class"] as? String)
        // One identity, its MAC, chosen by its DHCP lease, with its one address.
        #expect(v["device_id"] as? String == device["mac"] as? String)
        #expect(v["chosen"] as? String == "dhcp")
        let addresses = (v["addresses"] as? [[String: Any]] ?? []).map { "\($0["ip"] ?? "") \($0["learned"] ?? "")" }
        #expect(addresses == ["\(device["ip"] ?? "") dhcp"])
        // The beacon server is also where the identifiers went: three kinds of finding on one foreign endpoint.
        let beaconServer = try #require((manifest["beacons"] as? [[String: Any]])?.first?["server"] as? String)
        #expect((manifest["uploads"] as? [[String: Any]])?.first?["server"] as? String == beaconServer)
        #expect(v["severity"] as? String == "critical")
        #expect(v["corroborated_by"] as? String == beaconServer)
        // Per endpoint: bytes both ways summed over the manifest's flows.
        var totals: [String: (sent: Int, received: Int, flows: Int)] = [:]
        for f in manifest["flows"] as? [[String: Any]] ?? [] {
            let s = f["server"] as? String ?? ""
            totals[s, default: (0, 0, 0)].sent += f["sent"] as? Int ?? 0
            totals[s, default: (0, 0, 0)].received += f["received"] as? Int ?? 0
            totals[s, default: (0, 0, 0)].flows += 1
        }
        let endpoints = try #require(v["endpoints"] as? [[String: Any]])
        #expect(Set(endpoints.compactMap { $0["ip"] as? String }) == Set(totals.keys))
        let geo = try #require(Self.geo)
        var foreignSent = 0, byCountry: [String: Int] = [:]
        for e in endpoints {
            let ip = e["ip"] as? String ?? ""
            let t = try #require(totals[ip])
            #expect(e["sent_bytes"] as? Int == t.sent && e["received_bytes"] as? Int == t.received && e["flows"] as? Int == t.flows, "\(ip)")
            let g = geo.lookup(IPAddress(ip)!)
            if g.scope == .foreign { foreignSent += t.sent }
            byCountry[g.country ?? "??", default: 0] += t.sent
        }
        #expect(v["sent_foreign_bytes"] as? Int == foreignSent)
        #expect(v["uploads_by_country"] as? [String: Int] == byCountry)
        // Foreign endpoints come first.
        let scopes = endpoints.map { ($0["dest_geo"] as? [String: Any])?["scope"] as? String }
        #expect(scopes.prefix { $0 == "foreign" }.count == scopes.filter { $0 == "foreign" }.count)
        // The beacon period: the median of the manifest's intervals between beacons.
        let times = (manifest["beacons"] as? [[String: Any]] ?? []).compactMap { $0["time"] as? Double }.sorted()
        let intervals = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        let median = intervals.count % 2 == 1 ? intervals[intervals.count / 2] : (intervals[intervals.count / 2 - 1] + intervals[intervals.count / 2]) / 2
        let beacon = try #require(endpoints.first { $0["ip"] as? String == beaconServer })
        let period = try #require(beacon["period_s"] as? Double)
        // The detector judges at the 6th contact: the median over those first intervals, within the jitter of the whole series.
        #expect(abs(period - median) < 2.5, "period \(period), manifest median \(median)")
        // Alert counts by severity equal the alert events.
        let alerts = events.filter { $0["event_type"] as? String == "alert" }
        let counts = try #require(v["alerts"] as? [String: Int])
        for s in ["critical", "high", "medium", "low", "info"] {
            #expect(counts[s] == alerts.count { ($0["alert"] as? [String: Any])?["severity"] as? String == s })
        }
    }

    @Test func terminalVerdictAndColour() throws {
        let (_, result) = try scan()
        let plain = TerminalSummary.render(
            capture: "x", stats: result.statistics, hosts: result.hosts, alerts: result.alerts, verdicts: result.verdicts)
        let coloured = TerminalSummary.render(
            capture: "x", stats: result.statistics, hosts: result.hosts, alerts: result.alerts, verdicts: result.verdicts, color: true)
        #expect(plain.contains("verdict: CRITICAL") && plain.contains(device["hostname"] as? String ?? "?"))
        #expect(!plain.contains("\u{1B}"))
        #expect(coloured.contains("\u{1B}[1;35mCRITICAL"))
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(stripped == plain)
        for line in plain.split(separator: "\n").dropFirst() { #expect(line.count <= 80, "\(line)") }
        // The CLI writes no colour when standard error is not a terminal (as here).
        let r = try runSiphon(["scan", Repo.path("captures/sample/backdoor-phone.pcap")])
        #expect(r.status == 0 && !r.err.contains("\u{1B}") && r.err.contains("verdict: CRITICAL"))
    }

    @Test func htmlReport() throws {
        let path = temporaryPath("siphon-report-\(getpid()).html")
        let sample = Repo.path("captures/sample/backdoor-phone.pcap")
        let r = try runSiphon(["scan", "-q", "--json", "-", "--html", path, sample])
        #expect(r.status == 0, "\(r.err)")
        let page = try String(contentsOfFile: path, encoding: .utf8)
        let alerts = r.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .filter { $0["event_type"] as? String == "alert" }
        // Self-contained: no script, no external resource, no URL the browser would fetch.
        for forbidden in ["<script", "src=", "<link", "@import", "url("] { #expect(!page.contains(forbidden), "\(forbidden)") }
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.contains("</html>"))
        #expect(page.contains(HTMLReport.escape(device["hostname"] as? String ?? "?")))
        #expect(page.components(separatedBy: "<article class=\"device\">").count == 2)
        // Which device, how chosen, with which addresses; the router (DHCP server and resolver) left out.
        #expect(page.contains("Devices analysed: 1."))
        #expect(page.contains("Chosen: took a DHCP lease. Addresses: \(device["ip"] ?? "") (dhcp)."))
        #expect(page.contains("Device \(device["mac"] ?? "")"))
        #expect(page.contains("Infrastructure, not analysed: 02:22:33:44:55:aa (gateway, router, dhcp-server, resolver"))
        // Each scored endpoint's weighing, as the verdict event gives it (score and signals).
        let verdict = r.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .first { $0["event_type"] as? String == "verdict" }
        let scored = (verdict?["endpoints"] as? [[String: Any]] ?? []).filter { ($0["score"] as? Int ?? 0) > 0 }
        #expect(!scored.isEmpty)
        for e in scored {
            let line = "score \(e["score"] as? Int ?? 0): \((e["signals"] as? [String] ?? []).joined(separator: ", "))"
            #expect(page.contains(HTMLReport.escape(line)), "\(line)")
        }
        // Every alert is listed, with its message (escaped) and evidence table.
        #expect(page.components(separatedBy: "<li><details>").count - 1 == alerts.count)
        for a in alerts {
            let message = (a["alert"] as? [String: Any])?["message"] as? String ?? ""
            #expect(page.contains(HTMLReport.escape(message)), "\(message)")
        }
        // The timeline has one mark per flow of each endpoint; the charts one bar per country that received bytes.
        let flows = (manifest["flows"] as? [[String: Any]] ?? []).count
        #expect(page.components(separatedBy: "class=\"mark ").count - 1 == flows)
        #expect(page.contains("<svg") && page.contains("class=\"bar\""))
        #expect(HTMLReport.escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }

    /// The escape by UTF-8 byte equals the definition scalar by scalar (the five characters as entities, control
    /// characters but line feed and tab as a middle dot, everything else as it is) on strings mixing them with
    /// letters, accents, CJK and emoji; a string with nothing to escape comes back unchanged.
    @Test func htmlEscapeMatchesItsDefinition() {
        func definition(_ s: String) -> String {
            var out = ""
            for c in s.unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "'": out += "&#39;"
                default: out += c.value < 0x20 && c != "\n" && c != "\t" ? "·" : String(c)
                }
            }
            return out
        }
        let pieces = ["a", "Z", "0", " ", "&", "<", ">", "\"", "'", "\n", "\t", "\r", "\u{0}", "\u{1F}", "\u{7F}", "é", "·", "中", "🙂",
                      "&amp;", "x9-update.cn"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let s = (0..<Int.random(in: 0...24, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            #expect(HTMLReport.escape(s) == definition(s), "\(s.debugDescription)")
        }
        #expect(HTMLReport.escape("plain text, é 中 🙂") == "plain text, é 中 🙂")
    }
}
