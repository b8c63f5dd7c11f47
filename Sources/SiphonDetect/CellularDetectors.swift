public import SiphonCore
import SiphonFlows
public import SiphonGeo
public import SiphonApp

/// A phone and a number it exchanged SMS or calls with.
public struct NumberPair: Hashable, Sendable {
    public var device: DeviceID
    /// The number as `PhoneNumber.description` gives it (`+` and digits for an international one).
    public var number: String
}

/// What a phone exchanged with one number.
public struct NumberTotals: Sendable {
    public var number: PhoneNumber
    public var info: NumberInfo?
    public var smsSent = 0
    public var smsReceived = 0
    public var calls = 0
    /// Characters of SMS text sent (bytes for 8-bit data).
    public var textSent = 0
    public var first: Timestamp
    public var last: Timestamp
    /// Times of the SMS and calls the phone sent (at most `EndpointTotals.maximumContacts`), and their packets.
    public var contacts: [Timestamp] = []
    public var frames: [FrameRef] = []
}

extension DetectionEngine {
    /// The identity of the phone a GSM event is from: IMSI, else TMSI, else IMEI.
    static func phone(of e: CellularEvent) -> DeviceID {
        let unknown = DeviceID.tmsi("unknown")!
        guard let (kind, value) = e.phone else { return unknown }
        switch kind {
        case "imsi": return DeviceID.imsi(value) ?? unknown
        case "tmsi": return DeviceID.tmsi(value) ?? unknown
        default: return DeviceID.imei(value) ?? unknown
        }
    }

    /// A GSM message (GSMTAP): SMS and calls go to the numbers' ledger and are judged; identities name phones.
    /// - `foreign-endpoint`: an SMS or a call to (or an SMS from) a number abroad: low when the phone sent it, info
    ///   when it received it; medium to a premium-rate or shared-cost number, home or abroad. Once per phone ×
    ///   number.
    /// - `identifier-leak`: identifiers in the text of an SMS the phone sent (a concatenated SMS as a whole): high
    ///   for a handset or SIM identifier to a number abroad, medium at home.
    /// - `foreign-upload`: SMS text to one number abroad past 300 characters (low), past 2,000 (medium).
    /// - `beaconing`: SMS sent to one number at regular intervals, judged as the IP series are.
    /// Whether a number alert is raised for the first time (remembered when the tables' budget has room; beyond it,
    /// raised again rather than forgotten).
    func firstNumberAlert(_ key: String) -> Bool {
        tableBudget.firstTime(key, in: &numberAlerts, cost: TableBudget.Cost.numberAlert)
    }

