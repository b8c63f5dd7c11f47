/// A link-layer header type, in the `LINKTYPE_*` code space of the pcap and pcapng file formats
/// (https://www.tcpdump.org/linktypes.html). libpcap's `DLT_*` values are mapped into it by the capture reader.
@frozen
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static var null: LinkType { LinkType(rawValue: 0) }  // BSD loopback, host-order family
    @inlinable public static var ethernet: LinkType { LinkType(rawValue: 1) }
    @inlinable public static var ppp: LinkType { LinkType(rawValue: 9) }
    @inlinable public static var pppHDLC: LinkType { LinkType(rawValue: 50) }  // PPP in HDLC-like framing
    @inlinable public static var raw: LinkType { LinkType(rawValue: 101) }  // raw IPv4 or IPv6
    @inlinable public static var loop: LinkType { LinkType(rawValue: 108) }  // OpenBSD loopback, network-order family
    @inlinable public static var linuxSLL: LinkType { LinkType(rawValue: 113) }
    @inlinable public static var nflog: LinkType { LinkType(rawValue: 239) }
    @inlinable public static var ipv4: LinkType { LinkType(rawValue: 228) }
    @inlinable public static var ipv6: LinkType { LinkType(rawValue: 229) }
    @inlinable public static var linuxSLL2: LinkType { LinkType(rawValue: 276) }
    /// GSMTAP with its Um payload, no UDP (LINKTYPE_GSMTAP_UM).
    @inlinable public static var gsmtapUm: LinkType { LinkType(rawValue: 217) }

    /// Maps a libpcap `DLT_*` value (what `pcap_datalink` returns) to the `LINKTYPE_*` value.
    /// Only the values that differ between the two spaces on Linux and the BSDs need mapping.
    @inlinable
    public init(dlt: Int32) {
        switch dlt {
        case 12, 14: self = .raw  // DLT_RAW is 12 on most systems, 14 on OpenBSD
        default: self.init(rawValue: UInt32(truncatingIfNeeded: dlt))
        }
    }

    public var description: String {
        switch self {
        case .null: "NULL"
        case .ethernet: "EN10MB"
        case .ppp: "PPP"
        case .pppHDLC: "PPP_HDLC"
        case .raw: "RAW"
        case .loop: "LOOP"
        case .linuxSLL: "LINUX_SLL"
        case .linuxSLL2: "LINUX_SLL2"
        case .gsmtapUm: "GSMTAP_UM"
        case .nflog: "NFLOG"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        default: "LINKTYPE_\(rawValue)"
        }
    }
}
