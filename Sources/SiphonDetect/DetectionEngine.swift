public import SiphonCore
public import SiphonFlows
public import SiphonGeo
public import SiphonIntel
public import SiphonApp

/// Thresholds of the built-in detectors (the rule pack sets them; these defaults are argued in docs/detections.md).
public struct DetectionConfiguration: Sendable {
    /// Bytes a device sends to one foreign endpoint, over the whole capture, that make a `foreign-upload` by volume.
    public var uploadBytes = 1_048_576
    /// Sent/received ratio that makes a `foreign-upload` once at least `uploadRatioMinimumBytes` were sent.
    public var uploadRatio = 10.0
    public var uploadRatioMinimumBytes = 16_384
    /// Judged at the end of the capture, against the device's own traffic: a foreign endpoint that received at
    /// least `uploadShare` of everything the device sent (application bytes, all endpoints), at least
    /// `uploadShareMinimumBytes`, and sent back at most `uploadShareMaximumReturned` times that, is an upload.
    public var uploadShare = 0.5
    public var uploadShareMinimumBytes = 4096
    public var uploadShareMaximumReturned = 0.5
    /// Server ports whose flows to a hard-coded address are expected (DNS, NTP, DHCP): no `no-dns-endpoint` for them.
    public var noDNSExemptPorts: Set<UInt16> = [53, 67, 68, 123, 853]
    public var beacons = BeaconConfiguration()
    /// In-flow beaconing (a heartbeat inside one connection).
    public var heartbeat = HeartbeatConfiguration()
    /// Application protocols that carry data in clear, and the bytes a device must send over them to one endpoint
    /// (over the whole capture) for a `cleartext` alert. For HTTP only request bodies count (headers of ordinary
    /// GETs are not uploads), for the others every byte the device sent.
    public var cleartextProtocols: Set<String> = ["http", "mqtt", "smtp", "imap", "pop3", "irc"]
    public var cleartextBytes = 128
    /// The ports each identified protocol is expected on: elsewhere it is a `non-standard-port`.
    public var standardPorts: [String: Set<UInt16>] = [
        "http": [80, 591, 8000, 8008, 8080, 8888, 3128],
        "tls": [443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 4443, 5061, 5223, 5228, 8443, 8883],
        "quic": [443, 80, 8443], "ssh": [22], "mqtt": [1883], "smtp": [25, 587, 2525], "imap": [143], "pop3": [110],
        "dns": [53, 5353, 5355], "irc": C2ChannelDetector.ircPorts,
    ]
    public var identifiers = IdentifierConfiguration()
    public var dnsTunnel = DNSTunnelConfiguration()
    public var nxdomain = NXDomainConfiguration()
    public var icmpTunnel = ICMPTunnelConfiguration()
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

/// Traffic between one device and one endpoint over the whole capture.
public struct EndpointTotals: Sendable {
    public var flows = 0
    public var sent = 0
    public var received = 0
    public var first: Timestamp
    public var last: Timestamp
    public var names: [String] = []
    public var destination: GeoInfo?
    /// The last flow that ended (what an alert judged at the end of the capture points at).
    public var lastFlow: Flow?
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

    /// The packets the next detector call works from (set by the pipeline before it): alerts raised by that call
    /// without frames of their own rest on these, or else on their flow's first packet.
    public var contextFrames: [FrameRef] = []
    /// The same when it is one packet (no array made per transaction).
    public var contextFrame = FrameRef.none

    /// Whether alerts were raised since the last `takeNewAlerts()`.
    public var hasNewAlerts: Bool { raised.count > taken }

