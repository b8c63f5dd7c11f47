public import SiphonCore
public import SiphonDecode

/// Limits of IP fragment reassembly.
public struct FragmentConfiguration: Sendable {
    /// A datagram whose fragments have not all arrived after this much capture time is dropped (Linux: 30 s).
    public var timeout: Duration = .seconds(30)
    /// Bytes held in incomplete datagrams over all flows, with each datagram's and piece's bookkeeping
    /// (`datagramOverhead`, `pieceOverhead`); beyond, the oldest datagram is dropped (`budgetDrops`).
    public var maximumBuffered = 16 << 20
    /// Fragments one datagram may have; a datagram with more is dropped (a legitimate 64 KiB datagram over a 1,500-
    /// byte MTU has 45; the flood that sends 8-byte pieces is what this stops).
    public var maximumFragmentsPerDatagram = 256
    public init() {}
}

/// A datagram rebuilt from its fragments: a raw IP packet (a minimal header without options, then the payload),
/// with the number of fragments and their frame bytes, so that flows count what was on the wire.
public struct ReassembledDatagram {
    public var packet: [UInt8]
    public var fragments: Int
    public var wireBytes: Int
}

/// Two fragments of one datagram carried different bytes for the same offsets.
public struct FragmentConflict: Sendable {
    public var source: IPAddress
    public var destination: IPAddress
    public var ipProtocol: UInt8
    public var identification: UInt32
    public var offset: Int
    public var length: Int
    public var timestamp: Timestamp
}

/// IPv4 and IPv6 fragment reassembly, before the transport layer. Fragments are keyed by addresses, protocol,
/// identification and VLAN; overlapping bytes keep the first copy (the one the stack most likely accepted; a
/// conflicting copy is reported); incomplete datagrams are dropped after the timeout or under the memory budget,
/// and counted.
public final class FragmentReassembler {
    public let configuration: FragmentConfiguration

