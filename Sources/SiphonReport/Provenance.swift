import SiphonCore
internal import SiphonDecode

/// What produced a report, and how much of the capture it covers: the first event of every JSON output, a block of
/// the HTML and terminal reports, and the head of batch and fleet reports. Everything in it but `analysis` (host and
/// wall-clock time of the run) is a function of the inputs, the build and the options, so two runs on the same
/// inputs agree byte for byte outside that object (`--reproducible` leaves it out).
public struct Provenance: Sendable, Equatable {
    /// The program: name, version, the linker's build ID of the executable, the source's git commit when known.
    public struct Tool: Sendable, Equatable {
        public var version: String
        public var build: String?
        public var revision: String?
        public init(version: String, build: String?, revision: String?) {
            self.version = version
            self.build = build
            self.revision = revision
        }
    }

    /// One file (or embedded folder) the results depend on.
    public struct DataFile: Sendable, Equatable {
        /// What it is for: `rules`, `geo-db`, `ioc`, `geo-override`, `identifiers`, `devices`, `embedded-geo`...
        public var role: String
        /// The path as given (`embedded` for data built into the program).
        public var path: String
        public var sha256: String
        public var size: Int64?
        /// What the file says of itself: a MaxMind database's type and build date, a feed's indicator count.
        public var version: String?
        public init(role: String, path: String, sha256: String, size: Int64? = nil, version: String? = nil) {
            self.role = role
            self.path = path
            self.sha256 = sha256
            self.size = size
            self.version = version
        }
    }

    /// The capture analysed.
    public struct Input: Sendable, Equatable {
        /// The path as given, `-` for standard input, or the interfaces of a live capture.
        public var capture: String
        /// `file`, `stdin` or `interface`.
        public var kind: String
        public var size: Int64?
        public var sha256: String?
        /// `pcap` or `pcapng` (files), the link types of interfaces.
        public var format: String?
        public init(capture: String, kind: String, size: Int64? = nil, sha256: String? = nil, format: String? = nil) {
            self.capture = capture
            self.kind = kind
            self.size = size
            self.sha256 = sha256
            self.format = format
        }
    }

    /// Who ran it, where and when (wall clock): the only part that differs between two runs.
    public struct Analysis: Sendable, Equatable {
        public var host: String
        public var user: String?
        public var started: String
        public init(host: String, user: String?, started: String) {
            self.host = host
            self.user = user
            self.started = started
        }
    }

    public var tool: Tool
    /// The rule pack, then every other data file, in a fixed order.
    public var data: [DataFile]
    /// Every option that changes results, with its value (defaults included), in a fixed order.
    public var options: [(String, String)]
    public var analysis: Analysis?
    public var input: Input?
    /// The capture's figures (nil before it is read, e.g. a fleet report's head).
    public var statistics: CaptureStatistics?

    public init(tool: Tool, data: [DataFile], options: [(String, String)], analysis: Analysis?) {
        self.tool = tool
        self.data = data
        self.options = options
        self.analysis = analysis
    }

    public static func == (a: Provenance, b: Provenance) -> Bool {
        a.tool == b.tool && a.data == b.data && a.options.elementsEqual(b.options, by: { $0 == $1 })
            && a.analysis == b.analysis && a.input == b.input
    }

    /// The same provenance for one capture.
    public func with(input: Input, statistics: CaptureStatistics?) -> Provenance {
        var p = self
        p.input = input
        p.statistics = statistics
        return p
    }

    /// The rule pack's SHA-256 (the first `rules` data file).
    public var rulesSHA256: String? { data.first { $0.role == "rules" }?.sha256 }
}

// MARK: Coverage

/// What a capture's analysis could not see, in words: each reason a finding may be missing. Empty: complete.
public struct Coverage: Sendable, Equatable {
    public var reasons: [String]
    /// Facts about the analysis that are not losses (a filter, checksums not verified).
    public var notes: [String]
    public var complete: Bool { reasons.isEmpty }

