internal import Foundation
internal import Crypto
internal import Yams
internal import SiphonCore

/// Kinds of device identifiers the `identifier-leak` detector looks for.
public enum IdentifierKind: String, Sendable, CaseIterable {
    case imei, imsi, iccid, phone, mac, location, serial, other

    /// Kinds found by generic patterns (with validity checks); `serial` and `other` are only found when given.
    public var isGeneric: Bool { Self.generic.contains(self) }
    public static let generic: [IdentifierKind] = [.imei, .imsi, .iccid, .phone, .mac, .location]

    /// How identifying a kind is: a handset or SIM identifier is a hardware serial, tied to one person for years.
    var isStrong: Bool { self == .imei || self == .imsi || self == .iccid || self == .serial }
}

/// A device identifier the analyst knows (from `--identifiers FILE`): matched exactly and in its usual encodings.
public struct KnownIdentifier: Sendable, Equatable {
    public var kind: IdentifierKind
    public var value: String
    public init(kind: IdentifierKind, value: String) {
        self.kind = kind
        self.value = value
    }

    /// Reads an identifiers file: a YAML mapping from kind to a value or a list of values, e.g.
    /// `imei: ["356938035643809"]`. Unknown kinds and values shorter than 6 characters are errors.
    public static func load(path: String) throws(RulePackErrors) -> [KnownIdentifier] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RulePackErrors(issues: [RulePackIssue(file: path, line: 0, column: 0, message: "cannot read the file")])
        }
        let loader = RulePackLoader()
        loader.file = path
        var out: [KnownIdentifier] = []
        do {
            if let root = try Yams.compose(yaml: text, .basic) {
                let kinds = Set(IdentifierKind.allCases.filter { $0 != .location }.map(\.rawValue))
                for (key, value, _) in loader.mapping(root, allowed: kinds, what: "an identifiers file") {
                    for (v, node) in loader.strings(value) {
                        let trimmed = v.trimmingCharacters(in: .whitespaces)
                        if trimmed.count < 6 {
                            loader.fail(node, "'\(v)' is too short to be matched reliably (6 characters at least)")
                        } else {
                            out.append(KnownIdentifier(kind: IdentifierKind(rawValue: key)!, value: trimmed))
                        }
                    }
                }
            }
        } catch let e as YamlError {
            loader.issues.append(loader.yamlIssue(e))
        } catch {
            loader.issues.append(RulePackIssue(file: path, line: 0, column: 0, message: "\(error)"))
        }
        if !loader.issues.isEmpty { throw RulePackErrors(issues: loader.issues) }
        return out
    }
}

/// Parameters of the `identifier-leak` detector.
public struct IdentifierConfiguration: Sendable {
    /// Generic patterns to look for.
    public var kinds: Set<IdentifierKind> = Set(IdentifierKind.generic)
    /// Bytes scanned at the start of each flow the device sends in clear (raw TCP/UDP payload; HTTP messages are
    /// scanned as parsed: URI, headers and the body kept up to `--http-body-depth`).
    public var scanBytes = 65_536
    /// Bytes of context either side of a match in the alert's excerpt.
    public var excerptBytes = 24
    /// The device's identifiers given by the analyst.
    public var known: [KnownIdentifier] = []
    public init() {}
}

/// One identifier found in a payload.
public struct IdentifierMatch: Sendable, Equatable {
    public var kind: IdentifierKind
    /// The identifier itself (for an encoded or hashed known identifier: the known value).
    public var value: String
    /// How it appeared: plain, hex, base64, url, md5, sha1, sha256, or a national form for phone numbers.
    public var encoding: String
    /// Whether it is one of the analyst's identifiers (or the device's own MAC address).
    public var known: Bool
    /// Where in the scanned data: byte offset and length.
    public var offset: Int
    public var length: Int
    /// The bytes around the match, non-printable ones as `.`.
    public var excerpt: String
}

/// Finds device identifiers in payloads: generic patterns with validity checks (Luhn, reporting bodies, country
/// codes, coordinate ranges) in one pass over the bytes, and the known identifiers' encodings through a 4-byte
/// prefix filter (a 64 K-bit bitmap, then a table lookup) at each position.
public final class IdentifierScanner {
    public let configuration: IdentifierConfiguration
    struct Pattern {
        var bytes: [UInt8]
        var kind: IdentifierKind
        var value: String
        var encoding: String
        /// Plain values and hashes must stand alone; hex and base64 forms may sit inside a longer blob.
        var bounded: Bool
    }
    private var patterns: [UInt32: [Pattern]] = [:]
    private var filter = [UInt64](repeating: 0, count: 1024)
    /// Plain known values by kind, to mark generic matches as known.
    private var knownValues: [String: KnownIdentifier] = [:]
    public var patternCount: Int { patterns.values.reduce(0) { $0 + $1.count } }
    /// Every literal searched for (the known identifiers' forms and encodings).
    public var literals: [[UInt8]] { patterns.values.flatMap { $0.map(\.bytes) } }

