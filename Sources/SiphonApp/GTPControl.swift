public import SiphonCore

/// A GTP control-plane message (GTPv1-C, TS 29.060; GTPv2-C, TS 29.274) on UDP port 2123: what a mobile core says
/// of a subscriber when it opens a data session for it (the IMSI, the MSISDN, the IMEI in a create request; the
/// address given to the phone and the tunnel identifiers in the response).
public struct GTPControlMessage: Sendable, Equatable {
    /// 1 or 2.
    public var version: UInt8
    public var messageType: UInt8
    /// The header's TEID (GTPv2: nil when the header has none).
    public var teid: UInt32?
    /// GTPv1: 16 bits (nil when the header has none); GTPv2: 24 bits.
    public var sequence: UInt32?
    public var imsi: String?
    /// International number, digits only (the country code first).
    public var msisdn: String?
    /// The handset's IMEI (15 digits with its Luhn check digit), from the GTPv1 IMEI(SV) IE or the GTPv2 MEI; an
    /// IMEISV (16 digits: no check digit, a 2-digit software version) gives its first 14 digits and the check digit.
    public var imei: String?
    /// The IMEISV as sent, when the message carried one.
    public var imeisv: String?
    public var apn: String?
    /// Cause value of a response (GTPv1: 128 = request accepted; GTPv2: 16 = request accepted).
    public var cause: UInt8?
    /// Addresses given to the phone: GTPv1 End User Address, GTPv2 PDN Address Allocation.
    public var endUserAddresses: [IPAddress] = []
    /// User-plane TEIDs the message assigns: GTPv1 TEID Data I, GTPv2 F-TEIDs of the bearer contexts.
    public var dataTEIDs: [UInt32] = []
    /// Control-plane TEIDs the message assigns: GTPv1 TEID Control Plane; GTPv2 the F-TEIDs outside bearer
    /// contexts (the sender's first, then a PGW's), in order.
    public var controlTEIDs: [UInt32] = []
    /// The information elements stopped being readable at this offset of the message (nil: all read).
    public var malformedAt: Int?

    public init(version: UInt8, messageType: UInt8) {
        self.version = version
        self.messageType = messageType
    }

    /// Whether the message asks to open a data session (Create PDP Context / Create Session request).
    public var isCreateRequest: Bool { version == 1 ? messageType == 16 : messageType == 32 }
    /// Whether it answers one.
    public var isCreateResponse: Bool { version == 1 ? messageType == 17 : messageType == 33 }
    /// Whether a response's cause says the request was accepted (true when no cause was read).
    public var accepted: Bool {
        guard let c = cause else { return true }
        return version == 1 ? c == 128 || c == 129 || c == 130 : c >= 16 && c <= 63
    }

    public var messageName: String {
        switch (version, messageType) {
        case (_, 1): "echo-request"
        case (_, 2): "echo-response"
        case (1, 16): "create-pdp-context-request"
        case (1, 17): "create-pdp-context-response"
        case (1, 18): "update-pdp-context-request"
        case (1, 19): "update-pdp-context-response"
        case (1, 20): "delete-pdp-context-request"
        case (1, 21): "delete-pdp-context-response"
        case (1, 26): "error-indication"
        case (2, 32): "create-session-request"
        case (2, 33): "create-session-response"
        case (2, 34): "modify-bearer-request"
        case (2, 35): "modify-bearer-response"
        case (2, 36): "delete-session-request"
        case (2, 37): "delete-session-response"
        case (2, 95): "create-bearer-request"
        case (2, 96): "create-bearer-response"
        default: "type-\(messageType)"
        }
    }

    /// Whether a UDP payload starts like GTPv1-C or GTPv2-C (version 1 with protocol type GTP, or version 2).
    public static func looksLikeGTPC(_ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 8 else { return false }
        let flags = b.u8(0)
        return flags & 0xF0 == 0x30 || flags & 0xE0 == 0x40
    }

    /// Parses every message of a datagram (GTPv2 piggybacks a second message after the first). Empty when the
    /// datagram is not GTP-C; a message whose information elements break off keeps what was read before, with
    /// `malformedAt` set.
    public static func parse(_ b: UnsafeRawBufferPointer) -> [GTPControlMessage] {
        var out: [GTPControlMessage] = []
        var o = 0
        while o + 8 <= b.count {
            let flags = b.u8(o)
            let end = min(b.count, o + 4 + Int(b.be16(o + 2)) + (flags & 0xE0 == 0x20 ? 4 : 0))
            let view = UnsafeRawBufferPointer(rebasing: b[..<end])
            if flags & 0xF0 == 0x30 {
                guard let m = parseV1(view, at: o) else { break }
                out.append(m)
                break  // GTPv1 does not piggyback
            } else if flags & 0xE0 == 0x40 {
                guard let m = parseV2(view, at: o) else { break }
                out.append(m)
                guard flags & 0x10 != 0, out.count < 2 else { break }  // piggybacked message follows
                o = end
            } else {
                break
            }
        }
        return out
    }

