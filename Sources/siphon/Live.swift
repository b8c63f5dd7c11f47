import ArgumentParser
import Siphon
import Foundation
import Crypto
import SiphonFleet

#if canImport(Glibc)
import Glibc
#endif

struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Sniff live interfaces: alerts as they fire, the report when stopped (Ctrl-C, SIGTERM, --duration, --packets).",
        discussion: "Runs the same analysis as `scan` on what the interfaces capture. Alerts stream to standard "
            + "error (and to --json, a line as each fires) while the capture runs, with a status line on a terminal; "
            + "on stop, what the kernel still holds is read, every flow ends, and the report is written as `scan` "
            + "writes it.\n\nExit status: 0 when the capture ran, 1 under --fail-on, 2 when an interface cannot be "
            + "captured on.")

    @Option(name: [.customShort("i"), .customLong("interface")], help: ArgumentHelp("An interface to capture on; repeatable.", valueName: "name"))
    var interfaces: [String] = []

    @OptionGroup var analysis: AnalysisOptions

    @OptionGroup var report: ReportOptions

    @Option(help: ArgumentHelp("Write the raw capture to this folder as pcapng files (one interface block per interface), replayable with `siphon scan`.", valueName: "dir"))
    var write: String?

    @Option(help: ArgumentHelp("With --write: start a new file once the current one holds this many megabytes (10^6 bytes).", valueName: "MB"))
    var ringSize: Double?

    @Option(help: ArgumentHelp("With --write: start a new file every this many seconds.", valueName: "seconds"))
    var ringSeconds: Double?

    @Option(help: ArgumentHelp("With --write: keep only the newest N files.", valueName: "N"))
    var ringFiles: Int?

    @Option(help: ArgumentHelp("Kernel capture buffer per interface, in KiB (as tcpdump's -B).", valueName: "KiB"))
    var bufferSize: Int?

    @Flag(help: "Hand each packet over as it arrives (lowest latency, one wake-up per packet) instead of in kernel blocks handed over when full or after --block-timeout.")
    var immediate = false

    @Option(help: ArgumentHelp("Without --immediate: the longest a packet waits in a kernel block, in milliseconds.", valueName: "ms"))
    var blockTimeout: Int = 50

    @Option(name: [.customShort("s"), .customLong("snaplen")], help: ArgumentHelp("Bytes kept of each packet.", valueName: "bytes"))
    var snaplen: Int32 = 262_144

    @Flag(name: [.customShort("p"), .customLong("no-promiscuous-mode")], help: "Do not put the interfaces in promiscuous mode.")
    var noPromiscuous = false

    @Option(help: ArgumentHelp("Stop after this many seconds.", valueName: "seconds"))
    var duration: Double?

    @Option(name: [.customShort("c"), .customLong("packets")], help: ArgumentHelp("Stop after this many packets.", valueName: "count"))
    var packets: UInt64?

    @Option(name: .customShort("Z"), help: ArgumentHelp("Once the interfaces are open, run as this user (as tcpdump's -Z): no packet is parsed as root.", valueName: "user"))
    var user: String?

    @Option(help: ArgumentHelp("Seconds between plain status lines when standard error is not a terminal (0: none).", valueName: "seconds"))
    var statusInterval: Double = 10

    func validate() throws {
        if interfaces.isEmpty { throw ValidationError("give at least one interface with -i") }
        if let d = duration, !(d > 0 && d <= 1e8) { throw ValidationError("--duration must be a positive number of seconds (at most 10^8)") }
        if let s = ringSize, !(s > 0 && s <= 1e9) { throw ValidationError("--ring-size must be a positive number of megabytes") }
        if let s = ringSeconds, !(s > 0 && s <= 1e8) { throw ValidationError("--ring-seconds must be a positive number of seconds (at most 10^8)") }
        if let n = ringFiles, n < 1 { throw ValidationError("--ring-files must be at least 1") }
        if write == nil && report.caseFile.folder == nil && (ringSize != nil || ringSeconds != nil || ringFiles != nil) {
            throw ValidationError("--ring-size, --ring-seconds and --ring-files go with --write")
        }
        if let b = bufferSize, !(1...2_097_151).contains(b) { throw ValidationError("--buffer-size must be 1 to 2,097,151 KiB") }
        if snaplen < 1 { throw ValidationError("--snaplen must be at least 1") }
        if !(1...1000).contains(blockTimeout) { throw ValidationError("--block-timeout must be 1 to 1,000 ms") }
        if report.caseFile.folder != nil {
            if write != nil { throw ValidationError("with --case the capture is written to DIR/capture (no --write)") }
            if ringFiles != nil { throw ValidationError("--ring-files removes capture files a case needs") }
            if report.json != nil { throw ValidationError("with --case the events go to DIR/events.jsonl (no --json)") }
        }
    }

    func run() throws {
        let options = try analysis.scanOptions(verdicts: true, closeTimeout: 1)
        let caseDir = report.caseFile.folder
        let (output, key) = try report.openOutputs()
        output?.lineBuffered = true
        // A case keeps the capture itself: the evidence files are cut from it when the capture stops.
        let write = self.write ?? caseDir.map { $0 + "/capture" }

        var live = LiveOptions(interfaces: interfaces)
        live.filter = analysis.filter
        live.snapLength = snaplen
        live.promiscuous = !noPromiscuous
        live.bufferSize = bufferSize.map { Int32(clamping: $0 * 1024) }
        live.maximumPackets = packets
        live.immediate = immediate
        live.blockTimeout = .milliseconds(blockTimeout)
        live.duration = duration.map { .nanoseconds(Int64($0 * 1e9)) }
        if let write {
            var ring = RingOptions(directory: write)
            ring.fileBytes = ringSize.map { Int($0 * 1e6) }
            ring.fileDuration = ringSeconds.map { .nanoseconds(Int64($0 * 1e9)) }
            ring.files = ringFiles
            live.ring = ring
        }
        let source: LiveCapture
        do { source = try LiveCapture(options: live) } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
        if let user {
            // The ring's files are created later, as that user: a folder Siphon made is handed over (an existing
            // one is not: it must already be writable by that user). The HTML report is created now and handed
            // over too, then written in place at the end.
            if let entry = getpwnam(user) {
                let (uid, gid) = (entry.pointee.pw_uid, entry.pointee.pw_gid)
                if let write, source.ring?.createdDirectory == true { _ = chown(write, uid, gid) }
                if let caseDir { _ = chown(caseDir, uid, gid) }
                if let html = report.html {
                    let fd = open(html, O_WRONLY | O_CREAT, 0o644)
                    if fd < 0 {
                        printError("siphon: \(html): cannot create the report: \(String(cString: strerror(errno)))")
                        throw ExitCode(2)
                    }
                    _ = fchown(fd, uid, gid)
                    close(fd)
                }
            }
            do { try Privileges.drop(to: user) } catch {
                printError("siphon: \(error)")
                throw ExitCode(2)
            }
        }

        // The provenance comes first, with what is known before the first packet (the interfaces, the program, the
        // rules, data and options, who started it and when); the coverage is in the stats event and the verdicts.
        let setup = analysis.provenance(options, reproducible: report.reproducible)
        let provenance = setup.with(
            input: .init(capture: source.name, kind: "interface",
                         format: source.interfaces.map { "\($0.name): \($0.linkType)" }.joined(separator: ", ")),
            statistics: nil)
        output?.write(EventEncoder.provenance(provenance, capture: source.name))
        let pipeline = ScanPipeline(capture: source.name, options: options, output: output)
        pipeline.recordsInterfaces = true
        if caseDir != nil { pipeline.frameLog = FrameFlowLog() }
        let monitor = LiveMonitor(source: source, color: colorOnStandardError, statusInterval: statusInterval, quiet: report.quiet)
        if !report.quiet {
            printError("siphon: capturing on \(source.interfaces.map { "\($0.name) (\($0.linkType))" }.joined(separator: ", "))"
                + (live.filter.map { ", filter \"\($0)\"" } ?? "") + (write.map { ", writing to \($0)" } ?? "")
                + "; Ctrl-C stops and writes the report")
        }
        var failure: CaptureError?
        do {
            try CaptureScanner.feed(pipeline, from: source) { monitor.tick($0) }
        } catch {
            failure = error
            pipeline.record(error: error)
        }
        // Drops as they stand after the last read (the ring's last file gets them too).
        let statistics = pipeline.finish(interfaceDrops: source.interfaceDrops, kernelDrops: source.kernelDrops)
        monitor.tick(pipeline, final: true)
        var ringError: CaptureError?
        do { try source.closeRing() } catch { ringError = error }
        output?.flush()
        // What the capture was, now that it is over (coverage included), and its results, as scan's.
        let final = setup.with(input: provenance.input!, statistics: statistics)
        let result = CaptureScanner.Result(
            statistics: statistics, hosts: pipeline.hosts, alerts: pipeline.detection?.raised ?? [], verdicts: pipeline.verdicts,
            link: pipeline.link, format: "pcapng")
        if !report.quiet {
            printError(summary(source.name, result, final, color: colorOnStandardError))
            if let ring = source.ring {
                printError("  written: \(ring.packetsWritten) packets in \(ring.files.count) file\(ring.files.count == 1 ? "" : "s"): "
                    + ring.files.joined(separator: ", ") + (ring.written.count > ring.files.count ? " (\(ring.written.count - ring.files.count) older removed)" : ""))
            }
        }
        let page = HTMLReport.Capture(name: source.name, statistics: statistics, verdicts: pipeline.verdicts, link: pipeline.link, provenance: final)
        try report.writeHTML([page], home: options.geo?.homeCountries ?? [], atomically: user == nil)
        if let caseDir {
            if let why = pipeline.frameLog?.spillError { printError("siphon: \(source.name): \(why)") }
            try writeCase(caseDir, result: result, page: page, log: pipeline.frameLog, source: source, provenance: final, key: key,
                          home: options.geo?.homeCountries ?? [])
        }
        if let failure {
            printError("siphon: \(failure)")
            throw ExitCode(2)
        }
        if let ringError {
            printError("siphon: \(ringError)")
            throw ExitCode(2)
        }
        try report.exitPolicy(worst: result.alerts.map(\.severity).max())
    }
}

