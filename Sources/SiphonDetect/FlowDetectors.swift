public import SiphonCore
public import SiphonFlows
public import SiphonGeo
internal import SiphonApp

/// One ended flow of a device to a non-local endpoint, as the per-flow detectors judge it: the flow, what the
/// application layer learned of it, the device × endpoint pair it counts for, and whether the endpoint is foreign.
public struct FlowJudgement {
    public var ended: EndedFlow
    public var facts: FlowFacts
    public var pair: DetectionEngine.Pair
    public var foreign: Bool

    public init(ended: EndedFlow, facts: FlowFacts = FlowFacts(), pair: DetectionEngine.Pair, foreign: Bool) {
        self.ended = ended
        self.facts = facts
        self.pair = pair
        self.foreign = foreign
    }

    @inline(__always) var flow: Flow { ended.flow }
    /// The device's address in this flow.
    var device: IPAddress { ended.flow.clientAddress }
    var endpoint: IPAddress { pair.endpoint }

    /// An alert about this flow (its text built when read).
    func alert(
        _ category: AlertCategory, _ rule: String, _ severity: Severity, _ message: @escaping @Sendable () -> String,
        _ evidence: [(String, EvidenceValue)]
    ) -> Alert {
        Alert(category: category, rule: rule, severity: severity, text: .deferred(message), timestamp: flow.end, flow: flow,
              device: device, deviceID: pair.device, destination: ended.destination, evidence: evidence)
    }
}

/// Bits of `EndpointTotals.raisedBits`: a category already raised for a device × endpoint.
enum RaisedBit {
    static let foreignEndpoint = 0, foreignUpload = 1, iocMatch = 2, cleartext = 3, noDNSEndpoint = 4
}

// MARK: foreign-endpoint

/// `foreign-endpoint` (info): once per device × foreign endpoint, at the end of the first flow to it.
public struct ForeignEndpointDetector {
    public init() {}

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        guard j.foreign, t.mark(RaisedBit.foreignEndpoint) else { return }
        let label = EndpointLabel(j.endpoint, t), device = j.device
        alerts.append(j.alert(.foreignEndpoint, "siphon.foreign-endpoint", .info, { "\(device) exchanged traffic with \(label)" }, [
            ("first_contact", .time(t.first)), ("sent_bytes", .int(j.ended.sent)), ("received_bytes", .int(j.ended.received)),
        ]))
    }
}

// MARK: foreign-upload

/// `foreign-upload`: by volume (high) or by ratio (medium) on the device × endpoint totals, and on the totals
/// of the endpoint's name over all its addresses, as flows end; by share of the device's own traffic (low) at
/// the end of the capture. Raised once per device × endpoint.
public struct UploadDetector {
    public let volumeBytes: Int
    public let ratio: Double
    public let ratioMinimumBytes: Int
    public let share: Double
    public let shareMinimumBytes: Int
    public let shareMaximumReturned: Double

    struct NameKey: Hashable {
        var device: DeviceID
        var name: String
    }
    struct NameUpload {
        var sent = 0
        var received = 0
        var flows = 0
        var first: Timestamp
        var addresses: [IPAddress] = []
        var raised = false
        init(first: Timestamp) { self.first = first }
    }
    /// Upload totals per device × endpoint name, over all the name's addresses.
    private var names: [NameKey: NameUpload] = [:]
    /// Shared with the other detectors' tables (`DetectionEngine.tableBudget`).
    var budget = TableBudget()

    public init(_ c: DetectionConfiguration) {
        volumeBytes = c.uploadBytes
        ratio = c.uploadRatio
        ratioMinimumBytes = c.uploadRatioMinimumBytes
        share = c.uploadShare
        shareMinimumBytes = c.uploadShareMinimumBytes
        shareMaximumReturned = c.uploadShareMaximumReturned
    }

    func judged(_ sent: Int, _ received: Int) -> (volume: Bool, ratio: Bool) {
        (sent >= volumeBytes, sent >= ratioMinimumBytes && Double(sent) >= ratio * Double(max(received, 1)))
    }

