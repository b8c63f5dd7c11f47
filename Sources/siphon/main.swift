public import ArgumentParser
import Siphon
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct SiphonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "siphon",
        abstract: "Find devices that siphon data abroad, from what they said on the wire.",
        version: "0.1.0",
        subcommands: [Scan.self, Lookup.self, Rules.self])
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scan capture files (pcap or pcapng; '-' reads standard input).",
        discussion: """
            Writes JSON Lines events (flow, stats) with --json, and a short summary on standard error.
            Exit status: 0 when the scan ran, 2 on bad usage or an unreadable or damaged capture (events decoded
            before the damage are still written).
            """)

    @Argument(help: "Capture files to scan ('-' for standard input).")
    var captures: [String]

    @Option(name: .customLong("json"), help: ArgumentHelp("Write JSON Lines events to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(name: [.customShort("f"), .customLong("filter")], help: ArgumentHelp("BPF filter, as tcpdump takes it.", valueName: "expression"))
    var filter: String?

    @Option(help: ArgumentHelp("Idle timeout of established TCP flows, in seconds.", valueName: "seconds"))
    var tcpTimeout: Double = 3600

    @Option(help: ArgumentHelp("Idle timeout of TCP flows without a handshake, in seconds.", valueName: "seconds"))
    var tcpUnestablishedTimeout: Double = 120

    @Option(help: ArgumentHelp("How long a closed or reset TCP flow waits for late packets, in seconds.", valueName: "seconds"))
    var tcpCloseTimeout: Double = 5

    @Option(help: ArgumentHelp("Idle timeout of UDP flows, in seconds.", valueName: "seconds"))
    var udpTimeout: Double = 120

    @Option(help: ArgumentHelp("Idle timeout of ICMP and other flows, in seconds.", valueName: "seconds"))
    var otherTimeout: Double = 120

    @Option(help: ArgumentHelp("Flows tracked at once; the longest-idle flow is ended early beyond it.", valueName: "count"))
    var maxFlows: Int = 1 << 20

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

    @Option(help: ArgumentHelp("Exit 1 when an alert of this severity or higher was raised (info, low, medium, high, critical).", valueName: "severity"))
    var failOn: Severity?

    @Option(help: ArgumentHelp("Write a self-contained HTML report (verdict, charts, timeline, evidence) to this file.", valueName: "file"))
    var html: String?

    @Flag(name: .shortAndLong, help: "No summary on standard error.")
    var quiet = false

    @Flag(inversion: .prefixedNo, help: "Read the capture on a second thread, a block of packets ahead of the analysis (when more than one processor is online; the events are the same).")
    var readAhead = true

    func validate() throws {
        for (name, value) in [
            ("--tcp-timeout", tcpTimeout), ("--tcp-unestablished-timeout", tcpUnestablishedTimeout),
            ("--tcp-close-timeout", tcpCloseTimeout), ("--udp-timeout", udpTimeout), ("--other-timeout", otherTimeout),
        ] where !(value > 0 && value < 1e9) {
            throw ValidationError("\(name) must be a positive number of seconds")
        }
        if maxFlows < 1 { throw ValidationError("--max-flows must be at least 1") }
        if maxBufferedPerDirection < 0 || maxBufferedTotal < 0 || maxRetainedPerDirection < 0 || maxRetainedTotal < 0 {
            throw ValidationError("buffer limits cannot be negative")
        }
        if captures.filter({ $0 == "-" }).count > 1 { throw ValidationError("standard input ('-') can be read once") }
    }

    func run() throws {
        var options = ScanOptions()
        options.filter = filter
        func duration(_ s: Double) -> Duration { .nanoseconds(Int64(s * 1e9)) }
        options.flows.tcpEstablishedTimeout = duration(tcpTimeout)
        options.flows.tcpUnestablishedTimeout = duration(tcpUnestablishedTimeout)
        options.flows.tcpClosedTimeout = duration(tcpCloseTimeout)
        options.flows.udpTimeout = duration(udpTimeout)
        options.flows.otherTimeout = duration(otherTimeout)
        options.flows.maximumFlows = maxFlows
        options.reassembly.policy = overlapPolicy
        options.checksums = checksums
        options.readAhead = readAhead
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
        options.verdicts = !quiet || html != nil
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

        let output: EventOutput?
        do {
            output = try json.map { path throws(OutputError) in try EventOutput(path: path) }
        } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
        var failed = false
        var worst: Severity?
        var reports: [HTMLReport.Capture] = []
        for capture in captures {
            let result = CaptureScanner.scan(path: capture, options: options, output: output)
            if let top = result.alerts.map(\.severity).max(), worst.map({ top > $0 }) ?? true { worst = top }
            if html != nil, !(result.error != nil && result.error?.offset == nil) {
                reports.append(HTMLReport.Capture(name: capture, statistics: result.statistics, verdicts: result.verdicts, link: result.link))
            }
            if let error = result.error {
                failed = true
                // Opening failed: nothing was read. Damage midway: the summary shows what was read before it.
                if error.offset == nil {
                    printError("siphon: \(error)")
                    continue
                }
            }
            if !quiet {
                printError(TerminalSummary.render(
                    capture: capture, stats: result.statistics, hosts: result.hosts, alerts: result.alerts,
                    verdicts: result.verdicts, link: result.link, color: colorOnStandardError))
            }
            if let error = result.error, quiet { printError("siphon: \(error)") }
        }
        output?.flush()
        if let html {
            let page = HTMLReport.render(reports, home: options.geo?.homeCountries ?? [], version: SiphonCommand.configuration.version)
            do { try page.write(toFile: html, atomically: true, encoding: .utf8) } catch {
                printError("siphon: \(html): cannot write the report: \(error.localizedDescription)")
                throw ExitCode(2)
            }
        }
        if failed { throw ExitCode(2) }
        if let threshold = failOn, let worst, worst >= threshold { throw ExitCode(1) }
    }
}

extension OverlapPolicy: ExpressibleByArgument {}
extension ChecksumValidation: ExpressibleByArgument {}

extension Severity: ExpressibleByArgument {
    init?(argument: String) { self.init(name: argument) }
    static var allValueStrings: [String] { allCases.map(\.description) }
}

struct Lookup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what Siphon knows of addresses: located and registered country, AS, scope.")

    @Argument(help: "IPv4 or IPv6 addresses.")
    var addresses: [String]

    @OptionGroup(title: "Geography and intelligence")
    var data: DataOptions

    @Flag(help: "One JSON object per address instead of text.")
    var json = false

    func run() throws {
        // The embedded rule pack's home countries, as `scan` takes them, unless --home says otherwise.
        let geo = try data.geo(packHome: try loadPack(nil).home)
        let intel = try loadIntel(data.ioc)
        var failed = false
        for text in addresses {
            guard let address = IPAddress(text) else {
                printError("siphon: \(text): not an IP address")
                failed = true
                continue
            }
            let g = geo.lookup(address)
            if json {
                var w = JSONObjectWriter()
                w.beginObject()
                w.field("address", address.description)
                EventEncoder.geo(g, into: &w)
                if let hit = intel.match(address: address) {
                    w.beginObject("ioc")
                    w.field("indicator", hit.value)
                    w.field("source", hit.source)
                    if let t = hit.tag { w.field("tag", t) }
                    w.endObject()
                }
                w.endObject()
                print(String(decoding: w.bytes, as: UTF8.self))
            } else {
                let asText = g.asn.map { "AS\($0)" + (g.asOrganization.map { " \($0)" } ?? "") } ?? "no AS"
                let hit = intel.match(address: address).map { "  IOC \($0.value) (\($0.source)\($0.tag.map { ", \($0)" } ?? ""))" } ?? ""
                print("\(address)  located \(g.country ?? "-")  registered \(g.registeredCountry ?? "-")  \(asText)  scope \(g.scope.rawValue)\(hit)")
            }
        }
        if failed { throw ExitCode(2) }
    }
}

