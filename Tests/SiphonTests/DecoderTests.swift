import Foundation
import Siphon
import Testing

/// Hand-built headers with values chosen here, so every expected field is plain arithmetic on the bytes below.
enum Frames {
    static let macDst: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]
    static let macSrc: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02]

    static func ethernet(_ type: UInt16) -> [UInt8] { macDst + macSrc + be16(type) }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func le32(_ v: UInt32) -> [UInt8] { be32(v).reversed() }

    /// TCP 49152 -> 443, seq 1000, ack 2000, SYN|ACK, window 65535, options MSS 1460, SACK-permitted,
    /// timestamps 7/9, NOP, window scale 7 (20 + 20 bytes).
    static let tcp: [UInt8] = be16(49152) + be16(443) + be32(1000) + be32(2000) + [0xA0, 0x12] + be16(65535) + [0, 0, 0, 0]
        + [2, 4, 0x05, 0xB4, 4, 2, 8, 10] + be32(7) + be32(9) + [1, 3, 3, 7]
    static let udp: [UInt8] = be16(5353) + be16(53) + be16(8 + 4) + [0, 0] + [0xDE, 0xAD, 0xBE, 0xEF]
    static let icmpEcho: [UInt8] = [8, 0, 0, 0, 0, 1, 0, 2] + [0x61, 0x62]

    /// IPv4 192.0.2.1 -> 198.51.100.2 with a 4-byte option (IHL 6), TTL 64, DF.
    static func ipv4(_ proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let total = UInt16(24 + payload.count)
        return [0x46, 0] + be16(total) + be16(0x1234) + [0x40, 0] + [64, proto, 0, 0] + [192, 0, 2, 1]
            + [198, 51, 100, 2] + [1, 1, 1, 0] + payload
    }

    /// IPv6 2001:db8::1 -> 2001:db8::2 with hop-by-hop, routing, destination options and fragment headers
    /// (first fragment, M=1, id 0x01020304).
    static func ipv6WithExtensions(_ proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let hopByHop: [UInt8] = [43, 0, 1, 4, 0, 0, 0, 0]  // next routing, 8 bytes, PadN
        let routing: [UInt8] = [60, 0, 0, 0, 0, 0, 0, 0]  // next dest opts, type 0, segments left 0
        let destination: [UInt8] = [44, 0, 1, 4, 0, 0, 0, 0]  // next fragment
        let fragment: [UInt8] = [proto, 0, 0, 1] + be32(0x0102_0304)
        let ext = hopByHop + routing + destination + fragment
        let src: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let dst: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        return [0x60, 0, 0, 0] + be16(UInt16(ext.count + payload.count)) + [0, 255] + src + dst + ext + payload
    }

    static func ipv6(_ proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let src: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let dst: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        return [0x60, 0, 0, 0] + be16(UInt16(payload.count)) + [proto, 64] + src + dst + payload
    }

    static let arp: [UInt8] = be16(1) + be16(0x0800) + [6, 4] + be16(1) + macSrc + [192, 0, 2, 1] + macDst + [192, 0, 2, 2]
}

func decode(_ bytes: [UInt8], _ linkType: LinkType) -> DecodedPacket {
    bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: linkType) }
}

