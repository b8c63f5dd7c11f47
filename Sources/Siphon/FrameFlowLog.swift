import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which flow each frame of a capture went to: a flow id per frame number (0: none, e.g. ARP, undecodable, a
/// fragment whose datagram never completed), for `siphon extract` and case files. Kept only when asked for:
/// 8 bytes per frame, of which only the latest `windowFrames` (1 Mi frames, 8 MiB) stay in memory; the frames
/// before them go to an unlinked temporary file, so that a capture of 100 million packets scanned with `--case`
/// holds 8 MiB of it, not 800 MB (issue 17's memory ceiling). Without a temporary file (none can be made) the
/// log stays in memory, as it was, and `spillError` says why.
public final class FrameFlowLog {
    /// Frames `windowStart ..< windowStart + window.count` (0-based: frame number - 1), in memory.
    private var window: [UInt64] = []
    private var windowStart = 0
    private let windowFrames: Int
    /// The temporary file holding frames `0 ..< windowStart` (8 bytes each, native byte order); -1 before the
    /// first spill, or when none could be made.
    private var fd: Int32 = -1
    /// Frames recorded so far (the highest frame number seen).
    public private(set) var frameCount = 0
    /// Bytes of the log written to the temporary file.
    public private(set) var spilledBytes = 0
    /// Why the log could not spill to a file (it then grows in memory), if it could not.
    public private(set) var spillError: String?
    public struct FlowFacts: Sendable {
        public var client: IPAddress
        public var server: IPAddress
        public var clientPort: UInt16
        public var serverPort: UInt16
        public var ipProtocol: UInt8
        public var clientMAC: UInt64
        public var vlanTCI: Int32
    }
    public internal(set) var flows: [UInt64: FlowFacts] = [:]
    private struct FragmentKey: Hashable {
        var source: IPAddress, destination: IPAddress, identification: UInt32, ipProtocol: UInt8
    }
    /// Frames of fragments waiting for their datagram, with the time of the first (a datagram whose fragments never
    /// all came is forgotten after 60 s, so that a later one reusing its IP ID does not inherit its frames).
    private var waiting: [FragmentKey: (first: Timestamp, frames: [UInt64])] = [:]
    /// At most this many incomplete datagrams are remembered (a flood of fragments that never complete).
    static let waitingLimit = 65_536

    private let temporaryDirectory: String

    /// `windowFrames`: frames kept in memory (tests set a small one to exercise the file); `temporaryDirectory`:
    /// where the file is made (default: the system's).
    public init(windowFrames: Int = 1 << 20, temporaryDirectory: String? = nil) {
        self.windowFrames = max(1, windowFrames)
        self.temporaryDirectory = temporaryDirectory ?? NSTemporaryDirectory()
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The flow of frame `frame` (0 when none).
    public func flow(of frame: UInt64) -> UInt64 {
        guard frame >= 1, frame <= UInt64(frameCount) else { return 0 }
        let i = Int(frame - 1)
        if i >= windowStart { return i - windowStart < window.count ? window[i - windowStart] : 0 }
        var v: UInt64 = 0
        return pread(fd, &v, 8, off_t(i) * 8) == 8 ? v : 0
    }

    /// Every frame that went to a flow, in frame order: `body(frame, flow)`.
    public func forEachFrame(_ body: (UInt64, UInt64) -> Void) {
        if windowStart > 0 {
            var buffer = [UInt64](repeating: 0, count: min(windowFrames, windowStart))
            var at = 0
            while at < windowStart {
                let n = min(buffer.count, windowStart - at)
                let read = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, n * 8, off_t(at) * 8) }
                guard read == n * 8 else { break }
                for k in 0..<n where buffer[k] != 0 { body(UInt64(at + k + 1), buffer[k]) }
                at += n
            }
        }
        for (k, f) in window.enumerated() where f != 0 { body(UInt64(windowStart + k + 1), f) }
    }

    /// Frame `frame` went to flow `flow` (the scan records each frame as its flow takes it; a fragment's frames when
    /// its datagram completes, possibly after later frames).
    public func record(frame: UInt64, flow: UInt64) {
        guard frame > 0 else { return }
        let i = Int(frame - 1)
        frameCount = max(frameCount, i + 1)
        if i < windowStart {
            // An earlier frame (a fragment whose datagram completed later), already in the file.
            var v = flow
            _ = pwrite(fd, &v, 8, off_t(i) * 8)
            return
        }
        while i - windowStart >= windowFrames, spillError == nil { spill() }
        let k = i - windowStart
        // Doubling, up to the window while it can spill; past it (no file) as far as needed.
        let limit = spillError == nil ? windowFrames : Int.max
        if k >= window.count { window += repeatElement(0, count: max(k + 1, min(limit, window.count * 2)) - window.count) }
        window[k] = flow
    }

    /// Writes the window (padded to `windowFrames`) to the file and starts the next one.
    private func spill() {
        if fd < 0 {
            var template = Array((temporaryDirectory + "/siphon-frames-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard fd >= 0 else {
                spillError = "no temporary file for the frame log (\(String(cString: strerror(errno)))): kept in memory"
                return
            }
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        if window.count < windowFrames { window += repeatElement(0, count: windowFrames - window.count) }
        let bytes = windowFrames * 8
        let written = window.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes, off_t(windowStart) * 8) }
        guard written == bytes else {
            spillError = "the frame log's temporary file took \(max(written, 0)) of \(bytes) bytes: kept in memory"
            return
        }
        spilledBytes += bytes
        windowStart += windowFrames
        for k in window.indices { window[k] = 0 }
    }

    func fragment(_ p: DecodedPacket, frame: UInt64, at time: Timestamp) {
        let key = FragmentKey(source: p.source, destination: p.destination, identification: p.fragmentID, ipProtocol: p.ipProtocol)
        if let w = waiting[key], time.nanoseconds(since: w.first) <= 60_000_000_000, time >= w.first {
            waiting[key]!.frames.append(frame)
            return
        }
        if waiting.count >= Self.waitingLimit { waiting.removeAll(keepingCapacity: true) }
        waiting[key] = (time, [frame])
    }

    func datagram(of p: DecodedPacket, flow: UInt64) {
        let key = FragmentKey(source: p.source, destination: p.destination, identification: p.fragmentID, ipProtocol: p.ipProtocol)
        for frame in waiting.removeValue(forKey: key)?.frames ?? [] { record(frame: frame, flow: flow) }
    }
}