    public mutating func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        guard j.foreign else { return }
        let endpoint = j.endpoint
        // Per endpoint address, and per name over all its addresses (an IPv4 and an IPv6 flow to one name, or a
        // service behind rotating addresses, count together).
        var byName: NameUpload?
        var nameKey = j.ended.names.first.map { NameKey(device: j.pair.device, name: $0) }
        // A new name takes its share of the tables' budget; beyond it, the address's own totals decide.
        if let key = nameKey, names[key] == nil, !budget.take(TableBudget.Cost.uploadName(key.name)) { nameKey = nil }
        if let nameKey {
            func add(_ u: inout NameUpload) -> NameUpload {
                u.sent += j.ended.sent
                u.received += j.ended.received
                u.flows += 1
                if !u.addresses.contains(endpoint) && u.addresses.count < 16 { u.addresses.append(endpoint) }
                return u
            }
            byName = add(&names[nameKey, default: NameUpload(first: j.ended.flow.start)])
        }
        guard !t.has(RaisedBit.foreignUpload), byName?.raised != true else { return }
        let own = judged(t.sent, t.received)
        let named: (volume: Bool, ratio: Bool) = byName.map { judged($0.sent, $0.received) } ?? (false, false)
        // The name's totals decide when they cross a threshold the address's own do not.
        let useName = !(own.volume || own.ratio) || (named.volume && !own.volume)
        let (byVolume, byRatio) = useName ? named : own
        guard byVolume || byRatio else { return }
        _ = t.mark(RaisedBit.foreignUpload)
        let aggregate = useName ? byName : nil
        if let nameKey, aggregate != nil { names[nameKey]?.raised = true }
        let label = EndpointLabel(endpoint, t), device = j.device
        let sent = aggregate?.sent ?? t.sent, received = aggregate?.received ?? t.received
        let addresses = aggregate?.addresses.count ?? 1
        var evidence: [(String, EvidenceValue)] = [
            ("sent_bytes", .int(sent)), ("received_bytes", .int(received)), ("flows", .int(aggregate?.flows ?? t.flows)),
            ("first_contact", .time(aggregate?.first ?? t.first)), ("last_contact", .time(t.last)),
            ("reason", .string(byVolume ? "volume" : "ratio")),
        ]
        if let aggregate, let name = j.ended.names.first {
            evidence += [("name", .string(name)), ("addresses", .strings(aggregate.addresses.map { $0.description }))]
        }
        alerts.append(j.alert(.foreignUpload, "siphon.foreign-upload", byVolume ? .high : .medium, {
            addresses > 1
                ? "\(device) sent \(sent) bytes (received \(received)) to \(label.name ?? "") over \(addresses) addresses, the last \(label)"
                : "\(device) sent \(sent) bytes (received \(received)) to \(label)"
        }, evidence))
    }

    /// At the end of the capture: a foreign endpoint that got at least `share` of everything its device sent, at
    /// least `shareMinimumBytes`, and sent back at most `shareMaximumReturned` times that. Entries in a fixed
    /// order (device, then endpoint), so that the alerts are too.
    public func finish(
        ledger: inout [DetectionEngine.Pair: EndpointTotals], devices: [DeviceID: DeviceActivity], into alerts: inout [Alert]
    ) {
        // The candidates first (a few), then sorted: not the whole ledger.
        let candidates = ledger.compactMap { pair, t -> DetectionEngine.Pair? in
            guard t.destination?.scope == .foreign, !t.has(RaisedBit.foreignUpload), t.sent >= shareMinimumBytes,
                  let total = devices[pair.device]?.sent, total > 0,
                  Double(t.sent) >= share * Double(total), Double(t.received) <= shareMaximumReturned * Double(t.sent)
            else { return nil }
            return pair
        }.sorted { ($0.device, $0.endpoint) < ($1.device, $1.endpoint) }
        for pair in candidates {
            guard let t = ledger[pair], let flow = t.lastFlow, let total = devices[pair.device]?.sent else { continue }
            ledger[pair]?.raisedBits |= 1 << UInt16(RaisedBit.foreignUpload)
            let fraction = Double(t.sent) / Double(total)
            let label = EndpointLabel(pair.endpoint, t), sent = t.sent, received = t.received, device = flow.clientAddress
            let percent = Int((fraction * 100).rounded())
            // Low: on nDPI's benign captures it fires on telemetry and sync (iCloud key-value, Nest logs: 45-65 kB
            // with a fifth back), true by the definition but ordinary; the verdict weighs it with the rest.
            alerts.append(Alert(
                category: .foreignUpload, rule: "siphon.foreign-upload", severity: .low,
                text: .deferred({ "\(device) sent \(percent) % of all it sent in the capture (\(sent) of \(total) bytes; received \(received)) to \(label)" }),
                timestamp: t.last, flow: flow, device: device, deviceID: pair.device, destination: t.destination, evidence: [
                    ("sent_bytes", .int(t.sent)), ("received_bytes", .int(t.received)), ("flows", .int(t.flows)),
                    ("device_sent_bytes", .int(total)), ("share", .double(fraction)),
                    ("first_contact", .time(t.first)), ("last_contact", .time(t.last)), ("reason", .string("share")),
                ]))
        }
    }
}

