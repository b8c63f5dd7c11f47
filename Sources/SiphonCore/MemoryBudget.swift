/// A scan's memory ceiling and how its tables share it, as Suricata's memcaps do: every table that grows with the
/// capture takes its limit from here, and what a limit refuses is evicted (oldest first) or refused, and counted in
/// the `stats` event's `memory` object — never a crash, never a silent drop.
///
/// The limits are derived from the ceiling by arithmetic, not from measured memory, so two runs with the same
/// options make the same decisions (reports stay reproducible byte for byte). The bytes per entry below are the
/// costs measured for each table (docs/robustness.md, "Memory ceiling"); the shares leave room for the process
/// itself (~40 MB: runtime, embedded tables, buffers) and for per-flow parser buffers, which the flow limit bounds.
public struct MemoryBudget: Sendable, Equatable {
    /// The ceiling in bytes (`--memory-limit`, default 1 GiB).
    public var limit: Int

    public init(limit: Int = 1 << 30) { self.limit = max(limit, 16 << 20) }

    /// Bytes a live flow holds at most outside its buffered payload: the flow record (248 B), its idle-list link
    /// (24 B) and index share (≤ 32 B), both TCP reassembly halves (2 × 304 B), the pipeline's per-slot stream and
    /// application state (56 B), its Community ID and host totals once ended (~150 B).
    public static let bytesPerFlow = 1_120

    /// Flows tracked at once: 45 % of the ceiling.
    public var flows: Int { max(1_024, limit / 100 * 45 / Self.bytesPerFlow) }
    /// Out-of-order TCP bytes held over all flows (with each segment's bookkeeping): 1/16, at most 64 MiB.
    public var reassemblyBuffered: Int { min(64 << 20, limit / 16) }
    /// Delivered TCP bytes kept to compare retransmissions with: 1/16, at most 64 MiB.
    public var reassemblyRetained: Int { min(64 << 20, limit / 16) }
    /// What the TCP application parsers of all live flows hold (TLS records, HTTP heads and waiting requests, DNS
    /// messages, undecided first bytes): 1/16, at most 64 MiB.
    public var parsers: Int { min(64 << 20, limit / 16) }
    /// Incomplete IP datagrams (fragments and each datagram's bookkeeping): 1/64, at most 16 MiB.
    public var fragments: Int { min(16 << 20, limit / 64) }
    /// Addresses the DNS name map remembers names for (~200 B each with up to 16 names): 4 %.
    public var nameMapAddresses: Int { max(1_024, limit / 100 * 4 / 200) }
    /// Alerts kept for the verdicts (~1.5 KB each; every alert is still written as an event): 4 %.
    public var alerts: Int { max(1_024, limit / 100 * 4 / 1_536) }
    /// Device × endpoint ledger entries (~1.4 KB each): 5 %.
    public var ledgerPairs: Int { max(1_024, limit / 100 * 5 / 1_400) }
    /// Hosts of the link (MAC addresses) and addresses per host (~200 B per address record): 3 %.
    public var linkAddresses: Int { max(1_024, limit / 100 * 3 / 200) }
    /// Per-address traffic totals of ended flows (~100 B each): 3 %.
    public var hostTotals: Int { max(1_024, limit / 100 * 3 / 100) }
    /// GTP-U tunnels (~450 B each): 1 %.
    public var tunnels: Int { max(256, limit / 100 / 450) }
    /// Subscriber identities learned from the capture and searched for in payloads (~3 KB each): 1 %.
    public var learnedIdentities: Int { max(256, limit / 100 / 3_072) }
    /// The detectors' and the cellular bench's own tables, together (`TableBudget`): 6 %, at most 256 MiB.
    public var tables: Int { min(256 << 20, max(1 << 20, limit / 100 * 6)) }

    /// Parses `1G`, `512M`, `800k`, `1073741824` (binary units; `B`/`iB` suffixes allowed).
    public static func parse(_ text: String) -> Int? {
        var t = text.trimmingSpaces().lowercased()
        for suffix in ["ib", "b"] where t.hasSuffix(suffix) && t.count > suffix.count { t.removeLast(suffix.count); break }
        var shift = 0
        switch t.last {
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        case "t": shift = 40
        default: break
        }
        if shift > 0 { t.removeLast() }
        guard let v = Int(t), v > 0, v <= Int.max >> shift else { return nil }
        return v << shift
    }
}

