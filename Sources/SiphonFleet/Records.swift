public import Siphon

/// What a batch keeps of one capture (`DIR/captures/SLOT/verdicts.json`): its status, what was read, and each
/// device's verdict with its endpoints. The fleet report and the case database are built from these files alone
/// (and the alert events beside them), so shards scanned on other machines merge into the same report.
/// No wall-clock value: the same inputs give the same file.
public struct CaptureRecord: Codable, Sendable, Equatable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case capture, slot, status, error, errorOffset = "error_offset", sha256, size, inputKey = "input_key", label,
            model, attributes, packets, decoded, undecodable, wireBytes = "wire_bytes", flows, first, last, incomplete,
            producedBy = "produced_by", alerts, alertsAboveInfo = "alerts_above_info", worst, devices
    }

    public enum Status: String, Codable, Sendable, Comparable {
        /// Read to its end.
        case scanned
        /// Damaged midway: read up to the damage (`error`, `error_offset`); what was before it is analysed.
        case damaged
        /// Could not be opened, or is not a capture it claims to be (a .pcap name, no capture header).
        case unreadable
        /// A file found in a folder that is not a capture (no pcap, pcapng or gzip header): listed, not scanned.
        case skipped

        public static func < (a: Self, b: Self) -> Bool { a.order < b.order }
        var order: Int { switch self { case .scanned: 0; case .damaged: 1; case .unreadable: 2; case .skipped: 3 } }
        public var failed: Bool { self == .damaged || self == .unreadable }
    }

    /// The capture's path as the batch found it (an argument, or under a folder given as one).
    public var capture: String
    /// Its folder under `DIR/captures`.
    public var slot: String
    public var status: Status
    public var error: String?
    public var errorOffset: Int64?
    public var sha256: String?
    public var size: Int64?
    /// SHA-256 of everything the results depend on (capture, Siphon build, rules, data, options, device row): a
    /// rerun with the same key reuses these results.
    public var inputKey: String?
    /// From `--devices`: the bench session's label, model and other columns.
    public var label: String?
    public var model: String?
    /// The other columns of its row, by name.
    public var attributes: [Attribute]?
    public var packets: UInt64 = 0
    public var decoded: UInt64 = 0
    public var undecodable: UInt64 = 0
    public var wireBytes: UInt64 = 0
    public var flows: UInt64 = 0
    public var first: String?
    public var last: String?
    /// Why the verdicts rest on part of what was said (drops, gaps, cuts, evictions, damage), if they do.
    public var incomplete: String?
    /// What produced these results (the capture's `events.jsonl` starts with the whole provenance).
    public var producedBy: ProducedBy?
    /// Alerts raised, and those above info.
    public var alerts = 0
    public var alertsAboveInfo = 0
    public var worst: String?
    public var devices: [DeviceRecord] = []

    public init(capture: String, slot: String, status: Status) {
        self.capture = capture
        self.slot = slot
        self.status = status
    }
}

/// A column of a devices row. (Pairs, not a dictionary: JSON key strategies would rewrite dictionary keys.)
public struct Attribute: Codable, Sendable, Equatable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case name, value
    }

    public var name: String
    public var value: String
}

/// How many devices of a model (or of a verdict).
public struct Count: Codable, Sendable, Equatable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case name, devices
    }

    public var name: String
    public var devices: Int
    static func of(_ d: [String: Int]) -> [Count] { d.map { Count(name: $0.key, devices: $0.value) }.sorted { $0.name < $1.name } }
}

/// One device of a capture and its verdict.
public struct DeviceRecord: Codable, Sendable, Equatable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case device, origin, addresses, hostname, severity, verdict, headline, incomplete,
            sentForeign = "sent_foreign", receivedForeign = "received_foreign", sentHome = "sent_home", alerts,
            categories, endpoints
    }

    /// The device's identity in the capture (MAC, address or prefix): `device_id` in events.
    public var device: String
    /// How it was chosen (declared, dhcp, ndp, arp, inferred...).
    public var origin: String
    public var addresses: [String]
    public var hostname: String?
    public var severity: String?
    public var verdict: String
    public var headline: String
    public var incomplete: String?
    public var sentForeign: Int
    public var receivedForeign: Int
    public var sentHome: Int
    /// Alerts about it above info, and their categories (each once, most severe first).
    public var alerts: Int
    public var categories: [String]
    public var endpoints: [EndpointRecord]
}

