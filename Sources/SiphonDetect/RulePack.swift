internal import Foundation
internal import Yams
internal import SiphonCore

/// One problem in a rule pack, with where it is.
public struct RulePackIssue: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "\(file):\(line):\(column): error: \(message)" }
}

/// Every problem found in a rule pack (loading goes on after the first, so one run lists them all).
public struct RulePackErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [RulePackIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// A rule pack: home countries, the built-in detectors' parameters, and declarative rules, read from YAML files.
/// Every key is checked: an unknown one is an error, never a silent no-op. The format is documented in docs/rules.md.
public struct RulePack: Sendable {
    /// Home countries (ISO 3166 alpha-2), when the pack sets them.
    public var home: Set<String>?
    public var configuration = DetectionConfiguration()
    public var rules: [Rule] = []
    /// The files read, in order.
    public var files: [String] = []

    public init() {}

    /// The default pack (`rules/` of the repository, embedded at build time).
    public static func embedded() throws(RulePackErrors) -> RulePack {
        let folder = ResourceFolder.path(package: "Siphon", target: "SiphonDetect").map { URL(fileURLWithPath: $0 + "/rules") }
        guard let url = folder ?? Bundle.module.url(forResource: "rules", withExtension: nil) else {
            throw RulePackErrors(issues: [RulePackIssue(file: "rules", line: 0, column: 0, message: "the embedded rule pack is missing from the build")])
        }
        var pack = try load(path: url.path)
        pack.files = pack.files.map { "(embedded) rules/" + ($0 as NSString).lastPathComponent }
        return pack
    }

    /// Reads a pack: a YAML file, or every `*.yaml`/`*.yml` file of a directory in name order.
    public static func load(path: String) throws(RulePackErrors) -> RulePack {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RulePackErrors(issues: [RulePackIssue(file: path, line: 0, column: 0, message: "no such file or directory")])
        }
        var files = [path]
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { (path as NSString).appendingPathComponent($0) }
            if files.isEmpty {
                throw RulePackErrors(issues: [RulePackIssue(file: path, line: 0, column: 0, message: "no .yaml or .yml file in the directory")])
            }
        }
        let loader = RulePackLoader()
        for file in files {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                loader.issues.append(RulePackIssue(file: file, line: 0, column: 0, message: "cannot read the file as UTF-8 text"))
                continue
            }
            loader.read(text, file: file)
        }
        if !loader.issues.isEmpty { throw RulePackErrors(issues: loader.issues) }
        loader.pack.files = files
        return loader.pack
    }

    /// Reads a pack from YAML text (`file` names it in errors).
    public static func parse(_ text: String, file: String) throws(RulePackErrors) -> RulePack {
        let loader = RulePackLoader()
        loader.read(text, file: file)
        if !loader.issues.isEmpty { throw RulePackErrors(issues: loader.issues) }
        loader.pack.files = [file]
        return loader.pack
    }
}

/// Reads YAML nodes into a pack, collecting issues with their positions.
final class RulePackLoader {
    var pack = RulePack()
    var issues: [RulePackIssue] = []
    var file = ""
    /// Where each setting was first made (`home`, `detectors.beaconing.min_contacts`...): set twice is an error.
    var settings: [String: String] = [:]
    var ruleIDs: [String: String] = [:]

