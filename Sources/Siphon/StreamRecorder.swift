import Crypto
public import SiphonApp
public import SiphonCore
public import SiphonFlows
internal import SiphonDetect

#if canImport(Glibc)
import Glibc
#endif

/// The pipeline's stream consumer: SHA-256 of each direction (`--stream-hashes`), each direction written to a
/// file named as tcpflow names it (`--extract-streams DIR`), and overlap conflicts kept for `anomaly` events.
/// Application parsers will be fed from here.
public final class StreamRecorder: StreamConsumer {
    public struct Options: Sendable {
        public var hashes = false
        public var extractDirectory: String?
        /// Only this flow's streams are written to `extractDirectory` (nil: every flow's).
        public var extractOnlyFlow: UInt64?
        public init() {}
    }

    let options: Options
    /// Constants set at creation: a class reference kept in a `var` is retained around every call made through it.
    let flows: FlowTable
    /// The application layer the reassembled bytes and datagrams go to.
    public let app = ApplicationLayer()
    /// Capture time of the packet being processed (set by the pipeline).
    var now = Timestamp.zero
    private var hashers: [SHA256?] = []
    private var files: [Int32] = []
    /// Streams written per tcpflow base name, to add tcpflow's `c1`, `c2`... suffix on reuse.
    private var namesUsed: [String: Int] = [:]
    public private(set) var conflicts: [OverlapConflict] = []
    /// Extraction failures (the first one), reported once.
    public private(set) var extractionError: String?

    init(options: Options, flows: FlowTable, identifiers: IdentifierScanner?, isDevice: ((Flow) -> Bool)?) {
        self.options = options
        self.flows = flows
        self.identifiers = identifiers
        self.isDevice = isDevice
    }

    // MARK: Identifier scanning of what devices send in clear

    /// One scan's findings, for the pipeline to hand to the detector.
    struct IdentifierHit {
        var slot: Int32
        var flowID: UInt64
        var matches: [IdentifierMatch]
        var location: String
        var timestamp: Timestamp
        /// The packets that carried the matched bytes, in frame order.
        var frames: [FrameRef]
    }
    /// Scans the first bytes each device sends in flows not parsed otherwise (unknown, MQTT, SMTP...; HTTP is
    /// scanned as parsed, encrypted protocols not at all). Nil: no scanning.
    let identifiers: IdentifierScanner?
    /// Whether a flow from the first address to the second is a device's flow out of the network.
    let isDevice: ((Flow) -> Bool)?
    var identifierHits: [IdentifierHit] = []
    /// Per slot: the flow scanned, bytes scanned so far (Int.max: not scanned), and the last bytes of the
    /// previous chunk (an identifier may straddle two segments).
    private var scanFlow: [UInt64] = []
    private var scanned: [Int] = []
    private var carry: [[UInt8]] = []
    /// Per slot: where each chunk still in the carry began (in scanned bytes) and the packet that carried it.
    private var carryFrames: [[(Int, FrameRef)]] = []
    private var scratch: [UInt8] = []
    private var found: [IdentifierMatch] = []
    private static let carryBytes = 40

