import Foundation
import Siphon
import Testing

/// The GSM air interface (issue 16): GSMTAP decoding against tshark on the generated bench
/// (scripts/gen_cellular.py, captures/gsm), detections on numbers, and the numbering plan.
@Suite struct GSMTests {
    static let bench = "captures/gsm/gsm-bench.pcap"

    /// tshark's fields per frame (all occurrences joined by "|").
    static func tsharkFields(_ path: String, _ fields: [String]) -> [Int: [String: [String]]] {
        let r = shell("(tshark -r '\(path)' -T fields -E separator=/t -E occurrence=a -E aggregator='|' "
            + (["frame.number"] + fields).map { "-e \($0)" }.joined(separator: " ") + ") 2>/dev/null")
        var out: [Int: [String: [String]]] = [:]
        for line in r.out.split(separator: "\n") {
            let v = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard v.count == fields.count + 1, let frame = Int(v[0]) else { continue }
            var row: [String: [String]] = [:]
            for (f, value) in zip(fields, v.dropFirst()) where !value.isEmpty { row[f] = value.components(separatedBy: "|") }
            if !row.isEmpty { out[frame] = row }
        }
        return out
    }

    /// Every SMS (destination or originator, text, TP-DCS, concatenation part), USSD string, called number and
    /// mobile identity Siphon decodes is tshark's, frame by frame, and each message tshark decodes is an event.
    @Test func messagesEqualTshark() throws {
        let path = Repo.path(Self.bench)
        let t = Self.tsharkFields(path, ["gsm_sms.tp-da", "gsm_sms.tp-oa", "gsm_sms.sms_text", "gsm_sms.tp-dcs",
                                         "gsm_sms.udh.mm.msg_part", "e212.imsi", "gsm_a.imeisv", "3gpp.tmsi",
                                         "gsm_map.ussd_string", "gsm_a.dtap.msg_cc_type", "gsm_a.dtap.cld_party_bcd_num"])
        let (events, result) = scanEvents(path)
        #expect(result.error == nil && result.statistics.undecodableTotal == 0)
        let byFrame = Dictionary(grouping: events.filter { ["sms", "ussd", "call", "mobility"].contains($0["event_type"] as? String ?? "") },
                                 by: { $0["frame"] as! Int })
        var smsCompared = 0, ussdCompared = 0, identities = 0, calls = 0
        for (frame, row) in t {
            let ours = byFrame[frame] ?? []
            if let da = row["gsm_sms.tp-da"] ?? row["gsm_sms.tp-oa"] {
                let e = try #require(ours.first { $0["event_type"] as? String == "sms" }, "frame \(frame)")
                let sms = e["sms"] as! [String: Any]
                let number = (e["dest_number"] ?? e["src_number"]) as! String
                #expect(number == "+" + da[0], "frame \(frame)")
                #expect(sms["tp_dcs"] as? Int == Int(row["gsm_sms.tp-dcs"]![0]), "frame \(frame)")
                // tshark lists a concatenated message's parts' texts in order, this part's last.
                let texts = row["gsm_sms.sms_text"] ?? []
                #expect(sms["text"] as? String == texts.last, "frame \(frame)")
                if let part = row["gsm_sms.udh.mm.msg_part"] {
                    #expect((sms["concat"] as? [String: Any])?["part"] as? Int == Int(part[0]), "frame \(frame)")
                    if texts.count > 1 { #expect(sms["assembled_text"] as? String == texts.joined(), "frame \(frame)") }
                }
                smsCompared += 1
            }
            if let ussd = row["gsm_map.ussd_string"] {
                let e = try #require(ours.first { $0["event_type"] as? String == "ussd" }, "frame \(frame)")
                // A carriage return that pads the last octet is no character (TS 23.038 6.1.2.3.1); tshark keeps it.
                var want = ussd[0]
                if want.hasSuffix("\\r") { want.removeLast(2) }  // tshark writes the control character escaped
                #expect((e["ussd"] as! [String: Any])["string"] as? String == want)
                ussdCompared += 1
            }
            if row["gsm_a.dtap.msg_cc_type"]?.first == "0x05", let called = row["gsm_a.dtap.cld_party_bcd_num"] {
                let e = try #require(ours.first { $0["event_type"] as? String == "call" }, "frame \(frame)")
                #expect(e["dest_number"] as? String == "+" + called[0])
                calls += 1
            }
            for (field, kind) in [("e212.imsi", "imsi"), ("gsm_a.imeisv", "imeisv"), ("3gpp.tmsi", "tmsi")] {
                guard let values = row[field] else { continue }
                let e = try #require(ours.first { $0["event_type"] as? String == "mobility" }, "frame \(frame)")
                let ids = ((e["mobility"] as! [String: Any])["identities"] as! [[String: Any]]).filter { $0["type"] as? String == kind }
                let want = kind == "tmsi" ? values.map { String(format: "%08x", UInt32($0)!) } : values
                #expect(ids.map { $0["value"] as! String } == want, "frame \(frame) \(kind)")
                identities += 1
            }
        }
        let manifest = try #require(try Repo.json("captures/gsm/gsm-bench.json") as? [String: Any])
        let messages = manifest["messages"] as! [[String: Any]]
        #expect(smsCompared == messages.filter { ($0["kind"] as! String).hasPrefix("sms") }.count)
        #expect(ussdCompared == 2 && calls == 1 && identities >= 3)
        // And no SMS event tshark does not see.
        #expect(events.filter { $0["event_type"] as? String == "sms" }.count == smsCompared)
    }

    /// The scenario (manifest gsm-bench.json): the foreign SMS carrying the IMEI raises identifier-leak and
    /// foreign-endpoint for its number; the IMSI cut across a concatenated SMS is found in the whole text; the
    /// heartbeat SMS are a beacon at the manifest's period; the SMS home, the one received and the USSD query raise
    /// nothing above info; every alert names the phone by its IMSI and the frames that carried the message.
    @Test func numbersAreJudged() throws {
        let manifest = try #require(try Repo.json("captures/gsm/gsm-bench.json") as? [String: Any])
        let phone = manifest["phone"] as! [String: String]
        let (events, _) = scanEvents(Repo.path(Self.bench))
        let alerts = events.filter { $0["event_type"] as? String == "alert" }
        func about(_ number: String) -> [[String: Any]] { alerts.filter { $0["dest_number"] as? String == number } }
        func categories(_ number: String) -> Set<String> { Set(about(number).map { ($0["alert"] as! [String: Any])["category"] as! String }) }
        #expect(alerts.allSatisfy { $0["device_id"] as? String == "imsi:" + phone["imsi"]! && $0["flow_id"] == nil })
        #expect(categories("+8613800138000").isSuperset(of: ["identifier-leak", "foreign-endpoint"]))
        let leaks = about("+8613800138000").filter { ($0["alert"] as! [String: Any])["category"] as? String == "identifier-leak" }
        let values = Set(leaks.map { ($0["evidence"] as! [String: Any])["value"] as! String })
        #expect(values.isSuperset(of: [phone["imei"]!, phone["imsi"]!]))
        #expect(leaks.allSatisfy { ($0["dest_number_geo"] as? [String: Any])?["country"] as? String == "CN" })
        // The IMSI split between the two parts: the alert names both parts' frames (tshark's message frames).
        let imsiLeak = try #require(leaks.first { ($0["evidence"] as! [String: Any])["value"] as? String == phone["imsi"] })
        let frames = (imsiLeak["frames"] as! [[String: Any]]).map { $0["frame"] as! Int }
        let parts = Self.tsharkFields(Repo.path(Self.bench), ["gsm_sms.udh.mm.msg_part"]).keys.sorted()
        #expect(frames == parts)
        #expect(categories("+79161234567").isSuperset(of: ["identifier-leak", "foreign-endpoint"]))
        #expect(about("+33612345678").isEmpty && about("+33698765432").isEmpty)
        // The USSD exchange: no alert at its frames.
        let ussdFrames = Set(events.filter { $0["event_type"] as? String == "ussd" }.map { $0["frame"] as! Int })
        #expect(!alerts.contains { ($0["frames"] as? [[String: Any]] ?? []).contains { ussdFrames.contains($0["frame"] as! Int) } })
        // The heartbeat.
        let heartbeat = manifest["heartbeat"] as! [String: Any]
        let times = heartbeat["times"] as! [Double]
        let beacon = try #require(about(heartbeat["number"] as! String).first { ($0["alert"] as! [String: Any])["category"] as? String == "beaconing" })
        let evidence = beacon["evidence"] as! [String: Any]
        #expect(evidence["contacts"] as? Int == times.count)
        let intervals = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        let median = (intervals[intervals.count / 2] + intervals[(intervals.count - 1) / 2]) / 2
        #expect(abs((evidence["median_interval_s"] as! Double) - median) < 0.01)
        // The verdict lists the numbers beside the (absent) IP endpoints, abroad first.
        let verdict = try #require(events.first { $0["event_type"] as? String == "verdict" && $0["device_id"] as? String == "imsi:" + phone["imsi"]! })
        let numbers = (verdict["numbers"] as! [[String: Any]]).map { $0["number"] as! String }
        #expect(Set(numbers) == ["+8613800138000", "+79161234567", "+8613900139000", "+861012345678", "+33612345678", "+33698765432"])
        #expect(numbers.suffix(2).allSatisfy { $0.hasPrefix("+33") })
        #expect(verdict["chosen"] as? String == "gsm")
        let s = try #require(verdict["subscriber"] as? [String: Any])
        #expect(s["imsi"] as? String == phone["imsi"] && s["imei"] as? String == phone["imei"] && s["tmsi"] as? String == phone["tmsi"])
        // The BTS and the host it reports to are not devices.
        #expect(events.filter { $0["event_type"] as? String == "verdict" }.count == 1)
    }

    /// GSMTAP as a link type (no UDP): the same messages and alerts as over UDP.
    @Test func gsmtapLinkTypeGivesTheSameEvents() throws {
        func digest(_ path: String) -> [String] {
            scanEvents(Repo.path(path)).events.filter { ["sms", "ussd", "call", "mobility", "alert"].contains($0["event_type"] as? String ?? "") }
                .map { e in
                    var e = e
                    e["capture"] = nil
                    if var a = e["alert"] as? [String: Any] { a["message"] = nil; e["alert"] = a }
                    return String(data: try! JSONSerialization.data(withJSONObject: e, options: .sortedKeys), encoding: .utf8)!
                }
        }
        let udp = digest(Self.bench), linkType = digest("captures/gsm/gsm-bench-linktype.pcap")
        #expect(udp.count > 40 && udp == linkType)
    }

    /// Cut copies of the bench: every GSMTAP packet cut inside its LAPDm frame or L3 message is counted, none
    /// crashes the scan, and what was decodable still is.
    @Test(arguments: [30, 45, 55, 62])
    func cutMessagesAreCountedNotFatal(_ snaplen: Int) throws {
        let dir = try temporaryFolder("gsm-cut-\(snaplen)")
        let cut = dir + "/cut.pcap"
        let r = shell("editcap -s \(snaplen) '\(Repo.path(Self.bench))' '\(cut)'")
        #expect(r.status == 0)
        let (events, result) = scanEvents(cut)
        #expect(result.error == nil && result.statistics.packets == 160)
        #expect(result.statistics.decoded + result.statistics.undecodableTotal == 160)
        // Each cut GSMTAP packet is counted somewhere: undecodable (cut before its UDP payload), a LAPDm frame cut
        // short, or a message whose elements break off; none is silently lost.
        let s = result.statistics
        let counted = Int(s.undecodableTotal) + Int(s.gsmtapTruncated) + Int(s.lapdmTruncated) + Int(s.gsmMalformed)
        #expect(counted > 0, "snaplen \(snaplen)")
        // Every packet is GSMTAP read whole or cut, or undecodable below it; none is taken for another protocol.
        #expect(s.gsmtapPackets + s.gsmtapTruncated + s.undecodableTotal == 160 && s.gsmtapOther == 0, "snaplen \(snaplen)")
        #expect(events.contains { $0["event_type"] as? String == "stats" })
    }

    /// Alphabets (TS 23.038): the 128 characters of the default alphabet and its escapes, packed by hand.
    @Test func gsm7AndUCS2() {
        // "hello" packed (TS 23.038 example: E8 32 9B FD 06).
        let packed: [UInt8] = [0xE8, 0x32, 0x9B, 0xFD, 0x06]
        #expect(packed.withUnsafeBytes { GSM7.decode($0, septets: 5) } == "hello")
        // "[€]": escape 0x1B then 0x3C, 0x65, 0x3E: septets 1B 3C 1B 65 1B 3E, packed LSB first.
        let septets: [UInt8] = [0x1B, 0x3C, 0x1B, 0x65, 0x1B, 0x3E]
        var bits = 0, n = 0, out: [UInt8] = []
        for s in septets {
            bits |= Int(s) << n
            n += 7
            while n >= 8 { out.append(UInt8(bits & 0xFF)); bits >>= 8; n -= 8 }
        }
        if n > 0 { out.append(UInt8(bits)) }
        #expect(out.withUnsafeBytes { GSM7.decode($0, septets: 6) } == "[€]")
        #expect(([0x04, 0x1F, 0x04, 0x40, 0xD8, 0x3D, 0xDE, 0x00] as [UInt8]).withUnsafeBytes { UCS2.decode($0) } == "Пр😀")
    }

    /// Numbers classified by the numbering plan, against the national plans (ARCEP for France, NANPA and the
    /// Canadian plan for +1, Rossvyaz and Kazakhstan's plan for +7, ITU-T E.164 assignments).
    @Test func numberingPlan() throws {
        let plan = try #require(NumberingPlan.embedded)
        let home: Set<String> = ["FR"]
        func check(_ n: String, international: Bool = true, _ country: String?, _ kind: String?, _ scope: GeoInfo.Scope) {
            let info = plan.classify(n, international: international, home: home)
            #expect(info?.country == country, "\(n)")
            #expect(info?.kind == kind, "\(n): \(info?.kind ?? "nil")")
            #expect(info?.scope == scope, "\(n)")
        }
        check("33612345678", "FR", "mobile", .home)
        check("33899123456", "FR", "premium-rate", .home)  // ARCEP: 089x premium-rate services
        check("33800123456", "FR", "toll-free", .home)  // ARCEP: 0800-0805 free
        check("8613800138000", "CN", "mobile", .foreign)
        check("79161234567", "RU", "mobile", .foreign)  // +7 9xx: Russian mobile
        check("77012345678", "KZ", "mobile", .foreign)  // +7 70x: Kazakhstan mobile
        // The NANP does not tell mobile from fixed numbers.
        check("14165550123", "CA", "fixed-line-or-mobile", .foreign)  // area code 416: Toronto
        check("12125551234", "US", "fixed-line-or-mobile", .foreign)  // 212: New York
        #expect(plan.classify("18765551234", international: true, home: home)?.country == "JM")  // 876: Jamaica
        check("447400123456", "GB", "mobile", .foreign)  // Ofcom: 07400 mobile
        check("447911123456", "GG", "mobile", .foreign)  // 07911 12: Guernsey's range inside +44
        check("882161234567", nil, "non-geographic", .foreign)  // +882: international networks
        check("0612345678", international: false, "FR", "mobile", .home)  // national form
        check("0086138001380000", international: false, "CN", nil, .foreign)  // international prefix 00
        check("36111", international: false, "FR", "short-code", .home)
    }
}
