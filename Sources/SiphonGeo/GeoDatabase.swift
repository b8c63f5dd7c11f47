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
    let bytes: MappedFile
    let startsOffset = 20
    /// first[p]: the first range whose start's top 16 bits are >= p (65,537 entries): narrows each search to the
    /// ranges of one /16 (IPv4) or one 16-bit top prefix (IPv6), which are few and close together in memory.
    let first: [Int32]

    init(_ bytes: MappedFile, name: String) throws(GeoError) {
        guard bytes.count >= 20, bytes.starts(with: [0x53, 0x47, 0x45, 0x4F]) else { throw GeoError("\(name): not a Siphon geo table") }
        func u32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        family = u32(8)
        valueSize = u32(12)
        count = u32(16)
        let startSize = family == 4 ? 4 : 16
        guard (family == 4 || family == 6), valueSize == 8, bytes.count == 20 + count * (startSize + valueSize)
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

    /// The value of the range holding `address`: located country | registered country << 16 | ASN << 32.
    @inline(__always)
    func value(_ address: IPAddress) -> UInt64 {
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
            return UInt64(littleEndian: values.loadUnaligned(fromByteOffset: lo * 8, as: UInt64.self))
        }
    }
}

public struct GeoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// The embedded country and ASN data. Immutable once loaded: one instance can serve every pipeline of a process.
public final class GeoDatabase: Sendable {
    /// One table per family: located country, registered country and ASN per range (one search per lookup).
    let v4: RangeTable, v6: RangeTable
    let names: MappedFile
    let nameCount: Int
    public let homeCountries: Set<String>
    /// MaxMind databases consulted before the embedded tables, field by field, in the order given.
    public let databases: [MMDBReader]
    /// Per two-letter code index (26 x 26): 1 home country, 2 region code (names no country).
    let codeKind: [UInt8]
    /// Networks the lab declared (`--geo-override`), most specific first: they take precedence over every source,
    /// and an address in one is never local.
    public let overrides: [GeoOverride]

    /// The folder holding the embedded tables (shipped as a SwiftPM resource next to the executable).
    public static var defaultDirectory: String? {
        ResourceFolder.path(package: "Siphon", target: "SiphonGeo").map { $0 + "/data" }
            ?? Bundle.module.url(forResource: "data", withExtension: nil)?.path
    }

    /// Loads the tables from `directory` (the embedded ones by default).
    public init(directory: String? = nil, home: Set<String> = ["FR"], databases: [MMDBReader] = []) throws(GeoError) {
        self.databases = databases
        guard let dir = directory ?? GeoDatabase.defaultDirectory else { throw GeoError("embedded geolocation data not found") }
        func load(_ name: String) throws(GeoError) -> MappedFile { try MappedFile(path: dir + "/" + name) }
        v4 = try RangeTable(try load("geo-v4.bin"), name: "geo-v4.bin")
        v6 = try RangeTable(try load("geo-v6.bin"), name: "geo-v6.bin")
        names = try load("asn-names.bin")
        guard names.count >= 12, names.starts(with: [0x53, 0x41, 0x53, 0x4E]) else { throw GeoError("asn-names.bin: bad header") }
        nameCount = Int(names[8]) | Int(names[9]) << 8 | Int(names[10]) << 16 | Int(names[11]) << 24
        guard 12 + nameCount * 8 <= names.count else { throw GeoError("asn-names.bin: index runs past the file") }
        homeCountries = Set(home.map { $0.uppercased() })
        codeKind = GeoDatabase.kinds(homeCountries)
        overrides = []
    }

    static func index(_ code: String) -> Int? {
        let u = Array(code.utf8)
        guard u.count == 2, (65...90).contains(u[0]), (65...90).contains(u[1]) else { return nil }
        return Int(u[0] - 65) * 26 + Int(u[1] - 65)
    }

    static func kinds(_ home: Set<String>) -> [UInt8] {
        var k = [UInt8](repeating: 0, count: 676)
        for r in regions { if let i = index(r) { k[i] = 2 } }
        for h in home { if let i = index(h) { k[i] = 1 } }
        return k
    }

    /// A copy with other home countries (the tables are shared).
    public func with(home: Set<String>) -> GeoDatabase { GeoDatabase(self, home: home, overrides: overrides) }

    /// A copy that answers for `overrides` first (the tables are shared).
    public func with(overrides: [GeoOverride]) -> GeoDatabase { GeoDatabase(self, home: homeCountries, overrides: overrides) }

