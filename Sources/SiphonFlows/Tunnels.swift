public import SiphonCore
public import SiphonDecode

/// One tunnel the capture carried (GTP-U between two nodes of a mobile core), as Zeek's tunnel.log keeps them: its
/// outer endpoints, the tunnel endpoint identifiers seen each way, and what it carried.
public struct Tunnel: Sendable {
    /// 1, 2, ... in the order the tunnels were first seen.
    public var id: Int
    public var kind: TunnelKind
    /// The value the inner flows' keys carry (`FlowKey.tunnel`).
    public var discriminator: UInt32
    /// The outer endpoint that sent the tunnel's first packet, and the other.
    public var first: IPAddress
    public var second: IPAddress
    /// Outer UDP ports of the first packet each way (0 when that way carried nothing).
    public var firstPorts: (source: UInt16, destination: UInt16) = (0, 0)
    public var secondPorts: (source: UInt16, destination: UInt16) = (0, 0)
    /// TEIDs of the packets `first` sent (the receiver's identifiers), then of those `second` sent, in the order
    /// seen, at most `Tunnel.maximumTEIDs` each; `moreTEIDs` counts the others.
    public var teidsFromFirst: [UInt32] = []
    public var teidsFromSecond: [UInt32] = []
    public var moreTEIDs = 0
    /// Packets and bytes on the wire, each way (a packet rebuilt from outer fragments counts its fragments).
    public var packets: (fromFirst: UInt64, fromSecond: UInt64) = (0, 0)
    public var bytes: (fromFirst: UInt64, fromSecond: UInt64) = (0, 0)
    public var start: Timestamp
    public var end: Timestamp
    public var firstFrame: UInt64
    public var lastFrame: UInt64
    /// Inner flows started in it.
    public var flows = 0

    public static let maximumTEIDs = 16

    /// The TEIDs seen both ways, without repeats, in order.
    public var teids: [UInt32] {
        var out = teidsFromFirst
        for t in teidsFromSecond where !out.contains(t) { out.append(t) }
        return out
    }

    public var kindName: String {
        switch kind {
        case .gtpU: "gtp-u"
        case .none: "none"
        }
    }
}

/// The tunnels of one pipeline, keyed by their outer endpoint pair. It also makes tunnel discriminators exact: the
/// decoder's is a hash of the outer addresses, and when two pairs hash alike the later one gets another value,
/// written back into the packet before its flow key is made.
public final class TunnelTable {
    private struct Pair: Hashable {
        var low: IPAddress
        var high: IPAddress
        init(_ x: IPAddress, _ y: IPAddress) {
            if x < y { low = x; high = y } else { low = y; high = x }
        }
    }

    public private(set) var tunnels: [Tunnel] = []
    private var byPair: [Pair: Int] = [:]
    private var byDiscriminator: [UInt32: Int] = [:]
    /// Outer pairs whose hash another pair had taken (each given another discriminator).
    public private(set) var discriminatorClashes: UInt64 = 0
    /// The last tunnel recorded, to skip the lookups for a burst in one tunnel.
    private var last = -1
    /// Tunnels listed at most (the memory budget's); packets of further tunnels are decapsulated with the decoder's
    /// discriminator (hash clashes not resolved) and counted in `packetsBeyondLimit`.
    public var maximumTunnels = Int.max
    public private(set) var packetsBeyondLimit: UInt64 = 0

    public init() {}

    /// Accounts one tunnelled packet (its `tunnel` record, `kind != .none`; `bytes`: what it was decoded from).
    /// Returns the tunnel's discriminator, which the packet's flow key must carry (another than the decoder's when
    /// its hash clashed with another tunnel's).
    public func record(
        _ t: TunnelInfo, bytes: UnsafeRawBufferPointer, wireLength: Int, packets: Int = 1, timestamp: Timestamp, frame: UInt64
    ) -> UInt32 {
        let source = t.outerSource(in: bytes), destination = t.outerDestination(in: bytes)
        var i = last
        if i < 0 || !matches(tunnels[i], source, destination) {
            let pair = Pair(source, destination)
            if let known = byPair[pair] {
                i = known
            } else if tunnels.count >= maximumTunnels {
                packetsBeyondLimit &+= UInt64(packets)
                return t.discriminator
            } else {
                var d = t.discriminator
                if byDiscriminator[d] != nil {
                    discriminatorClashes += 1
                    repeat { d = d &+ 0x9E37_79B9; if d == 0 { d = 1 } } while byDiscriminator[d] != nil
                }
                i = tunnels.count
                tunnels.append(Tunnel(
                    id: i + 1, kind: t.kind, discriminator: d, first: source, second: destination,
                    start: timestamp, end: timestamp, firstFrame: frame, lastFrame: frame))
                byPair[pair] = i
                byDiscriminator[d] = i
            }
            last = i
        }
        let fromFirst = tunnels[i].first == source && tunnels[i].second == destination
            || tunnels[i].first == tunnels[i].second && tunnels[i].firstPorts.source == t.outerSourcePort
        update(&tunnels[i], t, fromFirst: fromFirst, wireLength: wireLength, packets: packets, timestamp: timestamp, frame: frame)
        return tunnels[i].discriminator
    }

    private func matches(_ tunnel: Tunnel, _ source: IPAddress, _ destination: IPAddress) -> Bool {
        (tunnel.first == source && tunnel.second == destination) || (tunnel.first == destination && tunnel.second == source)
    }

    private func update(
        _ tunnel: inout Tunnel, _ t: TunnelInfo, fromFirst: Bool, wireLength: Int, packets: Int, timestamp: Timestamp, frame: UInt64
    ) {
        if fromFirst {
            tunnel.packets.fromFirst &+= UInt64(packets)
            tunnel.bytes.fromFirst &+= UInt64(max(0, wireLength))
            if tunnel.firstPorts == (0, 0) { tunnel.firstPorts = (t.outerSourcePort, t.outerDestinationPort) }
            note(t.teid, in: &tunnel.teidsFromFirst, more: &tunnel.moreTEIDs)
        } else {
            tunnel.packets.fromSecond &+= UInt64(packets)
            tunnel.bytes.fromSecond &+= UInt64(max(0, wireLength))
            if tunnel.secondPorts == (0, 0) { tunnel.secondPorts = (t.outerSourcePort, t.outerDestinationPort) }
            note(t.teid, in: &tunnel.teidsFromSecond, more: &tunnel.moreTEIDs)
        }
        if timestamp < tunnel.start { tunnel.start = timestamp }
        if tunnel.end < timestamp { tunnel.end = timestamp }
        if frame > tunnel.lastFrame { tunnel.lastFrame = frame }
    }

    private func note(_ teid: UInt32, in list: inout [UInt32], more: inout Int) {
        if list.last == teid || list.contains(teid) { return }
        if list.count < Tunnel.maximumTEIDs { list.append(teid) } else { more += 1 }
    }

    /// The tunnel whose inner flows carry `discriminator` (nil: not tunnelled, or unknown).
    public func tunnel(discriminator: UInt32) -> Tunnel? {
        guard discriminator != 0, let i = byDiscriminator[discriminator] else { return nil }
        return tunnels[i]
    }

    /// Counts an inner flow started in the tunnel of `discriminator`.
    public func flowStarted(discriminator: UInt32) {
        if discriminator != 0, let i = byDiscriminator[discriminator] { tunnels[i].flows += 1 }
    }
}