    func read(_ text: String, file: String) {
        self.file = file
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .basic)
        } catch let e as YamlError {
            issues.append(yamlIssue(e))
            return
        } catch {
            issues.append(RulePackIssue(file: file, line: 0, column: 0, message: "\(error)"))
            return
        }
        guard let root else { return }  // an empty file sets nothing
        for (key, value, keyNode) in mapping(root, allowed: ["version", "home", "detectors", "rules"], what: "the top level") {
            switch key {
            case "version":
                if int(value) != 1 { fail(value, "unsupported rule pack version (this build reads version 1)") }
            case "home":
                guard once("home", keyNode) else { continue }
                let codes = strings(value)
                var home: Set<String> = []
                for (code, node) in codes {
                    let c = code.uppercased()
                    if c.count != 2 || !c.allSatisfy({ $0.isASCII && $0.isLetter }) {
                        fail(node, "'\(code)' is not an ISO 3166 alpha-2 country code")
                    } else {
                        home.insert(c)
                    }
                }
                if codes.isEmpty { fail(value, "home needs at least one country") }
                pack.home = home
            case "detectors":
                detectors(value)
            case "rules":
                guard let seq = value.sequence else { fail(value, "rules must be a list"); continue }
                for r in seq { rule(r) }
            default: break
            }
        }
    }

    // MARK: Detector parameters

    typealias Setter = @Sendable (RulePackLoader, Node, inout DetectionConfiguration) -> Void

    /// The parameters of each built-in detector, by the category it raises; `enabled` is accepted for all.
    static let parameters: [String: [String: Setter]] = [
        "foreign-endpoint": [:],
        "foreign-upload": [
            "volume_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.uploadBytes = v } },
            "ratio": { l, n, c in if let v = l.double(n, min: 1) { c.uploadRatio = v } },
            "ratio_min_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.uploadRatioMinimumBytes = v } },
            "share": { l, n, c in if let v = l.double(n, min: 0) { c.uploadShare = min(v, 1) } },
            "share_min_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.uploadShareMinimumBytes = v } },
            "share_max_returned": { l, n, c in if let v = l.double(n, min: 0) { c.uploadShareMaximumReturned = v } },
        ],
        "beaconing": [
            "min_contacts": { l, n, c in if let v = l.int(n, min: 3) { c.beacons.minimumContacts = v } },
            "min_interval_s": { l, n, c in if let v = l.double(n, min: 0) { c.beacons.minimumInterval = v } },
            "max_dispersion": { l, n, c in if let v = l.double(n, min: 0) { c.beacons.maximumDispersion = v } },
            "jitter": { l, n, c in if let v = l.double(n, min: 0) { c.beacons.jitter = v } },
            "max_contacts": { l, n, c in if let v = l.int(n, min: 6) { c.beacons.maximumContacts = v } },
            "spray_addresses": { l, n, c in if let v = l.int(n, min: 2) { c.beacons.sprayAddresses = v } },
            "in_flow_silence_s": { l, n, c in if let v = l.double(n, min: 0.01) { c.heartbeat.silence = v } },
            "in_flow_max_exchanges": { l, n, c in if let v = l.int(n, min: 6) { c.heartbeat.maximumExchanges = v } },
            "in_flow_max_size_dispersion": { l, n, c in if let v = l.double(n, min: 0) { c.heartbeat.maximumSizeDispersion = v } },
        ],
        "no-dns-endpoint": [
            "exempt_ports": { l, n, c in if let v = l.ports(n) { c.noDNSExemptPorts = v } },
        ],
        "cleartext": [
            "protocols": { l, n, c in c.cleartextProtocols = Set(l.strings(n).map { $0.0.lowercased() }) },
            "min_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.cleartextBytes = v } },
        ],
        "non-standard-port": [
            "standard_ports": { l, n, c in
                var table: [String: Set<UInt16>] = [:]
                for (app, value, _) in l.mapping(n, allowed: nil, what: "standard_ports") {
                    if let ports = l.ports(value) { table[app.lowercased()] = ports }
                }
                c.standardPorts = table
            },
        ],
        "identifier-leak": [
            "kinds": { l, n, c in
                var kinds: Set<IdentifierKind> = []
                for (name, node) in l.strings(n) {
                    if let k = IdentifierKind(rawValue: name), k.isGeneric { kinds.insert(k) } else {
                        l.fail(node, "unknown identifier kind '\(name)' (known: \(IdentifierKind.generic.map(\.rawValue).joined(separator: ", ")))")
                    }
                }
                c.identifiers.kinds = kinds
            },
            "scan_bytes": { l, n, c in if let v = l.int(n, min: 0) { c.identifiers.scanBytes = v } },
            "excerpt_bytes": { l, n, c in if let v = l.int(n, min: 8) { c.identifiers.excerptBytes = v } },
        ],
        "dns-tunnel": [
            "min_names": { l, n, c in if let v = l.int(n, min: 2) { c.dnsTunnel.minimumNames = v } },
            "encoded_fraction": { l, n, c in if let v = l.double(n, min: 0) { c.dnsTunnel.encodedFraction = v } },
            "long_label": { l, n, c in if let v = l.int(n, min: 1) { c.dnsTunnel.longSubdomain = v } },
            "entropy": { l, n, c in if let v = l.double(n, min: 0) { c.dnsTunnel.entropy = v } },
            "txt_queries": { l, n, c in if let v = l.int(n, min: 1) { c.dnsTunnel.txtQueries = v } },
            "high_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.dnsTunnel.highBytes = v } },
        ],
        "icmp-tunnel": [
            "inner_packets": { l, n, c in if let v = l.int(n, min: 1) { c.icmpTunnel.innerPackets = v } },
            "volume_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.icmpTunnel.volumeBytes = v } },
            "distinct_sizes": { l, n, c in if let v = l.int(n, min: 1) { c.icmpTunnel.distinctSizes = v } },
            "high_bytes": { l, n, c in if let v = l.int(n, min: 1) { c.icmpTunnel.highBytes = v } },
        ],
        "dga": [
            "min_domains": { l, n, c in if let v = l.int(n, min: 1) { c.nxdomain.minimumDomains = v } },
            "nxdomain_fraction": { l, n, c in if let v = l.double(n, min: 0) { c.nxdomain.fraction = min(v, 1) } },
            "random_domains": { l, n, c in if let v = l.int(n, min: 1) { c.nxdomain.minimumRandomDomains = v } },
        ],
        "tls-anomaly": [
            "obsolete_versions": { l, n, c in
                var versions: Set<UInt16> = []
                for (name, node) in l.strings(n) {
                    if let v = TLSAnomalyConfiguration.versions[name] { versions.insert(v) } else {
                        l.fail(node, "unknown TLS version '\(name)' (known: \(TLSAnomalyConfiguration.versions.keys.sorted().joined(separator: ", ")))")
                    }
                }
                c.tls.obsoleteVersions = versions
            },
            "no_sni_foreign": { l, n, c in if let v = l.bool(n) { c.tls.noSNIForeign = v } },
        ],
        "ioc-match": [:],
        "c2-channel": [:],
        "evasion": [
            "ttl_limit": { l, n, c in
                guard let v = l.int(n, min: 0) else { return }
                if v > 255 { l.fail(n, "must be at most 255") } else { c.ttlLimit = UInt8(v) }
            },
        ],
    ]

    func detectors(_ node: Node) {
        let names = Self.parameters.keys.sorted()
        for (name, value, _) in mapping(node, allowed: Set(names), what: "detectors") {
            let params = Self.parameters[name] ?? [:]
            for (param, v, paramNode) in mapping(value, allowed: Set(params.keys).union(["enabled"]), what: "detector \(name)") {
                guard once("detectors.\(name).\(param)", paramNode) else { continue }
                if param == "enabled" {
                    if let on = bool(v) {
                        if on { pack.configuration.disabled.remove(AlertCategory(rawValue: name)) } else { pack.configuration.disabled.insert(AlertCategory(rawValue: name)) }
                    }
                } else {
                    params[param]?(self, v, &pack.configuration)
                }
            }
        }
    }

    // MARK: Declarative rules

    func rule(_ node: Node) {
        let fields = mapping(node, allowed: ["id", "category", "severity", "message", "when", "per", "description", "references", "enabled"], what: "a rule")
        guard node.mapping != nil else { return }
        var id: String?, category: String?, severity: Severity?, message: String?, condition: RuleCondition?
        var per = RuleRepeat.endpoint, enabled = true
        for (key, value, _) in fields {
            switch key {
            case "id":
                guard let s = string(value) else { continue }
                if s.isEmpty || !s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
                    fail(value, "a rule id is letters, digits, '.', '_' and '-'")
                } else if let previous = ruleIDs[s] {
                    fail(value, "rule id '\(s)' is already used at \(previous)")
                } else {
                    id = s
                    ruleIDs[s] = position(value)
                }
            case "category":
                guard let s = string(value) else { continue }
                if s.isEmpty || !s.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) {
                    fail(value, "a category is lower-case letters, digits and '-'")
                } else {
                    category = s
                }
            case "severity":
                guard let s = string(value) else { continue }
                severity = Severity(name: s)
                if severity == nil { fail(value, "unknown severity '\(s)' (info, low, medium, high, critical)") }
            case "message":
                guard let s = string(value) else { continue }
                let unknown = Rule.placeholders(s).filter { RuleField.all[$0] == nil }
                if !unknown.isEmpty {
                    fail(value, "unknown field\(unknown.count > 1 ? "s" : "") in the message: \(unknown.map { "{\($0)}" }.joined(separator: ", "))")
                } else {
                    message = s
                }
            case "when": condition = self.condition(value)
            case "per":
                guard let s = string(value) else { continue }
                if let p = RuleRepeat(rawValue: s) { per = p } else {
                    fail(value, "per must be one of \(RuleRepeat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            case "description": _ = string(value)
            case "references": _ = strings(value)
            case "enabled": enabled = bool(value) ?? true
            default: break
            }
        }
        for required in ["id", "category", "severity", "message", "when"] where !fields.contains(where: { $0.0 == required }) {
            fail(node, "a rule needs '\(required)'")
        }
        guard let id, let category, let severity, let message, let condition, enabled else { return }
        pack.rules.append(Rule(
            id: id, category: AlertCategory(rawValue: category), severity: severity, message: message,
            condition: condition, per: per, location: position(node)))
    }

    func condition(_ node: Node) -> RuleCondition? {
        guard let m = node.mapping else {
            fail(node, "a condition is a mapping: {field: value}, {all: [...]}, {any: [...]} or {not: ...}")
            return nil
        }
        guard m.count == 1, let (keyNode, value) = m.first.map({ ($0.key, $0.value) }), let key = keyNode.scalar?.string else {
            fail(node, "a condition has exactly one key (combine several with all: or any:)")
            return nil
        }
        switch key {
        case "all", "any":
            guard let seq = value.sequence, !seq.isEmpty else {
                fail(value, "\(key) takes a non-empty list of conditions")
                return nil
            }
            let parts = seq.map { condition($0) }
            guard parts.allSatisfy({ $0 != nil }) else { return nil }
            return key == "all" ? .all(parts.map { $0! }) : .any(parts.map { $0! })
        case "not":
            return condition(value).map { .not($0) }
        default:
            guard let field = RuleField.all[key] else {
                fail(keyNode, "unknown field '\(key)' (fields: \(RuleField.all.keys.sorted().joined(separator: ", ")))")
                return nil
            }
            if let ops = value.mapping {
                var tests: [RuleCondition] = []
                for (opNode, operandNode) in ops {
                    let name = opNode.scalar?.string ?? ""
                    guard let op = RuleOperator(rawValue: name) else {
                        fail(opNode, "unknown operator '\(name)' (\(RuleOperator.allCases.map(\.rawValue).joined(separator: ", ")))")
                        continue
                    }
                    if let t = test(field, op, operandNode) { tests.append(t) }
                }
                guard tests.count == ops.count, !tests.isEmpty else {
                    if ops.isEmpty { fail(value, "no operator given for \(key)") }
                    return nil
                }
                return tests.count == 1 ? tests[0] : .all(tests)
            }
            return test(field, value.sequence != nil ? .in : .eq, value)
        }
    }

    func test(_ field: RuleField, _ op: RuleOperator, _ node: Node) -> RuleCondition? {
        guard RuleOperator.allowed(for: field.type).contains(op) else {
            fail(node, "operator \(op.rawValue) does not apply to \(field.name), a \(field.type.rawValue) field "
                + "(allowed: \(RuleOperator.allowed(for: field.type).map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        let list = op == .in || op == .notIn
        if list, node.sequence == nil, !(op == .in && node.scalar != nil) {
            fail(node, "\(op.rawValue) takes a list")
            return nil
        }
        let items: [Node] = node.sequence.map { Array($0) } ?? [node]
        // `suffix` and `contains` take one value or a list (any of them).
        let anyOf = op == .suffix || op == .contains
        if !list, node.sequence != nil, !anyOf {
            fail(node, "\(op.rawValue) takes a single value")
            return nil
        }
        switch field.type {
        case .int, .double:
            var numbers: [Double] = []
            for item in items {
                guard let s = item.scalar?.string, let v = Double(s) else { fail(item, "\(field.name) takes numbers"); return nil }
                numbers.append(v)
            }
            return .test(field, op, list ? .numbers(numbers) : .number(numbers[0]))
        case .bool:
            guard let b = bool(node) else { return nil }
            return .test(field, op, .bool(b))
        case .address:
            var networks: [IPNetwork] = []
            for item in items {
                guard let s = item.scalar?.string, let n = IPNetwork(s) else {
                    fail(item, "\(field.name) takes addresses or prefixes (192.0.2.0/24, 2001:db8::/32)")
                    return nil
                }
                networks.append(n)
            }
            return .test(field, op == .in ? .eq : op == .notIn ? .ne : op, .networks(networks))
        case .string, .strings:
            var texts: [String] = []
            for item in items {
                guard let s = item.scalar?.string else { fail(item, "\(field.name) takes text"); return nil }
                texts.append(op == .matches ? s : s.lowercased())
            }
            if op == .matches {
                do {
                    return .test(field, op, .regex(try Regex(texts[0]).ignoresCase()))
                } catch {
                    fail(node, "invalid regular expression: \(error)")
                    return nil
                }
            }
            return .test(field, op, list || (anyOf && node.sequence != nil) ? .texts(texts) : .text(texts[0]))
        }
    }

    // MARK: Node helpers

    /// The key/value pairs of a mapping, checking every key against `allowed` (nil: any) and refusing duplicates.
    func mapping(_ node: Node, allowed: Set<String>?, what: String) -> [(String, Node, Node)] {
        guard let m = node.mapping else {
            fail(node, "\(what) must be a mapping (key: value)")
            return []
        }
        var seen: Set<String> = []
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard let key = k.scalar?.string else { fail(k, "keys must be plain text"); continue }
            if let allowed, !allowed.contains(key) {
                fail(k, "unknown key '\(key)' in \(what) (expected: \(allowed.sorted().joined(separator: ", ")))")
                continue
            }
            if !seen.insert(key).inserted { fail(k, "'\(key)' appears twice in \(what)"); continue }
            out.append((key, v, k))
        }
        return out
    }

    /// Records that a setting is made here; false (and an error) when another place already made it.
    func once(_ setting: String, _ node: Node) -> Bool {
        if let previous = settings[setting] {
            fail(node, "\(setting) is already set at \(previous)")
            return false
        }
        settings[setting] = position(node)
        return true
    }

    func string(_ node: Node) -> String? {
        guard let s = node.scalar?.string else { fail(node, "expected text"); return nil }
        return s
    }

    func strings(_ node: Node) -> [(String, Node)] {
        if let s = node.scalar?.string { return [(s, node)] }
        guard let seq = node.sequence else { fail(node, "expected a list"); return [] }
        return seq.compactMap { item in
            guard let s = item.scalar?.string else { fail(item, "expected text"); return nil }
            return (s, item)
        }
    }

    func int(_ node: Node, min: Int = Int.min) -> Int? {
        // YAML's digit separators dropped by hand (Foundation's replacingOccurrences cost 39,000 instructions a call).
        guard let s = node.scalar?.string, let v = Int(s.utf8.contains(UInt8(ascii: "_")) ? String(s.filter { $0 != "_" }) : s) else {
            fail(node, "expected an integer")
            return nil
        }
        guard v >= min else { fail(node, "must be at least \(min)"); return nil }
        return v
    }

    func double(_ node: Node, min: Double = -.infinity) -> Double? {
        guard let s = node.scalar?.string, let v = Double(s), v.isFinite else { fail(node, "expected a number"); return nil }
        guard v >= min else { fail(node, "must be at least \(min)"); return nil }
        return v
    }

    func bool(_ node: Node) -> Bool? {
        switch node.scalar?.string {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: fail(node, "expected true or false"); return nil
        }
    }

    func ports(_ node: Node) -> Set<UInt16>? {
        guard let seq = node.sequence else { fail(node, "expected a list of ports"); return nil }
        var out: Set<UInt16> = []
        for item in seq {
            guard let s = item.scalar?.string, let p = UInt16(s) else { fail(item, "a port is 0 to 65535"); return nil }
            out.insert(p)
        }
        return out
    }

    func position(_ node: Node) -> String {
        "\(file):\(node.mark?.line ?? 0)"
    }

    func fail(_ node: Node, _ message: String) {
        issues.append(RulePackIssue(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, message: message))
    }

    func yamlIssue(_ e: YamlError) -> RulePackIssue {
        switch e {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let text = [context?.text, problem].compactMap { $0 }.joined(separator: ": ")
            return RulePackIssue(file: file, line: mark.line, column: mark.column, message: "YAML: \(text)")
        default:
            return RulePackIssue(file: file, line: 0, column: 0, message: "YAML: \(e)")
        }
    }
}
