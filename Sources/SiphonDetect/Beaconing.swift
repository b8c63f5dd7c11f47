internal import SiphonCore

/// Thresholds of the beaconing detector.
public struct BeaconConfiguration: Sendable {
    /// Contacts (connections that got an answer) needed before the regularity is judged.
    public var minimumContacts = 6
    /// Median interval below which contacts are a burst (page loads, retries), not a beacon.
    public var minimumInterval = 1.0
    /// Largest dispersion of the intervals, as median absolute deviation over median, for a series to be regular.
    /// A median is robust to up to half the intervals being off (missed beacons, extra contacts); 0.2 accepts
    /// implants that randomise each sleep by up to ±40 % (uniform jitter of ±j gives a MAD of j/2).
    public var maximumDispersion = 0.2
    /// An interval counts as regular (evidence only) when within this fraction of the median.
    public var jitter = 0.2
    /// Contact times kept per target (older ones are dropped first).
    public var maximumContacts = 4096
    /// Addresses of one foreign /24 (/48) contacted with no DNS name for them that make a spray.
    public var sprayAddresses = 16
    public init() {}
}

/// What a regular series of contacts looks like.
public struct BeaconScore: Sendable, Equatable {
    public var contacts: Int
    /// Median interval between consecutive contacts, in seconds.
    public var medianInterval: Double
    /// Median absolute deviation of the intervals from that median, in seconds.
    public var deviation: Double
    /// Fraction of intervals within the jitter tolerance of the median.
    public var regularFraction: Double

    /// Scores contact times (any order). Nil for fewer than three contacts.
    public init?(times: [Double], configuration c: BeaconConfiguration) {
        guard times.count >= 3 else { return nil }
        var sorted = times
        sorted.sort()
        // Intervals and deviations share one scratch buffer (this runs at every contact of a series up to 64).
        let n = sorted.count - 1
        var scratch = [Double](repeating: 0, count: n)
        for i in 0..<n { scratch[i] = sorted[i + 1] - sorted[i] }
        let intervals = scratch
        let median = Self.medianInPlace(&scratch)
        let tolerance = c.jitter * median
        var regular = 0
        for i in 0..<n {
            let d = abs(intervals[i] - median)
            if d <= tolerance { regular += 1 }
            scratch[i] = d
        }
        contacts = sorted.count
        medianInterval = median
        deviation = Self.medianInPlace(&scratch)
        regularFraction = Double(regular) / Double(n)
    }

    public func isBeacon(_ c: BeaconConfiguration) -> Bool {
        contacts >= c.minimumContacts && medianInterval >= c.minimumInterval
            && deviation <= c.maximumDispersion * medianInterval
    }

    static func median(_ values: [Double]) -> Double {
        var s = values
        return medianInPlace(&s)
    }

    /// The median of `s`, sorting it in place.
    static func medianInPlace(_ s: inout [Double]) -> Double {
        s.sort()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
