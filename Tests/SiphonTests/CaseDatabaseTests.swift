import Foundation
@testable import SiphonFleet
import Testing

/// The line reader and the alert-line test the case database reads events with, against `split` and a plain search.
@Suite struct CaseDatabaseLineTests {
    @Test func linesAreWhatSplitGives() throws {
        var rng = SystemRandomNumberGenerator()
        let path = temporaryPath("siphon-lines-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Empty lines, lines across the reader's 1 MiB chunks (one of 1.5 MiB), with and without a final newline.
        for trial in 0..<6 {
            var content: [UInt8] = []
            let sizes = (0..<Int.random(in: 0...30, using: &rng)).map { _ in [0, 1, 7, 300, 70_000][Int.random(in: 0...4, using: &rng)] }
            for n in sizes + (trial < 3 ? [1_500_000] : []) {
                content += (0..<n).map { UInt8(0x20 + $0 % 95) }
                content.append(0x0A)
            }
            if trial % 2 == 1 { content += Array("no final newline".utf8) }
            try Data(content).write(to: URL(fileURLWithPath: path))
            var expected = content.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            if expected.last?.isEmpty == true { expected.removeLast() }
            var got: [[UInt8]] = []
            let handle = try #require(FileHandle(forReadingAtPath: path))
            try CaseDatabase.forEachLine(handle) { got.append(Array($0)) }
            try handle.close()
            // Compared as counts and the first differing line (a failure must not print megabytes of lines).
            let differs = (0..<min(got.count, expected.count)).first { got[$0] != expected[$0] }
            #expect(got.count == expected.count && differs == nil, "trial \(trial): \(got.count) lines, \(expected.count) expected")
        }
    }

    @Test func alertMarkerIsFoundInTheFirst256Bytes() {
        let marker = Array(#""event_type":"alert""#.utf8)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var line = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
            if Bool.random(using: &rng), !line.isEmpty {
                let at = Int.random(in: 0...line.count, using: &rng)
                line.insert(contentsOf: marker.prefix(Int.random(in: marker.count - 2...marker.count, using: &rng)), at: at)
            }
            let padded = [UInt8](repeating: 0x20, count: Int.random(in: 0...3, using: &rng)) + line
            let slice = padded[padded.count - line.count..<padded.count]  // a slice that does not start at 0
            let head = Array(line.prefix(256))
            let expected = head.count >= marker.count && (0...head.count - marker.count).contains { Array(head[$0..<$0 + marker.count]) == marker }
            #expect(CaseDatabase.contains(slice, marker) == expected)
        }
    }
}
