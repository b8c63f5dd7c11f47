internal import Foundation

/// Where a phone number leads: its country (ISO 3166 alpha-2; nil for the non-geographic codes +800, +882, ...),
/// its calling code, what kind of number it is, and whether that is home or abroad.
public struct NumberInfo: Sendable, Equatable {
    public var country: String?
    public var callingCode: String
    /// premium-rate, toll-free, shared-cost, mobile, fixed-line, voip, short-code, premium-short-code,
    /// non-geographic; nil when the plan does not say.
    public var kind: String?
    public var scope: GeoInfo.Scope

    public init(country: String?, callingCode: String, kind: String?, scope: GeoInfo.Scope) {
        self.country = country
        self.callingCode = callingCode
        self.kind = kind
        self.scope = scope
    }

    /// Whether the number costs the sender more than a call or SMS to a subscriber (premium rate or shared cost).
    public var isPremium: Bool { kind == "premium-rate" || kind == "premium-short-code" || kind == "shared-cost" }
}

/// The world's phone-number plan as libphonenumber's metadata describes it (data/numbering.tsv, built by
/// scripts/build_numbering.py; Apache-2.0): calling codes to countries, shared codes (+1, +7, +44, ...) resolved by
/// leading digits or number ranges, number kinds (premium rate, toll free, mobile...) and short numbers.
public final class NumberingPlan: @unchecked Sendable {
    struct Territory {
        var region: String
        var code: String
        var main: Bool
        var leading: String?
        var nationalPrefix: String?
        /// general, fixed, mobile, premium, tollFree, sharedCost, voip, shortGeneral, shortPremium
        var patterns: [String?]
    }
    private let byCode: [String: [Territory]]
    private let byRegion: [String: Territory]
    private var compiled: [String: Regex<AnyRegexOutput>] = [:]
    private let lock = NSLock()

    public init(path: String) throws(GeoError) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw GeoError("\(path): cannot read the numbering plan")
        }
        var byCode: [String: [Territory]] = [:], byRegion: [String: Territory] = [:]
        for (n, line) in text.split(separator: "\n").enumerated() where !line.hasPrefix("#") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map { $0 == "-" ? nil : String($0) }
            guard f.count == 14, let region = f[0], let code = f[1] else { throw GeoError("\(path):\(n + 1): expected 14 fields") }
            let t = Territory(region: region, code: code, main: f[2] == "1", leading: f[3], nationalPrefix: f[4], patterns: Array(f[5...]))
            byCode[code, default: []].append(t)
            if region != "001" { byRegion[region] = t }
        }
        // Main country first, as libphonenumber tries them.
        self.byCode = byCode.mapValues { $0.sorted { $0.main && !$1.main } }
        self.byRegion = byRegion
    }

    /// The plan shipped with Siphon (nil if its file is missing).
    public static let embedded: NumberingPlan? = GeoDatabase.defaultDirectory.flatMap { try? NumberingPlan(path: $0 + "/numbering.tsv") }

    private func matches(_ pattern: String?, _ digits: String) -> Bool {
        guard let pattern else { return false }
        lock.lock()
        defer { lock.unlock() }
        let regex: Regex<AnyRegexOutput>
        if let r = compiled[pattern] {
            regex = r
        } else {
            guard let r = try? Regex(pattern) else { return false }
            compiled[pattern] = r
            regex = r
        }
        return (try? regex.wholeMatch(in: digits)) != nil
    }

    private func prefixMatches(_ pattern: String, _ digits: String) -> Bool {
        guard let r = try? Regex("(?:" + pattern + ")") else { return false }
        return (try? r.prefixMatch(in: digits)) != nil
    }

    private static let kinds = ["fixed-line", "mobile", "premium-rate", "toll-free", "shared-cost", "voip"]

    /// The kind of a national significant number in a territory (nil: none of its ranges).
    private func kind(_ t: Territory, _ nsn: String) -> String? {
        // Premium, toll-free and shared-cost first: the ranges that cost are what the verdict needs.
        for i in [3, 4, 5] where matches(t.patterns[i], nsn) { return Self.kinds[i - 1] }
        let mobile = matches(t.patterns[2], nsn), fixed = matches(t.patterns[1], nsn)
        // Plans that do not tell mobile from fixed numbers (the NANP) give both the same ranges.
        if mobile && fixed { return "fixed-line-or-mobile" }
        if mobile { return "mobile" }
        if fixed { return "fixed-line" }
        return matches(t.patterns[6], nsn) ? "voip" : nil
    }

    /// Classifies an international number given as its digits after `+` (calling code first).
    public func international(_ digits: String, home: Set<String>) -> NumberInfo? {
        for n in 1...3 where digits.count > n {
            let code = String(digits.prefix(n))
            guard let candidates = byCode[code] else { continue }
            let nsn = String(digits.dropFirst(n))
            var chosen = candidates[0]
            var kind: String?
            if candidates.count > 1 {
                var found = false
                for t in candidates {
                    if let leading = t.leading {
                        if prefixMatches(leading, nsn) { chosen = t; kind = self.kind(t, nsn); found = true; break }
                    } else if let k = self.kind(t, nsn) {
                        chosen = t; kind = k; found = true; break
                    }
                }
                if !found { chosen = candidates.first { $0.main } ?? candidates[0] }
            } else {
                kind = self.kind(chosen, nsn)
            }
            if chosen.region == "001" {
                // International networks (+800 freephone, +882/+883 global carriers, +881 satellite): their costly
                // kinds kept, the rest non-geographic.
                let costly = kind.map { ["premium-rate", "toll-free", "shared-cost"].contains($0) } ?? false
                return NumberInfo(country: nil, callingCode: code, kind: costly ? kind : "non-geographic", scope: .foreign)
            }
            return NumberInfo(country: chosen.region, callingCode: code, kind: kind,
                              scope: home.contains(chosen.region) ? .home : .foreign)
        }
        return nil
    }

    /// Classifies a number as a phone sent it: international (`+`), with an international prefix (`00`), in
    /// national form (the home country's national prefix), or a short number of the home country.
    public func classify(_ number: String, international isInternational: Bool, home: Set<String>) -> NumberInfo? {
        let digits = String(number.filter(\.isNumber))
        guard !digits.isEmpty else { return nil }
        if isInternational { return international(digits, home: home) }
        if digits.hasPrefix("00") { return international(String(digits.dropFirst(2)), home: home) }
        guard let region = home.sorted().first, let t = byRegion[region] else { return nil }
        if let prefix = t.nationalPrefix, digits.hasPrefix(prefix), digits.count > 6 {
            let nsn = String(digits.dropFirst(prefix.count))
            return NumberInfo(country: region, callingCode: t.code, kind: kind(t, nsn), scope: .home)
        }
        if digits.count <= 6 {
            let premium = matches(t.patterns[8], digits)
            return NumberInfo(country: region, callingCode: t.code, kind: premium ? "premium-short-code" : "short-code", scope: .home)
        }
        return NumberInfo(country: region, callingCode: t.code, kind: kind(t, digits), scope: .home)
    }
}