/// What the memory budgets refused or evicted during a scan (the `stats` event's `memory` object).
public struct MemoryEvictions: Sendable, Equatable {
    public var limit = 0
    /// Fragmented datagrams dropped incomplete to stay within the fragment budget.
    public var fragmentDatagrams: UInt64 = 0
    /// Addresses the DNS name map did not take (their names are not attached to later flows).
    public var dnsAddresses: UInt64 = 0
    /// Alerts written as events but not kept for the verdicts (beyond the cap, only high and critical are kept).
    public var alertsNotKept: UInt64 = 0
    /// Flows of new device × endpoint pairs not judged by the per-endpoint detectors (the ledger was full).
    public var ledgerFlowsNotJudged: UInt64 = 0
    /// Address sightings of the link's hosts not recorded (the link table was full).
    public var linkAddresses: UInt64 = 0
    /// Ended flows whose traffic was not added to per-address totals (the table was full).
    public var hostTotals: UInt64 = 0
    /// GTP-U packets of tunnels beyond the tunnel table's limit (decapsulated, not listed as tunnels).
    public var tunnelPackets: UInt64 = 0
    /// Subscriber identities not added to the payload search (the learned-identity limit was reached).
    public var learnedIdentities: UInt64 = 0
    /// TCP flows whose application parsing stopped because the parsers of all flows held their budget.
    public var flowsNotParsed: UInt64 = 0
    /// Entries the detectors' and cellular tables did not take (`TableBudget.refused`).
    public var tableEntries: UInt64 = 0
    public init() {}
}

/// The bytes the detectors' and the cellular bench's tables hold, shared by all of them (`MemoryBudget.tables`):
/// upload totals per name, beacon series and their contacts, JA4 endpoint sets, DNS-tunnel domains and their names,
/// rule firings per endpoint, DHCP device names, TMSI/IMSI/IMEI links, GSM phones, the numbers' ledger and number
/// alerts, subscriber identities and addresses. Each table charges a fixed cost per entry it adds (its key, value
/// and share of the hash table's slack, worked out from the layouts: `TableBudget.Cost`); an entry that does not fit
/// is not kept and counted in `refused` (the `stats` event's `memory.table_entries_not_kept`). The costs are fixed
/// figures, not measured memory, so two runs keep the same entries. Shared by reference: one per scan.
public final class TableBudget: @unchecked Sendable {
    /// Bytes the tables may hold together.
    public let limit: Int
    public private(set) var used = 0
    /// Entries not kept because the tables were full.
    public private(set) var refused: UInt64 = 0

    /// An unlimited budget (tables alone, as in unit tests).
    public init(limit: Int = .max) { self.limit = limit }

    /// Charges `bytes` for a new entry: false (and counted) when it does not fit.
    @inline(__always)
    public func take(_ bytes: Int) -> Bool {
        guard bytes <= limit &- used else {
            refused &+= 1
            return false
        }
        used &+= bytes
        return true
    }

    /// Whether `key` is new to `seen`, a raise-once memory: remembered (charged `cost`) when there is room; beyond
    /// it, every time is the first (raised again rather than lost).
    public func firstTime<Key: Hashable>(_ key: Key, in seen: inout Set<Key>, cost: Int) -> Bool {
        guard !seen.contains(key) else { return false }
        if take(cost) { seen.insert(key) }
        return true
    }

    /// Gives back what an entry removed from its table had taken.
    @inline(__always)
    public func give(_ bytes: Int) { used = max(0, used &- bytes) }

    /// What each kind of entry is charged: its key and value (strings at their UTF-8 length plus a 16-byte header
    /// when longer than 15 bytes), and about as much again for the dictionary's slots and growth slack.
    public enum Cost {
        /// Per-name upload totals (`UploadDetector`): key (device, name) and totals with up to 16 addresses.
        public static func uploadName(_ name: String) -> Int { 192 + 2 * name.utf8.count }
        /// A beacon series' key and empty series (`BeaconDetector`).
        public static let beaconSeries = 160
        /// One contact time and frame in a beacon series.
        public static let beaconContact = 16
        /// One exchange of a flow followed for in-flow beaconing: its start, size and first frame.
        public static let heartbeatExchange = 32
        /// A device × endpoint (× kind) key remembered so that an alert about it is raised once (in-flow
        /// heartbeats, credentials).
        public static let raisedKey = 96
        /// One endpoint in the endpoint set of a device × group series (a JA4, a network), or one address
        /// of a device × network counted for sprays.
        public static let groupEndpoint = 64
        /// A device × registered domain's DNS totals (`DNSTunnelDetector`).
        public static func dnsDomain(_ domain: String) -> Int { 256 + 2 * domain.utf8.count }
        /// One distinct name kept under a domain.
        public static func dnsName(_ name: String) -> Int { 48 + 2 * name.utf8.count }
        /// A rule firing remembered per device × endpoint or per device.
        public static let ruleFiring = 96
        /// A DHCP client's host name and vendor class, by MAC address.
        public static func dhcpDevice(_ text: Int) -> Int { 128 + 2 * text }
        /// A TMSI → IMSI or IMSI → IMEI link (two digit strings).
        public static let identityLink = 128
        /// A phone named on the GSM air interface, or a subscriber identity learned from GTP-C.
        public static let subscriber = 288
        /// A phone × number pair's SMS and call totals (the numbers' ledger).
        public static let numberPair = 320
        /// A number alert remembered (so that it is raised once).
        public static let numberAlert = 112
        /// An address a GTP-C session gave a subscriber.
        public static let subscriberAddress = 96
    }
}