    public init(configuration: IdentifierConfiguration) {
        self.configuration = configuration
        for k in configuration.known { add(k) }
    }

    /// Adds a known identifier (the device's MAC address is added this way once it is seen).
    public func add(_ k: KnownIdentifier) {
        let forms = Self.forms(of: k)
        for (i, form) in forms.enumerated() {
            if i == 0 || k.kind == .phone || k.kind == .mac { knownValues[form.value.lowercased()] = k }
            for (bytes, encoding) in Self.encodings(form.value, encoding: form.encoding) where bytes.count >= 4 {
                let key = Self.key(bytes, 0)
                var list = patterns[key, default: []]
                guard !list.contains(where: { $0.bytes == bytes }) else { continue }
                list.append(Pattern(
                    bytes: bytes, kind: k.kind, value: k.value, encoding: encoding,
                    bounded: !(encoding.hasPrefix("base64") || encoding == "hex")))
                patterns[key] = list
                let h = Self.hash(key)
                filter[h >> 6] |= 1 << UInt64(h & 63)
            }
        }
    }

    /// The written forms of an identifier: itself and, for phone numbers and MAC addresses, their other spellings.
    static func forms(of k: KnownIdentifier) -> [(value: String, encoding: String)] {
        var out = [(k.value, "plain")]
        switch k.kind {
        case .phone:
            let digits = k.value.filter(\.isNumber)
            if k.value.hasPrefix("+33"), digits.count == 11 {
                out += [("0" + digits.dropFirst(2), "national"), (digits, "e164-no-plus"), ("00" + digits, "e164-00")]
            } else if k.value.hasPrefix("+") {
                out += [(digits, "e164-no-plus"), ("00" + digits, "e164-00")]
            } else if digits.count == 10, digits.hasPrefix("0") {
                out += [("+33" + digits.dropFirst(), "e164"), ("33" + digits.dropFirst(), "e164-no-plus")]
            }
        case .mac:
            let hex = k.value.lowercased().filter(\.isHexDigit)
            if hex.count == 12 {
                let pairs = stride(from: 0, to: 12, by: 2).map { i in String(hex.dropFirst(i).prefix(2)) }
                out = [(pairs.joined(separator: ":"), "plain"), (pairs.joined(separator: "-"), "plain"), (hex, "plain")]
            }
        default: break
        }
        return out
    }

