/// A capture timestamp: nanoseconds since the Unix epoch, UTC.
///
/// Capture time is the only clock of a pipeline: timeouts, intervals and event times all derive from it.
@frozen
public struct Timestamp: Hashable, Comparable, Sendable {
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    @inlinable
    public init(seconds: Int64, nanoseconds: Int64 = 0) { self.nanoseconds = seconds &* 1_000_000_000 &+ nanoseconds }

    @inlinable
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }

    @inlinable
    public static func + (a: Timestamp, d: Duration) -> Timestamp { Timestamp(nanoseconds: a.nanoseconds &+ d.nanoseconds) }

    /// The time between two capture times, saturating at the 64-bit range (capture times are untrusted input: a
    /// pcapng file can hold any 64-bit value, and no arithmetic on them may trap).
    @inlinable
    public static func - (a: Timestamp, b: Timestamp) -> Duration { Duration(nanoseconds: a.nanoseconds(since: b)) }

    /// `self - other` in nanoseconds, saturating at `Int64.min` and `Int64.max`.
    @inlinable
    public func nanoseconds(since other: Timestamp) -> Int64 { Timestamp.saturatingDifference(nanoseconds, other.nanoseconds) }

    /// `a - b`, saturating.
    @inlinable
    public static func saturatingDifference(_ a: Int64, _ b: Int64) -> Int64 {
        let (d, overflow) = a.subtractingReportingOverflow(b)
        return overflow ? (a < b ? .min : .max) : d
    }

    /// This time plus `n` nanoseconds, saturating.
    @inlinable
    public func adding(nanoseconds n: Int64) -> Timestamp {
        let (s, overflow) = nanoseconds.addingReportingOverflow(n)
        return Timestamp(nanoseconds: overflow ? (n > 0 ? .max : .min) : s)
    }

    @inlinable public static var zero: Timestamp { Timestamp(nanoseconds: 0) }

    /// Seconds since the epoch as a floating-point value (for figures, not for keys).
    public var secondsDouble: Double { Double(nanoseconds) / 1e9 }

    /// RFC 3339 in UTC with microseconds, e.g. `2024-03-01T12:00:00.123456Z`, as the JSON contract requires.
    public var rfc3339: String {
        var out: [UInt8] = []
        out.reserveCapacity(27)
        appendRFC3339(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the RFC 3339 form (`2025-03-14T09:00:00.000000Z`, 27 bytes) to `out`: JSON writers put it straight
    /// into their buffer (three timestamps per flow event), no string in between.
    public func appendRFC3339(to out: inout [UInt8]) {
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: 27))
        out.withUnsafeMutableBufferPointer { writeRFC3339(into: $0.baseAddress! + base) }
    }

    /// Writes the 27 bytes of the RFC 3339 form at `o`.
    public func writeRFC3339(into o: UnsafeMutablePointer<UInt8>) {
        var micros = nanoseconds / 1000
        if nanoseconds < 0 && nanoseconds % 1000 != 0 { micros -= 1 }  // floor toward the past
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (y, m, d) = Timestamp.civil(fromDays: days)
        // Two digits at a time from a table (JSON events carry several timestamps each: digit by digit, with a
        // division per digit, this cost 480 instructions a timestamp).
        let pairs = Timestamp.digitPairs.utf8Start
        func two(_ v: Int64, _ at: Int) {
            let p = pairs + Int(v) &* 2
            o[at] = p[0]
            o[at + 1] = p[1]
        }
        let year = min(max(y, 0), 9999)  // RFC 3339 years have four digits
        two(year / 100, 0); two(year % 100, 2); o[4] = 0x2D
        two(m, 5); o[7] = 0x2D
        two(d, 8); o[10] = 0x54
        let minutes = secondOfDay / 60
        two(minutes / 60, 11); o[13] = 0x3A
        two(minutes % 60, 14); o[16] = 0x3A
        two(secondOfDay % 60, 17); o[19] = 0x2E
        let f = fraction / 100
        two(f / 100, 20); two(f % 100, 22); two(fraction % 100, 24); o[26] = 0x5A
    }

    /// "00" to "99", two bytes each.
    private static let digitPairs: StaticString =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

extension Duration {
    /// Whole nanoseconds of the duration (saturating is unnecessary at capture scales).
    @inlinable
    public var nanoseconds: Int64 {
        let (s, atto) = components
        return s &* 1_000_000_000 &+ atto / 1_000_000_000
    }

    @inlinable
    public init(nanoseconds: Int64) { self = .nanoseconds(nanoseconds) }

    public var secondsDouble: Double { Double(nanoseconds) / 1e9 }
}
