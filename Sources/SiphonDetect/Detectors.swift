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
                for (name, value) in request.headers
                where HTTPMessage.sameHeaderName(name, "User-Agent") && !x.userAgents.contains(value) && x.userAgents.count < 8 {
                    x.userAgents.append(value)
                }
            }
            add(&facts[f.id, default: FlowFacts()])
            guard isDevice(f), !AddressScope.isLocal(f.serverAddress), configuration.on(.identifierLeak) else { return }
            scanHTTP(request, flow: f, timestamp: timestamp)
        case .dns(let message, let app):
            guard app == .dns, !message.isResponse, direction == 0, let id = link.device(of: f) else { return }
            for q in message.questions { dnsQuery(q, flow: f, device: id, timestamp: timestamp) }
        case .dhcp(let m):
            dhcp(m, flow: f, direction: direction, timestamp: timestamp)
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

    /// Headers that carry no identifier of the device's own.
    static let unscannedHeaders = ["host", "content-length", "accept", "accept-encoding", "connection", "content-type"]

    /// Identifiers found in what the device sent in a flow (an HTTP part, raw payload, a DNS name).
    public func identifiersFound(_ matches: [IdentifierMatch], flow f: Flow, location: String, timestamp: Timestamp, viaDNS: String? = nil) {
        guard configuration.on(.identifierLeak), !matches.isEmpty else { return }
        let device = f.clientAddress, endpoint = f.serverAddress
        let id = identity(mac: f.clientMAC, address: device)
        let destination = viaDNS == nil ? geo.map { $0.lookup(endpoint) } : nil
        let foreign = destination?.scope == .foreign || viaDNS != nil
        var byKind: [IdentifierKind: [IdentifierMatch]] = [:]
        for m in matches { byKind[m.kind, default: []].append(m) }
        for kind in IdentifierKind.allCases {
            guard let list = byKind[kind] else { continue }
            let key = IdentifierKey(device: id, endpoint: viaDNS ?? endpoint.description, kind: kind)
            guard identifierRaised.insert(key).inserted else { continue }
            let m = list.first { $0.known } ?? list[0]
            let strong = kind.isStrong || list.contains(where: \.known)
            let severity: Severity = strong ? (foreign ? .high : .medium) : (foreign ? .medium : .low)
            let values = list.reduce(into: [String]()) { if !$0.contains($1.value) { $0.append($1.value) } }
            let how = m.encoding == "plain" ? "" : " (\(m.encoding))"
            let whereTo = viaDNS.map { "in a DNS query for a name under \($0) (resolver \(endpoint))" }
                ?? "to \(endpoint)\(placeText(destination))"
            raised.append(Alert(
                category: .identifierLeak, rule: "siphon.identifier-leak.\(kind.rawValue)", severity: severity,
                message: "\(device) sent \(m.known ? "its" : kind.article) \(kind.label) \(m.value)\(how) in clear \(whereTo)",
                timestamp: timestamp, flow: f, device: device, deviceID: id,
                destination: destination?.scope == .local ? nil : destination, evidence: [
                    ("kind", .string(kind.rawValue)), ("value", .string(m.value)), ("encoding", .string(m.encoding)),
                    ("known", .string(m.known ? "yes" : "no")), ("where", .string(location)),
                    ("offset", .int(m.offset)), ("length", .int(m.length)), ("excerpt", .string(m.excerpt)),
                    ("values", .strings(values)), ("matches", .int(list.count)),
                ] + (viaDNS.map { [("domain", EvidenceValue.string($0))] } ?? [])))
        }
    }

    func placeText(_ g: GeoInfo?) -> String {
        guard let g else { return "" }
        let place = [g.country, g.asOrganization].compactMap { $0 }
        return place.isEmpty ? "" : " [\(place.joined(separator: ", "))]"
    }

    // MARK: DNS

    private func dnsQuery(_ q: DNSQuestion, flow f: Flow, device: DeviceID, timestamp: Timestamp) {
        // The DNS parser writes names in lower case already.
        let name = q.name
        let registered: String?
        if let cached = registeredDomains[name] {
            registered = cached
        } else {
            registered = suffixes.registeredDomain(name)
            if registeredDomains.count >= 8192 { registeredDomains.removeAll(keepingCapacity: true) }
            registeredDomains[name] = .some(registered)
        }
        guard let domain = registered ?? (configuration.on(.dnsTunnel) ? nil : name) else { return }
        if configuration.on(.identifierLeak), name.utf8.count > domain.utf8.count + 6 {
            var matches: [IdentifierMatch] = []
            let sub = Array(name.utf8.dropLast(domain.utf8.count + 1))
            identifierScanner.scan(sub, into: &matches)
            if !matches.isEmpty { identifiersFound(matches, flow: f, location: "dns-query \(name)", timestamp: timestamp, viaDNS: domain) }
        }
        guard configuration.on(.dnsTunnel) else { return }
        let c = configuration.dnsTunnel
        let key = DomainKey(device: device, domain: domain)
        var t = dnsDomains.removeValue(forKey: key) ?? DNSDomainTotals(first: timestamp, last: timestamp)
        t.queries += 1
        t.last = timestamp
        if q.type == 16 || q.type == 10 { t.txtQueries += 1 }
        // Cut on UTF-8 counts (`String.count` walks graphemes).
        let subdomain = name.utf8.count > domain.utf8.count
            ? String(decoding: name.utf8.dropLast(domain.utf8.count + 1), as: UTF8.self) : ""
        if !subdomain.isEmpty, t.names.count < c.maximumNames, t.names.insert(subdomain).inserted {
            let labels = subdomain.split(separator: ".")
            var longest = 0
            for l in labels where l.utf8.count > longest { longest = l.utf8.count }
            let bytes = Array(subdomain.utf8).filter { $0 != UInt8(ascii: ".") }
            let entropy = DNSNames.entropy(bytes)
            t.entropySum += entropy
            t.subdomainBytes += bytes.count
            t.longestLabel = max(t.longestLabel, longest)
            let encoded = subdomain.utf8.count >= c.longSubdomain
                || labels.contains { $0.utf8.count >= 16 && DNSNames.entropy($0.utf8) >= c.entropy }
            if encoded {
                t.encodedNames += 1
                if t.examples.count < 3 { t.examples.append(name) }
            }
        }
        if !t.raised, t.names.count >= c.minimumNames {
            let fraction = Double(t.encodedNames) / Double(t.names.count)
            let byNames = fraction >= c.encodedFraction
            let byTXT = t.txtQueries >= c.txtQueries
            if byNames || byTXT {
                t.raised = true
                let meanLength = Double(t.subdomainBytes) / Double(t.names.count)
                raised.append(Alert(
                    category: .dnsTunnel, rule: "siphon.dns-tunnel", severity: .medium,
                    message: "\(f.clientAddress) sent \(t.names.count) distinct names under \(domain) "
                        + "(\(Int((fraction * 100).rounded())) % encoded-looking, \(t.txtQueries) TXT/NULL queries): DNS used as a data channel",
                    timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: device, destination: nil, evidence: [
                        ("domain", .string(domain)), ("unique_names", .int(t.names.count)), ("queries", .int(t.queries)),
                        ("encoded_names", .int(t.encodedNames)), ("encoded_fraction", .double(fraction)),
                        ("txt_null_queries", .int(t.txtQueries)), ("mean_subdomain_length", .double(meanLength)),
                        ("longest_label", .int(t.longestLabel)), ("mean_entropy_bits", .double(t.entropySum / Double(t.names.count))),
                        ("subdomain_bytes", .int(t.subdomainBytes)), ("examples", .strings(t.examples)),
                        ("first_query", .time(t.first)), ("reason", .string(byNames ? "encoded-names" : "txt-volume")),
                    ]))
            }
        }
        dnsDomains[key] = t
    }

    // MARK: TLS

    func tlsAnomalies(_ e: EndedFlow, _ x: FlowFacts, _ t: inout EndpointTotals, _ pair: Pair, foreign: Bool) {
        guard x.ja3 != nil || x.serverHelloSeen else { return }
        var found: [(String, Severity, String, [(String, EvidenceValue)])] = []
        let c = configuration.tls
        if let cert = x.certificate {
            let certEvidence: [(String, EvidenceValue)] = [
                ("subject", .string(cert.subject)), ("issuer", .string(cert.issuer)), ("serial", .string(cert.serial)),
                ("sha256", .string(cert.sha256)), ("cert_names", .strings(cert.dnsNames)),
            ]
            if cert.selfIssued {
                found.append(("self-signed", foreign ? .medium : .low, "presented a self-signed certificate (\(cert.subject))", certEvidence))
            }
            if let sni = x.sni, !Self.covers(cert, sni) {
                found.append(("name-mismatch", foreign ? .medium : .low,
                              "presented a certificate for \(cert.dnsNames.first ?? cert.subjectCommonName ?? cert.subject) to a client asking for \(sni)",
                              [("sni", .string(sni))] + certEvidence))
            }
            if let end = cert.notAfter, end < e.flow.start {
                found.append(("expired", .low, "presented a certificate that expired on \(end.rfc3339)", certEvidence))
            }
        }
        if x.ja3 != nil, x.sni == nil, foreign, c.noSNIForeign {
            found.append(("no-sni", .low, "was contacted over TLS without a server name (SNI)",
                          [("ja3", .string(x.ja3 ?? "")), ("ja4", .string(x.ja4 ?? ""))]))
        }
        if x.serverHelloSeen, let v = x.tlsVersion, c.obsoleteVersions.contains(v) {
            found.append(("obsolete-version", .low, "negotiated \(FlowFacts.versionName(v))",
                          [("version", .string(FlowFacts.versionName(v))), ("ja3s", .string(x.ja3s ?? ""))]))
        }
        for (kind, severity, what, evidence) in found where t.raised.insert("tls-anomaly:" + kind).inserted {
            raised.append(Alert(
                category: .tlsAnomaly, rule: "siphon.tls-anomaly.\(kind)", severity: severity,
                message: "\(describe(pair.endpoint, t)) \(what)", timestamp: e.flow.end, flow: e.flow, device: e.flow.clientAddress,
                deviceID: pair.device, destination: e.destination, evidence: [("anomaly", .string(kind))] + evidence))
        }
    }

    /// Whether a certificate's names (SANs, else the subject CN) cover `name`; `*.` covers one label.
    static func covers(_ cert: X509Summary, _ name: String) -> Bool {
        let n = name.lowercased()
        let names = cert.dnsNames.isEmpty ? cert.subjectCommonName.map { [$0] } ?? [] : cert.dnsNames
        return names.contains { pattern in
            let p = pattern.lowercased()
            if p == n { return true }
            guard p.hasPrefix("*."), let dot = n.firstIndex(of: ".") else { return false }
            return n[n.index(after: dot)...] == p.dropFirst(2)
        }
    }

    // MARK: Rules

    func evaluateRules(_ c: RuleContext, device: DeviceID) {
        let f = c.flow.flow
        // By index: `enumerated()` copied every rule (strings and closures: retains and releases) for each flow.
        for i in rules.indices where rules[i].matches(c) {
            let r = rules[i]
            let key: RuleKey
            switch r.per {
            case .endpoint: key = RuleKey(rule: i, device: device, endpoint: f.serverAddress, flow: nil)
            case .flow: key = RuleKey(rule: i, device: device, endpoint: nil, flow: f.id)
            case .device: key = RuleKey(rule: i, device: device, endpoint: nil, flow: nil)
            }
            guard ruleFired.insert(key).inserted else { continue }
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