    /// The alerts raised since the last call, each with the frames it rests on.
    public func takeNewAlerts() -> ArraySlice<Alert> {
        defer { taken = raised.count }
        for i in taken..<raised.count { raised[i].id = Int(alertsNotKept) + i + 1 }
        for i in taken..<raised.count where raised[i].frames.isEmpty {
            if !contextFrames.isEmpty {
                raised[i].frames = contextFrames
            } else if !contextFrame.isNone {
                raised[i].frames = [contextFrame]
            } else if raised[i].flow.firstFrame != 0 {
                raised[i].frames = [raised[i].flow.firstFrameRef]
            }
        }
        guard raised.count > maximumAlertsKept else { return raised[taken...] }
        // Over the budget: the new alerts go out, but only high and critical ones stay for the verdicts.
        let fresh = Array(raised[taken...])
        raised.removeSubrange(taken...)
        for a in fresh {
            if raised.count < maximumAlertsKept || (a.severity >= .high && raised.count < 2 * maximumAlertsKept) {
                raised.append(a)
            } else {
                alertsNotKept &+= 1
            }
        }
        return fresh[...]
    }
    /// The detectors judged as flows end, one value per category with its own state (docs/detections.md).
    var foreignEndpoint = ForeignEndpointDetector()
    var upload: UploadDetector
    var iocMatch = IOCMatchDetector()
    var nonStandardPort: NonStandardPortDetector
    var cleartext: CleartextDetector
    var noDNSEndpoint: NoDNSEndpointDetector
    var tlsAnomaly: TLSAnomalyDetector
    var beacons: BeaconDetector
    var heartbeats: HeartbeatDetector
    var evasion = EvasionDetector()
    var identifiers = IdentifierLeakDetector()
    var credentials = CredentialLeakDetector()
    var c2Channels = C2ChannelDetector()
    var dnsTunnel: DNSTunnelDetector
    var nxdomains: NXDomainDetector
    var icmpTunnels: ICMPTunnelDetector

    /// Declarative rules of the pack, evaluated on every ended flow of a device.
    public let rules: [Rule]
    /// Keys of rule firings already made per device or device × endpoint (the rule's `per`; per flow needs none).
    var ruleFired: Set<RuleKey> = []
    struct RuleKey: Hashable {
        var rule: Int
        var device: DeviceID
        var endpoint: IPAddress?
    }
    /// Application facts of live flows, by flow id (taken when the flow ends).
    var facts: [UInt64: FlowFacts] = [:]
    public let identifierScanner: IdentifierScanner
    /// Per phone × number: the SMS and calls between them (the numbers' ledger, beside the endpoints').
    public internal(set) var numberLedger: [NumberPair: NumberTotals] = [:]
    /// Number alerts already raised (category, phone, number, kind).
    var numberAlerts: Set<String> = []
    /// Subscriber identities the capture revealed (GTP-C, GSM mobility messages) and already added to the
    /// identifier scanner as known identifiers: a phone's own IMSI or IMEI is then found wherever it is sent.
    var learnedIdentifiers: Set<String> = []
    /// Phones named on the GSM air interface, by identity: what their mobility messages revealed.
    public internal(set) var gsmPhones: [DeviceID: Subscriber] = [:]

    /// Adds a phone's identity the capture revealed to the identifiers looked for (once).
    func learn(_ kind: IdentifierKind, _ value: String?) {
        guard let value, value.count >= 6 else { return }
        let key = kind.rawValue + value
        guard !learnedIdentifiers.contains(key) else { return }
        guard learnedIdentifiers.count < maximumLearnedIdentities else {
            learnedIdentitiesRefused &+= 1
            return
        }
        learnedIdentifiers.insert(key)
        identifierScanner.add(KnownIdentifier(kind: kind, value: value))
    }

    // MARK: Memory budgets (`MemoryBudget`; counted in the stats event's `memory` object)

    /// Identities learned at most; later ones are counted, not searched for.
    public var maximumLearnedIdentities = Int.max
    public private(set) var learnedIdentitiesRefused: UInt64 = 0
    /// Device × endpoint pairs in the ledger at most; a flow to a new pair beyond it is not judged by the
    /// per-endpoint detectors (it is still written as a flow event), and counted.
    public var maximumLedgerPairs = Int.max
    public private(set) var ledgerFlowsNotJudged: UInt64 = 0
    /// What the detectors' own tables hold, together (upload names, beacon series, JA4 endpoints, DNS-tunnel
    /// domains, rule firings, GSM phones, the numbers' ledger and alerts, the link's subscribers): one budget,
    /// given to each detector that keeps a table.
    public var tableBudget = TableBudget() {
        didSet {
            upload.budget = tableBudget
            beacons.budget = tableBudget
            heartbeats.budget = tableBudget
            credentials.budget = tableBudget
            c2Channels.budget = tableBudget
            dnsTunnel.budget = tableBudget
            nxdomains.budget = tableBudget
            icmpTunnels.budget = tableBudget
            link.tableBudget = tableBudget
        }
    }
    /// Alerts kept for the verdicts: the first `maximumAlertsKept`, then only high and critical ones up to twice
    /// that. Every alert is still written as an event; the others are counted in `alertsNotKept`.
    public var maximumAlertsKept = Int.max
    public private(set) var alertsNotKept: UInt64 = 0

