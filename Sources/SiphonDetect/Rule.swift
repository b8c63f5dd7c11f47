public import SiphonCore
internal import SiphonFlows
internal import SiphonGeo
public import SiphonApp

/// What the application layer said of one flow, kept until the flow ends for the detectors and the rules.
public struct FlowFacts: Sendable {
    public var sni: String?
    public var ja3: String?
    public var ja4: String?
    public var ja3s: String?
    /// The version the server chose, or the highest one the client offered when no ServerHello was seen.
    public var tlsVersion: UInt16?
    public var serverHelloSeen = false
    public var certificate: X509Summary?
    public var httpMethods: [String] = []
    public var httpURIs: [String] = []
    public var userAgents: [String] = []
    public var httpBodyBytes = 0
    /// Whether a request's Host header was an address (no name: a hard-coded server).
    public var httpHostIsAddress = false
    /// The longest Cookie header value the device sent.
    public var httpCookieBytes = 0
    /// Whether a request's Referer named the request itself (`http://<Host><URI>`).
    public var httpRefererSelf = false
    public init() {}

    /// TLS/SSL version names as Wireshark prints them.
    public static func versionName(_ v: UInt16) -> String {
        switch v {
        case 0x0002: "SSLv2"
        case 0x0300: "SSLv3"
        case 0x0301: "TLS 1.0"
        case 0x0302: "TLS 1.1"
        case 0x0303: "TLS 1.2"
        case 0x0304: "TLS 1.3"
        default: String(format: "0x%04x", v)
        }
    }
}

/// What a declarative rule sees when a device's flow ends: the flow, the device × endpoint totals including it,
/// and the flow's application facts.
public struct RuleContext {
    public var flow: EndedFlow
    public var totals: EndpointTotals?
    public var facts: FlowFacts
    public init(flow: EndedFlow, totals: EndpointTotals?, facts: FlowFacts) {
        self.flow = flow
        self.totals = totals
        self.facts = facts
    }
}

/// The type of a rule field, which decides the operators allowed on it.
public enum FieldType: String, Sendable {
    case int, double, string, strings, bool, address
}

/// One field's value for one flow.
public enum FieldValue {
    case int(Int), double(Double), string(String), strings([String]), bool(Bool), address(IPAddress)

    var text: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.2f", v)
        case .string(let v): v
        case .strings(let v): v.isEmpty ? "-" : v.joined(separator: ", ")
        case .bool(let v): v ? "true" : "false"
        case .address(let v): v.description
        }
    }
}

/// A field rules can test: its name, type, meaning and how to read it.
public struct RuleField: Sendable {
    public let name: String
    public let type: FieldType
    public let help: String
    let get: @Sendable (RuleContext) -> FieldValue?

