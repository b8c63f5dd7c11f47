public import SiphonCore
public import SiphonFlows
internal import SiphonGeo
public import SiphonApp

/// A device's stable identity across its addresses: the key of the ledger, the beacon series, the alerts and the
/// verdicts. On a link with MAC addresses it is the MAC, with every IPv4 and IPv6 address the device used; where
/// the link has none (raw IP, Linux cooked captures without addresses, loopback) it is the address, or the prefix
/// the analyst declared.
public enum DeviceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    case mac(UInt64)
    case address(IPAddress)
    case network(IPNetwork)
    /// A phone the mobile core (GTP-C) or the air interface (GSMTAP) named: by IMSI, else MSISDN, else IMEI, else
    /// TMSI. Digits held as a number (a trivially copyable key: ledgers and series copy it often).
    case subscriber(SubscriberKey)

    public static func imsi(_ digits: String) -> DeviceID? { SubscriberKey(.imsi, digits).map { .subscriber($0) } }
    public static func msisdn(_ digits: String) -> DeviceID? { SubscriberKey(.msisdn, digits).map { .subscriber($0) } }
    public static func imei(_ digits: String) -> DeviceID? { SubscriberKey(.imei, digits).map { .subscriber($0) } }
    public static func tmsi(_ hex: String) -> DeviceID? { SubscriberKey(.tmsi, hex).map { .subscriber($0) } }

    public var description: String {
        switch self {
        case .mac(let m): MACAddress.text(m)
        case .address(let a): a.description
        case .network(let n): n.description
        case .subscriber(let k): k.description
        }
    }

    public var mac: UInt64? { if case .mac(let m) = self { m } else { nil } }

    /// Whether it is a subscriber identity (IMSI, MSISDN, IMEI, TMSI).
    public var isSubscriber: Bool { if case .subscriber = self { true } else { false } }

    private var rank: Int {
        switch self {
        case .mac: 0
        case .address: 1
        case .network: 2
        case .subscriber: 3
        }
    }

    public static func < (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.mac(let x), .mac(let y)): x < y
        case (.address(let x), .address(let y)): x < y
        case (.network(let x), .network(let y)): (x.address, x.bits) < (y.address, y.bits)
        case (.subscriber(let x), .subscriber(let y)): (x.kind.rawValue, x.length, x.value) < (y.kind.rawValue, y.length, y.value)
        default: a.rank < b.rank
        }
    }

    /// The identity of a subscriber: its IMSI, else its MSISDN, else its IMEI.
    public static func of(_ s: Subscriber) -> DeviceID? {
        s.imsi.flatMap(imsi) ?? s.msisdn.flatMap(msisdn) ?? s.imei.flatMap(imei)
    }
}

/// A subscriber identity as a number: its kind, its digits' count (hex digits for a TMSI; 0: unknown) and value.
@frozen
public struct SubscriberKey: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable { case imsi, msisdn, imei, tmsi }
    public var kind: Kind
    public var length: UInt8
    public var value: UInt64

    /// Nil unless `text` is 1-19 decimal digits (16 hex digits for a TMSI); "unknown" makes an unknown TMSI.
    public init?(_ kind: Kind, _ text: String) {
        self.kind = kind
        if kind == .tmsi && text == "unknown" {
            length = 0
            value = 0
            return
        }
        let radix = kind == .tmsi ? 16 : 10
        guard !text.isEmpty, text.count <= (radix == 16 ? 16 : 19), let v = UInt64(text, radix: radix) else { return nil }
        length = UInt8(text.count)
        value = v
    }

    /// The digits, zero-padded to their count.
    public var digits: String {
        if length == 0 { return "unknown" }
        let s = String(value, radix: kind == .tmsi ? 16 : 10)
        return String(repeating: "0", count: max(0, Int(length) - s.count)) + s
    }

    public var description: String {
        switch kind {
        case .imsi: "imsi:" + digits
        case .msisdn: "msisdn:+" + digits
        case .imei: "imei:" + digits
        case .tmsi: "tmsi:" + digits
        }
    }
}