@Suite struct DecoderTests {
    /// A valid frame per decoder, the link type it is read with, and the length of its header chain (the bytes
    /// every truncation below cuts into).
    static let cases: [(name: String, link: LinkType, frame: [UInt8], headers: Int)] = [
        ("ethernet-ipv4-tcp", .ethernet, Frames.ethernet(0x0800) + Frames.ipv4(6, Frames.tcp), 14 + 24 + 40),
        ("vlan-ipv4-udp", .ethernet, Frames.ethernet(0x8100) + [0x20, 0x64] + Frames.be16(0x0800) + Frames.ipv4(17, Frames.udp), 18 + 24 + 8),
        ("qinq-ipv6-udp", .ethernet,
         Frames.ethernet(0x88A8) + [0, 10] + Frames.be16(0x8100) + [0, 20] + Frames.be16(0x86DD) + Frames.ipv6(17, Frames.udp), 22 + 40 + 8),
        ("mpls-ipv4-icmp", .ethernet, Frames.ethernet(0x8847) + [0, 0x01, 0x01, 64] + Frames.ipv4(1, Frames.icmpEcho), 18 + 24 + 4),
        ("pppoe-ipv6-icmpv6", .ethernet,
         Frames.ethernet(0x8864) + [0x11, 0, 0, 1] + Frames.be16(UInt16(2 + 48)) + Frames.be16(0x0057)
            + Frames.ipv6(58, [128, 0, 0, 0, 0, 1, 0, 1]), 22 + 40 + 4),
        ("arp", .ethernet, Frames.ethernet(0x0806) + Frames.arp, 14 + 28),
        ("sll-ipv4-tcp", .linuxSLL, Frames.be16(0) + Frames.be16(1) + Frames.be16(6) + Frames.macSrc + [0, 0] + Frames.be16(0x0800)
            + Frames.ipv4(6, Frames.tcp), 16 + 24 + 40),
        ("sll2-ipv6-tcp", .linuxSLL2, Frames.be16(0x86DD) + [0, 0] + Frames.be32(2) + Frames.be16(1) + [0, 6] + Frames.macSrc + [0, 0]
            + Frames.ipv6(6, Frames.tcp), 20 + 40 + 40),
        ("null-ipv4-udp", .null, Frames.le32(2) + Frames.ipv4(17, Frames.udp), 4 + 24 + 8),
        ("null-bigendian-ipv6-udp", .null, Frames.be32(30) + Frames.ipv6(17, Frames.udp), 4 + 40 + 8),
        ("loop-ipv6-tcp", .loop, Frames.be32(24) + Frames.ipv6(6, Frames.tcp), 4 + 40 + 40),
        ("raw-ipv4-tcp", .raw, Frames.ipv4(6, Frames.tcp), 24 + 40),
        ("raw-ipv6-ext-udp", .raw, Frames.ipv6WithExtensions(17, Frames.udp), 40 + 32 + 8),
        ("linktype-ipv4-icmp", .ipv4, Frames.ipv4(1, Frames.icmpEcho), 24 + 4),
        ("linktype-ipv6-tcp", .ipv6, Frames.ipv6(6, Frames.tcp), 40 + 40),
        ("ppp-ipv4-udp", .ppp, [0xFF, 0x03] + Frames.be16(0x0021) + Frames.ipv4(17, Frames.udp), 4 + 24 + 8),
        ("nflog-ipv4-udp", .nflog,
         [2, 0, 0, 1] + [8, 0, 1, 0] + [0, 0, 0, 0] + [UInt8(4 + 24 + 12), 0, 9, 0] + Frames.ipv4(17, Frames.udp), 16 + 24 + 8),
    ]