    private init(_ other: GeoDatabase, home: Set<String>, overrides: [GeoOverride]) {
        v4 = other.v4; v6 = other.v6
        names = other.names; nameCount = other.nameCount
        databases = other.databases
        homeCountries = Set(home.map { $0.uppercased() })
        codeKind = GeoDatabase.kinds(homeCountries)
        // Stable: among equally specific networks the first given wins.
        self.overrides = overrides.enumerated().sorted { a, b in
            a.element.network.bits != b.element.network.bits ? a.element.network.bits > b.element.network.bits : a.offset < b.offset
        }.map(\.element)
    }

    /// The declared network holding `address`, if any.
    @inline(__always)
    public func override(for address: IPAddress) -> GeoOverride? {
        if overrides.isEmpty { return nil }
        return overrides.first { $0.network.contains(address) }
    }

    /// Whether `address` is never an endpoint abroad: special-purpose ranges (`AddressScope`), unless the lab
    /// declared a country for it.
    @inline(__always)
    public func isLocal(_ address: IPAddress) -> Bool {
        AddressScope.isLocal(address) && override(for: address) == nil
    }

    static func pack(_ code: String?) -> UInt64 {
        guard let u = code.map({ Array($0.utf8) }), u.count == 2 else { return 0 }
        return UInt64(u[0]) | UInt64(u[1]) << 8
    }

    /// The 676 two-letter codes, built once: a lookup returns one of these (no string building per lookup).
    static let codes: [String] = (0..<676).map { (i: Int) -> String in
        let first = UInt8(65 + i / 26)
        let second = UInt8(65 + i % 26)
        return String(decoding: [first, second], as: UTF8.self)
    }

    @inline(__always)
    static func code(_ v: UInt64) -> String? {
        guard v & 0xFFFF != 0 else { return nil }
        let a = Int(v & 0xFF) - 65, b = Int(v >> 8 & 0xFF) - 65
        if a >= 0 && a < 26 && b >= 0 && b < 26 { return codes[a * 26 + b] }
        return String(decoding: [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)], as: UTF8.self)
    }

    /// Region codes of the data sources that name no country.
    static let regions: Set<String> = ["EU", "AP", "A1", "A2", "A3", "O1", "ZZ"]

    /// Located and registered country, AS number and scope; the AS name too when `withName` (a string to build).
    public func lookup(_ address: IPAddress, withName: Bool = true) -> GeoInfo {
        if let o = override(for: address) {
            let kind = GeoDatabase.index(o.country).map { codeKind[$0] } ?? 0
            return GeoInfo(
                country: o.country, registeredCountry: o.registeredCountry ?? o.country, asn: o.asn,
                asOrganization: withName ? o.asOrganization ?? o.asn.flatMap { asName($0) } : nil,
                scope: kind == 1 ? .home : kind == 2 ? .unknown : .foreign)
        }
        var v = (address.isIPv6 ? v6 : v4).value(address)
        var country = GeoDatabase.code(v & 0xFFFF)
        var registered = GeoDatabase.code(v >> 16 & 0xFFFF)
        var asn = UInt32(truncatingIfNeeded: v >> 32)
        var organization: String?
        if !databases.isEmpty {
            // Given databases first, field by field; a database that cannot answer (corrupt record) is skipped.
            var c: String?, r: String?, a: UInt32?, o: String?
            for db in databases {
                guard let g = try? db.geo(address) else { continue }
                c = c ?? g.country; r = r ?? g.registered; a = a ?? g.asn; o = o ?? g.org
            }
            if let c { country = c }
            if let r { registered = r }
            if let a { asn = a; organization = o }
            v = GeoDatabase.pack(country) | GeoDatabase.pack(registered) << 16
        }
        let scope: GeoInfo.Scope
        if AddressScope.isLocal(address) {
            scope = .local
        } else {
            // The located country decides; the registered one stands in when location is missing.
            let raw = v & 0xFFFF != 0 ? v & 0xFFFF : v >> 16 & 0xFFFF
            let a = Int(raw & 0xFF) - 65, b = Int(raw >> 8 & 0xFF) - 65
            if raw == 0 {
                scope = .unknown
            } else if a >= 0 && a < 26 && b >= 0 && b < 26 {
                let kind = codeKind[a * 26 + b]
                scope = kind == 1 ? .home : kind == 2 ? .unknown : .foreign
            } else {
                scope = .unknown
            }
        }
        return GeoInfo(
            country: country, registeredCountry: registered, asn: asn == 0 ? nil : asn,
            asOrganization: asn == 0 || !withName ? nil : organization ?? asName(asn), scope: scope)
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
                    guard start < raw.count else { return nil }
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
            // Decided by the first octet for most addresses; the table only for the octets that hold special ranges.
            switch v >> 24 {
            case 0, 10, 127, 224...255: return true
            case 100, 169, 172, 192, 198, 203:
                for (prefix, length) in v4 where v >> UInt32(32 - length) == prefix >> UInt32(32 - length) { return true }
                return false
            default: return false
            }
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
