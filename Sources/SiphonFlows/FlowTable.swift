public import SiphonCore
public import SiphonDecode
internal import CSiphonSupport

/// Idle timeouts and limits of a flow table, all in capture time.
public struct FlowTableConfiguration: Sendable {
    /// TCP after the handshake (or after both sides were seen): Zeek and Suricata use about an hour.
    public var tcpEstablishedTimeout: Duration = .seconds(3600)
    /// TCP that never got an answer or a handshake.
    public var tcpUnestablishedTimeout: Duration = .seconds(120)
    /// TCP after FIN both ways or RST: how long late packets (the last ACK) still join the flow.
    public var tcpClosedTimeout: Duration = .seconds(5)
    public var udpTimeout: Duration = .seconds(120)
    /// ICMP and other IP protocols.
    public var otherTimeout: Duration = .seconds(120)
    /// Flows tracked at once; beyond it the longest-idle flow is ended early (counted in `evictions`).
    public var maximumFlows = 1 << 20
    /// A packet whose TTL differs from its direction's reference by more than this is a TTL outlier (Snort's stream5
    /// `ttl_limit`, default 5; the scan pipeline takes it from the detection configuration, i.e. the rule pack).
    public var ttlLimit: UInt8 = 5
    /// Silence (no TCP or UDP payload either way) after which a flow's next payload begins a new exchange
    /// (`FlowTable.beganExchange`); zero: exchanges are not followed. The in-flow heartbeat detector's, set by the
    /// scan pipeline: deciding it here, on the flow record the packet just updated, spares the detector a look at
    /// its own per-flow state for every packet.
    public var exchangeSilence: Duration = .zero
    /// Where the index's key hash starts (`FlowKey.fastHash(seed:)`): random per configuration, so that a capture
    /// cannot choose 5-tuples whose hashes share a bucket and lengthen every probe (a hash-flooding attack on the
    /// index). Lookups do not depend on it, nor does anything the table reports (flows end in list order, not
    /// index order). The read-ahead thread's prefetch hint (`ScanPipeline.precheck`) hashes with the same seed.
    public var hashSeed: UInt64 = FastHash.seed()

    public init() {}
}

/// The flow table: bidirectional flows keyed on the 5-tuple and VLAN, counters per direction, TCP history and
/// state, idle timeouts by capture time.
///
/// Flows live in a dense slot array (plain values, no reference counting); an open-addressing index maps key
/// hashes to slots. Each flow is also on one of five idle-ordered lists (one per timeout kind), so expiring flows
/// costs O(expired) rather than a sweep of the table. Ended flows are appended to `ended`, which the owner drains.
///
/// Memory per tracked flow: `MemoryLayout<Flow>.stride` plus 8 to 16 bytes of index (load factor 0.25-0.5).
public final class FlowTable {
    public let configuration: FlowTableConfiguration

    /// Flows that ended since the owner last called `releaseEnded()`, in the order they ended.
    public private(set) var ended: [Flow] = []
    /// The slot each flow of `ended` occupied: side state kept per slot by later stages (reassembly) is still
    /// there until `releaseEnded()` makes the slots reusable.
    public private(set) var endedSlots: [Int32] = []

    public private(set) var activeCount = 0
    public private(set) var createdCount: UInt64 = 0
    /// Flows ended early because the table was full.
    public private(set) var evictions: UInt64 = 0
    /// The latest capture time seen (timestamps that go backwards do not move it).
    public private(set) var now = Timestamp.zero

    private var slotTable: GrowableTable<Flow>
    /// Idle-order list links, apart from the flows so that moving a flow to its list's tail on every packet touches
    /// 12-byte entries (cache-resident) rather than the neighbours' 200-byte flow records.
    private var linkTable: GrowableTable<FlowLink>
    @inline(__always) private var slots: UnsafeMutablePointer<Flow> { slotTable.base }
    @inline(__always) private var links: UnsafeMutablePointer<FlowLink> { linkTable.base }
    /// Slots in use or freed so far; slots below this index that are free are on `freeList`.
    private var slotHighWater = 0
    private var freeList: [Int32] = []

    /// Open addressing: 0 empty, else `hash32 << 32 | (slot + 1)`; linear probing, backward-shift deletion.
    private var index: UnsafeMutablePointer<UInt64>
    private var indexMask: Int

