import SiphonCore

// The GSM air interface as a lab's base station reports it in GSMTAP (UDP port 4729, or the GSMTAP link type):
// the signalling that carries a 2G phone's identities, calls, SMS and USSD (3GPP TS 44.006 LAPDm, TS 24.008
// mobility management and call control, TS 24.011 SMS relay, TS 23.040 SMS transfer, TS 23.038 alphabets,
// TS 24.080 supplementary services).

/// The GSMTAP header (Osmocom, version 2): what the radio saw the message on.
public struct GSMTAPHeader: Sendable, Equatable {
    public var version: UInt8
    /// Header length in bytes.
    public var length: Int
    /// 1: GSM Um (a LAPDm frame or a bare L3 message on a broadcast channel), 2: Abis, ...
    public var type: UInt8
    public var timeslot: UInt8
    /// Absolute radio frequency channel number, without the PCS and uplink flags.
    public var arfcn: UInt16
    /// Sent by the phone (the uplink flag 0x4000 of the ARFCN field).
    public var uplink: Bool
    public var frameNumber: UInt32
    /// Channel type (1 BCCH, 2 CCCH, 3 RACH, 4 AGCH, 5 PCH, 6 SDCCH, 7 SDCCH/4, 8 SDCCH/8, 9 TCH/F, 10 TCH/H...),
    /// 0x80 set for the slow associated control channel (SACCH).
    public var channelType: UInt8
    public var subSlot: UInt8

    public static let port: UInt16 = 4729

    /// Parses a GSMTAP header (version 2 or 3). Nil when the bytes are not one.
    public static func parse(_ b: UnsafeRawBufferPointer) -> GSMTAPHeader? {
        guard b.count >= 16, b.u8(0) == 2 || b.u8(0) == 3 else { return nil }
        let length = Int(b.u8(1)) * 4
        guard length >= 16, length <= b.count else { return nil }
        let arfcn = b.be16(4)
        return GSMTAPHeader(
            version: b.u8(0), length: length, type: b.u8(2), timeslot: b.u8(3), arfcn: arfcn & 0x3FFF,
            uplink: arfcn & 0x4000 != 0, frameNumber: b.be32(8), channelType: b.u8(12), subSlot: b.u8(14))
    }

    /// Whether the payload of a Um message is a LAPDm frame (dedicated and associated control channels) rather
    /// than a bare L3 message (broadcast and common control channels).
    public var carriesLAPDm: Bool {
        guard type == 1 else { return false }
        switch channelType & 0x7F {
        case 6, 7, 8, 9, 10: return true  // SDCCH, SDCCH/4, SDCCH/8, TCH/F, TCH/H (FACCH)
        default: return channelType & 0x80 != 0  // SACCH of any channel
        }
    }
}

/// A phone number as GSM carries it: type of number, numbering plan and BCD digits.
public struct PhoneNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var digits: String
    /// Type of number (1 international, 2 national, 5 alphanumeric...).
    public var typeOfNumber: UInt8
    public var numberingPlan: UInt8

    public init(digits: String, typeOfNumber: UInt8 = 1, numberingPlan: UInt8 = 1) {
        self.digits = digits
        self.typeOfNumber = typeOfNumber
        self.numberingPlan = numberingPlan
    }

    public var isInternational: Bool { typeOfNumber == 1 }

    /// `+` and the digits for an international number, the digits otherwise (as dialled).
    public var description: String { isInternational ? "+" + digits : digits }

    public static func < (a: Self, b: Self) -> Bool { a.description < b.description }

    /// BCD digits (low nibble first; 0xF ends; `*`, `#`, a, b, c for 0xA-0xE as TS 24.008 10.5.4.7).
    static func bcdDigits(_ v: UnsafeRawBufferPointer) -> String {
        var out = ""
        for byte in v {
            for nibble in [byte & 0x0F, byte >> 4] {
                switch nibble {
                case 0...9: out.unicodeScalars.append(UnicodeScalar(48 + nibble))
                case 0xA: out += "*"
                case 0xB: out += "#"
                case 0xC: out += "a"
                case 0xD: out += "b"
                case 0xE: out += "c"
                default: return out
                }
            }
        }
        return out
    }
}

