public import SiphonCore
public import SiphonFlows
public import SiphonGeo
public import SiphonIntel
internal import SiphonApp

/// Thresholds of the built-in detectors (the rule pack sets them; these defaults are argued in docs/detections.md).
public struct DetectionConfiguration: Sendable {
    /// Bytes a device sends to one foreign endpoint, over the whole capture, that make a `foreign-upload` by volume.
    public var uploadBytes = 1_048_576
    /// Sent/received ratio that makes a `foreign-upload` once at least `uploadRatioMinimumBytes` were sent.
    public var uploadRatio = 10.0
    public var uploadRatioMinimumBytes = 16_384
    /// Server ports whose flows to a hard-coded address are expected (DNS, NTP, DHCP): no `no-dns-endpoint` for them.
    public var noDNSExemptPorts: Set<UInt16> = [53, 67, 68, 123, 853]
    public var beacons = BeaconConfiguration()
    /// Application protocols that carry data in clear, and the bytes a device must send over them to one endpoint
    /// (over the whole capture) for a `cleartext` alert. For HTTP only request bodies count (headers of ordinary
    /// GETs are not uploads), for the others every byte the device sent.
    public var cleartextProtocols: Set<String> = ["http", "mqtt", "smtp", "imap", "pop3"]
    public var cleartextBytes = 128
    /// The ports each identified protocol is expected on: elsewhere it is a `non-standard-port`.
    public var standardPorts: [String: Set<UInt16>] = [
        "http": [80, 591, 8000, 8008, 8080, 8888, 3128],
        "tls": [443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 4443, 5061, 5223, 5228, 8443, 8883],
        "quic": [443, 80, 8443], "ssh": [22], "mqtt": [1883], "smtp": [25, 587, 2525], "imap": [143], "pop3": [110],
        "dns": [53, 5353, 5355],
    ]
    public var identifiers = IdentifierConfiguration()
    public var dnsTunnel = DNSTunnelConfiguration()
    public var tls = TLSAnomalyConfiguration()
    /// `evasion`: the TTL difference within a TCP direction that makes a packet an outlier (Snort stream5's
    /// `ttl_limit`, 5). The pipeline hands it to the flow table, which tracks TTLs per direction.
    public var ttlLimit: UInt8 = 5
    /// Built-in detectors turned off (by the categories they raise).
    public var disabled: Set<AlertCategory> = []
    public init() {}

    @inline(__always) public func on(_ c: AlertCategory) -> Bool { !disabled.contains(c) }
}

/// Parameters of the `tls-anomaly` detector.
public struct TLSAnomalyConfiguration: Sendable {
    /// Negotiated versions that are obsolete (RFC 8996 deprecates TLS 1.0 and 1.1; SSLv3 is broken).
    public var obsoleteVersions: Set<UInt16> = [0x0002, 0x0300, 0x0301, 0x0302]
    /// Whether a ClientHello without SNI to a foreign address is an anomaly (apps that connect to hard-coded
    /// addresses often send none).
    public var noSNIForeign = true
    public init() {}

    static let versions: [String: UInt16] = ["SSLv2": 0x0002, "SSLv3": 0x0300, "TLS 1.0": 0x0301, "TLS 1.1": 0x0302, "TLS 1.2": 0x0303]
}

/// What the pipeline knows about a flow when it ends, as the detectors need it.
public struct EndedFlow {
    public var flow: Flow
    /// Application bytes from the client (the device) and from the server: reassembled for TCP.
    public var sent: Int
    public var received: Int
    /// DNS names that resolved to the server before the flow began.
    public var resolvedNames: [String]
    /// Every name known for the server (DNS, SNI, HTTP Host).
    public var names: [String]
    public var destination: GeoInfo?
    public var app: String
    /// A TCP flow whose handshake the capture missed (it began before the capture did).
    public var midstream: Bool
    /// The loaded indicator the server's address or one of its names matched.
    public var indicator: Indicator?