    @Test(arguments: cases.map(\.name))
    func validFrameDecodesFully(_ name: String) {
        let c = Self.cases.first { $0.name == name }!
        let p = decode(c.frame, c.link)
        #expect(p.error == nil, "\(name): \(String(describing: p.error))")
        #expect(p.isDecoded)
        if p.network == .arp { return }
        #expect(p.payloadOffset == c.headers, "\(name): payload offset")
        #expect(p.payloadOffset + p.payloadCaptured == c.frame.count, "\(name): payload ends with the frame")
        switch p.transport {
        case .tcp:
            #expect(p.sourcePort == 49152 && p.destinationPort == 443)
            #expect(p.tcp.sequence == 1000 && p.tcp.acknowledgment == 2000)
            #expect(p.tcp.flags == [.syn, .ack])
            #expect(p.tcp.window == 65535 && p.tcp.mss == 1460 && p.tcp.windowScale == 7 && p.tcp.sackPermitted)
            #expect(p.tcp.hasTimestamps && p.tcp.timestampValue == 7 && p.tcp.timestampEcho == 9)
            #expect(!p.tcp.optionsMalformed)
        case .udp:
            #expect(p.sourcePort == 5353 && p.destinationPort == 53 && p.payloadLength == 4)
        case .icmp:
            #expect(p.icmpType == 8 && p.icmpCode == 0 && p.payloadLength == 6)
        case .icmpv6:
            #expect(p.icmpType == 128)
        default:
            Issue.record("\(name): unexpected transport \(p.transport)")
        }
        if p.network == .ipv4 {
            #expect(p.source == IPAddress("192.0.2.1") && p.destination == IPAddress("198.51.100.2") && p.ttl == 64)
            #expect(!p.isFragment)
        } else {
            #expect(p.source == IPAddress("2001:db8::1") && p.destination == IPAddress("2001:db8::2"))
        }
    }

    /// Every truncation of the header chain yields a typed `truncated` error whose header offset plus needed
    /// length passes the cut, and never a crash; the layers before the cut stay decoded.
    @Test(arguments: cases.map(\.name))
    func everyTruncationIsATypedError(_ name: String) {
        let c = Self.cases.first { $0.name == name }!
        for length in 0..<c.headers {
            let p = decode(Array(c.frame.prefix(length)), c.link)
            guard let error = p.error else {
                // The only acceptable success on a cut frame: a first IPv6 fragment whose ports were read.
                Issue.record("\(name) cut at \(length): decoded without error")
                continue
            }
            guard case .truncated(let needed, let available) = error.kind else {
                Issue.record("\(name) cut at \(length): \(error) is not a truncation")
                continue
            }
            #expect(error.offset + needed > length, "\(name) cut at \(length): \(error)")
            #expect(available == max(0, length - error.offset), "\(name) cut at \(length): \(error)")
        }
    }

    @Test func vlanIDsAreKeptOutermostFirst() {
        let p = decode(Self.cases[2].frame, .ethernet)
        #expect(p.vlanCount == 2 && p.vlanIDs.0 == 10 && p.vlanIDs.1 == 20 && p.vlan == 10)
    }

    @Test func ipv6ExtensionHeadersAndFragmentFields() {
        let p = decode(Frames.ipv6WithExtensions(17, Frames.udp), .raw)
        #expect(p.ipv6ExtensionCount == 4)
        #expect(p.isFragment && p.moreFragments && p.fragmentOffset == 0 && p.fragmentID == 0x0102_0304)
        #expect(p.ipProtocol == 17 && p.transport == .udp)
    }

    @Test func nonFirstFragmentHasNoTransportHeader() {
        // Same IPv4 header with offset 185 (x 8 = 1480 bytes) and MF clear.
        var frame = Frames.ipv4(17, Frames.udp)
        frame[6] = 0x00
        frame[7] = 185
        let p = decode(frame, .ipv4)
        #expect(p.error == nil && p.transport == .fragment && p.fragmentOffset == 1480 && !p.moreFragments)
        #expect(FlowKey.of(p) == nil)
    }

    @Test func tinyFirstFragmentStillGivesPorts() {
        // A first fragment carrying 8 of the 40 TCP header bytes: the header continues in the next fragment.
        var frame = Frames.ipv4(6, Array(Frames.tcp.prefix(8)))
        frame[6] = 0x20  // MF
        let p = decode(frame, .ipv4)
        #expect(p.error == nil && p.transport == .tcp && p.transportHeaderSplit)
        #expect(p.sourcePort == 49152 && p.destinationPort == 443 && p.payloadLength == 0)
    }

