public import SiphonCore

final class TLSState {
    var client = TLSStreamParser()
    var server = TLSStreamParser()
}

final class HTTPState {
    var requests: HTTPStreamParser
    var responses: HTTPStreamParser
    init(depth: Int) {
        requests = HTTPStreamParser(requests: true, bodyDepth: depth)
        responses = HTTPStreamParser(requests: false, bodyDepth: depth)
    }
}

final class DNSState {
    var client = DNSStreamParser()
    var server = DNSStreamParser()
}

final class QUICState {
    var reader = QUICInitialReader()
}

/// Application protocols recognised by content.
public enum AppProtocol: String, Sendable {
    case unknown, tls, http, dns, quic, ssh, mqtt, mdns, llmnr, nbns, smtp, imap, pop3, ftp, irc, dhcp, gtpc
}

/// A transaction parsed from a flow, for a `dns`, `tls` or `http` event.
public enum AppTransaction: Sendable {
    /// A DNS message, and whether it came as DNS, mDNS or LLMNR.
    case dns(DNSMessage, AppProtocol)
    case tls(client: TLSClientHello?, server: TLSServerHello?, certificate: X509Summary?, chainLength: Int)
    case http(request: HTTPMessage?, response: HTTPMessage?)
    case dhcp(DHCPMessage)
    /// A GTP control message, and for an accepted create response the subscriber its request named.
    case gtpc(GTPControlMessage, subscriber: Subscriber?)
    /// What a cleartext SMTP, POP3, IMAP or FTP client gave away: a login, a mail, a stored file.
    case login(LoginRecord)
}

/// A transaction with the flow it belongs to (a slot of the flow table, and the flow's id for checking).
public struct AppEvent: Sendable {
    public var slot: Int32
    public var flowID: UInt64
    /// 0: sent by the initiator, 1: by the responder (DNS messages; TLS and HTTP events cover both).
    public var direction: Int
    public var timestamp: Timestamp
    public var transaction: AppTransaction
    /// The packet the transaction rests on: the one that completed an HTTP request, a TLS ClientHello, a DNS
    /// message; `.none` when not known (the pipeline then names the flow's last packet). One value, no array: an
    /// event is made per transaction.
    public var frame = FrameRef.none
}

/// What the application layer learned of a flow, for its `flow` event.
public struct AppSummary: Sendable {
    public var app: AppProtocol = .unknown
    /// Names for the responder seen inside the flow: TLS SNI, HTTP Host.
    public var names: [String] = []
    /// The cleartext protocol a TLS flow started with (STARTTLS, HTTP CONNECT).
    public var upgradedFrom: AppProtocol?
}

/// The application layer of one pipeline: identifies each flow's protocol from its first bytes, runs the matching
/// incremental parser per direction, and queues transactions. It sees byte chunks, gaps and datagrams, never TCP.
public final class ApplicationLayer {
    public let names = NameMap()
    /// The packet whose bytes are being fed (set by the stream consumer before each chunk or datagram).
    public var frame = FrameRef.none
    /// JA3/JA4 of ClientHellos already seen in this pipeline.
    public let tlsFingerprints = TLSFingerprintCache()

    /// What DHCP clients said of themselves, by MAC address: labels for the devices under test.
    public struct DeviceLabel: Sendable, Equatable {
        public var hostname: String?
        public var vendorClass: String?
    }
    public private(set) var devices: [UInt64: DeviceLabel] = [:]
    /// Bytes the TCP parsers of all live flows may hold together (`MemoryBudget.parsers`); each is bounded by
    /// itself too (64 KiB a TLS record or handshake message, a DNS message, an HTTP line; 256 waiting requests).
    public var maximumParserBytes = Int.max
    /// What they hold now (as last counted after each chunk).
    public private(set) var parserBytes = 0
    /// Flows whose parsing stopped because the parsers held their budget (what they had found stays; requests
    /// waiting for a response go out unanswered).
    public private(set) var flowsNotParsed: UInt64 = 0
    /// Shared with the detectors' tables (the scan's `TableBudget`): each DHCP client's names taken.
    public var tableBudget = TableBudget()
    /// Transactions since the owner last drained them.
    public var events: [AppEvent] = []
    public var httpBodyDepth = 4096
    public private(set) var dnsMessages: UInt64 = 0
    public private(set) var dnsErrors: UInt64 = 0

