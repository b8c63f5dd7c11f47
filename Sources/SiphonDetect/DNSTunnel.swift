internal import Foundation
internal import SiphonCore

/// The Public Suffix List (publicsuffix.org; a copy ships in `data/`, see SOURCES.md there): which part of a name
/// is a public suffix, so which is the registered domain (`a.b.example.co.uk` → `example.co.uk`).
public final class PublicSuffixList: Sendable {
    private let rules: Set<String>
    private let wildcards: Set<String>
    private let exceptions: Set<String>
    public let ruleCount: Int

    public init(text: String) {
        var rules: Set<String> = [], wildcards: Set<String> = [], exceptions: Set<String> = []
        rules.reserveCapacity(text.utf8.count / 24)  // ~10,000 rules in 250 KB: no rehashing while filling
        Self.forEachRule(in: text) { raw in
            var rule = String(decoding: raw, as: UTF8.self)
            if raw.contains(where: { $0 &- 0x41 < 26 }) { rule = rule.lowercased() }  // the list is lower case
            if rule.hasPrefix("!") { exceptions.insert(String(rule.dropFirst())) } else if rule.hasPrefix("*.") {
                wildcards.insert(String(rule.dropFirst(2)))
            } else {
                rules.insert(rule)
            }
        }
        self.rules = rules
        self.wildcards = wildcards
        self.exceptions = exceptions
        ruleCount = rules.count + wildcards.count + exceptions.count
    }

    /// Each rule of a list's text, as its bytes: a line up to its first space, tab or CR; comment lines (`//`) and
    /// empty ones skipped. Read as bytes (250 KB: splitting it into Characters cost 190 M instructions, 50 ms).
    static func forEachRule(in text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            var i = 0
            let n = bytes.count
            while i < n {
                var end = i
                while end < n, bytes[end] != 0x0A { end += 1 }
                var stop = i
                while stop < end, bytes[stop] != 0x20, bytes[stop] != 0x09, bytes[stop] != 0x0D { stop += 1 }
                if stop > i, !(stop - i >= 2 && bytes[i] == 0x2F && bytes[i + 1] == 0x2F) {
                    body(UnsafeBufferPointer(rebasing: bytes[i..<stop]))
                }
                i = end + 1
            }
        }
    }

    /// The list shipped with Siphon (loaded once per process: it is immutable).
    public static let shared = PublicSuffixList(text: bundledText() ?? "")

    /// The text of the list shipped with Siphon (also what `NameRandomness` trains on).
    static func bundledText() -> String? {
        let url = ResourceFolder.path(package: "Siphon", target: "SiphonDetect")
            .map { URL(fileURLWithPath: $0 + "/data/public_suffix_list.dat") }
            ?? Bundle.module.url(forResource: "public_suffix_list", withExtension: "dat", subdirectory: "data")
        return url.flatMap { try? String(contentsOf: $0, encoding: .utf8) }
    }

    /// The registered domain of `name` (its public suffix plus one label), or nil when the name is a public
    /// suffix itself. Names under no listed suffix take the last label as suffix (the PSL's `*` default rule).
    public func registeredDomain(_ name: String) -> String? {
        // Worked on UTF-8 bytes (Character-based `hasSuffix`/`contains` walk graphemes).
        var bytes = Array(name.lowercasedIfNeeded().utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        guard let first = bytes.first, first != UInt8(ascii: ".") else { return nil }
        // Label start offsets, first label first; candidate suffixes are the tails from each start.
        var starts = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: ".") {
            if bytes[i - 1] == UInt8(ascii: ".") { return nil }  // an empty label
            starts.append(i + 1)
        }
        let labels = starts.count
        guard labels >= 2 else { return nil }
        func tail(_ i: Int) -> String { String(decoding: bytes[starts[i]...], as: UTF8.self) }
        // The longest matching rule gives the suffix length in labels (the default rule `*`: one label).
        var suffixLabels = 1
        for i in 0..<labels {
            let candidate = tail(i)
            if exceptions.contains(candidate) { suffixLabels = labels - i - 1; break }
            if rules.contains(candidate) { suffixLabels = labels - i; break }
            if i + 1 < labels, wildcards.contains(tail(i + 1)) { suffixLabels = labels - i; break }
        }
        guard labels > suffixLabels else { return nil }
        return tail(labels - suffixLabels - 1)
    }

    /// Whether the name's last label is a top-level domain the list names (else only the default rule `*`
    /// applies: a made-up suffix, as tunnels in direct mode use).
    public func listsTopLevel(_ name: String) -> Bool {
        var bytes = Array(name.utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        let start = bytes.lastIndex(of: UInt8(ascii: ".")).map { $0 + 1 } ?? 0
        return rules.contains(String(decoding: bytes[start...], as: UTF8.self).lowercased())
    }
}

/// Parameters of the `dns-tunnel` detector.
public struct DNSTunnelConfiguration: Sendable {
    /// Unique query names under one registered domain before the detector judges it.
    public var minimumNames = 30
    /// Fraction of those names that must look encoded.
    public var encodedFraction = 0.5
    /// A subdomain part at least this long looks encoded...
    public var longSubdomain = 40
    /// ...as does a label of at least 16 characters with this entropy (bits per character) or more.
    public var entropy = 3.5
    /// TXT and NULL queries under one registered domain that make a data channel by themselves (with `minimumNames`
    /// distinct names).
    public var txtQueries = 50
    /// Bytes of encoded-looking names under one domain that make the channel high: data has left (4 KiB of base32
    /// is 2.5 KiB of data; the everyday lookups of `benign-dns` carry none).
    public var highBytes = 4096
    /// Distinct names counted per device × domain (the set, and so the count, stops growing there).
    public var maximumNames = 10_000
    public init() {}
}

/// What one device asked of one registered domain.
struct DNSDomainTotals {
    /// Distinct subdomain parts (up to `maximumNames`).
    var names: Set<String> = []
    var encodedNames = 0
    /// Bytes of the encoded-looking names (dots left out): what the channel carried.
    var encodedBytes = 0
    var queries = 0
    var txtQueries = 0
    var subdomainBytes = 0
    var longestLabel = 0
    var entropySum = 0.0
    var examples: [String] = []
    var first: Timestamp
    var last: Timestamp
    /// The severity already raised for it (medium, then high once it carried `highBytes`).
    var raised: Severity?
}

enum DNSNames {
    /// Shannon entropy of the characters of `s`, in bits per character.
    static func entropy<S: Sequence>(_ s: S) -> Double where S.Element == UInt8 {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 256) { counts in
            counts.initialize(repeating: 0)
            var n = 0
            for b in s { counts[Int(b)] &+= 1; n += 1 }
            guard n > 0 else { return 0 }
            var h = 0.0
            for c in counts where c > 0 {
                let p = Double(c) / Double(n)
                h -= p * log2(p)
            }
            return h
        }
    }
}
