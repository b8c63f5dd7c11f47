internal import CSiphonSupport

/// Storage for a table of values that doubles without copying what it holds (moving a Swift value moves its bytes):
/// an anonymous mapping that the kernel enlarges in place or moves by its page tables (`mremap`). An ordinary
/// doubling allocation copies its contents at each growth and touches every page of the copy: on big.pcap that
/// was 5,500 of the scan's 48,000 page faults (the reassembler's 30 MB of per-slot state and the flow table's 8 MB,
/// grown from 1 MB), and the scan takes 0.90-0.93 of the CPU time it took (docs/performance.md, session 18). Where a mapping cannot be made or enlarged (or `mremap` does not
/// exist), the table is an allocation moved into a bigger one, as before.
struct GrowableTable<Element> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var capacity: Int
    /// Bytes mapped; 0 when `base` is an ordinary allocation.
    private var mapped: Int
    /// Whether the table is a mapping (grown by `mremap`) rather than an allocation.
    var isMapped: Bool { mapped > 0 }

    /// `mapping` false: an ordinary allocation from the start (the fallback, for tests).
    init(capacity: Int, mapping: Bool = true) {
        self.capacity = capacity
        let bytes = capacity * MemoryLayout<Element>.stride
        if mapping, let p = siphon_table_map(bytes) {
            base = p.bindMemory(to: Element.self, capacity: capacity)
            mapped = bytes
        } else {
            base = .allocate(capacity: capacity)
            mapped = 0
        }
    }

    /// Makes room for at least `minimum` elements (doubling); the first `count` keep their values, at another
    /// address if the table moved.
    mutating func grow(toHold minimum: Int, keeping count: Int) {
        guard minimum > capacity else { return }
        var c = max(capacity, 1)
        while c < minimum { c *= 2 }
        let bytes = c * MemoryLayout<Element>.stride
        if mapped > 0, let p = siphon_table_grow(UnsafeMutableRawPointer(base), mapped, bytes) {
            base = p.bindMemory(to: Element.self, capacity: c)
            mapped = bytes
        } else {
            let bigger = UnsafeMutablePointer<Element>.allocate(capacity: c)
            bigger.moveInitialize(from: base, count: count)
            release()
            base = bigger
            mapped = 0
        }
        capacity = c
    }

    /// Frees the memory (deinitializing the elements, if they need it, is the owner's part).
    func release() {
        if mapped > 0 { siphon_table_unmap(UnsafeMutableRawPointer(base), mapped) } else { base.deallocate() }
    }
}
