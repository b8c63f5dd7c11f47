public import SiphonCore

/// TCP header flags (including NS from the reserved nibble).
@frozen
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x001) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x002) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x004) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x008) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x010) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x020) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x040) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x080) }
    @inlinable public static var ns: TCPFlags { TCPFlags(rawValue: 0x100) }
}

/// The TCP fields the flow and reassembly stages use, options included.
@frozen
public struct TCPInfo: Sendable {
    public var sequence: UInt32 = 0
    public var acknowledgment: UInt32 = 0
    public var flags: TCPFlags = []
    public var window: UInt16 = 0
    public var headerLength: UInt8 = 0
    /// Maximum segment size option (0 when absent).
    public var mss: UInt16 = 0
    /// Window scale shift (0xFF when absent).
    public var windowScale: UInt8 = 0xFF
    public var sackPermitted = false
    /// Number of SACK blocks in the SACK option (0 when absent).
    public var sackBlocks: UInt8 = 0
    public var hasTimestamps = false
    public var timestampValue: UInt32 = 0
    public var timestampEcho: UInt32 = 0
    /// An option's length was impossible; the options after it were not read.
    public var optionsMalformed = false
    public init() {}
}

/// What the network layer of a packet was.
public enum NetworkKind: UInt8, Sendable {
    case none, ipv4, ipv6, arp
}

/// What sits above the network layer.
public enum TransportKind: UInt8, Sendable {
    /// No transport header decoded (ARP, an error below, IPv6 "no next header").
    case none
    case tcp, udp, icmp, icmpv6
    /// A non-first IP fragment: its transport header is in another packet.
    case fragment
    /// Another IP protocol (GRE, ESP, SCTP...), counted by `ipProtocol`, with no ports.
    case other
}

/// The tunnel a packet was carried in.
public enum TunnelKind: UInt8, Sendable {
    case none
    /// GTP-U v1 (3GPP TS 29.281): a G-PDU on UDP port 2152 carrying a subscriber's IPv4 or IPv6 packet.
    case gtpU
}

/// The outer layers of a tunnelled packet: the decoded packet's network and transport fields are the inner
/// packet's, these are what carried it. Small (28 bytes, reset with every packet): the outer addresses are read
/// from the captured bytes at `outerNetworkOffset` when a tunnel is recorded, not copied here.
@frozen
public struct TunnelInfo: Sendable {
    public var kind = TunnelKind.none
    /// GTP header flags (version, PT, E, S, PN) and the number of extension headers skipped.
    public var flags: UInt8 = 0
    public var extensionHeaders: UInt8 = 0
    public var outerIsIPv6 = false
    /// Where the outer IP header starts in the captured bytes (in the rebuilt datagram for an outer datagram
    /// rebuilt from fragments).
    public var outerNetworkOffset: UInt16 = 0
    public var outerSourcePort: UInt16 = 0
    public var outerDestinationPort: UInt16 = 0
    /// Tells tunnels apart in a flow key: a hash of the two outer addresses that does not depend on their order
    /// (uplink and downlink of one tunnel share it), never 0 in a tunnel. A hash, so two tunnels may share one;
    /// the pipeline's tunnel table gives the later one another (`TunnelTable.discriminatorClashes`).
    public var discriminator: UInt32 = 0
    /// GTP-U tunnel endpoint identifier: the receiver's (uplink and downlink differ).
    public var teid: UInt32 = 0
    @inlinable public init() {}

    /// The outer source address, read from the bytes the packet was decoded from.
    @inlinable
    public func outerSource(in bytes: UnsafeRawBufferPointer) -> IPAddress {
        let o = Int(outerNetworkOffset)
        return outerIsIPv6 ? IPAddress(bytes, at: o + 8, ipv6: true) : IPAddress(bytes, at: o + 12, ipv6: false)
    }

    /// The outer destination address, read from the bytes the packet was decoded from.
    @inlinable
    public func outerDestination(in bytes: UnsafeRawBufferPointer) -> IPAddress {
        let o = Int(outerNetworkOffset)
        return outerIsIPv6 ? IPAddress(bytes, at: o + 24, ipv6: true) : IPAddress(bytes, at: o + 16, ipv6: false)
    }

    /// The discriminator of a tunnel between `x` and `y`, whichever sends.
    @inlinable
    public static func discriminator(_ x: IPAddress, _ y: IPAddress) -> UInt32 {
        @inline(__always) func h(_ a: IPAddress) -> UInt64 {
            var v = (a.high &* 0x9E37_79B9_7F4A_7C15) ^ a.low ^ (a.isIPv6 ? 0x5555 : 0)
            v = (v ^ (v >> 31)) &* 0xBF58_476D_1CE4_E5B9
            return v ^ (v >> 29)
        }
        var v = (h(x) &+ h(y)) &* 0x94D0_49BB_1331_11EB
        v ^= v >> 32
        let d = UInt32(truncatingIfNeeded: v)
        return d == 0 ? 1 : d
    }
}

