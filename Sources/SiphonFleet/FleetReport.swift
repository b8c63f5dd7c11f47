import Siphon
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The fleet picture (`DIR/fleet.json`): every capture and its status, the foreign endpoints ranked by how many
/// devices contacted them, the devices ranked by verdict, and clusters of devices with the same set of foreign
/// endpoints. Built from the per-capture records only, in a fixed order and with no wall-clock value: the same
/// records give the same bytes, however they were scanned (one run, a resumed run, shards merged).
public struct FleetReport: Encodable, Sendable {
    /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
    enum CodingKeys: String, CodingKey {
        case generator, provenance, totals, captures, endpoints, devices, clusters
    }

    public struct Totals: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case files, scanned, damaged, unreadable, skipped, devices, devicesAbroad = "devices_abroad",
                foreignEndpoints = "foreign_endpoints", sharedEndpoints = "shared_endpoints", clusters, alerts,
                alertsAboveInfo = "alerts_above_info", verdicts
        }

        public var files = 0
        public var scanned = 0
        public var damaged = 0
        public var unreadable = 0
        public var skipped = 0
        public var devices = 0
        /// Devices that talked to at least one foreign endpoint.
        public var devicesAbroad = 0
        public var foreignEndpoints = 0
        /// Foreign endpoints two or more devices contacted.
        public var sharedEndpoints = 0
        public var clusters = 0
        public var alerts = 0
        public var alertsAboveInfo = 0
        /// Devices per verdict severity (`none` for no finding), most severe first.
        public var verdicts: [Count] = []
    }

    public struct Capture: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case capture, status, error, errorOffset = "error_offset", sha256, size, label, model, packets, devices,
                alerts, worst, incomplete, outputs, configuration
        }

        public var capture: String
        public var status: CaptureRecord.Status
        public var error: String?
        public var errorOffset: Int64?
        public var sha256: String?
        public var size: Int64?
        public var label: String?
        public var model: String?
        public var packets: UInt64
        public var devices: Int
        public var alerts: Int
        public var worst: String?
        public var incomplete: String?
        /// The capture's outputs, relative to the fleet folder.
        public var outputs: String?
        /// The `configuration_sha256` of what produced its results (see `provenance.configurations`).
        public var configuration: String?
    }

    /// What produced the fleet's results: each distinct configuration (program, rules, data, options) its captures
    /// were analysed with, and how many captures each; the captures whose analysis is incomplete. No wall-clock
    /// value: each capture's `events.jsonl` starts with its full provenance (host and time of its analysis).
    public struct Provenance: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case configurations, incompleteCaptures = "incomplete_captures"
        }

        public struct Configuration: Encodable, Sendable {
            /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
            enum CodingKeys: String, CodingKey {
                case producedBy = "produced_by", captures
            }

            public var producedBy: ProducedBy
            public var captures: Int
        }
        public var configurations: [Configuration] = []
        public var incompleteCaptures = 0
    }

    public struct Endpoint: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case ip, names, country, registeredCountry = "registered_country", asn, asOrg = "as_org", devices,
                captures, models, sent, received, flows, first, last, categories, severity,
                deviceLabels = "device_labels"
        }

        public var ip: String
        public var names: [String]
        public var country: String?
        public var registeredCountry: String?
        public var asn: UInt32?
        public var asOrg: String?
        /// Devices and captures that contacted it, and the models among them (with how many devices each).
        public var devices: Int
        public var captures: Int
        public var models: [Count]
        public var sent: Int
        public var received: Int
        public var flows: Int
        public var first: String
        public var last: String
        public var categories: [String]
        public var severity: String?
        /// The devices (labels), at most 100.
        public var deviceLabels: [String]
    }

    public struct Device: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case label, capture, deviceId = "device_id", model, severity, verdict, headline, incomplete,
                foreignEndpoints = "foreign_endpoints", sentForeign = "sent_foreign",
                receivedForeign = "received_foreign", alerts, categories, uniqueEndpoints = "unique_endpoints", cluster
        }

        public var label: String
        public var capture: String
        public var deviceId: String
        public var model: String?
        public var severity: String?
        public var verdict: String
        public var headline: String
        public var incomplete: String?
        public var foreignEndpoints: Int
        public var sentForeign: Int
        public var receivedForeign: Int
        public var alerts: Int
        public var categories: [String]
        /// Foreign endpoints no other device of the fleet contacted (what sets it apart: an implant).
        public var uniqueEndpoints: [String]
        /// The cluster it belongs to (devices with the same set of foreign endpoints), if any.
        public var cluster: Int?
    }

    public struct Cluster: Encodable, Sendable {
        /// JSON member names in snake_case, written out (`.convertToSnakeCase` cost a third of the encoding).
        enum CodingKeys: String, CodingKey {
            case id, endpoints, devices, models, severity
        }

        public var id: Int
        public var endpoints: [String]
        public var devices: [String]
        public var models: [Count]
        /// The highest verdict among its devices.
        public var severity: String?
    }

    public var generator: String
    public var provenance = Provenance()
    public var totals = Totals()
    public var captures: [Capture] = []
    public var endpoints: [Endpoint] = []
    public var devices: [Device] = []
    public var clusters: [Cluster] = []

    /// The report's JSON: keys sorted, two-space indentation, snake_case, a final newline.
    public func json() throws -> Foundation.Data { try FleetBuilder.prettyJSON(self) }
}

