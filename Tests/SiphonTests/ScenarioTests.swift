import Foundation
import Testing

/// Every detection scenario of captures/scenarios (written by scripts/gen_scenarios.py, which also writes what each
/// must raise): `siphon scan` with the embedded rule pack raises exactly the manifest's alerts above info (category,
/// severity, destination, and the evidence fields listed), and nothing above info on the benign variants.
@Suite struct ScenarioTests {
    static let manifests: [String] = Repo.files(in: "captures/scenarios", extensions: ["json"])

    struct Expected: Hashable, CustomStringConvertible {
        var category: String
        var severity: String
        var destination: String
        var description: String { "\(severity) \(category) \(destination)" }
    }

    @Test func everyCategoryHasAScenarioAndABenignVariantExists() throws {
        var categories: Set<String> = []
        var benign = 0
        for path in Self.manifests {
            let m = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            if m["benign"] as? Bool == true { benign += 1 }
            for e in m["expect"] as? [[String: Any]] ?? [] { categories.insert(e["category"] as? String ?? "") }
        }
        // foreign-endpoint is informational, so its scenario expects nothing above info; the other ten fire.
        let contract: Set<String> = ["foreign-upload", "beaconing", "no-dns-endpoint", "identifier-leak", "dns-tunnel", "cleartext",
                                     "non-standard-port", "evasion", "ioc-match", "tls-anomaly"]
        #expect(contract.subtracting(categories).isEmpty, "no scenario for \(contract.subtracting(categories))")
        #expect(benign >= 8)
    }

    @Test(arguments: manifests.map { ($0 as NSString).lastPathComponent })
    func scenario(_ name: String) throws {
        let m = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repo.path("captures/scenarios/" + name)))) as? [String: Any])
        let capture = Repo.path("captures/scenarios/" + (m["capture"] as? String ?? ""))
        let args = (m["args"] as? [String] ?? []).map { $0.hasPrefix("captures/") ? Repo.path($0) : $0 }
        let run = try runSiphon(["scan", "-q", "--json", "-"] + args + [capture])
        #expect(run.status == 0, "\(run.err)")
        let alerts = run.out.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { $0["event_type"] as? String == "alert" }
        let device = m["device"] as? String
        let aboveInfo = alerts.filter { ($0["alert"] as? [String: Any])?["severity"] as? String != "info" }
        let got = aboveInfo.map {
            Expected(category: ($0["alert"] as? [String: Any])?["category"] as? String ?? "",
                     severity: ($0["alert"] as? [String: Any])?["severity"] as? String ?? "", destination: $0["dest_ip"] as? String ?? "")
        }
        let expect = m["expect"] as? [[String: Any]] ?? []
        let wanted = expect.map {
            Expected(category: $0["category"] as? String ?? "", severity: $0["severity"] as? String ?? "", destination: $0["dest_ip"] as? String ?? "")
        }
        #expect(got.sorted { $0.description < $1.description } == wanted.sorted { $0.description < $1.description },
                "\(name): got \(got), expected \(wanted)")
        if m["benign"] as? Bool == true { #expect(aboveInfo.isEmpty, "\(name) is benign") }
        // Every alert names the device: by its address in the flow (one of the manifest's when it lists them) and by
        // its identity, the MAC address (02:a4:c2:11:33:02 in every scenario).
        let addresses = m["addresses"] as? [String] ?? [device ?? ""]
        for a in alerts {
            #expect(addresses.contains(a["device"] as? String ?? ""), "\(name): device \(a["device"] ?? "nil")")
            #expect(a["device_id"] as? String == m["device_id"] as? String ?? "02:a4:c2:11:33:02", "\(name)")
        }
        // The evidence fields the manifest names, on an alert of the same category and destination.
        for e in expect {
            guard let fields = e["evidence"] as? [String: Any] else { continue }
            let matching = aboveInfo.filter {
                ($0["alert"] as? [String: Any])?["category"] as? String == e["category"] as? String && $0["dest_ip"] as? String == e["dest_ip"] as? String
            }
            #expect(matching.contains { a in
                let evidence = a["evidence"] as? [String: Any] ?? [:]
                return fields.allSatisfy { "\(evidence[$0.key] ?? "nil")" == "\($0.value)" }
            }, "\(name): no \(e["category"] ?? "") alert with evidence \(fields)")
        }
    }
}