    public init(
        flow: Flow, sent: Int, received: Int, resolvedNames: [String], names: [String], destination: GeoInfo?,
        app: String, midstream: Bool = false, indicator: Indicator? = nil
    ) {
        self.midstream = midstream
        self.indicator = indicator
        self.flow = flow
        self.sent = sent
        self.received = received
        self.resolvedNames = resolvedNames
        self.names = names
        self.destination = destination
        self.app = app
    }
}

/// Bits of `EndpointTotals.raisedBits`.
enum RaisedBit {
    static let foreignEndpoint = 0, foreignUpload = 1, iocMatch = 2, cleartext = 3, noDNSEndpoint = 4
}

/// Traffic between one device and one endpoint over the whole capture.
public struct EndpointTotals: Sendable {
    public var flows = 0
    public var sent = 0
    public var received = 0
    public var first: Timestamp
    public var last: Timestamp
    public var names: [String] = []
    public var destination: GeoInfo?
    /// Server ports already reported as non-standard.
    public var nonStandardPorts: Set<UInt16> = []
    /// Bytes sent over cleartext protocols, and which.
    public var cleartextSent = 0
    public var cleartextProtocols: [String] = []
    /// Variants of categories already raised for this device × endpoint (tls-anomaly kinds; each is raised once).
    public var raised: Set<String> = []
    /// The built-in categories already raised for this device × endpoint, a bit each (no string hashing per flow).
    public var raisedBits: UInt16 = 0

    /// Marks bit `b` raised; false when it already was.
    @inline(__always) mutating func mark(_ b: Int) -> Bool {
        let m: UInt16 = 1 << UInt16(b)
        if raisedBits & m != 0 { return false }
        raisedBits |= m
        return true
    }
    @inline(__always) func has(_ b: Int) -> Bool { raisedBits & (1 << UInt16(b)) != 0 }
    /// Flow start times (for the report's timeline; the first `maximumContacts` of them).
    public var contacts: [Timestamp] = []
    public static let maximumContacts = 2000
}

/// Per-pipeline detection state: devices, the device × endpoint ledger, and the built-in detectors that run as
/// flows end. It holds no global state; alerts come out as soon as they are known, in capture time.
public final class DetectionEngine {
    public struct Pair: Hashable, Sendable {
        public var device: DeviceID
        public var endpoint: IPAddress
    }

    public let configuration: DetectionConfiguration
    /// The hosts of the captured link: which initiator is a device under test, and with which addresses.
    public let link: LinkRegistry
    /// Every device that initiated a flow, with the address it first did so from (also devices that only talked
    /// to local hosts: their verdict says so).
    public private(set) var devices: [DeviceID: DeviceActivity] = [:]
    /// Identities left out of the verdicts as infrastructure, with the alerts they had drawn (`verdicts()`).
    public internal(set) var withdrawn: [(DeviceID, Int)] = []
    public private(set) var ledger: [Pair: EndpointTotals] = [:]
    /// Every alert raised so far, in the order raised (for the verdict at the end).
    public internal(set) var raised: [Alert] = []
    /// How many of `raised` the pipeline has taken.
    private var taken = 0

    /// The alerts raised since the last call.
    public func takeNewAlerts() -> ArraySlice<Alert> {
        defer { taken = raised.count }
        return raised[taken...]
    }
    /// Contact times (flow starts, seconds) per device and target: the endpoint's address and its first name.
    private var contacts: [BeaconTarget: Series] = [:]
    /// A target's recent contact times, and how many contacts it had in all.
    struct Series {
        var times: [Timestamp] = []
        var total = 0
    }
    private var beaconing: Set<BeaconTarget> = []

    struct BeaconTarget: Hashable {
        var device: DeviceID
        var target: Target
    }
    /// What a series counts contacts to (hashing an address, not its text, for the common case).
    enum Target: Hashable, CustomStringConvertible {
        case address(IPAddress)
        case name(String)
        case ja4(String)
        var description: String {
            switch self {
            case .address(let a): a.description
            case .name(let n): n
            case .ja4(let f): "JA4 " + f
            }
        }
    }