    private static let classCount = 5
    private var heads = [Int32](repeating: -1, count: classCount)
    private var tails = [Int32](repeating: -1, count: classCount)
    private let timeouts: [Int64]
    private var nextExpiryCheck = Timestamp.zero
    /// The slot of the previous packet's flow (-1 after that flow ended).
    private var lastSlot: Int32 = -1
    /// Whether the packet `process` just accounted begins an exchange of its flow: the flow's first TCP or UDP
    /// payload, or the first after `configuration.exchangeSilence` without any (a packet with a bad checksum
    /// neither begins nor extends one). Always false when exchanges are not followed.
    public private(set) var beganExchange = false
    private let exchangeSilence: Int64

    private struct FlowLink {
        var previous: Int32 = -1
        var next: Int32 = -1
        var timeoutClass: UInt8 = 0
        /// Capture time (ns) the flow was last put at its list's tail.
        var queuedAt: Int64 = 0
    }

    /// A flow is moved to its list's tail at most once per this much capture time (and on a change of timeout
    /// class), not on every packet. Lists stay ordered by `queuedAt`, so the sweep may end an idle flow up to this
    /// late; whether a packet starts a new flow is still decided exactly, on lookup.
    private static let requeueGranularity: Int64 = 1_000_000_000

    private enum TimeoutClass: UInt8 {
        case tcpEstablished = 0, tcpUnestablished, tcpClosed, udp, other
    }

    public init(configuration: FlowTableConfiguration = FlowTableConfiguration()) {
        self.configuration = configuration
        timeouts = [
            configuration.tcpEstablishedTimeout.nanoseconds, configuration.tcpUnestablishedTimeout.nanoseconds,
            configuration.tcpClosedTimeout.nanoseconds, configuration.udpTimeout.nanoseconds,
            configuration.otherTimeout.nanoseconds,
        ]
        exchangeSilence = configuration.exchangeSilence.nanoseconds
        slotTable = GrowableTable(capacity: 1024)
        linkTable = GrowableTable(capacity: 1024)
        indexMask = 4096 - 1
        index = UnsafeMutablePointer<UInt64>.allocate(capacity: indexMask + 1)
        index.initialize(repeating: 0, count: indexMask + 1)
    }

    deinit {
        // Flow is a trivial type: nothing to deinitialize.
        slotTable.release()
        linkTable.release()
        index.deallocate()
    }

    /// Bytes this table holds for its flows and index right now.
    public var memoryFootprint: Int {
        slotTable.capacity * (MemoryLayout<Flow>.stride + MemoryLayout<FlowLink>.stride) + (indexMask + 1) * 8
            + freeList.capacity * 4
    }

    /// Reads a live flow by the slot `process` returned (valid until the flow ends).
    @inlinable
    public func flow(at slot: Int32) -> Flow { withFlow(at: slot) { $0 } }

    @usableFromInline
    func withFlow<R>(at slot: Int32, _ body: (inout Flow) -> R) -> R { body(&slots[Int(slot)]) }

    // MARK: Packets

