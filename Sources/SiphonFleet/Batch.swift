public import Siphon
import CSiphonSupport
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a batch is asked to do besides the analysis itself.
public struct BatchConfiguration: Sendable {
    /// The output folder (`--out`).
    public var output: String
    public var jobs = ScanSession.processors
    /// Rescan captures whose results are already there with the same inputs.
    public var force = false
    public var shard: Shard?
    /// Everything the results depend on besides a capture's bytes and its devices row: the Siphon build, the rule
    /// pack, the geo, ASN and IOC data and the options, as text (its SHA-256 enters every input key).
    public var fingerprint: String
    /// The home countries (the HTML reports say which) and the version the reports name.
    public var home: Set<String> = []
    public var version: String
    /// Per-capture HTML reports.
    public var html = true
    /// Whether each capture is read a block ahead on a second thread; nil: when the jobs leave a processor idle
    /// (twice as many processors as jobs).
    public var readAhead: Bool?
    /// SIGINT and SIGTERM stop the batch gracefully: no capture is started after one, those being scanned finish,
    /// and the fleet report covers what is done (two more signals of the kind end it the hard way).
    public var stopOnSignal = false
    /// The provenance every capture's events start with (its input and coverage added per capture); nil: none.
    public var provenance: Provenance?
    /// Case evidence: each capture's alerts at or above this severity get a pcapng file in its folder (nil: none).
    public var evidenceSeverity: Severity?

    public init(output: String, fingerprint: String, version: String) {
        self.output = output
        self.fingerprint = fingerprint
        self.version = version
    }
}

/// How one file of a batch went, as it is reported while the batch runs.
public enum BatchDisposition: String, Sendable {
    /// Scanned in this run.
    case scanned
    /// Its results from an earlier run have the same input key: kept.
    case reused
    /// Not a capture, or not in this shard's share.
    case skipped
}

/// A batch in progress: counters for a progress display.
public struct BatchProgress: Sendable {
    public var files = 0
    public var filesDone = 0
    public var bytes: Int64 = 0
    public var bytesDone: Int64 = 0
    /// Bytes of the captures scanned in this run (not reused), for a rate.
    public var bytesScanned: Int64 = 0
    public var alerts = 0
    public var scanned = 0
    public var reused = 0
    public var skipped = 0
    public var failed = 0
}

/// `siphon batch`: every capture under the given paths scanned on `jobs` cores, each capture's events, verdicts
/// and HTML report written atomically under `DIR/captures/SLOT/`, then the fleet report and the case database
/// built from every capture in `DIR`.
///
/// Atomic: a capture's outputs are written in `DIR/.partial/SLOT` and the folder renamed into place once
/// complete; a batch killed midway leaves whole capture folders or none, and the next run (which empties
/// `.partial`) scans what is missing. One batch at a time writes to a folder (`DIR/.lock`).
public final class Batch: Sendable {
    public let configuration: BatchConfiguration
    /// The analysis options every capture starts from.
    public let options: ScanOptions
    public let devices: DeviceTable?

    public init(configuration: BatchConfiguration, options: ScanOptions, devices: DeviceTable?) {
        self.configuration = configuration
        self.options = options
        self.devices = devices
    }

    public struct Outcome: Sendable {
        public var progress: BatchProgress
        /// The signal that stopped the batch before every file was taken (nil: it ran to the end).
        public var stoppedBy: Int32?
        /// This run's files (scanned, reused, skipped), in path order.
        public var records: [CaptureRecord]
        /// Rows of the devices file that matched no capture.
        public var unmatchedRows: [DeviceTable.Row]
        public var fleet: FleetReport
    }