    /// Declarative rules of the pack, evaluated on every ended flow of a device.
    public let rules: [Rule]
    /// Keys of rule firings already made (rule index and device, endpoint or flow), per the rule's `per`.
    var ruleFired: Set<RuleKey> = []
    struct RuleKey: Hashable {
        var rule: Int
        var device: DeviceID
        var endpoint: IPAddress?
        var flow: UInt64?
    }
    /// Application facts of live flows, by flow id (taken when the flow ends).
    var facts: [UInt64: FlowFacts] = [:]
    /// Device × endpoint (or DNS domain) × kind already reported as identifier leaks.
    var identifierRaised: Set<IdentifierKey> = []
    public let identifierScanner: IdentifierScanner
    let suffixes: PublicSuffixList
    var dnsDomains: [DomainKey: DNSDomainTotals] = [:]
    /// Registered domains of recent query names (most queries repeat a name).
    var registeredDomains: [String: String?] = [:]
    struct DomainKey: Hashable {
        var device: DeviceID
        var domain: String
    }

    /// Country data for endpoints known only from transactions (DNS resolvers, HTTP servers of live flows).
    public let geo: GeoDatabase?

    /// `devices`: the devices under test (`--device`: addresses, prefixes, MACs); empty: every host of the captured
    /// link that initiates traffic, infrastructure left out. `excluded`: never devices (`--not-device`).
    public init(
        configuration: DetectionConfiguration = DetectionConfiguration(), devices: [DeviceSelector] = [],
        excluded: [DeviceSelector] = [], rules: [Rule] = [], geo: GeoDatabase? = nil
    ) {
        self.configuration = configuration
        self.geo = geo
        link = LinkRegistry(declared: devices, excluded: excluded)
        self.rules = rules
        identifierScanner = IdentifierScanner(configuration: configuration.identifiers)
        suffixes = configuration.on(.dnsTunnel) ? PublicSuffixList.shared : PublicSuffixList(text: "")
    }

    /// Whether the initiator of `flow` is a device under test (`LinkRegistry.device(mac:address:)`).
    public func isDevice(_ flow: Flow) -> Bool { link.device(of: flow) != nil }

    /// The identity an alert about `address` (sent from `mac`) carries: its device's, else the address itself.
    func identity(mac: UInt64, address: IPAddress) -> DeviceID { link.device(mac: mac, address: address) ?? .address(address) }

