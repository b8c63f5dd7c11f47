import Foundation
import Siphon
import Testing

/// The Internet checksum, checksum validation in the pipeline, and the evasion alerts that come from packets a
/// receiver drops (bad checksums) or may never get (TTL outliers).
@Suite struct ChecksumTests {
    /// RFC 1071's own definition, a 16-bit big-endian word at a time, as the reference.
    static func referenceSum(_ bytes: [UInt8]) -> UInt16 {
        var s: UInt32 = 0
        var i = 0
        while i < bytes.count {
            let high = UInt32(bytes[i]) << 8
            let low = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            s += high | low
            s = (s & 0xFFFF) + (s >> 16)
            i += 2
        }
        return UInt16(s)
    }

    @Test func rfc1071NumericalExample() {
        // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 2ddf0, folded ddf2 (checksum 220d).
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        let sum = bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 8) }
        #expect(sum == 0xDDF2)
        #expect(~sum == 0x220D)
    }

    @Test func sumEqualsTheWordByWordDefinition() {
        var rng = SplitMix(seed: 0xC0FFEE)
        for round in 0..<3000 {
            let length = round < 300 ? round : Int(rng.next() % 3000)
            let shift = Int(rng.next() % 8)  // unaligned starts
            let bytes = (0..<(length + shift)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let ours = bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress! + shift, count: length) }
            let expected = Self.referenceSum(Array(bytes[shift...]))
            // 0x0000 and 0xFFFF are the same one's-complement value (+0 and -0): only a zero-length sum is exactly 0.
            #expect(ours == expected || (ours == 0xFFFF && expected == 0) || (ours == 0 && expected == 0xFFFF),
                    "length \(length) offset \(shift)")
        }
    }

    /// IPv4 headers of every length (20-60 bytes) at unaligned offsets, with the checksum field set right by
    /// RFC 1071's definition, then with one bit of the header flipped, then with a zero field: `ipv4Header` (which
    /// sums 32-bit words) says valid, bad and offloaded as the 16-bit reckoning does.
    @Test func ipv4HeaderVerdictsMatchTheWordByWordDefinition() {
        var rng = SplitMix(seed: 0x1F4)
        for round in 0..<2000 {
            let words = 5 + round % 11
            let shift = Int(rng.next() % 8)
            var bytes = (0..<(shift + words * 4 + 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes[shift] = 0x40 | UInt8(words)
            bytes[shift + 10] = 0
            bytes[shift + 11] = 0
            let field = ~Self.referenceSum(Array(bytes[shift..<(shift + words * 4)]))
            guard field != 0 else { continue }  // a zero field reads as offloaded, not as right
            bytes[shift + 10] = UInt8(field >> 8)
            bytes[shift + 11] = UInt8(field & 0xFF)
            func verdict() -> ChecksumStatus { bytes.withUnsafeBytes { InternetChecksum.ipv4Header($0, at: shift) } }
            #expect(verdict() == .valid, "\(words * 4) bytes at \(shift)")
            // A flip outside the length nibble (which would change what is summed) and the checksum field.
            let bit = 4 + Int(rng.next() % UInt64(words * 32 - 4))
            bytes[shift + bit / 8] ^= UInt8(1 << (bit % 8))
            let flipped = Self.referenceSum(Array(bytes[shift..<(shift + words * 4)])) == 0xFFFF
            #expect(verdict() == (flipped ? .valid : .bad), "\(words * 4) bytes at \(shift), bit \(bit)")
            bytes[shift + 10] = 0
            bytes[shift + 11] = 0
            if Self.referenceSum(Array(bytes[shift..<(shift + words * 4)])) != 0xFFFF {
                #expect(verdict() == .offloaded, "\(words * 4) bytes at \(shift), zero field")
            }
        }
    }

    /// Per capture, the valid and bad-or-offloaded IPv4 headers, TCP segments and UDP datagrams equal tshark's good
    /// and bad (tshark calls offloaded checksums bad: it cannot know). Fixture: scripts/tshark_checksums.py.
    @Test func countsAgreeWithTshark() throws {
        let expected = try #require(try Repo.json("captures/diff/expected-checksums.json") as? [String: Any])
        let list = try String(contentsOfFile: Repo.path("captures/diff/checksum-captures.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(list.count >= 150)
        var options = ScanOptions()
        options.checksums = .on
        var judged: UInt64 = 0, offloaded: UInt64 = 0, bad: UInt64 = 0
        for path in list {
            let want = try #require(expected[path] as? [String: [String: Int]], "\(path) has no fixture")
            let s = CaptureScanner.scan(path: Repo.path(path), options: options, output: nil).statistics
            for layer in ChecksumLayer.allCases {
                let i = Int(layer.rawValue)
                let w = try #require(want[layer.description])
                #expect(s.checksumValid[i] == UInt64(w["good"]!), "\(path) \(layer) good")
                #expect(s.checksumBad[i] + s.checksumOffloaded[i] == UInt64(w["bad"]!), "\(path) \(layer) bad")
                judged += s.checksumValid[i] + s.checksumBad[i] + s.checksumOffloaded[i]
                offloaded += s.checksumOffloaded[i]
                bad += s.checksumBad[i]
            }
        }
        // The set exercises all three outcomes.
        #expect(judged > 2000 && offloaded > 100 && bad > 50, "judged \(judged), offloaded \(offloaded), bad \(bad)")
    }

    /// Zeek's checksum traces, one packet each: the bad ones (IPv4 header, TCP over IPv4, TCP behind an IPv6
    /// routing header and behind a Home Address option, whose pseudo-header takes the final destination and the
    /// home address) are dropped as Zeek drops them (its weird.log says bad_IP_checksum / bad_TCP_checksum); the
    /// good ones are judged valid, which needs those RFC 8200 addresses.
    @Test func zeekChecksumTraces() throws {
        var options = ScanOptions()
        options.checksums = .on
        for (name, layer, good) in [
            ("ip4-tcp-good-chksum", ChecksumLayer.tcp, true), ("ip4-tcp-bad-chksum", .tcp, false),
            ("ip6-route0-tcp-good-chksum", .tcp, true), ("ip6-route0-tcp-bad-chksum", .tcp, false),
            ("ip6-hoa-tcp-good-chksum", .tcp, true), ("ip6-hoa-tcp-bad-chksum", .tcp, false),
        ] {
            let (events, result) = scanEvents(Repo.path("captures/checksums/\(name).pcap"), options: options)
            let s = result.statistics
            let i = Int(layer.rawValue)
            #expect(s.checksumValid[i] == (good ? 1 : 0), "\(name)")
            #expect(s.checksumBad[i] == (good ? 0 : 1), "\(name)")
            let flow = try #require(events.first { $0["event_type"] as? String == "flow" }, "\(name)")
            let history = flow["history"] as? String ?? ""
            #expect(history.contains("C") == !good, "\(name): history \(history)")
        }
    }

    /// The insertion scenario: a segment with a bad checksum carries GET /admin.html, the valid one at the same
    /// sequence numbers GET /index.html. Validating, Siphon sees what the server saw and says why; with validation
    /// off it takes the first copy, as an inspector that trusts every packet would, and reports the conflict.
    @Test func insertionWithABadChecksum() throws {
        let path = Repo.path("captures/scenarios/evasion-bad-checksum.pcap")
        func look(_ mode: ChecksumValidation) -> (url: String?, rules: [String]) {
            var options = ScanOptions()
            options.checksums = mode
            let (events, _) = scanEvents(path, options: options)
            let http = events.first { $0["event_type"] as? String == "http" }?["http"] as? [String: Any]
            let rules = events.compactMap { ($0["alert"] as? [String: Any])?["rule"] as? String }.filter { $0.contains("evasion") }
            return (http?["url"] as? String, rules)
        }
        let validating = look(.auto)
        #expect(validating.url == "/index.html")
        #expect(validating.rules == ["siphon.evasion.bad-checksum"])
        let trusting = look(.off)
        #expect(trusting.url == "/admin.html")
        #expect(trusting.rules == ["siphon.evasion.overlap-different-data"])
    }

    /// Capture taken where checksums are not final (garbage, not an offload pattern): `auto` gives up after its
    /// first 1,000 judged checksums when more than a tenth were bad, as Suricata's auto mode does, and says when.
    /// 1,200 DNS queries whose IPv4 headers are right and UDP checksums wrong: two checksums judged per packet, so
    /// the 1,000th is packet 500's; 500 of them were bad (50 %): validation stops there, and the 700 later queries
    /// are parsed. `on` never stops: no query is parsed.
    @Test func autoModeGivesUpOnAWrongCapture() {
        func scan(_ mode: ChecksumValidation) -> CaptureStatistics {
            var options = ScanOptions()
            options.checksums = mode
            options.detection = nil
            let pipeline = ScanPipeline(capture: "synthetic", options: options, output: nil)
            for n in 0..<1200 {
                let frame = Self.dnsQueryFrame(id: UInt16(n), corruptUDP: true)
                frame.withUnsafeBytes { raw in
                    pipeline.process(CapturedPacket(
                        bytes: raw, timestamp: Timestamp(nanoseconds: Int64(n) * 1_000_000), linkType: .ethernet,
                        originalLength: raw.count))
                }
            }
            return pipeline.finish()
        }
        let auto = scan(.auto)
        #expect(auto.checksumDisabledAfter == 500)
        #expect(auto.checksumValid[0] == 500 && auto.checksumBad[2] == 500)
        #expect(auto.dnsMessages == 700)
        let on = scan(.on)
        #expect(on.checksumDisabledAfter == nil)
        #expect(on.checksumBad[2] == 1200 && on.dnsMessages == 0)
        let off = scan(.off)
        #expect(off.checksumValid == [0, 0, 0, 0] && off.dnsMessages == 1200)
    }

    /// An Ethernet/IPv4/UDP DNS query for example.com from 192.0.2.10 to 192.0.2.53, with a correct IPv4 header
    /// checksum and, when asked, a UDP checksum that is wrong and not an offload pattern (the right one XOR 0x5A5A).
    static func dnsQueryFrame(id: UInt16, corruptUDP: Bool) -> [UInt8] {
        var dns: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in ["example", "com"] { dns.append(UInt8(label.utf8.count)); dns += Array(label.utf8) }
        dns += [0, 0, 1, 0, 1]
        let source: [UInt8] = [192, 0, 2, 10], destination: [UInt8] = [192, 0, 2, 53]
        let udpLength = 8 + dns.count
        var udp: [UInt8] = [0xC3, 0x50, 0, 53, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0] + dns
        let pseudo = source + destination + [0, 17, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF)]
        var check = ~referenceSum(pseudo + udp)
        if corruptUDP { check ^= 0x5A5A }
        udp[6] = UInt8(check >> 8)
        udp[7] = UInt8(check & 0xFF)
        let total = 20 + udp.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 17, 0, 0] + source + destination
        let ipCheck = ~referenceSum(ip)
        ip[10] = UInt8(ipCheck >> 8)
        ip[11] = UInt8(ipCheck & 0xFF)
        let ethernet: [UInt8] = [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]
        return ethernet + ip + udp
    }
}

extension ChecksumTests {
    /// Frames of captures that reach every checksum path (IPv6 routing header and Home Address option, TCP and UDP
    /// over IPv4 and IPv6, IPv4 options, fragments), truncated and with bytes flipped, go through a whole pipeline
    /// with validation on. In a debug build every raw read is bounds-checked: a wrong length or offset traps.
    @Test func mutatedFramesThroughValidation() throws {
        var frames: [(LinkType, [UInt8])] = []
        for path in ["captures/checksums/ip6-route0-tcp-good-chksum.pcap", "captures/checksums/ip6-hoa-tcp-good-chksum.pcap",
                     "captures/checksums/ip4-tcp-good-chksum.pcap", "captures/sample/backdoor-phone.pcap",
                     "captures/diff/ipv6-sv-frag-tcp.pcap", "captures/diff/ipv4frag-zeek-frag1.pcap"] {
            let reader = try CaptureReader(path: Repo.path(path))
            while let p = try reader.next() { frames.append((p.linkType, Array(p.bytes))) }
        }
        #expect(frames.count > 200)
        var rng = SplitMix(seed: 0x5EED)
        var options = ScanOptions()
        options.checksums = .on
        let pipeline = ScanPipeline(capture: "mutated", options: options, output: nil)
        var n: Int64 = 0
        for _ in 0..<20 {
            for (linkType, frame) in frames {
                var m = Array(frame.prefix(Int(rng.next() % UInt64(frame.count + 1))))
                for _ in 0..<Int(rng.next() % 4) where !m.isEmpty { m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                n += 1
                m.withUnsafeBytes { raw in
                    pipeline.process(CapturedPacket(bytes: raw, timestamp: Timestamp(nanoseconds: n * 1_000), linkType: linkType,
                                                    originalLength: frame.count))
                }
            }
        }
        let s = pipeline.finish()
        #expect(s.packets == UInt64(n))
        // Flipped bytes inside a checksummed range break it: some packets must have been judged bad.
        #expect(s.checksumBad.reduce(0, +) > 100)
    }
}

extension ChecksumTests {
    /// Ethernet + IPv6 (optionally with a routing header of `routingType`, one address, segments left 1) + UDP
    /// carrying 12 bytes, its checksum field set to `checksum` (nil: computed over the header's addresses).
    static func ipv6UDPFrame(dport: UInt16, checksum: UInt16?, routingType: UInt8? = nil) -> [UInt8] {
        let source: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let destination: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [2]
        let payload = [UInt8](repeating: 0x41, count: 12)
        var udp: [UInt8] = [0xC3, 0x50, UInt8(dport >> 8), UInt8(dport & 0xFF), 0, 20, 0, 0] + payload
        let pseudo = source + destination + [0, 0, 0, 20, 0, 0, 0, 17]
        let check = checksum ?? ~referenceSum(pseudo + udp)
        udp[6] = UInt8(check >> 8)
        udp[7] = UInt8(check & 0xFF)
        var extensions: [UInt8] = []
        var next: UInt8 = 17
        if let routingType {
            // Next header UDP, length 2 (24 bytes), the type, segments left 1, reserved, one address.
            extensions = [17, 2, routingType, 1, 0, 0, 0, 0] + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [9]
            next = 43
        }
        let length = extensions.count + udp.count
        let ip: [UInt8] = [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), next, 64] + source + destination
        return [0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xDD] + ip + extensions + udp
    }

    static func judge(_ frame: [UInt8], truncated: Bool = false) -> CaptureStatistics {
        var options = ScanOptions()
        options.checksums = .on
        options.detection = nil
        let pipeline = ScanPipeline(capture: "synthetic", options: options, output: nil)
        frame.withUnsafeBytes { raw in
            pipeline.process(CapturedPacket(bytes: raw, timestamp: Timestamp(nanoseconds: 0), linkType: .ethernet,
                                            originalLength: raw.count + (truncated ? 100 : 0)))
        }
        return pipeline.finish()
    }

    /// RFC 8200 8.1: an IPv6 receiver discards UDP with a zero checksum, except tunnels that allow it (RFC 6935).
    @Test func ipv6UDPZeroChecksum() {
        #expect(Self.judge(Self.ipv6UDPFrame(dport: 53, checksum: nil)).checksumValid[2] == 1)
        #expect(Self.judge(Self.ipv6UDPFrame(dport: 53, checksum: 0)).checksumBad[2] == 1)
        let tunnel = Self.judge(Self.ipv6UDPFrame(dport: 4789, checksum: 0))
        #expect(tunnel.checksumBad[2] == 0 && tunnel.checksumValid[2] == 0)
    }

    /// A routing header whose final destination Siphon does not read (type 3, RPL: compressed addresses): a
    /// checksum computed over another destination is no verdict; one that verifies over the header's still does.
    @Test func unknownRoutingTypeIsNoVerdict() {
        let wrong = Self.judge(Self.ipv6UDPFrame(dport: 53, checksum: 0x1234, routingType: 3))
        #expect(wrong.checksumBad[2] == 0 && wrong.checksumOffloaded[2] == 0 && wrong.checksumValid[2] == 0)
        let right = Self.judge(Self.ipv6UDPFrame(dport: 53, checksum: nil, routingType: 3))
        #expect(right.checksumValid[2] == 1)
        // Type 2 (Mobile IPv6) names the final destination: a checksum over the header's destination is bad there.
        let mobile = Self.judge(Self.ipv6UDPFrame(dport: 53, checksum: nil, routingType: 2))
        #expect(mobile.checksumBad[2] == 1)
    }

    /// ICMP checksums (suricata-verify's anomaly trace: 48 echo-like messages of unknown types, tshark finds 46
    /// of the whole ones bad and 2 datagrams shorter than their IPv4 length): the bad ones are counted on the wire
    /// and marked `C` in their flow's history, the cut ones are not judged, and none raises an evasion alert (an
    /// ICMP payload reaches no parser, so dropping it hides nothing from the detectors).
    @Test func icmpChecksums() throws {
        var options = ScanOptions()
        options.checksums = .on
        let (events, result) = scanEvents(Repo.path("captures/checksums/sv-icmp-anomaly.pcap"), options: options)
        let s = result.statistics
        #expect(s.checksums.icmp.bad == 46 && s.checksums.icmp.valid == 0 && s.checksums.icmp.offloaded == 0)
        let flows = events.filter { $0["event_type"] as? String == "flow" && $0["proto"] as? String == "ICMP" }
        // One message per flow here: 46 flows marked, the 2 cut ones not.
        #expect(flows.count == 48 && flows.filter { ($0["history"] as? String ?? "").contains("C") }.count == 46)
        #expect(!events.contains { ($0["alert"] as? [String: Any])?["category"] as? String == "evasion" })
        let stats = try #require(events.last?["stats"] as? [String: Any])
        let icmp = try #require((stats["checksums"] as? [String: Any])?["icmp"] as? [String: Any])
        #expect(icmp["bad"] as? Int == 46)
        // ICMPv6 behind a hop-by-hop header (Arkime's v6-http trace): all 37 valid, as tshark finds them.
        let v6 = CaptureScanner.scan(path: Repo.path("captures/diff/ipv6ext-ark-v6-http.pcap"), options: options, output: nil)
        #expect(v6.statistics.checksums.icmp.valid == 37 && v6.statistics.checksums.icmp.bad == 0)
    }

    /// A frame cut by the snapshot length is not judged.
    @Test func truncatedFramesAreNotJudged() {
        let s = Self.judge(Self.dnsQueryFrame(id: 1, corruptUDP: true), truncated: true)
        #expect(s.checksumBad == [0, 0, 0, 0] && s.checksumValid[2] == 0)
    }
}

extension ChecksumTests {
    /// The evasion detector's TTL limit comes from the rule pack (`detectors.evasion.ttl_limit`) and reaches the flow
    /// table: the forged reset of `evasion-ttl-reset` is 64 hops off, an outlier under 5, not under 70. A value
    /// over 255 is an error at its line.
    @Test func ttlLimitFromThePack() throws {
        let path = Repo.path("captures/scenarios/evasion-ttl-reset.pcap")
        func ttlAlerts(_ yaml: String) throws -> Int {
            let pack = try RulePack.parse(yaml, file: "pack.yaml")
            var options = ScanOptions()
            options.detection = pack.configuration
            return CaptureScanner.scan(path: path, options: options, output: nil).alerts
                .filter { $0.rule == "siphon.evasion.ttl-outlier" }.count
        }
        #expect(try ttlAlerts("version: 1\ndetectors:\n  evasion:\n    ttl_limit: 5\n") == 1)
        #expect(try ttlAlerts("version: 1\ndetectors:\n  evasion:\n    ttl_limit: 70\n") == 0)
        let errors = try #require(throws: RulePackErrors.self) {
            try RulePack.parse("version: 1\ndetectors:\n  evasion:\n    ttl_limit: 300\n", file: "pack.yaml")
        }
        #expect(errors.issues.map(\.line) == [4])
    }
}
