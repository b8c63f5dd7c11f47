public import SiphonCore
public import SiphonDecode

/// What a scan counted: every packet read is either decoded or undecodable with a reason.
public struct CaptureStatistics: Sendable {
    /// Packets read (after the BPF filter).
    public var packets: UInt64 = 0
    /// Records the BPF filter rejected.
    public var filteredOut: UInt64 = 0
    /// Bytes on the wire (original lengths) and bytes captured.
    public var wireBytes: UInt64 = 0
    public var capturedBytes: UInt64 = 0
    /// Packets whose capture was cut by the snapshot length.
    public var truncatedBySnaplen: UInt64 = 0
    public var decoded: UInt64 = 0
    public var undecodable: [UndecodableReason: UInt64] = [:]
    public var ipv4: UInt64 = 0
    public var ipv6: UInt64 = 0
    public var arp: UInt64 = 0
    public var tcp: UInt64 = 0
    public var udp: UInt64 = 0
    public var icmp: UInt64 = 0
    public var otherIP: UInt64 = 0
    /// Non-first IP fragments (their transport header is in the first fragment).
    public var fragments: UInt64 = 0
    /// Packets decapsulated from a tunnel (GTP-U G-PDUs), tunnels seen, and outer pairs whose discriminator hash
    /// another pair had (told apart all the same).
    public var tunnelled: UInt64 = 0
    public var tunnels: UInt64 = 0
    public var tunnelDiscriminatorClashes: UInt64 = 0
    /// GSMTAP packets read (UDP port 4729 or the GSMTAP link type), GSM L3 messages decoded, messages whose
    /// elements broke off, GSMTAP packets of another radio (not the GSM Um), LAPDm frames dropped as
    /// retransmissions, concatenated SMS left incomplete.
    public var gsmtapPackets: UInt64 = 0
    public var gsmMessages: UInt64 = 0
    public var gsmMalformed: UInt64 = 0
    public var gsmtapOther: UInt64 = 0
    public var lapdmRetransmissions: UInt64 = 0
    public var lapdmTruncated: UInt64 = 0
    public var gsmtapTruncated: UInt64 = 0
    public var smsIncomplete: UInt64 = 0
    public var linkTypes: [UInt32: UInt64] = [:]
    public var flows: UInt64 = 0
    public var flowsEvicted: UInt64 = 0
    /// TCP reassembly: bytes delivered in order, holes (count and bytes), bytes seen again in overlapping
    /// segments, overlaps whose versions differed, bytes given up to memory budgets, peak out-of-order buffer.
    public var reassembledBytes: UInt64 = 0
    public var gaps: UInt64 = 0
    public var gapBytes: UInt64 = 0
    public var overlapBytes: UInt64 = 0
    public var overlapConflicts: UInt64 = 0
    public var budgetGapBytes: UInt64 = 0
    public var peakBufferedBytes: UInt64 = 0
    /// Retransmitted bytes of delivered data that the delivered-bytes windows no longer held (not compared), the
    /// most those windows held at once, and runs of differing bytes beyond the per-retransmission report limit.
    public var unverifiedRetransmittedBytes: UInt64 = 0
    public var peakRetainedBytes: UInt64 = 0
    public var unreportedConflictRanges: UInt64 = 0
    public var extractionError: String?
    /// DNS messages parsed, and DNS payloads that did not parse.
    public var dnsMessages: UInt64 = 0
    public var dnsErrors: UInt64 = 0
    /// IP fragment reassembly: datagrams rebuilt; fragments (and their frame bytes) dropped incomplete; overlapping
    /// fragments whose bytes differed.
    public var datagramsReassembled: UInt64 = 0
    public var fragmentsDropped: UInt64 = 0
    public var fragmentBytesDropped: UInt64 = 0
    public var fragmentConflicts: UInt64 = 0
    /// Checksum validation: the mode, whether `auto` turned it off (and after how many packets), and per layer
    /// (`ChecksumLayer` order: IPv4 header, TCP, UDP, ICMP) the packets found valid, offloaded and bad. A packet with a
    /// bad IPv4 header checksum is dropped whole; one with a bad TCP or UDP checksum counts in its flow's bytes but
    /// its flags and payload are ignored (the receiver drops both).
    public var checksumMode = ChecksumValidation.auto
    public var checksumDisabledAfter: UInt64?
    public var checksums = ChecksumTallies()
    /// The same, per outcome in `ChecksumLayer` order (IPv4, TCP, UDP, ICMP), for readers.
    public var checksumValid: [UInt64] { ChecksumLayer.allCases.map { checksums[$0].valid } }
    public var checksumOffloaded: [UInt64] { ChecksumLayer.allCases.map { checksums[$0].offloaded } }
    public var checksumBad: [UInt64] { ChecksumLayer.allCases.map { checksums[$0].bad } }
    /// Drops the capturing interfaces reported (pcapng ISB, or the kernel when live).
    public var interfaceDrops: UInt64?
    /// Packets the kernel dropped before Siphon could read them (live capture: `pcap_stats` `ps_drop`).
    public var kernelDrops: UInt64?
    /// Why the capture is known to miss packets (drops by the kernel or the interfaces), nil when nothing says so:
    /// every verdict on it carries this.
    /// The memory ceiling and what its budgets refused or evicted.
    public var memory = MemoryEvictions()
    public var incompleteness: String? {
        let reasons = Coverage(self).reasons
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }
    public var firstTimestamp: Timestamp?
    public var lastTimestamp: Timestamp?
    /// The error that stopped reading, if any (data before it was processed).
    public var error: String?
    public var errorOffset: Int64?

    public init() {}

    public var undecodableTotal: UInt64 { undecodable.values.reduce(0, +) }
}

/// Per-host traffic totals for the summary's top talkers.
public struct HostTotals: Sendable {
    public var bytes: UInt64 = 0
    public var flows: UInt64 = 0
    public init() {}
    /// One more ended flow of this host, with its bytes both ways.
    public mutating func add(bytes: UInt64) {
        self.bytes &+= bytes
        flows &+= 1
    }
}

/// How the checksums of one layer were judged.
public struct ChecksumTally: Sendable, Equatable {
    public var valid: UInt64 = 0
    public var offloaded: UInt64 = 0
    public var bad: UInt64 = 0
    public init() {}
}

/// Checksum tallies per layer, as plain fields: counted twice per packet, so no array (and its uniqueness check).
public struct ChecksumTallies: Sendable, Equatable {
    public var ipv4 = ChecksumTally()
    public var tcp = ChecksumTally()
    public var udp = ChecksumTally()
    public var icmp = ChecksumTally()
    public init() {}

    public subscript(layer: ChecksumLayer) -> ChecksumTally {
        get {
            switch layer {
            case .ipv4: ipv4
            case .tcp: tcp
            case .udp: udp
            case .icmp: icmp
            }
        }
        set {
            switch layer {
            case .ipv4: ipv4 = newValue
            case .tcp: tcp = newValue
            case .udp: udp = newValue
            case .icmp: icmp = newValue
            }
        }
    }

    /// Bad checksums over all layers.
    public var bad: UInt64 { ipv4.bad &+ tcp.bad &+ udp.bad &+ icmp.bad }
}