    /// Updates the ledger with a flow that ended and raises what it makes known.
    public func flowEnded(_ e: EndedFlow) {
        let f = e.flow
        // Taken for every flow, device or not, so the table never keeps ended flows.
        let facts = self.facts.removeValue(forKey: f.id) ?? FlowFacts()
        let device = f.clientAddress, endpoint = f.serverAddress
        // Both ends are hosts of the link as far as their MAC addresses go (the server's may be the gateway's).
        link.observe(mac: f.clientMAC, address: device, at: f.start)
        if f.server.packets > 0 {
            link.observe(mac: f.serverMAC, address: endpoint, at: f.start)
            // An answer on port 53 to a host of the link: the lab's resolver (or the gateway, when it is remote).
            if f.serverPort == 53, e.app == "dns", f.clientMAC != 0 { link.mark(mac: f.serverMAC, .resolver) }
        }
        if configuration.on(.evasion) {
            pathAnomalies(e)
            evasiveFlows.remove(f.id)  // the overlap alert's mark: the flow is over
        }
        guard let id = link.device(of: f) else { return }
        func active(_ d: inout DeviceActivity) {
            d.flows += 1
            guard id.mac == nil else { return }
            if let i = d.addresses.firstIndex(where: { $0.0 == device }) {
                if f.start < d.addresses[i].1 { d.addresses[i].1 = f.start }
                if d.addresses[i].2 < f.end { d.addresses[i].2 = f.end }
            } else if d.addresses.count < LinkRegistry.maximumAddresses {
                d.addresses.append((device, f.start, f.end))
            }
        }
        active(&devices[id, default: DeviceActivity(address: device, first: f.start)])
        guard !AddressScope.isLocal(endpoint) else {
            if !rules.isEmpty { evaluateRules(RuleContext(flow: e, totals: nil, facts: facts), device: id) }
            return
        }
        let pair = Pair(device: id, endpoint: endpoint)
        // Taken out of the table while updated, so that appending to its arrays does not copy them.
        var t = ledger.removeValue(forKey: pair) ?? EndpointTotals(first: f.start, last: f.end)
        t.flows += 1
        if t.contacts.count < EndpointTotals.maximumContacts { t.contacts.append(f.start) }
        t.sent += e.sent
        t.received += e.received
        if f.start < t.first { t.first = f.start }
        if t.last < f.end { t.last = f.end }
        for n in e.names where !t.names.contains(n) { t.names.append(n) }
        if t.destination == nil { t.destination = e.destination }
        let foreign = e.destination?.scope == .foreign

        // A local function, not `configuration.on` as a value: that closure would copy the whole configuration.
        func on(_ c: AlertCategory) -> Bool { !configuration.disabled.contains(c) }
        if foreign, on(.foreignEndpoint), t.mark(RaisedBit.foreignEndpoint) {
            let label = EndpointLabel(endpoint, t)
            raise(.foreignEndpoint, .info, { "\(device) exchanged traffic with \(label)" }, e, pair, [
                ("first_contact", .time(t.first)),
                ("sent_bytes", .int(e.sent)), ("received_bytes", .int(e.received)),
            ])
        }
        // Per endpoint address, and per name over all its addresses (an IPv4 and an IPv6 flow to one name, or a
        // service behind rotating addresses, count together).
        var byName: NameUpload?
        let nameKey = e.names.first.map { NameKey(device: id, name: $0) }
        if foreign, on(.foreignUpload), let nameKey {
            func add(_ u: inout NameUpload) -> NameUpload {
                u.sent += e.sent
                u.received += e.received
                u.flows += 1
                if !u.addresses.contains(endpoint) && u.addresses.count < 16 { u.addresses.append(endpoint) }
                return u
            }
            byName = add(&nameUploads[nameKey, default: NameUpload(first: f.start)])
        }
        if foreign, on(.foreignUpload), !t.has(RaisedBit.foreignUpload), byName?.raised != true {
            func judged(_ sent: Int, _ received: Int) -> (volume: Bool, ratio: Bool) {
                (sent >= configuration.uploadBytes, sent >= configuration.uploadRatioMinimumBytes
                    && Double(sent) >= configuration.uploadRatio * Double(max(received, 1)))
            }
            let own = judged(t.sent, t.received)
            let named: (volume: Bool, ratio: Bool) = byName.map { judged($0.sent, $0.received) } ?? (false, false)
            // The name's totals decide when they cross a threshold the address's own do not.
            let useName = !(own.volume || own.ratio) || (named.volume && !own.volume)
            let (byVolume, byRatio) = useName ? named : own
            if byVolume || byRatio {
                _ = t.mark(RaisedBit.foreignUpload)
                let aggregate = useName ? byName : nil
                if let nameKey, aggregate != nil { nameUploads[nameKey]?.raised = true }
                let label = EndpointLabel(endpoint, t)
                let sent = aggregate?.sent ?? t.sent, received = aggregate?.received ?? t.received
                let addresses = aggregate?.addresses.count ?? 1
                var evidence: [(String, EvidenceValue)] = [
                    ("sent_bytes", .int(sent)), ("received_bytes", .int(received)), ("flows", .int(aggregate?.flows ?? t.flows)),
                    ("first_contact", .time(aggregate?.first ?? t.first)), ("last_contact", .time(t.last)),
                    ("reason", .string(byVolume ? "volume" : "ratio")),
                ]
                if let aggregate, let name = e.names.first {
                    evidence += [("name", .string(name)), ("addresses", .strings(aggregate.addresses.map { $0.description }))]
                }
                raise(.foreignUpload, byVolume ? .high : .medium, {
                    addresses > 1
                        ? "\(device) sent \(sent) bytes (received \(received)) to \(label.name ?? "") over \(addresses) addresses, the last \(label)"
                        : "\(device) sent \(sent) bytes (received \(received)) to \(label)"
                }, e, pair, evidence)
            }
        }
        if let i = e.indicator, on(.iocMatch), t.mark(RaisedBit.iocMatch) {
            var evidence: [(String, EvidenceValue)] = [
                ("indicator", .string(i.value)), ("indicator_type", .string(i.kind.rawValue)), ("source", .string(i.source)),
            ]
            if let tag = i.tag { evidence.append(("tag", .string(tag))) }
            let text = "\(device) contacted \(describe(endpoint, t)), listed as \(i.value) in \(i.source)" + (i.tag.map { " (\($0))" } ?? "")
            raise(.iocMatch, .high, { text }, e, pair, evidence)
        }
        // A known protocol off its ports, or an unidentified one on a high TCP port (UDP: media, games and VPNs use
        // any port), with data both ways: foreign endpoints only. Informational, except a cleartext protocol off its
        // ports (HTTP on 5555...), which is low: benign apps do both (messengers on 5222, TLS on 8080/9001).
        if foreign, on(.nonStandardPort), e.sent > 0, e.received > 0, f.key.ipProtocol == 6 || (f.key.ipProtocol == 17 && e.app != "unknown"),
           !configuration.noDNSExemptPorts.contains(f.serverPort) {
            let known = configuration.standardPorts[e.app]
            let odd = known.map { !$0.contains(f.serverPort) } ?? (e.app == "unknown" && f.serverPort >= 1024)
            if odd, t.nonStandardPorts.insert(f.serverPort).inserted {
                let what = e.app == "unknown" ? "an unidentified protocol" : e.app.uppercased()
                let label = EndpointLabel(endpoint, t), port = f.serverPort
                raise(.nonStandardPort, configuration.cleartextProtocols.contains(e.app) ? .low : .info,
                      { "\(device) spoke \(what) to \(label) on port \(port)" }, e, pair, [
                        ("app", .string(e.app)), ("dest_port", .int(Int(f.serverPort))),
                        ("transport", .string(f.key.ipProtocol == 6 ? "TCP" : "UDP")),
                        ("sent_bytes", .int(e.sent)), ("received_bytes", .int(e.received)),
                      ])
            }
        }
        let clear = e.app == "http" ? facts.httpBodyBytes : e.sent
        if on(.cleartext), configuration.cleartextProtocols.contains(e.app), clear > 0 {
            t.cleartextSent += clear
            if !t.cleartextProtocols.contains(e.app) { t.cleartextProtocols.append(e.app) }
            if t.cleartextSent >= configuration.cleartextBytes, t.mark(RaisedBit.cleartext) {
                let label = EndpointLabel(endpoint, t), sent = t.cleartextSent, protocols = t.cleartextProtocols
                raise(.cleartext, foreign ? .medium : .low,
                      { "\(device) sent \(sent) bytes in clear (\(protocols.joined(separator: ", "))) to \(label)" },
                      e, pair, [
                        ("protocols", .strings(t.cleartextProtocols)), ("cleartext_sent_bytes", .int(t.cleartextSent)),
                        ("flows", .int(t.flows)), ("first_contact", .time(t.first)),
                      ])
            }
        }
        // A flow already running when the capture began may have been resolved before it: not evidence.
        if on(.noDNSEndpoint), e.resolvedNames.isEmpty, !e.midstream, !configuration.noDNSExemptPorts.contains(f.serverPort), f.server.packets > 0,
           t.mark(RaisedBit.noDNSEndpoint) {
            // A name inside the flow (SNI, Host) suggests resolution the capture did not see (before it, or DoH).
            // Low at most: messengers hard-code their servers and learn media relays in-band (nDPI's benign phone
            // captures: 90 such alerts over WhatsApp, Telegram, Viber...); the verdict weighs it with the rest.
            let label = EndpointLabel(endpoint, t)
            raise(.noDNSEndpoint, foreign && e.names.isEmpty ? .low : .info,
                  { "\(device) connected to \(label), an address no DNS answer in the capture gave" }, e, pair, [
                    ("dest_port", .int(Int(f.serverPort))), ("names_in_flow", .strings(e.names)),
                    ("sent_bytes", .int(e.sent)), ("received_bytes", .int(e.received)),
                  ])
        }
        if on(.tlsAnomaly) { tlsAnomalies(e, facts, &t, pair, foreign: foreign) }
        ledger[pair] = t
        if !rules.isEmpty { evaluateRules(RuleContext(flow: e, totals: t, facts: facts), device: id) }
        // Beaconing: contacts that got an answer, on ports where periodic traffic is not expected anyway.
        if on(.beaconing), f.server.packets > 0, !configuration.noDNSExemptPorts.contains(f.serverPort) {
            var targets: [Target] = [.address(endpoint)]
            if let name = e.names.first { targets.append(.name(name)) }
            // One alert per series: once the address or the name beacons, the other target stops counting.
            let keys = targets.map { BeaconTarget(device: id, target: $0) }
            if !keys.contains(where: beaconing.contains) {
                for key in keys {
                    contact(key, e, pair, foreign: foreign)
                    if beaconing.contains(key) {
                        beaconing.formUnion(keys)
                        for k in keys { contacts[k] = nil }
                        break
                    }
                }
            }
            // The TLS fingerprint: an implant that rotates foreign servers keeps its TLS stack. Its own series, over
            // foreign endpoints only, raised once it spans three or more of them and none beacons by itself (one
            // endpoint is the address's series; regular visits to several home sites are not rotation).
            if foreign, let ja4 = facts.ja4, !ja4.isEmpty {
                let key = BeaconTarget(device: id, target: .ja4(ja4))
                if !beaconing.contains(key) {
                    ja4Endpoints[key, default: []].insert(endpoint)
                    let spread = ja4Endpoints[key]!
                    let explained = spread.contains { beaconing.contains(BeaconTarget(device: id, target: .address($0))) }
                    contact(key, e, pair, foreign: foreign, mayRaise: spread.count >= 3 && !explained)
                    if beaconing.contains(key) { ja4Endpoints[key] = nil }
                }
            }
        }
    }