extension Live {
    /// The case of a live capture, once it stopped: the HTML report, the summary, an evidence file per alert (cut from
    /// the capture files the case holds), then the manifest.
    func writeCase(
        _ dir: String, result: CaptureScanner.Result, page: HTMLReport.Capture, log: FrameFlowLog?, source: LiveCapture,
        provenance: Provenance, key: Curve25519.Signing.PrivateKey?, home: Set<String>
    ) throws {
        try report.writeCase([page], summary: summary(source.name, result, provenance, color: false), home: home)
        let files = source.ring?.files ?? []
        var entries: [CaseFile.Entry] = []
        for f in files {
            guard let d = try? fileDigest(f) else { continue }
            entries.append(CaseFile.Entry(path: String(f.dropFirst(dir.count + 1)), size: d.size, sha256: d.sha256))
        }
        if let log, !files.isEmpty {
            do {
                _ = try CaseFile.writeEvidence(
                    result: result, log: log, capture: source.name, sha256: nil, severity: report.caseFile.severity,
                    folder: dir + "/evidence", files: files)
            } catch {
                printError("siphon: evidence: \(error)")
            }
        }
        try report.caseFile.seal(captures: entries, analysis: provenance.analysis, key: key, quiet: report.quiet)
    }
}

/// What `live` shows while it runs: each alert as it fires, and a status line (rewritten in place on a terminal,
/// a plain line every `statusInterval` seconds otherwise).
final class LiveMonitor {
    let source: LiveCapture
    let color: Bool
    let terminal: Bool
    let statusInterval: Double
    let quiet: Bool
    private var shown = 0
    private var bySeverity: [Severity: Int] = [:]
    private var lastStatus: Timestamp = .zero
    private var statusOnScreen = false

