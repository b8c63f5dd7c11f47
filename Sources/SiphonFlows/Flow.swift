public import SiphonCore
internal import SiphonDecode

/// Packet and byte counters of one direction of a flow.
@frozen
public struct DirectionCounters: Sendable, Equatable {
    public var packets: UInt64 = 0
    /// Bytes on the wire (original frame lengths).
    public var bytes: UInt64 = 0
    /// Transport payload bytes according to the headers (before reassembly).
    public var payloadBytes: UInt64 = 0
    public init() {}
}

/// How a flow ended (the `state` of a `flow` event).
public enum FlowState: UInt8, Sendable, CustomStringConvertible {
    /// Still active.
    case open
    /// TCP: both sides sent FIN.
    case closed
    /// TCP: a RST was seen.
    case reset
    /// No packet for the idle timeout of its kind (or evicted by the flow-table limit).
    case timeout
    /// Still open when the capture ended.
    case openAtEnd

    public var description: String {
        switch self {
        case .open: "open"
        case .closed: "closed"
        case .reset: "reset"
        case .timeout: "timeout"
        case .openAtEnd: "open-at-end"
        }
    }
}

/// What one direction's packets said about the path: TTLs and checksums (the `evasion` detector reads them).
/// Counters saturate at 65,535 (16 bytes a direction: the flow record stays within 256 bytes).
@frozen
public struct PathFacts: Sendable, Equatable {
    /// TCP only: the IP TTL (IPv6 hop limit) of the direction's first packet after the handshake (SYN and SYN-ACK
    /// are left out: SYN proxies and load balancers answer them from another distance than the server's data).
    public var ttl: UInt8 = 0
    public var hasTTL = false
    /// Segments carrying payload or RST whose TTL differs from `ttl` by more than the table's TTL limit: one the
    /// inspector sees but the receiver may not (it expires on the way), or one another host injected.
    public var ttlOutliers: UInt16 = 0
    /// Of them, resets; and resets after which the same side went on sending data with the usual TTL (a forged
    /// reset: the real peer never closed).
    public var ttlOutlierResets: UInt16 = 0
    public var injectedResets: UInt16 = 0
    /// The TTL of the first outlier.
    public var outlierTTL: UInt8 = 0
    /// The TTL of a reset that came before any reference (0: none), judged once the reference is known.
    public var earlyResetTTL: UInt8 = 0
    /// Segments whose data starts below what the direction had covered (retransmissions, overlaps): with TTL
    /// outliers, the two copies of an insertion.
    public var retransmissions: UInt16 = 0
    /// Packets with a bad TCP or UDP checksum: counted on the wire, their flags and payload ignored, as the
    /// receiver drops them.
    public var badChecksums: UInt16 = 0
    /// Of them, those that carried payload or SYN, FIN or RST (what would change an inspector's view).
    public var badChecksumsWithEffect: UInt16 = 0
    public init() {}
}

/// Zeek-style connection history: one letter per event kind and direction, in order of first occurrence,
/// upper case for the initiator, lower case for the responder.
/// S SYN, H SYN-ACK, A pure ACK, D payload, F FIN, R RST, T retransmitted payload, W zero window,
/// Q SYN with FIN or RST, C bad checksum, ^ initiator chosen against the first packet's direction.
@frozen
public struct FlowHistory: Sendable, Equatable {
    @usableFromInline var letters: (UInt64, UInt64) = (0, 0)
    @usableFromInline var count: UInt8 = 0
    /// Bit per (letter, direction) already recorded.
    @usableFromInline var seen: UInt32 = 0

    public init() {}

    public static func == (x: FlowHistory, y: FlowHistory) -> Bool {
        x.letters == y.letters && x.count == y.count && x.seen == y.seen
    }

    /// Position of a history letter in the `seen` bit set (called per packet: a switch, not a table search).
    @inlinable @inline(__always)
    static func slot(of letter: UInt8) -> UInt32? {
        switch letter {
        case UInt8(ascii: "S"): 0
        case UInt8(ascii: "H"): 1
        case UInt8(ascii: "A"): 2
        case UInt8(ascii: "D"): 3
        case UInt8(ascii: "F"): 4
        case UInt8(ascii: "R"): 5
        case UInt8(ascii: "T"): 6
        case UInt8(ascii: "W"): 7
        case UInt8(ascii: "Q"): 8
        case UInt8(ascii: "^"): 9
        case UInt8(ascii: "C"): 10
        default: nil
        }
    }

    /// Records `letter` (upper case) for the initiator (`initiator == true`) or the responder.
    @inlinable @inline(__always)
    public mutating func record(_ letter: UInt8, initiator: Bool) {
        guard let index = FlowHistory.slot(of: letter) else { return }
        let bit: UInt32 = 1 << (index * 2 + (initiator ? 0 : 1))
        if seen & bit != 0 || count >= 16 { return }
        seen |= bit
        let char = UInt64(initiator || letter == UInt8(ascii: "^") ? letter : letter | 0x20)
        if count < 8 {
            letters.0 |= char << (UInt64(count) * 8)
        } else {
            letters.1 |= char << (UInt64(count - 8) * 8)
        }
        count += 1
    }

