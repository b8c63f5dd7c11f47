public import SiphonCore
internal import SiphonApp
internal import SiphonDecode
public import SiphonDetect

/// The short human summary `siphon scan` prints on standard error.
public enum TerminalSummary {
    public static func render(
        capture: String, stats s: CaptureStatistics, hosts: [IPAddress: HostTotals], alerts: [Alert] = [],
        verdicts: [DeviceVerdict] = [], link: LinkSummary? = nil, topTalkers: Int = 5, width: Int = 80, color: Bool = false
    ) -> String {
        let paint = Paint(enabled: color)
        var out = ""
        let span: String
        if let first = s.firstTimestamp, let last = s.lastTimestamp {
            span = " over " + seconds((last - first).secondsDouble) + " of capture time"
        } else {
            span = ""
        }
        out += "\(capture): \(count(s.packets)) packets (\(size(s.wireBytes)))\(span)\n"
        out += "  decoded \(count(s.decoded)), undecodable \(count(s.undecodableTotal))"
        if s.truncatedBySnaplen > 0 { out += ", cut by snaplen \(count(s.truncatedBySnaplen))" }
        if s.filteredOut > 0 { out += ", filtered out \(count(s.filteredOut))" }
        out += "\n"
        out += "  IPv4 \(count(s.ipv4)), IPv6 \(count(s.ipv6)), ARP \(count(s.arp)); "
        out += "TCP \(count(s.tcp)), UDP \(count(s.udp)), ICMP \(count(s.icmp)), other \(count(s.otherIP))"
        if s.fragments > 0 { out += ", fragments \(count(s.fragments))" }
        out += "\n"
        out += "  flows \(count(s.flows))"
        if s.flowsEvicted > 0 { out += " (\(count(s.flowsEvicted)) evicted at the flow limit)" }
        if let drops = s.kernelDrops { out += "; kernel drops \(count(drops))" }
        if let drops = s.interfaceDrops { out += "; interface drops \(count(drops))" }
        out += "\n"
        if s.checksums.bad > 0 || s.checksumDisabledAfter != nil {
            out += "  bad checksums (packets ignored, as their receiver drops them): IPv4 \(count(s.checksums.ipv4.bad)), "
                + "TCP \(count(s.checksums.tcp.bad)), UDP \(count(s.checksums.udp.bad)), ICMP \(count(s.checksums.icmp.bad))\n"
            if let n = s.checksumDisabledAfter {
                out += "    over a tenth were bad: validation stopped after packet \(count(n))\n"
            } else {
                out += "    (an edited capture with stale checksums? --checksums off takes every packet)\n"
            }
        }
        if !s.undecodable.isEmpty {
            out += "  undecodable by reason:\n"
            for (reason, n) in s.undecodable.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
                out += "    " + pad(reason.description, 34) + count(n) + "\n"
            }
        }
        let top = hosts.sorted { $0.value.bytes != $1.value.bytes ? $0.value.bytes > $1.value.bytes : $0.key < $1.key }
            .prefix(topTalkers)
        if !top.isEmpty {
            out += "  top talkers (bytes sent and received):\n"
            for (address, totals) in top {
                out += "    " + pad(address.description, 40) + pad(size(totals.bytes), 10) + " \(count(totals.flows)) flows\n"
            }
        }
        if !alerts.isEmpty {
            let bySeverity = Severity.allCases.reversed().compactMap { level -> String? in
                let n = alerts.count { $0.severity == level }
                return n > 0 ? "\(n) \(level)" : nil
            }
            out += "  alerts: " + bySeverity.joined(separator: ", ") + "\n"
            let ranked = alerts.enumerated().sorted { $0.element.severity != $1.element.severity ? $0.element.severity > $1.element.severity : $0.offset < $1.offset }
            for (_, a) in ranked.prefix(12) {
                let lead = "    " + pad(a.severity.description, 9) + pad(a.category.rawValue, 18)
                for (i, line) in wrap(a.message, width: width - lead.count).enumerated() {
                    out += (i == 0 ? "    " + paint.severity(a.severity, pad(a.severity.description, 9)) + pad(a.category.rawValue, 18)
                                : String(repeating: " ", count: lead.count)) + line + "\n"
                }
            }
            if ranked.count > 12 { out += "    ... \(ranked.count - 12) more in the JSON output\n" }
        }
        if let link { out += devices(verdicts, link, width: width) }
        for v in verdicts.prefix(8) { out += verdict(v, width: width, paint: paint) }
        if verdicts.count > 8 { out += "  ... \(verdicts.count - 8) more devices in the JSON output\n" }
        if let error = s.error { out += "  error: \(error)\n" }
        return out
    }

    /// What the mobile core said of a phone: "IMSI ..., MSISDN +..., IMEI ..., APN ...".
    static func subscriberText(_ s: Subscriber) -> String {
        var parts: [String] = []
        if let v = s.imsi { parts.append("IMSI " + v) }
        if let v = s.msisdn { parts.append("MSISDN +" + v) }
        if let v = s.imei { parts.append("IMEI " + v) }
        if let v = s.tmsi { parts.append("TMSI " + v) }
        if let v = s.apn { parts.append("APN " + v) }
        return parts.joined(separator: ", ")
    }

    /// A device's verdict: who it is, the verdict and why, and its endpoints (foreign first) in a table.
    static func verdict(_ v: DeviceVerdict, width: Int, paint: Paint) -> String {
        var out = "  device \(v.id)"
        var who: [String] = []
        if let h = v.hostname { who.append(h) }
        who.append(v.origin.rawValue)
        out += " (" + who.joined(separator: ", ") + ")\n"
        let addresses = v.addresses.isEmpty ? v.device.description : v.addresses.map(\.address.description).joined(separator: ", ")
        // A phone seen only on the air interface has no address.
        if !(v.addresses.isEmpty && v.id.isSubscriber) {
            for (i, line) in wrap(addresses, width: width - 16).enumerated() { out += (i == 0 ? "    addresses: " : "               ") + line + "\n" }
        }
        if let s = v.subscriber {
            for (i, line) in wrap(subscriberText(s), width: width - 17).enumerated() {
                out += (i == 0 ? "    subscriber: " : "                ") + line + "\n"
            }
        }
        out += "    verdict: " + paint.severity(v.severity ?? .info, v.label)
            + (v.incomplete.map { " (incomplete capture: \($0))" } ?? "") + "\n"
        for line in wrap(v.headline, width: width - 4) { out += "    " + line + "\n" }
        out += numberTable(v)
        let shown = v.endpoints.filter { $0.destination?.scope == .foreign || ($0.severity ?? .info) > .info }.prefix(8)
        guard !shown.isEmpty else { return out }
        out += "    " + pad("endpoint", 31) + pad("where", 17) + pad("sent/received", 16) + pad("flows", 6) + "every\n"
        for e in shown {
            let name = e.totals.names.first.map { " " + $0 } ?? ""
            let place = [e.destination?.country, e.destination?.asOrganization].compactMap { $0 }.joined(separator: " ")
            let period = e.period.map { seconds($0) } ?? "-"
            out += "    " + pad(clip(e.address.description + name, 30), 31) + pad(clip(place, 16), 17)
                + pad(size(UInt64(e.totals.sent)) + "/" + size(UInt64(e.totals.received)), 16) + pad(String(e.totals.flows), 6)
                + period + "\n"
        }
        if v.endpoints.count > shown.count { out += "    (\(v.endpoints.count - shown.count) more endpoints, home or without findings)\n" }
        return out
    }

    /// The numbers a phone sent SMS to or called, abroad or with findings first (at most 8).
    static func numberTable(_ v: DeviceVerdict) -> String {
        let shown = v.numbers.filter { $0.info?.scope != .home || ($0.severity ?? .info) > .info }.prefix(8)
        guard !shown.isEmpty else { return "" }
        var out = "    " + pad("number", 19) + pad("where", 22) + pad("SMS out/in", 11) + pad("calls", 6) + "every\n"
        for n in shown {
            let place = [n.info?.country ?? n.info.map { "+" + $0.callingCode }, n.info?.kind].compactMap { $0 }.joined(separator: " ")
            out += "    " + pad(clip(n.number.description, 18), 19) + pad(clip(place, 21), 22)
                + pad("\(n.totals.smsSent)/\(n.totals.smsReceived)", 11) + pad(String(n.totals.calls), 6)
                + (n.period.map { seconds($0) } ?? "-") + "\n"
        }
        if v.numbers.count > shown.count { out += "    (\(v.numbers.count - shown.count) more numbers, home without findings)\n" }
        return out
    }

    /// Which devices were analysed and how they were chosen; when none was found, why and what to pass.
    static func devices(_ verdicts: [DeviceVerdict], _ link: LinkSummary, width: Int) -> String {
        var out = ""
        if verdicts.isEmpty {
            out += link.declared.isEmpty
                ? "  no device found: no host of the captured link initiated traffic (infrastructure left out); name one with --device IP|CIDR|MAC\n"
                : "  no device found: nothing in the capture matches --device \(link.declared.map(\.description).joined(separator: ", "))\n"
        } else {
            let how = Dictionary(grouping: verdicts, by: \.origin).sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key.rawValue)" }
            out += "  devices analysed: \(verdicts.count) (\(how.joined(separator: ", ")))\n"
        }
        if !link.infrastructure.isEmpty {
            let shown = link.infrastructure.prefix(4).map {
                "\(EventEncoder.macString($0.mac)) \($0.roles.joined(separator: "/")) (\($0.addresses)\($0.more ? "+" : "") address\($0.addresses == 1 && !$0.more ? "" : "es"))"
            }
            var line = "infrastructure, not analysed: " + shown.joined(separator: "; ")
            if link.infrastructure.count > 4 { line += "; \(link.infrastructure.count - 4) more" }
            if link.withdrawnAlerts > 0 { line += "; \(link.withdrawnAlerts) alerts raised before a host was known as infrastructure left out" }
            for (i, l) in wrap(line, width: width - 4).enumerated() { out += (i == 0 ? "  " : "    ") + l + "\n" }
        }
        return out
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 1)) + "…" }

    /// ANSI colours for severities, on a terminal only.
    struct Paint {
        var enabled: Bool
        func severity(_ s: Severity, _ text: String) -> String {
            guard enabled else { return text }
            let code = switch s {
            case .critical: "1;35"
            case .high: "1;31"
            case .medium: "33"
            case .low: "36"
            case .info: "2"
            }
            // Padding stays outside the colour so columns line up.
            let trimmed = text.trimmingTrailingSpaces()
            return "\u{1B}[\(code)m\(trimmed)\u{1B}[0m" + String(repeating: " ", count: text.count - trimmed.count)
        }
    }

    /// `text` cut at spaces into lines of at most `width` characters (a longer word gets a line of its own).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        return lines
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }

    /// 1234567 -> "1,234,567".
    public static func count<I: BinaryInteger>(_ n: I) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }

    public static func size(_ bytes: UInt64) -> String { ByteSize.text(bytes) }

    static func seconds(_ s: Double) -> String {
        if s < 120 { return oneDecimal(s) + " s" }
        if s < 7200 { return oneDecimal(s / 60) + " min" }
        return oneDecimal(s / 3600) + " h"
    }

    static func oneDecimal(_ v: Double) -> String {
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` to standard error (a line break is added when missing), unbuffered.
public func writeStandardError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    var bytes = Array(line.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + done, $0.count - done) }
        if n <= 0 { break }
        done += n
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
