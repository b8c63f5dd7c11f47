public import SiphonCore
public import SiphonGeo
public import SiphonApp

/// One endpoint a device talked to, as the verdict shows it.
public struct EndpointReport: Sendable {
    public var address: IPAddress
    public var totals: EndpointTotals
    /// Median interval between contacts when the device beacons to it (seconds).
    public var period: Double?
    /// Categories of the alerts about it, and the highest severity among them.
    public var categories: [String]
    public var severity: Severity?
    /// The findings about it weighed together (`EndpointScore`).
    public var score = EndpointScore()
    public var destination: GeoInfo? { totals.destination }
}

/// One number a phone exchanged SMS or calls with, as the verdict shows it.
public struct NumberReport: Sendable {
    public var totals: NumberTotals
    /// Median interval between the SMS it was sent, when they are a series (seconds).
    public var period: Double?
    public var categories: [String]
    public var severity: Severity?
    public var number: PhoneNumber { totals.number }
    public var info: NumberInfo? { totals.info }
}

/// What the analyst pastes into a report: per device, how bad it looks and why, the endpoints it talked to, and the
/// alerts ranked by severity.
public struct DeviceVerdict: Sendable {
    /// The device's identity (its MAC on a link that has them), and how it came to be analysed.
    public var id: DeviceID
    public var origin: DeviceOrigin
    /// The address it first initiated traffic from.
    public var device: IPAddress
    /// Every address it used on the captured link, in the order first seen, with how each was learned.
    public var addresses: [DeviceAddress] = []
    public var mac: UInt64? { id.mac }
    public var hostname: String?
    public var vendorClass: String?
    /// For a phone the mobile core named: its identities, APN, addresses and user-plane TEIDs.
    public var subscriber: Subscriber?
    /// The verdict's severity: the highest alert's, raised when the findings about one foreign endpoint weigh
    /// enough together (`EndpointScore`: a heartbeat, a self-signed certificate, a non-standard port and no DNS
    /// name make an implant's command server).
    public var severity: Severity?
    /// The foreign endpoint that corroborates the raise, if any.
    public var corroborated: IPAddress?
    /// The highest score of its foreign endpoints (`EndpointScore.points`): ranks devices of equal severity.
    public var score = 0
    /// The foreign number that corroborates it (SMS and calls), if no endpoint does.
    public var corroboratedNumber: PhoneNumber?
    /// Whether the verdict's severity rests on something abroad: a foreign endpoint or number that corroborates it,
    /// or an alert of that severity about data that left (`leavesTheNetwork`). A reverse shell to a lab host or an
    /// ICMP tunnel to a local address is high without it (the verdict's words then do not say "abroad").
    public var abroad = false
    public var headline: String
    /// Set when the capture is known to miss packets (kernel or interface drops): the verdict rests on part of
    /// what the device said.
    public var incomplete: String?
    /// Endpoints, foreign first, then by bytes sent.
    public var endpoints: [EndpointReport]
    /// Alerts about the device, highest severity first, then in capture order.
    public var alerts: [Alert]
    public var sentForeign = 0
    public var receivedForeign = 0
    public var sentHome = 0
    public var sentOther = 0
    /// Numbers the phone exchanged SMS or calls with, abroad first, then by SMS sent.
    public var numbers: [NumberReport] = []
    /// Bytes sent per located country and per AS owner (foreign and home endpoints), largest first.
    public var uploadsByCountry: [(String, Int)] = []
    public var uploadsByOwner: [(String, Int)] = []

    /// The verdict's words for a severity.
    public struct DeviceAddress: Sendable {
        public var address: IPAddress
        public var source: AddressSource
        public var first: Timestamp
        public var last: Timestamp
    }

    public static func label(_ s: Severity?, abroad: Bool = true) -> String {
        switch s {
        case .critical?: abroad ? "CRITICAL: data leaves for abroad, corroborated" : "CRITICAL: compromise, corroborated (no foreign endpoint seen)"
        case .high?: abroad ? "HIGH: evidence of data leaving for abroad" : "HIGH: evidence of compromise (no foreign endpoint seen)"
        case .medium?: "SUSPICIOUS"
        case .low?: "WORTH A LOOK"
        case .info?, nil: "NO FINDING"
        }
    }

    /// Whether an alert is about data that left for abroad: to a foreign endpoint or number, or in DNS queries (a
    /// tunnel, an identifier in a name: they reach whoever serves the domain, wherever the resolver is, as
    /// `identifier-leak` counts them).
    public static func leavesTheNetwork(_ a: Alert) -> Bool {
        a.destination?.scope == .foreign || a.numberInfo?.scope == .foreign || a.category == .dnsTunnel
            || a.category == .identifierLeak && a.evidence.contains { $0.0 == "domain" }
    }

    /// The verdict's words (`label(_:abroad:)` with this verdict's severity and `abroad`).
    public var label: String { Self.label(severity, abroad: abroad) }
}