    /// Accounts one decoded packet to its flow, creating or ending flows as needed. Returns the flow's slot and
    /// whether the packet travels from the initiator, or nil when the packet belongs to no flow. A packet whose TCP
    /// or UDP checksum is `bad` counts in the flow's packets and bytes, but its flags and TTL change nothing (its
    /// receiver drops it) and the history gets Zeek's `C`. `frame`: the packet's number and interface, kept as the
    /// flow's first and last frames.
    @discardableResult
    public func process(
        _ p: DecodedPacket, timestamp: Timestamp, wireLength: Int, packets: Int = 1,
        checksum: ChecksumStatus = .unchecked, frame: FrameRef = .none
    ) -> (slot: Int32, fromInitiator: Bool)? {
        if timestamp > now { now = timestamp }
        if now >= nextExpiryCheck { expireIdle() }
        beganExchange = false
        guard let (key, fromA) = FlowKey.of(p) else { return nil }
        let hash = key.fastHash(seed: configuration.hashSeed)
        // Consecutive packets often belong to one flow (bursts): the last slot's key is in cache, the index may not be.
        var slot = lastSlot >= 0 && slots[Int(lastSlot)].key.same(as: key) ? lastSlot : find(key, hash: hash)
        if slot >= 0 {
            // Idle longer than its timeout (the sweep runs once a second of capture time: decide exactly here),
            // or a new SYN on a closed connection (port reuse): the old flow ends, a new one starts.
            let state = slots[Int(slot)].state
            let idle = timestamp.nanoseconds(since: slots[Int(slot)].end)
            // SYN without ACK (a packet with a bad checksum carries no flags that count).
            let syn = checksum != .bad && p.transport == .tcp && p.tcp.flags.rawValue & 0x12 == 0x02
            if idle > timeouts[Int(links[Int(slot)].timeoutClass)] || (syn && (state == .closed || state == .reset)) {
                end(slot: slot, as: state == .open ? .timeout : state)
                slot = -1
            }
        }
        if slot < 0 { slot = create(key, hash: hash, p, fromA: fromA, timestamp: timestamp, flagsCount: checksum != .bad, frame: frame) }
        let s = Int(slot)
        let fromInitiator = slots[s].initiatorIsA == fromA
        update(&slots[s], p, fromA: fromA, fromInitiator: fromInitiator, timestamp: timestamp, wireLength: wireLength,
               packets: packets, checksum: checksum, frame: frame.number)
        // The timeout class only changes with SYN/FIN/RST or a direction's first packet.
        let classMayChange = (p.transport == .tcp && p.tcp.flags.rawValue & 0x07 != 0)
            || (fromA ? slots[s].aToB.packets : slots[s].bToA.packets) == UInt64(packets)
        touch(slot, at: timestamp, classMayChange: classMayChange)
        lastSlot = slot
        return (slot, fromInitiator)
    }

    private func create(
        _ key: FlowKey, hash: UInt64, _ p: DecodedPacket, fromA: Bool, timestamp: Timestamp, flagsCount: Bool, frame: FrameRef
    ) -> Int32 {
        if activeCount >= configuration.maximumFlows, let victim = oldestFlow() {
            evictions += 1
            slots[Int(victim)].evicted = true
            end(slot: victim, as: .timeout)
        }
        let slot = allocateSlot()
        createdCount += 1
        let (senderInitiates, flipped) = FlowTable.senderInitiates(p, flags: flagsCount)
        var flow = Flow(key: key, id: createdCount, initiatorIsA: senderInitiates == fromA, start: timestamp)
        if flipped { flow.history.record(UInt8(ascii: "^"), initiator: true) }
        flow.outer8021QTCI = p.outer8021QTCI
        flow.firstFrame = frame.number
        flow.interface = frame.interface
        slots[Int(slot)] = flow
        insertIndex(hash: hash, slot: slot)
        activeCount += 1
        link(slot, into: classOf(slots + Int(slot)), at: timestamp)
        return slot
    }

    /// Whether the first packet's sender is the initiator, and whether that was decided against it. Without
    /// `flags` (a packet its receiver drops), only the ports decide.
    static func senderInitiates(_ p: DecodedPacket, flags counted: Bool = true) -> (Bool, flipped: Bool) {
        switch p.transport {
        case .tcp:
            let flags = p.tcp.flags
            if counted, flags.contains(.syn) { return flags.contains(.ack) ? (false, true) : (true, false) }
            if isServicePort(p.sourcePort) && !isServicePort(p.destinationPort) { return (false, true) }
            return (true, false)
        case .udp:
            if isServicePort(p.sourcePort) && !isServicePort(p.destinationPort) { return (false, true) }
            return (true, false)
        default:
            return (true, false)
        }
    }

    /// Ports on which a first packet is far more likely a server's answer than a client's request
    /// (capture started mid-conversation).
    static func isServicePort(_ port: UInt16) -> Bool {
        if port < 1024 { return true }
        switch port {
        case 1080, 1194, 1433, 1883, 3128, 3306, 3389, 3478, 4500, 5060, 5061, 5222, 5223, 5228, 5353, 5355, 5432,
            5683, 5684, 6379, 8000, 8008, 8080, 8081, 8443, 8883, 9000, 9200, 27017:
            return true
        default:
            return false
        }
    }