/// A mobile identity (TS 24.008 10.5.1.4).
public struct MobileIdentity: Sendable, Hashable {
    public enum Kind: String, Sendable { case imsi, imei, imeisv, tmsi }
    public var kind: Kind
    /// Digits (IMSI, IMEI, IMEISV) or 8 hex digits (TMSI).
    public var value: String

    static func parse(_ v: UnsafeRawBufferPointer) -> MobileIdentity? {
        guard v.count >= 1 else { return nil }
        let type = v.u8(0) & 0x07
        if type == 4 {
            guard v.count >= 5 else { return nil }
            return MobileIdentity(kind: .tmsi, value: Array(v[1..<5]).hexString)
        }
        guard let kind: Kind = type == 1 ? .imsi : type == 2 ? .imei : type == 3 ? .imeisv : nil else { return nil }
        // The first digit in the high nibble of the type octet, the rest in telephony BCD.
        let first = v.u8(0) >> 4
        guard first <= 9 else { return nil }
        let rest = v.count > 1 ? GTPControlMessage.tbcd(UnsafeRawBufferPointer(rebasing: v[1...])) : ""
        guard let rest else { return nil }
        let digits = String(UnicodeScalar(48 + first)) + rest
        return MobileIdentity(kind: kind, value: digits)
    }
}

/// An SMS transfer PDU (TS 23.040 9.2): what the phone sends (SMS-SUBMIT) or receives (SMS-DELIVER).
public struct SMSMessage: Sendable {
    public enum Kind: String, Sendable { case submit = "sms-submit", deliver = "sms-deliver", other }
    public enum Encoding: String, Sendable { case gsm7, binary = "8bit", ucs2 }
    public var kind: Kind
    /// TP-MR (SMS-SUBMIT).
    public var messageReference: UInt8?
    /// TP-DA (SUBMIT) or TP-OA (DELIVER).
    public var number: PhoneNumber?
    public var protocolIdentifier: UInt8 = 0
    public var dataCodingScheme: UInt8 = 0
    public var encoding: Encoding = .gsm7
    /// The text (7-bit or UCS-2); nil for 8-bit data.
    public var text: String?
    /// User data after any header, as sent (8-bit data, or the text's bytes).
    public var userData: [UInt8] = []
    /// Concatenation (UDH information element 0 or 8): reference, parts, this part (1-based).
    public var concatenation: (reference: UInt16, parts: UInt8, part: UInt8)?


    /// The alphabet a data coding scheme selects (TS 23.038 4): general data coding groups and message classes.
    public static func encoding(of dcs: UInt8) -> Encoding {
        switch dcs >> 4 {
        case 0...7:  // general data coding (bit 5: compressed, left as binary)
            if dcs & 0x20 != 0 { return .binary }
            switch (dcs >> 2) & 0x03 {
            case 0: return .gsm7
            case 2: return .ucs2
            default: return .binary
            }
        case 0xC, 0xD: return .gsm7  // message waiting indication, store or discard
        case 0xE: return .ucs2
        case 0xF: return dcs & 0x04 != 0 ? .binary : .gsm7  // data coding / message class
        default: return .binary
        }
    }