    /// Runs the batch. `report` is called from the worker threads (possibly at once) as each file is done; `tick`
    /// on the calling thread about four times a second with the counters so far.
    public func run(
        paths: [String],
        report: (@Sendable (CaptureRecord, BatchDisposition) -> Void)? = nil,
        tick: ((BatchProgress) -> Void)? = nil
    ) throws(BatchError) -> Outcome {
        let dir = configuration.output
        for d in [dir, dir + "/captures", dir + "/.partial"] where mkdir(d, 0o755) != 0 && errno != EEXIST {
            throw BatchError("\(d): cannot create: \(String(cString: strerror(errno)))")
        }
        let lock = try FolderLock(dir)
        defer { lock.release() }
        // Whatever a killed run left half-written.
        removeTree(dir + "/.partial", keepRoot: true)

        var found = try CaptureFinder.find(paths)
        // Rows are matched against every file, then the shard taken: each shard gives a row the capture an
        // unsharded batch would.
        let assigned: (rows: [String: DeviceTable.Row], unmatched: [DeviceTable.Row]) = try devices?.assign(to: found.map(\.path)) ?? ([:], [])
        if let shard = configuration.shard { found = found.filter { shard.contains($0.path) } }
        let inputs = found.map { f -> ScanInput in
            var o = options
            if let row = assigned.rows[f.path] {
                o.detection?.identifiers.known += row.identifiers
                o.devices += row.devices
            }
            return ScanInput(path: f.path, options: o)
        }
        var progress = BatchProgress()
        progress.files = found.count
        for f in found {
            var s = stat()
            if stat(f.path, &s) == 0 { progress.bytes += Int64(s.st_size) }
        }
        let database = try CaseDatabase(path: dir + "/siphon.db")
        let sink = BatchSink(batch: self, found: found, rows: assigned.rows, progress: progress, report: report, database: database)
        // Read-ahead only where a core would otherwise idle.
        let session = ScanSession(jobs: configuration.jobs)
        let ahead = configuration.readAhead ?? (configuration.jobs * 2 <= ScanSession.processors)
        let scanInputs = inputs.map { i -> ScanInput in
            var i = i
            i.options.readAhead = ahead
            return i
        }
        var stop: (@Sendable () -> Bool)?
        if configuration.stopOnSignal, siphon_install_stop_handlers() == 0 {
            siphon_reset_stop()
            stop = { siphon_stop_signal() != 0 }
        }
        let summary: ScanSession.Summary
        if let tick {
            summary = session.run(scanInputs, sink: sink, stop: stop) { tick(sink.snapshot) }
        } else {
            summary = session.run(scanInputs, sink: sink, stop: stop)
        }
        let stoppedBy: Int32? = summary.notStarted > 0 && siphon_stop_signal() != 0 ? siphon_stop_signal() : nil
        let fleet = try FleetBuilder.build(folder: dir, version: configuration.version, known: sink.records, database: database)
        let mine = sink.records.values.sorted { $0.capture.utf8.lexicographicallyPrecedes($1.capture.utf8) }
        return Outcome(progress: sink.snapshot, stoppedBy: stoppedBy, records: mine, unmatchedRows: assigned.unmatched, fleet: fleet)
    }
}

/// The batch's sink: decides per capture whether earlier results stand, and writes each capture's outputs.
final class BatchSink: ScanSink, @unchecked Sendable {
    let batch: Batch
    let found: [FoundFile]
    let rows: [String: DeviceTable.Row]
    let report: (@Sendable (CaptureRecord, BatchDisposition) -> Void)?
    let fingerprint: String
    private let lock = NSLock()
    private var counters: BatchProgress
    /// Per input being scanned: its record so far and its partial folder.
    private var pending: [Int: Pending] = [:]
    /// The records of this run (scanned, reused, skipped), by slot: the fleet is built without reading them again.
    private var done: [String: CaptureRecord] = [:]
    /// Each capture's rows go in as soon as it is done (the final pass only checks).
    let database: CaseDatabase

    init(batch: Batch, found: [FoundFile], rows: [String: DeviceTable.Row], progress: BatchProgress,
         report: (@Sendable (CaptureRecord, BatchDisposition) -> Void)?, database: CaseDatabase) {
        self.database = database
        self.batch = batch
        self.found = found
        self.rows = rows
        self.report = report
        counters = progress
        fingerprint = textDigest(batch.configuration.fingerprint)
    }

