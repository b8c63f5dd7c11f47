public import SiphonCore

internal import CSiphonSupport
#if canImport(Glibc)
import Glibc
#endif

/// What the reassembler hands on, per flow slot and direction (0: from the initiator, 1: to it).
///
/// `data` bytes are borrowed: valid only during the call (in-order data points into the capture buffer; flushed
/// out-of-order data into a pooled buffer about to be reused). Offsets count bytes from the start of the stream,
/// gaps included, so they stay exact across 32-bit sequence wrap.
public protocol StreamConsumer: AnyObject {
    /// `frame`: the packet that carried these bytes (for out-of-order data, the one buffered).
    func streamData(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, offset: UInt64, frame: FrameRef)
    /// `length` bytes at `offset` will never arrive (capture loss, snapshot length, a memory budget).
    func streamGap(length: UInt64, slot: Int32, direction: Int, offset: UInt64)
    /// Two versions of the same stream bytes differed: an evasion anomaly.
    func streamConflict(_ conflict: OverlapConflict)
    /// One UDP datagram's payload (borrowed), per flow direction, in capture order.
    func datagram(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, timestamp: Timestamp, frame: FrameRef)
}

/// Which copy of overlapping bytes is kept. `first` and `last` are Suricata's `first`/`last` policies; BSD, Linux
/// and Windows follow Suricata's target-based rules for the copies it compares: BSD and Windows keep the old bytes
/// unless the new segment starts before the old one; Linux also takes the new bytes when the new segment starts
/// with the old one and runs past its end. Under every policy but `first`, in-order data is held until the
/// receiver acknowledges it, so a later copy can still win until then.
public enum OverlapPolicy: String, Sendable, CaseIterable {
    case first, last, bsd, linux, windows
}

/// An overlap whose two versions differ, for the `anomaly` event and the `evasion` detector.
public struct OverlapConflict: Sendable {
    public var flowID: UInt64
    public var slot: Int32
    public var direction: Int
    /// Stream offset and length of the overlapping range.
    public var offset: UInt64
    public var length: Int
    /// Stream offsets where the kept copy and the discarded copy started.
    public var keptSegmentOffset: UInt64
    public var discardedSegmentOffset: UInt64
    /// Up to 16 bytes of each version, from `offset`.
    public var kept: [UInt8]
    public var discarded: [UInt8]
    public var timestamp: Timestamp
    /// The packets that carried the two versions, when known (the copy already delivered has none).
    public var frames: [FrameRef] = []
}

/// Limits on buffered out-of-order bytes.
public struct ReassemblyConfiguration: Sendable {
    public var policy: OverlapPolicy = .first
    /// Out-of-order bytes one direction may hold; beyond, the hole before them is declared a gap.
    public var maximumBufferedPerDirection = 4 << 20
    /// Out-of-order bytes all flows together may hold.
    public var maximumBufferedTotal = 64 << 20
    /// Delivered bytes the initiator's direction keeps (its last ones: what the device sent, for its flows), so
    /// that a retransmission of delivered data is compared with all of them: a window that starts at 2 KiB and
    /// doubles as the stream grows, up to this. 0: none (fingerprints only).
    public var retainedPerDirection = 1 << 20
    /// Whether the responder's direction keeps a window too. Off by default: answers are most of the bytes of a
    /// capture (downloads), and copying them all costs ~9 % of a scan; their retransmissions are then compared with
    /// sampled bytes (24 per chunk of the last four delivered) and counted in `unverifiedBytes`.
    public var retainResponder = false
    /// Delivered bytes all directions together keep; a window that cannot grow keeps fewer of its last bytes.
    public var retainedTotal = 64 << 20
    /// Runs of differing bytes reported for one retransmission (the rest are counted).
    public var maximumConflictRangesPerSegment = 16
    public init() {}
}

/// Figures of one direction's stream, read when its flow ends.
public struct StreamFigures: Sendable, Equatable {
    /// Bytes delivered to the consumer (each stream byte once).
    public var delivered: UInt64 = 0
    /// Bytes known missing, and how many holes.
    public var gapBytes: UInt64 = 0
    public var gaps: UInt32 = 0
    /// Bytes seen again (retransmissions, overlaps), and overlapping ranges whose bytes differed.
    public var retransmittedBytes: UInt64 = 0
    public var conflicts: UInt32 = 0
    /// The stream was picked up without its SYN.
    public var midstream = false
    public init() {}
}

/// One buffered out-of-order piece of a TCP stream (outside the generic reassembler, so that its size is a
/// constant rather than generic metadata looked up per segment).
struct TCPSegmentRecord {
    var start: UInt64
    /// Where the TCP segment these bytes came from started and ended (target-based policies compare them).
    var origin: UInt64
    var originEnd: UInt64
    var length: Int
    var next: Int32
    var data: UnsafeMutableRawPointer
    var sizeClass: Int
    /// The packet that supplied these bytes.
    var frame: FrameRef
}

