public import Siphon
import Foundation

/// `--devices FILE.csv`: what the lab knows of each bench session. A header line names the columns (any order,
/// case ignored): `capture` (required: the capture's path as the batch finds it, a path ending it, or its file
/// name), `label` (or `device`), `model`, identifiers `imei`, `imsi`, `iccid`, `phone` (or `msisdn`), `serial`,
/// `mac`, `other` (each may hold several values separated by `;`), and `ip` (the device's address). Other
/// columns are kept as attributes. RFC 4180 quoting (a quote never closed is an error); lines starting with `#`
/// and blank lines are ignored.
///
/// A row's identifiers feed `identifier-leak` for its capture; its `mac` and `ip` declare the device (as
/// `--device`), so the verdict is about the phone on the bench and nothing else on the link.
public struct DeviceTable: Sendable {
    public struct Row: Sendable, Equatable {
        /// 1-based line of the file.
        public var line: Int
        public var capture: String
        public var label: String?
        public var model: String?
        public var identifiers: [KnownIdentifier] = []
        public var devices: [DeviceSelector] = []
        public var attributes: [String: String] = [:]
        /// The row as text, for the input key (a changed row rescans its capture).
        public var canonical: String

        public static func == (a: Row, b: Row) -> Bool { a.line == b.line && a.canonical == b.canonical }
    }

    public var path: String
    public var rows: [Row]

    public static func load(path: String) throws(BatchError) -> DeviceTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatchError("\(path): cannot read the devices file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw BatchError("\(path): not UTF-8 text") }
        return try parse(text, path: path)
    }

    static let identifierColumns: [String: IdentifierKind] = [
        "imei": .imei, "imsi": .imsi, "iccid": .iccid, "phone": .phone, "msisdn": .phone, "serial": .serial, "mac": .mac,
        "other": .other,
    ]

    public static func parse(_ text: String, path: String) throws(BatchError) -> DeviceTable {
        var records = try csvRecords(text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text, path: path)
        records.removeAll { r in r.fields.allSatisfy(\.isEmpty) }
        guard let header = records.first else { throw BatchError("\(path): empty devices file (a header line naming the columns comes first)") }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let captureColumn = names.firstIndex(of: "capture") else {
            throw BatchError("\(path):\(header.line): no 'capture' column (columns: \(names.joined(separator: ", ")))")
        }
        var rows: [Row] = []
        for r in records.dropFirst() {
            func value(_ i: Int) -> String? {
                guard i < r.fields.count else { return nil }
                let v = r.fields[i]
                return v.isEmpty ? nil : v
            }
            if r.fields.count > names.count {
                throw BatchError("\(path):\(r.line): \(r.fields.count) fields, the header names \(names.count)")
            }
            guard let capture = value(captureColumn) else { throw BatchError("\(path):\(r.line): no capture named") }
            var row = Row(line: r.line, capture: capture, canonical: "")
            var canonical: [String] = []
            for (i, name) in names.enumerated() {
                guard let v = value(i), i != captureColumn else { continue }
                canonical.append("\(name)=\(v)")
                switch name {
                case "label", "device": row.label = v
                case "model": row.model = v
                case "ip":
                    for part in v.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                        guard let s = DeviceSelector(part) else { throw BatchError("\(path):\(r.line): ip '\(part)' is not an address or prefix") }
                        row.devices.append(s)
                    }
                default:
                    if let kind = identifierColumns[name] {
                        for part in v.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                            if part.count < 6 {
                                throw BatchError("\(path):\(r.line): \(name) '\(part)' is too short to be matched reliably (6 characters at least)")
                            }
                            row.identifiers.append(KnownIdentifier(kind: kind, value: part))
                            if kind == .mac {
                                guard let s = DeviceSelector(part) else { throw BatchError("\(path):\(r.line): mac '\(part)' is not a MAC address") }
                                row.devices.append(s)
                            }
                        }
                    } else {
                        row.attributes[name] = v
                    }
                }
            }
            row.canonical = canonical.joined(separator: "\u{1F}")
            rows.append(row)
        }
        return DeviceTable(path: path, rows: rows)
    }

    /// The row of each capture (keyed by its path as found), and warnings for rows that match none. A row
    /// matches a capture whose path equals its `capture`, ends with `/` + it, or whose file name is it; the most
    /// specific match wins. Throws when two rows name the same capture or a file name matches several captures.
    public func assign(to captures: [String]) throws(BatchError) -> (rows: [String: Row], unmatched: [Row]) {
        var byPath: [String: Row] = [:]
        var unmatched: [Row] = []
        var basenames: [String: [String]] = [:]
        for c in captures { basenames[(c as NSString).lastPathComponent, default: []].append(c) }
        let set = Set(captures)
        for row in rows {
            var target: String?
            if set.contains(row.capture) {
                target = row.capture
            } else {
                let suffix = captures.filter { $0.hasSuffix("/" + row.capture) }
                if suffix.count == 1 {
                    target = suffix[0]
                } else if suffix.count > 1 {
                    throw BatchError("\(path):\(row.line): '\(row.capture)' matches \(suffix.count) captures (\(suffix.prefix(3).joined(separator: ", "))...): give more of the path")
                }
            }
            if target == nil, let b = basenames[row.capture] {
                if b.count > 1 { throw BatchError("\(path):\(row.line): '\(row.capture)' names \(b.count) captures (\(b.prefix(3).joined(separator: ", "))): give more of the path") }
                target = b[0]
            }
            guard let t = target else {
                unmatched.append(row)
                continue
            }
            if let other = byPath[t] { throw BatchError("\(path):\(row.line): \(t) already has a row (line \(other.line))") }
            byPath[t] = row
        }
        return (byPath, unmatched)
    }
}