// MARK: ioc-match

/// `ioc-match` (high): once per device × endpoint whose address or a name matched a loaded indicator.
public struct IOCMatchDetector {
    public init() {}

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        guard let i = j.ended.indicator, t.mark(RaisedBit.iocMatch) else { return }
        var evidence: [(String, EvidenceValue)] = [
            ("indicator", .string(i.value)), ("indicator_type", .string(i.kind.rawValue)), ("source", .string(i.source)),
        ]
        if let tag = i.tag { evidence.append(("tag", .string(tag))) }
        let text = "\(j.device) contacted \(EndpointLabel(j.endpoint, t)), listed as \(i.value) in \(i.source)" + (i.tag.map { " (\($0))" } ?? "")
        alerts.append(j.alert(.iocMatch, "siphon.ioc-match", .high, { text }, evidence))
    }
}

// MARK: non-standard-port

/// `non-standard-port`: a known protocol off its ports, or an unidentified one on a high TCP port (UDP: media,
/// games and VPNs use any port), with data both ways, to a foreign endpoint. Informational, except a cleartext
/// protocol off its ports (HTTP on 5555...), which is low: benign apps do both (messengers on 5222, TLS on
/// 8080/9001). Once per device × endpoint × port.
public struct NonStandardPortDetector {
    public let standardPorts: [String: Set<UInt16>]
    public let cleartextProtocols: Set<String>
    public let exemptPorts: Set<UInt16>

    public init(_ c: DetectionConfiguration) {
        standardPorts = c.standardPorts
        cleartextProtocols = c.cleartextProtocols
        exemptPorts = c.noDNSExemptPorts
    }

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        guard j.foreign, j.ended.sent > 0, j.ended.received > 0, j.ended.flow.key.ipProtocol == 6 || (j.ended.flow.key.ipProtocol == 17 && j.ended.app != "unknown"),
              !exemptPorts.contains(j.ended.flow.serverPort)
        else { return }
        let odd = standardPorts[j.ended.app].map { !$0.contains(j.ended.flow.serverPort) } ?? (j.ended.app == "unknown" && j.ended.flow.serverPort >= 1024)
        guard odd, t.nonStandardPorts.insert(j.ended.flow.serverPort).inserted else { return }
        let what = j.ended.app == "unknown" ? "an unidentified protocol" : j.ended.app.uppercased()
        let label = EndpointLabel(j.endpoint, t), port = j.ended.flow.serverPort, device = j.device
        alerts.append(j.alert(.nonStandardPort, "siphon.non-standard-port", cleartextProtocols.contains(j.ended.app) ? .low : .info,
                              { "\(device) spoke \(what) to \(label) on port \(port)" }, [
            ("app", .string(j.ended.app)), ("dest_port", .int(Int(j.ended.flow.serverPort))),
            ("transport", .string(j.ended.flow.key.ipProtocol == 6 ? "TCP" : "UDP")),
            ("sent_bytes", .int(j.ended.sent)), ("received_bytes", .int(j.ended.received)),
        ]))
    }
}

// MARK: cleartext

/// `cleartext` (medium to a foreign endpoint, low otherwise): bytes the device sent over protocols without
/// encryption, summed per device × endpoint (HTTP: request bodies only), raised once past `minimumBytes`.
public struct CleartextDetector {
    public let protocols: Set<String>
    public let minimumBytes: Int

