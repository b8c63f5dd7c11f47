import Foundation
import Siphon
import Testing

/// Paths and helpers shared by the tests.
enum Repo {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func files(in folder: String, extensions: Set<String>) -> [String] {
        let dir = path(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { extensions.contains(($0 as NSString).pathExtension) }.sorted().map { dir + "/" + $0 }
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }

    /// The `siphon` executable built next to the test bundle.
    static var siphonExecutable: String {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("siphon").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return path(".build/debug/siphon")
    }
}

/// Scans a capture in memory and returns its events as dictionaries.
func scanEvents(_ path: String, options: ScanOptions = ScanOptions()) -> (events: [[String: Any]], result: CaptureScanner.Result) {
    let output = EventOutput()
    let result = CaptureScanner.scan(path: path, options: options, output: output)
    let events = output.lines.compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
    return (events, result)
}

/// Flow key with endpoints in canonical order, as the fixtures write it.
struct CanonicalFlow: Hashable, CustomStringConvertible {
    var proto: String
    var a: String
    var portA: Int
    var b: String
    var portB: Int
    var description: String { "\(proto) \(a):\(portA) <-> \(b):\(portB)" }
}

/// Per-direction figures of a canonical flow: packets and bytes a->b, then b->a.
struct DirectionFigures: Equatable, CustomStringConvertible {
    var abPackets = 0, abBytes = 0, baPackets = 0, baBytes = 0
    static func + (x: Self, y: Self) -> Self {
        Self(abPackets: x.abPackets + y.abPackets, abBytes: x.abBytes + y.abBytes,
             baPackets: x.baPackets + y.baPackets, baBytes: x.baBytes + y.baBytes)
    }
    var description: String { "a->b \(abPackets) pkts/\(abBytes) B, b->a \(baPackets) pkts/\(baBytes) B" }
}

/// Sums Siphon's flow events per canonical 5-tuple (several flows may share one: port reuse, timeouts).
func aggregateFlows(_ events: [[String: Any]], protocols: Set<String> = ["TCP", "UDP"]) -> [CanonicalFlow: DirectionFigures] {
    var out: [CanonicalFlow: DirectionFigures] = [:]
    for e in events where e["event_type"] as? String == "flow" {
        guard let proto = e["proto"] as? String, protocols.contains(proto),
            let src = e["src_ip"] as? String, let dst = e["dest_ip"] as? String,
            let sp = e["src_port"] as? Int, let dp = e["dest_port"] as? Int,
            let client = e["client"] as? [String: Any], let server = e["server"] as? [String: Any],
            let srcAddress = IPAddress(src), let dstAddress = IPAddress(dst)
        else { continue }
        let cp = client["packets"] as! Int, cb = client["bytes"] as! Int
        let spk = server["packets"] as! Int, sb = server["bytes"] as! Int
        let srcFirst = srcAddress < dstAddress || (srcAddress == dstAddress && sp <= dp)
        let key: CanonicalFlow
        let figures: DirectionFigures
        if srcFirst {
            key = CanonicalFlow(proto: proto, a: srcAddress.description, portA: sp, b: dstAddress.description, portB: dp)
            figures = DirectionFigures(abPackets: cp, abBytes: cb, baPackets: spk, baBytes: sb)
        } else {
            key = CanonicalFlow(proto: proto, a: dstAddress.description, portA: dp, b: srcAddress.description, portB: sp)
            figures = DirectionFigures(abPackets: spk, abBytes: sb, baPackets: cp, baBytes: cb)
        }
        out[key, default: DirectionFigures()] = out[key, default: DirectionFigures()] + figures
    }
    return out
}

/// Normalises an address string through Siphon's own parser/printer so fixtures and events compare textually.
func normalized(_ address: String) -> String { IPAddress(address)?.description ?? address }

extension ScanOptions {
    /// For comparisons with tshark, tcpflow and Arkime, which take every packet whatever its checksums (their
    /// defaults): checksum validation off. Several of their test captures were edited without fixing checksums.
    static var likeTheOracles: ScanOptions {
        var options = ScanOptions()
        options.checksums = .off
        return options
    }
}

/// A run of the suite under a sanitizer (`scripts/sanitize.sh` sets `SIPHON_SANITIZER`): the `siphon` the tests
/// start is instrumented too, so it starts and runs several times slower and its memory includes the sanitizer's
/// shadow. Waits and time bounds stretch by `slowdown`; peak-memory bounds are not checked (and say so).
enum Sanitizer {
    static let name = ProcessInfo.processInfo.environment["SIPHON_SANITIZER"]
    static var active: Bool { name != nil }
    static var slowdown: Double { active ? 5 : 1 }
    /// Sleeps `seconds` stretched by the slowdown.
    static func wait(_ seconds: Double) { usleep(UInt32(seconds * slowdown * 1_000_000)) }
    /// Whether a peak-memory bound can be checked; prints why not under a sanitizer.
    static func checksMemory(_ what: String) -> Bool {
        if let name { FileHandle.standardError.write(Data("\(what): peak RSS not checked under the \(name) sanitizer (its shadow memory counts)\n".utf8)) }
        return !active
    }
}