/// RFC 4180 records: fields separated by commas, quoted with `"` (a doubled `"` inside), CRLF or LF line ends.
/// Each record carries the line it starts on; unquoted fields are trimmed of spaces, quoted ones kept as they are.
/// A line starting with `#` is a comment (skipped before it is split). Throws on a quote never closed.
func csvRecords(_ text: String, path: String) throws(BatchError) -> [(line: Int, fields: [String])] {
    var out: [(Int, [String])] = []
    var fields: [String] = []
    var field = ""
    var quoted = false, wasQuoted = false
    var line = 1, start = 1, quoteLine = 0
    var chars = Array(text.unicodeScalars)[...]
    func endField() {
        fields.append(wasQuoted ? field : field.trimmingCharacters(in: .whitespaces))
        field = ""
        wasQuoted = false
    }
    while let c = chars.first {
        // A comment line: skipped whole, quotes and commas in it included.
        if c == "#" && fields.isEmpty && field.isEmpty && !wasQuoted {
            while let d = chars.first, d != "\n" { chars.removeFirst() }
            if !chars.isEmpty { chars.removeFirst() }
            line += 1
            start = line
            continue
        }
        chars.removeFirst()
        if quoted {
            if c == "\"" {
                if chars.first == "\"" {
                    field.unicodeScalars.append("\"")
                    chars.removeFirst()
                } else {
                    quoted = false
                }
            } else {
                if c == "\n" { line += 1 }
                field.unicodeScalars.append(c)
            }
            continue
        }
        switch c {
        case "\"" where field.trimmingCharacters(in: .whitespaces).isEmpty && !wasQuoted:
            quoted = true
            wasQuoted = true
            field = ""
            quoteLine = line
        case ",": endField()
        case "\r" where chars.first == "\n": continue
        case "\n", "\r":
            endField()
            out.append((start, fields))
            fields = []
            line += 1
            start = line
        default: field.unicodeScalars.append(c)
        }
    }
    if quoted { throw BatchError("\(path):\(quoteLine): a quoted field is never closed") }
    if !field.isEmpty || !fields.isEmpty || wasQuoted {
        endField()
        out.append((start, fields))
    }
    return out.map { (line: $0.0, fields: $0.1) }
}
