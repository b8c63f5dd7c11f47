import Foundation
import Siphon
import Testing

/// A source that hands out a capture file's packets, then (as a live source with no traffic would) returns nil
/// with its clock moved `idle` past the last packet, `ticks` times, before it ends.
final class IdleAfterFileSource: PacketSource {
    let reader: CaptureReader
    let idle: Duration
    var ticks: Int
    var last = Timestamp.zero
    private(set) var isFinished = false
    private(set) var clock: Timestamp?
    init(path: String, idle: Duration, ticks: Int) throws {
        reader = try CaptureReader(path: path)
        self.idle = idle
        self.ticks = ticks
    }
    var name: String { reader.name }
    func next() throws(CaptureError) -> CapturedPacket? {
        if let p = try reader.next() {
            last = p.timestamp
            return p
        }
        if ticks == 0 { isFinished = true; return nil }
        ticks -= 1
        clock = last + idle
        return nil
    }
    func annotation(ahead: Int) -> UInt64 { 0 }
    var filteredOut: Int { 0 }
    var interfaceDrops: UInt64? { nil }
    var kernelDrops: UInt64? { nil }
}

@Suite struct PacketSourceTests {
    static let sample = Repo.path("captures/sample/backdoor-phone.pcap")

    /// With no packet arriving, capture time still moves on the source's clock: every flow idle past its timeout
    /// ends, with its events and alerts, before the capture does (the live case), and the idle hook runs per tick.
    @Test func clockTicksEndIdleFlowsWithoutPackets() throws {
        // The whole scan of the file, for reference: how many flows, and the alerts.
        let reference = EventOutput()
        let full = CaptureScanner.scan(path: Self.sample, output: reference)
        let flowCount = Int(full.statistics.flows)
        #expect(flowCount == 21)

        // A file alone: when its last packet is read, flows are still open (they end at the finish).
        let fileOnly = ScanPipeline(capture: "sample", output: EventOutput())
        try CaptureScanner.feed(fileOnly, from: try CaptureReader(path: Self.sample))
        #expect(fileOnly.flows.activeCount > 0)

        // The same packets, then 2 hours of clock with no packet (past the 1 h TCP idle timeout): all end.
        let output = EventOutput()
        let pipeline = ScanPipeline(capture: "sample", output: output)
        let source = try IdleAfterFileSource(path: Self.sample, idle: .seconds(7200), ticks: 2)
        var idleCalls = 0
        try CaptureScanner.feed(pipeline, from: source) { _ in idleCalls += 1 }
        #expect(idleCalls == 2)
        #expect(pipeline.flows.activeCount == 0)
        let before = String(decoding: output.memory, as: UTF8.self)
        #expect(before.components(separatedBy: "\"event_type\":\"flow\"").count - 1 == flowCount)
        // Every alert but the ones judged at the end of the capture (upload by share) is out already.
        let beforeAlerts = alertKeys(before)
        pipeline.finish()
        let all = alertKeys(String(decoding: output.memory, as: UTF8.self))
        #expect(all == alertKeys(String(decoding: reference.memory, as: UTF8.self)))
        #expect(beforeAlerts.count >= all.count - all.filter { $0.contains("siphon.foreign-upload.share") }.count)
        #expect(beforeAlerts.contains { $0.hasPrefix("beaconing ") } && beforeAlerts.contains { $0.hasPrefix("identifier-leak ") })
        #expect(!before.contains("\"open-at-end\""))
    }

