public import SiphonCore
public import SiphonFlows
public import SiphonGeo
public import SiphonApp

// MARK: identifier-leak

/// `identifier-leak`: identifiers the scanner found in what a device sent in clear (HTTP parts, raw payload, DNS
/// names): high for a handset identifier or a known one abroad, medium at home; weaker kinds one step lower.
/// Once per device × endpoint (or DNS domain) × kind.
public struct IdentifierLeakDetector {
    /// Device × endpoint (or DNS domain) × kind already reported.
    private var raisedKeys: Set<IdentifierKey> = []

    public init() {}

    /// `destination`: the endpoint's place (nil for a DNS query, `viaDNS` then names the registered domain).
    public mutating func found(
        _ matches: [IdentifierMatch], flow f: Flow, device id: DeviceID, location: String, timestamp: Timestamp,
        destination: GeoInfo?, viaDNS: String? = nil, into alerts: inout [Alert]
    ) {
        let device = f.clientAddress, endpoint = f.serverAddress
        let foreign = destination?.scope == .foreign || viaDNS != nil
        var byKind: [IdentifierKind: [IdentifierMatch]] = [:]
        for m in matches { byKind[m.kind, default: []].append(m) }
        for kind in IdentifierKind.allCases {
            guard let list = byKind[kind] else { continue }
            let key = IdentifierKey(device: id, endpoint: viaDNS ?? endpoint.description, kind: kind)
            guard raisedKeys.insert(key).inserted else { continue }
            let m = list.first { $0.known } ?? list[0]
            let strong = kind.isStrong || list.contains(where: \.known)
            let severity: Severity = strong ? (foreign ? .high : .medium) : (foreign ? .medium : .low)
            let values = list.reduce(into: [String]()) { if !$0.contains($1.value) { $0.append($1.value) } }
            let how = m.encoding == "plain" ? "" : " (\(m.encoding))"
            let whereTo = viaDNS.map { "in a DNS query for a name under \($0) (resolver \(endpoint))" }
                ?? "to \(endpoint)\(Self.placeText(destination))"
            alerts.append(Alert(
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

    static func placeText(_ g: GeoInfo?) -> String {
        guard let g else { return "" }
        let place = [g.country, g.asOrganization].compactMap { $0 }
        return place.isEmpty ? "" : " [\(place.joined(separator: ", "))]"
    }
}

// MARK: dns-tunnel

/// `dns-tunnel` (medium): per device × registered domain, the distinct names queried under it, how many look
/// encoded (long, or a long high-entropy label) and the TXT/NULL volume; raised once per device × domain.
public struct DNSTunnelDetector {
    public let configuration: DNSTunnelConfiguration
    let suffixes: PublicSuffixList
    struct DomainKey: Hashable {
        var device: DeviceID
        var domain: String
    }
    private var domains: [DomainKey: DNSDomainTotals] = [:]
    /// Shared with the other detectors' tables (`DetectionEngine.tableBudget`): a new domain and each distinct name
    /// kept under it are charged; a domain that does not fit is not followed, a name that does not is not counted.
    var budget = TableBudget()
    /// Registered domains of recent query names (most queries repeat a name), with whether their top-level label
    /// is listed: one lookup answers both for a query and for its answer.
    private var registeredDomains: [String: (registered: String?, listed: Bool)] = [:]

    /// The pseudo-domain of names under no public suffix (an unlisted top-level label).
    public static let unlisted = "(no public suffix)"

    public init(_ c: DNSTunnelConfiguration, suffixes: PublicSuffixList) {
        configuration = c
        self.suffixes = suffixes
    }

    /// The registered domain of a query name (public suffix list) and whether its top-level label is a listed one,
    /// cached for the names of the last 8,192 queries.
    public mutating func domain(of name: String) -> (registered: String?, listed: Bool) {
        if let cached = registeredDomains[name] { return cached }
        let found = (registered: suffixes.registeredDomain(name), listed: suffixes.listsTopLevel(name))
        if registeredDomains.count >= 8192 { registeredDomains.removeAll(keepingCapacity: true) }
        registeredDomains[name] = found
        return found
    }


    /// A query the device sent for a name under `domain`.
    public mutating func query(
        _ q: DNSQuestion, domain: String, flow f: Flow, device: DeviceID, timestamp: Timestamp, into alerts: inout [Alert]
    ) {
        // The domain's totals updated in place: one lookup of the key (a remove and a set hashed its name twice).
        let budget = self.budget, c = configuration
        func update(_ slot: inout DNSDomainTotals?) {
            if case .none = slot {
                guard budget.take(TableBudget.Cost.dnsDomain(domain)) else { return }
                slot = DNSDomainTotals(first: timestamp, last: timestamp)
            }
            Self.count(q, in: &slot!, domain: domain, flow: f, device: device, timestamp: timestamp, configuration: c,
                       budget: budget, into: &alerts)
        }
        update(&domains[DomainKey(device: device, domain: domain)])
    }

    /// Counts a query in its domain's totals; an alert when they make a channel (medium) or it carried enough (high).
    private static func count(
        _ q: DNSQuestion, in t: inout DNSDomainTotals, domain: String, flow f: Flow, device: DeviceID, timestamp: Timestamp,
        configuration c: DNSTunnelConfiguration, budget: TableBudget, into alerts: inout [Alert]
    ) {
        let name = q.name
        t.queries += 1
        t.last = timestamp
        if q.type == 16 || q.type == 10 { t.txtQueries += 1 }
        // Cut on UTF-8 counts (`String.count` walks graphemes); under no public suffix, the whole name.
        let subdomain = domain == Self.unlisted ? name : name.utf8.count > domain.utf8.count
            ? String(decoding: name.utf8.dropLast(domain.utf8.count + 1), as: UTF8.self) : ""
        if !subdomain.isEmpty, t.names.count < c.maximumNames, !t.names.contains(subdomain),
           budget.take(TableBudget.Cost.dnsName(subdomain)) {
            t.names.insert(subdomain)
            // One walk of the name's bytes: its labels' lengths, a long label's entropy (no arrays, no substrings).
            var text = subdomain
            let (bytes, longest, entropy, encodedLabel) = text.withUTF8 { u in
                let dot = UInt8(ascii: ".")
                var longest = 0, start = 0, dots = 0, encodedLabel = false
                for i in 0...u.count where i == u.count || u[i] == dot {
                    let length = i - start
                    if length > longest { longest = length }
                    if !encodedLabel, length >= 16, DNSNames.entropy(UnsafeBufferPointer(rebasing: u[start..<i])) >= c.entropy {
                        encodedLabel = true
                    }
                    if i < u.count { dots += 1 }
                    start = i + 1
                }
                return (u.count - dots, longest, DNSNames.entropy(u.lazy.filter { $0 != dot }), encodedLabel)
            }
            t.entropySum += entropy
            t.subdomainBytes += bytes
            t.longestLabel = max(t.longestLabel, longest)
            if subdomain.utf8.count >= c.longSubdomain || encodedLabel {
                t.encodedNames += 1
                t.encodedBytes += bytes
                if t.examples.count < 3 { t.examples.append(name) }
            }
        }
        guard t.raised != .high, t.names.count >= c.minimumNames else { return }
        let fraction = Double(t.encodedNames) / Double(t.names.count)
        let byNames = fraction >= c.encodedFraction
        guard byNames || t.txtQueries >= c.txtQueries else { return }
        // Medium once it is a channel; high (a second alert if it was medium) once the encoded names carried
        // `highBytes`: data has left, not only a channel been opened.
        let severity: Severity = t.encodedBytes >= c.highBytes ? .high : .medium
        guard t.raised.map({ $0 < severity }) ?? true else { return }
        t.raised = severity
        let meanLength = Double(t.subdomainBytes) / Double(t.names.count)
        alerts.append(Alert(
            category: .dnsTunnel, rule: "siphon.dns-tunnel", severity: severity,
            message: "\(f.clientAddress) sent \(t.names.count) distinct names \(domain == Self.unlisted ? "with no public suffix" : "under " + domain) "
                + "(\(Int((fraction * 100).rounded())) % encoded-looking, \(t.txtQueries) TXT/NULL queries): DNS used as a data channel",
            timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: device, destination: nil, evidence: [
                ("domain", .string(domain)), ("unique_names", .int(t.names.count)), ("queries", .int(t.queries)),
                ("encoded_names", .int(t.encodedNames)), ("encoded_fraction", .double(fraction)),
                ("txt_null_queries", .int(t.txtQueries)), ("mean_subdomain_length", .double(meanLength)),
                ("longest_label", .int(t.longestLabel)), ("mean_entropy_bits", .double(t.entropySum / Double(t.names.count))),
                ("subdomain_bytes", .int(t.subdomainBytes)), ("encoded_bytes", .int(t.encodedBytes)), ("examples", .strings(t.examples)),
                ("first_query", .time(t.first)), ("reason", .string(byNames ? "encoded-names" : "txt-volume")),
            ]))
    }
}

// MARK: identifier-leak: credentials, mail, files, host data

/// `identifier-leak` of kinds `credential` (a user's secret sent in clear: SMTP AUTH, POP3/FTP USER and PASS, IMAP
/// LOGIN, HTTP Basic, a form's password field), `mail-exfil` (an SMTP session that sends a mail with attachments to
/// a free-mail address: how infostealers such as Agent Tesla deliver what they took), `file-upload` (a file
/// stored over FTP abroad) and `host-info` (an upload describing the machine: `HostInfo`). The message masks a
/// secret; the evidence keeps it whole. Once per device × endpoint × kind.
public struct CredentialLeakDetector {
    struct Key: Hashable {
        var device: DeviceID
        var endpoint: IPAddress
        var kind: String
    }
    private var raisedKeys: Set<Key> = []
    var budget = TableBudget()

    /// Free-mail domains (the registered domain of a recipient): where stolen data is mailed to.
    public static let freeMail: Set<String> = [
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.fr", "yahoo.co.uk", "ymail.com", "outlook.com", "hotmail.com",
        "hotmail.fr", "live.com", "msn.com", "aol.com", "gmx.com", "gmx.net", "gmx.de", "web.de", "mail.com", "mail.ru",
        "inbox.ru", "bk.ru", "list.ru", "yandex.ru", "yandex.com", "ya.ru", "rambler.ru", "qq.com", "163.com", "126.com",
        "yeah.net", "sina.com", "sohu.com", "protonmail.com", "proton.me", "tutanota.com", "zoho.com", "icloud.com",
        "me.com", "laposte.net", "orange.fr", "free.fr", "sfr.fr", "naver.com", "daum.net", "rediffmail.com",
    ]

    public init() {}

    public mutating func found(
        _ r: LoginRecord, flow f: Flow, device id: DeviceID, destination: GeoInfo?, timestamp: Timestamp, into alerts: inout [Alert]
    ) {
        let foreign = destination?.scope == .foreign
        let device = f.clientAddress, endpoint = f.serverAddress
        let place = IdentifierLeakDetector.placeText(destination)
        let protocolName = r.app.uppercased()
        var kind: String, severity: Severity, message: String
        var evidence: [(String, EvidenceValue)] = [("app", .string(r.app))]
        switch r.kind {
        case .credential:
            guard let secret = r.secret else { return }
            kind = "credential"
            severity = foreign ? .high : .medium
            let who = r.user.map { "of \($0) " } ?? ""
            message = "\(device) sent a password \(who)in clear (\(protocolName) \(r.mechanism), \(LoginRecord.mask(secret))) to \(endpoint)\(place)"
            evidence += [("mechanism", .string(r.mechanism)), ("user", .string(r.user ?? "")), ("secret", .string(secret)),
                         ("secret_masked", .string(LoginRecord.mask(secret)))]
        case .mail:
            let free = r.recipients.filter { a in
                guard let at = a.lastIndex(of: "@") else { return false }
                return Self.freeMail.contains(a[a.index(after: at)...].lowercased())
            }
            guard !r.attachments.isEmpty, !free.isEmpty else { return }
            kind = "mail-exfil"
            severity = .high
            message = "\(device) mailed \(r.attachments.count) attachment\(r.attachments.count == 1 ? "" : "s") (\(r.attachments.prefix(3).joined(separator: ", "))) "
                + "to \(free.prefix(3).joined(separator: ", ")) in clear through \(endpoint)\(place)"
            evidence += [("mail_from", .string(r.from ?? "")), ("rcpt_to", .strings(r.recipients)), ("attachments", .strings(r.attachments)),
                         ("subject", .string(r.subject ?? "")), ("message_bytes", .int(r.bytes)), ("free_mail", .strings(free))]
        case .upload:
            guard foreign, let file = r.file else { return }
            kind = "file-upload"
            severity = .medium
            message = "\(device) stored the file \(file) over FTP on \(endpoint)\(place)"
            evidence += [("file", .string(file)), ("user", .string(r.user ?? ""))]
        case .session, .shell:
            return  // C2ChannelDetector
        }
        raise(kind, severity, message, evidence, flow: f, device: id, destination: destination, timestamp: timestamp, into: &alerts)
    }

    /// An upload in clear that describes the machine (host and user names, OS, antivirus, software): high abroad.
    public mutating func hostInfo(
        _ info: HostInfo, flow f: Flow, device id: DeviceID, destination: GeoInfo?, timestamp: Timestamp, into alerts: inout [Alert]
    ) {
        let message = "\(f.clientAddress) sent a description of its machine in clear (\(info.summary)) to \(f.serverAddress)"
            + IdentifierLeakDetector.placeText(destination)
        var evidence: [(String, EvidenceValue)] = [("app", .string("http"))]
        for field in info.fields { evidence.append((field.kind.rawValue, .string(field.value))) }
        evidence.append(("keys", .strings(info.fields.map(\.key))))
        raise("host-info", destination?.scope == .foreign ? .high : .medium, message, evidence,
              flow: f, device: id, destination: destination, timestamp: timestamp, into: &alerts)
    }

    private mutating func raise(
        _ kind: String, _ severity: Severity, _ message: String, _ evidence: [(String, EvidenceValue)], flow f: Flow, device id: DeviceID,
        destination: GeoInfo?, timestamp: Timestamp, into alerts: inout [Alert]
    ) {
        let device = f.clientAddress, endpoint = f.serverAddress
        guard budget.firstTime(Key(device: id, endpoint: endpoint, kind: kind), in: &raisedKeys, cost: TableBudget.Cost.raisedKey) else { return }
        alerts.append(Alert(
            category: .identifierLeak, rule: "siphon.identifier-leak.\(kind)", severity: severity, message: message,
            timestamp: timestamp, flow: f, device: device, deviceID: id, destination: destination?.scope == .local ? nil : destination,
            evidence: [("kind", .string(kind))] + evidence))
    }
}
