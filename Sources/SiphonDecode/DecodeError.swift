/// The protocol layer a decoder works on; names the place of every decode error and every undecodable reason.
public enum Layer: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case link, ethernet, vlan, mpls, pppoe, ppp, sll, sll2, loopback, nflog
    case arp, ipv4, ipv6, ipv6Extension, tcp, udp, icmp, icmpv6, gtp

    public var description: String {
        switch self {
        case .link: "link"
        case .ethernet: "ethernet"
        case .vlan: "vlan"
        case .mpls: "mpls"
        case .pppoe: "pppoe"
        case .ppp: "ppp"
        case .sll: "sll"
        case .sll2: "sll2"
        case .loopback: "loopback"
        case .nflog: "nflog"
        case .arp: "arp"
        case .ipv4: "ipv4"
        case .ipv6: "ipv6"
        case .ipv6Extension: "ipv6-ext"
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        case .icmpv6: "icmpv6"
        case .gtp: "gtp"
        }
    }
}

/// Why a layer could not be decoded: the layer, the byte offset where its header starts, and what was wrong.
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The header needs `needed` bytes from its start; only `available` were captured.
        case truncated(needed: Int, available: Int)
        /// A field holds an impossible value (e.g. an IPv4 header length below 20 bytes).
        case invalid(Field)
        /// A well-formed value Siphon does not decode (link type, EtherType, SLL protocol...).
        case unsupported(Field, value: UInt32)
    }

    /// The field an `invalid` or `unsupported` error is about.
    public enum Field: String, Hashable, Sendable {
        case version, length, family, tlv
        case llc = "802.3-llc"
        case headerLength = "header-length", totalLength = "total-length", dataOffset = "data-offset"
        case etherType = "ethertype", linkType = "link-type", protocolType = "protocol", hardwareType = "hardware-type"
        case nextHeader = "next-header"
    }

    public var layer: Layer
    public var kind: Kind
    /// Offset of the failing header from the start of the captured packet.
    public var offset: Int

    public init(_ layer: Layer, _ kind: Kind, at offset: Int) {
        self.layer = layer
        self.kind = kind
        self.offset = offset
    }

    /// The reason under which the packet is counted, without per-packet details (offsets, lengths).
    public var reason: UndecodableReason {
        switch kind {
        case .truncated: UndecodableReason(layer: layer, what: "truncated")
        case .invalid(let field): UndecodableReason(layer: layer, what: "invalid-\(field.rawValue)")
        case .unsupported(.etherType, let value): UndecodableReason(layer: layer, what: "ethertype-0x" + hex4(value))
        case .unsupported(.llc, _): UndecodableReason(layer: layer, what: "802.3-llc")
        case .unsupported(let field, let value): UndecodableReason(layer: layer, what: "\(field.rawValue)-\(value)")
        }
    }

    public var description: String {
        switch kind {
        case .truncated(let needed, let available):
            "\(layer) header at offset \(offset) needs \(needed) bytes, \(available) captured"
        case .invalid(let field):
            "\(layer) header at offset \(offset) has an invalid \(field.rawValue)"
        case .unsupported(let field, let value):
            "\(layer) header at offset \(offset): unsupported \(field.rawValue) \(value)"
        }
    }
}

private func hex4(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}

/// A reason a packet was counted as undecodable, e.g. `ipv4:truncated` or `ethernet:ethertype-0x88cc`.
public struct UndecodableReason: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var layer: Layer
    public var what: String

    public init(layer: Layer, what: String) {
        self.layer = layer
        self.what = what
    }

    public var description: String { "\(layer):\(what)" }

    public static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}
