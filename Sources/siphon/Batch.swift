import ArgumentParser
import Foundation
import Siphon
import SiphonFleet

#if canImport(Glibc)
import Glibc
#endif

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Scan many captures on every core: per-capture reports, the fleet report and the case database.",
        discussion: """
            Scans every capture under the given files and folders (recursively; pcap, pcapng, gzip-compressed) and
            writes, under --out DIR: captures/SLOT/{events.jsonl,verdicts.json,report.html} per capture (each folder
            written whole or not at all), fleet.json and fleet.html (endpoints shared by devices, devices by verdict,
            clusters, every capture's status) and siphon.db (SQLite; schema in docs/batch.md).
            A rerun reuses the results of captures already scanned with the same inputs (capture, Siphon build, rules,
            data, options, devices row) unless --force; a killed batch resumes where it stopped.
            Exit status: 0; 1 when --fail-on is reached; 2 on bad usage or when a capture was unreadable or damaged
            (the batch still scans the others and lists it in the fleet report); 130 (143) when SIGINT (SIGTERM)
            stopped it: captures being scanned finish, no other starts, the fleet report covers what is done; two
            more signals end it at once (whole capture folders or none either way).
            """)

    @Argument(help: "Capture files and folders.")
    var paths: [String]

    @Option(help: ArgumentHelp("The output folder.", valueName: "dir"))
    var out: String?

    @OptionGroup(title: "Case folder (instead of --out)")
    var caseFile: CaseOptions

    @Option(name: [.customShort("j"), .customLong("jobs")], help: ArgumentHelp("Captures scanned at once (default: the processors online).", valueName: "N"))
    var jobs: Int = ScanSession.processors

    @Flag(help: "Scan again captures whose results are already in the output folder with the same inputs.")
    var force = false

    @Option(help: ArgumentHelp("Scan only share K of N (by the SHA-256 of each file's path): N machines or job-array tasks each run one share into their own folder; `siphon fleet merge` joins them.", valueName: "K/N"))
    var shard: String?

    @Option(help: ArgumentHelp("CSV of the bench sessions: capture, label, model, imei, imsi, iccid, phone, serial, mac, ip, ... (docs/batch.md).", valueName: "file.csv"))
    var devices: String?

    @Option(help: ArgumentHelp("Exit 1 when a device of this run's captures has a verdict this severe or worse (info, low, medium, high, critical).", valueName: "severity"))
    var failOn: Severity?

    @Option(help: ArgumentHelp("Progress on standard error: bar (a line redrawn in place), lines (one per capture), none. Default: bar on a terminal, lines otherwise.", valueName: "style"))
    var progress: ProgressStyle?

    @Option(help: ArgumentHelp("Read each capture a block ahead on a second thread: auto (when there are at least twice as many processors as jobs), on, off.", valueName: "mode"))
    var readAhead: ReadAheadMode = .auto

    @Flag(name: .shortAndLong, help: "No progress and no summary on standard error.")
    var quiet = false

    @Flag(help: "Leave the host, user and wall-clock time of the run out of each capture's provenance (byte-identical reports from two runs).")
    var reproducible = false

    @OptionGroup var analysis: AnalysisOptions

    enum ProgressStyle: String, ExpressibleByArgument { case bar, lines, none }
    enum ReadAheadMode: String, ExpressibleByArgument { case auto, on, off }

    func validate() throws {
        if jobs < 1 || jobs > 1024 { throw ValidationError("-j must be between 1 and 1024") }
        if let shard, Shard(shard) == nil { throw ValidationError("--shard takes K/N with 1 <= K <= N, e.g. 2/8") }
        if analysis.extractStreams != nil { throw ValidationError("--extract-streams is for one capture (scan), not a batch") }
        if (out == nil) == (caseFile.folder == nil) { throw ValidationError("give the output folder: --out DIR, or --case DIR for a case") }
    }

    func run() throws {
        let out = self.out ?? caseFile.folder!
        let key = try caseFile.signingKey()
        var options = try analysis.scanOptions(verdicts: true)
        options.readAhead = false
        var table: DeviceTable?
        if let devices {
            do { table = try DeviceTable.load(path: devices) } catch {
                printError("siphon: \(error)")
                throw ExitCode(2)
            }
        }
        let version = SiphonCommand.configuration.version
        // Results are reused only from runs that wrote the same evidence files.
        let fingerprint = analysis.fingerprint() + "\ncase-evidence=" + (caseFile.folder != nil ? caseFile.severity.description : "none")
        var configuration = BatchConfiguration(output: out, fingerprint: fingerprint, version: version)
        configuration.evidenceSeverity = caseFile.folder != nil ? caseFile.severity : nil
        configuration.jobs = jobs
        configuration.force = force
        configuration.shard = shard.flatMap(Shard.init)
        configuration.readAhead = readAhead == .auto ? nil : readAhead == .on
        configuration.stopOnSignal = true
        configuration.home = options.geo?.homeCountries ?? []
        configuration.provenance = analysis.provenance(options, reproducible: reproducible)
        let style: ProgressStyle = quiet ? .none : progress ?? (isatty(2) == 1 ? .bar : .lines)
        let display = ProgressDisplay(style: style)
        let batch = Batch(configuration: configuration, options: options, devices: table)
        let outcome: Batch.Outcome
        let report: (@Sendable (CaptureRecord, BatchDisposition) -> Void)? = style == .lines ? { @Sendable r, d in display.line(r, d) } : nil
        let tick: ((BatchProgress) -> Void)? = style == .bar ? { display.bar($0) } : nil
        do {
            outcome = try batch.run(paths: paths, report: report, tick: tick)
        } catch {
            display.clear()
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
        display.clear()
        if caseFile.folder != nil {
            let entries = outcome.fleet.captures.compactMap { c in c.sha256.map { CaseFile.Entry(path: c.capture, size: c.size ?? 0, sha256: $0) } }
            try caseFile.seal(captures: entries, analysis: configuration.provenance?.analysis, key: key, quiet: quiet)
        }
        for row in outcome.unmatchedRows {
            printError("siphon: \(devices ?? ""):\(row.line): '\(row.capture)' matches no capture of this batch")
        }
        let p = outcome.progress
        if !quiet {
            let rate = display.elapsed > 0 ? Double(p.bytesScanned) / display.elapsed : 0
            printError("siphon batch: \(p.files) files in \(String(format: "%.1f", display.elapsed)) s: \(p.scanned) scanned now (\(ByteSize.text(UInt64(p.bytesScanned))), \(ByteSize.text(UInt64(rate)))/s), \(p.reused) reused from an earlier run, \(p.skipped) not captures, \(p.failed) failed")
            printError("fleet (every capture in \(out)): " + outcome.fleet.summary())
            printError("reports: \(out)/fleet.json, \(out)/fleet.html, \(out)/siphon.db")
        }
        if let signal = outcome.stoppedBy {
            printError("siphon batch: stopped by \(signal == SIGTERM ? "SIGTERM" : "SIGINT") after \(p.filesDone) of \(p.files) files (the fleet report covers them); the same command again scans the rest")
            throw ExitCode(128 + signal)
        }
        if p.failed > 0 { throw ExitCode(2) }
        // --fail-on: this run's captures (not earlier ones the folder also holds).
        let worst = outcome.records.flatMap(\.devices).compactMap { Severity(name: $0.severity ?? "") }.max()
        if let failOn, let worst, worst >= failOn { throw ExitCode(1) }
    }
}

