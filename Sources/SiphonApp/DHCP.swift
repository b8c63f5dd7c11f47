public import SiphonCore

/// A DHCPv4 message (RFC 2131/2132): what a device says of itself (hostname, vendor class, requested parameters)
/// and what the network gives it.
public struct DHCPMessage: Sendable, Equatable {
    public var isRequest: Bool
    public var transactionID: UInt32
    /// The client's hardware address (Ethernet: 6 bytes), as 48 bits.
    public var clientMAC: UInt64?
    public var clientIP: IPAddress
    public var yourIP: IPAddress
    /// Option 53: 1 DISCOVER, 2 OFFER, 3 REQUEST, 4 DECLINE, 5 ACK, 6 NAK, 7 RELEASE, 8 INFORM.
    public var messageType: UInt8?
    public var hostname: String?
    public var vendorClass: String?
    public var clientFQDN: String?
    public var parameterRequestList: [UInt8] = []
    public var requestedIP: IPAddress?
    public var serverIdentifier: IPAddress?
    public var leaseTime: UInt32?
    public var routers: [IPAddress] = []
    public var dnsServers: [IPAddress] = []
    public var domainName: String?

    public var messageTypeName: String {
        switch messageType {
        case 1: "discover"
        case 2: "offer"
        case 3: "request"
        case 4: "decline"
        case 5: "ack"
        case 6: "nak"
        case 7: "release"
        case 8: "inform"
        case let t?: "type-\(t)"
        case nil: "bootp"
        }
    }

    /// Parses a BOOTP/DHCP message (a UDP payload on port 67/68). The fixed header needs 44 bytes (through the
    /// client hardware address); options are read only when the whole header and the magic cookie were captured
    /// (a snapshot length often cuts them). Nil when it is not BOOTP.
    public static func parse(_ b: UnsafeRawBufferPointer) -> DHCPMessage? {
        guard b.count >= 44, b.u8(0) == 1 || b.u8(0) == 2 else { return nil }
        var m = DHCPMessage(
            isRequest: b.u8(0) == 1, transactionID: b.be32(4),
            clientMAC: b.u8(1) == 1 && b.u8(2) == 6 ? UInt64(b.be32(28)) << 16 | UInt64(b.be16(32)) : nil,
            clientIP: IPAddress(b, at: 12, ipv6: false), yourIP: IPAddress(b, at: 16, ipv6: false))
        guard b.count >= 240, b.be32(236) == 0x6382_5363 else { return m }
        var p = 240
        func text(_ at: Int, _ n: Int) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: b[at..<(at + n)]).prefix { $0 != 0 }, as: UTF8.self)
        }
        func addresses(_ at: Int, _ n: Int) -> [IPAddress] {
            stride(from: at, to: at + n - 3, by: 4).map { IPAddress(b, at: $0, ipv6: false) }
        }
        while p < b.count {
            let code = b.u8(p)
            if code == 255 { break }
            if code == 0 { p += 1; continue }
            guard p + 2 <= b.count else { break }
            let n = Int(b.u8(p + 1))
            let v = p + 2
            guard v + n <= b.count else { break }  // a truncated option ends the list
            switch code {
            case 53 where n >= 1: m.messageType = b.u8(v)
            case 12 where n >= 1: m.hostname = text(v, n)
            case 60 where n >= 1: m.vendorClass = text(v, n)
            case 55: m.parameterRequestList = Array(b[v..<(v + n)])
            case 50 where n >= 4: m.requestedIP = IPAddress(b, at: v, ipv6: false)
            case 54 where n >= 4: m.serverIdentifier = IPAddress(b, at: v, ipv6: false)
            case 51 where n >= 4: m.leaseTime = b.be32(v)
            case 3: m.routers = addresses(v, n)
            case 6: m.dnsServers = addresses(v, n)
            case 15 where n >= 1: m.domainName = text(v, n)
            case 81 where n >= 3:
                // Client FQDN: flags, two obsolete RCODEs, then the name (ASCII or DNS wire format per the E flag).
                let flags = b.u8(v)
                if flags & 0x04 != 0 {
                    m.clientFQDN = try? DNSReader.name(in: UnsafeRawBufferPointer(rebasing: b[(v + 3)..<(v + n)]), at: 0).0
                } else {
                    m.clientFQDN = text(v + 3, n - 3)
                }
            default: break
            }
            p = v + n
        }
        return m
    }
}