    private func update(
        _ f: inout Flow, _ p: DecodedPacket, fromA: Bool, fromInitiator: Bool, timestamp: Timestamp, wireLength: Int,
        packets: Int, checksum: ChecksumStatus, frame: UInt64
    ) {
        if timestamp > f.end { f.end = timestamp }
        if timestamp < f.start { f.start = timestamp }
        if frame > f.lastFrame { f.lastFrame = frame }
        let payload = UInt64(p.payloadLength)
        if fromA {
            f.aToB.packets &+= UInt64(packets)
            f.aToB.bytes &+= UInt64(wireLength)
            f.aToB.payloadBytes &+= payload
            if p.hasMACs { f.macA = p.sourceMAC; f.macB = p.destinationMAC }
        } else {
            f.bToA.packets &+= UInt64(packets)
            f.bToA.bytes &+= UInt64(wireLength)
            f.bToA.payloadBytes &+= payload
            if p.hasMACs { f.macB = p.sourceMAC; f.macA = p.destinationMAC }
        }
        if checksum == .bad {
            // The receiver drops it: no state, no history but the checksum letter, no TTL baseline.
            // ICMP payloads reach no parser: a bad ICMP checksum hides nothing from the detectors.
            let effect = (p.transport == .tcp || p.transport == .udp) && p.payloadLength > 0
                || (p.transport == .tcp && p.tcp.flags.rawValue & 0x07 != 0)
            if fromA {
                f.pathA.badChecksums.bump()
                if effect { f.pathA.badChecksumsWithEffect.bump() }
            } else {
                f.pathB.badChecksums.bump()
                if effect { f.pathB.badChecksumsWithEffect.bump() }
            }
            f.history.record(UInt8(ascii: "C"), initiator: fromInitiator)
            return
        }
        if payload > 0, exchangeSilence > 0, p.transport == .tcp || p.transport == .udp {
            // Timestamps that go backwards extend the exchange and do not move its clock back.
            let t = timestamp.nanoseconds
            if f.lastPayload == Int64.min || Timestamp.saturatingDifference(t, f.lastPayload) >= exchangeSilence {
                beganExchange = true
            }
            if t > f.lastPayload { f.lastPayload = t }
        }
        if fromA { notePath(&f.pathA, p) } else { notePath(&f.pathB, p) }
        if p.transport == .tcp {
            var d = fromA ? f.tcpA : f.tcpB
            updateTCP(&f, &d, p, fromInitiator: fromInitiator)
            if fromA { f.tcpA = d } else { f.tcpB = d }
            if f.state == .open && f.tcpA.fin && f.tcpB.fin { f.state = .closed }
        } else if payload > 0 {
            f.history.record(UInt8(ascii: "D"), initiator: fromInitiator)
        }
    }

    @inline(__always)
    private func notePath(_ d: inout PathFacts, _ p: DecodedPacket) {
        guard p.transport == .tcp, !p.tcp.flags.contains(.syn) else { return }
        // A reset never sets the reference: an on-path injector's reset before the peer's first reply would make
        // the real packets the outliers. The first non-reset packet sets it; a reset seen before is judged then.
        guard d.hasTTL else {
            if p.tcp.flags.contains(.rst) {
                if d.earlyResetTTL == 0 { d.earlyResetTTL = p.ttl == 0 ? 1 : p.ttl }
                return
            }
            d.ttl = p.ttl
            d.hasTTL = true
            let early = d.earlyResetTTL
            if early != 0 {
                let delta = early > p.ttl ? early - p.ttl : p.ttl - early
                if delta > configuration.ttlLimit {
                    d.outlierTTL = early
                    d.ttlOutliers.bump()
                    d.ttlOutlierResets.bump()
                    // This packet, with the usual TTL, carries on after the reset.
                    if p.payloadLength > 0 { d.injectedResets = d.ttlOutlierResets }
                }
            }
            return
        }
        let delta = p.ttl > d.ttl ? p.ttl - d.ttl : d.ttl - p.ttl
        let rst = p.tcp.flags.contains(.rst)
        guard delta > configuration.ttlLimit else {
            // Data with the usual TTL after an outlier reset: the reset did not come from this peer.
            if p.payloadLength > 0, d.ttlOutlierResets > d.injectedResets { d.injectedResets = d.ttlOutlierResets }
            return
        }
        guard p.payloadLength > 0 || rst else { return }
        if d.ttlOutliers == 0 { d.outlierTTL = p.ttl }
        d.ttlOutliers.bump()
        if rst { d.ttlOutlierResets.bump() }
    }

