internal import Foundation
public import SiphonCore
public import SiphonFlows
internal import SiphonGeo
public import SiphonApp

/// The detectors fed by transactions and payloads as they are parsed (identifier leaks, DNS tunnels), the TLS
/// anomalies judged when a flow ends, and the declarative rules.
extension DetectionEngine {
    // MARK: Transactions

    /// Takes one parsed transaction of a live or just-ended flow.
    public func transaction(_ t: AppTransaction, flow f: Flow, direction: Int, timestamp: Timestamp) {
        switch t {
        case .tls(let client, let server, let certificate, _):
            // Updated in place through the dictionary's modify accessor (one lookup, no copy of the arrays).
            func add(_ x: inout FlowFacts) {
                if let client {
                    x.sni = client.serverName
                    x.ja3 = client.ja3
                    x.ja4 = client.ja4
                    if x.tlsVersion == nil { x.tlsVersion = client.version }
                }
                if let server {
                    x.ja3s = server.ja3s
                    x.tlsVersion = server.version
                    x.serverHelloSeen = true
                }
                if let certificate { x.certificate = certificate }
            }
            add(&facts[f.id, default: FlowFacts()])
        case .http(let request?, _):
            func add(_ x: inout FlowFacts) {
                x.httpBodyBytes += request.bodyLength
                if x.httpMethods.count < 16 { x.httpMethods.append(request.method) }
                if x.httpURIs.count < 16 { x.httpURIs.append(request.uri) }
                var host: String?
                var referer: String?
                for (name, value) in request.headers {
                    if HTTPMessage.sameHeaderName(name, "Referer") {
                        referer = value
                    } else if HTTPMessage.sameHeaderName(name, "User-Agent") {
                        if !x.userAgents.contains(value) && x.userAgents.count < 8 { x.userAgents.append(value) }
                    } else if HTTPMessage.sameHeaderName(name, "Cookie") {
                        x.httpCookieBytes = max(x.httpCookieBytes, value.utf8.count)
                    } else if HTTPMessage.sameHeaderName(name, "Host") {
                        host = value
                        if let c = value.utf8.first(where: { $0 != 0x20 }), c &- 0x30 < 10 || c == UInt8(ascii: "["),
                           HTTPHost.isAddress(HTTPHost.strip(value)) {
                            // (Stripped and parsed only when it may be an address: names begin with a letter.)
                            x.httpHostIsAddress = true
                        }
                    }
                }
                if let referer, let host, Self.refersToItself(referer, host: host, uri: request.uri) { x.httpRefererSelf = true }
            }
            add(&facts[f.id, default: FlowFacts()])
            guard isDevice(f), !isLocal(f.serverAddress), configuration.on(.identifierLeak) else { return }
            scanHTTP(request, flow: f, timestamp: timestamp)
            if let r = HTTPCredentials.find(request) { loginFound(r, flow: f, timestamp: timestamp) }
            if request.bodyLength > 0, let info = HostInfo.find(request.bodyPrefix) {
                credentials.hostInfo(info, flow: f, device: identity(of: f), destination: geo.map { $0.lookup(f.serverAddress) },
                                     timestamp: timestamp, into: &raised)
            }
        case .login(let r) where r.kind == .session:
            guard isDevice(f), !isLocal(f.serverAddress), configuration.on(.c2Channel) else { return }
            c2Channels.irc(r, flow: f, device: identity(of: f), destination: geo.map { $0.lookup(f.serverAddress) },
                           timestamp: timestamp, into: &raised)
        case .login(let r) where r.kind == .shell:
            // Wherever the listener is: a shell served to the lab's own network is one too.
            guard isDevice(f), configuration.on(.c2Channel) else { return }
            c2Channels.shell(r, flow: f, device: identity(of: f), destination: geo.map { $0.lookup(f.serverAddress) },
                             timestamp: timestamp, into: &raised)
        case .login(let r):
            guard isDevice(f), !isLocal(f.serverAddress), configuration.on(.identifierLeak) else { return }
            loginFound(r, flow: f, timestamp: timestamp)
        case .dns(let message, let app):
            guard app == .dns, message.isResponse == (direction == 1), let id = link.device(of: f) else { return }
            if !message.isResponse {
                for q in message.questions { dnsQuery(q, flow: f, device: id, timestamp: timestamp) }
            } else if findsGeneratedNames, message.rcode == 0 || message.rcode == 3, let q = message.questions.first,
                      case let found = dnsTunnel.domain(of: q.name), let domain = found.registered, found.listed {
                nxdomains.answer(name: q.name, domain: domain, missing: message.rcode == 3, flow: f, device: id,
                                 timestamp: timestamp, into: &raised)
            }
        case .dhcp(let m):
            dhcp(m, flow: f, direction: direction, timestamp: timestamp)
        case .gtpc(_, let subscriber):
            // Both ends of GTP-C are core nodes (MME, SGW, SGSN, GGSN), not devices.
            link.mark(mac: f.clientMAC, .mobileCore)
            link.mark(mac: f.serverMAC, .mobileCore)
            if let subscriber {
                link.subscribe(subscriber)
                learn(.imsi, subscriber.imsi)
                learn(.imei, subscriber.imei)
                learn(.phone, subscriber.msisdn)
            }
        default:
            break
        }
    }