/// The progress on standard error: a bar redrawn in place, or a line per capture.
final class ProgressDisplay: @unchecked Sendable {
    let style: BatchCommand.ProgressStyle
    let start = DispatchTime.now()
    private let lock = NSLock()
    private var done = 0
    private var drawn = false

    init(style: BatchCommand.ProgressStyle) { self.style = style }

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }

    func line(_ record: CaptureRecord, _ disposition: BatchDisposition) {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        var text = "siphon: [\(done)] \(record.capture): "
        switch (disposition, record.status) {
        case (.reused, _): text += "reused (same inputs), "
        case (_, .skipped): text += "skipped: \(record.error ?? "not a capture")"
        case (_, .unreadable): text += "unreadable: \(record.error ?? "")"
        case (_, .damaged): text += "damaged: \(record.error ?? ""); "
        default: break
        }
        if record.status == .scanned || record.status == .damaged {
            // The worst device's verdict, in its own words.
            let rank = { (d: DeviceRecord) in Severity(name: d.severity ?? "")?.rawValue ?? -1 }
            let worst = record.devices.max { rank($0) < rank($1) }.flatMap { rank($0) >= 0 ? $0.verdict : nil } ?? DeviceVerdict.label(nil)
            text += "\(record.packets) packets, \(record.devices.count) device\(record.devices.count == 1 ? "" : "s"), \(record.alertsAboveInfo) alerts above info, \(worst)"
        }
        printError(text)
    }

    func bar(_ p: BatchProgress) {
        let t = elapsed
        let rate = t > 0 ? Double(p.bytesScanned) / t : 0
        let remaining = Double(max(0, p.bytes - p.bytesDone))
        let eta = rate > 0 ? remaining / rate : 0
        let width = 24
        let fill = p.files > 0 ? p.filesDone * width / p.files : width
        let bar = String(repeating: "#", count: fill) + String(repeating: ".", count: width - fill)
        let etaText = p.filesDone == p.files ? "done" : rate > 0 ? "ETA \(Int(eta) / 60):" + String(format: "%02d", Int(eta) % 60) : "ETA --"
        let text = "[\(bar)] \(p.filesDone)/\(p.files) files  \(ByteSize.text(UInt64(rate)))/s  \(etaText)  alerts \(p.alerts)\(p.failed > 0 ? "  failed \(p.failed)" : "")"
        lock.lock()
        drawn = true
        lock.unlock()
        writeStandardErrorRaw("\r\u{1B}[K" + text)
    }

    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { writeStandardErrorRaw("\r\u{1B}[K") }
        drawn = false
    }
}

struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Work with batch output folders.", subcommands: [Merge.self])

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Join the output folders of sharded batches (--shard K/N) into one: the fleet report and the database of all their captures.",
            discussion: "The result equals what one unsharded batch over the same inputs writes.")

        @Argument(help: "Batch output folders.")
        var folders: [String]

        @Option(help: ArgumentHelp("The folder to write (may be one of the inputs).", valueName: "dir"))
        var out: String

        @Flag(name: .shortAndLong, help: "No summary on standard error.")
        var quiet = false

        func run() throws {
            do {
                let (fleet, copied) = try FleetBuilder.merge(folders, into: out, version: SiphonCommand.configuration.version)
                if !quiet {
                    printError("siphon fleet merge: \(copied) capture folders from \(folders.count) folders into \(out)")
                    printError(fleet.summary())
                }
                if fleet.totals.damaged + fleet.totals.unreadable > 0 { throw ExitCode(2) }
            } catch let error as BatchError {
                printError("siphon: \(error)")
                throw ExitCode(2)
            }
        }
    }
}