    public init(_ c: DetectionConfiguration) {
        protocols = c.cleartextProtocols
        minimumBytes = c.cleartextBytes
    }

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        let clear = j.ended.app == "http" ? j.facts.httpBodyBytes : j.ended.sent
        guard protocols.contains(j.ended.app), clear > 0 else { return }
        t.cleartextSent += clear
        if !t.cleartextProtocols.contains(j.ended.app) { t.cleartextProtocols.append(j.ended.app) }
        guard t.cleartextSent >= minimumBytes, t.mark(RaisedBit.cleartext) else { return }
        let label = EndpointLabel(j.endpoint, t), sent = t.cleartextSent, used = t.cleartextProtocols, device = j.device
        alerts.append(j.alert(.cleartext, "siphon.cleartext", j.foreign ? .medium : .low,
                              { "\(device) sent \(sent) bytes in clear (\(used.joined(separator: ", "))) to \(label)" }, [
            ("protocols", .strings(t.cleartextProtocols)), ("cleartext_sent_bytes", .int(t.cleartextSent)),
            ("flows", .int(t.flows)), ("first_contact", .time(t.first)),
        ]))
    }
}

// MARK: no-dns-endpoint

/// `no-dns-endpoint` (low to a foreign endpoint with no name, info otherwise): a flow that got an answer, to an
/// address no earlier DNS answer gave. A flow already running when the capture began may have been resolved
/// before it: not evidence. A name inside the flow (SNI, Host) suggests resolution the capture did not see
/// (before it, or DoH). Low at most: messengers hard-code their servers and learn media relays in-band (nDPI's
/// benign phone captures: 90 such alerts over WhatsApp, Telegram, Viber...); the verdict weighs it with the rest.
public struct NoDNSEndpointDetector {
    public let exemptPorts: Set<UInt16>

    public init(_ c: DetectionConfiguration) { exemptPorts = c.noDNSExemptPorts }

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        guard j.ended.resolvedNames.isEmpty, !j.ended.midstream, !exemptPorts.contains(j.ended.flow.serverPort), j.ended.flow.server.packets > 0,
              t.mark(RaisedBit.noDNSEndpoint)
        else { return }
        let label = EndpointLabel(j.endpoint, t), device = j.device
        alerts.append(j.alert(.noDNSEndpoint, "siphon.no-dns-endpoint", j.foreign && j.ended.names.isEmpty ? .low : .info,
                              { "\(device) connected to \(label), an address no DNS answer in the capture gave" }, [
            ("dest_port", .int(Int(j.ended.flow.serverPort))), ("names_in_flow", .strings(j.ended.names)),
            ("sent_bytes", .int(j.ended.sent)), ("received_bytes", .int(j.ended.received)),
        ]))
    }
}

// MARK: beaconing

/// `beaconing` (medium to a foreign endpoint, low otherwise): contacts (starts of flows that got an answer) per
/// device × target (the endpoint's address, its first name, and for foreign endpoints the client's JA4 and the /24
/// or /48), scored by `BeaconScore`. Series are keyed by the device's identity, so they survive a change of
/// its address (an IPv6 privacy address that rotates). One alert per series. Also one-shot sprays: many addresses of
/// one foreign network contacted with no name for them (medium, kind `spray`).
public struct BeaconDetector {
    public let configuration: BeaconConfiguration
    public let exemptPorts: Set<UInt16>

    struct Key: Hashable {
        var device: DeviceID
        var target: Target
    }
    /// What a series counts contacts to (hashing an address, not its text, for the common case).
    enum Target: Hashable, CustomStringConvertible {
        case address(IPAddress)
        case name(String)
        case ja4(String)
        /// A /24 (IPv4) or /48 (IPv6), by its first address.
        case network(IPAddress)
        var description: String {
            switch self {
            case .address(let a): a.description
            case .name(let n): n
            case .ja4(let f): "JA4 " + f
            case .network(let a): "\(a)/\(a.isIPv6 ? 48 : 24)"
            }
        }
    }

    /// The /24 (IPv4) or /48 (IPv6) an address is in, by its first address.
    static func network(of a: IPAddress) -> IPAddress {
        a.isIPv6 ? IPAddress(ipv6High: a.high & 0xFFFF_FFFF_FFFF_0000, low: 0) : IPAddress(ipv4: UInt32(truncatingIfNeeded: a.low) & 0xFFFF_FF00)
    }
    /// A contact: its time and its first packet.
    struct Contact {
        var time: Timestamp
        var frame: UInt64
    }
    /// A target's recent contacts, and how many it had in all (one array: a new series allocates once).
    struct Series {
        var recent: [Contact] = []
        var total = 0
    }
    private var contacts: [Key: Series] = [:]
    private var beaconing: Set<Key> = []
    /// Endpoints contacted per device × group series (JA4, network).
    private var groupEndpoints: [Key: Set<IPAddress>] = [:]
    /// Addresses of a foreign network a device contacted with no name for them, per device × network (sprays), and
    /// the networks already raised.
    private var sprays: [Key: Set<IPAddress>] = [:]
    private var sprayed: Set<Key> = []
    /// Shared with the other detectors' tables (`DetectionEngine.tableBudget`): a new series, each contact it
    /// keeps and each JA4 endpoint are charged; what does not fit is not counted (and the series may not form).
    var budget = TableBudget()

