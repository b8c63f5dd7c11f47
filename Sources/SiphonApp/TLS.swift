import Crypto
internal import SiphonCore

/// What a TLS ClientHello says, with its JA3 and JA4 fingerprints.
public struct TLSClientHello: Sendable, Hashable {
    public var legacyVersion: UInt16
    public var ciphers: [UInt16]
    /// Extension types in order, GREASE included.
    public var extensions: [UInt16]
    public var serverName: String?
    public var alpn: [String]
    public var supportedVersions: [UInt16]
    public var groups: [UInt16]
    public var pointFormats: [UInt8]
    public var signatureAlgorithms: [UInt16]

    /// GREASE values (RFC 8701): 0x0a0a, 0x1a1a ... 0xfafa.
    public static func isGREASE(_ v: UInt16) -> Bool { v & 0x0F0F == 0x0A0A && v >> 8 == v & 0xFF }

    /// The highest non-GREASE version offered (supported_versions, else the legacy version).
    public var version: UInt16 { supportedVersions.filter { !Self.isGREASE($0) }.max() ?? legacyVersion }

    /// JA3 string: version, ciphers, extensions, groups, point formats (decimal, GREASE removed). Computed once,
    /// when the hello is parsed (`fingerprint()`).
    public var ja3String = ""
    public var ja3 = ""
    public var ja4 = ""

    /// Fills `ja3String`, `ja3` and `ja4`, from `cache` when a hello with the same fingerprint inputs was seen.
    public mutating func fingerprint(cache: TLSFingerprintCache?) {
        guard let cache else { return fingerprint() }
        let key = TLSFingerprintCache.Key(self, seed: cache.seed)
        if let known = cache.entries[key] {
            (ja3String, ja3, ja4) = known
            cache.hits += 1
            return
        }
        fingerprint()
        cache.store(key, (ja3String, ja3, ja4))
    }