/// Everything the decoder learned about one packet, as plain values and offsets into its captured bytes.
///
/// Decoding is lax in etherparse's sense: the layers that parsed are kept, and `error` says where and why decoding
/// stopped. A packet with an `error` and no network layer is undecodable; one with an `error` above a valid IP
/// header is still attributed to its flow at the IP level.
@frozen
public struct DecodedPacket: Sendable {
    // Fields ordered by alignment (8-byte, then 1-byte ones filling the holes, 2-byte, 4-byte, the error) so that
    // the value stays under 256 bytes: it is reset, copied into side records and loaded once per packet, and a copy
    // over 256 bytes takes memcpy's slower loop (session 9: 287 bytes cost about 25 instructions a packet more).

    public var sourceMAC: UInt64 = 0
    public var destinationMAC: UInt64 = 0
    public var networkOffset = 0
    /// The IP datagram's length according to its header (total length, or 40 + payload length).
    public var ipLength = 0
    /// Fragment offset in bytes.
    public var fragmentOffset = 0
    public var transportOffset = 0
    /// Offset of the transport payload in the captured bytes.
    public var payloadOffset = 0
    /// Payload length according to the headers (what the packet carried on the wire).
    public var payloadLength = 0
    /// Payload bytes actually present in the capture (less than `payloadLength` when the snapshot length cut it).
    public var payloadCaptured = 0
    public var source = IPAddress(ipv4: 0)
    /// The transport protocol number after any IPv6 extension headers.
    public var ipProtocol: UInt8 = 0
    public var ttl: UInt8 = 0
    public var hasMACs = false
    public var network = NetworkKind.none
    public var isFragment = false
    public var moreFragments = false
    /// Number of IPv6 extension headers skipped.
    public var ipv6ExtensionCount: UInt8 = 0
    public var destination = IPAddress(ipv4: 0)
    public var transport = TransportKind.none
    /// A first fragment that ends inside its transport header: only the ports were read (tiny-fragment evasion).
    public var transportHeaderSplit = false
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// Up to three 802.1Q/802.1ad VLAN IDs, outermost first.
    public var vlanCount: UInt8 = 0
    /// The pseudo-header addresses may not be the ones the checksum covers (a routing header of a type that names
    /// its final destination in a form not decoded, or an IPv6 datagram rebuilt from fragments without its
    /// extension headers): a checksum that fails to verify is then no verdict.
    public var pseudoHeaderUncertain = false
    public var vlanIDs: (UInt16, UInt16, UInt16) = (0, 0, 0)
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    /// IPv6 only: where in the captured bytes the addresses the upper-layer checksum covers are, when they are
    /// not the header's (RFC 8200 8.1): a routing header with segments left names the final destination, a Home
    /// Address option the source. 0: the header's own. (Offsets, not addresses: 4 bytes rather than 48 to reset
    /// per packet.)
    public var pseudoHeaderSourceOffset: UInt16 = 0
    public var pseudoHeaderDestinationOffset: UInt16 = 0
    public var linkType = LinkType.ethernet
    /// The outermost tag's whole TCI (priority, DEI, ID) when it is an 802.1Q (0x8100) tag, else -1.
    public var outer8021QTCI: Int32 = -1
    public var fragmentID: UInt32 = 0
    public var tcp = TCPInfo()
    /// Set when the packet came out of a tunnel (GTP-U): the network and transport fields are the inner packet's
    /// (`hasMACs` is then false: the link addresses are the tunnel endpoints', not the subscriber's).
    public var tunnel = TunnelInfo()
    /// Where and why decoding stopped, if it did.
    public var error: DecodeError?

    /// The source address the upper-layer checksum covers, read from `bytes` (the packet's captured bytes).
    @inlinable
    public func checksumSource(in bytes: UnsafeRawBufferPointer) -> IPAddress {
        let o = Int(pseudoHeaderSourceOffset)
        return o == 0 ? source : IPAddress(ipv6High: bytes.be64(o), low: bytes.be64(o + 8))
    }

    /// The destination address the upper-layer checksum covers, read from `bytes`.
    @inlinable
    public func checksumDestination(in bytes: UnsafeRawBufferPointer) -> IPAddress {
        let o = Int(pseudoHeaderDestinationOffset)
        return o == 0 ? destination : IPAddress(ipv6High: bytes.be64(o), low: bytes.be64(o + 8))
    }

    @inlinable public init() {}

    /// The outermost VLAN ID (0 when untagged).
    @inlinable public var vlan: UInt16 { vlanCount > 0 ? vlanIDs.0 : 0 }

    /// True when a network layer (IP or ARP) was decoded.
    @inlinable public var isDecoded: Bool { network != .none }
}
