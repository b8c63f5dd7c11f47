public import SiphonCore
public import SiphonFlows

/// Thresholds of the NXDOMAIN-burst detector.
public struct NXDomainConfiguration: Sendable {
    /// Distinct registered domains answered "no such name" for one device before it is judged.
    public var minimumDomains = 20
    /// Share of the registered domains a device asked about (and got an answer for) that must not exist.
    public var fraction = 0.5
    /// Registered domains remembered per device (the sets stop growing there).
    public var maximumDomains = 10_000
    /// Or: this many registered domains answered "no such name" whose label looks generated (`NameRandomness`),
    /// whatever the share.
    public var minimumRandomDomains = 8
    public init() {}
}

/// `dga` (medium): a device whose lookups mostly name domains that do not exist. Malware with a domain generation
/// algorithm tries tens to thousands of generated names a day until one its operator registered answers; a phone's
/// apps ask for names that exist. Counted per device over registered domains (the public suffix list's), from the
/// resolver's answers: names under no public suffix (search-domain suffixes, single-label probes) are left out.
/// Raised when most of those answered do not exist, or when enough of the missing ones look generated
/// (`NameRandomness`: a DGA's names are random letters; a mistyped or retired name is made of words). Raised once
/// per device.
public struct NXDomainDetector {
    public let configuration: NXDomainConfiguration
    struct Totals {
        var answered: Set<String> = []
        var missing: Set<String> = []
        var examples: [String] = []
        /// Missing registered domains whose label looks generated.
        var random = 0
        var first: Timestamp
        var raised = false
    }
    private var devices: [DeviceID: Totals] = [:]
    /// Shared with the other detectors' tables (`DetectionEngine.tableBudget`): each domain kept is charged.
    var budget = TableBudget()

    public init(_ c: NXDomainConfiguration) { configuration = c }

    /// An answer to the device's query for `name`, under the registered domain `domain`.
    public mutating func answer(
        name: String, domain: String, missing: Bool, flow f: Flow, device: DeviceID, timestamp: Timestamp, into alerts: inout [Alert]
    ) {
        let c = configuration, budget = self.budget
        func add(_ t: inout Totals) -> Bool {
            guard !t.raised, t.answered.count < c.maximumDomains, !t.answered.contains(domain),
                  budget.take(TableBudget.Cost.dnsName(domain))
            else { return false }
            t.answered.insert(domain)
            guard missing else { return false }
            t.missing.insert(domain)
            if t.examples.count < 5 { t.examples.append(name) }
            if NameRandomness.shared.isRandom(String(domain.prefix { $0 != "." })) { t.random += 1 }
            guard t.missing.count >= c.minimumDomains && Double(t.missing.count) >= c.fraction * Double(t.answered.count)
                    || t.random >= c.minimumRandomDomains
            else { return false }
            t.raised = true
            return true
        }
        guard add(&devices[device, default: Totals(first: timestamp)]), let t = devices[device] else { return }
        let share = Double(t.missing.count) / Double(t.answered.count)
        alerts.append(Alert(
            category: .dga, rule: "siphon.dga.nxdomain", severity: .medium,
            message: "\(f.clientAddress) asked for \(t.missing.count) registered domains that do not exist, "
                + "\(Int((share * 100).rounded())) % of the \(t.answered.count) it got answers for, \(t.random) of them random-looking: "
                + "generated names (a DGA)",
            timestamp: timestamp, flow: f, device: f.clientAddress, deviceID: device, destination: nil, evidence: [
                ("nxdomain_domains", .int(t.missing.count)), ("answered_domains", .int(t.answered.count)),
                ("nxdomain_fraction", .double(share)), ("random_domains", .int(t.random)),
                ("random_threshold", .double(NameRandomness.shared.threshold)), ("examples", .strings(t.examples)),
                ("first_answer", .time(t.first)),
            ]))
    }
}