    public init(_ s: CaptureStatistics) {
        var r: [String] = []
        func plural(_ n: UInt64, _ word: String) -> String { "\(TerminalSummary.count(n)) \(word)\(n == 1 ? "" : "s")" }
        if let e = s.error {
            r.append("capture damaged" + (s.errorOffset.map { " at offset \($0)" } ?? "") + ": " + e)
        }
        if let k = s.kernelDrops, k > 0 { r.append(plural(k, "packet") + " dropped by the kernel") }
        if let i = s.interfaceDrops, i > 0 { r.append(plural(i, "packet") + " dropped by the interface") }
        if s.truncatedBySnaplen > 0 { r.append(plural(s.truncatedBySnaplen, "packet") + " cut by the snapshot length") }
        if s.gapBytes > 0 { r.append(plural(s.gapBytes, "byte") + " missing in TCP gaps (\(TerminalSummary.count(s.gaps)) gaps)") }
        if s.budgetGapBytes > 0 { r.append(plural(s.budgetGapBytes, "byte") + " of them given up by the reassembly memory budget") }
        if s.flowsEvicted > 0 { r.append(plural(s.flowsEvicted, "flow") + " ended early by the flow-table limit") }
        if s.fragmentsDropped > 0 { r.append(plural(s.fragmentsDropped, "IP fragment") + " of datagrams never completed") }
        let m = s.memory
        if m.fragmentDatagrams > 0 { r.append(plural(m.fragmentDatagrams, "fragmented datagram") + " dropped by the fragment memory budget") }
        if m.dnsAddresses > 0 { r.append(TerminalSummary.count(m.dnsAddresses) + (m.dnsAddresses == 1 ? " address" : " addresses") + " whose DNS names the name map's memory budget did not keep") }
        if m.alertsNotKept > 0 { r.append(plural(m.alertsNotKept, "alert") + " written but not kept for the verdicts (memory budget)") }
        if m.ledgerFlowsNotJudged > 0 { r.append(plural(m.ledgerFlowsNotJudged, "flow") + " to new endpoints not judged (device x endpoint ledger full)") }
        if m.linkAddresses > 0 { r.append(plural(m.linkAddresses, "address sighting") + " of the link's hosts not recorded (memory budget)") }
        if m.hostTotals > 0 { r.append(plural(m.hostTotals, "host total") + " not kept (memory budget)") }
        if m.tunnelPackets > 0 { r.append(plural(m.tunnelPackets, "GTP-U packet") + " of tunnels beyond the tunnel table's limit") }
        if m.flowsNotParsed > 0 { r.append(TerminalSummary.count(m.flowsNotParsed) + (m.flowsNotParsed == 1 ? " TCP flow" : " TCP flows") + " not parsed to the end (application parsers' memory budget)") }
        if m.tableEntries > 0 { r.append(TerminalSummary.count(m.tableEntries) + (m.tableEntries == 1 ? " detector table entry" : " detector table entries") + " not kept (memory budget)") }
        if m.learnedIdentities > 0 { r.append(TerminalSummary.count(m.learnedIdentities) + (m.learnedIdentities == 1 ? " subscriber identity" : " subscriber identities") + " not searched for in payloads (memory budget)") }
        let undecodable = s.undecodableTotal
        if undecodable > 0 { r.append(plural(undecodable, "packet") + " undecodable") }
        reasons = r
        var n: [String] = []
        if s.filteredOut > 0 { n.append(plural(s.filteredOut, "packet") + " left out by the filter") }
        switch s.checksumMode {
        case .off: n.append("checksums not verified (--checksums off)")
        case .auto where s.checksumDisabledAfter != nil:
            n.append("checksum verification turned off after packet \(s.checksumDisabledAfter!) (over a tenth of the first 1,000 bad: offloading)")
        default: break
        }
        notes = n
    }
}

extension EventEncoder {
    /// The `provenance` event: `tool`, `input`, `data`, `options`, `analysis` (unless reproducible), `coverage`.
    /// Its `timestamp` is the capture's first packet (no wall-clock time outside `analysis`).
    public static func provenance(_ p: Provenance, capture: String) -> JSONObjectWriter {
        var w = JSONObjectWriter()
        w.beginObject()
        w.field("timestamp", p.statistics?.firstTimestamp ?? .zero)
        w.field("event_type", "provenance")
        w.field("capture", capture)
        w.beginObject("provenance")
        provenanceFields(p, into: &w)
        w.endObject()
        w.endObject()
        return w
    }

    /// The provenance object's fields (for the event, and for the fleet and verdict files).
    public static func provenanceFields(_ p: Provenance, into w: inout JSONObjectWriter) {
        w.beginObject("tool")
        w.field("name", "siphon")
        w.field("version", p.tool.version)
        if let b = p.tool.build { w.field("build_id", b) }
        if let r = p.tool.revision { w.field("revision", r) }
        w.endObject()
        if let i = p.input {
            w.beginObject("input")
            w.field("capture", i.capture)
            w.field("kind", i.kind)
            if let f = i.format { w.field("format", f) }
            if let s = i.size { w.field("size", s) }
            if let h = i.sha256 { w.field("sha256", h) }
            if let s = p.statistics {
                if let a = s.firstTimestamp { w.field("first_packet", a) }
                if let b = s.lastTimestamp { w.field("last_packet", b) }
                w.field("packets", s.packets)
            }
            w.endObject()
        }
        w.beginArray("data")
        for d in p.data {
            w.beginObject()
            w.field("role", d.role)
            w.field("path", d.path)
            w.field("sha256", d.sha256)
            if let s = d.size { w.field("size", s) }
            if let v = d.version { w.field("version", v) }
            w.endObject()
        }
        w.endArray()
        w.beginObject("options")
        for (k, v) in p.options { w.field(JSONKey(k), v) }
        w.endObject()
        if let a = p.analysis {
            w.beginObject("analysis")
            w.field("host", a.host)
            if let u = a.user { w.field("user", u) }
            w.field("started", a.started)
            w.endObject()
        }
        if let s = p.statistics {
            let c = Coverage(s)
            w.beginObject("coverage")
            w.field("complete", c.complete)
            w.field("incomplete", c.reasons)
            w.field("notes", c.notes)
            w.field("packets", s.packets)
            w.field("undecodable", s.undecodableTotal)
            w.field("truncated_by_snaplen", s.truncatedBySnaplen)
            w.field("filtered_out", s.filteredOut)
            w.field("gap_bytes", s.gapBytes)
            w.field("budget_gap_bytes", s.budgetGapBytes)
            w.field("flows_evicted", s.flowsEvicted)
            if let k = s.kernelDrops { w.field("kernel_drops", k) }
            if let i = s.interfaceDrops { w.field("interface_drops", i) }
            w.field("checksums", s.checksumMode.rawValue)
            if let n = s.checksumDisabledAfter { w.field("checksums_off_after_packet", n) }
            if let e = s.error { w.field("error", e) }
            if let o = s.errorOffset { w.field("error_offset", o) }
            w.endObject()
        }
    }
}

