import Foundation
import Siphon
import Testing

/// Builds decoded packets directly, so flow-table behaviour is tested apart from capture and decoding.
func tcpPacket(_ src: String, _ sport: UInt16, _ dst: String, _ dport: UInt16, _ flags: TCPFlags, seq: UInt32 = 1, payload: Int = 0) -> DecodedPacket {
    var p = DecodedPacket()
    p.network = src.contains(":") ? .ipv6 : .ipv4
    p.source = IPAddress(src)!
    p.destination = IPAddress(dst)!
    p.ipProtocol = 6
    p.transport = .tcp
    p.sourcePort = sport
    p.destinationPort = dport
    p.tcp.flags = flags
    p.tcp.sequence = seq
    p.tcp.window = 1000
    p.payloadLength = payload
    return p
}

func udpPacket(_ src: String, _ sport: UInt16, _ dst: String, _ dport: UInt16, payload: Int = 10) -> DecodedPacket {
    var p = tcpPacket(src, sport, dst, dport, [])
    p.ipProtocol = 17
    p.transport = .udp
    p.payloadLength = payload
    return p
}

func at(_ seconds: Double) -> Timestamp { Timestamp(nanoseconds: Int64(seconds * 1e9)) }

@Suite struct FlowTableTests {
    /// The index's hash starts from a random seed per table: 5-tuples crafted to share a bucket under one seed
    /// (found here by brute force, as a capture's author who knew the seed would) spread under another, and the
    /// table still tells every one of them apart under the seed they were crafted for.
    @Test func craftedBucketCollisionsSpreadUnderAnotherSeed() {
        let known: UInt64 = 0x5EED, buckets: UInt64 = 4096  // a fresh table's index
        var crafted: [(src: String, port: UInt16)] = []
        var n: UInt32 = 0
        while crafted.count < 64 {
            n += 1
            let src = "10.\(n >> 16 & 0xFF).\(n >> 8 & 0xFF).\(n & 0xFF)", port = UInt16(truncatingIfNeeded: 1024 + n % 50_000)
            let (key, _) = FlowKey.of(tcpPacket(src, port, "198.51.100.7", 443, [.syn]))!
            if key.fastHash(seed: known) >> 32 & (buckets - 1) == 0 { crafted.append((src, port)) }
        }
        let seeds = (FlowTableConfiguration().hashSeed, FlowTableConfiguration().hashSeed)
        #expect(seeds.0 != seeds.1, "two tables drew the same seed")
        let spread = Set(crafted.map { c in
            FlowKey.of(tcpPacket(c.src, c.port, "198.51.100.7", 443, [.syn]))!.key.fastHash(seed: seeds.0) >> 32 & (buckets - 1)
        })
        // 64 keys in 4,096 buckets: about 63.5 distinct on average; under 40 has a probability below 10^-20.
        #expect(spread.count >= 40, "\(spread.count) buckets")
        var config = FlowTableConfiguration()
        config.hashSeed = known
        let t = FlowTable(configuration: config)
        for (i, c) in (crafted + crafted).enumerated() {
            t.process(tcpPacket(c.src, c.port, "198.51.100.7", 443, i < 64 ? [.syn] : [.ack]), timestamp: at(Double(i) * 0.001), wireLength: 60)
        }
        #expect(t.activeCount == 64)
        t.finish()
        #expect(t.ended.count == 64 && t.ended.allSatisfy { $0.client.packets == 2 && $0.server.packets == 0 })
    }

