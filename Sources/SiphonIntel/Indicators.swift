import Foundation
public import SiphonCore
import Yams

/// One indicator of compromise and where it came from.
public struct Indicator: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case ip, cidr, domain, url
        /// A TLS client fingerprint (JA3, MD5 hex) and a server certificate's SHA-1 fingerprint (hex, no colons), as
        /// abuse.ch SSLBL lists them.
        case ja3
        case certificateSHA1 = "cert_sha1"
    }
    public var kind: Kind
    public var value: String
    /// The feed file and, where the feed says, the family or campaign (an app name, a STIX malware name).
    public var source: String
    public var tag: String?
}

public struct IntelError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// Indicators loaded from feeds, matched against addresses, host names and URLs. Domain matching is label-aware:
/// `evil.com` matches `a.evil.com`, not `notevil.com`.
public final class IndicatorSet: @unchecked Sendable {
    public private(set) var indicators: [Indicator] = []
    private var ips: [IPAddress: Int] = [:]
    private var cidrs: [(IPNetwork, Int)] = []
    private var domains: [String: Int] = [:]
    private var urls: [String: Int] = [:]
    /// JA3 hashes and certificate SHA-1 fingerprints, lower-case hex.
    private var fingerprints: [String: Int] = [:]
    /// Entries a feed holds that are not network indicators (file hashes, package names, e-mail...), per feed.
    public private(set) var skipped: [String: Int] = [:]

    public init() {}

    public func count(_ kind: Indicator.Kind) -> Int { indicators.filter { $0.kind == kind }.count }

    /// Adds one value as an IP, CIDR, URL or domain by its form; returns false when it is none of them.
    @discardableResult
    public func add(_ raw: String, source: String, tag: String? = nil) -> Bool {
        let value = raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard !value.isEmpty else { return false }
        if let a = IPAddress(value) {
            if ips[a] == nil { ips[a] = indicators.count; indicators.append(Indicator(kind: .ip, value: a.description, source: source, tag: tag)) }
            return true
        }
        if value.contains("/"), let network = IPNetwork(value) {
            cidrs.append((network, indicators.count))
            indicators.append(Indicator(kind: .cidr, value: value, source: source, tag: tag))
            return true
        }
        if value.hasPrefix("http://") || value.hasPrefix("https://") {
            if urls[value] == nil { urls[value] = indicators.count; indicators.append(Indicator(kind: .url, value: value, source: source, tag: tag)) }
            return true
        }
        let domain = value.hasSuffix(".") ? String(value.dropLast()) : value
        guard domain.contains("."), domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" || $0 == "*" })
        else { return false }
        let bare = domain.hasPrefix("*.") ? String(domain.dropFirst(2)) : domain
        if domains[bare] == nil { domains[bare] = indicators.count; indicators.append(Indicator(kind: .domain, value: bare, source: source, tag: tag)) }
        return true
    }

    func skip(_ source: String, _ n: Int = 1) { skipped[source, default: 0] += n }

    /// The indicator an address matches (exact, then CIDR).
    public func match(address: IPAddress) -> Indicator? {
        if let i = ips[address] { return indicators[i] }
        for (network, i) in cidrs where network.contains(address) { return indicators[i] }
        return nil
    }

    /// The indicator a host name matches: itself or any parent domain (label by label).
    public func match(domain name: String) -> Indicator? {
        var d = Substring(name.lowercased())
        if d.hasSuffix(".") { d = d.dropLast() }
        while true {
            if let i = domains[String(d)] { return indicators[i] }
            guard let dot = d.firstIndex(of: ".") else { return nil }
            d = d[d.index(after: dot)...]
        }
    }

    public func match(url: String) -> Indicator? { urls[url.lowercased()].map { indicators[$0] } }

    /// Adds a JA3 hash (32 hex digits) or a certificate's SHA-1 (40, colons allowed); false when it is neither.
    @discardableResult
    public func add(fingerprint raw: String, kind: Indicator.Kind, source: String, tag: String? = nil) -> Bool {
        guard let value = Self.hex(raw, digits: kind == .ja3 ? 32 : 40) else { return false }
        if fingerprints[value] == nil {
            fingerprints[value] = indicators.count
            indicators.append(Indicator(kind: kind, value: value, source: source, tag: tag))
        }
        return true
    }

    /// The indicator a ClientHello's JA3 or a server certificate's SHA-1 (any case, colons allowed) matches.
    public func match(fingerprint: String?) -> Indicator? {
        guard !fingerprints.isEmpty, let fingerprint else { return nil }
        return fingerprints[fingerprint.lowercased().replacingOccurrences(of: ":", with: "")].map { indicators[$0] }
    }