    /// Loaded indicator feeds, for what only the detectors see: a ClientHello's JA3, a server certificate's SHA-1
    /// (addresses and names are matched by the pipeline, into `EndedFlow.indicator`).
    public var intel: IndicatorSet?

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
        link = LinkRegistry(declared: devices, excluded: excluded, isLocal: geo.map { g in { @Sendable a in g.isLocal(a) } })
        self.rules = rules
        identifierScanner = IdentifierScanner(configuration: configuration.identifiers)
        upload = UploadDetector(configuration)
        nonStandardPort = NonStandardPortDetector(configuration)
        cleartext = CleartextDetector(configuration)
        noDNSEndpoint = NoDNSEndpointDetector(configuration)
        tlsAnomaly = TLSAnomalyDetector(configuration.tls)
        beacons = BeaconDetector(configuration)
        heartbeats = HeartbeatDetector(configuration)
        followsHeartbeats = configuration.on(.beaconing)
        findsGeneratedNames = configuration.on(.dga)
        nxdomains = NXDomainDetector(configuration.nxdomain)
        icmpTunnels = ICMPTunnelDetector(configuration.icmpTunnel)
        dnsTunnel = DNSTunnelDetector(configuration.dnsTunnel, suffixes: configuration.on(.dnsTunnel) || configuration.on(.dga) ? PublicSuffixList.shared : PublicSuffixList(text: ""))
    }

    /// Whether `address` is never an endpoint abroad (special-purpose ranges, unless `--geo-override` gives it a
    /// country).
    @inline(__always)
    public func isLocal(_ address: IPAddress) -> Bool { geo?.isLocal(address) ?? AddressScope.isLocal(address) }

    /// Whether the initiator of `flow` is a device under test (`LinkRegistry.device(mac:address:)`).
    public func isDevice(_ flow: Flow) -> Bool { link.device(of: flow) != nil }

    /// The identity an alert about `address` (sent from `mac`) carries: its device's, else the address itself.
    func identity(mac: UInt64, address: IPAddress, tunnelled: Bool = false) -> DeviceID {
        link.device(mac: mac, address: address, tunnelled: tunnelled) ?? .address(address)
    }

    /// The identity an alert about the initiator of `flow` carries.
    func identity(of f: Flow) -> DeviceID { identity(mac: f.clientMAC, address: f.clientAddress, tunnelled: f.key.tunnel != 0) }

