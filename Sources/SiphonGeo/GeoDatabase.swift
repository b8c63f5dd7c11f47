import Foundation
public import SiphonCore

/// Where an address is, by the embedded tables: located country (IPFire), registered country (RIR), AS number and
/// name, and its scope relative to the home countries.
public struct GeoInfo: Sendable, Equatable {
    public enum Scope: String, Sendable {
        /// Private, loopback, link-local, CGNAT, multicast, documentation and other special-purpose ranges.
        case local
        /// Located in one of the home countries.
        case home
        /// Located in a country that is not a home country.
        case foreign
        /// No data, or a region code (EU, AP...) that names no country.
        case unknown
    }

    public var country: String?
    public var registeredCountry: String?
    public var asn: UInt32?
    public var asOrganization: String?
    public var scope: Scope
}

/// One range table: sorted range starts and a value per range, memory-resident.
struct RangeTable {
    let family: Int
    let count: Int
    let valueSize: Int
    let bytes: [UInt8]
    let startsOffset = 20
    /// first[p]: the first range whose start's top 16 bits are >= p (65,537 entries): narrows each search to the
    /// ranges of one /16 (IPv4) or one 16-bit top prefix (IPv6), which are few and close together in memory.
    let first: [Int32]

    init(_ bytes: [UInt8], name: String) throws(GeoError) {
        guard bytes.count >= 20, bytes[0..<4] == [0x53, 0x47, 0x45, 0x4F] else { throw GeoError("\(name): not a Siphon geo table") }
        func u32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        family = u32(8)
        valueSize = u32(12)
        count = u32(16)
        let startSize = family == 4 ? 4 : 16
        guard (family == 4 || family == 6), valueSize == 2 || valueSize == 4, bytes.count == 20 + count * (startSize + valueSize)
        else { throw GeoError("\(name): inconsistent header") }
        self.bytes = bytes
        let (n, v4) = (count, family == 4)
        var index = [Int32](repeating: Int32(n), count: 65_537)
        bytes.withUnsafeBytes { raw in
            var p = 0
            for i in 0..<n {
                let top: Int
                if v4 {
                    top = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 20 + i * 4, as: UInt32.self)) >> 16)
                } else {
                    top = Int(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 20 + i * 16, as: UInt64.self)) >> 48)
                }
                while p <= top { index[p] = Int32(i); p += 1 }
            }
        }
        first = index
    }

    /// The value of the range holding `address` (0: no data).
    @inline(__always)
    func value(_ address: IPAddress) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            // Last start <= address, searched among the ranges of the address's top 16 bits and the one before them.
            let top = family == 4 ? Int(UInt32(truncatingIfNeeded: address.low) >> 16) : Int(address.high >> 48)
            var lo = max(Int(first[top]) - 1, 0)
            var hi = Int(first[top + 1]) - 1
            if hi < lo { hi = lo }
            if family == 4 {
                let key = UInt32(truncatingIfNeeded: address.low)
                let starts = base + startsOffset
                while lo < hi {
                    let mid = (lo + hi + 1) >> 1
                    if UInt32(littleEndian: starts.loadUnaligned(fromByteOffset: mid * 4, as: UInt32.self)) <= key { lo = mid } else { hi = mid - 1 }
                }
            } else {
                let starts = base + startsOffset
                while lo < hi {
                    let mid = (lo + hi + 1) >> 1
                    let h = UInt64(littleEndian: starts.loadUnaligned(fromByteOffset: mid * 16, as: UInt64.self))
                    let l = UInt64(littleEndian: starts.loadUnaligned(fromByteOffset: mid * 16 + 8, as: UInt64.self))
                    if h < address.high || (h == address.high && l <= address.low) { lo = mid } else { hi = mid - 1 }
                }
            }
            let values = base + startsOffset + count * (family == 4 ? 4 : 16)
            return valueSize == 2
                ? UInt32(UInt16(littleEndian: values.loadUnaligned(fromByteOffset: lo * 2, as: UInt16.self)))
                : UInt32(littleEndian: values.loadUnaligned(fromByteOffset: lo * 4, as: UInt32.self))
        }
    }
}

public struct GeoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// The embedded country and ASN data. Immutable once loaded: one instance can serve every pipeline of a process.
public final class GeoDatabase: Sendable {
    let countryV4: RangeTable, countryV6: RangeTable
    let registeredV4: RangeTable, registeredV6: RangeTable
    let asnV4: RangeTable, asnV6: RangeTable
    let names: [UInt8]
    let nameCount: Int
    public let homeCountries: Set<String>

    /// The folder holding the embedded tables (shipped as a SwiftPM resource next to the executable).
    public static var defaultDirectory: String? { Bundle.module.url(forResource: "data", withExtension: nil)?.path }