    private func updateTCP(_ f: inout Flow, _ d: inout TCPDirection, _ p: DecodedPacket, fromInitiator: Bool) {
        let flags = p.tcp.flags
        let length = UInt32(truncatingIfNeeded: p.payloadLength)
        let syn = flags.contains(.syn)
        let fin = flags.contains(.fin)
        let rst = flags.contains(.rst)
        if syn {
            f.history.record(UInt8(ascii: fin || rst ? "Q" : flags.contains(.ack) ? "H" : "S"), initiator: fromInitiator)
            d.syn = true
        }
        if fin {
            f.history.record(UInt8(ascii: "F"), initiator: fromInitiator)
            d.fin = true
        }
        if rst {
            f.history.record(UInt8(ascii: "R"), initiator: fromInitiator)
            d.rst = true
        }
        if length > 0 {
            // Sequence space covered by this segment; at or below what was already covered means a retransmission.
            let segmentEnd = p.tcp.sequence &+ length &+ (syn ? 1 : 0)
            // Data starting below what was covered: seen (at least partly) before.
            if d.hasSequence && sequenceAfter(d.highestEnd, p.tcp.sequence &+ (syn ? 1 : 0)) {
                if fromInitiator == f.initiatorIsA { f.pathA.retransmissions.bump() } else { f.pathB.retransmissions.bump() }
            }
            if d.hasSequence && !sequenceAfter(segmentEnd, d.highestEnd) {
                f.history.record(UInt8(ascii: "T"), initiator: fromInitiator)
            } else {
                f.history.record(UInt8(ascii: "D"), initiator: fromInitiator)
            }
        } else if flags.contains(.ack) && !syn && !fin && !rst {
            f.history.record(UInt8(ascii: "A"), initiator: fromInitiator)
        }
        if p.tcp.window == 0 && !syn && !rst {
            f.history.record(UInt8(ascii: "W"), initiator: fromInitiator)
        }
        let end = p.tcp.sequence &+ length &+ (syn ? 1 : 0) &+ (fin ? 1 : 0)
        if !d.hasSequence || sequenceAfter(end, d.highestEnd) {
            d.highestEnd = end
            d.hasSequence = true
        }
        if rst { f.state = .reset }
    }

    /// `a` comes after `b` in 32-bit sequence space (RFC 1982 serial arithmetic).
    @inline(__always)
    func sequenceAfter(_ a: UInt32, _ b: UInt32) -> Bool { Int32(bitPattern: a &- b) > 0 }

    // MARK: Timeouts and the end of input

    private func classOf(_ flow: UnsafeMutablePointer<Flow>) -> TimeoutClass {
        switch flow.pointee.key.ipProtocol {
        case 6:
            let state = flow.pointee.state
            if state == .closed || state == .reset { return .tcpClosed }
            let handshake = flow.pointee.tcpA.syn && flow.pointee.tcpB.syn
            let bothSeen = flow.pointee.aToB.packets > 0 && flow.pointee.bToA.packets > 0
            return handshake || bothSeen ? .tcpEstablished : .tcpUnestablished
        case 17: return .udp
        default: return .other
        }
    }

    /// Ends the flows idle for longer than their timeout at the current capture time. A list is walked from its
    /// head (earliest queued) and stops at the first flow still active: flows behind it were queued later, so each
    /// is at most `requeueGranularity` past its timeout; a later sweep ends it.
    public func expireIdle() {
        for c in 0..<FlowTable.classCount {
            let limit = timeouts[c]
            while heads[c] >= 0 {
                let slot = heads[c]
                let state = slots[Int(slot)].state
                guard now.nanoseconds(since: slots[Int(slot)].end) > limit else { break }
                end(slot: slot, as: state == .open ? .timeout : state)
            }
        }
        nextExpiryCheck = now.adding(nanoseconds: 1_000_000_000)
    }

    /// Moves capture time to `time` with no packet (a live source's clock tick) and ends the flows idle for longer
    /// than their timeout by then. Time never goes back.
    public func advance(to time: Timestamp) {
        if time > now { now = time }
        expireIdle()
    }

