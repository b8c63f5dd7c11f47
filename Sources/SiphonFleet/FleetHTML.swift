import Siphon

/// `DIR/fleet.html`: the fleet report as one self-contained page (no external resource): totals, the captures
/// that failed, the foreign endpoints shared by devices, the devices worst first (a filter box narrows them), the
/// clusters, and every capture with its status and a link to its own report.
enum FleetHTML {
    static func render(_ f: FleetReport) -> String {
        func e(_ s: String) -> String { HTMLReport.escape(s) }
        func sev(_ s: String?) -> String { "<span class=\"sev sev-\(e(s ?? "none"))\">\(e(s ?? "none"))</span>" }
        func bytes(_ n: Int) -> String { e(ByteSize.text(UInt64(max(0, n)))) }
        let t = f.totals
        var h = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Siphon fleet report</title>
            <meta name="generator" content="\(e(f.generator))"><style>\(css)</style></head><body>
            <h1>Fleet report</h1>
            <p class="totals" id="totals">\(t.files) files: \(t.scanned) scanned, \(t.damaged) damaged, \(t.unreadable) unreadable, \(t.skipped) skipped.
            \(t.devices) devices, \(t.devicesAbroad) of them talked abroad, to \(t.foreignEndpoints) foreign endpoints (\(t.sharedEndpoints) shared by several devices);
            \(t.clusters) clusters; \(t.alertsAboveInfo) alerts above info.</p>
            <p class="verdicts">\(t.verdicts.map { "\(sev($0.name)) \($0.devices)" }.joined(separator: " "))</p>

            """
        let failed = f.captures.filter { $0.status.failed }
        if !failed.isEmpty {
            h += "<h2>Captures that failed</h2><table id=\"failed\"><tr><th>capture</th><th>status</th><th>error</th></tr>"
            for c in failed {
                h += "<tr><td>\(e(c.capture))</td><td>\(e(c.status.rawValue))</td><td>\(e(c.error ?? ""))</td></tr>"
            }
            h += "</table>\n"
        }
        h += "<h2>Foreign endpoints, by devices that contacted them</h2>"
        h += "<table id=\"endpoints\"><tr><th>endpoint</th><th>names</th><th>country</th><th>owner</th><th>devices</th><th>models</th><th>sent</th><th>received</th><th>flows</th><th>findings</th></tr>"
        for x in f.endpoints.prefix(500) {
            let owner = [x.asn.map { "AS\($0)" }, x.asOrg].compactMap { $0 }.joined(separator: " ")
            let country = (x.country ?? "?") + (x.registeredCountry.map { $0 != x.country ? " (registered \($0))" : "" } ?? "")
            h += "<tr class=\"\(x.devices >= 2 ? "shared" : "")\"><td>\(e(x.ip))</td><td>\(e(x.names.prefix(3).joined(separator: ", ")))</td><td>\(e(country))</td><td>\(e(owner))</td>"
            h += "<td class=\"n\">\(x.devices)</td><td>\(e(x.models.map { "\($0.name) \($0.devices)" }.joined(separator: ", ")))</td><td class=\"n\">\(bytes(x.sent))</td><td class=\"n\">\(bytes(x.received))</td>"
            h += "<td class=\"n\">\(x.flows)</td><td>\(sev(x.severity)) \(e(x.categories.joined(separator: ", ")))</td></tr>"
        }
        h += "</table>\n"
        if f.endpoints.count > 500 { h += "<p>\(f.endpoints.count - 500) more in fleet.json.</p>" }
        h += "<h2>Devices, worst first</h2><p><label>Filter <input id=\"filter\" type=\"search\" placeholder=\"label, model, endpoint...\"></label> <span id=\"shown\"></span></p>"
        h += "<table id=\"devices\"><tr><th>device</th><th>model</th><th>verdict</th><th>foreign endpoints</th><th>sent abroad</th><th>alerts</th><th>only this device contacted</th><th>cluster</th></tr>"
        // Each device's capture folder, looked up once (a fleet has thousands of devices and captures).
        let outputs = Dictionary(f.captures.map { ($0.capture, $0.outputs) }, uniquingKeysWith: { a, _ in a })
        for d in f.devices {
            let report = outputs[d.capture]??.appending("/report.html")
            let name = report.map { "<a href=\"\(e($0))\">\(e(d.label))</a>" } ?? e(d.label)
            h += "<tr class=\"device\"><td>\(name)<br><small>\(e(d.deviceId))</small></td><td>\(e(d.model ?? ""))</td><td>\(sev(d.severity)) \(e(d.headline))\(d.incomplete.map { "<br><small>incomplete: \(e($0))</small>" } ?? "")</td>"
            h += "<td class=\"n\">\(d.foreignEndpoints)</td><td class=\"n\">\(bytes(d.sentForeign))</td><td class=\"n\">\(d.alerts)</td><td>\(e(d.uniqueEndpoints.joined(separator: ", ")))</td><td>\(d.cluster.map { "#\($0)" } ?? "")</td></tr>"
        }
        h += "</table>\n<h2>Clusters: devices with the same foreign endpoints</h2>"
        if f.clusters.isEmpty { h += "<p>None: no two devices talked to the same set of foreign endpoints.</p>" }
        h += "<table id=\"clusters\"><tr><th>cluster</th><th>devices</th><th>models</th><th>worst</th><th>foreign endpoints</th></tr>"
        for c in f.clusters {
            h += "<tr><td>#\(c.id)</td><td>\(c.devices.count): \(e(c.devices.prefix(20).joined(separator: ", ")))\(c.devices.count > 20 ? ", ..." : "")</td>"
            h += "<td>\(e(c.models.map { "\($0.name) \($0.devices)" }.joined(separator: ", ")))</td><td>\(sev(c.severity))</td><td>\(e(c.endpoints.joined(separator: ", ")))</td></tr>"
        }
        h += "</table>\n<h2>Captures</h2><table id=\"captures\"><tr><th>capture</th><th>status</th><th>label</th><th>packets</th><th>devices</th><th>alerts</th><th>worst</th><th>SHA-256</th></tr>"
        for c in f.captures {
            h += "<tr class=\"\(e(c.status.rawValue))\"><td>\(e(c.capture))</td><td>\(e(c.status.rawValue))\(c.error.map { "<br><small>\(e($0))</small>" } ?? "")</td><td>\(e(c.label ?? ""))</td>"
            h += "<td class=\"n\">\(c.packets)</td><td class=\"n\">\(c.devices)</td><td class=\"n\">\(c.alerts)</td><td>\(c.worst.map { sev($0) } ?? "")</td><td><code>\(e(c.sha256.map { String($0.prefix(16)) } ?? ""))</code></td></tr>"
        }
        h += "</table>\n<h2>Provenance</h2><p>\(f.provenance.incompleteCaptures) captures analysed from an incomplete capture (drops, gaps, cuts, damage: see each capture's report). Configurations the results were produced with (each capture's events.jsonl starts with its full provenance):</p>"
        h += "<table id=\"configurations\"><tr><th>configuration</th><th>captures</th><th>program</th><th>build ID</th><th>source revision</th><th>rules SHA-256</th></tr>"
        for c in f.provenance.configurations {
            let p = c.producedBy
            h += "<tr><td><code>\(e(String(p.configurationSha256.prefix(16))))</code></td><td class=\"n\">\(c.captures)</td><td>\(e(p.tool))</td>"
            h += "<td><code>\(e(p.buildId ?? ""))</code></td><td><code>\(e(p.revision ?? ""))</code></td><td><code>\(e(p.rulesSha256 ?? ""))</code></td></tr>"
        }
        h += "</table>\n<script>\(script)</script></body></html>\n"
        return h
    }

    static let css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
        td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}
        td.n{text-align:right;font-variant-numeric:tabular-nums}tr.shared td:first-child{font-weight:bold}
        .sev{padding:0 .4em;border-radius:3px;font-size:12px}.sev-critical{background:#7a0010;color:#fff}
        .sev-high{background:#d0312d;color:#fff}.sev-medium{background:#f0a030}.sev-low{background:#f5e27a}
        .sev-info,.sev-none{background:#ddd}tr.damaged,tr.unreadable{background:#fff0f0}tr.skipped{color:#888}
        small{color:#666}
        """

    /// The filter box: shows the device rows whose text holds every word typed, and how many.
    static let script = """
        (function(){var input=document.getElementById('filter'),shown=document.getElementById('shown');
        var rows=Array.prototype.slice.call(document.querySelectorAll('#devices tr.device'));
        function apply(){var words=input.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;
        rows.forEach(function(r){var t=r.textContent.toLowerCase(),ok=words.every(function(w){return t.indexOf(w)>=0;});
        r.style.display=ok?'':'none';if(ok)n++;});shown.textContent=n+' of '+rows.length+' devices';}
        input.addEventListener('input',apply);apply();})();
        """
}