extension DetectionEngine {
    /// The verdict for every device seen, worst first.
    /// The verdict for every device seen, worst first: every device that initiated a flow, and every identity an
    /// alert names. A MAC address found to be infrastructure only after some of its flows were taken for a
    /// device's (a gateway recognised once enough remote hosts answered through it) gets none: `withdrawn` counts
    /// the alerts that leaves out.
    public func verdicts() -> [DeviceVerdict] {
        // Grouped once: a capture may hold thousands of local hosts (one pass, not one per device).
        var endpointsByDevice: [DeviceID: [(IPAddress, EndpointTotals)]] = [:]
        for (pair, t) in ledger { endpointsByDevice[pair.device, default: []].append((pair.endpoint, t)) }
        var alertsByDevice: [DeviceID: [Alert]] = [:]
        for a in raised { alertsByDevice[a.deviceID, default: []].append(a) }
        var numbersByDevice: [DeviceID: [NumberTotals]] = [:]
        for (pair, t) in numberLedger { numbersByDevice[pair.device, default: []].append(t) }
        var ids = Set(devices.keys).union(endpointsByDevice.keys).union(alertsByDevice.keys).union(numbersByDevice.keys)
        for id in ids {
            if let m = id.mac, link.isInfrastructure(m) {
                ids.remove(id)
                withdrawn.append((id, alertsByDevice[id]?.count ?? 0))
            }
        }
        withdrawn.sort { $0.0 < $1.0 }
        return ids.map { verdict(for: $0, endpointsByDevice[$0] ?? [], alertsByDevice[$0] ?? [], numbers: numbersByDevice[$0] ?? []) }.sorted {
            ($0.severity?.rawValue ?? -1, $0.score, $0.sentForeign) != ($1.severity?.rawValue ?? -1, $1.score, $1.sentForeign)
                ? ($0.severity?.rawValue ?? -1, $0.score, $0.sentForeign) > ($1.severity?.rawValue ?? -1, $1.score, $1.sentForeign)
                : $0.id < $1.id
        }
    }

    /// The addresses of a device, in the order first seen, and how each was learned.
    func addresses(of id: DeviceID) -> [DeviceVerdict.DeviceAddress] {
        if let m = id.mac, let h = link.hosts[m] {
            return h.addresses.compactMap { a in
                h.records[a].map { DeviceVerdict.DeviceAddress(address: a, source: $0.source, first: $0.first, last: $0.last) }
            }
        }
        return (devices[id]?.addresses ?? []).map { DeviceVerdict.DeviceAddress(address: $0.0, source: .traffic, first: $0.1, last: $0.2) }
    }