    /// Parses an SMS-SUBMIT (mobile-originated) or SMS-DELIVER TPDU. Nil when it is cut before its user data.
    public static func parse(_ b: UnsafeRawBufferPointer, mobileOriginated: Bool) -> SMSMessage? {
        guard b.count >= 2 else { return nil }
        let first = b.u8(0)
        let mti = first & 0x03
        var i = 1
        var m: SMSMessage
        if mobileOriginated && mti == 1 {
            m = SMSMessage(kind: .submit)
            m.messageReference = b.u8(i)
            i += 1
        } else if !mobileOriginated && mti == 0 {
            m = SMSMessage(kind: .deliver)
        } else {
            return SMSMessage(kind: .other)
        }
        // Address: length in digits, type of address, BCD digits (or 7-bit alphanumeric).
        guard i + 2 <= b.count else { return nil }
        let digits = Int(b.u8(i))
        let toa = b.u8(i + 1)
        let octets = (digits + 1) / 2
        guard i + 2 + octets <= b.count else { return nil }
        let value = UnsafeRawBufferPointer(rebasing: b[(i + 2)..<(i + 2 + octets)])
        let ton = (toa >> 4) & 0x07
        if ton == 5 {
            m.number = PhoneNumber(digits: GSM7.decode(value, septets: digits * 4 / 7), typeOfNumber: 5, numberingPlan: toa & 0x0F)
        } else {
            m.number = PhoneNumber(digits: PhoneNumber.bcdDigits(value), typeOfNumber: ton, numberingPlan: toa & 0x0F)
        }
        i += 2 + octets
        guard i + 2 <= b.count else { return nil }
        m.protocolIdentifier = b.u8(i)
        m.dataCodingScheme = b.u8(i + 1)
        i += 2
        if m.kind == .submit {
            switch (first >> 3) & 0x03 {  // validity period format
            case 2: i += 1
            case 1, 3: i += 7
            default: break
            }
        } else {
            i += 7  // service centre time stamp
        }
        guard i + 1 <= b.count else { return nil }
        let udl = Int(b.u8(i))
        i += 1
        m.encoding = encoding(of: m.dataCodingScheme)
        let ud = UnsafeRawBufferPointer(rebasing: b[i...])
        var headerOctets = 0
        if first & 0x40 != 0, ud.count >= 1 {  // user data header
            let udhl = Int(ud.u8(0))
            headerOctets = min(ud.count, 1 + udhl)
            var j = 1
            while j + 2 <= headerOctets {
                let iei = ud.u8(j), len = Int(ud.u8(j + 1))
                guard j + 2 + len <= headerOctets else { break }
                if iei == 0 && len == 3 {
                    m.concatenation = (UInt16(ud.u8(j + 2)), ud.u8(j + 3), ud.u8(j + 4))
                } else if iei == 8 && len == 4 {
                    m.concatenation = (ud.be16(j + 2), ud.u8(j + 4), ud.u8(j + 5))
                }
                j += 2 + len
            }
        }
        switch m.encoding {
        case .gsm7:
            // UDL counts septets, header included; the text starts at the septet after the header's fill bits.
            let skip = (headerOctets * 8 + 6) / 7
            let septets = max(0, min(udl, ud.count * 8 / 7) - skip)
            m.text = GSM7.decode(ud, septets: septets, startingAt: skip)
            m.userData = Array(m.text!.utf8)
        case .ucs2:
            let end = min(ud.count, udl)
            let body = headerOctets < end ? UnsafeRawBufferPointer(rebasing: ud[headerOctets..<end]) : UnsafeRawBufferPointer(start: nil, count: 0)
            m.userData = Array(body)
            m.text = UCS2.decode(body)
        case .binary:
            let end = min(ud.count, udl)
            if headerOctets < end { m.userData = Array(ud[headerOctets..<end]) }
        }
        return m
    }

    init(kind: Kind) { self.kind = kind }
}

/// The GSM 7-bit default alphabet and its extension table (TS 23.038 6.2.1).
public enum GSM7 {
    static let basic: [Character] = Array(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1B}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")

    static func extended(_ code: UInt8) -> Character? {
        switch code {
        case 0x0A: "\u{0C}"
        case 0x14: "^"
        case 0x28: "{"
        case 0x29: "}"
        case 0x2F: "\\"
        case 0x3C: "["
        case 0x3D: "~"
        case 0x3E: "]"
        case 0x40: "|"
        case 0x65: "€"
        default: nil
        }
    }

    /// The septet at index `i` of packed 7-bit data (LSB first).
    static func septet(_ b: UnsafeRawBufferPointer, _ i: Int) -> UInt8 {
        let bit = i * 7
        let byte = bit / 8, shift = bit % 8
        var v = Int(b.u8(byte)) >> shift
        if shift > 1, byte + 1 < b.count { v |= Int(b.u8(byte + 1)) << (8 - shift) }
        return UInt8(v & 0x7F)
    }