    var records: [String: CaptureRecord] {
        lock.lock()
        defer { lock.unlock() }
        return done
    }

    var snapshot: BatchProgress {
        lock.lock()
        defer { lock.unlock() }
        return counters
    }

    var dir: String { batch.configuration.output }

    func begin(_ index: Int, _ input: ScanInput) -> ScanStart {
        let file = found[index]
        let slot = CaptureFinder.slot(for: file.path)
        var record = CaptureRecord(capture: file.path, slot: slot, status: .scanned)
        if let row = rows[file.path] {
            record.label = row.label
            record.model = row.model
            record.attributes = row.attributes.isEmpty ? nil : row.attributes.sorted { $0.key < $1.key }.map { Attribute(name: $0.key, value: $0.value) }
        }
        if let why = file.refused {
            record.status = .unreadable
            record.error = "\(file.path): \(why)"
            finishWithoutScan(record, .scanned, size: 0)
            return .skip
        }
        if let why = file.notCapture {
            record.status = .skipped
            record.error = why
            if let earlier = try? FleetBuilder.readRecord(dir + "/captures/" + slot), earlier == record {
                count(earlier, .skipped, size: 0, scannedBytes: 0)
                report?(earlier, .skipped)
            } else {
                finishWithoutScan(record, .skipped, size: 0)
            }
            return .skip
        }
        // Earlier results stand when their input key is this capture's: its content hash, known without reading
        // the file again when its size, modification time and inode are those recorded beside the results.
        let identity = FileIdentity(path: file.path)
        if !batch.configuration.force, let earlier = try? FleetBuilder.readRecord(dir + "/captures/" + slot),
           earlier.capture == record.capture, let earlierSHA = earlier.sha256, let identity {
            let folder = dir + "/captures/" + slot
            var sha: String?
            if let (known, knownSHA) = FileIdentity.cached(in: folder), known == identity, knownSHA == earlierSHA { sha = earlierSHA }
            if sha == nil, let d = try? fileDigest(file.path) {
                sha = d.sha256
                if d.sha256 == earlierSHA { identity.save(sha: earlierSHA, in: folder) }
            }
            if let sha, inputKey(sha, file.path) == earlier.inputKey {
                count(earlier, .reused, size: earlier.size ?? 0, scannedBytes: 0)
                report?(earlier, .reused)
                return .skip
            }
        }
        let partial = dir + "/.partial/" + slot
        removeTree(partial, keepRoot: false)
        guard mkdir(partial, 0o755) == 0 else {
            record.status = .unreadable
            record.error = "\(partial): cannot write: \(String(cString: strerror(errno)))"
            count(record, .scanned, size: 0, scannedBytes: 0)
            report?(record, .scanned)
            return .skip
        }
        // The events wait in a spool until the provenance (the capture's hash, span, coverage) is known: in memory
        // for a small capture (no temporary file made and deleted per capture), in a temporary file past 1 MiB.
        let output = EventOutput.spool()
        // The content hash is taken as the scan reads the file (one pass), finished after it.
        let hasher = ContentHasher()
        let log = batch.configuration.evidenceSeverity != nil ? FrameFlowLog() : nil
        lock.lock()
        pending[index] = Pending(record: record, partial: partial, hasher: hasher, identity: identity, log: log)
        lock.unlock()
        return .scan(output, observer: hasher, frameLog: log)
    }

    struct Pending {
        var record: CaptureRecord
        var partial: String
        var hasher: ContentHasher
        var identity: FileIdentity?
        var log: FrameFlowLog?
    }

    func inputKey(_ sha256: String, _ path: String) -> String {
        textDigest(["siphon-batch-1", fingerprint, sha256, rows[path]?.canonical ?? ""].joined(separator: "\n"))
    }

