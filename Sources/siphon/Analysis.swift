import ArgumentParser
import Siphon
import SiphonCore
import SiphonFleet
import Foundation
import Crypto

#if canImport(Glibc)
import Glibc
#endif

/// What every command that runs the pipeline takes (`scan`, `live`): flows, reassembly, detection, devices, data.
struct AnalysisOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .customLong("filter")], help: ArgumentHelp("BPF filter, as tcpdump takes it (live: compiled into the kernel).", valueName: "expression"))
    var filter: String?

    @Option(help: ArgumentHelp("Idle timeout of established TCP flows, in seconds.", valueName: "seconds"))
    var tcpTimeout: Double = 3600

    @Option(help: ArgumentHelp("Idle timeout of TCP flows without a handshake, in seconds.", valueName: "seconds"))
    var tcpUnestablishedTimeout: Double = 120

    @Option(help: ArgumentHelp("How long a closed or reset TCP flow waits for late packets before it is judged, in seconds (scan: 5, as Zeek; live: 1, so findings come out a second after a connection closes).", valueName: "seconds"))
    var tcpCloseTimeout: Double?

    @Option(help: ArgumentHelp("Idle timeout of UDP flows, in seconds.", valueName: "seconds"))
    var udpTimeout: Double = 120

    @Option(help: ArgumentHelp("Idle timeout of ICMP and other flows, in seconds.", valueName: "seconds"))
    var otherTimeout: Double = 120

    @Option(help: ArgumentHelp("Flows tracked at once; the longest-idle flow is ended early beyond it (the memory limit may set a lower one).", valueName: "count"))
    var maxFlows: Int = 1 << 20

    @Option(help: ArgumentHelp("Memory ceiling the scan's tables share (flows, reassembly, fragments, DNS names, ledgers, alerts kept), as Suricata's memcaps: what a budget refuses is evicted oldest-first or refused, and counted in the stats event's memory object. Binary units: 512M, 2G.", valueName: "size"))
    var memoryLimit: String = "1G"

    @Option(help: ArgumentHelp("Judge flows still open every this many seconds of capture time (foreign-endpoint, ioc-match for flows open that long); 0: only when flows end.", valueName: "seconds"))
    var openFlowInterval: Double = 60

    @Flag(help: "Add each TCP direction's SHA-256 (of the reassembled bytes) to flow events.")
    var streamHashes = false

    @Option(help: ArgumentHelp("Write each TCP direction's reassembled bytes to a file in this folder, named as tcpflow names them.", valueName: "dir"))
    var extractStreams: String?

    @Option(help: ArgumentHelp("Which copy of overlapping TCP bytes to keep: first, last, bsd, linux, windows.", valueName: "policy"))
    var overlapPolicy: OverlapPolicy = .first

    @Option(help: ArgumentHelp("Checksum validation: auto (verify; stop if over a tenth of the first 1,000 are bad), on, off. Packets with bad checksums are dropped, as their receiver would.", valueName: "mode"))
    var checksums: ChecksumValidation = .auto

    @Option(help: ArgumentHelp("TTL difference within a flow direction that marks a packet as a TTL outlier (evasion). Default: the rule pack's (5).", valueName: "hops"))
    var ttlLimit: UInt8?

    @Option(help: ArgumentHelp("Out-of-order bytes buffered per TCP direction before the hole is declared a gap.", valueName: "bytes"))
    var maxBufferedPerDirection: Int = 4 << 20

    @Option(help: ArgumentHelp("Out-of-order bytes buffered over all flows.", valueName: "bytes"))
    var maxBufferedTotal: Int = 64 << 20

    @Option(help: ArgumentHelp("Delivered TCP bytes the initiator's direction keeps (its last ones) to compare retransmissions of delivered data with, byte for byte (0: sampled bytes only).", valueName: "bytes"))
    var maxRetainedPerDirection: Int = 1 << 20

    @Flag(help: "Keep the responder's delivered bytes too, for the same comparison (by default its retransmissions are compared with sampled bytes: answers are most of a capture's bytes).")
    var retainResponder = false

    @Option(help: ArgumentHelp("Delivered TCP bytes all directions keep together for that comparison; what no window holds is counted (stats: unverified_retransmitted_bytes).", valueName: "bytes"))
    var maxRetainedTotal: Int = 64 << 20

    @Option(help: ArgumentHelp("HTTP body bytes kept per message for the identifier detectors.", valueName: "bytes"))
    var httpBodyDepth: Int = 4096

    @Option(help: ArgumentHelp("Rule pack: a YAML file or a directory of them (default: the embedded pack, rules/ of the source).", valueName: "path"))
    var rules: String?

    @Option(help: ArgumentHelp("The device's identifiers (YAML: imei, imsi, iccid, phone, mac, serial, other), matched with their encodings and hashes.", valueName: "file"))
    var identifiers: [String] = []

    @OptionGroup(title: "Geography and intelligence")
    var data: DataOptions

    @OptionGroup(title: "Devices")
    var devices: DeviceOptions

    func validate() throws {
        for (name, value) in [
            ("--tcp-timeout", tcpTimeout), ("--tcp-unestablished-timeout", tcpUnestablishedTimeout),
            ("--tcp-close-timeout", tcpCloseTimeout ?? 1), ("--udp-timeout", udpTimeout), ("--other-timeout", otherTimeout),
        ] where !(value > 0 && value < 1e9) {
            throw ValidationError("\(name) must be a positive number of seconds")
        }
        if maxFlows < 1 { throw ValidationError("--max-flows must be at least 1") }
        guard let limit = MemoryBudget.parse(memoryLimit), limit >= 16 << 20 else {
            throw ValidationError("--memory-limit must be a size of at least 16M (for example 512M or 2G)")
        }
        if !(openFlowInterval >= 0 && openFlowInterval < 1e9) { throw ValidationError("--open-flow-interval must be 0 or a positive number of seconds") }
        if maxBufferedPerDirection < 0 || maxBufferedTotal < 0 || maxRetainedPerDirection < 0 || maxRetainedTotal < 0 {
            throw ValidationError("buffer limits cannot be negative")
        }
    }

    /// Everything the results depend on, as text: the build (version, the linker's build ID of the executable),
    /// the SHA-256 of the rule pack and of every data file (embedded or named by an option), and every option's
    /// value: the provenance's reproducible part. `batch` keys its reuse of earlier results on it.
    func fingerprint() -> String {
        let p = provenance(nil, reproducible: true)
        var lines = ["siphon \(p.tool.version) build \(p.tool.build ?? (try? fileDigest("/proc/self/exe").sha256) ?? "unknown")"]
        lines += p.data.map { "\($0.role) \($0.path) \($0.sha256)" }
        lines += p.options.map { "\($0.0)=\($0.1)" }
        return lines.joined(separator: "\n")
    }

    /// Every option that changes results, with its value (defaults included), in a fixed order.
    func optionValues() -> [(String, String)] {
        [
            ("filter", filter ?? ""), ("tcp-timeout", "\(tcpTimeout)"), ("tcp-unestablished-timeout", "\(tcpUnestablishedTimeout)"),
            ("tcp-close-timeout", tcpCloseTimeout.map { "\($0)" } ?? "default"), ("udp-timeout", "\(udpTimeout)"),
            ("other-timeout", "\(otherTimeout)"), ("max-flows", "\(maxFlows)"), ("memory-limit", memoryLimit), ("open-flow-interval", "\(openFlowInterval)"),
            ("stream-hashes", "\(streamHashes)"), ("overlap-policy", "\(overlapPolicy)"), ("checksums", "\(checksums)"),
            ("ttl-limit", ttlLimit.map { "\($0)" } ?? "default"), ("max-buffered-per-direction", "\(maxBufferedPerDirection)"),
            ("max-buffered-total", "\(maxBufferedTotal)"), ("max-retained-per-direction", "\(maxRetainedPerDirection)"),
            ("retain-responder", "\(retainResponder)"), ("max-retained-total", "\(maxRetainedTotal)"),
            ("http-body-depth", "\(httpBodyDepth)"), ("home", data.home ?? "pack"),
            ("device", devices.device.joined(separator: ",")), ("not-device", devices.notDevice.joined(separator: ",")),
        ]
    }

    /// The provenance of a run with these options: the program, the rule pack and every data file with its SHA-256
    /// (MaxMind databases with their type and build date, from `scan`'s loaded databases when given), the options,
    /// and unless `reproducible` the host, user and time of the analysis.
    func provenance(_ scan: ScanOptions?, reproducible: Bool) -> Provenance {
        var files: [Provenance.DataFile] = []
        let embeddedDetect = ResourceFolder.path(package: "Siphon", target: "SiphonDetect")
        if let rules {
            files.append(dataFile("rules", rules))
        } else {
            files.append(dataFile("rules", embeddedDetect.map { $0 + "/rules" }, shown: "embedded"))
        }
        files.append(dataFile("embedded-data", embeddedDetect.map { $0 + "/data" }, shown: "embedded"))
        files.append(dataFile("embedded-geo", ResourceFolder.path(package: "Siphon", target: "SiphonGeo").map { $0 + "/data" }, shown: "embedded"))
        for (i, path) in data.geoDb.enumerated() {
            var f = dataFile("geo-db", path)
            if let readers = scan?.geo?.databases, i < readers.count {
                let r = readers[i]
                f.version = r.databaseType + (r.buildEpoch.map { " built " + String(Timestamp(seconds: Int64(clamping: $0)).rfc3339.prefix(10)) } ?? "")
            }
            files.append(f)
        }
        files += data.geoOverride.map { dataFile("geo-override", $0) }
        files += data.ioc.map { dataFile("ioc", $0) }
        files += identifiers.map { dataFile("identifiers", $0) }
        return Provenance(
            tool: .init(version: SiphonCommand.configuration.version, build: ScanSession.buildID, revision: ScanSession.sourceRevision),
            data: files, options: optionValues(), analysis: reproducible ? nil : analysisRecord())
    }

    /// The pipeline's options; exits 2 with a message naming the file or value at fault.
    /// `verdicts`: whether verdicts are built even without `--json` (the summary and the HTML report need them).
    /// `closeTimeout`: the command's default for `--tcp-close-timeout`.
    func scanOptions(verdicts: Bool, closeTimeout: Double = 5) throws -> ScanOptions {
        var options = ScanOptions()
        options.filter = filter
        func duration(_ s: Double) -> Duration { .nanoseconds(Int64(s * 1e9)) }
        options.flows.tcpEstablishedTimeout = duration(tcpTimeout)
        options.flows.tcpUnestablishedTimeout = duration(tcpUnestablishedTimeout)
        options.flows.tcpClosedTimeout = duration(tcpCloseTimeout ?? closeTimeout)
        options.flows.udpTimeout = duration(udpTimeout)
        options.flows.otherTimeout = duration(otherTimeout)
        options.flows.maximumFlows = maxFlows
        options.memory = MemoryBudget(limit: MemoryBudget.parse(memoryLimit) ?? 1 << 30)
        options.openFlowInterval = openFlowInterval > 0 ? duration(openFlowInterval) : nil
        options.reassembly.policy = overlapPolicy
        options.checksums = checksums
        options.reassembly.maximumBufferedPerDirection = maxBufferedPerDirection
        options.reassembly.maximumBufferedTotal = maxBufferedTotal
        options.reassembly.retainedPerDirection = maxRetainedPerDirection
        options.reassembly.retainedTotal = maxRetainedTotal
        options.reassembly.retainResponder = retainResponder
        options.streams.hashes = streamHashes
        options.httpBodyDepth = max(0, httpBodyDepth)
        let pack = try loadPack(rules)
        options.detection = pack.configuration
        if let ttlLimit { options.detection?.ttlLimit = ttlLimit }
        options.rules = pack.rules
        options.verdicts = verdicts
        for path in identifiers {
            do { options.detection?.identifiers.known += try KnownIdentifier.load(path: path) } catch {
                printError("\(error)")
                throw ExitCode(2)
            }
        }
        options.geo = try data.geo(packHome: pack.home)
        if !data.ioc.isEmpty { options.intel = try loadIntel(data.ioc) }
        (options.devices, options.excludedDevices) = try devices.selectors()
        if let dir = extractStreams {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                printError("siphon: \(dir): cannot create: \(String(cString: strerror(errno)))")
                throw ExitCode(2)
            }
            options.streams.extractDirectory = dir
        }
        return options
    }
}