    public func cellular(_ e: CellularEvent, number info: NumberInfo?) {
        learn(.imsi, e.imsi)
        learn(.imei, e.imei)
        let id = Self.phone(of: e)
        if e.imsi != nil || e.tmsi != nil || e.imei != nil, gsmPhones[id] != nil || tableBudget.take(TableBudget.Cost.subscriber) {
            var s = gsmPhones[id] ?? Subscriber(imsi: e.imsi)
            s.imei = e.imei ?? s.imei
            s.tmsi = e.tmsi ?? s.tmsi
            gsmPhones[id] = s
        }
        contextFrames = e.partFrames.isEmpty ? [e.frame] : e.partFrames
        defer { contextFrames = [] }
        let sent = e.header.uplink
        let number: PhoneNumber
        var text: String?
        var isSMS = false
        switch e.message {
        case .sms(let sms, _, _):
            guard let n = sms.number, sms.kind != .other else { return }
            number = n
            isSMS = true
            // A part of a concatenated SMS is judged with the whole once the last part is in.
            if let c = sms.concatenation, c.parts > 1 {
                text = e.assembledText
            } else {
                text = sms.text ?? String(decoding: sms.userData, as: UTF8.self)
            }
        case .callSetup(let n?):
            number = n
        default:
            return
        }
        let pair = NumberPair(device: id, number: number.description)
        // A new phone × number pair takes its share of the tables' budget; beyond it, it is not judged.
        guard var t = numberLedger.removeValue(forKey: pair)
            ?? (tableBudget.take(TableBudget.Cost.numberPair) ? NumberTotals(number: number, info: info, first: e.timestamp, last: e.timestamp) : nil)
        else { return }
        defer { numberLedger[pair] = t }
        if e.timestamp < t.first { t.first = e.timestamp }
        if t.last < e.timestamp { t.last = e.timestamp }
        if isSMS {
            if sent { t.smsSent += 1 } else { t.smsReceived += 1 }
        } else {
            t.calls += 1
        }
        if sent, case .sms(let sms, _, _) = e.message { t.textSent += sms.text?.count ?? sms.userData.count }
        if sent && t.contacts.count < EndpointTotals.maximumContacts {
            t.contacts.append(e.timestamp)
            t.frames.append(e.frame)
        }
        let foreign = info?.scope == .foreign
        let premium = info?.isPremium == true
        let place = Self.numberPlace(info)
        func raise(_ category: AlertCategory, _ rule: String, _ severity: Severity, _ message: String, _ evidence: [(String, EvidenceValue)]) {
            var a = Alert(category: category, rule: rule, severity: severity, message: message, timestamp: e.timestamp,
                          flow: Flow(key: FlowKey(a: IPAddress(ipv4: 0), portA: 0, b: IPAddress(ipv4: 0), portB: 0, ipProtocol: 0, vlan: 0),
                                     id: 0, initiatorIsA: true, start: e.timestamp),
                          device: IPAddress(ipv4: 0), deviceID: id, destination: nil, evidence: evidence)
            a.hasFlow = false
            a.frames = contextFrames
            a.numberRecord = AlertNumber(number, info)
            raised.append(a)
        }
        let common: [(String, EvidenceValue)] = [
            ("number", .string(number.description)), ("country", .string(info?.country ?? "unknown")),
            ("calling_code", .string(info?.callingCode ?? "unknown")), ("number_kind", .string(info?.kind ?? "unknown")),
        ]
        if (foreign || premium) && configuration.on(.foreignEndpoint) && firstNumberAlert("fe \(id) \(pair.number)") {
            let severity: Severity = premium ? .medium : sent ? .low : .info
            let verb = isSMS ? (sent ? "sent an SMS to" : "received an SMS from") : (sent ? "called" : "was called by")
            raise(.foreignEndpoint, premium ? "siphon.foreign-endpoint.premium-number" : "siphon.foreign-endpoint.number", severity,
                  "\(id) \(verb) \(number)\(place)", common + [("direction", .string(sent ? "mo" : "mt"))])
        }
        guard sent else { return }
        if let text, !text.isEmpty, configuration.on(.identifierLeak) {
            var matches: [IdentifierMatch] = []
            identifierScanner.scan(Array(text.utf8), into: &matches)
            var byKind: [IdentifierKind: [IdentifierMatch]] = [:]
            for m in matches where m.kind != .phone || m.value.filter(\.isNumber) != number.digits { byKind[m.kind, default: []].append(m) }
            for kind in IdentifierKind.allCases {
                guard let list = byKind[kind], firstNumberAlert("il \(id) \(pair.number) \(kind.rawValue)") else { continue }
                let m = list.first { $0.known } ?? list[0]
                let strong = kind.isStrong || list.contains(where: \.known)
                let severity: Severity = strong ? (foreign ? .high : .medium) : (foreign ? .medium : .low)
                let how = m.encoding == "plain" ? "" : " (\(m.encoding))"
                raise(.identifierLeak, "siphon.identifier-leak.\(kind.rawValue)", severity,
                      "\(id) sent \(m.known ? "its" : kind.article) \(kind.label) \(m.value)\(how) by SMS to \(number)\(place)",
                      common + [
                        ("kind", .string(kind.rawValue)), ("value", .string(m.value)), ("encoding", .string(m.encoding)),
                        ("known", .string(m.known ? "yes" : "no")), ("where", .string("sms text")),
                        ("offset", .int(m.offset)), ("length", .int(m.length)), ("excerpt", .string(m.excerpt)),
                        ("parts", .int(max(1, e.assembledParts))),
                      ])
            }
        }
        if foreign && configuration.on(.foreignUpload) {
            for (limit, severity) in [(2000, Severity.medium), (300, .low)] where t.textSent >= limit {
                if firstNumberAlert("fu \(id) \(pair.number) \(limit)") {
                    raise(.foreignUpload, "siphon.foreign-upload.sms", severity,
                          "\(id) sent \(t.textSent) characters in \(t.smsSent) SMS to \(number)\(place)",
                          common + [("characters", .int(t.textSent)), ("sms", .int(t.smsSent))])
                }
                break
            }
        }
        let b = configuration.beacons
        if isSMS && t.contacts.count >= b.minimumContacts && configuration.on(.beaconing)
            && !numberAlerts.contains("bc \(id) \(pair.number)") {
            let times = t.contacts.map { Double($0.nanoseconds) / 1e9 }
            if let score = BeaconScore(times: times, configuration: b), score.isBeacon(b) {
                _ = firstNumberAlert("bc \(id) \(pair.number)")
                contextFrames = t.frames
                raise(.beaconing, "siphon.beaconing.sms", foreign ? .medium : .low,
                      "\(id) sends an SMS to \(number)\(place) every \(Self.seconds(score.medianInterval)) (\(score.contacts) SMS)",
                      common + [
                        ("contacts", .int(score.contacts)), ("median_interval_s", .double(score.medianInterval)),
                        ("deviation_s", .double(score.deviation)), ("regular_fraction", .double(score.regularFraction)),
                      ])
            }
        }
    }

    /// " [CN, premium-rate]" for an alert's text.
    static func numberPlace(_ info: NumberInfo?) -> String {
        guard let info else { return "" }
        let parts = [info.country ?? "+" + info.callingCode, info.kind].compactMap { $0 }
        return " [" + parts.joined(separator: ", ") + "]"
    }

    static func seconds(_ s: Double) -> String {
        s >= 120 ? String(format: "%.1f min", s / 60) : String(format: "%.1f s", s)
    }
}
