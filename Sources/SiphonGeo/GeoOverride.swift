public import SiphonCore

/// A network whose country (and owner) the lab declares, taking precedence over every geo source: a lab's egress
/// or test ranges, or documentation ranges that tests give a country (`--geo-override FILE.csv`).
public struct GeoOverride: Sendable, Equatable {
    public var network: IPNetwork
    public var country: String
    public var registeredCountry: String?
    public var asn: UInt32?
    public var asOrganization: String?

    public init(network: IPNetwork, country: String, registeredCountry: String? = nil, asn: UInt32? = nil, asOrganization: String? = nil) {
        self.network = network
        self.country = country
        self.registeredCountry = registeredCountry
        self.asn = asn
        self.asOrganization = asOrganization
    }

    /// Reads `network,country[,registered_country,asn,as_org]` lines (`#` comments and blank lines skipped; the AS
    /// as `64500` or `AS64500`; the organisation may hold commas). Throws naming the file and line of the first bad one.
    public static func load(path: String) throws(GeoError) -> [GeoOverride] {
        let file = try MappedFile(path: path)
        return try parse(file.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }, name: path)
    }

    public static func parse(_ text: String, name: String) throws(GeoError) -> [GeoOverride] {
        var out: [GeoOverride] = []
        var first = true
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if line.last == "\r" { line.removeLast() }
            if i == 0 && line.hasPrefix("\u{FEFF}") { line.removeFirst() }
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.first == "#" { continue }
            func bad(_ why: String) -> GeoError { GeoError("\(name):\(i + 1): \(why)") }
            var fields = trimmed.split(separator: ",", maxSplits: 4, omittingEmptySubsequences: false).map {
                String($0.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
            }
            guard fields.count >= 2 else { throw bad("expected network,country[,registered_country,asn,as_org]") }
            // A header line as spreadsheets write it (the first line that is not a comment).
            defer { first = false }
            if first && fields[0].lowercased() == "network" { continue }
            let text = fields[0]
            guard let network = IPNetwork(text) else { throw bad("\(text): not a network (192.0.2.0/24, 2001:db8::/32) or an address") }
            func code(_ s: String, _ what: String) throws(GeoError) -> String {
                let u = s.uppercased()
                guard u.utf8.count == 2, u.utf8.allSatisfy({ (65...90).contains($0) }) else {
                    throw bad("\(s): \(what) must be a two-letter country code")
                }
                return u
            }
            var o = GeoOverride(network: network, country: try code(fields[1], "country"))
            while fields.count < 5 { fields.append("") }
            if !fields[2].isEmpty { o.registeredCountry = try code(fields[2], "registered country") }
            if !fields[3].isEmpty {
                var a = Substring(fields[3])
                if a.uppercased().hasPrefix("AS") { a = a.dropFirst(2) }
                guard let asn = UInt32(a), asn > 0 else { throw bad("\(fields[3]): not an AS number") }
                o.asn = asn
            }
            if !fields[4].isEmpty { o.asOrganization = fields[4] }
            out.append(o)
        }
        return out
    }
}