    /// Calls `body` with each live flow and its slot, per timeout class in idle order (not per packet: the pipeline
    /// judges open flows this way once a minute of capture time).
    public func forEachActive(_ body: (Int32, Flow) -> Void) {
        for c in 0..<FlowTable.classCount {
            var slot = heads[c]
            while slot >= 0 {
                body(slot, slots[Int(slot)])
                slot = links[Int(slot)].next
            }
        }
    }

    /// Ends every remaining flow, as at the end of a capture: open ones become `open-at-end`.
    public func finish() { finish(atMost: .max) }

    /// Ends at most `limit` of the remaining flows (call until `activeCount` is 0, draining `ended` between
    /// calls, so that a million live flows are not all copied into `ended` at once).
    public func finish(atMost limit: Int) {
        var n = 0
        for c in 0..<FlowTable.classCount {
            while heads[c] >= 0 && n < limit {
                let slot = heads[c]
                end(slot: slot, as: slots[Int(slot)].state == .open ? .openAtEnd : slots[Int(slot)].state)
                n += 1
            }
        }
    }

    private func oldestFlow() -> Int32? {
        var best: Int32?
        for c in 0..<FlowTable.classCount where heads[c] >= 0 {
            if best == nil || slots[Int(heads[c])].end < slots[Int(best!)].end { best = heads[c] }
        }
        return best
    }

    private func end(slot: Int32, as state: FlowState) {
        if slot == lastSlot { lastSlot = -1 }
        var f = slots[Int(slot)]
        f.state = state
        unlink(slot, from: links[Int(slot)].timeoutClass)
        removeIndex(f.key, slot: slot)
        activeCount -= 1
        ended.append(f)
        endedSlots.append(slot)
    }

    /// Makes the slots of the ended flows reusable and empties `ended`. Call after reading them.
    public func releaseEnded() {
        freeList.append(contentsOf: endedSlots)
        ended.removeAll(keepingCapacity: true)
        endedSlots.removeAll(keepingCapacity: true)
    }

    /// The client and server ports of the live flow in `slot` (no copy of the whole record).
    @inline(__always)
    public func ports(at slot: Int32) -> (client: UInt16, server: UInt16) {
        let f = slots + Int(slot)
        return f.pointee.initiatorIsA ? (f.pointee.key.portA, f.pointee.key.portB) : (f.pointee.key.portB, f.pointee.key.portA)
    }

    /// The id of the live flow in `slot`.
    @inline(__always)
    public func flowID(at slot: Int32) -> UInt64 { slots[Int(slot)].id }

    // MARK: Idle-ordered lists

    /// Moves the flow to the tail of its timeout class list when its class changed, or when it was last queued
    /// more than `requeueGranularity` ago: lists stay ordered by queue time, most recently queued last.
    @inline(__always)
    private func touch(_ slot: Int32, at timestamp: Timestamp, classMayChange: Bool) {
        let link = links[Int(slot)]
        if !classMayChange && Timestamp.saturatingDifference(timestamp.nanoseconds, link.queuedAt) < FlowTable.requeueGranularity { return }
        let c = classOf(slots + Int(slot))
        if c.rawValue == link.timeoutClass && Timestamp.saturatingDifference(timestamp.nanoseconds, link.queuedAt) < FlowTable.requeueGranularity { return }
        if tails[Int(link.timeoutClass)] == slot && c.rawValue == link.timeoutClass {
            links[Int(slot)].queuedAt = max(link.queuedAt, timestamp.nanoseconds)
            return
        }
        unlink(slot, from: link.timeoutClass)
        self.link(slot, into: c, at: timestamp)
    }

    private func link(_ slot: Int32, into c: TimeoutClass, at timestamp: Timestamp) {
        let ci = Int(c.rawValue)
        // Never queue before the current tail, so that the list stays ordered when timestamps step back.
        let tailTime = tails[ci] >= 0 ? links[Int(tails[ci])].queuedAt : Int64.min
        links[Int(slot)] = FlowLink(
            previous: tails[ci], next: -1, timeoutClass: c.rawValue, queuedAt: max(timestamp.nanoseconds, tailTime))
        if tails[ci] >= 0 { links[Int(tails[ci])].next = slot } else { heads[ci] = slot }
        tails[ci] = slot
    }