    public var description: String {
        var out = [UInt8]()
        for i in 0..<Int(count) {
            let word = i < 8 ? letters.0 : letters.1
            out.append(UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8)))
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// TCP state of one direction, as far as flow accounting needs it.
@frozen
public struct TCPDirection: Sendable {
    public var syn = false
    public var fin = false
    public var rst = false
    /// A sequence number was seen, so `highestEnd` is meaningful.
    public var hasSequence = false
    /// One past the highest sequence number covered so far (SYN and FIN count as one).
    public var highestEnd: UInt32 = 0
    public init() {}
}

/// One bidirectional flow. Plain values only, so the table stores flows in raw memory without reference counting.
@frozen
public struct Flow: Sendable {
    public var key: FlowKey
    /// Sequential per pipeline run, from 1.
    public var id: UInt64
    /// Whether the initiator is `key.a` (the sender of the SYN, or of the first packet).
    public var initiatorIsA: Bool
    public var start: Timestamp
    public var end: Timestamp
    public var aToB = DirectionCounters()
    public var bToA = DirectionCounters()
    public var tcpA = TCPDirection()
    public var tcpB = TCPDirection()
    public var pathA = PathFacts()
    public var pathB = PathFacts()
    public var history = FlowHistory()
    public var state = FlowState.open
    /// Evicted because the table reached its flow limit.
    public var evicted = false
    /// Link-layer addresses of endpoints a and b when the link layer had them (0 otherwise).
    public var macA: UInt64 = 0
    public var macB: UInt64 = 0
    /// The first packet's outermost 802.1Q TCI (-1 when none): tcpflow names stream files with it.
    public var outer8021QTCI: Int32 = -1
    /// The pcapng interface of the flow's first packet (-1: the capture has none).
    public var interface: Int32 = -1
    /// The frame numbers (Wireshark's `frame.number`) of the flow's first and last packets (0: not numbered).
    public var firstFrame: UInt64 = 0
    public var lastFrame: UInt64 = 0
    /// Capture time (ns) of the latest TCP or UDP packet with payload either way (`Int64.min`: none yet), kept when
    /// the table follows exchanges (`FlowTableConfiguration.exchangeSilence`).
    public var lastPayload = Int64.min

    public init(key: FlowKey, id: UInt64, initiatorIsA: Bool, start: Timestamp) {
        self.key = key
        self.id = id
        self.initiatorIsA = initiatorIsA
        self.start = start
        self.end = start
    }

    // The contract's view: src is the initiator ("client"), dest the responder ("server").
    public var clientAddress: IPAddress { initiatorIsA ? key.a : key.b }
    public var serverAddress: IPAddress { initiatorIsA ? key.b : key.a }
    public var clientPort: UInt16 { initiatorIsA ? key.portA : key.portB }
    public var serverPort: UInt16 { initiatorIsA ? key.portB : key.portA }
    public var client: DirectionCounters { initiatorIsA ? aToB : bToA }
    public var server: DirectionCounters { initiatorIsA ? bToA : aToB }
    public var clientPath: PathFacts { initiatorIsA ? pathA : pathB }
    public var serverPath: PathFacts { initiatorIsA ? pathB : pathA }
    public var clientMAC: UInt64 { initiatorIsA ? macA : macB }
    public var serverMAC: UInt64 { initiatorIsA ? macB : macA }

    /// The flow's Community ID v1 (https://github.com/corelight/community-id-spec), seed 0.
    public var communityID: String {
        CommunityID.compute(
            source: clientAddress, sourcePort: clientPort, destination: serverAddress, destinationPort: serverPort,
            ipProtocol: key.ipProtocol)
    }

    /// The flow's first packet as a frame reference (its time: the flow's start).
    public var firstFrameRef: FrameRef { FrameRef(number: firstFrame, timestamp: start, interface: interface) }
    /// The flow's last packet (its time: the flow's end).
    public var lastFrameRef: FrameRef { FrameRef(number: lastFrame, timestamp: end, interface: interface) }

    /// The `proto` of the JSON contract.
    public var protocolName: String { IPProtocolName.of(key.ipProtocol) }
}

/// Names of IP protocol numbers as Suricata's EVE writes them.
public enum IPProtocolName {
    public static func of(_ number: UInt8) -> String {
        switch number {
        case 6: "TCP"
        case 17: "UDP"
        case 1: "ICMP"
        case 58: "IPv6-ICMP"
        case 2: "IGMP"
        case 47: "GRE"
        case 50: "ESP"
        case 51: "AH"
        case 132: "SCTP"
        case 4: "IPIP"
        case 41: "IPv6"
        case 103: "PIM"
        case 112: "VRRP"
        case 89: "OSPF"
        default: String(number)
        }
    }
}

extension UInt16 {
    /// Adds one, stopping at the maximum.
    @inlinable @inline(__always)
    mutating func bump() { if self < .max { self += 1 } }
}
