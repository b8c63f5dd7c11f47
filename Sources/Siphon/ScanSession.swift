import CSiphonSupport
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One capture a session scans, and the options to scan it with (a batch gives each capture its own known
/// identifiers, so options are per input).
public struct ScanInput: Sendable {
    /// The capture's path as given (`-`: standard input).
    public var path: String
    public var options: ScanOptions
    public init(path: String, options: ScanOptions) {
        self.path = path
        self.options = options
    }
}

/// What a sink decides before a capture is scanned.
public enum ScanStart {
    /// Scan it, writing its events to this output (nil: no events); `observer` sees the file's bytes as they are
    /// read.
    /// `frameLog`: which flow each frame went to, kept for evidence files.
    case scan(EventOutput?, observer: (any CaptureByteObserver)? = nil, frameLog: FrameFlowLog? = nil)
    /// Leave it (its results are already there, or it is not a capture): `end` is not called.
    case skip
}

/// Where a session's results go: per-capture files, a terminal summary, a fleet aggregate. `begin` and `end` are
/// called on the worker thread that scans the input (several at once when the session has several jobs): an
/// implementation guards what its calls share.
public protocol ScanSink: AnyObject, Sendable {
    func begin(_ index: Int, _ input: ScanInput) -> ScanStart
    /// The capture's result; `output` is the one `begin` gave (still open: the sink closes or flushes it).
    func end(_ index: Int, _ input: ScanInput, _ result: CaptureScanner.Result, output: EventOutput?)
}

/// Runs one pipeline per input, `jobs` at a time on as many threads, and hands each result to a sink. With one
/// job the inputs are scanned in order on the calling thread (`scan`); with more, each worker takes the next input
/// when it is done with one (`batch`), so a long capture does not hold up the others. Pipelines share nothing but
/// the read-only options (geo data, indicators, rules), so the workers need no lock on the packet path.
public final class ScanSession: Sendable {
    public let jobs: Int

    /// The running program's GNU build ID in hex (the linker's hash of the executable's contents), nil without one.
    public static let buildID: String? = {
        var bytes = [UInt8](repeating: 0, count: 64)
        let n = siphon_build_id(&bytes, bytes.count)
        guard n > 0 else { return nil }
        return bytes.prefix(n).hexString
    }()

    /// The git commit checked out in the source tree the executable was built in (the folder holding its `.build`),
    /// read from `.git` (no git program needed); nil for an executable outside a checkout. The build ID identifies
    /// the executable itself; this names the sources it most likely came from.
    public static let sourceRevision: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        var dir = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        func read(_ path: String) -> String? {
            guard let f = fopen(path, "r") else { return nil }
            defer { fclose(f) }
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = fread(&chunk, 1, chunk.count, f)
                if got <= 0 { break }
                out += chunk[0..<got]
                if out.count > 1 << 22 { break }
            }
            return String(decoding: out, as: UTF8.self)
        }
        func isHex(_ s: Substring) -> Bool { s.count == 40 && s.allSatisfy { $0.isHexDigit } }
        while let slash = dir.lastIndex(of: "/"), slash != dir.startIndex {
            dir = String(dir[..<slash])
            guard access(dir + "/Package.swift", F_OK) == 0, access(dir + "/.git", F_OK) == 0 else { continue }
            var git = dir + "/.git"
            if let text = read(git), text.hasPrefix("gitdir: ") {
                let target = text.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
                git = target.hasPrefix("/") ? target : dir + "/" + target
            }
            guard let head = read(git + "/HEAD")?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
            if isHex(Substring(head)) { return head }
            guard head.hasPrefix("ref: ") else { return nil }
            let ref = String(head.dropFirst(5))
            if let sha = read(git + "/" + ref)?.trimmingCharacters(in: .whitespacesAndNewlines), isHex(Substring(sha)) { return sha }
            for line in (read(git + "/packed-refs") ?? "").split(separator: "\n") where line.hasSuffix(" " + ref) {
                let sha = line.prefix(40)
                if isHex(sha) { return String(sha) }
            }
            return nil
        }
        return nil
    }()

    /// The processors online (the default number of jobs).
    public static var processors: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    public init(jobs: Int = ScanSession.processors) {
        self.jobs = max(1, jobs)
    }

    /// What a run did, for the exit status.
    public struct Summary: Sendable {
        public var scanned = 0
        public var skipped = 0
        /// Captures that could not be opened or stopped at damage (their events up to it were still written).
        public var failed = 0
        /// The highest alert severity over every scanned capture.
        public var worst: Severity?
        public var alerts = 0
        /// Inputs never started because `stop` asked to stop.
        public var notStarted = 0
        public init() {}

        /// Exit 2 when a capture failed, 1 when an alert at or above `failOn` was raised, else 0.
        public func exitStatus(failOn: Severity?) -> Int32 {
            if failed > 0 { return 2 }
            if let failOn, let worst, worst >= failOn { return 1 }
            return 0
        }
    }

    /// Scans every input and waits for the last. `progress` runs on the calling thread about every `interval`
    /// while workers run (a progress display), and once at the end; without it, one job runs on the calling
    /// thread.
    @discardableResult
    /// `stop`, when it answers true, keeps the workers from taking another input (those being scanned finish):
    /// `Summary.stopped` then says so.
    public func run(
        _ inputs: [ScanInput], sink: some ScanSink, every interval: Duration = .milliseconds(250),
        stop: (@Sendable () -> Bool)? = nil, progress: (() -> Void)? = nil
    ) -> Summary {
        let state = SessionState(count: inputs.count)
        let work: @Sendable () -> Void = {
            while !(stop?() ?? false), let index = state.take() {
                let input = inputs[index]
                switch sink.begin(index, input) {
                case .skip: state.recordSkip()
                case .scan(let output, let observer, let frameLog):
                    let result = CaptureScanner.scan(
                        path: input.path, options: input.options, output: output, observer: observer, frameLog: frameLog)
                    state.record(result)
                    sink.end(index, input, result, output: output)
                }
            }
        }
        // One job and nothing to show while it runs: on the calling thread, in order.
        if progress == nil && (jobs == 1 || inputs.count <= 1) {
            work()
            return state.summary
        }
        let group = DispatchGroup()
        for _ in 0..<max(1, min(jobs, inputs.count)) {
            group.enter()
            let thread = Thread {
                work()
                group.leave()
            }
            // Pipelines recurse little, but the parsers' and detectors' frames add up: a main-thread-sized stack.
            thread.stackSize = 8 << 20
            thread.start()
        }
        let wait = DispatchTimeInterval.nanoseconds(Int(interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000))
        while group.wait(timeout: .now() + wait) == .timedOut { progress?() }
        progress?()
        return state.summary
    }
}

/// The shared counters of a run: the next input to take and the summary.
final class SessionState: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    private var totals = ScanSession.Summary()

    init(count: Int) { self.count = count }

    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    func recordSkip() {
        lock.lock()
        totals.skipped += 1
        lock.unlock()
    }

    func record(_ result: CaptureScanner.Result) {
        let top = result.alerts.map(\.severity).max()
        lock.lock()
        totals.scanned += 1
        if result.error != nil { totals.failed += 1 }
        totals.alerts += result.alerts.count
        if let top, totals.worst.map({ top > $0 }) ?? true { totals.worst = top }
        lock.unlock()
    }

    var summary: ScanSession.Summary {
        lock.lock()
        defer { lock.unlock() }
        var t = totals
        t.notStarted = count - next
        return t
    }
}
