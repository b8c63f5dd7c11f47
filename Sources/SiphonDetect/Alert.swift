public import SiphonCore
public import SiphonFlows
public import SiphonGeo

/// The alert categories of the output contract (ARCHITECTURE.md). Rules may add categories; these are never renamed.
public enum AlertCategory: String, Sendable, CaseIterable {
    case foreignEndpoint = "foreign-endpoint"
    case foreignUpload = "foreign-upload"
    case beaconing
    case noDNSEndpoint = "no-dns-endpoint"
    case identifierLeak = "identifier-leak"
    case dnsTunnel = "dns-tunnel"
    case cleartext
    case nonStandardPort = "non-standard-port"
    case evasion
    case iocMatch = "ioc-match"
    case tlsAnomaly = "tls-anomaly"
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
}

/// A finding about one device, with what made it fire.
public struct Alert: Sendable {
    public var category: AlertCategory
    /// The rule's identifier (`siphon.<category>` for the built-in detectors).
    public var rule: String
    public var severity: Severity
    public var message: String
    /// Capture time at which the alert became known.
    public var timestamp: Timestamp
    /// The flow that made it fire (the last one, for alerts on aggregates).
    public var flow: Flow
    /// The device (local address) the alert is about.
    public var device: IPAddress
    public var destination: GeoInfo?
    /// Ordered figures: name and value.
    public var evidence: [(String, EvidenceValue)]
}
