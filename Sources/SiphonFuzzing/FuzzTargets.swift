#if canImport(Glibc)
import Glibc
#endif
import Foundation
internal import SiphonCore
import SiphonCapture
import SiphonDecode
import SiphonFlows
import SiphonApp
import SiphonGeo
import SiphonIntel
import SiphonDetect
import SiphonReport
import Siphon

/// The fuzz targets: each takes one input and runs one parser (or the whole scan) on it. A target returns
/// normally for any input, however malformed; a model mismatch (reassemblers) is a `FuzzFinding`, which the libFuzzer
/// driver turns into a crash. `Fuzz/SiphonFuzz` runs them under libFuzzer (`scripts/fuzz.sh TARGET SECONDS`);
/// `FuzzRegressionTests` runs every committed corpus file through them in the ordinary test suite.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A capture file (pcap, pcapng, gzip), read by `CaptureReader` and decoded packet by packet.
    case capture
    /// A capture file scanned end to end with the embedded rules and geography (events to memory).
    case scan
    /// One packet: the first byte picks a link type, the rest is the frame.
    case decode
    /// A GTP-U G-PDU (inside IPv4/UDP 2152) and a GTP-C message.
    case gtp
    /// GSMTAP payloads (one per 2-byte length prefix) through the cellular layer, and the GSM/SMS parsers alone.
    case gsm
    /// TCP segments derived from the input through the reassembler, checked against a byte-array model.
    case tcp
    /// IPv4 fragments derived from the input through the fragment reassembler, checked against a byte-array model.
    case fragments
    /// A DNS message, and the same bytes as a TCP DNS stream cut at input-chosen points.
    case dns
    /// A TLS stream (records, handshake, certificates), cut at input-chosen points.
    case tls
    /// An HTTP stream (requests, then responses), cut at input-chosen points.
    case http
    /// A QUIC datagram, and the input as the decrypted frames of an Initial.
    case quic
    /// A DHCP message.
    case dhcp
    /// An X.509 certificate (DER).
    case x509
    /// Payload identifiers (IMEI, IMSI, phone numbers, coordinates...) with known identifiers.
    case identifiers
    /// A MaxMind DB file, then lookups.
    case mmdb
    /// An IOC feed (plain list, CSV, STIX, MISP, TinyCheck, YAML).
    case ioc
    /// A rule pack (YAML).
    case rules

    /// Runs the target on one input. Throws only a `FuzzFinding` (a model disagreed).
    public func run(_ data: UnsafeRawBufferPointer) throws(FuzzFinding) {
        switch self {
        case .capture: FuzzHarness.capture(data)
        case .scan: FuzzHarness.scan(data)
        case .decode: FuzzHarness.decode(data)
        case .gtp: FuzzHarness.gtp(data)
        case .gsm: FuzzHarness.gsm(data)
        case .tcp: try TCPModelHarness.run(data)
        case .fragments: try FragmentModelHarness.run(data)
        case .dns: FuzzHarness.dns(data)
        case .tls: FuzzHarness.tls(data)
        case .http: FuzzHarness.http(data)
        case .quic: FuzzHarness.quic(data)
        case .dhcp: _ = DHCPMessage.parse(data)
        case .x509: _ = try? X509.summary([UInt8](data))
        case .identifiers: FuzzHarness.identifiers(data)
        case .mmdb: FuzzHarness.mmdb(data)
        case .ioc: FuzzHarness.ioc(data)
        case .rules: _ = try? RulePack.parse(String(decoding: data, as: UTF8.self), file: "fuzz.yaml")
        }
    }
}

