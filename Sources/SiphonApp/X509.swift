import Crypto
public import SiphonCore

/// The fields of an X.509 certificate a verdict needs, read with a bounded DER reader: nothing is trusted, every
/// length is checked against its parent, nesting is limited.
public struct X509Summary: Sendable, Equatable {
    /// Distinguished names as `C=US, O=Example, CN=www.example.com` (attributes in certificate order).
    public var subject: String
    public var issuer: String
    public var subjectCommonName: String?
    public var serial: String
    public var notBefore: Timestamp?
    public var notAfter: Timestamp?
    /// DNS names and IP addresses of the subjectAltName extension.
    public var dnsNames: [String]
    public var ipAddresses: [IPAddress]
    /// Subject and issuer are the same name.
    public var selfIssued: Bool
    public var sha1: String
    public var sha256: String
}

public struct DERError: Error, Sendable { public var reason: String }

/// A DER element: tag, and its content's range in the buffer.
struct DER {
    let tag: UInt8
    let start: Int
    let end: Int

    /// Reads the element at `p` in `b`, not past `limit`.
    static func read(_ b: UnsafeRawBufferPointer, _ p: Int, _ limit: Int) throws(DERError) -> DER {
        guard p + 2 <= limit else { throw DERError(reason: "element header past its parent at \(p)") }
        let tag = b[p]
        guard tag & 0x1F != 0x1F else { throw DERError(reason: "multi-byte tag at \(p)") }
        var length = Int(b[p + 1])
        var q = p + 2
        if length & 0x80 != 0 {
            let n = length & 0x7F
            guard n >= 1, n <= 4, q + n <= limit else { throw DERError(reason: "bad length at \(p)") }
            length = 0
            for i in 0..<n { length = length << 8 | Int(b[q + i]) }
            q += n
        }
        guard q + length <= limit else { throw DERError(reason: "element of \(length) bytes at \(p) runs past its parent") }
        return DER(tag: tag, start: q, end: q + length)
    }

    /// The children of a constructed element.
    func children(_ b: UnsafeRawBufferPointer) throws(DERError) -> [DER] {
        var out: [DER] = []
        var p = start
        while p < end {
            let c = try DER.read(b, p, end)
            out.append(c)
            p = c.end
            guard out.count <= 512 else { throw DERError(reason: "too many elements") }
        }
        return out
    }
}