/// What `scan` and `live` write at the end, and how they exit.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong("json"), help: ArgumentHelp("Write JSON Lines events to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write a self-contained HTML report (verdict, charts, timeline, evidence) to this file.", valueName: "file"))
    var html: String?

    @Option(help: ArgumentHelp("Exit 1 when an alert of this severity or higher was raised (info, low, medium, high, critical).", valueName: "severity"))
    var failOn: Severity?

    @Flag(name: .shortAndLong, help: "No summary on standard error.")
    var quiet = false

    @Flag(help: "Leave the host, user and wall-clock time of the run out of the provenance: two runs on the same captures, rules, data and options then write byte-identical JSON and HTML reports.")
    var reproducible = false

    @OptionGroup(title: "Case folder")
    var caseFile: CaseOptions

    /// The JSON Lines output, opened now (before privileges are dropped); exit 2 when it cannot be.
    func openOutput() throws -> EventOutput? {
        do {
            return try json.map { path throws(OutputError) in try EventOutput(path: path) }
        } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
    }

    /// The JSON Lines output (the case's `events.jsonl` with `--case`, its folder created new) and the signing key,
    /// opened now (before privileges are dropped); exit 2 when one cannot be.
    func openOutputs() throws -> (EventOutput?, Curve25519.Signing.PrivateKey?) {
        let key = try caseFile.signingKey()
        guard let dir = caseFile.folder else { return (try openOutput(), key) }
        try caseFile.create()
        do { return (try EventOutput(path: dir + "/events.jsonl"), key) } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
    }

    /// The case's HTML report and terminal summary (uncoloured); exit 2 when they cannot be written.
    func writeCase(_ reports: [HTMLReport.Capture], summary: String, home: Set<String>) throws {
        guard let dir = caseFile.folder else { return }
        var inCase = self
        inCase.html = dir + "/report.html"
        try inCase.writeHTML(reports, home: home)
        do { try summary.write(toFile: dir + "/summary.txt", atomically: false, encoding: .utf8) } catch {
            printError("siphon: \(dir)/summary.txt: \(error.localizedDescription)")
            throw ExitCode(2)
        }
    }

    /// Writes the HTML report, if asked; exit 2 when it cannot be written.
    /// `atomically`: through a temporary file renamed over it (the folder must be writable), else in place.
    func writeHTML(_ reports: [HTMLReport.Capture], home: Set<String>, atomically: Bool = true) throws {
        guard let html else { return }
        let page = HTMLReport.render(reports, home: home, version: SiphonCommand.configuration.version)
        do { try page.write(toFile: html, atomically: atomically, encoding: .utf8) } catch {
            printError("siphon: \(html): cannot write the report: \(error.localizedDescription)")
            throw ExitCode(2)
        }
    }

    /// Exit 1 under `--fail-on` when an alert that severe was raised.
    func exitPolicy(worst: Severity?) throws {
        if let threshold = failOn, let worst, worst >= threshold { throw ExitCode(1) }
    }
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Scan capture files (pcap or pcapng; '-' reads standard input).",
        discussion: """
            Writes JSON Lines events (flow, stats) with --json, and a short summary on standard error.
            Exit status: 0 when the scan ran, 2 on bad usage or an unreadable or damaged capture (events decoded
            before the damage are still written).
            """)

    @Argument(help: "Capture files to scan ('-' for standard input).")
    var captures: [String]

    @OptionGroup var analysis: AnalysisOptions

    @OptionGroup var report: ReportOptions

    @Flag(inversion: .prefixedNo, help: "Read the capture on a second thread, a block of packets ahead of the analysis (when more than one processor is online; the events are the same).")
    var readAhead = true

    func validate() throws {
        if captures.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input ('-') can be read once") }
    }

    func run() throws {
        let caseDir = report.caseFile.folder
        var options = try analysis.scanOptions(verdicts: !report.quiet || report.html != nil || caseDir != nil)
        options.readAhead = readAhead
        let (output, key) = try report.openOutputs()
        // Taken when first shown: the SHA-256 of every data file (20 MB embedded) is not read for a quiet scan
        // without output.
        let sink = ScanReport(
            output: output, quiet: report.quiet, html: report.html != nil || caseDir != nil,
            provenance: { [analysis, options, reproducible = report.reproducible] in analysis.provenance(options, reproducible: reproducible) },
            evidence: caseDir.map { ($0 + "/evidence", report.caseFile.severity) })
        // The last capture's tables are left to the exit (the others are freed: their memory serves the next).
        var last = options
        last.freesStateAtEnd = false
        let inputs = captures.indices.map { ScanInput(path: captures[$0], options: $0 == captures.count - 1 ? last : options) }
        let summary = ScanSession(jobs: 1).run(inputs, sink: sink)
        sink.output?.flush()
        if let failure = sink.output?.writeError {
            printError("siphon: events: \(failure)")
            throw ExitCode(2)
        }
        try report.writeHTML(sink.reports, home: options.geo?.homeCountries ?? [])
        if let caseDir {
            // A copy of the case's events where --json also asked for them.
            if let json = report.json, let events = FileManager.default.contents(atPath: caseDir + "/events.jsonl") {
                if json == "-" {
                    FileHandle.standardOutput.write(events)
                } else {
                    do { try events.write(to: URL(fileURLWithPath: json)) } catch {
                        printError("siphon: \(json): cannot write: \(error.localizedDescription)")
                        throw ExitCode(2)
                    }
                }
            }
            try report.writeCase(sink.reports, summary: sink.summaryText, home: options.geo?.homeCountries ?? [])
            try report.caseFile.seal(captures: sink.caseCaptures, analysis: sink.provenance.analysis, key: key, quiet: report.quiet)
        }
        let status = summary.exitStatus(failOn: report.failOn)
        if status != 0 { throw ExitCode(status) }
    }
}