    final class FlowState {
        let flowID: UInt64
        let serverPort: UInt16
        let clientPort: UInt16
        var app = AppProtocol.unknown
        var decided = false
        // Parsers live in boxes allocated for the protocol found (a flow record stays small), and are mutated in
        // place through them (`f.tls?.client.feed(...)`): copying a parser out and back would copy its buffers on
        // every chunk (copy-on-write with two owners).
        var tls: TLSState?
        var http: HTTPState?
        var pendingRequests: [HTTPMessage] = []
        /// The packet that completed each pending request (same order).
        var pendingRequestFrames: [FrameRef] = []
        /// The packet that completed the ClientHello.
        var clientHelloFrame = FrameRef.none
        var dns: DNSState?
        var startTLS: StartTLSWatcher?
        var login: LoginWatcher?
        /// Unidentified TCP: the initiator's first bytes, watched for a shell's output.
        var shell: ShellWatcher?
        var quic: QUICState?
        var quicDone = false
        var tlsEmitted = false
        /// The protocol the flow started with before switching to TLS.
        var upgradedFrom: AppProtocol?
        /// Client bytes after a CONNECT request, held until its response says whether a tunnel opened.
        var heldAfterConnect: [UInt8]?
        var names: [String] = []
        /// Bytes seen while the protocol is undecided (the first ones of each direction).
        var probe: ([UInt8], [UInt8]) = ([], [])
        /// What `pendingRequests` hold (`HTTPMessage.heldBytes`), kept as they come and go.
        var pendingBytes = 0
        /// What this flow's parsers held at the last count, charged to `parserBytes`.
        var charged = 0
        /// Parsing stopped because the parsers of all flows together held their budget (`maximumParserBytes`).
        var givenUp = false

        /// What the flow's parsers hold now: undecided bytes, TLS records and handshake, HTTP lines and messages
        /// (being read and waiting for their response), DNS messages, bytes held after a CONNECT, QUIC Initial
        /// CRYPTO data.
        var heldBytes: Int {
            var n = probe.0.count + probe.1.count + pendingBytes + (heldAfterConnect?.count ?? 0)
            if let tls { n += tls.client.bufferedBytes + tls.server.bufferedBytes }
            if let http { n += http.requests.bufferedBytes + http.responses.bufferedBytes }
            if let dns { n += dns.client.bufferedBytes + dns.server.bufferedBytes }
            if let quic { n += quic.reader.bufferedBytes }
            if let login { n += login.bufferedBytes }
            if let shell { n += shell.bufferedBytes }
            return n
        }

        init(flowID: UInt64, clientPort: UInt16, serverPort: UInt16) {
            self.flowID = flowID
            self.clientPort = clientPort
            self.serverPort = serverPort
        }
    }

    private var flows: [FlowState?] = []
    /// Per slot: the flow id and, per direction, whether its parser still wants bytes (bit 0: from the client,
    /// bit 1: from the server). Checked before each chunk so that the bulk of a TLS or unknown stream costs one load.
    private var wanting: [(flowID: UInt64, directions: UInt8)] = []

    public init() {}

    /// The protocol identified for the flow in `slot`, nil while undecided.
    public func protocolOf(slot: Int32, flowID: UInt64) -> AppProtocol? {
        let i = Int(slot)
        guard i < flows.count, let f = flows[i], f.flowID == flowID, f.decided else { return nil }
        return f.app
    }

    /// Whether the application layer still reads `direction` of the flow in `slot` (always true for a flow it has
    /// not seen yet).
    @inline(__always)
    public func wants(slot: Int32, flowID: UInt64, direction: Int) -> Bool {
        let i = Int(slot)
        guard i < wanting.count, wanting[i].flowID == flowID else { return true }
        return wanting[i].directions & (1 << direction) != 0
    }

    private func setWants(_ f: FlowState, slot: Int32) {
        let i = Int(slot)
        if i >= wanting.count { wanting += Array(repeating: (0, 3), count: max(i + 1 - wanting.count, wanting.count)) }
        var bits: UInt8 = 3
        if f.givenUp {
            bits = 0
        } else if f.decided {
            switch f.app {
            case .tls:
                bits = (f.tls?.client.done == false ? 1 : 0) | (f.tls?.server.done == false ? 2 : 0)
            case .http:
                bits = (f.http?.requests.failed == false ? 1 : 0) | (f.http?.responses.failed == false ? 2 : 0)
            case .dns, .mdns, .llmnr:
                bits = 3
            case .smtp, .imap, .pop3, .ftp, .irc:
                bits = (f.startTLS != nil ? 3 : 0) | (f.login != nil ? 1 : 0)
            case .unknown:
                bits = f.shell != nil ? 1 : 0
            default:
                bits = 0
            }
        }
        wanting[i] = (f.flowID, bits)
    }