extension FleetReport {
    /// The fleet of these records (any order).
    public init(records unsorted: [CaptureRecord], generator: String) {
        self.generator = generator
        let records = unsorted.sorted { $0.capture.utf8.lexicographicallyPrecedes($1.capture.utf8) }
        struct Contact { var device: Int; var endpoint: EndpointRecord; var capture: String; var model: String? }
        var configurationCounts: [ProducedBy: Int] = [:]
        defer {
            provenance.configurations = configurationCounts.map { Provenance.Configuration(producedBy: $0.key, captures: $0.value) }
                .sorted {
                    let a = $0.producedBy, b = $1.producedBy
                    if $0.captures != $1.captures { return $0.captures > $1.captures }
                    return (a.configurationSha256, a.tool, a.buildId ?? "", a.revision ?? "", a.rulesSha256 ?? "")
                        < (b.configurationSha256, b.tool, b.buildId ?? "", b.revision ?? "", b.rulesSha256 ?? "")
                }
        }
        var fleetDevices: [(Device, Set<String>)] = []
        var contacts: [String: [Contact]] = [:]
        for r in records {
            switch r.status {
            case .scanned: totals.scanned += 1
            case .damaged: totals.damaged += 1
            case .unreadable: totals.unreadable += 1
            case .skipped: totals.skipped += 1
            }
            totals.alerts &+= r.alerts
            totals.alertsAboveInfo &+= r.alertsAboveInfo
            captures.append(Capture(
                capture: r.capture, status: r.status, error: r.error, errorOffset: r.errorOffset, sha256: r.sha256, size: r.size,
                label: r.label, model: r.model, packets: r.packets, devices: r.devices.count, alerts: r.alerts, worst: r.worst,
                incomplete: r.incomplete, outputs: r.status == .skipped ? nil : "captures/" + r.slot,
                configuration: r.producedBy?.configurationSha256))
            if let p = r.producedBy { configurationCounts[p, default: 0] += 1 }
            if r.incomplete != nil { provenance.incompleteCaptures += 1 }
            for d in r.devices {
                let label = FleetReport.label(r, d)
                let foreign = d.foreign
                for e in foreign {
                    contacts[e.ip, default: []].append(Contact(device: fleetDevices.count, endpoint: e, capture: r.capture, model: r.model))
                }
                fleetDevices.append((Device(
                    label: label, capture: r.capture, deviceId: d.device, model: r.model, severity: d.severity, verdict: d.verdict,
                    headline: d.headline, incomplete: d.incomplete ?? r.incomplete, foreignEndpoints: foreign.count,
                    sentForeign: d.sentForeign, receivedForeign: d.receivedForeign, alerts: d.alerts, categories: d.categories,
                    uniqueEndpoints: [], cluster: nil), Set(foreign.map(\.ip))))
            }
        }
        totals.files = records.count
        // Endpoints: merged over every device that contacted them.
        for (ip, list) in contacts {
            let first = list[0].endpoint
            var names = Set<String>(), categories = Set<String>(), models: [String: Int] = [:]
            var sent = 0, received = 0, flows = 0, severity: Severity?
            var firstSeen = first.first, lastSeen = first.last
            var devicesSeen = Set<Int>(), capturesSeen = Set<String>()
            for c in list {
                names.formUnion(c.endpoint.names)
                categories.formUnion(c.endpoint.categories)
                sent &+= c.endpoint.sent
                received &+= c.endpoint.received
                flows &+= c.endpoint.flows
                if let s = Severity.named(c.endpoint.severity), severity.map({ s > $0 }) ?? true { severity = s }
                firstSeen = min(firstSeen, c.endpoint.first)
                lastSeen = max(lastSeen, c.endpoint.last)
                if devicesSeen.insert(c.device).inserted, let m = c.model { models[m, default: 0] += 1 }
                capturesSeen.insert(c.capture)
            }
            let labels = devicesSeen.sorted().prefix(100).map { fleetDevices[$0].0.label }
            endpoints.append(Endpoint(
                ip: ip, names: names.sorted(), country: first.country, registeredCountry: first.registeredCountry, asn: first.asn,
                asOrg: first.asOrg, devices: devicesSeen.count, captures: capturesSeen.count, models: Count.of(models), sent: sent,
                received: received, flows: flows, first: firstSeen, last: lastSeen, categories: categories.sorted(),
                severity: severity?.description, deviceLabels: labels))
            if devicesSeen.count == 1, let only = devicesSeen.first { fleetDevices[only].0.uniqueEndpoints.append(ip) }
        }
        endpoints.sort {
            if $0.devices != $1.devices { return $0.devices > $1.devices }
            if $0.sent != $1.sent { return $0.sent > $1.sent }
            return $0.ip < $1.ip
        }
        // Clusters: two or more devices with the same non-empty set of foreign endpoints.
        var groups: [[String]: [Int]] = [:]
        for (i, (_, set)) in fleetDevices.enumerated() where !set.isEmpty { groups[set.sorted(), default: []].append(i) }
        let ordered = groups.filter { $0.value.count >= 2 }.sorted {
            $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key.lexicographicallyPrecedes($1.key)
        }
        for (n, (set, members)) in ordered.enumerated() {
            var models: [String: Int] = [:]
            var severity: Severity?
            for m in members {
                fleetDevices[m].0.cluster = n + 1
                if let model = fleetDevices[m].0.model { models[model, default: 0] += 1 }
                if let s = Severity.named(fleetDevices[m].0.severity), severity.map({ s > $0 }) ?? true { severity = s }
            }
            clusters.append(Cluster(id: n + 1, endpoints: set, devices: members.map { fleetDevices[$0].0.label }, models: Count.of(models), severity: severity?.description))
        }
        devices = fleetDevices.map { var d = $0.0; d.uniqueEndpoints.sort(); return d }
        devices.sort {
            let a = Severity.named($0.severity)?.rawValue ?? -1, b = Severity.named($1.severity)?.rawValue ?? -1
            if a != b { return a > b }
            if $0.sentForeign != $1.sentForeign { return $0.sentForeign > $1.sentForeign }
            if $0.label != $1.label { return $0.label < $1.label }
            return $0.deviceId < $1.deviceId
        }
        totals.devices = devices.count
        totals.devicesAbroad = devices.filter { $0.foreignEndpoints > 0 }.count
        totals.foreignEndpoints = endpoints.count
        totals.sharedEndpoints = endpoints.filter { $0.devices >= 2 }.count
        totals.clusters = clusters.count
        var bySeverity: [String: Int] = [:]
        for d in devices { bySeverity[d.severity ?? "none", default: 0] += 1 }
        totals.verdicts = FleetReport.severityOrder.compactMap { s in bySeverity[s].map { Count(name: s, devices: $0) } }
    }