/// `scan`'s sink: every capture's events to one output, in order, each capture's led by its provenance; its
/// summary on standard error and its part of the HTML report.
///
/// The provenance event comes first but holds what is known only at the end (the capture's SHA-256, taken as the
/// scan reads it, its time span, its coverage): a capture's events wait in a spool (in memory, then in an unnamed
/// temporary file past 1 MiB) until then.
final class ScanReport: ScanSink, @unchecked Sendable {
    let output: EventOutput?
    let quiet: Bool
    let html: Bool
    /// The run's provenance, made when first asked for (see `init`).
    var provenance: Provenance {
        lock.lock()
        defer { lock.unlock() }
        if let made = madeProvenance { return made }
        let made = makeProvenance()
        madeProvenance = made
        return made
    }
    private let makeProvenance: () -> Provenance
    private var madeProvenance: Provenance?
    /// Whether anything shows a capture's provenance (the events, the HTML report, the summary, a case): else
    /// neither the capture nor the data files are hashed.
    private var showsProvenance: Bool { output != nil || html || !quiet || evidence != nil }
    private(set) var reports: [HTMLReport.Capture] = []
    private let lock = NSLock()
    private var pending: [Int: (hasher: ContentHasher?, spool: EventOutput?, log: FrameFlowLog?)] = [:]
    /// Case files: the evidence folder and the least severe alert that gets a file (nil: no case).
    let evidence: (folder: String, severity: Severity)?
    /// The summaries as written to the terminal (uncoloured), and each capture's entry, for the case.
    private(set) var summaryText = ""
    private(set) var caseCaptures: [CaseFile.Entry] = []

