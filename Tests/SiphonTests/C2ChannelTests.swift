import Foundation
@testable import SiphonApp
@testable import SiphonDetect
import Siphon
import Testing

/// Issue 18, second part: command channels in clear (IRC bots, reverse shells) and the pack's rules for Emotet's
/// 2020 POST and the banking trojans' certificate, on real captures of ../shared read against tshark, and the shell
/// watcher on bytes fed as an interactive shell sends them.
@Suite struct C2ChannelTests {
    /// The rules' `contains` by bytes equals Foundation's `String.contains` (which it replaces for ASCII text):
    /// ASCII, composed and decomposed accents (equal for Foundation), other scripts, and empty strings.
    @Test func ruleContainsMatchesFoundation() {
        let pieces = ["a", "b", "A", "/", ".", " ", "é", "e\u{301}", "É", "中", "🙂", "ab", "ba", "x9"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<4_000 {
            let text = (0..<Int.random(in: 0...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let part = (0..<Int.random(in: 0...3, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            #expect(RuleCondition.contains(text, part) == text.contains(part), "\(text.debugDescription) \(part.debugDescription)")
        }
    }

    static let shared = ImplantTests.shared

    static func events(_ args: [String]) throws -> [[String: Any]] {
        let run = try runSiphon(["scan", "-q", "--json", "-"] + args)
        #expect(run.status == 0, "\(run.err)")
        return run.out.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    static func alerts(_ events: [[String: Any]], rule: String) -> [[String: Any]] {
        events.filter { ($0["alert"] as? [String: Any])?["rule"] as? String == rule }
    }

    /// toolsmith.pcap (netspot): a Reptile bot registers on 84.244.1.30:5050. The nick, user, real name and channel
    /// are the ones tshark's IRC dissector (told the port) reads from the client's lines.
    @Test func ircBotMatchesTshark() throws {
        let path = Self.shared + "/malware/netspot/toolsmith.pcap"
        guard FileManager.default.fileExists(atPath: path) else {
            print("C2ChannelTests: ../shared not present, IRC check not run")
            return
        }
        let run = try runProgram("/usr/bin/tshark", ["-r", path, "-d", "tcp.port==5050,irc", "-Y", "irc.request", "-T", "fields",
                                                     "-e", "ip.dst", "-e", "irc.request.command", "-e", "irc.request.command_parameter",
                                                     "-e", "irc.request.trailer"])
        let rows = run.out.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let nick = try #require(rows.first { $0.count >= 3 && $0[1] == "NICK" })
        let user = try #require(rows.first { $0.count >= 4 && $0[1] == "USER" })
        let join = try #require(rows.first { $0.count >= 3 && $0[1] == "JOIN" })
        let events = try Self.events([path])
        let irc = events.filter { $0["event_type"] as? String == "irc" }.compactMap { $0["irc"] as? [String: Any] }
        #expect(irc.first?["nick"] as? String == nick[2])
        #expect(irc.first?["user"] as? String == user[2].split(separator: ",").first.map(String.init))
        #expect(irc.first?["real_name"] as? String == user[3])
        #expect(irc.last?["channels"] as? [String] == [join[2]])
        // Three JOINs of the same channel: one record with it, not three.
        #expect(irc.count == 2)
        let bot = try #require(Self.alerts(events, rule: "siphon.c2-channel.irc-bot").first)
        #expect(bot["dest_ip"] as? String == nick[0] && bot["dest_port"] as? Int == 5050)
        #expect((bot["alert"] as? [String: Any])?["severity"] as? String == "high")
        #expect((bot["evidence"] as? [String: Any])?["nick"] as? String == nick[2])
    }

    /// nDPI's log4j capture: after the exploit, 172.16.238.10 connects to 10.10.10.31:9001 and answers `id`,
    /// `pwd`, `sudo cat /etc/shadow` one byte a segment. The output line reported is the `uid=` line of the client's
    /// stream as tshark reassembles it (follow,tcp,raw), whole although it came in 60 segments.
    @Test func reverseShellMatchesTsharkStream() throws {
        let path = Self.shared + "/malware/ndpi/log4j-webapp-exploit/log4j-webapp-exploit.pcap"
        guard FileManager.default.fileExists(atPath: path) else {
            print("C2ChannelTests: ../shared not present, reverse shell check not run")
            return
        }
        let run = try runProgram("/usr/bin/tshark", ["-r", path, "-q", "-z", "follow,tcp,raw,172.16.238.10:55408,10.10.10.31:9001"])
        // Node 0 (the client) lines carry no leading tab; the header lines are not hex.
        var client: [UInt8] = []
        for line in run.out.split(separator: "\n") where !line.hasPrefix("\t") && line.allSatisfy(\.isHexDigit) && line.count % 2 == 0 {
            var i = line.startIndex
            while i < line.endIndex {
                let j = line.index(i, offsetBy: 2)
                client.append(UInt8(line[i..<j], radix: 16)!)
                i = j
            }
        }
        let text = String(decoding: client, as: UTF8.self)
        let idLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("uid=") }).trimmingCharacters(in: .whitespacesAndNewlines)
        let events = try Self.events([path])
        let shell = try #require(Self.alerts(events, rule: "siphon.c2-channel.reverse-shell").first)
        #expect(shell["src_ip"] as? String == "172.16.238.10" && shell["dest_ip"] as? String == "10.10.10.31" && shell["dest_port"] as? Int == 9001)
        #expect((shell["evidence"] as? [String: Any])?["output"] as? String == idLine)
        #expect((shell["alert"] as? [String: Any])?["severity"] as? String == "high")
        let verdict = try #require(events.first { $0["event_type"] as? String == "verdict" && $0["device"] as? String == "172.16.238.10" })
        #expect(verdict["severity"] as? String == "high")
    }

    /// trickbot.pcap (nDPI) and file76.pcap (Suricata-verify, read with `-k none` as its test does): Emotet's 2020
    /// POSTs. By tshark's fields each names itself in its Referer (host without port + URI) and goes to an address;
    /// the rule's alert reports the body bytes tshark's Content-Length values add up to.
    @Test func emotetPostCheckinsMatchTshark() throws {
        for (capture, args) in [("ndpi/trickbot/trickbot.pcap", []), ("suricata-verify/bug-4953/file76.pcap", ["--checksums", "off"])] {
            let path = Self.shared + "/malware/" + capture
            guard FileManager.default.fileExists(atPath: path) else {
                print("C2ChannelTests: ../shared not present, Emotet POST check not run")
                return
            }
            guard let fields = try ImplantTests.tshark(path, "http.request.method == \"POST\"",
                                                       ["ip.dst", "http.host", "http.request.uri", "http.referer", "http.content_length"])
            else { return }
            let rows = fields.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }.filter { $0.count == 5 }
            #expect(!rows.isEmpty)
            for r in rows {
                let host = r[1].split(separator: ":").first.map(String.init) ?? r[1]
                #expect(host == r[0] && r[3] == "http://" + host + r[2], "\(capture): \(r)")
            }
            let events = try Self.events(args + [path])
            let a = try #require(Self.alerts(events, rule: "siphon.rule.emotet-post-checkin").first, "\(capture)")
            #expect(a["dest_ip"] as? String == rows[0][0])
            #expect((a["evidence"] as? [String: Any])?["http_body_bytes"] as? Int == rows.map { Int($0[4]) ?? 0 }.reduce(0, +))
        }
    }

    /// emotet.pcap (nDPI): the C2 at 138.197.147.101 presents the self-signed London/Global Security/IT
    /// Department/example.com certificate; tshark's subject attributes appear in the alert's cert_subject in order.
    @Test func trojanCertificateMatchesTshark() throws {
        let path = Self.shared + "/malware/ndpi/emotet/emotet.pcap"
        guard FileManager.default.fileExists(atPath: path) else {
            print("C2ChannelTests: ../shared not present, certificate check not run")
            return
        }
        guard let fields = try ImplantTests.tshark(path, "tls.handshake.certificate && ip.src == 138.197.147.101", ["x509sat.uTF8String"])
        else { return }
        let first = try #require(fields.split(separator: "\n").first).split(separator: ",").map(String.init)
        // Subject after issuer (the certificate is self-signed: the five values twice).
        #expect(first.count == 10 && Array(first[0..<5]) == Array(first[5..<10]))
        let events = try Self.events([path])
        let a = try #require(Self.alerts(events, rule: "siphon.rule.trojan-default-certificate").first)
        #expect(a["src_ip"] as? String == "10.2.25.102" || a["dest_ip"] as? String == "138.197.147.101")
        let subject = try #require((a["evidence"] as? [String: Any])?["cert_subject"] as? String)
        var rest = Substring(subject)
        for value in first[5..<10] {
            let r = try #require(rest.range(of: "=" + value), "\(value) not in \(subject)")
            rest = rest[r.upperBound...]
        }
    }

    /// The watcher on bytes as shells send them: one byte at a time, split anywhere; and the texts that only look
    /// like a shell's.
    @Test func shellWatcher() {
        func feed(_ text: String, chunk: Int) -> LoginRecord? {
            let w = ShellWatcher()
            let bytes = Array(text.utf8)
            var i = 0
            while i < bytes.count {
                let part = Array(bytes[i..<min(i + chunk, bytes.count)])
                if let r = part.withUnsafeBytes({ w.feed($0) }) { return r }
                i += chunk
            }
            return w.finish()
        }
        let id = "uid=0(root) gid=0(root) groups=0(root)"
        for chunk in [1, 2, 7, 1000] {
            #expect(feed("id\n" + id + "\n$ ", chunk: chunk)?.output == id, "chunk \(chunk)")
            #expect(feed(id, chunk: chunk)?.output == id, "no newline before the end, chunk \(chunk)")
        }
        #expect(feed("x\nroot:$6$abc$def:19000:0:99999:7:::\n", chunk: 1)?.mechanism == "shadow")
        #expect(feed("root:x:0:0:root:/root:/bin/bash\n", chunk: 3)?.mechanism == "passwd")
        #expect(feed("Microsoft Windows [Version 10.0.19045.3570]\r\n(c) Microsoft Corporation.\r\n\r\nC:\\Users\\bob>", chunk: 5)?.mechanism == "cmd.exe")
        #expect(feed("Windows PowerShell\r\nCopyright (C) Microsoft Corporation. All rights reserved.\r\n", chunk: 4)?.mechanism == "PowerShell")
        // Not a shell: key=value ids, root: inside a line, PowerShell named without its banner.
        #expect(feed("uid=4711;gid=100;name=alice\n", chunk: 1) == nil)
        #expect(feed("uid=12(bob)gid=3(x)\n", chunk: 1) == nil)
        #expect(feed("mount /srv/root:/data\n", chunk: 1) == nil)
        #expect(feed("agent=Windows PowerShell 5.1\n", chunk: 1) == nil)
        // Past the first 8 KiB nothing is read.
        #expect(feed(String(repeating: "a", count: ShellWatcher.limit) + id + "\n", chunk: 512) == nil)
    }

    /// IRC registration recognised from the client's first bytes only when it is one.
    @Test func ircRegistrationIsRecognised() {
        #expect(ApplicationLayer.ircRegistration(Array("NICK bob\r\nUSER bob 0 * :Bob\r\n".utf8)))
        #expect(ApplicationLayer.ircRegistration(Array("CAP LS 302\r\n".utf8)))
        #expect(ApplicationLayer.ircRegistration(Array("PASS s3cret\r\nNICK bob\r\n".utf8)))
        // FTP's and POP3's USER without a NICK line is not IRC.
        #expect(!ApplicationLayer.ircRegistration(Array("USER anonymous\r\n".utf8)))
        #expect(!ApplicationLayer.ircRegistration(Array("PASS hunter2\r\n".utf8)))
    }

    /// Bot nicknames: a country or OS tag beside a number, between separators; people's nicknames are not.
    @Test func botNicknames() {
        for nick in ["[P00|GBR|64180]", "USA|XP|4711", "{DEU-7731}", "[FRA]-123456"] { #expect(C2ChannelDetector.botShape(nick) != nil, "\(nick)") }
        for nick in ["john_doe", "Bob-FR", "alice2024", "[away]", "DJ|Mike", "x_123"] { #expect(C2ChannelDetector.botShape(nick) == nil, "\(nick)") }
    }

    /// A Referer names the request itself when scheme aside its host (ports aside) and path are the request's.
    @Test func selfReferringRequests() {
        #expect(DetectionEngine.refersToItself("http://82.118.225.196/OK21pq", host: "82.118.225.196:7080", uri: "/OK21pq"))
        #expect(DetectionEngine.refersToItself("https://[2001:db8::1]:8443/a/b/", host: "[2001:db8::1]", uri: "/a/b/"))
        #expect(!DetectionEngine.refersToItself("http://82.118.225.196/", host: "82.118.225.196", uri: "/OK21pq"))
        #expect(!DetectionEngine.refersToItself("http://198.51.100.7/OK21pq", host: "82.118.225.196", uri: "/OK21pq"))
        #expect(!DetectionEngine.refersToItself("82.118.225.196/OK21pq", host: "82.118.225.196", uri: "/OK21pq"))
    }

    /// The suffix table of the rules' `suffix` tests decides as comparing the name with every suffix does, on names
    /// built from the suffixes' own labels (so that near misses abound) and on the public-IP rule's list.
    @Test func suffixTableAgreesWithComparisons() {
        let lists = [["evil.com", "co.uk", "a.b.c", "x"], ["ipify.org", "checkip.amazonaws.com", "ip-api.com", "ifconfig.me", "icanhazip.com"]]
        var rng = SystemRandomNumberGenerator()
        for list in lists {
            let table = DomainSuffixSet(list)
            let labels = Set(list.flatMap { $0.split(separator: ".").map(String.init) }).sorted() + ["www", "notevil", "com", "uk", ""]
            var names = list + list.map { "www." + $0 } + list.map { "not" + $0 } + ["", ".", "com", "evil.com.", "..evil.com"]
            for _ in 0..<2000 {
                names.append((0..<Int.random(in: 1...4, using: &rng)).map { _ in labels.randomElement(using: &rng)! }.joined(separator: "."))
            }
            for var name in names + names.map({ $0.uppercased() }) {
                let expected = list.contains { RuleCondition.domain(name.lowercased(), endsWith: $0) }
                #expect(name.withUTF8 { table.contains(suffixOf: $0) } == expected, "\(name) in \(list)")
            }
            // Bytes of 0x80 and above among those read: nil, the caller lower-cases as Unicode first. "evil.com" is
            // found before the pass reaches them; the second list's longest suffix makes it read them.
            var kelvin = "\u{212A}.evil.com"
            let found = kelvin.withUTF8 { table.contains(suffixOf: $0) }
            #expect(list.contains("evil.com") ? found == true : found == nil)
        }
    }

    /// What a rule needs of a flow (a certificate, an HTTP request) is derived so that a flow without it never
    /// matches: checked against the condition tree on flows with and without each, for tests of every shape
    /// (`not`, `ne`, `any` of mixed parts), and on the default pack's rules.
    @Test func ruleNeedsNeverSkipAMatch() throws {
        let yaml = """
            rules:
              - {id: c1, category: x, severity: low, message: m, when: {cert_subject: {contains: london}}}
              - {id: c2, category: x, severity: low, message: m, when: {not: {cert_self_signed: true}}}
              - {id: c3, category: x, severity: low, message: m, when: {cert_self_signed: {ne: true}}}
              - {id: h1, category: x, severity: low, message: m, when: {all: [{http_host_ip: true}, {dest_port: 80}]}}
              - {id: h2, category: x, severity: low, message: m, when: {http_method: {ne: GET}}}
              - {id: h3, category: x, severity: low, message: m, when: {http_host_ip: false}}
              - {id: h4, category: x, severity: low, message: m, when: {any: [{http_method: POST}, {cert_self_signed: true}]}}
              - {id: h5, category: x, severity: low, message: m, when: {any: [{http_uri: {contains: /a}}, {http_user_agent: {matches: curl}}]}}
              - {id: h6, category: x, severity: low, message: m, when: {http_method: {not_in: [GET]}}}
            """
        let rules = try RulePack.parse(yaml, file: "t.yaml").rules + RulePack.embedded().rules
        let needs = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, $0.needs) })
        #expect(needs["c1"] == .certificate && needs["c2"] == [] && needs["c3"] == .certificate)
        #expect(needs["h1"] == .http && needs["h2"] == [] && needs["h3"] == [] && needs["h4"] == [] && needs["h5"] == .http && needs["h6"] == [])
        #expect(needs["siphon.rule.trojan-default-certificate"] == .certificate && needs["siphon.rule.rat-default-certificate"] == .certificate)
        #expect(needs["siphon.rule.emotet-post-checkin"] == .http && needs["siphon.rule.emotet-cookie-checkin"] == .http)
        #expect(needs["siphon.rule.public-ip-lookup"] == [])
        var withCertificate = FlowFacts()
        withCertificate.certificate = X509Summary(
            subject: "CN=London test", issuer: "CN=London test", subjectCommonName: "London test", serial: "01", notBefore: nil,
            notAfter: nil, dnsNames: [], ipAddresses: [], selfIssued: true, sha1: "", sha256: "")
        var withRequest = FlowFacts()
        withRequest.httpMethods = ["POST"]
        withRequest.httpURIs = ["/a"]
        withRequest.httpHostIsAddress = true
        for facts in [FlowFacts(), withCertificate, withRequest] {
            for port: UInt16 in [80, 443] {
                let key = FlowKey(a: IPAddress("192.0.2.1")!, portA: 50000, b: IPAddress("198.51.100.7")!, portB: port, ipProtocol: 6, vlan: 0)
                let ended = EndedFlow(flow: Flow(key: key, id: 1, initiatorIsA: true, start: .zero), sent: 10, received: 10,
                                      resolvedNames: [], names: [], destination: nil, app: "http")
                let c = RuleContext(flow: ended, totals: nil, facts: facts)
                let has = RuleCondition.Needs.of(c)
                for r in rules where !has.isSuperset(of: r.needs) {
                    #expect(!r.condition.evaluate(c), "\(r.id) would match without \(r.needs)")
                }
            }
        }
    }

    /// The body prefilter for password fields (read in place) decides as the generic one does, on random bytes with
    /// the words planted in any case at any offset.
    @Test func secretPrefilterAgrees() {
        var rng = SystemRandomNumberGenerator()
        let words = ["pass", "PaSs", "pwd", "PWD", "pas", "pw", "ssap", "password=", "x_pwd"]
        for _ in 0..<3000 {
            var bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...127, using: &rng) }
            if Bool.random(using: &rng), let w = words.randomElement(using: &rng) {
                bytes.insert(contentsOf: Array(w.utf8), at: Int.random(in: 0...bytes.count, using: &rng))
            }
            #expect(HTTPCredentials.mayHoldSecret(bytes) == HTTPCredentials.mayHoldSecret(bytes[...]), "\(bytes)")
        }
        #expect(HTTPCredentials.mayHoldSecret(Array("user=a&PASS=b".utf8)) && HTTPCredentials.mayHoldSecret(Array("pwd".utf8)))
        #expect(!HTTPCredentials.mayHoldSecret(Array("pas pw".utf8)))
    }