    /// Upload totals per device × endpoint name, over all the name's addresses.
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
    private var nameUploads: [NameKey: NameUpload] = [:]

    /// Endpoints contacted per device × JA4 series.
    private var ja4Endpoints: [BeaconTarget: Set<IPAddress>] = [:]

    private func contact(_ key: BeaconTarget, _ e: EndedFlow, _ pair: Pair, foreign: Bool, mayRaise: Bool = true) {
        let c = configuration.beacons
        // Updated in place through the dictionary's modify accessor: one lookup, and no copy of the array.
        func add(_ series: inout Series) -> ([Timestamp], Int) {
            if series.times.count >= c.maximumContacts { series.times.removeFirst(series.times.count - c.maximumContacts + 1) }
            series.times.append(e.flow.start)
            series.total += 1
            return (series.times, series.total)
        }
        let (times, total) = add(&contacts[key, default: Series()])
        // Scored at every contact up to 64, then every n/16 contacts: scoring sorts the series, and a long irregular
        // series (days of a CDN) would otherwise cost O(n² log n). A beacon is still found within 6 % of its length.
        let n = times.count
        guard mayRaise, n >= c.minimumContacts, n <= 64 || total % (n / 16) == 0,
              let score = BeaconScore(times: times.map { $0.secondsDouble }, configuration: c), score.isBeacon(c)
        else { return }
        beaconing.insert(key)
        contacts[key] = nil
        let sorted = times.sorted()
        let rounded = (score.medianInterval * 10).rounded() / 10
        raised.append(Alert(
            category: .beaconing, rule: "siphon.beaconing", severity: foreign ? .medium : .low,
            message: "\(e.flow.clientAddress) contacts \(key.target.description) every \(rounded) s (\(score.contacts) contacts)",
            timestamp: e.flow.end, flow: e.flow, device: e.flow.clientAddress, deviceID: key.device, destination: e.destination, evidence: [
                ("target", .string(key.target.description)), ("contacts", .int(score.contacts)),
                ("median_interval_s", .double(score.medianInterval)), ("mad_s", .double(score.deviation)),
                ("regular_fraction", .double(score.regularFraction)),
                ("first_contact", .time(sorted[0])),
                ("last_contact", .time(sorted[sorted.count - 1])),
            ]))
    }