    static let severityOrder = ["critical", "high", "medium", "low", "info", "none"]

    /// A device's name in the fleet: its row's label, else its capture; with its identity when the capture holds
    /// several devices.
    static func label(_ r: CaptureRecord, _ d: DeviceRecord) -> String {
        let base = r.label ?? r.capture
        return r.devices.count > 1 ? base + " " + d.device : base
    }

    /// The terminal summary: totals, the failed captures, shared endpoints, the worst devices, the clusters.
    public func summary(limit: Int = 10) -> String {
        var lines: [String] = []
        let t = totals
        var files = "\(t.files) file\(t.files == 1 ? "" : "s"): \(t.scanned) scanned"
        if t.damaged > 0 { files += ", \(t.damaged) damaged" }
        if t.unreadable > 0 { files += ", \(t.unreadable) unreadable" }
        if t.skipped > 0 { files += ", \(t.skipped) skipped (not captures)" }
        lines.append(files)
        let verdicts = t.verdicts.map { "\($0.name == "none" ? "no alert" : $0.name) \($0.devices)" }
        lines.append("\(t.devices) device\(t.devices == 1 ? "" : "s") (\(verdicts.joined(separator: ", "))); \(t.devicesAbroad) talked abroad, to \(t.foreignEndpoints) foreign endpoint\(t.foreignEndpoints == 1 ? "" : "s"); \(t.alertsAboveInfo) alerts above info")
        for c in captures where c.status.failed {
            lines.append("  \(c.status.rawValue): \(c.error ?? c.capture)")
        }
        let shared = endpoints.filter { $0.devices >= 2 }
        if !shared.isEmpty {
            lines.append("Foreign endpoints shared by several devices:")
            for e in shared.prefix(limit) {
                let who = [e.names.first, e.country, e.asn.map { "AS\($0)" + (e.asOrg.map { " " + $0 } ?? "") }].compactMap { $0 }.joined(separator: ", ")
                let models = e.models.map { "\($0.name) \($0.devices)" }.joined(separator: ", ")
                lines.append("  \(e.ip) (\(who)): \(e.devices) devices\(models.isEmpty ? "" : " [\(models)]"), \(ByteSize.text(UInt64(max(0, e.sent)))) sent\(e.categories.isEmpty ? "" : "; " + e.categories.joined(separator: ", "))")
            }
            if shared.count > limit { lines.append("  ... \(shared.count - limit) more in fleet.json") }
        }
        let flagged = devices.filter { (Severity.named($0.severity) ?? .info) > .info }
        if !flagged.isEmpty {
            lines.append("Devices, worst first:")
            for d in flagged.prefix(limit) {
                let unique = d.uniqueEndpoints.isEmpty ? "" : "; alone to \(d.uniqueEndpoints.prefix(3).joined(separator: ", "))"
                lines.append("  \(d.label)\(d.model.map { " (\($0))" } ?? ""): \(d.verdict); \(d.headline)\(unique)")
            }
            if flagged.count > limit { lines.append("  ... \(flagged.count - limit) more in fleet.json") }
        }
        if !clusters.isEmpty {
            lines.append("Clusters (same foreign endpoints):")
            for c in clusters.prefix(limit) {
                let models = c.models.map { "\($0.name) \($0.devices)" }.joined(separator: ", ")
                lines.append("  #\(c.id): \(c.devices.count) devices\(models.isEmpty ? "" : " [\(models)]") -> \(c.endpoints.prefix(4).joined(separator: ", "))\(c.endpoints.count > 4 ? ", ..." : "")")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Reads the per-capture records of a fleet folder and writes the fleet report, its HTML page and the case
/// database from them.
public enum FleetBuilder {
    /// The record in a capture folder.
    public static func readRecord(_ folder: String) throws -> CaptureRecord {
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/verdicts.json"))
        return try JSONDecoder().decode(CaptureRecord.self, from: data)  // member names by the types' CodingKeys
    }

    /// Writes `folder/verdicts.json`; returns its SHA-256.
    @discardableResult
    public static func writeRecord(_ record: CaptureRecord, to folder: String) throws -> String {
        let data = Array(try prettyJSON(record))
        try writeFile(folder + "/verdicts.json", data)
        return data.sha256
    }

    /// A record's or the fleet report's JSON: keys sorted, two-space indentation, a final newline; member names in
    /// snake_case by the types' `CodingKeys`.
    static func prettyJSON(_ value: some Encodable) throws -> Foundation.Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var d = try e.encode(value)
        d.append(0x0A)
        return d
    }

    /// Every record under `folder/captures`, in slot order (those in `known`, by slot, are not read again);
    /// folders without a readable record are listed in the second value.
    public static func records(in folder: String, known: [String: CaptureRecord] = [:]) -> ([CaptureRecord], [String]) {
        let slots = ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/captures")) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var out: [CaptureRecord] = [], bad: [String] = []
        for s in slots {
            if let r = known[s] ?? (try? readRecord(folder + "/captures/" + s)), r.slot == s { out.append(r) } else { bad.append(s) }
        }
        return (out, bad)
    }

    /// Builds `fleet.json`, `fleet.html` and `siphon.db` in `folder` from its capture records (those in `known`
    /// are taken as they are); each file is replaced atomically, the database brought up to date.
    @discardableResult
    public static func build(folder: String, version: String, known: [String: CaptureRecord] = [:], database: CaseDatabase? = nil) throws(BatchError) -> FleetReport {
        let (records, _) = records(in: folder, known: known)
        let fleet = FleetReport(records: records, generator: "siphon \(version)")
        do {
            try atomicWrite(try fleet.json(), to: folder + "/fleet.json")
            try atomicWrite(Data(FleetHTML.render(fleet).utf8), to: folder + "/fleet.html")
        } catch let e as BatchError {
            throw e
        } catch {
            throw BatchError("\(folder)/fleet.json: \(error)")
        }
        let db: CaseDatabase
        if let database { db = database } else { db = try CaseDatabase(path: folder + "/siphon.db") }
        try db.synchronise(folder: folder, records: records)
        return fleet
    }

    /// `siphon fleet merge`: the capture folders of every source folder copied into `output` (a slot in several
    /// sources: the last source's copy), then the fleet built there. Returns the fleet and how many slots were
    /// copied.
    public static func merge(_ sources: [String], into output: String, version: String) throws(BatchError) -> (FleetReport, Int) {
        for d in [output, output + "/captures", output + "/.partial"] where mkdir(d, 0o755) != 0 && errno != EEXIST {
            throw BatchError("\(d): cannot create: \(String(cString: strerror(errno)))")
        }
        let lock = try FolderLock(output)
        defer { lock.release() }
        let target = URL(fileURLWithPath: output).standardizedFileURL.path
        var copied = 0
        for source in sources {
            var s = stat()
            guard stat(source + "/captures", &s) == 0, (s.st_mode & S_IFMT) == S_IFDIR else {
                throw BatchError("\(source): not a batch output folder (no captures/ in it)")
            }
            if URL(fileURLWithPath: source).standardizedFileURL.path == target { continue }
            let (records, bad) = records(in: source)
            if let b = bad.first { throw BatchError("\(source)/captures/\(b): no readable verdicts.json") }
            for r in records {
                let partial = output + "/.partial/" + r.slot
                removeTree(partial, keepRoot: false)
                try copyTree(source + "/captures/" + r.slot, to: partial)
                try installFolder(partial, as: output + "/captures/" + r.slot)
                copied += 1
            }
        }
        return (try build(folder: output, version: version), copied)
    }

    static func copyTree(_ from: String, to: String) throws(BatchError) {
        do { try FileManager.default.copyItem(atPath: from, toPath: to) } catch {
            throw BatchError("\(from): cannot copy to \(to): \(error.localizedDescription)")
        }
    }

    /// Writes `data` to a temporary file beside `path`, then renames it over `path`.
    static func atomicWrite(_ data: Data, to path: String) throws(BatchError) {
        let tmp = path + ".tmp-\(getpid())"
        do { try data.write(to: URL(fileURLWithPath: tmp)) } catch {
            throw BatchError("\(path): cannot write: \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw BatchError("\(path): cannot write: \(String(cString: strerror(errno)))")
        }
    }
}