    private func scanPayload(
        _ bytes: UnsafeRawBufferPointer, slot: Int32, flowID: UInt64, scanner: IdentifierScanner, udp: Bool, frame: FrameRef
    ) {
        let i = Int(slot)
        if i >= scanFlow.count {
            let n = max(i + 1, scanFlow.count * 2, 64) - scanFlow.count
            scanFlow += Array(repeating: 0, count: n)
            scanned += Array(repeating: Int.max, count: n)
            carry += Array(repeating: [], count: n)
            carryFrames += Array(repeating: [], count: n)
        }
        let limit = scanner.configuration.scanBytes
        if scanFlow[i] != flowID {
            scanFlow[i] = flowID
            carry[i] = []
            carryFrames[i] = []
            let f = flows.flow(at: slot)
            scanned[i] = isDevice?(f) == true ? 0 : Int.max
        }
        guard scanned[i] < limit else { return }
        if let p = app.protocolOf(slot: slot, flowID: flowID) {
            switch p {
            case .tls, .quic, .ssh, .http, .dns, .dhcp, .mdns, .llmnr, .nbns:
                scanned[i] = Int.max
                carry[i] = []
                carryFrames[i] = []
                return
            default: break
            }
        }
        let take = min(bytes.count, limit - scanned[i])
        let kept = carry[i].count
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: carry[i])
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
        found.removeAll(keepingCapacity: true)
        scanner.scan(scratch, into: &found)
        var hits: [IdentifierMatch] = []
        // The chunks the scratch holds: those of the carry, then this one.
        carryFrames[i].append((scanned[i], frame))
        var frames: [FrameRef] = []
        for var m in found where m.offset + m.length > kept {
            m.offset = m.offset - kept + scanned[i]
            hits.append(m)
            let chunks = carryFrames[i]
            for (k, (start, f)) in chunks.enumerated() where !f.isNone {
                let end = k + 1 < chunks.count ? chunks[k + 1].0 : scanned[i] + take
                if start < m.offset + m.length && end > m.offset && !frames.contains(f) { frames.append(f) }
            }
        }
        if !hits.isEmpty {
            identifierHits.append(IdentifierHit(
                slot: slot, flowID: flowID, matches: hits, location: udp ? "udp-payload" : "tcp-payload", timestamp: now,
                frames: frames.sorted()))
        }
        scanned[i] += take
        // Kept in place (the per-slot array's storage is reused, not replaced per chunk).
        carry[i].removeAll(keepingCapacity: true)
        if !udp && scanned[i] < limit {
            carry[i].append(contentsOf: scratch.suffix(Self.carryBytes))
            // The chunks that still have bytes in the carry.
            let from = scanned[i] - carry[i].count
            var first = 0
            while first + 1 < carryFrames[i].count && carryFrames[i][first + 1].0 <= from { first += 1 }
            if first > 0 { carryFrames[i].removeFirst(first) }
        } else {
            carryFrames[i].removeAll(keepingCapacity: true)
        }
    }

    deinit { for fd in files where fd >= 0 { close(fd) } }

    private func ensure(_ i: Int) {
        if i >= hashers.count {
            let n = max(i + 1, hashers.count * 2, 1024)
            if options.hashes { hashers += Array(repeating: nil, count: n - hashers.count) } else { hashers = Array(repeating: nil, count: n) }
            files += Array(repeating: -1, count: n - files.count)
        }
    }

    public func streamData(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, offset: UInt64, frame: FrameRef) {
        let flowID = flows.flowID(at: slot)
        app.frame = frame
        if app.wants(slot: slot, flowID: flowID, direction: direction) {
            let (client, server) = flows.ports(at: slot)
            app.streamData(bytes, slot: slot, flowID: flowID, direction: direction, clientPort: client, serverPort: server, timestamp: now)
        }
        if direction == 0, let scanner = identifiers {
            scanPayload(bytes, slot: slot, flowID: flowID, scanner: scanner, udp: false, frame: frame)
        }
        let i = Int(slot) * 2 + direction
        if options.hashes {
            ensure(i)
            if hashers[i] == nil { hashers[i] = SHA256() }
            hashers[i]!.update(bufferPointer: bytes)
        }
        if options.extractDirectory != nil, options.extractOnlyFlow.map({ $0 == flowID }) ?? true {
            ensure(i)
            write(bytes, i: i, slot: slot, direction: direction, offset: offset)
        }
    }

    public func streamGap(length: UInt64, slot: Int32, direction: Int, offset: UInt64) {
        // Hashes cover the delivered bytes only; extracted files keep the hole (sparse), as tcpflow leaves it.
        // No packet carried a gap: what a parser completes now names the flow's packets, not the last chunk's.
        app.frame = .none
        app.streamGap(slot: slot, flowID: flows.flowID(at: slot), direction: direction)
    }

    public func streamConflict(_ conflict: OverlapConflict) { conflicts.append(conflict) }

    public func datagram(_ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, timestamp: Timestamp, frame: FrameRef) {
        let (client, server) = flows.ports(at: slot)
        let flowID = flows.flowID(at: slot)
        app.frame = frame
        app.datagram(bytes, slot: slot, flowID: flowID, direction: direction, clientPort: client, serverPort: server, timestamp: timestamp)
        if direction == 0, let scanner = identifiers {
            now = timestamp
            scanPayload(bytes, slot: slot, flowID: flowID, scanner: scanner, udp: true, frame: frame)
        }
    }

    func takeConflicts() -> [OverlapConflict] {
        defer { conflicts.removeAll(keepingCapacity: true) }
        return conflicts
    }

    /// The hex SHA-256 of each direction of the flow in `slot` (nil for an empty direction or without hashing),
    /// and closes its extracted files.
    func finish(slot: Int32) -> (String?, String?) {
        if Int(slot) < carry.count {
            carry[Int(slot)] = []
            carryFrames[Int(slot)] = []
            scanFlow[Int(slot)] = 0
        }
        var out: (String?, String?) = (nil, nil)
        for direction in 0..<2 {
            let i = Int(slot) * 2 + direction
            guard i < files.count else { continue }
            if options.hashes, let h = hashers[i] {
                let hex = h.finalize().withUnsafeBytes { $0.hexString }
                if direction == 0 { out.0 = hex } else { out.1 = hex }
                hashers[i] = nil
            }
            if files[i] >= 0 {
                close(files[i])
                files[i] = -1
            }
        }
        return out
    }

    private func write(_ bytes: UnsafeRawBufferPointer, i: Int, slot: Int32, direction: Int, offset: UInt64) {
        guard let dir = options.extractDirectory else { return }
        if files[i] < 0 {
            let f = flows.flow(at: slot)
            let fromClient = direction == 0
            let base = StreamRecorder.tcpflowName(
                source: fromClient ? f.clientAddress : f.serverAddress, sourcePort: fromClient ? f.clientPort : f.serverPort,
                destination: fromClient ? f.serverAddress : f.clientAddress,
                destinationPort: fromClient ? f.serverPort : f.clientPort, vlanTCI: f.outer8021QTCI)
            let used = namesUsed[base, default: 0]
            namesUsed[base] = used + 1
            let name = used == 0 ? base : base + "c\(used)"
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd < 0 {
                if extractionError == nil { extractionError = "\(dir)/\(name): \(String(cString: strerror(errno)))" }
                return
            }
            files[i] = fd
        }
        var done = 0
        while done < bytes.count {
            let n = pwrite(files[i], bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n <= 0 { break }
            done += n
        }
    }

    /// tcpflow's default file name: `%A.%a-%B.%b`, IPv4 octets zero-padded to 3 digits, ports to 5
    /// (`192.168.001.002.01234-010.000.000.001.00080`); IPv6 addresses as `inet_ntop` prints them; `--` and the
    /// outermost 802.1Q tag's whole TCI in decimal when the first packet had one (tcpflow 1.6.1, see
    /// captures/tcpflow/README.md).
    public static func tcpflowName(
        source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16, vlanTCI: Int32 = -1
    ) -> String {
        func address(_ a: IPAddress) -> String {
            if a.isIPv6 { return a.description }
            return a.bytes.map { String($0).leftPadded(3) }.joined(separator: ".")
        }
        return address(source) + "." + String(sourcePort).leftPadded(5) + "-" + address(destination) + "."
            + String(destinationPort).leftPadded(5) + (vlanTCI >= 0 ? "--\(vlanTCI)" : "")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