    /// Live flows that already have an overlap `evasion` alert (one per flow; the other kinds are raised once, when
    /// the flow ends).
    private var evasiveFlows: Set<UInt64> = []

    /// Packets the receiver drops but an inspector may take, at the end of a flow: bad TCP/UDP checksums on
    /// segments that carried payload or SYN/FIN/RST (the pipeline already ignored them), and packets whose TTL
    /// departs from the direction's first by more than the limit (a segment that expires before the receiver, or
    /// one another host injected, such as a forged reset). Raised when the flow ends; the device is the client.
    func pathAnomalies(_ e: EndedFlow) {
        let f = e.flow
        let up = f.clientPath, down = f.serverPath
        if up.badChecksumsWithEffect > 0 || down.badChecksumsWithEffect > 0 {
            let n = Int(up.badChecksumsWithEffect) + Int(down.badChecksumsWithEffect)
            let what = f.key.ipProtocol == 6 ? "TCP" : "UDP"
            raised.append(Alert(
                category: .evasion, rule: "siphon.evasion.bad-checksum", severity: .medium,
                message: "\(n) \(what) packet\(n == 1 ? "" : "s") between \(f.clientAddress) and \(f.serverAddress) "
                    + "carried data or flags under a bad checksum (dropped by the receiver, ignored here)",
                timestamp: f.end, flow: f, device: f.clientAddress, deviceID: identity(mac: f.clientMAC, address: f.clientAddress),
                destination: e.destination, evidence: [
                    ("anomaly", .string("bad-checksum")),
                    ("to_server_packets", .int(Int(up.badChecksumsWithEffect))),
                    ("to_client_packets", .int(Int(down.badChecksumsWithEffect))),
                    ("bad_checksum_packets", .int(Int(up.badChecksums) + Int(down.badChecksums))),
                ]))
        }
        // A TTL outlier alone is common (a load balancer's or a SYN proxy's packets, a route change): it counts
        // when it is a reset (low; medium when the same side then went on sending data, so the reset was forged) or
        // data in a direction that also sent data twice (the two copies of an insertion).
        func suspicious(_ p: PathFacts) -> Bool { p.ttlOutlierResets > 0 || (p.ttlOutliers > 0 && p.retransmissions > 0) }
        if suspicious(up) || suspicious(down) {
            let (side, path) = suspicious(up) ? ("to_server", up) : ("to_client", down)
            let resets = Int(up.ttlOutlierResets) + Int(down.ttlOutlierResets)
            let injected = Int(up.injectedResets) + Int(down.injectedResets)
            let n = Int(up.ttlOutliers) + Int(down.ttlOutliers)
            let what = injected > 0 ? ", \(injected) of them a reset the peer then talked past"
                : resets > 0 ? ", \(resets) of them resets" : ", in a direction that also resent data"
            raised.append(Alert(
                category: .evasion, rule: "siphon.evasion.ttl-outlier", severity: injected > 0 ? .medium : .low,
                message: "\(n) packet\(n == 1 ? "" : "s") between \(f.clientAddress) and \(f.serverAddress) came with TTL "
                    + "\(path.outlierTTL) where the flow had \(path.ttl) (\(side)\(what))",
                timestamp: f.end, flow: f, device: f.clientAddress, deviceID: identity(mac: f.clientMAC, address: f.clientAddress),
                destination: e.destination, evidence: [
                    ("anomaly", .string("ttl-outlier")), ("direction", .string(side)),
                    ("first_ttl", .int(Int(path.ttl))), ("outlier_ttl", .int(Int(path.outlierTTL))),
                    ("to_server_packets", .int(Int(up.ttlOutliers))), ("to_client_packets", .int(Int(down.ttlOutliers))),
                    ("resets", .int(resets)), ("injected_resets", .int(injected)),
                    ("retransmissions", .int(Int(path.retransmissions))),
                ]))
        }
    }