/// Which hosts are devices under test: every command that judges devices takes these.
struct DeviceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A device under test: an IP address, a prefix (CIDR) or a MAC address; repeatable. Default: every host of the captured link that initiates traffic, gateways, routers, DHCP servers and resolvers left out.", valueName: "ip|cidr|mac"))
    var device: [String] = []

    @Option(help: ArgumentHelp("A host never taken for a device (IP, CIDR or MAC); repeatable.", valueName: "ip|cidr|mac"))
    var notDevice: [String] = []

    /// The declared and the excluded selectors; exit 2 naming the first that does not parse.
    func selectors() throws -> (declared: [DeviceSelector], excluded: [DeviceSelector]) {
        func parse(_ flag: String, _ texts: [String]) throws -> [DeviceSelector] {
            try texts.map { text in
                guard let s = DeviceSelector(text) else {
                    printError("siphon: \(flag) \(text): not an IP address, a prefix (192.0.2.0/24) or a MAC address (aa:bb:cc:dd:ee:ff)")
                    throw ExitCode(2)
                }
                return s
            }
        }
        return (try parse("--device", device), try parse("--not-device", notDevice))
    }
}

/// The options every command that judges addresses shares: home countries, extra geo databases, IOC feeds.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Home countries (ISO codes, comma-separated): destinations elsewhere are foreign. Default: the rule pack's (FR).", valueName: "codes"))
    var home: String?

    @Option(help: ArgumentHelp("A MaxMind DB (country, city or ASN) consulted before the embedded data; repeatable.", valueName: "file.mmdb"))
    var geoDb: [String] = []

    @Option(help: ArgumentHelp("An IOC feed (list, STIX 2.1, MISP, TinyCheck, stalkerware YAML/CSV); repeatable.", valueName: "file"))
    var ioc: [String] = []

    /// The geo database for `--home` (else the pack's home countries, else FR) and `--geo-db`.
    func geo(packHome: Set<String>?) throws -> GeoDatabase {
        try loadGeo(home: home ?? packHome.map { $0.sorted().joined(separator: ",") } ?? "FR", databases: geoDb)
    }
}

