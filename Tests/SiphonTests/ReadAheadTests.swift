import Foundation
import Siphon
import Testing

/// The reader thread hands over the same packets, offsets, counters and errors as reading in the calling thread.
@Suite struct ReadAheadTests {
    struct Seen: Equatable {
        var bytes: [UInt8]
        var seconds: Int64, nanoseconds: Int64
        var originalLength: Int
        var linkType: UInt32
        var interfaceID: Int
        var offset: Int64
    }

    struct Read: Equatable, CustomStringConvertible {
        var packets: [Seen] = []
        var error: CaptureError?
        var offset: Int64 = 0
        var recordsRead = 0
        var filteredOut = 0
        var interfaceDrops: UInt64?
        var description: String {
            "\(packets.count) packets, \(packets.map(\.bytes.count).reduce(0, +)) bytes, error \(error.map(String.init(describing:)) ?? "none"), "
                + "offset \(offset), records \(recordsRead), filtered \(filteredOut), drops \(interfaceDrops.map(String.init) ?? "none")"
        }
        /// Where two reads part: the first packet that differs, or the summary.
        func difference(from other: Read) -> String? {
            if let i = zip(packets, other.packets).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset { return "packet \(i) differs" }
            return self == other ? nil : "\(self) against \(other)"
        }
    }

