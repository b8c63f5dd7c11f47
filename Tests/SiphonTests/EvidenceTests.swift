import Foundation
import Siphon
import Testing

/// Issue 15: every flow and alert names the packets it rests on, as Wireshark numbers them.
@Suite("Packet references")
struct FrameReferenceTests {
    static let device = "192.168.1.23"

    /// The `frames` of a scan's alerts of one category, per destination.
    static func alertFrames(_ events: [[String: Any]], category: String) -> [(dest: String, value: String?, frames: [Int], interfaces: [Int])] {
        events.filter { $0["event_type"] as? String == "alert" && ($0["alert"] as? [String: Any])?["category"] as? String == category }
            .map { e in
                let frames = (e["frames"] as? [[String: Any]]) ?? []
                return (e["dest_ip"] as? String ?? "", (e["evidence"] as? [String: Any])?["value"] as? String,
                        frames.compactMap { $0["frame"] as? Int }, frames.compactMap { $0["interface"] as? Int })
            }
    }

    /// Frame numbers tshark reports for a display filter.
    static func tsharkFrames(_ capture: String, _ filter: String) -> [Int] {
        let r = shell("(tshark -r '\(capture)' -Y '\(filter)' -T fields -e frame.number) 2>/dev/null")
        return r.out.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    static func temporaryDirectory() throws -> String {
        let dir = temporaryPath("siphon-evidence-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The generator knows which packets carry each identifier's bytes (scripts/gen_evidence.py): one cut across
    /// two segments, one in a segment captured before the segment that precedes it, one after 2,000 bytes.
    /// The same capture as pcapng (editcap) gives the same frames, each naming interface 0.
    @Test func identifierFramesAreThePacketsThatCarriedTheBytes() throws {
        let manifest = try #require(try Repo.json("captures/evidence/split-segments.json") as? [String: Any])
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = Repo.path("captures/evidence/split-segments.pcap")
        let pcapng = dir + "/split-segments.pcapng"
        #expect(shell("editcap -F pcapng '\(pcap)' '\(pcapng)'").status == 0)
        for (capture, isNG) in [(pcap, false), (pcapng, true)] {
            let leaks = Self.alertFrames(scanEvents(capture).events, category: "identifier-leak")
            for name in ["straddle", "reordered", "plain"] {
                let expected = try #require(manifest[name] as? [String: Any])
                let dest = expected["dest_ip"] as? String
                let found = leaks.filter { $0.dest == dest }
                #expect(found.count == 1, "\(name): \(found)")
                #expect(found.first?.value == expected["value"] as? String)
                #expect(found.first?.frames == expected["frames"] as? [Int], "\(name) in \(capture)")
                #expect(found.first?.interfaces == (isNG ? found.first?.frames.map { _ in 0 } : []))
            }
        }
        // Where the identifier is whole in one packet, tshark finds the same one.
        for name in ["reordered", "plain"] {
            let expected = try #require(manifest[name] as? [String: Any])
            let value = try #require(expected["value"] as? String)
            let dest = try #require(expected["dest_ip"] as? String)
            #expect(Self.tsharkFrames(pcap, "frame contains \"\(value)\" && ip.dst == \(dest)") == expected["frames"] as? [Int])
        }
    }

    /// On the detector scenarios, each identifier-leak names exactly the frames tshark finds holding the value
    /// the device sent (`frame contains`), in the pcap and in the pcapng form of the capture.
    @Test(arguments: ["leak-imei-http-post", "leak-imei-dns", "leak-imsi-iccid-uri", "leak-location-json"])
    func identifierLeakFramesEqualTsharks(_ scenario: String) throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pcap = Repo.path("captures/scenarios/\(scenario).pcap")
        let pcapng = dir + "/\(scenario).pcapng"
        #expect(shell("editcap -F pcapng '\(pcap)' '\(pcapng)'").status == 0)
        var compared = 0
        for capture in [pcap, pcapng] {
            for leak in Self.alertFrames(scanEvents(capture).events, category: "identifier-leak") {
                let value = try #require(leak.value)
                let expected = Self.tsharkFrames(capture, "frame contains \"\(value)\" && ip.src == \(Self.device)")
                #expect(!expected.isEmpty)
                #expect(leak.frames == expected, "\(scenario) \(value): siphon \(leak.frames), tshark \(expected)")
                compared += 1
            }
        }
        #expect(compared >= 2)
    }

    /// Two captures merged into one pcapng file with an interface each (mergecap -I none): the alerts' frames and
    /// interfaces are tshark's `frame.number` and `frame.interface_id` for the packets holding the IMEI.
    @Test func mergedPcapngFramesNameTheirInterface() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let merged = dir + "/merged.pcapng"
        let a = Repo.path("captures/scenarios/benign-french-browsing.pcap")
        let b = Repo.path("captures/evidence/split-segments.pcap")
        #expect(shell("mergecap -I none -w '\(merged)' '\(a)' '\(b)'").status == 0)
        let leaks = Self.alertFrames(scanEvents(merged).events, category: "identifier-leak")
        #expect(leaks.count == 3)
        for leak in leaks {
            let value = try #require(leak.value)
            let r = shell("(tshark -r '\(merged)' -Y 'tcp.payload contains \"\(value)\" && ip.dst == \(leak.dest)' -T fields -e frame.number -e frame.interface_id) 2>/dev/null")
            let rows = r.out.split(separator: "\n").map { $0.split(separator: "\t").compactMap { Int($0) } }.filter { $0.count == 2 }
            if leak.frames.count == 1 {
                #expect(rows.map { $0[0] } == leak.frames)
                #expect(rows.map { $0[1] } == leak.interfaces)
                #expect(leak.interfaces == [1])
            } else {
                // The straddling IMEI is in neither packet whole: its two packets are the flow's two data packets.
                let data = shell("(tshark -r '\(merged)' -Y 'tcp.len > 0 && ip.dst == \(leak.dest) && tcp.dstport == 5555' -T fields -e frame.number) 2>/dev/null")
                #expect(data.out.split(separator: "\n").compactMap { Int($0) } == leak.frames)
            }
        }
    }

    /// Two pcapng files one after the other make a file of two sections (interface IDs start again in the second):
    /// frame numbers run on across sections as tshark's do, and an alert of the second section extracts to a file
    /// tshark reads whole, with the flow's packets.
    @Test func secondSectionFramesAndExtraction() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a.pcapng", b = dir + "/b.pcapng", multi = dir + "/multi.pcapng"
        #expect(shell("editcap -F pcapng '\(Repo.path("captures/scenarios/leak-imei-http-post.pcap"))' '\(a)'").status == 0)
        #expect(shell("editcap -F pcapng '\(Repo.path("captures/evidence/split-segments.pcap"))' '\(b)'").status == 0)
        #expect(shell("cat '\(a)' '\(b)' > '\(multi)'").status == 0)
        let events = scanEvents(multi).events
        let leaks = Self.alertFrames(events, category: "identifier-leak")
        #expect(leaks.count == 3)
        for leak in leaks {
            let value = try #require(leak.value)
            #expect(leak.frames == Self.tsharkFrames(multi, "frame contains \"\(value)\" && ip.dst == \(leak.dest)"), "\(leak)")
        }
        let second = try #require(events.first { ($0["alert"] as? [String: Any])?["category"] as? String == "identifier-leak" && $0["dest_ip"] as? String == "120.77.166.22" })
        let id = try #require(second["alert_id"] as? Int)
        let out = dir + "/second.pcapng"
        #expect(try runSiphon(["extract", multi, "--alert", "\(id)", "-o", out]).status == 0)
        #expect(Self.tsharkFrames(out, "tcp").count == Self.tsharkFrames(multi, "ip.addr == 120.77.166.22").count)
        #expect(Self.tsharkFrames(out, "frame contains \"490154203237518\"").count == 1)
    }

