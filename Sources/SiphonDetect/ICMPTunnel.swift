public import SiphonCore
public import SiphonFlows
public import SiphonGeo

/// Thresholds of the ICMP tunnel detector.
public struct ICMPTunnelConfiguration: Sendable {
    /// Echo requests whose data is a whole IP packet (an IPv4 header with a valid checksum and a total length that
    /// fits, or an IPv6 header whose payload length fits) that make a tunnel: no ping carries IP packets.
    public var innerPackets = 3
    /// Echo data a device sent to one host, in bytes, that makes a channel by itself when the sizes vary (ptunnel,
    /// hans and icmptunnel encrypt or frame what they carry): ordinary pings repeat one size (56 or 32 bytes).
    public var volumeBytes = 32_768
    public var distinctSizes = 4
    /// Echo data carried at which a tunnel is high: data has left, not only a channel been opened.
    public var highBytes = 4096
    public init() {}
}

/// `icmp-tunnel` (medium; high once it carried `highBytes`): ICMP echo requests used as a data channel, per device ×
/// peer. Judged at each echo request the device sends (ICMPv4 type 8, ICMPv6 type 128); the medium alert and the
/// high one are raised once each.
public struct ICMPTunnelDetector {
    public let configuration: ICMPTunnelConfiguration
    struct Key: Hashable {
        var device: DeviceID
        var peer: IPAddress
    }
    struct Totals {
        var requests = 0
        var bytes = 0
        var innerPackets = 0
        /// Distinct data sizes seen (the first 16).
        var sizes: [Int] = []
        var first: Timestamp
        var raised: Severity?
    }
    private var peers: [Key: Totals] = [:]
    var budget = TableBudget()

    public init(_ c: ICMPTunnelConfiguration) { configuration = c }

    /// An echo request: `data` is what follows the identifier and sequence number.
    public mutating func echo(
        _ data: UnsafeRawBufferPointer, flow f: Flow, device: DeviceID, destination: GeoInfo?, timestamp: Timestamp,
        into alerts: inout [Alert]
    ) {
        let c = configuration, key = Key(device: device, peer: f.serverAddress)
        guard var t = peers.removeValue(forKey: key) ?? (budget.take(TableBudget.Cost.raisedKey) ? Totals(first: timestamp) : nil)
        else { return }
        defer { peers[key] = t }
        guard t.raised != .high else { return }
        t.requests += 1
        t.bytes += data.count
        if Self.isIPPacket(data) { t.innerPackets += 1 }
        if t.sizes.count < 16, !t.sizes.contains(data.count) { t.sizes.append(data.count) }
        let tunnel = t.innerPackets >= c.innerPackets
        guard tunnel || (t.bytes >= c.volumeBytes && t.sizes.count >= c.distinctSizes) else { return }
        let severity: Severity = t.bytes >= c.highBytes ? .high : .medium
        guard t.raised.map({ $0 < severity }) ?? true else { return }
        t.raised = severity
        let what = tunnel ? "\(t.innerPackets) of them carrying whole IP packets" : "\(t.sizes.count)+ different sizes"
        alerts.append(Alert(
            category: .icmpTunnel, rule: "siphon.icmp-tunnel", severity: severity,
            message: "\(f.clientAddress) sent \(t.bytes) bytes in \(t.requests) ICMP echo requests to \(f.serverAddress) (\(what)): "
                + "ICMP used as a data channel",
            timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: device, destination: destination, evidence: [
                ("requests", .int(t.requests)), ("data_bytes", .int(t.bytes)), ("inner_ip_packets", .int(t.innerPackets)),
                ("distinct_sizes", .int(t.sizes.count)), ("sizes", .strings(t.sizes.prefix(8).map(String.init))),
                ("first_request", .time(t.first)), ("reason", .string(tunnel ? "inner-ip-packets" : "volume")),
            ]))
    }

    /// Whether `data` is exactly one IP packet: IPv4 whose total length is the data's, with a valid header checksum,
    /// or IPv6 whose payload length makes the data's and whose next header is TCP, UDP or ICMPv6 (a ping's
    /// timestamp may begin with a 4 or a 6; not with a packet of its own length).
    static func isIPPacket(_ data: UnsafeRawBufferPointer) -> Bool {
        guard data.count >= 20 else { return false }
        switch data[0] >> 4 {
        case 4:
            let ihl = Int(data[0] & 0x0F) * 4
            let total = Int(data[2]) << 8 | Int(data[3])
            guard ihl >= 20, data.count >= ihl, total == data.count else { return false }
            var sum: UInt32 = 0
            for i in stride(from: 0, to: ihl, by: 2) { sum += UInt32(data[i]) << 8 | UInt32(data[i + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            return sum == 0xFFFF
        case 6:
            guard data.count >= 40, [6, 17, 58].contains(data[6]) else { return false }
            return 40 + (Int(data[4]) << 8 | Int(data[5])) == data.count
        default:
            return false
        }
    }
}
