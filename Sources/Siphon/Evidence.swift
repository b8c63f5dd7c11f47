import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `siphon extract` takes the packets of.
public enum EvidenceTarget: Sendable, Equatable, CustomStringConvertible {
    /// An alert by its `alert_id`: the packets it rests on and the rest of its flow.
    case alert(Int)
    /// A flow by its `flow_id`.
    case flow(UInt64)
    /// Every flow of a device (its `device_id`: MAC address, address or prefix).
    case device(String)
    /// Every flow to or from an address.
    case endpoint(IPAddress)

    public var description: String {
        switch self {
        case .alert(let id): "alert \(id)"
        case .flow(let id): "flow \(id)"
        case .device(let d): "device \(d)"
        case .endpoint(let a): "endpoint \(a)"
        }
    }
}

/// One evidence file to write: the frames it holds, a comment per frame (the alerts resting on it) and the file's
/// own comment.
public struct EvidenceFile: Sendable {
    public var path: String
    public var frames: Set<UInt64>
    public var comments: [UInt64: String]
    public var comment: String
    public init(path: String, frames: Set<UInt64>, comments: [UInt64: String], comment: String) {
        self.path = path
        self.frames = frames
        self.comments = comments
        self.comment = comment
    }
}

/// The packets behind findings, taken from the capture they came from: a scan with a frame log (which flow each
/// frame went to) tells which frames, a second read of the capture copies them, with comments, into pcapng files
/// another lab can open (`frame.comment` in Wireshark).
public enum Evidence {
    /// The comment an alert's packets carry.
    public static func comment(_ a: Alert) -> String {
        "siphon alert \(a.id): \(a.category.rawValue) \(a.severity) (rule \(a.rule)): \(a.message)"
    }

    /// The frames of each of `flows`, in one pass over the log.
    public static func framesByFlow(_ flows: Set<UInt64>, log: FrameFlowLog) -> [UInt64: [UInt64]] {
        var out: [UInt64: [UInt64]] = [:]
        guard !flows.isEmpty else { return out }
        log.forEachFrame { frame, f in if flows.contains(f) { out[f, default: []].append(frame) } }
        return out
    }

    /// Per frame, the comments of every alert resting on it.
    static func notes(_ alerts: [Alert]) -> [UInt64: String] {
        var notes: [UInt64: String] = [:]
        for a in alerts {
            for f in a.frames where f.number != 0 { notes[f.number] = notes[f.number].map { $0 + "; " + comment(a) } ?? comment(a) }
        }
        return notes
    }

    /// The file of `frames`, each commented with the alerts resting on it.
    static func file(_ path: String, frames: Set<UInt64>, notes: [UInt64: String], comment: String) -> EvidenceFile {
        var frames = frames
        frames.remove(0)
        var comments: [UInt64: String] = [:]
        for f in frames { if let n = notes[f] { comments[f] = n } }
        return EvidenceFile(path: path, frames: frames, comments: comments, comment: comment)
    }

    /// An alert's frames: those it rests on and every frame of its flow (`byFlow`: from `framesByFlow`).
    static func frames(of a: Alert, byFlow: [UInt64: [UInt64]]) -> Set<UInt64> {
        Set(a.frames.map(\.number)).union(a.flow.id != 0 ? byFlow[a.flow.id] ?? [] : [])
    }

    /// One evidence file per alert at or above `severity` (`name(alert)` under `folder`): the packets it rests on and
    /// the rest of its flow, each packet commented with every alert resting on it. The log is read once for all.
    public static func alertFiles(
        result: CaptureScanner.Result, log: FrameFlowLog, capture: String, sha256: String?, severity: Severity, folder: String,
        name: (Alert) -> String
    ) -> [EvidenceFile] {
        let chosen = result.alerts.filter { $0.severity >= severity }
        guard !chosen.isEmpty else { return [] }
        let byFlow = framesByFlow(Set(chosen.map(\.flow.id).filter { $0 != 0 }), log: log)
        let notes = Self.notes(result.alerts)
        let source = " from " + capture + (sha256.map { " (sha256 \($0))" } ?? "")
        return chosen.map { a in
            file(folder + "/" + name(a), frames: frames(of: a, byFlow: byFlow), notes: notes,
                 comment: "siphon evidence: " + comment(a) + ";" + source)
        }
    }

    /// A device identity's MAC address (0: it has none). Not inlined: see `select`.
    @inline(never)
    static func deviceMAC(_ id: DeviceID) -> UInt64 { id.mac ?? 0 }

