import SiphonCore

/// How the verdict weighs the findings about one device × endpoint (docs/detections.md, "Verdict per device").
///
/// Apps and implants draw the same single findings: a messenger uploads media abroad, an IoT hub keeps a heartbeat
/// to its cloud, an old app sends no SNI, KakaoTalk's own protocol runs TLS 1.0 with a self-signed certificate on
/// port 9001 to hard-coded addresses. What sets an implant apart is a command server's behaviour (a heartbeat, a
/// regular series of contacts, generated names) at an endpoint that also looks like one (a certificate no public
/// CA signed, no DNS name, a port off the protocol's, data in clear). Each kind of finding is worth points, once
/// per endpoint:
///
/// | finding | points | behaviour |
/// |---|---|---|
/// | beaconing (contacts, in one flow, by fingerprint) | 2 | yes |
/// | dga (generated names) | 2 | yes |
/// | c2-channel (an IRC session) | 2 | yes |
/// | tls-anomaly self-signed or name-mismatch | 2 | |
/// | tls-anomaly expired, obsolete-version, no-sni (TLS findings together at most 2) | 1 | |
/// | no-dns-endpoint (no name at all) | 1 | |
/// | non-standard-port (also info: TLS or an unknown protocol off its ports) | 1 | |
/// | cleartext, foreign-upload by ratio or share, evasion, a rule's category | 1 | |
///
/// An endpoint abroad with a behaviour and at least 4 points is an implant's: the device's verdict is at least
/// high. With 6 points and a behaviour, or a finding high by itself (identifiers, credentials, an IOC, an upload by
/// volume) and 3 more points, it is critical. Without a behaviour the points raise nothing: the verdict is the
/// highest alert's severity, so a single finding stays what it was.
public struct EndpointScore: Sendable, Equatable {
    public var points = 0
    /// Whether a command server's behaviour is among the findings (a heartbeat, a beacon, generated names).
    public var behaviour = false
    /// Whether a finding high by itself is among them.
    public var high = false
    /// The findings counted, in the order met (`beaconing`, `tls-anomaly:self-signed`, ...).
    public var signals: [String] = []

    public init() {}

    /// Points at which an endpoint with a behaviour makes the verdict high, and critical.
    public static let implantPoints = 4
    public static let criticalPoints = 6
    /// Points beside a high finding that make it critical.
    public static let corroborationPoints = 3

    /// Scores the alerts about one endpoint.
    public init(_ alerts: [Alert]) {
        var tlsPoints = 0
        for a in alerts where a.severity > .info || a.category == .nonStandardPort {
            let kind = a.signalKind
            if a.severity >= .high { high = true }
            guard !signals.contains(kind) else { continue }
            var p = Self.points(kind, a)
            if a.category == .tlsAnomaly {
                p = min(p, 2 - tlsPoints)
                tlsPoints += p
            }
            guard p > 0 else { continue }
            signals.append(kind)
            points += p
            if a.category == .beaconing || a.category == .dga || a.category == .c2Channel { behaviour = true }
        }
    }

    /// The points of a kind of finding (the table above).
    static func points(_ kind: String, _ a: Alert) -> Int {
        switch a.category {
        case .beaconing, .dga, .c2Channel: 2
        case .tlsAnomaly: kind.hasSuffix(":self-signed") || kind.hasSuffix(":name-mismatch") ? 2 : 1
        case .foreignEndpoint, .identifierLeak, .iocMatch: 0
        case .foreignUpload: a.severity >= .high ? 0 : 1
        default: 1
        }
    }

    /// The severity these findings make for the device, if they raise it.
    public var severity: Severity? {
        guard behaviour else { return nil }
        if points >= Self.criticalPoints || high && points >= Self.corroborationPoints { return .critical }
        return points >= Self.implantPoints ? .high : nil
    }
}

extension Alert {
    /// What kind of finding an alert is, for the verdict's score: its category, with the anomaly for TLS.
    var signalKind: String {
        if category == .tlsAnomaly, case .string(let k)? = evidence.first(where: { $0.0 == "anomaly" })?.1 {
            return category.rawValue + ":" + k
        }
        return category.rawValue
    }
}
