internal import Foundation

/// How ordinary a domain label looks: a character bigram model of labels people chose, trained on the labels of the
/// Public Suffix List Siphon ships (MPL 2.0: its ICANN section's city, region and sector names in many languages, its
/// private section's company and product names: `blogspot`, `herokuapp`, `kobe`, `trondheim`...). A label's score is
/// the mean log₂ probability of its character transitions, boundaries included; generated labels (random letters,
/// hex, base32) score far lower than words and brands.
///
/// The threshold is not chosen by hand: the list's labels are split by a hash into a training part (4 of 5) and a
/// held-out part, the model is trained on the first, and a label is "random" when it scores below the held-out
/// labels' 1st percentile (of those with at least `minimumLength` characters): 99 % of human-made labels the model
/// never saw score above it.
public struct NameRandomness: Sendable {
    /// Symbols: 0 the boundary, 1-26 letters, 27-36 digits, 37 the hyphen.
    static let symbols = 38
    /// log₂ P(next | previous), row by previous symbol.
    let logProbability: [Double]
    /// Labels scoring below this are random-looking.
    public let threshold: Double
    /// Labels shorter than this are not judged (too few transitions to tell).
    public static let minimumLength = 7
    /// Labels trained on and held out.
    public let trainingLabels: Int
    public let heldOutLabels: Int

    @inline(__always) static func symbol(_ b: UInt8) -> Int? {
        switch b {
        case 0x61...0x7A: Int(b - 0x60)
        case 0x41...0x5A: Int(b - 0x40)
        case 0x30...0x39: Int(b - 0x30) + 27
        case 0x2D: 37
        default: nil
        }
    }

    /// The labels of a Public Suffix List text: each rule's labels of letters, digits and hyphens (no IDN), three
    /// characters or more, lower case, each once, in the list's order. Read as bytes (`PublicSuffixList.forEachRule`).
    static func labels(fromList text: String) -> [String] {
        var seen: Set<String> = [], out: [String] = []
        PublicSuffixList.forEachRule(in: text) { rule in
            for part in rule.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
                let raw = part.drop { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "!") }
                guard raw.count >= 3, raw.allSatisfy({ symbol($0) != nil }) else { continue }
                let label = String(decoding: raw, as: UTF8.self).lowercased()
                guard !label.hasPrefix("xn--"), seen.insert(label).inserted else { continue }
                out.append(label)
            }
        }
        return out
    }

    /// The model of `labels` (lower case): trained on those whose FNV-1a hash is not 0 modulo 5, the threshold from
    /// the others.
    public init(labels: [String]) {
        func hash(_ s: String) -> UInt64 { s.utf8.reduce(FNV1a.seed, FNV1a.step) }
        let training = labels.filter { hash($0) % 5 != 0 }, heldOut = labels.filter { hash($0) % 5 == 0 }
        var counts = [Int](repeating: 0, count: Self.symbols * Self.symbols)
        for label in training {
            var previous = 0
            for b in label.utf8 {
                guard let s = Self.symbol(b) else { continue }
                counts[previous * Self.symbols + s] += 1
                previous = s
            }
            counts[previous * Self.symbols] += 1
        }
        var logs = [Double](repeating: 0, count: counts.count)
        for row in 0..<Self.symbols {
            let total = (0..<Self.symbols).reduce(0) { $0 + counts[row * Self.symbols + $1] } + Self.symbols
            for col in 0..<Self.symbols {
                // Add-one (Laplace) smoothing: a transition never seen is rare, not impossible.
                logs[row * Self.symbols + col] = log2(Double(counts[row * Self.symbols + col] + 1) / Double(total))
            }
        }
        logProbability = logs
        trainingLabels = training.count
        heldOutLabels = heldOut.count
        let model = logs
        let scores = heldOut.filter { $0.utf8.count >= Self.minimumLength }.compactMap { Self.score($0, model) }.sorted()
        threshold = scores.isEmpty ? -.infinity : scores[scores.count / 100]
    }

    /// The model of the shipped Public Suffix List, as `scripts/name_model.py` trained it (`NameModel`): training at
    /// start read and split the list again, 27 M instructions on every capture with an NXDOMAIN answer.
    public static let shared = NameRandomness(
        logProbability: NameModel.logProbability, threshold: NameModel.threshold, trainingLabels: NameModel.trainingLabels,
        heldOutLabels: NameModel.heldOutLabels)

    /// The model trained now on the shipped list (what `shared` must equal: the tests compare them).
    static func trainedOnBundledList() -> NameRandomness {
        NameRandomness(labels: PublicSuffixList.bundledText().map(labels(fromList:)) ?? [])
    }

    init(logProbability: [Double], threshold: Double, trainingLabels: Int, heldOutLabels: Int) {
        self.logProbability = logProbability
        self.threshold = threshold
        self.trainingLabels = trainingLabels
        self.heldOutLabels = heldOutLabels
    }

    static func score(_ label: String, _ model: [Double]) -> Double? {
        var previous = 0, total = 0.0, n = 0
        for b in label.utf8 {
            guard let s = symbol(b) else { return nil }
            total += model[previous * symbols + s]
            previous = s
            n += 1
        }
        guard n > 0 else { return nil }
        total += model[previous * symbols]
        return total / Double(n + 1)
    }

    /// The mean log₂ probability of a label's transitions; nil for a label with other characters than letters,
    /// digits and hyphens.
    public func score(_ label: String) -> Double? { Self.score(label, logProbability) }

    /// Whether a label (the first of a registered domain) looks generated: long enough to judge, and scoring below
    /// the threshold.
    public func isRandom(_ label: String) -> Bool {
        guard label.utf8.count >= Self.minimumLength, let s = score(label) else { return false }
        return s < threshold
    }
}