/// A device's traffic as the detectors saw it: the address it first initiated a flow from, when, and how many
/// flows it initiated.
public struct DeviceActivity: Sendable {
    public var address: IPAddress
    public var first: Timestamp
    public var flows = 0
    /// Application bytes it sent in the flows it initiated (every endpoint, local ones included).
    public var sent = 0
    /// For an identity without a MAC (an address or a declared prefix): the addresses it initiated from, with the
    /// first and last time (at most `LinkRegistry.maximumAddresses`).
    public var addresses: [(IPAddress, Timestamp, Timestamp)] = []
}

/// How a device came to be analysed, strongest first.
public enum DeviceOrigin: String, Sendable, Comparable {
    /// Named by the analyst (`--device`).
    case declared
    /// Named by the mobile core's control plane (GTP-C create messages): a subscriber.
    case gtpc = "gtp-c"
    /// Named itself on the GSM air interface (GSMTAP: location update, identity response, service request).
    case gsm
    /// Took a DHCP lease in the capture.
    case dhcp
    /// Announced itself with IPv6 neighbour discovery (address configuration, neighbour solicitations).
    case ndp
    /// Announced itself with ARP.
    case arp
    /// Initiated traffic on the captured link.
    case inferred

    var rank: Int {
        switch self {
        case .declared: 0
        case .gtpc, .gsm: 1
        case .dhcp: 1
        case .ndp: 2
        case .arp: 3
        case .inferred: 4
        }
    }
    public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
}

/// How an address of a link host was learned.
public enum AddressSource: String, Sendable {
    case traffic, dhcp, arp, ndp
}

/// One address a link host used.
public struct AddressRecord: Sendable {
    public var source: AddressSource
    public var first: Timestamp
    public var last: Timestamp
}

/// What `--device` and `--not-device` take: an IP address, a prefix (CIDR) or a MAC address.
public enum DeviceSelector: Hashable, Sendable, CustomStringConvertible {
    case mac(UInt64)
    case network(IPNetwork)

    public init?(_ text: String) {
        if let m = MACAddress.parse(text) {
            self = .mac(m)
        } else if let n = IPNetwork(text) {
            self = .network(n)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .mac(let m): MACAddress.text(m)
        case .network(let n): n.bits == (n.address.isIPv6 ? 128 : 32) ? n.address.description : n.description
        }
    }

    func matches(mac: UInt64, address: IPAddress) -> Bool {
        switch self {
        case .mac(let m): mac != 0 && m == mac
        case .network(let n): n.contains(address)
        }
    }
}

/// The hosts of the captured link, as its traffic shows them: per MAC address every address it used and the roles
/// that make it infrastructure rather than a device (a gateway with many remote addresses behind it, a router
/// that sends router advertisements or that DHCP names, the DHCP server, the lab's resolver). It decides, flow by
/// flow, which device initiated it.
public final class LinkRegistry {
    public struct Roles: OptionSet, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Packets from many networks arrive behind it: it forwards for remote hosts.
        public static let forwarder = Roles(rawValue: 1)
        /// Sent IPv6 router advertisements, or owns an address DHCP names as a router.
        public static let router = Roles(rawValue: 2)
        public static let dhcpServer = Roles(rawValue: 4)
        /// Answered DNS queries (port 53) of hosts on the link.
        public static let resolver = Roles(rawValue: 8)
        /// A node of a mobile core: sends or receives GTP (tunnels of subscribers, their sessions' signalling).
        public static let mobileCore = Roles(rawValue: 16)