    static func read(_ path: String, filter: String? = nil, _ options: ReadAheadOptions?) throws -> Read {
        let reader = try CaptureReader(path: path, filter: filter, readAhead: options)
        if options != nil { #expect(reader.readsAhead, "a reader thread was started") }
        var r = Read()
        (r.packets, r.error) = drain(reader)
        r.offset = reader.offset
        r.recordsRead = reader.recordsRead
        r.filteredOut = reader.filteredOut
        r.interfaceDrops = reader.interfaceDrops
        return r
    }

    /// Every packet the reader hands out (with the offset after it), and the error that ended it, if any.
    static func drain(_ reader: CaptureReader) -> ([Seen], CaptureError?) {
        var packets: [Seen] = []
        do {
            while let p = try reader.next() {
                packets.append(Seen(
                    bytes: Array(p.bytes), seconds: p.timestamp.nanoseconds / 1_000_000_000,
                    nanoseconds: p.timestamp.nanoseconds % 1_000_000_000, originalLength: p.originalLength,
                    linkType: p.linkType.rawValue, interfaceID: p.interfaceID, offset: reader.offset))
            }
        } catch {
            return (packets, error)
        }
        return (packets, nil)
    }

    /// 4 KiB blocks, two of them: most packets cross a hand-over, and the 16,388-byte loopback frames of
    /// null-gopacket-loopback.pcap do not fit a block at all.
    static let tiny = ReadAheadOptions(blockSize: 4096, blocks: 2, evenOnOneProcessor: true)
    static let standard = ReadAheadOptions(evenOnOneProcessor: true)

    @Test func samePacketsAsTheCallingThread() throws {
        let files = [
            "captures/diff", "captures/app", "captures/reassembly", "captures/scenarios", "captures/zeek", "captures/arkime",
            "captures/checksums", "captures/tcpflow", "captures/sample",
        ].flatMap {
            Repo.files(in: $0, extensions: ["pcap", "pcapng"])
        }
        #expect(files.count >= 100)
        var packets = 0, large = 0
        for file in files {
            let expected = try Self.read(file, nil)
            packets += expected.packets.count
            large += expected.packets.filter { $0.bytes.count > 4096 }.count
            for options in [Self.tiny, Self.standard] {
                let got = try Self.read(file, options)
                let difference = got.difference(from: expected)
                #expect(difference == nil, "\(file) with \(options.blockSize)-byte blocks")
            }
        }
        #expect(packets > 5000 && large > 0, "\(packets) packets, \(large) over 4 KiB")
    }

    /// What `inspect` computes in the reader thread arrives with its packet: the annotation, and the side record
    /// (here the packet's length and its first and last 8 bytes). 16 KiB blocks of 60-byte frames hold 256 packets,
    /// so the side records outgrow their first allocation (64) twice.
    @Test func inspectResultsArriveWithTheirPacket() throws {
        let options = ReadAheadOptions(blockSize: 16 << 10, blocks: 2, evenOnOneProcessor: true, sideBytes: 24) { p, side in
            var head: UInt64 = 0, tail: UInt64 = 0
            withUnsafeMutableBytes(of: &head) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: p.bytes.prefix(8))) }
            withUnsafeMutableBytes(of: &tail) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: p.bytes.suffix(8))) }
            side?.storeBytes(of: UInt64(p.bytes.count), as: UInt64.self)
            side?.storeBytes(of: head, toByteOffset: 8, as: UInt64.self)
            side?.storeBytes(of: tail, toByteOffset: 16, as: UInt64.self)
            return UInt64(p.bytes.count) << 32 | UInt64(p.originalLength)
        }
        var checked = 0
        for file in Repo.files(in: "captures/diff", extensions: ["pcap", "pcapng"]) + [Repo.path("captures/sample/backdoor-phone.pcap")] {
            let reader = try CaptureReader(path: file, filter: nil, readAhead: options)
            while let p = try reader.next() {
                #expect(p.annotation == UInt64(p.bytes.count) << 32 | UInt64(p.originalLength))
                let side = try #require(p.side)
                var head: UInt64 = 0, tail: UInt64 = 0
                withUnsafeMutableBytes(of: &head) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: p.bytes.prefix(8))) }
                withUnsafeMutableBytes(of: &tail) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: p.bytes.suffix(8))) }
                #expect(side.load(as: UInt64.self) == UInt64(p.bytes.count))
                #expect(side.load(fromByteOffset: 8, as: UInt64.self) == head && side.load(fromByteOffset: 16, as: UInt64.self) == tail)
                checked += 1
            }
        }
        #expect(checked > 1000)
    }

    /// The BPF filter runs in the reader thread; the counters arrive with the packets.
    @Test func filteredTheSame() throws {
        let file = Repo.path("captures/diff/eth-zeek-wikipedia.pcap")
        let expected = try Self.read(file, filter: "tcp port 80", nil)
        #expect(expected.filteredOut > 0 && !expected.packets.isEmpty)
        #expect(try Self.read(file, filter: "tcp port 80", Self.tiny).difference(from: expected) == nil)
    }

    /// A capture cut inside a record: the packets before it, then the same error at the same offset.
    @Test func damageComesAfterThePacketsBeforeIt() throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/diff/eth-zeek-wikipedia.pcap"))))
        let offsets = CaptureTests.recordOffsets(data)
        let path = temporaryPath("siphon-readahead-cut.pcap")
        try Data(data.prefix(offsets[60] + 16 + 3)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = try Self.read(path, nil)
        #expect(expected.packets.count == 60 && expected.error?.offset == Int64(offsets[60]))
        #expect(try Self.read(path, Self.tiny).difference(from: expected) == nil)
        #expect(try Self.read(path, Self.standard).difference(from: expected) == nil)
    }

    /// A pcapng file cut in its last block: the same packets, error and interface drops (its Interface Statistics
    /// Blocks before the damage said 11) with the reader thread as without it.
    @Test func damagedPcapngKeepsItsDropCounts() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/diff/ng-le-test102.pcapng")))
        let path = temporaryPath("siphon-readahead-cut.pcapng")
        try data.dropLast(6).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = try Self.read(path, nil)
        #expect(expected.error != nil && expected.interfaceDrops != nil)
        #expect(try Self.read(path, Self.tiny).difference(from: expected) == nil)
        #expect(try Self.read(path, Self.standard).difference(from: expected) == nil)
    }

    /// 100,000 empty records (caplen 0, a legal pcap): a block holds records for one packet per 256 bytes and is
    /// handed on when they are used up, so empty packets go through blocks like any other and come out in order.
    @Test func emptyRecordsFillBlocks() throws {
        var file = Data([0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0])
        for i in 0..<100_000 {
            var record = [UInt8](repeating: 0, count: 16)
            record[0] = UInt8(truncatingIfNeeded: i >> 16)
            record[4] = UInt8(truncatingIfNeeded: i)
            record[5] = UInt8(truncatingIfNeeded: i >> 8)
            record[12] = 60  // wire length 60, none captured
            file.append(contentsOf: record)
        }
        let path = temporaryPath("siphon-readahead-empty.pcap")
        try file.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let expected = try Self.read(path, nil)
        #expect(expected.packets.count == 100_000 && expected.error == nil)
        #expect(try Self.read(path, Self.tiny).difference(from: expected) == nil)
    }

    /// A pipe is read in the calling thread (standard input too, by the same test of the path): a capture still
    /// being written must hand over packets as they come, where a block would wait for 1 MiB. Read to its end,
    /// the pipe gives the file's packets.
    @Test func pipesAreNotReadAhead() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let file = Repo.path("captures/diff/eth-zeek-http-get.pcap")
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        #expect(data.count < 60_000)  // fits the pipe's buffer
        #expect(data.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) } == data.count)
        close(fds[1])
        let reader = try CaptureReader(path: "/dev/fd/\(fds[0])", filter: nil, readAhead: Self.standard)
        #expect(!reader.readsAhead)
        var packets: [[UInt8]] = []
        while let p = try reader.next() { packets.append(Array(p.bytes)) }
        #expect(packets == (try Self.read(file, nil)).packets.map(\.bytes))
    }

    /// A reader let go before the end stops its thread (the reader thread waits for a free block: it must be woken).
    @Test func readerLetGoEarlyStopsItsThread() throws {
        for _ in 0..<20 {
            let reader = try CaptureReader(path: Repo.path("captures/diff/eth-zeek-wikipedia.pcap"), filter: nil, readAhead: Self.tiny)
            _ = try reader.next()
        }
    }

    /// A whole scan writes the same events with and without the reader thread. With it, checksums are verified
    /// in the reader thread (`ScanPipeline.precheck`): the captures with bad, offloaded and routed-IPv6 checksums
    /// must give the same verdicts (the stats event counts them; bad ones change flows and alerts).
    @Test(arguments: [
        "captures/sample/backdoor-phone.pcap", "captures/scenarios/evasion-ttl-insertion.pcap",
        "captures/scenarios/evasion-bad-checksum.pcap", "captures/scenarios/leak-imei-offloaded.pcap",
        "captures/checksums/ip4-tcp-bad-chksum.pcap", "captures/checksums/ip6-route0-tcp-bad-chksum.pcap",
        "captures/checksums/ip6-hoa-tcp-bad-chksum.pcap", "captures/checksums/kerberos_tso.pcapng",
        "captures/checksums/mixed-vlan-mpls.pcap",
    ])
    func scanEventsAreTheSame(_ relative: String) throws {
        var options = ScanOptions()
        options.checksums = .on
        let sequential = scanEvents(Repo.path(relative), options: options)
        options.readAhead = true
        let ahead = scanEvents(Repo.path(relative), options: options)
        #expect(sequential.events.count >= 2)
        #expect(ahead.events.map { NSDictionary(dictionary: $0) } == sequential.events.map { NSDictionary(dictionary: $0) })
        let checksums = try #require((sequential.events.last?["stats"] as? [String: Any])?["checksums"] as? [String: Any])
        let judged = ["ipv4", "tcp", "udp"].map { checksums[$0] as! [String: Any] }.map {
            ($0["valid"] as! Int) + ($0["offloaded"] as! Int) + ($0["bad"] as! Int)
        }
        #expect(judged.reduce(0, +) > 0)
    }

    /// The reader thread's verdicts are those the pipeline computes itself, packet by packet.
    @Test func precheckAgreesWithThePipeline() throws {
        var judged = 0, bad = 0
        for file in Repo.files(in: "captures/checksums", extensions: ["pcap", "pcapng"])
            + Repo.files(in: "captures/diff", extensions: ["pcap", "pcapng"]) {
            let reader = try CaptureReader(path: file)
            while let p = try reader.next() {
                let a = ScanPipeline.precheck(p, flowHashSeed: 7)
                // Without checksums: the same decoding and hash, no verdicts and no mark that there are some.
                let unchecked = ScanPipeline.precheck(p, checksums: false, flowHashSeed: 7)
                #expect(unchecked & 0x3FF == a & 0x100 && unchecked >> 32 == a >> 32)
                let packet = PacketDecoder.decode(p.bytes, linkType: p.linkType)
                guard packet.error == nil else {
                    #expect(a == 0)
                    continue
                }
                #expect(a & 0x100 != 0)
                let ipv4 = packet.network == .ipv4 ? InternetChecksum.ipv4Header(p.bytes, at: packet.networkOffset) : .unchecked
                let transport = !packet.isFragment && !p.isTruncated && [.tcp, .udp, .icmp, .icmpv6].contains(packet.transport)
                    ? InternetChecksum.transport(p.bytes, packet) : .unchecked
                #expect(a & 3 == UInt64(ipv4.rawValue) && a >> 2 & 3 == UInt64(transport.rawValue), "\(file)")
                // The prefetch hint: the flow key's hash from the seed given (the flow table's), upper half.
                if let (key, _) = FlowKey.of(packet) { #expect(a >> 32 == key.fastHash(seed: 7) >> 32) }
                if transport != .unchecked { judged += 1 }
                if transport == .bad || ipv4 == .bad { bad += 1 }
            }
        }
        #expect(judged > 1000 && bad > 10, "\(judged) judged, \(bad) bad")
    }
}