    /// What DHCP says of the link: the lease a client took (its MAC and address), the server, the routers.
    private func dhcp(_ m: DHCPMessage, flow f: Flow, direction: Int, timestamp: Timestamp) {
        let sender = direction == 0 ? f.clientMAC : f.serverMAC
        if !m.isRequest {
            link.mark(mac: sender, .dhcpServer)
            if !m.routers.isEmpty { link.routers(m.routers) }
        }
        // An ACK gives the lease; a REQUEST names the address it asks for (the ACK may not be captured).
        if m.messageType == 5, let mac = m.clientMAC, m.yourIP.low != 0 {
            link.observe(mac: mac, address: m.yourIP, at: timestamp, source: .dhcp)
        } else if m.isRequest, m.messageType == 3, let mac = m.clientMAC, let ip = m.requestedIP ?? (m.clientIP.low != 0 ? m.clientIP : nil) {
            link.observe(mac: mac, address: ip, at: timestamp, source: .dhcp)
        }
    }

    /// Whether a request's Referer names the request itself (`http://<its Host>/<its URI>`, ports aside): no
    /// browser sends that for a form it did not load from there; Emotet's 2020 POST check-in did.
    static func refersToItself(_ referer: String, host: String, uri: String) -> Bool {
        var r = Substring(referer.trimmingSpaces())
        if r.hasPrefix("http://") { r = r.dropFirst(7) } else if r.hasPrefix("https://") { r = r.dropFirst(8) } else { return false }
        guard let slash = r.firstIndex(of: "/") else { return false }
        return r[slash...] == uri && HTTPHost.strip(String(r[..<slash])) == HTTPHost.strip(host)
    }

    private func scanHTTP(_ request: HTTPMessage, flow f: Flow, timestamp: Timestamp) {
        var matches: [IdentifierMatch] = []
        func part(_ location: @autoclosure () -> String, _ bytes: UnsafeRawBufferPointer) {
            matches.removeAll(keepingCapacity: true)
            identifierScanner.scan(bytes, into: &matches)
            // Form and query encoding hide '+' and separators: scan the decoded text too.
            if bytes.contains(UInt8(ascii: "%")), let decoded = String(decoding: bytes, as: UTF8.self).removingPercentEncoding {
                identifierScanner.scan(Array(decoded.utf8), into: &matches)
            }
            if !matches.isEmpty { identifiersFound(matches, flow: f, location: location(), timestamp: timestamp) }
        }
        // Scanned in place (no copy of each header).
        var uri = request.uri
        uri.withUTF8 { part("http-uri", UnsafeRawBufferPointer($0)) }
        for (name, value) in request.headers {
            if Self.unscannedHeaders.contains(where: { HTTPMessage.sameHeaderName(name, $0) }) { continue }
            var v = value
            v.withUTF8 { part("http-header \(name)", UnsafeRawBufferPointer($0)) }
        }
        if !request.bodyPrefix.isEmpty { request.bodyPrefix.withUnsafeBytes { part("http-body", $0) } }
    }

    private func loginFound(_ r: LoginRecord, flow f: Flow, timestamp: Timestamp) {
        credentials.found(r, flow: f, device: identity(of: f), destination: geo.map { $0.lookup(f.serverAddress) },
                          timestamp: timestamp, into: &raised)
    }

    /// Headers that carry no identifier of the device's own.
    static let unscannedHeaders = ["host", "content-length", "accept", "accept-encoding", "connection", "content-type"]

