import Foundation
import Siphon
import Testing

@Suite struct CaptureTests {
    /// libpcap's bad files give libpcap's documented errors (testprogs/TESTrun), whichever reader opens them.
    @Test(arguments: ["linktype-reserved-field-not-zero", "pcap-invalid-version-1", "pcap-invalid-version-2",
                      "pcapng-invalid-vers-1", "pcapng-invalid-vers-2", "shb-option-too-long"])
    func badFilesGiveTheDocumentedError(_ name: String) throws {
        let text = try String(contentsOfFile: Repo.path("captures/libpcap/\(name)/expected-error.txt"), encoding: .utf8)
        let errstr = try #require(text.split(separator: "\n").first { $0.contains("errstr =>") })
        // errstr => 'Failed opening: <message>',  (\' escapes a quote)
        var message = String(errstr.drop { $0 != "'" }.dropFirst())
        message = String(message[..<message.range(of: "',", options: .backwards)!.lowerBound])
        message = message.replacingOccurrences(of: "\\'", with: "'").replacingOccurrences(of: "Failed opening: ", with: "")
        let file = try #require(Repo.files(in: "captures/libpcap/\(name)", extensions: ["pcap", "pcapng"]).first)
        do {
            _ = try CaptureReader(path: file)
            Issue.record("\(name) opened")
        } catch {
            #expect(error.kind == .badFormat)
            #expect(error.message == message, "\(name)")
            #expect(error.description.hasPrefix(file + ": "), "the error names the file")
        }
    }

    struct FilterCase: CustomStringConvertible {
        var name: String, file: String, expression: String, accepted: [Bool]
        var description: String { name }
    }

    static let filterCases: [FilterCase] = {
        var out: [FilterCase] = []
        let root = Repo.path("captures/libpcap")
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().map { root + "/" + $0 }
        for file in folders {
            let expectations = file + "/filter-expectations.txt"
            guard let text = try? String(contentsOfFile: expectations, encoding: .utf8) else { continue }
            for block in text.components(separatedBy: "\t{").dropFirst() {
                func value(_ key: String) -> String? {
                    guard let line = block.split(separator: "\n").first(where: { $0.contains("\(key) =>") }) else { return nil }
                    let v = line.split(separator: ">", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
                    return String(v.dropLast())  // trailing comma
                }
                guard let name = value("name"), let savefile = value("savefile"), let expr = value("expr"),
                    let results = value("results")
                else { continue }
                let unquoted = { (s: String) in String(s.dropFirst().dropLast()).replacingOccurrences(of: "\\'", with: "'") }
                let accepted = results.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",")
                    .map { Int($0.trimmingCharacters(in: .whitespaces))! != 0 }
                out.append(FilterCase(name: unquoted(name), file: file + "/" + unquoted(savefile), expression: unquoted(expr), accepted: accepted))
            }
        }
        return out
    }()

    /// libpcap's BPF accept/reject vectors, through Siphon's reader (libpcap for pcap, native for pcapng).
    @Test func filterVectorsFromLibpcap() throws {
        #expect(Self.filterCases.count >= 20)
        var compiled = 0
        for c in Self.filterCases {
            let reader: CaptureReader
            do {
                reader = try CaptureReader(path: c.file, filter: c.expression)
            } catch {
                // libpcap 1.10 lacks some primitives newer TESTrun cases use (e.g. `vxlan`): a typed filter error.
                #expect(error.kind == .badFilter, "\(c.name): \(error)")
                continue
            }
            compiled += 1
            var accepted = [Bool](repeating: false, count: c.accepted.count)
            while let _ = try reader.next() { accepted[reader.recordsRead - 1] = true }
            #expect(reader.recordsRead == c.accepted.count, "\(c.name)")
            #expect(accepted == c.accepted, "\(c.name): \(c.expression)")
            #expect(reader.filteredOut == c.accepted.filter { !$0 }.count)
        }
        #expect(compiled >= 15)
    }

    @Test func badFilterIsAnError() {
        #expect(throws: CaptureError.self) { try CaptureReader(path: Repo.path("captures/diff/eth-zeek-http-get.pcap"), filter: "tcp port") }
    }

    @Test func missingFileIsCannotOpen() {
        do {
            _ = try CaptureReader(path: "/nonexistent/x.pcap")
            Issue.record("opened")
        } catch {
            #expect(error.kind == .cannotOpen && error.description.contains("/nonexistent/x.pcap"))
        }
    }