    private func state(_ slot: Int32, _ flowID: UInt64, clientPort: UInt16, serverPort: UInt16) -> FlowState {
        let i = Int(slot)
        if i >= flows.count { flows += Array(repeating: nil, count: max(i + 1 - flows.count, flows.count)) }
        if let s = flows[i], s.flowID == flowID { return s }
        if let old = flows[i] { parserBytes -= old.charged }
        let s = FlowState(flowID: flowID, clientPort: clientPort, serverPort: serverPort)
        flows[i] = s
        return s
    }

    // MARK: TCP

    public func streamData(
        _ bytes: UnsafeRawBufferPointer, slot: Int32, flowID: UInt64, direction: Int, clientPort: UInt16, serverPort: UInt16,
        timestamp: Timestamp
    ) {
        let f = state(slot, flowID, clientPort: clientPort, serverPort: serverPort)
        defer {
            account(f, slot: slot, timestamp: timestamp)
            setWants(f, slot: slot)
        }
        if f.decided {
            feedTCP(f, bytes, slot: slot, direction: direction, timestamp: timestamp)
            return
        }
        // Undecided: keep the bytes (4 KiB a side at most), decide, then replay both sides, client first.
        if direction == 0 { f.probe.0.append(contentsOf: bytes) } else { f.probe.1.append(contentsOf: bytes) }
        decideTCP(f)
        if !f.decided && f.probe.0.count + f.probe.1.count > 4096 {
            f.app = .unknown
            f.decided = true
        }
        guard f.decided else { return }
        let (client, server) = f.probe
        f.probe = ([], [])
        client.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 0, timestamp: timestamp) }
        server.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 1, timestamp: timestamp) }
    }

    /// Decides a TCP flow's protocol from the first bytes of either side.
    private func decideTCP(_ f: FlowState) {
        let c = f.probe.0
        let s = f.probe.1
        func starts(_ b: [UInt8], _ text: StaticString) -> Bool { Self.starts(b, text) }
        let sslv2Hello = c.count >= 5 && c[0] & 0x80 != 0 && c[2] == 0x01 && (c[3] == 0x03 || (c[3] == 0x00 && c[4] == 0x02))
        if c.count >= 3 && c[0] == 0x16 && c[1] == 0x03 && c[2] <= 0x04 || s.count >= 3 && s[0] == 0x16 && s[1] == 0x03 || sslv2Hello {
            f.app = .tls
        } else if Self.methodPrefixes.contains(where: { c.starts(with: $0) }) || starts(s, "HTTP/1.") {
            f.app = .http
        } else if starts(c, "SSH-") || starts(s, "SSH-") {
            f.app = .ssh
        } else if s.count >= 4 && starts(s, "220") && (s[3] == 0x20 || s[3] == 0x2D) {
            f.app = f.serverPort == 21 ? .ftp : .smtp  // a "220 " greeting: FTP on its port, else SMTP (may switch to TLS)
        } else if starts(s, "* OK") {
            f.app = .imap
        } else if starts(s, "+OK") {
            f.app = .pop3
        } else if s.isEmpty || s.first == UInt8(ascii: ":") || starts(s, "NOTICE "), Self.ircRegistration(c) {
            f.app = .irc
        } else if c.count >= 8 && c[0] == 0x10 && (c.dropFirst(2).starts(with: [0, 4] + Array("MQTT".utf8))
            || c.dropFirst(3).starts(with: [0, 4] + Array("MQTT".utf8)) || c.dropFirst(2).starts(with: [0, 6] + Array("MQIsdp".utf8)))
        {
            f.app = .mqtt
        } else if c.count >= 14, Int(c[0]) << 8 | Int(c[1]) >= 12, (c.dropFirst(2)).withUnsafeBytes({ b in
            // DNS over TCP: a length prefix, then a header whose counts fit; full parse waits for the message.
            b.count >= 12 && b.be16(4) >= 1 && b.be16(4) <= 16 && (b.be16(2) >> 11) & 0xF <= 6
        }), f.serverPort == 53 || f.serverPort == 853 || f.clientPort == 53 {
            f.app = .dns
        } else if c.count >= 16 || s.count >= 16 {
            f.app = .unknown
        } else {
            return  // wait for more bytes
        }
        f.decided = true
        switch f.app {
        case .tls:
            f.tls = TLSState()
        case .http:
            f.http = HTTPState(depth: httpBodyDepth)
        case .dns:
            f.dns = DNSState()
        case .smtp, .imap, .pop3:
            f.startTLS = StartTLSWatcher(app: f.app)
            f.login = LoginWatcher(app: f.app)
        case .ftp, .irc:
            f.login = LoginWatcher(app: f.app)
        case .unknown:
            f.shell = ShellWatcher()
        default: break
        }
    }

    /// Whether `b` begins with `text` (no array made: this runs for every chunk of an undecided flow).
    @inline(__always) static func starts(_ b: [UInt8], _ text: StaticString) -> Bool {
        b.withUnsafeBytes { bytes($0, at: 0, are: text) }
    }

    /// The HTTP methods and their space, as bytes, the common ones first (a request line begins with one). Made
    /// once: building `method + " "` for each of them on every undecided chunk cost 1-4 M instructions on
    /// mid.pcap, more or less by the set's per-process order.
    static let methodPrefixes: [[UInt8]] = (["GET", "POST", "HEAD", "PUT", "OPTIONS", "CONNECT", "DELETE", "PATCH"]
        + HTTPStreamParser.methods.sorted()).reduce(into: []) { list, m in
            let line = Array((m + " ").utf8)
            if !list.contains(line) { list.append(line) }
        }

    /// Whether a client's first bytes open an IRC registration (RFC 2812 3.1): `NICK x`, `CAP LS` (IRCv3), or
    /// `PASS`/`USER` lines followed by a NICK line. The server speaks first only with notices (`:server NOTICE`),
    /// unlike FTP, SMTP and POP3, whose greetings decide those first.
    static func ircRegistration(_ c: [UInt8]) -> Bool {
        func starts(_ text: StaticString) -> Bool { Self.starts(c, text) }
        if starts("NICK ") || starts("CAP LS") { return true }
        guard starts("PASS ") || starts("USER ") else { return false }
        return c.withUnsafeBytes { b in (0..<b.count).contains { bytes(b, at: $0, are: "\nNICK ") } }
    }

    private func feedTCP(_ f: FlowState, _ bytes: UnsafeRawBufferPointer, slot: Int32, direction: Int, timestamp: Timestamp) {
        guard f.decided else { return }
        switch f.app {
        case .tls:
            let found = (direction == 0 ? f.tls?.client.feed(bytes, cache: tlsFingerprints) : f.tls?.server.feed(bytes, cache: tlsFingerprints)) ?? false
            if found {
                if direction == 0, f.clientHelloFrame.isNone, f.tls?.client.clientHello != nil { f.clientHelloFrame = frame }
                if direction == 0, let sni = f.tls?.client.clientHello?.serverName, !f.names.contains(sni) { f.names.append(sni) }
                // One event per handshake: once the server's first flight is over (hello, certificates), or at the
                // end of the flow with what was seen.
                if direction == 1 && f.tls?.server.serverHello != nil && f.tls?.server.serverFlightDone == true { emitTLS(f, slot: slot, timestamp: timestamp) }
            }
        case .http:
            if direction == 0 {
                if f.heldAfterConnect != nil {
                    f.heldAfterConnect!.append(contentsOf: bytes.prefix(65_536 - f.heldAfterConnect!.count))
                    return
                }
                var consumed = 0
                for m in f.http?.requests.feed(bytes, stopAfterConnect: true, consumed: &consumed) ?? [] {
                    f.http?.responses.expectResponse(toMethod: m.method)
                    // A name for the server; an address in the Host header is none (it names no DNS lookup).
                    if let host = m.header("Host").map(HTTPHost.strip), !host.isEmpty, !HTTPHost.isAddress(host), !f.names.contains(host) {
                        f.names.append(host)
                    }
                    f.pendingRequests.append(m)
                    f.pendingRequestFrames.append(frame)
                    f.pendingBytes += m.heldBytes
                    if f.pendingRequests.count > HTTPStreamParser.maximumPendingRequests {
                        // Pipelined far beyond any client: the oldest goes out now, unanswered (memory bound).
                        let (request, requestFrame) = nextRequest(f)
                        events.append(AppEvent(slot: slot, flowID: f.flowID, direction: 0, timestamp: timestamp,
                                               transaction: .http(request: request, response: nil), frame: requestFrame ?? frame))
                    }
                    if m.method == "CONNECT" {
                        // Whatever follows may be a tunnelled protocol: hold it until the response decides.
                        f.heldAfterConnect = Array(bytes[consumed...].prefix(65_536))
                    }
                }
            } else {
                var consumed = 0
                for m in f.http?.responses.feed(bytes, stopAfterConnect: true, consumed: &consumed) ?? [] {
                    let (request, requestFrame) = nextRequest(f)
                    events.append(AppEvent(slot: slot, flowID: f.flowID, direction: 1, timestamp: timestamp, transaction: .http(request: request, response: m),
                                           frame: requestFrame ?? frame))
                    guard request?.method == "CONNECT", let held = f.heldAfterConnect else { continue }
                    f.heldAfterConnect = nil
                    if (200..<300).contains(m.status) {
                        upgradeToTLS(f)
                        held.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 0, timestamp: timestamp) }
                        feedTCP(f, UnsafeRawBufferPointer(rebasing: bytes[consumed...]), slot: slot, direction: 1, timestamp: timestamp)
                        return
                    }
                    held.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 0, timestamp: timestamp) }
                }
            }
        case .dns:
            let messages = (direction == 0 ? f.dns?.client.feed(bytes) : f.dns?.server.feed(bytes)) ?? []
            for result in messages { handleDNS(result, slot: slot, flowID: f.flowID, direction: direction, timestamp: timestamp) }
        case .ftp, .irc:
            if direction == 0 { watchLogin(f, bytes, slot: slot, timestamp: timestamp) }
        case .unknown:
            guard direction == 0, f.shell != nil else { return }
            if let r = f.shell?.feed(bytes) {
                events.append(AppEvent(slot: slot, flowID: f.flowID, direction: 0, timestamp: timestamp, transaction: .login(r), frame: frame))
            }
            if f.shell?.done == true { f.shell = nil }
        case .smtp, .imap, .pop3:
            if direction == 0 { watchLogin(f, bytes, slot: slot, timestamp: timestamp) }
            // Cleartext until STARTTLS is accepted; then the same stream carries a TLS handshake.
            guard let rest = f.startTLS?.feed(bytes, direction: direction) else { return }
            f.startTLS = nil
            f.login = nil
            upgradeToTLS(f)
            rest.client.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 0, timestamp: timestamp) }
            rest.server.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 1, timestamp: timestamp) }
        default:
            break
        }
    }

    /// Feeds the client's lines to the login watcher; what it found goes out as transactions.
    private func watchLogin(_ f: FlowState, _ bytes: UnsafeRawBufferPointer, slot: Int32, timestamp: Timestamp) {
        f.login?.feed(bytes)
        guard let found = f.login?.take() else { return }
        for r in found {
            events.append(AppEvent(slot: slot, flowID: f.flowID, direction: 0, timestamp: timestamp, transaction: .login(r), frame: frame))
        }
    }

    /// Counts what the flow's parsers hold after a chunk; over the budget, the flow's parsing stops (its buffers go,
    /// the requests it had waiting go out unanswered) and it is counted in `flowsNotParsed`.
    private func account(_ f: FlowState, slot: Int32, timestamp: Timestamp) {
        let held = f.givenUp ? 0 : f.heldBytes
        parserBytes += held - f.charged
        f.charged = held
        guard parserBytes > maximumParserBytes, held > 0 else { return }
        for (request, requestFrame) in zip(f.pendingRequests, f.pendingRequestFrames) {
            events.append(AppEvent(slot: slot, flowID: f.flowID, direction: 0, timestamp: timestamp,
                                   transaction: .http(request: request, response: nil), frame: requestFrame))
        }
        f.pendingRequests = []
        f.pendingRequestFrames = []
        f.pendingBytes = 0
        f.tls = nil
        f.http = nil
        f.dns = nil
        f.quic = nil
        f.quicDone = true
        f.login = nil
        f.shell = nil
        f.heldAfterConnect = nil
        f.probe = ([], [])
        f.decided = true
        f.givenUp = true
        parserBytes -= held
        f.charged = 0
        flowsNotParsed &+= 1
    }

    /// The oldest request waiting for its response, and the packet that completed it.
    private func nextRequest(_ f: FlowState) -> (HTTPMessage?, FrameRef?) {
        guard !f.pendingRequests.isEmpty else { return (nil, nil) }
        let frame = f.pendingRequestFrames.isEmpty ? FrameRef.none : f.pendingRequestFrames.removeFirst()
        let request = f.pendingRequests.removeFirst()
        f.pendingBytes -= request.heldBytes
        return (request, frame.isNone ? nil : frame)
    }


    private func emitTLS(_ f: FlowState, slot: Int32, timestamp: Timestamp) {
        guard !f.tlsEmitted else { return }
        f.tlsEmitted = true
        events.append(AppEvent(
            slot: slot, flowID: f.flowID, direction: 1, timestamp: timestamp,
            transaction: .tls(
                client: f.tls?.client.clientHello, server: f.tls?.server.serverHello, certificate: f.tls?.server.certificate,
                chainLength: f.tls?.server.certificateChainLength ?? 0),
            frame: f.clientHelloFrame))
        f.tls = nil  // everything the event needs is in it: the parsers and their buffers can go
    }

    /// The cleartext protocol handed the stream to TLS (STARTTLS accepted, HTTP CONNECT answered 2xx).
    private func upgradeToTLS(_ f: FlowState) {
        f.upgradedFrom = f.app
        f.app = .tls
        f.tls = TLSState()
    }

    public func streamGap(slot: Int32, flowID: UInt64, direction: Int) {
        guard Int(slot) < flows.count, let f = flows[Int(slot)], f.flowID == flowID else { return }
        if !f.decided {
            // Decide on what came before the hole; nothing after it is glued to it.
            decideTCP(f)
            if !f.decided { f.app = .unknown; f.decided = true }
            let (client, server) = f.probe
            f.probe = ([], [])
            client.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 0, timestamp: .zero) }
            server.withUnsafeBytes { feedTCP(f, $0, slot: slot, direction: 1, timestamp: .zero) }
        }
        if direction == 0 {
            f.tls?.client.gap()
            for m in f.http?.requests.gap() ?? [] {
                f.pendingRequests.append(m)
                f.pendingRequestFrames.append(frame)
                f.pendingBytes += m.heldBytes
            }
            f.dns?.client.gap()
        } else {
            f.tls?.server.gap()
            for m in f.http?.responses.gap() ?? [] {
                let (request, requestFrame) = nextRequest(f)
                events.append(AppEvent(slot: slot, flowID: flowID, direction: 1, timestamp: .zero, transaction: .http(request: request, response: m),
                                       frame: requestFrame ?? frame))
            }
            f.dns?.server.gap()
        }
        account(f, slot: slot, timestamp: .zero)
    }

    // MARK: UDP

    public func datagram(
        _ bytes: UnsafeRawBufferPointer, slot: Int32, flowID: UInt64, direction: Int, clientPort: UInt16, serverPort: UInt16,
        timestamp: Timestamp
    ) {
        let f = state(slot, flowID, clientPort: clientPort, serverPort: serverPort)
        if !f.decided {
            f.decided = true
            if bytes.count >= 5 && bytes[0] & 0xC0 == 0xC0 && [0x0000_0001, 0x6B33_43CF, 0].contains(bytes.be32(1)) {
                f.app = .quic
            } else if [67, 68].contains(serverPort) || [67, 68].contains(clientPort) {
                f.app = .dhcp
            } else if (serverPort == 2123 || clientPort == 2123) && GTPControlMessage.looksLikeGTPC(bytes) {
                f.app = .gtpc
            } else if serverPort == 137 || clientPort == 137 {
                f.app = .nbns  // NetBIOS name service: DNS-shaped, not DNS
            } else if DNSMessage.looksLikeDNS(bytes) {
                f.app = serverPort == 5353 || clientPort == 5353 ? .mdns : serverPort == 5355 || clientPort == 5355 ? .llmnr : .dns
            } else {
                f.app = .unknown
            }
        }
        if f.app == .quic && direction == 0 && !f.quicDone {
            if f.quic == nil { f.quic = QUICState() }
            let found = f.quic?.reader.feed(bytes) == true
            if f.quic?.reader.done == true { f.quicDone = true }
            defer { if f.quicDone { f.quic = nil } }
            if found, let hello = f.quic?.reader.clientHello {
                f.quic = nil
                if let sni = hello.serverName, !f.names.contains(sni) { f.names.append(sni) }
                events.append(AppEvent(
                    slot: slot, flowID: flowID, direction: 0, timestamp: timestamp,
                    transaction: .tls(client: hello, server: nil, certificate: nil, chainLength: 0), frame: frame))
            }
        }
        if f.app == .quic && (f.quic != nil || f.charged != 0) { account(f, slot: slot, timestamp: timestamp) }
        if f.app == .dhcp, let m = DHCPMessage.parse(bytes) {
            if m.isRequest, let mac = m.clientMAC, m.hostname != nil || m.vendorClass != nil {
                let label = DeviceLabel(hostname: m.hostname ?? m.clientFQDN, vendorClass: m.vendorClass)
                let text = (label.hostname?.utf8.count ?? 0) + (label.vendorClass?.utf8.count ?? 0)
                if devices[mac] != nil || tableBudget.take(TableBudget.Cost.dhcpDevice(text)) { devices[mac] = label }
            }
            events.append(AppEvent(slot: slot, flowID: flowID, direction: direction, timestamp: timestamp, transaction: .dhcp(m), frame: frame))
        }
        if f.app == .gtpc {
            for m in GTPControlMessage.parse(bytes) {
                events.append(AppEvent(slot: slot, flowID: flowID, direction: direction, timestamp: timestamp,
                                       transaction: .gtpc(m, subscriber: subscriber(answeredBy: m, in: f)), frame: frame))
            }
        }
        if f.app == .dns || f.app == .mdns || f.app == .llmnr {
            do {
                handleDNS(.success(try DNSMessage.parse(bytes)), slot: slot, flowID: flowID, direction: direction, timestamp: timestamp, app: f.app)
            } catch {
                handleDNS(.failure(error), slot: slot, flowID: flowID, direction: direction, timestamp: timestamp, app: f.app)
            }
        }
    }

    /// Create requests a GTP-C flow keeps waiting for their responses (a core that never answers).
    public static let maximumPendingGTP = 256
    /// GTP-C create requests waiting for their response, per flow (by id) and sequence number: here rather than in
    /// every flow's state, which would grow by a dictionary for all flows.
    private var gtpRequests: [UInt64: [UInt32: GTPControlMessage]] = [:]

    /// Keeps a create request; for the accepted response with its sequence number, the subscriber the request
    /// named, with the addresses and user-plane TEIDs the response gives.
    private func subscriber(answeredBy m: GTPControlMessage, in f: FlowState) -> Subscriber? {
        guard let sequence = m.sequence else { return nil }
        if m.isCreateRequest {
            var pending = gtpRequests.removeValue(forKey: f.flowID) ?? [:]
            if pending.count >= Self.maximumPendingGTP, let oldest = pending.keys.min() { pending[oldest] = nil }
            pending[sequence] = m
            gtpRequests[f.flowID] = pending
            return nil
        }
        guard m.isCreateResponse, let request = gtpRequests[f.flowID]?.removeValue(forKey: sequence), m.accepted,
              !m.endUserAddresses.isEmpty
        else { return nil }
        var s = Subscriber(imsi: request.imsi, msisdn: request.msisdn, imei: request.imei)
        s.apn = request.apn
        s.imeisv = request.imeisv
        s.addresses = m.endUserAddresses
        s.dataTEIDs = request.dataTEIDs + m.dataTEIDs.filter { !request.dataTEIDs.contains($0) }
        return s.imsi != nil || s.msisdn != nil || s.imei != nil ? s : nil
    }

    private func handleDNS(
        _ result: Result<DNSMessage, DNSParseError>, slot: Int32, flowID: UInt64, direction: Int, timestamp: Timestamp,
        app: AppProtocol = .dns
    ) {
        switch result {
        case .success(let m):
            dnsMessages += 1
            names.record(m, at: timestamp)
            events.append(AppEvent(slot: slot, flowID: flowID, direction: direction, timestamp: timestamp, transaction: .dns(m, app), frame: frame))
        case .failure:
            dnsErrors += 1
        }
    }

    // MARK: End of a flow

    /// The flow in `slot` ended: flushes what its parsers hold (a ClientHello never answered, a request never
    /// answered, a body read until close) into events, and returns what the flow event needs.
    public func endFlow(slot: Int32, flowID: UInt64, timestamp: Timestamp) -> AppSummary {
        guard Int(slot) < flows.count, let f = flows[Int(slot)], f.flowID == flowID else { return AppSummary() }
        flows[Int(slot)] = nil
        parserBytes -= f.charged
        if f.app == .gtpc { gtpRequests[flowID] = nil }
        // No packet is being fed: what comes out now names the packets recorded with it, or none.
        frame = .none
        if f.tls?.client.clientHello != nil || f.tls?.server.serverHello != nil { emitTLS(f, slot: slot, timestamp: timestamp) }
        if let r = f.shell?.finish() {
            events.append(AppEvent(slot: slot, flowID: flowID, direction: 0, timestamp: timestamp, transaction: .login(r), frame: frame))
        }
        if f.http != nil {
            for m in f.http?.requests.end() ?? [] {
                f.pendingRequests.append(m)
                f.pendingRequestFrames.append(frame)
            }
            let responses = f.http?.responses.end() ?? []
            for m in responses {
                let (request, requestFrame) = nextRequest(f)
                events.append(AppEvent(slot: slot, flowID: flowID, direction: 1, timestamp: timestamp, transaction: .http(request: request, response: m),
                                       frame: requestFrame ?? .none))
            }
            for (request, requestFrame) in zip(f.pendingRequests, f.pendingRequestFrames) {
                events.append(AppEvent(slot: slot, flowID: flowID, direction: 0, timestamp: timestamp, transaction: .http(request: request, response: nil),
                                       frame: requestFrame))
            }
        }
        return AppSummary(app: f.app, names: f.names, upgradedFrom: f.upgradedFrom)
    }
}