    // MARK: GTPv1-C

    /// Fixed lengths of GTPv1 TV information elements (TS 29.060 7.7, types below 128).
    static func v1FixedLength(_ type: UInt8) -> Int? {
        switch type {
        case 1, 8, 11, 13, 14, 15, 19, 20, 21, 23, 24, 29, 126: 1
        case 25, 26, 27, 28: 2
        case 12: 3
        case 4, 5, 16, 17, 127: 4
        case 18: 5
        case 3: 6
        case 2: 8
        case 22: 9
        case 9: 28
        default: nil
        }
    }

    static func parseV1(_ b: UnsafeRawBufferPointer, at o: Int) -> GTPControlMessage? {
        let flags = b.u8(o)
        var m = GTPControlMessage(version: 1, messageType: b.u8(o + 1))
        m.teid = b.be32(o + 4)
        var i = o + 8
        if flags & 0x07 != 0 {
            guard b.count >= o + 12 else { return nil }
            m.sequence = UInt32(b.be16(o + 8))
            i = o + 12
            var next = b.u8(o + 11)
            while flags & 0x04 != 0 && next != 0 {
                guard i < b.count, b.u8(i) > 0, i + Int(b.u8(i)) * 4 <= b.count else { m.malformedAt = i; return m }
                let length = Int(b.u8(i)) * 4
                next = b.u8(i + length - 1)
                i += length
            }
        }
        while i < b.count {
            let type = b.u8(i)
            let valueAt: Int
            let length: Int
            if type & 0x80 == 0 {
                guard let n = v1FixedLength(type) else { m.malformedAt = i; return m }
                valueAt = i + 1
                length = n
            } else {
                guard i + 3 <= b.count else { m.malformedAt = i; return m }
                valueAt = i + 3
                length = Int(b.be16(i + 1))
            }
            guard valueAt + length <= b.count else { m.malformedAt = i; return m }
            let v = UnsafeRawBufferPointer(rebasing: b[valueAt..<(valueAt + length)])
            switch type {
            case 1: m.cause = v.u8(0)
            case 2: m.imsi = tbcd(v)
            case 16: m.dataTEIDs.append(v.be32(0))
            case 17: m.controlTEIDs.append(v.be32(0))
            case 128:  // End User Address: PDP type organisation (1: IETF), number (0x21 IPv4, 0x57 IPv6, 0x8D both)
                if length >= 2, v.u8(0) & 0x0F == 1 { m.endUserAddresses += pdpAddresses(v, from: 2, type: v.u8(1)) }
            case 131: m.apn = apn(v)
            case 134:  // MSISDN: nature of number and plan, then the digits
                if length >= 2 { m.msisdn = tbcd(UnsafeRawBufferPointer(rebasing: v[1...])) }
            case 154: m.setEquipment(tbcd(v))
            default: break
            }
            i = valueAt + length
        }
        return m
    }

    /// The addresses of a PDP address field: IPv4 (4 bytes), IPv6 (16) or both (4 then 16).
    static func pdpAddresses(_ v: UnsafeRawBufferPointer, from o: Int, type: UInt8) -> [IPAddress] {
        var out: [IPAddress] = []
        let n = v.count - o
        switch type {
        case 0x21 where n >= 4: out.append(IPAddress(v, at: o, ipv6: false))
        case 0x57 where n >= 16: out.append(IPAddress(v, at: o, ipv6: true))
        case 0x8D:
            if n >= 20 {
                out.append(IPAddress(v, at: o, ipv6: false))
                out.append(IPAddress(v, at: o + 4, ipv6: true))
            } else if n == 16 {
                out.append(IPAddress(v, at: o, ipv6: true))
            } else if n >= 4 {
                out.append(IPAddress(v, at: o, ipv6: false))
            }
        default: break
        }
        return out.filter { $0.high != 0 || $0.low != 0 }
    }

    // MARK: GTPv2-C

    static func parseV2(_ b: UnsafeRawBufferPointer, at o: Int) -> GTPControlMessage? {
        let flags = b.u8(o)
        var m = GTPControlMessage(version: 2, messageType: b.u8(o + 1))
        var i = o + 4
        if flags & 0x08 != 0 {
            guard b.count >= o + 12 else { return nil }
            m.teid = b.be32(o + 4)
            i = o + 8
        }
        guard b.count >= i + 4 else { return nil }
        m.sequence = UInt32(b.u8(i)) << 16 | UInt32(b.be16(i + 1))
        i += 4
        v2Elements(b, from: i, to: b.count, depth: 0, into: &m)
        return m
    }

