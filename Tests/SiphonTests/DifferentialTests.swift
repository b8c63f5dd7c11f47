import Foundation
import Siphon
import Testing

/// Siphon's flow table against independent tools' figures on real captures.
@Suite struct DifferentialTests {
    static let tsharkFixtures: [String] = Repo.files(in: "captures/diff/expected", extensions: ["json"])

    @Test func fixturesCoverEveryLinkTypeWeDecode() throws {
        #expect(Self.tsharkFixtures.count >= 30)
        var linkTypes = Set<UInt32>()
        for fixture in Self.tsharkFixtures {
            let capture = try #require(try Repo.json("captures/diff/expected/" + (fixture as NSString).lastPathComponent) as? [String: Any])["capture"] as! String
            let (_, result) = scanEvents(Repo.path("captures/diff/" + capture), options: .likeTheOracles)
            linkTypes.formUnion(result.statistics.linkTypes.keys)
        }
        // Ethernet, NULL, RAW, SLL, IPV4, IPV6, SLL2 all occur in the differential set.
        for required: LinkType in [.ethernet, .null, .raw, .linuxSLL, .ipv4, .ipv6, .linuxSLL2] {
            #expect(linkTypes.contains(required.rawValue), "no capture with link type \(required)")
        }
    }

    /// Zeek's fragment tests: overlapping fragments with different bytes. Tshark and Siphon rebuild different
    /// datagrams from them (no oracle agrees on the bytes), so their flows are checked here instead: Siphon reports
    /// as many conflicts as Zeek's `fragment_inconsistency` weirds (baseline of ipv4/fragmented-1 and -4), and every
    /// packet still lands in a flow.
    static let inconsistentFragments: [String: Int] = ["ipv4frag-zeek-frag1.pcap": 2, "ipv4frag-zeek-frag4.pcap": 1]

    @Test func fragmentConflictsMatchZeekWeirds() {
        for (capture, weirds) in Self.inconsistentFragments {
            let (events, result) = scanEvents(Repo.path("captures/diff/" + capture), options: .likeTheOracles)
            let anomalies = events.filter { ($0["anomaly"] as? [String: Any])?["event"] as? String == "ip-fragment-overlap-different-data" }
            #expect(anomalies.count == weirds, "\(capture)")
            // evasion: one alert per datagram whose fragments conflict, about the local side.
            let datagrams = Set(anomalies.map { "\($0["src_ip"] ?? "") \($0["dest_ip"] ?? "") \(($0["anomaly"] as? [String: Any])?["ip_id"] ?? "")" })
            let evasion = events.filter { ($0["alert"] as? [String: Any])?["rule"] as? String == "siphon.evasion.fragment-overlap-different-data" }
            #expect(evasion.count == datagrams.count, "\(capture)")
            #expect(evasion.allSatisfy { ($0["alert"] as? [String: Any])?["severity"] as? String == "medium" && ($0["evidence"] as? [String: Any])?["ip_id"] != nil })
            let inFlows = events.filter { $0["event_type"] as? String == "flow" }.map {
                (($0["client"] as! [String: Any])["packets"] as! Int) + (($0["server"] as! [String: Any])["packets"] as! Int)
            }.reduce(0, +)
            #expect(UInt64(inFlows) == result.statistics.packets, "\(capture)")
        }
        // Fragments left incomplete: tshark -o ipv6.defragment:TRUE lists frame 4 of ipv6frag-zeek-dns (404 bytes,
        // off=2896, ident 1) as a lone "IPv6 fragment"; the other captures have none.
        let dropped: [String: (UInt64, UInt64)] = [
            "ipv4frag-zeek-syn.pcap": (0, 0), "ipv6frag-zeek-dns.pcap": (1, 404), "ipv4frag-ark-socks5.pcap": (0, 0),
            "ipv6-sv-frag-tcp.pcap": (0, 0),
        ]
        for (capture, (fragments, bytes)) in dropped {
            let (events, result) = scanEvents(Repo.path("captures/diff/" + capture), options: .likeTheOracles)
            #expect(!events.contains { $0["event_type"] as? String == "anomaly" }, "\(capture)")
            #expect(result.statistics.datagramsReassembled > 0, "\(capture)")
            #expect(result.statistics.fragmentsDropped == fragments && result.statistics.fragmentBytesDropped == bytes, "\(capture)")
        }
    }

    /// Per 5-tuple, packets and bytes each way equal tshark's (fields aggregated by scripts/tshark_flows.py, IP
    /// defragmentation on: a rebuilt datagram counts each of its fragment frames).
    @Test(arguments: tsharkFixtures.map { ($0 as NSString).lastPathComponent }
        .filter { !inconsistentFragments.keys.contains(($0 as NSString).deletingPathExtension.replacingOccurrences(of: ".tshark", with: "")) })
    func flowsEqualTshark(_ fixtureName: String) throws {
        let fixture = try #require(try Repo.json("captures/diff/expected/" + fixtureName) as? [String: Any])
        let capture = fixture["capture"] as! String
        let (events, result) = scanEvents(Repo.path("captures/diff/" + capture), options: .likeTheOracles)
        #expect(result.error == nil, "\(String(describing: result.error))")

        // Every frame tshark read is a packet we read (pcapng custom blocks are frames to tshark only).
        let frames = (fixture["frames_total"] as! Int) - (fixture["custom_block_frames"] as? Int ?? 0)
        #expect(Int(result.statistics.packets) == frames)
        // Every packet is decoded or counted undecodable.
        #expect(result.statistics.decoded + result.statistics.undecodableTotal == result.statistics.packets)

        var expected: [CanonicalFlow: DirectionFigures] = [:]
        for f in fixture["flows"] as! [[String: Any]] {
            let key = CanonicalFlow(
                proto: f["proto"] as! String, a: normalized(f["a_ip"] as! String), portA: f["a_port"] as! Int,
                b: normalized(f["b_ip"] as! String), portB: f["b_port"] as! Int)
            expected[key] = DirectionFigures(
                abPackets: f["a_to_b_packets"] as! Int, abBytes: f["a_to_b_bytes"] as! Int,
                baPackets: f["b_to_a_packets"] as! Int, baBytes: f["b_to_a_bytes"] as! Int)
        }
        let actual = aggregateFlows(events)
        for key in Set(expected.keys).union(actual.keys).sorted(by: { $0.description < $1.description }) {
            #expect(actual[key] == expected[key], "\(capture) \(key): siphon \(actual[key].map(String.init(describing:)) ?? "none"), tshark \(expected[key].map(String.init(describing:)) ?? "none")")
        }
    }