    @Test func handshakeDataCloseGivesZeekHistory() {
        let t = FlowTable()
        let c = "192.0.2.1", s = "198.51.100.7"
        t.process(tcpPacket(c, 40000, s, 443, [.syn], seq: 100), timestamp: at(0), wireLength: 74)
        t.process(tcpPacket(s, 443, c, 40000, [.syn, .ack], seq: 500), timestamp: at(0.01), wireLength: 74)
        t.process(tcpPacket(c, 40000, s, 443, [.ack], seq: 101), timestamp: at(0.02), wireLength: 66)
        t.process(tcpPacket(c, 40000, s, 443, [.ack, .psh], seq: 101, payload: 100), timestamp: at(0.03), wireLength: 166)
        t.process(tcpPacket(c, 40000, s, 443, [.ack, .psh], seq: 101, payload: 100), timestamp: at(0.04), wireLength: 166)  // retransmission
        t.process(tcpPacket(s, 443, c, 40000, [.ack, .psh], seq: 501, payload: 50), timestamp: at(0.05), wireLength: 116)
        t.process(tcpPacket(c, 40000, s, 443, [.fin, .ack], seq: 201), timestamp: at(0.06), wireLength: 66)
        t.process(tcpPacket(s, 443, c, 40000, [.fin, .ack], seq: 551), timestamp: at(0.07), wireLength: 66)
        t.process(tcpPacket(c, 40000, s, 443, [.ack], seq: 202), timestamp: at(0.08), wireLength: 66)
        #expect(t.ended.isEmpty && t.activeCount == 1)
        t.finish()
        let f = t.ended[0]
        #expect(f.state == .closed)
        #expect(f.history.description == "ShADTdFf")
        #expect(f.clientAddress == IPAddress(c) && f.clientPort == 40000 && f.serverPort == 443)
        #expect(f.client.packets == 6 && f.server.packets == 3)
        #expect(f.client.bytes == 74 + 66 + 166 + 166 + 66 + 66 && f.server.bytes == 74 + 116 + 66)
        #expect(f.client.payloadBytes == 200 && f.server.payloadBytes == 50)
    }

    @Test func synAckFirstFlipsTheInitiator() {
        let t = FlowTable()
        t.process(tcpPacket("198.51.100.7", 443, "192.0.2.1", 40000, [.syn, .ack]), timestamp: at(0), wireLength: 60)
        t.finish()
        #expect(t.ended[0].clientAddress == IPAddress("192.0.2.1") && t.ended[0].history.description == "^h")
        #expect(t.ended[0].state == .openAtEnd)
    }

    @Test func midStreamServerFirstIsFlipped() {
        let t = FlowTable()
        t.process(udpPacket("198.51.100.53", 53, "192.0.2.1", 51000), timestamp: at(0), wireLength: 80)
        t.finish()
        #expect(t.ended[0].clientPort == 51000 && t.ended[0].serverPort == 53)
    }

    @Test func idleTimeoutSplitsFlowsByCaptureTime() {
        var config = FlowTableConfiguration()
        config.udpTimeout = .seconds(60)
        let t = FlowTable(configuration: config)
        t.process(udpPacket("192.0.2.1", 5000, "198.51.100.1", 53), timestamp: at(0), wireLength: 60)
        t.process(udpPacket("192.0.2.1", 5000, "198.51.100.1", 53), timestamp: at(59), wireLength: 60)  // within
        #expect(t.ended.isEmpty)
        // Another flow's packet 61 s after the last one moves capture time on: the first flow times out.
        t.process(udpPacket("192.0.2.9", 5000, "198.51.100.1", 53), timestamp: at(120.5), wireLength: 60)
        #expect(t.ended.count == 1 && t.ended[0].state == .timeout && t.ended[0].client.packets == 2)
        t.process(udpPacket("192.0.2.1", 5000, "198.51.100.1", 53), timestamp: at(121), wireLength: 60)
        t.finish()
        #expect(t.createdCount == 3)
    }

    @Test func portReuseAfterCloseStartsANewFlow() {
        let t = FlowTable()
        let c = "192.0.2.1", s = "198.51.100.7"
        t.process(tcpPacket(c, 40000, s, 80, [.syn]), timestamp: at(0), wireLength: 60)
        t.process(tcpPacket(s, 80, c, 40000, [.rst, .ack]), timestamp: at(0.1), wireLength: 60)
        t.process(tcpPacket(c, 40000, s, 80, [.syn], seq: 9000), timestamp: at(1), wireLength: 60)
        #expect(t.ended.count == 1 && t.ended[0].state == .reset && t.ended[0].history.description == "Sr")
        t.finish()
        #expect(t.createdCount == 2 && t.ended[1].history.description == "S")
    }

    @Test func closedFlowsLingerThenEnd() {
        let t = FlowTable()
        t.process(tcpPacket("192.0.2.1", 1, "198.51.100.1", 2, [.syn]), timestamp: at(0), wireLength: 60)
        t.process(tcpPacket("198.51.100.1", 2, "192.0.2.1", 1, [.rst, .ack]), timestamp: at(0.1), wireLength: 60)
        t.process(udpPacket("192.0.2.5", 9, "198.51.100.5", 9), timestamp: at(7), wireLength: 60)
        #expect(t.ended.count == 1 && t.ended[0].state == .reset)
    }