    public init(_ c: DetectionConfiguration) {
        configuration = c.beacons
        exemptPorts = c.noDNSExemptPorts
    }

    public mutating func flowEnded(_ j: FlowJudgement, into alerts: inout [Alert]) {
        let id = j.pair.device
        guard !exemptPorts.contains(j.ended.flow.serverPort) else { return }
        if j.foreign, j.ended.names.isEmpty { spray(j, into: &alerts) }
        // Contacts that got an answer, on ports where periodic traffic is not expected anyway.
        guard j.ended.flow.server.packets > 0 else { return }
        // One alert per series: once the address or the name beacons, the other target stops counting.
        let address = Key(device: id, target: .address(j.endpoint))
        let name = j.ended.names.first.map { Key(device: id, target: .name($0)) }
        if beaconing.isEmpty || !beaconing.contains(address) && !(name.map(beaconing.contains) ?? false) {
            var beacons = contact(address, j, into: &alerts)
            if !beacons, let name { beacons = contact(name, j, into: &alerts) }
            if beacons {
                beaconing.insert(address)
                drop(address)
                if let name {
                    beaconing.insert(name)
                    drop(name)
                }
            }
        }
        // Group series, over foreign endpoints only: the TLS fingerprint (an implant that rotates servers keeps its
        // TLS stack) and, for addresses the device had no name for, the /24 or /48 (hard-coded servers rotated
        // within one network; a named service rotating its addresses is the name's series). Each is raised
        // once it spans three or more endpoints of which none beacons by itself (one endpoint is the address's
        // series; regular visits to several home sites are not rotation); one alert for the flow's groups.
        guard j.foreign else { return }
        var groups: [Key] = []
        if let ja4 = j.facts.ja4, !ja4.isEmpty { groups.append(Key(device: id, target: .ja4(ja4))) }
        if j.ended.names.isEmpty { groups.append(Key(device: id, target: .network(Self.network(of: j.endpoint)))) }
        guard beaconing.isEmpty || !groups.contains(where: beaconing.contains) else { return }
        let budget = self.budget, endpoint = j.endpoint
        for key in groups {
            // One lookup of the group (its set updated in place); the endpoint is charged if it is new.
            let spread: Set<IPAddress> = { (s: inout Set<IPAddress>) in
                if s.insert(endpoint).inserted, !budget.take(TableBudget.Cost.groupEndpoint) { s.remove(endpoint) }
                return s
            }(&groupEndpoints[key, default: []])
            let explained = !beaconing.isEmpty && spread.contains { beaconing.contains(Key(device: id, target: .address($0))) }
            guard contact(key, j, mayRaise: spread.count >= 3 && !explained, into: &alerts) else { continue }
            beaconing.formUnion(groups)
            for k in groups {
                drop(k)
                if let gone = groupEndpoints.removeValue(forKey: k) { budget.give(gone.count * TableBudget.Cost.groupEndpoint) }
            }
            break
        }
    }