    /// A TCP overlap whose two versions differ: what one endpoint's stack keeps, another's may not, so what an
    /// inspector reassembles can differ from what the receiver saw. Raised once per flow; the device is the client.
    public func overlapConflict(
        _ c: OverlapConflict, flow f: Flow, policy: String, destination: GeoInfo?, timestamp: Timestamp
    ) {
        guard configuration.on(.evasion), evasiveFlows.insert(f.id).inserted else { return }
        let direction = c.direction == 0 ? "to_server" : "to_client"
        raised.append(Alert(
            category: .evasion, rule: "siphon.evasion.overlap-different-data", severity: .medium,
            message: "TCP segments of \(f.clientAddress) and \(f.serverAddress) overlap with different data "
                + "(\(c.length) bytes at stream offset \(c.offset), \(direction))",
            timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: identity(mac: f.clientMAC, address: f.clientAddress),
            destination: destination, evidence: [
                ("anomaly", .string("overlap-different-data")), ("direction", .string(direction)),
                ("offset", .int(Int(c.offset))), ("length", .int(c.length)), ("policy", .string(policy)),
                ("kept", .string(c.kept.hexString)), ("discarded", .string(c.discarded.hexString)),
            ]))
    }

    /// Fragmented datagrams already reported (source, destination, IP id).
    private var evasiveDatagrams: Set<[UInt64]> = []