/// A model disagreed with the code under test: what, and where.
public struct FuzzFinding: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Splits an input into the pieces a target needs: a cursor over bytes that yields zeros past the end.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    var remaining: Int { bytes.count - position }
    var isEmpty: Bool { position >= bytes.count }
    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }
    mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }
    mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
    /// The rest of the input.
    mutating func rest() -> UnsafeRawBufferPointer {
        let r = UnsafeRawBufferPointer(rebasing: bytes[min(position, bytes.count)...])
        position = bytes.count
        return r
    }
    /// Cut points for feeding `count` bytes in pieces: up to 8 chunk sizes taken from the input's first byte(s).
    static func chunks(_ count: Int, seed: UInt8) -> [Int] {
        guard count > 0 else { return [] }
        var sizes: [Int] = []
        var left = count
        var s = UInt32(seed) | 1
        while left > 0 {
            s = s &* 1_103_515_245 &+ 12_345
            let n = sizes.count >= 8 ? left : min(left, Int(s >> 16) % max(1, count / 2 + 1) + 1)
            sizes.append(n)
            left -= n
        }
        return sizes
    }
}

enum FuzzHarness {
    /// A file per process for the targets that read files (libpcap reads capture files, not memory).
    static let scratch: String = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        return dir + "/siphon-fuzz-\(getpid())"
    }()

    /// A file of its own per call: the suite runs targets on several threads at once, and a capture file rewritten
    /// (truncated) while another scan has it memory-mapped would end that scan with SIGBUS.
    static func writeScratch(_ data: UnsafeRawBufferPointer, suffix: String) -> String {
        let path = scratch + "-\(UInt64.random(in: 0...UInt64.max))" + suffix
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return path }
        var written = 0
        while written < data.count, let base = data.baseAddress {
            let n = write(fd, base + written, data.count - written)
            if n <= 0 { break }
            written += n
        }
        close(fd)
        return path
    }

    static func capture(_ data: UnsafeRawBufferPointer) {
        let path = writeScratch(data, suffix: ".cap")
        defer { unlink(path) }
        guard let reader = try? CaptureReader(path: path) else { return }
        var packet = DecodedPacket()
        while true {
            guard let p = try? reader.next() else { return }
            p.bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: p.linkType, into: &packet) }
        }
    }

    /// The options `siphon scan` uses by default: the embedded rule pack and geography.
    static let scanOptions: ScanOptions = {
        var options = ScanOptions()
        if let pack = try? RulePack.embedded() {
            options.detection = pack.configuration
            options.rules = pack.rules
        }
        options.geo = try? GeoDatabase()
        return options
    }()

    static func scan(_ data: UnsafeRawBufferPointer) {
        let path = writeScratch(data, suffix: ".scan")
        defer { unlink(path) }
        let output = EventOutput()
        _ = CaptureScanner.scan(path: path, options: scanOptions, output: output)
    }

    static let linkTypes: [LinkType] = [
        .ethernet, .raw, .ipv4, .ipv6, .null, .loop, .linuxSLL, .linuxSLL2, .nflog, .ppp, .pppHDLC, .gsmtapUm,
    ]

    static func decode(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let pick = Int(input.byte())
        let link = pick < linkTypes.count ? linkTypes[pick] : LinkType(rawValue: UInt32(pick))
        var packet = DecodedPacket()
        PacketDecoder.decode(input.rest(), linkType: link, into: &packet)
    }

    static func gtp(_ data: UnsafeRawBufferPointer) {
        // G-PDU inside IPv4/UDP to port 2152 (lengths made consistent, so the GTP bytes are what is fuzzed).
        let udpLength = 8 + data.count
        let total = 20 + udpLength
        guard total <= 65_535 else { return }
        var frame: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0,
                              192, 0, 2, 1, 198, 51, 100, 1,
                              0x08, 0x68, 0x08, 0x68, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
        frame += data
        var packet = DecodedPacket()
        frame.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ipv4, into: &packet) }
        _ = GTPControlMessage.parse(data)
    }

    static func gsm(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let layer = CellularLayer()
        var frame: UInt64 = 0
        while !input.isEmpty {
            let n = min(Int(input.u16()) & 0x3FF, input.remaining)
            let piece = UnsafeRawBufferPointer(rebasing: data[input.position..<(input.position + n)])
            input.position += n
            frame += 1
            let t = Timestamp(seconds: Int64(frame))
            layer.feed(piece, timestamp: t, frame: FrameRef(number: frame, timestamp: t))
            _ = layer.takeEvents()
            _ = GSMMessage.parse(piece, uplink: frame & 1 == 0)
            _ = SMSMessage.parse(piece, mobileOriginated: frame & 2 == 0)
        }
        layer.finish()
        _ = layer.takeEvents()
    }

    static func dns(_ data: UnsafeRawBufferPointer) {
        _ = try? DNSMessage.parse(data)
        _ = DNSMessage.looksLikeDNS(data)
        var parser = DNSStreamParser()
        var o = 0
        for n in FuzzInput.chunks(data.count, seed: data.first ?? 0) {
            _ = parser.feed(UnsafeRawBufferPointer(rebasing: data[o..<(o + n)]))
            o += n
        }
        parser.gap()
    }

    static func tls(_ data: UnsafeRawBufferPointer) {
        var parser = TLSStreamParser()
        let cache = TLSFingerprintCache(limit: 4)
        var o = 0
        for n in FuzzInput.chunks(data.count, seed: data.first ?? 0) {
            _ = parser.feed(UnsafeRawBufferPointer(rebasing: data[o..<(o + n)]), cache: cache)
            o += n
        }
        parser.gap()
        _ = try? TLSHandshakeParser.clientHello(data)
        _ = try? TLSHandshakeParser.serverHello(data)
    }

    static func http(_ data: UnsafeRawBufferPointer) {
        for requests in [true, false] {
            var parser = HTTPStreamParser(requests: requests, bodyDepth: 256)
            if !requests { parser.expectResponse(toMethod: "GET"); parser.expectResponse(toMethod: "HEAD") }
            var o = 0
            for n in FuzzInput.chunks(data.count, seed: data.first ?? 0) {
                _ = parser.feed(UnsafeRawBufferPointer(rebasing: data[o..<(o + n)]))
                o += n
            }
            _ = parser.gap()
            _ = parser.end()
        }
    }

    static func quic(_ data: UnsafeRawBufferPointer) {
        var reader = QUICInitialReader()
        _ = reader.feed(data)
        var frames = QUICInitialReader()
        frames.readDecryptedFrames([UInt8](data))
    }

    static func identifiers(_ data: UnsafeRawBufferPointer) {
        var configuration = IdentifierConfiguration()
        configuration.known = knownIdentifiers
        let scanner = IdentifierScanner(configuration: configuration)
        var matches: [IdentifierMatch] = []
        scanner.scan(data, into: &matches)
    }

    static let knownIdentifiers: [KnownIdentifier] = [
        KnownIdentifier(kind: .imei, value: "490154203237518"), KnownIdentifier(kind: .imsi, value: "208101112223334"),
        KnownIdentifier(kind: .phone, value: "+33612345678"), KnownIdentifier(kind: .mac, value: "00:11:22:33:44:55"),
    ]

    static func mmdb(_ data: UnsafeRawBufferPointer) {
        guard let reader = try? MMDBReader(bytes: [UInt8](data), name: "fuzz.mmdb") else { return }
        for text in ["1.2.3.4", "81.2.69.160", "2001:db8::1", "::", "255.255.255.255", "2a02:cf40::1"] {
            if let a = IPAddress(text) { _ = try? reader.lookup(a); _ = try? reader.geo(a) }
        }
    }

    static func ioc(_ data: UnsafeRawBufferPointer) {
        let set = IndicatorSet()
        _ = try? set.load(bytes: [UInt8](data), path: "fuzz.txt")
        for text in ["1.2.3.4", "2001:db8::1"] { if let a = IPAddress(text) { _ = set.match(address: a) } }
        _ = set.match(domain: "a.example.com")
        _ = set.match(url: "http://a.example.com/x")
    }
}