    private struct Key: Hashable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var ipProtocol: UInt8
        var vlan: UInt16
        /// Fragments of an inner packet belong to their tunnel.
        var tunnel: UInt32
    }

    private struct Datagram {
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        /// Known once the fragment without "more fragments" arrived.
        var totalLength: Int?
        var first: Timestamp
        var last: Timestamp
        var fragments = 0
        var wireBytes = 0
        var buffered = 0
        /// When it was first seen, in arrival order (the budget drops the oldest first).
        var serial: UInt64 = 0
    }

    /// Bookkeeping charged to the budget per incomplete datagram (key, record, dictionary slot) and per piece.
    static let datagramOverhead = 192
    static let pieceOverhead = 48

    private var datagrams: [Key: Datagram] = [:]
    /// Datagrams in arrival order, for dropping the oldest in O(1): entries whose datagram is gone (or was replaced,
    /// another serial) are skipped when met.
    private var arrival: [(key: Key, serial: UInt64)] = []
    private var arrivalHead = 0
    private var nextSerial: UInt64 = 0
    private var buffered = 0
    private var nextExpiry = Timestamp.zero

    /// Datagrams rebuilt, and fragments (with their frame bytes) dropped incomplete or invalid.
    public private(set) var reassembled: UInt64 = 0
    public private(set) var droppedFragments: UInt64 = 0
    public private(set) var droppedBytes: UInt64 = 0
    public private(set) var budgetDrops: UInt64 = 0
    public private(set) var conflicts: [FragmentConflict] = []
    public private(set) var conflictCount: UInt64 = 0

    public init(configuration: FragmentConfiguration = FragmentConfiguration()) {
        self.configuration = configuration
    }

    /// Incomplete datagrams held now.
    public var pending: Int { datagrams.count }

    /// Takes the conflicts found since the last call.
    public func takeConflicts() -> [FragmentConflict] {
        defer { conflicts.removeAll(keepingCapacity: true) }
        return conflicts
    }

    /// Adds one fragment (`p.isFragment`, decoded without error); returns the datagram when it is complete.
    public func add(
        _ p: DecodedPacket, bytes: UnsafeRawBufferPointer, wireLength: Int, timestamp: Timestamp
    ) -> ReassembledDatagram? {
        if timestamp >= nextExpiry { expire(now: timestamp) }
        let key = Key(source: p.source, destination: p.destination, identification: p.fragmentID, ipProtocol: p.ipProtocol, vlan: p.vlan,
                      tunnel: p.tunnel.discriminator)
        let payloadStart = p.transportOffset
        let available = bytes.count - payloadStart
        let fragmentLength = max(0, p.ipLength - (p.transportOffset - p.networkOffset))
        var d: Datagram
        if let known = datagrams[key] {
            d = known
        } else {
            d = Datagram(first: timestamp, last: timestamp)
            nextSerial += 1
            d.serial = nextSerial
            d.buffered = Self.datagramOverhead
            buffered += Self.datagramOverhead
            arrival.append((key, nextSerial))
        }
        d.last = timestamp
        d.fragments += 1
        d.wireBytes += wireLength
        if d.fragments > configuration.maximumFragmentsPerDatagram || available < fragmentLength
            || p.fragmentOffset + fragmentLength > 65_535
        {
            // Too many pieces, a fragment cut by the snapshot length, or one past the largest datagram: the datagram
            // cannot be rebuilt. Its pieces go; it stays (its fragments counted as dropped when it times out).
            buffered -= d.buffered - Self.datagramOverhead
            d.buffered = Self.datagramOverhead
            d.pieces.removeAll()
            d.totalLength = -1
        }
        if d.totalLength != -1 {
            let piece = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<(payloadStart + fragmentLength)]))
            insert(piece, at: p.fragmentOffset, into: &d, p: p, timestamp: timestamp)
            if !p.moreFragments { d.totalLength = p.fragmentOffset + fragmentLength }
        }
        if let total = d.totalLength, total >= 0, isComplete(d, total) {
            datagrams[key] = nil
            buffered -= d.buffered
            reassembled += 1
            return ReassembledDatagram(packet: build(d, total: total, p: p), fragments: d.fragments, wireBytes: d.wireBytes)
        }
        datagrams[key] = d
        if buffered > configuration.maximumBuffered { dropOldest() }
        return nil
    }

    private func insert(_ piece: [UInt8], at offset: Int, into d: inout Datagram, p: DecodedPacket, timestamp: Timestamp) {
        // Keep the first copy of every byte: store only what no earlier fragment covered; compare the rest.
        var cursor = offset
        let end = offset + piece.count
        var stored: [(Int, [UInt8])] = []
        for existing in d.pieces.sorted(by: { $0.offset < $1.offset }) {
            let eEnd = existing.offset + existing.bytes.count
            if eEnd <= cursor || existing.offset >= end { continue }
            if existing.offset > cursor {
                stored.append((cursor, Array(piece[(cursor - offset)..<(existing.offset - offset)])))
            }
            let overlapStart = max(cursor, existing.offset)
            let overlapEnd = min(end, eEnd)
            if piece[(overlapStart - offset)..<(overlapEnd - offset)]
                != existing.bytes[(overlapStart - existing.offset)..<(overlapEnd - existing.offset)]
            {
                conflictCount += 1
                conflicts.append(FragmentConflict(
                    source: p.source, destination: p.destination, ipProtocol: p.ipProtocol, identification: p.fragmentID,
                    offset: overlapStart, length: overlapEnd - overlapStart, timestamp: timestamp))
            }
            cursor = max(cursor, overlapEnd)
        }
        if cursor < end { stored.append((cursor, Array(piece[(cursor - offset)...]))) }
        for (o, bytes) in stored where !bytes.isEmpty {
            d.pieces.append((o, bytes))
            d.buffered += bytes.count + Self.pieceOverhead
            buffered += bytes.count + Self.pieceOverhead
        }
    }

    private func isComplete(_ d: Datagram, _ total: Int) -> Bool {
        var covered = 0
        for piece in d.pieces.sorted(by: { $0.offset < $1.offset }) {
            // Pieces past the end (sent beyond the last fragment) do not hold the datagram back: it is complete
            // once [0, total) is covered, whatever the order the fragments came in (found by the fragment model
            // fuzz target: a piece beyond the end that arrived first kept the datagram incomplete).
            if covered >= total { return true }
            if piece.offset > covered { return false }
            covered = max(covered, piece.offset + piece.bytes.count)
        }
        return covered >= total
    }

    /// A minimal raw IP packet: 20-byte IPv4 or 40-byte IPv6 header, then the reassembled payload.
    private func build(_ d: Datagram, total: Int, p: DecodedPacket) -> [UInt8] {
        var payload = [UInt8](repeating: 0, count: total)
        for piece in d.pieces {
            let n = min(piece.bytes.count, total - piece.offset)
            if n > 0 { payload.replaceSubrange(piece.offset..<(piece.offset + n), with: piece.bytes[0..<n]) }
        }
        var header: [UInt8]
        if p.network == .ipv6 {
            header = [0x60, 0, 0, 0, UInt8(total >> 8 & 0xFF), UInt8(total & 0xFF), p.ipProtocol, p.ttl]
            header += p.source.bytes + p.destination.bytes
        } else {
            let length = 20 + total
            header = [0x45, 0, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0, 0, 0, 0, p.ttl, p.ipProtocol, 0, 0]
            header += p.source.bytes + p.destination.bytes
        }
        return header + payload
    }

    private func drop(_ key: Key) {
        guard let d = datagrams.removeValue(forKey: key) else { return }
        buffered -= d.buffered
        droppedFragments += UInt64(d.fragments)
        droppedBytes += UInt64(d.wireBytes)
    }

    private func dropOldest() {
        while buffered > configuration.maximumBuffered && arrivalHead < arrival.count {
            let (key, serial) = arrival[arrivalHead]
            arrivalHead += 1
            if datagrams[key]?.serial == serial {
                budgetDrops += 1
                drop(key)
            }
        }
        compactArrival()
    }

    /// Forgets arrival entries already passed or whose datagram is gone, once they are most of the list.
    private func compactArrival() {
        if arrivalHead > 1024 && arrivalHead * 2 > arrival.count {
            arrival.removeFirst(arrivalHead)
            arrivalHead = 0
        }
        if arrival.count > 4 * max(1024, datagrams.count) {
            arrival = arrival[arrivalHead...].filter { datagrams[$0.key]?.serial == $0.serial }
            arrivalHead = 0
        }
    }

    /// Drops datagrams whose last fragment is older than the timeout.
    public func expire(now: Timestamp) {
        let limit = configuration.timeout.nanoseconds
        for (key, d) in datagrams where now.nanoseconds(since: d.last) > limit { drop(key) }
        compactArrival()
        nextExpiry = now.adding(nanoseconds: 1_000_000_000)
    }

    /// Drops everything still incomplete (end of the capture).
    public func finish() {
        for key in Array(datagrams.keys) { drop(key) }
    }
}