    /// The ring writer's pcapng, read back by Siphon's reader and by tshark: every packet, byte for byte, with its
    /// time, lengths and interface; files rotate by size and the oldest go when more than `files` exist.
    @Test func ringFilesHoldEveryPacket() throws {
        let dir = temporaryPath("siphon-ring-\(getpid())-\(UInt32.random(in: 0..<1_000_000))")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        struct Seen: Equatable { var bytes: [UInt8]; var ns: Int64; var length: Int; var interface: Int; var link: UInt32 }
        var original: [Seen] = []
        // Two interfaces of different link types: the Ethernet sample, then raw-IP packets of another capture.
        var options = RingOptions(directory: dir)
        options.fileBytes = 20_000
        let interfaces = [CaptureInterface(name: "eth-test", linkType: .ethernet, snapLength: 262_144),
                          CaptureInterface(name: "raw-test", linkType: .raw, snapLength: 65_535)]
        let writer = try PcapngRingWriter(options: options, interfaces: interfaces)
        #expect(writer.createdDirectory)
        // Files closed on rotation carry the drop counts as they stand then.
        writer.dropCounts = { [(kernel: 1, interface: 2), (kernel: nil, interface: 0)] }
        for (path, interface) in [(Self.sample, 0), (Repo.path("captures/diff/ipv4-sv-linktype-228.pcap"), 1)] {
            let reader = try CaptureReader(path: path)
            while let p = try reader.next() {
                let link = interface == 1 ? LinkType.raw : p.linkType
                var q = p
                q.linkType = link
                try writer.write(q, interface: interface)
                original.append(Seen(bytes: Array(p.bytes), ns: p.timestamp.nanoseconds, length: p.originalLength, interface: interface, link: link.rawValue))
            }
        }
        try writer.close(at: Timestamp(seconds: 2_000_000_000), drops: [(kernel: 3, interface: 4), (kernel: 0, interface: 0)])
        #expect(writer.files.count > 2 && writer.files == writer.written)
        var back: [Seen] = []
        var tsharkTotal = 0
        for f in writer.files {
            let reader = try CaptureReader(path: f)
            while let p = try reader.next() {
                back.append(Seen(bytes: Array(p.bytes), ns: p.timestamp.nanoseconds, length: p.originalLength, interface: p.interfaceID, link: p.linkType.rawValue))
            }
            let t = shell("tshark -r \(f) -T fields -e frame.number 2>/dev/null | wc -l")
            tsharkTotal += Int(t.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            if f == writer.files.last {
                #expect(reader.interfaceDrops == 4 && reader.kernelDrops == 3)
            } else {
                #expect(reader.interfaceDrops == 2 && reader.kernelDrops == 1)
            }
        }
        #expect(back == original)
        if shell("command -v tshark").status == 0 { #expect(tsharkTotal == original.count) }

        // Keep 2: the older files are removed as new ones start.
        let dir2 = dir + "/keep"
        options.directory = dir2
        options.files = 2
        let ring = try PcapngRingWriter(options: options, interfaces: [interfaces[0]])
        let reader = try CaptureReader(path: Self.sample)
        while let p = try reader.next() { try ring.write(p, interface: 0) }
        try ring.close(at: .zero, drops: [(kernel: 3, interface: 4)])
        #expect(ring.written.count > 2 && ring.files == Array(ring.written.suffix(2)))
        // Drops in the statistics blocks make the scan of that file, and every verdict on it, incomplete.
        let last = CaptureScanner.scan(path: ring.files.last!, output: EventOutput())
        #expect(last.statistics.kernelDrops == 3 && last.statistics.interfaceDrops == 4)
        #expect(last.statistics.incompleteness == "3 packets dropped by the kernel; 4 packets dropped by the interface")
        #expect(!last.verdicts.isEmpty && last.verdicts.allSatisfy { $0.incomplete == last.statistics.incompleteness })
        let left = try FileManager.default.contentsOfDirectory(atPath: dir2).sorted()
        #expect(left == ring.files.map { ($0 as NSString).lastPathComponent })
    }

    @Test func geoOverridesComeFirst() throws {
        let overrides = try GeoOverride.parse("""
            \u{FEFF}# exported from the lab's inventory
            network,country,registered_country,asn,as_org
            # lab ranges
            198.51.100.0/24,CN,,AS64500,Test Net, Ltd
            198.51.100.7,US
            8.8.8.0/24,fr
            2001:db8:1::/48,DE,DE,64501
            """, name: "o.csv")
        #expect(overrides.count == 4)
        #expect(overrides[0].asOrganization == "Test Net, Ltd" && overrides[0].asn == 64500 && overrides[0].registeredCountry == nil)
        let plain = try GeoDatabase(home: ["FR"])
        let geo = plain.with(overrides: overrides)
        // A documentation address is local without an override, foreign with one; the most specific network wins.
        #expect(plain.lookup(IPAddress("198.51.100.9")!).scope == .local)
        let a = geo.lookup(IPAddress("198.51.100.9")!)
        #expect(a.country == "CN" && a.registeredCountry == "CN" && a.asn == 64500 && a.asOrganization == "Test Net, Ltd" && a.scope == .foreign)
        #expect(geo.lookup(IPAddress("198.51.100.7")!).country == "US")
        #expect(!geo.isLocal(IPAddress("198.51.100.9")!) && geo.isLocal(IPAddress("192.0.2.1")!))
        // Over the embedded data too: 8.8.8.8 is located in the US by the tables, declared French here (home).
        #expect(plain.lookup(IPAddress("8.8.8.8")!).scope == .foreign)
        #expect(geo.lookup(IPAddress("8.8.8.8")!).scope == .home)
        #expect(geo.lookup(IPAddress("2001:db8:1::5")!).country == "DE")
        #expect(geo.lookup(IPAddress("2001:db8:2::5")!).scope == .local)
        for (text, message) in [
            ("10.0.0.0/33,CN", "o.csv:1: 10.0.0.0/33: not a network"),
            ("\n10.0.0.0/8", "o.csv:2: expected network,country"),
            ("10.0.0.0/8,China", "o.csv:1: China: country must be a two-letter country code"),
            ("10.0.0.0/8,CN,CN,ASx", "o.csv:1: ASx: not an AS number"),
        ] {
            #expect(throws: GeoError.self) { try GeoOverride.parse(text, name: "o.csv") }
            do { _ = try GeoOverride.parse(text, name: "o.csv") } catch { #expect(error.description.hasPrefix(message), "\(error)") }
        }
    }

    /// `--geo-override` on the command line: `lookup` and `scan` take it; a bad file is one line naming it.
    @Test func geoOverrideOnTheCommandLine() throws {
        let path = temporaryPath("siphon-override-\(getpid()).csv")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "198.51.100.0/24,CN,CN,64500,Test Net\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try runSiphon(["lookup", "198.51.100.7", "--geo-override", path, "--json"])
        #expect(r.status == 0)
        #expect(r.out.contains("\"country\":\"CN\"") && r.out.contains("\"scope\":\"foreign\"") && r.out.contains("\"asn\":64500"), "\(r.out)")
        try "198.51.100.0/24,CN\nnonsense\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = try runSiphon(["scan", Self.sample, "--geo-override", path])
        #expect(bad.status == 2 && bad.err == "siphon: \(path):2: expected network,country[,registered_country,asn,as_org]\n", "\(bad.err)")
    }
}

/// Ethernet + IPv4 + TCP frames for hand-made flows (checksums left zero: scan them with `--checksums off`).
func tcpFrame(from src: (mac: UInt64, ip: String, port: UInt16), to dst: (mac: UInt64, ip: String, port: UInt16),
              seq: UInt32, ack: UInt32, flags: UInt8, payload: Int = 0) -> [UInt8] {
    func mac(_ m: UInt64) -> [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: m >> (40 - 8 * UInt64($0))) } }
    func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    let total = 20 + 20 + payload
    var f = mac(dst.mac) + mac(src.mac) + [0x08, 0x00]
    f += [0x45, 0] + be16(UInt16(total)) + [0, 1, 0x40, 0, 64, 6, 0, 0] + IPAddress(src.ip)!.bytes + IPAddress(dst.ip)!.bytes
    f += be16(src.port) + be16(dst.port) + be32(seq) + be32(ack) + [0x50, flags] + be16(65535) + [0, 0, 0, 0]
    f += [UInt8](repeating: 0x41, count: payload)
    return f
}

@Suite struct OpenFlowTests {
    /// A connection to a foreign host held open (an MQTT-like session, data every 10 s for 150 s, no close) is
    /// judged while it lasts: foreign-endpoint comes out once it has been open a minute, not when it ends; once
    /// only, whether judged open or at its end.
    @Test func heldConnectionIsJudgedBeforeItEnds() throws {
        let device = (mac: UInt64(0x02A4_C211_3302), ip: "192.168.1.20", port: UInt16(40000))
        let server = (mac: UInt64(0x0222_3344_55AA), ip: "120.77.166.21", port: UInt16(8883))
        var frames: [(Int64, [UInt8])] = [
            (0, tcpFrame(from: device, to: server, seq: 100, ack: 0, flags: 0x02)),
            (20, tcpFrame(from: server, to: device, seq: 900, ack: 101, flags: 0x12)),
            (40, tcpFrame(from: device, to: server, seq: 101, ack: 901, flags: 0x10)),
        ]
        for k in 0..<15 {
            let t = Int64(k + 1) * 10_000
            frames.append((t, tcpFrame(from: device, to: server, seq: 101 + UInt32(k) * 50, ack: 901, flags: 0x18, payload: 50)))
            frames.append((t + 30, tcpFrame(from: server, to: device, seq: 901, ack: 151 + UInt32(k) * 50, flags: 0x10)))
        }
        func run(interval: Duration?) throws -> (open: [Alert], all: [Alert]) {
            var options = ScanOptions()
            options.checksums = .off
            options.geo = try GeoDatabase(home: ["FR"])
            options.openFlowInterval = interval
            let pipeline = ScanPipeline(capture: "held", options: options, output: EventOutput())
            let base: Int64 = 1_700_000_000_000
            for (ms, bytes) in frames {
                bytes.withUnsafeBytes { raw in
                    pipeline.process(CapturedPacket(bytes: raw, timestamp: Timestamp(nanoseconds: (base + ms) * 1_000_000),
                                                    linkType: .ethernet, originalLength: raw.count))
                }
            }
            let open = pipeline.detection?.raised ?? []
            pipeline.finish()
            return (open, pipeline.detection?.raised ?? [])
        }
        let judged = try run(interval: .seconds(60))
        let foreign = judged.open.filter { $0.category == .foreignEndpoint }
        #expect(foreign.count == 1 && foreign.first?.flow.serverAddress == IPAddress(server.ip))
        // Raised by the first check, which runs at the first packet 60 s after the capture's first (the segment at
        // 60.000 s: the flow is 60 s old), with what the device had sent by then: 6 segments of 50 bytes.
        #expect(foreign.first.map { $0.timestamp.nanoseconds / 1_000_000 - 1_700_000_000_000 } == 60_000)
        #expect(foreign.first?.evidence.first { $0.0 == "sent_bytes" }?.1 == .int(300))
        #expect(judged.all.filter { $0.category == .foreignEndpoint }.count == 1)
        let atEnd = try run(interval: nil)
        // Without open-flow checks only the in-flow heartbeat comes before the end: the device's 50 bytes every
        // 10 s are one (raised at the 6th exchange, whatever the interval).
        #expect(atEnd.open.allSatisfy { $0.rule == "siphon.beaconing.in-flow" })
        #expect(atEnd.all.filter { $0.category == .foreignEndpoint }.count == 1)
        #expect(Set(atEnd.all.map(\.category.rawValue)) == Set(judged.all.map(\.category.rawValue)))
    }
}
