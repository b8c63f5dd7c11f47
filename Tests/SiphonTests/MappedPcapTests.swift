import Foundation
import Siphon
import Testing

/// Reading a pcap file in place from a memory mapping (`MappedPcapSource`) gives what libpcap gives: the same
/// packets, times, lengths, offsets, and the same error with the same words at the same offset, on every committed
/// capture and on cut and corrupted copies of some (libpcap 1.10's own checks are the oracle).
@Suite struct MappedPcapTests {
    struct Read: Equatable, CustomStringConvertible {
        var packets: [ReadAheadTests.Seen] = []
        var error: CaptureError?
        var offset: Int64 = 0
        var recordsRead = 0
        var filteredOut = 0
        var interfaces: [String] = []
        /// Not compared: which reader it was.
        var inPlace = false
        static func == (a: Read, b: Read) -> Bool {
            a.packets == b.packets && a.error == b.error && a.offset == b.offset && a.recordsRead == b.recordsRead
                && a.filteredOut == b.filteredOut && a.interfaces == b.interfaces
        }
        var description: String {
            "\(packets.count) packets, \(packets.map(\.bytes.count).reduce(0, +)) bytes, error \(error.map(String.init(describing:)) ?? "none"), "
                + "offset \(offset), records \(recordsRead), filtered \(filteredOut), interfaces \(interfaces)"
        }
    }

    /// Collects what the reader hands the observer.
    final class Collector: CaptureByteObserver {
        var bytes: [UInt8] = []
        func observe(_ b: UnsafeRawBufferPointer) { bytes += b }
    }

    static func read(_ path: String, mapped: Bool, filter: String? = nil, observer: Collector? = nil) throws -> Read {
        let reader = try CaptureReader(path: path, filter: filter, observer: observer, mapped: mapped)
        if !mapped { #expect(!reader.readsInPlace) }
        var r = Read()
        r.inPlace = reader.readsInPlace
        (r.packets, r.error) = ReadAheadTests.drain(reader)
        r.offset = reader.offset
        r.recordsRead = reader.recordsRead
        r.filteredOut = reader.filteredOut
        r.interfaces = reader.interfaces.map { "\($0.linkType.rawValue)/\($0.snapLength)" }
        return r
    }

    /// Returns whether the mapped reader read it in place.
    @discardableResult
    static func compare(_ path: String, filter: String? = nil, _ comment: String) throws -> Bool {
        let libpcap = try read(path, mapped: false, filter: filter)
        let collector = Collector()
        let mapped = try read(path, mapped: true, filter: filter, observer: collector)
        if let i = zip(mapped.packets, libpcap.packets).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("\(comment): packet \(i) differs")
        }
        #expect(mapped == libpcap, "\(comment): mapped \(mapped) against libpcap \(libpcap)")
        // The observer saw the whole file, once, in order (the provenance's SHA-256 rests on it).
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(collector.bytes == file, "\(comment): observed \(collector.bytes.count) of \(file.count) bytes")
        return mapped.inPlace
    }

    static var pcaps: [String] {
        [
            "captures/diff", "captures/app", "captures/reassembly", "captures/scenarios", "captures/zeek", "captures/arkime",
            "captures/checksums", "captures/tcpflow", "captures/sample", "captures/evidence", "captures/libpcap", "captures/gtp", "captures/gsm",
        ].flatMap { Repo.files(in: $0, extensions: ["pcap"]) }
    }

    @Test func sameAsLibpcapOnEveryCommittedCapture() throws {
        let files = Self.pcaps
        #expect(files.count >= 100)
        var mappedCount = 0
        for file in files where try Self.compare(file, file) { mappedCount += 1 }
        // Most are read in place: the native-order version 2.4 files with an ordinary link type.
        #expect(mappedCount >= 100 && mappedCount < files.count, "\(mappedCount) of \(files.count) read in place")
        // With a filter too.
        try Self.compare(Repo.path("captures/sample/backdoor-phone.pcap"), filter: "tcp port 443", "filtered sample")
    }