    /// A one-shot spray: one contact each (answered or not) to many addresses of one foreign network the device had
    /// no name for (Cerber's statistics to a whole /22). Raised once per device × network at `sprayAddresses`.
    private mutating func spray(_ j: FlowJudgement, into alerts: inout [Alert]) {
        let key = Key(device: j.pair.device, target: .network(Self.network(of: j.endpoint)))
        guard sprayed.isEmpty || !sprayed.contains(key) else { return }
        // One lookup of the network's set, updated in place; 0 when the address is not new (or over budget).
        let budget = self.budget, endpoint = j.endpoint
        let n = { (s: inout Set<IPAddress>) -> Int in
            guard s.insert(endpoint).inserted else { return 0 }
            guard budget.take(TableBudget.Cost.groupEndpoint) else {
                s.remove(endpoint)
                return 0
            }
            return s.count
        }(&sprays[key, default: []])
        guard n >= configuration.sprayAddresses else { return }
        sprayed.insert(key)
        let gone = sprays.removeValue(forKey: key) ?? []
        budget.give(gone.count * TableBudget.Cost.groupEndpoint)
        let device = j.device, network = key.target.description, port = j.ended.flow.serverPort
        alerts.append(j.alert(.beaconing, "siphon.beaconing.spray", .medium, {
            "\(device) contacted \(n) addresses of \(network) with no DNS name for them (the last on port \(port)): a spray"
        }, [
            ("kind", .string("spray")), ("target", .string(network)), ("addresses", .int(n)),
            ("examples", .strings(gone.sorted().prefix(8).map(\.description))), ("dest_port", .int(Int(port))),
            ("transport", .string(j.ended.flow.key.ipProtocol == 6 ? "TCP" : j.ended.flow.key.ipProtocol == 17 ? "UDP" : "other")),
        ]))
    }

    /// Removes a series (it beacons: no more contacts are counted) and gives back what it took.
    private mutating func drop(_ key: Key) {
        guard let gone = contacts.removeValue(forKey: key) else { return }
        budget.give(TableBudget.Cost.beaconSeries + gone.recent.count * TableBudget.Cost.beaconContact)
    }

    /// Counts a contact of `key`'s series; true when the series beacons now (raised: no more contacts counted).
    @discardableResult
    private mutating func contact(_ key: Key, _ j: FlowJudgement, mayRaise: Bool = true, into alerts: inout [Alert]) -> Bool {
        let c = configuration, start = j.flow.start
        // Updated in place through the dictionary's modify accessor: one lookup, and no copy of the array.
        let budget = self.budget
        func add(_ slot: inout Series?) -> ([Contact], Int)? {
            if slot == nil {
                guard budget.take(TableBudget.Cost.beaconSeries) else { return nil }
                slot = Series()
            }
            return add(&slot!)
        }
        func add(_ series: inout Series) -> ([Contact], Int) {
            if series.recent.count >= c.maximumContacts {
                series.recent.removeFirst(series.recent.count - c.maximumContacts + 1)
            } else if !budget.take(TableBudget.Cost.beaconContact) {
                return (series.recent, series.total)
            }
            series.recent.append(Contact(time: start, frame: j.flow.firstFrame))
            series.total += 1
            return (series.recent, series.total)
        }
        guard let (recent, total) = add(&contacts[key]) else { return false }
        // Scored at every contact up to 64, then every n/16 contacts: scoring sorts the series, and a long irregular
        // series (days of a CDN) would otherwise cost O(n² log n). A beacon is still found within 6 % of its length.
        let n = recent.count
        guard mayRaise, n >= c.minimumContacts, n <= 64 || total % (n / 16) == 0,
              let score = BeaconScore(times: recent.map { $0.time.secondsDouble }, configuration: c), score.isBeacon(c)
        else { return false }
        beaconing.insert(key)
        drop(key)
        let sorted = recent.map(\.time).sorted()
        let rounded = (score.medianInterval * 10).rounded() / 10
        // Each contact's first packet (its time: the contact's start), at most the first and last 32.
        var contactFrames = recent.filter { $0.frame != 0 }.map { FrameRef(number: $0.frame, timestamp: $0.time, interface: j.flow.interface) }
        contactFrames.sort()
        if contactFrames.count > 64 { contactFrames = Array(contactFrames.prefix(32) + contactFrames.suffix(32)) }
        var alert = Alert(
            category: .beaconing, rule: "siphon.beaconing", severity: j.foreign ? .medium : .low,
            message: "\(j.device) contacts \(key.target.description) every \(rounded) s (\(score.contacts) contacts)",
            timestamp: j.flow.end, flow: j.flow, device: j.device, deviceID: key.device, destination: j.ended.destination, evidence: [
                ("target", .string(key.target.description)), ("contacts", .int(score.contacts)),
                ("median_interval_s", .double(score.medianInterval)), ("mad_s", .double(score.deviation)),
                ("regular_fraction", .double(score.regularFraction)),
                ("first_contact", .time(sorted[0])),
                ("last_contact", .time(sorted[sorted.count - 1])),
            ])
        alert.frames = contactFrames
        alerts.append(alert)
        return true
    }
}

