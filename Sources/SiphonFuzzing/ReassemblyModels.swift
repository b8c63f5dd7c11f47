import SiphonCore
import SiphonDecode
import SiphonFlows

/// TCP reassembly against a byte-array model.
///
/// Input: a configuration byte (overlap policy in bits 0-2, small buffer budgets in bit 3, the responder's window in
/// bit 4, a small retained window in bit 5), the initial sequence number (4 bytes, so streams wrap), then segments of
/// 6 bytes: stream offset (2 bytes), length/4 (1 byte, +1), copy variant (1 byte), flags (bit 0 FIN, bit 7 the
/// responder's direction), 1 spare. Each segment's byte at stream offset `o` is `content(o, variant)`, so copies
/// of the same range differ when their variants do.
///
/// Checked, per direction: what reaches the consumer is one contiguous sequence of data and gaps from offset 0 (no
/// byte twice, none skipped); every delivered byte is a copy some segment carried, and under the `first` policy the
/// first copy that arrived; the figures equal what the consumer saw; and with the default budgets, every byte some
/// segment carried is delivered and only the bytes none carried are gaps, up to the highest end (or the FIN).
enum TCPModelHarness {

    @inline(__always)
    static func content(_ offset: Int, _ variant: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: offset &* 7 &+ Int(variant) &* 13)
    }

    final class Model: StreamConsumer {
        /// Stream offsets modelled: up to the highest end any segment reaches.
        let span: Int
        /// Per direction and stream offset: the variant that first covered it + 1 (0: none yet).
        var first: [[UInt16]]
        /// Every variant seen at an offset (for the policies other than `first`, which may keep a later copy).
        var copies: [[Set<UInt8>]] = [[], []]
        var next: [UInt64] = [0, 0]
        var delivered: [UInt64] = [0, 0]
        var gapBytes: [UInt64] = [0, 0]
        var deliveredAt: [[Bool]]
        var policyIsFirst = true
        var finding: FuzzFinding?

        init(span: Int) {
            self.span = span
            first = [[UInt16]](repeating: [UInt16](repeating: 0, count: span), count: 2)
            deliveredAt = [[Bool]](repeating: [Bool](repeating: false, count: span), count: 2)
        }

        func fail(_ s: String) { if finding == nil { finding = FuzzFinding(s) } }

        func streamData(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, offset: UInt64, frame: FrameRef) {
            guard offset == next[direction] else {
                return fail("direction \(direction): data at \(offset), expected \(next[direction])")
            }
            for i in 0..<bytes.count {
                let o = Int(offset) + i
                guard o < self.span else { return fail("direction \(direction): byte delivered at \(o), beyond every segment") }
                let f = first[direction][o]
                guard f != 0 else { return fail("direction \(direction): byte at \(o) delivered but no segment carried it") }
                if policyIsFirst {
                    if bytes[i] != content(o, UInt8(f - 1)) {
                        return fail("direction \(direction): byte at \(o) is \(bytes[i]), the first copy had \(content(o, UInt8(f - 1)))")
                    }
                } else if !copies[direction].isEmpty,
                    !copies[direction][o].contains(where: { content(o, $0) == bytes[i] })
                {
                    return fail("direction \(direction): byte at \(o) is \(bytes[i]), which no copy carried")
                }
                deliveredAt[direction][o] = true
            }
            next[direction] += UInt64(bytes.count)
            delivered[direction] += UInt64(bytes.count)
        }

        func streamGap(length: UInt64, slot: Int32, direction: Int, offset: UInt64) {
            guard offset == next[direction] else {
                return fail("direction \(direction): gap at \(offset), expected \(next[direction])")
            }
            next[direction] += length
            gapBytes[direction] += length
        }

        func streamConflict(_ conflict: OverlapConflict) {}
        func datagram(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, timestamp: Timestamp, frame: FrameRef) {}
    }

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) {
        var input = FuzzInput(data)
        let config = input.byte()
        let isn = [input.u32(), input.u32()]
        var configuration = ReassemblyConfiguration()
        let policies = OverlapPolicy.allCases
        configuration.policy = Int(config & 7) < policies.count ? policies[Int(config & 7)] : .first
        let strict = config & 0x08 == 0
        if !strict {
            configuration.maximumBufferedPerDirection = 512
            configuration.maximumBufferedTotal = 768
        }
        configuration.retainResponder = config & 0x10 != 0
        if config & 0x20 != 0 { configuration.retainedPerDirection = 64; configuration.retainedTotal = 96 }
        // The highest end a segment reaches, from a first pass over the records.
        var span = 1
        var scan = input
        while scan.remaining >= 6 {
            let offset = Int(scan.u16()), length = Int(scan.byte()) * 4 + 1
            scan.position += 3
            span = max(span, offset + length)
        }
        let model = Model(span: span)
        model.policyIsFirst = configuration.policy == .first
        if !model.policyIsFirst {
            model.copies = [[Set<UInt8>]](repeating: [Set<UInt8>](repeating: [], count: span), count: 2)
        }
        let reassembler = TCPReassembler(configuration: configuration, consumer: model)
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        for d in 0..<2 {
            reassembler.segment(slot: 0, flowID: 1, direction: d, sequence: isn[d], flags: 0x02, payload: empty, timestamp: .zero)
        }
        var fin: [Int?] = [nil, nil]
        var coveredEnd = [0, 0]
        var payload = [UInt8](repeating: 0, count: 1_024)
        var n: UInt64 = 0
        while input.remaining >= 6 {
            let offset = Int(input.u16())
            let length = Int(input.byte()) * 4 + 1
            let variant = input.byte()
            let flags = input.byte()
            _ = input.byte()
            let d = Int(flags >> 7)
            for i in 0..<length {
                let o = offset + i
                payload[i] = content(o, variant)
                if model.first[d][o] == 0 { model.first[d][o] = UInt16(variant) + 1 }
                if !model.policyIsFirst { model.copies[d][o].insert(variant) }
            }
            coveredEnd[d] = max(coveredEnd[d], offset + length)
            let fl: UInt16 = 0x10 | (flags & 1 != 0 ? 0x01 : 0)
            if flags & 1 != 0, fin[d] == nil { fin[d] = offset + length }
            n += 1
            // Acknowledge everything sent so far the other way, so that gated policies release data.
            let ack = isn[1 - d] &+ 1 &+ UInt32(coveredEnd[1 - d])
            payload.withUnsafeBytes { p in
                reassembler.segment(
                    slot: 0, flowID: 1, direction: d, sequence: isn[d] &+ 1 &+ UInt32(offset), flags: fl, acknowledgment: ack,
                    payload: UnsafeRawBufferPointer(rebasing: p[0..<length]), timestamp: Timestamp(nanoseconds: Int64(n)))
            }
            if let f = model.finding { throw f }
        }
        let figures = reassembler.finish(slot: 0, flowID: 1)
        if let f = model.finding { throw f }
        for d in 0..<2 {
            let fig = d == 0 ? figures.0 : figures.1
            guard fig.delivered == model.delivered[d], fig.gapBytes == model.gapBytes[d] else {
                throw FuzzFinding("direction \(d): figures say \(fig.delivered) delivered and \(fig.gapBytes) gap bytes, the consumer saw \(model.delivered[d]) and \(model.gapBytes[d])")
            }
            guard strict else { continue }
            let end = max(coveredEnd[d], fin[d] ?? 0)
            guard model.next[d] == UInt64(end) else {
                throw FuzzFinding("direction \(d): the stream ended at \(model.next[d]), segments and FIN reach \(end)")
            }
            for o in 0..<coveredEnd[d] where (model.first[d][o] != 0) != model.deliveredAt[d][o] {
                throw FuzzFinding("direction \(d): byte at \(o) \(model.first[d][o] != 0 ? "carried but not delivered" : "delivered but never carried")")
            }
        }
    }
}