    /// Every field, by name (the rule-pack reference in docs/rules.md lists them).
    public static let all: [String: RuleField] = {
        var d: [String: RuleField] = [:]
        func add(_ name: String, _ type: FieldType, _ help: String, _ get: @escaping @Sendable (RuleContext) -> FieldValue?) {
            d[name] = RuleField(name: name, type: type, help: help, get: get)
        }
        @Sendable func text(_ s: String?) -> FieldValue? { s.map { .string($0) } }
        add("app", .string, "application protocol identified by content (tls, http, dns, quic, ssh, mqtt..., unknown)") { .string($0.flow.app) }
        add("proto", .string, "transport: TCP, UDP, ICMP or the IP protocol number") {
            switch $0.flow.flow.key.ipProtocol {
            case 6: .string("TCP")
            case 17: .string("UDP")
            case 1, 58: .string("ICMP")
            case let p: .string(String(p))
            }
        }
        add("device", .address, "the device's address (the flow's initiator)") { .address($0.flow.flow.clientAddress) }
        add("dest_ip", .address, "the endpoint's address (the flow's responder)") { .address($0.flow.flow.serverAddress) }
        add("dest_port", .int, "the endpoint's port") { .int(Int($0.flow.flow.serverPort)) }
        add("src_port", .int, "the device's port") { .int(Int($0.flow.flow.clientPort)) }
        add("dest_country", .string, "located country of the endpoint (ISO 3166 code)") { text($0.flow.destination?.country) }
        add("dest_registered_country", .string, "country the endpoint's address is registered in") { text($0.flow.destination?.registeredCountry) }
        add("dest_asn", .int, "autonomous system number of the endpoint") { $0.flow.destination?.asn.map { .int(Int($0)) } }
        add("dest_as_org", .string, "owner of that autonomous system") { text($0.flow.destination?.asOrganization) }
        add("dest_scope", .string, "local, home, foreign or unknown") {
            .string($0.flow.destination?.scope.rawValue ?? (AddressScope.isLocal($0.flow.flow.serverAddress) ? "local" : "unknown"))
        }
        add("names", .strings, "names known for the endpoint: DNS answers before the flow, SNI, HTTP Host") { .strings($0.flow.names) }
        add("resolved", .bool, "whether a DNS answer seen before the flow gave the endpoint's address") { .bool(!$0.flow.resolvedNames.isEmpty) }
        add("sent_bytes", .int, "application bytes the device sent in this flow") { .int($0.flow.sent) }
        add("received_bytes", .int, "application bytes the device received in this flow") { .int($0.flow.received) }
        add("ratio", .double, "sent_bytes / received_bytes (received counted as at least 1)") {
            .double(Double($0.flow.sent) / Double(max($0.flow.received, 1)))
        }
        add("duration_s", .double, "flow duration in seconds") { .double(($0.flow.flow.end - $0.flow.flow.start).secondsDouble) }
        add("packets_sent", .int, "packets from the device") { .int(Int($0.flow.flow.client.packets)) }
        add("packets_received", .int, "packets from the endpoint") { .int(Int($0.flow.flow.server.packets)) }
        add("state", .string, "how the flow ended: closed, reset, timeout, open-at-end") { .string($0.flow.flow.state.description) }
        add("midstream", .bool, "a TCP flow that began before the capture") { .bool($0.flow.midstream) }
        add("ioc", .bool, "whether the endpoint's address or a name is in a loaded indicator feed") { .bool($0.flow.indicator != nil) }
        add("ioc_source", .string, "the feed of that indicator") { text($0.flow.indicator?.source) }
        add("sni", .string, "TLS server name") { text($0.facts.sni) }
        add("ja3", .string, "JA3 hash of the ClientHello") { text($0.facts.ja3) }
        add("ja4", .string, "JA4 fingerprint of the ClientHello") { text($0.facts.ja4) }
        add("ja3s", .string, "JA3S hash of the ServerHello") { text($0.facts.ja3s) }
        add("tls_version", .string, "negotiated TLS version: SSLv3, TLS 1.0 ... TLS 1.3") { $0.facts.tlsVersion.map { .string(FlowFacts.versionName($0)) } }
        add("cert_subject", .string, "subject of the server's certificate (TLS 1.2 and older)") { text($0.facts.certificate?.subject) }
        add("cert_issuer", .string, "issuer of the server's certificate") { text($0.facts.certificate?.issuer) }
        add("cert_sha1", .string, "SHA-1 fingerprint of that certificate (lower-case hex with colons, as openssl prints it)") {
            text($0.facts.certificate?.sha1)
        }
        add("cert_self_signed", .bool, "whether that certificate's subject is its issuer") { $0.facts.certificate.map { .bool($0.selfIssued) } }
        add("cert_names", .strings, "DNS names of that certificate (SANs, else its CN)") { $0.facts.certificate.map { .strings($0.dnsNames) } }
        add("http_method", .strings, "HTTP request methods of the flow") { .strings($0.facts.httpMethods) }
        add("http_uri", .strings, "HTTP request URIs of the flow") { .strings($0.facts.httpURIs) }
        add("http_user_agent", .strings, "HTTP User-Agent values of the flow") { .strings($0.facts.userAgents) }
        add("http_host_ip", .bool, "whether a request's Host header was an IP address, not a name") { .bool($0.facts.httpHostIsAddress) }
        add("http_cookie_bytes", .int, "length of the longest Cookie header the device sent in this flow") { .int($0.facts.httpCookieBytes) }
        add("http_referer_self", .bool, "whether a request's Referer named the request itself (http://<its Host><its URI>)") {
            .bool($0.facts.httpRefererSelf)
        }
        add("http_body_bytes", .int, "HTTP request body bytes the device sent in this flow") { .int($0.facts.httpBodyBytes) }
        add("flows", .int, "flows between the device and the endpoint so far") { $0.totals.map { .int($0.flows) } }
        add("total_sent_bytes", .int, "bytes the device sent to the endpoint so far (all flows)") { $0.totals.map { .int($0.sent) } }
        add("total_received_bytes", .int, "bytes the device received from the endpoint so far") { $0.totals.map { .int($0.received) } }
        add("total_ratio", .double, "total_sent_bytes / total_received_bytes") {
            $0.totals.map { .double(Double($0.sent) / Double(max($0.received, 1))) }
        }
        return d
    }()
}