    func end(_ index: Int, _ input: ScanInput, _ result: CaptureScanner.Result, output: EventOutput?) {
        lock.lock()
        guard let p = pending.removeValue(forKey: index) else {
            lock.unlock()
            return
        }
        lock.unlock()
        var record = p.record
        let partial = p.partial
        record.fill(from: result)
        // The rest of the file (after damage, or what the reader did not need) completes the hash. A file that
        // changed while it was read (a capture still being written) gets no input key: never reused.
        if let digest = try? p.hasher.finish(path: record.capture) {
            record.sha256 = digest.sha256
            record.size = digest.size
            if let identity = p.identity, FileIdentity(path: record.capture) == identity {
                record.inputKey = inputKey(digest.sha256, record.capture)
                identity.save(sha: digest.sha256, in: partial)
            }
        }
        var provenance: Provenance?
        if let setup = batch.configuration.provenance {
            let p = setup.with(
                input: .init(capture: record.capture, kind: "file", size: record.size, sha256: record.sha256, format: result.format),
                statistics: result.statistics)
            provenance = p
            record.producedBy = ProducedBy(p, configuration: batch.configuration.fingerprint)
        }
        do {
            try writeOutputs(of: record, result: result, spool: output, provenance: provenance, log: p.log, in: partial)
        } catch {
            // An output failure is not the capture's: nothing of it is kept, the fleet says why, and it is scanned
            // again next time (no input key).
            record.status = .unreadable
            record.error = "\(dir): \(error.description)"
            record.devices = []
            record.inputKey = nil
            finishWithoutScan(record, .scanned, size: record.size ?? 0)
            return
        }
        do {
            let sha = try FleetBuilder.writeRecord(record, to: partial)
            try install(partial, slot: record.slot)
            try? database.upsert(record, recordSHA256: sha, folder: dir)
        } catch {
            record.status = .unreadable
            record.error = "\(error)"
            record.inputKey = nil
        }
        count(record, .scanned, size: record.size ?? 0, scannedBytes: record.size ?? 0)
        report?(record, .scanned)
    }

    /// A capture's events (its provenance first, then the spooled events), HTML report and evidence files, in its
    /// partial folder.
    private func writeOutputs(
        of record: CaptureRecord, result: CaptureScanner.Result, spool: EventOutput?, provenance: Provenance?, log: FrameFlowLog?,
        in partial: String
    ) throws(BatchError) {
        if let spool {
            let events: EventOutput
            do { events = try EventOutput(path: partial + "/events.jsonl") } catch { throw BatchError("cannot write the events: \(error.message)") }
            if let provenance { events.write(EventEncoder.provenance(provenance, capture: record.capture)) }
            spool.copy(to: events)
            events.flush()
            if let failure = events.writeError { throw BatchError("cannot write the events: \(failure)") }
        }
        // Nothing more for a capture that could not be opened.
        guard result.error.map({ $0.offset != nil }) ?? true else { return }
        if batch.configuration.html {
            let page = HTMLReport.render(
                [HTMLReport.Capture(
                    name: record.capture, statistics: result.statistics, verdicts: result.verdicts, link: result.link, provenance: provenance)],
                home: batch.configuration.home, version: batch.configuration.version)
            do { try writeFile(partial + "/report.html", Array(page.utf8)) } catch { throw BatchError("cannot write the HTML report: \(error)") }
        }
        if let log, let severity = batch.configuration.evidenceSeverity {
            do {
                _ = try CaseFile.writeEvidence(
                    result: result, log: log, capture: record.capture, sha256: record.sha256, severity: severity,
                    folder: partial + "/evidence")
            } catch {
                throw BatchError("cannot write the evidence: \(error)")
            }
        }
    }

    /// A record with no scan behind it (a file that is not a capture): written alone in its folder.
    private func finishWithoutScan(_ record: CaptureRecord, _ disposition: BatchDisposition, size: Int64) {
        let partial = dir + "/.partial/" + record.slot
        removeTree(partial, keepRoot: false)
        if mkdir(partial, 0o755) == 0, let sha = try? FleetBuilder.writeRecord(record, to: partial), (try? install(partial, slot: record.slot)) != nil {
            try? database.upsert(record, recordSHA256: sha, folder: dir)
        }
        count(record, disposition, size: size, scannedBytes: 0)
        report?(record, disposition)
    }

