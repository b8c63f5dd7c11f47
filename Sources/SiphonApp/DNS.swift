public import SiphonCore

/// A parsed DNS message (RFC 1035, with EDNS, SRV, HTTPS/SVCB, mDNS/LLMNR bits). Parsing is bounded: every read is
/// checked, compression pointers may only point backwards and at most 64 are followed per name, names are at most
/// 255 bytes.
public struct DNSMessage: Sendable, Equatable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var rcode: UInt8
    public var authoritative: Bool
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var questions: [DNSQuestion] = []
    public var answers: [DNSRecord] = []
    public var authorities: [DNSRecord] = []
    public var additionals: [DNSRecord] = []
    /// EDNS(0) UDP payload size, when an OPT record is present.
    public var ednsUDPSize: Int?

    public var rcodeName: String { DNSMessage.rcodeNames[Int(rcode)] ?? "RCODE\(rcode)" }

    static let rcodeNames: [Int: String] = [
        0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
        7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
    ]
}

public struct DNSQuestion: Sendable, Equatable {
    public var name: String
    public var type: UInt16
    public var qclass: UInt16
}

public struct DNSRecord: Sendable, Equatable {
    public var name: String
    public var type: UInt16
    public var rclass: UInt16
    public var ttl: UInt32
    public var data: DNSRData
}

public enum DNSRData: Sendable, Equatable {
    case address(IPAddress)
    /// CNAME, NS, PTR, DNAME targets.
    case name(String)
    case mx(preference: UInt16, exchange: String)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
    case text([String])
    /// HTTPS/SVCB: priority, target, ALPN values and address hints.
    case service(priority: UInt16, target: String, alpn: [String], hints: [IPAddress])
    case soa(primary: String, mailbox: String, serial: UInt32)
    /// Anything else (NULL included): its length.
    case opaque(length: Int)

    /// The rdata as text (EVE's `rdata`).
    public var text: String {
        switch self {
        case .address(let a): a.description
        case .name(let n): n
        case .mx(let p, let e): "\(p) \(e)"
        case .srv(let p, let w, let port, let t): "\(p) \(w) \(port) \(t)"
        case .text(let strings): strings.joined(separator: " ")
        case .service(let p, let t, let alpn, _): "\(p) \(t.isEmpty ? "." : t)" + (alpn.isEmpty ? "" : " alpn=" + alpn.joined(separator: ","))
        case .soa(let p, let m, let s): "\(p) \(m) \(s)"
        case .opaque(let n): "\(n) bytes"
        }
    }
}

public struct DNSParseError: Error, Sendable, Equatable {
    public var offset: Int
    public var reason: String
}

public enum DNSType {
    static let names: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA",
        33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3",
        64: "SVCB", 65: "HTTPS", 99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA",
    ]

    /// A type's mnemonic (`TYPE1234` for unknown ones, as RFC 3597 writes them).
    public static func name(_ type: UInt16) -> String { names[type] ?? "TYPE\(type)" }
}

