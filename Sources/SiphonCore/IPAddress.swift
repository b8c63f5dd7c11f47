#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held in two big-endian-ordered words, so that comparing `(high, low)` numerically
/// compares the addresses byte by byte. IPv4 addresses live in the low 32 bits with `isIPv6 == false`.
@frozen
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public var isIPv6: Bool

    @inlinable
    public init(ipv4 value: UInt32) {
        high = 0
        low = UInt64(value)
        isIPv6 = false
    }

    @inlinable
    public init(ipv6High: UInt64, low: UInt64) {
        high = ipv6High
        self.low = low
        isIPv6 = true
    }

    /// Reads an address of `length` 4 or 16 bytes at `offset` (bounds already checked by the caller).
    @inlinable @inline(__always)
    public init(_ bytes: UnsafeRawBufferPointer, at offset: Int, ipv6: Bool) {
        if ipv6 {
            self.init(ipv6High: bytes.be64(offset), low: bytes.be64(offset + 8))
        } else {
            self.init(ipv4: bytes.be32(offset))
        }
    }

    /// Parses dotted-quad IPv4 or textual IPv6 (`inet_pton`).
    public init?(_ text: String) {
        var buf = [UInt8](repeating: 0, count: 16)
        if text.contains(":") {
            guard inet_pton(AF_INET6, text, &buf) == 1 else { return nil }
            self = buf.withUnsafeBytes { IPAddress($0, at: 0, ipv6: true) }
        } else {
            guard inet_pton(AF_INET, text, &buf) == 1 else { return nil }
            self = buf.withUnsafeBytes { IPAddress($0, at: 0, ipv6: false) }
        }
    }

    @inlinable
    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.isIPv6 != b.isIPv6 { return !a.isIPv6 }
        return a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        if isIPv6 {
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
        return (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * $0)) }
    }

    /// An IPv4 address's dotted text (at most 15 bytes) written at `out`; returns its length. Also what the JSON
    /// writer puts in events, without a `String`.
    public func writeIPv4Text(to out: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        for shift in stride(from: 24, through: 0, by: -8) {
            let b = Int(truncatingIfNeeded: (low >> UInt64(shift)) & 0xFF)
            if b >= 100 { out[n] = UInt8(48 + b / 100); n += 1 }
            if b >= 10 { out[n] = UInt8(48 + b / 10 % 10); n += 1 }
            out[n] = UInt8(48 + b % 10)
            n += 1
            if shift > 0 { out[n] = UInt8(ascii: "."); n += 1 }
        }
        return n
    }

    /// Textual form as `inet_ntop` writes it (RFC 5952 for IPv6).
    public var description: String {
        // Written into stack memory: an IPv4 address (at most 15 characters) becomes a small string, with no
        // allocation at all (alerts and reports print addresses by the thousand).
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { out -> String in
            var n = 0
            if !isIPv6 {
                n = out.withMemoryRebound(to: UInt8.self) { writeIPv4Text(to: $0.baseAddress!) }
            } else {
                var raw = (high.bigEndian, low.bigEndian)
                let ok = withUnsafeBytes(of: &raw) { src in inet_ntop(AF_INET6, src.baseAddress, out.baseAddress, 64) != nil }
                guard ok else { return "?" }
                while out[n] != 0 { n += 1 }
            }
            return UnsafeBufferPointer(rebasing: out[0..<n]).withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
        }
    }
}

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`); a bare address is its own /32 or /128.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var bits: Int

    public init?(_ text: String) {
        if let slash = text.firstIndex(of: "/") {
            guard let a = IPAddress(String(text[..<slash])), let bits = Int(text[text.index(after: slash)...]),
                bits >= 0, bits <= (a.isIPv6 ? 128 : 32)
            else { return nil }
            address = a
            self.bits = bits
        } else {
            guard let a = IPAddress(text) else { return nil }
            address = a
            bits = a.isIPv6 ? 128 : 32
        }
    }

    public func contains(_ a: IPAddress) -> Bool {
        guard a.isIPv6 == address.isIPv6 else { return false }
        if !a.isIPv6 { return bits == 0 || a.low >> UInt64(32 - bits) == address.low >> UInt64(32 - bits) }
        if bits <= 64 { return bits == 0 || a.high >> UInt64(64 - bits) == address.high >> UInt64(64 - bits) }
        return a.high == address.high && (bits == 128 || a.low >> UInt64(128 - bits) == address.low >> UInt64(128 - bits))
    }

    public var description: String { "\(address)/\(bits)" }
}