/// An endpoint a device talked to.
public struct EndpointRecord: Codable, Sendable, Equatable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case ip, names, scope, country, registeredCountry = "registered_country", asn, asOrg = "as_org", sent,
            received, flows, first, last, period, categories, severity
    }

    public var ip: String
    public var names: [String]
    public var scope: String
    public var country: String?
    public var registeredCountry: String?
    public var asn: UInt32?
    public var asOrg: String?
    public var sent: Int
    public var received: Int
    public var flows: Int
    public var first: String
    public var last: String
    /// Median interval between contacts when the device beacons to it (seconds).
    public var period: Double?
    public var categories: [String]
    public var severity: String?
}

extension CaptureRecord {
    /// The record of a scanned capture.
    public mutating func fill(from result: CaptureScanner.Result) {
        let s = result.statistics
        if let error = result.error {
            status = error.offset == nil ? .unreadable : .damaged
            self.error = error.description
            errorOffset = error.offset
        } else {
            status = .scanned
        }
        packets = s.packets
        decoded = s.decoded
        undecodable = s.undecodable.values.reduce(0, &+)
        wireBytes = s.wireBytes
        flows = s.flows
        first = s.firstTimestamp?.rfc3339
        last = s.lastTimestamp?.rfc3339
        incomplete = s.incompleteness
        alerts = result.alerts.count
        alertsAboveInfo = result.alerts.filter { $0.severity > .info }.count
        worst = result.alerts.map(\.severity).max()?.description
        devices = result.verdicts.map(DeviceRecord.init)
    }
}

/// The program, rules and configuration behind a capture's results: enough to tell which captures of a fleet were
/// analysed alike (the same `configuration_sha256`) without their events.
public struct ProducedBy: Codable, Sendable, Equatable, Hashable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case tool, buildId = "build_id", revision, rulesSha256 = "rules_sha256",
            configurationSha256 = "configuration_sha256"
    }

    public var tool: String
    public var buildId: String?
    public var revision: String?
    public var rulesSha256: String?
    /// SHA-256 of the provenance's reproducible part (program, rules, data, options).
    public var configurationSha256: String

    public init(_ p: Provenance, configuration: String) {
        tool = "siphon " + p.tool.version
        buildId = p.tool.build
        revision = p.tool.revision
        rulesSha256 = p.rulesSHA256
        configurationSha256 = textDigest(configuration)
    }
}

extension DeviceRecord {
    init(_ v: DeviceVerdict) {
        device = v.id.description
        origin = v.origin.rawValue
        addresses = v.addresses.map(\.address.description)
        if addresses.isEmpty { addresses = [v.device.description] }
        hostname = v.hostname
        severity = v.severity?.description
        verdict = v.label
        headline = v.headline
        incomplete = v.incomplete
        sentForeign = v.sentForeign
        receivedForeign = v.receivedForeign
        sentHome = v.sentHome
        alerts = v.alerts.filter { $0.severity > .info }.count
        var seen: [String] = []
        for a in v.alerts where a.severity > .info && !seen.contains(a.category.rawValue) { seen.append(a.category.rawValue) }
        categories = seen
        endpoints = v.endpoints.map { e in
            let g = e.destination
            return EndpointRecord(
                ip: e.address.description, names: e.totals.names, scope: g?.scope.rawValue ?? GeoInfo.Scope.unknown.rawValue,
                country: g?.country, registeredCountry: g?.registeredCountry, asn: g?.asn, asOrg: g?.asOrganization,
                sent: e.totals.sent, received: e.totals.received, flows: e.totals.flows,
                first: e.totals.first.rfc3339, last: e.totals.last.rfc3339, period: e.period, categories: e.categories,
                severity: e.severity?.description)
        }
    }

    /// Its foreign endpoints.
    public var foreign: [EndpointRecord] { endpoints.filter { $0.scope == GeoInfo.Scope.foreign.rawValue } }
}

extension Severity {
    /// The severity a record names (nil: none, or not a severity).
    static func named(_ s: String?) -> Severity? { s.flatMap { Severity(name: $0) } }
}