    /// A value's byte encodings: itself, hex, base64 (at each alignment within a longer blob), URL encoding and
    /// the MD5, SHA-1 and SHA-256 of it, hex in both cases.
    static func encodings(_ value: String, encoding: String) -> [([UInt8], String)] {
        let v = Array(value.utf8)
        var out: [([UInt8], String)] = [(v, encoding)]
        if value.lowercased() != value || value.uppercased() != value {
            out.append((Array(value.lowercased().utf8), encoding))
            out.append((Array(value.uppercased().utf8), encoding))
        }
        guard encoding == "plain" || encoding == "national" || encoding == "e164" else { return out }
        let hex = v.hexString
        out.append((Array(hex.utf8), "hex"))
        out.append((Array(hex.uppercased().utf8), "hex"))
        for k in 0..<3 {
            // Base64 characters determined by the value's bytes alone, when it starts k bytes into a 3-byte group.
            let encoded = Array(Data(Array(repeating: 0, count: k) + v).base64EncodedString().utf8)
            let first = (8 * k + 5) / 6, last = (8 * (k + v.count)) / 6
            if last - first >= 4 {
                let part = Array(encoded[first..<last])
                out.append((part, "base64"))
                let urlSafe = part.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 }
                if urlSafe != part { out.append((urlSafe, "base64url")) }
            }
        }
        let escaped = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
        if escaped != value { out.append((Array(escaped.utf8), "url")) }
        for (digest, name) in [(Array(Insecure.MD5.hash(data: v)), "md5"), (Array(Insecure.SHA1.hash(data: v)), "sha1"),
                               (Array(SHA256.hash(data: v)), "sha256")] {
            let h = digest.hexString
            out.append((Array(h.utf8), name))
            out.append((Array(h.uppercased().utf8), name))
        }
        return out
    }

    @inline(__always) static func key(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
        p.loadUnaligned(fromByteOffset: i, as: UInt32.self)
    }
    static func key(_ bytes: [UInt8], _ i: Int) -> UInt32 { bytes.withUnsafeBytes { key($0, i) } }
    @inline(__always) static func hash(_ k: UInt32) -> Int { Int((k &* 0x9E37_79B1) >> 16) }

    // MARK: Scanning

    /// Appends the identifiers found in `p` to `matches`.
    public func scan(_ p: UnsafeRawBufferPointer, into matches: inout [IdentifierMatch]) {
        let n = p.count
        if !patterns.isEmpty, n >= 4 {
            for i in 0...(n - 4) {
                let k = Self.key(p, i)
                let h = Self.hash(k)
                guard filter[h >> 6] & (1 << UInt64(h & 63)) != 0, let list = patterns[k] else { continue }
                for pat in list where i + pat.bytes.count <= n && Self.equal(p, i, pat.bytes) && (!pat.bounded || Self.bounded(p, i, pat.bytes.count)) {
                    matches.append(match(p, i, pat.bytes.count, pat.kind, pat.value, pat.encoding, known: true))
                }
            }
        }
        generic(p, into: &matches)
    }

    public func scan(_ bytes: [UInt8], into matches: inout [IdentifierMatch]) {
        bytes.withUnsafeBytes { scan($0, into: &matches) }
    }

    @inline(__always) static func equal(_ p: UnsafeRawBufferPointer, _ i: Int, _ b: [UInt8]) -> Bool {
        for j in 0..<b.count where p[i + j] != b[j] { return false }
        return true
    }

    /// A match stands alone when it is not part of a longer run of letters and digits.
    @inline(__always) static func bounded(_ p: UnsafeRawBufferPointer, _ i: Int, _ length: Int) -> Bool {
        (i == 0 || !isAlnum(p[i - 1])) && (i + length >= p.count || !isAlnum(p[i + length]))
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

    /// Whether some byte of `w` lies in 0x2D...0x3A ('-', '.', '/', the digits, ':'); bytes of 0x80 and above never
    /// do (the "has between" test of Anderson's bit hacks, for bounds below 128).
    @inline(__always) public static func mayStartPattern(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = w & (ones &* 127)
        let t = ((ones &* (127 + 0x3B)) &- low7) & ~w & (low7 &+ ones &* (127 - 0x2C))
        return t & (ones &* 128) != 0
    }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 0x61 < 6 }
    @inline(__always) static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- 0x61 < 26 }

    private func generic(_ p: UnsafeRawBufferPointer, into matches: inout [IdentifierMatch]) {
        let kinds = configuration.kinds
        guard !kinds.isEmpty else { return }
        // Kinds are looked up once, not per byte (a Set lookup hashes the kind's name).
        let wantMAC = kinds.contains(.mac), wantLocation = kinds.contains(.location)
        let n = p.count
        var i = 0
        var pendingLatitude: (value: Double, start: Int, end: Int, decimals: Int, text: String)?
        while i < n {
            // Eight bytes at a time: a word without a digit, '-', '.', '/' or ':' can start nothing in its first
            // six bytes (a MAC address needs its separator two bytes on; every other pattern starts with a digit,
            // or a sign found by looking back from one).
            if i + 8 <= n, !Self.mayStartPattern(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 6
                continue
            }
            let b = p[i]
            if wantMAC, i + 17 <= n, p[i + 2] == UInt8(ascii: ":") || p[i + 2] == UInt8(ascii: "-"), Self.isHex(b),
               let m = mac(p, i) {
                matches.append(m)
                i += 17
                continue
            }
            if Self.isDigit(b) {
                let start = i
                while i < n, Self.isDigit(p[i]) { i += 1 }
                let length = i - start
                // Decimal numbers (coordinates): digits '.' at least 4 digits.
                if i + 4 < n, p[i] == UInt8(ascii: "."), length <= 3, Self.isDigit(p[i + 1]) {
                    var j = i + 1
                    while j < n, Self.isDigit(p[j]) { j += 1 }
                    let decimals = j - i - 1
                    let negative = start > 0 && p[start - 1] == UInt8(ascii: "-")
                    let s = negative ? start - 1 : start
                    if decimals >= 4, wantLocation, (s == 0 || !Self.isAlnum(p[s - 1])), j >= n || !Self.isAlnum(p[j]),
                       let v = Double(String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<j]), as: UTF8.self)) {
                        if let lat = pendingLatitude, s - lat.end <= 40, abs(v) <= 180,
                           coordinates(p, lat.start, lat.end, s, lat.decimals, decimals, lat.value, v) {
                            let text = "\(lat.text),\(String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<j]), as: UTF8.self))"
                            matches.append(match(p, lat.start, j - lat.start, .location, text, "plain", known: false))
                            pendingLatitude = nil
                        } else {
                            pendingLatitude = abs(v) <= 90
                                ? (v, s, j, decimals, String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<j]), as: UTF8.self)) : nil
                        }
                    }
                    i = j
                    continue
                }
                guard (start == 0 || !Self.isAlnum(p[start - 1])), i >= n || !Self.isAlnum(p[i]) else { continue }
                if length >= 8 && length <= 20 { digitRun(p, start, length, into: &matches) }
                continue
            }
            i += 1
        }
    }

    private func digitRun(_ p: UnsafeRawBufferPointer, _ start: Int, _ length: Int, into matches: inout [IdentifierMatch]) {
        let kinds = configuration.kinds
        let digits = UnsafeRawBufferPointer(rebasing: p[start..<(start + length)])
        let text = String(decoding: digits, as: UTF8.self)
        let plus = start > 0 && p[start - 1] == UInt8(ascii: "+")
        if plus {
            // E.164: French mobiles always; other numbers with a phone keyword before them.
            guard kinds.contains(.phone), length >= 8, length <= 15 else { return }
            let frenchMobile = length == 11 && text.hasPrefix("33") && (digits[2] == UInt8(ascii: "6") || digits[2] == UInt8(ascii: "7"))
            if frenchMobile || Self.keyword(p, start - 1, Self.phoneWords) {
                matches.append(match(p, start - 1, length + 1, .phone, "+" + text, "plain", known: knownValues["+" + text] != nil))
            }
            return
        }
        // Exact known values were matched by the pattern table.
        if knownValues[text] != nil { return }
        switch length {
        case 15:
            if kinds.contains(.imsi), Self.keyword(p, start, Self.imsiWords), MobileCountryCodes.contains(text.prefix(3)) {
                matches.append(match(p, start, length, .imsi, text, "plain", known: false))
            } else if kinds.contains(.imei), Self.luhn(digits), Self.reportingBodies.contains(String(text.prefix(2))) {
                matches.append(match(p, start, length, .imei, text, "plain", known: false))
            }
        case 14, 16:
            // An IMEI without its check digit, or an IMEISV: only where the payload calls it an IMEI.
            if kinds.contains(.imei), Self.reportingBodies.contains(String(text.prefix(2))), Self.keyword(p, start, Self.imeiWords) {
                matches.append(match(p, start, length, .imei, text, length == 16 ? "imeisv" : "plain", known: false))
            }
        case 19, 20:
            if kinds.contains(.iccid), text.hasPrefix("89"), Self.luhn(digits) {
                matches.append(match(p, start, length, .iccid, text, "plain", known: false))
            }
        case 10:
            if kinds.contains(.phone), digits[0] == UInt8(ascii: "0"), digits[1] == UInt8(ascii: "6") || digits[1] == UInt8(ascii: "7"),
               Self.keyword(p, start, Self.phoneWords) {
                matches.append(match(p, start, length, .phone, text, "national", known: false))
            }
        default: break
        }
    }

    /// Two decimal numbers close together are coordinates when a location keyword precedes them or sits between
    /// them, or when only a separator sits between them and both have at least 5 decimals.
    private func coordinates(
        _ p: UnsafeRawBufferPointer, _ latStart: Int, _ latEnd: Int, _ lonStart: Int, _ latDecimals: Int, _ lonDecimals: Int,
        _ lat: Double, _ lon: Double
    ) -> Bool {
        if lat == 0 && lon == 0 { return false }
        let gap = UnsafeRawBufferPointer(rebasing: p[latEnd..<lonStart])
        let separators: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: " "), UInt8(ascii: ";"), UInt8(ascii: "|"), UInt8(ascii: "/"),
                                      UInt8(ascii: ":")]
        if Self.keyword(p, latStart, Self.locationWords) { return true }
        let gapText = String(decoding: gap, as: UTF8.self).lowercased()
        if Self.locationWords.contains(where: { gapText.contains(String(decoding: $0, as: UTF8.self)) }) { return true }
        return gap.count <= 2 && gap.allSatisfy(separators.contains) && latDecimals >= 5 && lonDecimals >= 5
    }

    private func mac(_ p: UnsafeRawBufferPointer, _ i: Int) -> IdentifierMatch? {
        let sep = p[i + 2]
        for g in 0..<6 {
            let o = i + g * 3
            guard Self.isHex(p[o]), Self.isHex(p[o + 1]) else { return nil }
            if g < 5, p[o + 2] != sep { return nil }
        }
        guard Self.bounded(p, i, 17) else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: p[i..<(i + 17)]), as: UTF8.self).lowercased()
            .replacingOccurrences(of: "-", with: ":")
        // Broadcast, all-zero and multicast addresses identify nothing, nor does 02:00:00:00:00:00, what Android
        // (6 and later) returns to apps instead of the real MAC address.
        guard text != "ff:ff:ff:ff:ff:ff", text != "00:00:00:00:00:00", text != "02:00:00:00:00:00", let first = UInt8(text.prefix(2), radix: 16), first & 1 == 0
        else { return nil }
        return match(p, i, 17, .mac, text, "plain", known: knownValues[text] != nil)
    }

    static let imeiWords: [[UInt8]] = ["imei", "device", "deviceid", "dev_id", "serial"].map { Array($0.utf8) }
    static let imsiWords: [[UInt8]] = ["imsi", "subscriber", "sim", "mcc"].map { Array($0.utf8) }
    static let phoneWords: [[UInt8]] = ["phone", "msisdn", "tel", "mobile", "number", "sms", "caller", "contact"]
        .map { Array($0.utf8) }
    static let locationWords: [[UInt8]] = ["lat", "lon", "lng", "gps", "geo", "loc", "coord", "position", "latitude"].map { Array($0.utf8) }

    /// Whether one of `words` occurs (case-insensitively) in the 32 bytes before `start`.
    static func keyword(_ p: UnsafeRawBufferPointer, _ start: Int, _ words: [[UInt8]]) -> Bool {
        let from = max(0, start - 32)
        guard start > from else { return false }
        let window = p[from..<start].map { $0 | (($0 &- 0x41) < 26 ? 0x20 : 0) }
        for w in words where w.count <= window.count {
            for i in 0...(window.count - w.count) where window[i] == w[0] {
                if (0..<w.count).allSatisfy({ window[i + $0] == w[$0] }) { return true }
            }
        }
        return false
    }

    /// The Luhn check over ASCII digits.
    static func luhn(_ digits: UnsafeRawBufferPointer) -> Bool {
        var sum = 0
        for (i, d) in digits.reversed().enumerated() {
            var v = Int(d - 0x30)
            if i % 2 == 1 { v *= 2; if v > 9 { v -= 9 } }
            sum += v
        }
        return sum % 10 == 0
    }

    /// GSMA reporting body identifiers (the first two digits of an IMEI's TAC) in use.
    static let reportingBodies: Set<String> = ["01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52", "53", "54", "86", "91", "98", "99"]

    private func match(
        _ p: UnsafeRawBufferPointer, _ i: Int, _ length: Int, _ kind: IdentifierKind, _ value: String, _ encoding: String, known: Bool
    ) -> IdentifierMatch {
        let e = configuration.excerptBytes
        let from = max(0, i - e), to = min(p.count, i + length + e)
        let excerpt = String(p[from..<to].map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." })
        let k = knownValues[value.lowercased()]
        return IdentifierMatch(
            kind: k?.kind ?? kind, value: k?.value ?? value, encoding: encoding, known: known || k != nil, offset: i, length: length,
            excerpt: excerpt)
    }
}