    /// Identifiers found in what the device sent in a flow (an HTTP part, raw payload, a DNS name).
    public func identifiersFound(_ matches: [IdentifierMatch], flow f: Flow, location: String, timestamp: Timestamp, viaDNS: String? = nil) {
        guard configuration.on(.identifierLeak), !matches.isEmpty else { return }
        let destination = viaDNS == nil ? geo.map { $0.lookup(f.serverAddress) } : nil
        identifiers.found(matches, flow: f, device: identity(of: f), location: location,
                          timestamp: timestamp, destination: destination, viaDNS: viaDNS, into: &raised)
    }

    // MARK: DNS

    private func dnsQuery(_ q: DNSQuestion, flow f: Flow, device: DeviceID, timestamp: Timestamp) {
        // The DNS parser writes names in lower case already.
        let name = q.name
        let (registered, listed) = dnsTunnel.domain(of: name)
        if let domain = registered, configuration.on(.identifierLeak), name.utf8.count > domain.utf8.count + 6 {
            var matches: [IdentifierMatch] = []
            let sub = Array(name.utf8.dropLast(domain.utf8.count + 1))
            identifierScanner.scan(sub, into: &matches)
            if !matches.isEmpty { identifiersFound(matches, flow: f, location: "dns-query \(name)", timestamp: timestamp, viaDNS: domain) }
        }
        // A name under no public suffix (dnscat2's direct mode: dnscat.<hex>.<hex>, whose last label changes with
        // every query) counts under one pseudo-domain per device: no registered domain groups those queries.
        if configuration.on(.dnsTunnel), let domain = listed ? registered : DNSTunnelDetector.unlisted {
            dnsTunnel.query(q, domain: domain, flow: f, device: device, timestamp: timestamp, into: &raised)
        }
    }

    // MARK: Rules

    func evaluateRules(_ c: RuleContext, device: DeviceID) {
        let f = c.flow.flow
        // By index: `enumerated()` copied every rule (strings and closures: retains and releases) for each flow.
        let has = RuleCondition.Needs.of(c)
        for i in rules.indices where has.isSuperset(of: rules[i].needs) && rules[i].matches(c) {
            let r = rules[i]
            // A flow ends once: its firings need no memory. Per endpoint or device, a new firing takes its share
            // of the tables' budget (beyond it, it fires again for that key rather than be forgotten).
            if r.per != .flow {
                let key = RuleKey(rule: i, device: device, endpoint: r.per == .endpoint ? f.serverAddress : nil)
                guard tableBudget.firstTime(key, in: &ruleFired, cost: TableBudget.Cost.ruleFiring) else { continue }
            }
            var evidence: [(String, EvidenceValue)] = [("rule_location", .string(r.location))]
            for name in r.condition.fieldNames where !evidence.contains(where: { $0.0 == name }) {
                guard let v = RuleField.all[name]?.get(c) else { continue }
                evidence.append((name, v.evidence))
            }
            raised.append(Alert(
                category: r.category, rule: r.id, severity: r.severity, message: r.render(c), timestamp: f.end, flow: f,
                device: f.clientAddress, deviceID: device, destination: c.flow.destination, evidence: evidence))
        }
    }
}

struct IdentifierKey: Hashable {
    var device: DeviceID
    var endpoint: String
    var kind: IdentifierKind
}

extension IdentifierKind {
    var article: String { self == .imei || self == .imsi || self == .iccid ? "an" : "a" }
    var label: String {
        switch self {
        case .imei: "IMEI"
        case .imsi: "IMSI"
        case .iccid: "ICCID"
        case .phone: "phone number"
        case .mac: "MAC address"
        case .location: "location"
        case .serial: "serial number"
        case .other: "identifier"
        }
    }
}

extension FieldValue {
    var evidence: EvidenceValue {
        switch self {
        case .int(let v): .int(v)
        case .double(let v): .double(v)
        case .string(let v): .string(v)
        case .strings(let v): .strings(v)
        case .bool(let v): .string(v ? "true" : "false")
        case .address(let v): .string(v.description)
        }
    }
}

extension RuleCondition {
    /// The fields a condition tests, in order.
    var fieldNames: [String] {
        switch self {
        case .all(let cs), .any(let cs): cs.flatMap(\.fieldNames)
        case .not(let c): c.fieldNames
        case .test(let f, _, _): [f.name]
        }
    }
}