    /// Each flow's `first_frame` and `last_frame` are the first and last frames tshark puts in its TCP or UDP
    /// conversation (tcp.stream / udp.stream), for the conversations that are one flow in both.
    @Test(arguments: ["captures/scenarios/beaconing.pcap", "captures/scenarios/leak-imei-http-post.pcap",
                      "captures/scenarios/benign-french-browsing.pcap", "captures/evidence/split-segments.pcap"])
    func flowFramesEqualTsharksConversations(_ relative: String) throws {
        let capture = Repo.path(relative)
        let r = shell("(tshark -r '\(capture)' -T fields -E separator=/t -e frame.number -e ip.src -e ip.dst -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e tcp.stream -e udp.stream) 2>/dev/null")
        var streams: [String: (CanonicalFlow, Int, Int)] = [:]
        for line in r.out.split(separator: "\n", omittingEmptySubsequences: true) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 9, !f.joined().contains(","), let frame = Int(f[0]), !f[1].isEmpty else { continue }
            let tcp = !f[7].isEmpty
            guard tcp || !f[8].isEmpty else { continue }
            let sp = Int(tcp ? f[3] : f[5]) ?? 0, dp = Int(tcp ? f[4] : f[6]) ?? 0
            let key = (tcp ? "t" : "u") + (tcp ? f[7] : f[8])
            let flow = (f[1], sp) < (f[2], dp)
                ? CanonicalFlow(proto: tcp ? "TCP" : "UDP", a: f[1], portA: sp, b: f[2], portB: dp)
                : CanonicalFlow(proto: tcp ? "TCP" : "UDP", a: f[2], portA: dp, b: f[1], portB: sp)
            let old = streams[key] ?? (flow, frame, frame)
            streams[key] = (flow, min(old.1, frame), max(old.2, frame))
        }
        var expected: [CanonicalFlow: [(Int, Int)]] = [:]
        for (flow, first, last) in streams.values { expected[flow, default: []].append((first, last)) }
        var actual: [CanonicalFlow: [(Int, Int)]] = [:]
        for e in scanEvents(capture).events where e["event_type"] as? String == "flow" {
            guard let proto = e["proto"] as? String, proto == "TCP" || proto == "UDP",
                  let s = e["src_ip"] as? String, let d = e["dest_ip"] as? String,
                  let sp = e["src_port"] as? Int, let dp = e["dest_port"] as? Int,
                  let first = e["first_frame"] as? Int, let last = e["last_frame"] as? Int else { continue }
            let flow = (s, sp) < (d, dp) ? CanonicalFlow(proto: proto, a: s, portA: sp, b: d, portB: dp)
                : CanonicalFlow(proto: proto, a: d, portA: dp, b: s, portB: sp)
            actual[flow, default: []].append((first, last))
        }
        var compared = 0
        for (flow, list) in expected where list.count == 1 && actual[flow]?.count == 1 {
            #expect(actual[flow]![0] == list[0], "\(relative) \(flow): siphon \(actual[flow]![0]), tshark \(list[0])")
            compared += 1
        }
        #expect(compared >= 2 && compared * 10 >= expected.count * 9, "\(relative): \(compared) of \(expected.count) conversations compared")
    }
}