    private func unlink(_ slot: Int32, from c: UInt8) {
        let ci = Int(c)
        let prev = links[Int(slot)].previous
        let next = links[Int(slot)].next
        if prev >= 0 { links[Int(prev)].next = next } else { heads[ci] = next }
        if next >= 0 { links[Int(next)].previous = prev } else { tails[ci] = prev }
    }

    // MARK: Slots and index

    private func allocateSlot() -> Int32 {
        if let slot = freeList.popLast() { return slot }
        if slotHighWater == slotTable.capacity {
            slotTable.grow(toHold: slotHighWater + 1, keeping: slotHighWater)
            linkTable.grow(toHold: slotHighWater + 1, keeping: slotHighWater)
        }
        slotHighWater += 1
        return Int32(slotHighWater - 1)
    }

    /// Starts loading the record of the flow whose key hashes to `hash` (its upper half, as the index keeps it),
    /// if one is live: the pipeline calls it for the packet after the one it is handling, so that the record
    /// (4 cache lines) arrives while this packet is worked on. A hint only: no key is compared, nothing changes.
    /// Returns the slot prefetched, or -1.
    @inline(__always) @discardableResult
    public func prefetch(hashTag tag: UInt64) -> Int32 {
        let slot = probe(tag) { _ in true }
        guard slot >= 0 else { return -1 }
        let record = UnsafeRawPointer(slots + Int(slot))
        var line = 0
        while line < MemoryLayout<Flow>.stride {
            siphon_prefetch(record + line)
            line += 64
        }
        siphon_prefetch(UnsafeRawPointer(links + Int(slot)))
        return slot
    }

    /// Starts loading the index entry where a key hashing to `hash` (upper half) would be: the first step of
    /// `prefetch(hashTag:)`, taken one packet earlier.
    @inline(__always)
    public func prefetchIndex(hashTag tag: UInt64) {
        siphon_prefetch(UnsafeRawPointer(index + (Int(truncatingIfNeeded: tag) & indexMask)))
    }

    @inline(__always)
    private func find(_ key: FlowKey, hash: UInt64) -> Int32 {
        probe(hash >> 32) { slots[Int($0)].key.same(as: key) }
    }

    /// Linear probing from the tag's bucket: the first live slot with this tag that `accept` takes, or -1.
    @inline(__always)
    private func probe(_ tag: UInt64, _ accept: (Int32) -> Bool) -> Int32 {
        var i = Int(truncatingIfNeeded: tag) & indexMask
        while true {
            let e = index[i]
            if e == 0 { return -1 }
            if e >> 32 == tag {
                let slot = Int32(truncatingIfNeeded: (e & 0xFFFF_FFFF) - 1)
                if accept(slot) { return slot }
            }
            i = (i + 1) & indexMask
        }
    }

    private func insertIndex(hash: UInt64, slot: Int32) {
        if (activeCount + 1) * 2 > indexMask + 1 { growIndex() }
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: tag) & indexMask
        while index[i] != 0 { i = (i + 1) & indexMask }
        index[i] = tag << 32 | UInt64(slot + 1)
    }

    private func growIndex() {
        let oldMask = indexMask
        let old = index
        indexMask = (oldMask + 1) * 2 - 1
        index = UnsafeMutablePointer<UInt64>.allocate(capacity: indexMask + 1)
        index.initialize(repeating: 0, count: indexMask + 1)
        for j in 0...oldMask where old[j] != 0 {
            var i = Int(truncatingIfNeeded: old[j] >> 32) & indexMask
            while index[i] != 0 { i = (i + 1) & indexMask }
            index[i] = old[j]
        }
        old.deallocate()
    }

    private func removeIndex(_ key: FlowKey, slot: Int32) {
        let tag = key.fastHash(seed: configuration.hashSeed) >> 32
        var i = Int(truncatingIfNeeded: tag) & indexMask
        let wanted = tag << 32 | UInt64(slot + 1)
        while index[i] != wanted {
            precondition(index[i] != 0, "flow index lost a live flow")
            i = (i + 1) & indexMask
        }
        // Backward-shift deletion keeps every later entry reachable from its home bucket.
        var hole = i
        var j = i
        while true {
            j = (j + 1) & indexMask
            let e = index[j]
            if e == 0 { break }
            let home = Int(truncatingIfNeeded: e >> 32) & indexMask
            let stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if stays { continue }
            index[hole] = e
            hole = j
        }
        index[hole] = 0
    }
}
