public import SiphonCore
public import SiphonFlows
public import SiphonGeo
public import SiphonApp

/// An alert category. The contract's categories (ARCHITECTURE.md) are the static members; declarative rules may
/// add categories of their own, never rename these.
public struct AlertCategory: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let foreignEndpoint = Self(rawValue: "foreign-endpoint")
    public static let foreignUpload = Self(rawValue: "foreign-upload")
    public static let beaconing = Self(rawValue: "beaconing")
    public static let noDNSEndpoint = Self(rawValue: "no-dns-endpoint")
    public static let identifierLeak = Self(rawValue: "identifier-leak")
    public static let dnsTunnel = Self(rawValue: "dns-tunnel")
    public static let cleartext = Self(rawValue: "cleartext")
    public static let nonStandardPort = Self(rawValue: "non-standard-port")
    public static let evasion = Self(rawValue: "evasion")
    public static let iocMatch = Self(rawValue: "ioc-match")
    public static let tlsAnomaly = Self(rawValue: "tls-anomaly")
    /// Beyond the contract's first eleven (issue 18): lookups that mostly name domains that do not exist (a DGA).
    public static let dga = Self(rawValue: "dga")
    /// ICMP echo requests used as a data channel.
    public static let icmpTunnel = Self(rawValue: "icmp-tunnel")

    /// The contract's categories, in its order; each has a built-in detector.
    public static let allCases: [AlertCategory] = [
        .foreignEndpoint, .foreignUpload, .beaconing, .noDNSEndpoint, .identifierLeak, .dnsTunnel, .cleartext,
        .nonStandardPort, .evasion, .iocMatch, .tlsAnomaly, .dga, .icmpTunnel, .c2Channel,
    ]
}

/// How much an alert matters, from informational to critical; ordered.
public enum Severity: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case info, low, medium, high, critical

    public var description: String {
        switch self {
        case .info: "info"
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        case .critical: "critical"
        }
    }

    public init?(name: String) {
        guard let s = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One figure of an alert's evidence.
public enum EvidenceValue: Sendable, Equatable {
    case int(Int)
    case double(Double)
    case string(String)
    case strings([String])
    /// A capture time, written in RFC 3339 form (kept as a time until an output writes it).
    case time(Timestamp)
}

/// A finding about one device, with what made it fire.
public struct Alert: Sendable {
    public var category: AlertCategory
    /// The rule's identifier (`siphon.<category>` for the built-in detectors).
    public var rule: String
    public var severity: Severity
    /// The alert's text. The detectors that raise alerts in bulk (one per device × endpoint) give it as a function
    /// of values they captured, run when the text is read: a quiet scan shows few of its thousands of alerts.
    public var message: String {
        get {
            switch text {
            case .fixed(let s): s
            case .deferred(let render): render()
            }
        }
        set { text = .fixed(newValue) }
    }
    var text: Text
    enum Text: Sendable {
        case fixed(String)
        case deferred(@Sendable () -> String)
    }
    /// Capture time at which the alert became known.
    public var timestamp: Timestamp
    /// The flow that made it fire (the last one, for alerts on aggregates).
    public var flow: Flow
    /// The device (local address) the alert is about.
    public var device: IPAddress
    /// The device's identity across its addresses (its MAC on a link that has them).
    public var deviceID: DeviceID
    public var destination: GeoInfo?
    /// Ordered figures: name and value.
    public var evidence: [(String, EvidenceValue)]
    /// The packets the alert rests on (Wireshark's frame numbers), in frame order: those that carried the matched
    /// bytes or transaction, each contact of a series, or the flow's first packet.
    public var frames: [FrameRef] = []
    /// The alert's number in its scan, from 1 in the order alerts are written (`alert_id`; `siphon extract --alert`).
    public var id = 0
    /// False for an alert about no flow (an SMS, a call): `flow` is then an empty placeholder.
    public var hasFlow = true
    /// The phone number an alert about an SMS or a call is about, and where it leads: boxed, so that the many
    /// alerts about flows stay the size they were (one reference).
    public var numberRecord: AlertNumber?
    public var number: PhoneNumber? { numberRecord?.number }
    public var numberInfo: NumberInfo? { numberRecord?.info }

    public init(
        category: AlertCategory, rule: String, severity: Severity, message: String, timestamp: Timestamp, flow: Flow,
        device: IPAddress, deviceID: DeviceID? = nil, destination: GeoInfo?, evidence: [(String, EvidenceValue)]
    ) {
        self.init(category: category, rule: rule, severity: severity, text: .fixed(message), timestamp: timestamp, flow: flow,
                  device: device, deviceID: deviceID, destination: destination, evidence: evidence)
    }

    init(
        category: AlertCategory, rule: String, severity: Severity, text: Text, timestamp: Timestamp, flow: Flow,
        device: IPAddress, deviceID: DeviceID? = nil, destination: GeoInfo?, evidence: [(String, EvidenceValue)]
    ) {
        self.deviceID = deviceID ?? .address(device)
        self.category = category
        self.rule = rule
        self.severity = severity
        self.text = text
        self.timestamp = timestamp
        self.flow = flow
        self.device = device
        self.destination = destination
        self.evidence = evidence
    }
}

/// The number an alert about an SMS or a call names, and its place.
public final class AlertNumber: Sendable {
    public let number: PhoneNumber
    public let info: NumberInfo?
    public init(_ number: PhoneNumber, _ info: NumberInfo?) {
        self.number = number
        self.info = info
    }
}

/// An endpoint as alert texts name it: "192.0.2.1 (name) [CC, Owner]". Captures only what the text needs, so
/// that a deferred message holds a few strings, not the endpoint's ledger entry.
struct EndpointLabel: Sendable, CustomStringConvertible {
    var address: IPAddress
    var name: String?
    var country: String?
    var owner: String?

    init(_ address: IPAddress, _ t: EndpointTotals) {
        self.address = address
        name = t.names.first
        country = t.destination?.country
        owner = t.destination?.asOrganization
    }

    var description: String {
        // Built as bytes in one buffer.
        var out: [UInt8] = []
        out.reserveCapacity(96)
        out.append(contentsOf: address.description.utf8)
        if let n = name {
            out.append(contentsOf: " (".utf8)
            out.append(contentsOf: n.utf8)
            out.append(UInt8(ascii: ")"))
        }
        if country != nil || owner != nil {
            out.append(contentsOf: " [".utf8)
            if let c = country { out.append(contentsOf: c.utf8) }
            if let o = owner {
                if country != nil { out.append(contentsOf: ", ".utf8) }
                out.append(contentsOf: o.utf8)
            }
            out.append(UInt8(ascii: "]"))
        }
        return String(decoding: out, as: UTF8.self)
    }
}
