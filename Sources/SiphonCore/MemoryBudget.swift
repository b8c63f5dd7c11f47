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
    public init() {}
}
