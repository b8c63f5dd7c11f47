public import SiphonCore

/// What ARP and IPv6 neighbour discovery say of the hosts of a link: which link-layer address uses which IP
/// address, and who routes. Read from a decoded packet's bytes, on demand (these packets are rare).
public enum LinkDiscovery {
    /// An address claim: `mac` uses `address`.
    public struct Claim: Equatable, Sendable {
        public var mac: UInt64
        public var address: IPAddress
        /// The sender says it is a router (a router advertisement, or a neighbour advertisement with R set).
        public var router: Bool
    }

    /// The sender of an ARP request or reply over Ethernet and IPv4 (nil for other hardware or protocols, and for
    /// probes from 0.0.0.0).
    public static func arp(_ b: UnsafeRawBufferPointer, _ p: DecodedPacket) -> Claim? {
        let o = p.networkOffset
        guard p.network == .arp, o + 28 <= b.count, b.be16(o) == 1, b.be16(o + 2) == 0x0800, b.u8(o + 4) == 6,
              b.u8(o + 5) == 4
        else { return nil }
        let mac = UInt64(b.be16(o + 8)) << 32 | UInt64(b.be32(o + 10))
        let ip = b.be32(o + 14)
        guard ip != 0, mac != 0 else { return nil }
        return Claim(mac: mac, address: IPAddress(ipv4: ip), router: false)
    }

    /// The address an NDP message claims for its sender's MAC: a neighbour solicitation's target when sent from
    /// :: (duplicate address detection: the address being configured), a neighbour advertisement's target, the
    /// source of a router solicitation or advertisement or of an ordinary solicitation.
    public static func ndp(_ b: UnsafeRawBufferPointer, _ p: DecodedPacket) -> Claim? {
        guard p.transport == .icmpv6, p.hasMACs, p.sourceMAC != 0, (133...136).contains(p.icmpType), p.icmpCode == 0 else { return nil }
        let o = p.transportOffset
        let unspecified = p.source.high == 0 && p.source.low == 0
        switch p.icmpType {
        case 135, 136:
            guard o + 24 <= b.count else { return nil }
            let target = IPAddress(b, at: o + 8, ipv6: true)
            if p.icmpType == 135 {
                return Claim(mac: p.sourceMAC, address: unspecified ? target : p.source, router: false)
            }
            return Claim(mac: p.sourceMAC, address: target, router: b.u8(o + 4) & 0x80 != 0)
        default:
            guard !unspecified else { return nil }
            return Claim(mac: p.sourceMAC, address: p.source, router: p.icmpType == 134)
        }
    }
}