public enum HTTPHost {
    /// The host of a Host header, without port and brackets, lower case.
    public static func strip(_ value: String) -> String {
        let v = value.trimmingSpaces().lowercasedIfNeeded(), u = v.utf8
        if u.first == UInt8(ascii: "["), let close = u.firstIndex(of: UInt8(ascii: "]")) {
            return String(v[u.index(after: u.startIndex)..<close])
        }
        // One colon: a port to drop (more: an IPv6 address without brackets, kept whole).
        if let colon = u.firstIndex(of: UInt8(ascii: ":")), !u[u.index(after: colon)...].contains(UInt8(ascii: ":")) {
            return String(v[..<colon])
        }
        return v
    }

    /// Whether a stripped host is an IP address rather than a name (parsed only when it could be one: it begins
    /// with a digit or holds a colon).
    public static func isAddress(_ host: String) -> Bool {
        guard let first = host.utf8.first, first &- 0x30 < 10 || host.utf8.contains(UInt8(ascii: ":")) else { return false }
        return IPAddress(host) != nil
    }
}

/// DNS over TCP: two-byte length, then the message; several messages per stream. A gap ends parsing (the next
/// length prefix cannot be found reliably).
public struct DNSStreamParser: Sendable {
    private var buffer: [UInt8] = []
    private var stopped = false

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Result<DNSMessage, DNSParseError>] {
        guard !stopped else { return [] }
        buffer.append(contentsOf: bytes)
        var out: [Result<DNSMessage, DNSParseError>] = []
        while buffer.count >= 2 {
            let length = Int(buffer[0]) << 8 | Int(buffer[1])
            guard buffer.count >= 2 + length else { break }
            let result = buffer[2..<(2 + length)].withUnsafeBytes { raw in
                Result { () throws(DNSParseError) -> DNSMessage in try DNSMessage.parse(raw) }
            }
            out.append(result)
            buffer.removeFirst(2 + length)
        }
        return out
    }

    public mutating func gap() {
        stopped = true
        buffer = []
    }

    /// What the parser holds: a message not yet complete.
    public var bufferedBytes: Int { buffer.count }
}