/// Per-direction TCP stream reassembly for the flows of one `FlowTable` (state kept per flow slot).
///
/// In-order data goes straight from the capture buffer to the consumer. Out-of-order segments are copied into
/// pooled buffers, kept in a sequence-sorted list, trimmed against each other by the overlap policy, and released
/// as soon as the hole before them fills. Retransmitted bytes are dropped; 32-bit sequence numbers map to 64-bit
/// stream offsets. A hole that cannot fill (the flow ended, a budget ran out, the capture cut the payload) is
/// reported to the consumer as a gap, never glued over.
public final class TCPReassembler<Consumer: StreamConsumer> {
    public let configuration: ReassemblyConfiguration
    public let consumer: Consumer

    /// Totals over all streams, for the `stats` event.
    public private(set) var deliveredBytes: UInt64 = 0
    public private(set) var gapBytes: UInt64 = 0
    public private(set) var gapCount: UInt64 = 0
    public private(set) var conflictCount: UInt64 = 0
    public private(set) var overlapBytes: UInt64 = 0
    /// Bytes declared gaps because a memory budget was reached (not capture loss).
    public private(set) var budgetGapBytes: UInt64 = 0
    public private(set) var bufferedBytes = 0
    /// What the buffered segments hold in memory: their pooled buffers (a power of two, at least 64 bytes) and
    /// records. The total budget (`maximumBufferedTotal`) counts this, so that a flood of 1-byte segments is
    /// bounded by what it costs, not by its payload.
    public private(set) var heldBytes = 0
    public private(set) var peakBufferedBytes = 0

    /// Delivered bytes not compared with a retransmission because the window no longer (or never) held them.
    public private(set) var unverifiedBytes: UInt64 = 0
    /// Delivered bytes kept now in all windows, and the most at once.
    public private(set) var retainedBytes = 0
    public private(set) var peakRetainedBytes = 0

    /// The last delivered bytes of a direction, in a ring whose capacity is a power of two: stream offsets
    /// `[end - min(count, capacity), end)` sit at `offset & (capacity - 1)`.
    private struct Window {
        var ring: UnsafeMutableRawPointer?
        var capacity = 0
        /// Stream offset after the last byte kept, and how many bytes before it are kept (≤ capacity).
        var end: UInt64 = 0
        var count = 0
        var start: UInt64 { end - UInt64(count) }
    }

    /// A sampled fingerprint of a delivered chunk: its range and 24 of its bytes (start, middle, end). In a
    /// direction without a window (the responder's, unless `retainResponder`), a retransmission of a delivered
    /// range is compared with the last four: a differing copy of any of those bytes is reported as a conflict.
    private struct Fingerprint {
        var start: UInt64 = .max
        var length: Int = 0
        var head: UInt64 = 0
        var middle: UInt64 = 0
        var tail: UInt64 = 0

        init() {}

        init(_ bytes: UnsafeRawBufferPointer, start: UInt64) {
            self.start = start
            length = bytes.count
            let base = bytes.baseAddress!
            if bytes.count >= 8 {
                head = base.loadUnaligned(as: UInt64.self)
                middle = base.loadUnaligned(fromByteOffset: bytes.count / 2 - 4, as: UInt64.self)
                tail = base.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)
            } else {
                for i in 0..<bytes.count { head |= UInt64(bytes[i]) << (8 * UInt64(i)) }
            }
        }