/// A comparison operator of a rule condition.
public enum RuleOperator: String, Sendable, CaseIterable {
    case eq, ne, `in`, notIn = "not_in", gt, ge, lt, le, matches, suffix, contains

    /// The operators each field type accepts.
    static func allowed(for type: FieldType) -> [RuleOperator] {
        switch type {
        case .int, .double: [.eq, .ne, .in, .notIn, .gt, .ge, .lt, .le]
        case .string, .strings: [.eq, .ne, .in, .notIn, .matches, .suffix, .contains]
        case .bool: [.eq, .ne]
        case .address: [.eq, .ne, .in, .notIn]
        }
    }
}

/// The constant side of a comparison, parsed and checked when the pack loads.
public enum RuleOperand: @unchecked Sendable {
    case number(Double)
    case numbers([Double])
    case text(String)
    case texts([String])
    case bool(Bool)
    case networks([IPNetwork])
    case regex(Regex<AnyRegexOutput>)
}

/// A rule's condition: comparisons of fields combined with all/any/not.
public indirect enum RuleCondition: Sendable {
    case all([RuleCondition])
    case any([RuleCondition])
    case not(RuleCondition)
    case test(RuleField, RuleOperator, RuleOperand)

    struct Compiled: Sendable {
        let test: @Sendable (RuleContext) -> Bool
    }

    /// Facts of a flow without which a condition cannot hold.
    struct Needs: OptionSet, Sendable {
        let rawValue: UInt8
        /// A server certificate: every `cert_*` field has no value without one, and a field with no value makes
        /// every comparison false.
        static let certificate = Needs(rawValue: 1)
        /// An HTTP request: the `http_*` lists are empty without one (a positive test on an empty list is false),
        /// `http_host_ip` and `http_referer_self` are false.
        static let http = Needs(rawValue: 2)

        /// What the flow in `c` has.
        static func of(_ c: RuleContext) -> Needs {
            var n: Needs = []
            if c.facts.certificate != nil { n.insert(.certificate) }
            if !c.facts.httpMethods.isEmpty { n.insert(.http) }
            return n
        }
    }

    /// What this condition needs: a test on a certificate field needs a certificate; a positive test on an HTTP
    /// list, or `true` asked of an HTTP flag, needs a request; `all` needs what any part needs, `any` what every
    /// part needs, `not` nothing.
    var needs: Needs {
        switch self {
        case .all(let cs): return cs.reduce(into: []) { $0.formUnion($1.needs) }
        case .any(let cs): return cs.dropFirst().reduce(cs.first?.needs ?? []) { $0.intersection($1.needs) }
        case .not: return []
        case .test(let field, let op, let operand):
            if field.name.hasPrefix("cert_") { return .certificate }
            switch (field.name, op, operand) {
            case ("http_method", _, _), ("http_uri", _, _), ("http_user_agent", _, _):
                return [.eq, .in, .matches, .suffix, .contains].contains(op) ? .http : []
            case ("http_host_ip", .eq, .bool(true)), ("http_host_ip", .ne, .bool(false)),
                 ("http_referer_self", .eq, .bool(true)), ("http_referer_self", .ne, .bool(false)):
                return .http
            default:
                return []
            }
        }
    }

    /// The condition as closures: each node's values are captured once.
    func compiled() -> @Sendable (RuleContext) -> Bool {
        switch self {
        case .all(let cs):
            // Kept in a struct: an array of bare closures holds them at the generic abstraction, and every call went
            // through a reabstraction thunk that copied the context (a third of the rules' cost).
            let parts = cs.map { Compiled(test: $0.compiled()) }
            return { c in
                for p in parts where !p.test(c) { return false }
                return true
            }
        case .any(let cs):
            let parts = cs.map { Compiled(test: $0.compiled()) }
            return { c in
                for p in parts where p.test(c) { return true }
                return false
            }
        case .not(let x):
            let inner = x.compiled()
            return { c in !inner(c) }
        case .test(let field, let op, let operand):
            let get = field.get
            // The common shapes get closures of their own (no dispatch on the operator and operand per flow).
            switch (field.type, op, operand) {
            case (.string, .eq, .text(let s)):
                return { c in
                    guard case .string(let v)? = get(c) else { return false }
                    return v.lowercasedIfNeeded() == s
                }
            case (.string, .in, .texts(let ss)):
                let set = Set(ss)
                return { c in
                    guard case .string(let v)? = get(c) else { return false }
                    return set.contains(v.lowercasedIfNeeded())
                }
            case (.int, .in, .numbers(let ns)):
                let set = Set(ns)
                return { c in
                    guard case .int(let v)? = get(c) else { return false }
                    return set.contains(Double(v))
                }
            case (.int, .gt, .number(let n)):
                return { c in
                    guard case .int(let v)? = get(c) else { return false }
                    return Double(v) > n
                }
            case (.strings, .suffix, .texts(let ss)):
                // One backward pass over each name, a hash of its tail looked up at each label boundary (comparing
                // every name with each of the public-IP rule's 29 suffixes cost 1,300 instructions a flow).
                let suffixes = DomainSuffixSet(ss)
                return { c in
                    guard case .strings(let vs)? = get(c) else { return false }
                    for var v in vs {
                        // ASCII case folded in the pass; a tail with other bytes is lower-cased first (Unicode).
                        switch v.withUTF8({ suffixes.contains(suffixOf: $0) }) {
                        case true?: return true
                        case false?: continue
                        case nil:
                            var l = v.lowercased()
                            if l.withUTF8({ suffixes.contains(suffixOf: $0) }) == true { return true }
                        }
                    }
                    return false
                }
            default:
                return { c in
                    guard let value = get(c) else { return false }
                    return Self.compare(value, op, operand)
                }
            }
        }
    }

    /// The condition walked as a tree (the reference the compiled form is tested against).
    public func evaluate(_ c: RuleContext) -> Bool {
        switch self {
        case .all(let cs): return cs.allSatisfy { $0.evaluate(c) }
        case .any(let cs): return cs.contains { $0.evaluate(c) }
        case .not(let x): return !x.evaluate(c)
        case .test(let field, let op, let operand):
            guard let value = field.get(c) else { return false }
            return Self.compare(value, op, operand)
        }
    }

    static func compare(_ value: FieldValue, _ op: RuleOperator, _ operand: RuleOperand) -> Bool {
        switch value {
        case .int(let v): return number(Double(v), op, operand)
        case .double(let v): return number(v, op, operand)
        case .bool(let v):
            guard case .bool(let b) = operand else { return false }
            return op == .eq ? v == b : v != b
        case .string(let v): return text(v.lowercasedIfNeeded(), op, operand)
        case .strings(let vs):
            // Negative operators hold when no element matches; positive ones when any does.
            switch op {
            case .ne: return !vs.contains { text($0.lowercasedIfNeeded(), .eq, operand) }
            case .notIn: return !vs.contains { text($0.lowercasedIfNeeded(), .in, operand) }
            default: return vs.contains { text($0.lowercasedIfNeeded(), op, operand) }
            }
        case .address(let a):
            guard case .networks(let ns) = operand else { return false }
            let hit = ns.contains { $0.contains(a) }
            return op == .eq || op == .in ? hit : !hit
        }
    }

    /// Whether `name` is `suffix` or ends with `.suffix` (compared as bytes: no string built, no grapheme walk).
    static func domain(_ name: String, endsWith suffix: String) -> Bool {
        var name = name, suffix = suffix
        return name.withUTF8 { n in
            suffix.withUTF8 { s in
                guard n.count >= s.count else { return false }
                let offset = n.count - s.count
                for i in 0..<s.count where n[offset + i] != s[i] { return false }
                return offset == 0 || n[offset - 1] == UInt8(ascii: ".")
            }
        }
    }

    /// `text.contains(part)` as Foundation answers it, by bytes when both are ASCII (Foundation's search, through
    /// `NSString`, cost 10,000 instructions a call; for ASCII its canonical equivalence is byte equality), through
    /// Foundation otherwise (composed and decomposed accents match there) and for an empty `part` (never found there).
    static func contains(_ text: String, _ part: String) -> Bool {
        var text = text, part = part
        let ascii: Bool? = text.withUTF8 { t in
            part.withUTF8 { p in
                guard !p.isEmpty, t.allSatisfy({ $0 < 0x80 }), p.allSatisfy({ $0 < 0x80 }) else { return nil }
                return t.contains(bytes: p)
            }
        }
        return ascii ?? text.contains(part)
    }

    static func number(_ v: Double, _ op: RuleOperator, _ operand: RuleOperand) -> Bool {
        switch (op, operand) {
        case (.eq, .number(let n)): v == n
        case (.ne, .number(let n)): v != n
        case (.gt, .number(let n)): v > n
        case (.ge, .number(let n)): v >= n
        case (.lt, .number(let n)): v < n
        case (.le, .number(let n)): v <= n
        case (.in, .numbers(let ns)): ns.contains(v)
        case (.notIn, .numbers(let ns)): !ns.contains(v)
        default: false
        }
    }

    /// `v` is lower case; text operands were lowered when the pack loaded.
    static func text(_ v: String, _ op: RuleOperator, _ operand: RuleOperand) -> Bool {
        switch (op, operand) {
        case (.eq, .text(let s)): v == s
        case (.ne, .text(let s)): v != s
        case (.in, .texts(let ss)): ss.contains(v)
        case (.notIn, .texts(let ss)): !ss.contains(v)
        case (.contains, .text(let s)): contains(v, s)
        case (.contains, .texts(let ss)): ss.contains { contains(v, $0) }
        case (.suffix, .text(let s)): domain(v, endsWith: s)
        case (.suffix, .texts(let ss)): ss.contains { domain(v, endsWith: $0) }
        case (.matches, .regex(let r)): (try? r.firstMatch(in: v)) != nil
        default: false
        }
    }
}

