import Foundation
import SiphonFuzzing
import Testing

/// The fuzz targets in the ordinary suite: every committed corpus file (seeds and the fuzzer's past findings,
/// `Tests/fuzz/TARGET`), the committed captures and data files for the file targets, and a bounded run of
/// generated inputs per target (a fixed-seed generator: the same inputs every run). A target that traps, or whose
/// model disagrees (TCP and fragment reassembly), fails here as under libFuzzer.
@Suite struct FuzzRegressionTests {
    static func files(_ folder: String, suffixes: [String] = []) -> [String] {
        let root = Repo.path(folder)
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        return e.compactMap { $0 as? String }.filter { name in
            !name.hasSuffix(".md") && (suffixes.isEmpty || suffixes.contains { name.hasSuffix($0) })
        }.sorted().map { root + "/" + $0 }.filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    static func corpus(_ target: FuzzTarget) -> [String] {
        var paths = files("Tests/fuzz/\(target.rawValue)")
        switch target {
        case .capture, .scan:
            paths += files("captures", suffixes: [".pcap", ".pcapng", ".pcap.gz"]).filter {
                ((try? FileManager.default.attributesOfItem(atPath: $0))?[.size] as? Int ?? .max) <= 65_536
            }
        case .mmdb: paths += files("testdata/mmdb", suffixes: [".mmdb"])
        case .ioc: paths += files("testdata/intel").filter { !$0.contains("expected") }
        case .rules: paths += files("Sources/SiphonDetect/rules", suffixes: [".yaml"])
        default: break
        }
        return paths
    }

    @Test(arguments: FuzzTarget.allCases) func corpusFilesPass(_ target: FuzzTarget) throws {
        let paths = Self.corpus(target)
        #expect(!paths.isEmpty, "no corpus for \(target.rawValue)")
        for path in paths {
            let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            if let finding = Self.run(target, data) { Issue.record("\(target.rawValue) on \(path): \(finding)") }
        }
    }

    /// Inputs made by mutating the corpus (byte flips, insertions, cuts, splices) with a fixed-seed generator.
    @Test(arguments: FuzzTarget.allCases) func mutatedInputsPass(_ target: FuzzTarget) throws {
        var seeds = try Self.corpus(target).map { try [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
        if seeds.isEmpty { seeds = [[]] }
        var rng = SplitMix(seed: UInt64(target.rawValue.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        // Fewer runs for the targets that write a file and scan it.
        let runs = target == .scan || target == .capture ? 300 : 3_000
        for run in 0..<runs {
            var input = seeds[Int(rng.next() % UInt64(seeds.count))]
            if input.count > 16_384 { input = Array(input.prefix(16_384)) }
            for _ in 0..<(1 + Int(rng.next() % 8)) { Self.mutate(&input, with: &rng, splice: seeds) }
            if let finding = Self.run(target, input) {
                Issue.record("\(target.rawValue) run \(run) (\(input.count) bytes, first \(input.prefix(32).map { String($0) })): \(finding)")
                return
            }
        }
    }

    /// The target on `data`; the model's finding, if any. (Not a typed-throws closure: Swift 6.3.1 crashes
    /// emitting its reabstraction thunk.)
    static func run(_ target: FuzzTarget, _ data: [UInt8]) -> FuzzFinding? {
        data.withUnsafeBytes { b -> FuzzFinding? in
            do {
                try target.run(b)
                return nil
            } catch {
                return error as? FuzzFinding ?? FuzzFinding("\(error)")
            }
        }
    }

    static func mutate(_ input: inout [UInt8], with rng: inout SplitMix, splice: [[UInt8]]) {
        let r = rng.next()
        switch r % 6 {
        case 0 where !input.isEmpty:  // flip a bit
            let i = Int(rng.next() % UInt64(input.count))
            input[i] ^= 1 << UInt8(rng.next() % 8)
        case 1 where !input.isEmpty:  // an interesting value
            let i = Int(rng.next() % UInt64(input.count))
            input[i] = [0, 0xFF, 0x7F, 0x80, 1, 0xFE][Int(rng.next() % 6)]
        case 2:  // insert random bytes
            let i = input.isEmpty ? 0 : Int(rng.next() % UInt64(input.count + 1))
            input.insert(contentsOf: (0..<(1 + rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
        case 3 where input.count > 1:  // cut
            let i = Int(rng.next() % UInt64(input.count))
            input.removeSubrange(i..<min(input.count, i + 1 + Int(rng.next() % 64)))
        case 4 where input.count >= 4:  // a 32-bit field to an extreme
            let i = Int(rng.next() % UInt64(input.count - 3))
            let v: UInt32 = [0, .max, 0x8000_0000, 0x7FFF_FFFF][Int(rng.next() % 4)]
            for k in 0..<4 { input[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
        default:  // splice with another seed
            let other = splice[Int(rng.next() % UInt64(splice.count))]
            guard !other.isEmpty else { return }
            let at = input.isEmpty ? 0 : Int(rng.next() % UInt64(input.count))
            let from = Int(rng.next() % UInt64(other.count))
            input = Array(input[..<at]) + other[from..<min(other.count, from + 256)]
        }
    }
}
