public import SiphonCore
public import SiphonDecode

/// A bidirectional flow key: the two endpoints in canonical order (`a` is the smaller `(address, port)`),
/// the IP protocol, the outer VLAN ID, and the tunnel (0 for none) so that inner flows of different tunnels never
/// share a key.
@frozen
public struct FlowKey: Hashable, Sendable {
    // Ordered so that the small fields fill the tail of `a` (an address is 17 bytes): 48 bytes in all, the
    // tunnel included (50 without it in the declaration order a, b, ports, protocol, VLAN).
    public var a: IPAddress
    public var ipProtocol: UInt8
    public var portA: UInt16
    public var portB: UInt16
    public var vlan: UInt16
    public var b: IPAddress
    /// `TunnelInfo.discriminator` of the tunnel the flow's packets came in (0: none).
    public var tunnel: UInt32

    public init(a: IPAddress, portA: UInt16, b: IPAddress, portB: UInt16, ipProtocol: UInt8, vlan: UInt16, tunnel: UInt32 = 0) {
        self.a = a
        self.b = b
        self.portA = portA
        self.portB = portB
        self.ipProtocol = ipProtocol
        self.vlan = vlan
        self.tunnel = tunnel
    }

    /// Builds the canonical key of a decoded packet; `fromA` says whether the packet travels from `a` to `b`.
    /// Returns nil for packets that belong to no flow (no IP layer, a decode error, a non-first fragment).
    @inlinable @inline(__always)
    public static func of(_ p: DecodedPacket) -> (key: FlowKey, fromA: Bool)? {
        guard p.error == nil else { return nil }
        var sport: UInt16
        var dport: UInt16
        switch p.transport {
        case .tcp, .udp:
            sport = p.sourcePort
            dport = p.destinationPort
        case .icmp, .icmpv6:
            (sport, dport, _) = ICMPPorts.map(type: p.icmpType, code: p.icmpCode, v6: p.transport == .icmpv6)
        case .other:
            sport = 0
            dport = 0
        case .none, .fragment:
            return nil
        }
        let src = p.source
        let dst = p.destination
        let srcFirst = src < dst || (src == dst && sport <= dport)
        if srcFirst {
            return (FlowKey(a: src, portA: sport, b: dst, portB: dport, ipProtocol: p.ipProtocol, vlan: p.vlan,
                            tunnel: p.tunnel.discriminator), true)
        }
        return (FlowKey(a: dst, portA: dport, b: src, portB: sport, ipProtocol: p.ipProtocol, vlan: p.vlan,
                        tunnel: p.tunnel.discriminator), false)
    }

    /// A well-mixed 64-bit hash from `seed` (not SipHash: the flow table's index, hashed per packet, starts from a
    /// random seed of its own instead: `FlowTableConfiguration.hashSeed`).
    @inlinable @inline(__always)
    public func fastHash(seed: UInt64) -> UInt64 {
        let mix = FastHash.mix
        var h = seed
        h = mix(h, a.high)
        h = mix(h, a.low)
        h = mix(h, b.high)
        // The tunnel in the upper half of an IPv4 address's word (empty there): no extra round.
        h = mix(h, b.low ^ UInt64(tunnel) << 32)
        let tail = UInt64(portA) << 48 | UInt64(portB) << 32 | UInt64(vlan) << 16 | UInt64(ipProtocol) << 8
            | (a.isIPv6 ? 1 : 0)
        h = mix(h, tail)
        return h &* 0xFF51_AFD7_ED55_8CCD
    }

    /// Equality without the compiler's synthesized field-by-field branches.
    @inlinable @inline(__always)
    public func same(as o: FlowKey) -> Bool {
        ((a.high ^ o.a.high) | (a.low ^ o.a.low) | (b.high ^ o.b.high) | (b.low ^ o.b.low)) == 0
            && portA == o.portA && portB == o.portB && ipProtocol == o.ipProtocol && vlan == o.vlan && tunnel == o.tunnel
            && a.isIPv6 == o.a.isIPv6
    }
}

/// ICMP and ICMPv6 type/code as flow "ports", following Community ID v1: a message type with a request/response
/// counterpart uses (type, counterpart type), so both halves of an exchange share a flow; any other message uses
/// (type, code) and is one-way.
public enum ICMPPorts {
    @inlinable
    public static func map(type: UInt8, code: UInt8, v6: Bool) -> (UInt16, UInt16, oneWay: Bool) {
        if let other = counterpart(type: type, v6: v6) { return (UInt16(type), UInt16(other), false) }
        return (UInt16(type), UInt16(code), true)
    }

    @inlinable
    public static func counterpart(type: UInt8, v6: Bool) -> UInt8? {
        if v6 {
            switch type {
            case 128: return 129  // echo request / reply
            case 129: return 128
            case 133: return 134  // router solicitation / advertisement
            case 134: return 133
            case 135: return 136  // neighbor solicitation / advertisement
            case 136: return 135
            case 130: return 131  // multicast listener query / report
            case 131: return 130
            case 144: return 145  // home agent address discovery
            case 145: return 144
            case 146: return 147  // mobile prefix solicitation / advertisement
            case 147: return 146
            case 139: return 140  // node information query / response
            case 140: return 139
            default: return nil
            }
        }
        switch type {
        case 8: return 0  // echo / echo reply
        case 0: return 8
        case 13: return 14  // timestamp
        case 14: return 13
        case 15: return 16  // information
        case 16: return 15
        case 10: return 9  // router solicitation / advertisement
        case 9: return 10
        case 17: return 18  // address mask
        case 18: return 17
        default: return nil
        }
    }
}