    /// Offsets of each record of a classic pcap file: 24-byte header, then 16-byte record headers plus caplen.
    static func recordOffsets(_ data: [UInt8]) -> [Int] {
        let little = data[0] == 0xD4 || data[0] == 0x4D
        func u32(_ o: Int) -> Int {
            let b = data[o..<o + 4].map(Int.init)
            return little ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[3] | b[2] << 8 | b[1] << 16 | b[0] << 24
        }
        var offsets: [Int] = []
        var o = 24
        while o + 16 <= data.count {
            offsets.append(o)
            o += 16 + u32(o + 8)
        }
        return offsets
    }

    /// A capture cut midway: every packet before the damage is processed, then an error names the file and the
    /// offset of the damaged record.
    @Test(arguments: [("captures/diff/eth-zeek-wikipedia.pcap", 60), ("captures/diff/sll-sv-pcre-http.pcap", 5)])
    func truncatedPcapKeepsEverythingBefore(_ source: String, _ keep: Int) throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repo.path(source))))
        let offsets = Self.recordOffsets(data)
        let damaged = offsets[keep]
        for cut in [damaged + 7, damaged + 16 + 3] {  // inside the record header, inside the packet data
            let path = temporaryPath("siphon-cut-\(keep)-\(cut).pcap")
            try Data(data.prefix(cut)).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let (events, result) = scanEvents(path)
            let error = try #require(result.error)
            #expect(error.offset == Int64(damaged))
            #expect(error.description.contains(path) && error.description.contains("offset \(damaged)"))
            #expect(result.statistics.packets == UInt64(keep))
            // Flow and stats events are still written; the stats event carries the error.
            let stats = try #require(events.last?["stats"] as? [String: Any])
            #expect(stats["packets"] as? Int == keep && stats["error_offset"] as? Int == damaged)
            let flowPackets = events.filter { $0["event_type"] as? String == "flow" }.map {
                (($0["client"] as! [String: Any])["packets"] as! Int) + (($0["server"] as! [String: Any])["packets"] as! Int)
            }.reduce(0, +)
            #expect(UInt64(flowPackets) <= result.statistics.decoded && flowPackets > 0)
        }
    }

    @Test func truncatedPcapngNamesTheBlock() throws {
        // test202 (be): SHB, IDBs, EPBs over two sections. Cut in the middle of the last block.
        let source = Repo.path("captures/diff/ng-be-test202.pcapng")
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let full = scanEvents(source).result
        #expect(full.error == nil)
        let path = temporaryPath("siphon-cut.pcapng")
        try Data(data.dropLast(6)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cut = scanEvents(path).result
        let error = try #require(cut.error)
        #expect(error.offset != nil && error.offset! < Int64(data.count) && error.offset! > 0)
        #expect(cut.statistics.packets <= full.statistics.packets)
    }

    /// pcapng files libpcap 1.10 refuses (interfaces of different link types) read with each packet's link type.
    @Test func pcapngWithMixedLinkTypes() throws {
        let reader = try CaptureReader(path: Repo.path("captures/diff/ng-le-test006.pcapng"))
        #expect(reader.format == .pcapng)
        var linkTypes: [UInt32] = []
        while let p = try reader.next() { linkTypes.append(p.linkType.rawValue) }
        // tshark -r ng-le-test006.pcapng -T fields -e frame.interface_id -e frame.encap_type: Ethernet and NULL.
        #expect(Set(linkTypes) == [LinkType.ethernet.rawValue, LinkType.null.rawValue])
    }

    /// Timestamps and lengths agree with tshark on pcap (ns and µs) and pcapng (per-interface resolution).
    @Test(arguments: ["captures/diff/sll-tcpdump-nano.pcap", "captures/diff/eth-zeek-http-get.pcap",
                      "captures/diff/ng-zeek-multi-if.pcapng", "captures/diff/ng-le-test102.pcapng"])
    func timestampsEqualTshark(_ relative: String) throws {
        guard let tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first(where: FileManager.default.isExecutableFile)
        else {
            Issue.record("tshark is not installed: scripts/test.sh installs it")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-r", Repo.path(relative), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len",
                             "-Y", "!frame.cb_pen"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = out.split(separator: "\n").map { line -> (String, Int, Int) in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            // Simple Packet Blocks have no timestamp: tshark prints none, Siphon reads 0.
            return (f[0].isEmpty ? "0.000000000" : String(f[0]), Int(f[1])!, Int(f[2])!)
        }
        let reader = try CaptureReader(path: Repo.path(relative))
        var actual: [(String, Int, Int)] = []
        while let p = try reader.next() {
            let ns = p.timestamp.nanoseconds
            let fraction = String(ns % 1_000_000_000)
            actual.append(("\(ns / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction, p.originalLength, p.bytes.count))
        }
        #expect(actual.count == expected.count)
        for (a, e) in zip(actual, expected) {
            #expect(a.0 == e.0 && a.1 == e.1 && a.2 == e.2, "\(relative): siphon \(a), tshark \(e)")
        }
    }
}