    static let arkimeFixtures: [String] = Repo.files(in: "captures/arkime/expected", extensions: ["json"])
        .map { ($0 as NSString).lastPathComponent }

    /// Community ID and per-side packet counts equal Arkime's expected sessions. Arkime splits a session it saved
    /// midway into several records and sometimes names the other side "source"; records are summed per Community
    /// ID, and sides matched by address and port rather than by role.
    @Test(arguments: arkimeFixtures)
    func communityIDsAndCountsEqualArkime(_ fixtureName: String) throws {
        let sessions = try #require(try Repo.json("captures/arkime/expected/" + fixtureName) as? [[String: Any]])
        let capture = Repo.path("captures/arkime/" + (fixtureName as NSString).deletingPathExtension + ".pcap")
        let (events, result) = scanEvents(capture, options: .likeTheOracles)
        #expect(result.error == nil)

        struct Side: Hashable { var ip: String; var port: Int }
        func sides(_ e: [String: Any], srcIP: String, srcPort: String, dstIP: String, dstPort: String) -> (Side, Side) {
            (Side(ip: normalized(e[srcIP] as! String), port: e[srcPort] as? Int ?? 0),
             Side(ip: normalized(e[dstIP] as! String), port: e[dstPort] as? Int ?? 0))
        }
        // Packets sent by each side, per Community ID.
        var expected: [String: [Side: Int]] = [:]
        for s in sessions {
            let id = s["community_id"] as! String
            var (src, dst) = sides(s, srcIP: "src_ip", srcPort: "src_port", dstIP: "dst_ip", dstPort: "dst_port")
            // Arkime's test plugin deliberately swaps one session's labels ("flip test"); its counts stay per sender.
            if (s["notes"] as? [String] ?? []).contains(where: { $0.contains("per-side sums swapped") }) { swap(&src, &dst) }
            expected[id, default: [:]][src, default: 0] += s["src_packets"] as! Int
            expected[id, default: [:]][dst, default: 0] += s["dst_packets"] as! Int
        }
        var actual: [String: [Side: Int]] = [:]
        for e in events where e["event_type"] as? String == "flow" {
            let id = e["community_id"] as! String
            var (src, dst) = sides(e, srcIP: "src_ip", srcPort: "src_port", dstIP: "dest_ip", dstPort: "dest_port")
            if e["icmp_type"] != nil { src.port = 0; dst.port = 0 }  // Arkime reports ICMP ports as 0
            actual[id, default: [:]][src, default: 0] += (e["client"] as! [String: Any])["packets"] as! Int
            actual[id, default: [:]][dst, default: 0] += (e["server"] as! [String: Any])["packets"] as! Int
        }
        // Arkime ignores a few packets Siphon counts (garbage TCP with ports 0 in tcpseq_synthetic): compare the
        // sessions Arkime has; every one must exist in Siphon with the same Community ID and counts.
        for (id, perSide) in expected {
            #expect(actual[id] == perSide, "\(fixtureName) \(id): siphon \(actual[id] ?? [:]), arkime \(perSide)")
        }
    }

    /// Zeek's conn.log: histories and per-direction packet counts of connections whose 5-tuple Siphon also sees
    /// as one flow. Zeek-only refinements (G gaps, I, C checksums, t/T repetition scaling) are out of scope here.
    @Test func tcpHistoriesEqualZeekWhereComparable() throws {
        let cases: [(capture: String, fixture: String)] = [
            ("captures/zeek/get.pcap", "get"), ("captures/zeek/missing-syn.pcap", "missing-syn"),
            ("captures/zeek/syn-then-rst.pcap", "syn-then-rst"),
        ]
        for (capture, name) in cases {
            let conns = try #require(try Repo.json("captures/zeek/expected/\(name).conn.json") as? [[String: Any]])
            let (events, _) = scanEvents(Repo.path(capture), options: .likeTheOracles)
            let flows = events.filter { $0["event_type"] as? String == "flow" }
            for c in conns {
                let match = flows.first {
                    normalized($0["src_ip"] as! String) == normalized(c["orig_h"] as! String)
                        && $0["src_port"] as? Int == c["orig_p"] as? Int
                        && normalized($0["dest_ip"] as! String) == normalized(c["resp_h"] as! String)
                        && $0["dest_port"] as? Int == c["resp_p"] as? Int
                }
                let flow = try #require(match, "\(name): no flow for \(c)")
                #expect(flow["history"] as? String == c["history"] as? String, "\(name)")
                if let origPackets = c["orig_pkts"] as? Int {
                    #expect((flow["client"] as! [String: Any])["packets"] as? Int == origPackets)
                    #expect((flow["server"] as! [String: Any])["packets"] as? Int == c["resp_pkts"] as? Int)
                }
            }
        }
    }
}