    /// The evidence file for `target` in a scan's result and frame log, or a message saying what is not there.
    public static func select(
        _ target: EvidenceTarget, result: CaptureScanner.Result, log: FrameFlowLog, capture: String, sha256: String?, path: String
    ) -> Result<EvidenceFile, EvidenceError> {
        var alert: Alert?
        var flows = Set<UInt64>()
        switch target {
        case .alert(let id):
            guard let a = result.alerts.first(where: { $0.id == id }) else {
                return .failure(EvidenceError("\(capture): no alert \(id) (the scan raised \(result.alerts.count))"))
            }
            alert = a
            if a.flow.id != 0 { flows = [a.flow.id] }
        case .flow(let id):
            guard log.flows[id] != nil else { return .failure(EvidenceError("\(capture): no flow \(id)")) }
            flows = [id]
        case .device(let text):
            guard let v = result.verdicts.first(where: { $0.id.description == text }) else {
                return .failure(EvidenceError("\(capture): no device \(text) (devices: \(result.verdicts.map(\.id.description).joined(separator: ", ")))"))
            }
            let addresses = Set(v.addresses.map(\.address) + [v.device])
            // The MAC taken once, before the loop (Swift 6.3.1's release optimizer crashes on the enum switch
            // inside the loop's condition: CopyPropagation, "Found outside of lifetime use").
            let mac: UInt64 = deviceMAC(v.id)
            for (id, f) in log.flows where addresses.contains(f.client) || addresses.contains(f.server) || (mac != 0 && f.clientMAC == mac) {
                flows.insert(id)
            }
        case .endpoint(let address):
            for (id, f) in log.flows where f.server == address || f.client == address { flows.insert(id) }
            if flows.isEmpty { return .failure(EvidenceError("\(capture): no flow to or from \(address)")) }
        }
        let byFlow = framesByFlow(flows, log: log)
        let chosen = alert.map { Self.frames(of: $0, byFlow: byFlow) } ?? Set(byFlow.values.joined())
        let header = "siphon extract: \(target) of \(capture)" + (sha256.map { " (sha256 \($0))" } ?? "")
            + "; frame comments name the alerts; frame numbers in the original are in each comment"
        return .success(file(path, frames: chosen, notes: notes(result.alerts), comment: header))
    }

    /// Reads `capture` once and writes each file's frames into it (pcapng, the original interfaces and times), each
    /// packet's comment giving its frame number in the original and the alerts resting on it. Returns the packets
    /// written per file.
    /// `captures`: the files of one capture in order (a live capture's ring: frames number on across them).
    /// At most `openFiles` files are written at once (a pass over the capture for each group of that many; by
    /// default as many as the process may open, its soft limit raised to the hard one, less 64).
    public static func write(_ files: [EvidenceFile], from captures: [String], openFiles: Int? = nil) throws(CaptureError) -> [Int] {
        var counts: [Int] = []
        var start = 0
        let perPass = max(1, openFiles ?? descriptorsAvailable() - 64)
        while start < files.count {
            let group = Array(files[start..<min(files.count, start + perPass)])
            counts += try writeGroup(group, from: captures)
            start += group.count
        }
        return counts
    }

    /// The descriptors this process may open, after raising its soft limit to the hard one (at most 65,536).
    static func descriptorsAvailable() -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 256 }
        let wanted = min(limit.rlim_max, 65_536)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return max(80, Int(limit.rlim_cur))
    }

    private static func writeGroup(_ files: [EvidenceFile], from captures: [String]) throws(CaptureError) -> [Int] {
        var writers: [PcapngFileWriter] = []
        for f in files {
            writers.append(try PcapngFileWriter(path: f.path, interfaces: [], application: "Siphon", comment: f.comment))
        }
        // Which files want each frame (one lookup per packet read, whatever the number of files).
        var wanted: [UInt64: [Int]] = [:]
        for (i, f) in files.enumerated() { for frame in f.frames { wanted[frame, default: []].append(i) } }
        // Per file: the output interface of each (capture file, pcapng section, interface ID) met, declared as
        // packets first use them (one capture of one section keeps the original IDs).
        struct InterfaceKey: Hashable { var file: Int, section: Int, id: Int }
        var declared = Array(repeating: [InterfaceKey: Int](), count: files.count)
        let lastWanted = wanted.keys.max() ?? 0
        var before: UInt64 = 0
        reading: for (fileIndex, capture) in captures.enumerated() {
            let reader = try CaptureReader(path: capture)
            var last: UInt64 = 0
            while true {
                let next: CapturedPacket?
                // Damage ends the reading: the frames before it are written (the scan read no further either).
                do { next = try reader.next() } catch { break }
                guard let packet = next else { break }
                let frame = before + packet.frame
                last = packet.frame
                if frame > lastWanted { break reading }
                guard let targets = wanted[frame] else { continue }
                for i in targets {
                    let f = files[i]
                    let key = InterfaceKey(file: fileIndex, section: reader.section, id: packet.interfaceID)
                    if declared[i][key] == nil {
                        let known = reader.interfaces
                        if fileIndex == 0 && key.section == 0 {
                            // Keep the original IDs: declare the ones before it too.
                            while declared[i].count <= packet.interfaceID && declared[i].count < known.count {
                                let id = declared[i].count
                                try writers[i].declare(known[id])
                                declared[i][InterfaceKey(file: 0, section: 0, id: id)] = id
                            }
                        }
                        if declared[i][key] == nil, packet.interfaceID < known.count {
                            try writers[i].declare(known[packet.interfaceID])
                            declared[i][key] = declared[i].count
                        }
                    }
                    let note = "original frame \(frame)" + (f.comments[frame].map { "; " + $0 } ?? "")
                    try writers[i].write(packet, interface: declared[i][key] ?? 0, comment: note)
                }
            }
            before += last
        }
        for w in writers { try w.finish() }
        return writers.map(\.packetsWritten)
    }
}

public struct EvidenceError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