// MARK: tls-anomaly

/// `tls-anomaly` (medium for a self-signed or mismatched certificate abroad; low for the rest): per flow with a
/// TLS handshake, each kind raised once per device × endpoint.
public struct TLSAnomalyDetector {
    public let configuration: TLSAnomalyConfiguration

    public init(_ c: TLSAnomalyConfiguration) { configuration = c }

    public func flowEnded(_ j: FlowJudgement, _ t: inout EndpointTotals, into alerts: inout [Alert]) {
        let x = j.facts, foreign = j.foreign
        guard x.ja3 != nil || x.serverHelloSeen else { return }
        var found: [(String, Severity, String, [(String, EvidenceValue)])] = []
        let c = configuration
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
            if let end = cert.notAfter, end < j.flow.start {
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
            let text = "\(EndpointLabel(j.endpoint, t)) \(what)"
            alerts.append(j.alert(.tlsAnomaly, "siphon.tls-anomaly.\(kind)", severity, { text }, [("anomaly", .string(kind))] + evidence))
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
}

// MARK: evasion

/// `evasion`: what makes reassembly ambiguous. Bad checksums on packets that carried data or flags and TTL
/// outliers (judged when a flow ends, any flow), TCP overlaps with different data (once per flow, as they happen),
/// IP fragment overlaps with different data (once per datagram). The device is the flow's client.
public struct EvasionDetector {
    /// Live flows that already have an overlap alert (one per flow; the other kinds are raised once, when the flow
    /// ends).
    private var evasiveFlows: Set<UInt64> = []
    /// Fragmented datagrams already reported (source, destination, IP id).
    private var evasiveDatagrams: Set<[UInt64]> = []

    public init() {}

    /// Packets the receiver drops but an inspector may take, at the end of a flow: bad TCP/UDP checksums on
    /// segments that carried payload or SYN/FIN/RST (the pipeline already ignored them), and packets whose TTL
    /// departs from the direction's first by more than the limit (a segment that expires before the receiver, or
    /// one another host injected, such as a forged reset).
    public mutating func flowEnded(_ e: EndedFlow, device id: DeviceID, into alerts: inout [Alert]) {
        if !evasiveFlows.isEmpty { evasiveFlows.remove(e.flow.id) }  // the overlap alert's mark: the flow is over
        let up = e.flow.clientPath, down = e.flow.serverPath
        // A local function for the TTL test, and no copy of the flow unless something is raised.
        func suspicious(_ p: PathFacts) -> Bool { p.ttlOutlierResets > 0 || (p.ttlOutliers > 0 && p.retransmissions > 0) }
        guard up.badChecksumsWithEffect > 0 || down.badChecksumsWithEffect > 0 || suspicious(up) || suspicious(down) else { return }
        let f = e.flow
        if up.badChecksumsWithEffect > 0 || down.badChecksumsWithEffect > 0 {
            let n = Int(up.badChecksumsWithEffect) + Int(down.badChecksumsWithEffect)
            let what = f.key.ipProtocol == 6 ? "TCP" : "UDP"
            alerts.append(Alert(
                category: .evasion, rule: "siphon.evasion.bad-checksum", severity: .medium,
                message: "\(n) \(what) packet\(n == 1 ? "" : "s") between \(f.clientAddress) and \(f.serverAddress) "
                    + "carried data or flags under a bad checksum (dropped by the receiver, ignored here)",
                timestamp: f.end, flow: f, device: f.clientAddress, deviceID: id, destination: e.destination, evidence: [
                    ("anomaly", .string("bad-checksum")),
                    ("to_server_packets", .int(Int(up.badChecksumsWithEffect))),
                    ("to_client_packets", .int(Int(down.badChecksumsWithEffect))),
                    ("bad_checksum_packets", .int(Int(up.badChecksums) + Int(down.badChecksums))),
                ]))
        }
        // A TTL outlier alone is common (a load balancer's or a SYN proxy's packets, a route change): it counts
        // when it is a reset (low; medium when the same side then went on sending data, so the reset was forged) or
        // data in a direction that also sent data twice (the two copies of an insertion).
        guard suspicious(up) || suspicious(down) else { return }
        let (side, path) = suspicious(up) ? ("to_server", up) : ("to_client", down)
        let resets = Int(up.ttlOutlierResets) + Int(down.ttlOutlierResets)
        let injected = Int(up.injectedResets) + Int(down.injectedResets)
        let n = Int(up.ttlOutliers) + Int(down.ttlOutliers)
        let what = injected > 0 ? ", \(injected) of them a reset the peer then talked past"
            : resets > 0 ? ", \(resets) of them resets" : ", in a direction that also resent data"
        alerts.append(Alert(
            category: .evasion, rule: "siphon.evasion.ttl-outlier", severity: injected > 0 ? .medium : .low,
            message: "\(n) packet\(n == 1 ? "" : "s") between \(f.clientAddress) and \(f.serverAddress) came with TTL "
                + "\(path.outlierTTL) where the flow had \(path.ttl) (\(side)\(what))",
            timestamp: f.end, flow: f, device: f.clientAddress, deviceID: id, destination: e.destination, evidence: [
                ("anomaly", .string("ttl-outlier")), ("direction", .string(side)),
                ("first_ttl", .int(Int(path.ttl))), ("outlier_ttl", .int(Int(path.outlierTTL))),
                ("to_server_packets", .int(Int(up.ttlOutliers))), ("to_client_packets", .int(Int(down.ttlOutliers))),
                ("resets", .int(resets)), ("injected_resets", .int(injected)),
                ("retransmissions", .int(Int(path.retransmissions))),
            ]))
    }

    /// A TCP overlap whose two versions differ: what one endpoint's stack keeps, another's may not, so what an
    /// inspector reassembles can differ from what the receiver saw. Raised once per flow, at its first differing
    /// range (the `anomaly` events list every range).
    public mutating func overlapConflict(
        _ c: OverlapConflict, flow f: Flow, device id: DeviceID, policy: String, destination: GeoInfo?, timestamp: Timestamp,
        into alerts: inout [Alert]
    ) {
        guard evasiveFlows.insert(f.id).inserted else { return }
        let direction = c.direction == 0 ? "to_server" : "to_client"
        alerts.append(Alert(
            category: .evasion, rule: "siphon.evasion.overlap-different-data", severity: .medium,
            message: "TCP segments of \(f.clientAddress) and \(f.serverAddress) overlap with different data "
                + "(\(c.length) bytes at stream offset \(c.offset), \(direction))",
            timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: id, destination: destination, evidence: [
                ("anomaly", .string("overlap-different-data")), ("direction", .string(direction)),
                ("offset", .int(Int(c.offset))), ("length", .int(c.length)), ("policy", .string(policy)),
                ("kept", .string(c.kept.hexString)), ("discarded", .string(c.discarded.hexString)),
            ]))
    }

    /// IP fragments that overlap with different bytes: the receiver's reassembly policy decides which bytes the
    /// datagram carries, so an inspector may not see what the endpoint got. Raised once per datagram; the device is
    /// the local side (the sender when both are), its identity from `identity`.
    public mutating func fragmentConflict(
        _ c: FragmentConflict, destination: GeoInfo?, identity: (IPAddress) -> DeviceID, into alerts: inout [Alert]
    ) {
        let deviceIsSource = AddressScope.isLocal(c.source) || !AddressScope.isLocal(c.destination)
        let device = deviceIsSource ? c.source : c.destination
        guard evasiveDatagrams.insert([c.source.high, c.source.low, c.destination.high, c.destination.low, UInt64(c.identification)]).inserted
        else { return }
        var flow = Flow(
            key: FlowKey(a: c.source, portA: 0, b: c.destination, portB: 0, ipProtocol: c.ipProtocol, vlan: 0), id: 0,
            initiatorIsA: true, start: c.timestamp)
        flow.end = c.timestamp
        alerts.append(Alert(
            category: .evasion, rule: "siphon.evasion.fragment-overlap-different-data", severity: .medium,
            message: "IP fragments from \(c.source) to \(c.destination) overlap with different data "
                + "(\(c.length) bytes at offset \(c.offset), IP id \(c.identification))",
            timestamp: c.timestamp, flow: flow, device: device, deviceID: identity(device),
            destination: deviceIsSource ? destination : nil, evidence: [
                ("anomaly", .string("ip-fragment-overlap-different-data")), ("ip_id", .int(Int(c.identification))),
                ("offset", .int(c.offset)), ("length", .int(c.length)), ("policy", .string("first")),
            ]))
    }
}