    /// Decodes `septets` packed septets from septet index `startingAt`.
    public static func decode(_ b: UnsafeRawBufferPointer, septets: Int, startingAt start: Int = 0) -> String {
        var out = ""
        var escape = false
        var i = start
        while i < start + septets && (i * 7) / 8 < b.count {
            let c = septet(b, i)
            i += 1
            if escape {
                escape = false
                out.append(extended(c) ?? " ")
            } else if c == 0x1B {
                escape = true
            } else {
                out.append(basic[Int(c)])
            }
        }
        return out
    }

    /// Decodes a USSD string (TS 23.038 6.1.2.3.1): as many septets as the octets hold, a carriage return that
    /// only pads the last octet removed.
    public static func decodeUSSD(_ b: UnsafeRawBufferPointer) -> String {
        let septets = b.count * 8 / 7
        var s = decode(b, septets: septets)
        if b.count * 8 % 7 == 0, s.hasSuffix("\r") { s.removeLast() }
        return s
    }
}

/// UCS-2 (big-endian UTF-16, surrogate pairs accepted) text.
public enum UCS2 {
    public static func decode(_ b: UnsafeRawBufferPointer) -> String {
        var units: [UInt16] = []
        units.reserveCapacity(b.count / 2)
        var i = 0
        while i + 1 < b.count {
            units.append(b.be16(i))
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }
}

/// One GSM layer-3 message a phone sent or received, with what matters for the verdict.
public enum GSMMessage: Sendable {
    /// Mobility management (location updating request/accept, identity response, CM service request, IMSI detach,
    /// TMSI reallocation...): the identities it carries.
    case mobility(type: UInt8, name: String, identities: [MobileIdentity])
    /// Call control SETUP: the called number (mobile-originated) or calling number (mobile-terminated).
    case callSetup(number: PhoneNumber?)
    /// An SMS relayed by CP-DATA/RP-DATA: the SMSC (RP address) and the TPDU.
    case sms(SMSMessage, relayReference: UInt8, serviceCentre: PhoneNumber?)
    /// A USSD string (SS REGISTER/FACILITY carrying a MAP processUnstructuredSS-Request or unstructuredSS-Request).
    case ussd(String, dataCodingScheme: UInt8)
    /// Another message: protocol discriminator and type.
    case other(protocol: UInt8, type: UInt8)
    /// A message whose elements break off.
    case malformed(protocol: UInt8, type: UInt8, offset: Int)

    public static func mmName(_ t: UInt8) -> String {
        switch t {
        case 0x01: "imsi-detach-indication"
        case 0x02: "location-updating-accept"
        case 0x04: "location-updating-reject"
        case 0x08: "location-updating-request"
        case 0x18: "identity-request"
        case 0x19: "identity-response"
        case 0x1A: "tmsi-reallocation-command"
        case 0x1B: "tmsi-reallocation-complete"
        case 0x21: "cm-service-accept"
        case 0x24: "cm-service-request"
        case 0x29: "cm-reestablishment-request"
        case 0x12: "authentication-request"
        case 0x14: "authentication-response"
        default: "mm-type-\(t)"
        }
    }

    /// Parses a layer-3 message (TS 24.007 11.2: protocol discriminator in the low nibble of the first octet).
    public static func parse(_ b: UnsafeRawBufferPointer, uplink: Bool) -> GSMMessage? {
        guard b.count >= 2 else { return nil }
        let pd = b.u8(0) & 0x0F
        let type = b.u8(1) & 0x3F  // bits 7-8: send sequence number (uplink, R99)
        switch pd {
        case 5: return mobility(b, type: type)
        case 6 where b.u8(1) == 0x27: return mobility(b, type: 0x27, protocol: 6)  // RR paging response
        case 3 where type == 0x05: return callSetup(b, uplink: uplink)
        case 9 where b.u8(1) == 0x01: return smsCP(b, uplink: uplink)
        case 0x0B where type == 0x3B || type == 0x3A || type == 0x2A: return supplementary(b, type: type)
        default: return .other(protocol: pd, type: b.u8(1))
        }
    }