    /// `provenance` is called once, when a capture's provenance is first shown (the data files' SHA-256 are read
    /// then): never for a quiet scan without an output.
    init(output: EventOutput?, quiet: Bool, html: Bool, provenance: @escaping () -> Provenance, evidence: (String, Severity)? = nil) {
        self.output = output
        self.quiet = quiet
        self.html = html
        self.makeProvenance = provenance
        self.evidence = evidence
    }

    func begin(_ index: Int, _ input: ScanInput) -> ScanStart {
        // The capture's SHA-256 (0.85 s of CPU per GB) only when something shows the provenance.
        let hasher = input.path == "-" || !showsProvenance ? nil : ContentHasher()
        let spool = output != nil ? EventOutput.spool() : nil
        let log = evidence != nil && input.path != "-" ? FrameFlowLog() : nil
        lock.lock()
        pending[index] = (hasher, spool, log)
        lock.unlock()
        return .scan(spool, observer: hasher, frameLog: log)
    }

    func end(_ index: Int, _ input: ScanInput, _ result: CaptureScanner.Result, output _: EventOutput?) {
        let capture = input.path
        lock.lock()
        let started = pending.removeValue(forKey: index)
        lock.unlock()
        // Opening failed: nothing was read. Damage midway: the summary shows what was read before it.
        if let error = result.error, error.offset == nil {
            printError("siphon: \(error)")
            return
        }
        // The rest of the file (after damage) completes the hash.
        let digest = started?.hasher.flatMap { try? $0.finish(path: capture) }
        // Nothing shows it (a quiet scan without output): no provenance is made.
        guard showsProvenance else {
            if let error = result.error { printError("siphon: \(error)") }
            return
        }
        let p = provenance.with(
            input: .init(capture: capture, kind: capture == "-" ? "stdin" : "file", size: digest?.size, sha256: digest?.sha256,
                         format: result.format),
            statistics: result.statistics)
        if let output {
            output.write(EventEncoder.provenance(p, capture: capture))
            if let spool = started?.spool {
                if let e = spool.spillError { printError("siphon: \(e): the events were kept in memory") }
                spool.copy(to: output)
            }
        }
        if html {
            reports.append(HTMLReport.Capture(
                name: capture, statistics: result.statistics, verdicts: result.verdicts, link: result.link, provenance: p))
        }
        if !quiet { printError(summary(capture, result, p, color: colorOnStandardError)) }
        if let error = result.error, quiet { printError("siphon: \(error)") }
        guard let evidence else { return }
        summaryText += summary(capture, result, p, color: false) + "\n"
        caseCaptures.append(CaseFile.Entry(path: capture, size: digest?.size ?? 0, sha256: digest?.sha256 ?? "standard input (not hashed)"))
        if let log = started?.log {
            if let why = log.spillError { printError("siphon: \(capture): \(why)") }
            do {
                _ = try CaseFile.writeEvidence(
                    result: result, log: log, capture: capture, sha256: digest?.sha256, severity: evidence.severity,
                    folder: evidence.folder + "/" + CaptureFinder.slot(for: capture))
            } catch {
                printError("siphon: evidence of \(capture): \(error)")
            }
        }
    }
}

