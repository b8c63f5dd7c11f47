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
        subcommands: [Scan.self, Live.self, BatchCommand.self, Fleet.self, Extract.self, Keygen.self, Verify.self, Lookup.self, Rules.self])
}

extension OverlapPolicy: ExpressibleByArgument {}
extension ChecksumValidation: ExpressibleByArgument {}

extension Severity: ExpressibleByArgument {
    init?(argument: String) { self.init(name: argument) }
    static var allValueStrings: [String] { allCases.map(\.description) }
}

struct Lookup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup",
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

    @Option(help: ArgumentHelp("Declared countries, before every other source: CSV lines network,country[,registered_country,asn,as_org] (a lab's egress or test ranges); repeatable.", valueName: "file.csv"))
    var geoOverride: [String] = []

    /// The geo database for `--home` (else the pack's home countries, else FR), `--geo-db` and `--geo-override`.
    func geo(packHome: Set<String>?) throws -> GeoDatabase {
        let g = try loadGeo(home: home ?? packHome.map { $0.sorted().joined(separator: ",") } ?? "FR", databases: geoDb)
        guard !geoOverride.isEmpty else { return g }
        var overrides: [GeoOverride] = []
        for path in geoOverride {
            do { overrides += try GeoOverride.load(path: path) } catch {
                printError("siphon: \(error)")
                throw ExitCode(2)
            }
        }
        return g.with(overrides: overrides)
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
        commandName: "rules",
        abstract: "Work with rule packs.", subcommands: [Check.self, Fields.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
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
        static let configuration = CommandConfiguration(commandName: "fields", abstract: "List the fields declarative rules can test, with their types.")
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