    static func mobility(_ b: UnsafeRawBufferPointer, type: UInt8, protocol pd: UInt8 = 5) -> GSMMessage {
        var ids: [MobileIdentity] = []
        // Offset of the mandatory mobile identity (LV) by message type.
        let at: Int?
        switch type {
        case 0x08: at = 2 + 1 + 5 + 1  // LU type + ciphering key, LAI (5), classmark 1 (1)
        case 0x19: at = 2
        case 0x24: at = 2 + 1 + 4  // CM service type + key, classmark 2 (LV, 4 octets with its length)
        case 0x27 where pd == 6: at = 2 + 1 + 4  // paging response: key sequence, classmark 2
        case 0x01: at = 2 + 1  // classmark 1
        case 0x1A: at = 2 + 5  // LAI
        default: at = nil
        }
        if let at, at < b.count {
            let length = Int(b.u8(at))
            guard at + 1 + length <= b.count else { return .malformed(protocol: pd, type: type, offset: at) }
            if let id = MobileIdentity.parse(UnsafeRawBufferPointer(rebasing: b[(at + 1)..<(at + 1 + length)])) { ids.append(id) }
        }
        // Location updating accept: an optional mobile identity (IEI 0x17), the new TMSI.
        if type == 0x02, b.count > 2 + 5 + 2, b.u8(7) == 0x17 {
            let length = Int(b.u8(8))
            if 9 + length <= b.count, let id = MobileIdentity.parse(UnsafeRawBufferPointer(rebasing: b[9..<(9 + length)])) { ids.append(id) }
        }
        return .mobility(type: type, name: pd == 6 ? "paging-response" : mmName(type), identities: ids)
    }

    static func callSetup(_ b: UnsafeRawBufferPointer, uplink: Bool) -> GSMMessage {
        var i = 2
        // Optional IEs (TLV and TV); the called (0x5E) or calling (0x5C) party BCD number.
        let wanted: UInt8 = uplink ? 0x5E : 0x5C
        while i < b.count {
            let iei = b.u8(i)
            if iei & 0x80 != 0 { i += 1; continue }  // type 1 and 2 IEs: one octet
            guard i + 1 < b.count else { return .malformed(protocol: 3, type: 5, offset: i) }
            let length = Int(b.u8(i + 1))
            guard i + 2 + length <= b.count else { return .malformed(protocol: 3, type: 5, offset: i) }
            if iei == wanted, length >= 1 {
                let toa = b.u8(i + 2)
                var start = i + 3
                if toa & 0x80 == 0 { start += 1 }  // octet 3a (presentation) present
                let digits = start < i + 2 + length ? PhoneNumber.bcdDigits(UnsafeRawBufferPointer(rebasing: b[start..<(i + 2 + length)])) : ""
                return .callSetup(number: PhoneNumber(digits: digits, typeOfNumber: (toa >> 4) & 0x07, numberingPlan: toa & 0x0F))
            }
            i += 2 + length
        }
        return .callSetup(number: nil)
    }