    /// IP fragments that overlap with different bytes: the receiver's reassembly policy decides which bytes the
    /// datagram carries, so an inspector may not see what the endpoint got. Raised once per datagram; the device is
    /// the local side (the sender when both are).
    public func fragmentConflict(_ c: FragmentConflict, destination: GeoInfo?) {
        guard configuration.on(.evasion) else { return }
        let deviceIsSource = AddressScope.isLocal(c.source) || !AddressScope.isLocal(c.destination)
        let device = deviceIsSource ? c.source : c.destination
        guard evasiveDatagrams.insert([c.source.high, c.source.low, c.destination.high, c.destination.low, UInt64(c.identification)]).inserted
        else { return }
        var flow = Flow(
            key: FlowKey(a: c.source, portA: 0, b: c.destination, portB: 0, ipProtocol: c.ipProtocol, vlan: 0), id: 0,
            initiatorIsA: true, start: c.timestamp)
        flow.end = c.timestamp
        raised.append(Alert(
            category: .evasion, rule: "siphon.evasion.fragment-overlap-different-data", severity: .medium,
            message: "IP fragments from \(c.source) to \(c.destination) overlap with different data "
                + "(\(c.length) bytes at offset \(c.offset), IP id \(c.identification))",
            timestamp: c.timestamp, flow: flow, device: device, deviceID: identity(mac: link.mac(of: device) ?? 0, address: device),
            destination: deviceIsSource ? destination : nil, evidence: [
                ("anomaly", .string("ip-fragment-overlap-different-data")), ("ip_id", .int(Int(c.identification))),
                ("offset", .int(c.offset)), ("length", .int(c.length)), ("policy", .string("first")),
            ]))
    }

    func describe(_ endpoint: IPAddress, _ t: EndpointTotals) -> String { EndpointLabel(endpoint, t).description }

    /// Raises a built-in detector's alert; its text is built when read (`Alert.message`).
    func raise(
        _ category: AlertCategory, _ severity: Severity, _ message: @escaping @Sendable () -> String, _ e: EndedFlow,
        _ pair: Pair, _ evidence: [(String, EvidenceValue)]
    ) {
        raised.append(Alert(
            category: category, rule: ruleName(category), severity: severity, text: .deferred(message),
            timestamp: e.flow.end, flow: e.flow, device: e.flow.clientAddress, deviceID: pair.device, destination: e.destination,
            evidence: evidence))
    }

    /// `siphon.<category>`, made once per category (not a string built per alert).
    private var ruleNames: [AlertCategory: String] = [:]
    func ruleName(_ c: AlertCategory) -> String {
        if let known = ruleNames[c] { return known }
        let name = "siphon.\(c.rawValue)"
        ruleNames[c] = name
        return name
    }
}
