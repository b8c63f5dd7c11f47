import Foundation
import GRDB
import Siphon

/// `DIR/siphon.db`: the case in SQLite, for queries across scans (`sqlite3 DIR/siphon.db`). Every capture,
/// device (with its verdict), endpoint, device x endpoint contact and alert of the folder's records. Each batch or
/// merge brings it up to date: a capture whose record changed is deleted (its devices, contacts and alerts with
/// it) and inserted again, one whose record is gone is deleted, the others are left as they are; so reruns never
/// duplicate a row. Schema: docs/batch.md.
public final class CaseDatabase: @unchecked Sendable {
    let queue: DatabaseQueue

    /// Opens (or creates) the database and brings its schema up to date.
    public init(path: String) throws(BatchError) {
        do {
            var configuration = Configuration()
            // A batch commits once per capture: with write-ahead logging and `synchronous = NORMAL` a commit is
            // not an fsync (a crash may lose the last commits, never corrupt the file; the next batch's final
            // pass puts back what is missing).
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
            }
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try CaseDatabase.migrator().migrate(queue)
        } catch {
            throw BatchError("\(path): \(error)")
        }
    }

    /// The schema, version 1 (a `DatabaseMigrator` migration: later versions add migrations, never edit this).
    public static let schema = """
        CREATE TABLE captures (
          id INTEGER PRIMARY KEY,
          path TEXT NOT NULL UNIQUE,          -- as the batch found it
          slot TEXT NOT NULL,                 -- its folder under captures/
          status TEXT NOT NULL,               -- scanned, damaged, unreadable, skipped
          error TEXT, error_offset INTEGER,
          sha256 TEXT, size INTEGER, input_key TEXT,
          label TEXT, model TEXT, attributes TEXT,  -- from --devices; attributes: a JSON object
          packets INTEGER, decoded INTEGER, undecodable INTEGER, wire_bytes INTEGER, flows INTEGER,
          first TEXT, last TEXT,              -- capture time span (RFC 3339)
          incomplete TEXT,
          alerts INTEGER, alerts_above_info INTEGER, worst TEXT,
          record_sha256 TEXT NOT NULL         -- of verdicts.json: unchanged record, row left alone
        );
        CREATE TABLE devices (
          id INTEGER PRIMARY KEY,
          capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
          device_id TEXT NOT NULL,            -- MAC, address or prefix
          label TEXT NOT NULL,                -- as the fleet report names it
          model TEXT, origin TEXT, addresses TEXT, hostname TEXT,
          severity TEXT, severity_rank INTEGER,   -- rank: info 0 .. critical 4; NULL: no finding
          verdict TEXT, headline TEXT, incomplete TEXT,
          sent_foreign INTEGER, received_foreign INTEGER, sent_home INTEGER,
          alerts INTEGER, categories TEXT,
          UNIQUE (capture_id, device_id)
        );
        CREATE TABLE endpoints (
          id INTEGER PRIMARY KEY,
          ip TEXT NOT NULL UNIQUE,
          scope TEXT, country TEXT, registered_country TEXT, asn INTEGER, as_org TEXT
        );
        CREATE TABLE contacts (
          device INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
          endpoint INTEGER NOT NULL REFERENCES endpoints(id),
          names TEXT, sent INTEGER, received INTEGER, flows INTEGER, first TEXT, last TEXT,
          period REAL, categories TEXT, severity TEXT,
          PRIMARY KEY (device, endpoint)
        );
        CREATE INDEX contacts_endpoint ON contacts(endpoint);
        CREATE TABLE alerts (
          id INTEGER PRIMARY KEY,
          capture_id INTEGER NOT NULL REFERENCES captures(id) ON DELETE CASCADE,
          device INTEGER REFERENCES devices(id) ON DELETE CASCADE,
          timestamp TEXT, category TEXT NOT NULL, rule TEXT, severity TEXT NOT NULL, severity_rank INTEGER NOT NULL,
          message TEXT, src_ip TEXT, src_port INTEGER, dest_ip TEXT, dest_port INTEGER, proto TEXT,
          community_id TEXT,
          event TEXT NOT NULL                 -- the alert's JSON Lines event (json_extract(event, '$.evidence...'))
        );
        CREATE INDEX alerts_capture ON alerts(capture_id);
        CREATE INDEX alerts_category ON alerts(category);
        CREATE VIEW verdicts AS
          SELECT c.path AS capture, d.label, d.model, d.device_id, d.severity, d.verdict, d.headline,
                 d.sent_foreign, d.alerts, d.categories
          FROM devices d JOIN captures c ON c.id = d.capture_id
          ORDER BY coalesce(d.severity_rank, -1) DESC, d.sent_foreign DESC, d.label;
        CREATE VIEW shared_endpoints AS
          SELECT e.ip, e.country, e.asn, e.as_org, count(DISTINCT ct.device) AS devices,
                 count(DISTINCT d.model) AS models, sum(ct.sent) AS sent, sum(ct.received) AS received
          FROM endpoints e JOIN contacts ct ON ct.endpoint = e.id JOIN devices d ON d.id = ct.device
          WHERE e.scope = 'foreign'
          GROUP BY e.id
          ORDER BY devices DESC, sent DESC, e.ip;
        """

    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in try db.execute(sql: schema) }
        return m
    }

    /// One capture's rows, replaced (a batch calls it as each capture is done, from its worker threads). Endpoints
    /// no contact names any more are removed by `synchronise`.
    public func upsert(_ r: CaptureRecord, recordSHA256: String, folder: String) throws(BatchError) {
        do {
            try queue.write { db in
                // Cached statements, here and in `insert`: SQLite compiles each once per connection, not once per
                // capture (compiling an INSERT cost ~170,000 instructions, most of a small capture's rows).
                if let id = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM captures WHERE path = ?"), arguments: [r.capture]) {
                    try db.cachedStatement(sql: "DELETE FROM captures WHERE id = ?").execute(arguments: [id])
                }
                try CaseDatabase.insert(r, recordSHA256: recordSHA256, folder: folder, db)
            }
        } catch {
            throw BatchError("\(r.capture): the database: \(error)")
        }
    }

    /// Brings the database up to date with `records` (the folder's, all of them): rows of captures without a
    /// record go, a capture whose record changed (its SHA-256) is replaced, the others are left alone.
    public func synchronise(folder: String, records: [CaptureRecord]) throws(BatchError) {
        do {
            try queue.write { db in
                var existing: [String: (Int64, String)] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT id, path, record_sha256 FROM captures") {
                    existing[row["path"]] = (row["id"], row["record_sha256"])
                }
                let current = Set(records.map(\.capture))
                for (p, (id, _)) in existing where !current.contains(p) {
                    try db.execute(sql: "DELETE FROM captures WHERE id = ?", arguments: [id])
                }
                for r in records {
                    let recordFile = folder + "/captures/" + r.slot + "/verdicts.json"
                    let digest = (try? fileDigest(recordFile).sha256) ?? ""
                    if let (id, sha) = existing[r.capture] {
                        if sha == digest { continue }
                        try db.execute(sql: "DELETE FROM captures WHERE id = ?", arguments: [id])
                    }
                    try CaseDatabase.insert(r, recordSHA256: digest, folder: folder, db)
                }
                try db.execute(sql: "DELETE FROM endpoints WHERE id NOT IN (SELECT endpoint FROM contacts)")
            }
        } catch {
            throw BatchError("the database: \(error)")
        }
    }

    static func json(_ value: Any) -> String {
        guard let d = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "null" }
        return String(decoding: d, as: UTF8.self)
    }

    static func rank(_ s: String?) -> Int? { s.flatMap { Severity(name: $0)?.rawValue } }

    static func insert(_ r: CaptureRecord, recordSHA256: String, folder: String, _ db: Database) throws {
        var attributes: String?
        if let a = r.attributes { attributes = json(Dictionary(a.map { ($0.name, $0.value) }, uniquingKeysWith: { x, _ in x })) }
        try db.cachedStatement(
            sql: """
                INSERT INTO captures (path, slot, status, error, error_offset, sha256, size, input_key, label, model, attributes,
                  packets, decoded, undecodable, wire_bytes, flows, first, last, incomplete, alerts, alerts_above_info, worst, record_sha256)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                r.capture, r.slot, r.status.rawValue, r.error, r.errorOffset, r.sha256, r.size, r.inputKey, r.label, r.model, attributes,
                Int64(clamping: r.packets), Int64(clamping: r.decoded), Int64(clamping: r.undecodable), Int64(clamping: r.wireBytes),
                Int64(clamping: r.flows), r.first, r.last, r.incomplete, r.alerts, r.alertsAboveInfo, r.worst, recordSHA256,
            ])
        let captureID = db.lastInsertedRowID
        var deviceRows: [String: Int64] = [:]
        let contact = try db.cachedStatement(sql: """
            INSERT INTO contacts (device, endpoint, names, sent, received, flows, first, last, period, categories, severity)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let endpoint = try db.cachedStatement(sql: """
            INSERT INTO endpoints (ip, scope, country, registered_country, asn, as_org) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (ip) DO UPDATE SET scope = excluded.scope, country = excluded.country,
              registered_country = excluded.registered_country, asn = excluded.asn, as_org = excluded.as_org
            """)
        let device = try db.cachedStatement(sql: """
            INSERT INTO devices (capture_id, device_id, label, model, origin, addresses, hostname, severity, severity_rank,
              verdict, headline, incomplete, sent_foreign, received_foreign, sent_home, alerts, categories)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let endpointRow = try db.cachedStatement(sql: "SELECT id FROM endpoints WHERE ip = ?")
        for d in r.devices {
            try device.execute(
                arguments: [
                    captureID, d.device, FleetReport.label(r, d), r.model, d.origin, d.addresses.joined(separator: " "), d.hostname,
                    d.severity, rank(d.severity), d.verdict, d.headline, d.incomplete, d.sentForeign, d.receivedForeign, d.sentHome,
                    d.alerts, d.categories.joined(separator: " "),
                ])
            let deviceID = db.lastInsertedRowID
            deviceRows[d.device] = deviceID
            for e in d.endpoints {
                try endpoint.execute(arguments: [e.ip, e.scope, e.country, e.registeredCountry, e.asn.map { Int64($0) }, e.asOrg])
                let endpointID = try Int64.fetchOne(endpointRow, arguments: [e.ip]) ?? 0
                try contact.execute(arguments: [
                    deviceID, endpointID, e.names.joined(separator: " "), e.sent, e.received, e.flows, e.first, e.last, e.period,
                    e.categories.joined(separator: " "), e.severity,
                ])
            }
        }
        // Alerts: from the capture's events (the complete evidence stays in the JSON of each).
        guard r.alerts > 0, let handle = FileHandle(forReadingAtPath: folder + "/captures/" + r.slot + "/events.jsonl") else { return }
        defer { try? handle.close() }
        let alert = try db.cachedStatement(sql: """
            INSERT INTO alerts (capture_id, device, timestamp, category, rule, severity, severity_rank, message, src_ip, src_port,
              dest_ip, dest_port, proto, community_id, event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let marker = Array(#""event_type":"alert""#.utf8)
        let decoder = JSONDecoder()
        try forEachLine(handle) { line in
            guard line.count > marker.count, contains(line, marker),
                  let e = try? decoder.decode(AlertEventFields.self, from: Data(line)), e.eventType == "alert", e.isAlert
            else { return }
            let severity = e.severity ?? "info"
            try alert.execute(arguments: [
                captureID, e.deviceID.flatMap { deviceRows[$0] }, e.timestamp,
                e.category ?? "", e.rule, severity, rank(severity) ?? 0, e.message,
                e.sourceIP, e.sourcePort, e.destinationIP, e.destinationPort,
                e.proto, e.communityID, String(decoding: line, as: UTF8.self),
            ])
        }
    }

    /// The members of an alert event the `alerts` table keeps, each nil when absent or of another type (as a lookup
    /// in the parsed object gives). Decoded for these members only: parsing each alert line whole into a dictionary
    /// (`JSONSerialization`, evidence and frames included) cost 20,000 instructions a line.
    struct AlertEventFields: Decodable {
        var eventType, deviceID, timestamp, sourceIP, destinationIP, proto, communityID: String?
        var sourcePort, destinationPort: Int?
        var isAlert = false
        var category, rule, severity, message: String?

        enum Keys: String, CodingKey {
            case eventType = "event_type", deviceID = "device_id", timestamp, sourceIP = "src_ip", sourcePort = "src_port"
            case destinationIP = "dest_ip", destinationPort = "dest_port", proto, communityID = "community_id", alert
        }
        enum AlertKeys: String, CodingKey { case category, rule, severity, message }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            func text(_ k: Keys) -> String? { try? c.decodeIfPresent(String.self, forKey: k) }
            func number(_ k: Keys) -> Int? { try? c.decodeIfPresent(Int.self, forKey: k) }
            eventType = text(.eventType)
            deviceID = text(.deviceID)
            timestamp = text(.timestamp)
            sourceIP = text(.sourceIP)
            sourcePort = number(.sourcePort)
            destinationIP = text(.destinationIP)
            destinationPort = number(.destinationPort)
            proto = text(.proto)
            communityID = text(.communityID)
            guard let a = try? c.nestedContainer(keyedBy: AlertKeys.self, forKey: .alert) else { return }
            isAlert = true
            category = try? a.decodeIfPresent(String.self, forKey: .category)
            rule = try? a.decodeIfPresent(String.self, forKey: .rule)
            severity = try? a.decodeIfPresent(String.self, forKey: .severity)
            message = try? a.decodeIfPresent(String.self, forKey: .message)
        }
    }

    /// Whether `needle` occurs in the first 256 bytes of `line` (`event_type` comes second in every event). Read
    /// through a pointer: indexing the slice checked bounds at every byte.
    static func contains(_ line: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        line.withUnsafeBufferPointer { l in
            needle.withUnsafeBufferPointer { n in UnsafeBufferPointer(rebasing: l.prefix(256)).contains(bytes: n) }
        }
    }

    /// Calls `body` with each line of the file (without its newline), reading 1 MiB at a time; line ends found with
    /// `memchr` (a search through the array slice went byte by byte with bounds checks).
    static func forEachLine(_ handle: FileHandle, _ body: (ArraySlice<UInt8>) throws -> Void) throws {
        var pending: [UInt8] = []
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            pending.append(contentsOf: chunk)
            let ends: [Int] = pending.withUnsafeBufferPointer { b in
                guard let base = b.baseAddress else { return [] }
                var out: [Int] = []
                var i = 0
                while i < b.count, let p = memchr(base + i, 0x0A, b.count - i) {
                    i = UnsafeRawPointer(p) - UnsafeRawPointer(base)
                    out.append(i)
                    i += 1
                }
                return out
            }
            var start = 0
            for nl in ends {
                try body(pending[start..<nl])
                start = nl + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { try body(pending[...]) }
    }
}