    /// CP-DATA (TS 24.011 7.2.1) and the RP-DATA inside (7.3.1): RP message reference, originator and destination
    /// addresses (the SMSC for a mobile-originated message), and the TPDU.
    static func smsCP(_ b: UnsafeRawBufferPointer, uplink: Bool) -> GSMMessage {
        guard b.count >= 3 else { return .malformed(protocol: 9, type: 1, offset: 2) }
        let length = Int(b.u8(2))
        guard 3 + length <= b.count, length >= 2 else { return .malformed(protocol: 9, type: 1, offset: 2) }
        let rp = UnsafeRawBufferPointer(rebasing: b[3..<(3 + length)])
        let mti = rp.u8(0) & 0x07
        guard mti == 0 || mti == 1 else { return .other(protocol: 9, type: 1) }  // RP-DATA either way
        let reference = rp.u8(1)
        var i = 2
        var addresses: [PhoneNumber?] = []
        for _ in 0..<2 {
            guard i < rp.count else { return .malformed(protocol: 9, type: 1, offset: 3 + i) }
            let n = Int(rp.u8(i))
            guard i + 1 + n <= rp.count else { return .malformed(protocol: 9, type: 1, offset: 3 + i) }
            if n >= 1 {
                let toa = rp.u8(i + 1)
                addresses.append(PhoneNumber(digits: PhoneNumber.bcdDigits(UnsafeRawBufferPointer(rebasing: rp[(i + 2)..<(i + 1 + n)])),
                                             typeOfNumber: (toa >> 4) & 0x07, numberingPlan: toa & 0x0F))
            } else {
                addresses.append(nil)
            }
            i += 1 + n
        }
        guard i < rp.count else { return .malformed(protocol: 9, type: 1, offset: 3 + i) }
        let n = Int(rp.u8(i))
        guard i + 1 + n <= rp.count,
              let sms = SMSMessage.parse(UnsafeRawBufferPointer(rebasing: rp[(i + 1)..<(i + 1 + n)]), mobileOriginated: mti == 0)
        else { return .malformed(protocol: 9, type: 1, offset: 3 + i) }
        // Mobile-originated: the destination address is the SMSC; mobile-terminated: the originator is.
        return .sms(sms, relayReference: reference, serviceCentre: mti == 0 ? addresses[1] : addresses[0])
    }

    /// SS REGISTER/FACILITY: the Facility IE (0x1C) holds a TCAP-like component whose parameter carries the
    /// USSD data coding scheme and string (BER: SEQUENCE { OCTET STRING dcs, OCTET STRING string }).
    static func supplementary(_ b: UnsafeRawBufferPointer, type: UInt8) -> GSMMessage {
        // FACILITY: the facility is mandatory, LV at octet 3; REGISTER and RELEASE COMPLETE: TLV IEs (0x1C).
        if type == 0x3A {
            guard b.count >= 3, 3 + Int(b.u8(2)) <= b.count else { return .malformed(protocol: 0x0B, type: type, offset: 2) }
            if let (dcs, text) = ussd(inFacility: UnsafeRawBufferPointer(rebasing: b[3..<(3 + Int(b.u8(2)))])) {
                return .ussd(text, dataCodingScheme: dcs)
            }
            return .other(protocol: 0x0B, type: type)
        }
        var i = 2
        while i + 1 < b.count {
            let iei = b.u8(i)
            let length = Int(b.u8(i + 1))
            guard i + 2 + length <= b.count else { return .malformed(protocol: 0x0B, type: type, offset: i) }
            if iei == 0x1C, let (dcs, text) = ussd(inFacility: UnsafeRawBufferPointer(rebasing: b[(i + 2)..<(i + 2 + length)])) {
                return .ussd(text, dataCodingScheme: dcs)
            }
            i += 2 + length
        }
        return .other(protocol: 0x0B, type: type)
    }