        public var names: [String] {
            var out: [String] = []
            if contains(.forwarder) { out.append("gateway") }
            if contains(.router) { out.append("router") }
            if contains(.dhcpServer) { out.append("dhcp-server") }
            if contains(.resolver) { out.append("resolver") }
            if contains(.mobileCore) { out.append("mobile-core") }
            return out
        }
    }

    public struct Host: Sendable {
        public var mac: UInt64
        /// Addresses in the order first seen (at most `maximumAddresses`; `moreAddresses` counts the rest).
        public internal(set) var addresses: [IPAddress] = []
        public internal(set) var records: [IPAddress: AddressRecord] = [:]
        /// Addresses beyond `maximumAddresses`, and for a gateway the remote addresses seen behind it since it was
        /// recognised (sightings, not distinct).
        public internal(set) var moreAddresses = 0
        public internal(set) var roles: Roles = []
        /// The strongest way the host announced itself (DHCP, NDP, ARP), or traffic only.
        public internal(set) var learned: DeviceOrigin = .inferred
        /// Whether one of its addresses, or its MAC, was named with `--device`.
        public internal(set) var declared = false
        /// Remote networks its packets came from (a /24 per IPv4 address, a /64 per IPv6 one; local ones left out).
        var networks: Set<UInt64> = []
    }

    /// Remote (not private, not link-local) networks behind one MAC address that make it a gateway: a phone has
    /// at most one public IPv4 /24 and one or two IPv6 /64 (its SLAAC prefix; a second after a renumbering), a
    /// gateway as many as the remote hosts that answered through it.
    public var forwarderNetworks = 4
    public static let maximumAddresses = 64

    public let declared: [DeviceSelector]
    public let excluded: [DeviceSelector]
    public private(set) var hosts: [UInt64: Host] = [:]
    /// The MAC address each address was last seen from.
    private var macOf: [IPAddress: UInt64] = [:]
    /// Router and resolver addresses that DHCP named.
    private var routerAddresses: Set<IPAddress> = []

    /// Whether an address is local (special-purpose, no country declared for it): remote networks behind a MAC make
    /// a gateway, and a host without a MAC is a device only from a local address.
    let isLocal: @Sendable (IPAddress) -> Bool

    public init(declared: [DeviceSelector] = [], excluded: [DeviceSelector] = [], isLocal: (@Sendable (IPAddress) -> Bool)? = nil) {
        self.declared = declared
        self.excluded = excluded
        self.isLocal = isLocal ?? { AddressScope.isLocal($0) }
    }

    /// The link-layer sender `mac` used `address` (a packet's source, an ARP sender, a DHCP lease, an NDP target).
    /// Cheap for a pair already known (one lookup of the host, one of the address): called for every flow.
    public func observe(mac: UInt64, address: IPAddress, at time: Timestamp, source: AddressSource = .traffic) {
        guard mac != 0, !MACAddress.isGroup(mac), !Self.unspecified(address) else { return }
        if addressRecords >= maximumAddressRecords, hosts[mac]?.roles.contains(.forwarder) != true,
           hosts[mac]?.records[address] == nil {
            addressRecordsRefused &+= 1
            return
        }
        var added = false
        func update(_ h: inout Host) {
            if h.roles.contains(.forwarder) {
                // A gateway: the remote addresses behind it are not its own; only counted.
                if h.records[address] == nil { h.moreAddresses &+= 1 }
                return
            }
            let known = h.records.count
            func note(_ r: inout AddressRecord) {
                if time < r.first { r.first = time }
                if r.last < time { r.last = time }
                if source != .traffic && r.source == .traffic { r.source = source }
            }
            note(&h.records[address, default: AddressRecord(source: source, first: time, last: time)])
            if h.records.count > known {
                added = true
                if h.addresses.count < Self.maximumAddresses { h.addresses.append(address) } else { h.moreAddresses &+= 1 }
                // Remote networks only: a host with several local addresses (a merged capture, a VM host) is no gateway.
                if !isLocal(address), let net = Self.network(address), h.networks.insert(net).inserted,
                   h.networks.count >= forwarderNetworks {
                    h.roles.insert(.forwarder)
                    h.networks = []
                }
                if !routerAddresses.isEmpty && routerAddresses.contains(address) { h.roles.insert(.router) }
                if !h.declared, !declared.isEmpty, declared.contains(where: { $0.matches(mac: mac, address: address) }) { h.declared = true }
            }
            switch source {
            case .dhcp: if h.learned > .dhcp { h.learned = .dhcp }
            case .ndp: if h.learned > .ndp { h.learned = .ndp }
            case .arp: if h.learned > .arp { h.learned = .arp }
            case .traffic: break
            }
        }
        update(&hosts[mac, default: Host(mac: mac)])
        if added {
            macOf[address] = mac
            addressRecords += 1
        }
    }

    /// Address records (a host's address with its first and last sighting) kept over all hosts at most (the memory
    /// budget's); a sighting of a new address beyond it is counted in `addressRecordsRefused`, not recorded.
    public var maximumAddressRecords = Int.max
    public private(set) var addressRecordsRefused: UInt64 = 0
    private var addressRecords = 0

    /// The MAC address `address` was last seen from (not a gateway's).
    public func mac(of address: IPAddress) -> UInt64? { macOf[address] }

    /// A role learned from what a host did (sent a router advertisement, answered DHCP or DNS).
    public func mark(mac: UInt64, _ role: Roles) {
        guard mac != 0, !MACAddress.isGroup(mac), lastMarked != (mac, role.rawValue) else { return }
        lastMarked = (mac, role.rawValue)
        hosts[mac, default: Host(mac: mac)].roles.formUnion(role)
    }
    /// The last role marked (a resolver answers many queries: one lookup for the first).
    private var lastMarked: (UInt64, UInt8) = (0, 0)

    /// Addresses that DHCP names as routers: whoever owns them is infrastructure.
    public func routers(_ addresses: [IPAddress]) {
        for a in addresses where routerAddresses.insert(a).inserted {
            if let m = macOf[a] { mark(mac: m, .router) }
        }
    }

    /// Whether the host is infrastructure (and not named as a device).
    public func isInfrastructure(_ mac: UInt64) -> Bool {
        guard let h = hosts[mac] else { return false }
        return !h.roles.isEmpty && !h.declared
    }

    /// Phones the mobile core named (GTP-C), by the addresses it gave them.
    public private(set) var subscribers: [IPAddress: DeviceID] = [:]
    /// Subscribers by identity, for the verdicts.
    public private(set) var subscriberIdentities: [DeviceID: Subscriber] = [:]
    /// Shared with the detectors' tables (`DetectionEngine.tableBudget`): each subscriber and address taken.
    public var tableBudget = TableBudget()
    /// Addresses and data TEIDs kept per subscriber.
    public static let maximumSubscriberAddresses = 64

    /// A subscriber the core named: the packets from its addresses inside tunnels (or on a link without MAC
    /// addresses) are its. A later session for the same address replaces an earlier one.
    public func subscribe(_ s: Subscriber) {
        guard let id = DeviceID.of(s) else { return }
        var merged = s
        let limit = Self.maximumSubscriberAddresses
        if let known = subscriberIdentities[id] {
            merged.msisdn = s.msisdn ?? known.msisdn
            merged.imei = s.imei ?? known.imei
            merged.imeisv = s.imeisv ?? known.imeisv
            merged.apn = s.apn ?? known.apn
            merged.addresses = Array((known.addresses + s.addresses.filter { !known.addresses.contains($0) }).prefix(limit))
            merged.dataTEIDs = Array((known.dataTEIDs + s.dataTEIDs.filter { !known.dataTEIDs.contains($0) }).prefix(limit))
        } else {
            guard tableBudget.take(TableBudget.Cost.subscriber) else { return }
            merged.addresses = Array(merged.addresses.prefix(limit))
            merged.dataTEIDs = Array(merged.dataTEIDs.prefix(limit))
        }
        subscriberIdentities[id] = merged
        for a in s.addresses.prefix(limit) where subscribers[a] != nil || tableBudget.take(TableBudget.Cost.subscriberAddress) {
            subscribers[a] = id
        }
    }

    /// The device that sent from `address` with link-layer address `mac` (0: the link has none), or nil when that
    /// sender is not a device under test: infrastructure, excluded, or not named when devices are named. Inside a
    /// tunnel (`tunnelled`) the sender is a subscriber: the one GTP-C gave the address to, else the address, local
    /// or not (its tunnel is what makes it a phone of the lab's core).
    public func device(mac rawMAC: UInt64, address: IPAddress, tunnelled: Bool = false) -> DeviceID? {
        let mac = MACAddress.isGroup(rawMAC) ? 0 : rawMAC
        if Self.unspecified(address) && mac == 0 { return nil }
        if !excluded.isEmpty, excluded.contains(where: { $0.matches(mac: mac, address: address) }) { return nil }
        if mac == 0, !subscribers.isEmpty, let id = subscribers[address] {
            if !declared.isEmpty, !declared.contains(where: { $0.matches(mac: 0, address: address) }) { return nil }
            return id
        }
        if tunnelled {
            if !declared.isEmpty, !declared.contains(where: { $0.matches(mac: 0, address: address) }) { return nil }
            return .address(address)
        }
        if !declared.isEmpty {
            if mac != 0, hosts[mac]?.declared == true { return .mac(mac) }
            guard let s = declared.first(where: { $0.matches(mac: mac, address: address) }) else { return nil }
            if mac != 0 { return .mac(mac) }
            if case .network(let n) = s, n.bits < (n.address.isIPv6 ? 128 : 32) { return .network(n) }
            return .address(address)
        }
        if mac != 0 {
            if let h = hosts[mac], !h.roles.isEmpty { return nil }
            return .mac(mac)
        }
        // No link layer: a local address (the captured host, or one behind a tunnel endpoint of the lab).
        return isLocal(address) ? .address(address) : nil
    }

    /// The device that initiated `flow`.
    @inlinable public func device(of flow: Flow) -> DeviceID? {
        device(mac: flow.clientMAC, address: flow.clientAddress, tunnelled: flow.key.tunnel != 0)
    }

    /// How the device was chosen.
    public func origin(of id: DeviceID) -> DeviceOrigin {
        switch id {
        case .mac(let m):
            guard let h = hosts[m] else { return declared.isEmpty ? .inferred : .declared }
            return h.declared ? .declared : h.learned
        case .address, .network:
            return declared.isEmpty ? .inferred : .declared
        case .subscriber:
            if !declared.isEmpty { return .declared }
            return subscriberIdentities[id] != nil ? .gtpc : .gsm
        }
    }

    static func unspecified(_ a: IPAddress) -> Bool { a.high == 0 && a.low == 0 }

    /// The network an address counts in for the gateway test (nil: link-local, loopback or unspecified).
    static func network(_ a: IPAddress) -> UInt64? {
        if a.isIPv6 {
            if a.high >> 54 == 0x3FA || a.high == 0 { return nil }  // fe80::/10, ::/64 (loopback, unspecified)
            return a.high
        }
        let v = UInt32(truncatingIfNeeded: a.low)
        if v == 0 || v >> 24 == 127 || v >> 16 == 0xA9FE { return nil }
        return 1 << 63 | UInt64(v >> 8)
    }
}