        /// The delivered byte at stream offset `p`, when it is one of the sampled ones.
        func byte(at p: UInt64) -> UInt8? {
            guard p >= start, p < start + UInt64(length) else { return nil }
            let i = Int(p - start)
            if i < 8 { return UInt8(truncatingIfNeeded: head >> (8 * UInt64(i))) }
            guard length >= 8 else { return nil }
            if i >= length - 8 { return UInt8(truncatingIfNeeded: tail >> (8 * UInt64(i - (length - 8)))) }
            let m = length / 2 - 4
            if i >= m && i < m + 8 { return UInt8(truncatingIfNeeded: middle >> (8 * UInt64(i - m))) }
            return nil
        }
    }

    private struct Half {
        var flowID: UInt64 = 0
        /// The last delivered bytes, for retransmissions of data already delivered (`exact`); otherwise the
        /// fingerprints of the last four delivered chunks.
        var window = Window()
        var exact = false
        var recent: (Fingerprint, Fingerprint, Fingerprint, Fingerprint) = (.init(), .init(), .init(), .init())
        var recentNext = 0
        var started = false
        var nextSequence: UInt32 = 0
        /// Stream offset of `nextSequence`: everything before it was delivered or declared a gap.
        var offset: UInt64 = 0
        var finOffset: UInt64 = .max
        var head: Int32 = -1
        var buffered = 0
        /// Stream offset the peer acknowledged (-1: nothing yet). With a policy other than `first`, data is held
        /// until acknowledged, as Suricata does, so that a later copy can still replace it.
        var acked: Int64 = -1
        var figures = StreamFigures()
    }

    private typealias Segment = TCPSegmentRecord

    /// What `count` payload bytes buffered as one segment cost in memory.
    @inline(__always)
    static func charge(_ count: Int) -> Int { 1 << sizeClass(count) + MemoryLayout<Segment>.stride }

    /// The pooled buffer size class (a power of two, at least 64 bytes) that holds `count` bytes.
    @inline(__always)
    static func sizeClass(_ count: Int) -> Int { max(6, Int.bitWidth - (max(1, count) - 1).leadingZeroBitCount) }

    /// Bytes of reassembly state per tracked TCP flow (both directions), buffered data not counted.
    public static var stateBytesPerFlow: Int { 2 * MemoryLayout<Half>.stride }

    /// The packet `segment` is given next (set by the pipeline): delivered bytes name the frame that carried them.
    public var frame = FrameRef.none
    private var halfTable: GrowableTable<Half>
    @inline(__always) private var halves: UnsafeMutablePointer<Half> { halfTable.base }
    /// Halves initialized so far (the lowest ones): memory is touched only for slots the flow table has used.
    private var halfInitialized = 0
    private var segments: [Segment] = []
    private var freeSegments: [Int32] = []
    /// Pooled buffers by power-of-two size class (64 B ... 64 KiB and beyond).
    private var pool: [[UnsafeMutableRawPointer]] = Array(repeating: [], count: 32)

    /// Whether in-order data waits for its acknowledgment. Under `first` the earliest copy of a byte wins, so a
    /// byte is final as soon as it is in order and goes to the consumer straight from the capture buffer; under
    /// the other policies a later copy may still replace it until the receiver acknowledged it.
    private let ackGated: Bool

    public init(configuration: ReassemblyConfiguration = ReassemblyConfiguration(), consumer: Consumer) {
        self.configuration = configuration
        ackGated = configuration.policy != .first
        self.consumer = consumer
        halfTable = GrowableTable(capacity: 2048)
    }

    deinit {
        // Buffers of segments still held (flows never finished) are not in the pool: free them too.
        let free = Set(freeSegments)
        for i in segments.indices where !free.contains(Int32(i)) { segments[i].data.deallocate() }
        for list in pool { for p in list { p.deallocate() } }
        for i in 0..<halfInitialized { halves[i].window.ring?.deallocate() }
        halves.deinitialize(count: halfInitialized)
        halfTable.release()
    }

    /// Starts loading both directions' state of the flow in `slot` (a hint: see `FlowTable.prefetch(hashTag:)`).
    @inline(__always)
    public func prefetch(slot: Int32) {
        let i = Int(slot) * 2
        guard i + 1 < halfInitialized else { return }
        let state = UnsafeRawPointer(halves + i)
        var line = 0
        while line < 2 * MemoryLayout<Half>.stride {
            siphon_prefetch(state + line)
            line += 64
        }
    }

    @inline(__always)
    private func half(_ slot: Int32, _ direction: Int) -> UnsafeMutablePointer<Half> {
        let i = Int(slot) * 2 + direction
        if i >= halfInitialized { grow(to: i + 1) }
        return halves + i
    }

    /// Makes halves `[0, n)` exist: a bigger table when needed (growing without a copy, `GrowableTable`), then
    /// the new ones initialized (whole slot pairs).
    private func grow(to n: Int) {
        let needed = (n + 1) & ~1
        halfTable.grow(toHold: needed, keeping: halfInitialized)
        (halves + halfInitialized).initialize(repeating: Half(), count: needed - halfInitialized)
        halfInitialized = needed
    }

    /// Feeds one TCP segment of the flow `flowID` in `slot`. `payload` is what the capture holds; `missing` bytes of
    /// payload the packet carried on the wire were cut by the snapshot length. `acknowledgment` (with the ACK flag)
    /// releases the other direction's data held under an acknowledgment-gated policy.
    public func segment(
        slot: Int32, flowID: UInt64, direction: Int, sequence: UInt32, flags: UInt16, acknowledgment: UInt32 = 0,
        payload: UnsafeRawBufferPointer, missing: Int = 0, timestamp: Timestamp
    ) {
        defer { if ackGated && flags & 0x10 != 0 { acknowledge(slot: slot, flowID: flowID, direction: 1 - direction, acknowledgment) } }
        let h = half(slot, direction)
        if h.pointee.flowID != flowID {
            reset(h)
            h.pointee.flowID = flowID
            h.pointee.exact = configuration.retainedPerDirection > 0 && (direction == 0 || configuration.retainResponder)
        }
        let syn = flags & 0x02 != 0
        let fin = flags & 0x01 != 0
        var dataSequence = sequence
        if syn {
            dataSequence = sequence &+ 1
            if !h.pointee.started || (h.pointee.offset == 0 && h.pointee.head < 0) {
                h.pointee.started = true
                h.pointee.nextSequence = dataSequence
                h.pointee.offset = 0
                h.pointee.figures.midstream = false
            }
        } else if !h.pointee.started {
            // Mid-stream pickup: the stream starts where this segment does.
            h.pointee.started = true
            h.pointee.nextSequence = dataSequence
            h.pointee.figures.midstream = true
        }
        let distance = Int64(Int32(bitPattern: dataSequence &- h.pointee.nextSequence))
        let start = Int64(h.pointee.offset) + distance
        let length = payload.count + missing
        if fin && start + Int64(length) >= 0 && h.pointee.finOffset == .max {
            h.pointee.finOffset = UInt64(start + Int64(length))
        }
        guard length > 0 else { return }
        place(UnsafeRawBufferPointer(rebasing: payload[...]), at: start, h, slot: slot, direction: direction, timestamp: timestamp)
        if missing > 0 && start + Int64(length) > Int64(h.pointee.offset) && h.pointee.offset == UInt64(max(0, start)) + UInt64(payload.count) {
            // The snapshot length cut this in-order packet: its tail is a gap now, rather than a hole waited on.
            declareGap(UInt64(start + Int64(length)) - h.pointee.offset, h, slot: slot, direction: direction, budget: false)
            drain(h, slot: slot, direction: direction, limit: releaseLimit(h))
        }
    }

    /// The peer acknowledged `number` in `direction`'s sequence space: under a gated policy, data up to it is final.
    private func acknowledge(slot: Int32, flowID: UInt64, direction: Int, _ number: UInt32) {
        let o = half(slot, direction)
        guard o.pointee.flowID == flowID, o.pointee.started else { return }
        let acked = Int64(o.pointee.offset) + Int64(Int32(bitPattern: number &- o.pointee.nextSequence))
        guard acked > o.pointee.acked else { return }
        o.pointee.acked = acked
        if ackGated && o.pointee.head >= 0 { drain(o, slot: slot, direction: direction, limit: acked) }
    }

    @inline(__always)
    private func releaseLimit(_ h: UnsafeMutablePointer<Half>) -> Int64 { ackGated ? h.pointee.acked : .max }

    /// Places `data` (stream offset `start`, possibly before the delivered point) into the stream: the part already
    /// delivered is dropped, the in-order part goes straight to the consumer up to the first buffered segment, the
    /// rest is buffered through the overlap policy, within the memory budgets.
    private func place(
        _ data: UnsafeRawBufferPointer, at start: Int64, _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int,
        timestamp: Timestamp
    ) {
        var data = data
        var start = start
        let origin = UInt64(max(0, start))
        let originEnd = UInt64(max(0, start + Int64(data.count)))
        while true {
            let offset = Int64(h.pointee.offset)
            let end = start + Int64(data.count)
            if start < offset && end > 0 {
                let from = Int(max(0, -start))
                let old = UnsafeRawBufferPointer(rebasing: data[from..<Int(min(end, offset) - start)])
                compareWithDelivered(old, at: UInt64(max(0, start)), h, slot: slot, direction: direction, timestamp: timestamp)
            }
            if end <= offset {
                h.pointee.figures.retransmittedBytes &+= UInt64(data.count)
                return
            }
            if start < offset {
                let skip = Int(offset - start)
                h.pointee.figures.retransmittedBytes &+= UInt64(skip)
                data = UnsafeRawBufferPointer(rebasing: data[skip...])
                start = offset
            }
            if start == offset && !ackGated {
                var direct = data.count
                if h.pointee.head >= 0 { direct = min(direct, Int(Int64(segments[Int(h.pointee.head)].start) - start)) }
                if direct > 0 { deliver(UnsafeRawBufferPointer(rebasing: data[..<direct]), h, slot: slot, direction: direction, frame: frame) }
                if direct == data.count {
                    drain(h, slot: slot, direction: direction, limit: .max)
                    return
                }
                data = UnsafeRawBufferPointer(rebasing: data[direct...])
                start += Int64(direct)
            }
            let fits = h.pointee.buffered + data.count <= configuration.maximumBufferedPerDirection
                && heldBytes + Self.charge(data.count) <= configuration.maximumBufferedTotal
            if fits {
                insert(data, at: UInt64(start), origin: origin, originEnd: originEnd, h, slot: slot, direction: direction, timestamp: timestamp)
                drain(h, slot: slot, direction: direction, limit: releaseLimit(h))
                return
            }
            if h.pointee.head >= 0 && segments[Int(h.pointee.head)].start < UInt64(start) + UInt64(data.count) {
                // Budget: give up the oldest hole (delivering what was buffered behind it), then try again.
                skipToBuffered(h, slot: slot, direction: direction, budget: true)
                continue
            }
            // Nothing buffered before it can be given up: declare the hole before it a gap and deliver it now.
            if UInt64(start) > h.pointee.offset {
                declareGap(UInt64(start) - h.pointee.offset, h, slot: slot, direction: direction, budget: true)
                continue
            }
            // In order under an acknowledgment-gated policy, with no room to hold it until acknowledged: it is
            // final now (it cannot wait; before this, such a segment looped here forever — found by the TCP model
            // fuzz target once the budget counted what segments cost).
            var direct = data.count
            if h.pointee.head >= 0 { direct = min(direct, Int(Int64(segments[Int(h.pointee.head)].start) - start)) }
            guard direct > 0 else {
                // (Unreachable: a buffered segment at or before `start` was given up above.)
                skipToBuffered(h, slot: slot, direction: direction, budget: true)
                continue
            }
            deliver(UnsafeRawBufferPointer(rebasing: data[..<direct]), h, slot: slot, direction: direction, frame: frame)
            if direct == data.count { return }
            data = UnsafeRawBufferPointer(rebasing: data[direct...])
            start += Int64(direct)
        }
    }

    @inline(__always)
    private func deliver(_ bytes: UnsafeRawBufferPointer, _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int, frame: FrameRef) {
        consumer.streamData(bytes, slot: slot, direction: direction, offset: h.pointee.offset, frame: frame)
        if h.pointee.exact {
            retain(bytes, h)
        } else {
            let print = Fingerprint(bytes, start: h.pointee.offset)
            switch h.pointee.recentNext {
            case 0: h.pointee.recent.0 = print
            case 1: h.pointee.recent.1 = print
            case 2: h.pointee.recent.2 = print
            default: h.pointee.recent.3 = print
            }
            h.pointee.recentNext = (h.pointee.recentNext + 1) & 3
        }
        h.pointee.offset &+= UInt64(bytes.count)
        h.pointee.nextSequence &+= UInt32(truncatingIfNeeded: bytes.count)
        h.pointee.figures.delivered &+= UInt64(bytes.count)
        deliveredBytes &+= UInt64(bytes.count)
    }

    private func declareGap(_ length: UInt64, _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int, budget: Bool) {
        guard length > 0 else { return }
        consumer.streamGap(length: length, slot: slot, direction: direction, offset: h.pointee.offset)
        h.pointee.offset &+= length
        h.pointee.nextSequence &+= UInt32(truncatingIfNeeded: length)
        h.pointee.figures.gapBytes &+= length
        h.pointee.figures.gaps &+= 1
        gapBytes &+= length
        gapCount &+= 1
        if budget { budgetGapBytes &+= length }
    }

    /// Delivers buffered segments that the stream has reached, up to stream offset `limit` (the acknowledged
    /// offset under a gated policy); a segment that straddles the limit stays, partly delivered.
    private func drain(_ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int, limit: Int64) {
        while h.pointee.head >= 0 {
            let i = Int(h.pointee.head)
            let s = segments[i]
            let offset = h.pointee.offset
            if s.start > offset || limit <= Int64(offset) { return }
            let end = s.start + UInt64(s.length)
            if end > offset {
                let stop = limit < Int64(end) ? UInt64(limit) : end
                deliver(UnsafeRawBufferPointer(start: s.data + Int(offset - s.start), count: Int(stop - offset)), h,
                        slot: slot, direction: direction, frame: s.frame)
                if stop < end { return }
            }
            h.pointee.head = s.next
            release(Int32(i), h)
        }
    }

    // MARK: Delivered bytes

    /// Keeps `bytes`, about to be delivered at the direction's offset, in its window (grown, within the budget, as
    /// the stream grows).
    @inline(__always)
    private func retain(_ bytes: UnsafeRawBufferPointer, _ h: UnsafeMutablePointer<Half>) {
        let n = bytes.count
        guard n > 0, configuration.retainedPerDirection > 0 else { return }
        if h.pointee.window.end != h.pointee.offset {
            // A gap before these bytes: what the window held is no longer contiguous with them.
            h.pointee.window.count = 0
            h.pointee.window.end = h.pointee.offset
        }
        // Grown when full, and only when the budget has room for the next size (no call per segment otherwise).
        let capacity = h.pointee.window.capacity
        if h.pointee.window.count + n > capacity && capacity < configuration.retainedPerDirection
            && retainedBytes + max(capacity, 2048) <= configuration.retainedTotal {
            grow(&h.pointee.window, toHold: h.pointee.window.count + n)
        }
        let w = h.pointee.window
        guard let ring = w.ring else { return }
        let mask = w.capacity - 1
        // Only the last `capacity` bytes can stay.
        let kept = min(n, w.capacity)
        let from = bytes.baseAddress! + (n - kept)
        let at = Int(truncatingIfNeeded: (w.end + UInt64(n - kept)) & UInt64(mask))
        let first = min(kept, w.capacity - at)
        (ring + at).copyMemory(from: from, byteCount: first)
        if first < kept { ring.copyMemory(from: from + first, byteCount: kept - first) }
        h.pointee.window.end = w.end + UInt64(n)
        h.pointee.window.count = min(w.count + n, w.capacity)
    }

    /// Doubles a window's ring (from 2 KiB) until it holds `needed` bytes or reaches the per-direction limit, as far as
    /// the total budget allows; the bytes it holds move to the new ring.
    private func grow(_ w: inout Window, toHold needed: Int) {
        var capacity = max(w.capacity, 2048)
        while capacity < needed && capacity < configuration.retainedPerDirection { capacity <<= 1 }
        let limit = 1 << (Int.bitWidth - (configuration.retainedPerDirection - 1).leadingZeroBitCount)
        capacity = min(capacity, max(2048, limit))
        while capacity > w.capacity && retainedBytes - w.capacity + capacity > configuration.retainedTotal { capacity >>= 1 }
        guard capacity > w.capacity, capacity >= 2048 else { return }
        let ring = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        if let old = w.ring {
            // Oldest first: stream offset start lands at start & (capacity - 1) in the new ring.
            // Copied in stretches that wrap in neither ring.
            var p = w.start
            while p < w.end {
                let a = Int(p & UInt64(w.capacity - 1)), b = Int(p & UInt64(capacity - 1))
                let n = min(Int(w.end - p), w.capacity - a, capacity - b)
                (ring + b).copyMemory(from: old + a, byteCount: n)
                p += UInt64(n)
            }
            old.deallocate()
        }
        retainedBytes += capacity - w.capacity
        if retainedBytes > peakRetainedBytes { peakRetainedBytes = retainedBytes }
        w.ring = ring
        w.capacity = capacity
    }

    /// Frees a direction's state (its window's ring) and clears it.
    private func reset(_ h: UnsafeMutablePointer<Half>) {
        if let ring = h.pointee.window.ring {
            ring.deallocate()
            retainedBytes -= h.pointee.window.capacity
        }
        h.pointee = Half()
    }

    /// Bytes offered again for a range already delivered: compared with every delivered byte the window still
    /// holds; each run of differing bytes is reported with its offset. Delivered bytes are final whatever the
    /// policy. The part of the range the window no longer holds counts in `unverifiedBytes`; in a direction with
    /// fingerprints only, the whole range does (its sampled bytes are still compared).
    private func compareWithDelivered(
        _ data: UnsafeRawBufferPointer, at start: UInt64, _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int,
        timestamp: Timestamp
    ) {
        guard h.pointee.exact else {
            unverifiedBytes &+= UInt64(data.count)
            compareWithFingerprints(data, at: start, h, slot: slot, direction: direction, timestamp: timestamp)
            return
        }
        let w = h.pointee.window
        let end = start + UInt64(data.count)
        let from = max(start, w.start), to = min(end, w.end)
        guard let ring = w.ring, from < to else {
            unverifiedBytes &+= UInt64(data.count)
            return
        }
        unverifiedBytes &+= UInt64(data.count) - (to - from)
        let mask = UInt64(w.capacity - 1)
        let ranges = configuration.maximumConflictRangesPerSegment
        var reported = 0
        var p = from
        while p < to {
            // The next stretch contiguous in the ring, compared at once; bytes only where it differs.
            let at = Int(p & mask)
            let stretch = Int(min(to - p, UInt64(w.capacity - at)))
            let offered = data.baseAddress! + Int(p - start)
            if memcmp(ring + at, offered, stretch) == 0 {
                p += UInt64(stretch)
                continue
            }
            var i = 0
            while i < stretch {
                if (ring + at).load(fromByteOffset: i, as: UInt8.self) == offered.load(fromByteOffset: i, as: UInt8.self) { i += 1; continue }
                var j = i
                while j < stretch && (ring + at).load(fromByteOffset: j, as: UInt8.self) != offered.load(fromByteOffset: j, as: UInt8.self) { j += 1 }
                if reported < ranges {
                    let shown = min(j - i, 16)
                    h.pointee.figures.conflicts &+= 1
                    conflictCount &+= 1
                    consumer.streamConflict(OverlapConflict(
                        flowID: h.pointee.flowID, slot: slot, direction: direction, offset: p + UInt64(i), length: j - i,
                        keptSegmentOffset: w.start, discardedSegmentOffset: start,
                        kept: [UInt8](UnsafeRawBufferPointer(start: ring + at + i, count: shown)),
                        discarded: [UInt8](UnsafeRawBufferPointer(start: offered + i, count: shown)), timestamp: timestamp,
                        frames: frame.isNone ? [] : [frame]))
                }
                reported += 1
                i = j
            }
            p += UInt64(stretch)
        }
        if reported > ranges { unreportedConflictRanges &+= UInt64(reported - ranges) }
    }

    /// Bytes offered again for a range already delivered, in a direction without a window: compares them with the
    /// sampled bytes of the recent delivered chunks they overlap; a difference is reported.
    private func compareWithFingerprints(
        _ data: UnsafeRawBufferPointer, at start: UInt64, _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int,
        timestamp: Timestamp
    ) {
        let r = h.pointee.recent
        let end = start + UInt64(data.count)
        for old in [r.0, r.1, r.2, r.3] where old.start != .max && old.start < end && start < old.start + UInt64(old.length) {
            var kept: [UInt8] = []
            var discarded: [UInt8] = []
            var first: UInt64?
            var p = max(start, old.start)
            let stop = min(end, old.start + UInt64(old.length))
            while p < stop {
                if let known = old.byte(at: p) {
                    let offered = data[Int(p - start)]
                    if known != offered {
                        if first == nil { first = p }
                        kept.append(known)
                        discarded.append(offered)
                    }
                } else if old.length >= 8 {
                    // Jump to the next sampled window.
                    let i = Int(p - old.start)
                    let m = old.length / 2 - 4
                    let next = i < m ? m : old.length - 8
                    if next > i { p = old.start + UInt64(next); continue }
                }
                p += 1
            }
            guard let at = first else { continue }
            h.pointee.figures.conflicts &+= 1
            conflictCount &+= 1
            consumer.streamConflict(OverlapConflict(
                flowID: h.pointee.flowID, slot: slot, direction: direction, offset: at, length: Int(stop - at),
                keptSegmentOffset: old.start, discardedSegmentOffset: start, kept: Array(kept.prefix(16)),
                discarded: Array(discarded.prefix(16)), timestamp: timestamp, frames: frame.isNone ? [] : [frame]))
            return
        }
    }

    /// Runs of differing bytes beyond `maximumConflictRangesPerSegment` in one retransmission, not reported.
    public private(set) var unreportedConflictRanges: UInt64 = 0

    /// Declares the hole before the first buffered segment a gap and delivers what follows it.
    private func skipToBuffered(_ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int, budget: Bool) {
        guard h.pointee.head >= 0 else { return }
        let first = segments[Int(h.pointee.head)].start
        if first > h.pointee.offset { declareGap(first - h.pointee.offset, h, slot: slot, direction: direction, budget: budget) }
        drain(h, slot: slot, direction: direction, limit: .max)
    }

    // MARK: Out-of-order buffering

    /// Inserts out-of-order `data` at stream offset `start` into the sorted segment list, storing only the bytes no
    /// buffered segment holds and resolving the overlapping ones by the policy.
    private func insert(
        _ data: UnsafeRawBufferPointer, at start: UInt64, origin: UInt64, originEnd: UInt64, _ h: UnsafeMutablePointer<Half>, slot: Int32,
        direction: Int, timestamp: Timestamp
    ) {
        let length = data.count
        let end = start + UInt64(length)
        var cursor = start
        var previous: Int32 = -1
        var current = h.pointee.head
        while cursor < end {
            while current >= 0 && segments[Int(current)].start + UInt64(segments[Int(current)].length) <= cursor {
                previous = current
                current = segments[Int(current)].next
            }
            if current < 0 || segments[Int(current)].start >= end {
                previous = store(data, from: cursor, to: end, dataStart: start, origin: origin, originEnd: originEnd, after: previous, before: current, h)
                break
            }
            let old = segments[Int(current)]
            if old.start > cursor {
                previous = store(data, from: cursor, to: old.start, dataStart: start, origin: origin, originEnd: originEnd, after: previous, before: current, h)
                cursor = old.start
            }
            // [cursor, overlapEnd) is held by `old` and offered again by the new segment.
            let overlapEnd = min(end, old.start + UInt64(old.length))
            resolveOverlap(old: Int(current), new: data, newStart: start, newOrigin: origin, newOriginEnd: originEnd, from: cursor, to: overlapEnd, h, slot: slot,
                           direction: direction, timestamp: timestamp)
            cursor = overlapEnd
            previous = current
            current = old.next
        }
    }

    /// Applies the overlap policy to `[from, to)`, held by buffered segment `old` and offered by `new`.
    private func resolveOverlap(
        old: Int, new: UnsafeRawBufferPointer, newStart: UInt64, newOrigin: UInt64, newOriginEnd: UInt64, from: UInt64, to: UInt64,
        _ h: UnsafeMutablePointer<Half>, slot: Int32, direction: Int, timestamp: Timestamp
    ) {
        let count = Int(to - from)
        let oldBytes = segments[old].data + Int(from - segments[old].start)
        let newBytes = new.baseAddress! + Int(from - newStart)
        overlapBytes &+= UInt64(count)
        h.pointee.figures.retransmittedBytes &+= UInt64(count)
        let differs = memcmp(oldBytes, newBytes, count) != 0
        let oldStart = segments[old].origin
        let takeNew: Bool
        switch configuration.policy {
        case .first: takeNew = false
        case .last: takeNew = true
        case .bsd, .windows: takeNew = newOrigin < oldStart
        // Suricata's linux: the new segment also wins when it starts with the old one and runs past its end.
        case .linux: takeNew = newOrigin < oldStart || (newOrigin == oldStart && newOriginEnd > segments[old].originEnd)
        }
        if differs {
            h.pointee.figures.conflicts &+= 1
            conflictCount &+= 1
            let shown = min(count, 16)
            let oldCopy = [UInt8](UnsafeRawBufferPointer(start: oldBytes, count: shown))
            let newCopy = [UInt8](UnsafeRawBufferPointer(start: newBytes, count: shown))
            consumer.streamConflict(OverlapConflict(
                flowID: h.pointee.flowID, slot: slot, direction: direction, offset: from, length: count,
                keptSegmentOffset: takeNew ? newOrigin : oldStart, discardedSegmentOffset: takeNew ? oldStart : newOrigin,
                kept: takeNew ? newCopy : oldCopy, discarded: takeNew ? oldCopy : newCopy, timestamp: timestamp,
                frames: [segments[old].frame, frame].filter { !$0.isNone }))
            if takeNew {
                oldBytes.copyMemory(from: newBytes, byteCount: count)
                // The buffered bytes are now this packet's (all of them when it covered the whole segment; else the
                // segment keeps naming the packet that supplied most of it).
                if count * 2 >= segments[old].length { segments[old].frame = frame }
            }
        }
    }

    /// Copies `data[from - dataStart ..< to - dataStart]` into a pooled buffer linked between two segments.
    private func store(
        _ data: UnsafeRawBufferPointer, from: UInt64, to: UInt64, dataStart: UInt64, origin: UInt64, originEnd: UInt64,
        after previous: Int32,
        before next: Int32, _ h: UnsafeMutablePointer<Half>
    ) -> Int32 {
        let length = Int(to - from)
        let sizeClass = Self.sizeClass(length)
        let buffer = pool[sizeClass].popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: 1 << sizeClass, alignment: 16)
        buffer.copyMemory(from: data.baseAddress! + Int(from - dataStart), byteCount: length)
        let record = Segment(
            start: from, origin: origin, originEnd: originEnd, length: length, next: next, data: buffer, sizeClass: sizeClass, frame: frame)
        let index: Int32
        if let free = freeSegments.popLast() {
            index = free
            segments[Int(free)] = record
        } else {
            index = Int32(segments.count)
            segments.append(record)
        }
        if previous >= 0 { segments[Int(previous)].next = index } else { h.pointee.head = index }
        h.pointee.buffered += length
        bufferedBytes += length
        heldBytes += Self.charge(length)
        if bufferedBytes > peakBufferedBytes { peakBufferedBytes = bufferedBytes }
        return index
    }

    private func release(_ index: Int32, _ h: UnsafeMutablePointer<Half>) {
        let s = segments[Int(index)]
        h.pointee.buffered -= s.length
        bufferedBytes -= s.length
        heldBytes -= Self.charge(s.length)
        pool[s.sizeClass].append(s.data)
        freeSegments.append(index)
    }

    // MARK: End of a flow

    /// Ends both directions of the flow in `slot`: buffered data is delivered with the holes before it reported as
    /// gaps, a FIN beyond the delivered data adds the missing tail as a gap. Returns each direction's figures
    /// (index 0 from the initiator) and frees the slot's state.
    public func finish(slot: Int32, flowID: UInt64) -> (StreamFigures, StreamFigures) {
        var out = (StreamFigures(), StreamFigures())
        for direction in 0..<2 {
            let h = half(slot, direction)
            guard h.pointee.flowID == flowID else { continue }
            while h.pointee.head >= 0 { skipToBuffered(h, slot: slot, direction: direction, budget: false) }
            if h.pointee.finOffset != .max && h.pointee.finOffset > h.pointee.offset {
                declareGap(h.pointee.finOffset - h.pointee.offset, h, slot: slot, direction: direction, budget: false)
            }
            if direction == 0 { out.0 = h.pointee.figures } else { out.1 = h.pointee.figures }
            reset(h)
        }
        return out
    }
}