    @Test func invalidFieldsAreNamed() {
        var badIHL = Frames.ipv4(6, Frames.tcp)
        badIHL[0] = 0x44  // IHL 4: 16 bytes, below the minimum
        #expect(decode(badIHL, .ipv4).error == DecodeError(.ipv4, .invalid(.headerLength), at: 0))
        var badOffset = Frames.ipv4(6, Frames.tcp)
        badOffset[24 + 12] = 0x40  // TCP data offset 4 words
        #expect(decode(badOffset, .ipv4).error == DecodeError(.tcp, .invalid(.dataOffset), at: 24))
        let lldp = decode(Frames.ethernet(0x88CC) + [0, 0], .ethernet)
        #expect(lldp.error?.reason.description == "ethernet:ethertype-88cc".replacingOccurrences(of: "-88", with: "-0x88"))
        #expect(decode([0, 0, 0, 0], LinkType(rawValue: 147)).error?.reason.description == "link:link-type-147")
        var badOptions = Frames.ipv4(6, Frames.tcp)
        badOptions[24 + 20 + 1] = 40  // MSS option claiming 40 bytes
        let p = decode(badOptions, .ipv4)
        #expect(p.error == nil && p.tcp.optionsMalformed)
    }

    @Test func ethernetPaddingIsNotPayload() {
        let frame = Frames.ethernet(0x0800) + Frames.ipv4(17, Frames.udp) + [UInt8](repeating: 0, count: 10)
        let p = decode(frame, .ethernet)
        #expect(p.payloadLength == 4 && p.payloadCaptured == 4)
    }
}

@Suite struct CoreTests {
    @Test func rfc3339() {
        // 2011-03-18T19:06:08.652003Z is 1300475168.652003 s (date -u -d @1300475168).
        #expect(Timestamp(seconds: 1_300_475_168, nanoseconds: 652_003_999).rfc3339 == "2011-03-18T19:06:08.652003Z")
        #expect(Timestamp(seconds: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
        // 2^31 s: the y2038 boundary, 2038-01-19T03:14:08Z.
        #expect(Timestamp(seconds: 2_147_483_648).rfc3339 == "2038-01-19T03:14:08.000000Z")
        // A leap day: 2024-02-29T12:00:00Z = 1709208000.
        #expect(Timestamp(seconds: 1_709_208_000).rfc3339 == "2024-02-29T12:00:00.000000Z")
    }

    /// Any nanosecond count a capture can hold (years 1677-2262) against the C library's `gmtime_r` for the date
    /// and time of day, the microseconds by floor division (times before 1970 round toward the past).
    @Test func rfc3339AgreesWithGmtime() {
        var rng = SystemRandomNumberGenerator()
        let edges: [Int64] = [.min, .max, -1, 0, 999, 1_000, -1_000, -1_001, 86_400_000_000_000 - 1, 951_782_400_000_000_000]
        for n in edges + (0..<5_000).map({ _ in Int64.random(in: .min ... .max, using: &rng) }) {
            let micros = n >= 0 || n % 1_000 == 0 ? n / 1_000 : n / 1_000 - 1
            var seconds = micros / 1_000_000, fraction = micros % 1_000_000
            if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
            var t = time_t(seconds), tm = tm()
            #expect(gmtime_r(&t, &tm) != nil)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1,
                                  Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), Int(fraction))
            #expect(Timestamp(nanoseconds: n).rfc3339 == expected, "\(n)")
        }
    }

    @Test func addressesRoundTripAndOrder() {
        for text in ["192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "fe80::1:2", "::ffff:192.0.2.1"] {
            #expect(IPAddress(text)?.description == text)
        }
        #expect(IPAddress("192.0.2.1")! < IPAddress("192.0.2.2")!)
        #expect(IPAddress("10.0.0.1")! < IPAddress("::1")!)
        #expect(IPAddress("2001:db8::1")!.bytes.count == 16 && IPAddress("192.0.2.1")!.bytes == [192, 0, 2, 1])
        #expect(IPAddress("300.1.1.1") == nil && IPAddress("2001:::1") == nil)
    }
}