    /// Reads GTPv2 IEs (type, 2-byte length, instance, value) from `from` to `to`; grouped IEs (bearer contexts)
    /// are read inside, one level deep.
    static func v2Elements(_ b: UnsafeRawBufferPointer, from: Int, to end: Int, depth: Int, into m: inout GTPControlMessage) {
        var i = from
        while i < end {
            guard i + 4 <= end else { m.malformedAt = i; return }
            let type = b.u8(i)
            let length = Int(b.be16(i + 1))
            let valueAt = i + 4
            guard valueAt + length <= end else { m.malformedAt = i; return }
            let v = UnsafeRawBufferPointer(rebasing: b[valueAt..<(valueAt + length)])
            switch type {
            case 1: m.imsi = tbcd(v)
            case 2: if length >= 1 { m.cause = v.u8(0) }
            case 71: m.apn = apn(v)
            case 75: m.setEquipment(tbcd(v))
            case 76: m.msisdn = tbcd(v)
            case 79:  // PDN Address Allocation: PDN type (1 IPv4, 2 IPv6 with prefix length, 3 both)
                if length >= 1 {
                    switch v.u8(0) & 0x07 {
                    case 1 where length >= 5: m.endUserAddresses.append(IPAddress(v, at: 1, ipv6: false))
                    case 2 where length >= 18: m.endUserAddresses.append(IPAddress(v, at: 2, ipv6: true))
                    case 3 where length >= 22:
                        m.endUserAddresses.append(IPAddress(v, at: 18, ipv6: false))
                        m.endUserAddresses.append(IPAddress(v, at: 2, ipv6: true))
                    default: break
                    }
                    m.endUserAddresses.removeAll { $0.high == 0 && $0.low == 0 }
                }
            case 87:  // F-TEID: flags and interface type, TEID/GRE key
                if length >= 5 {
                    if depth == 0 { m.controlTEIDs.append(v.be32(1)) } else { m.dataTEIDs.append(v.be32(1)) }
                }
            case 93 where depth == 0:  // Bearer Context (grouped)
                v2Elements(b, from: valueAt, to: valueAt + length, depth: 1, into: &m)
            default: break
            }
            i = valueAt + length
        }
    }

    // MARK: Fields

    /// An IMEI(SV)/MEI value: 15 digits are an IMEI, 16 an IMEISV.
    mutating func setEquipment(_ digits: String?) {
        guard let d = digits else { return }
        if d.count == 16 {
            imeisv = d
            imei = Self.imei(fromIMEISV: d)
        } else {
            imei = d
        }
    }

    /// The IMEI of an IMEISV: its first 14 digits (TAC and serial number) and their Luhn check digit.
    public static func imei(fromIMEISV sv: String) -> String {
        let body = Array(sv.utf8.prefix(14))
        var total = 0
        for (i, c) in body.reversed().enumerated() {
            var n = Int(c) - 48
            if i % 2 == 0 {
                n *= 2
                if n > 9 { n -= 9 }
            }
            total += n
        }
        return String(decoding: body, as: UTF8.self) + String((10 - total % 10) % 10)
    }

    /// Telephony BCD digits (low nibble first; 0xF fills the last byte). Nil when a nibble is not a digit before
    /// the filler.
    public static func tbcd(_ v: UnsafeRawBufferPointer) -> String? {
        let s = PhoneNumber.bcdDigits(v)
        return !s.isEmpty && s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) ? s : nil
    }

    /// An access point name: length-prefixed labels joined by dots.
    static func apn(_ v: UnsafeRawBufferPointer) -> String? {
        var labels: [String] = []
        var i = 0
        while i < v.count {
            let n = Int(v.u8(i))
            guard n > 0, i + 1 + n <= v.count else { break }
            labels.append(String(decoding: UnsafeRawBufferPointer(rebasing: v[(i + 1)..<(i + 1 + n)]), as: UTF8.self))
            i += 1 + n
        }
        return labels.isEmpty ? nil : labels.joined(separator: ".")
    }
}

/// A subscriber as the mobile core named it: a create request's identities joined with its accepted response's
/// addresses and tunnel identifiers.
public struct Subscriber: Sendable, Hashable {
    public var imsi: String?
    public var msisdn: String?
    public var imei: String?
    public var imeisv: String?
    /// The temporary identity the GSM network gave it (8 hex digits).
    public var tmsi: String?
    public var apn: String?
    public var addresses: [IPAddress] = []
    public var dataTEIDs: [UInt32] = []

    public init(imsi: String? = nil, msisdn: String? = nil, imei: String? = nil) {
        self.imsi = imsi
        self.msisdn = msisdn
        self.imei = imei
    }
}
