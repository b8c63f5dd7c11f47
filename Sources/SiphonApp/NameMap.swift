public import SiphonCore

/// Which names resolved to which addresses, and when: built from DNS answers (following CNAME chains), so that a
/// flow to an address gets the names that resolved to it before the flow began.
public final class NameMap {
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var at: Timestamp
    }

    private var byAddress: [IPAddress: [Entry]] = [:]
    /// Names kept per address (oldest dropped first) and addresses kept in all.
    public let maximumNamesPerAddress: Int
    public var maximumAddresses: Int
    public private(set) var droppedAddresses = 0

    public init(maximumNamesPerAddress: Int = 16, maximumAddresses: Int = 1 << 20) {
        self.maximumNamesPerAddress = maximumNamesPerAddress
        self.maximumAddresses = maximumAddresses
    }

    public var count: Int { byAddress.count }

    /// Records the address answers of a DNS response seen at `time`: each A/AAAA record's owner name and the
    /// aliases whose CNAME chain led to it (the question's name among them).
    public func record(_ m: DNSMessage, at time: Timestamp) {
        guard m.isResponse, m.rcode == 0 else { return }
        // CNAME target -> alias, to walk each address record back to the names that were asked.
        var aliasOf: [String: String] = [:]
        for r in m.answers {
            if case .name(let target) = r.data, r.type == 5 { aliasOf[target] = r.name }
        }
        for r in m.answers {
            guard case .address(let address) = r.data else { continue }
            var names = [r.name]
            var current = r.name
            var steps = 0
            while let alias = aliasOf[current], steps < 16, !names.contains(alias) {
                names.append(alias)
                current = alias
                steps += 1
            }
            for name in names { add(name, for: address, at: time) }
        }
    }

    public func add(_ name: String, for address: IPAddress, at time: Timestamp) {
        guard !name.isEmpty else { return }
        if byAddress[address] == nil && byAddress.count >= maximumAddresses {
            droppedAddresses += 1
            return
        }
        var list = byAddress[address, default: []]
        // A repeated answer keeps the first time it was seen: a flow that began between the two answers was
        // resolved by the first one.
        var first = time
        if let i = list.firstIndex(where: { $0.name == name }) {
            first = min(list[i].at, time)
            list.remove(at: i)
        } else if list.count >= maximumNamesPerAddress {
            list.removeFirst()
        }
        list.append(Entry(name: name, at: first))
        byAddress[address] = list
    }

    /// The names resolved to `address` at or before `time`, oldest first.
    public func names(for address: IPAddress, before time: Timestamp) -> [String] {
        // One pass, one array (a filter then a map made two per ended flow).
        guard let entries = byAddress[address] else { return [] }
        var out: [String] = []
        for e in entries where e.at <= time { out.append(e.name) }
        return out
    }
}