    private func install(_ partial: String, slot: String) throws(BatchError) {
        try installFolder(partial, as: dir + "/captures/" + slot)
    }

    private func count(_ record: CaptureRecord, _ disposition: BatchDisposition, size: Int64, scannedBytes: Int64) {
        lock.lock()
        done[record.slot] = record
        counters.filesDone += 1
        counters.bytesDone += size
        counters.bytesScanned += scannedBytes
        counters.alerts += record.alerts
        switch disposition {
        case .scanned: counters.scanned += 1
        case .reused: counters.reused += 1
        case .skipped: counters.skipped += 1
        }
        if record.status.failed { counters.failed += 1 }
        lock.unlock()
    }
}

/// Moves a complete folder (`partial`, under `.partial`) to `final`, replacing an earlier one: the earlier one is
/// moved aside first, so a kill in between leaves no folder there (scanned again next time), never half of one.
func installFolder(_ partial: String, as final: String) throws(BatchError) {
    let old = partial + ".old"
    if rename(final, old) != 0 && errno != ENOENT {
        throw BatchError("\(final): cannot replace: \(String(cString: strerror(errno)))")
    }
    guard rename(partial, final) == 0 else {
        let reason = String(cString: strerror(errno))
        rename(old, final)  // the earlier results stay, rather than none
        throw BatchError("\(final): cannot write: \(reason)")
    }
    removeTree(old, keepRoot: false)
}

/// An exclusive `flock` on `DIR/.lock` for as long as a batch writes the folder.
struct FolderLock {
    let fd: Int32
    init(_ dir: String) throws(BatchError) {
        fd = open(dir + "/.lock", O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw BatchError("\(dir)/.lock: cannot open: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw BatchError("\(dir): another siphon batch is writing this folder")
        }
    }
    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Removes `path` and everything under it (its contents only with `keepRoot`). Symbolic links are removed, not
/// followed.
func removeTree(_ path: String, keepRoot: Bool) {
    var s = stat()
    guard lstat(path, &s) == 0 else { return }
    if (s.st_mode & S_IFMT) == S_IFDIR {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            removeTree(path + "/" + name, keepRoot: false)
        }
        if !keepRoot { rmdir(path) }
    } else {
        unlink(path)
    }
}

/// SHA-256 of a capture's bytes as the reader reads them, then of the rest of the file.
public final class ContentHasher: CaptureByteObserver, @unchecked Sendable {
    private var hasher = SHA256()
    private var count: Int64 = 0

    public init() {}

    public func observe(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        count += Int64(bytes.count)
    }

    /// Reads what the scan left of the file (from the first byte not seen; all of it when nothing was seen) and
    /// returns the digest and size.
    public func finish(path: String) throws(BatchError) -> (sha256: String, size: Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BatchError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard lseek(fd, off_t(count), SEEK_SET) == off_t(count) else { throw BatchError("\(path): cannot seek") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw BatchError("\(path): cannot read: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            observe(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return (hasher.finalize().hex, count)
    }
}

/// What identifies a file's contents without reading them (size, modification time, inode, device), kept beside
/// a capture's results with its SHA-256 (`source.stat`) so that a rerun does not hash an unchanged file again
/// (as git's index does). A file changed in place keeps none of these (or changes its size); `--force` rescans.
struct FileIdentity: Equatable {
    var text: String

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        text = "\(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ino) \(st.st_dev)"
    }

    private init(text: String) { self.text = text }

    /// The identity and SHA-256 recorded in `folder`, if any.
    static func cached(in folder: String) -> (FileIdentity, String)? {
        guard let data = FileManager.default.contents(atPath: folder + "/source.stat"),
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").first,
              let space = line.lastIndex(of: " ") else { return nil }
        return (FileIdentity(text: String(line[..<space])), String(line[line.index(after: space)...]))
    }

    func save(sha: String, in folder: String) {
        let tmp = folder + "/source.stat.tmp"
        if (try? writeFile(tmp, Array("\(text) \(sha)\n".utf8))) != nil { rename(tmp, folder + "/source.stat") }
    }
}