    /// Finds the first SEQUENCE holding two OCTET STRINGs (dcs of one octet, then the string) in BER data.
    static func ussd(inFacility b: UnsafeRawBufferPointer) -> (UInt8, String)? {
        func element(_ at: Int) -> (tag: UInt8, start: Int, end: Int)? {
            guard at + 2 <= b.count else { return nil }
            var length = Int(b.u8(at + 1))
            var start = at + 2
            if length & 0x80 != 0 {
                let n = length & 0x7F
                guard n >= 1, n <= 2, at + 2 + n <= b.count else { return nil }
                length = 0
                for k in 0..<n { length = length << 8 | Int(b.u8(at + 2 + k)) }
                start += n
            }
            guard start + length <= b.count else { return nil }
            return (b.u8(at), start, start + length)
        }
        var stack = [(0, b.count)]
        var steps = 0
        while let (from, to) = stack.popLast(), steps < 64 {
            steps += 1
            var at = from
            while at < to, let e = element(at) {
                if e.tag == 0x30, let first = element(e.start), first.tag == 0x04, first.end - first.start == 1,
                   let second = element(first.end), second.tag == 0x04 {
                    let dcs = b.u8(first.start)
                    let raw = UnsafeRawBufferPointer(rebasing: b[second.start..<second.end])
                    let text = SMSMessage.encoding(of: dcs) == .ucs2 ? UCS2.decode(raw) : GSM7.decodeUSSD(raw)
                    return (dcs, text)
                }
                if e.tag & 0x20 != 0 { stack.append((e.start, e.end)) }  // constructed: look inside
                at = e.end
            }
        }
        return nil
    }
}

/// LAPDm (TS 44.006) on the dedicated channels: frames are joined into L3 messages per channel, direction and
/// SAPI while the M bit says more follows; retransmitted I-frames (the same send sequence number again) are
/// dropped.
public struct LAPDmReassembler: Sendable {
    struct Channel: Hashable {
        var arfcn: UInt16
        var timeslot: UInt8
        var subSlot: UInt8
        var channelType: UInt8
        var uplink: Bool
        var sapi: UInt8
    }
    struct Pending {
        var bytes: [UInt8] = []
        var expected: UInt8?
    }
    private var channels: [Channel: Pending] = [:]
    /// Frames dropped as retransmissions, and messages given up because they outgrew `maximumMessage`.
    public private(set) var retransmissions = 0
    public private(set) var oversized = 0
    /// Frames cut before the end their length field gives (a snapshot length, a broken frame): not used.
    public private(set) var truncated = 0
    public static let maximumMessage = 1024
    public static let maximumChannels = 4096

    public init() {}

    /// Adds one Um payload that is a LAPDm frame; returns the complete L3 message it ends, with its SAPI.
    public mutating func add(_ frame: UnsafeRawBufferPointer, header h: GSMTAPHeader) -> (sapi: UInt8, message: [UInt8])? {
        var b = frame
        if h.channelType & 0x80 != 0 {
            guard b.count > 2 else {
                truncated += 1
                return nil
            }
            b = UnsafeRawBufferPointer(rebasing: b[2...])  // SACCH L1 header
        }
        guard b.count >= 3 else {
            truncated += 1
            return nil
        }
        let address = b.u8(0), control = b.u8(1), lengthField = b.u8(2)
        let sapi = (address >> 2) & 0x07
        let length = Int(lengthField >> 2)
        let more = lengthField & 0x02 != 0
        guard 3 + length <= b.count else {
            truncated += 1
            return nil
        }
        let info = UnsafeRawBufferPointer(rebasing: b[3..<(3 + length)])
        let key = Channel(arfcn: h.arfcn, timeslot: h.timeslot, subSlot: h.subSlot, channelType: h.channelType & 0x7F,
                          uplink: h.uplink, sapi: sapi)
        if control & 0x01 == 0 {  // I-frame
            let ns = (control >> 1) & 0x07
            var p = channels[key] ?? Pending()
            if let e = p.expected, e != ns {
                retransmissions += 1
                return nil
            }
            p.expected = (ns + 1) & 0x07
            p.bytes.append(contentsOf: info)
            if p.bytes.count > Self.maximumMessage {
                oversized += 1
                p.bytes = []
            }
            if more {
                store(key, p)
                return nil
            }
            let message = p.bytes
            p.bytes = []
            store(key, p)
            return message.isEmpty ? nil : (sapi, message)
        }
        if control & 0x03 == 0x03 {  // U-frame: SABM (0x2F/0x3F) starts the link and may carry L3; UI carries L3
            let modifier = control & 0xEF
            if modifier == 0x2F {
                store(key, Pending(bytes: [], expected: 0))
                var down = key
                down.uplink.toggle()
                store(down, Pending(bytes: [], expected: 0))
            }
            if (modifier == 0x2F || modifier == 0x03) && length > 0 { return (sapi, Array(info)) }
        }
        return nil
    }

    private mutating func store(_ key: Channel, _ p: Pending) {
        if channels[key] == nil && channels.count >= Self.maximumChannels { channels.removeAll(keepingCapacity: true) }
        channels[key] = p
    }
}