    /// `raw` as `digits` lower-case hex digits (colons and surrounding spaces dropped), nil when it is not.
    static func hex(_ raw: String, digits: Int) -> String? {
        let v = raw.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: ":", with: "")
        return v.utf8.count == digits && v.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) ? v : nil
    }

    /// The kind of fingerprint list an abuse.ch SSLBL CSV is, from its column header (`# Listingdate,SHA1,
    /// Listingreason` for certificates, `# ja3_md5,Firstseen,Lastseen,Listingreason` for JA3; copies drop the `#` or
    /// reorder the columns), and the columns of the value and the listing reason.
    static func sslblLayout(_ lines: [Substring]) -> (kind: Indicator.Kind, value: Int, reason: Int?, header: Int)? {
        for (n, line) in lines.prefix(64).enumerated() {
            let columns = line.drop { $0 == "#" || $0 == " " }.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let reason = columns.firstIndex(of: "listingreason")
            if let i = columns.firstIndex(of: "sha1") { return (.certificateSHA1, i, reason, n) }
            if let i = columns.firstIndex(of: "ja3_md5") { return (.ja3, i, reason, n) }
            if !line.hasPrefix("#") { return nil }
        }
        return nil
    }

    // MARK: Feeds

    /// Loads a feed file, its format detected from its content: STIX 2.1 bundle, MISP event, TinyCheck JSON,
    /// stalkerware-indicators YAML or CSV, abuse.ch SSLBL CSV (certificate SHA-1 or JA3), or a plain list (one IP, CIDR, domain or URL a line; `#` comments).
    /// Returns the number of network indicators added.
    @discardableResult
    public func load(path: String) throws(IntelError) -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { throw IntelError("\(path): cannot read") }
        return try load(bytes: [UInt8](data), path: path)
    }

    /// Loads a feed held in memory; `path` names it in errors and (its last component) as the indicators' source.
    @discardableResult
    public func load(bytes: [UInt8], path: String) throws(IntelError) -> Int {
        let data = Data(bytes)
        let name = (path as NSString).lastPathComponent
        let before = indicators.count
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.drop { $0.isWhitespace }
        // (Lines split on any newline: "\r\n" is one Character in Swift, not two.) Only for the line formats.
        lazy var lines = text.split(whereSeparator: \.isNewline)
        if trimmed.first == "{" || trimmed.first == "[" {
            guard let json = try? JSONSerialization.jsonObject(with: data) else { throw IntelError("\(path): invalid JSON") }
            try loadJSON(json, source: name, path: path)
        } else if trimmed.hasPrefix("- name:") || trimmed.hasPrefix("---") {
            try loadYAML(text, source: name, path: path)
        } else if let layout = Self.sslblLayout(lines) {
            // abuse.ch SSLBL: `date,sha1,reason` or `ja3_md5,first seen,last seen,reason` after the column header.
            for line in lines.dropFirst(layout.header + 1) where !line.hasPrefix("#") {
                let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard f.count > layout.value else { skip(name); continue }
                let reason = layout.reason.flatMap { $0 < f.count ? f[$0].trimmingCharacters(in: .whitespaces) : nil }
                if !add(fingerprint: f[layout.value], kind: layout.kind, source: name, tag: reason) { skip(name) }
            }
        } else if let header = lines.first, header.lowercased().hasPrefix("type,") {
            for line in lines.dropFirst() {
                let f = line.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard f.count >= 2 else { continue }
                if !add(f[1], source: name, tag: f.count > 2 ? f[2] : nil) { skip(name) }
            }
        } else {
            for line in lines {
                let entry = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                if entry.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                if !add(entry, source: name) { skip(name) }
            }
        }
        return indicators.count - before
    }

    private func loadJSON(_ json: Any, source: String, path: String) throws(IntelError) {
        if let bundle = json as? [String: Any], bundle["type"] as? String == "bundle", let objects = bundle["objects"] as? [[String: Any]] {
            // STIX 2.1: indicators with patterns; the family from the malware object they relate to is not needed here.
            let malware = objects.first { $0["type"] as? String == "malware" }?["name"] as? String
            for o in objects where o["type"] as? String == "indicator" {
                guard let pattern = o["pattern"] as? String else { skip(source); continue }
                let found = IndicatorSet.stixValues(pattern)
                if found.isEmpty { skip(source) }
                for value in found where !add(value, source: source, tag: malware) { skip(source) }
            }
            return
        }
        if let event = (json as? [String: Any])?["Event"] as? [String: Any] ?? (json as? [String: Any]).flatMap({ $0["Attribute"] != nil ? $0 : nil }) {
            // MISP: attributes at the event level and inside objects.
            var attributes = event["Attribute"] as? [[String: Any]] ?? []
            var tags: [String?] = Array(repeating: nil, count: attributes.count)
            for o in event["Object"] as? [[String: Any]] ?? [] {
                let inner = o["Attribute"] as? [[String: Any]] ?? []
                let tag = inner.first { $0["type"] as? String == "text" }?["value"] as? String
                attributes += inner
                tags += Array(repeating: tag, count: inner.count)
            }
            for (a, tag) in zip(attributes, tags) {
                let type = a["type"] as? String ?? ""
                guard ["domain", "hostname", "ip-dst", "ip-src", "url", "ip-dst|port", "domain|ip"].contains(type),
                    let value = a["value"] as? String
                else { skip(source); continue }
                let v = type.contains("|") ? String(value.split(separator: "|").first ?? "") : value
                if !add(v, source: source, tag: tag) { skip(source) }
            }
            return
        }
        if let list = (json as? [String: Any])?["iocs"] as? [[String: Any]] ?? json as? [[String: Any]] {
            // TinyCheck: {type, tag, tlp, value}.
            for ioc in list {
                let type = ioc["type"] as? String ?? ""
                guard ["domain", "ip4", "ip6", "cidr", "freedns", "url", "ip"].contains(type), let value = ioc["value"] as? String
                else { skip(source); continue }
                if !add(value, source: source, tag: ioc["tag"] as? String) { skip(source) }
            }
            return
        }
        throw IntelError("\(path): JSON of no known feed format (STIX bundle, MISP event, TinyCheck)")
    }

    /// Values of the network observables in a STIX pattern (`[domain-name:value = 'x'] OR [ipv4-addr:value = ...]`).
    static func stixValues(_ pattern: String) -> [String] {
        var out: [String] = []
        let kinds = ["domain-name:value", "ipv4-addr:value", "ipv6-addr:value", "url:value"]
        var rest = Substring(pattern)
        while let open = rest.firstIndex(of: "[") {
            guard let close = rest[open...].firstIndex(of: "]") else { break }
            let term = rest[rest.index(after: open)..<close]
            rest = rest[rest.index(after: close)...]
            let parts = term.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let lhs = parts[0].trimmingCharacters(in: .whitespaces)
            guard kinds.contains(lhs) else { continue }
            let v = parts[1].trimmingCharacters(in: .whitespaces)
            guard v.count >= 2, v.first == "'", v.last == "'" else { continue }
            out.append(String(v.dropFirst().dropLast()).replacingOccurrences(of: "\\\\'", with: "'"))
        }
        return out
    }

    /// A YAML node as `Yams.load` would give it (scalars typed by Yams; sequences as `[Any]`, mappings as
    /// `[String: Any]`), refusing keys that are not scalars and nesting deeper than 64.
    static func plain(_ node: Node, path: String, depth: Int = 0) throws(IntelError) -> Any {
        guard depth < 64 else { throw IntelError("\(path): YAML nested more than 64 deep (line \(node.mark?.line ?? 0))") }
        switch node {
        case .scalar:
            return node.any
        case .sequence(let s):
            var out: [Any] = []
            for child in s { out.append(try plain(child, path: path, depth: depth + 1)) }
            return out
        case .mapping(let m):
            var out: [String: Any] = [:]
            for (key, value) in m {
                guard let k = key.string else {
                    throw IntelError("\(path): YAML mapping key is not a scalar (line \(key.mark?.line ?? 0))")
                }
                out[k] = try plain(value, path: path, depth: depth + 1)
            }
            return out
        }
    }

    private func loadYAML(_ text: String, source: String, path: String) throws(IntelError) {
        let parsed: Any?
        do {
            // Composed into nodes and converted here rather than `Yams.load`: its mapping constructor traps on a
            // key that is not a scalar (`? [a]: b`, found by the `ioc` fuzz target).
            parsed = try Yams.compose(yaml: text).map { n throws(IntelError) in try Self.plain(n, path: path) }
        } catch let e as IntelError {
            throw e
        } catch {
            throw IntelError("\(path): invalid YAML: \(error)")
        }
        guard let apps = parsed as? [[String: Any]] else { throw IntelError("\(path): YAML is not a list of app families") }
        for app in apps {
            let name = app["name"] as? String
            if let c2 = app["c2"] as? [String: Any] {
                for key in ["ips", "domains"] {
                    for v in c2[key] as? [Any] ?? [] where !add("\(v)", source: source, tag: name) { skip(source) }
                }
            }
            for key in ["websites"] {
                for v in app[key] as? [Any] ?? [] where !add("\(v)", source: source, tag: name) { skip(source) }
            }
            for key in ["packages", "certificates", "distribution"] { skip(source, (app[key] as? [Any])?.count ?? 0) }
        }
    }
}