/// IPv4 fragment reassembly against a byte-array model.
///
/// Input: fragments of 4 bytes: offset/8 (1 byte, so up to 2,040), length/8 (1 byte; 0 is an empty fragment),
/// flags (bit 0 more fragments, bit 1 another datagram identification), copy variant. Each fragment is a real IPv4
/// packet decoded by `PacketDecoder`. Checked: a datagram comes out exactly when the fragments of its current round
/// cover [0, total) with the last fragment seen (total from the latest fragment without "more fragments"), and its
/// bytes are the first copy of each.
enum FragmentModelHarness {
    struct Round {
        var first = [UInt16](repeating: 0, count: 4_096)
        var total: Int?
        var fragments = 0
    }

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) {
        var input = FuzzInput(data)
        let reassembler = FragmentReassembler()
        var rounds = [Round(), Round()]
        var packet = DecodedPacket()
        var n: Int64 = 0
        while input.remaining >= 4 {
            let offset = Int(input.byte()) * 8
            let length = Int(input.byte()) * 8
            let flags = input.byte()
            let variant = input.byte()
            let more = flags & 1 != 0
            let id = Int(flags >> 1 & 1)
            let total = 20 + length
            var frame: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, UInt8(0x34 + id),
                                  UInt8((more ? 0x20 : 0) | (offset / 8) >> 8), UInt8((offset / 8) & 0xFF), 64, 17, 0, 0,
                                  192, 0, 2, 1, 198, 51, 100, 1]
            for i in 0..<length { frame.append(TCPModelHarness.content(offset + i, variant)) }
            frame.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ipv4, into: &packet) }
            guard packet.isFragment, packet.error == nil else { continue }
            n += 1
            for i in 0..<length where rounds[id].first[offset + i] == 0 { rounds[id].first[offset + i] = UInt16(variant) + 1 }
            if !more { rounds[id].total = offset + length }
            rounds[id].fragments += 1
            let expected: Bool = {
                // More fragments than a datagram may have: given up until it times out.
                guard rounds[id].fragments <= FragmentConfiguration().maximumFragmentsPerDatagram else { return false }
                guard let t = rounds[id].total else { return false }
                return (0..<t).allSatisfy { rounds[id].first[$0] != 0 }
            }()
            let datagram = frame.withUnsafeBytes {
                reassembler.add(packet, bytes: $0, wireLength: frame.count, timestamp: Timestamp(nanoseconds: n))
            }
            switch (datagram, expected) {
            case (nil, false): continue
            case (nil, true):
                throw FuzzFinding("datagram \(id): fragments cover [0, \(rounds[id].total!)) but nothing came out")
            case (.some, false):
                throw FuzzFinding("datagram \(id): a datagram came out of fragments that do not cover it")
            case (.some(let d), true):
                let t = rounds[id].total!
                guard d.packet.count == 20 + t else { throw FuzzFinding("datagram \(id): \(d.packet.count - 20) bytes, expected \(t)") }
                for o in 0..<t where d.packet[20 + o] != TCPModelHarness.content(o, UInt8(rounds[id].first[o] - 1)) {
                    throw FuzzFinding("datagram \(id): byte \(o) is not the first copy")
                }
                guard d.fragments == rounds[id].fragments else {
                    throw FuzzFinding("datagram \(id): \(d.fragments) fragments counted, \(rounds[id].fragments) sent")
                }
                rounds[id] = Round()
            }
        }
    }
}