/// Watches an SMTP, IMAP or POP3 conversation for an accepted STARTTLS (STLS for POP3): the client's command, then
/// the server's positive answer. Returns the bytes after that answer in each direction, which start the TLS handshake.
struct StartTLSWatcher {
    let app: AppProtocol
    private var client: [UInt8] = []
    private var server: [UInt8] = []
    private var asked = false
    private var tag = ""

    init(app: AppProtocol) { self.app = app }

    mutating func feed(_ bytes: UnsafeRawBufferPointer, direction: Int) -> (client: [UInt8], server: [UInt8])? {
        // A client that starts a TLS handshake after the greeting, without asking (implicit TLS on 465/993/995
        // behind a cleartext banner): follow it.
        if direction == 0 && client.isEmpty && bytes.count >= 3 && bytes[0] == 0x16 && bytes[1] == 0x03 && bytes[2] <= 0x04 {
            return (Array(bytes), [])
        }
        if direction == 0 {
            client.append(contentsOf: bytes)
            while let lf = client.firstIndex(of: 0x0A) {
                let line = String(decoding: client[..<lf], as: UTF8.self).trimmingCharacters(in: "\r ").uppercased()
                if asked { break }  // bytes after the command wait for the answer (they are TLS if it is accepted)
                client.removeFirst(lf + 1)
                let words = line.split(separator: " ")
                if line == "STARTTLS" || line == "STLS" || (words.count == 2 && words[1] == "STARTTLS") {
                    asked = true
                    tag = words.count == 2 ? String(words[0]) : ""
                }
            }
            if client.count > 65_536 { client.removeFirst(client.count - 65_536) }
        } else {
            server.append(contentsOf: bytes)
            while let lf = server.firstIndex(of: 0x0A) {
                let line = String(decoding: server[..<lf], as: UTF8.self).uppercased()
                server.removeFirst(lf + 1)
                guard asked else { continue }
                let accepted = line.hasPrefix("220") || line.hasPrefix("+OK") || (!tag.isEmpty && line.hasPrefix(tag + " OK"))
                if line.hasPrefix("220-") { continue }
                if accepted { return (client, server) }
                asked = false  // refused: keep watching
            }
            if server.count > 65_536 { server.removeFirst(server.count - 65_536) }
        }
        return nil
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let l = s.last, set.contains(l) { s.removeLast() }
        while let f = s.first, set.contains(f) { s.removeFirst() }
        return String(s)
    }
}