/// Mobile country codes (ITU-T E.212) in use, for IMSI validation.
enum MobileCountryCodes {
    static func contains(_ mcc: Substring) -> Bool { codes.contains(String(mcc)) }
    static let codes: Set<String> = Set("""
        202 204 206 208 212 213 214 216 218 219 220 221 222 225 226 228 230 231 232 234 235 238 240 242 244 246 247 248 250
        255 257 259 260 262 266 268 270 272 274 276 278 280 282 283 284 286 288 290 292 293 294 295 297 302 308 310 311 312
        313 314 315 316 330 332 334 338 340 342 344 346 348 350 352 354 356 358 360 362 363 364 365 366 368 370 372 374 376
        400 401 402 404 405 406 410 412 413 414 415 416 417 418 419 420 421 422 424 425 426 427 428 429 430 431 432 434 436
        437 438 440 441 450 452 454 455 456 457 460 461 466 467 470 472 502 505 510 514 515 520 525 528 530 536 537 539 540
        541 542 543 544 545 546 547 548 549 550 551 552 553 554 555 602 603 604 605 606 607 608 609 610 611 612 613 614 615
        616 617 618 619 620 621 622 623 624 625 626 627 628 629 630 631 632 633 634 635 636 637 638 639 640 641 642 643 645
        646 647 648 649 650 651 652 653 654 655 657 658 659 702 704 706 708 710 712 714 716 722 724 730 732 734 736 738 740
        742 744 746 748 750 901
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
}