/// `--case DIR`, `--case-severity`, `--sign` (scan, live, batch).
struct CaseOptions: ParsableArguments {
    @Option(name: .customLong("case"), help: ArgumentHelp("Write a case folder: events.jsonl, report.html, summary.txt (batch: the batch folder), a pcapng evidence file per alert at or above --case-severity, and manifest.json (SHA-256 of every file). scan and live create it and refuse one that holds anything. siphon verify checks it.", valueName: "dir"))
    var folder: String?

    @Option(name: .customLong("case-severity"), help: ArgumentHelp("The least severe alert that gets an evidence file in the case (info, low, medium, high, critical).", valueName: "severity"))
    var severity: Severity = .low

    @Option(help: ArgumentHelp("Sign the case's manifest with this Ed25519 private key (PEM; siphon keygen makes one).", valueName: "key.pem"))
    var sign: String?

    func validate() throws {
        if sign != nil && folder == nil { throw ValidationError("--sign goes with --case") }
    }

    /// The signing key, read before anything runs; exit 2 when it cannot be.
    func signingKey() throws -> Curve25519.Signing.PrivateKey? {
        guard let sign else { return nil }
        do {
            return try KeyPEM.privateKey(try String(contentsOfFile: sign, encoding: .utf8))
        } catch {
            printError("siphon: \(sign): \(error)")
            throw ExitCode(2)
        }
    }