public enum X509 {
    static let attributeNames: [[UInt8]: String] = [
        [0x55, 0x04, 0x03]: "CN", [0x55, 0x04, 0x06]: "C", [0x55, 0x04, 0x0A]: "O", [0x55, 0x04, 0x0B]: "OU",
        [0x55, 0x04, 0x07]: "L", [0x55, 0x04, 0x08]: "ST", [0x55, 0x04, 0x05]: "serialNumber",
        [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01]: "emailAddress",
        [0x55, 0x04, 0x0F]: "businessCategory", [0x55, 0x04, 0x11]: "postalCode", [0x55, 0x04, 0x09]: "street",
        [0x55, 0x04, 0x2A]: "GN", [0x55, 0x04, 0x04]: "SN", [0x55, 0x04, 0x0C]: "title", [0x55, 0x04, 0x61]: "organizationIdentifier",
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x01]: "jurisdictionL",
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x02]: "jurisdictionST",
        [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3C, 0x02, 0x01, 0x03]: "jurisdictionC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19]: "DC",
    ]

    /// An OBJECT IDENTIFIER in dotted decimal (first byte 40x+y, then base-128 groups).
    static func dotted(_ oid: [UInt8]) -> String {
        guard let first = oid.first else { return "" }
        var parts = [String(first < 80 ? first / 40 : 2), String(first < 80 ? first % 40 : first - 80)]
        var v: UInt64 = 0
        for b in oid.dropFirst() {
            v = v << 7 | UInt64(b & 0x7F)
            if b & 0x80 == 0 { parts.append(String(v)); v = 0 }
        }
        return parts.joined(separator: ".")
    }

    /// Summarises a DER certificate.
    public static func summary(_ der: [UInt8]) throws(DERError) -> X509Summary {
        let result = der.withUnsafeBytes { b in Result { () throws(DERError) -> X509Summary in try summary(b) } }
        return try result.get()
    }

    static func summary(_ b: UnsafeRawBufferPointer) throws(DERError) -> X509Summary {
        let cert = try DER.read(b, 0, b.count)
        guard cert.tag == 0x30 else { throw DERError(reason: "not a SEQUENCE") }
        let tbsElement = try DER.read(b, cert.start, cert.end)
        var fields = try tbsElement.children(b)
        if fields.first?.tag == 0xA0 { fields.removeFirst() }  // [0] version
        guard fields.count >= 6 else { throw DERError(reason: "tbsCertificate has \(fields.count) fields") }
        let serial = fields[0], issuer = fields[2], validity = fields[3], subject = fields[4]
        let (subjectText, commonName) = try name(b, subject)
        let (issuerText, _) = try name(b, issuer)
        let times = try validity.children(b)
        var dns: [String] = []
        var ips: [IPAddress] = []
        if let extensions = fields.first(where: { $0.tag == 0xA3 }), let list = try extensions.children(b).first {
            for ext in try list.children(b) {
                let parts = try ext.children(b)
                guard parts.count >= 2, parts[0].tag == 0x06,
                    Array(b[parts[0].start..<parts[0].end]) == [0x55, 0x1D, 0x11], let value = parts.last, value.tag == 0x04
                else { continue }
                let names = try DER.read(b, value.start, value.end)
                for n in try names.children(b) {
                    if n.tag == 0x82 { dns.append(String(decoding: b[n.start..<n.end], as: UTF8.self)) }
                    if n.tag == 0x87 && (n.end - n.start == 4 || n.end - n.start == 16) {
                        ips.append(IPAddress(UnsafeRawBufferPointer(rebasing: b[n.start..<n.end]), at: 0, ipv6: n.end - n.start == 16))
                    }
                }
            }
        }
        let whole = UnsafeRawBufferPointer(rebasing: b[0..<cert.end])
        func colonHex<D: Sequence>(_ d: D) -> String where D.Element == UInt8 {
            d.map { let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: ":")
        }
        return X509Summary(
            subject: subjectText, issuer: issuerText, subjectCommonName: commonName,
            serial: colonHex(b[serial.start..<serial.end]),
            notBefore: times.count >= 1 ? time(b, times[0]) : nil, notAfter: times.count >= 2 ? time(b, times[1]) : nil,
            dnsNames: dns, ipAddresses: ips,
            selfIssued: b[subject.start..<subject.end].elementsEqual(b[issuer.start..<issuer.end]),
            sha1: Insecure.SHA1.hash(data: whole).withUnsafeBytes { colonHex($0) }, sha256: SHA256.hash(data: whole).hexString)
    }

    /// A Name as `T=v, T=v` in certificate order, and its first common name.
    static func name(_ b: UnsafeRawBufferPointer, _ n: DER) throws(DERError) -> (String, String?) {
        var parts: [String] = []
        var commonName: String?
        for rdn in try n.children(b) {
            for attribute in try rdn.children(b) {
                let av = try attribute.children(b)
                guard av.count == 2, av[0].tag == 0x06 else { continue }
                let oid = Array(b[av[0].start..<av[0].end])
                let value = String(decoding: b[av[1].start..<av[1].end], as: UTF8.self)
                let type = attributeNames[oid] ?? dotted(oid)
                if type == "CN" && commonName == nil { commonName = value }
                parts.append("\(type)=\(value)")
            }
        }
        return (parts.joined(separator: ", "), commonName)
    }

    /// UTCTime (YYMMDDHHMMSSZ, years 50-99 in the 1900s) or GeneralizedTime (YYYYMMDDHHMMSSZ).
    static func time(_ b: UnsafeRawBufferPointer, _ t: DER) -> Timestamp? {
        let s = Array(b[t.start..<t.end])
        func num(_ i: Int, _ n: Int) -> Int? {
            guard i + n <= s.count else { return nil }
            var v = 0
            for c in s[i..<(i + n)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        var year: Int
        var i: Int
        if t.tag == 0x17 {
            guard let yy = num(0, 2) else { return nil }
            year = yy < 50 ? 2000 + yy : 1900 + yy
            i = 2
        } else if t.tag == 0x18 {
            guard let yyyy = num(0, 4) else { return nil }
            year = yyyy
            i = 4
        } else {
            return nil
        }
        guard let month = num(i, 2), let day = num(i + 2, 2), let hour = num(i + 4, 2), let minute = num(i + 6, 2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        let second = num(i + 8, 2) ?? 0
        // Days from civil (H. Hinnant).
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((month + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Timestamp(seconds: days * 86_400 + Int64(hour * 3600 + minute * 60 + second))
    }
}