/// How often a rule may fire.
public enum RuleRepeat: String, Sendable, CaseIterable {
    /// Once per device × endpoint (the default: one alert per finding, not per connection).
    case endpoint
    /// For every flow that matches.
    case flow
    /// Once per device.
    case device
}

/// A declarative rule of the pack: a condition on each ended flow of a device, and the alert it raises.
public struct Rule: Sendable {
    public var id: String
    public var category: AlertCategory
    public var severity: Severity
    /// The message with `{field}` placeholders (checked when the pack loads).
    public var message: String
    public let condition: RuleCondition
    public var per: RuleRepeat
    /// Where the rule was written: `file:line`.
    public var location: String
    /// The condition compiled into closures once (evaluating the enum tree copied its payloads at every node).
    public let matches: @Sendable (RuleContext) -> Bool
    /// What a flow must have for the condition to hold at all (`RuleCondition.needs`): a flow without it is passed
    /// over without a call.
    let needs: RuleCondition.Needs

    public init(
        id: String, category: AlertCategory, severity: Severity, message: String, condition: RuleCondition, per: RuleRepeat,
        location: String
    ) {
        self.id = id
        self.category = category
        self.severity = severity
        self.message = message
        self.condition = condition
        self.per = per
        self.location = location
        matches = condition.compiled()
        needs = condition.needs
    }