    /// Fills `ja3String`, `ja3` and `ja4`.
    mutating func fingerprint() {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        appendDecimal(UInt64(legacyVersion), to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimals(ciphers, skippingGREASE: true, to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimals(extensions, skippingGREASE: true, to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimals(groups, skippingGREASE: true, to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimals(pointFormats, skippingGREASE: false, to: &out)
        ja3String = String(decoding: out, as: UTF8.self)
        ja3 = Insecure.MD5.hash(data: out).hexString
        ja4 = ja4(quic: false)
    }

    /// JA4 (FoxIO): `t13d1516h2_<ciphers>_<extensions+signature algorithms>`; `quic` gives the `q` prefix.
    /// Built as bytes into one buffer (it runs for every ClientHello).
    public func ja4(quic: Bool) -> String {
        let v: (UInt8, UInt8)
        switch version {
        case 0x0304: v = (0x31, 0x33)  // "13"
        case 0x0303: v = (0x31, 0x32)
        case 0x0302: v = (0x31, 0x31)
        case 0x0301: v = (0x31, 0x30)
        case 0x0300: v = (0x73, 0x33)  // "s3"
        case 0x0002, 0x0200: v = (0x73, 0x32)
        case 0xFEFF: v = (0x64, 0x31)  // "d1"
        case 0xFEFD: v = (0x64, 0x32)
        case 0xFEFC: v = (0x64, 0x33)
        default: v = (0x30, 0x30)
        }
        let realCiphers = ciphers.filter { !Self.isGREASE($0) }
        let realExtensions = extensions.filter { !Self.isGREASE($0) }
        var out: [UInt8] = []
        out.reserveCapacity(36)
        out.append(quic ? UInt8(ascii: "q") : UInt8(ascii: "t"))
        out.append(v.0)
        out.append(v.1)
        out.append(serverName != nil ? UInt8(ascii: "d") : UInt8(ascii: "i"))
        for n in [min(99, realCiphers.count), min(99, realExtensions.count)] {
            out.append(UInt8(0x30 + n / 10))
            out.append(UInt8(0x30 + n % 10))
        }
        if let first = alpn.first, let f = first.utf8.first, let l = first.utf8.last {
            func alnum(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }
            if alnum(f) && alnum(l) {
                out.append(f)
                out.append(l)
            } else {
                // The first and last hex digits of the ALPN value.
                out.append(HexDigits.digit(f >> 4))
                out.append(HexDigits.digit(l & 15))
            }
        } else {
            out.append(0x30)
            out.append(0x30)
        }
        // The hashed lists: 4 lower-case hex digits per value, comma-separated, hashed with SHA-256, 12 digits kept.
        var input: [UInt8] = []
        input.reserveCapacity(5 * max(realCiphers.count, realExtensions.count + signatureAlgorithms.count) + 1)
        func hexList(_ values: [UInt16]) {
            for (i, v) in values.enumerated() {
                if i > 0 { input.append(UInt8(ascii: ",")) }
                input.append(HexDigits.digit(UInt8(v >> 12)))
                input.append(HexDigits.digit(UInt8(v >> 8 & 15)))
                input.append(HexDigits.digit(UInt8(v >> 4 & 15)))
                input.append(HexDigits.digit(UInt8(v & 15)))
            }
        }
        func hash12() {
            out.append(UInt8(ascii: "_"))
            if input.isEmpty {
                out.append(contentsOf: repeatElement(0x30, count: 12))
            } else {
                // Through the digest's bytes: iterating a Digest as a Sequence costs thousands of instructions.
                SHA256.hash(data: input).withUnsafeBytes { HexDigits.append(UnsafeRawBufferPointer(rebasing: $0[0..<6]), to: &out) }
            }
        }
        hexList(realCiphers.sorted())
        hash12()
        input.removeAll(keepingCapacity: true)
        hexList(realExtensions.filter { $0 != 0x0000 && $0 != 0x0010 }.sorted())
        if !signatureAlgorithms.isEmpty {
            input.append(UInt8(ascii: "_"))
            hexList(signatureAlgorithms)
        }
        if realExtensions.isEmpty { input.removeAll() }
        hash12()
        return String(decoding: out, as: UTF8.self)
    }
}

/// The JA3 string, JA3 and JA4 of ClientHellos already seen, by everything they are computed from. A device's
/// TLS stack sends the same lists in most of its connections (552 ClientHellos of the benign and malware captures
/// in `../shared/captures` have 61 distinct JA4 per capture), and computing them (two SHA-256 and an MD5, sorted
/// copies, hex text) cost ~28,000 instructions a hello. One per pipeline (no global state); bounded.
public final class TLSFingerprintCache {
    /// The hello reduced to what the fingerprints read: whether it names a server (not which), its first ALPN
    /// value, its lists as they are; no fingerprints. Hashed once, by a multiply-xor pass over those fields
    /// (SipHash over the whole hello cost 3,000 instructions a lookup) from the cache's random seed, so that a
    /// capture cannot craft hellos whose digests collide; equality compares them all.
    struct Key: Hashable {
        let hello: TLSClientHello
        let digest: UInt64

        init(_ h: TLSClientHello, seed: UInt64) {
            var k = h
            if k.serverName != nil { k.serverName = "" }
            if k.alpn.count > 1 { k.alpn = [k.alpn[0]] }
            (k.ja3String, k.ja3, k.ja4) = ("", "", "")
            hello = k
            let mix = FastHash.mix
            var d = mix(seed, UInt64(k.legacyVersion) | (k.serverName == nil ? 0 : 1 << 16))
            for list in [k.ciphers, k.extensions, k.supportedVersions, k.groups, k.signatureAlgorithms] {
                d = mix(d, UInt64(list.count))
                for v in list { d = mix(d, UInt64(v)) }
            }
            d = mix(d, UInt64(k.pointFormats.count))
            for v in k.pointFormats { d = mix(d, UInt64(v)) }
            for a in k.alpn { for b in a.utf8 { d = mix(d, UInt64(b) | 1 << 8) } }
            digest = d
        }

        func hash(into hasher: inout Hasher) { hasher.combine(digest) }
        static func == (a: Key, b: Key) -> Bool { a.digest == b.digest && a.hello == b.hello }
    }

    /// A ServerHello's JA3S inputs.
    struct ServerKey: Hashable {
        var version: UInt16
        var cipher: UInt16
        var extensions: [UInt16]
    }

    let seed = FastHash.seed()
    var entries: [Key: (String, String, String)] = [:]
    /// JA3S string and hash by ServerHello (servers answer alike: one cipher, a few extensions).
    var servers: [ServerKey: (String, String)] = [:]
    /// Entries kept at most (the table is emptied when full: hellos that vary every time do not grow it).
    public let limit: Int
    /// Lookups answered from the cache (ClientHellos and ServerHellos).
    public internal(set) var hits = 0

    public init(limit: Int = 4096) { self.limit = limit }

    func store(_ key: Key, _ value: (String, String, String)) { Self.store(key, value, in: &entries, limit: limit) }
    func store(_ key: ServerKey, _ value: (String, String)) { Self.store(key, value, in: &servers, limit: limit) }

    /// Emptied when full: hellos that vary every time do not grow the table.
    private static func store<K: Hashable, V>(_ key: K, _ value: V, in table: inout [K: V], limit: Int) {
        if table.count >= limit { table.removeAll(keepingCapacity: true) }
        table[key] = value
    }
}

/// What a TLS ServerHello says, with its JA3S fingerprint.
public struct TLSServerHello: Sendable, Equatable {
    public var legacyVersion: UInt16
    public var cipher: UInt16
    public var extensions: [UInt16]
    public var selectedVersion: UInt16?
    public var alpn: String?

    public var version: UInt16 { selectedVersion ?? legacyVersion }
    /// JA3S string and hash, computed once when the hello is parsed.
    public var ja3sString = ""
    public var ja3s = ""

    /// Fills `ja3sString` and `ja3s`, from `cache` when a hello with the same inputs was seen.
    mutating func fingerprint(cache: TLSFingerprintCache?) {
        guard let cache else { return fingerprint() }
        let key = TLSFingerprintCache.ServerKey(version: legacyVersion, cipher: cipher, extensions: extensions)
        if let known = cache.servers[key] {
            (ja3sString, ja3s) = known
            cache.hits += 1
            return
        }
        fingerprint()
        cache.store(key, (ja3sString, ja3s))
    }

    /// Fills `ja3sString` and `ja3s`: version, cipher, extension types (decimal, GREASE kept, as Salesforce's
    /// JA3S keeps them), built as bytes.
    mutating func fingerprint() {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        appendDecimal(UInt64(legacyVersion), to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimal(UInt64(cipher), to: &out)
        out.append(UInt8(ascii: ","))
        appendDecimals(extensions, skippingGREASE: false, to: &out)
        ja3sString = String(decoding: out, as: UTF8.self)
        ja3s = Insecure.MD5.hash(data: out).hexString
    }
}

public struct TLSParseError: Error, Sendable, Equatable {
    public var reason: String
}

/// Parses TLS handshake message bodies. Every read is bounds-checked; malformed input throws.
public enum TLSHandshakeParser {
    /// Bounds-checked big-endian reads over borrowed bytes (no reference counting per read).
    struct Reader {
        let b: UnsafeRawBufferPointer
        var p: Int
        let end: Int

        mutating func u8() throws(TLSParseError) -> UInt8 {
            guard p + 1 <= end else { throw TLSParseError(reason: "truncated at \(p)") }
            defer { p += 1 }
            return b[p]
        }
        mutating func u16() throws(TLSParseError) -> UInt16 {
            guard p + 2 <= end else { throw TLSParseError(reason: "truncated at \(p)") }
            defer { p += 2 }
            return UInt16(b[p]) << 8 | UInt16(b[p + 1])
        }
        mutating func bytes(_ n: Int) throws(TLSParseError) -> UnsafeRawBufferPointer {
            guard n >= 0, p + n <= end else { throw TLSParseError(reason: "truncated at \(p) (needs \(n))") }
            defer { p += n }
            return UnsafeRawBufferPointer(rebasing: b[p..<(p + n)])
        }
        /// A sub-reader over the next `n` bytes.
        mutating func sub(_ n: Int) throws(TLSParseError) -> Reader {
            guard n >= 0, p + n <= end else { throw TLSParseError(reason: "vector of \(n) at \(p) runs past its parent") }
            defer { p += n }
            return Reader(b: b, p: p, end: p + n)
        }
        var remaining: Int { end - p }
    }

    /// A ClientHello body (after the 4-byte handshake header).
    public static func clientHello(_ body: [UInt8], cache: TLSFingerprintCache? = nil) throws(TLSParseError) -> TLSClientHello {
        try body.withUnsafeBytes { raw in Result { () throws(TLSParseError) in try clientHello(raw, cache: cache) } }.get()
    }

    public static func clientHello(_ body: UnsafeRawBufferPointer, cache: TLSFingerprintCache? = nil) throws(TLSParseError) -> TLSClientHello {
        var r = Reader(b: body, p: 0, end: body.count)
        var hello = TLSClientHello(
            legacyVersion: try r.u16(), ciphers: [], extensions: [], serverName: nil, alpn: [], supportedVersions: [],
            groups: [], pointFormats: [], signatureAlgorithms: [])
        _ = try r.bytes(32)
        _ = try r.bytes(Int(try r.u8()))  // session id
        var ciphers = try r.sub(Int(try r.u16()))
        hello.ciphers.reserveCapacity(ciphers.remaining / 2)
        while ciphers.remaining >= 2 { hello.ciphers.append(try ciphers.u16()) }
        _ = try r.bytes(Int(try r.u8()))  // compression methods
        guard r.remaining >= 2 else {  // no extensions (SSLv3-style hello)
            hello.fingerprint(cache: cache)
            return hello
        }
        hello.extensions = try extensionTypes(&r) { type, e throws(TLSParseError) in
            switch type {
            case 0:  // server_name
                var list = try e.sub(Int(try e.u16()))
                while list.remaining >= 3 {
                    let kind = try list.u8()
                    let name = try list.bytes(Int(try list.u16()))
                    if kind == 0 && hello.serverName == nil { hello.serverName = String(decoding: name, as: UTF8.self) }
                }
            case 16:  // ALPN
                var list = try e.sub(Int(try e.u16()))
                while list.remaining >= 1 { hello.alpn.append(String(decoding: try list.bytes(Int(try list.u8())), as: UTF8.self)) }
            case 43:  // supported_versions
                var list = try e.sub(Int(try e.u8()))
                hello.supportedVersions.reserveCapacity(list.remaining / 2)
                while list.remaining >= 2 { hello.supportedVersions.append(try list.u16()) }
            case 10:  // supported_groups
                var list = try e.sub(Int(try e.u16()))
                hello.groups.reserveCapacity(list.remaining / 2)
                while list.remaining >= 2 { hello.groups.append(try list.u16()) }
            case 11:  // ec_point_formats
                var list = try e.sub(Int(try e.u8()))
                while list.remaining >= 1 { hello.pointFormats.append(try list.u8()) }
            case 13:  // signature_algorithms
                var list = try e.sub(Int(try e.u16()))
                hello.signatureAlgorithms.reserveCapacity(list.remaining / 2)
                while list.remaining >= 2 { hello.signatureAlgorithms.append(try list.u16()) }
            default:
                break
            }
        }
        hello.fingerprint(cache: cache)
        return hello
    }

    /// Walks a hello's extension block: hands each extension's type and body to `body`, and returns the types in
    /// order (the list is sized before it is filled: growing it one element at a time cost allocations).
    static func extensionTypes(
        _ r: inout Reader, _ body: (UInt16, inout Reader) throws(TLSParseError) -> Void
    ) throws(TLSParseError) -> [UInt16] {
        var extensions = try r.sub(Int(try r.u16()))
        var types: [UInt16] = []
        types.reserveCapacity(min(extensions.remaining / 4, 64))
        while extensions.remaining >= 4 {
            let type = try extensions.u16()
            var e = try extensions.sub(Int(try extensions.u16()))
            types.append(type)
            try body(type, &e)
        }
        return types
    }

    /// A ServerHello body.
    public static func serverHello(_ body: [UInt8], cache: TLSFingerprintCache? = nil) throws(TLSParseError) -> TLSServerHello {
        try body.withUnsafeBytes { raw in Result { () throws(TLSParseError) in try serverHello(raw, cache: cache) } }.get()
    }

    public static func serverHello(_ body: UnsafeRawBufferPointer, cache: TLSFingerprintCache? = nil) throws(TLSParseError) -> TLSServerHello {
        var r = Reader(b: body, p: 0, end: body.count)
        let version = try r.u16()
        _ = try r.bytes(32)
        _ = try r.bytes(Int(try r.u8()))
        var hello = TLSServerHello(legacyVersion: version, cipher: try r.u16(), extensions: [], selectedVersion: nil, alpn: nil)
        _ = try r.u8()  // compression
        guard r.remaining >= 2 else {
            hello.fingerprint(cache: cache)
            return hello
        }
        hello.extensions = try extensionTypes(&r) { type, e throws(TLSParseError) in
            if type == 43, e.remaining >= 2 { hello.selectedVersion = try e.u16() }
            if type == 16, e.remaining >= 3 {
                var list = try e.sub(Int(try e.u16()))
                if list.remaining >= 1 { hello.alpn = String(decoding: try list.bytes(Int(try list.u8())), as: UTF8.self) }
            }
        }
        hello.fingerprint(cache: cache)
        return hello
    }
}

/// Follows one direction of a TLS connection: records, then handshake messages across records and segments, up to
/// the hellos. Stops at the first encrypted or malformed record; buffers at most one handshake message (64 KiB).
public struct TLSStreamParser: Sendable {
    public private(set) var clientHello: TLSClientHello?
    public private(set) var serverHello: TLSServerHello?
    /// The server's leaf certificate and chain length (TLS 1.2 and below, where certificates travel in clear).
    public private(set) var certificate: X509Summary?
    public private(set) var certificateChainLength = 0
    public private(set) var certificateError: String?
    /// The server finished its first flight (ServerHelloDone) or the cleartext part ended.
    public private(set) var serverFlightDone = false
    public private(set) var done = false
    public private(set) var error: String?
    private var records: [UInt8] = []
    private var handshake: [UInt8] = []
    static let maximum = 1 << 16
    /// What the parser holds: record bytes not yet complete and handshake bytes not yet a whole message.
    public var bufferedBytes: Int { records.count + handshake.count }

    public init() {}

    /// Feeds stream bytes; returns true when a new hello was parsed.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, cache: TLSFingerprintCache? = nil) -> Bool {
        guard !done else { return false }
        records.append(contentsOf: bytes)
        var found = false
        while records.count >= 5 {
            let type = records[0]
            let length = Int(records[3]) << 8 | Int(records[4])
            guard type >= 20 && type <= 24, records[1] == 3 || records[1] == 2, length <= 18_432 else {
                stop("not a TLS record (type \(type))")
                return found
            }
            guard records.count >= 5 + length else { break }
            if type == 22 {
                handshake.append(contentsOf: records[5..<(5 + length)])
                if handshake.count > Self.maximum { stop("handshake message over 64 KiB"); return found }
                found = parseHandshake(cache: cache) || found
                if error != nil { return found }  // stopped on a malformed message: buffers already dropped
            } else if type == 20 || type == 23 {
                done = true  // ChangeCipherSpec or application data: the cleartext handshake is over
                serverFlightDone = true
            }
            records.removeFirst(5 + length)
            if done { records = []; handshake = []; return found }
        }
        if records.count > Self.maximum { stop("record buffer over 64 KiB") }
        return found
    }

    private mutating func parseHandshake(cache: TLSFingerprintCache?) -> Bool {
        var found = false
        while handshake.count >= 4 {
            let length = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
            guard handshake.count >= 4 + length else { return found }
            let body = Array(handshake[4..<(4 + length)])
            do {
                switch handshake[0] {
                case 1 where clientHello == nil:
                    clientHello = try TLSHandshakeParser.clientHello(body, cache: cache)
                    found = true
                case 2 where serverHello == nil:
                    serverHello = try TLSHandshakeParser.serverHello(body, cache: cache)
                    found = true
                    // TLS 1.3: everything after the ServerHello is encrypted.
                    if serverHello?.selectedVersion == 0x0304 { done = true; serverFlightDone = true }
                case 11 where certificate == nil && certificateError == nil:
                    readCertificates(body)
                    found = true
                case 14:
                    serverFlightDone = true
                    found = true
                default:
                    break
                }
            } catch {
                stop(error.reason)
                return found
            }
            handshake.removeFirst(4 + length)
        }
        return found
    }

    /// A Certificate message: a 3-byte list length, then certificates with 3-byte lengths; the first is the leaf.
    private mutating func readCertificates(_ body: [UInt8]) {
        guard body.count >= 3 else { certificateError = "Certificate message too short"; return }
        var p = 3
        var count = 0
        while p + 3 <= body.count {
            let n = Int(body[p]) << 16 | Int(body[p + 1]) << 8 | Int(body[p + 2])
            p += 3
            guard p + n <= body.count else { certificateError = "certificate runs past its message"; return }
            if count == 0 {
                do {
                    certificate = try X509.summary(Array(body[p..<(p + n)]))
                } catch {
                    certificateError = error.reason
                }
            }
            count += 1
            p += n
        }
        certificateChainLength = count
    }

    /// The stream lost bytes: record boundaries cannot be trusted any more.
    public mutating func gap() { if !done { stop("gap in the stream") } }

    private mutating func stop(_ reason: String) {
        done = true
        serverFlightDone = true
        error = reason
        records = []
        handshake = []
    }
}

extension Digest {
    /// Through the digest's bytes (iterating a Digest as a Sequence is slow), with SiphonCore's encoder.
    var hexString: String { withUnsafeBytes { $0.hexString } }
}

func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
    if v < 10 {
        out.append(UInt8(48 + v))
        return
    }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                 UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &digits) { d in
        var n = 0, x = v
        while x > 0 { d[n] = UInt8(48 + x % 10); x /= 10; n += 1 }
        while n > 0 { n -= 1; out.append(d[n]) }
    }
}


/// `values` in decimal joined by '-' (a JA3 or JA3S list); JA3 leaves out GREASE values, JA3S keeps them.
func appendDecimals<T: BinaryInteger>(_ values: [T], skippingGREASE: Bool, to out: inout [UInt8]) {
    var first = true
    for x in values where !(skippingGREASE && TLSClientHello.isGREASE(UInt16(truncatingIfNeeded: x))) {
        if !first { out.append(UInt8(ascii: "-")) }
        first = false
        appendDecimal(UInt64(x), to: &out)
    }
}