extension TerminalSummary {
    /// The provenance in a few lines for the terminal: the capture's hash, size and span, the program and rules,
    /// and whether the capture was seen whole (each reason it was not).
    public static func provenance(_ p: Provenance, width: Int = 80) -> String {
        var out = ""
        if let i = p.input {
            var line = "  input: "
            line += i.kind == "stdin" ? "standard input (not hashed)" : i.kind == "interface" ? i.capture : ""
            var facts: [String] = []
            if let s = i.size { facts.append(count(s) + " bytes") }
            if let f = i.format { facts.append(f) }
            if let s = p.statistics { facts.append(count(s.packets) + " packets") }
            line += facts.joined(separator: ", ")
            out += line + "\n"
            if let h = i.sha256 { out += "  sha256: " + h + "\n" }
            if let s = p.statistics, let a = s.firstTimestamp, let b = s.lastTimestamp {
                out += "  span: \(a.rfc3339) to \(b.rfc3339)\n"
            }
        }
        var tool = "  siphon \(p.tool.version)"
        if let b = p.tool.build { tool += ", build " + String(b.prefix(16)) }
        if let r = p.tool.revision { tool += ", source " + String(r.prefix(12)) }
        out += tool + "\n"
        if let rules = p.data.first(where: { $0.role == "rules" }) {
            out += "  rules: " + (rules.path.count > 40 ? "..." + String(rules.path.suffix(37)) : rules.path) + " sha256 " + String(rules.sha256.prefix(16)) + "\n"
        }
        if let s = p.statistics {
            let c = Coverage(s)
            let text = c.complete ? "coverage: complete (no drops, gaps, cuts, evictions or undecodable packets)"
                : "coverage: INCOMPLETE: " + c.reasons.joined(separator: "; ")
            for line in wrap(text, width: width - 4) { out += "  " + line + "\n" }
            for n in c.notes { for line in wrap("note: " + n, width: width - 4) { out += "  " + line + "\n" } }
        }
        return out
    }
}

extension HTMLReport {
    /// The provenance table of a capture's section.
    static func provenance(_ p: Provenance) -> String {
        var rows: [(String, String)] = []
        if let i = p.input {
            rows.append(("Capture", i.capture + (i.format.map { " (" + $0 + ")" } ?? "")))
            if let h = i.sha256 { rows.append(("SHA-256", h)) }
            if let s = i.size { rows.append(("Size", TerminalSummary.count(s) + " bytes")) }
        }
        if let s = p.statistics, let a = s.firstTimestamp, let b = s.lastTimestamp {
            rows.append(("Packets", "\(TerminalSummary.count(s.packets)), \(a.rfc3339) to \(b.rfc3339)"))
        }
        var tool = "siphon \(p.tool.version)"
        if let b = p.tool.build { tool += ", build ID " + b }
        if let r = p.tool.revision { tool += ", source revision " + r }
        rows.append(("Program", tool))
        for d in p.data {
            rows.append((d.role, d.path + " · sha256 " + d.sha256 + (d.version.map { " · " + $0 } ?? "")))
        }
        rows.append(("Options", p.options.map { "\($0.0)=\($0.1)" }.joined(separator: " ")))
        if let a = p.analysis {
            rows.append(("Analysis", "\(a.user.map { $0 + "@" } ?? "")\(a.host), started \(a.started)"))
        }
        if let s = p.statistics {
            let c = Coverage(s)
            rows.append(("Coverage", c.complete ? "complete" : "INCOMPLETE: " + c.reasons.joined(separator: "; ")))
            for n in c.notes { rows.append(("Note", n)) }
        }
        var h = "<details class=\"provenance\"><summary>Provenance</summary><table>"
        for (k, v) in rows { h += "<tr><th>\(escape(k))</th><td>\(escape(v))</td></tr>" }
        return h + "</table></details>\n"
    }
}