    @Test func flowLimitEvictsTheLongestIdle() {
        var config = FlowTableConfiguration()
        config.maximumFlows = 10
        let t = FlowTable(configuration: config)
        for i in 0..<25 {
            t.process(udpPacket("192.0.2.1", UInt16(1000 + i), "198.51.100.1", 53), timestamp: at(Double(i) * 0.001), wireLength: 60)
        }
        #expect(t.activeCount == 10 && t.evictions == 15)
        #expect(t.ended.map(\.clientPort) == (1000..<1015).map { UInt16($0) } && t.ended.allSatisfy(\.evicted))
    }

    /// Random traffic over a small key space with random idle gaps, against a straightforward model: per key, a
    /// new flow starts after an idle gap longer than the timeout. Every packet ends up in exactly one ended flow,
    /// with the counts the model predicts (this exercises index insertion, growth and backward-shift deletion).
    @Test(arguments: [1, 2, 3, 4])
    func matchesAModelUnderChurn(_ seed: UInt64) {
        var rng = SplitMix(seed: seed)
        var config = FlowTableConfiguration()
        config.udpTimeout = .seconds(10)
        let t = FlowTable(configuration: config)
        var now = 0.0
        var last: [UInt16: Double] = [:]
        var model: [UInt16: [Int]] = [:]  // per port: packets of each successive flow
        var collected: [Flow] = []
        for _ in 0..<20_000 {
            now += Double(rng.next() % 1000) / 1000
            let port = UInt16(rng.next() % 3000)
            if let l = last[port], now - l <= 10 { model[port]![model[port]!.count - 1] += 1 } else { model[port, default: []].append(1) }
            last[port] = now
            t.process(udpPacket("192.0.2.1", 40000, "198.51.100.1", port), timestamp: at(now), wireLength: 60)
            collected += t.ended
            t.releaseEnded()
        }
        t.finish()
        collected += t.ended
        var actual: [UInt16: [Int]] = [:]
        for f in collected.sorted(by: { $0.start < $1.start }) { actual[f.serverPort, default: []].append(Int(f.client.packets)) }
        let wrong = model.keys.sorted().filter { actual[$0] != model[$0] }
        #expect(wrong.isEmpty, "first differing port \(wrong.first.map { "\($0): siphon \(actual[$0] ?? []), model \(model[$0]!)" } ?? "")")
        #expect(actual.count == model.count)
        #expect(t.activeCount == 0)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// What packets their receiver drops (bad checksums) or may never get (TTL outliers) leave in the flow table.
@Suite struct PathFactsTests {
    func ttl(_ p: DecodedPacket, _ value: UInt8) -> DecodedPacket {
        var p = p
        p.ttl = value
        return p
    }

    /// A SYN under a bad checksum neither splits a closed flow (port reuse) nor picks the initiator: the receiver
    /// never saw it.
    @Test func badChecksumFlagsChangeNothing() {
        let t = FlowTable()
        let c = "192.0.2.1", s = "198.51.100.1"
        t.process(tcpPacket(c, 40000, s, 443, [.syn]), timestamp: at(0), wireLength: 60)
        t.process(tcpPacket(s, 443, c, 40000, [.syn, .ack]), timestamp: at(0.01), wireLength: 60)
        t.process(tcpPacket(c, 40000, s, 443, [.fin, .ack]), timestamp: at(0.02), wireLength: 60)
        t.process(tcpPacket(s, 443, c, 40000, [.fin, .ack]), timestamp: at(0.03), wireLength: 60)
        t.process(tcpPacket(c, 40000, s, 443, [.syn], seq: 9000), timestamp: at(0.04), wireLength: 60, checksum: .bad)
        #expect(t.ended.isEmpty && t.createdCount == 1)
        #expect(t.flow(at: 0).history.description == "ShFfC")
        #expect(t.flow(at: 0).clientPath.badChecksumsWithEffect == 1)
        // A first packet that is a bad SYN-ACK from the server: the ports decide (443 serves), not its flags.
        let u = FlowTable()
        u.process(tcpPacket(c, 40001, s, 443, [.syn, .ack]), timestamp: at(0), wireLength: 60, checksum: .bad)
        #expect(u.flow(at: 0).clientAddress == IPAddress(c) && u.flow(at: 0).serverPort == 443)
    }

    /// A reset injected before the server's first packet after the handshake does not set the TTL reference: the
    /// server's data (TTL 56) does, and the reset (TTL 120) is then an outlier the server talked past.
    @Test func earlyForgedResetIsJudgedOnceTheReferenceIsKnown() {
        let t = FlowTable()
        let c = "192.0.2.1", s = "198.51.100.1"
        t.process(ttl(tcpPacket(c, 40000, s, 80, [.syn]), 64), timestamp: at(0), wireLength: 60)
        t.process(ttl(tcpPacket(s, 80, c, 40000, [.syn, .ack]), 56), timestamp: at(0.01), wireLength: 60)
        t.process(ttl(tcpPacket(c, 40000, s, 80, [.ack, .psh], seq: 2, payload: 100), 64), timestamp: at(0.02), wireLength: 160)
        t.process(ttl(tcpPacket(s, 80, c, 40000, [.rst]), 120), timestamp: at(0.03), wireLength: 60)
        t.process(ttl(tcpPacket(s, 80, c, 40000, [.ack, .psh], seq: 2, payload: 500), 56), timestamp: at(0.04), wireLength: 560)
        let down = t.flow(at: 0).serverPath
        #expect(down.ttl == 56 && down.ttlOutliers == 1 && down.ttlOutlierResets == 1 && down.injectedResets == 1)
        #expect(down.outlierTTL == 120)
        #expect(t.flow(at: 0).clientPath.ttlOutliers == 0)
    }

    /// Exchanges (the in-flow heartbeat's): a flow's first TCP payload begins one, payload within 1 s of the last
    /// (either way) extends it, payload after 1 s or more of none begins the next. Pure ACKs, packets with a bad
    /// checksum and timestamps that go backwards begin nothing and move no clock; with no silence set, nothing.
    @Test func exchangesBeginAfterSilence() {
        var config = FlowTableConfiguration()
        config.exchangeSilence = .seconds(1)
        let t = FlowTable(configuration: config), off = FlowTable()
        let c = "192.0.2.1", s = "198.51.100.1"
        // (sender is the client, payload, time, checksum, begins an exchange)
        let steps: [(Bool, Int, Double, ChecksumStatus, Bool)] = [
            (true, 0, 0.0, .unchecked, false),     // SYN
            (false, 0, 0.01, .unchecked, false),   // SYN-ACK
            (true, 100, 0.02, .unchecked, true),   // first payload
            (false, 40, 0.5, .unchecked, false),   // the answer, 0.48 s later: the same exchange
            (true, 0, 2.0, .unchecked, false),     // a pure ACK 1.5 s later: no payload, no exchange
            (true, 90, 1.6, .unchecked, true),     // 1.1 s after the last payload (backwards from the ACK's time)
            (true, 90, 1.2, .unchecked, false),    // backwards: extends, does not move the clock back
            (false, 30, 2.55, .valid, false),      // 0.95 s after 1.6
            (true, 500, 4.0, .bad, false),         // a bad checksum: dropped by its receiver, begins nothing
            (true, 20, 3.56, .unchecked, true),    // 1.01 s after 2.55 (the bad packet's 4.0 did not count)
            (false, 20, 4.5, .unchecked, false),   // 0.94 s after 3.56
            (true, 20, 5.5, .unchecked, true),     // exactly 1 s: a new exchange
        ]
        var began: [Bool] = []
        for (fromClient, payload, time, checksum, _) in steps {
            let flags: TCPFlags = payload > 0 ? [.ack, .psh] : time == 0 ? [.syn] : time < 0.02 ? [.syn, .ack] : [.ack]
            let p = fromClient ? tcpPacket(c, 40000, s, 443, flags, payload: payload) : tcpPacket(s, 443, c, 40000, flags, payload: payload)
            t.process(p, timestamp: at(time), wireLength: 60 + payload, checksum: checksum)
            began.append(t.beganExchange)
            off.process(p, timestamp: at(time), wireLength: 60 + payload, checksum: checksum)
            #expect(!off.beganExchange)
        }
        #expect(began == steps.map(\.4))
        #expect(t.flow(at: 0).lastPayload == at(5.5).nanoseconds)
        #expect(off.flow(at: 0).lastPayload == Int64.min)
        // UDP the same way; ICMP has no exchanges.
        let u = FlowTable(configuration: config)
        u.process(udpPacket(c, 5000, s, 4444, payload: 10), timestamp: at(0), wireLength: 60)
        #expect(u.beganExchange)
        u.process(udpPacket(s, 4444, c, 5000, payload: 10), timestamp: at(0.2), wireLength: 60)
        #expect(!u.beganExchange)
        var icmp = udpPacket(c, 0, s, 0, payload: 56)
        icmp.ipProtocol = 1
        icmp.transport = .icmp
        u.process(icmp, timestamp: at(3), wireLength: 98)
        #expect(!u.beganExchange)
    }
}