    /// The message with each `{field}` replaced by its value for this flow (`-` when unknown).
    func render(_ c: RuleContext) -> String {
        var out = ""
        var rest = Substring(message)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            out += RuleField.all[name].flatMap { $0.get(c) }?.text ?? "-"
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The field names a message template uses.
    static func placeholders(_ message: String) -> [String] {
        // Over UTF-8 (braces are ASCII, so their indices are the string's): walking Characters cost 50,000
        // instructions a message at start.
        var names: [String] = []
        let u = message.utf8
        var from = u.startIndex
        while let open = u[from...].firstIndex(of: UInt8(ascii: "{")), let close = u[open...].firstIndex(of: UInt8(ascii: "}")) {
            names.append(String(message[u.index(after: open)..<close]))
            from = u.index(after: close)
        }
        return names
    }
}

/// FNV-1a over bytes (64-bit): cheap, and the same in `scripts/name_model.py`. A hash of 0 would only cost a table
/// slot a miss, never a wrong hit (hits are checked).
enum FNV1a {
    static let seed: UInt64 = 0xCBF2_9CE4_8422_2325
    @inline(__always) static func step(_ h: UInt64, _ b: UInt8) -> UInt64 { (h ^ UInt64(b)) &* 0x100_0000_01B3 }
}

/// Domain suffixes for `suffix` tests: whether a name is one of them or ends with `.` and one of them. Each suffix's
/// bytes are hashed from its last byte to its first; a name is read once from its end, its tail's hash looked up at
/// each label boundary in an open-addressing table, and a hit checked byte by byte.
struct DomainSuffixSet: Sendable {
    private let suffixes: [[UInt8]]
    /// Per slot: the hash (0: empty) and the index of its suffix.
    private let slots: [(hash: UInt64, index: Int)]
    private let mask: Int
    /// The longest suffix: a tail longer than it matches nothing.
    private let longest: Int

