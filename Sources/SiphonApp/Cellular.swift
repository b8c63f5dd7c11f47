public import SiphonCore

/// A GSM message as the cellular layer reports it: where it was seen, the phone on that channel, the message,
/// and for the last part of a concatenated SMS the whole text.
public struct CellularEvent: Sendable {
    public var timestamp: Timestamp
    public var frame: FrameRef
    public var header: GSMTAPHeader
    public var sapi: UInt8
    public var message: GSMMessage
    /// The phone on the channel, as the core knows it: its IMSI when a mobility message named it (directly or by
    /// a TMSI the network gave it), else its TMSI; its IMEI when it answered an identity request with one.
    public var imsi: String?
    public var tmsi: String?
    public var imei: String?
    /// A concatenated SMS completed by this part: the parts' text in order, and how many parts.
    public var assembledText: String?
    public var assembledParts = 0
    /// The frames of every part of an assembled SMS (this one last).
    public var partFrames: [FrameRef] = []

    /// The sender's identity for alerts and verdicts: IMSI, else TMSI, else IMEI.
    public var phone: (kind: String, value: String)? {
        if let v = imsi { return ("imsi", v) }
        if let v = tmsi { return ("tmsi", v) }
        if let v = imei { return ("imei", v) }
        return nil
    }
}

/// The GSM side of a capture: GSMTAP payloads (from UDP port 4729 or the GSMTAP link type) decoded into
/// identities, calls, SMS and USSD, each attributed to the phone that holds the channel. Malformed messages are
/// counted, never fatal.
public final class CellularLayer {
    public private(set) var events: [CellularEvent] = []
    /// GSMTAP payloads read, L3 messages decoded, messages whose elements broke off, payloads that were not
    /// GSMTAP or not the GSM Um.
    public private(set) var gsmtapPackets: UInt64 = 0
    public private(set) var messages: UInt64 = 0
    public private(set) var malformed: UInt64 = 0
    public private(set) var notGSM: UInt64 = 0
    /// GSMTAP packets cut inside their header.
    public private(set) var truncated: UInt64 = 0
    private var lapdm = LAPDmReassembler()
    public var lapdmRetransmissions: Int { lapdm.retransmissions }
    /// LAPDm frames cut short (not used), and messages dropped for outgrowing the reassembly limit.
    public var lapdmTruncated: Int { lapdm.truncated + lapdm.oversized }

    struct Channel: Hashable {
        var arfcn: UInt16
        var timeslot: UInt8
        var subSlot: UInt8
        var channelType: UInt8
    }
    struct Owner {
        var imsi: String?
        var tmsi: String?
        var imei: String?
    }
    private var owners: [Channel: Owner] = [:]
    private var imsiOfTMSI: [String: String] = [:]
    private var imeiOfIMSI: [String: String] = [:]
    /// Shared with the detectors' tables (the scan's `TableBudget`): each TMSI → IMSI and IMSI → IMEI link taken.
    public var tableBudget = TableBudget()
    /// Records `value` under `key` in a link table, if it is already there or its budget has room.
    private func link(_ table: inout [String: String], _ key: String, _ value: String) {
        guard table[key] != nil || tableBudget.take(TableBudget.Cost.identityLink) else { return }
        table[key] = value
    }
    struct Concatenation: Hashable {
        var phone: String
        var number: String
        var reference: UInt16
    }
    private var parts: [Concatenation: [UInt8: (String, FrameRef)]] = [:]
    /// Concatenated SMS left incomplete (at the end, or pushed out by `maximumPending`).
    public private(set) var incompleteConcatenations = 0
    public static let maximumPending = 1024

    public init() {}