    /// Updates the ledger with a flow that ended and raises what it makes known.
    public func flowEnded(_ e: consuming EndedFlow) {
        // Taken, not copied (the caller's value is built for this call), into a plain variable: a consuming
        // parameter cannot be captured by the local functions and autoclosures below.
        var e = e
        let f = e.flow
        // Taken for every flow, device or not, so the table never keeps ended flows.
        let facts = self.facts.removeValue(forKey: f.id) ?? FlowFacts()
        if e.indicator == nil, let intel {
            e.indicator = intel.match(fingerprint: facts.ja3) ?? intel.match(fingerprint: facts.certificate?.sha1)
        }
        let device = f.clientAddress, endpoint = f.serverAddress
        // Both ends are hosts of the link as far as their MAC addresses go (the server's may be the gateway's).
        link.observe(mac: f.clientMAC, address: device, at: f.start)
        if f.server.packets > 0 {
            link.observe(mac: f.serverMAC, address: endpoint, at: f.start)
            // An answer on port 53 to a host of the link: the lab's resolver (or the gateway, when it is remote).
            if f.serverPort == 53, e.app == "dns", f.clientMAC != 0 { link.mark(mac: f.serverMAC, .resolver) }
        }
        if configuration.on(.evasion) {
            evasion.flowEnded(e, device: identity(of: f), into: &raised)
        }
        guard let id = link.device(of: f) else { return }
        func active(_ d: inout DeviceActivity) {
            d.flows += 1
            d.sent += e.sent
            guard id.mac == nil else { return }
            if let i = d.addresses.firstIndex(where: { $0.0 == device }) {
                if f.start < d.addresses[i].1 { d.addresses[i].1 = f.start }
                if d.addresses[i].2 < f.end { d.addresses[i].2 = f.end }
            } else if d.addresses.count < LinkRegistry.maximumAddresses {
                d.addresses.append((device, f.start, f.end))
            }
        }
        active(&devices[id, default: DeviceActivity(address: device, first: f.start)])
        guard !isLocal(endpoint) else {
            if !rules.isEmpty { evaluateRules(RuleContext(flow: e, totals: nil, facts: facts), device: id) }
            return
        }
        let pair = Pair(device: id, endpoint: endpoint)
        if ledger.count >= maximumLedgerPairs, ledger[pair] == nil {
            ledgerFlowsNotJudged &+= 1
            return
        }
        // Taken out of the table while updated, so that appending to its arrays does not copy them.
        var t = ledger.removeValue(forKey: pair) ?? EndpointTotals(first: f.start, last: f.end)
        t.flows += 1
        t.lastFlow = f
        if t.contacts.count < EndpointTotals.maximumContacts { t.contacts.append(f.start) }
        t.sent += e.sent
        t.received += e.received
        if f.start < t.first { t.first = f.start }
        if t.last < f.end { t.last = f.end }
        for n in e.names where !t.names.contains(n) { t.names.append(n) }
        if t.destination == nil { t.destination = e.destination }
        let j = FlowJudgement(ended: e, facts: facts, pair: pair, foreign: e.destination?.scope == .foreign)
        // A local function, not `configuration.on` as a value: that closure would copy the whole configuration.
        func on(_ c: AlertCategory) -> Bool { !configuration.disabled.contains(c) }
        if on(.foreignEndpoint) { foreignEndpoint.flowEnded(j, &t, into: &raised) }
        if on(.foreignUpload) { upload.flowEnded(j, &t, into: &raised) }
        if on(.iocMatch) { iocMatch.flowEnded(j, &t, into: &raised) }
        if on(.nonStandardPort) { nonStandardPort.flowEnded(j, &t, into: &raised) }
        if on(.cleartext) { cleartext.flowEnded(j, &t, into: &raised) }
        if on(.noDNSEndpoint) { noDNSEndpoint.flowEnded(j, &t, into: &raised) }
        if on(.tlsAnomaly) { tlsAnomaly.flowEnded(j, &t, into: &raised) }
        ledger[pair] = t
        if !rules.isEmpty { evaluateRules(RuleContext(flow: e, totals: t, facts: facts), device: id) }
        if on(.beaconing) { beacons.flowEnded(j, into: &raised) }
    }

    /// A flow still open: what needs no end is judged now (`foreign-endpoint`, `ioc-match`: once per device ×
    /// endpoint, as when flows end), so that a connection held open for hours is known while it lasts (live
    /// capture). The ledger entry is made, without counting the flow: it counts when it ends.
    public func flowOpen(_ e: EndedFlow) {
        let f = e.flow
        guard let id = link.device(of: f), !isLocal(f.serverAddress) else { return }
        let pair = Pair(device: id, endpoint: f.serverAddress)
        guard ledger.count < maximumLedgerPairs || ledger[pair] != nil else { return }
        var t = ledger.removeValue(forKey: pair) ?? EndpointTotals(first: f.start, last: f.end)
        for n in e.names where !t.names.contains(n) { t.names.append(n) }
        if t.destination == nil { t.destination = e.destination }
        let j = FlowJudgement(ended: e, facts: facts[f.id] ?? FlowFacts(), pair: pair, foreign: e.destination?.scope == .foreign)
        if configuration.on(.foreignEndpoint) { foreignEndpoint.flowEnded(j, &t, into: &raised) }
        if configuration.on(.iocMatch) { iocMatch.flowEnded(j, &t, into: &raised) }
        ledger[pair] = t
    }