/// The rule pack at `path` (nil: the embedded one); exit 2 listing every problem on failure.
func loadPack(_ path: String?) throws -> RulePack {
    do {
        return try path.map { p throws(RulePackErrors) in try RulePack.load(path: p) } ?? RulePack.embedded()
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

struct Rules: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with rule packs.", subcommands: [Check.self, Fields.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a rule pack: every error with its file and line; exit 1 when there is one.")

        @Argument(help: "Rule pack files or directories (default: the embedded pack).")
        var paths: [String] = []

        func run() throws {
            var failed = false
            let packs: [(String, Result<RulePack, RulePackErrors>)] = paths.isEmpty
                ? [("(embedded)", Result { () throws(RulePackErrors) in try RulePack.embedded() })]
                : paths.map { p in (p, Result { () throws(RulePackErrors) in try RulePack.load(path: p) }) }
            for (path, result) in packs {
                switch result {
                case .success(let pack):
                    let home = pack.home.map { $0.sorted().joined(separator: ",") } ?? "not set"
                    let off = pack.configuration.disabled.map(\.rawValue).sorted()
                    print("\(path): OK: \(pack.files.count) file\(pack.files.count == 1 ? "" : "s"), \(pack.rules.count) rules, home \(home)"
                        + (off.isEmpty ? "" : ", detectors off: \(off.joined(separator: ", "))"))
                case .failure(let errors):
                    failed = true
                    print(errors.description)
                    print("\(path): \(errors.issues.count) error\(errors.issues.count == 1 ? "" : "s")")
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Fields: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the fields declarative rules can test, with their types.")
        func run() {
            for f in RuleField.all.values.sorted(by: { $0.name < $1.name }) {
                print("\(f.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(f.type.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(f.help)")
            }
        }
    }
}

/// The indicators of the given feeds; exit 2 with a message naming the file on failure.
func loadIntel(_ paths: [String]) throws -> IndicatorSet {
    let set = IndicatorSet()
    for path in paths {
        do { try set.load(path: path) } catch {
            printError("siphon: \(error)")
            throw ExitCode(2)
        }
    }
    return set
}

/// The embedded tables plus the given MaxMind databases; exit 2 with a message naming the file on failure.
func loadGeo(home: String, databases: [String]) throws -> GeoDatabase {
    do {
        var readers: [MMDBReader] = []
        for path in databases { readers.append(try MMDBReader(path: path)) }
        return try GeoDatabase(home: Set(home.split(separator: ",").map { String($0).trimmingSpaces() }), databases: readers)
    } catch {
        printError("siphon: \(error)")
        throw ExitCode(2)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

func printError(_ message: String) { writeStandardError(message) }

/// Colour only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb.
let colorOnStandardError: Bool = isatty(2) == 1 && getenv("NO_COLOR") == nil && String(cString: getenv("TERM") ?? strdup("dumb")) != "dumb"

// Bad usage exits 2 (as documented), not ArgumentParser's default 64.
do {
    var command = try SiphonCommand.parseAsRoot()
    try command.run()
} catch {
    let code = SiphonCommand.exitCode(for: error)
    if code == .validationFailure {
        printError(SiphonCommand.fullMessage(for: error))
        exit(2)
    }
    SiphonCommand.exit(withError: error)
}