    /// The host-info prefilter, read in place, decides as the byte-by-byte key builder it replaced (kept here as the
    /// reference) on form and JSON bodies built from the keys it knows, and on random bytes.
    @Test func hostInfoPrefilterAgrees() {
        func reference(_ bytes: [UInt8]) -> Bool {
            var seen: Set<HostInfo.Kind> = [], key: [UInt8] = [], inKey = true
            for b in bytes {
                switch b {
                case UInt8(ascii: "&"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "{"), UInt8(ascii: ","):
                    key.removeAll()
                    inKey = true
                case UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "\""):
                    guard inKey, !key.isEmpty else { continue }
                    inKey = false
                    if let kind = HostInfo.kinds[String(decoding: key, as: UTF8.self)] { seen.insert(kind) }
                default:
                    guard inKey else { continue }
                    let c = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
                    if (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) {
                        if key.count < 24 { key.append(c) } else { inKey = false }
                    } else if !(c == 0x20 || c == 0x5F || c == 0x2D || c == 0x2E || c == 0x09) {
                        inKey = false
                    }
                }
            }
            return seen.count >= HostInfo.minimumKinds && !seen.isDisjoint(with: HostInfo.identifying)
        }
        var rng = SystemRandomNumberGenerator()
        let keys = HostInfo.kinds.keys.sorted() + ["PC_Name", "user-name", "O.S", "x", "hwid9", String(repeating: "a", count: 30)]
        var held = 0
        for round in 0..<3000 {
            var body: [UInt8]
            if round % 3 == 0 {
                body = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                let fields = (0..<Int.random(in: 1...6, using: &rng)).map { _ in keys.randomElement(using: &rng)! }
                let text = round % 3 == 1 ? fields.map { "\($0)=v\(Int.random(in: 0...9, using: &rng))" }.joined(separator: "&")
                    : "{" + fields.map { "\"\($0)\": \"v\"" }.joined(separator: ", ") + "}"
                body = Array(text.utf8)
            }
            let r = reference(body)
            #expect(HostInfo.mayHold(body) == r, "\(String(decoding: body, as: UTF8.self))")
            if r { held += 1 }
        }
        // The planted keys make enough bodies host data for the comparison to mean something.
        #expect(held > 100)
    }

    /// The label model trained on the shipped Public Suffix List: random letters and hex look generated, the names
    /// of apps and sites people use do not (none of them is in the list it trained on).
    @Test func nameRandomnessTellsGeneratedLabels() {
        let model = NameRandomness.shared
        #expect(model.trainingLabels > 4000 && model.heldOutLabels > 1000 && model.threshold.isFinite)
        // A seeded generator (SplitMix64): the same labels on every run.
        var state: UInt64 = 42
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func label(_ alphabet: String, _ length: Int) -> String {
            let a = Array(alphabet)
            return String((0..<length).map { _ in a[Int(next() % UInt64(a.count))] })
        }
        let letters = (0..<1000).map { _ in label("abcdefghijklmnopqrstuvwxyz", 8 + Int(next() % 9)) }
        let hex = (0..<1000).map { _ in label("0123456789abcdef", 8 + Int(next() % 9)) }
        #expect(letters.filter(model.isRandom).count >= 900, "\(letters.filter(model.isRandom).count) of 1000")
        #expect(hex.filter(model.isRandom).count >= 980)
        let chosen = ["wikipedia", "facebook", "youtube", "amazonaws", "microsoft", "netflix", "instagram", "whatsapp",
                      "telegram", "doubleclick", "googleapis", "cloudflare", "akamaihd", "snapchat", "spotify", "leboncoin",
                      "francetvinfo", "lefigaro", "marmiton", "allocine", "doctolib", "boursorama", "cdiscount", "dailymotion",
                      "linkedin", "pinterest", "tiktokcdn", "bytedance", "alibaba", "aliexpress", "kaspersky", "crashlytics",
                      "firebaseio", "appsflyer", "onesignal", "pushwoosh", "lemondeinformatique", "weatherwidget"]
        #expect(chosen.filter(model.isRandom).isEmpty, "\(chosen.filter(model.isRandom))")
        // Too short to judge, or not a label of letters, digits and hyphens: never random.
        #expect(!model.isRandom("xqzjvk") && !model.isRandom("xqz_jvkwpq") && model.score("ab.cd") == nil)
    }

    /// The table shipped in NameModel.swift (written by scripts/name_model.py) is what training on the shipped
    /// Public Suffix List gives in Swift: same label counts, same threshold, same probabilities.
    @Test func nameModelIsTheListsTraining() {
        let shipped = NameRandomness.shared, trained = NameRandomness.trainedOnBundledList()
        #expect(shipped.trainingLabels == trained.trainingLabels && shipped.heldOutLabels == trained.heldOutLabels)
        #expect(abs(shipped.threshold - trained.threshold) < 1e-12)
        #expect(shipped.logProbability.count == trained.logProbability.count
                && zip(shipped.logProbability, trained.logProbability).allSatisfy { abs($0 - $1) < 1e-12 })
    }
}