    /// Whether in-flow beaconing runs (`beaconing` not disabled).
    let followsHeartbeats: Bool
    /// Whether the NXDOMAIN detector runs (`dga` not disabled): read per DNS answer.
    let findsGeneratedNames: Bool

    /// An exchange of the flow in `slot` begins (`FlowTable.beganExchange`; the flow table follows them when the
    /// pipeline sets its `exchangeSilence` to `configuration.heartbeat.silence`): in-flow beaconing counts the
    /// exchange before it. `payloadBefore`: the flow's payload bytes both ways before this packet; `flow` gives the
    /// flow's record, asked for only at its second exchange. True when alerts were raised.
    public func exchangeBegins(
        slot: Int32, flowID: UInt64, at time: Timestamp, payloadBefore: UInt64, frame: UInt64, flow: () -> Flow
    ) -> Bool {
        guard followsHeartbeats, heartbeats.exchangeBegins(
            slot: slot, flowID: flowID, at: time, payloadBefore: payloadBefore, frame: frame, flow: flow,
            follows: { self.followsFlow($0) })
        else { return false }
        judgeHeartbeat(flow(), slot: slot)
        return hasNewAlerts
    }

    /// Whether the follower keeps a flow's exchanges: a device's, to a non-local endpoint.
    func followsFlow(_ f: Flow) -> Bool { !isLocal(f.serverAddress) && link.device(of: f) != nil }

    /// The flow in `slot` is ending: its last exchange counts, and the series goes.
    public func flowClosing(slot: Int32, flow f: Flow) {
        guard followsHeartbeats else { return }
        if heartbeats.flowEnded(slot: slot, flowID: f.id, payload: f.aToB.payloadBytes &+ f.bToA.payloadBytes) { judgeHeartbeat(f, slot: slot) }
        heartbeats.stop(f.id)
    }

    func judgeHeartbeat(_ f: Flow, slot: Int32) {
        guard let id = link.device(of: f) else { return }
        let destination = geo.map { $0.lookup(f.serverAddress) }
        heartbeats.judge(f, slot: slot, pair: Pair(device: id, endpoint: f.serverAddress), foreign: destination?.scope == .foreign,
                         destination: destination?.scope == .local ? nil : destination, into: &raised)
    }

    /// An ICMP echo request from the initiator of `f`; `data` follows its identifier and sequence number.
    public func echoRequest(_ data: UnsafeRawBufferPointer, flow f: Flow, timestamp: Timestamp) {
        guard configuration.on(.icmpTunnel), let id = link.device(of: f) else { return }
        let destination = geo.map { $0.lookup(f.serverAddress) }
        icmpTunnels.echo(data, flow: f, device: id, destination: destination?.scope == .local ? nil : destination,
                         timestamp: timestamp, into: &raised)
    }

    /// Detectors judged once the capture is over (the upload by share of the device's own traffic): their alerts
    /// come out before the verdicts.
    public func finish() {
        if configuration.on(.foreignUpload) { upload.finish(ledger: &ledger, devices: devices, into: &raised) }
    }

    /// A TCP overlap whose two versions differ (`EvasionDetector.overlapConflict`).
    public func overlapConflict(
        _ c: OverlapConflict, flow f: Flow, policy: String, destination: GeoInfo?, timestamp: Timestamp
    ) {
        guard configuration.on(.evasion) else { return }
        evasion.overlapConflict(c, flow: f, device: identity(of: f), policy: policy,
                                destination: destination, timestamp: timestamp, into: &raised)
    }

    /// IP fragments that overlap with different bytes (`EvasionDetector.fragmentConflict`).
    public func fragmentConflict(_ c: FragmentConflict, destination: GeoInfo?) {
        guard configuration.on(.evasion) else { return }
        evasion.fragmentConflict(c, destination: destination, identity: { identity(mac: link.mac(of: $0) ?? 0, address: $0) }, into: &raised)
    }
}
