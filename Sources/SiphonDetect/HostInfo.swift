internal import Foundation
import SiphonCore

/// What an infostealer's or a bot's check-in tells about the machine it runs on: host and user names, OS, hardware
/// identifiers, antivirus, installed software. Read from an upload's body as key/value pairs (a form, JSON, or
/// `Key: value` lines as stealer logs write them); a key counts by its normalised name (letters and digits, lower
/// case): `Computer Name`, `computer_name` and `computerName` are one.
public struct HostInfo: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case host, user, os, hardwareID = "hardware-id", hardware, antivirus, software
    }
    /// The fields found, in the order of their kinds (one value per kind: the first).
    public var fields: [(kind: Kind, key: String, value: String)] = []

    public static func == (a: Self, b: Self) -> Bool {
        a.fields.map { "\($0.kind)\($0.key)\($0.value)" } == b.fields.map { "\($0.kind)\($0.key)\($0.value)" }
    }

    static let kinds: [String: Kind] = [
        "computername": .host, "computer": .host, "machinename": .host, "hostname": .host,
        "pcname": .host, "workstation": .host, "compname": .host,
        "username": .user, "uname": .user, "currentuser": .user, "windowsuser": .user,
        "os": .os, "osversion": .os, "osname": .os, "osfullname": .os, "operatingsystem": .os, "windowsversion": .os,
        "winver": .os, "osver": .os, "system": .os,
        "hwid": .hardwareID, "machineid": .hardwareID, "hardwareid": .hardwareID,
        "cpu": .hardware, "processor": .hardware, "gpu": .hardware, "videocard": .hardware, "ram": .hardware,
        "totalram": .hardware, "memory": .hardware,
        "antivirus": .antivirus, "av": .antivirus, "antiviruses": .antivirus, "securityproducts": .antivirus,
        "installedsoftware": .software, "software": .software, "programs": .software, "installedprograms": .software,
        "softwares": .software, "installedapps": .software,
    ]

    /// Kinds at which an upload is host data (a telemetry SDK sends its OS and hardware: two kinds), one of them
    /// naming the machine or its user, its protection or its software (what telemetry does not send).
    public static let minimumKinds = 3
    static let identifying: Set<Kind> = [.host, .user, .hardwareID, .antivirus, .software]

    /// The host data of an upload's body (its first bytes), nil below `minimumKinds` kinds.
    public static func find(_ body: [UInt8]) -> HostInfo? {
        guard mayHold(body) else { return nil }
        let text = String(decoding: body, as: UTF8.self)
        var pairs: [(String, String)] = []
        if text.first == "{", let object = try? JSONSerialization.jsonObject(with: Data(body)) {
            flatten(object, depth: 0, into: &pairs)
        } else {
            for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "&" }).prefix(256) {
                guard let sep = line.firstIndex(where: { $0 == ":" || $0 == "=" }) else { continue }
                let key = String(line[..<sep]).removingPercentEncoding ?? String(line[..<sep])
                let value = String(line[line.index(after: sep)...]).replacingOccurrences(of: "+", with: " ")
                pairs.append((key, (value.removingPercentEncoding ?? value).trimmingCharacters(in: .whitespaces)))
            }
        }
        var found = HostInfo()
        for (key, value) in pairs where !value.isEmpty {
            let normal = String(key.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic || ("0"..."9").contains($0) })
            guard let kind = kinds[normal], !found.fields.contains(where: { $0.kind == kind }) else { continue }
            found.fields.append((kind, key.trimmingCharacters(in: .whitespaces), String(value.prefix(256))))
        }
        guard found.fields.count >= minimumKinds, found.fields.contains(where: { identifying.contains($0.kind) }) else { return nil }
        found.fields.sort { Kind.allCases.firstIndex(of: $0.kind)! < Kind.allCases.firstIndex(of: $1.kind)! }
        return found
    }

    /// Keys and values of a JSON document, nested objects flattened (4 levels), arrays of strings joined.
    static func flatten(_ value: Any, depth: Int, into pairs: inout [(String, String)]) {
        guard depth < 4, let object = value as? [String: Any] else { return }
        for (k, v) in object.sorted(by: { $0.key < $1.key }) {
            switch v {
            case let s as String: pairs.append((k, s))
            case let n as NSNumber: pairs.append((k, n.stringValue))
            case let list as [Any]: pairs.append((k, list.compactMap { $0 as? String }.prefix(64).joined(separator: ", ")))
            default: flatten(v, depth: depth + 1, into: &pairs)
            }
        }
    }

    /// Whether the body's keys (what stands before `=`, `:` or a closing quote, at the start or after `&`, a line
    /// break, `{` or `,`) name enough kinds, one of them identifying: one pass, no allocation beyond a key of at most
    /// 24 characters, so that the uploads that are not host data (nearly all) are passed over without parsing.
    static func mayHold(_ bytes: [UInt8]) -> Bool {
        var seen: Set<Kind> = [], inKey = true
        // Read in place: a key's letters and digits are counted as they come, and gathered (lower case, without
        // the separators a key may hold) only when a key ends; binary bodies end their keys within a byte or two.
        var keyStart = 0, letters = 0
        return bytes.withUnsafeBufferPointer { p in
            for i in 0..<p.count {
                let b = p[i]
                switch b {
                case UInt8(ascii: "&"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "{"), UInt8(ascii: ","):
                    keyStart = i + 1
                    letters = 0
                    inKey = true
                case UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "\""):
                    guard inKey, letters > 0 else { continue }
                    inKey = false
                    var key: [UInt8] = []
                    key.reserveCapacity(letters)
                    for c in p[keyStart..<i] {
                        let l = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
                        if (l >= 0x61 && l <= 0x7A) || (l >= 0x30 && l <= 0x39) { key.append(l) }
                    }
                    if let kind = kinds[String(decoding: key, as: UTF8.self)] { seen.insert(kind) }
                default:
                    guard inKey else { continue }
                    let c = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
                    if (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) {
                        if letters < 24 { letters += 1 } else { inKey = false }
                    } else if !(c == 0x20 || c == 0x5F || c == 0x2D || c == 0x2E || c == 0x09) {
                        inKey = false  // a character no key has: not a key
                    }
                }
            }
            return seen.count >= minimumKinds && !seen.isDisjoint(with: identifying)
        }
    }

    /// The fields as `kind value` pairs for a message.
    public var summary: String { fields.map { "\($0.kind.rawValue) \($0.value)" }.joined(separator: ", ") }
}