    /// Cut copies (every few bytes through the first records, and near the end) and copies with a record's
    /// captured length or the file's snapshot length rewritten: the same packets before the damage and the same
    /// error, word for word, at the same offset.
    @Test func sameAsLibpcapOnDamagedCopies() throws {
        let folder = try temporaryFolder("mapped")
        let sources = ["captures/sample/backdoor-phone.pcap", "captures/diff/eth-zeek-http-get.pcap"].map(Repo.path)
        var variants = 0
        for source in sources {
            let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
            #expect(original.prefix(4) == [0xD4, 0xC3, 0xB2, 0xA1])
            func check(_ bytes: [UInt8], _ what: String) throws {
                let path = folder + "/variant.pcap"
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                if try Self.compare(path, "\(URL(fileURLWithPath: source).lastPathComponent) \(what)") { variants += 1 }
            }
            var cuts = Array(stride(from: 24, to: min(original.count, 1_600), by: 7))
            cuts += [original.count - 1, original.count - 9, original.count - 17]
            for cut in cuts { try check(Array(original.prefix(cut)), "cut at \(cut)") }
            // The third record's captured length (little-endian at its header + 8).
            var at = 24
            for _ in 0..<2 { at += 16 + Int(UInt32(original[at + 8]) | UInt32(original[at + 9]) << 8 | UInt32(original[at + 10]) << 16 | UInt32(original[at + 11]) << 24) }
            for caplen: UInt32 in [0, 1, 262_144, 262_145, 300_000, 0xFFFF_FFFF, 70_000] {
                var b = original
                for i in 0..<4 { b[at + 8 + i] = UInt8(caplen >> (8 * UInt32(i)) & 0xFF) }
                try check(b, "caplen \(caplen)")
            }
            // Snapshot lengths: small (records cut to it, the rest skipped), zero and too large (libpcap's maximum).
            for snaplen: UInt32 in [64, 100, 0, 300_000, 262_144] {
                var b = original
                for i in 0..<4 { b[16 + i] = UInt8(snaplen >> (8 * UInt32(i)) & 0xFF) }
                try check(b, "snaplen \(snaplen)")
                try check(Array(b.prefix(original.count - 40)), "snaplen \(snaplen), cut")
            }
            // Nanosecond magic, and negative or out-of-range time fields.
            var nano = original
            nano.replaceSubrange(0..<4, with: [0x4D, 0x3C, 0xB2, 0xA1])
            try check(nano, "nanosecond magic")
            var times = original
            times.replaceSubrange(24..<32, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
            try check(times, "times")
        }
        #expect(variants > 400)
    }

    /// Files libpcap reads differently (swapped byte order, other versions, gzip, standard input) are not mapped:
    /// they still read as before, through libpcap.
    @Test func otherFilesGoThroughLibpcap() throws {
        let folder = try temporaryFolder("mapped-other")
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/diff/eth-zeek-http-get.pcap"))))
        var old = original
        old[6] = 3  // version 2.3: libpcap may swap the two lengths
        let path = folder + "/v23.pcap"
        try Data(old).write(to: URL(fileURLWithPath: path))
        #expect(try !Self.compare(path, "version 2.3"))
        var swapped = original
        for field in [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4), (16, 4), (20, 4)] { swapped[field.0..<(field.0 + field.1)].reverse() }
        var at = 24
        while at + 16 <= swapped.count {
            let caplen = Int(UInt32(original[at + 8]) | UInt32(original[at + 9]) << 8 | UInt32(original[at + 10]) << 16 | UInt32(original[at + 11]) << 24)
            for field in 0..<4 { swapped[(at + 4 * field)..<(at + 4 * field + 4)].reverse() }
            at += 16 + caplen
        }
        let big = folder + "/big-endian.pcap"
        try Data(swapped).write(to: URL(fileURLWithPath: big))
        #expect(try !Self.compare(big, "big-endian"))
        #expect(try Self.read(big, mapped: false).packets == Self.read(Repo.path("captures/diff/eth-zeek-http-get.pcap"), mapped: false).packets)
    }
}
