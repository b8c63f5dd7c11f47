import Foundation
@testable import SiphonFlows
import Testing

/// The flow table's and the reassembler's storage, grown by `mremap` (and by allocation and copy where a mapping
/// cannot be had): what was written stays, whatever the number of doublings and the element size.
@Suite struct GrowableTableTests {
    struct Wide: Equatable {
        var a: UInt64, b: UInt64, c: Int32, tag: (UInt8, UInt8, UInt8) = (0, 0, 0)
        static func == (l: Wide, r: Wide) -> Bool { l.a == r.a && l.b == r.b && l.c == r.c && l.tag == r.tag }
    }

    @Test(arguments: [true, false])
    func valuesSurviveEveryDoubling(mapping: Bool) {
        var table = GrowableTable<Wide>(capacity: 3, mapping: mapping)
        defer { table.release() }
        #expect(table.isMapped == mapping)
        func value(_ i: Int) -> Wide {
            Wide(a: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, b: ~UInt64(i), c: Int32(truncatingIfNeeded: i), tag: (UInt8(i & 0xFF), 7, UInt8(i >> 8 & 0xFF)))
        }
        var count = 0
        // 200,000 elements of 32 bytes (6.4 MB): 17 doublings from 3, each checked over everything written before.
        for target in [1, 3, 4, 100, 1_000, 4_096, 4_097, 50_000, 200_000] {
            let before = table.capacity
            table.grow(toHold: target, keeping: count)
            #expect(table.capacity >= target && (target <= before ? table.capacity == before : table.capacity < 2 * target))
            #expect(table.isMapped == mapping)
            for i in 0..<count where table.base[i] != value(i) {
                Issue.record("element \(i) changed at growth to \(target)")
                break
            }
            while count < target {
                (table.base + count).initialize(to: value(count))
                count += 1
            }
        }
        #expect((0..<count).allSatisfy { table.base[$0] == value($0) })
    }

    /// A table made empty grows too (a doubling from zero would never reach anything).
    @Test(arguments: [true, false])
    func emptyTableGrows(mapping: Bool) {
        var table = GrowableTable<UInt64>(capacity: 0, mapping: mapping)
        defer { table.release() }
        table.grow(toHold: 5, keeping: 0)
        #expect(table.capacity == 8)
        for i in 0..<5 { (table.base + i).initialize(to: UInt64(i)) }
        table.grow(toHold: 9, keeping: 5)
        #expect(table.capacity == 16 && (0..<5).allSatisfy { table.base[$0] == UInt64($0) })
    }
}