    /// Creates the case folder (and its parents); exit 2 when it cannot be, or holds anything already.
    func create() throws {
        guard let dir = folder else { return }
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            printError("siphon: \(dir): cannot create: \(error.localizedDescription)")
            throw ExitCode(2)
        }
        if let contents = try? FileManager.default.contentsOfDirectory(atPath: dir), !contents.isEmpty {
            printError("siphon: \(dir): the case folder must be new or empty (it holds \(contents.count) entries)")
            throw ExitCode(2)
        }
    }

    /// Hashes the case folder's files into its manifest, signed with `key`; exit 2 when it cannot be written.
    func seal(captures: [CaseFile.Entry], analysis: Provenance.Analysis?, key: Curve25519.Signing.PrivateKey?, quiet: Bool) throws {
        guard let dir = folder else { return }
        do {
            let m = try CaseFile.seal(dir, captures: captures, severity: severity, analysis: analysis,
                                      version: SiphonCommand.configuration.version, signingKey: key)
            if !quiet {
                printError("siphon: case \(dir): \(m.files.count) files in \(CaseFile.manifestName)" + (key != nil ? ", signed" : ""))
            }
        } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
    }
}

/// The terminal summary of one capture, its provenance after it.
func summary(_ capture: String, _ result: CaptureScanner.Result, _ provenance: Provenance, color: Bool) -> String {
    TerminalSummary.render(
        capture: capture, stats: result.statistics, hosts: result.hosts, alerts: result.alerts, verdicts: result.verdicts,
        link: result.link, color: color) + "provenance:\n" + TerminalSummary.provenance(provenance)
}