    init(source: LiveCapture, color: Bool, statusInterval: Double, quiet: Bool) {
        self.source = source
        self.color = color
        terminal = isatty(2) == 1
        self.statusInterval = statusInterval
        self.quiet = quiet
    }

    func tick(_ pipeline: ScanPipeline, final: Bool = false) {
        guard let detection = pipeline.detection else { return }
        let raised = detection.raised
        if raised.count > shown {
            for a in raised[shown...] {
                bySeverity[a.severity, default: 0] += 1
                if !quiet { show(a) }
            }
            shown = raised.count
        }
        guard !quiet else { return }
        let now = source.clock ?? .zero
        if final {
            if statusOnScreen { writeStandardErrorRaw("\r\u{1B}[K") }
            statusOnScreen = false
            return
        }
        if terminal {
            guard (now - lastStatus).secondsDouble >= 0.5 else { return }
            lastStatus = now
            writeStandardErrorRaw("\r\u{1B}[K" + status(pipeline))
            statusOnScreen = true
        } else if statusInterval > 0, (now - lastStatus).secondsDouble >= statusInterval {
            if lastStatus != .zero { printError(status(pipeline)) }
            lastStatus = now
        }
    }

    private func show(_ a: Alert) {
        if statusOnScreen { writeStandardErrorRaw("\r\u{1B}[K") }
        statusOnScreen = false
        var line = Self.clock(a.timestamp) + " " + paint(a.severity, a.severity.description.uppercased()) + " " + a.category.rawValue
            + " " + a.deviceID.description
        line += ": " + a.message
        printError(line)
    }

    private func status(_ p: ScanPipeline) -> String {
        let s = p.statistics
        let alerts = Severity.allCases.reversed().compactMap { level in bySeverity[level].map { "\($0) \(level)" } }
        let drops = source.dropsByInterface
        let kernel = drops.compactMap(\.kernel).reduce(0, +), interface = drops.compactMap(\.interface).reduce(0, +)
        return "siphon live \(source.name): \(s.packets) packets, \(p.flows.createdCount) flows (\(p.flows.activeCount) open), "
            + "\(p.detection?.devices.count ?? 0) devices, alerts: \(alerts.isEmpty ? "none" : alerts.joined(separator: ", ")), "
            + "drops: kernel \(kernel), interface \(interface)"
    }

    private func paint(_ s: Severity, _ text: String) -> String {
        guard color else { return text }
        let code = switch s {
        case .critical, .high: "31;1"
        case .medium: "33"
        case .low: "36"
        default: "2"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    /// HH:MM:SS (UTC) of a capture time.
    static func clock(_ t: Timestamp) -> String {
        let s = ((t.nanoseconds / 1_000_000_000) % 86_400 + 86_400) % 86_400
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return two(s / 3600) + ":" + two(s / 60 % 60) + ":" + two(s % 60)
    }
}

/// Writes to standard error without a newline (the status line).
func writeStandardErrorRaw(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}