    /// Takes the events produced since the last call.
    public func takeEvents() -> [CellularEvent] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// One GSMTAP packet (header and payload).
    public func feed(_ b: UnsafeRawBufferPointer, timestamp: Timestamp, frame: FrameRef) {
        guard let h = GSMTAPHeader.parse(b) else {
            // A GSMTAP version byte with too few bytes for its header: cut, not another protocol.
            if b.count >= 1, b.u8(0) == 2 || b.u8(0) == 3, b.count < 16 || Int(b.u8(min(1, b.count - 1))) * 4 > b.count {
                truncated += 1
            } else {
                notGSM += 1
            }
            return
        }
        guard h.type == 1 else {
            notGSM += 1
            return
        }
        gsmtapPackets += 1
        let payload = UnsafeRawBufferPointer(rebasing: b[h.length...])
        if h.carriesLAPDm {
            guard let (sapi, message) = lapdm.add(payload, header: h) else { return }
            message.withUnsafeBytes { l3(UnsafeRawBufferPointer($0), header: h, sapi: sapi, timestamp: timestamp, frame: frame) }
        } else {
            // Broadcast and common control channels: an L2 pseudo-length octet, then L3 (paging, assignments).
            guard payload.count > 1 else { return }
            l3(UnsafeRawBufferPointer(rebasing: payload[1...]), header: h, sapi: 0, timestamp: timestamp, frame: frame)
        }
    }

    private func l3(_ b: UnsafeRawBufferPointer, header h: GSMTAPHeader, sapi: UInt8, timestamp: Timestamp, frame: FrameRef) {
        guard let m = GSMMessage.parse(b, uplink: h.uplink) else { return }
        messages += 1
        let channel = Channel(arfcn: h.arfcn, timeslot: h.timeslot, subSlot: h.subSlot, channelType: h.channelType & 0x7F)
        var owner = owners[channel] ?? Owner()
        switch m {
        case .mobility(let type, _, let ids):
            for id in ids {
                switch (id.kind, h.uplink) {
                case (.imsi, _):
                    owner.imsi = id.value
                case (.tmsi, true):
                    owner.tmsi = id.value
                    if let imsi = imsiOfTMSI[id.value] { owner.imsi = imsi }
                case (.tmsi, false) where type == 0x02 || type == 0x1A:  // a new TMSI for the phone on the channel
                    owner.tmsi = id.value
                    if let imsi = owner.imsi { link(&imsiOfTMSI, id.value, imsi) }
                case (.imei, true):
                    owner.imei = id.value
                case (.imeisv, true):
                    owner.imei = GTPControlMessage.imei(fromIMEISV: id.value)
                default: break
                }
            }
            if let imsi = owner.imsi, let imei = owner.imei { link(&imeiOfIMSI, imsi, imei) }
        case .malformed:
            malformed += 1
        case .other(let pd, let type) where pd == 6 && type & 0x3F == 0x0D:
            // RR channel release: the next phone on this channel is another.
            owners[channel] = nil
            return
        default:
            break
        }
        if owner.imei == nil, let imsi = owner.imsi { owner.imei = imeiOfIMSI[imsi] }
        if owners[channel] == nil, owners.count >= 4096 { owners.removeAll(keepingCapacity: true) }
        owners[channel] = owner
        if case .other = m { return }
        var e = CellularEvent(timestamp: timestamp, frame: frame, header: h, sapi: sapi, message: m,
                              imsi: owner.imsi, tmsi: owner.tmsi, imei: owner.imei)
        if case .sms(let sms, _, _) = m, let c = sms.concatenation, c.parts > 1, c.part >= 1, c.part <= c.parts {
            let key = Concatenation(phone: e.phone.map { $0.kind + ":" + $0.value } ?? "", number: sms.number?.description ?? "",
                                    reference: c.reference)
            if parts[key] == nil, parts.count >= Self.maximumPending, let any = parts.keys.first {
                parts[any] = nil
                incompleteConcatenations += 1
            }
            parts[key, default: [:]][c.part] = (sms.text ?? String(decoding: sms.userData, as: UTF8.self), frame)
            if let got = parts[key], got.count == Int(c.parts) {
                let ordered = (1...c.parts).compactMap { got[$0] }
                e.assembledText = ordered.map(\.0).joined()
                e.assembledParts = Int(c.parts)
                e.partFrames = ordered.map(\.1)
                parts[key] = nil
            }
        }
        events.append(e)
    }

    /// Counts the concatenated SMS still waiting for parts (call at the end).
    public func finish() {
        incompleteConcatenations += parts.count
        parts.removeAll()
    }
}