    init(_ list: [String]) {
        let suffixes = list.map { Array($0.utf8) }.filter { !$0.isEmpty }
        var capacity = 8
        while capacity < suffixes.count * 4 { capacity *= 2 }
        var slots = Array(repeating: (hash: UInt64(0), index: 0), count: capacity)
        for (i, s) in suffixes.enumerated() {
            let h = s.reversed().reduce(FNV1a.seed, FNV1a.step)
            var k = Int(truncatingIfNeeded: h) & (capacity - 1)
            while slots[k].hash != 0 { k = (k + 1) & (capacity - 1) }
            slots[k] = (h, i)
        }
        self.suffixes = suffixes
        self.slots = slots
        mask = capacity - 1
        longest = suffixes.map(\.count).max() ?? 0
    }


    /// Whether `name` (ASCII letters in any case) is a suffix or ends with `.` and one; nil when the bytes read
    /// hold one of 0x80 or above (lower-case the name as Unicode and ask again). The suffixes are lower case.
    func contains(suffixOf name: UnsafeBufferPointer<UInt8>) -> Bool? {
        @inline(__always) func fold(_ b: UInt8) -> UInt8 { b &- 0x41 < 26 ? b | 0x20 : b }
        var h = FNV1a.seed
        var p = name.count
        let stop = max(0, name.count - longest)
        while p > stop {
            p -= 1
            let b = name[p]
            if b >= 0x80 { return nil }
            h = FNV1a.step(h, fold(b))
            guard p == 0 || name[p - 1] == UInt8(ascii: ".") else { continue }
            var k = Int(truncatingIfNeeded: h) & mask
            while slots[k].hash != 0 {
                if slots[k].hash == h {
                    let s = suffixes[slots[k].index]
                    if s.count == name.count - p, s.indices.allSatisfy({ s[$0] == fold(name[p + $0]) }) { return true }
                }
                k = (k + 1) & mask
            }
        }
        return false
    }
}