/// What the terminal and HTML reports say of the link beside the verdicts: the hosts left out as infrastructure,
/// the alerts that leaves out, and what the analyst declared.
public struct LinkSummary: Sendable {
    public struct Infrastructure: Sendable {
        public var mac: UInt64
        public var roles: [String]
        /// Addresses seen from it (a gateway's are the remote hosts behind it), and whether more were seen.
        public var addresses: Int
        public var more: Bool
    }
    public var infrastructure: [Infrastructure] = []
    public var withdrawnAlerts = 0
    public var declared: [DeviceSelector] = []
    public var excluded: [DeviceSelector] = []
    public init() {}
}

extension DetectionEngine {
    /// The link's infrastructure and what the analyst declared (after `verdicts()`, which fills `withdrawn`).
    public func linkSummary() -> LinkSummary {
        var s = LinkSummary()
        s.declared = link.declared
        s.excluded = link.excluded
        s.withdrawnAlerts = withdrawn.reduce(0) { $0 + $1.1 }
        s.infrastructure = link.hosts.values.filter { link.isInfrastructure($0.mac) }
            .map { LinkSummary.Infrastructure(mac: $0.mac, roles: $0.roles.names, addresses: $0.addresses.count, more: $0.moreAddresses > 0) }
            .sorted { $0.addresses != $1.addresses ? $0.addresses > $1.addresses : $0.mac < $1.mac }
        return s
    }
}