extension DNSMessage {
    /// Parses one DNS message from `bytes` (a UDP payload, or one length-prefixed message of a TCP stream).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(DNSParseError) -> DNSMessage {
        var r = DNSReader(bytes: bytes)
        guard bytes.count >= 12 else { throw DNSParseError(offset: 0, reason: "header needs 12 bytes, has \(bytes.count)") }
        let flags = bytes.be16(2)
        var m = DNSMessage(
            id: bytes.be16(0), isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF), rcode: UInt8(flags & 0xF),
            authoritative: flags & 0x0400 != 0, truncated: flags & 0x0200 != 0, recursionDesired: flags & 0x0100 != 0,
            recursionAvailable: flags & 0x0080 != 0)
        let qd = Int(bytes.be16(4)), an = Int(bytes.be16(6)), ns = Int(bytes.be16(8)), ar = Int(bytes.be16(10))
        // Each question takes at least 5 bytes and each record 11: counts beyond that are lies, not allocations.
        guard qd * 5 + (an + ns + ar) * 11 <= bytes.count - 12 else {
            throw DNSParseError(offset: 4, reason: "section counts \(qd)/\(an)/\(ns)/\(ar) exceed the message")
        }
        r.position = 12
        for _ in 0..<qd {
            let name = try r.name()
            let type = try r.u16()
            let qclass = try r.u16()
            m.questions.append(DNSQuestion(name: name, type: type, qclass: qclass))
        }
        m.answers = try (0..<an).map { _ throws(DNSParseError) in try r.record() }
        m.authorities = try (0..<ns).map { _ throws(DNSParseError) in try r.record() }
        m.additionals = try (0..<ar).map { _ throws(DNSParseError) in try r.record() }
        if let opt = m.additionals.first(where: { $0.type == 41 }) {
            m.ednsUDPSize = Int(opt.rclass)
            // The OPT record's TTL holds the extended RCODE's upper bits.
            m.rcode |= UInt8(truncatingIfNeeded: (opt.ttl >> 24) << 4)
        }
        return m
    }

    /// Whether `bytes` look like a DNS message (for protocol identification): a parse that succeeds with at
    /// least one question and opcode 0..6.
    public static func looksLikeDNS(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let m = try? parse(bytes) else { return false }
        return !m.questions.isEmpty && m.opcode <= 6
    }
}