    func verdict(for id: DeviceID, _ ledger: [(IPAddress, EndpointTotals)], _ raised: [Alert], numbers: [NumberTotals] = []) -> DeviceVerdict {
        // By severity, highest first; alerts of equal severity stay in capture order (a bucket per level).
        var buckets = [[Alert]](repeating: [], count: Severity.allCases.count)
        for a in raised { buckets[a.severity.rawValue].append(a) }
        let alerts = Array(buckets.reversed().joined())
        var alertsByEndpoint: [IPAddress: [Alert]] = [:]
        var alertsByTarget: [String: [Alert]] = [:]
        var alertsByNumber: [String: [Alert]] = [:]
        for a in alerts {
            if let n = a.number {
                alertsByNumber[n.description, default: []].append(a)
                continue
            }
            alertsByEndpoint[a.flow.serverAddress, default: []].append(a)
            if a.category == .beaconing, let t = a.evidenceTarget { alertsByTarget[t, default: []].append(a) }
        }
        var endpoints: [EndpointReport] = []
        for (endpoint, t) in ledger {
            var about = alertsByEndpoint[endpoint] ?? []
            if !alertsByTarget.isEmpty {
                for target in [endpoint.description] + t.names {
                    for a in alertsByTarget[target] ?? [] where a.flow.serverAddress != endpoint { about.append(a) }
                }
            }
            var categories: [String] = []
            for a in about where a.severity > .info && !categories.contains(a.category.rawValue) { categories.append(a.category.rawValue) }
            let period = about.first { $0.category == .beaconing }.flatMap { a -> Double? in
                if case .double(let v)? = a.evidence.first(where: { $0.0 == "median_interval_s" })?.1 { return v }
                return nil
            }
            var report = EndpointReport(
                address: endpoint, totals: t, period: period, categories: categories,
                severity: about.map { $0.severity }.max())
            if t.destination?.scope == .foreign { report.score = EndpointScore(about) }
            endpoints.append(report)
        }
        endpoints.sort {
            let f0 = $0.destination?.scope == .foreign, f1 = $1.destination?.scope == .foreign
            if f0 != f1 { return f0 }
            if ($0.severity?.rawValue ?? -1) != ($1.severity?.rawValue ?? -1) { return ($0.severity?.rawValue ?? -1) > ($1.severity?.rawValue ?? -1) }
            return $0.totals.sent != $1.totals.sent ? $0.totals.sent > $1.totals.sent : $0.address < $1.address
        }
        let device = devices[id]?.address ?? raised.first?.device ?? ledger.first?.0 ?? IPAddress(ipv4: 0)
        var v = DeviceVerdict(
            id: id, origin: link.origin(of: id), device: device, addresses: addresses(of: id),
            severity: alerts.map { $0.severity }.max(), headline: "", endpoints: endpoints, alerts: alerts)
        if id.isSubscriber { v.subscriber = link.subscriberIdentities[id] ?? gsmPhones[id] }
        v.numbers = numbers.map { t in
            let about = alertsByNumber[t.number.description] ?? []
            var categories: [String] = []
            for a in about where a.severity > .info && !categories.contains(a.category.rawValue) { categories.append(a.category.rawValue) }
            let period = about.first { $0.category == .beaconing }.flatMap { a -> Double? in
                if case .double(let v)? = a.evidence.first(where: { $0.0 == "median_interval_s" })?.1 { return v }
                return nil
            }
            return NumberReport(totals: t, period: period, categories: categories, severity: about.map(\.severity).max())
        }.sorted {
            let f0 = $0.info?.scope == .foreign, f1 = $1.info?.scope == .foreign
            if f0 != f1 { return f0 }
            return $0.totals.smsSent != $1.totals.smsSent ? $0.totals.smsSent > $1.totals.smsSent : $0.number < $1.number
        }
        var byCountry: [String: Int] = [:], byOwner: [String: Int] = [:]
        for e in endpoints {
            switch e.destination?.scope {
            case .foreign?:
                v.sentForeign += e.totals.sent
                v.receivedForeign += e.totals.received
            case .home?: v.sentHome += e.totals.sent
            default: v.sentOther += e.totals.sent
            }
            if e.totals.sent > 0 {
                byCountry[e.destination?.country ?? "??", default: 0] += e.totals.sent
                byOwner[e.destination?.asOrganization ?? "unknown owner", default: 0] += e.totals.sent
            }
        }
        v.uploadsByCountry = byCountry.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        v.uploadsByOwner = byOwner.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        // Corroboration: the foreign endpoint whose findings weigh most (`EndpointScore`), when they raise the verdict.
        let scored = endpoints.filter { $0.score.severity != nil }
        if let worst = scored.max(by: { ($0.score.severity!, $0.score.points) < ($1.score.severity!, $1.score.points) }) {
            if worst.score.severity! > (v.severity ?? .info) { v.severity = worst.score.severity }
            v.corroborated = worst.address
        }
        v.score = endpoints.map(\.score.points).max() ?? 0
        // Corroboration by a number: one foreign number with three kinds of finding above info.
        if v.corroborated == nil, (v.severity ?? .info) < .critical, let worst = v.numbers.first(where: { $0.info?.scope == .foreign
            && $0.categories.filter { $0 != AlertCategory.foreignEndpoint.rawValue }.count >= 3 }) {
            v.severity = .critical
            v.corroboratedNumber = worst.number
        }
        v.abroad = v.corroborated != nil || v.corroboratedNumber != nil
            || alerts.contains { $0.severity == v.severity && DeviceVerdict.leavesTheNetwork($0) }
        let foreign = endpoints.filter { $0.destination?.scope == .foreign }
        let countries = foreign.reduce(into: [String]()) { if let c = $1.destination?.country, !$0.contains(c) { $0.append(c) } }
        var words = "\(foreign.count) foreign endpoint\(foreign.count == 1 ? "" : "s")"
        if !countries.isEmpty { words += " (\(countries.joined(separator: ", ")))" }
        words += ", \(ByteSize.text(UInt64(max(v.sentForeign, 0)))) sent abroad"
        let foreignNumbers = v.numbers.filter { $0.info?.scope == .foreign }
        if !v.numbers.isEmpty {
            let numberCountries = foreignNumbers.reduce(into: [String]()) { if let c = $1.info?.country ?? $1.info.map({ "+" + $0.callingCode }), !$0.contains(c) { $0.append(c) } }
            words += ", \(foreignNumbers.count) foreign number\(foreignNumbers.count == 1 ? "" : "s")"
            if !numberCountries.isEmpty { words += " (\(numberCountries.joined(separator: ", ")))" }
            words += ", \(foreignNumbers.reduce(0) { $0 + $1.totals.smsSent }) SMS sent abroad"
        }
        words += ", \(alerts.filter { $0.severity > .info }.count) alerts above info"
        if let n = v.corroboratedNumber {
            words += "; \(n) draws \(v.numbers.first { $0.number == n }?.categories.joined(separator: ", ") ?? "")"
        }
        if let c = v.corroborated {
            let e = endpoints.first { $0.address == c }
            words += "; \(c)\(e?.totals.names.first.map { " (\($0))" } ?? "") draws \(e?.score.signals.joined(separator: ", ") ?? "")"
                + " (\(e?.score.points ?? 0) points)"
        }
        v.headline = words
        return v
    }
}

extension Alert {
    /// The `target` of a beaconing alert (an address or a name).
    var evidenceTarget: String? {
        if case .string(let s)? = evidence.first(where: { $0.0 == "target" })?.1 { return s }
        return nil
    }
}
