import Foundation
public import SiphonCore

/// A decoded MaxMind DB data-section value.
public indirect enum MMDBValue: Sendable, Equatable {
    case map([String: MMDBValue])
    case array([MMDBValue])
    case string(String)
    case bytes([UInt8])
    case double(Double)
    case float(Float)
    case unsigned(UInt64)
    /// uint128 values above 64 bits keep their high half here.
    case unsigned128(high: UInt64, low: UInt64)
    case signed(Int32)
    case bool(Bool)

    public subscript(_ key: String) -> MMDBValue? {
        if case .map(let m) = self { return m[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var unsigned: UInt64? { if case .unsigned(let v) = self { return v } else { return nil } }
}

public struct MMDBError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// A MaxMind DB reader (https://maxmind.github.io/MaxMind-DB/): binary search tree of 24, 28 or 32-bit records, then
/// a typed data section. Written defensively: every offset is checked, pointers may not point at pointers, nesting
/// is limited, the tree walk is bounded by the address length, and sizes are checked against the bytes left.
public final class MMDBReader: Sendable {
    public let path: String
    let bytes: [UInt8]
    public let nodeCount: Int
    public let recordSize: Int
    public let ipVersion: Int
    public let databaseType: String
    /// When the database was built (metadata `build_epoch`, seconds since 1970), if it says.
    public let buildEpoch: UInt64?
    let treeSize: Int
    let dataStart: Int
    /// The node where IPv4 addresses start in an IPv6 tree (after 96 zero bits).
    let ipv4Start: Int

    public convenience init(path: String) throws(MMDBError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw MMDBError("\(path): cannot read") }
        try self.init(bytes: [UInt8](data), name: path)
    }

    /// Reads a database held in memory; `name` stands for its path in errors.
    public init(bytes: [UInt8], name path: String) throws(MMDBError) {
        self.path = path
        self.bytes = bytes
        let marker: [UInt8] = [0xAB, 0xCD, 0xEF] + Array("MaxMind.com".utf8)
        // The metadata follows the last marker, within the last 128 KiB.
        var metadataStart: Int?
        var i = bytes.count - marker.count
        let limit = max(0, bytes.count - 131_072)
        while i >= limit {
            if bytes[i] == 0xAB && bytes[i..<(i + marker.count)].elementsEqual(marker) { metadataStart = i + marker.count; break }
            i -= 1
        }
        guard let start = metadataStart else { throw MMDBError("\(path): no MaxMind DB metadata marker") }
        var decoder = MMDBDecoder(bytes: bytes, base: start, end: bytes.count)
        let metadata = try decoder.decode(at: start, depth: 0).0
        guard let nodes = metadata["node_count"]?.unsigned, let record = metadata["record_size"]?.unsigned,
            let version = metadata["ip_version"]?.unsigned, let major = metadata["binary_format_major_version"]?.unsigned
        else { throw MMDBError("\(path): metadata lacks node_count, record_size, ip_version or the format version") }
        guard major == 2 else { throw MMDBError("\(path): format version \(major) (2 is read)") }
        guard record == 24 || record == 28 || record == 32 else { throw MMDBError("\(path): record size \(record)") }
        guard version == 4 || version == 6 else { throw MMDBError("\(path): ip_version \(version)") }
        nodeCount = Int(nodes)
        recordSize = Int(record)
        ipVersion = Int(version)
        databaseType = metadata["database_type"]?.string ?? "unknown"
        buildEpoch = metadata["build_epoch"]?.unsigned
        treeSize = recordSize * 2 / 8 * nodeCount
        guard nodeCount > 0, treeSize + 16 <= start - marker.count else {
            throw MMDBError("\(path): node count \(nodeCount) does not fit the file")
        }
        dataStart = treeSize + 16
        // Every record must lead to a node, to "no data", or into the data section: a file that breaks this is
        // refused now rather than at the lookup that meets the damage (a linear pass, milliseconds for big files).
        let dataSize = start - marker.count - dataStart
        for n in 0..<nodeCount {
            for bit in 0..<2 {
                let r = MMDBReader.record(bytes, n, bit, recordSize)
                if r <= nodeCount { continue }
                guard r >= nodeCount + 16, r - nodeCount - 16 < dataSize else {
                    throw MMDBError("\(path): node \(n) has record \(r) outside the tree and the data section")
                }
            }
        }
        // And every node must be reachable from the root: writers leave no orphans, so orphans mean a damaged tree
        // (libmaxminddb's corrupt-search-tree test file: nodes 1-99 all point back at node 0).
        var reached = [Bool](repeating: false, count: nodeCount)
        var stack = [0]
        reached[0] = true
        var reachedCount = 1
        while let n = stack.popLast() {
            for bit in 0..<2 {
                let r = MMDBReader.record(bytes, n, bit, recordSize)
                if r < nodeCount && !reached[r] {
                    reached[r] = true
                    reachedCount += 1
                    stack.append(r)
                }
            }
        }
        guard reachedCount == nodeCount else {
            throw MMDBError("\(path): \(nodeCount - reachedCount) of \(nodeCount) search-tree nodes are unreachable from the root")
        }
        var node = 0
        if ipVersion == 6 {
            for _ in 0..<96 where node < nodeCount { node = MMDBReader.record(bytes, node, 0, recordSize) }
        }
        ipv4Start = node
    }

    static func record(_ b: [UInt8], _ node: Int, _ bit: Int, _ size: Int) -> Int {
        let base = node * size * 2 / 8
        switch size {
        case 24:
            let o = base + bit * 3
            return Int(b[o]) << 16 | Int(b[o + 1]) << 8 | Int(b[o + 2])
        case 28:
            if bit == 0 { return Int(b[base + 3] >> 4) << 24 | Int(b[base]) << 16 | Int(b[base + 1]) << 8 | Int(b[base + 2]) }
            return Int(b[base + 3] & 0x0F) << 24 | Int(b[base + 4]) << 16 | Int(b[base + 5]) << 8 | Int(b[base + 6])
        default:
            let o = base + bit * 4
            return Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
        }
    }

    /// The record for `address`, nil when the database has none.
    public func lookup(_ address: IPAddress) throws(MMDBError) -> MMDBValue? {
        let bitCount: Int
        var node: Int
        if address.isIPv6 {
            guard ipVersion == 6 else { return nil }
            bitCount = 128
            node = 0
        } else {
            bitCount = 32
            node = ipVersion == 6 ? ipv4Start : 0
        }
        var i = 0
        while i < bitCount && node < nodeCount {
            let bit: UInt64
            if address.isIPv6 {
                bit = i < 64 ? address.high >> UInt64(63 - i) & 1 : address.low >> UInt64(127 - i) & 1
            } else {
                bit = address.low >> UInt64(31 - i) & 1
            }
            node = MMDBReader.record(bytes, node, Int(bit), recordSize)
            i += 1
        }
        if node == nodeCount { return nil }
        guard node > nodeCount else { throw MMDBError("\(path): search tree ends inside the tree for \(address)") }
        let offset = dataStart + (node - nodeCount - 16)
        guard offset >= dataStart, offset < bytes.count else { throw MMDBError("\(path): record points outside the data section") }
        var decoder = MMDBDecoder(bytes: bytes, base: dataStart, end: bytes.count)
        return try decoder.decode(at: offset, depth: 0).0
    }

    /// What this database says of an address, in GeoInfo terms (fields it lacks stay nil).
    public func geo(_ address: IPAddress) throws(MMDBError) -> (country: String?, registered: String?, asn: UInt32?, org: String?) {
        guard let v = try lookup(address) else { return (nil, nil, nil, nil) }
        return (
            v["country"]?["iso_code"]?.string, v["registered_country"]?["iso_code"]?.string,
            v["autonomous_system_number"]?.unsigned.map { UInt32(truncatingIfNeeded: $0) },
            v["autonomous_system_organization"]?.string ?? v["isp"]?.string
        )
    }
}

struct MMDBDecoder {
    let bytes: [UInt8]
    /// Where pointers count from (the data section, or the metadata start for metadata).
    let base: Int
    let end: Int
    static let maximumDepth = 64

    /// Decodes the value at `p`; returns it and the offset after it.
    mutating func decode(at p: Int, depth: Int, followPointers: Bool = true) throws(MMDBError) -> (MMDBValue, Int) {
        guard depth <= MMDBDecoder.maximumDepth else { throw MMDBError("data nested more than \(MMDBDecoder.maximumDepth) deep") }
        guard p < end else { throw MMDBError("data offset \(p) past the end") }
        let control = bytes[p]
        var q = p + 1
        var type = Int(control >> 5)
        if type == 1 {  // pointer
            guard followPointers else { throw MMDBError("pointer to a pointer at \(p)") }
            let ss = Int(control >> 3) & 3
            let vvv = Int(control & 7)
            var target: Int
            switch ss {
            case 0:
                guard q + 1 <= end else { throw MMDBError("truncated pointer at \(p)") }
                target = vvv << 8 | Int(bytes[q]); q += 1
            case 1:
                guard q + 2 <= end else { throw MMDBError("truncated pointer at \(p)") }
                target = (vvv << 16 | Int(bytes[q]) << 8 | Int(bytes[q + 1])) + 2048; q += 2
            case 2:
                guard q + 3 <= end else { throw MMDBError("truncated pointer at \(p)") }
                target = (vvv << 24 | Int(bytes[q]) << 16 | Int(bytes[q + 1]) << 8 | Int(bytes[q + 2])) + 526_336; q += 3
            default:
                guard q + 4 <= end else { throw MMDBError("truncated pointer at \(p)") }
                target = Int(bytes[q]) << 24 | Int(bytes[q + 1]) << 16 | Int(bytes[q + 2]) << 8 | Int(bytes[q + 3]); q += 4
            }
            guard base + target < end else { throw MMDBError("pointer at \(p) to \(target) outside the data") }
            let (value, _) = try decode(at: base + target, depth: depth + 1, followPointers: false)
            return (value, q)
        }
        if type == 0 {  // extended type
            guard q < end else { throw MMDBError("truncated extended type at \(p)") }
            type = 7 + Int(bytes[q]); q += 1
        }
        var size = Int(control & 0x1F)
        if type != 1 {
            switch size {
            case 29:
                guard q + 1 <= end else { throw MMDBError("truncated size at \(p)") }
                size = 29 + Int(bytes[q]); q += 1
            case 30:
                guard q + 2 <= end else { throw MMDBError("truncated size at \(p)") }
                size = 285 + (Int(bytes[q]) << 8 | Int(bytes[q + 1])); q += 2
            case 31:
                guard q + 3 <= end else { throw MMDBError("truncated size at \(p)") }
                size = 65_821 + (Int(bytes[q]) << 16 | Int(bytes[q + 1]) << 8 | Int(bytes[q + 2])); q += 3
            default: break
            }
        }
        func payload() throws(MMDBError) -> ArraySlice<UInt8> {
            guard q + size <= end else { throw MMDBError("value of \(size) bytes at \(p) runs past the end") }
            return bytes[q..<(q + size)]
        }
        func number(_ maxSize: Int) throws(MMDBError) -> UInt64 {
            guard size <= maxSize else { throw MMDBError("integer of \(size) bytes at \(p)") }
            return try payload().reduce(0) { $0 << 8 | UInt64($1) }
        }
        switch type {
        case 2: return (.string(String(decoding: try payload(), as: UTF8.self)), q + size)
        case 3:
            guard size == 8 else { throw MMDBError("double of \(size) bytes at \(p)") }
            return (.double(Double(bitPattern: try number(8))), q + size)
        case 4: return (.bytes(Array(try payload())), q + size)
        case 5: return (.unsigned(try number(2)), q + size)
        case 6: return (.unsigned(try number(4)), q + size)
        case 9: return (.unsigned(try number(8)), q + size)
        case 10:
            guard size <= 16 else { throw MMDBError("uint128 of \(size) bytes at \(p)") }
            let raw = Array(try payload())
            let low = raw.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let high = raw.dropLast(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return (high == 0 ? .unsigned(low) : .unsigned128(high: high, low: low), q + size)
        case 8:
            guard size <= 4 else { throw MMDBError("int32 of \(size) bytes at \(p)") }
            return (.signed(Int32(truncatingIfNeeded: try number(4))), q + size)
        case 15:
            guard size == 4 else { throw MMDBError("float of \(size) bytes at \(p)") }
            return (.float(Float(bitPattern: UInt32(try number(4)))), q + size)
        case 14:
            guard size <= 1 else { throw MMDBError("boolean of size \(size) at \(p)") }
            return (.bool(size == 1), q)
        case 7:
            // Each entry takes at least 2 bytes: a count beyond what is left is corrupt, not an allocation.
            guard size * 2 <= end - q else { throw MMDBError("map of \(size) entries at \(p) larger than the data") }
            var map: [String: MMDBValue] = [:]
            for _ in 0..<size {
                let (key, afterKey) = try decode(at: q, depth: depth + 1)
                guard case .string(let k) = key else { throw MMDBError("map key is not a string at \(q)") }
                let (value, afterValue) = try decode(at: afterKey, depth: depth + 1)
                map[k] = value
                q = afterValue
            }
            return (.map(map), q)
        case 11:
            guard size <= end - q else { throw MMDBError("array of \(size) entries at \(p) larger than the data") }
            var array: [MMDBValue] = []
            for _ in 0..<size {
                let (value, after) = try decode(at: q, depth: depth + 1)
                array.append(value)
                q = after
            }
            return (.array(array), q)
        default:
            throw MMDBError("unknown data type \(type) at \(p)")
        }
    }
}