struct DNSReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    mutating func u16() throws(DNSParseError) -> UInt16 {
        guard position + 2 <= bytes.count else { throw DNSParseError(offset: position, reason: "needs 2 bytes") }
        defer { position += 2 }
        return bytes.be16(position)
    }

    mutating func u32() throws(DNSParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw DNSParseError(offset: position, reason: "needs 4 bytes") }
        defer { position += 4 }
        return bytes.be32(position)
    }

    /// Reads a (possibly compressed) name at `position` and moves past it.
    mutating func name() throws(DNSParseError) -> String {
        let (text, end) = try DNSReader.name(in: bytes, at: position)
        position = end
        return text
    }

    /// A name starting at `start`; returns it and the offset just past its in-place encoding.
    static func name(in bytes: UnsafeRawBufferPointer, at start: Int) throws(DNSParseError) -> (String, Int) {
        // The text is built in stack memory (at most 255 bytes on the wire, 4 characters each when escaped, and
        // the dots), then made one string: names of up to 15 characters need no allocation at all.
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { text in
            Result { () throws(DNSParseError) -> (String, Int) in try name(in: bytes, at: start, into: text) }
        }
        return try result.get()
    }

    private static func name(
        in bytes: UnsafeRawBufferPointer, at start: Int, into text: UnsafeMutableBufferPointer<UInt8>
    ) throws(DNSParseError) -> (String, Int) {
        var n = 0
        var p = start
        var end: Int?
        var jumps = 0
        var length = 0
        while true {
            guard p < bytes.count else { throw DNSParseError(offset: p, reason: "name runs past the message") }
            let len = Int(bytes[p])
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    return (String(decoding: UnsafeBufferPointer(rebasing: text[0..<n]), as: UTF8.self), end ?? p + 1)
                }
                guard p + 1 + len <= bytes.count else { throw DNSParseError(offset: p, reason: "label runs past the message") }
                length += len + 1
                guard length <= 255 else { throw DNSParseError(offset: p, reason: "name longer than 255 bytes") }
                if n > 0 {
                    text[n] = UInt8(ascii: ".")
                    n += 1
                }
                for c in UnsafeRawBufferPointer(rebasing: bytes[(p + 1)..<(p + 1 + len)]) {
                    // Printable ASCII as is (lower case), other bytes and dots as `\DDD` (RFC 4343 style).
                    if c > 0x20 && c < 0x7F && c != UInt8(ascii: ".") && c != UInt8(ascii: "\\") {
                        text[n] = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
                        n += 1
                    } else {
                        text[n] = UInt8(ascii: "\\")
                        text[n + 1] = 0x30 + c / 100
                        text[n + 2] = 0x30 + c / 10 % 10
                        text[n + 3] = 0x30 + c % 10
                        n += 4
                    }
                }
                p += 1 + len
            case 0xC0:
                guard p + 2 <= bytes.count else { throw DNSParseError(offset: p, reason: "pointer runs past the message") }
                let target = Int(bytes.be16(p) & 0x3FFF)
                if end == nil { end = p + 2 }
                jumps += 1
                // Only backwards pointers: a pointer at or after itself could loop.
                guard target < p, jumps <= 64 else { throw DNSParseError(offset: p, reason: "compression pointer loop") }
                p = target
            default:
                throw DNSParseError(offset: p, reason: "reserved label type 0x\(String(len, radix: 16))")
            }
        }
    }

    mutating func record() throws(DNSParseError) -> DNSRecord {
        let name = try self.name()
        let type = try u16()
        let rclass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        let start = position
        guard start + length <= bytes.count else { throw DNSParseError(offset: start, reason: "rdata runs past the message") }
        defer { position = start + length }
        let rd = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)])
        let data: DNSRData
        switch type {
        case 1 where length == 4: data = .address(IPAddress(rd, at: 0, ipv6: false))
        case 28 where length == 16: data = .address(IPAddress(rd, at: 0, ipv6: true))
        case 2, 5, 12, 39: data = .name(try DNSReader.name(in: bytes, at: start).0)
        case 15 where length >= 3: data = .mx(preference: rd.be16(0), exchange: try DNSReader.name(in: bytes, at: start + 2).0)
        case 33 where length >= 7:
            data = .srv(priority: rd.be16(0), weight: rd.be16(2), port: rd.be16(4), target: try DNSReader.name(in: bytes, at: start + 6).0)
        case 16, 99:
            var strings: [String] = []
            var i = 0
            while i < length {
                let n = Int(rd[i])
                guard i + 1 + n <= length else { throw DNSParseError(offset: start + i, reason: "TXT string runs past its record") }
                strings.append(String(decoding: rd[(i + 1)..<(i + 1 + n)], as: UTF8.self))
                i += 1 + n
            }
            data = .text(strings)
        case 64 where length >= 3, 65 where length >= 3:
            data = try DNSReader.service(bytes, start: start, length: length)
        case 6:
            let (primary, afterPrimary) = try DNSReader.name(in: bytes, at: start)
            let (mailbox, afterMailbox) = try DNSReader.name(in: bytes, at: afterPrimary)
            guard afterMailbox + 4 <= start + length else { throw DNSParseError(offset: afterMailbox, reason: "SOA too short") }
            data = .soa(primary: primary, mailbox: mailbox, serial: bytes.be32(afterMailbox))
        default:
            data = .opaque(length: length)
        }
        return DNSRecord(name: name, type: type, rclass: rclass, ttl: ttl, data: data)
    }

    /// SVCB/HTTPS rdata (RFC 9460): priority, target, then (key, length, value) parameters.
    static func service(_ bytes: UnsafeRawBufferPointer, start: Int, length: Int) throws(DNSParseError) -> DNSRData {
        let priority = bytes.be16(start)
        let (target, afterTarget) = try name(in: bytes, at: start + 2)
        var alpn: [String] = []
        var hints: [IPAddress] = []
        var p = afterTarget
        let end = start + length
        while p + 4 <= end {
            let key = bytes.be16(p)
            let n = Int(bytes.be16(p + 2))
            guard p + 4 + n <= end else { throw DNSParseError(offset: p, reason: "SvcParam runs past its record") }
            let v = p + 4
            switch key {
            case 1:  // alpn: length-prefixed strings
                var i = v
                while i < v + n {
                    let l = Int(bytes[i])
                    guard i + 1 + l <= v + n else { break }
                    alpn.append(String(decoding: bytes[(i + 1)..<(i + 1 + l)], as: UTF8.self))
                    i += 1 + l
                }
            case 4: hints += stride(from: v, to: v + n - 3, by: 4).map { IPAddress(bytes, at: $0, ipv6: false) }
            case 6: hints += stride(from: v, to: v + n - 15, by: 16).map { IPAddress(bytes, at: $0, ipv6: true) }
            default: break
            }
            p = v + n
        }
        return .service(priority: priority, target: target, alpn: alpn, hints: hints)
    }
}