    /// Loads the tables from `directory` (the embedded ones by default).
    public init(directory: String? = nil, home: Set<String> = ["FR"]) throws(GeoError) {
        guard let dir = directory ?? GeoDatabase.defaultDirectory else { throw GeoError("embedded geolocation data not found") }
        func load(_ name: String) throws(GeoError) -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: dir + "/" + name) else { throw GeoError("\(dir)/\(name): cannot read") }
            return [UInt8](data)
        }
        countryV4 = try RangeTable(try load("country-v4.bin"), name: "country-v4.bin")
        countryV6 = try RangeTable(try load("country-v6.bin"), name: "country-v6.bin")
        registeredV4 = try RangeTable(try load("registered-v4.bin"), name: "registered-v4.bin")
        registeredV6 = try RangeTable(try load("registered-v6.bin"), name: "registered-v6.bin")
        asnV4 = try RangeTable(try load("asn-v4.bin"), name: "asn-v4.bin")
        asnV6 = try RangeTable(try load("asn-v6.bin"), name: "asn-v6.bin")
        names = try load("asn-names.bin")
        guard names.count >= 12, names[0..<4] == [0x53, 0x41, 0x53, 0x4E] else { throw GeoError("asn-names.bin: bad header") }
        nameCount = Int(names[8]) | Int(names[9]) << 8 | Int(names[10]) << 16 | Int(names[11]) << 24
        homeCountries = Set(home.map { $0.uppercased() })
    }

    /// A copy with other home countries (the tables are shared).
    public func with(home: Set<String>) -> GeoDatabase { GeoDatabase(self, home: home) }

    private init(_ other: GeoDatabase, home: Set<String>) {
        countryV4 = other.countryV4; countryV6 = other.countryV6
        registeredV4 = other.registeredV4; registeredV6 = other.registeredV6
        asnV4 = other.asnV4; asnV6 = other.asnV6
        names = other.names; nameCount = other.nameCount
        homeCountries = Set(home.map { $0.uppercased() })
    }

    static func code(_ v: UInt32) -> String? {
        guard v != 0 else { return nil }
        return String(decoding: [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)], as: UTF8.self)
    }

    /// Region codes of the data sources that name no country.
    static let regions: Set<String> = ["EU", "AP", "A1", "A2", "A3", "O1", "ZZ"]

    /// Located and registered country, AS number and scope; the AS name too when `withName` (a string to build).
    public func lookup(_ address: IPAddress, withName: Bool = true) -> GeoInfo {
        let country = GeoDatabase.code((address.isIPv6 ? countryV6 : countryV4).value(address))
        let registered = GeoDatabase.code((address.isIPv6 ? registeredV6 : registeredV4).value(address))
        let asn = (address.isIPv6 ? asnV6 : asnV4).value(address)
        let scope: GeoInfo.Scope
        if AddressScope.isLocal(address) {
            scope = .local
        } else if let c = country ?? registered, !GeoDatabase.regions.contains(c) {
            scope = homeCountries.contains(c) ? .home : .foreign
        } else {
            scope = .unknown
        }
        return GeoInfo(
            country: country, registeredCountry: registered, asn: asn == 0 ? nil : asn,
            asOrganization: asn == 0 || !withName ? nil : asName(asn), scope: scope)
    }

    /// The name of an autonomous system (binary search in the name index).
    public func asName(_ asn: UInt32) -> String? {
        names.withUnsafeBytes { raw -> String? in
            var lo = 0
            var hi = nameCount - 1
            while lo <= hi {
                let mid = (lo + hi) >> 1
                let a = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12 + mid * 8, as: UInt32.self))
                if a == asn {
                    let offset = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12 + mid * 8 + 4, as: UInt32.self)))
                    let start = 12 + nameCount * 8 + offset
                    var end = start
                    while end < raw.count && raw[end] != 0 { end += 1 }
                    return end > start ? String(decoding: raw[start..<end], as: UTF8.self) : nil
                }
                if a < asn { lo = mid + 1 } else { hi = mid - 1 }
            }
            return nil
        }
    }
}

/// Special-purpose address ranges (RFC 6890 and successors) that are never an endpoint abroad.
public enum AddressScope {
    static let v4: [(UInt32, Int)] = [
        (0x0000_0000, 8), (0x0A00_0000, 8), (0x6440_0000, 10), (0x7F00_0000, 8), (0xA9FE_0000, 16), (0xAC10_0000, 12),
        (0xC000_0000, 24), (0xC000_0200, 24), (0xC0A8_0000, 16), (0xC612_0000, 15), (0xC633_6400, 24),
        (0xCB00_7100, 24), (0xE000_0000, 4), (0xF000_0000, 4),
    ]

    public static func isLocal(_ a: IPAddress) -> Bool {
        if !a.isIPv6 {
            let v = UInt32(truncatingIfNeeded: a.low)
            return v4.contains { v >> UInt32(32 - $0.1) == $0.0 >> UInt32(32 - $0.1) }
        }
        let h = a.high
        if h == 0 {
            // ::, ::1, and IPv4-mapped (::ffff:0:0/96): judged as the IPv4 address.
            if a.low == 0 || a.low == 1 { return true }
            if a.low >> 32 == 0xFFFF { return isLocal(IPAddress(ipv4: UInt32(truncatingIfNeeded: a.low))) }
        }
        return h >> 57 == 0x7E  // fc00::/7 unique local
            || h >> 54 == 0x3FA  // fe80::/10 link-local
            || h >> 56 == 0xFF  // ff00::/8 multicast
            || h >> 32 == 0x2001_0DB8  // 2001:db8::/32 documentation
            || h >> 48 == 0x0064 && h >> 32 == 0x0064_FF9B && (h & 0xFFFF_0000) == 0x0001_0000  // 64:ff9b:1::/48 local NAT64
    }
}
